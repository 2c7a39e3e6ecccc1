package replica

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const testBackoff = time.Second

func testFetcher(clock Clock) *fetcher {
	return newFetcher(fetcherConfig{nodeID: 2, leader: 1, brokerEpoch: func() int64 { return 7 },
		addr:  func(int32) (string, bool) { return "leader:9092", true },
		clock: clock, logger: discardLogger(), waitMax: DefaultFetchWaitMax, backoff: testBackoff,
		maxBytes: DefaultFetchMaxBytes, respMax: DefaultFetchResponseMaxBytes})
}

var key0 = tp{"t", 0}

// fetchResp answers one partition of topic t.
func fetchResp(part int32, code int16, hw int64, records []byte, div *kmsg.FetchResponseTopicPartitionDivergingEpoch) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "t"
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition, rp.ErrorCode, rp.HighWatermark, rp.RecordBatches = part, code, hw, records
	if div != nil {
		rp.DivergingEpoch = *div
	}
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

func onlyPartition(t *testing.T, req *kmsg.FetchRequest) kmsg.FetchRequestTopicPartition {
	t.Helper()
	if req == nil || len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 {
		t.Fatalf("want a fetch of one partition, got %+v", req)
	}
	return req.Topics[0].Partitions[0]
}

func TestBuildFetchFields(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	l := newFakeLog(0, 0, 3)
	l.start = 0
	f.add(key0, [16]byte{9}, l, 5)
	req := f.buildFetch(clock.Now())
	p := onlyPartition(t, req)
	if req.ReplicaState.ID != 2 || req.ReplicaState.Epoch != 7 || req.ReplicaID != 2 {
		t.Errorf("replica state %+v, replica id %d; want id 2 epoch 7", req.ReplicaState, req.ReplicaID)
	}
	if req.MaxWaitMillis != 500 || req.MinBytes != 1 || req.SessionEpoch != -1 {
		t.Errorf("max wait %d min bytes %d session epoch %d", req.MaxWaitMillis, req.MinBytes, req.SessionEpoch)
	}
	if req.Topics[0].TopicID != [16]byte{9} || req.Topics[0].Topic != "t" {
		t.Errorf("topic %q id %v", req.Topics[0].Topic, req.Topics[0].TopicID)
	}
	if p.FetchOffset != 3 || p.LastFetchedEpoch != 3 || p.CurrentLeaderEpoch != 5 || p.LogStartOffset != 0 {
		t.Errorf("partition %+v; want offset 3, last fetched epoch 3, current leader epoch 5", p)
	}
}

func TestTruncationOffset(t *testing.T) {
	for _, c := range []struct {
		name        string
		epochs      []int32
		hw          int64
		leaderEpoch int32
		leaderEnd   int64
		want        int64
		done        bool
	}{
		{"same epoch, leader ends earlier", []int32{0, 0, 1, 1, 1}, 2, 1, 3, 3, true},
		{"same epoch, leader ends later", []int32{0, 0, 1}, 0, 1, 10, 3, true},
		{"leader's epoch ended earlier locally", []int32{0, 0, 1, 1}, 0, 0, 5, 2, true},
		{"KIP-279: epoch unknown here", []int32{0, 0, 2, 2}, 0, 1, 4, 2, false},
		{"leader epoch undefined", []int32{0, 0, 0}, 0, -1, 1, 1, true},
		{"no end offset: the high watermark", []int32{0, 0, 0, 0}, 2, 3, -1, 2, true},
		{"epoch below every local one", []int32{4, 4, 5}, 0, 2, 1, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newFakeLog(c.epochs...)
			l.hw = c.hw
			got, done := truncationOffset(l, c.leaderEpoch, c.leaderEnd)
			if got != c.want || done != c.done {
				t.Errorf("truncationOffset = %d, %v; want %d, %v", got, done, c.want, c.done)
			}
		})
	}
}

