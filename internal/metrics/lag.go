package metrics

// Exact consumer lag: for each group this broker coordinates and each partition the group has
// committed an offset C for, with the partition's high watermark H,
//
//	lag         = max(0, H − C)
//	lag_seconds = 0 when C >= H, else max(0, now − timestamp of the first data record at or after C)
//
// The record at C is the first one the group has not consumed; its timestamp comes from the log
// (the broker reads the batch at C, skipping control batches and aborted transactions), so the
// time lag is exact, not interpolated from offset samples as external lag exporters do. H is the
// high watermark, not the last stable offset, as Kafka's tools and kafka_exporter use it. A
// partition without a committed offset (C = -1) is left out, as kafka_exporter leaves it.
//
// LagTracker computes it from a LagSource (the broker), caches it for a second, keeps a bounded
// history per group and a throughput history, and exports it as a prometheus.Collector under
// the names of kafka_exporter and kafka-lag-exporter, so their dashboards work unchanged.

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PartitionLag is one partition's lag for one group.
type PartitionLag struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	// HighWatermark is -1 when it could not be learned (the leader is unknown or unreachable);
	// Lag and LagSeconds are then -1 too.
	HighWatermark int64 `json:"high_watermark"`
	Lag           int64 `json:"lag"`
	// LagSeconds is now minus Timestamp, 0 when the group is caught up, -1 when unknown (the
	// record at the committed offset could not be read).
	LagSeconds float64 `json:"lag_seconds"`
	// Timestamp is the timestamp (ms) of the first unconsumed record (the first data record at
	// or after CommittedOffset), -1 when there is none (caught up) or it could not be read.
	Timestamp int64 `json:"timestamp"`
}

// GroupLag is a group's lag over every partition it has committed offsets for.
type GroupLag struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Members int    `json:"members"`
	// Partitions are sorted by topic and partition.
	Partitions []PartitionLag `json:"partitions"`
	// TotalLag is the sum of the known partition lags; MaxLagSeconds the largest known one.
	TotalLag      int64   `json:"total_lag"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// TopicLagPoint is one topic's share of a LagSample.
type TopicLagPoint struct {
	Topic         string  `json:"topic"`
	Lag           int64   `json:"lag"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// LagSample is one point of a group's lag history. It keeps the group's totals and one point
// per topic, not per partition: a history of a group over a 10 000-partition topic stays small.
type LagSample struct {
	Time          int64           `json:"time"` // unix ms
	TotalLag      int64           `json:"total_lag"`
	MaxLagSeconds float64         `json:"max_lag_seconds"`
	Topics        []TopicLagPoint `json:"topics,omitempty"`
}

// ThroughputSample is this broker's throughput over one interval (per second).
type ThroughputSample struct {
	Time       int64   `json:"time"` // unix ms, the end of the interval
	BytesIn    float64 `json:"bytes_in"`
	BytesOut   float64 `json:"bytes_out"`
	MessagesIn float64 `json:"messages_in"`
}

// CommittedOffset is what a LagSource knows of one partition of a group.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Committed int64 // -1: no commit
	// HighWatermark is the partition's high watermark, -1 when unknown.
	HighWatermark int64
	// Timestamp is the timestamp (ms) of the first data record at or after Committed, -1 when
	// there is none below the high watermark or it could not be read.
	Timestamp int64
}

// GroupOffsets is what a LagSource knows of one group.
type GroupOffsets struct {
	Group      string
	State      string
	Members    int
	Partitions []CommittedOffset
}

// LagSource is the broker side of a LagTracker.
type LagSource interface {
	// ConsumerGroups returns every group coordinated here with its committed offsets, each with
	// the high watermark and the timestamp of the record at the committed offset.
	ConsumerGroups(ctx context.Context) []GroupOffsets
}

