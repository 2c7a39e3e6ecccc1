package partition

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openReplica opens a partition with no role (leader epoch -1) on a fake clock.
func openReplica(t *testing.T, clock *testClock, minISR int, syncBeforeAck bool) (*Partition, *log.Syncer) {
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	dir := t.TempDir()
	syncer, err := log.NewSyncer(vfs.Default, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syncer.Close() })
	s := Settings{Log: cfg, MaxMessageBytes: 8 << 20, MinInsyncReplicas: minISR, SyncBeforeAck: syncBeforeAck,
		ReplicaLagTimeMax: 10 * time.Second}
	p, err := Open(dir+"/t-0", "t", 0, s, -1, clock, &LogDir{Path: dir, Syncer: syncer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, syncer
}

// leader3 is broker 1 leading epoch 1 of a partition on brokers 1, 2, 3, all in the ISR.
func leader3(t *testing.T, clock *testClock, minISR int) *Partition {
	t.Helper()
	p, _ := openReplica(t, clock, minISR, false)
	if err := p.BecomeLeader(LeaderState{LeaderEpoch: 1, PartitionEpoch: 1, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	return p
}

func plainBatch(n int) []byte {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Value: []byte("v")}
	}
	return record.Build(record.BatchSpec{BaseTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

func idempotentBatch(pid int64, seq int32, n int) []byte {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Value: []byte("v")}
	}
	return record.Build(record.BatchSpec{BaseTimestamp: 1_700_000_000_000, ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq, Records: recs})
}

func mustAppendN(t *testing.T, p *Partition, n int) AppendResult {
	t.Helper()
	r, err := p.Append(plainBatch(n), 1, OriginClient)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fetched(t *testing.T, p *Partition, clock *testClock, id int32, offset int64) {
	t.Helper()
	div, err := p.FollowerFetched(FollowerFetch{ReplicaID: id, BrokerEpoch: 10, FetchOffset: offset, LastFetchedEpoch: -1,
		CurrentLeaderEpoch: p.LeaderEpoch(), Now: clock.Now()})
	if err != nil || div != nil {
		t.Fatalf("fetch of %d at %d: %v %v", id, offset, div, err)
	}
}

func wantHW(t *testing.T, p *Partition, hw int64) {
	t.Helper()
	if got := p.HighWatermark(); got != hw {
		t.Fatalf("high watermark %d, want %d", got, hw)
	}
}

func wantCode(t *testing.T, err error, want *kerr.Error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %s", err, want.Message)
	}
}

// TestSingleReplicaAsBefore: a partition opened with an epoch is its own ISR: the high watermark
// is the log end offset after every append and acks=all is satisfied at once.
func TestSingleReplicaAsBefore(t *testing.T) {
	p := openTest(t)
	if !p.IsLeader() {
		t.Fatal("a partition opened with an epoch is not the leader")
	}
	r := mustAppendN(t, p, 3)
	wantHW(t, p, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.WaitReplicated(ctx, r.BaseOffset+2); err != nil {
		t.Fatal(err)
	}
	if err := p.CheckOffsetsAvailable(); err != nil {
		t.Fatal(err)
	}
}

// TestHighWatermarkIsMinLEOOverISR: the high watermark waits for every ISR member, including
// one that has not fetched yet in this epoch, and never goes back.
func TestHighWatermarkIsMinLEOOverISR(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 2)
	mustAppendN(t, p, 10)
	wantHW(t, p, 0)
	fetched(t, p, clock, 2, 10)
	wantHW(t, p, 0) // 3 has not fetched: its log end offset is unknown
	fetched(t, p, clock, 3, 4)
	wantHW(t, p, 4)
	fetched(t, p, clock, 3, 10)
	wantHW(t, p, 10)
	mustAppendN(t, p, 5)
	wantHW(t, p, 10)
	fetched(t, p, clock, 2, 15)
	wantHW(t, p, 10)
	fetched(t, p, clock, 3, 12)
	wantHW(t, p, 12)
	// A fetch from an earlier offset (a follower truncated and refetching) does not move it back.
	fetched(t, p, clock, 3, 11)
	wantHW(t, p, 12)
}

// TestStrictMinISR: with the committed ISR below min.insync.replicas the high watermark does not
// move, even though a caught-up follower has everything; acks=all is refused before the append.
func TestStrictMinISR(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 2)
	p.UpdateISR([]int32{1}, 2)
	mustAppendN(t, p, 5)
	fetched(t, p, clock, 2, 5)
	fetched(t, p, clock, 3, 5)
	wantHW(t, p, 0)
	if _, err := p.Append(plainBatch(1), -1, OriginClient); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with ISR [1], min ISR 2: %v", err)
	}
	if p.LogEndOffset() != 5 {
		t.Fatalf("a refused acks=all produce was appended: LEO %d", p.LogEndOffset())
	}
	// ISR back to two: the high watermark moves to what both have.
	p.UpdateISR([]int32{1, 2}, 3)
	wantHW(t, p, 5)
	// An older partition epoch is ignored.
	p.UpdateISR([]int32{1}, 2)
	if s, _ := p.Replication(); !slices.Equal(s.ISR, []int32{1, 2}) || s.PartitionEpoch != 3 {
		t.Fatalf("stale UpdateISR applied: %+v", s)
	}
}

