package handler

// The classic consumer group APIs, answered by the group coordinator (internal/group). This
// broker coordinates every group, so FindCoordinator always names it.
//
//   FindCoordinator v0-5 (v4+ batched keys)   JoinGroup v0-9       SyncGroup v0-5
//   Heartbeat v0-4                             LeaveGroup v0-5      OffsetCommit v0-9
//   OffsetFetch v0-9 (v8+ multi-group)         OffsetDelete v0      DescribeGroups v0-5
//   ListGroups v0-5                            DeleteGroups v0-2

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.FindCoordinator, 0, 5, (*Handler).handleFindCoordinator)
	register(kmsg.JoinGroup, 0, 9, (*Handler).handleJoinGroup)
	register(kmsg.SyncGroup, 0, 5, (*Handler).handleSyncGroup)
	register(kmsg.Heartbeat, 0, 4, (*Handler).handleHeartbeat)
	register(kmsg.LeaveGroup, 0, 5, (*Handler).handleLeaveGroup)
	register(kmsg.OffsetCommit, 0, 9, (*Handler).handleOffsetCommit)
	register(kmsg.OffsetFetch, 0, 9, (*Handler).handleOffsetFetch)
	register(kmsg.OffsetDelete, 0, 0, (*Handler).handleOffsetDelete)
	register(kmsg.DescribeGroups, 0, 5, (*Handler).handleDescribeGroups)
	register(kmsg.ListGroups, 0, 5, (*Handler).handleListGroups)
	register(kmsg.DeleteGroups, 0, 2, (*Handler).handleDeleteGroups)
}

func (h *Handler) handleFindCoordinator(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if _, ok := h.meta.Image().Topic(metadata.ConsumerOffsetsTopic); !ok && r.CoordinatorType == 0 {
		// First lookup in a cluster: create the topic now (until it exists the answer is
		// COORDINATOR_NOT_AVAILABLE, which clients retry).
		if err := h.cluster.EnsureOffsetsTopic(ctx); err != nil {
			h.log.Warn("FindCoordinator: cannot create "+metadata.ConsumerOffsetsTopic+" yet", "err", err)
		}
	}
	if _, ok := h.meta.Image().Topic(metadata.TransactionStateTopic); !ok && r.CoordinatorType == 1 && h.opts.Txns != nil {
		if err := h.cluster.EnsureTransactionsTopic(ctx); err != nil {
			h.log.Warn("FindCoordinator: cannot create "+metadata.TransactionStateTopic+" yet", "err", err)
		}
	}
	im := h.meta.Image()
	answer := func(key string) (int32, string, int32, int16) {
		var (
			id int32
			e  Endpoint
			ok bool
		)
		switch r.CoordinatorType {
		case 0:
			id, e, ok = h.groupCoordinator(req, im, key)
		case 1:
			if key == "" {
				return -1, "", -1, kerr.InvalidRequest.Code
			}
			if h.opts.Txns == nil {
				return -1, "", -1, kerr.CoordinatorNotAvailable.Code
			}
			id, e, ok = h.coordinatorOf(req, im, metadata.TransactionStateTopic, key)
		default:
			return -1, "", -1, kerr.InvalidRequest.Code
		}
		if !ok {
			return -1, "", -1, kerr.CoordinatorNotAvailable.Code
		}
		return id, e.Host, e.Port, 0
	}
	if r.Version >= 4 {
		for _, key := range r.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key = key
			c.NodeID, c.Host, c.Port, c.ErrorCode = answer(key)
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp, nil
	}
	resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = answer(r.CoordinatorKey)
	return resp, nil
}

// groupCoordinator is the coordinator of a group: the leader of its __consumer_offsets
// partition, with its endpoint on the listener req came in on. Not ok while the partition has no
// leader (or the topic is not created yet): COORDINATOR_NOT_AVAILABLE, which clients retry.
func (h *Handler) groupCoordinator(req *server.Request, im *metadata.Image, name string) (int32, Endpoint, bool) {
	return h.coordinatorOf(req, im, metadata.ConsumerOffsetsTopic, name)
}

