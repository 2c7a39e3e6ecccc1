package metrics

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moldau/moldau/internal/metrics/metricstest"
)

func TestComputeLag(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	g := ComputeLag(GroupOffsets{Group: "g", Members: 2, Partitions: []CommittedOffset{
		{Topic: "b", Partition: 0, Committed: 10, HighWatermark: 15, Timestamp: 990_000}, // 10 s behind
		{Topic: "a", Partition: 1, Committed: 7, HighWatermark: 7, Timestamp: -1},        // caught up
		{Topic: "a", Partition: 0, Committed: 9, HighWatermark: 5, Timestamp: -1},        // past the HW (truncated): 0
		{Topic: "a", Partition: 2, Committed: -1, HighWatermark: 5},                      // no commit: left out
		{Topic: "a", Partition: 3, Committed: 1, HighWatermark: 4, Timestamp: -1},        // record unread
		{Topic: "a", Partition: 4, Committed: 1, HighWatermark: -1},                      // HW unknown
		{Topic: "b", Partition: 1, Committed: 0, HighWatermark: 1, Timestamp: 1_000_500}, // from the future: clamped
	}}, now)
	want := []PartitionLag{
		{"a", 0, 9, 5, 0, 0, -1},
		{"a", 1, 7, 7, 0, 0, -1},
		{"a", 3, 1, 4, 3, -1, -1},
		{"a", 4, 1, -1, -1, -1, -1},
		{"b", 0, 10, 15, 5, 10, 990_000},
		{"b", 1, 0, 1, 1, 0, 1_000_500},
	}
	if len(g.Partitions) != len(want) {
		t.Fatalf("partitions %+v", g.Partitions)
	}
	for i := range want {
		if g.Partitions[i] != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i, g.Partitions[i], want[i])
		}
	}
	if g.TotalLag != 9 || g.MaxLagSeconds != 10 || g.Members != 2 {
		t.Errorf("totals %d %v members %d", g.TotalLag, g.MaxLagSeconds, g.Members)
	}
}

func TestRing(t *testing.T) {
	r := NewRing[int](3)
	if _, ok := r.Last(); ok || len(r.Values()) != 0 {
		t.Fatal("empty ring has values")
	}
	for i := 1; i <= 7; i++ {
		r.Add(i)
		last, _ := r.Last()
		if last != i {
			t.Fatalf("last %d after adding %d", last, i)
		}
	}
	if got := r.Values(); len(got) != 3 || got[0] != 5 || got[1] != 6 || got[2] != 7 || r.Len() != 3 || r.Cap() != 3 {
		t.Fatalf("values %v", got)
	}
}

// fakeSource is a LagSource whose groups a test sets.
type fakeSource struct {
	mu     sync.Mutex
	groups []GroupOffsets
	calls  int
}

func (f *fakeSource) ConsumerGroups(context.Context) []GroupOffsets {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return append([]GroupOffsets(nil), f.groups...)
}

func (f *fakeSource) set(gs ...GroupOffsets) {
	f.mu.Lock()
	f.groups = gs
	f.mu.Unlock()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestLagTrackerHistoryBoundedAndForgotten(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(5_000_000)}
	src := &fakeSource{}
	tr := NewLagTracker(LagConfig{Source: src, Now: clock.Now, HistorySize: 4})
	g1 := GroupOffsets{Group: "g1", Partitions: []CommittedOffset{{Topic: "t", Partition: 0, Committed: 0, HighWatermark: 3, Timestamp: 4_990_000}}}
	g2 := GroupOffsets{Group: "g2", Partitions: []CommittedOffset{{Topic: "t", Partition: 0, Committed: 3, HighWatermark: 3, Timestamp: -1}}}
	src.set(g1, g2)
	for i := 0; i < 10; i++ {
		tr.SampleLag()
		clock.advance(10 * time.Second)
	}
	h := tr.History("g1")
	if len(h) != 4 {
		t.Fatalf("history of %d samples, want 4 (bounded)", len(h))
	}
	// The oldest kept is the 7th sample (i = 6), at 5 000 s + 60 s; its lag is 70 s.
	if h[0].Time != 5_060_000 || h[3].Time != 5_090_000 || h[3].TotalLag != 3 || h[3].MaxLagSeconds != 100 {
		t.Fatalf("history %+v", h)
	}
	if len(h[3].Topics) != 1 || h[3].Topics[0] != (TopicLagPoint{"t", 3, 100}) {
		t.Fatalf("topics %+v", h[3].Topics)
	}
	src.set(g2) // g1 deleted
	tr.SampleLag()
	if h := tr.History("g1"); h != nil {
		t.Fatalf("history of a vanished group kept: %+v", h)
	}
	if _, ok := tr.Group("g1"); ok {
		t.Fatal("vanished group still listed")
	}
	if g, ok := tr.Group("g2"); !ok || g.TotalLag != 0 || len(tr.History("g2")) != 4 {
		t.Fatalf("g2 %+v %v", g, ok)
	}
}

func TestLagTrackerCachesForOneSecond(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(1_000)}
	src := &fakeSource{}
	tr := NewLagTracker(LagConfig{Source: src, Now: clock.Now})
	tr.Groups()
	tr.Groups()
	if src.calls != 1 {
		t.Fatalf("%d computations within a second", src.calls)
	}
	clock.advance(time.Second)
	tr.Groups()
	if src.calls != 2 {
		t.Fatalf("%d computations after a second", src.calls)
	}
}

