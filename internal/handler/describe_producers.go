package handler

// DescribeProducers: v0.
//
// Lists the producers each partition remembers (idempotent and transactional, the ones whose
// last batches it keeps for duplicate detection), as Kafka's ProducerStateManager does:
// CurrentTxnStartOffset is the first offset of the producer's open transaction on the partition
// (-1: none), CoordinatorEpoch the epoch of the coordinator of its last marker (-1: none). A partition that does not exist is
// UNKNOWN_TOPIC_OR_PARTITION, one that this broker does not lead NOT_LEADER_OR_FOLLOWER.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DescribeProducers, 0, 0, (*Handler).handleDescribeProducers) }

func (h *Handler) handleDescribeProducers(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeProducersRequest)
	resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
	im := h.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		t, ok := im.Topic(rt.Topic)
		for _, index := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = index
			var err error
			if !ok {
				err = fmt.Errorf("topic %s does not exist: %w", rt.Topic, kerr.UnknownTopicOrPartition)
			} else if p, perr := h.leaderPartition(t, index); perr != nil {
				err = perr
			} else {
				sp.ActiveProducers = []kmsg.DescribeProducersResponseTopicPartitionActiveProducer{}
				for _, ps := range p.Producers() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch = ps.ProducerID, int32(ps.ProducerEpoch)
					ap.LastSequence, ap.LastTimestamp = ps.LastSequence, ps.LastTimestamp
					ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = ps.CoordinatorEpoch, ps.CurrentTxnStartOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			sp.ErrorCode = errorCode(err)
			sp.ErrorMessage = errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
