package partition

import (
	"slices"
	"testing"
	"time"
)

// TestISRDecisions drives the plain ISR functions step by step on a fake clock: one leader (1)
// and two followers, replica.lag.time.max.ms 10 s.
func TestISRDecisions(t *testing.T) {
	t0 := time.UnixMilli(0)
	lag := 10 * time.Second
	v := ISRView{Leader: 1, LeaderLEO: 100, HighWatermark: 50, LeaderEpochStart: 40, Replicas: []int32{1, 2, 3},
		ISR: []int32{1, 2, 3}, MinISR: 2, Now: t0, LagMax: lag,
		Followers: map[int32]ReplicaState{2: newReplicaState(2, true, t0), 3: newReplicaState(3, true, t0)},
		Eligible:  map[int32]int64{2: 5, 3: 5}}
	step := func(now time.Duration, fetches map[int32]int64) {
		v.Now = t0.Add(now)
		for id, off := range fetches {
			r := v.Followers[id]
			r.Fetched(off, v.LeaderLEO, 5, v.Now)
			v.Followers[id] = r
		}
		v.HighWatermark = NextHighWatermark(v)
	}
	for _, tc := range []struct {
		at      time.Duration
		fetches map[int32]int64
		hw      int64
		propose []int32 // nil: no change
	}{
		{0, nil, 50, nil}, // nobody fetched: unknown LEOs hold the HW
		{1 * time.Second, map[int32]int64{2: 100}, 50, nil}, // 3 still unknown
		{2 * time.Second, map[int32]int64{3: 70}, 70, nil},
		{9 * time.Second, map[int32]int64{2: 100}, 70, nil}, // 3 lags but within 10 s of t0
		{11 * time.Second, map[int32]int64{2: 100}, 70, []int32{1, 2}},
	} {
		step(tc.at, tc.fetches)
		if v.HighWatermark != tc.hw {
			t.Fatalf("at %v: high watermark %d, want %d", tc.at, v.HighWatermark, tc.hw)
		}
		got, ok := ProposeISR(v)
		if ok != (tc.propose != nil) || !slices.Equal(got, tc.propose) {
			t.Fatalf("at %v: proposed %v %v, want %v", tc.at, got, ok, tc.propose)
		}
	}
	// The shrink is in flight: nothing more is proposed, and 3 still holds the HW (maximal ISR).
	v.Pending = []int32{1, 2}
	if _, ok := ProposeISR(v); ok {
		t.Fatal("proposal while one is in flight")
	}
	if hw := NextHighWatermark(v); hw != 70 {
		t.Fatalf("high watermark %d during the pending shrink, want 70", hw)
	}
	// Committed: the HW moves to the leader's end, 3 no longer counts (not caught up).
	v.ISR, v.Pending = []int32{1, 2}, nil
	step(12*time.Second, nil)
	if v.HighWatermark != 100 {
		t.Fatalf("high watermark %d after the shrink, want 100", v.HighWatermark)
	}
	// 3 catches up: a caught-up eligible replica counts for the HW even outside the ISR, and is
	// proposed for expansion; with another broker epoch it is neither.
	v.LeaderLEO = 120
	step(13*time.Second, map[int32]int64{2: 120, 3: 120})
	if v.HighWatermark != 120 {
		t.Fatalf("high watermark %d, want 120", v.HighWatermark)
	}
	if got, ok := ProposeISR(v); !ok || !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("expansion %v %v", got, ok)
	}
	v.Eligible = map[int32]int64{2: 5, 3: 6}
	if got := ExpandCandidates(v); len(got) != 0 {
		t.Fatalf("expansion candidates %v with a stale broker epoch", got)
	}
	// Below the leader epoch start nobody joins, whatever its LEO.
	v.Eligible = nil
	v.LeaderEpochStart = 130
	if got := ExpandCandidates(v); len(got) != 0 {
		t.Fatalf("expansion candidates %v below the epoch start", got)
	}
	if EffectiveMinISR(2, 1) != 1 || EffectiveMinISR(2, 3) != 2 || EffectiveMinISR(0, 3) != 1 {
		t.Fatal("EffectiveMinISR")
	}
	if got := MaximalISR([]int32{1, 2}, []int32{1, 3}); !slices.Equal(got, []int32{1, 2, 3}) || maximalISRSize([]int32{1, 2}, []int32{1, 3}) != 3 {
		t.Fatalf("MaximalISR %v", got)
	}
}
