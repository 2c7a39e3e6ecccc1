package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/rebalance"
)

// tp is a topic partition, as the move commands print it ("orders-0").
type tp = rebalance.TopicPartition

// moveAdmin is what the partition-moving commands (kafka-reassign-partitions, moldau partition
// move, broker decommission, cluster rebalance) need from a cluster. kadmMoveAdmin implements it
// on franz-go; the tests script a fake.
type moveAdmin interface {
	// Describe returns the brokers (sorted by id) and every partition (sorted), or only those
	// of topics when topics is not empty (an unknown topic is an error).
	Describe(ctx context.Context, topics []string) (clusterView, error)
	// LogDirSizes returns, for each broker asked, the size of each partition replica it holds
	// (only the partitions in tps; all when tps is nil). A broker that cannot answer is left
	// out. Future replicas (AlterReplicaLogDirs in progress) are reported in futures.
	LogDirSizes(ctx context.Context, brokers []int32, tps []tp) (map[int32]map[tp]replicaDir, error)
	// ListReassignments returns the reassignments in progress among tps (all when tps is nil).
	ListReassignments(ctx context.Context, tps []tp) (map[tp]reassignment, error)
	// AlterReassignments starts (replicas) or cancels (nil) reassignments; one error per
	// partition that failed.
	AlterReassignments(ctx context.Context, targets map[tp][]int32) (map[tp]error, error)
	// AlterConfigs applies incremental config changes (SET, or DELETE for a nil value).
	AlterConfigs(ctx context.Context, changes []configChange) error
	// ElectPreferred runs a preferred leader election for tps; one error per partition.
	ElectPreferred(ctx context.Context, tps []tp) (map[tp]error, error)
	// AlterReplicaLogDirs moves replicas between the log dirs of their broker; the result
	// holds the replicas whose move could not start yet (REPLICA_NOT_AVAILABLE), to retry.
	AlterReplicaLogDirs(ctx context.Context, moves map[replicaKey]string) (notYet []replicaKey, err error)
	Close()
}

// clusterView is what Describe returns.
type clusterView struct {
	Brokers    []rebalance.Broker
	Partitions []partitionView
}

type partitionView struct {
	tp
	Replicas []int32
	ISR      []int32
	Leader   int32
}

// partition returns the partition's view, if the view has it.
func (v clusterView) partition(p tp) (partitionView, bool) {
	i, ok := slices.BinarySearchFunc(v.Partitions, p, func(a partitionView, b tp) int { return a.Compare(b) })
	if !ok {
		return partitionView{}, false
	}
	return v.Partitions[i], true
}

func (v clusterView) brokerIDs() []int32 {
	out := make([]int32, len(v.Brokers))
	for i, b := range v.Brokers {
		out[i] = b.ID
	}
	return out
}

type reassignment struct {
	Replicas, Adding, Removing []int32
}

// replicaDir is one replica's size and dir on a broker; Future is set while AlterReplicaLogDirs
// moves it to another dir.
type replicaDir struct {
	Size      int64
	Dir       string
	FutureDir string
}

// replicaKey is a replica: a partition on a broker (Kafka's TopicPartitionReplica).
type replicaKey struct {
	tp
	Broker int32
}

func (r replicaKey) String() string { return fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Broker) }

func compareReplicaKeys(a, b replicaKey) int {
	if a.Broker != b.Broker {
		return int(a.Broker - b.Broker)
	}
	return a.Compare(b.tp)
}

type configChange struct {
	Broker bool   // a broker resource, else a topic
	Name   string // broker id or topic name
	Key    string
	Value  *string // nil: delete
}

