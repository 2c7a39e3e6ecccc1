package handler

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
)

// fakeQuota is a leader quota the test sets by hand.
type fakeQuota struct {
	mu                  sync.Mutex
	throttled, exceeded bool
	recorded            int64
}

func (q *fakeQuota) set(throttled, exceeded bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.throttled, q.exceeded = throttled, exceeded
}

func (q *fakeQuota) Holds(_ string, _ int32, inSync bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !inSync && q.throttled && q.exceeded
}

func (q *fakeQuota) IsThrottled(string, int32) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.throttled
}

func (q *fakeQuota) Record(n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.recorded += n
}

func (q *fakeQuota) total() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.recorded
}

// The leader side of the replication quota (ReplicaManager.shouldLeaderThrottle): a follower
// outside the ISR gets no records of a throttled partition while the quota is exceeded (the
// high watermark still), an in-sync follower always gets them; the bytes of throttled
// partitions served to followers are recorded, in-sync ones' too; consumers are never throttled
// nor counted.
func TestFollowerFetchLeaderThrottle(t *testing.T) {
	f := newReplicationFixture(t, 1, map[int32][]int32{0: {1, 2}})
	p := f.part(0)
	mp := f.topic.Partitions[0]
	if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: mp.LeaderEpoch, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if sp := producePartition(t, handle(t, f.h, produceReq(1, 10_000, 3))); sp.ErrorCode != 0 {
		t.Fatalf("produce: %d", sp.ErrorCode)
	}
	q := &fakeQuota{}
	f.h.opts.LeaderQuota = q
	q.set(true, true)
	id, epoch := f.topic.ID, mp.LeaderEpoch
	follower := func() []byte {
		t.Helper()
		fp := fetchPartition(t, f, fetchReq(id, 2, 7, 0, -1, epoch))
		if fp.ErrorCode != 0 {
			t.Fatalf("follower fetch: error %d", fp.ErrorCode)
		}
		return fp.RecordBatches
	}

	// Follower 2 is in the ISR: never throttled, counted.
	got := follower()
	if len(got) == 0 {
		t.Fatal("an in-sync follower got no records from a throttled partition")
	}
	size := int64(len(got))
	if q.total() != size {
		t.Fatalf("recorded %d, want the %d bytes served", q.total(), size)
	}
	// It reports having them: the high watermark moves to 3.
	if fp := fetchPartition(t, f, fetchReq(id, 2, 7, 3, epoch, epoch)); fp.HighWatermark != 3 || len(fp.RecordBatches) != 0 {
		t.Fatalf("follower fetch at 3: HW %d, %d bytes", fp.HighWatermark, len(fp.RecordBatches))
	}

	// Out of the ISR (as the metadata says): held back while the quota is exceeded.
	ctx := context.Background()
	b1, _ := f.meta.Image().Broker(1)
	res, err := f.meta.AlterPartition(ctx, 1, b1.Epoch, []metadata.AlterPartitionItem{{TopicID: id, Partition: 0,
		LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch, NewISR: []metadata.ISRMember{{BrokerID: 1, BrokerEpoch: b1.Epoch}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("shrink the ISR: %v %+v", err, res)
	}
	waitCond(t, "ISR [1] in the image", func() bool {
		tm, _ := f.meta.Image().Topic("t")
		return slices.Equal(tm.Partitions[0].ISR, []int32{1})
	})
	tm, _ := f.meta.Image().Topic("t")
	p.UpdateISR([]int32{1}, tm.Partitions[0].PartitionEpoch) // as the replica manager passes it on
	fp := fetchPartition(t, f, fetchReq(id, 2, 7, 0, -1, epoch))
	if fp.ErrorCode != 0 || len(fp.RecordBatches) != 0 || fp.HighWatermark != p.HighWatermark() {
		t.Fatalf("held follower fetch: error %d, %d bytes, HW %d", fp.ErrorCode, len(fp.RecordBatches), fp.HighWatermark)
	}
	if q.total() != size {
		t.Fatalf("recorded %d after a held fetch, want %d", q.total(), size)
	}
	// Not exceeded: served and counted.
	q.set(true, false)
	if got := follower(); int64(len(got)) != size || q.total() != 2*size {
		t.Fatalf("under the quota: %d bytes, recorded %d", len(got), q.total())
	}
	// Not throttled: served, not counted.
	q.set(false, true)
	if got := follower(); int64(len(got)) != size || q.total() != 2*size {
		t.Fatalf("not throttled: %d bytes, recorded %d", len(got), q.total())
	}
	// Consumers: neither.
	q.set(true, true)
	if cp := fetchPartition(t, f, fetchReq(id, -1, -1, 0, -1, epoch)); len(cp.RecordBatches) == 0 || q.total() != 2*size {
		t.Fatalf("consumer fetch: %d bytes, recorded %d", len(cp.RecordBatches), q.total())
	}
}
