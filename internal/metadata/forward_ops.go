package metadata

// The public write methods of the Controller: each runs its local form on the raft leader and is
// sent to the leader as its Kafka request everywhere else (forward.go).

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/raftstore"
)

// CreateTopic validates and creates a topic. With ValidateOnly it returns the topic as it
// would be created (zero ID) and commits nothing.
func (c *Controller) CreateTopic(ctx context.Context, t CreateTopic) (*Topic, error) {
	var out *Topic
	err := c.route(ctx, func() error {
		var err error
		out, err = c.localCreateTopic(ctx, t)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		var err error
		out, err = c.remoteCreateTopic(ctx, send, t)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil && !t.ValidateOnly {
		// Forwarded: this node's image has the commit now.
		created, ok := c.Image().Topic(t.Name)
		if !ok {
			return nil, fmt.Errorf("create topic %s: committed by the controller but not in this node's image", t.Name)
		}
		out = created
	}
	return out, nil
}

func (c *Controller) remoteCreateTopic(ctx context.Context, send sendFunc, t CreateTopic) (*Topic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = timeoutMillis(ctx)
	req.ValidateOnly = t.ValidateOnly
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = t.Name
	rt.NumPartitions = t.Partitions
	rt.ReplicationFactor = t.ReplicationFactor
	for _, p := range slices.Sorted(maps.Keys(t.Assignments)) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, t.Assignments[p]
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		v := t.Configs[k]
		cfg.Name, cfg.Value = k, &v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := send(ctx, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) != 1 {
		return nil, fmt.Errorf("create topic %s: the controller answered %d topics: %w", t.Name, len(r.Topics), kerr.UnknownServerError)
	}
	st := r.Topics[0]
	if err := remoteErr(st.ErrorCode, st.ErrorMessage); err != nil {
		return nil, err
	}
	if !t.ValidateOnly {
		return nil, nil // read from this node's image once it has applied the commit
	}
	// The topic as the controller would create it: its shape, no id.
	topic := &Topic{Name: t.Name, Internal: t.Internal || IsInternalTopic(t.Name), Configs: maps.Clone(t.Configs)}
	if topic.Configs == nil {
		topic.Configs = map[string]string{}
	}
	for p := range st.NumPartitions {
		topic.Partitions = append(topic.Partitions, Partition{Partition: p, Leader: -1, Replicas: make([]int32, max(st.ReplicationFactor, 0))})
	}
	return topic, nil
}

// DeleteTopic deletes a topic with its partitions and configs.
func (c *Controller) DeleteTopic(ctx context.Context, name string) error {
	return c.route(ctx, func() error { return c.localDeleteTopic(ctx, name) },
		func(ctx context.Context, send sendFunc) error {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = timeoutMillis(ctx)
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = &name
			req.Topics = append(req.Topics, rt)
			req.TopicNames = append(req.TopicNames, name)
			resp, err := send(ctx, req)
			if err != nil {
				return err
			}
			r := resp.(*kmsg.DeleteTopicsResponse)
			if len(r.Topics) != 1 {
				return fmt.Errorf("delete topic %s: the controller answered %d topics: %w", name, len(r.Topics), kerr.UnknownServerError)
			}
			return remoteErr(r.Topics[0].ErrorCode, r.Topics[0].ErrorMessage)
		})
}

// CreatePartitions grows a topic to count partitions. assign, if not nil, gives the
// replicas of each new partition (len(assign) == count - current).
func (c *Controller) CreatePartitions(ctx context.Context, name string, count int32, assign [][]int32, validateOnly bool) error {
	return c.route(ctx, func() error { return c.localCreatePartitions(ctx, name, count, assign, validateOnly) },
		func(ctx context.Context, send sendFunc) error {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis = timeoutMillis(ctx)
			req.ValidateOnly = validateOnly
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = name, count
			for _, replicas := range assign {
				a := kmsg.NewCreatePartitionsRequestTopicAssignment()
				a.Replicas = replicas
				rt.Assignment = append(rt.Assignment, a)
			}
			req.Topics = append(req.Topics, rt)
			resp, err := send(ctx, req)
			if err != nil {
				return err
			}
			r := resp.(*kmsg.CreatePartitionsResponse)
			if len(r.Topics) != 1 {
				return fmt.Errorf("create partitions %s: the controller answered %d topics: %w", name, len(r.Topics), kerr.UnknownServerError)
			}
			return remoteErr(r.Topics[0].ErrorCode, r.Topics[0].ErrorMessage)
		})
}

// AlterTopicConfigs sets (non-nil) or deletes (nil) topic config overrides atomically.
func (c *Controller) AlterTopicConfigs(ctx context.Context, name string, set map[string]*string) error {
	return c.route(ctx, func() error { return c.localAlterTopicConfigs(ctx, name, set) },
		func(ctx context.Context, send sendFunc) error {
			return remoteAlterConfigs(ctx, send, kmsg.ConfigResourceTypeTopic, name, set)
		})
}

// AlterBrokerConfigs sets (non-nil) or deletes (nil) cluster-wide dynamic broker configs.
func (c *Controller) AlterBrokerConfigs(ctx context.Context, set map[string]*string) error {
	return c.route(ctx, func() error { return c.localAlterBrokerConfigs(ctx, set) },
		func(ctx context.Context, send sendFunc) error {
			return remoteAlterConfigs(ctx, send, kmsg.ConfigResourceTypeBroker, "", set)
		})
}

// AlterNodeConfigs sets (non-nil) or deletes (nil) dynamic broker configs of one node.
func (c *Controller) AlterNodeConfigs(ctx context.Context, nodeID int32, set map[string]*string) error {
	return c.route(ctx, func() error { return c.localAlterNodeConfigs(ctx, nodeID, set) },
		func(ctx context.Context, send sendFunc) error {
			return remoteAlterConfigs(ctx, send, kmsg.ConfigResourceTypeBroker, strconv.Itoa(int(nodeID)), set)
		})
}

// remoteAlterConfigs sends set as one IncrementalAlterConfigs resource: SET for a value, DELETE
// for nil.
func remoteAlterConfigs(ctx context.Context, send sendFunc, typ kmsg.ConfigResourceType, name string, set map[string]*string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	for _, k := range slices.Sorted(maps.Keys(set)) {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = k, set[k]
		cfg.Op = kmsg.IncrementalAlterConfigOpSet
		if set[k] == nil {
			cfg.Op = kmsg.IncrementalAlterConfigOpDelete
		}
		rr.Configs = append(rr.Configs, cfg)
	}
	req.Resources = append(req.Resources, rr)
	resp, err := send(ctx, req)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.IncrementalAlterConfigsResponse)
	if len(r.Resources) != 1 {
		return fmt.Errorf("alter configs %q: the controller answered %d resources: %w", name, len(r.Resources), kerr.UnknownServerError)
	}
	return remoteErr(r.Resources[0].ErrorCode, r.Resources[0].ErrorMessage)
}

// AllocateProducerIDs hands out a fresh block of ProducerIDBlockSize producer ids. A block
// is never handed out twice, also across restarts (the allocation is in the metadata log).
func (c *Controller) AllocateProducerIDs(ctx context.Context) (first int64, count int64, err error) {
	err = c.route(ctx, func() error {
		var err error
		first, count, err = c.localAllocateProducerIDs(ctx)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID = c.cfg.NodeID
		req.BrokerEpoch = -1
		resp, err := send(ctx, req)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.AllocateProducerIDsResponse)
		if err := remoteErr(r.ErrorCode, nil); err != nil {
			return err
		}
		first, count = r.ProducerIDStart, int64(r.ProducerIDLen)
		return nil
	})
	return first, count, err
}

