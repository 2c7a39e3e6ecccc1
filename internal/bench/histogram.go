package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets, in the manner of HdrHistogram: values below
// 2^subBits nanoseconds are counted exactly, and every power-of-two range above that is split into
// 2^(subBits-1) equal sub-buckets, so a reported percentile is at most 1/2^(subBits-1) (0.8%) above
// the true value. Memory is fixed (a few tens of KiB) and Record neither allocates nor locks: it is
// safe to call from many goroutines while another reads percentiles for a progress line.
//
// The zero value is not usable; call newHistogram.
type Histogram struct {
	counts []atomic.Uint64
	total  atomic.Uint64
	min    atomic.Int64
	max    atomic.Int64
}

const (
	subBits  = 8
	half     = 1 << (subBits - 1) // sub-buckets per power of two above the linear range
	maxBits  = 44                 // values are clamped to 2^44-1 ns (about 4.9 hours)
	maxValue = 1<<maxBits - 1
)

func newHistogram() *Histogram {
	h := &Histogram{counts: make([]atomic.Uint64, bucketIndex(maxValue)+1)}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketIndex maps a value to its bucket. Values < 2^subBits map to themselves; above, the value
// is shifted right until it has subBits significant bits, and each shift step owns half buckets.
// INVARIANT: bucketIndex is monotonic and bucketLow(bucketIndex(v)) <= v <= bucketHigh(...).
func bucketIndex(v int64) int {
	shift := max(bits.Len64(uint64(v))-subBits, 0)
	return shift*half + int(v>>shift)
}

// bucketLow and bucketHigh are the smallest and largest value that map to bucket i.
func bucketLow(i int) int64 {
	if i < 2*half {
		return int64(i)
	}
	shift := i/half - 1
	return int64(i-shift*half) << shift
}

func bucketHigh(i int) int64 {
	if i < 2*half {
		return int64(i)
	}
	shift := i/half - 1
	return (int64(i-shift*half+1) << shift) - 1
}

// Record adds one observation; negative durations count as zero, and durations above maxValue
// as maxValue.
func (h *Histogram) Record(d time.Duration) {
	v := min(max(int64(d), 0), maxValue)
	h.counts[bucketIndex(v)].Add(1)
	h.total.Add(1)
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest recorded value, exact (0 when empty).
func (h *Histogram) Max() time.Duration {
	if h.total.Load() == 0 {
		return 0
	}
	return time.Duration(h.max.Load())
}

// Quantile returns the value at quantile q in [0,1]: the upper bound of the bucket holding the
// ceil(q*count)-th smallest value, capped at the exact maximum and floored at the exact minimum
// (0 when empty). Concurrent Records may or may not be counted.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := min(bucketHigh(i), h.max.Load())
			return time.Duration(max(v, h.min.Load()))
		}
	}
	return h.Max() // only when Records raced with the scan
}