// kadmMoveAdmin is moveAdmin over franz-go.
type kadmMoveAdmin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func openKadmMoveAdmin(seeds []string) (moveAdmin, error) {
	cl, err := newClient(seeds, kgo.ClientID("reassign-partitions-tool"))
	if err != nil {
		return nil, err
	}
	return &kadmMoveAdmin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (a *kadmMoveAdmin) Close() { a.cl.Close() }

func (a *kadmMoveAdmin) Describe(ctx context.Context, topics []string) (clusterView, error) {
	// A Metadata request of its own: kadm's Metadata may answer from the client's metadata
	// cache, up to MetadataMinAge old, and a move's progress must see the replicas change.
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	md, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return clusterView{}, fmt.Errorf("metadata: %w", err)
	}
	var v clusterView
	for _, b := range md.Brokers {
		rb := rebalance.Broker{ID: b.NodeID}
		if b.Rack != nil {
			rb.Rack = *b.Rack
		}
		v.Brokers = append(v.Brokers, rb)
	}
	slices.SortFunc(v.Brokers, func(a, b rebalance.Broker) int { return int(a.ID - b.ID) })
	for _, t := range md.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return clusterView{}, fmt.Errorf("Topic %s not found.", name)
			}
			return clusterView{}, fmt.Errorf("topic %s: %w", name, err)
		}
		for _, p := range t.Partitions {
			v.Partitions = append(v.Partitions, partitionView{
				tp:       tp{Topic: name, Partition: p.Partition},
				Replicas: slices.Clone(p.Replicas),
				ISR:      slices.Clone(p.ISR),
				Leader:   p.Leader,
			})
		}
	}
	slices.SortFunc(v.Partitions, func(a, b partitionView) int { return a.Compare(b.tp) })
	return v, nil
}

func topicsSet(tps []tp) kadm.TopicsSet {
	if tps == nil {
		return nil
	}
	s := make(kadm.TopicsSet)
	for _, p := range tps {
		s.Add(p.Topic, p.Partition)
	}
	return s
}

func (a *kadmMoveAdmin) LogDirSizes(ctx context.Context, brokers []int32, tps []tp) (map[int32]map[tp]replicaDir, error) {
	out := make(map[int32]map[tp]replicaDir)
	if tps != nil && len(tps) == 0 {
		return out, nil
	}
	set := topicsSet(tps)
	for _, b := range brokers {
		// A broker that is down must not hold up the others (nor a progress poll) for long.
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		dirs, err := a.adm.DescribeBrokerLogDirs(bctx, b, set)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // a broker that is down: its sizes are unknown
		}
		m := make(map[tp]replicaDir)
		for _, d := range dirs {
			if d.Err != nil {
				continue
			}
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				k := tp{Topic: p.Topic, Partition: p.Partition}
				r := m[k]
				if p.IsFuture {
					r.FutureDir = p.Dir
				} else {
					r.Size, r.Dir = p.Size, p.Dir
				}
				m[k] = r
			})
		}
		out[b] = m
	}
	return out, nil
}

func (a *kadmMoveAdmin) ListReassignments(ctx context.Context, tps []tp) (map[tp]reassignment, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 30000
	if tps != nil {
		byTopic := map[string][]int32{}
		var order []string
		for _, p := range tps {
			if _, ok := byTopic[p.Topic]; !ok {
				order = append(order, p.Topic)
			}
			byTopic[p.Topic] = append(byTopic[p.Topic], p.Partition)
		}
		req.Topics = []kmsg.ListPartitionReassignmentsRequestTopic{}
		for _, t := range order {
			rt := kmsg.NewListPartitionReassignmentsRequestTopic()
			rt.Topic, rt.Partitions = t, byTopic[t]
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return nil, fmt.Errorf("list partition reassignments: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, apiError(err, resp.ErrorMessage)
	}
	out := make(map[tp]reassignment)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out[tp{Topic: t.Topic, Partition: p.Partition}] = reassignment{Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas}
		}
	}
	return out, nil
}

// apiError is a Kafka error with the broker's message when it sent one (the Java client's
// ApiException message).
func apiError(err error, msg *string) error {
	if msg != nil && *msg != "" {
		return &messageError{err: err, msg: *msg}
	}
	return err
}

type messageError struct {
	err error
	msg string
}

func (m *messageError) Error() string { return m.msg }
func (m *messageError) Unwrap() error { return m.err }

// kafkaMessage is the text Kafka's tools print for an error: the broker's message, else the
// error's description.
func kafkaMessage(err error) string {
	var me *messageError
	if errors.As(err, &me) {
		return me.msg
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Description
	}
	return err.Error()
}

