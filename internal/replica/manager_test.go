package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
)

// images builds metadata images by applying records through a real FSM.
type images struct {
	t   testing.TB
	fsm *metadata.FSM
	idx uint64
}

func newImages(t testing.TB) *images { return &images{t: t, fsm: metadata.NewFSM()} }

func (b *images) apply(recs ...metadata.Record) *metadata.Image {
	b.t.Helper()
	data, err := metadata.EncodeBatch(recs)
	if err != nil {
		b.t.Fatal(err)
	}
	b.idx++
	if res := b.fsm.Apply(&raft.Log{Index: b.idx, Data: data}); res != nil {
		b.t.Fatalf("apply %v: %v", recs, res)
	}
	return b.fsm.Image()
}

var topicID = metadata.UUID{1, 2, 3}

func part(p, leader, epoch, pe int32, replicas, isr []int32) metadata.Record {
	return metadata.PartitionRecord{TopicID: topicID, Partition: p, Leader: leader, LeaderEpoch: epoch,
		PartitionEpoch: pe, Replicas: replicas, ISR: isr}
}

func settingsOf(t *metadata.Topic) (partition.Settings, error) {
	s := partition.Settings{MinInsyncReplicas: 1, MaxMessageBytes: 1 << 20}
	if t.Configs["min.insync.replicas"] == "2" {
		s.MinInsyncReplicas = 2
	}
	return s, nil
}

func manualManager(t *testing.T, node int32, st store, clock Clock) *Manager {
	m := newManager(Config{NodeID: node, Settings: settingsOf, Clock: clock, Logger: discardLogger(),
		FetchBackoff: testBackoff}, st, true)
	t.Cleanup(func() { m.Close() })
	return m
}

// fetching lists the partitions each fetcher follows, with the leader epoch.
func (m *Manager) fetching() map[int32][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32][]string{}
	for id, f := range m.fetchers {
		f.mu.Lock()
		for k, p := range f.parts {
			out[id] = append(out[id], k.topic+"-"+string(rune('0'+k.part))+"@"+string(rune('0'+p.leaderEpoch)))
		}
		f.mu.Unlock()
		slices.Sort(out[id])
	}
	return out
}

func wantLog(t *testing.T, rec *transitions, want ...string) {
	t.Helper()
	got := rec.take()
	if !slices.Equal(got, want) {
		t.Fatalf("transitions:\n got %q\nwant %q", got, want)
	}
}

