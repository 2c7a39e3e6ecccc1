package partition

// Replication: the partition's role (leader or follower of a leader epoch), the leader's view of
// its followers, the high watermark over the maximal ISR, the acks=all wait, and the follower's
// append of what it fetched. The decisions are isr.go's plain functions; this file holds the
// state and applies them.
//
// Lock order: appendMu, then rep (the replication state), then the log's locks, then watchMu.
// The roles are set by one owner (the replica manager) from metadata; handlers only read them.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
)

// role is what this replica is for its partition.
type role int32

const (
	roleNone     role = iota // opened, no role from metadata yet: refuses produce and follower fetches
	roleLeader               // leader of leaderEpoch
	roleFollower             // follows leader in leaderEpoch
)

// LeaderState is what the metadata says when this broker becomes (or stays) the leader.
type LeaderState struct {
	LeaderEpoch, PartitionEpoch int32
	Replicas, ISR               []int32
	// Leader is this broker's id (the leader's). -1 for a partition whose only replica is this
	// broker and whose id does not matter (BecomeSoleLeader).
	Leader int32
}

// DivergingEpoch tells a follower where its log stops matching the leader's: the largest leader
// epoch <= its last fetched epoch, and the leader's end offset for it (Fetch v12+, KIP-595).
type DivergingEpoch struct {
	Epoch     int32
	EndOffset int64
}

// FollowerFetch is a follower's fetch of this partition, as the leader sees it.
type FollowerFetch struct {
	ReplicaID   int32
	BrokerEpoch int64 // Fetch v15+ ReplicaState.ReplicaEpoch; -1 unknown
	FetchOffset int64
	// LastFetchedEpoch is the epoch of the follower's last batch (v12+), -1 absent.
	LastFetchedEpoch int32
	// CurrentLeaderEpoch is the follower's idea of the leader epoch, -1 unknown.
	CurrentLeaderEpoch int32
	Now                time.Time
}

// ReplicaSnapshot is a copy of the leader's replication state (for AlterPartition and
// describing the partition).
type ReplicaSnapshot struct {
	Leader                      int32
	LeaderEpoch, PartitionEpoch int32
	LeaderEpochStart            int64
	Replicas, ISR               []int32
	Pending                     []int32 // nil: no ISR change in flight
	Followers                   []ReplicaState
}

// replication is the replica's role state. INVARIANTS: the leader is in isr; pending is nil
// unless a change proposed by ISRChange awaits the metadata's answer; followers has an entry for
// every replica but the leader while role is roleLeader.
type replication struct {
	role           role
	leader         int32
	partitionEpoch int32
	epochStart     int64 // log end offset when this broker became leader of leaderEpoch
	replicas, isr  []int32
	pending        []int32
	followers      map[int32]ReplicaState
	eligible       map[int32]int64 // broker epochs of ISR-eligible brokers; nil: no check
	// changed is closed (and set to nil) when the high watermark, the ISR or the role changes;
	// made lazily by a waiter, so appends nobody waits on allocate nothing.
	changed chan struct{}
}

func (p *Partition) now() time.Time {
	if p.clock == nil {
		return time.Now()
	}
	return p.clock.Now()
}

// notifyLocked wakes WaitReplicated. REQUIRES: rep held.
func (p *Partition) notifyLocked() {
	if p.rep.changed != nil {
		close(p.rep.changed)
		p.rep.changed = nil
	}
}

// viewLocked is the plain state the ISR decisions read. REQUIRES: rep held.
func (p *Partition) viewLocked(now time.Time, lagMax time.Duration) ISRView {
	v := ISRView{
		Leader:           p.rep.leader,
		LeaderLEO:        p.log.LogEndOffset(),
		HighWatermark:    p.highWatermark.Load(),
		LeaderEpochStart: p.rep.epochStart,
		Replicas:         p.rep.replicas,
		ISR:              p.rep.isr,
		Pending:          p.rep.pending,
		Followers:        p.rep.followers,
		MinISR:           EffectiveMinISR(p.settings.Load().MinInsyncReplicas, len(p.rep.replicas)),
		Eligible:         p.rep.eligible,
		Now:              now,
		LagMax:           lagMax,
	}
	return v
}

