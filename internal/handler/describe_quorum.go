package handler

// DescribeQuorum: v0-2. The metadata quorum as the raft leader sees it: leader, leader epoch (the
// raft term), high watermark (the commit index) and the voters and observers (raft non-voters).
// On the CONTROLLER listener only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere), as in
// Kafka; on a client listener the broker asks the leader (kafka-metadata-quorum
// --bootstrap-server). The only partition is __cluster_metadata-0. hashicorp/raft does not expose
// the followers' replication progress: each replica's is the metadata offset its broker last
// reported in a heartbeat (so a voter that is not a broker, or not heard yet, reports -1).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DescribeQuorum, 0, 2, (*Handler).handleDescribeQuorum) }

func (h *Handler) handleDescribeQuorum(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	var st metadata.QuorumState
	var err error
	if metadata.IsForwarded(ctx) {
		st, err = h.meta.Quorum() // on the CONTROLLER listener: this node's own view
	} else {
		st, err = h.meta.DescribeQuorum(ctx) // a broker asks the active controller, as Kafka's do
	}
	for _, rt := range r.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case rt.Topic != metadata.ClusterMetadataTopic || rp.Partition != 0:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case err != nil:
				p.ErrorCode = errorCode(err)
			case metadata.IsForwarded(ctx) && st.LeaderID != h.opts.NodeID:
				p.ErrorCode = kerr.NotLeaderForPartition.Code
				p.LeaderID = st.LeaderID
			default:
				p.LeaderID = st.LeaderID
				p.LeaderEpoch = int32(st.Term)
				p.HighWatermark = int64(st.CommitIndex)
				for _, id := range st.Voters {
					p.CurrentVoters = append(p.CurrentVoters, quorumReplica(id, st))
				}
				for _, id := range st.NonVoters {
					p.Observers = append(p.Observers, quorumReplica(id, st))
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// quorumReplica is one voter or observer: its metadata offset and when the leader last heard
// from it (its broker's heartbeat), -1 when unknown.
func quorumReplica(id int32, st metadata.QuorumState) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
	rs.ReplicaID = id
	rs.LogEndOffset = -1
	if p, ok := st.Progress[id]; ok {
		rs.LogEndOffset = p.LogEndOffset
		rs.LastFetchTimestamp = p.LastFetch.UnixMilli()
		if p.CaughtUp {
			rs.LastCaughtUpTimestamp = p.LastFetch.UnixMilli()
		}
	} else if id == st.LeaderID {
		rs.LogEndOffset = int64(st.LastIndex)
	}
	return rs
}
