package handler

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
)

// newSession asks c for a session of n partitions of topic t, as a v12 epoch-0 fetch would.
func newSession(t *testing.T, c *fetchSessionCache, topic string, n int) int32 {
	t.Helper()
	r := kmsg.NewPtrFetchRequest()
	r.Version, r.SessionID, r.SessionEpoch = 12, 0, 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	st := kmsg.NewFetchResponseTopic()
	st.Topic = topic
	for i := 0; i < n; i++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = int32(i)
		rt.Partitions = append(rt.Partitions, rp)
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = int32(i)
		st.Partitions = append(st.Partitions, sp)
	}
	r.Topics = append(r.Topics, rt)
	resp.Topics = append(resp.Topics, st)
	fc, code := c.newContext(r)
	if code != 0 {
		t.Fatalf("new session: code %d", code)
	}
	id, _ := c.finish(fc, resp, nil)
	return id
}

// use sends an empty incremental fetch in session id at epoch.
func use(c *fetchSessionCache, id, epoch int32) int16 {
	r := kmsg.NewPtrFetchRequest()
	r.Version, r.SessionID, r.SessionEpoch = 12, id, epoch
	_, code := c.newContext(r)
	return code
}

// TestFetchSessionEviction follows Kafka's FetchSessionCache: a full cache evicts a session
// unused for the eviction age first; otherwise the smallest session older than the eviction age,
// only for a new session with more partitions; young sessions are never evicted.
func TestFetchSessionEviction(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	c := newFetchSessionCache(2, func() time.Time { return now })
	small := newSession(t, c, "a", 1)
	big := newSession(t, c, "b", 5)
	if small == 0 || big == 0 || c.len() != 2 {
		t.Fatalf("sessions %d %d, cache %d", small, big, c.len())
	}
	// Both young: nothing is evicted, whatever the size.
	if id := newSession(t, c, "c", 10); id != 0 {
		t.Fatalf("evicted a young session for %d", id)
	}
	// Old but in use: only a bigger session evicts the smallest.
	now = now.Add(fetchSessionEvictionAge + time.Second)
	if code := use(c, small, 1); code != 0 {
		t.Fatalf("use small: %d", code)
	}
	if code := use(c, big, 1); code != 0 {
		t.Fatalf("use big: %d", code)
	}
	if id := newSession(t, c, "d", 1); id != 0 {
		t.Fatal("a session of 1 partition evicted one of 1")
	}
	mid := newSession(t, c, "e", 2)
	if mid == 0 || use(c, small, 2) == 0 || use(c, big, 2) != 0 {
		t.Fatalf("a session of 2 partitions did not evict the one of 1 (mid %d)", mid)
	}
	// Unused for longer than the eviction age: the least recently used goes first.
	now = now.Add(time.Second)
	if use(c, mid, 1) != 0 {
		t.Fatal("use mid")
	}
	now = now.Add(fetchSessionEvictionAge)
	if use(c, mid, 2) != 0 {
		t.Fatal("use mid")
	}
	// big was last used more than the eviction age ago, mid just now.
	if id := newSession(t, c, "f", 1); id == 0 || use(c, big, 3) == 0 || use(c, mid, 3) != 0 {
		t.Fatalf("stale session not evicted (new %d)", id)
	}
}

// TestFetchSessionFilterAndRotate: an incremental response keeps only the partitions with records,
// a changed offset or an error, and the partitions that returned records move to the end of the
// session's fetch order (so that response max bytes do not starve the others).
func TestFetchSessionFilterAndRotate(t *testing.T) {
	c := newFetchSessionCache(10, time.Now)
	id := newSession(t, c, "t", 4) // baselines: HW 0, LSO 0, log start 0 (kmsg defaults)
	r := kmsg.NewPtrFetchRequest()
	r.Version, r.SessionID, r.SessionEpoch = 12, id, 1
	fc, code := c.newContext(r)
	if code != 0 || len(fc.items) != 4 {
		t.Fatalf("code %d, %d items", code, len(fc.items))
	}
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	st := kmsg.NewFetchResponseTopic()
	st.Topic = "t"
	for i := int32(0); i < 4; i++ {
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = i
		switch i {
		case 1:
			sp.HighWatermark = 5 // changed
		case 2:
			sp.ErrorCode = 6 // NOT_LEADER_FOR_PARTITION
		}
		st.Partitions = append(st.Partitions, sp)
	}
	resp.Topics = append(resp.Topics, st)
	secs := [][][]log.Section{{{{Len: 10}}, nil, nil, nil}} // records on partition 0
	got, secs := c.finish(fc, resp, secs)
	if got != id {
		t.Fatalf("session %d, want %d", got, id)
	}
	var parts []int32
	for _, p := range resp.Topics[0].Partitions {
		parts = append(parts, p.Partition)
	}
	if len(resp.Topics) != 1 || len(parts) != 3 || parts[0] != 0 || parts[1] != 1 || parts[2] != 2 || len(secs[0]) != 3 || len(secs[0][0]) != 1 {
		t.Fatalf("kept partitions %v with sections %v", parts, secs)
	}
	r.SessionEpoch = 2
	fc, _ = c.newContext(r)
	var order []int32
	for _, it := range fc.items {
		order = append(order, it.partition)
	}
	if len(order) != 4 || order[0] != 1 || order[1] != 2 || order[2] != 3 || order[3] != 0 {
		t.Fatalf("fetch order %v, want [1 2 3 0]", order)
	}
}
