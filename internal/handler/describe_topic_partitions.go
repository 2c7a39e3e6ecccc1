package handler

// DescribeTopicPartitions: v0 (KIP-966), what Kafka 4.x's kafka-topics --describe sends.
//
// As Kafka's DescribeTopicPartitionsRequestHandler: an empty topic list means every topic; topics
// are answered sorted by name, starting at the request's Cursor (the cursor's topic from its
// partition, later topics from partition 0; a named list must contain the cursor's topic). At most
// min(ResponsePartitionLimit, max.request.partition.size.limit = 2000) partitions are returned;
// when the limit cuts a topic, or falls exactly before the next topic, NextCursor names where to
// continue. A named topic that does not exist answers UNKNOWN_TOPIC_OR_PARTITION (or
// INVALID_TOPIC_EXCEPTION for an invalid name); when listing every topic there is none.
// EligibleLeaderReplicas and LastKnownELR are the partition's (KIP-966: replicas that left the ISR
// while it was below min.insync.replicas and can still lead); replicas on fenced brokers are
// offline. With no authorizer every topic operation is allowed, as in Kafka.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeTopicPartitions, 0, 0, (*Handler).handleDescribeTopicPartitions)
}

// maxRequestPartitionSizeLimit is Kafka's max.request.partition.size.limit default.
const maxRequestPartitionSizeLimit = 2000

// allTopicOperations is the TopicAuthorizedOperations bit field Kafka answers when no authorizer
// is configured: every operation a topic supports (READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
// DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11).
const allTopicOperations int32 = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11

func (h *Handler) handleDescribeTopicPartitions(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeTopicPartitionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	im := h.meta.Image()

	cursorTopic, firstPartition := "", int32(0)
	if r.Cursor != nil {
		cursorTopic, firstPartition = r.Cursor.Topic, r.Cursor.Partition
	}
	fetchAll := len(r.Topics) == 0
	var names []string
	if fetchAll {
		for _, t := range im.Topics() {
			if t.Name >= cursorTopic {
				names = append(names, t.Name)
			}
		}
	} else {
		for _, rt := range r.Topics {
			if rt.Topic >= cursorTopic {
				names = append(names, rt.Topic)
			}
		}
		if r.Cursor != nil && !slices.Contains(names, r.Cursor.Topic) {
			// Kafka throws InvalidRequestException: every requested topic gets the error.
			for _, rt := range r.Topics {
				rt := rt
				t := kmsg.NewDescribeTopicPartitionsResponseTopic()
				t.Topic = &rt.Topic
				t.ErrorCode = kerr.InvalidRequest.Code
				resp.Topics = append(resp.Topics, t)
			}
			return resp, nil
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if firstPartition < 0 {
		firstPartition = 0
	}

	remaining := min(int(r.ResponsePartitionLimit), maxRequestPartitionSizeLimit)
	for _, name := range names {
		if remaining <= 0 {
			if remaining == 0 {
				// The limit fell exactly at a topic boundary: continue with this topic.
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name}
			}
			break
		}
		t, ok := im.Topic(name)
		if !ok {
			if !fetchAll {
				resp.Topics = append(resp.Topics, missingDescribedTopic(name))
			}
			continue
		}
		start := int32(0)
		if name == cursorTopic {
			start = firstPartition
		}
		rt, next := h.describedTopic(im, t, start, remaining)
		resp.Topics = append(resp.Topics, rt)
		if next >= 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: next}
			break
		}
		remaining -= len(rt.Partitions)
	}
	return resp, nil
}

// describedTopic answers partitions [start, start+limit) of t; next is the first partition left
// out, or -1 when the topic ended within the limit.
func (h *Handler) describedTopic(im *metadata.Image, t *metadata.Topic, start int32, limit int) (kmsg.DescribeTopicPartitionsResponseTopic, int32) {
	rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	name := t.Name
	rt.Topic = &name
	rt.TopicID = t.ID
	rt.IsInternal = t.Internal
	rt.AuthorizedOperations = allTopicOperations
	rt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	count := int64(len(t.Partitions))
	upper := min(count, int64(start)+int64(limit))
	next := int32(-1)
	if upper < count {
		next = int32(upper)
	}
	for i := int64(start); i < upper; i++ {
		p := t.Partitions[i]
		rp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		rp.Partition = p.Partition
		rp.LeaderID = -1
		if b, ok := im.Broker(p.Leader); ok && !b.Fenced {
			rp.LeaderID = p.Leader
		}
		rp.LeaderEpoch = p.LeaderEpoch
		rp.Replicas = append([]int32{}, p.Replicas...)
		rp.ISR = append([]int32{}, p.ISR...)
		rp.EligibleLeaderReplicas = append([]int32{}, p.ELR...)
		rp.LastKnownELR = append([]int32{}, p.LastKnownELR...)
		rp.OfflineReplicas = []int32{}
		for _, id := range p.Replicas {
			if b, ok := im.Broker(id); !ok || b.Fenced {
				rp.OfflineReplicas = append(rp.OfflineReplicas, id)
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt, next
}

// missingDescribedTopic answers a named topic that does not exist.
func missingDescribedTopic(name string) kmsg.DescribeTopicPartitionsResponseTopic {
	rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	rt.Topic = &name
	rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
	if metadata.ValidateTopicName(name) != nil {
		rt.ErrorCode = kerr.InvalidTopicException.Code
	}
	rt.IsInternal = metadata.IsInternalTopic(name)
	rt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
	return rt
}