// updateHighWatermarkLocked applies NextHighWatermark (a single replica: the log end offset).
// REQUIRES: rep held; the leader role.
func (p *Partition) updateHighWatermarkLocked(now time.Time) {
	var hw int64
	if len(p.rep.replicas) <= 1 {
		hw = p.log.LogEndOffset()
	} else {
		hw = NextHighWatermark(p.viewLocked(now, p.lagMax()))
	}
	if hw > p.highWatermark.Load() {
		p.advanceHighWatermark(hw)
		p.notifyLocked()
	}
}

// lagMax is replica.lag.time.max.ms as the high watermark rule uses it (a caught-up replica
// outside the ISR counts); ISRChange takes its own.
func (p *Partition) lagMax() time.Duration {
	if d := p.settings.Load().ReplicaLagTimeMax; d > 0 {
		return d
	}
	return DefaultReplicaLagTimeMax
}

// DefaultReplicaLagTimeMax is Kafka's replica.lag.time.max.ms default.
const DefaultReplicaLagTimeMax = 30 * time.Second

// BecomeLeader makes this replica the leader of st.LeaderEpoch. A new epoch starts at the log end
// offset (recorded in the leader-epoch cache); the followers' states start unknown (ISR members
// count as caught up now); the high watermark stays where it is until followers confirm (a new
// leader's may lag: ListOffsets answers OFFSET_NOT_AVAILABLE until it reaches the epoch start).
// The same epoch again updates the replicas and the ISR and keeps the followers' states. An
// epoch below the current one is refused (FENCED_LEADER_EPOCH).
func (p *Partition) BecomeLeader(st LeaderState) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	cur := p.leaderEpoch.Load()
	if st.LeaderEpoch < cur {
		return fmt.Errorf("partition %s-%d: become leader in epoch %d, already in %d: %w", p.Topic, p.Index, st.LeaderEpoch, cur, kerr.FencedLeaderEpoch)
	}
	if st.LeaderEpoch >= 0 && p.log.LatestEpoch() < st.LeaderEpoch {
		if err := p.log.AssignEpoch(st.LeaderEpoch, p.log.LogEndOffset()); err != nil {
			return fmt.Errorf("partition %s-%d: assign leader epoch %d: %w", p.Topic, p.Index, st.LeaderEpoch, err)
		}
	}
	now := p.now()
	p.rep.Lock()
	defer p.rep.Unlock()
	newEpoch := p.rep.role != roleLeader || st.LeaderEpoch > cur
	p.leaderEpoch.Store(st.LeaderEpoch)
	p.rep.role = roleLeader
	p.role.Store(int32(roleLeader))
	p.rep.leader = st.Leader
	p.rep.partitionEpoch = st.PartitionEpoch
	p.rep.replicas = withMember(st.Replicas, st.Leader)
	p.rep.isr = withMember(st.ISR, st.Leader)
	p.rep.pending = nil
	old := p.rep.followers
	p.rep.followers = make(map[int32]ReplicaState, len(p.rep.replicas))
	for _, id := range p.rep.replicas {
		if id == st.Leader {
			continue
		}
		if r, ok := old[id]; ok && !newEpoch {
			p.rep.followers[id] = r
		} else {
			p.rep.followers[id] = newReplicaState(id, slices.Contains(p.rep.isr, id), now)
		}
	}
	if newEpoch {
		p.rep.epochStart = p.log.LogEndOffset()
	}
	p.isrSize.Store(int32(len(p.rep.isr)))
	p.updateHighWatermarkLocked(now)
	p.notifyLocked()
	return nil
}

// BecomeSoleLeader makes this replica the only replica and leader of epoch (a single-node
// partition, as before replication): the high watermark is the log end offset.
func (p *Partition) BecomeSoleLeader(epoch int32) error {
	p.rep.Lock()
	id, pe := p.rep.leader, p.rep.partitionEpoch
	if p.rep.role != roleLeader {
		id = -1
	}
	p.rep.Unlock()
	return p.BecomeLeader(LeaderState{LeaderEpoch: epoch, PartitionEpoch: pe, Leader: id, Replicas: []int32{id}, ISR: []int32{id}})
}

