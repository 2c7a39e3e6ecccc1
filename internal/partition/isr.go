package partition

// The leader's replication decisions as plain functions over plain state, as Kafka's
// Partition.scala keeps them (maybeIncrementLeaderHW, getOutOfSyncReplicas, isFollowerInSync,
// isReplicaIsrEligible): the Partition gathers an ISRView under its lock and applies what these
// return, so a test can drive them step by step with a fake clock.
//
// INVARIANTS kept here:
//   - the high watermark never goes back (NextHighWatermark never answers below the current one)
//     and never passes the leader's log end offset;
//   - it is the minimum log end offset over the maximal ISR (committed ∪ pending, KIP-497) and
//     every caught-up, ISR-eligible replica, and does not move while the committed ISR is smaller
//     than the effective min.insync.replicas (KIP-966 strict min ISR);
//   - a replica joins the ISR only with a log end offset >= the high watermark and >= the start of
//     the leader's epoch (even while the leader's own high watermark lags its epoch start: see
//     ExpandCandidates), and only with the broker epoch the metadata has for it (KIP-903), so a
//     fenced, shutting-down or rebooted broker never joins (KIP-841).

import (
	"slices"
	"time"
)

// ReplicaState is what the leader knows of one follower replica (Kafka's Replica): updated by
// each of its fetches (Fetched) and reset when this broker becomes leader of a new epoch.
type ReplicaState struct {
	ID int32
	// LogEndOffset is the follower's fetch offset: it holds every offset below it. -1: it has
	// not fetched in this leader epoch.
	LogEndOffset int64
	// BrokerEpoch is the broker epoch of its last fetch (Fetch v15+ ReplicaState), -1 unknown.
	BrokerEpoch int64
	// LastCaughtUp is the last time the follower had everything the leader had (zero: never).
	LastCaughtUp time.Time
	// LastFetch and LastFetchLeaderLEO are the time of its previous fetch and the leader's log
	// end offset then: a fetch reaching that offset proves it was caught up at that time.
	LastFetch          time.Time
	LastFetchLeaderLEO int64
}

// newReplicaState is a follower's state when this broker becomes leader of a new epoch: its
// log end offset is unknown; an ISR member counts as caught up now, so that it is not dropped
// before it had the time to fetch (Kafka's resetReplicaState).
func newReplicaState(id int32, inISR bool, now time.Time) ReplicaState {
	r := ReplicaState{ID: id, LogEndOffset: -1, BrokerEpoch: -1, LastFetchLeaderLEO: -1}
	if inISR {
		r.LastCaughtUp = now
	}
	return r
}

