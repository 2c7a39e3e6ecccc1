package metadata

// Partition reassignment: Kafka KRaft's ReplicationControlManager.alterPartitionReassignment
// with PartitionReassignmentReplicas and PartitionReassignmentRevert.
//
// A move of a partition from replicas C to a target T goes through three stages:
//
//  1. One PartitionChangeRecord sets Replicas = T followed by C − T (Kafka's order: the target
//     first, then the replicas being removed, ascending), AddingReplicas = T − C and
//     RemovingReplicas = C − T (both ascending). The leader and the ISR stay. From this record
//     on the adding replicas are followers of the leader (replica manager).
//  2. The adding replicas catch up and join the ISR through the leader's AlterPartition, as
//     any follower.
//  3. The change that makes the ISR hold every target replica completes the move, in the same
//     record (changeBuilder.build, completeReassignment): Replicas = T, ISR = ISR − removing,
//     adding and removing cleared; a leader that is not in T gives way to the first target
//     replica in the ISR, and the leader epoch bumps because replicas left. A move whose
//     targets are already in the ISR (a reorder, or dropping replicas) completes at once.
//
// Cancelling (nil target) reverts to the original replicas, Replicas − AddingReplicas, with the
// adding replicas out of the ISR (PartitionReassignmentRevert); when that leaves the ISR empty
// the first original replica becomes the ISR, which needs unclean.leader.election.enable.
// A new target while a move is in progress is computed against the full replica set, as
// Kafka does (see reassignmentReplicas for where the adding and removing lists differ).

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reassignment is one partition of an AlterPartitionReassignments request.
type Reassignment struct {
	Topic     string
	Partition int32
	// Replicas is the target assignment, in preference order; nil cancels the reassignment
	// in progress.
	Replicas []int32
	// KeepReplicationFactor refuses a target whose size differs from the partition's
	// replication factor (AlterPartitionReassignments v1 with AllowReplicationFactorChange
	// false). The zero value allows a change, as v0.
	KeepReplicationFactor bool
}

