package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/brokertest"
)

// TestGroupDescribeLagSeconds: moldau group describe has a LAG-SECONDS column: now − the
// timestamp of the record at the committed offset (the first unconsumed), 0.0 when caught up;
// kafka-consumer-groups --describe keeps Kafka's columns exactly.
func TestGroupDescribeLagSeconds(t *testing.T) {
	b := brokertest.Start(t, nil)
	addr := b.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "timed"); err != nil {
		t.Fatal(err)
	}
	// Partition 0: records 10 minutes, 9 minutes, ... ago; partition 1: one record, consumed.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	var rs []*kgo.Record
	for i := range 5 {
		rs = append(rs, &kgo.Record{Topic: "timed", Partition: 0, Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	rs = append(rs, &kgo.Record{Topic: "timed", Partition: 1, Value: []byte("v")})
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "timed", Partition: 0, At: 2, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "timed", Partition: 1, At: 1, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "billing", os); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}

	before := time.Now()
	out := mustRun(t, "", "group", "describe", "billing", "-b", addr)
	after := time.Now()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "LAG             LAG-SECONDS  CONSUMER-ID") {
		t.Fatalf("describe:\n%s", out)
	}
	secs := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l) // GROUP TOPIC PARTITION CURRENT LOG-END LAG LAG-SECONDS ...
		if len(f) < 7 {
			t.Fatalf("row %q", l)
		}
		secs[f[2]] = f[6]
	}
	// The first unconsumed record of partition 0 is record 2, written at base + 2 min.
	first := base.Add(2 * time.Minute)
	got, err := strconv.ParseFloat(secs["0"], 64)
	lo, hi := before.Sub(first).Seconds()-0.05, after.Sub(first).Seconds()+0.05 // printed to 0.1 s
	if err != nil || got < lo || got > hi {
		t.Errorf("partition 0 LAG-SECONDS %q, want within [%.2f, %.2f]:\n%s", secs["0"], lo, hi, out)
	}
	if secs["1"] != "0.0" {
		t.Errorf("caught-up partition 1 LAG-SECONDS %q, want 0.0:\n%s", secs["1"], out)
	}
	if k := mustRun(t, "", "kafka-consumer-groups", "--bootstrap-server", addr, "--describe", "--group", "billing"); strings.Contains(k, "LAG-SECONDS") {
		t.Errorf("kafka-consumer-groups --describe shows Moldau's column:\n%s", k)
	}
}