// withMember returns ids with id in it (first when it was missing).
func withMember(ids []int32, id int32) []int32 {
	if slices.Contains(ids, id) {
		return slices.Clone(ids)
	}
	return append([]int32{id}, ids...)
}

// BecomeFollower makes this replica a follower of leader (-1: none known) in leaderEpoch. The
// log is not truncated here: the follower truncates by leader epoch with what its fetches answer
// (DivergingEpoch). Waiting acks=all produces fail with NOT_LEADER_OR_FOLLOWER. An epoch below the
// current one is refused (FENCED_LEADER_EPOCH).
func (p *Partition) BecomeFollower(leader, leaderEpoch, partitionEpoch int32) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if cur := p.leaderEpoch.Load(); leaderEpoch < cur {
		return fmt.Errorf("partition %s-%d: follow %d in epoch %d, already in %d: %w", p.Topic, p.Index, leader, leaderEpoch, cur, kerr.FencedLeaderEpoch)
	}
	p.rep.Lock()
	defer p.rep.Unlock()
	p.leaderEpoch.Store(leaderEpoch)
	p.rep.role = roleFollower
	p.role.Store(int32(roleFollower))
	p.rep.leader = leader
	p.rep.partitionEpoch = partitionEpoch
	p.rep.pending, p.rep.followers = nil, nil
	p.isrSize.Store(0)
	p.notifyLocked()
	return nil
}

// UpdateISR applies the ISR the metadata committed (partitionEpoch, not older than the one
// known) on the leader: it ends the change in flight and recomputes the high watermark.
func (p *Partition) UpdateISR(isr []int32, partitionEpoch int32) {
	p.rep.Lock()
	defer p.rep.Unlock()
	if p.rep.role != roleLeader || partitionEpoch < p.rep.partitionEpoch {
		return
	}
	p.rep.partitionEpoch = partitionEpoch
	p.rep.isr = withMember(isr, p.rep.leader)
	p.rep.pending = nil
	p.isrSize.Store(int32(len(p.rep.isr)))
	p.updateHighWatermarkLocked(p.now())
	p.notifyLocked()
}

// CancelISRChange forgets the change in flight (the controller refused it or the request failed);
// the next ISRChange proposes again from the committed ISR.
func (p *Partition) CancelISRChange() {
	p.rep.Lock()
	defer p.rep.Unlock()
	p.rep.pending = nil
	if p.rep.role == roleLeader {
		p.updateHighWatermarkLocked(p.now())
	}
	p.notifyLocked()
}

// SetEligibleBrokers sets the broker epochs, by broker id, of the brokers that may join the ISR
// (registered, unfenced, not in controlled shutdown); a follower joins only with the broker epoch
// its fetches carry equal to its entry (KIP-841, KIP-903). nil: every replica is eligible.
func (p *Partition) SetEligibleBrokers(epochs map[int32]int64) {
	p.rep.Lock()
	defer p.rep.Unlock()
	if epochs == nil {
		p.rep.eligible = nil
		return
	}
	p.rep.eligible = make(map[int32]int64, len(epochs))
	for id, e := range epochs {
		p.rep.eligible[id] = e
	}
}

// IsLeader reports whether this replica is the partition's leader.
func (p *Partition) IsLeader() bool { return role(p.role.Load()) == roleLeader }

// IsFollower reports whether this replica follows a leader.
func (p *Partition) IsFollower() bool { return role(p.role.Load()) == roleFollower }

// Leader is the leader's broker id as this replica knows it (this broker's own when leader;
// -1 unknown).
func (p *Partition) Leader() int32 {
	p.rep.Lock()
	defer p.rep.Unlock()
	if p.rep.role == roleNone {
		return -1
	}
	return p.rep.leader
}