func TestThroughputRing(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(0)}
	var totals TrafficTotals
	tr := NewLagTracker(LagConfig{Source: &fakeSource{}, Now: clock.Now, ThroughputSize: 5,
		Totals: func() TrafficTotals { return totals }})
	for i := 0; i < 8; i++ {
		tr.SampleThroughput()
		clock.advance(time.Second)
		totals.BytesIn += 1000
		totals.BytesOut += 2000
		totals.MessagesIn += float64(i)
	}
	s := tr.Throughput()
	if len(s) != 5 {
		t.Fatalf("%d samples, want 5", len(s))
	}
	last := s[4]
	if last.Time != 7_000 || last.BytesIn != 1000 || last.BytesOut != 2000 || last.MessagesIn != 6 {
		t.Fatalf("last sample %+v", last)
	}
}

func TestLagCollectorNames(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(100_000)}
	src := &fakeSource{}
	src.set(GroupOffsets{Group: "g", Members: 1, Partitions: []CommittedOffset{
		{Topic: "t", Partition: 0, Committed: 12, HighWatermark: 20, Timestamp: 95_000},
		{Topic: "t", Partition: 1, Committed: 4, HighWatermark: 6, Timestamp: 99_000},
	}})
	tr := NewLagTracker(LagConfig{Source: src, Now: clock.Now})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tr)
	want := map[string]float64{
		`kafka_consumergroup_group_lag{group="g",partition="0",topic="t"}`:              8,
		`kafka_consumergroup_group_lag{group="g",partition="1",topic="t"}`:              2,
		`kafka_consumergroup_group_lag_seconds{group="g",partition="0",topic="t"}`:      5,
		`kafka_consumergroup_group_lag_seconds{group="g",partition="1",topic="t"}`:      1,
		`kafka_consumergroup_group_max_lag{group="g"}`:                                  8,
		`kafka_consumergroup_group_max_lag_seconds{group="g"}`:                          5,
		`kafka_consumergroup_group_sum_lag{group="g"}`:                                  10,
		`kafka_consumergroup_group_topic_sum_lag{group="g",topic="t"}`:                  10,
		`kafka_consumergroup_lag{consumergroup="g",partition="0",topic="t"}`:            8,
		`kafka_consumergroup_lag{consumergroup="g",partition="1",topic="t"}`:            2,
		`kafka_consumergroup_lag_seconds{consumergroup="g",partition="0",topic="t"}`:    5,
		`kafka_consumergroup_lag_seconds{consumergroup="g",partition="1",topic="t"}`:    1,
		`kafka_consumergroup_lag_sum{consumergroup="g",topic="t"}`:                      10,
		`kafka_consumergroup_members{consumergroup="g"}`:                                1,
		`kafka_consumergroup_current_offset{consumergroup="g",partition="0",topic="t"}`: 12,
		`kafka_consumergroup_current_offset{consumergroup="g",partition="1",topic="t"}`: 4,
	}
	got := gatherSeries(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}
	// The group goes: its series go.
	src.set()
	clock.advance(time.Second)
	if got := gatherSeries(t, reg); len(got) != 0 {
		t.Fatalf("series left after the group went: %v", got)
	}
}

// gatherSeries gathers reg into name{labels sorted by name} -> value.
func gatherSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() { // sorted by name
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestLagCollectorEmitsInRegistryOrder: the lag collector emits each family's series in the
// order the Prometheus registry sorts them into (label values in label-name order: group,
// partition as a string, topic), so that sort, run on every scrape, finds them sorted; at
// 10 000 partitions it was the largest cost of a scrape. Partitions 0..11 of two topics make
// the string order ("10" < "2") differ from the numeric one.
func TestLagCollectorEmitsInRegistryOrder(t *testing.T) {
	clock := &fakeClock{now: time.UnixMilli(100_000)}
	src := &fakeSource{}
	var g1, g2 []CommittedOffset
	for _, topic := range []string{"a", "b"} {
		for p := range int32(12) {
			g1 = append(g1, CommittedOffset{Topic: topic, Partition: p, Committed: 1, HighWatermark: 5, Timestamp: 95_000})
			g2 = append(g2, CommittedOffset{Topic: topic, Partition: p, Committed: 2, HighWatermark: 5, Timestamp: 96_000})
		}
	}
	src.set(GroupOffsets{Group: "g2", Partitions: g2}, GroupOffsets{Group: "g1", Partitions: g1})
	tr := NewLagTracker(LagConfig{Source: src, Now: clock.Now})
	metricstest.AssertRegistryOrder(t, tr, 48)
}

// BenchmarkLagGather10k gathers the lag collector's series of one group committed on 10 000
// partitions through a registry, as a /metrics scrape does (encoding not included).
func BenchmarkLagGather10k(b *testing.B) {
	clock := &fakeClock{now: time.UnixMilli(100_000)}
	src := &fakeSource{}
	var ps []CommittedOffset
	for p := range int32(10_000) {
		ps = append(ps, CommittedOffset{Topic: "big", Partition: p, Committed: 1, HighWatermark: 3, Timestamp: 95_000})
	}
	src.set(GroupOffsets{Group: "g10k", Members: 1, Partitions: ps})
	tr := NewLagTracker(LagConfig{Source: src, Now: clock.Now, CacheFor: time.Hour})
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr)
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if len(mfs) == 0 {
			b.Fatal("nothing gathered")
		}
	}
}
