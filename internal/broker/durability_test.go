package broker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFsyncBeforeAck: under log.flush.interval.messages=1 every acknowledged produce waited for a
// group-committed sync of the log dir; without it, nothing syncs on the produce path.
func TestFsyncBeforeAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides []string
		wantSync  bool
	}{
		{"flush every message", []string{"log.flush.interval.messages", "1"}, true},
		{"default flush policy", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBroker(t, t.TempDir(), tc.overrides...)
			defer stopBroker(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 3, 1, nil, "durable"); err != nil {
				t.Fatal(err)
			}
			p0 := b.parts.Get("durable", 0)
			if (p0.AckSyncer() != nil) != tc.wantSync {
				t.Fatalf("AckSyncer %v, want one: %v", p0.AckSyncer(), tc.wantSync)
			}
			cl := client(t, b, kgo.DefaultProduceTopic("durable"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			var before uint64
			if tc.wantSync {
				before = p0.AckSyncer().Syncs()
			}
			const n = 300
			for i := range n {
				cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			var total int64
			for p := range int32(3) {
				total += b.parts.Get("durable", p).LogEndOffset()
			}
			if total != n {
				t.Fatalf("%d records in the logs, want %d", total, n)
			}
			if !tc.wantSync {
				return
			}
			// One sync per produce request at most, shared by its partitions: never more syncs than
			// batches, and at least one.
			syncs := p0.AckSyncer().Syncs() - before
			if syncs == 0 || syncs > n {
				t.Fatalf("%d syncs for %d records", syncs, n)
			}
			t.Logf("%d records acknowledged after %d syncs", n, syncs)
		})
	}
}
