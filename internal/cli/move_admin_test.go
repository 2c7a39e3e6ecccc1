package cli

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKadmMoveAdmin drives the franz-go implementation of moveAdmin against kfake: what it reads
// (brokers, partitions, replica sizes, reassignments) and writes (reassignments, configs).
func TestKadmMoveAdmin(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: make([]byte, 1000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm, err := openKadmMoveAdmin(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()

	v, err := adm.Describe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Brokers) != 3 || len(v.Partitions) < 2 {
		t.Fatalf("describe: %+v", v)
	}
	if _, err := adm.Describe(ctx, []string{"nope"}); err == nil || err.Error() != "Topic nope not found." {
		t.Errorf("unknown topic: %v", err)
	}
	p0, ok := v.partition(tp{Topic: "orders", Partition: 0})
	if !ok || p0.Leader < 0 || len(p0.Replicas) == 0 {
		t.Fatalf("orders-0: %+v %v", p0, ok)
	}
	sizes, err := adm.LogDirSizes(ctx, v.brokerIDs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, m := range sizes {
		size = max(size, m[tp{Topic: "orders", Partition: 0}].Size)
	}
	if size < 1000 {
		t.Errorf("orders-0 size %d, want >= 1000: %+v", size, sizes)
	}
	ra, err := adm.ListReassignments(ctx, nil)
	if err != nil || len(ra) != 0 {
		t.Errorf("list: %v %v", ra, err)
	}
	errs, err := adm.AlterReassignments(ctx, map[tp][]int32{{Topic: "orders"}: nil, {Topic: "nope"}: {1}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs[tp{Topic: "orders"}], kerr.NoReassignmentInProgress) || !errors.Is(errs[tp{Topic: "nope"}], kerr.UnknownTopicOrPartition) {
		t.Errorf("alter errors: %v", errs)
	}
	if kafkaMessage(errs[tp{Topic: "nope"}]) == "" {
		t.Error("no message for an error")
	}
	v1 := "1000"
	if err := adm.AlterConfigs(ctx, []configChange{{Name: "orders", Key: "retention.ms", Value: &v1}}); err != nil {
		t.Fatal(err)
	}
	if err := adm.AlterConfigs(ctx, []configChange{{Name: "orders", Key: "retention.ms"}}); err != nil {
		t.Fatal(err)
	}
	if err := adm.AlterConfigs(ctx, []configChange{{Name: "nope", Key: "retention.ms", Value: &v1}}); err == nil {
		t.Error("a config of an unknown topic was accepted")
	}
}
