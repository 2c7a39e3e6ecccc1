package handler

// DeleteRecords: v0-2.
//
// Moves each partition's log start offset forward to the requested offset (-1: the high
// watermark); whole segments below it are deleted. Answers the new low watermark. Internal topics
// get INVALID_TOPIC_EXCEPTION, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DeleteRecords, 0, 2, (*Handler).handleDeleteRecords) }

func (h *Handler) handleDeleteRecords(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	im := h.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t, ok := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if metadata.IsInternalTopic(rt.Topic) {
				// ReplicaManager.deleteRecordsOnLocalLog's rule.
				sp.ErrorCode = kerr.InvalidTopicException.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := h.leaderPartition(t, rp.Partition)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecords(rp.Offset)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
