package handler

// Metadata: v0-12.
//
// Brokers, cluster id, controller and the requested topics (null = all; v1+ empty = none).
// A topic that does not exist is created with the broker defaults when the request allows it
// (v4+ AllowAutoTopicCreation; always before v4) and auto.create.topics.enable is on; as in Kafka,
// the response that creates it answers LEADER_NOT_AVAILABLE for it, without partitions (clients
// ask again), and the next one describes it. v10+ topics may be named by id. Internal topics
// (metadata.IsInternalTopic) are reported IsInternal and never auto-created: their coordinator
// creates them with their own settings. Brokers are given with their endpoint on the listener the
// request arrived on (Kafka's rule).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.Metadata, 0, 12, (*Handler).handleMetadata) }

func (h *Handler) handleMetadata(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)

	im := h.meta.Image()
	allTopics := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)
	autoCreate := h.opts.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)

	var topics []*metadata.Topic
	var missing []kmsg.MetadataResponseTopic
	if allTopics {
		topics = im.Topics()
	} else {
		created := false
		for _, rt := range r.Topics {
			t, err := h.lookupMetadataTopic(ctx, im, rt, autoCreate)
			if err == errCreated {
				created = true
				err = kerr.LeaderNotAvailable
			} else if t != nil {
				topics = append(topics, t)
				continue
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = rt.TopicID
			mt.ErrorCode = errorCode(err)
			missing = append(missing, mt)
		}
		if created {
			if err := h.cluster.Sync(); err != nil {
				h.log.Warn("open partitions of auto-created topics", "err", err)
			}
		}
	}

	for _, b := range im.Brokers() {
		if b.Fenced {
			continue // Kafka's metadata lists live brokers only
		}
		mb := kmsg.NewMetadataResponseBroker()
		e := h.brokerEndpoint(req, b)
		mb.NodeID, mb.Host, mb.Port = b.NodeID, e.Host, e.Port
		if b.Rack != "" {
			rack := b.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	clusterID := im.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = h.meta.ControllerID() // the raft leader; -1 while none is elected

	for _, t := range topics {
		resp.Topics = append(resp.Topics, metadataTopic(im, t, r.Version))
	}
	resp.Topics = append(resp.Topics, missing...)
	return resp, nil
}

// errCreated marks a topic that lookupMetadataTopic has just auto-created.
var errCreated = errors.New("created")

func (h *Handler) lookupMetadataTopic(ctx context.Context, im *metadata.Image, rt kmsg.MetadataRequestTopic, autoCreate bool) (*metadata.Topic, error) {
	if rt.Topic == nil {
		if t, ok := im.TopicByID(rt.TopicID); ok {
			return t, nil
		}
		return nil, fmt.Errorf("topic id %x: %w", rt.TopicID, kerr.UnknownTopicID)
	}
	name := *rt.Topic
	if t, ok := im.Topic(name); ok {
		return t, nil
	}
	if !autoCreate || metadata.IsInternalTopic(name) { // internal topics: their coordinator creates them
		return nil, fmt.Errorf("topic %q: %w", name, kerr.UnknownTopicOrPartition)
	}
	t, err := h.meta.CreateTopic(ctx, metadata.CreateTopic{Name: name, Partitions: -1, ReplicationFactor: -1})
	switch {
	case err == nil:
		return t, errCreated
	case errors.Is(err, metadata.ErrTopicExists): // created concurrently
		if t, ok := h.meta.Image().Topic(name); ok {
			return t, nil
		}
	}
	return nil, err
}

func metadataTopic(im *metadata.Image, t *metadata.Topic, version int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal || metadata.IsInternalTopic(t.Name)
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.Partition
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = append([]int32{}, p.Replicas...)
		mp.ISR = append([]int32{}, p.ISR...)
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if b, ok := im.Broker(r); !ok || b.Fenced {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r) // its broker is not alive
			}
		}
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