func TestManagerRoleTransitions(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	m := manualManager(t, 2, st, newFakeClock())
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im1 := ims.apply(
		part(0, 1, 0, 0, []int32{1, 2, 3}, []int32{1, 2, 3}),
		part(1, 2, 0, 0, []int32{2, 3, 1}, []int32{2, 3, 1}),
		part(2, 3, 0, 0, []int32{3, 1}, []int32{3, 1}), // not hosted here
	)
	if err := m.Apply(nil, im1); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec,
		"t-0 open", "t-0 follower of 1 epoch=0 pe=0",
		"t-1 open", "t-1 leader epoch=0 pe=0 replicas=[2 3 1] isr=[2 3 1]")
	if got := m.fetching(); len(got) != 1 || !slices.Equal(got[1], []string{"t-0@0"}) {
		t.Fatalf("fetchers %v, want t-0 from 1", got)
	}

	// The same image again: nothing to do.
	if err := m.Apply(im1, im1); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec)

	// Broker 1 fails: this broker leads t-0 in epoch 1; t-1 shrinks its ISR.
	im2 := ims.apply(
		part(0, 2, 1, 1, []int32{1, 2, 3}, []int32{2, 3}),
		part(1, 2, 0, 1, []int32{2, 3, 1}, []int32{2, 3}),
	)
	if err := m.Apply(im1, im2); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 leader epoch=1 pe=1 replicas=[1 2 3] isr=[2 3]", "t-1 isr=[2 3] pe=1")
	if got := m.fetching(); len(got) != 0 {
		t.Fatalf("fetchers %v, want none (the idle one is stopped)", got)
	}

	// t-1 moves to broker 3; t-0's ISR grows back with the leader epoch unchanged.
	im3 := ims.apply(
		part(0, 2, 1, 2, []int32{1, 2, 3}, []int32{2, 3, 1}),
		part(1, 3, 1, 2, []int32{2, 3, 1}, []int32{2, 3}),
	)
	if err := m.Apply(im2, im3); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 isr=[2 3 1] pe=2", "t-1 follower of 3 epoch=1 pe=2")
	if got := m.fetching(); len(got) != 1 || !slices.Equal(got[3], []string{"t-1@1"}) {
		t.Fatalf("fetchers %v, want t-1 from 3", got)
	}

	// A new leader epoch of the same leader restarts the follower's fetch with it.
	im4 := ims.apply(part(1, 3, 2, 3, []int32{2, 3, 1}, []int32{2, 3}))
	if err := m.Apply(im3, im4); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-1 follower of 3 epoch=2 pe=3")
	if got := m.fetching(); !slices.Equal(got[3], []string{"t-1@2"}) {
		t.Fatalf("fetchers %v, want t-1 from 3 in epoch 2", got)
	}

	// No leader: a follower of nobody, fetching nothing.
	im5 := ims.apply(part(1, -1, 3, 4, []int32{2, 3, 1}, []int32{3}))
	if err := m.Apply(im4, im5); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-1 follower of -1 epoch=3 pe=4")
	if got := m.fetching(); len(got) != 0 {
		t.Fatalf("fetchers %v, want none", got)
	}

	// Topic config change reaches the partitions.
	two := "2"
	im6 := ims.apply(metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "t", Key: "min.insync.replicas", Value: &two})
	if err := m.Apply(im5, im6); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 settings", "t-1 settings")

	// The topic is deleted: its partitions are removed.
	im7 := ims.apply(metadata.RemoveTopicRecord{TopicID: topicID})
	if err := m.Apply(im6, im7); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "remove topic t")
	if m.hosted() != 0 {
		t.Fatalf("%d partitions still hosted", m.hosted())
	}
}

func (m *Manager) hosted() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.parts)
}

func TestManagerRetriesFailedOpen(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	st.failing[tp{"t", 0}] = errBoom
	m := manualManager(t, 1, st, newFakeClock())
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im := ims.apply(part(0, 1, 0, 0, []int32{1, 2}, []int32{1, 2}))
	if err := m.Apply(nil, im); !errors.Is(err, errBoom) {
		t.Fatalf("Apply = %v, want the open error", err)
	}
	wantLog(t, rec)
	delete(st.failing, tp{"t", 0})
	if err := m.Apply(im, im); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 open", "t-0 leader epoch=0 pe=0 replicas=[1 2] isr=[1 2]")
}

func TestManagerDeletesOrphans(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	st.onDisk = []tp{{"gone", 0}, {"t", 0}}
	m := manualManager(t, 1, st, newFakeClock())
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im := ims.apply(part(0, 1, 0, 0, []int32{1}, []int32{1}))
	if err := m.Apply(nil, im); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 open", "t-0 leader epoch=0 pe=0 replicas=[1] isr=[1]", "remove topic gone")
}

// A topic deleted and created again under its name between two applied images: the old
// partitions are removed before the new ones open.
func TestManagerRecreatedTopic(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	m := manualManager(t, 1, st, newFakeClock())
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im1 := ims.apply(part(0, 2, 0, 0, []int32{1, 2}, []int32{1, 2}))
	if err := m.Apply(nil, im1); err != nil {
		t.Fatal(err)
	}
	rec.take()
	other := metadata.UUID{9}
	ims.apply(metadata.RemoveTopicRecord{TopicID: topicID})
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: other})
	im2 := ims.apply(metadata.PartitionRecord{TopicID: other, Partition: 0, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}})
	if err := m.Apply(im1, im2); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "remove topic t", "t-0 open", "t-0 leader epoch=0 pe=0 replicas=[1 2] isr=[1 2]")
	if got := m.fetching(); len(got) != 0 {
		t.Fatalf("fetchers %v, want none", got)
	}
}