// AlterPartitionReassignments starts, replaces or cancels partition reassignments. It returns
// one error per item (nil: accepted; each wraps a kerr error: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR, NO_REASSIGNMENT_IN_PROGRESS), and
// an error for the whole request (no controller, the commit failed). The accepted items
// commit as one batch. On another node than the raft leader it is sent to the leader as an
// AlterPartitionAssignmentsRequest, and returns once this node's image has the change.
func (c *Controller) AlterPartitionReassignments(ctx context.Context, items []Reassignment) ([]error, error) {
	var out []error
	err := c.route(ctx, func() error {
		var err error
		out, err = c.localAlterPartitionReassignments(ctx, items)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		var err error
		out, err = remoteAlterPartitionReassignments(ctx, send, items)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Controller) localAlterPartitionReassignments(ctx context.Context, items []Reassignment) ([]error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.Image()
	errs := make([]error, len(items))
	pending := map[partKey]Partition{}
	var records []Record
	for i, it := range items {
		t, ok := im.Topic(it.Topic)
		if !ok || it.Partition < 0 || int(it.Partition) >= len(t.Partitions) {
			errs[i] = fmt.Errorf("unable to find partition %s-%d: %w", it.Topic, it.Partition, kerr.UnknownTopicOrPartition)
			continue
		}
		key := partKey{UUID(t.ID), it.Partition}
		p, ok := pending[key]
		if !ok {
			p = t.Partitions[it.Partition]
		}
		var cb changeBuilder
		var err error
		if it.Replicas == nil {
			cb, err = c.cancelReassignment(im, t, p)
		} else {
			cb, err = c.changeReassignment(im, t, p, it)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		if next, changed := cb.build(); changed {
			if im.MetadataVersion() == 0 {
				// No metadata.version: a node of an older build may be registered, which
				// cannot decode the records of a move (ensureMetadataVersionLocked).
				errs[i] = fmt.Errorf("moving %s-%d needs a finalized metadata.version, which this cluster does not have yet (a node of an older Moldau build is registered): restart every node with this build, then run kafka-features upgrade --metadata %s: %w",
					it.Topic, it.Partition, latestRelease(), kerr.UnsupportedVersion)
				continue
			}
			records = append(records, cb.record(key.topic, next))
			pending[key] = next
		}
	}
	if len(records) > 0 {
		if err := c.commitLocked(ctx, records...); err != nil {
			return nil, fmt.Errorf("alter partition reassignments: %w", err)
		}
	}
	return errs, nil
}

// activeBroker is Kafka's LeaderAcceptor over im, the acceptable-leader rule of AlterPartition,
// elections and reassignments: a broker may lead when it is registered, unfenced and not
// shutting down.
func activeBroker(im *Image) func(int32) bool {
	return func(id int32) bool {
		b, ok := im.brokers[id]
		return ok && b.Active()
	}
}

// changeReassignment is Kafka's changePartitionReassignment: validate the target and set the
// assignment stage 1 asks for (or, when the target is already in the ISR, the final one: build
// completes it).
func (c *Controller) changeReassignment(im *Image, t *Topic, p Partition, it Reassignment) (changeBuilder, error) {
	target := it.Replicas
	if len(target) == 0 {
		return changeBuilder{}, fmt.Errorf("the manual partition assignment includes an empty replica list: %w", kerr.InvalidReplicaAssignment)
	}
	sorted := slices.Sorted(slices.Values(target))
	for i, id := range sorted {
		if _, ok := im.brokers[id]; !ok {
			return changeBuilder{}, fmt.Errorf("the manual partition assignment includes broker %d, but no broker with that id is registered: %w", id, kerr.InvalidReplicaAssignment)
		}
		if i > 0 && sorted[i-1] == id {
			return changeBuilder{}, fmt.Errorf("the manual partition assignment includes the broker %d more than once: %w", id, kerr.InvalidReplicaAssignment)
		}
	}
	if rf := len(p.Replicas) - len(p.AddingReplicas); it.KeepReplicationFactor && len(target) != rf {
		return changeBuilder{}, fmt.Errorf("the replication factor of %s-%d is %d, the request asks %d and forbids a change: %w",
			t.Name, p.Partition, rf, len(target), kerr.InvalidReplicationFactor)
	}
	replicas, adding, removing := reassignmentReplicas(p.Replicas, without(p.Replicas, p.AddingReplicas), target)
	cb := changeBuilder{
		part:           p,
		targetISR:      p.ISR,
		targetAdding:   adding,
		targetRemoving: removing,
		recovery:       p.LeaderRecoveryState,
		minISR:         c.minISR(im, t),
		acceptable:     activeBroker(im),
	}
	if !slices.Equal(replicas, p.Replicas) {
		cb.targetReplicas = replicas
	}
	return cb, nil
}

// cancelReassignment is Kafka's cancelPartitionReassignment with PartitionReassignmentRevert.
func (c *Controller) cancelReassignment(im *Image, t *Topic, p Partition) (changeBuilder, error) {
	if !p.Reassigning() {
		return changeBuilder{}, fmt.Errorf("no reassignment of %s-%d is in progress: %w", t.Name, p.Partition, kerr.NoReassignmentInProgress)
	}
	replicas := without(p.Replicas, p.AddingReplicas)
	isr := without(p.ISR, p.AddingReplicas)
	unclean := c.uncleanElection(im, t)
	if len(isr) == 0 {
		// Every ISR member is a replica being added: the first original replica becomes the
		// ISR, an unclean election.
		if len(replicas) == 0 {
			return changeBuilder{}, fmt.Errorf("invalid replica assignment of %s-%d: the adding replicas %v are all its replicas: %w",
				t.Name, p.Partition, p.AddingReplicas, kerr.InvalidReplicaAssignment)
		}
		if !unclean {
			return changeBuilder{}, fmt.Errorf("unable to revert partition assignment for %s-%d because it would require an unclean leader election: %w",
				t.Name, p.Partition, kerr.InvalidReplicaAssignment)
		}
		isr = []int32{replicas[0]}
	}
	return changeBuilder{
		part:           p,
		targetISR:      isr,
		targetReplicas: replicas,
		targetAdding:   []int32{},
		targetRemoving: []int32{},
		recovery:       p.LeaderRecoveryState,
		minISR:         c.minISR(im, t),
		unclean:        unclean,
		acceptable:     activeBroker(im),
	}, nil
}

// reassignmentReplicas is Kafka's PartitionReassignmentReplicas(current, target): the
// replicas while moving (the target, then the removed ones, current − target, ascending)
// and the adding replicas (target − original, ascending), both non-nil. current is the
// partition's full replica set, original the replicas before the move in progress (current
// when there is none).
//
// With a move in progress this departs from Kafka on purpose: Kafka computes adding as
// target − current and keeps the previous adding (removing) list when the new one comes out
// empty, so a new target equal to the full set of a move to {2,3,4} from {1,2,3}, [2 3 4 1],
// keeps removing [1] and completes as [2 3 4], dropping a replica the request names. Here
// removing is always current − target and adding keeps the replicas of the move in progress
// that are still targets (they may not have caught up yet); for a first move, and for the
// cases Kafka's tests check, both agree with Kafka.
func reassignmentReplicas(current, original, target []int32) (replicas, adding, removing []int32) {
	removing = cloneInt32s(slices.Sorted(slices.Values(without(current, target))))
	adding = cloneInt32s(slices.Sorted(slices.Values(without(target, original))))
	replicas = append(slices.Clone(target), removing...)
	return replicas, adding, removing
}

// completeReassignment is Kafka's PartitionReassignmentReplicas.maybeCompleteReassignment:
// when a reassignment is in progress and the ISR, less the removing replicas, holds every
// replica that stays, it returns the final replicas and ISR.
func completeReassignment(replicas, adding, removing, isr []int32) (newReplicas, newISR []int32, ok bool) {
	if len(adding) == 0 && len(removing) == 0 {
		return nil, nil, false
	}
	newReplicas, newISR = replicas, isr
	if len(removing) > 0 {
		if newISR = without(isr, removing); len(newISR) == 0 {
			return nil, nil, false
		}
		if newReplicas = without(replicas, removing); len(newReplicas) == 0 {
			return nil, nil, false
		}
	}
	if !containsAll(newISR, newReplicas) {
		return nil, nil, false
	}
	return slices.Clone(newReplicas), slices.Clone(newISR), true
}

// remoteAlterPartitionReassignments sends items to the raft leader: one request per value of
// KeepReplicationFactor (the request carries it once).
func remoteAlterPartitionReassignments(ctx context.Context, send sendFunc, items []Reassignment) ([]error, error) {
	out := make([]error, len(items))
	for _, keep := range []bool{false, true} {
		var idx []int
		for i, it := range items {
			if it.KeepReplicationFactor == keep {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			continue
		}
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		req.AllowReplicationFactorChange = !keep
		topics := map[string]int{}
		for _, i := range idx {
			it := items[i]
			ti, ok := topics[it.Topic]
			if !ok {
				ti = len(req.Topics)
				topics[it.Topic] = ti
				rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
				rt.Topic = it.Topic
				req.Topics = append(req.Topics, rt)
			}
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition, rp.Replicas = it.Partition, it.Replicas
			req.Topics[ti].Partitions = append(req.Topics[ti].Partitions, rp)
		}
		resp, err := send(ctx, req)
		if err != nil {
			return nil, err
		}
		r := resp.(*kmsg.AlterPartitionAssignmentsResponse)
		if err := remoteErr(r.ErrorCode, r.ErrorMessage); err != nil {
			return nil, err
		}
		// The answers, per partition in request order (a partition may be named twice).
		answers := map[string]map[int32][]error{}
		for _, rt := range r.Topics {
			if answers[rt.Topic] == nil {
				answers[rt.Topic] = map[int32][]error{}
			}
			for _, rp := range rt.Partitions {
				answers[rt.Topic][rp.Partition] = append(answers[rt.Topic][rp.Partition], remoteKerr(rp.ErrorCode, rp.ErrorMessage))
			}
		}
		for _, i := range idx {
			it := items[i]
			q := answers[it.Topic][it.Partition]
			if len(q) == 0 {
				out[i] = fmt.Errorf("alter partition reassignments: the controller did not answer for %s-%d: %w", it.Topic, it.Partition, kerr.UnknownServerError)
				continue
			}
			out[i], answers[it.Topic][it.Partition] = q[0], q[1:]
		}
	}
	return out, nil
}

// remoteKerr is the error of a per-item code from the leader: its message, wrapping the kerr
// error (as a local call's errors do). nil for no error.
func remoteKerr(code int16, msg *string) error {
	kerrErr := kerr.ErrorForCode(code)
	if kerrErr == nil {
		return nil
	}
	text := kerrErr.Error()
	if msg != nil && *msg != "" {
		text = *msg
	}
	return &remoteError{msg: text, err: kerrErr}
}

// latestRelease is the release name of LatestMetadataVersion ("4.1"), for kafka-features upgrade --metadata.
func latestRelease() string {
	mv, _ := MetadataVersionByLevel(LatestMetadataVersion)
	return mv.Release()
}