// timeoutMillis is what is left of ctx's deadline, for a request's TimeoutMillis.
func timeoutMillis(ctx context.Context) int32 {
	d, ok := ctx.Deadline()
	if !ok {
		return 30000
	}
	return int32(max(time.Until(d).Milliseconds(), 1))
}

// RegisterBroker registers a broker incarnation and returns its broker epoch (lifecycle.go).
func (c *Controller) RegisterBroker(ctx context.Context, r BrokerRegistration) (int64, error) {
	var epoch int64
	err := c.route(ctx, func() error {
		var err error
		if epoch, err = c.localRegisterBroker(ctx, r); err != nil {
			return err
		}
		return c.addObserver(r)
	}, func(ctx context.Context, send sendFunc) error {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID, req.ClusterID, req.IncarnationID = r.NodeID, r.ClusterID, r.IncarnationID
		for _, e := range r.Endpoints {
			l := kmsg.NewBrokerRegistrationRequestListener()
			l.Name, l.Host, l.Port, l.SecurityProtocol = e.Name, e.Host, uint16(e.Port), e.SecurityProtocol
			req.Listeners = append(req.Listeners, l)
		}
		if r.Rack != "" {
			req.Rack = &r.Rack
		}
		req.PreviousBrokerEpoch = r.PreviousBrokerEpoch
		for _, d := range r.LogDirs {
			req.LogDirs = append(req.LogDirs, d)
		}
		for _, name := range slices.Sorted(maps.Keys(r.Features)) {
			f := kmsg.NewBrokerRegistrationRequestFeature()
			f.Name, f.MinSupportedVersion, f.MaxSupportedVersion = name, r.Features[name].Min, r.Features[name].Max
			req.Features = append(req.Features, f)
		}
		resp, err := send(ctx, req)
		if err != nil {
			return err
		}
		rr := resp.(*kmsg.BrokerRegistrationResponse)
		if err := remoteErr(rr.ErrorCode, nil); err != nil {
			return err
		}
		epoch = rr.BrokerEpoch
		return nil
	})
	return epoch, err
}

