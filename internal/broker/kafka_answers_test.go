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
)

// TestOffsetCommitUnknownPartition: a commit to a topic or partition that does not exist is
// UNKNOWN_TOPIC_OR_PARTITION for that partition, as in Kafka; the others are committed, and a
// commit with nothing valid creates no group.
func TestOffsetCommitUnknownPartition(t *testing.T) {
	b := testBroker(t, t.TempDir(), "auto.create.topics.enable", "false")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "committed"); err != nil {
		t.Fatal(err)
	}

	commit := func(group string, parts map[string][]int32) map[string]map[int32]int16 {
		t.Helper()
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.Generation = group, -1
		for topic, ps := range parts {
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = topic
			for _, p := range ps {
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset = p, 7
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[int32]int16{}
		n := 0
		for _, rt := range resp.Topics {
			if out[rt.Topic] == nil {
				out[rt.Topic] = map[int32]int16{}
			}
			for _, rp := range rt.Partitions {
				out[rt.Topic][rp.Partition] = rp.ErrorCode
				n++
			}
		}
		want := 0
		for _, ps := range parts {
			want += len(ps)
		}
		if n != want {
			t.Fatalf("%d partitions answered, %d asked", n, want)
		}
		return out
	}
	unknown := kerr.UnknownTopicOrPartition.Code
	got := commit("g1", map[string][]int32{"committed": {1, 2, 0, -1}, "absent": {0}})
	if c := got["committed"]; c[0] != 0 || c[1] != 0 || c[2] != unknown || c[-1] != unknown || got["absent"][0] != unknown {
		t.Fatalf("commit answered %v", got)
	}
	offs, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 1 || len(offs["committed"]) != 2 || offs["committed"][0].At != 7 || offs["committed"][1].At != 7 {
		t.Fatalf("committed offsets %+v", offs)
	}

	if got := commit("g2", map[string][]int32{"absent": {0, 1}}); got["absent"][0] != unknown || got["absent"][1] != unknown {
		t.Fatalf("commit answered %v", got)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups["g2"]; ok {
		t.Fatalf("a commit to unknown partitions created group g2: %v", groups.Groups())
	}

	// kadm surfaces the error per partition.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "absent", Partition: 0, At: 1})
	res, err := adm.CommitOffsets(ctx, "g1", os)
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Error(); !errors.Is(e, kerr.UnknownTopicOrPartition) {
		t.Fatalf("kadm commit to an unknown topic: %v", e)
	}
}

// TestMetadataAutoCreateLeaderNotAvailable: the Metadata response that auto-creates a topic
// answers LEADER_NOT_AVAILABLE for it, without partitions, as Kafka does; the next one describes
// it; a producer to a new topic still succeeds promptly.
func TestMetadataAutoCreateLeaderNotAvailable(t *testing.T) {
	b := testBroker(t, t.TempDir(), "num.partitions", "3")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	meta := func() kmsg.MetadataResponseTopic {
		t.Helper()
		r := kmsg.NewPtrMetadataRequest()
		r.AllowAutoTopicCreation = true
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("autocreated")
		r.Topics = append(r.Topics, rt)
		resp, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Topics) != 1 {
			t.Fatalf("%d topics answered", len(resp.Topics))
		}
		return resp.Topics[0]
	}
	first := meta()
	if first.ErrorCode != kerr.LeaderNotAvailable.Code || len(first.Partitions) != 0 || first.Topic == nil || *first.Topic != "autocreated" {
		t.Fatalf("creating response: error %v, %d partitions", kerr.ErrorForCode(first.ErrorCode), len(first.Partitions))
	}
	second := meta()
	if second.ErrorCode != 0 || len(second.Partitions) != 3 || second.TopicID == ([16]byte{}) {
		t.Fatalf("next response: error %v, %d partitions", kerr.ErrorForCode(second.ErrorCode), len(second.Partitions))
	}

	start := time.Now()
	pcl := client(t, b, kgo.DefaultProduceTopic("autoproduced"), kgo.AllowAutoTopicCreation())
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("produce to a new topic took %v", d)
	}
	t.Logf("produce to a new topic took %v", time.Since(start))
}

// TestAlterConfigsKafkaBrokerKeys: a Kafka broker key that Moldau has no use for is accepted by
// AlterConfigs and IncrementalAlterConfigs (and not stored), as server.properties accepts it; a
// key Kafka does not know either is still refused.
func TestAlterConfigsKafkaBrokerKeys(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	v := "kafka"
	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "sasl.kerberos.service.name", Value: &v}, {Op: kadm.SetConfig, Name: "num.io.threads", Value: kmsg.StringPtr("8")}}
	res, err := adm.AlterBrokerConfigs(ctx, set)
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("incremental alter of Kafka keys: %v", err)
	}
	if res, err = adm.AlterBrokerConfigsState(ctx, set); err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("legacy alter of Kafka keys: %v", err)
	}
	rc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc[0].Configs {
		if c.Key == "sasl.kerberos.service.name" || c.Key == "num.io.threads" {
			t.Fatalf("ignored key %s described", c.Key)
		}
	}
	res, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.kafka.key", Value: &v}})
	if err == nil {
		err = res[0].Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("unknown key: %v", err)
	}
}
