package metadata

// Leader elections asked for by an operator (ElectLeaders, Kafka's
// ReplicationControlManager.electLeaders / electLeader):
//
//   - PREFERRED (0): the first replica of the assignment takes over when it is a valid leader (in
//     the ISR, or in the ELR while the ISR is empty, and active: unfenced, not shutting down).
//     ELECTION_NOT_NEEDED when it leads already; PREFERRED_LEADER_NOT_AVAILABLE when the change
//     builder changes nothing (the preferred replica cannot lead, and the current leader stays).
//     As in Kafka, a partition without a leader whose preferred replica cannot lead gets another
//     valid replica, and that counts as success.
//   - UNCLEAN (1): only for a partition without a leader (ELECTION_NOT_NEEDED otherwise): a valid
//     replica from the ISR (or ELR) first, else any active replica, which then leads an ISR of
//     itself alone with LeaderRecoveryState RECOVERING; ELIGIBLE_LEADERS_NOT_AVAILABLE when no
//     replica is active. The operator's request overrides unclean.leader.election.enable.
//
// A request for every partition (nil) leaves out those where no election was needed, as Kafka's
// controller does. Every election of one request commits as one batch.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Election types of ElectLeaders (Kafka's ElectionType).
const (
	ElectPreferred int8 = 0
	ElectUnclean   int8 = 1
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// electionError is one partition's answer to ElectLeaders: Kafka's code with Kafka's message
// ("" where Kafka sends none).
type electionError struct {
	code *kerr.Error
	msg  string
}

func (e *electionError) Error() string {
	if e.msg == "" {
		return e.code.Error()
	}
	return e.msg
}

func (e *electionError) Unwrap() error { return e.code }

// ElectLeaders runs an election of electionType (ElectPreferred, ElectUnclean) for parts, or
// for every partition when parts is nil. The map has one entry per distinct requested partition
// (nil: a new leader was elected; otherwise an error wrapping its kerr code, ELECTION_NOT_NEEDED
// included); for nil parts only the partitions where an election was needed. The error is for
// the whole request (an unknown election type wraps ErrInvalidRequest). A forwarded call returns
// once this node's image has the new leaders.
func (c *Controller) ElectLeaders(ctx context.Context, electionType int8, parts []TopicPartition) (map[TopicPartition]error, error) {
	var out map[TopicPartition]error
	err := c.route(ctx, func() error {
		var err error
		out, err = c.localElectLeaders(ctx, electionType, parts)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		var err error
		out, err = remoteElectLeaders(ctx, send, electionType, parts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Controller) localElectLeaders(ctx context.Context, electionType int8, parts []TopicPartition) (map[TopicPartition]error, error) {
	if electionType != ElectPreferred && electionType != ElectUnclean {
		return nil, fmt.Errorf("%w: Unknown election type %d", ErrInvalidRequest, electionType)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.IsController() {
		return nil, fmt.Errorf("elect leaders: %w", ErrNotController)
	}
	im := c.Image()
	out := map[TopicPartition]error{}
	var records []Record
	elect := func(tp TopicPartition) error {
		t, ok := im.Topic(tp.Topic)
		if !ok {
			return &electionError{kerr.UnknownTopicOrPartition, "No such topic as " + tp.Topic}
		}
		if tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			return &electionError{kerr.UnknownTopicOrPartition, fmt.Sprintf("No such partition as %s-%d", tp.Topic, tp.Partition)}
		}
		rec, err := c.electLeader(im, t, t.Partitions[tp.Partition], electionType)
		if rec != nil {
			records = append(records, rec)
		}
		return err
	}
	if parts == nil {
		for _, t := range im.sorted {
			for i := range t.Partitions {
				tp := TopicPartition{Topic: t.Name, Partition: int32(i)}
				if err := elect(tp); !errors.Is(err, kerr.ElectionNotNeeded) {
					out[tp] = err
				}
			}
		}
	} else {
		for _, tp := range parts {
			if _, dup := out[tp]; !dup {
				out[tp] = elect(tp)
			}
		}
	}
	if len(records) > 0 {
		if err := c.commitLocked(ctx, records...); err != nil {
			return nil, fmt.Errorf("elect leaders: %w", err)
		}
	}
	return out, nil
}

// electLeader is Kafka's electLeader for one existing partition: the change record of the
// election, or the partition's error.
func (c *Controller) electLeader(im *Image, t *Topic, p Partition, electionType int8) (Record, error) {
	if electionType == ElectPreferred && hasPreferredLeader(p) || electionType == ElectUnclean && p.Leader != -1 {
		return nil, &electionError{code: kerr.ElectionNotNeeded}
	}
	cb := changeBuilder{
		part:       p,
		targetISR:  p.ISR,
		recovery:   p.LeaderRecoveryState,
		minISR:     c.minISR(im, t),
		unclean:    electionType == ElectUnclean,
		preferred:  electionType == ElectPreferred,
		acceptable: activeBroker(im),
	}
	next, changed := cb.build()
	switch {
	case changed:
		return cb.record(UUID(t.ID), next), nil
	case electionType == ElectPreferred:
		return nil, &electionError{code: kerr.PreferredLeaderNotAvailable}
	default:
		return nil, &electionError{code: kerr.EligibleLeadersNotAvailable}
	}
}

// hasPreferredLeader is Kafka's PartitionRegistration.hasPreferredLeader: the first replica leads.
func hasPreferredLeader(p Partition) bool {
	return len(p.Replicas) > 0 && p.Leader == p.Replicas[0]
}

// remoteElectLeaders sends the election to the raft leader as an ElectLeadersRequest (null topics
// for every partition).
func remoteElectLeaders(ctx context.Context, send sendFunc, electionType int8, parts []TopicPartition) (map[TopicPartition]error, error) {
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = electionType
	req.TimeoutMillis = timeoutMillis(ctx)
	if parts != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
		index := map[string]int{}
		for _, tp := range parts {
			i, ok := index[tp.Topic]
			if !ok {
				i = len(req.Topics)
				index[tp.Topic] = i
				rt := kmsg.NewElectLeadersRequestTopic()
				rt.Topic = tp.Topic
				req.Topics = append(req.Topics, rt)
			}
			if !slices.Contains(req.Topics[i].Partitions, tp.Partition) {
				req.Topics[i].Partitions = append(req.Topics[i].Partitions, tp.Partition)
			}
		}
	}
	resp, err := send(ctx, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.ElectLeadersResponse)
	if err := remoteErr(r.ErrorCode, nil); err != nil {
		return nil, err
	}
	out := map[TopicPartition]error{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			tp := TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if rp.ErrorCode == kerr.NotController.Code {
				// The node asked lost its leadership while answering: the whole request moves.
				return nil, fmt.Errorf("%w: elect leaders %s", ErrNotController, tp)
			}
			out[tp] = remoteErr(rp.ErrorCode, rp.ErrorMessage)
		}
	}
	for _, tp := range parts {
		if _, ok := out[tp]; !ok {
			out[tp] = fmt.Errorf("elect leaders: the controller did not answer for %s: %w", tp, kerr.UnknownServerError)
		}
	}
	return out, nil
}