// addObserver adds a registered broker that is not a voter to the raft group as a non-voter at
// its endpoint of Config.RaftListenerName, so it receives the metadata log (Kafka's observers).
func (c *Controller) addObserver(r BrokerRegistration) error {
	n := c.Node()
	if n == nil || c.cfg.RaftListenerName == "" {
		return nil
	}
	if _, voter := c.cfg.Voters[r.NodeID]; voter || r.NodeID == c.cfg.NodeID {
		return nil
	}
	for _, e := range r.Endpoints {
		if e.Name == c.cfg.RaftListenerName {
			addr := net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
			if err := n.AddNonvoter(r.NodeID, addr, c.cfg.ApplyTimeout); err != nil {
				return fmt.Errorf("register broker %d: add it to the metadata quorum as an observer at %s: %w", r.NodeID, addr, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: broker %d registered no %s listener, which brokers reach each other on (inter.broker.listener.name)",
		ErrInvalidRequest, r.NodeID, c.cfg.RaftListenerName)
}

// BrokerHeartbeat is one broker heartbeat (lifecycle.go).
func (c *Controller) BrokerHeartbeat(ctx context.Context, h Heartbeat) (HeartbeatResult, error) {
	var res HeartbeatResult
	err := c.route(ctx, func() error {
		var err error
		res, err = c.localBrokerHeartbeat(ctx, h)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch = h.NodeID, h.Epoch
		req.CurrentMetadataOffset = int64(h.MetadataOffset)
		req.WantFence, req.WantShutdown = h.WantFence, h.WantShutdown
		resp, err := send(ctx, req)
		if err != nil {
			return err
		}
		hr := resp.(*kmsg.BrokerHeartbeatResponse)
		if err := remoteErr(hr.ErrorCode, nil); err != nil {
			return err
		}
		res = HeartbeatResult{IsCaughtUp: hr.IsCaughtUp, IsFenced: hr.IsFenced, ShouldShutdown: hr.ShouldShutdown}
		return nil
	})
	return res, err
}

// AlterPartition applies ISR changes proposed by the leader brokerID (partitions.go). A
// forwarded call returns each partition's state from this node's image, which has applied the
// change by then.
func (c *Controller) AlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, items []AlterPartitionItem) ([]AlterPartitionResult, error) {
	var out []AlterPartitionResult
	err := c.route(ctx, func() error {
		var err error
		out, err = c.localAlterPartition(ctx, brokerID, brokerEpoch, items)
		return err
	}, func(ctx context.Context, send sendFunc) error {
		req := kmsg.NewPtrAlterPartitionRequest()
		req.BrokerID, req.BrokerEpoch = brokerID, brokerEpoch
		for _, it := range items {
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.TopicID = it.TopicID
			rp := kmsg.NewAlterPartitionRequestTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = it.Partition, it.LeaderEpoch, it.PartitionEpoch
			rp.LeaderRecoveryState = it.LeaderRecoveryState
			for _, m := range it.NewISR {
				e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				e.BrokerID, e.BrokerEpoch = m.BrokerID, m.BrokerEpoch
				rp.NewEpochISR = append(rp.NewEpochISR, e)
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := send(ctx, req)
		if err != nil {
			return err
		}
		ar := resp.(*kmsg.AlterPartitionResponse)
		if err := remoteErr(ar.ErrorCode, nil); err != nil {
			return err
		}
		byKey := map[partKey]AlterPartitionResult{}
		for _, rt := range ar.Topics {
			for _, rp := range rt.Partitions {
				res := AlterPartitionResult{Err: remoteErr(rp.ErrorCode, nil)}
				res.Partition = Partition{Partition: rp.Partition, Leader: rp.LeaderID, LeaderEpoch: rp.LeaderEpoch,
					PartitionEpoch: rp.PartitionEpoch, ISR: rp.ISR, LeaderRecoveryState: rp.LeaderRecoveryState}
				byKey[partKey{topic: rt.TopidID, part: rp.Partition}] = res
			}
		}
		out = make([]AlterPartitionResult, len(items))
		for i, it := range items {
			res, ok := byKey[partKey{topic: it.TopicID, part: it.Partition}]
			if !ok {
				res.Err = fmt.Errorf("alter partition: the controller did not answer for partition %d: %w", it.Partition, kerr.UnknownServerError)
			}
			out[i] = res
		}
		return nil
	})
	if err == nil {
		// After a forward the image here has the change: answer with the full partition.
		im := c.Image()
		for i, it := range items {
			if out[i].Err != nil {
				continue
			}
			if t, ok := im.TopicByID(it.TopicID); ok && int(it.Partition) < len(t.Partitions) {
				out[i].Partition = t.Partitions[it.Partition]
			}
		}
	}
	return out, err
}

// DescribeQuorum reports the metadata quorum as its leader sees it (this node's view when it is
// the leader, the leader's answer to DescribeQuorum otherwise), as Kafka brokers forward
// DescribeQuorum to the active controller.
func (c *Controller) DescribeQuorum(ctx context.Context) (QuorumState, error) {
	var st QuorumState
	err := c.route(ctx, func() error {
		var err error
		st, err = c.Quorum()
		if err == nil && st.LeaderID != c.cfg.NodeID {
			return fmt.Errorf("%w: node %d does not lead the metadata quorum", ErrNotController, c.cfg.NodeID)
		}
		return err
	}, func(ctx context.Context, send sendFunc) error {
		req := kmsg.NewPtrDescribeQuorumRequest()
		t := kmsg.NewDescribeQuorumRequestTopic()
		t.Topic = ClusterMetadataTopic
		t.Partitions = append(t.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, t)
		resp, err := send(ctx, req)
		if err != nil {
			return err
		}
		r := resp.(*kmsg.DescribeQuorumResponse)
		if err := remoteErr(r.ErrorCode, r.ErrorMessage); err != nil {
			return err
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			return fmt.Errorf("describe quorum: the controller answered no partition: %w", kerr.UnknownServerError)
		}
		p := r.Topics[0].Partitions[0]
		if p.ErrorCode == kerr.NotLeaderForPartition.Code {
			return fmt.Errorf("%w: the controller asked no longer leads", ErrNotController)
		}
		if err := remoteErr(p.ErrorCode, p.ErrorMessage); err != nil {
			return err
		}
		st = QuorumState{LeaderID: p.LeaderID, Term: uint64(p.LeaderEpoch), CommitIndex: uint64(p.HighWatermark),
			Progress: map[int32]raftstore.ReplicaProgress{}}
		progress := func(r kmsg.DescribeQuorumResponseTopicPartitionReplicaState) {
			if r.LogEndOffset < 0 {
				return
			}
			st.Progress[r.ReplicaID] = raftstore.ReplicaProgress{LogEndOffset: r.LogEndOffset,
				LastFetch: time.UnixMilli(r.LastFetchTimestamp), CaughtUp: r.LastCaughtUpTimestamp >= 0 && r.LastCaughtUpTimestamp == r.LastFetchTimestamp}
		}
		for _, v := range p.CurrentVoters {
			st.Voters = append(st.Voters, v.ReplicaID)
			if v.ReplicaID == p.LeaderID {
				st.LastIndex = uint64(v.LogEndOffset)
			}
			progress(v)
		}
		for _, o := range p.Observers {
			st.NonVoters = append(st.NonVoters, o.ReplicaID)
			progress(o)
		}
		return nil
	})
	return st, err
}
