package handler

// OffsetForLeaderEpoch: v2-4.
//
// For each partition: the largest leader epoch <= the requested one and the offset at which it
// ended (the log end offset for the current epoch), from the leader-epoch checkpoint. Clients use
// it to detect log truncation after a leader change (KIP-320), and followers (v3+ ReplicaID >= 0)
// to find where to truncate when a fetch cannot tell them (KIP-101, KIP-279). Only the leader
// answers, for both (NOT_LEADER_OR_FOLLOWER elsewhere), as Kafka does for every replica id but the
// debugging one.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, (*Handler).handleOffsetForLeaderEpoch) }

func (h *Handler) handleOffsetForLeaderEpoch(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	im := h.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t, ok := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := h.leaderPartition(t, rp.Partition)
			if err == nil {
				err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