func TestFetchAppendsAndTakesHighWatermark(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	l := newFakeLog()
	f.add(key0, [16]byte{}, l, 1)
	req := f.buildFetch(clock.Now())
	if n := f.applyFetch(req, fetchResp(0, 0, 2, []byte{1, 1, 1}, nil), clock.Now()); n != 3 {
		t.Fatalf("applied %d bytes, want 3", n)
	}
	if got := l.epochsCopy(); !slices.Equal(got, []int32{1, 1, 1}) || l.HighWatermark() != 2 {
		t.Fatalf("log %v hw %d; want [1 1 1] hw 2", got, l.HighWatermark())
	}
	if p := onlyPartition(t, f.buildFetch(clock.Now())); p.FetchOffset != 3 || p.LastFetchedEpoch != 1 {
		t.Fatalf("next fetch %+v; want offset 3 epoch 1", p)
	}
	// A stale answer (the request was built before the log moved) is dropped.
	if n := f.applyFetch(req, fetchResp(0, 0, 3, []byte{1}, nil), clock.Now()); n != 0 || l.LogEndOffset() != 3 {
		t.Fatalf("stale response applied: %d bytes, log end %d", n, l.LogEndOffset())
	}
	// As is one for a partition re-added with a newer leader epoch.
	req = f.buildFetch(clock.Now())
	f.add(key0, [16]byte{}, l, 2)
	if n := f.applyFetch(req, fetchResp(0, 0, 3, []byte{1}, nil), clock.Now()); n != 0 {
		t.Fatalf("response to an older epoch applied")
	}
}

// The follower's log start follows the leader's, up to its own high watermark.
func TestFetchMovesLogStart(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	l := newFakeLog(0, 0, 0, 0)
	l.hw = 1
	f.add(key0, [16]byte{}, l, 0)
	resp := fetchResp(0, 0, 3, nil, nil)
	resp.Topics[0].Partitions[0].LogStartOffset = 4
	f.applyFetch(f.buildFetch(clock.Now()), resp, clock.Now())
	if l.LogStartOffset() != 3 || l.HighWatermark() != 3 {
		t.Fatalf("log start %d hw %d, want both 3 (the follower's high watermark)", l.LogStartOffset(), l.HighWatermark())
	}
}

func TestFetchDivergingEpochTruncates(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	// Offsets 0..4: epochs 0 0 1 1 1; the leader's epoch 1 ended at 3.
	l := newFakeLog(0, 0, 1, 1, 1)
	l.hw = 2
	f.add(key0, [16]byte{}, l, 2)
	req := f.buildFetch(clock.Now())
	div := &kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: 1, EndOffset: 3}
	f.applyFetch(req, fetchResp(0, 0, 3, nil, div), clock.Now())
	if got := l.epochsCopy(); !slices.Equal(got, []int32{0, 0, 1}) {
		t.Fatalf("log after truncation %v, want [0 0 1]", got)
	}
	if p := onlyPartition(t, f.buildFetch(clock.Now())); p.FetchOffset != 3 || p.LastFetchedEpoch != 1 {
		t.Fatalf("fetch after truncation %+v", p)
	}
}

// A replica that became leader of epoch 2 and wrote nothing, now following the leader of epoch
// 3 (which never had epoch 2): the leader's answer ends at the follower's log end, and the
// truncation to it must still reach the log, to drop the empty epoch from its cache; otherwise
// every next fetch names epoch 2 again and the follower never moves.
func TestFetchDivergingAtLogEndDropsEmptyEpoch(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	leader := []int32{0, 0, 1, 3}
	l := newFakeLog(0, 0, 1)
	l.tailEpoch = 2
	f.add(key0, [16]byte{}, l, 3)
	for round := 0; round < 3; round++ {
		req := f.buildFetch(clock.Now())
		f.applyFetch(req, leaderAnswer(leader, onlyPartition(t, req)), clock.Now())
	}
	if got := l.epochsCopy(); !slices.Equal(got, leader) || !slices.Equal(l.truncs, []int64{3}) {
		t.Fatalf("follower log %v truncations %v; want the leader's %v after one truncation to 3", got, l.truncs, leader)
	}
}

