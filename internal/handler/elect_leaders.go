package handler

// ElectLeaders: v0-2.
//
// Moldau does not move leadership: every partition is led by its preferred (first) replica while
// that broker is up, so a preferred election is ELECTION_NOT_NEEDED where it leads, and
// PREFERRED_LEADER_NOT_AVAILABLE where it does not; an unclean election is ELECTION_NOT_NEEDED
// where a leader exists and ELIGIBLE_LEADERS_NOT_AVAILABLE otherwise. Unknown topics and
// partitions are UNKNOWN_TOPIC_OR_PARTITION. As in Kafka's controller, a request for all
// partitions (null topics) leaves out the partitions where no election was needed.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.ElectLeaders, 0, 2, (*Handler).handleElectLeaders) }

func (h *Handler) handleElectLeaders(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	im := h.meta.Image()
	electionType := r.ElectionType
	if r.Version == 0 {
		electionType = 0 // preferred
	}
	elect := func(t *metadata.Topic, name string, partition int32) error {
		switch {
		case electionType != 0 && electionType != 1:
			return fmt.Errorf("unknown election type %d: %w", electionType, kerr.InvalidRequest)
		case t == nil:
			return fmt.Errorf("topic %s does not exist: %w", name, kerr.UnknownTopicOrPartition)
		case partition < 0 || int(partition) >= len(t.Partitions):
			return fmt.Errorf("partition %s-%d does not exist: %w", name, partition, kerr.UnknownTopicOrPartition)
		}
		p := t.Partitions[partition]
		leads := p.Leader >= 0
		if electionType == 0 {
			if leads && len(p.Replicas) > 0 && p.Leader == p.Replicas[0] {
				return kerr.ElectionNotNeeded
			}
			return fmt.Errorf("the preferred replica of %s-%d cannot lead: %w", name, partition, kerr.PreferredLeaderNotAvailable)
		}
		if leads {
			return kerr.ElectionNotNeeded
		}
		return fmt.Errorf("no eligible replica of %s-%d: %w", name, partition, kerr.EligibleLeadersNotAvailable)
	}
	result := func(partition int32, err error) kmsg.ElectLeadersResponseTopicPartition {
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition = partition
		rp.ErrorCode = errorCode(err)
		if err != nil && err != kerr.ElectionNotNeeded {
			rp.ErrorMessage = errorMessage(err)
		}
		return rp
	}
	if r.Topics == nil {
		for _, t := range im.Topics() {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Name
			for i := range t.Partitions {
				if err := elect(t, t.Name, int32(i)); err != kerr.ElectionNotNeeded {
					rt.Partitions = append(rt.Partitions, result(int32(i), err))
				}
			}
			if len(rt.Partitions) > 0 {
				resp.Topics = append(resp.Topics, rt)
			}
		}
		return resp, nil
	}
	for _, rt := range r.Topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		t, _ := im.Topic(rt.Topic)
		for _, p := range rt.Partitions {
			st.Partitions = append(st.Partitions, result(p, elect(t, rt.Topic, p)))
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
