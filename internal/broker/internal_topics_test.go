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

	"github.com/moldau/moldau/internal/metadata"
)

// fetchOffsetsLoaded fetches group's committed offsets, waiting while the coordinator is still
// loading; any other error (COORDINATOR_NOT_AVAILABLE after a failed load) fails at once.
func fetchOffsetsLoaded(ctx context.Context, t *testing.T, adm *kadm.Client, group string) kadm.OffsetResponses {
	t.Helper()
	for {
		got, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			return got
		}
		if !errors.Is(err, kerr.CoordinatorLoadInProgress) || ctx.Err() != nil {
			t.Fatalf("fetch offsets of %s: %v", group, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func commitOffset(ctx context.Context, t *testing.T, adm *kadm.Client, group, topic string, p int32, at int64) {
	t.Helper()
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, group, o); err != nil {
		t.Fatalf("commit %s %s/%d=%d: %v", group, topic, p, at, err)
	}
}

func wantOffset(t *testing.T, got kadm.OffsetResponses, topic string, p int32, want int64) {
	t.Helper()
	o, ok := got.Lookup(topic, p)
	if !ok || o.Err != nil || o.At != want {
		t.Fatalf("%s/%d: %+v (found %v), want committed offset %d", topic, p, o, ok, want)
	}
}

// TestInternalTopicsRefuseClientWrites: a client cannot produce to __consumer_offsets (the record
// with a one-byte key that made the coordinator fail to load after a restart), delete its records,
// delete it or add partitions to it; Metadata reports it internal, and the reserved internal
// topics are not auto-created. After a restart the group coordinator serves.
func TestInternalTopicsRefuseClientWrites(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	const offsets = metadata.ConsumerOffsetsTopic

	pcl := client(t, b, kgo.DefaultProduceTopic(offsets), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(5*time.Second))
	if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte{1}, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", offsets, err)
	}
	// A plain (non-idempotent) producer gets the same.
	pcl = client(t, b, kgo.DefaultProduceTopic(offsets), kgo.DisableIdempotentWrite(), kgo.RecordRetries(2))
	if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte{1}, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("non-idempotent produce to %s: %v, want INVALID_TOPIC_EXCEPTION", offsets, err)
	}

	var del kadm.Offsets
	del.Add(kadm.Offset{Topic: offsets, Partition: 0, At: -1})
	dr, err := adm.DeleteRecords(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := dr.Lookup(offsets, 0); !ok || !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete records of %s: %+v, want INVALID_TOPIC_EXCEPTION", offsets, r)
	}

	dt, err := adm.DeleteTopics(ctx, offsets)
	if err != nil {
		t.Fatal(err)
	}
	if r := dt[offsets]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete topic %s: %+v, want INVALID_TOPIC_EXCEPTION", offsets, r)
	}

	cp, err := adm.CreatePartitions(ctx, 1, offsets)
	if err != nil {
		t.Fatal(err)
	}
	if r := cp[offsets]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("create partitions of %s: %+v, want INVALID_TOPIC_EXCEPTION", offsets, r)
	}

	td, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := td[offsets]; !d.IsInternal || len(d.Partitions) != 3 {
		t.Fatalf("metadata of %s: internal %v, %d partitions; want internal, 3 partitions", offsets, d.IsInternal, len(d.Partitions))
	}
	// The reserved internal topics are for their coordinators to create, not a client's Metadata.
	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	for _, name := range []string{metadata.TransactionStateTopic, metadata.ShareGroupStateTopic} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, rt)
	}
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range mresp.Topics {
		if rt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("metadata of %s with auto-creation: error %d, want UNKNOWN_TOPIC_OR_PARTITION", *rt.Topic, rt.ErrorCode)
		}
	}
	if _, ok := b.meta.Image().Topic(metadata.TransactionStateTopic); ok {
		t.Fatalf("%s auto-created", metadata.TransactionStateTopic)
	}

	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	commitOffset(ctx, t, adm, "g", "t", 0, 5)
	stopBroker(t, b)

	b = testBroker(t, dir)
	defer stopBroker(t, b)
	adm = kadm.NewClient(client(t, b))
	wantOffset(t, fetchOffsetsLoaded(ctx, t, adm, "g"), "t", 0, 5)
}
