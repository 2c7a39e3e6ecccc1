package broker

import (
	"context"
	"errors"
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
	if got := byID[1].Controller().Image().NodeConfigs(2)[config.LeaderReplicationThrottledRate]; got != "1000" {
		t.Fatalf("node 1's image: broker 2's leader rate %q", got)
	}

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