// PartitionEpoch is the partition epoch of the last role or ISR applied.
func (p *Partition) PartitionEpoch() int32 {
	p.rep.Lock()
	defer p.rep.Unlock()
	return p.rep.partitionEpoch
}

// Replication returns a copy of the leader's replication state; ok is false when this replica is
// not the leader.
func (p *Partition) Replication() (s ReplicaSnapshot, ok bool) {
	p.rep.Lock()
	defer p.rep.Unlock()
	if p.rep.role != roleLeader {
		return s, false
	}
	s = ReplicaSnapshot{
		Leader: p.rep.leader, LeaderEpoch: p.leaderEpoch.Load(), PartitionEpoch: p.rep.partitionEpoch,
		LeaderEpochStart: p.rep.epochStart, Replicas: slices.Clone(p.rep.replicas), ISR: slices.Clone(p.rep.isr),
		Pending: slices.Clone(p.rep.pending),
	}
	for _, id := range p.rep.replicas {
		if r, ok := p.rep.followers[id]; ok {
			s.Followers = append(s.Followers, r)
		}
	}
	return s, true
}

// replicated reports whether the partition has a multi-replica role (or is a follower): the
// single-node paths (Manager.Ensure) leave it alone.
func (p *Partition) replicated() bool {
	p.rep.Lock()
	defer p.rep.Unlock()
	return p.rep.role == roleFollower || len(p.rep.replicas) > 1
}

func (p *Partition) notLeader() error {
	return fmt.Errorf("partition %s-%d: this broker is not the leader: %w", p.Topic, p.Index, kerr.NotLeaderForPartition)
}

// FollowerFetched records a follower's fetch on the leader and answers where its log diverges,
// if it does: when the follower's last fetched epoch ends earlier on the leader than its fetch
// offset, or the leader's largest epoch <= it is another (KIP-279: the leader never had it), the
// answer is that epoch and its end offset, and nothing is recorded. Otherwise the follower's log
// end offset (the fetch offset), broker epoch and caught-up time are recorded and the high
// watermark recomputed. Errors: NOT_LEADER_OR_FOLLOWER (not the leader, not a replica, a stale
// broker epoch), FENCED/UNKNOWN_LEADER_EPOCH, OFFSET_OUT_OF_RANGE (a fetch offset outside the
// log, or a last fetched epoch above every epoch the leader knows).
func (p *Partition) FollowerFetched(f FollowerFetch) (*DivergingEpoch, error) {
	if err := p.offline(); err != nil {
		return nil, err
	}
	p.rep.Lock()
	defer p.rep.Unlock()
	if p.rep.role != roleLeader {
		return nil, p.notLeader()
	}
	if err := p.CheckLeaderEpoch(f.CurrentLeaderEpoch); err != nil {
		return nil, err
	}
	r, ok := p.rep.followers[f.ReplicaID]
	if !ok {
		return nil, fmt.Errorf("partition %s-%d: broker %d is not a follower replica: %w", p.Topic, p.Index, f.ReplicaID, kerr.NotLeaderForPartition)
	}
	if f.BrokerEpoch >= 0 && f.BrokerEpoch < r.BrokerEpoch {
		return nil, fmt.Errorf("partition %s-%d: fetch of broker %d with broker epoch %d, it fetched with %d before: %w",
			p.Topic, p.Index, f.ReplicaID, f.BrokerEpoch, r.BrokerEpoch, kerr.NotLeaderForPartition)
	}
	if f.LastFetchedEpoch >= 0 {
		epoch, end := p.log.EndOffsetForEpoch(f.LastFetchedEpoch)
		if epoch < 0 || end < 0 {
			// Kafka's answer too: the follower's epoch is above every epoch the leader
			// knows, so there is no end offset to give it.
			return nil, fmt.Errorf("partition %s-%d: no end offset for the last fetched epoch %d of follower %d: %w",
				p.Topic, p.Index, f.LastFetchedEpoch, f.ReplicaID, kerr.OffsetOutOfRange)
		}
		if epoch != f.LastFetchedEpoch || end < f.FetchOffset {
			return &DivergingEpoch{Epoch: epoch, EndOffset: end}, nil
		}
	}
	leo := p.log.LogEndOffset()
	if f.FetchOffset < p.log.LogStartOffset() || f.FetchOffset > leo {
		return nil, fmt.Errorf("partition %s-%d: follower %d fetch offset %d outside [%d, %d]: %w",
			p.Topic, p.Index, f.ReplicaID, f.FetchOffset, p.log.LogStartOffset(), leo, kerr.OffsetOutOfRange)
	}
	now := f.Now
	if now.IsZero() {
		now = p.now()
	}
	r.Fetched(f.FetchOffset, leo, f.BrokerEpoch, now)
	p.rep.followers[f.ReplicaID] = r
	p.updateHighWatermarkLocked(now)
	return nil, nil
}

