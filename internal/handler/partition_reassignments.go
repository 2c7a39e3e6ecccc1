package handler

// AlterPartitionReassignments v0-1, ListPartitionReassignments v0.
//
// Moldau does not move replicas, so no reassignment is ever in progress: the list is always
// empty. AlterPartitionReassignments validates each partition as Kafka's controller does
// (UNKNOWN_TOPIC_OR_PARTITION; INVALID_REPLICA_ASSIGNMENT for an empty list, a broker named
// twice or a broker that is not registered; INVALID_REPLICATION_FACTOR for a replication factor
// change that v1 forbids; NO_REASSIGNMENT_IN_PROGRESS for a cancellation). A target equal to the
// current replicas needs no movement and succeeds, as in Kafka; any other target is
// INVALID_REPLICA_ASSIGNMENT saying that Moldau cannot move replicas yet.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.AlterPartitionAssignments, 0, 1, (*Handler).handleAlterPartitionReassignments)
	register(kmsg.ListPartitionReassignments, 0, 0, (*Handler).handleListPartitionReassignments)
}

func (h *Handler) handleAlterPartitionReassignments(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	im := h.meta.Image()
	registered := map[int32]bool{}
	for _, b := range im.Brokers() {
		registered[b.NodeID] = true
	}
	allowRFChange := r.Version < 1 || r.AllowReplicationFactorChange
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		t, _ := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := reassign(t, rt.Topic, rp.Partition, rp.Replicas, registered, allowRFChange)
			sp.ErrorCode = errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func reassign(t *metadata.Topic, name string, partition int32, target []int32, registered map[int32]bool, allowRFChange bool) error {
	if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
		return fmt.Errorf("unable to find partition %s-%d: %w", name, partition, kerr.UnknownTopicOrPartition)
	}
	if target == nil {
		return fmt.Errorf("no reassignment of %s-%d is in progress: %w", name, partition, kerr.NoReassignmentInProgress)
	}
	if len(target) == 0 {
		return fmt.Errorf("the manual partition assignment includes an empty replica list: %w", kerr.InvalidReplicaAssignment)
	}
	sorted := slices.Sorted(slices.Values(target))
	for i, id := range sorted {
		if !registered[id] {
			return fmt.Errorf("the manual partition assignment includes broker %d, but no broker with that id is registered: %w", id, kerr.InvalidReplicaAssignment)
		}
		if i > 0 && sorted[i-1] == id {
			return fmt.Errorf("the manual partition assignment includes the broker %d more than once: %w", id, kerr.InvalidReplicaAssignment)
		}
	}
	current := t.Partitions[partition].Replicas
	if !allowRFChange && len(target) != len(current) {
		return fmt.Errorf("the replication factor of %s-%d is %d, the request asks %d and forbids a change: %w", name, partition, len(current), len(target), kerr.InvalidReplicationFactor)
	}
	if slices.Equal(target, current) {
		return nil
	}
	return fmt.Errorf("moving %s-%d from replicas %v to %v: Moldau cannot move partition replicas yet: %w", name, partition, current, target, kerr.InvalidReplicaAssignment)
}

func (h *Handler) handleListPartitionReassignments(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.ListPartitionReassignmentsRequest).ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.Topics = []kmsg.ListPartitionReassignmentsResponseTopic{}
	return resp, nil
}
