package verify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/brokertest"
)

// TestRunAgainstOneBroker: with no faults against one in-process broker, everything acknowledged
// is read back once, in order, where it was acknowledged.
func TestRunAgainstOneBroker(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Options{
		Bootstrap:  []string{addr},
		Partitions: 3,
		Producers:  2,
		Rate:       400,
		Duration:   time.Second,
		Logf:       t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Moved != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Acknowledged < 100 || r.Acknowledged != r.Attempted || r.Read != r.Acknowledged {
		t.Errorf("attempted %d, acknowledged %d, read %d: want at least 100, all acknowledged and read", r.Attempted, r.Acknowledged, r.Read)
	}
	if r.Replication != 1 || r.MinInsync != 1 {
		t.Errorf("replication factor %d, min.insync.replicas %d on one broker; want 1 and 1", r.Replication, r.MinInsync)
	}

	// A second run into the same topic counts the first run's records as foreign, not as its own.
	r2, err := Run(ctx, Options{Bootstrap: []string{addr}, Topic: r.Topic, Rate: 200, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Partitions != 3 || r2.Replication != 1 {
		t.Errorf("second run reports %d partitions, replication factor %d; the topic has 3 and 1", r2.Partitions, r2.Replication)
	}
	if !r2.OK || r2.Foreign != r.Read || r2.Read != r2.Acknowledged {
		t.Errorf("second run: ok %v, foreign %d (want %d), read %d, acknowledged %d; problems %q", r2.OK, r2.Foreign, r.Read, r2.Read, r2.Acknowledged, r2.Problems)
	}
}

func TestRunRefusesFaultsWithoutNodes(t *testing.T) {
	_, err := Run(context.Background(), Options{Bootstrap: []string{"127.0.0.1:1"}, Faults: FaultPlan{Kinds: []string{FaultKill}}})
	if err == nil {
		t.Fatal("faults without a cluster of our own were accepted")
	}
}

// TestRunDuring: producing lasts until During has returned, even past Duration, and During's
// error fails the run.
func TestRunDuring(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const hold = 1500 * time.Millisecond
	r, err := Run(ctx, Options{
		Bootstrap: []string{addr},
		Rate:      200,
		Duration:  100 * time.Millisecond,
		During: func(context.Context) error {
			time.Sleep(hold) // the work During stands for; Run must wait for it
			return nil
		},
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	produceStopped := time.Duration(r.DurationMs) * time.Millisecond
	if !r.OK || produceStopped < hold {
		t.Fatalf("ok %v, produced for %s: want ok and at least %s (During's length); problems %q", r.OK, produceStopped, hold, r.Problems)
	}

	r, err = Run(ctx, Options{
		Bootstrap: []string{addr},
		Rate:      100,
		Duration:  100 * time.Millisecond,
		During:    func(context.Context) error { return errors.New("restart of node 2 failed") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "restart of node 2 failed") {
		t.Fatalf("ok %v, problems %q: want the run failed with During's error", r.OK, r.Problems)
	}
}
