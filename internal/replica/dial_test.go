package replica

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The kgo LeaderClient sends Fetch and OffsetForLeaderEpoch to the one broker it was dialled
// for and reads its Fetch version (kfake, franz-go's fake Kafka, on loopback).
func TestDialerFetchesFromTheBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	lc, err := Dialer(2)(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if v := lc.(fetchVersioner).FetchVersion(); v < 12 {
		t.Fatalf("fetch version %d, want >= 12", v)
	}
	f := testFetcher(newFakeClock())
	f.add(key0, [16]byte{}, newFakeLog(), -1)
	req := f.buildFetch(time.Now())
	req.ReplicaID, req.ReplicaState.ID = -1, -1 // kfake serves consumers only
	req.Topics[0].TopicID = topicIDOf(ctx, t, prod, "t")
	resp, err := lc.Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response %+v", resp)
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil || rp.HighWatermark != 1 || len(rp.RecordBatches) == 0 {
		t.Fatalf("partition answer: err %v, hw %d, %d bytes", err, rp.HighWatermark, len(rp.RecordBatches))
	}
	oreq := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "t"
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.LeaderEpoch = 0
	ot.Partitions = append(ot.Partitions, op)
	oreq.Topics = append(oreq.Topics, ot)
	if _, err := lc.OffsetForLeaderEpoch(ctx, oreq); err != nil {
		t.Fatal(err)
	}
}

func topicIDOf(ctx context.Context, t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata: %v %+v", err, resp)
	}
	return resp.Topics[0].TopicID
}

// A leader that is not listening: Dial succeeds (kgo connects lazily) and the first request
// fails, which the fetcher answers with its backoff.
func TestDialerUnreachable(t *testing.T) {
	lc, err := Dialer(2)("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lc.Fetch(ctx, kmsg.NewPtrFetchRequest()); err == nil {
		t.Fatal("fetch from a closed port succeeded")
	}
}