// KIP-279: the follower does not have the epoch the leader answers; it truncates to the end of
// its largest smaller epoch and the next fetch, with that epoch, settles it.
func TestFetchDivergingUnknownEpochAsksAgain(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	leader := []int32{0, 0, 1, 1, 3}
	l := newFakeLog(0, 0, 2, 2)
	f.add(key0, [16]byte{}, l, 3)
	for round := 0; round < 4; round++ {
		req := f.buildFetch(clock.Now())
		p := onlyPartition(t, req)
		resp := leaderAnswer(leader, p)
		f.applyFetch(req, resp, clock.Now())
	}
	if got := l.epochsCopy(); !slices.Equal(got, leader) {
		t.Fatalf("follower log %v, want the leader's %v", got, leader)
	}
	if !slices.Equal(l.truncs, []int64{2}) {
		t.Fatalf("truncations %v, want one to 2", l.truncs)
	}
}

// leaderAnswer is what a leader with log epochs answers a fetch (FollowerFetched's divergence
// rule, then the records from the fetch offset).
func leaderAnswer(epochs []int32, p kmsg.FetchRequestTopicPartition) *kmsg.FetchResponse {
	if p.LastFetchedEpoch >= 0 {
		e, end := endOffsetForEpoch(0, epochs, p.LastFetchedEpoch)
		if e != p.LastFetchedEpoch || end < p.FetchOffset {
			return fetchResp(p.Partition, 0, int64(len(epochs)), nil, &kmsg.FetchResponseTopicPartitionDivergingEpoch{Epoch: e, EndOffset: end})
		}
	}
	var recs []byte
	for _, e := range epochs[p.FetchOffset:] {
		recs = append(recs, byte(e))
	}
	return fetchResp(p.Partition, 0, int64(len(epochs)), recs, nil)
}

func TestFetchErrors(t *testing.T) {
	t.Run("fenced waits for new metadata", func(t *testing.T) {
		clock := newFakeClock()
		f := testFetcher(clock)
		l := newFakeLog(0)
		f.add(key0, [16]byte{}, l, 1)
		f.applyFetch(f.buildFetch(clock.Now()), fetchResp(0, kerr.FencedLeaderEpoch.Code, 0, nil, nil), clock.Now())
		clock.Advance(time.Hour)
		if req := f.buildFetch(clock.Now()); req != nil {
			t.Fatalf("fenced partition fetched again: %+v", req)
		}
		f.add(key0, [16]byte{}, l, 2) // newer metadata
		if p := onlyPartition(t, f.buildFetch(clock.Now())); p.CurrentLeaderEpoch != 2 {
			t.Fatalf("fetch after new metadata: %+v", p)
		}
	})
	for _, e := range []*kerr.Error{kerr.NotLeaderForPartition, kerr.UnknownLeaderEpoch, kerr.UnknownTopicOrPartition, kerr.KafkaStorageError} {
		t.Run(e.Message+" backs off", func(t *testing.T) {
			clock := newFakeClock()
			f := testFetcher(clock)
			f.add(key0, [16]byte{}, newFakeLog(0), 1)
			f.applyFetch(f.buildFetch(clock.Now()), fetchResp(0, e.Code, 0, nil, nil), clock.Now())
			if req := f.buildFetch(clock.Now()); req != nil {
				t.Fatalf("fetched again at once")
			}
			if w := f.nextWait(clock.Now()); w != testBackoff {
				t.Fatalf("next wait %v, want %v", w, testBackoff)
			}
			clock.Advance(testBackoff)
			onlyPartition(t, f.buildFetch(clock.Now()))
		})
	}
	t.Run("top-level error backs every partition off", func(t *testing.T) {
		clock := newFakeClock()
		f := testFetcher(clock)
		f.add(key0, [16]byte{}, newFakeLog(), 1)
		f.add(tp{"t", 1}, [16]byte{}, newFakeLog(), 1)
		resp := kmsg.NewPtrFetchResponse()
		resp.ErrorCode = kerr.UnknownServerError.Code
		f.applyFetch(f.buildFetch(clock.Now()), resp, clock.Now())
		if req := f.buildFetch(clock.Now()); req != nil {
			t.Fatalf("fetched again at once")
		}
	})
	t.Run("append failure backs off and keeps the log", func(t *testing.T) {
		clock := newFakeClock()
		f := testFetcher(clock)
		l := newFakeLog()
		l.failNext = errBoom
		f.add(key0, [16]byte{}, l, 1)
		f.applyFetch(f.buildFetch(clock.Now()), fetchResp(0, 0, 1, []byte{1}, nil), clock.Now())
		if l.LogEndOffset() != 0 || f.buildFetch(clock.Now()) != nil {
			t.Fatalf("log end %d, or fetched again at once", l.LogEndOffset())
		}
		clock.Advance(testBackoff)
		p := onlyPartition(t, f.buildFetch(clock.Now()))
		if p.FetchOffset != 0 {
			t.Fatalf("refetch from %d", p.FetchOffset)
		}
	})
}

