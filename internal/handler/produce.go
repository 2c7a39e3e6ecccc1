package handler

// Produce: v3-12 (record batch v2 only; Kafka 4 dropped older message formats). ApiVersions
// advertises v0-12, as Kafka 4 does, for librdkafka's sake (see api_versions.go).
//
// Internal topics (__consumer_offsets, ...) are refused with INVALID_TOPIC_EXCEPTION, as Kafka
// refuses them: only the coordinators append there. Batches are appended with the client origin:
// control and transactional batches are refused (see partition.Origin).
//
// Each partition's batches are validated whole (CRC, size against max.message.bytes, idempotent
// sequence) and then appended; a partition's error never affects another partition. acks=0 gets
// no response. On one node, acks=1 and acks=-1 are both satisfied once the batch is in the log,
// after min.insync.replicas is checked against the in-sync replica count. Under
// log.flush.interval.messages=1, the default, the response waits for one group-committed sync per
// log dir, after all of the request's appends.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
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

	// Partitions whose flush policy wants the data on disk before the ack, by log dir syncer:
	// synced once each after every append (group commit).
	type at struct{ topic, partition int }
	toSync := map[*log.Syncer][]at{}
	im := h.meta.Image()
	for ti, rt := range r.Topics {
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
				var syncer *log.Syncer
				syncer, err = h.produceTo(t, topicOK, rt.Topic, rp, r.Acks, &sp)
				if syncer != nil {
					toSync[syncer] = append(toSync[syncer], at{ti, len(st.Partitions)})
				}
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
	for syncer, parts := range toSync {
		if err := syncer.Sync(); err != nil {
			err = fmt.Errorf("fsync before ack: %v: %w", err, kerr.KafkaStorageError)
			h.log.Error("produce not durable", "err", err)
			for _, a := range parts {
				sp := &resp.Topics[a.topic].Partitions[a.partition]
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
				sp.ErrorCode = errorCode(err)
				if r.Version >= 8 {
					sp.ErrorMessage = errorMessage(err)
				}
			}
		}
	}
	if r.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// produceTo appends one partition's batches and fills sp. It returns the syncer to wait on before
// the ack, if the partition's flush policy asks for one.
func (h *Handler) produceTo(t *metadata.Topic, topicOK bool, name string, rp kmsg.ProduceRequestTopicPartition, acks int16, sp *kmsg.ProduceResponseTopicPartition) (*log.Syncer, error) {
	if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return nil, fmt.Errorf("%s-%d: %w", name, rp.Partition, kerr.UnknownTopicOrPartition)
	}
	if metadata.IsInternalTopic(name) {
		// Only the coordinators write there (ReplicaManager.appendToLocalLog's rule).
		return nil, fmt.Errorf("cannot append to internal topic %s: %w", name, kerr.InvalidTopicException)
	}
	p := h.parts.Get(name, rp.Partition)
	if p == nil || t.Partitions[rp.Partition].Leader != h.opts.NodeID {
		return nil, fmt.Errorf("%s-%d: %w", name, rp.Partition, kerr.NotLeaderForPartition)
	}
	res, err := p.Append(rp.Records, acks, partition.OriginClient)
	if err != nil {
		return nil, err
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return p.AckSyncer(), nil
}
