package handler

// AlterPartitionReassignments v0-1, ListPartitionReassignments v0.
//
// AlterPartitionReassignments hands every partition to the controller (metadata/reassign.go:
// Kafka's KRaft reassignment), which validates each as Kafka does (UNKNOWN_TOPIC_OR_PARTITION;
// INVALID_REPLICA_ASSIGNMENT for an empty list, a broker named twice or a broker that is not
// registered; INVALID_REPLICATION_FACTOR for a replication factor change that v1 forbids;
// NO_REASSIGNMENT_IN_PROGRESS for a cancellation with nothing to cancel) and commits the
// accepted ones as one batch, on the raft leader. A target equal to the current replicas
// needs no movement and succeeds. ListPartitionReassignments answers from this node's image:
// the partitions with adding or removing replicas, Replicas being the full set while moving;
// null topics list every reassignment in progress.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.AlterPartitionAssignments, 0, 1, (*Handler).handleAlterPartitionReassignments)
	register(kmsg.ListPartitionReassignments, 0, 0, (*Handler).handleListPartitionReassignments)
}

func (h *Handler) handleAlterPartitionReassignments(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	keepRF := r.Version >= 1 && !r.AllowReplicationFactorChange
	var items []metadata.Reassignment
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			items = append(items, metadata.Reassignment{Topic: rt.Topic, Partition: rp.Partition, Replicas: rp.Replicas, KeepReplicationFactor: keepRF})
		}
	}
	var errs []error
	var whole error
	if len(items) > 0 {
		errs, whole = h.meta.AlterPartitionReassignments(ctx, items)
	}
	if whole != nil {
		resp.ErrorCode = errorCode(whole)
		resp.ErrorMessage = errorMessage(whole)
	}
	i := 0
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			err := whole
			if err == nil {
				err = errs[i]
			}
			sp.ErrorCode = errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
			i++
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (h *Handler) handleListPartitionReassignments(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.Topics = []kmsg.ListPartitionReassignmentsResponseTopic{}
	im := h.meta.Image()
	list := func(t *metadata.Topic, partitions []int32) {
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = t.Name
		for _, id := range partitions {
			if id < 0 || int(id) >= len(t.Partitions) || !t.Partitions[id].Reassigning() {
				continue
			}
			p := t.Partitions[id]
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = id
			sp.Replicas = append([]int32{}, p.Replicas...)
			sp.AddingReplicas = append([]int32{}, p.AddingReplicas...)
			sp.RemovingReplicas = append([]int32{}, p.RemovingReplicas...)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if r.Topics == nil {
		for _, t := range im.Topics() {
			all := make([]int32, len(t.Partitions))
			for i := range all {
				all[i] = int32(i)
			}
			list(t, all)
		}
		return resp, nil
	}
	for _, rt := range r.Topics {
		if t, ok := im.Topic(rt.Topic); ok {
			list(t, rt.Partitions)
		}
	}
	return resp, nil
}
