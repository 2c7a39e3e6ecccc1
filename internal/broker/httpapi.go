package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/httpapi"
	"github.com/moldau/moldau/internal/metadata"
)

// apiBackend is the broker side of the admin HTTP API (httpapi.Backend). Reads come from the
// metadata image and the partitions this node leads; what lives on other nodes (their offsets,
// sizes and records, groups they coordinate) is asked with a Kafka client, and every write goes
// through that client to this broker's own client listener, so it is validated, forwarded to the
// controller and replicated exactly as a Kafka client's request would be.
type apiBackend struct {
	b *Broker

	once sync.Once
	cl   *kgo.Client
	adm  *kadm.Client
	err  error

	// sizes caches the other nodes' log dir sizes (DescribeLogDirs) for the cluster overview.
	sizesMu sync.Mutex
	sizes   map[int32]int64
	sizesAt time.Time
}

// apiBackend returns the Backend of httpapi.NewAPI for this broker.
func (b *Broker) apiBackend() httpapi.Backend { return &apiBackend{b: b} }

// apiWait bounds how long a write waits for its effect to reach this node's metadata image.
const apiWait = 10 * time.Second

// client is the API's Kafka client of this broker's first client listener, made on first use and
// closed at shutdown.
func (a *apiBackend) client() (*kgo.Client, *kadm.Client, error) {
	a.once.Do(func() {
		addr := a.b.Addr().(*net.TCPAddr)
		host := addr.IP
		if host.IsUnspecified() {
			host = net.IPv4(127, 0, 0, 1)
		}
		a.cl, a.err = kgo.NewClient(
			kgo.SeedBrokers(net.JoinHostPort(host.String(), strconv.Itoa(addr.Port))),
			kgo.ClientID("moldau-admin-api"),
			kgo.RecordPartitioner(apiPartitioner{}),
			kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
		)
		if a.err != nil {
			return
		}
		a.adm = kadm.NewClient(a.cl)
		cl := a.cl
		go func() {
			<-a.b.stop
			cl.Close()
		}()
	})
	return a.cl, a.adm, a.err
}

func (a *apiBackend) admin() (*kadm.Client, error) {
	_, adm, err := a.client()
	return adm, err
}

// topicOpTimeout is the timeout CreateTopics and DeleteTopics carry from the API: a topic of
// 10 000 partitions on one node takes over 20 s to create, longer than kadm's default 15 s plus
// kgo's 10 s read overhead, after which the client retried and answered TOPIC_ALREADY_EXISTS
// for a topic it had just created.
const topicOpTimeout = 2 * time.Minute

// topicAdmin is an admin client whose topic creates and deletes wait up to topicOpTimeout.
func (a *apiBackend) topicAdmin() (*kadm.Client, error) {
	cl, _, err := a.client()
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(topicOpTimeout.Milliseconds()))
	return adm, nil
}

// Cluster implements httpapi.Backend.
func (a *apiBackend) Cluster(ctx context.Context) (httpapi.Cluster, error) {
	im := a.b.meta.Image()
	ctrl := a.b.meta.ControllerID()
	c := httpapi.Cluster{ClusterID: im.ClusterID(), NodeID: a.b.cfg.NodeID, ControllerID: ctrl}
	sizes := a.logDirBytes(ctx, im)
	for _, br := range im.Brokers() {
		n := httpapi.Node{ID: br.NodeID, Host: br.Host, Port: br.Port, Rack: br.Rack, Fenced: br.Fenced, Controller: br.NodeID == ctrl, LogDirBytes: -1}
		if s, ok := sizes[br.NodeID]; ok {
			n.LogDirBytes = s
		}
		c.Nodes = append(c.Nodes, n)
	}
	if c.Nodes == nil {
		c.Nodes = []httpapi.Node{}
	}
	for _, t := range im.Topics() {
		c.Health.Topics++
		minISR := 1
		if s, err := a.b.PartitionSettings(t.Name); err == nil {
			minISR = s.MinInsyncReplicas
		}
		for _, p := range t.Partitions {
			c.Health.Partitions++
			if p.Leader < 0 {
				c.Health.Offline++
			}
			if len(p.ISR) < len(p.Replicas)-len(p.RemovingReplicas) {
				c.Health.UnderReplicated++
			}
			if len(p.ISR) < minISR {
				c.Health.UnderMinISR++
			}
		}
	}
	return c, nil
}

