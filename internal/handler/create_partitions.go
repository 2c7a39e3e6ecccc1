package handler

// CreatePartitions: v0-3.
//
// Raises a topic's partition count (never lowers it), optionally with manual assignments.
// Internal topics are refused with INVALID_TOPIC_EXCEPTION: __consumer_offsets places a group by
// hash % partition count, so more partitions would strand every group's state (old Kafka tools
// refused it: "The number of partitions for the offsets topic cannot be changed").

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.CreatePartitions, 0, 3, (*Handler).handleCreatePartitions) }

func (h *Handler) handleCreatePartitions(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int)
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	changed := false
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "Duplicate topic in request."
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if metadata.IsInternalTopic(rt.Topic) {
			st.ErrorCode = kerr.InvalidTopicException.Code
			msg := "Cannot add partitions to internal topic " + rt.Topic + ": the coordinator maps its keys to partitions by the partition count."
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		var assign [][]int32
		for _, a := range rt.Assignment {
			assign = append(assign, a.Replicas)
		}
		err := h.meta.CreatePartitions(ctx, rt.Topic, rt.Count, assign, r.ValidateOnly)
		changed = changed || (err == nil && !r.ValidateOnly)
		st.ErrorCode = errorCode(err)
		st.ErrorMessage = errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	if changed {
		if err := h.cluster.Sync(); err != nil {
			h.log.Warn("open new partitions", "err", err)
		}
	}
	return resp, nil
}
