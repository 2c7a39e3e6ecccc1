package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/replica"
)

// alterResults fails the test on any error of an AlterConfigs call.
func alterResults(t *testing.T, what string, res kadm.AlterConfigsResponses, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %s: %v %s", what, r.Name, r.Err, r.ErrMessage)
		}
	}
}

// describedConfig is one key of a broker's DescribeConfigs answer.
func describedConfig(t *testing.T, ctx context.Context, adm *kadm.Client, broker int32, key string) kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeBrokerConfigs(ctx, broker)
	if err != nil {
		t.Fatalf("describe broker %d: %v", broker, err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Fatalf("describe broker %d: %v %s", broker, rc.Err, rc.ErrMessage)
		}
		for _, c := range rc.Configs {
			if c.Key == key {
				return c
			}
		}
	}
	t.Fatalf("broker %d does not describe %s", broker, key)
	return kadm.Config{}
}

// incrementalAlterBroker sends one IncrementalAlterConfigs SET of a broker resource to node via.
func incrementalAlterBroker(t *testing.T, ctx context.Context, via *kgo.Client, viaID int32, name, key, value string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Value, c.Op = key, kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
	rr.Configs = append(rr.Configs, c)
	req.Resources = append(req.Resources, rr)
	resp, err := via.Broker(int(viaID)).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources[0]
	msg := ""
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	return r.ErrorCode, msg
}

