package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupCommitMetrics: under fsync-before-ack (the default), every acks=all produce request
// waits for one group-commit sync of its log dir: after sequential produces each sync served one
// request; after concurrent ones the syncs served exactly as many requests as were sent (the
// batch sizes sum to them), in at most as many syncs.
func TestGroupCommitMetrics(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, nil, "gc"); err != nil {
		t.Fatal(err)
	}
	read := func() (syncs, served uint64, seconds float64) {
		f := scrape(t, b)
		h := f.matching("moldau_log_group_commit_batch_size", map[string]string{"log_dir": dir})
		d := f.matching("moldau_log_fsync_duration_seconds", map[string]string{"log_dir": dir})
		if len(h) == 0 && len(d) == 0 { // no sync yet: the series appear with the first
			return 0, 0, 0
		}
		if len(h) != 1 || len(d) != 1 {
			t.Fatalf("log dir %s: %d batch and %d duration series, want 1 each", dir, len(h), len(d))
		}
		if d[0].GetHistogram().GetSampleCount() != h[0].GetHistogram().GetSampleCount() {
			t.Fatalf("%d syncs timed, %d batches", d[0].GetHistogram().GetSampleCount(), h[0].GetHistogram().GetSampleCount())
		}
		return h[0].GetHistogram().GetSampleCount(), uint64(h[0].GetHistogram().GetSampleSum()), d[0].GetHistogram().GetSampleSum()
	}
	s0, n0, _ := read()
	cl := client(t, b, kgo.DefaultProduceTopic("gc"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const sequential = 5
	for range sequential {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s1, n1, secs := read()
	if s1-s0 != sequential || n1-n0 != sequential {
		t.Errorf("%d sequential produces: %d syncs serving %d, want %d serving %d", sequential, s1-s0, n1-n0, sequential, sequential)
	}
	if secs <= 0 {
		t.Errorf("fsync seconds sum %v", secs)
	}
	// Concurrent producers on their own connections: one produce request each.
	const concurrent = 16
	var wg sync.WaitGroup
	for range concurrent {
		pc := client(t, b, kgo.DefaultProduceTopic("gc"), kgo.RequiredAcks(kgo.AllISRAcks()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pc.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s2, n2, _ := read()
	if n2-n1 != concurrent || s2-s1 < 1 || s2-s1 > concurrent {
		t.Errorf("%d concurrent produces: %d syncs serving %d, want 1..%d serving %d", concurrent, s2-s1, n2-n1, concurrent, concurrent)
	}
	t.Logf("%d concurrent produces took %d syncs", concurrent, s2-s1)
}
