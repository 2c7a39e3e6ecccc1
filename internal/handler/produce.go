package handler

// Produce: v3-12 (record batch v2 only; Kafka 4 dropped older message formats).
//
// Each partition's batches are validated whole (CRC, size against max.message.bytes, idempotent
// sequence) and then appended; a partition's error never affects another partition. acks=0 gets
// no response. On one node, acks=1 and acks=-1 are both satisfied once the batch is in the log,
// after min.insync.replicas is checked against the in-sync replica count.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.Produce, 3, 12, (*Handler).handleProduce) }

func (h *Handler) handleProduce(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)

	var topLevel error
	switch {
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		topLevel = fmt.Errorf("acks must be -1, 0 or 1, got %d: %w", r.Acks, kerr.InvalidRequiredAcks)
	case r.TransactionID != nil:
		topLevel = fmt.Errorf("transactions are not supported yet: %w", kerr.TransactionalIDAuthorizationFailed)
	}

	im := h.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		t, topicOK := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			err := topLevel
			if err == nil {
				err = h.produceTo(t, topicOK, rt.Topic, rp, r.Acks, &sp)
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if r.Version >= 8 {
					sp.ErrorMessage = errorMessage(err)
				}
				h.log.Debug("produce rejected", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

func (h *Handler) produceTo(t *metadata.Topic, topicOK bool, name string, rp kmsg.ProduceRequestTopicPartition, acks int16, sp *kmsg.ProduceResponseTopicPartition) error {
	if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return fmt.Errorf("%s-%d: %w", name, rp.Partition, kerr.UnknownTopicOrPartition)
	}
	p := h.parts.Get(name, rp.Partition)
	if p == nil || t.Partitions[rp.Partition].Leader != h.opts.NodeID {
		return fmt.Errorf("%s-%d: %w", name, rp.Partition, kerr.NotLeaderForPartition)
	}
	res, err := p.Append(rp.Records, acks)
	if err != nil {
		return err
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return nil
}
