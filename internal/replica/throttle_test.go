package replica

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTestQuota(c *fakeClock, bound int64) *Quota {
	q := NewQuota(QuotaConfig{Samples: DefaultQuotaSamples, Window: DefaultQuotaWindow, Clock: c})
	q.SetBound(bound)
	return q
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

// The rate is Kafka's: the retained samples' bytes over their span, the span at least
// samples-1 windows, samples older than samples windows dropped.
func TestQuotaRateIsKafkasWindowedRate(t *testing.T) {
	c := newFakeClock()
	q := newTestQuota(c, Unlimited)
	if r := q.Rate(); r != 0 {
		t.Fatalf("rate of an empty quota %v", r)
	}
	q.Record(1000)
	if r := q.Rate(); !near(r, 100) { // 1000 bytes over the minimum span of 10 windows
		t.Fatalf("rate after 1000 bytes at once: %v, want 100", r)
	}
	c.Advance(5 * time.Second)
	if r := q.Rate(); !near(r, 100) {
		t.Fatalf("rate 5 s later: %v, want 100", r)
	}
	c.Advance(5500 * time.Millisecond) // 10.5 s: a new sample
	q.Record(1000)
	if r := q.Rate(); !near(r, 2000/10.5) {
		t.Fatalf("rate at 10.5 s: %v, want %v", r, 2000/10.5)
	}
	c.Advance(time.Second) // 11.5 s: the first sample is 11 windows old and dropped
	if r := q.Rate(); !near(r, 100) {
		t.Fatalf("rate at 11.5 s: %v, want 100 (first sample dropped)", r)
	}
	c.Advance(11 * time.Second)
	if r := q.Rate(); r != 0 {
		t.Fatalf("rate after every sample expired: %v", r)
	}
	if q.Recorded() != 2000 {
		t.Fatalf("recorded %d, want 2000", q.Recorded())
	}
}

func TestQuotaExceeded(t *testing.T) {
	c := newFakeClock()
	q := newTestQuota(c, Unlimited)
	q.Record(1 << 40)
	if q.Exceeded() {
		t.Fatal("an unlimited quota is exceeded")
	}
	q = newTestQuota(c, 100)
	q.Record(1000) // exactly 100 B/s: acceptable (Kafka's Quota.acceptable is <=)
	if q.Exceeded() {
		t.Fatal("exceeded at exactly the bound")
	}
	q.Record(1)
	if !q.Exceeded() {
		t.Fatal("not exceeded above the bound")
	}
	if q.Holds("t", 0, false) {
		t.Fatal("a partition that is not throttled is held")
	}
	q.SetThrottled(Throttled{"t": {All: true}})
	if !q.Holds("t", 0, false) {
		t.Fatal("an out-of-sync replica of a throttled partition is not held while the quota is exceeded")
	}
	if q.Holds("t", 0, true) {
		t.Fatal("an in-sync replica is held")
	}
	q.SetBound(Unlimited)
	if q.Exceeded() || q.Holds("t", 0, false) {
		t.Fatal("still exceeded after the bound was removed")
	}
	q.SetBound(200)
	if q.Exceeded() {
		t.Fatal("1001 bytes over 10 s exceed 200 B/s")
	}
	q.SetBound(-1)
	if q.Bound() != Unlimited {
		t.Fatalf("bound -1 is %d, want Unlimited", q.Bound())
	}
	var nilQuota *Quota
	if nilQuota.Holds("t", 0, false) {
		t.Fatal("a nil quota holds")
	}
}

func TestQuotaThrottledSet(t *testing.T) {
	q := NewQuota(QuotaConfig{})
	if q.IsThrottled("a", 0) {
		t.Fatal("throttled before any SetThrottled")
	}
	q.SetThrottled(Throttled{"a": {All: true}, "b": {Partitions: map[int32]bool{1: true, 3: true}}})
	for _, c := range []struct {
		topic string
		part  int32
		want  bool
	}{{"a", 0, true}, {"a", 7, true}, {"b", 1, true}, {"b", 3, true}, {"b", 0, false}, {"b", 2, false}, {"c", 0, false}} {
		if got := q.IsThrottled(c.topic, c.part); got != c.want {
			t.Errorf("IsThrottled(%s, %d) = %v, want %v", c.topic, c.part, got, c.want)
		}
	}
	q.SetThrottled(nil)
	if q.IsThrottled("a", 0) {
		t.Fatal("throttled after the set was cleared")
	}
}

// A fetcher that reads a batch whenever the quota is not exceeded (check before, record after,
// as the leader and the follower do) is held to the bound: in every interval of the quota's
// span the bytes stay within the bound plus one window's allowance and one batch, the long-run
// rate within the bound plus one batch per span, and the throttle does not starve it either.
func TestQuotaHoldsAFetchLoopToTheBound(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bound int64
		batch int64
		step  time.Duration
	}{
		{"small batches", 1 << 20, 16 << 10, 5 * time.Millisecond},
		{"large batches", 1 << 20, 512 << 10, 20 * time.Millisecond},
		{"batch above the bound", 100 << 10, 300 << 10, 50 * time.Millisecond},
		{"slow loop", 4 << 20, 2 << 20, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			q := newTestQuota(c, tc.bound)
			start := c.Now()
			const run = 120 * time.Second
			type rec struct {
				at time.Duration
				n  int64
			}
			var recs []rec
			for at := time.Duration(0); at < run; at += tc.step {
				if !q.Exceeded() {
					q.Record(tc.batch)
					recs = append(recs, rec{c.Now().Sub(start), tc.batch})
				}
				c.Advance(tc.step)
			}
			bound := float64(tc.bound)
			span := time.Duration(DefaultQuotaSamples) * DefaultQuotaWindow
			var total int64
			for _, r := range recs {
				total += r.n
			}
			if total != q.Recorded() {
				t.Fatalf("recorded %d, the loop read %d", q.Recorded(), total)
			}
			// Every interval of the quota's span, the first included: at most bound*(span+window)
			// plus one batch (checked before, recorded after; the oldest sample drops out a
			// window before the next has filled).
			limit := bound*(span+DefaultQuotaWindow).Seconds() + float64(tc.batch)
			j := 0
			var in int64
			for i := range recs {
				in += recs[i].n
				for recs[i].at-recs[j].at >= span {
					in -= recs[j].n
					j++
				}
				if float64(in) > limit {
					t.Fatalf("%d bytes in the %v up to %v, more than %v", in, span, recs[i].at, limit)
				}
			}
			// The second half of the run: close to the bound, neither starved by the throttle
			// nor above it by more than one batch per span.
			var late int64
			for _, r := range recs {
				if r.at >= run/2 {
					late += r.n
				}
			}
			got := float64(late) / (run / 2).Seconds()
			if got < 0.85*bound || got > 1.02*(bound+float64(tc.batch)/span.Seconds()) {
				t.Fatalf("steady rate %.0f B/s, bound %.0f B/s", got, bound)
			}
		})
	}
}