// The replication quota configs: per broker (the entity kafka-configs --entity-name N names,
// which Kafka's admin client and kadm send to broker N) and as the cluster default, the
// per-broker value winning on its broker; dynamic (each broker's quotas follow at once) and
// shown by DescribeConfigs with Kafka's sources; a broker-N alteration accepted through any
// node; the topic keys set which partitions each broker's quotas throttle.
func TestClusterReplicationQuotaConfigs(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		byID[b.cfg.NodeID] = b
	}
	bounds := func(which func(*Broker) *replica.Quota, want map[int32]int64) func(*Broker) bool {
		return func(b *Broker) bool { return which(b).Bound() == want[b.cfg.NodeID] }
	}
	leaderQ := func(b *Broker) *replica.Quota { return b.leaderQuota }
	followerQ := func(b *Broker) *replica.Quota { return b.followerQuota }
	for _, b := range brokers {
		if b.leaderQuota.Bound() != replica.Unlimited || b.followerQuota.Bound() != replica.Unlimited {
			t.Fatalf("node %d starts throttled", b.cfg.NodeID)
		}
	}
	if c := describedConfig(t, ctx, adm, 1, config.LeaderReplicationThrottledRate); c.MaybeValue() != "9223372036854775807" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("default leader rate %q source %v", c.MaybeValue(), c.Source)
	}

	// kafka-configs --entity-type brokers --entity-name 2 --alter --add-config leader...=1000
	res, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: config.LeaderReplicationThrottledRate, Value: kadm.StringPtr("1000")}}, 2)
	alterResults(t, "leader rate of broker 2", res, err)
	waitCluster(t, brokers, "broker 2's leader quota at 1000", bounds(leaderQ, map[int32]int64{1: replica.Unlimited, 2: 1000, 3: replica.Unlimited}))
	if c := describedConfig(t, ctx, adm, 2, config.LeaderReplicationThrottledRate); c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Fatalf("broker 2 leader rate %q source %v, want 1000 DYNAMIC_BROKER_CONFIG", c.MaybeValue(), c.Source)
	}
	waitCluster(t, brokers, "broker 2's leader rate in every image", func(b *Broker) bool {
		return b.Controller().Image().NodeConfigs(2)[config.LeaderReplicationThrottledRate] == "1000"
	})

	// --entity-default: every broker, the per-broker value still winning on its broker.
	res, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Name: config.LeaderReplicationThrottledRate, Value: kadm.StringPtr("500")},
		{Name: config.FollowerReplicationThrottledRate, Value: kadm.StringPtr("600")}})
	alterResults(t, "cluster default rates", res, err)
	waitCluster(t, brokers, "default leader quotas at 500 but broker 2's", bounds(leaderQ, map[int32]int64{1: 500, 2: 1000, 3: 500}))
	waitCluster(t, brokers, "default follower quotas at 600", bounds(followerQ, map[int32]int64{1: 600, 2: 600, 3: 600}))
	if c := describedConfig(t, ctx, adm, 3, config.FollowerReplicationThrottledRate); c.MaybeValue() != "600" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("broker 3 follower rate %q source %v, want 600 DYNAMIC_DEFAULT_BROKER_CONFIG", c.MaybeValue(), c.Source)
	}
	// The synonyms name every layer, the one in effect first (kafka-configs --describe prints them).
	c := describedConfig(t, ctx, adm, 2, config.LeaderReplicationThrottledRate)
	var syns []string
	for _, sy := range c.Synonyms {
		syns = append(syns, fmt.Sprintf("%s:%s", sy.Source, *sy.Value))
	}
	if got, want := strings.Join(syns, ","), "DYNAMIC_BROKER_CONFIG:1000,DYNAMIC_DEFAULT_BROKER_CONFIG:500,DEFAULT_CONFIG:9223372036854775807"; got != want {
		t.Fatalf("broker 2 leader rate synonyms %s, want %s", got, want)
	}

	// A broker-3 alteration sent to another node (not the controller where possible) is
	// accepted there and forwarded.
	controller := brokers[0].Controller().ControllerID()
	via := int32(1)
	for _, b := range brokers {
		if id := b.cfg.NodeID; id != 3 && id != controller {
			via = id
		}
	}
	direct := clusterClient(t, []*Broker{byID[via]})
	if code, msg := incrementalAlterBroker(t, ctx, direct, via, "3", config.FollowerReplicationThrottledRate, "700"); code != 0 {
		t.Fatalf("broker 3's follower rate through node %d: code %d %s", via, code, msg)
	}
	waitCluster(t, brokers, "broker 3's follower quota at 700", bounds(followerQ, map[int32]int64{1: 600, 2: 600, 3: 700}))
	if code, _ := incrementalAlterBroker(t, ctx, direct, via, "9", config.FollowerReplicationThrottledRate, "1"); code != kerr.BrokerIDNotRegistered.Code {
		t.Fatalf("an unregistered broker's config: code %d, want BROKER_ID_NOT_REGISTERED", code)
	}
	if code, _ := incrementalAlterBroker(t, ctx, direct, via, "x", config.FollowerReplicationThrottledRate, "1"); code != kerr.InvalidRequest.Code {
		t.Fatalf("broker name x: code %d, want INVALID_REQUEST", code)
	}
	if code, _ := incrementalAlterBroker(t, ctx, direct, via, "3", config.FollowerReplicationThrottledRate, "-5"); code != kerr.InvalidConfig.Code {
		t.Fatalf("a negative rate: code %d, want INVALID_CONFIG", code)
	}
	// DescribeConfigs of another broker is refused, as Kafka's broker refuses it.
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeBroker, "3"
	dreq.Resources = append(dreq.Resources, dr)
	resp, err := direct.Broker(int(via)).Request(ctx, dreq)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Fatalf("describe broker 3 on node %d: code %d, want INVALID_REQUEST", via, code)
	}

	// Deleting the per-broker value falls back to the default.
	res, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: config.LeaderReplicationThrottledRate}}, 2)
	alterResults(t, "delete broker 2's leader rate", res, err)
	waitCluster(t, brokers, "broker 2 back on the default", bounds(leaderQ, map[int32]int64{1: 500, 2: 500, 3: 500}))

	// Topic keys: which partitions each broker's quotas throttle.
	cres, err := adm.CreateTopic(ctx, 3, 1, nil, "moving")
	if err == nil {
		err = cres.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	tres, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: config.LeaderReplicationThrottledReplicas, Value: kadm.StringPtr("0:1,1:2")},
		{Name: config.FollowerReplicationThrottledReplicas, Value: kadm.StringPtr("*")}}, "moving")
	alterResults(t, "throttled replicas", tres, err)
	waitCluster(t, brokers, "throttled partitions applied", func(b *Broker) bool {
		for p := int32(0); p < 3; p++ {
			want := (b.cfg.NodeID == 1 && p == 0) || (b.cfg.NodeID == 2 && p == 1)
			if b.leaderQuota.IsThrottled("moving", p) != want || !b.followerQuota.IsThrottled("moving", p) {
				return false
			}
		}
		return !b.leaderQuota.IsThrottled("other", 0)
	})
	tres, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: config.LeaderReplicationThrottledReplicas, Value: kadm.StringPtr("0-1")}}, "moving")
	if err == nil && (len(tres) != 1 || !errors.Is(tres[0].Err, kerr.InvalidConfig)) {
		t.Fatalf("leader.replication.throttled.replicas=0-1 accepted: %+v", tres)
	}
	tres, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: config.LeaderReplicationThrottledReplicas},
		{Op: kadm.DeleteConfig, Name: config.FollowerReplicationThrottledReplicas}}, "moving")
	alterResults(t, "remove throttled replicas", tres, err)
	waitCluster(t, brokers, "no partition throttled", func(b *Broker) bool {
		for p := int32(0); p < 3; p++ {
			if b.leaderQuota.IsThrottled("moving", p) || b.followerQuota.IsThrottled("moving", p) {
				return false
			}
		}
		return true
	})
}