// TestEffectiveMinISRSingleReplica: min.insync.replicas above the replica count does not stop
// the high watermark of a single replica (Kafka's effectiveMinIsr), as before replication.
func TestEffectiveMinISRSingleReplica(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 2, false)
	if err := p.BecomeSoleLeader(0); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, p, 2)
	wantHW(t, p, 2)
	if _, err := p.Append(plainBatch(1), -1, OriginClient); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all on one replica with min ISR 2: %v", err)
	}
}

// TestDivergingEpoch: the leader (epochs 1 at 0, 3 at 5, 4 at 8) answers where a follower's log
// stops matching, from its leader-epoch cache, and records nothing for such a fetch.
func TestDivergingEpoch(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 1, false)
	for _, e := range []struct {
		epoch int32
		n     int
	}{{1, 5}, {3, 3}, {4, 2}} {
		if err := p.BecomeLeader(LeaderState{LeaderEpoch: e.epoch, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
			t.Fatal(err)
		}
		mustAppendN(t, p, e.n)
	}
	for _, tc := range []struct {
		name        string
		lastEpoch   int32
		fetchOffset int64
		want        *DivergingEpoch
	}{
		{"same epoch, within it", 1, 5, nil},
		{"latest epoch", 4, 10, nil},
		{"no epoch sent (pre-v12)", -1, 7, nil},
		{"past the end of its epoch", 1, 6, &DivergingEpoch{1, 5}},
		{"epoch 3 ended at 8", 3, 9, &DivergingEpoch{3, 8}},
		// KIP-279: the follower's epoch 2 never existed on the leader: the largest below, 1,
		// and where it ended.
		{"unknown epoch", 2, 7, &DivergingEpoch{1, 5}},
		// Below the leader's first epoch (its older data is gone): that epoch ends where the
		// first known one starts (Kafka's LeaderEpochFileCache.endOffsetFor).
		{"below the first epoch", 0, 3, &DivergingEpoch{0, 0}},
	} {
		div, err := p.FollowerFetched(FollowerFetch{ReplicaID: 2, BrokerEpoch: -1, FetchOffset: tc.fetchOffset,
			LastFetchedEpoch: tc.lastEpoch, CurrentLeaderEpoch: 4, Now: clock.Now()})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (div == nil) != (tc.want == nil) || (div != nil && *div != *tc.want) {
			t.Fatalf("%s: diverging %+v, want %+v", tc.name, div, tc.want)
		}
	}
	// Above every epoch the leader knows: no end offset to answer with.
	_, err := p.FollowerFetched(FollowerFetch{ReplicaID: 2, BrokerEpoch: -1, FetchOffset: 3, LastFetchedEpoch: 6, CurrentLeaderEpoch: 4})
	wantCode(t, err, kerr.OffsetOutOfRange)
	// The diverging fetches recorded nothing: the last recorded offset is 7 (the pre-v12 one).
	s, _ := p.Replication()
	if s.Followers[0].LogEndOffset != 7 {
		t.Fatalf("follower LEO %d, want 7 (diverging fetches are not recorded)", s.Followers[0].LogEndOffset)
	}
}

