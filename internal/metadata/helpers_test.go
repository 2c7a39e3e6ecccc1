package metadata

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// directCommitter applies batches straight to the FSM, without raft (tests, tools).
type directCommitter struct {
	fsm    *FSM
	nodeID int32
	index  uint64
}

func (d *directCommitter) commit(_ context.Context, data []byte) (any, error) {
	d.index++
	return d.fsm.Apply(&raft.Log{Index: d.index, Type: raft.LogCommand, Data: data}), nil
}

func (d *directCommitter) leader() (int32, bool) { return d.nodeID, true }
func (d *directCommitter) close() error          { return nil }

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// registration is a BrokerRegistration of node id of this build (its feature levels) with one
// PLAINTEXT endpoint. A registration of an older build has nil Features.
func registration(c *Controller, id int32, rack string) BrokerRegistration {
	return BrokerRegistration{
		NodeID:        id,
		ClusterID:     c.Image().ClusterID(),
		IncarnationID: RandomUUID(),
		Endpoints:     []Endpoint{{Name: "PLAINTEXT", Host: "localhost", Port: 9090 + id}},
		Rack:          rack,
		Features:      SupportedFeatures(),
	}
}

// activate registers a new incarnation of broker id and unfences it with a caught-up
// heartbeat; it returns the broker epoch.
func activate(t testing.TB, c *Controller, id int32, rack string) int64 {
	t.Helper()
	return activateRegistration(t, c, registration(c, id, rack))
}

// activateRegistration registers r and unfences it with a caught-up heartbeat; it returns the
// broker epoch.
func activateRegistration(t testing.TB, c *Controller, r BrokerRegistration) int64 {
	t.Helper()
	ctx := context.Background()
	id := r.NodeID
	epoch, err := c.RegisterBroker(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.BrokerHeartbeat(ctx, Heartbeat{NodeID: id, Epoch: epoch, MetadataOffset: c.Image().Index()})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsFenced || !res.IsCaughtUp {
		t.Fatalf("broker %d not unfenced: %+v", id, res)
	}
	return epoch
}