func TestManagerISRCheck(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	clock := newFakeClock()
	var mu sync.Mutex
	var sent [][]ISRUpdate
	var fail error
	m := newManager(Config{NodeID: 1, Settings: settingsOf, Clock: clock, Logger: discardLogger(), FetchBackoff: testBackoff,
		BrokerEpoch: func() int64 { return 11 },
		AlterPartition: func(_ context.Context, items []ISRUpdate) error {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, items)
			return fail
		},
	}, st, true)
	defer m.Close()
	calls := func() int { mu.Lock(); defer mu.Unlock(); return len(sent) }
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im1 := ims.apply(part(0, 1, 4, 7, []int32{1, 2, 3}, []int32{1, 2, 3}), part(1, 2, 0, 0, []int32{1, 2}, []int32{1, 2}))
	if err := m.Apply(nil, im1); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.checkISR(ctx)
	if calls() != 0 {
		t.Fatalf("AlterPartition sent with no ISR change")
	}
	st.get("t", 0).propose = []int32{1, 2}
	st.get("t", 1).propose = []int32{2} // a follower here: never asked
	m.checkISR(ctx)
	want := ISRUpdate{Topic: "t", TopicID: topicID, Partition: 0, LeaderEpoch: 4, PartitionEpoch: 7, NewISR: []int32{1, 2},
		NewISRBrokerEpochs: []int64{11, 22}}
	if calls() != 1 || len(sent[0]) != 1 || !equalUpdate(sent[0][0], want) {
		t.Fatalf("AlterPartition calls %+v, want one with %+v", sent, want)
	}
	// In flight: not sent again, even though the partition would propose again.
	st.get("t", 0).cancelISRChange()
	m.checkISR(ctx)
	if calls() != 1 {
		t.Fatalf("second AlterPartition while one is in flight")
	}
	// The committed change arrives: the partition takes it and may ask again.
	im2 := ims.apply(part(0, 1, 4, 8, []int32{1, 2, 3}, []int32{1, 2}))
	if err := m.Apply(im1, im2); err != nil {
		t.Fatal(err)
	}
	st.get("t", 0).propose = []int32{1}
	mu.Lock()
	fail = errors.New("controller unavailable")
	mu.Unlock()
	m.checkISR(ctx)
	if calls() != 2 || sent[1][0].PartitionEpoch != 8 {
		t.Fatalf("AlterPartition after the image: %+v", sent)
	}
	// A failed call may have been committed: the change stays pending on the partition and the
	// same update is sent again after the backoff (not a new proposal).
	if st.get("t", 0).cancelled != 1 {
		t.Fatalf("a change whose call failed was cancelled on the partition (cancelled %d)", st.get("t", 0).cancelled)
	}
	m.checkISR(ctx)
	if calls() != 2 {
		t.Fatalf("sent again before the backoff")
	}
	clock.Advance(testBackoff)
	m.checkISR(ctx)
	if calls() != 3 || !equalUpdate(sent[2][0], sent[1][0]) || st.get("t", 0).cancelled != 1 {
		t.Fatalf("after the backoff: calls %+v (want the same update again), cancelled %d", sent, st.get("t", 0).cancelled)
	}
	// Accepted but its image never comes: after a few check intervals the same update again,
	// still pending on the partition.
	mu.Lock()
	fail = nil
	mu.Unlock()
	clock.Advance(testBackoff)
	m.checkISR(ctx)
	if calls() != 4 || !equalUpdate(sent[3][0], sent[1][0]) {
		t.Fatalf("resend after the backoff: %+v", sent)
	}
	m.checkISR(ctx)
	if calls() != 4 {
		t.Fatalf("sent again while the accepted change awaits its image")
	}
	clock.Advance(4 * m.isrCheckInterval())
	m.checkISR(ctx)
	if calls() != 5 || !equalUpdate(sent[4][0], sent[1][0]) || st.get("t", 0).cancelled != 1 {
		t.Fatalf("no image after the expiry: calls %+v, cancelled %d", sent, st.get("t", 0).cancelled)
	}
	// The controller says it did not apply it: dropped on the partition, and a new proposal
	// only after the backoff.
	mu.Lock()
	fail = fmt.Errorf("replica 3: %w", kerr.IneligibleReplica)
	mu.Unlock()
	clock.Advance(4 * m.isrCheckInterval())
	m.checkISR(ctx)
	if calls() != 6 || st.get("t", 0).cancelled != 2 {
		t.Fatalf("refused change: calls %d, cancelled %d, want 6, 2", calls(), st.get("t", 0).cancelled)
	}
	m.checkISR(ctx)
	if calls() != 6 {
		t.Fatalf("proposed again before the backoff")
	}
	clock.Advance(testBackoff)
	m.checkISR(ctx)
	if calls() != 7 {
		t.Fatalf("not proposed again after the backoff")
	}
}