// ISRChange returns the ISR the leader wants now (laggards past lagMax dropped, or caught-up
// eligible replicas added; ProposeISR) and marks it in flight: the high watermark then waits for
// the maximal ISR (committed ∪ proposed) until UpdateISR (the metadata committed one) or
// CancelISRChange. ok is false when nothing changes, a change is already in flight, or this
// replica is not the leader.
func (p *Partition) ISRChange(now time.Time, lagMax time.Duration) (newISR []int32, ok bool) {
	p.rep.Lock()
	defer p.rep.Unlock()
	if p.rep.role != roleLeader || len(p.rep.replicas) <= 1 {
		return nil, false
	}
	isr, ok := ProposeISR(p.viewLocked(now, lagMax))
	if !ok {
		return nil, false
	}
	p.rep.pending = isr
	return slices.Clone(isr), true
}

// WaitReplicated waits until the high watermark passes lastOffset (acks=all). It returns nil
// then (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR is below min.insync.replicas by
// then); NOT_ENOUGH_REPLICAS_AFTER_APPEND as soon as the ISR falls below min.insync.replicas
// while waiting; NOT_LEADER_OR_FOLLOWER if this replica stops being the leader of the epoch it
// was waited in; REQUEST_TIMED_OUT (wrapping ctx's error) when ctx ends first.
func (p *Partition) WaitReplicated(ctx context.Context, lastOffset int64) error {
	epoch := p.leaderEpoch.Load()
	for {
		p.rep.Lock()
		minISR := p.settings.Load().MinInsyncReplicas
		switch {
		case p.rep.role != roleLeader || p.leaderEpoch.Load() != epoch:
			p.rep.Unlock()
			return fmt.Errorf("partition %s-%d: leadership of epoch %d lost while waiting for replication: %w", p.Topic, p.Index, epoch, kerr.NotLeaderForPartition)
		case p.highWatermark.Load() > lastOffset:
			n := maximalISRSize(p.rep.isr, p.rep.pending)
			p.rep.Unlock()
			if n < minISR {
				return fmt.Errorf("partition %s-%d: %d in-sync replicas after the append, min.insync.replicas is %d: %w",
					p.Topic, p.Index, n, minISR, kerr.NotEnoughReplicasAfterAppend)
			}
			return nil
		case len(p.rep.isr) < minISR:
			n := len(p.rep.isr)
			p.rep.Unlock()
			return fmt.Errorf("partition %s-%d: the ISR shrank to %d while waiting, min.insync.replicas is %d: %w",
				p.Topic, p.Index, n, minISR, kerr.NotEnoughReplicasAfterAppend)
		}
		if p.rep.changed == nil {
			p.rep.changed = make(chan struct{})
		}
		ch := p.rep.changed
		p.rep.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("partition %s-%d: offset %d not replicated to the ISR in time (high watermark %d): %v: %w",
				p.Topic, p.Index, lastOffset, p.HighWatermark(), ctx.Err(), kerr.RequestTimedOut)
		}
	}
}

// CheckOffsetsAvailable answers OFFSET_NOT_AVAILABLE while this leader's high watermark is below
// the start of its epoch (a new leader whose high watermark still lags: KIP-207), for ListOffsets.
func (p *Partition) CheckOffsetsAvailable() error {
	p.rep.Lock()
	start, leader := p.rep.epochStart, p.rep.role == roleLeader
	p.rep.Unlock()
	if hw := p.HighWatermark(); leader && hw < start {
		return fmt.Errorf("partition %s-%d: high watermark %d is below the leader epoch start %d: %w", p.Topic, p.Index, hw, start, kerr.OffsetNotAvailable)
	}
	return nil
}