// TestFollowerFetchedErrors: the answers a follower's fetch gets when it should not be served.
func TestFollowerFetchedErrors(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 1)
	mustAppendN(t, p, 3)
	ff := func(f FollowerFetch) error {
		f.LastFetchedEpoch = -1
		_, err := p.FollowerFetched(f)
		return err
	}
	wantCode(t, ff(FollowerFetch{ReplicaID: 9, BrokerEpoch: 1, FetchOffset: 0, CurrentLeaderEpoch: 1}), kerr.NotLeaderForPartition)
	wantCode(t, ff(FollowerFetch{ReplicaID: 2, BrokerEpoch: 1, FetchOffset: 0, CurrentLeaderEpoch: 0}), kerr.FencedLeaderEpoch)
	wantCode(t, ff(FollowerFetch{ReplicaID: 2, BrokerEpoch: 1, FetchOffset: 0, CurrentLeaderEpoch: 2}), kerr.UnknownLeaderEpoch)
	wantCode(t, ff(FollowerFetch{ReplicaID: 2, BrokerEpoch: 1, FetchOffset: 4, CurrentLeaderEpoch: 1}), kerr.OffsetOutOfRange)
	if err := ff(FollowerFetch{ReplicaID: 2, BrokerEpoch: 5, FetchOffset: 1, CurrentLeaderEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	// KIP-903: a fetch carrying an older broker epoch than one already seen is a stale request
	// from before the broker restarted.
	wantCode(t, ff(FollowerFetch{ReplicaID: 2, BrokerEpoch: 4, FetchOffset: 3, CurrentLeaderEpoch: 1}), kerr.NotLeaderForPartition)
	if err := p.BecomeFollower(2, 2, 2); err != nil {
		t.Fatal(err)
	}
	wantCode(t, ff(FollowerFetch{ReplicaID: 3, BrokerEpoch: 1, FetchOffset: 0, CurrentLeaderEpoch: 2}), kerr.NotLeaderForPartition)
	if _, err := p.Append(plainBatch(1), 1, OriginClient); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("produce to a follower: %v", err)
	}
	if err := p.BecomeLeader(LeaderState{LeaderEpoch: 1, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("become leader of an older epoch: %v", err)
	}
}

// TestNewLeaderOffsetsNotAvailable: a new leader's high watermark lags its epoch start until a
// follower confirms; meanwhile ListOffsets is answered OFFSET_NOT_AVAILABLE, and a replica that
// has the leader's log up to the epoch start may join the ISR.
func TestNewLeaderOffsetsNotAvailable(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 1, false)
	if err := p.BecomeFollower(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	leaderLog := leader3(t, clock, 1)
	mustAppendN(t, leaderLog, 6)
	copyLog(t, leaderLog, p)
	p.UpdateFollowerHighWatermark(2)
	wantHW(t, p, 2)
	if err := p.BecomeLeader(LeaderState{LeaderEpoch: 2, PartitionEpoch: 2, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	wantHW(t, p, 2)
	wantCode(t, p.CheckOffsetsAvailable(), kerr.OffsetNotAvailable)
	// 3 has everything up to the epoch start: it may join although the leader's high watermark
	// still lags (Kafka's isFollowerInSync), and it then holds the high watermark with 2.
	fetched(t, p, clock, 3, 6)
	wantHW(t, p, 2) // 2 has not fetched in this epoch
	wantCode(t, p.CheckOffsetsAvailable(), kerr.OffsetNotAvailable)
	if isr, ok := p.ISRChange(clock.Now(), 10*time.Second); !ok || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("ISR change %v %v, want [1 2 3]", isr, ok)
	}
	fetched(t, p, clock, 2, 6)
	wantHW(t, p, 6)
	if err := p.CheckOffsetsAvailable(); err != nil {
		t.Fatal(err)
	}
}

// copyLog appends to follower every batch of leader past follower's log end, as a fetcher would.
func copyLog(t *testing.T, leader, follower *Partition) {
	t.Helper()
	r, err := leader.Log().Read(follower.LogEndOffset(), math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.AppendAsFollower(append([]byte(nil), r.Data...)); err != nil {
		t.Fatal(err)
	}
}

// TestProducerStateParity: a follower that replicated a leader's idempotent batches, once leader,
// answers a retried batch with the original offsets and a gap with OUT_OF_ORDER_SEQUENCE_NUMBER,
// exactly as the old leader does.
func TestProducerStateParity(t *testing.T) {
	clock := newTestClock()
	old := leader3(t, clock, 1)
	var offsets []int64
	for seq := int32(0); seq < 12; seq += 2 { // six batches of two: more than the five remembered
		r, err := old.Append(idempotentBatch(7, seq, 2), 1, OriginClient)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, r.BaseOffset)
	}
	f, _ := openReplica(t, clock, 1, false)
	if err := f.BecomeFollower(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	copyLog(t, old, f)
	if !slices.Equal(f.Producers(), old.Producers()) {
		t.Fatalf("producer state: follower %+v, leader %+v", f.Producers(), old.Producers())
	}
	if err := f.BecomeLeader(LeaderState{LeaderEpoch: 2, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Partition{old, f} {
		leo := p.LogEndOffset()
		r, err := p.Append(idempotentBatch(7, 10, 2), 1, OriginClient) // retry of the last batch
		if err != nil || r.BaseOffset != offsets[5] || p.LogEndOffset() != leo {
			t.Fatalf("retry: offset %d (want %d), err %v, LEO %d -> %d", r.BaseOffset, offsets[5], err, leo, p.LogEndOffset())
		}
		r, err = p.Append(idempotentBatch(7, 4, 2), 1, OriginClient) // an older one still remembered
		if err != nil || r.BaseOffset != offsets[2] {
			t.Fatalf("retry of batch 2: offset %d (want %d), err %v", r.BaseOffset, offsets[2], err)
		}
		if _, err := p.Append(idempotentBatch(7, 14, 1), 1, OriginClient); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			t.Fatalf("gap: %v", err)
		}
		if _, err := p.Append(idempotentBatch(7, 12, 1), 1, OriginClient); err != nil {
			t.Fatalf("next sequence: %v", err)
		}
	}
}

// TestAppendAsFollower: batches keep their offsets and epochs; one not at the log end is
// refused; only a follower appends this way; under SyncBeforeAck the data is synced before the
// call returns; the follower's high watermark follows the leader's, bounded by its log end.
func TestAppendAsFollower(t *testing.T) {
	clock := newTestClock()
	leader := leader3(t, clock, 1)
	mustAppendN(t, leader, 3)
	f, syncer := openReplica(t, clock, 1, true)
	r, _ := leader.Log().Read(0, math.MaxInt32, math.MaxInt64, true)
	if err := f.AppendAsFollower(r.Data); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append as follower with no role: %v", err)
	}
	if err := f.BecomeFollower(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	if f.LastFetchedEpoch() != -1 {
		t.Fatalf("last fetched epoch of an empty log %d", f.LastFetchedEpoch())
	}
	syncs := syncer.Syncs()
	copyLog(t, leader, f)
	if syncer.Syncs() <= syncs {
		t.Fatal("AppendAsFollower returned before a sync under SyncBeforeAck")
	}
	if f.LogEndOffset() != 3 || f.LastFetchedEpoch() != 1 {
		t.Fatalf("LEO %d, last fetched epoch %d", f.LogEndOffset(), f.LastFetchedEpoch())
	}
	if err := f.AppendAsFollower(r.Data); !errors.Is(err, log.ErrNotLogEnd) {
		t.Fatalf("replaying batches already there: %v", err)
	}
	bad := append([]byte(nil), r.Data...)
	bad[len(bad)-1] ^= 0xff
	if err := f.AppendAsFollower(bad); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatalf("corrupt batch: %v", err)
	}
	mustAppendN(t, leader, 1)
	r, _ = leader.Log().Read(3, math.MaxInt32, math.MaxInt64, true)
	if err := f.AppendAsFollowerIn(0, r.Data); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("records fetched in another epoch: %v", err)
	}
	if err := f.AppendAsFollowerIn(1, r.Data); err != nil || f.LogEndOffset() != 4 {
		t.Fatalf("records fetched in the followed epoch: %v, LEO %d", err, f.LogEndOffset())
	}
	f.UpdateFollowerHighWatermark(10)
	wantHW(t, f, 4)
	f.UpdateFollowerHighWatermark(1)
	wantHW(t, f, 4)
}

// TestWaitReplicated: acks=all completes when the ISR has the offset, and otherwise ends with
// the error Kafka gives.
func TestWaitReplicated(t *testing.T) {
	clock := newTestClock()
	waitFor := func(p *Partition, last int64) chan error {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- p.WaitReplicated(ctx, last)
		}()
		return done
	}
	result := func(ch chan error) error {
		t.Helper()
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("WaitReplicated did not return")
			return nil
		}
	}

	t.Run("replicated", func(t *testing.T) {
		p := leader3(t, clock, 2)
		mustAppendN(t, p, 4)
		done := waitFor(p, 3)
		fetched(t, p, clock, 2, 4)
		select {
		case err := <-done:
			t.Fatalf("returned %v before the whole ISR had the offset", err)
		default:
		}
		fetched(t, p, clock, 3, 4)
		if err := result(done); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		p := leader3(t, clock, 2)
		mustAppendN(t, p, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		wantCode(t, p.WaitReplicated(ctx, 0), kerr.RequestTimedOut)
	})
	t.Run("leadership lost", func(t *testing.T) {
		p := leader3(t, clock, 2)
		mustAppendN(t, p, 1)
		done := waitFor(p, 0)
		if err := p.BecomeFollower(2, 2, 2); err != nil {
			t.Fatal(err)
		}
		wantCode(t, result(done), kerr.NotLeaderForPartition)
	})
	t.Run("ISR below min while waiting", func(t *testing.T) {
		p := leader3(t, clock, 2)
		mustAppendN(t, p, 1)
		done := waitFor(p, 0)
		p.UpdateISR([]int32{1}, 2)
		wantCode(t, result(done), kerr.NotEnoughReplicasAfterAppend)
	})
}

// TestISRChange drives shrink and expansion with a fake clock: a follower is dropped only after
// replica.lag.time.max.ms without being caught up, one change is in flight at a time and the high
// watermark waits for the maximal ISR meanwhile, and a follower rejoins once caught up and only
// with the broker epoch the metadata has for it.
func TestISRChange(t *testing.T) {
	clock := newTestClock()
	lag := 10 * time.Second
	p := leader3(t, clock, 1)
	p.SetEligibleBrokers(map[int32]int64{1: 10, 2: 10, 3: 10})
	mustAppendN(t, p, 5)
	fetched(t, p, clock, 2, 5)
	fetched(t, p, clock, 3, 5)
	wantHW(t, p, 5)
	mustAppendN(t, p, 5) // LEO 10: 3 stops fetching, 2 keeps up
	for i := 0; i < 4; i++ {
		clock.Advance(3 * time.Second)
		fetched(t, p, clock, 2, p.LogEndOffset())
		if i < 3 {
			if isr, ok := p.ISRChange(clock.Now(), lag); ok {
				t.Fatalf("after %ds: ISR change %v before the lag time", 3*(i+1), isr)
			}
		}
	}
	// 12 s since 3 was last caught up (at LEO 5, before the append).
	isr, ok := p.ISRChange(clock.Now(), lag)
	if !ok || !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("shrink: %v %v, want [1 2]", isr, ok)
	}
	if _, ok := p.ISRChange(clock.Now(), lag); ok {
		t.Fatal("a second change proposed while one is in flight")
	}
	wantHW(t, p, 5) // the maximal ISR still holds 3
	p.UpdateISR([]int32{1, 2}, 2)
	wantHW(t, p, 10)

	// 3 comes back after a reboot with another broker epoch: caught up, but not eligible.
	div, err := p.FollowerFetched(FollowerFetch{ReplicaID: 3, BrokerEpoch: 11, FetchOffset: 10, LastFetchedEpoch: 1, CurrentLeaderEpoch: 1, Now: clock.Now()})
	if err != nil || div != nil {
		t.Fatal(div, err)
	}
	if isr, ok := p.ISRChange(clock.Now(), lag); ok {
		t.Fatalf("ISR change %v with a broker epoch the metadata does not have", isr)
	}
	p.SetEligibleBrokers(map[int32]int64{1: 10, 2: 10, 3: 11})
	isr, ok = p.ISRChange(clock.Now(), lag)
	if !ok || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("expand: %v %v, want [1 2 3]", isr, ok)
	}
	// The controller refused: nothing in flight, the next call proposes again.
	p.CancelISRChange()
	if _, ok := p.ISRChange(clock.Now(), lag); !ok {
		t.Fatal("no proposal after CancelISRChange")
	}
	p.UpdateISR([]int32{1, 2, 3}, 3)
	if s, _ := p.Replication(); s.Pending != nil || !slices.Equal(s.ISR, []int32{1, 2, 3}) {
		t.Fatalf("after UpdateISR: %+v", s)
	}
}

