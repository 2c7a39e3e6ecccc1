package metadata

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition state changes: Kafka 4.x's PartitionChangeBuilder with eligible leader replicas
// (KIP-966) enabled:
//
//   - a reassignment in progress completes once the target ISR holds every target replica
//     (completeReassignment, reassign.go): the replicas become the target, the ISR loses the
//     removed replicas and adding/removing are cleared; the rules below then see the target;
//   - the leader stays if it is still valid; otherwise the first replica in assignment order
//     that is in the target ISR (or, when the ISR is empty, in the ELR) and acceptable
//     (unfenced, not in controlled shutdown); an ELR leader becomes the ISR alone;
//   - otherwise, if unclean.leader.election.enable, the first acceptable replica, with
//     ISR = [it] and LeaderRecoveryState = RECOVERING; otherwise no leader (-1);
//   - while the ISR is smaller than min.insync.replicas, members leaving it go to the ELR;
//     once it is back at min ISR the ELR is cleared;
//   - the leader epoch bumps when the leader changes or replicas leave the assignment (Kafka
//     >= 3.6 no longer bumps it on an ISR shrink, KAFKA-15021); the partition epoch bumps on
//     every change.

// Topic and broker config keys the controller reads.
const (
	configMinInSyncReplicas     = "min.insync.replicas"
	configUncleanLeaderElection = "unclean.leader.election.enable"
)

// changeBuilder holds the inputs of one partition change.
type changeBuilder struct {
	part      Partition
	targetISR []int32

	// targetReplicas, targetAdding and targetRemoving are the assignment after the change;
	// nil keeps the partition's (reassign.go sets them).
	targetReplicas, targetAdding, targetRemoving []int32

	recovery   int8 // target LeaderRecoveryState
	minISR     int
	unclean    bool
	acceptable func(id int32) bool

	// preferred is Kafka's Election.PREFERRED: the first replica takes over when it is a valid
	// leader, before the current leader is kept (ElectLeaders, the leader balancer: elect.go).
	preferred bool
}

// build returns the new partition state, or false when nothing changes.
func (cb changeBuilder) build() (Partition, bool) {
	p := cb.part
	isr := slices.Clone(cb.targetISR)
	// completeReassignmentIfNeeded; from here on p.Replicas is the target assignment (the
	// election order), cb.part the partition before the change.
	p.Replicas = orInt32s(cb.targetReplicas, p.Replicas)
	p.AddingReplicas = orInt32s(cb.targetAdding, p.AddingReplicas)
	p.RemovingReplicas = orInt32s(cb.targetRemoving, p.RemovingReplicas)
	if replicas, newISR, ok := completeReassignment(p.Replicas, p.AddingReplicas, p.RemovingReplicas, isr); ok {
		p.Replicas, p.AddingReplicas, p.RemovingReplicas, isr = replicas, nil, nil, newISR
	}
	elr := slices.Clone(p.ELR)
	lastKnown := slices.Clone(p.LastKnownELR)

	// maybePopulateTargetElr
	if len(isr) >= cb.minISR {
		elr, lastKnown = nil, nil
	} else {
		candidates := union(p.Replicas, elr, p.ISR)
		elr = without(candidates, isr)
		lastKnown = without(union(p.Replicas, candidates, lastKnown), isr, elr)
	}

	// tryElection
	valid := func(id int32) bool {
		return (slices.Contains(isr, id) || len(isr) == 0 && slices.Contains(elr, id)) && cb.acceptable(id)
	}
	leader, unclean := int32(-1), false
	switch {
	case cb.preferred && len(p.Replicas) > 0 && valid(p.Replicas[0]):
		leader = p.Replicas[0]
	case p.Leader != -1 && valid(p.Leader):
		leader = p.Leader
	default:
		if i := slices.IndexFunc(p.Replicas, valid); i >= 0 {
			leader = p.Replicas[i]
		} else if cb.unclean {
			if i := slices.IndexFunc(p.Replicas, cb.acceptable); i >= 0 {
				leader, unclean = p.Replicas[i], true
			}
		}
	}
	next := p
	recovery := cb.recovery
	uncleanISR := false
	// triggerLeaderEpochBumpForReplicaReassignmentIfNeeded: a replica leaving the assignment
	// bumps the leader epoch, so the leader drops it as a follower.
	if leader == p.Leader && !containsAll(p.Replicas, cb.part.Replicas) {
		next.LeaderEpoch = p.LeaderEpoch + 1
	}
	if leader != p.Leader {
		if slices.Contains(elr, leader) {
			isr = []int32{leader}
			elr = without(elr, []int32{leader})
		}
		next.Leader = leader
		next.LeaderEpoch = p.LeaderEpoch + 1
		if unclean {
			isr = []int32{leader}
			uncleanISR = true
			recovery = LeaderRecovering
		}
	}
	// maybeUpdateRecordElr: an unclean election clears the ELR fields.
	if uncleanISR {
		elr, lastKnown = nil, nil
	}
	next.ISR = cloneInt32s(isr)
	next.ELR = cloneInt32s(elr)
	next.LastKnownELR = cloneInt32s(lastKnown)
	next.LeaderRecoveryState = recovery
	next.Replicas = cloneInt32s(next.Replicas)
	next.AddingReplicas = cloneInt32s(next.AddingReplicas)
	next.RemovingReplicas = cloneInt32s(next.RemovingReplicas)
	old := cb.part
	if next.Leader == old.Leader && slices.Equal(next.ISR, old.ISR) && slices.Equal(next.ELR, old.ELR) &&
		slices.Equal(next.LastKnownELR, old.LastKnownELR) && next.LeaderRecoveryState == old.LeaderRecoveryState &&
		slices.Equal(next.Replicas, old.Replicas) && slices.Equal(next.AddingReplicas, old.AddingReplicas) &&
		slices.Equal(next.RemovingReplicas, old.RemovingReplicas) {
		return old, false
	}
	next.PartitionEpoch = old.PartitionEpoch + 1
	return next, true
}

