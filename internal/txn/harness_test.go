package txn

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is a manual clock: AfterFunc callbacks run in Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// Advance moves the clock and runs the due timers, in time order, in the caller's goroutine.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	for {
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		if len(c.timers) == 0 || c.timers[0].at.After(c.now) {
			break
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		if t.stopped {
			continue
		}
		t.stopped = true
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// memStore is a partitioned in-memory Store. check, when set, sees every record before it is
// appended (the invariants) and can fail the append.
type memStore struct {
	mu    sync.Mutex
	parts map[int32][]StoredRecord
	fail  error
	check func(p int32, id string, m *meta)
}

func newMemStore() *memStore { return &memStore{parts: map[int32][]StoredRecord{}} }

func (s *memStore) Append(p int32, key, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.check != nil {
		id, err := decodeKey(key)
		if err != nil {
			panic(err)
		}
		m, err := decodeValue(value)
		if err != nil {
			panic(err)
		}
		s.check(p, id, m)
	}
	s.parts[p] = append(s.parts[p], StoredRecord{Offset: int64(len(s.parts[p])), Key: append([]byte(nil), key...), Value: value})
	return nil
}

func (s *memStore) LoadPartition(p int32, fn func(StoredRecord) error) error {
	s.mu.Lock()
	recs := append([]StoredRecord(nil), s.parts[p]...)
	s.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) setFail(err error) { s.mu.Lock(); s.fail = err; s.mu.Unlock() }

// latest is the last stored state of every id (tombstones remove).
func (s *memStore) latest() map[string]*meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*meta{}
	for _, recs := range s.parts {
		for _, r := range recs {
			id, _ := decodeKey(r.Key)
			m, _ := decodeValue(r.Value)
			if m == nil {
				delete(out, id)
			} else {
				out[id] = m
			}
		}
	}
	return out
}

// fakeMarkers is the marker network: each WriteMarkers call waits until the test delivers,
// fences or drops it (drop: the sender's retry keeps it pending, so it is only delayed).
type fakeMarkers struct {
	mu        sync.Mutex
	pending   []*markerCall
	delivered map[markerKey]bool // (pid, epoch, commit, partition) written to the leader
	changed   chan struct{}      // signalled on every new call
}

type markerKey struct {
	pid    int64
	epoch  int16
	commit bool
	tp     TopicPartition
}

type markerCall struct {
	m    Markers
	done chan error
}

func newFakeMarkers() *fakeMarkers {
	return &fakeMarkers{delivered: map[markerKey]bool{}, changed: make(chan struct{}, 1)}
}

func (f *fakeMarkers) WriteMarkers(ctx context.Context, m Markers) error {
	call := &markerCall{m: m, done: make(chan error, 1)}
	f.mu.Lock()
	f.pending = append(f.pending, call)
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	select {
	case err := <-call.done:
		return err
	case <-ctx.Done():
		f.mu.Lock()
		for i, c := range f.pending {
			if c == call {
				f.pending = append(f.pending[:i], f.pending[i+1:]...)
				break
			}
		}
		f.mu.Unlock()
		return ctx.Err()
	}
}

// resolve answers pending call i: deliver writes every marker (a partial delivery first writes
// only some, as a send that reached some leaders before a leader change), fence refuses it.
func (f *fakeMarkers) resolve(i int, deliver bool, partial int) {
	f.mu.Lock()
	call := f.pending[i]
	for j, tp := range call.m.Partitions {
		if deliver || j < partial {
			f.delivered[markerKey{call.m.ProducerID, call.m.ProducerEpoch, call.m.Commit, tp}] = true
		}
	}
	if !deliver {
		f.mu.Unlock()
		return // partial: still pending (the sender retries the rest)
	}
	f.pending = append(f.pending[:i], f.pending[i+1:]...)
	f.mu.Unlock()
	call.done <- nil
}

func (f *fakeMarkers) numPending() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.pending) }

func (f *fakeMarkers) allDelivered(m *meta) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tp := range m.Partitions {
		if !f.delivered[markerKey{m.ProducerID, m.ProducerEpoch, m.State == PrepareCommit, tp}] {
			return false
		}
	}
	return true
}

// waitPending waits until the marker network holds n calls.
func (f *fakeMarkers) waitPending(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for f.numPending() != n {
		select {
		case <-f.changed:
		case <-deadline:
			t.Fatalf("marker network: %d pending calls, want %d", f.numPending(), n)
		case <-time.After(time.Millisecond):
		}
	}
}