// logDirBytes is the partition log bytes per node: this node's from its partitions, the others'
// from DescribeLogDirs, cached for five seconds (the console polls every two).
func (a *apiBackend) logDirBytes(ctx context.Context, im *metadata.Image) map[int32]int64 {
	out := map[int32]int64{}
	var local int64
	for _, p := range a.b.parts.All() {
		local += p.Size()
	}
	out[a.b.cfg.NodeID] = local
	if len(im.Brokers()) <= 1 {
		return out
	}
	a.sizesMu.Lock()
	defer a.sizesMu.Unlock()
	if a.sizes == nil || time.Since(a.sizesAt) > 5*time.Second {
		sizes := map[int32]int64{}
		if adm, err := a.admin(); err == nil {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			all, err := adm.DescribeAllLogDirs(ctx, nil)
			cancel()
			if err == nil {
				for node, dirs := range all {
					var n int64
					ok := false
					for _, d := range dirs {
						if d.Err != nil {
							continue
						}
						ok = true
						n += d.Size()
					}
					if ok {
						sizes[node] = n
					}
				}
			}
		}
		a.sizes, a.sizesAt = sizes, time.Now()
	}
	for node, n := range a.sizes {
		if node != a.b.cfg.NodeID {
			out[node] = n
		}
	}
	return out
}

// Throughput implements httpapi.Backend.
func (a *apiBackend) Throughput() []httpapi.ThroughputSample { return a.throughput() }

// topicID is how Kafka prints a topic id (Uuid.toString: URL-safe base64 without padding).
func topicID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func summary(t *metadata.Topic) httpapi.TopicSummary {
	s := httpapi.TopicSummary{Name: t.Name, ID: topicID(t.ID), Partitions: len(t.Partitions), Internal: t.Internal}
	for i, p := range t.Partitions {
		if i == 0 {
			s.ReplicationFactor = len(p.Replicas) - len(p.RemovingReplicas)
		}
		if p.Leader < 0 {
			s.Offline++
		}
		if len(p.ISR) < len(p.Replicas)-len(p.RemovingReplicas) {
			s.UnderReplicated++
		}
	}
	return s
}

// Topics implements httpapi.Backend.
func (a *apiBackend) Topics() []httpapi.TopicSummary {
	ts := a.b.meta.Image().Topics()
	out := make([]httpapi.TopicSummary, len(ts))
	for i, t := range ts {
		out[i] = summary(t)
	}
	return out
}

func unknownTopic(name string) error {
	return fmt.Errorf("topic %s does not exist: %w", name, kerr.UnknownTopicOrPartition)
}

// Topic implements httpapi.Backend.
func (a *apiBackend) Topic(ctx context.Context, name string) (httpapi.TopicDetail, error) {
	t, ok := a.b.meta.Image().Topic(name)
	if !ok {
		return httpapi.TopicDetail{}, unknownTopic(name)
	}
	cs, err := a.TopicConfigs(ctx, name)
	if err != nil {
		return httpapi.TopicDetail{}, err
	}
	return httpapi.TopicDetail{TopicSummary: summary(t), Configs: cs}, nil
}

// waitImage polls this node's metadata image until cond holds (a write made through the
// controller is applied here a moment after the controller answers).
func (a *apiBackend) waitImage(ctx context.Context, cond func(*metadata.Image) bool) error {
	ctx, cancel := context.WithTimeout(ctx, apiWait)
	defer cancel()
	ch := a.b.meta.Subscribe()
	defer a.b.meta.Unsubscribe(ch)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond(a.b.meta.Image()) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the metadata change to reach node %d: %w", a.b.cfg.NodeID, ctx.Err())
		case <-ch:
		case <-t.C:
		}
	}
	return nil
}

// CreateTopic implements httpapi.Backend.
func (a *apiBackend) CreateTopic(ctx context.Context, nt httpapi.NewTopic) error {
	adm, err := a.topicAdmin()
	if err != nil {
		return err
	}
	parts, rf := nt.Partitions, nt.ReplicationFactor
	if parts == 0 {
		parts = -1
	}
	if rf == 0 {
		rf = -1
	}
	var configs map[string]*string
	if len(nt.Configs) > 0 {
		configs = make(map[string]*string, len(nt.Configs))
		for k, v := range nt.Configs {
			configs[k] = &v
		}
	}
	resp, err := adm.CreateTopic(ctx, parts, rf, configs, nt.Name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return withMessage(err, resp.ErrMessage)
	}
	return a.waitImage(ctx, func(im *metadata.Image) bool { _, ok := im.Topic(nt.Name); return ok })
}