// startBrokerOnly starts (or restarts, on the same log dir) a process.roles=broker node id
// joining the voters of brokers.
func startBrokerOnly(t *testing.T, brokers []*Broker, id int32, dir string, overrides ...string) *Broker {
	t.Helper()
	var voters []string
	for _, b := range brokers {
		voters = append(voters, fmt.Sprintf("%d@%s", b.cfg.NodeID, raftAdvertiseAddr(b.cfg)))
	}
	cfg := testConfig(t, dir, append([]string{
		"node.id", strconv.Itoa(int(id)),
		"process.roles", "broker",
		"listeners", "PLAINTEXT://" + freeAddrs(t, 1)[0],
		"controller.listener.names", "CONTROLLER",
		"controller.quorum.voters", strings.Join(voters, ","),
		"broker.session.timeout.ms", "3000",
		"broker.heartbeat.interval.ms", "500"}, overrides...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker-only node %d: %v", id, err)
	}
	t.Cleanup(func() { stopBroker(t, b) })
	return b
}

// A new follower (a replica a reassignment adds) catching up under a replication throttle
// (leader.replication.throttled.rate on its leader, follower.replication.throttled.rate on
// itself, the partition in both throttled replica lists as kafka-reassign-partitions --throttle
// sets them) is held to the rate, by the bytes both quotas counted, while acks=all producers of
// another partition of the same leader (in the leader's throttled list too, its follower in
// sync) keep being acknowledged, and the in-sync follower of the moving partition is not held;
// with the rates removed the new replica catches up, joins the ISR and the move completes. The
// assertions on bytes are upper bounds over elapsed time, so a slow machine cannot fail them.
func TestClusterThrottledFollowerCatchesUp(t *testing.T) {
	const (
		rate     = 128 << 10       // bytes/s
		bulk     = 4 << 20         // bytes the new replica must catch up
		fetchMax = 64 << 10        // replica.fetch.max.bytes: one partition's answer (a larger batch is sent whole)
		batchMax = 16 << 10        // the producer's batches
		observe  = 4 * time.Second // how long the throttled catch-up is watched: unthrottled it takes a fraction
	)
	quotaKeys := []string{"replication.quota.window.num", "2", "replication.quota.window.size.seconds", "1",
		"replica.fetch.max.bytes", strconv.Itoa(fetchMax), "replica.fetch.backoff.ms", "100", "replica.lag.time.max.ms", "3000"}
	brokers := testCluster(t, 3, quotaKeys...)
	b4 := startBrokerOnly(t, brokers, 4, t.TempDir(), quotaKeys...)
	all := append(append([]*Broker{}, brokers...), b4)
	waitCluster(t, all, "four brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var b1 *Broker
	for _, b := range brokers {
		if b.cfg.NodeID == 1 {
			b1 = b
		}
	}
	cl := clusterClient(t, all)
	createAssigned(ctx, t, b1, "bulk", nil, 1, 2)
	createAssigned(ctx, t, b1, "live", map[string]string{"min.insync.replicas": "2"}, 1, 3)
	state := func(topic string) (replicas, isr, adding []int32) {
		tm, ok := b1.Controller().Image().Topic(topic)
		if !ok {
			return nil, nil, nil
		}
		p := tm.Partitions[0]
		return p.Replicas, p.ISR, p.AddingReplicas
	}
	waitCluster(t, all, "node 1 leads bulk and live", func(b *Broker) bool {
		p, q := b1.parts.Get("bulk", 0), b1.parts.Get("live", 0)
		return p != nil && p.IsLeader() && q != nil && q.IsLeader()
	})

	prod := clusterClient(t, brokers, kgo.DefaultProduceTopic("bulk"), kgo.ProducerBatchMaxBytes(batchMax),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RequiredAcks(kgo.AllISRAcks()))
	value := make([]byte, 4<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(rng.Uint32()) // incompressible: the follower fetches the bytes produced
	}
	var produced sync.WaitGroup
	var produceErr atomic.Value
	for range bulk / len(value) {
		produced.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				produceErr.Store(err)
			}
			produced.Done()
		})
	}
	produced.Wait()
	if err := produceErr.Load(); err != nil {
		t.Fatalf("produce bulk: %v", err)
	}
	leaderEnd := b1.parts.Get("bulk", 0).LogEndOffset()

	// The throttle as kafka-reassign-partitions --execute --throttle sets it: the current
	// replicas in the leader list, the added one in the follower list, the rate on the brokers
	// (node 4's through node 2: any node takes a broker's config).
	adm := kadm.NewClient(cl)
	tres, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Name: config.LeaderReplicationThrottledReplicas, Value: kadm.StringPtr("0:1,0:2")},
		{Name: config.FollowerReplicationThrottledReplicas, Value: kadm.StringPtr("0:4")}}, "bulk")
	alterResults(t, "throttle bulk", tres, err)
	tres, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: config.LeaderReplicationThrottledReplicas, Value: kadm.StringPtr("*")}}, "live")
	alterResults(t, "throttle live", tres, err)
	res, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: config.LeaderReplicationThrottledRate, Value: kadm.StringPtr(strconv.Itoa(rate))}}, 1)
	alterResults(t, "leader rate of node 1", res, err)
	if code, msg := incrementalAlterBroker(t, ctx, clusterClient(t, brokers[1:2]), brokers[1].cfg.NodeID, "4", config.FollowerReplicationThrottledRate, strconv.Itoa(rate)); code != 0 {
		t.Fatalf("follower rate of node 4: code %d %s", code, msg)
	}
	waitCluster(t, all, "the quotas set", func(*Broker) bool {
		return b1.leaderQuota.Bound() == rate && b1.leaderQuota.IsThrottled("bulk", 0) && b1.leaderQuota.IsThrottled("live", 0) &&
			b4.followerQuota.Bound() == rate && b4.followerQuota.IsThrottled("bulk", 0)
	})

	// acks=all producers of live go on throughout.
	var acked, failed atomic.Int64
	var lastErr atomic.Value
	stopLive := make(chan struct{})
	liveDone := make(chan struct{})
	live := clusterClient(t, brokers, kgo.DefaultProduceTopic("live"), kgo.RequiredAcks(kgo.AllISRAcks()))
	go func() {
		defer close(liveDone)
		pace := time.NewTicker(5 * time.Millisecond) // a steady load, not a CPU burner
		defer pace.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopLive:
				return
			case <-pace.C:
			}
			if err := live.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				if ctx.Err() != nil {
					return
				}
				failed.Add(1)
				lastErr.Store(err)
				continue
			}
			acked.Add(1)
		}
	}()
	defer func() { close(stopLive); <-liveDone }()

	// Node 4 is added to bulk's replicas and catches up under the throttle.
	ackedBefore := acked.Load()
	base := b1.leaderQuota.Recorded()
	start := time.Now()
	var move kadm.AlterPartitionAssignmentsReq
	move.Assign("bulk", 0, []int32{1, 2, 4})
	mres, err := adm.AlterPartitionAssignments(ctx, move)
	if err == nil {
		mres.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
			if r.Err != nil {
				err = r.Err
			}
		})
	}
	if err != nil {
		t.Fatalf("reassign bulk-0 to [1 2 4]: %v", err)
	}
	span := 2 * time.Second // replication.quota.window.num x .size.seconds
	// The bound of the unit tests (replica/throttle_test.go): the bytes of a span at most the
	// rate over a span and a window plus one answer, so by elapsed time e at most
	// rate*(e+span+window) plus one answer per span; an answer here is one partition's
	// fetchMax (a batch larger than it whole) and the live partition's few bytes.
	answer := float64(fetchMax + batchMax)
	allowed := func(e time.Duration) float64 {
		return rate*(e+span+time.Second).Seconds() + answer*(e.Seconds()/span.Seconds()+2)
	}
	for {
		e := time.Since(start)
		served, fetched := float64(b1.leaderQuota.Recorded()-base), float64(b4.followerQuota.Recorded())
		if served > allowed(e) || fetched > allowed(e) {
			t.Fatalf("after %v node 1 served %.0f and node 4 fetched %.0f throttled bytes, more than the %.0f the rate allows",
				e, served, fetched, allowed(e))
		}
		if e >= observe && fetched >= 2*rate && acked.Load()-ackedBefore >= 30 {
			break
		}
		if e > 60*time.Second {
			t.Fatalf("after %v node 4 fetched %.0f bytes and live had %d acks (%d failed: %v)", e, fetched, acked.Load()-ackedBefore, failed.Load(), lastErr.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p4 := b4.parts.Get("bulk", 0)
	if p4 == nil {
		t.Fatal("node 4 has no bulk partition")
	}
	replicas, isr, adding := state("bulk")
	if end := p4.LogEndOffset(); end >= leaderEnd || slices.Contains(isr, 4) || !slices.Equal(adding, []int32{4}) {
		t.Fatalf("node 4 caught up under the throttle: log end %d of %d, replicas %v ISR %v adding %v", end, leaderEnd, replicas, isr, adding)
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d acks=all produce calls to live failed under the throttle: %v", n, lastErr.Load())
	}
	if _, lisr, _ := state("live"); !slices.Equal(lisr, []int32{1, 3}) || !slices.Contains(isr, 2) {
		t.Fatalf("live's ISR %v, bulk's %v: an in-sync follower was throttled out", lisr, isr)
	}

	// The rates removed, node 4 catches up, joins the ISR and the move completes. (A client
	// that discovered node 4 sends its broker config to it.)
	res, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: config.LeaderReplicationThrottledRate}}, 1)
	alterResults(t, "remove node 1's rate", res, err)
	res, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: config.FollowerReplicationThrottledRate}}, 4)
	alterResults(t, "remove node 4's rate", res, err)
	deadline := time.Now().Add(60 * time.Second)
	for {
		replicas, isr, adding = state("bulk")
		if p4.LogEndOffset() >= leaderEnd && slices.Contains(isr, 4) && len(adding) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 4 at %d of %d, replicas %v ISR %v adding %v, after the throttle was removed", p4.LogEndOffset(), leaderEnd, replicas, isr, adding)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d acks=all produce calls to live failed: %v", n, lastErr.Load())
	}
	// Node 4 joined bulk's ISR through node 1's AlterPartition: an ISR expansion in node 1's
	// metrics.
	if f := scrape(t, b1)["kafka_server_replicamanager_isrexpands_total"]; len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter().GetValue() < 1 {
		t.Errorf("node 1's kafka_server_replicamanager_isrexpands_total: %v, want >= 1", f.GetMetric())
	}
}

