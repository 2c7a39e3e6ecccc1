package broker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/vfs"
)

// kafkaFlushDefault is Kafka's default flush policy (never fsync on the write path), set explicitly:
// tests whose point is not durability use it where an fsync per acknowledgement would slow them.
var kafkaFlushDefault = []string{"log.flush.interval.messages", strconv.FormatInt(math.MaxInt64, 10)}

// TestFsyncBeforeAck: by default, and under log.flush.interval.messages=1, every acknowledged
// produce waited for a group-committed sync of the log dir; with a flush policy set explicitly
// to anything else (Kafka's meaning), nothing syncs on the produce path.
func TestFsyncBeforeAck(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides []string
		topic     map[string]*string
		wantSync  bool
	}{
		{"default", nil, nil, true},
		{"flush every message", []string{"log.flush.interval.messages", "1"}, nil, true},
		{"Kafka's default set explicitly", kafkaFlushDefault, nil, false},
		{"broker flush.ms only", []string{"log.flush.interval.ms", "60000"}, nil, false},
		{"topic flush.ms only", nil, map[string]*string{"flush.ms": kmsg.StringPtr("60000")}, false},
		{"topic flush.messages=1 over broker flush.ms", []string{"log.flush.interval.ms", "60000"},
			map[string]*string{"flush.messages": kmsg.StringPtr("1")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBroker(t, t.TempDir(), tc.overrides...)
			defer stopBroker(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 3, 1, tc.topic, "durable"); err != nil {
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

// sendOffsetCommit sends a group-less OffsetCommit (generation -1) of offset for topic-0 and returns
// the partition's error code, on a channel.
func sendOffsetCommit(ctx context.Context, cl *kgo.Client, groupID, topic string, offset int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group = groupID
		req.Generation = -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = 0
		rp.Offset = offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		done <- err
	}()
	return done
}

// TestOffsetCommitWaitsForSync: with the default flush policy an OffsetCommit is answered only
// after a sync of the log dir that began after the commit record was appended to
// __consumer_offsets, as a produce is; a failed sync fails the commit (NOT_COORDINATOR, Kafka's
// answer when the coordinator's log is unusable) instead of acknowledging it.
func TestOffsetCommitWaitsForSync(t *testing.T) {
	dir := t.TempDir()
	b, ffs := faultBroker(t, dir)
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	const groupID = "durable-group"
	op := b.parts.Get(metadata.ConsumerOffsetsTopic, group.OffsetsPartition(groupID, b.offsets.partitions))
	if op.AckSyncer() == nil {
		t.Fatal("__consumer_offsets does not sync before acknowledging under the default flush policy")
	}
	// A first commit finds the coordinator and warms the connection.
	if err := <-sendOffsetCommit(ctx, cl, groupID, "t", 1); err != nil {
		t.Fatal(err)
	}

	entered := make(chan int64, 8) // the offsets log end when a sync began
	release := make(chan error)
	ffs.SetInjector(func(o vfs.Op, path string) error {
		if o != vfs.OpSyncFS {
			return nil
		}
		entered <- op.LogEndOffset()
		return <-release
	})
	leoBefore := op.LogEndOffset()
	done := sendOffsetCommit(ctx, cl, groupID, "t", 2)
	select {
	case leo := <-entered:
		if leo <= leoBefore {
			t.Fatalf("the sync began before the commit record was appended (log end %d, was %d)", leo, leoBefore)
		}
	case err := <-done:
		t.Fatalf("OffsetCommit answered (%v) without a sync", err)
	case <-ctx.Done():
		t.Fatal("no sync for the OffsetCommit")
	}
	// The sync is held: the answer must not come. (A bounded look, not synchronisation: a broker
	// that answered before the sync would have answered by now.)
	select {
	case err := <-done:
		t.Fatalf("OffsetCommit answered (%v) while its sync was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	release <- nil
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("no OffsetCommit answer after the sync completed")
	}

	// A failed sync: the commit is not acknowledged (and the log dir goes offline). No retries:
	// kgo would retry NOT_COORDINATOR until its retry timeout.
	ffs.SetInjector(vfs.OnPrefix(dir, errors.New("EIO (injected)"), vfs.OpSyncFS))
	once := client(t, b, kgo.RequestRetries(0))
	if err := <-sendOffsetCommit(ctx, once, groupID, "t", 3); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("OffsetCommit after a failed sync: %v, want NOT_COORDINATOR", err)
	}
	ffs.SetInjector(nil)
}

// TestOffsetCommitExplicitFlushPolicy: with a flush policy set explicitly (Kafka's default here),
// OffsetCommit does not wait for a sync, as produce does not.
func TestOffsetCommitExplicitFlushPolicy(t *testing.T) {
	b := testBroker(t, t.TempDir(), kafkaFlushDefault...)
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	op := b.parts.Get(metadata.ConsumerOffsetsTopic, group.OffsetsPartition("g", b.offsets.partitions))
	if op.AckSyncer() != nil {
		t.Fatal("__consumer_offsets syncs before ack under log.flush.interval.messages=" + kafkaFlushDefault[1])
	}
	if err := <-sendOffsetCommit(ctx, cl, "g", "t", 1); err != nil {
		t.Fatal(err)
	}
}

// TestDescribeFlushDefault: DescribeConfigs shows Moldau's flush default as what it is, value 1
// from DEFAULT_CONFIG (Kafka shows 9223372036854775807 there), and, once a topic sets flush.ms
// alone, flush.messages as Kafka's never, which is then what applies.
func TestDescribeFlushDefault(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"flush.ms": kmsg.StringPtr("1000")}, "timed"); err != nil {
		t.Fatal(err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "plain", "timed")
	if err != nil {
		t.Fatal(err)
	}
	maxLong := strconv.FormatInt(math.MaxInt64, 10)
	want := map[string]map[string]struct {
		value  string
		source kmsg.ConfigSource
	}{
		"plain": {"flush.messages": {"1", kmsg.ConfigSourceDefaultConfig}, "flush.ms": {maxLong, kmsg.ConfigSourceDefaultConfig}},
		"timed": {"flush.messages": {maxLong, kmsg.ConfigSourceDefaultConfig}, "flush.ms": {"1000", kmsg.ConfigSourceDynamicTopicConfig}},
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatal(rc.Err)
		}
		for _, c := range rc.Configs {
			w, ok := want[rc.Name][c.Key]
			if !ok {
				continue
			}
			if c.Value == nil || *c.Value != w.value || c.Source != w.source {
				t.Errorf("%s %s = %v (%v), want %s (%v)", rc.Name, c.Key, c.MaybeValue(), c.Source, w.value, w.source)
			}
			delete(want[rc.Name], c.Key)
		}
	}
	for topic, left := range want {
		if len(left) > 0 {
			t.Errorf("%s: not described: %v", topic, left)
		}
	}
	if b.parts.Get("plain", 0).AckSyncer() == nil || b.parts.Get("timed", 0).AckSyncer() != nil {
		t.Error("the described policy is not the one applied")
	}
	brc, err := adm.DescribeBrokerConfigs(ctx, b.cfg.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rc := range brc {
		for _, c := range rc.Configs {
			if c.Key == "log.flush.interval.messages" {
				found = true
				if c.MaybeValue() != "1" || c.Source != kmsg.ConfigSourceDefaultConfig {
					t.Errorf("log.flush.interval.messages = %q (%v), want 1 (DEFAULT_CONFIG)", c.MaybeValue(), c.Source)
				}
			}
		}
	}
	if !found {
		t.Error("log.flush.interval.messages not described")
	}
}

// TestFlushPolicyAlteredAtRuntime: setting flush.messages on a topic with AlterConfigs gives it
// Kafka's meaning at once (no sync before ack); deleting the override brings the default back.
func TestFlushPolicyAlteredAtRuntime(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	waitSync := func(want bool) {
		t.Helper()
		for (b.parts.Get("t", 0).AckSyncer() != nil) != want {
			if ctx.Err() != nil {
				t.Fatalf("sync before ack never became %v", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitSync(true)
	alter := func(op kadm.IncrementalOp, value string) {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "flush.messages", Value: kmsg.StringPtr(value)}}, "t")
		if err == nil {
			_, err = rs.On("t", nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	alter(kadm.SetConfig, "1000")
	waitSync(false)
	alter(kadm.DeleteConfig, "")
	waitSync(true)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestCorruptHighWatermarkCheckpoint: a broker whose high-watermark checkpoint is garbage starts,
// says so at ERROR, serves every acknowledged record (a single replica commits its whole log)
// and rewrites the checkpoint at shutdown.
func TestCorruptHighWatermarkCheckpoint(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.DefaultProduceTopic("t"))
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	stopBroker(t, b)

	path := filepath.Join(dir, partition.CheckpointFile)
	if err := os.WriteFile(path, []byte("0\n2\nt 0 7\n"), 0o644); err != nil { // count says 2, one entry
		t.Fatal(err)
	}
	var logs syncBuffer
	b, err := Start(ctx, testConfig(t, dir), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "high-watermark checkpoint") {
		t.Errorf("no ERROR about the corrupt checkpoint in the log:\n%s", logs.String())
	}
	p := b.parts.Get("t", 0)
	if p.StartedFrom() != 0 || p.HighWatermark() != n {
		t.Errorf("started from %d, high watermark %d; want 0 (no usable checkpoint) and %d", p.StartedFrom(), p.HighWatermark(), n)
	}
	if got := consumeAll(t, b, "t", n); len(got) != n {
		t.Errorf("consumed %d records, want %d", len(got), n)
	}
	stopBroker(t, b)
	hws, err := partition.ReadHighWatermarks(vfs.Default, dir)
	if err != nil || hws[partition.DirName("t", 0)] != n {
		t.Fatalf("checkpoint after restart: %v, %v", hws, err)
	}
}
