package handler

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

// testMetadataHandler is a Handler over a single-voter metadata controller with broker 1
// registered: enough for the APIs that only read metadata.
func testMetadataHandler(t *testing.T) (*Handler, *metadata.Controller) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No heartbeats follow the first one: the session must outlast the test.
	meta, err := metadata.Start(ctx, metadata.Config{NodeID: 1, RaftDir: t.TempDir(), LogOutput: io.Discard, SessionTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	epoch, err := meta.RegisterBroker(ctx, metadata.BrokerRegistration{
		NodeID: 1, ClusterID: meta.Image().ClusterID(), IncarnationID: metadata.RandomUUID(),
		Endpoints: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := meta.BrokerHeartbeat(ctx, metadata.Heartbeat{NodeID: 1, Epoch: epoch, MetadataOffset: meta.Image().Index()}); err != nil {
		t.Fatal(err)
	}
	h := New(Options{NodeID: 1}, meta, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return h, meta
}

func describeTopicPartitions(t *testing.T, h *Handler, r *kmsg.DescribeTopicPartitionsRequest) *kmsg.DescribeTopicPartitionsResponse {
	t.Helper()
	if !h.SupportedVersion(r.Key(), r.Version) {
		t.Fatalf("DescribeTopicPartitions v%d is not registered", r.Version)
	}
	resp, err := h.Handle(context.Background(), &server.Request{Key: r.Key(), Version: r.Version, Msg: r})
	if err != nil {
		t.Fatal(err)
	}
	// What goes on the wire must decode: the response is checked after a round trip.
	raw := resp.AppendTo(nil)
	out := kmsg.NewPtrDescribeTopicPartitionsResponse()
	out.Version = r.Version
	if err := out.ReadFrom(raw); err != nil {
		t.Fatalf("decode response: %v", err)
	}
	return out
}

// page is one response as "topic:first-last,topic:first-last|cursor".
func page(resp *kmsg.DescribeTopicPartitionsResponse) string {
	var s string
	for i, t := range resp.Topics {
		if i > 0 {
			s += ","
		}
		s += *t.Topic
		if t.ErrorCode != 0 {
			s += "!" + kerr.ErrorForCode(t.ErrorCode).Error()
			continue
		}
		if len(t.Partitions) > 0 {
			s += ":" + itoa(t.Partitions[0].Partition) + "-" + itoa(t.Partitions[len(t.Partitions)-1].Partition)
		}
	}
	if c := resp.NextCursor; c != nil {
		s += "|" + c.Topic + "/" + itoa(c.Partition)
	}
	return s
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestDescribeTopicPartitions(t *testing.T) {
	h, meta := testMetadataHandler(t)
	ctx := context.Background()
	for name, n := range map[string]int32{"b": 3, "a": 2, "c": 4} {
		if _, err := meta.CreateTopic(ctx, metadata.CreateTopic{Name: name, Partitions: n, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}

	// Every topic, sorted, with Kafka's fields.
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 2000
	resp := describeTopicPartitions(t, h, req)
	if got, want := page(resp), "a:0-1,b:0-2,c:0-3"; got != want {
		t.Fatalf("all topics: %s, want %s", got, want)
	}
	im := meta.Image()
	for _, rt := range resp.Topics {
		mt, _ := im.Topic(*rt.Topic)
		if rt.TopicID != mt.ID || rt.IsInternal || rt.AuthorizedOperations != 3576 {
			t.Errorf("%s: id %x internal %v ops %d; want %x, false, 3576 (every topic operation)", *rt.Topic, rt.TopicID, rt.IsInternal, rt.AuthorizedOperations, mt.ID)
		}
		for _, p := range rt.Partitions {
			if p.ErrorCode != 0 || p.LeaderID != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 ||
				p.EligibleLeaderReplicas == nil || len(p.EligibleLeaderReplicas) != 0 ||
				p.LastKnownELR == nil || len(p.LastKnownELR) != 0 || len(p.OfflineReplicas) != 0 {
				t.Errorf("%s-%d: %+v", *rt.Topic, p.Partition, p)
			}
		}
	}

	// Pages of 3 partitions walk every topic exactly once, as kafka-topics pages them.
	var pages []string
	req.ResponsePartitionLimit = 3
	req.Cursor = nil
	for range 10 {
		resp := describeTopicPartitions(t, h, req)
		pages = append(pages, page(resp))
		if resp.NextCursor == nil {
			break
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	want := []string{"a:0-1,b:0-0|b/1", "b:1-2,c:0-0|c/1", "c:1-3"}
	if len(pages) != len(want) {
		t.Fatalf("pages %q, want %q", pages, want)
	}
	for i := range want {
		if pages[i] != want[i] {
			t.Errorf("page %d: %s, want %s", i, pages[i], want[i])
		}
	}

	// A limit that ends exactly with a topic points the cursor at the start of the next one.
	req.Cursor = nil
	req.ResponsePartitionLimit = 2
	if got, want := page(describeTopicPartitions(t, h, req)), "a:0-1|b/0"; got != want {
		t.Errorf("limit 2: %s, want %s", got, want)
	}

	// Named topics: answered sorted; a missing one errors, an invalid name is INVALID_TOPIC.
	req = kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 2000
	for _, n := range []string{"c", "nope", "a", "bad/name"} {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = n
		req.Topics = append(req.Topics, rt)
	}
	if got, want := page(describeTopicPartitions(t, h, req)),
		"a:0-1,bad/name!"+kerr.InvalidTopicException.Error()+",c:0-3,nope!"+kerr.UnknownTopicOrPartition.Error(); got != want {
		t.Errorf("named topics: %s, want %s", got, want)
	}

	// A cursor inside a named list starts there; a cursor outside the list is an invalid request.
	req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "c", Partition: 2}
	if got, want := page(describeTopicPartitions(t, h, req)), "c:2-3,nope!"+kerr.UnknownTopicOrPartition.Error(); got != want {
		t.Errorf("named topics from cursor c/2: %s, want %s", got, want)
	}
	req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "b"}
	resp = describeTopicPartitions(t, h, req)
	for _, rt := range resp.Topics {
		if rt.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("cursor not in the topic list: %s answered %d, want INVALID_REQUEST", *rt.Topic, rt.ErrorCode)
		}
	}
	if len(resp.Topics) != 4 {
		t.Errorf("cursor not in the topic list: %d topics answered, want 4", len(resp.Topics))
	}
}