// ComputeLag turns what the source knows of a group into its lag at now.
func ComputeLag(g GroupOffsets, now time.Time) GroupLag {
	out := GroupLag{Group: g.Group, State: g.State, Members: g.Members, Partitions: make([]PartitionLag, 0, len(g.Partitions))}
	nowMs := now.UnixMilli()
	for _, c := range g.Partitions {
		if c.Committed < 0 {
			continue
		}
		p := PartitionLag{Topic: c.Topic, Partition: c.Partition, CommittedOffset: c.Committed,
			HighWatermark: c.HighWatermark, Lag: -1, LagSeconds: -1, Timestamp: -1}
		switch {
		case c.HighWatermark < 0:
		case c.Committed >= c.HighWatermark:
			p.Lag, p.LagSeconds = 0, 0
		default:
			p.Lag = c.HighWatermark - c.Committed
			if c.Timestamp >= 0 {
				p.Timestamp = c.Timestamp
				p.LagSeconds = max(0, float64(nowMs-c.Timestamp)/1000)
			}
		}
		if p.Lag > 0 {
			out.TotalLag += p.Lag
		}
		out.MaxLagSeconds = max(out.MaxLagSeconds, p.LagSeconds)
		out.Partitions = append(out.Partitions, p)
	}
	sort.Slice(out.Partitions, func(i, j int) bool {
		a, b := out.Partitions[i], out.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out
}

// TrafficTotals are cumulative counters of this broker's traffic (all topics), for the throughput ring.
type TrafficTotals struct {
	BytesIn, BytesOut, MessagesIn float64
}

// LagConfig configures a LagTracker.
type LagConfig struct {
	Source LagSource
	// Totals reads the cumulative traffic counters; nil keeps no throughput history.
	Totals func() TrafficTotals
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// CacheFor is how long a computed lag is served again (default 1 s).
	CacheFor time.Duration
	// HistorySize is the samples kept per group (default 360: an hour at 10 s);
	// HistoryInterval the sampler's period, reported with the history (default 10 s).
	HistorySize     int
	HistoryInterval time.Duration
	// ThroughputSize is the throughput samples kept (default 300: five minutes at 1 s).
	ThroughputSize int
	// Timeout bounds one computation (remote leaders; default 5 s).
	Timeout time.Duration
}

// LagTracker computes consumer lag, keeps its history and exports it as Prometheus metrics.
// Its methods are safe for concurrent use.
type LagTracker struct {
	cfg LagConfig

	computeMu sync.Mutex // one computation at a time; the others wait and share its result

	mu struct {
		sync.Mutex
		at      time.Time // when groups was computed (zero: never)
		groups  []GroupLag
		history map[string]*Ring[LagSample]
		thr     *Ring[ThroughputSample]
		// last is the previous Totals reading and its time (zero: none yet).
		last   TrafficTotals
		lastAt time.Time
	}
}

// NewLagTracker returns a tracker reading cfg.Source.
func NewLagTracker(cfg LagConfig) *LagTracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheFor <= 0 {
		cfg.CacheFor = time.Second
	}
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = 360
	}
	if cfg.HistoryInterval <= 0 {
		cfg.HistoryInterval = 10 * time.Second
	}
	if cfg.ThroughputSize <= 0 {
		cfg.ThroughputSize = 300
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	t := &LagTracker{cfg: cfg}
	t.mu.history = map[string]*Ring[LagSample]{}
	t.mu.thr = NewRing[ThroughputSample](cfg.ThroughputSize)
	return t
}

// HistoryInterval is the period of the lag history's samples.
func (t *LagTracker) HistoryInterval() time.Duration { return t.cfg.HistoryInterval }

// ThroughputInterval is the period of the throughput samples.
func (t *LagTracker) ThroughputInterval() time.Duration { return time.Second }

// Groups returns the lag of every group coordinated here, sorted by group id, computed at most
// CacheFor ago. The slice and its contents are the caller's.
func (t *LagTracker) Groups() []GroupLag {
	return cloneGroups(t.groups(false))
}

// Group returns one group's lag, false when this broker does not coordinate it.
func (t *LagTracker) Group(id string) (GroupLag, bool) {
	gs := t.groups(false)
	i := sort.Search(len(gs), func(i int) bool { return gs[i].Group >= id })
	if i < len(gs) && gs[i].Group == id {
		return cloneGroups(gs[i : i+1])[0], true
	}
	return GroupLag{}, false
}

// History returns a group's lag history, oldest first (nil when none is kept).
func (t *LagTracker) History(id string) []LagSample {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.mu.history[id]; ok {
		return r.Values()
	}
	return nil
}

// Throughput returns this broker's throughput history, oldest first, one sample a second.
func (t *LagTracker) Throughput() []ThroughputSample {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.thr.Values()
}

// groups returns the cached lag (shared: not to be modified), computing it when older than
// CacheFor or when fresh is set.
func (t *LagTracker) groups(fresh bool) []GroupLag {
	t.computeMu.Lock()
	defer t.computeMu.Unlock()
	t.mu.Lock()
	at, gs := t.mu.at, t.mu.groups
	t.mu.Unlock()
	now := t.cfg.Now()
	if !fresh && !at.IsZero() && now.Sub(at) < t.cfg.CacheFor && !now.Before(at) {
		return gs
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout)
	defer cancel()
	src := t.cfg.Source.ConsumerGroups(ctx)
	now = t.cfg.Now()
	gs = make([]GroupLag, 0, len(src))
	for _, g := range src {
		gs = append(gs, ComputeLag(g, now))
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].Group < gs[j].Group })
	t.mu.Lock()
	t.mu.at, t.mu.groups = now, gs
	t.mu.Unlock()
	return gs
}