func TestOffsetOutOfRange(t *testing.T) {
	t.Run("behind the leader's log start: start over there", func(t *testing.T) {
		clock := newFakeClock()
		f := testFetcher(clock)
		l := newFakeLog(0, 0)
		f.add(key0, [16]byte{}, l, 1)
		resp := fetchResp(0, kerr.OffsetOutOfRange.Code, 0, nil, nil)
		resp.Topics[0].Partitions[0].LogStartOffset = 10
		f.applyFetch(f.buildFetch(clock.Now()), resp, clock.Now())
		if !slices.Equal(l.full, []int64{10}) {
			t.Fatalf("full truncations %v, want [10]", l.full)
		}
		if p := onlyPartition(t, f.buildFetch(clock.Now())); p.FetchOffset != 10 {
			t.Fatalf("fetch from %d, want 10", p.FetchOffset)
		}
	})
	t.Run("ahead of the leader: OffsetForLeaderEpoch", func(t *testing.T) {
		clock := newFakeClock()
		f := testFetcher(clock)
		l := newFakeLog(0, 0, 1, 1)
		f.add(key0, [16]byte{}, l, 2)
		f.applyFetch(f.buildFetch(clock.Now()), fetchResp(0, kerr.OffsetOutOfRange.Code, 0, nil, nil), clock.Now())
		if f.buildFetch(clock.Now()) != nil {
			t.Fatalf("fetched while truncating")
		}
		oreq := f.buildOffsetForLeaderEpoch(clock.Now())
		if oreq == nil || len(oreq.Topics) != 1 || oreq.Topics[0].Partitions[0].LeaderEpoch != 1 ||
			oreq.Topics[0].Partitions[0].CurrentLeaderEpoch != 2 || oreq.ReplicaID != 2 {
			t.Fatalf("offset for leader epoch request %+v", oreq)
		}
		f.applyOffsetForLeaderEpoch(oreq, oflResp(0, 1, 3), clock.Now())
		if got := l.epochsCopy(); !slices.Equal(got, []int32{0, 0, 1}) {
			t.Fatalf("log %v, want [0 0 1]", got)
		}
		if p := onlyPartition(t, f.buildFetch(clock.Now())); p.FetchOffset != 3 {
			t.Fatalf("fetch from %d, want 3", p.FetchOffset)
		}
	})
}

func oflResp(part int32, epoch int32, end int64) *kmsg.OffsetForLeaderEpochResponse {
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.EndOffset = part, epoch, end
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	return resp
}

// Without truncate-on-fetch (a leader below Fetch v12) a partition truncates through
// OffsetForLeaderEpoch, KIP-279's loop included, before it fetches.
func TestNoTruncateOnFetch(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	f.setTruncateOnFetch(false)
	leader := []int32{0, 0, 1, 1, 3}
	l := newFakeLog(0, 0, 2, 2)
	f.add(key0, [16]byte{}, l, 3)
	for i := 0; f.buildFetch(clock.Now()) == nil; i++ {
		if i > 5 {
			t.Fatalf("still truncating after %d rounds; log %v", i, l.epochsCopy())
		}
		oreq := f.buildOffsetForLeaderEpoch(clock.Now())
		asked := oreq.Topics[0].Partitions[0].LeaderEpoch
		e, end := endOffsetForEpoch(0, leader, asked)
		f.applyOffsetForLeaderEpoch(oreq, oflResp(0, e, end), clock.Now())
	}
	if got := l.epochsCopy(); !slices.Equal(got, []int32{0, 0}) {
		t.Fatalf("log after truncation %v, want [0 0]", got)
	}
	// A log with records but no epoch is cut to its high watermark without asking.
	l2 := newFakeLog()
	l2.epochs = []int32{-1, -1, -1}
	l2.hw = 1
	f.add(tp{"t", 1}, [16]byte{}, l2, 3)
	f.buildOffsetForLeaderEpoch(clock.Now())
	if l2.LogEndOffset() != 1 {
		t.Fatalf("epochless log end %d, want its high watermark 1", l2.LogEndOffset())
	}
}