// TestClusterISRShrinkMetrics: a follower that stops fetching (its replica manager closed, the
// node otherwise up and heartbeating, so the controller does not fence it) falls out of the ISR
// by its leader's AlterPartition after replica.lag.time.max.ms: an ISR shrink in the leader's
// kafka_server_replicamanager_isrshrinks_total, none in its own.
func TestClusterISRShrinkMetrics(t *testing.T) {
	brokers := testCluster(t, 3, "replica.lag.time.max.ms", "1000")
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		byID[b.cfg.NodeID] = b
	}
	b1, b3 := byID[1], byID[3]
	createAssigned(ctx, t, b1, "shrinking", nil, 1, 2, 3)
	waitCluster(t, brokers, "node 1 leads shrinking", func(*Broker) bool {
		p := b1.parts.Get("shrinking", 0)
		return p != nil && p.IsLeader()
	})
	counter := func(b *Broker, name string) float64 {
		t.Helper()
		f := scrape(t, b)[name]
		if len(f.GetMetric()) != 1 {
			t.Fatalf("node %d: %s has %d series, want 1", b.cfg.NodeID, name, len(f.GetMetric()))
		}
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	shrinksBefore := map[int32]float64{}
	for _, b := range brokers {
		shrinksBefore[b.cfg.NodeID] = counter(b, "kafka_server_replicamanager_isrshrinks_total")
	}
	if err := b3.replicas.Close(); err != nil {
		t.Fatal(err)
	}
	prod := clusterClient(t, brokers, kgo.DefaultProduceTopic("shrinking"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	isr := func() []int32 {
		tm, _ := b1.Controller().Image().Topic("shrinking")
		return tm.Partitions[0].ISR
	}
	for slices.Contains(isr(), 3) {
		// Records keep node 3 behind: a follower with nothing to fetch stays caught up.
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("node 3 never left the ISR %v", isr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v, want [1 2]", got)
	}
	// At least this one (node 1 may lead other partitions node 3 follows).
	if d := counter(b1, "kafka_server_replicamanager_isrshrinks_total") - shrinksBefore[1]; d < 1 {
		t.Errorf("node 1 (the leader) counted %v ISR shrinks, want >= 1", d)
	}
	if d := counter(b3, "kafka_server_replicamanager_isrshrinks_total") - shrinksBefore[3]; d != 0 {
		t.Errorf("node 3 (the follower that left) counted %v ISR shrinks, want 0", d)
	}
}