// TestReplicaStateCaughtUp: Kafka's rule for lastCaughtUpTime: a fetch that reaches the leader's
// log end offset as of the previous fetch proves the follower was caught up at that time.
func TestReplicaStateCaughtUp(t *testing.T) {
	t0 := time.UnixMilli(0)
	lag := 10 * time.Second
	r := newReplicaState(2, false, t0)
	if r.CaughtUp(5, t0, lag) {
		t.Fatal("a replica that never fetched is caught up")
	}
	r.Fetched(5, 5, 1, t0)
	if !r.CaughtUp(5, t0.Add(time.Hour), lag) {
		t.Fatal("a replica with the leader's log end offset is not caught up")
	}
	r.Fetched(5, 8, 1, t0.Add(5*time.Second)) // the leader moved on; the follower had all of 5
	if !r.LastCaughtUp.Equal(t0) {
		t.Fatalf("last caught up %v, want t0 (it had all the leader had at its previous fetch)", r.LastCaughtUp)
	}
	r.Fetched(8, 12, 1, t0.Add(20*time.Second)) // reached what the leader had at the last fetch
	if !r.LastCaughtUp.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("last caught up %v, want the previous fetch time", r.LastCaughtUp)
	}
	if !r.CaughtUp(12, t0.Add(14*time.Second), lag) || r.CaughtUp(12, t0.Add(16*time.Second), lag) {
		t.Fatal("caught-up window wrong")
	}
	// Inside the maximal ISR a pending member counts for the high watermark.
	v := ISRView{Leader: 1, LeaderLEO: 12, HighWatermark: 5, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, Pending: []int32{1, 2, 3},
		Followers: map[int32]ReplicaState{2: {ID: 2, LogEndOffset: 12}, 3: {ID: 3, LogEndOffset: 7}}, MinISR: 2, Now: t0, LagMax: lag}
	if hw := NextHighWatermark(v); hw != 7 {
		t.Fatalf("high watermark %d over the maximal ISR, want 7", hw)
	}
	v.MinISR = 3
	if hw := NextHighWatermark(v); hw != 5 {
		t.Fatalf("high watermark %d with the ISR below min, want 5", hw)
	}
}