func cloneGroups(gs []GroupLag) []GroupLag {
	out := make([]GroupLag, len(gs))
	for i, g := range gs {
		out[i] = g
		out[i].Partitions = append([]PartitionLag(nil), g.Partitions...)
	}
	return out
}

// SampleLag computes the lag now and appends a sample to each group's history. The history of
// a group that is no longer coordinated here is forgotten.
func (t *LagTracker) SampleLag() {
	gs := t.groups(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := t.mu.at.UnixMilli()
	seen := make(map[string]bool, len(gs))
	for _, g := range gs {
		seen[g.Group] = true
		r, ok := t.mu.history[g.Group]
		if !ok {
			r = NewRing[LagSample](t.cfg.HistorySize)
			t.mu.history[g.Group] = r
		}
		r.Add(sampleOf(g, ms))
	}
	for id := range t.mu.history {
		if !seen[id] {
			delete(t.mu.history, id)
		}
	}
}

func sampleOf(g GroupLag, ms int64) LagSample {
	s := LagSample{Time: ms, TotalLag: g.TotalLag, MaxLagSeconds: g.MaxLagSeconds}
	for _, p := range g.Partitions { // sorted by topic
		if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != p.Topic {
			s.Topics = append(s.Topics, TopicLagPoint{Topic: p.Topic})
		}
		tp := &s.Topics[len(s.Topics)-1]
		if p.Lag > 0 {
			tp.Lag += p.Lag
		}
		tp.MaxLagSeconds = max(tp.MaxLagSeconds, p.LagSeconds)
	}
	return s
}

// SampleThroughput reads Totals and appends the rates since the previous reading (the first
// reading only sets the base).
func (t *LagTracker) SampleThroughput() {
	if t.cfg.Totals == nil {
		return
	}
	cur, now := t.cfg.Totals(), t.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	last, lastAt := t.mu.last, t.mu.lastAt
	t.mu.last, t.mu.lastAt = cur, now
	if lastAt.IsZero() {
		return
	}
	secs := now.Sub(lastAt).Seconds()
	if secs <= 0 {
		return
	}
	rate := func(a, b float64) float64 { return max(0, b-a) / secs }
	t.mu.thr.Add(ThroughputSample{Time: now.UnixMilli(), BytesIn: rate(last.BytesIn, cur.BytesIn),
		BytesOut: rate(last.BytesOut, cur.BytesOut), MessagesIn: rate(last.MessagesIn, cur.MessagesIn)})
}

// The metrics: kafka_exporter's names (consumergroup label), ours for the time lag, and
// kafka-lag-exporter's (group label).
var (
	descGroupLag = prometheus.NewDesc("kafka_consumergroup_lag",
		"Current approximate lag of a consumer group at topic/partition (high watermark minus committed offset).",
		[]string{"consumergroup", "topic", "partition"}, nil)
	descGroupCurrentOffset = prometheus.NewDesc("kafka_consumergroup_current_offset",
		"Current committed offset of a consumer group at topic/partition.",
		[]string{"consumergroup", "topic", "partition"}, nil)
	descGroupLagSum = prometheus.NewDesc("kafka_consumergroup_lag_sum",
		"Current approximate lag of a consumer group at topic for all partitions.",
		[]string{"consumergroup", "topic"}, nil)
	descGroupMembers = prometheus.NewDesc("kafka_consumergroup_members",
		"Number of members in the consumer group.", []string{"consumergroup"}, nil)
	descGroupLagSeconds = prometheus.NewDesc("kafka_consumergroup_lag_seconds",
		"Age of the first unconsumed record of a consumer group at topic/partition (now minus its timestamp; 0 when caught up).",
		[]string{"consumergroup", "topic", "partition"}, nil)

	descLELag = prometheus.NewDesc("kafka_consumergroup_group_lag",
		"Group offset lag of a partition.", []string{"group", "topic", "partition"}, nil)
	descLELagSeconds = prometheus.NewDesc("kafka_consumergroup_group_lag_seconds",
		"Group time lag of a partition (exact: from the timestamp of the first unconsumed record).",
		[]string{"group", "topic", "partition"}, nil)
	descLEMaxLag = prometheus.NewDesc("kafka_consumergroup_group_max_lag",
		"Max group offset lag.", []string{"group"}, nil)
	descLEMaxLagSeconds = prometheus.NewDesc("kafka_consumergroup_group_max_lag_seconds",
		"Max group time lag.", []string{"group"}, nil)
	descLESumLag = prometheus.NewDesc("kafka_consumergroup_group_sum_lag",
		"Sum of group offset lag.", []string{"group"}, nil)
	descLETopicSumLag = prometheus.NewDesc("kafka_consumergroup_group_topic_sum_lag",
		"Sum of group offset lag across topic partitions.", []string{"group", "topic"}, nil)
)

// Describe implements prometheus.Collector.
func (t *LagTracker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGroupLag, descGroupCurrentOffset, descGroupLagSum, descGroupMembers,
		descGroupLagSeconds, descLELag, descLELagSeconds, descLEMaxLag, descLEMaxLagSeconds, descLESumLag,
		descLETopicSumLag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the lag computed at most CacheFor ago.
func (t *LagTracker) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, g := range t.groups(false) {
		gauge(descGroupMembers, float64(g.Members), g.Group)
		var maxLag int64
		var topic string
		var topicSum int64
		flush := func() {
			if topic != "" {
				gauge(descGroupLagSum, float64(topicSum), g.Group, topic)
				gauge(descLETopicSumLag, float64(topicSum), g.Group, topic)
			}
		}
		for _, p := range g.Partitions {
			if p.Topic != topic {
				flush()
				topic, topicSum = p.Topic, 0
			}
			if p.Lag >= 0 {
				topicSum += p.Lag
				maxLag = max(maxLag, p.Lag)
			}
		}
		// The per-partition gauges in the order the registry sorts them into (group, partition
		// as a string, topic: RegistryOrder), so its sort of each family finds them sorted.
		for _, lp := range RegistryOrder(g.Partitions, func(p PartitionLag) string { return p.Topic }, func(p PartitionLag) int32 { return p.Partition }) {
			p, part := lp.Item, lp.Partition
			gauge(descGroupCurrentOffset, float64(p.CommittedOffset), g.Group, p.Topic, part)
			if p.Lag < 0 {
				continue // the high watermark is unknown
			}
			gauge(descGroupLag, float64(p.Lag), g.Group, p.Topic, part)
			gauge(descLELag, float64(p.Lag), g.Group, p.Topic, part)
			if p.LagSeconds >= 0 {
				gauge(descGroupLagSeconds, p.LagSeconds, g.Group, p.Topic, part)
				gauge(descLELagSeconds, p.LagSeconds, g.Group, p.Topic, part)
			}
		}
		flush()
		if len(g.Partitions) > 0 {
			gauge(descLEMaxLag, float64(maxLag), g.Group)
			gauge(descLEMaxLagSeconds, g.MaxLagSeconds, g.Group)
			gauge(descLESumLag, float64(g.TotalLag), g.Group)
		}
	}
}