// Fetched records a fetch at fetchOffset, when the leader's log end offset was leaderLEO (Kafka's
// Replica.updateFetchStateOrThrow).
func (r *ReplicaState) Fetched(fetchOffset, leaderLEO, brokerEpoch int64, now time.Time) {
	switch {
	case fetchOffset >= leaderLEO:
		r.LastCaughtUp = later(r.LastCaughtUp, now)
	case r.LastFetchLeaderLEO >= 0 && fetchOffset >= r.LastFetchLeaderLEO:
		r.LastCaughtUp = later(r.LastCaughtUp, r.LastFetch)
	}
	r.LogEndOffset = min(fetchOffset, leaderLEO)
	r.BrokerEpoch = brokerEpoch
	r.LastFetch = now
	r.LastFetchLeaderLEO = leaderLEO
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// CaughtUp reports whether the follower is in sync with a leader whose log end offset is
// leaderLEO: it has it all, or had it all within lagMax (replica.lag.time.max.ms).
func (r ReplicaState) CaughtUp(leaderLEO int64, now time.Time, lagMax time.Duration) bool {
	if r.LogEndOffset == leaderLEO {
		return true
	}
	return !r.LastCaughtUp.IsZero() && now.Sub(r.LastCaughtUp) <= lagMax
}

// ISRView is the leader's state that the ISR decisions read.
type ISRView struct {
	Leader           int32
	LeaderLEO        int64
	HighWatermark    int64
	LeaderEpochStart int64 // the log end offset when this leader epoch began
	Replicas         []int32
	ISR              []int32 // committed (the metadata's)
	Pending          []int32 // the ISR proposed to the controller and not confirmed yet; nil: none
	Followers        map[int32]ReplicaState
	// MinISR is the effective min.insync.replicas: the topic's, capped at the replica count (a
	// single replica is its own quorum, as in Kafka's effectiveMinIsr).
	MinISR int
	// Eligible are the broker epochs, by broker id, of the brokers the metadata lets join the
	// ISR (registered, unfenced, not shutting down): a follower is eligible with that very
	// broker epoch in its fetches. nil: every replica is eligible.
	Eligible map[int32]int64
	Now      time.Time
	LagMax   time.Duration
}

// MaximalISR is the committed ISR joined with the pending one (KIP-497): the set the high
// watermark must wait for while a change is in flight, whichever way the controller decides.
func MaximalISR(isr, pending []int32) []int32 {
	out := slices.Clone(isr)
	for _, id := range pending {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// inMaximalISR reports whether id is in the committed or the pending ISR (without allocating).
func inMaximalISR(isr, pending []int32, id int32) bool {
	return slices.Contains(isr, id) || slices.Contains(pending, id)
}

// maximalISRSize is len(MaximalISR(isr, pending)) without allocating.
func maximalISRSize(isr, pending []int32) int {
	n := len(isr)
	for _, id := range pending {
		if !slices.Contains(isr, id) {
			n++
		}
	}
	return n
}

// EffectiveMinISR caps min.insync.replicas at the replica count.
func EffectiveMinISR(minISR, replicas int) int {
	return max(1, min(minISR, replicas))
}

func (v ISRView) eligible(r ReplicaState) bool {
	if v.Eligible == nil {
		return true
	}
	e, ok := v.Eligible[r.ID]
	return ok && e == r.BrokerEpoch
}

// NextHighWatermark is the high watermark the leader may have now (never below v.HighWatermark).
func NextHighWatermark(v ISRView) int64 {
	if len(v.ISR) < v.MinISR {
		return v.HighWatermark
	}
	hw := v.LeaderLEO
	for _, id := range v.Replicas {
		if id == v.Leader {
			continue
		}
		r, ok := v.Followers[id]
		if !ok {
			r = newReplicaState(id, false, time.Time{})
		}
		counts := inMaximalISR(v.ISR, v.Pending, id) || (r.CaughtUp(v.LeaderLEO, v.Now, v.LagMax) && v.eligible(r))
		if counts && r.LogEndOffset < hw {
			hw = r.LogEndOffset
		}
	}
	// A maximal-ISR member that is not among the replicas (a stale ISR) has no state: it
	// cannot confirm anything.
	for _, ids := range [2][]int32{v.ISR, v.Pending} {
		for _, id := range ids {
			if id != v.Leader && !slices.Contains(v.Replicas, id) {
				return v.HighWatermark
			}
		}
	}
	return max(hw, v.HighWatermark)
}

// ShrinkCandidates are the committed ISR members other than the leader that have not been caught
// up for longer than v.LagMax (Kafka's getOutOfSyncReplicas).
func ShrinkCandidates(v ISRView) []int32 {
	var out []int32
	for _, id := range v.ISR {
		if id == v.Leader {
			continue
		}
		r, ok := v.Followers[id]
		if !ok || !r.CaughtUp(v.LeaderLEO, v.Now, v.LagMax) {
			out = append(out, id)
		}
	}
	return out
}

// ExpandCandidates are the replicas outside the ISR that may join it: log end offset >= the high
// watermark and >= the leader epoch start (Kafka's isFollowerInSync), and ISR-eligible.
//
// The rule keeps both safety and liveness, also for a leader whose high watermark is below its
// epoch start and cannot move because the committed ISR is below min.insync.replicas:
//   - safety: every offset any leader may have committed is below max(high watermark, epoch
//     start): an earlier epoch's committed offsets are in this leader's log below its epoch
//     start (it was elected from replicas holding them), this epoch's are below its high
//     watermark. A joiner's log matches the leader's up to its log end offset (its fetch passed
//     the diverging-epoch check), so it holds all of them, whether or not the leader's own high
//     watermark has caught up yet;
//   - liveness: the expansion does NOT also wait for the leader's high watermark to reach the
//     epoch start. That wait would be a cycle: the high watermark waits for a committed ISR of
//     min.insync.replicas (KIP-966 strict min ISR, NextHighWatermark), and the ISR would wait for
//     the high watermark, so a leader elected with ISR [self] and an acks=1 tail past its high
//     watermark would never recover.
//
// Strict min ISR stays on the high watermark alone, over the committed ISR: the high watermark
// moves only once the controller has committed an ISR of min.insync.replicas, so nothing is
// acknowledged to acks=all or shown to consumers on fewer replicas.
func ExpandCandidates(v ISRView) []int32 {
	var out []int32
	for _, id := range v.Replicas {
		if id == v.Leader || slices.Contains(v.ISR, id) {
			continue
		}
		r, ok := v.Followers[id]
		if ok && r.LogEndOffset >= 0 && r.LogEndOffset >= v.HighWatermark && r.LogEndOffset >= v.LeaderEpochStart && v.eligible(r) {
			out = append(out, id)
		}
	}
	return out
}

// ProposeISR is the ISR the leader wants now, if it differs from the committed one and no change
// is in flight: laggards dropped first (a shrink), else caught-up eligible replicas added (an
// expansion). The leader always stays in.
func ProposeISR(v ISRView) ([]int32, bool) {
	if v.Pending != nil {
		return nil, false
	}
	if out := ShrinkCandidates(v); len(out) > 0 {
		isr := slices.DeleteFunc(slices.Clone(v.ISR), func(id int32) bool { return slices.Contains(out, id) })
		return isr, true
	}
	if in := ExpandCandidates(v); len(in) > 0 {
		isr := append(slices.Clone(v.ISR), in...)
		return isr, true
	}
	return nil, false
}