// TestFollowerTruncatesByEpoch walks the KIP-101 path end to end: an old leader (B) that wrote
// an epoch the new leader (A) never saw fetches with its last epoch, is told where the logs
// diverge, truncates there (not to its high watermark), refetches and ends byte-identical to A,
// with A's epochs.
func TestFollowerTruncatesByEpoch(t *testing.T) {
	clock := newTestClock()
	a, _ := openReplica(t, clock, 1, false)
	b, _ := openReplica(t, clock, 1, false)
	// Epoch 1: B leads and A follows; both have offsets 0-4.
	if err := b.BecomeLeader(LeaderState{LeaderEpoch: 1, Leader: 2, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := a.BecomeFollower(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, b, 5)
	copyLog(t, b, a)
	// B goes on writing 5-9 in epoch 2 that A never gets (B's ISR shrank to itself).
	if err := b.BecomeLeader(LeaderState{LeaderEpoch: 2, Leader: 2, Replicas: []int32{1, 2}, ISR: []int32{2}}); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, b, 5)
	// Epoch 3: A leads and writes 5-7; B follows.
	if err := a.BecomeLeader(LeaderState{LeaderEpoch: 3, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, a, 3)
	if err := b.BecomeFollower(1, 3, 3); err != nil {
		t.Fatal(err)
	}

	fetch := func() *DivergingEpoch {
		t.Helper()
		div, err := a.FollowerFetched(FollowerFetch{ReplicaID: 2, BrokerEpoch: 1, FetchOffset: b.LogEndOffset(),
			LastFetchedEpoch: b.LastFetchedEpoch(), CurrentLeaderEpoch: 3, Now: clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return div
	}
	div := fetch()
	if div == nil || *div != (DivergingEpoch{1, 5}) {
		t.Fatalf("diverging %+v, want {1 5}", div)
	}
	if err := b.TruncateTo(div.EndOffset); err != nil {
		t.Fatal(err)
	}
	if b.LogEndOffset() != 5 || b.LastFetchedEpoch() != 1 {
		t.Fatalf("after truncation: LEO %d, last epoch %d", b.LogEndOffset(), b.LastFetchedEpoch())
	}
	if div := fetch(); div != nil {
		t.Fatalf("still diverging after truncation: %+v", div)
	}
	copyLog(t, a, b)
	if div := fetch(); div != nil {
		t.Fatalf("diverging after catching up: %+v", div)
	}
	wantHW(t, a, 8)
	ra, _ := a.Log().Read(0, math.MaxInt32, math.MaxInt64, true)
	rb, _ := b.Log().Read(0, math.MaxInt32, math.MaxInt64, true)
	if !bytes.Equal(ra.Data, rb.Data) {
		t.Fatal("logs differ after the follower caught up")
	}
	for _, e := range []int32{1, 2, 3} {
		ae, ao := a.EndOffsetForEpoch(e)
		be, bo := b.EndOffsetForEpoch(e)
		if ae != be || ao != bo {
			t.Fatalf("epoch %d: leader (%d, %d), follower (%d, %d)", e, ae, ao, be, bo)
		}
	}
}

// TestTruncateFullyAndStartAt: a follower whose log ends below the leader's log start starts
// over there, empty, and replicates from it; its producer state is gone with its log.
func TestTruncateFullyAndStartAt(t *testing.T) {
	clock := newTestClock()
	f, _ := openReplica(t, clock, 1, false)
	if err := f.BecomeFollower(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	old := leader3(t, clock, 1)
	if _, err := old.Append(idempotentBatch(9, 0, 2), 1, OriginClient); err != nil {
		t.Fatal(err)
	}
	copyLog(t, old, f)
	if len(f.Producers()) != 1 {
		t.Fatalf("producers %+v", f.Producers())
	}
	wantCode(t, f.TruncateFullyAndStartAt(1), kerr.OffsetOutOfRange)
	if err := f.TruncateFullyAndStartAt(40); err != nil {
		t.Fatal(err)
	}
	if f.LogStartOffset() != 40 || f.LogEndOffset() != 40 || f.HighWatermark() != 40 || len(f.Producers()) != 0 || f.LastFetchedEpoch() != -1 {
		t.Fatalf("start %d end %d HW %d producers %v epoch %d", f.LogStartOffset(), f.LogEndOffset(), f.HighWatermark(), f.Producers(), f.LastFetchedEpoch())
	}
	b := plainBatch(2)
	record.SetBaseOffset(b, 40)
	record.SetPartitionLeaderEpoch(b, 1)
	if err := f.AppendAsFollower(b); err != nil || f.LogEndOffset() != 42 {
		t.Fatalf("append after starting over: %v, LEO %d", err, f.LogEndOffset())
	}
}

// TestAppendWakesFollowerFetches: on a partition with followers an append wakes the waiting
// fetches even though the high watermark does not move (the followers' fetches wait for data,
// and they are the ones that move it); a single replica wakes them through its high watermark.
func TestAppendWakesFollowerFetches(t *testing.T) {
	clock := newTestClock()
	for _, single := range []bool{false, true} {
		var p *Partition
		if single {
			p = openTest(t)
		} else {
			p = leader3(t, clock, 1)
		}
		wake := make(chan struct{}, 1)
		unwatch := p.Watch(wake)
		hw := p.HighWatermark()
		mustAppendN(t, p, 1)
		select {
		case <-wake:
		default:
			t.Fatalf("single replica %v: an append did not wake the watchers (HW %d -> %d)", single, hw, p.HighWatermark())
		}
		unwatch()
	}
}

// TestLeaderUnderMinISRExpands: a leader elected with an ISR below min.insync.replicas and a log
// end past its high watermark (an acks=1 append the followers never got before the election)
// cannot move its high watermark (strict min ISR) and must still let its caught-up followers
// join the ISR, or it is stuck forever (sim seed 1). Kafka's isFollowerInSync: the follower's log
// end offset >= the high watermark and >= the leader epoch start, nothing about the leader's own
// high watermark.
func TestLeaderUnderMinISRExpands(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 2, false)
	st := LeaderState{LeaderEpoch: 0, PartitionEpoch: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}
	if err := p.BecomeLeader(st); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, p, 1) // acks=1
	st.LeaderEpoch, st.PartitionEpoch = 1, 1
	if err := p.BecomeLeader(st); err != nil {
		t.Fatal(err)
	}
	fetched(t, p, clock, 2, 1)
	fetched(t, p, clock, 3, 1)
	wantHW(t, p, 0) // the committed ISR [1] is below min.insync.replicas 2
	isr, ok := p.ISRChange(clock.Now(), 10*time.Second)
	if !ok || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("ISR change %v %v, want [1 2 3]", isr, ok)
	}
	wantHW(t, p, 0) // pending only: the committed ISR is still below min
	p.UpdateISR(isr, 2)
	wantHW(t, p, 1)
}

// TestTruncateAtLogEndDropsEmptyEpoch: a replica that became leader of an epoch and wrote nothing
// in it, then follows, loses that epoch when it truncates at its log end (the new leader's
// diverging-epoch answer there): its last fetched epoch is the one of its last batch again, and
// the leader stops answering a divergence (sim seed 25).
func TestTruncateAtLogEndDropsEmptyEpoch(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 1, false)
	if err := p.BecomeLeader(LeaderState{LeaderEpoch: 0, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, p, 2)
	if err := p.BecomeLeader(LeaderState{LeaderEpoch: 1, PartitionEpoch: 1, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	if err := p.BecomeFollower(2, 2, 1); err != nil {
		t.Fatal(err)
	}
	if e := p.LastFetchedEpoch(); e != 1 {
		t.Fatalf("last fetched epoch %d before the truncation, want 1", e)
	}
	if err := p.TruncateTo(p.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if e := p.LastFetchedEpoch(); e != 0 || p.LogEndOffset() != 2 {
		t.Fatalf("last fetched epoch %d, LEO %d after truncating at the log end, want 0, 2", p.LastFetchedEpoch(), p.LogEndOffset())
	}
}

// TestFollowerRestartsAtStraddlingBatch: a follower that started its log over at the leader's
// log start, inside a batch, is sent that whole batch (it starts below the follower's log end
// and holds it); Kafka's follower restarts its empty log at the batch's base offset and appends
// it, where refusing it would refuse it on every fetch (sim seed 36). A log that is not empty
// still refuses a batch that does not start at its end.
func TestFollowerRestartsAtStraddlingBatch(t *testing.T) {
	clock := newTestClock()
	leader := leader3(t, clock, 1)
	mustAppendN(t, leader, 2) // 0-1
	mustAppendN(t, leader, 3) // 2-4
	f, _ := openReplica(t, clock, 1, false)
	if err := f.BecomeFollower(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.TruncateFullyAndStartAt(3); err != nil { // the leader's log start after DeleteRecords(3)
		t.Fatal(err)
	}
	r, err := leader.Log().Read(3, math.MaxInt32, math.MaxInt64, true) // the batch holding 3
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AppendAsFollower(append([]byte(nil), r.Data...)); err != nil {
		t.Fatalf("append of the batch holding the log end: %v", err)
	}
	if f.LogStartOffset() != 2 || f.LogEndOffset() != 5 || f.LastFetchedEpoch() != 1 || f.HighWatermark() > f.LogEndOffset() {
		t.Fatalf("start %d end %d epoch %d HW %d", f.LogStartOffset(), f.LogEndOffset(), f.LastFetchedEpoch(), f.HighWatermark())
	}
	f.UpdateFollowerHighWatermark(5)
	wantHW(t, f, 5)
	// Not empty now: a batch starting below the log end is refused as before.
	r, err = leader.Log().Read(2, math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AppendAsFollower(append([]byte(nil), r.Data...)); !errors.Is(err, log.ErrNotLogEnd) {
		t.Fatalf("batch below the end of a non-empty log: %v, want ErrNotLogEnd", err)
	}
}

// TestFollowerTruncatesInsideBatch: an old leader's follower whose unreplicated batch 0-2 (epoch
// 0) overlaps what the new leader knows of epoch 0 (it ends at 1: the leader's log start after
// DeleteRecords) truncates to 1, which removes the whole batch, as Kafka does; keeping it left
// the follower at log end 3 with epoch 0, told to truncate to 1 on every fetch (sim seed 784).
// From there it restarts at the leader's log start and replicates.
func TestFollowerTruncatesInsideBatch(t *testing.T) {
	clock := newTestClock()
	old, _ := openReplica(t, clock, 1, false)
	if err := old.BecomeLeader(LeaderState{LeaderEpoch: 0, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, old, 3) // 0-2, epoch 0, never replicated
	if err := old.BecomeFollower(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	leader, _ := openReplica(t, clock, 1, false)
	if err := leader.BecomeLeader(LeaderState{LeaderEpoch: 1, PartitionEpoch: 1, Leader: 2, Replicas: []int32{1, 2}, ISR: []int32{2}}); err != nil {
		t.Fatal(err)
	}
	mustAppendN(t, leader, 1) // 0, epoch 1
	mustAppendN(t, leader, 2) // 1-2
	if _, err := leader.DeleteRecords(1); err != nil {
		t.Fatal(err)
	}
	fetch := func() (*DivergingEpoch, error) {
		return leader.FollowerFetched(FollowerFetch{ReplicaID: 1, BrokerEpoch: 1, FetchOffset: old.LogEndOffset(),
			LastFetchedEpoch: old.LastFetchedEpoch(), CurrentLeaderEpoch: 1, Now: clock.Now()})
	}
	div, err := fetch()
	if err != nil || div == nil || *div != (DivergingEpoch{0, 1}) {
		t.Fatalf("diverging %+v %v, want {0 1}", div, err)
	}
	if err := old.TruncateTo(div.EndOffset); err != nil {
		t.Fatal(err)
	}
	if old.LogEndOffset() != 0 {
		t.Fatalf("log end %d after truncating into the batch 0-2, want 0", old.LogEndOffset())
	}
	// Below the leader's log start now: the follower starts over there and replicates.
	div, err = fetch()
	if div != nil || !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the leader's log start: %+v %v, want OFFSET_OUT_OF_RANGE", div, err)
	}
	if err := old.TruncateFullyAndStartAt(leader.LogStartOffset()); err != nil {
		t.Fatal(err)
	}
	copyLog(t, leader, old)
	if div, err := fetch(); div != nil || err != nil || old.LogEndOffset() != 3 {
		t.Fatalf("after catching up: %+v %v, log end %d", div, err, old.LogEndOffset())
	}
}