// fakeLeader is a LeaderClient over a leader log of fakeLog records.
type fakeLeader struct {
	mu      sync.Mutex
	epochs  []int32
	fetches int
	closed  bool
}

func (c *fakeLeader) Fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetches++
	p := req.Topics[0].Partitions[0]
	if int(p.FetchOffset) == len(c.epochs) {
		// Nothing new: a real leader waits MaxWait; this one refuses to be polled in a loop.
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		return nil, ctx.Err()
	}
	return leaderAnswer(c.epochs, p), nil
}

func (c *fakeLeader) OffsetForLeaderEpoch(context.Context, *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	return nil, errors.New("not expected")
}

func (c *fakeLeader) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
}

func TestFetcherLoopReplicates(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	leader := &fakeLeader{epochs: []int32{0, 0, 1, 1, 3}}
	f.cfg.dial = func(string) (LeaderClient, error) { return leader, nil }
	l := newFakeLog(0, 0, 2) // diverges at offset 2
	f.add(key0, [16]byte{}, l, 3)
	f.start()
	waitFor(t, "the follower to catch up", func() bool { return slices.Equal(l.epochsCopy(), leader.epochs) })
	f.close()
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if !leader.closed {
		t.Fatalf("leader client not closed")
	}
}

// A leader that cannot be reached is dialled again only after the backoff: no hot loop.
func TestFetcherLoopBacksOffOnConnectionErrors(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	var dials atomic.Int32
	f.cfg.dial = func(string) (LeaderClient, error) {
		dials.Add(1)
		return nil, errBoom
	}
	f.add(key0, [16]byte{}, newFakeLog(), 1)
	f.start()
	defer f.close()
	for want := int32(1); want <= 3; want++ {
		waitFor(t, "the fetcher to wait on the backoff", func() bool { return clock.Waiters() == 1 })
		if got := dials.Load(); got != want {
			t.Fatalf("dials %d, want %d", got, want)
		}
		clock.Advance(testBackoff / 2)
		if got := dials.Load(); got != want {
			t.Fatalf("dialled again before the backoff ended: %d", got)
		}
		clock.Advance(testBackoff / 2)
		waitFor(t, "the next dial", func() bool { return dials.Load() == want+1 || want == 3 })
	}
}

// A fetch that fails (connection lost) closes the client, backs off and dials again.
func TestFetcherLoopRedialsAfterFetchError(t *testing.T) {
	clock := newFakeClock()
	f := testFetcher(clock)
	var dials atomic.Int32
	clients := make(chan *failingLeader, 4)
	f.cfg.dial = func(string) (LeaderClient, error) {
		dials.Add(1)
		c := &failingLeader{}
		clients <- c
		return c, nil
	}
	f.add(key0, [16]byte{}, newFakeLog(), 1)
	f.start()
	defer f.close()
	waitFor(t, "the backoff after the failed fetch", func() bool { return clock.Waiters() == 1 })
	c := <-clients
	if !c.closed.Load() || dials.Load() != 1 {
		t.Fatalf("client closed %v, dials %d", c.closed.Load(), dials.Load())
	}
	clock.Advance(testBackoff)
	waitFor(t, "the second dial", func() bool { return dials.Load() == 2 })
}

type failingLeader struct{ closed atomic.Bool }

func (c *failingLeader) Fetch(context.Context, *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	return nil, errors.New("connection reset")
}
func (c *failingLeader) OffsetForLeaderEpoch(context.Context, *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	return nil, errors.New("connection reset")
}
func (c *failingLeader) Close() { c.closed.Store(true) }