type seqPIDs struct {
	mu   sync.Mutex
	next int64
}

func (p *seqPIDs) NextProducerID(context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	return 1000 + p.next, nil
}

// rig is one coordinator over the fakes.
type rig struct {
	t       testing.TB
	clock   *fakeClock
	store   *memStore
	markers *fakeMarkers
	c       *Coordinator
	cfg     Config
}

func newRig(t testing.TB, cfg Config) *rig {
	r := &rig{t: t, clock: newFakeClock(), store: newMemStore(), markers: newFakeMarkers(), cfg: cfg}
	if r.cfg.Partitions == 0 {
		r.cfg.Partitions = 4
	}
	r.c = New(r.cfg, r.store, r.markers, &seqPIDs{}, r.clock)
	t.Cleanup(func() { r.c.Close() })
	for p := int32(0); p < r.cfg.Partitions; p++ {
		r.c.Elect(p, 0)
	}
	r.waitLoaded()
	return r
}

func (r *rig) waitLoaded() {
	r.t.Helper()
	r.c.mu.Lock()
	var chans []chan struct{}
	for _, o := range r.c.mu.owned {
		chans = append(chans, o.loaded)
	}
	r.c.mu.Unlock()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			r.t.Fatal("partition load did not finish")
		}
	}
}

// failover resigns every partition and elects it again one coordinator epoch later, as a new
// leader of __transaction_state would, on a fresh coordinator over the same store.
func (r *rig) failover(epoch int32) {
	r.c.Close()
	r.c = New(r.cfg, r.store, r.markers, &seqPIDs{next: 500_000 + int64(epoch)*1000}, r.clock)
	for p := int32(0); p < r.cfg.Partitions; p++ {
		r.c.Elect(p, epoch)
	}
	r.waitLoaded()
}

func (r *rig) init(id string, v int16, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = v, &id, 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return r.c.InitProducerID(context.Background(), req)
}

func (r *rig) add(id string, pid int64, epoch int16, tps ...TopicPartition) map[TopicPartition]int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 3, id, pid, epoch
	for _, tp := range tps {
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
		req.Topics = append(req.Topics, t)
	}
	out := map[TopicPartition]int16{}
	for _, t := range r.c.AddPartitionsToTxn(req).Topics {
		for _, p := range t.Partitions {
			out[TopicPartition{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	return out
}

func (r *rig) addV4(id string, pid int64, epoch int16, verifyOnly bool, v int16, tps ...TopicPartition) map[TopicPartition]int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = v
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, pid, epoch, verifyOnly
	for _, tp := range tps {
		t := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
		tx.Topics = append(tx.Topics, t)
	}
	req.Transactions = append(req.Transactions, tx)
	out := map[TopicPartition]int16{}
	resp := r.c.AddPartitionsToTxn(req)
	if len(resp.Transactions) != 1 {
		r.t.Fatalf("AddPartitionsToTxn v%d: %d transactions answered, want 1", v, len(resp.Transactions))
	}
	for _, t := range resp.Transactions[0].Topics {
		for _, p := range t.Partitions {
			out[TopicPartition{t.Topic, p.Partition}] = p.ErrorCode
		}
	}
	return out
}

func (r *rig) end(id string, v int16, pid int64, epoch int16, commit bool) *kmsg.EndTxnResponse {
	req := kmsg.NewPtrEndTxnRequest()
	req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = v, id, pid, epoch, commit
	return r.c.EndTxn(req)
}

// state is the coordinator's in-memory state of id (nil: unknown).
func (r *rig) state(id string) *meta {
	e, code := r.c.lockEntry(id, false)
	if code != 0 || e == nil {
		return nil
	}
	defer e.mu.Unlock()
	if e.m == nil {
		return nil
	}
	return e.m.clone()
}

// waitState waits for id to reach st.
func (r *rig) waitState(id string, st State) *meta {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := r.state(id)
		if m != nil && m.State == st {
			return m
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: state %v, want %v", id, m, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func tp(t string, p int32) TopicPartition { return TopicPartition{t, p} }

func (m *meta) String() string {
	if m == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%v pid=%d epoch=%d parts=%v", m.State, m.ProducerID, m.ProducerEpoch, m.Partitions)
}