func (a *kadmMoveAdmin) AlterReassignments(ctx context.Context, targets map[tp][]int32) (map[tp]error, error) {
	var req kadm.AlterPartitionAssignmentsReq
	for p, rs := range targets {
		req.Assign(p.Topic, p.Partition, rs)
	}
	resps, err := a.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("alter partition reassignments: %w", err)
	}
	out := make(map[tp]error)
	resps.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if r.Err != nil {
			out[tp{Topic: r.Topic, Partition: r.Partition}] = apiError(r.Err, &r.ErrMessage)
		}
	})
	return out, nil
}

func (a *kadmMoveAdmin) AlterConfigs(ctx context.Context, changes []configChange) error {
	type res struct {
		broker bool
		name   string
	}
	byRes := map[res][]kadm.AlterConfig{}
	var order []res
	for _, c := range changes {
		r := res{c.Broker, c.Name}
		if _, ok := byRes[r]; !ok {
			order = append(order, r)
		}
		op := kadm.SetConfig
		if c.Value == nil {
			op = kadm.DeleteConfig
		}
		byRes[r] = append(byRes[r], kadm.AlterConfig{Op: op, Name: c.Key, Value: c.Value})
	}
	var errs []string
	for _, r := range order {
		var resps kadm.AlterConfigsResponses
		var err error
		if r.broker {
			var id int64
			if _, err = fmt.Sscan(r.name, &id); err != nil {
				return fmt.Errorf("broker id %q: %w", r.name, err)
			}
			resps, err = a.adm.AlterBrokerConfigs(ctx, byRes[r], int32(id))
		} else {
			resps, err = a.adm.AlterTopicConfigs(ctx, byRes[r], r.name)
		}
		if err != nil {
			return fmt.Errorf("alter configs of %s: %w", r.name, err)
		}
		for _, rr := range resps {
			if rr.Err != nil {
				errs = append(errs, fmt.Sprintf("%s: %s", rr.Name, kafkaMessage(apiError(rr.Err, &rr.ErrMessage))))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

func (a *kadmMoveAdmin) ElectPreferred(ctx context.Context, tps []tp) (map[tp]error, error) {
	if len(tps) == 0 {
		return map[tp]error{}, nil
	}
	rs, err := a.adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, topicsSet(tps))
	if err != nil {
		return nil, fmt.Errorf("elect leaders: %w", err)
	}
	out := make(map[tp]error)
	for _, ps := range rs {
		for _, r := range ps {
			if r.Err != nil {
				out[tp{Topic: r.Topic, Partition: r.Partition}] = apiError(r.Err, &r.ErrMessage)
			}
		}
	}
	return out, nil
}

func (a *kadmMoveAdmin) AlterReplicaLogDirs(ctx context.Context, moves map[replicaKey]string) ([]replicaKey, error) {
	byBroker := map[int32]kadm.AlterReplicaLogDirsReq{}
	for r, dir := range moves {
		req := byBroker[r.Broker]
		req.Add(dir, kadm.TopicsSet{r.Topic: {r.Partition: struct{}{}}})
		byBroker[r.Broker] = req
	}
	var notYet []replicaKey
	for b, req := range byBroker {
		resps, err := a.adm.AlterBrokerReplicaLogDirs(ctx, b, req)
		if err != nil {
			return nil, fmt.Errorf("alter replica log dirs on broker %d: %w", b, err)
		}
		var failed error
		resps.Each(func(r kadm.AlterReplicaLogDirsResponse) {
			k := replicaKey{tp: tp{Topic: r.Topic, Partition: r.Partition}, Broker: b}
			switch {
			case r.Err == nil:
			case errors.Is(r.Err, kerr.ReplicaNotAvailable):
				notYet = append(notYet, k)
			default:
				failed = fmt.Errorf("Failed to alter dir for %s: %s", k, kafkaMessage(r.Err))
			}
		})
		if failed != nil {
			return nil, failed
		}
	}
	slices.SortFunc(notYet, compareReplicaKeys)
	return notYet, nil
}