func equalUpdate(a, b ISRUpdate) bool {
	return a.Topic == b.Topic && a.TopicID == b.TopicID && a.Partition == b.Partition && a.LeaderEpoch == b.LeaderEpoch &&
		a.PartitionEpoch == b.PartitionEpoch && slices.Equal(a.NewISR, b.NewISR) && slices.Equal(a.NewISRBrokerEpochs, b.NewISRBrokerEpochs)
}

func TestManagerEligibleBrokers(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	m := newManager(Config{NodeID: 1, Settings: settingsOf, Logger: discardLogger(),
		EligibleBrokers: func(*metadata.Image) map[int32]int64 { return map[int32]int64{1: 10, 2: 20} }}, st, true)
	defer m.Close()
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	if err := m.Apply(nil, ims.apply(part(0, 1, 0, 0, []int32{1, 2}, []int32{1}))); err != nil {
		t.Fatal(err)
	}
	if e := st.get("t", 0).eligible; e[2] != 20 || len(e) != 2 {
		t.Fatalf("eligible brokers %v", e)
	}
}

// recordingLeader answers fetches with nothing new, after recording them.
type recordingLeader struct {
	addr string
	reqs chan *kmsg.FetchRequest
}

func (c *recordingLeader) Fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	select {
	case c.reqs <- req:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (c *recordingLeader) OffsetForLeaderEpoch(context.Context, *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	return nil, errors.New("unexpected")
}

func (c *recordingLeader) Close() {}

// With its goroutines, the manager's fetcher dials the leader's inter-broker address and fetches
// the followed partitions with this broker's id and epoch; Close stops it.
func TestManagerFetcherDialsLeader(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	reqs := make(chan *kmsg.FetchRequest, 1)
	var dialled []string
	var mu sync.Mutex
	m := newManager(Config{NodeID: 2, Settings: settingsOf, Logger: discardLogger(),
		BrokerEpoch: func() int64 { return 42 },
		BrokerAddr: func(id int32) (string, bool) {
			return map[int32]string{1: "127.0.0.1:1111", 3: "127.0.0.1:3333"}[id], id == 1 || id == 3
		},
		Dial: func(addr string) (LeaderClient, error) {
			mu.Lock()
			dialled = append(dialled, addr)
			mu.Unlock()
			return &recordingLeader{addr: addr, reqs: reqs}, nil
		},
	}, st, false)
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	if err := m.Apply(nil, ims.apply(part(0, 3, 5, 0, []int32{1, 2, 3}, []int32{1, 2, 3}))); err != nil {
		t.Fatal(err)
	}
	var req *kmsg.FetchRequest
	select {
	case req = <-reqs:
	case <-time.After(10 * time.Second):
		t.Fatal("no fetch sent")
	}
	if req.ReplicaState.ID != 2 || req.ReplicaState.Epoch != 42 || len(req.Topics) != 1 ||
		req.Topics[0].TopicID != topicID || req.Topics[0].Partitions[0].CurrentLeaderEpoch != 5 {
		t.Fatalf("fetch %+v", req)
	}
	mu.Lock()
	if !slices.Equal(dialled, []string{"127.0.0.1:3333"}) {
		t.Fatalf("dialled %v", dialled)
	}
	mu.Unlock()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(nil, ims.fsm.Image()); err == nil {
		t.Fatal("Apply after Close succeeded")
	}
}

// A topic whose settings cannot be computed keeps its partitions and their roles as they were.
func TestManagerSettingsErrorKeepsPartitions(t *testing.T) {
	rec := &transitions{}
	st := newFakeStore(rec)
	fail := false
	m := newManager(Config{NodeID: 2, Logger: discardLogger(), Settings: func(t *metadata.Topic) (partition.Settings, error) {
		if fail {
			return partition.Settings{}, errBoom
		}
		return settingsOf(t)
	}}, st, true)
	defer m.Close()
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im1 := ims.apply(part(0, 1, 0, 0, []int32{1, 2}, []int32{1, 2}))
	if err := m.Apply(nil, im1); err != nil {
		t.Fatal(err)
	}
	rec.take()
	fail = true
	im2 := ims.apply(part(0, 1, 1, 1, []int32{1, 2}, []int32{1, 2}))
	if err := m.Apply(im1, im2); !errors.Is(err, errBoom) {
		t.Fatalf("Apply = %v, want the settings error", err)
	}
	wantLog(t, rec)
	if got := m.fetching(); !slices.Equal(got[1], []string{"t-0@0"}) {
		t.Fatalf("fetchers %v, want t-0 still fetched from 1", got)
	}
	fail = false
	if err := m.Apply(im2, im2); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec, "t-0 follower of 1 epoch=1 pe=1")
}