// orInt32s is a, or b when a is nil.
func orInt32s(a, b []int32) []int32 {
	if a != nil {
		return a
	}
	return b
}

// containsAll reports whether every member of sub is in s.
func containsAll(s, sub []int32) bool {
	for _, id := range sub {
		if !slices.Contains(s, id) {
			return false
		}
	}
	return true
}

// union returns the members of sets in the order of order (the replica assignment).
func union(order []int32, sets ...[]int32) []int32 {
	var out []int32
	for _, id := range order {
		for _, s := range sets {
			if slices.Contains(s, id) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// without returns s minus every member of the excluded sets, in s's order.
func without(s []int32, excluded ...[]int32) []int32 {
	out := make([]int32, 0, len(s))
	for _, id := range s {
		if !slices.ContainsFunc(excluded, func(e []int32) bool { return slices.Contains(e, id) }) {
			out = append(out, id)
		}
	}
	return out
}

// record is the PartitionChangeRecord that turns cb.part into next (a result of build): the
// whole leadership and ISR state, and the assignment fields that changed.
func (cb changeBuilder) record(id UUID, next Partition) *PartitionChangeRecord {
	r := changeRecord(id, next)
	if !slices.Equal(next.Replicas, cb.part.Replicas) {
		r.Replicas = cloneInt32s(next.Replicas)
	}
	if !slices.Equal(next.AddingReplicas, cb.part.AddingReplicas) {
		r.AddingReplicas = cloneInt32s(next.AddingReplicas)
	}
	if !slices.Equal(next.RemovingReplicas, cb.part.RemovingReplicas) {
		r.RemovingReplicas = cloneInt32s(next.RemovingReplicas)
	}
	return r
}

// changeRecord is the PartitionChangeRecord of a change that keeps p's assignment (use
// changeBuilder.record for one that may not).
func changeRecord(id UUID, p Partition) *PartitionChangeRecord {
	return &PartitionChangeRecord{
		TopicID:             id,
		Partition:           p.Partition,
		Leader:              p.Leader,
		ISR:                 p.ISR,
		ELR:                 p.ELR,
		LastKnownELR:        p.LastKnownELR,
		LeaderRecoveryState: p.LeaderRecoveryState,
		LeaderEpoch:         p.LeaderEpoch,
		PartitionEpoch:      p.PartitionEpoch,
	}
}

// leaderAndISRUpdates is Kafka's generateLeaderAndIsrUpdates over the partitions that match:
// remove (if >= 0) leaves the ISR and may not lead; add (if >= 0) may lead although the image
// still shows it fenced (it is being unfenced in the same batch).
func (c *Controller) leaderAndISRUpdates(im *Image, remove, add int32, match func(Partition) bool) []Record {
	active := activeBroker(im)
	acceptable := func(id int32) bool {
		if id == remove {
			return false
		}
		return id == add || active(id)
	}
	var records []Record
	for _, t := range im.sorted {
		minISR, unclean := c.minISR(im, t), c.uncleanElection(im, t)
		for _, p := range t.Partitions {
			if !match(p) {
				continue
			}
			cb := changeBuilder{
				part:       p,
				targetISR:  without(p.ISR, []int32{remove}),
				recovery:   p.LeaderRecoveryState,
				minISR:     minISR,
				unclean:    unclean,
				acceptable: acceptable,
			}
			if next, ok := cb.build(); ok {
				records = append(records, cb.record(UUID(t.ID), next))
			}
		}
	}
	return records
}

// topicConfig is the effective value of a config the controller reads: the topic override,
// then the cluster-wide dynamic broker config, then def.
func topicConfig(im *Image, t *Topic, key string) (string, bool) {
	if v, ok := t.Configs[key]; ok {
		return v, true
	}
	v, ok := im.brokerConfigs[""][key]
	return v, ok
}

// minISR is the topic's effective min.insync.replicas, at most its replication factor (as
// Kafka's getTopicEffectiveMinIsr).
func (c *Controller) minISR(im *Image, t *Topic) int {
	n := c.cfg.MinInSyncReplicas
	if v, ok := topicConfig(im, t, configMinInSyncReplicas); ok {
		if m, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && m > 0 {
			n = m
		}
	}
	if len(t.Partitions) > 0 {
		n = min(n, len(t.Partitions[0].Replicas))
	}
	return n
}

func (c *Controller) uncleanElection(im *Image, t *Topic) bool {
	if v, ok := topicConfig(im, t, configUncleanLeaderElection); ok {
		if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
			return b
		}
	}
	return c.cfg.UncleanLeaderElection
}

// ISRMember is one member of a proposed ISR with the broker epoch the leader saw in its
// fetches (-1: not checked).
type ISRMember struct {
	BrokerID    int32
	BrokerEpoch int64
}

// AlterPartitionItem is one partition of an AlterPartition request.
type AlterPartitionItem struct {
	TopicID             UUID
	Partition           int32
	LeaderEpoch         int32
	PartitionEpoch      int32
	NewISR              []ISRMember
	LeaderRecoveryState int8
}

// AlterPartitionResult is the answer for one item: Err (wrapping a kerr.Error) or the
// partition's state after the change.
type AlterPartitionResult struct {
	Err       error
	Partition Partition
}

type partKey struct {
	topic UUID
	part  int32
}

// AlterPartition applies ISR changes proposed by the leader brokerID (Kafka's
// ReplicationControlManager.alterPartition). A stale broker epoch fails the whole request;
// every other error is per item. All accepted changes commit as one batch.
func (c *Controller) localAlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, items []AlterPartitionItem) ([]AlterPartitionResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.Image()
	if _, err := checkBrokerEpoch("alter partition", im, brokerID, brokerEpoch); err != nil {
		return nil, err
	}
	results := make([]AlterPartitionResult, len(items))
	pending := map[partKey]Partition{}
	var records []Record
	for i, it := range items {
		t, ok := im.TopicByID(it.TopicID)
		if !ok {
			results[i].Err = fmt.Errorf("alter partition: topic id %s: %w", it.TopicID, kerr.UnknownTopicID)
			continue
		}
		if it.Partition < 0 || int(it.Partition) >= len(t.Partitions) {
			results[i].Err = fmt.Errorf("alter partition %s-%d: %w", t.Name, it.Partition, kerr.UnknownTopicOrPartition)
			continue
		}
		key := partKey{it.TopicID, it.Partition}
		p, ok := pending[key]
		if !ok {
			p = t.Partitions[it.Partition]
		}
		if err := validateAlterPartition(im, t, p, brokerID, it); err != nil {
			results[i].Err = err
			continue
		}
		isr := make([]int32, len(it.NewISR))
		for j, m := range it.NewISR {
			isr[j] = m.BrokerID
		}
		cb := changeBuilder{
			part:       p,
			targetISR:  isr,
			recovery:   it.LeaderRecoveryState,
			minISR:     c.minISR(im, t),
			unclean:    c.uncleanElection(im, t),
			acceptable: activeBroker(im),
		}
		next, changed := cb.build()
		if changed {
			records = append(records, cb.record(it.TopicID, next))
			pending[key] = next
			if next.Leader != brokerID {
				results[i].Err = fmt.Errorf("alter partition %s-%d: the change elected leader %d: %w",
					t.Name, it.Partition, next.Leader, kerr.NewLeaderElected)
				continue
			}
		}
		results[i].Partition = next
	}
	if len(records) > 0 {
		if err := c.commitLocked(ctx, records...); err != nil {
			return nil, fmt.Errorf("alter partition: %w", err)
		}
	}
	return results, nil
}

// validateAlterPartition is Kafka's validateAlterPartitionData.
func validateAlterPartition(im *Image, t *Topic, p Partition, brokerID int32, it AlterPartitionItem) error {
	name := fmt.Sprintf("alter partition %s-%d", t.Name, it.Partition)
	switch {
	case it.LeaderEpoch > p.LeaderEpoch || it.PartitionEpoch > p.PartitionEpoch:
		return fmt.Errorf("%s: epochs %d/%d are newer than this controller's %d/%d: %w",
			name, it.LeaderEpoch, it.PartitionEpoch, p.LeaderEpoch, p.PartitionEpoch, kerr.NotController)
	case it.LeaderEpoch < p.LeaderEpoch:
		return fmt.Errorf("%s: the current leader epoch is %d, not %d: %w", name, p.LeaderEpoch, it.LeaderEpoch, kerr.FencedLeaderEpoch)
	case brokerID != p.Leader:
		return fmt.Errorf("%s: broker %d is not the leader, the current leader is %d: %w", name, brokerID, p.Leader, kerr.InvalidRequest)
	case it.PartitionEpoch < p.PartitionEpoch:
		return fmt.Errorf("%s: the current partition epoch is %d, not %d: %w", name, p.PartitionEpoch, it.PartitionEpoch, kerr.InvalidUpdateVersion)
	}
	seen := map[int32]bool{}
	for _, m := range it.NewISR {
		if seen[m.BrokerID] || !slices.Contains(p.Replicas, m.BrokerID) {
			return fmt.Errorf("%s: invalid ISR %v for replicas %v: %w", name, it.NewISR, p.Replicas, kerr.InvalidRequest)
		}
		seen[m.BrokerID] = true
	}
	switch {
	case !seen[p.Leader]:
		return fmt.Errorf("%s: the new ISR %v does not include the leader %d: %w", name, it.NewISR, p.Leader, kerr.InvalidRequest)
	case it.LeaderRecoveryState == LeaderRecovering && len(it.NewISR) > 1:
		return fmt.Errorf("%s: the ISR %v has more than one replica while the leader is recovering: %w", name, it.NewISR, kerr.InvalidRequest)
	case p.LeaderRecoveryState == LeaderRecovered && it.LeaderRecoveryState == LeaderRecovering:
		return fmt.Errorf("%s: the leader recovery state cannot change from RECOVERED to RECOVERING: %w", name, kerr.InvalidRequest)
	case it.LeaderRecoveryState != LeaderRecovered && it.LeaderRecoveryState != LeaderRecovering:
		return fmt.Errorf("%s: unknown leader recovery state %d: %w", name, it.LeaderRecoveryState, kerr.InvalidRequest)
	}
	for _, m := range it.NewISR {
		b, ok := im.Broker(m.BrokerID)
		var why string
		switch {
		case !ok:
			why = "not registered"
		case b.InControlledShutdown:
			why = "shutting down"
		case b.Fenced:
			why = "fenced"
		case m.BrokerEpoch != -1 && m.BrokerEpoch != b.Epoch:
			why = fmt.Sprintf("broker epoch mismatch: requested=%d VS expected=%d", m.BrokerEpoch, b.Epoch)
		default:
			continue
		}
		return fmt.Errorf("%s: ineligible replica %d in the new ISR (%s): %w", name, m.BrokerID, why, kerr.IneligibleReplica)
	}
	return nil
}