// multiResp answers several partitions of several topics: [topic, partition, hw, bytes].
type respPart struct {
	topic string
	part  int32
	hw    int64
	n     int
}

func multiResp(parts ...respPart) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	for _, p := range parts {
		i := slices.IndexFunc(resp.Topics, func(t kmsg.FetchResponseTopic) bool { return t.Topic == p.topic })
		if i < 0 {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = p.topic
			resp.Topics = append(resp.Topics, rt)
			i = len(resp.Topics) - 1
		}
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.HighWatermark = p.part, p.hw
		rp.RecordBatches = bytes.Repeat([]byte{1}, p.n)
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
	}
	return resp
}

// fetched lists the partitions of a request as "topic-partition".
func fetched(req *kmsg.FetchRequest) []string {
	var out []string
	if req == nil {
		return nil
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s-%d", t.Topic, p.Partition))
		}
	}
	return out
}

// The follower quota (ReplicaFetcherThread.shouldFollowerThrottle): while it is exceeded a
// throttled partition that is not in sync is left out of the fetch; a throttled one in sync and
// an unthrottled one are fetched; every throttled byte is recorded; once the rate falls the
// partition is fetched again.
func TestFollowerQuotaLeavesOutOfSyncThrottledPartitions(t *testing.T) {
	clock := newFakeClock()
	q := newTestQuota(clock, 100)
	q.SetThrottled(Throttled{"t": {All: true}})
	f := testFetcher(clock)
	f.cfg.quota = q
	behind, caughtUp, other := newFakeLog(), newFakeLog(), newFakeLog()
	f.add(tp{"t", 0}, [16]byte{}, behind, 1)
	f.add(tp{"t", 1}, [16]byte{}, caughtUp, 1)
	f.add(tp{"u", 0}, [16]byte{}, other, 1)
	req := f.buildFetch(clock.Now())
	if got := fetched(req); !slices.Equal(got, []string{"t-0", "t-1", "u-0"}) {
		t.Fatalf("fetch under the quota: %v", got)
	}
	// t-0 gets 1000 bytes of a 5000-offset log; t-1 gets 5 and is at the high watermark.
	f.applyFetch(req, multiResp(respPart{"t", 0, 5000, 1000}, respPart{"t", 1, 5, 5}, respPart{"u", 0, 9, 9}), clock.Now())
	if q.Recorded() != 1005 {
		t.Fatalf("recorded %d bytes, want the 1005 of the throttled partitions", q.Recorded())
	}
	if !q.Exceeded() {
		t.Fatalf("quota not exceeded at %v B/s", q.Rate())
	}
	if got := fetched(f.buildFetch(clock.Now())); !slices.Equal(got, []string{"t-1", "u-0"}) {
		t.Fatalf("fetch over the quota: %v, want t-0 (throttled, not in sync) left out", got)
	}
	// Removing the bound lets it through at once.
	q.SetBound(Unlimited)
	if got := fetched(f.buildFetch(clock.Now())); !slices.Equal(got, []string{"t-0", "t-1", "u-0"}) {
		t.Fatalf("fetch without a bound: %v", got)
	}
	q.SetBound(100)
	// So does the rate falling below the bound.
	clock.Advance(11 * time.Second)
	if q.Exceeded() {
		t.Fatalf("still exceeded after the samples expired: %v B/s", q.Rate())
	}
	if got := fetched(f.buildFetch(clock.Now())); !slices.Equal(got, []string{"t-0", "t-1", "u-0"}) {
		t.Fatalf("fetch once the rate fell: %v", got)
	}
}

// A fetcher whose every partition is held back by the quota sends nothing and looks again after
// the backoff (it never waits forever nor spins).
func TestFollowerQuotaHeldFetcherWaitsTheBackoff(t *testing.T) {
	clock := newFakeClock()
	q := newTestQuota(clock, 1)
	q.SetThrottled(Throttled{"t": {Partitions: map[int32]bool{0: true}}})
	q.Record(1000)
	f := testFetcher(clock)
	f.cfg.quota = q
	f.add(key0, [16]byte{}, newFakeLog(), 1)
	if req := f.buildFetch(clock.Now()); req != nil {
		t.Fatalf("fetch of a held partition: %v", fetched(req))
	}
	if d := f.nextWait(clock.Now()); d != testBackoff {
		t.Fatalf("next wait %v, want the backoff %v", d, testBackoff)
	}
	f.cfg.backoff = 0
	if d := f.nextWait(clock.Now()); d != minThrottleRecheck {
		t.Fatalf("next wait with no backoff %v, want %v", d, minThrottleRecheck)
	}
	q.SetThrottled(nil)
	if d := f.nextWait(clock.Now()); d != 0 {
		t.Fatalf("next wait of an unthrottled partition %v", d)
	}
}