// AppendAsFollower appends the record batches a follower fetched from its leader, as they are
// (log.Log.AppendReplica: offsets, leader epochs and timestamps kept; the first must start at the
// log end offset), after checking each one's framing and CRC, and updates the idempotent
// producer state exactly as the leader did, so that as a new leader it treats a retried batch as
// the old one would. Under SyncBeforeAck the batches are fsynced before it returns: the log end
// offset the next fetch reports is durable, and a follower never counts toward the high watermark
// with data it could lose in a power cut. An empty log whose first batch starts below its end
// and holds it starts over at that batch's base offset first (Kafka's
// appendRecordsToFollowerOrFutureReplica). Errors: NOT_LEADER_OR_FOLLOWER (not a follower),
// CORRUPT_MESSAGE, log.ErrNotLogEnd (wrapped), KAFKA_STORAGE_ERROR.
func (p *Partition) AppendAsFollower(records []byte) error {
	return p.AppendAsFollowerIn(-1, records)
}

// AppendAsFollowerIn is AppendAsFollower for records fetched in leaderEpoch: they are refused
// with FENCED_LEADER_EPOCH if this replica follows another epoch by the time they are appended
// (a fetch response from a leader it no longer follows). -1: no check.
func (p *Partition) AppendAsFollowerIn(leaderEpoch int32, records []byte) error {
	if err := p.offline(); err != nil {
		return err
	}
	if !p.IsFollower() {
		return fmt.Errorf("partition %s-%d: this replica is not a follower: %w", p.Topic, p.Index, kerr.NotLeaderForPartition)
	}
	batches, err := record.Split(records)
	if err != nil {
		return fmt.Errorf("partition %s-%d: fetched records: %v: %w", p.Topic, p.Index, err, kerr.CorruptMessage)
	}
	if len(batches) == 0 {
		return nil
	}
	headers := make([]record.BatchHeader, len(batches))
	for i, b := range batches {
		h, err := record.ValidateStored(b)
		if err != nil {
			return fmt.Errorf("partition %s-%d: fetched batch: %v: %w", p.Topic, p.Index, err, kerr.CorruptMessage)
		}
		headers[i] = h
	}
	if err := p.appendReplicaBatches(leaderEpoch, batches, headers); err != nil {
		return err
	}
	if p.settings.Load().SyncBeforeAck {
		var err error
		if p.syncer != nil {
			err = p.syncer.Sync()
		} else {
			err = p.log.Flush()
		}
		if err != nil {
			return fmt.Errorf("partition %s-%d: fsync fetched batches: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
		}
	}
	return nil
}

func (p *Partition) appendReplicaBatches(leaderEpoch int32, batches [][]byte, headers []record.BatchHeader) error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	// Roles change under appendMu: checked again for a role change since the first check.
	if !p.IsFollower() {
		return fmt.Errorf("partition %s-%d: this replica is not a follower: %w", p.Topic, p.Index, kerr.NotLeaderForPartition)
	}
	if cur := p.leaderEpoch.Load(); leaderEpoch >= 0 && leaderEpoch != cur {
		return fmt.Errorf("partition %s-%d: records fetched in leader epoch %d, this replica follows epoch %d: %w",
			p.Topic, p.Index, leaderEpoch, cur, kerr.FencedLeaderEpoch)
	}
	// An empty log whose first fetched batch starts below its end and holds it: the leader's
	// log start (which this follower started over at) is inside that batch, after
	// DeleteRecords. As Kafka's appendRecordsToFollowerOrFutureReplica does, the log starts
	// over at the batch's base offset and takes it; refused, the same batch would come back on
	// every fetch. The high watermark follows the log back (the leader's next answer moves it).
	if h, end := headers[0], p.log.LogEndOffset(); end == p.log.LogStartOffset() && h.BaseOffset < end && h.LastOffset() >= end {
		if err := p.truncateFullyLocked(h.BaseOffset); err != nil {
			return fmt.Errorf("partition %s-%d: restart the empty log at %d for the batch holding its end %d: %w",
				p.Topic, p.Index, h.BaseOffset, end, err)
		}
	}
	defer p.snapshotIfRolled(p.log.NumSegments())
	for i, b := range batches {
		if _, err := p.log.AppendReplica(b); err != nil {
			if errors.Is(err, log.ErrNotLogEnd) {
				return fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
			}
			return fmt.Errorf("partition %s-%d: append fetched batch: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
		}
		if err := p.applyLocked(headers[i], markerOf(headers[i], b)); err != nil {
			return err
		}
	}
	return nil
}

// UpdateFollowerHighWatermark moves a follower's high watermark to min(leaderHW, log end
// offset), never back.
func (p *Partition) UpdateFollowerHighWatermark(leaderHW int64) {
	if !p.IsFollower() {
		return
	}
	p.rep.Lock()
	defer p.rep.Unlock()
	if hw := min(leaderHW, p.log.LogEndOffset()); hw > p.highWatermark.Load() {
		p.advanceHighWatermark(hw)
		p.notifyLocked()
	}
}

// LastFetchedEpoch is the latest leader epoch of the log (the epoch of its last batch, or the
// epoch this replica last led, which its next leader's answer corrects), -1 if there is none.
func (p *Partition) LastFetchedEpoch() int32 { return p.log.LatestEpoch() }

// ReadReplica returns whole batches from offset up to the log end offset (not the high
// watermark), for a follower's fetch.
func (p *Partition) ReadReplica(offset int64, maxBytes int32, minOneBatch bool) ([]log.Section, error) {
	if err := p.offline(); err != nil {
		return nil, err
	}
	end := p.log.LogEndOffset()
	if offset < p.log.LogStartOffset() || offset > end {
		return nil, fmt.Errorf("partition %s-%d: offset %d outside [%d, %d]: %w",
			p.Topic, p.Index, offset, p.log.LogStartOffset(), end, kerr.OffsetOutOfRange)
	}
	if offset == end {
		return nil, nil
	}
	secs, err := p.log.ReadSections(offset, maxBytes, end, minOneBatch)
	if err != nil {
		return nil, p.readError(err)
	}
	return secs, nil
}

// TruncateFullyAndStartAt empties the log and starts it over at offset, past its end
// (log.Log.TruncateFullyAndStartAt, crash-safe), for a follower whose log ends below its
// leader's log start: the idempotent producer state is emptied with it and the high watermark
// becomes offset (everything below the leader's log start was committed). An empty log may also
// start over at or below its start (see AppendAsFollower). Errors: OFFSET_OUT_OF_RANGE (offset
// not past the end of a log that is not empty), KAFKA_STORAGE_ERROR.
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	if err := p.offline(); err != nil {
		return err
	}
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	return p.truncateFullyLocked(offset)
}

// truncateFullyLocked is TruncateFullyAndStartAt. REQUIRES: appendMu held.
func (p *Partition) truncateFullyLocked(offset int64) error {
	if end := p.log.LogEndOffset(); offset <= end && p.log.LogStartOffset() != end {
		return fmt.Errorf("partition %s-%d: truncate fully and start at %d, log ends at %d: %w",
			p.Topic, p.Index, offset, end, kerr.OffsetOutOfRange)
	}
	if err := p.removeProducerSnapshot(); err != nil {
		return fmt.Errorf("%v: %w", err, kerr.KafkaStorageError)
	}
	if err := p.truncateError(p.log.TruncateFullyAndStartAt(offset)); err != nil {
		return err
	}
	p.producers = make(producerStates)
	p.guards = map[int64]guardEntry{}
	p.txns.reset(p.producers)
	p.rep.Lock()
	p.highWatermark.Store(offset)
	p.notifyLocked()
	p.rep.Unlock()
	p.signalWatchers()
	return nil
}
