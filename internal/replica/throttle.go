package replica

// Replication quotas (Kafka's KIP-73, ReplicationQuotaManager). A broker has two: the leader
// quota bounds the bytes it serves to followers of throttled partitions, the follower quota the
// bytes it fetches for throttled partitions it follows. Each is a bound in bytes per second, a
// windowed rate of the bytes recorded, and the set of partitions it throttles. The rules, as in
// Kafka's ReplicaManager.shouldLeaderThrottle and ReplicaFetcherThread.shouldFollowerThrottle:
//
//   - a throttled partition is held back (the leader returns no records for it, the follower
//     leaves it out of its fetch) only while the quota is exceeded and the follower replica is
//     not in sync: an in-sync replica is never throttled, so the throttle cannot shrink the ISR;
//   - every byte of a throttled partition is recorded, in-sync replicas' included, so that all
//     replication traffic of the throttled partitions together stays within the bound;
//   - the quota is checked before a read or a fetch and the bytes recorded after it, so one
//     response (at most replica.fetch.response.max.bytes) may go over the bound.
//
// The rate is Kafka's Rate over a SampledStat: Samples windows of Window each, the oldest
// dropped once Samples windows old; the rate is the bytes of the retained samples divided by
// the time they span, counted as at least Samples-1 windows. A quota set on an idle broker
// therefore lets about (Samples-1) windows' worth of bytes through at once, then the bound.

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Kafka's defaults: replication.quota.window.num and replication.quota.window.size.seconds.
const (
	DefaultQuotaSamples = 11
	DefaultQuotaWindow  = time.Second
)

// Unlimited is the bound of a quota that throttles nothing (Kafka's Long.MaxValue default of
// the *.replication.throttled.rate keys).
const Unlimited int64 = math.MaxInt64

// QuotaClock is the time a Quota measures by.
type QuotaClock interface{ Now() time.Time }

// QuotaConfig configures a Quota.
type QuotaConfig struct {
	Samples int           // replication.quota.window.num (default 11)
	Window  time.Duration // replication.quota.window.size.seconds (default 1 s)
	Clock   QuotaClock    // default: the wall clock
}

// Throttled is the set of partitions a quota throttles, by topic: nil partitions with all set
// mean every partition of the topic ("*").
type Throttled map[string]ThrottledPartitions

// ThrottledPartitions are the throttled partitions of one topic.
type ThrottledPartitions struct {
	All        bool
	Partitions map[int32]bool
}

// Quota is one replication quota (Kafka's ReplicationQuotaManager). Safe for concurrent use.
type Quota struct {
	samples int
	window  time.Duration
	clock   QuotaClock

	throttled atomic.Pointer[Throttled] // replaced whole by SetThrottled, never modified

	mu struct {
		sync.Mutex // leaf: nothing else is locked while it is held
		bound      int64
		stat       sampledStat
		recorded   int64 // every byte recorded since NewQuota
	}
}

// NewQuota returns a quota with no bound (Unlimited) and no throttled partition.
func NewQuota(cfg QuotaConfig) *Quota {
	if cfg.Samples <= 0 {
		cfg.Samples = DefaultQuotaSamples
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultQuotaWindow
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	q := &Quota{samples: cfg.Samples, window: cfg.Window, clock: cfg.Clock}
	q.mu.bound = Unlimited
	q.mu.stat = sampledStat{samples: cfg.Samples, window: cfg.Window}
	q.throttled.Store(&Throttled{})
	return q
}

// SetBound sets the bound in bytes per second (Kafka's updateQuota); a negative bound or
// Unlimited means no throttle. The bytes already recorded keep counting against the new bound.
func (q *Quota) SetBound(bytesPerSecond int64) {
	if bytesPerSecond < 0 {
		bytesPerSecond = Unlimited
	}
	q.mu.Lock()
	q.mu.bound = bytesPerSecond
	q.mu.Unlock()
}

// Bound is the bound in bytes per second (Unlimited: none).
func (q *Quota) Bound() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.bound
}

// Exceeded reports whether the measured rate is above the bound (Kafka's isQuotaExceeded).
func (q *Quota) Exceeded() bool {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.mu.bound == Unlimited {
		return false
	}
	return q.mu.stat.rate(now) > float64(q.mu.bound)
}

// Rate is the measured rate in bytes per second.
func (q *Quota) Rate() float64 {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.stat.rate(now)
}

// Record counts n bytes of throttled partitions against the quota.
func (q *Quota) Record(n int64) {
	if n <= 0 {
		return
	}
	now := q.clock.Now()
	q.mu.Lock()
	q.mu.stat.record(now, n)
	q.mu.recorded += n
	q.mu.Unlock()
}

// Recorded is the total of the bytes recorded since the quota was made (the accounting tests
// and metrics read).
func (q *Quota) Recorded() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.recorded
}

// SetThrottled replaces the set of throttled partitions (Kafka's markThrottled/removeThrottle
// for every topic at once). t is kept and must not be modified afterwards.
func (q *Quota) SetThrottled(t Throttled) {
	if t == nil {
		t = Throttled{}
	}
	q.throttled.Store(&t)
}

// IsThrottled reports whether a partition is throttled by this quota (whether or not the quota
// is exceeded now).
func (q *Quota) IsThrottled(topic string, partition int32) bool {
	tp, ok := (*q.throttled.Load())[topic]
	return ok && (tp.All || tp.Partitions[partition])
}

// Holds reports whether a throttled partition's replica that is not in sync is held back now:
// the partition is throttled and the quota exceeded. In-sync replicas are never held back.
func (q *Quota) Holds(topic string, partition int32, inSync bool) bool {
	return q != nil && !inSync && q.IsThrottled(topic, partition) && q.Exceeded()
}

// sampledStat is Kafka's SampledStat with a Rate over it. REQUIRES: Quota.mu.
type sampledStat struct {
	samples int
	window  time.Duration
	ring    []sample // grows to samples entries, then reused
	current int
}

type sample struct {
	start time.Time
	bytes int64
}

func (s *sampledStat) record(now time.Time, n int64) {
	if len(s.ring) == 0 {
		s.ring = append(s.ring, sample{start: now})
		s.current = 0
	}
	if cur := &s.ring[s.current]; now.Sub(cur.start) >= s.window {
		// The current sample is complete: advance to the next (a new one until there are
		// `samples`, then the oldest, reset).
		s.current = (s.current + 1) % s.samples
		if s.current >= len(s.ring) {
			s.ring = append(s.ring, sample{start: now})
		} else {
			s.ring[s.current] = sample{start: now}
		}
	}
	s.ring[s.current].bytes += n
}

// rate is the bytes of the samples not yet expired over the time they span, that time counted as
// at least samples-1 whole windows (Kafka's Rate.windowSize), never under a millisecond.
func (s *sampledStat) rate(now time.Time) float64 {
	expire := time.Duration(s.samples) * s.window
	var total int64
	oldest := now
	for i := range s.ring {
		if now.Sub(s.ring[i].start) >= expire {
			s.ring[i] = sample{start: now} // purgeObsoleteSamples
		}
		total += s.ring[i].bytes
		if s.ring[i].start.Before(oldest) {
			oldest = s.ring[i].start
		}
	}
	elapsed := now.Sub(oldest)
	if full, minFull := int(elapsed/s.window), s.samples-1; full < minFull {
		elapsed += time.Duration(minFull-full) * s.window
	}
	if elapsed < time.Millisecond {
		elapsed = time.Millisecond
	}
	return float64(total) / elapsed.Seconds()
}