// withMessage adds the broker's error message to err.
func withMessage(err error, msg string) error {
	if msg == "" {
		return err
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// DeleteTopic implements httpapi.Backend.
func (a *apiBackend) DeleteTopic(ctx context.Context, name string) error {
	if _, ok := a.b.meta.Image().Topic(name); !ok {
		return unknownTopic(name)
	}
	adm, err := a.topicAdmin()
	if err != nil {
		return err
	}
	resp, err := adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return withMessage(err, resp.ErrMessage)
	}
	return a.waitImage(ctx, func(im *metadata.Image) bool { _, ok := im.Topic(name); return !ok })
}

// TopicConfigs implements httpapi.Backend: every topic config with its effective value and
// source, as DescribeConfigs answers it on this node (every node answers from the same image).
func (a *apiBackend) TopicConfigs(ctx context.Context, name string) ([]httpapi.ConfigEntry, error) {
	cs, err := a.b.DescribeTopicConfigs(name, nil, false, false)
	if err != nil {
		if errors.Is(err, metadata.ErrUnknownTopic) {
			return nil, unknownTopic(name)
		}
		return nil, err
	}
	out := make([]httpapi.ConfigEntry, 0, len(cs))
	for _, c := range cs {
		out = append(out, httpapi.ConfigEntry{
			Name: c.Name, Value: c.Value, Source: c.Source.String(),
			Default:  c.Source != kmsg.ConfigSourceDynamicTopicConfig,
			ReadOnly: c.ReadOnly, Sensitive: c.IsSensitive,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AlterTopicConfigs implements httpapi.Backend with IncrementalAlterConfigs.
func (a *apiBackend) AlterTopicConfigs(ctx context.Context, name string, set map[string]string, del []string) error {
	if _, ok := a.b.meta.Image().Topic(name); !ok {
		return unknownTopic(name)
	}
	adm, err := a.admin()
	if err != nil {
		return err
	}
	var alters []kadm.AlterConfig
	for k, v := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range del {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	resps, err := adm.AlterTopicConfigs(ctx, alters, name)
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return withMessage(r.Err, r.ErrMessage)
		}
	}
	return a.waitImage(ctx, func(im *metadata.Image) bool {
		t, ok := im.Topic(name)
		if !ok {
			return true
		}
		for k, v := range set {
			if t.Configs[k] != v {
				return false
			}
		}
		for _, k := range del {
			if _, ok := t.Configs[k]; ok {
				return false
			}
		}
		return true
	})
}

// leads reports the partition of topic this node hosts as its leader, nil when it does not lead it.
func (a *apiBackend) leads(topic string, p int32) interface {
	HighWatermark() int64
	LogStartOffset() int64
	Size() int64
} {
	part := a.b.parts.Get(topic, p)
	if part == nil || !part.IsLeader() {
		return nil
	}
	return part
}

// Partitions implements httpapi.Backend: the assignment from the image; the offsets and sizes
// from the local partitions this node leads, and for the others one ListOffsets per leader and
// one DescribeLogDirs per leader for the whole page.
func (a *apiBackend) Partitions(ctx context.Context, topic string, offset, limit int) (int, []httpapi.PartitionInfo, error) {
	im := a.b.meta.Image()
	t, ok := im.Topic(topic)
	if !ok {
		return 0, nil, unknownTopic(topic)
	}
	total := len(t.Partitions)
	if offset >= total {
		return total, nil, nil
	}
	page := t.Partitions[offset:min(total, offset+limit)]
	out := make([]httpapi.PartitionInfo, len(page))
	var remote []int32
	for i, p := range page {
		pi := httpapi.PartitionInfo{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), OfflineReplicas: []int32{},
			LogStartOffset: -1, HighWatermark: -1, SizeBytes: -1,
		}
		for _, r := range p.Replicas {
			if br, ok := im.Broker(r); !ok || br.Fenced {
				pi.OfflineReplicas = append(pi.OfflineReplicas, r)
			}
		}
		if lp := a.leads(topic, p.Partition); lp != nil {
			pi.LogStartOffset, pi.HighWatermark, pi.SizeBytes = lp.LogStartOffset(), lp.HighWatermark(), lp.Size()
		} else if p.Leader >= 0 {
			remote = append(remote, p.Partition)
		}
		out[i] = pi
	}
	if len(remote) > 0 {
		idx := func(p int32) *httpapi.PartitionInfo { return &out[int(p)-offset] }
		starts, err := a.listRemote(ctx, topic, remote, -2)
		if err != nil {
			return 0, nil, err
		}
		ends, err := a.listRemote(ctx, topic, remote, -1)
		if err != nil {
			return 0, nil, err
		}
		for _, p := range remote {
			if o, ok := starts[p]; ok {
				idx(p).LogStartOffset = o
			}
			if o, ok := ends[p]; ok {
				idx(p).HighWatermark = o
			}
		}
		for leader, sizes := range a.remoteSizes(ctx, t, remote) {
			_ = leader
			for p, n := range sizes {
				idx(p).SizeBytes = n
			}
		}
	}
	return total, out, nil
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return slices.Clone(s)
}

// remoteSizes asks each leader of parts for their size (DescribeLogDirs, one request per leader).
func (a *apiBackend) remoteSizes(ctx context.Context, t *metadata.Topic, parts []int32) map[int32]map[int32]int64 {
	adm, err := a.admin()
	if err != nil {
		return nil
	}
	byLeader := map[int32][]int32{}
	for _, p := range parts {
		if l := t.Partitions[p].Leader; l >= 0 {
			byLeader[l] = append(byLeader[l], p)
		}
	}
	out := map[int32]map[int32]int64{}
	for leader, ps := range byLeader {
		dirs, err := adm.DescribeBrokerLogDirs(ctx, leader, kadm.TopicsSet{t.Name: toSet(ps)})
		if err != nil {
			continue
		}
		m := map[int32]int64{}
		for _, d := range dirs {
			for _, p := range d.Topics[t.Name] {
				m[p.Partition] = p.Size
			}
		}
		out[leader] = m
	}
	return out
}

func toSet(ps []int32) map[int32]struct{} {
	m := make(map[int32]struct{}, len(ps))
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}

// listRemote sends ListOffsets for parts of topic (kgo splits it by leader): the log start
// offset (at = -2), the high watermark (-1) or the first offset at or after the timestamp at (-1
// when there is none).
func (a *apiBackend) listRemote(ctx context.Context, topic string, parts []int32, at int64) (map[int32]int64, error) {
	cl, _, err := a.client()
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = at
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.ListOffsetsRequestTopic{rt}
	out := make(map[int32]int64, len(parts))
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, fmt.Errorf("list offsets of %s on node %d: %w", topic, shard.Meta.NodeID, shard.Err)
		}
		for _, t := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("list offsets of %s-%d: %w", topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

// ListOffsets implements httpapi.Backend.
func (a *apiBackend) ListOffsets(ctx context.Context, topic string, parts []int32, at int64) (map[int32]int64, error) {
	t, ok := a.b.meta.Image().Topic(topic)
	if !ok {
		return nil, unknownTopic(topic)
	}
	out := make(map[int32]int64, len(parts))
	var remote []int32
	for _, p := range parts {
		if p < 0 || int(p) >= len(t.Partitions) {
			return nil, fmt.Errorf("partition %s-%d: %w", topic, p, kerr.UnknownTopicOrPartition)
		}
		part := a.b.parts.Get(topic, p)
		if part == nil || !part.IsLeader() {
			remote = append(remote, p)
			continue
		}
		switch at {
		case -2:
			out[p] = part.LogStartOffset()
		case -1:
			out[p] = part.HighWatermark()
		default:
			off, _, err := part.OffsetForTimestamp(at)
			if err != nil {
				return nil, err
			}
			if off < 0 {
				off = part.HighWatermark()
			}
			out[p] = off
		}
	}
	if len(remote) > 0 {
		got, err := a.listRemote(ctx, topic, remote, at)
		if err != nil {
			return nil, err
		}
		if at >= 0 {
			var missing []int32
			for _, p := range remote {
				if got[p] < 0 {
					missing = append(missing, p)
				}
			}
			if len(missing) > 0 {
				ends, err := a.listRemote(ctx, topic, missing, -1)
				if err != nil {
					return nil, err
				}
				for _, p := range missing {
					got[p] = ends[p]
				}
			}
		}
		for p, o := range got {
			out[p] = o
		}
	}
	return out, nil
}

// ReadBatches implements httpapi.Backend: from the local partition when this node leads it,
// else a Fetch of its leader. An offset below the log start reads from the log start.
func (a *apiBackend) ReadBatches(ctx context.Context, topic string, p int32, offset int64, maxBytes int32) ([]byte, error) {
	if part := a.b.parts.Get(topic, p); part != nil && part.IsLeader() {
		if s := part.LogStartOffset(); offset < s {
			offset = s
		}
		return part.Read(offset, maxBytes, false, true)
	}
	im := a.b.meta.Image()
	t, ok := im.Topic(topic)
	if !ok || p < 0 || int(p) >= len(t.Partitions) {
		return nil, fmt.Errorf("partition %s-%d: %w", topic, p, kerr.UnknownTopicOrPartition)
	}
	leader := t.Partitions[p].Leader
	if leader < 0 {
		return nil, fmt.Errorf("partition %s-%d has no leader: %w", topic, p, kerr.LeaderNotAvailable)
	}
	cl, _, err := a.client()
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 0
		req.MaxBytes = maxBytes
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, t.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = p, offset, maxBytes, -1, -1
		rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return nil, fmt.Errorf("fetch %s-%d from node %d: %w", topic, p, leader, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("fetch %s-%d from node %d: %w", topic, p, leader, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return nil, fmt.Errorf("fetch %s-%d from node %d: %d topics in the answer", topic, p, leader, len(resp.Topics))
		}
		rp0 := resp.Topics[0].Partitions[0]
		err = kerr.ErrorForCode(rp0.ErrorCode)
		if errors.Is(err, kerr.OffsetOutOfRange) && offset < rp0.LogStartOffset && attempt == 0 {
			offset = rp0.LogStartOffset
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fetch %s-%d from node %d: %w", topic, p, leader, err)
		}
		return rp0.RecordBatches, nil
	}
}

// apiPartitioner sends a record to the partition its context names (manualPartition), else a
// keyed record where Kafka's default partitioner does (murmur2) and others round robin.
type apiPartitioner struct{}

type manualPartition struct{}

func (apiPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &apiTopicPartitioner{
		keyed: kgo.StickyKeyPartitioner(nil).ForTopic(topic),
		rr:    kgo.RoundRobinPartitioner().ForTopic(topic),
	}
}

type apiTopicPartitioner struct{ keyed, rr kgo.TopicPartitioner }

func (p *apiTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	_, manual := r.Context.Value(manualPartition{}).(int32)
	return manual || r.Key != nil
}

func (p *apiTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if part, ok := r.Context.Value(manualPartition{}).(int32); ok {
		return int(part)
	}
	if r.Key != nil {
		return p.keyed.Partition(r, n)
	}
	return p.rr.Partition(r, n)
}

// Produce implements httpapi.Backend.
func (a *apiBackend) Produce(ctx context.Context, topic string, pr httpapi.ProduceRecord) (httpapi.Produced, error) {
	t, ok := a.b.meta.Image().Topic(topic)
	if !ok {
		return httpapi.Produced{}, unknownTopic(topic)
	}
	rctx := context.Background()
	if pr.Partition != nil {
		if *pr.Partition < 0 || int(*pr.Partition) >= len(t.Partitions) {
			return httpapi.Produced{}, fmt.Errorf("partition %s-%d: topic has partitions 0..%d: %w", topic, *pr.Partition, len(t.Partitions)-1, kerr.UnknownTopicOrPartition)
		}
		rctx = context.WithValue(rctx, manualPartition{}, *pr.Partition)
	}
	cl, _, err := a.client()
	if err != nil {
		return httpapi.Produced{}, err
	}
	rec := &kgo.Record{Topic: topic, Key: pr.Key, Value: pr.Value, Context: rctx}
	for _, h := range pr.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return httpapi.Produced{}, fmt.Errorf("produce to %s: %w", topic, err)
	}
	return httpapi.Produced{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UnixMilli()}, nil
}
