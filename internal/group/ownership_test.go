package group

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionedStore is a PartitionStore in memory: records by __consumer_offsets partition. A
// partition in gate loads only once its channel is closed.
type partitionedStore struct {
	n    int32
	mu   sync.Mutex
	recs map[int32][]memoryRecord
	gate map[int32]chan struct{}
}

func newPartitionedStore(n int32) *partitionedStore {
	return &partitionedStore{n: n, recs: map[int32][]memoryRecord{}, gate: map[int32]chan struct{}{}}
}

func (s *partitionedStore) Append(group string, records []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := OffsetsPartition(group, s.n)
	for _, kv := range records {
		s.recs[p] = append(s.recs[p], memoryRecord{KV: kv, producerID: -1})
	}
	return nil
}

func (s *partitionedStore) AppendTxn(group string, pid int64, _ int16, _ any, records []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := OffsetsPartition(group, s.n)
	for _, kv := range records {
		s.recs[p] = append(s.recs[p], memoryRecord{KV: kv, transactional: true, producerID: pid})
	}
	return nil
}

// appendMarker writes a transaction marker of pid to partition p.
func (s *partitionedStore) appendMarker(p int32, pid int64, commit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := MarkerAbort
	if commit {
		m = MarkerCommit
	}
	s.recs[p] = append(s.recs[p], memoryRecord{transactional: true, producerID: pid, marker: m})
}

func (s *partitionedStore) Load(fn func(r StoredRecord) error) error {
	for p := range s.n {
		if err := s.LoadPartition(p, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *partitionedStore) LoadPartition(p int32, fn func(r StoredRecord) error) error {
	s.mu.Lock()
	gate := s.gate[p]
	recs := append([]memoryRecord(nil), s.recs[p]...)
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	for i, r := range recs {
		sr := StoredRecord{Partition: p, Offset: int64(i), Key: r.Key, Value: r.Value,
			Transactional: r.transactional, ProducerID: r.producerID, Marker: r.marker}
		if err := fn(sr); err != nil {
			return err
		}
	}
	return nil
}

// groupOn returns a group name whose __consumer_offsets partition is p.
// newPartitionedHarness is a coordinator in cluster mode over store's partitions, owning none
// of them yet (Elect).
func newPartitionedHarness(t *testing.T, store *partitionedStore) *harness {
	t.Helper()
	cfg := testConfig()
	cfg.OffsetsPartitions = store.n
	c := NewCoordinator(cfg, store, newFakeClock())
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, c: c}
}

func groupOn(t *testing.T, p, n int32) string {
	t.Helper()
	for i := range 10000 {
		name := "g" + string(rune('a'+i%26)) + time.Duration(i).String()
		if OffsetsPartition(name, n) == p {
			return name
		}
	}
	t.Fatalf("no group name on partition %d", p)
	return ""
}

// TestCoordinatorServesOnlyElectedPartitions: with OffsetsPartitions set, a group is served only
// once its partition was elected and loaded (COORDINATOR_LOAD_IN_PROGRESS meanwhile), its
// committed offsets come back from the store, other groups get NOT_COORDINATOR, and after Resign
// the group is gone from this coordinator (NOT_COORDINATOR) until it is elected again.
func TestCoordinatorServesOnlyElectedPartitions(t *testing.T) {
	const n = 4
	store := newPartitionedStore(n)
	mine, other := groupOn(t, 1, n), groupOn(t, 2, n)
	if err := store.Append(mine, []KV{commitKV(mine, "t", 0, 42)}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	store.gate[1] = gate

	h := newPartitionedHarness(t, store)
	c := h.c
	offsetOf := func(group string) (int16, int64) {
		resp := fetch(h, 7, group, "t", 0)
		if resp.ErrorCode != 0 {
			return resp.ErrorCode, -1
		}
		return 0, resp.Topics[0].Partitions[0].Offset
	}

	if code, _ := offsetOf(mine); code != kerr.NotCoordinator.Code {
		t.Fatalf("before election: code %d, want NOT_COORDINATOR", code)
	}
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	if code, _ := offsetOf(mine); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("while loading: code %d, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	close(gate)
	waitFor(t, "partition 1 loaded", func() bool { code, _ := offsetOf(mine); return code == 0 })
	if _, off := offsetOf(mine); off != 42 {
		t.Fatalf("loaded offset %d, want 42", off)
	}
	if code, _ := offsetOf(other); code != kerr.NotCoordinator.Code {
		t.Fatalf("group on an unowned partition: code %d, want NOT_COORDINATOR", code)
	}
	if code := commitCode(c.OffsetCommit(commitReq(other, "", -1, "t", 7))); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit on an unowned partition: code %d, want NOT_COORDINATOR", code)
	}

	c.Resign(1)
	if code, _ := offsetOf(mine); code != kerr.NotCoordinator.Code {
		t.Fatalf("after resign: code %d, want NOT_COORDINATOR", code)
	}
	if got := c.ListGroups(kmsg.NewPtrListGroupsRequest()).Groups; len(got) != 0 {
		t.Fatalf("groups listed after resign: %v", got)
	}
	// Elected again (the leadership came back): loaded again from the store.
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partition 1 loaded again", func() bool { code, off := offsetOf(mine); return code == 0 && off == 42 })
}
