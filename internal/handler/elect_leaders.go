package handler

// ElectLeaders: v0-2.
//
// Runs preferred (0) or unclean (1) leader elections through the metadata controller, which
// forwards them to the raft leader (metadata/elect.go has the rules). v0 has no election type:
// it is a preferred election. Null topics elect for every partition and the answer leaves out
// the partitions where no election was needed; named partitions are each answered, unknown ones
// with UNKNOWN_TOPIC_OR_PARTITION. As Kafka's controller, the election outcomes
// (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE) carry
// no message. An error of the whole request (an unknown election type: INVALID_REQUEST; no
// controller reachable) is the top-level code (v1+) and every named partition's code, as Kafka's
// ElectLeadersRequest.getErrorResponse.

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.ElectLeaders, 0, 2, (*Handler).handleElectLeaders) }

func (h *Handler) handleElectLeaders(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	electionType := r.ElectionType
	if r.Version == 0 {
		electionType = metadata.ElectPreferred
	}
	if r.TimeoutMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	var parts []metadata.TopicPartition
	if r.Topics != nil {
		parts = []metadata.TopicPartition{}
		for _, rt := range r.Topics {
			for _, p := range rt.Partitions {
				parts = append(parts, metadata.TopicPartition{Topic: rt.Topic, Partition: p})
			}
		}
	}
	results, err := h.meta.ElectLeaders(ctx, electionType, parts)
	if err != nil {
		resp.ErrorCode = errorCode(err)
	}
	result := func(partition int32, err error) kmsg.ElectLeadersResponseTopicPartition {
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = partition
		rp.ErrorCode = errorCode(err)
		switch rp.ErrorCode {
		case kerr.ElectionNotNeeded.Code, kerr.PreferredLeaderNotAvailable.Code, kerr.EligibleLeadersNotAvailable.Code:
		default:
			rp.ErrorMessage = errorMessage(err)
		}
		return rp
	}
	if r.Topics != nil {
		for _, rt := range r.Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				perr := err
				if perr == nil {
					perr = results[metadata.TopicPartition{Topic: rt.Topic, Partition: p}]
				}
				st.Partitions = append(st.Partitions, result(p, perr))
			}
			resp.Topics = append(resp.Topics, st)
		}
	} else if err == nil {
		keys := make([]metadata.TopicPartition, 0, len(results))
		for tp := range results {
			keys = append(keys, tp)
		}
		slices.SortFunc(keys, func(a, b metadata.TopicPartition) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		for _, tp := range keys {
			if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != tp.Topic {
				st := kmsg.NewElectLeadersResponseTopic()
				st.Topic = tp.Topic
				resp.Topics = append(resp.Topics, st)
			}
			st := &resp.Topics[len(resp.Topics)-1]
			st.Partitions = append(st.Partitions, result(tp.Partition, results[tp]))
		}
	}
	if elected(results) {
		// Apply the new roles here before answering, so a client that reads metadata next finds
		// this node serving as it says.
		if err := h.cluster.Sync(); err != nil {
			h.log.Warn("apply elected leaders", "err", err)
		}
	}
	return resp, nil
}

// elected reports whether any election succeeded.
func elected(results map[metadata.TopicPartition]error) bool {
	for _, err := range results {
		if err == nil {
			return true
		}
	}
	return false
}