// coordinatorOf is the leader of key's partition of an internal topic (__consumer_offsets for a
// group, __transaction_state for a transactional id: the same hash), with its endpoint on req's
// listener.
func (h *Handler) coordinatorOf(req *server.Request, im *metadata.Image, topic, name string) (int32, Endpoint, bool) {
	t, ok := im.Topic(topic)
	if !ok || len(t.Partitions) == 0 {
		return -1, Endpoint{}, false
	}
	p := t.Partitions[group.OffsetsPartition(name, int32(len(t.Partitions)))]
	if p.Leader < 0 {
		return -1, Endpoint{}, false
	}
	b, ok := im.Broker(p.Leader)
	if !ok {
		return -1, Endpoint{}, false
	}
	return b.NodeID, h.brokerEndpoint(req, b), true
}

func (h *Handler) handleJoinGroup(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	ctx = group.WithClient(ctx, req.ClientID, "/"+host)
	return h.groups.JoinGroup(ctx, req.Msg.(*kmsg.JoinGroupRequest)), nil
}

func (h *Handler) handleSyncGroup(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.SyncGroup(ctx, req.Msg.(*kmsg.SyncGroupRequest)), nil
}

func (h *Handler) handleHeartbeat(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.Heartbeat(req.Msg.(*kmsg.HeartbeatRequest)), nil
}

func (h *Handler) handleLeaveGroup(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.LeaveGroup(req.Msg.(*kmsg.LeaveGroupRequest)), nil
}

// handleOffsetCommit answers UNKNOWN_TOPIC_OR_PARTITION for the partitions that do not exist, as
// Kafka's KafkaApis does before it hands the rest to the group coordinator (which is not asked at
// all when nothing is left: a commit to unknown partitions creates no group).
func (h *Handler) handleOffsetCommit(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.OffsetCommitRequest)
	im := h.meta.Image()
	exists := im.HasPartition
	known := *r
	known.Topics = nil
	all := true
	for _, t := range r.Topics {
		kt := t
		kt.Partitions = nil
		for _, p := range t.Partitions {
			if exists(t.Topic, p.Partition) {
				kt.Partitions = append(kt.Partitions, p)
			} else {
				all = false
			}
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	if all {
		return h.groups.OffsetCommit(r), nil
	}
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	var kresp *kmsg.OffsetCommitResponse
	if len(known.Topics) > 0 {
		kresp = h.groups.OffsetCommit(&known)
		resp.ThrottleMillis = kresp.ThrottleMillis
	}
	// The coordinator answers the known partitions in request order.
	next := 0
	for _, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		var kt *kmsg.OffsetCommitResponseTopic
		kp := 0
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			if !exists(t.Topic, p.Partition) {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				if kt == nil && next < len(kresp.Topics) {
					kt = &kresp.Topics[next]
					next++
				}
				if kt != nil && kp < len(kt.Partitions) {
					rp.ErrorCode = kt.Partitions[kp].ErrorCode
					kp++
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (h *Handler) handleOffsetFetch(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.OffsetFetch(req.Msg.(*kmsg.OffsetFetchRequest)), nil
}

func (h *Handler) handleOffsetDelete(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.OffsetDelete(req.Msg.(*kmsg.OffsetDeleteRequest)), nil
}

func (h *Handler) handleDescribeGroups(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.DescribeGroups(req.Msg.(*kmsg.DescribeGroupsRequest)), nil
}

func (h *Handler) handleListGroups(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.ListGroups(req.Msg.(*kmsg.ListGroupsRequest)), nil
}

func (h *Handler) handleDeleteGroups(_ context.Context, req *server.Request) (kmsg.Response, error) {
	return h.groups.DeleteGroups(req.Msg.(*kmsg.DeleteGroupsRequest)), nil
}