func TestManagerReassignment(t *testing.T) {
	rec1, rec4 := &transitions{}, &transitions{}
	st1, st4 := newFakeStore(rec1), newFakeStore(rec4)
	m1 := manualManager(t, 1, st1, newFakeClock())
	m4 := manualManager(t, 4, st4, newFakeClock())
	// Broker 4 still has t-0 on disk from an earlier assignment: not a replica now, it goes.
	st4.onDisk = []tp{{"t", 0}}
	ims := newImages(t)
	ims.apply(metadata.TopicRecord{Name: "t", TopicID: topicID})
	im1 := ims.apply(part(0, 1, 0, 0, []int32{1, 2, 3}, []int32{1, 2, 3}))
	for _, m := range []*Manager{m1, m4} {
		if err := m.Apply(nil, im1); err != nil {
			t.Fatal(err)
		}
	}
	wantLog(t, rec1, "t-0 open", "t-0 leader epoch=0 pe=0 replicas=[1 2 3] isr=[1 2 3]")
	wantLog(t, rec4, "remove t-0")

	// The move {1,2,3} -> {2,3,4} starts: the leader tracks 4 as a follower (same epoch), and
	// 4 opens the partition and follows 1.
	im2 := ims.apply(&metadata.PartitionChangeRecord{TopicID: topicID, Partition: 0, Leader: 1, ISR: []int32{1, 2, 3},
		LeaderEpoch: 0, PartitionEpoch: 1, Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}})
	for _, m := range []*Manager{m1, m4} {
		if err := m.Apply(im1, im2); err != nil {
			t.Fatal(err)
		}
	}
	wantLog(t, rec1, "t-0 leader epoch=0 pe=1 replicas=[2 3 4 1] isr=[1 2 3]")
	wantLog(t, rec4, "t-0 open", "t-0 follower of 1 epoch=0 pe=1")
	if got := m4.fetching(); !slices.Equal(got[1], []string{"t-0@0"}) {
		t.Fatalf("broker 4 fetchers %v, want t-0 from 1", got)
	}

	// Completion: 2 leads in epoch 1; 1 steps down and deletes its replica; 4 follows 2.
	im3 := ims.apply(&metadata.PartitionChangeRecord{TopicID: topicID, Partition: 0, Leader: 2, ISR: []int32{2, 3, 4},
		LeaderEpoch: 1, PartitionEpoch: 2, Replicas: []int32{2, 3, 4}, AddingReplicas: []int32{}, RemovingReplicas: []int32{}})
	for _, m := range []*Manager{m1, m4} {
		if err := m.Apply(im2, im3); err != nil {
			t.Fatal(err)
		}
	}
	wantLog(t, rec1, "t-0 follower of 2 epoch=1 pe=2", "remove t-0")
	wantLog(t, rec4, "t-0 follower of 2 epoch=1 pe=2")
	if m1.hosted() != 0 || st1.get("t", 0) != nil {
		t.Fatalf("broker 1 still hosts t-0")
	}
	if got := m4.fetching(); len(got) != 1 || !slices.Equal(got[2], []string{"t-0@1"}) {
		t.Fatalf("broker 4 fetchers %v, want t-0 from 2", got)
	}
	// Applying the same image again does nothing more.
	if err := m1.Apply(im3, im3); err != nil {
		t.Fatal(err)
	}
	wantLog(t, rec1)
}
