package handler

// CreateTopics: v2-7.
//
// Partitions and replication factor may be -1 (v4+) for the broker defaults, or replaced by a
// manual assignment. Configs are validated by the controller; validate-only runs every check and
// creates nothing. v5+ answers the topic's partitions, replication factor and effective configs;
// v7+ its topic id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.CreateTopics, 2, 7, (*Handler).handleCreateTopics) }

func (h *Handler) handleCreateTopics(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int)
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	created := false
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "Create topics request from client contains multiple entries for the same topic " + rt.Topic
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		spec := metadata.CreateTopic{
			Name:              rt.Topic,
			Partitions:        rt.NumPartitions,
			ReplicationFactor: rt.ReplicationFactor,
			Configs:           make(map[string]string),
			ValidateOnly:      r.ValidateOnly,
		}
		if len(rt.ReplicaAssignment) > 0 {
			spec.Assignments = make(map[int32][]int32, len(rt.ReplicaAssignment))
			for _, a := range rt.ReplicaAssignment {
				spec.Assignments[a.Partition] = a.Replicas
			}
		}
		for _, c := range rt.Configs {
			if c.Value != nil {
				spec.Configs[c.Name] = *c.Value
			}
		}
		t, err := h.meta.CreateTopic(ctx, spec)
		if err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		created = created || !r.ValidateOnly
		if t != nil {
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			if len(t.Partitions) > 0 {
				st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			}
			if r.Version >= 5 && !r.ValidateOnly {
				cfgs, err := h.cluster.DescribeTopicConfigs(t.Name, nil, false, false)
				if err == nil {
					for _, c := range cfgs {
						sc := kmsg.NewCreateTopicsResponseTopicConfig()
						sc.Name, sc.Value, sc.ReadOnly, sc.Source, sc.IsSensitive = c.Name, c.Value, c.ReadOnly, int8(c.Source), c.IsSensitive
						st.Configs = append(st.Configs, sc)
					}
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if created {
		if err := h.cluster.Sync(); err != nil {
			h.log.Warn("open partitions of created topics", "err", err)
		}
	}
	return resp, nil
}
