// Package kafkago_test drives an in-process Moldau broker with the unmodified segmentio/kafka-go
// client. kafka-go's Client.Fetch sends a sessionless full fetch as SessionID -1, SessionEpoch -1,
// which Moldau once answered FETCH_SESSION_ID_NOT_FOUND with no records (its Reader sends
// SessionID 0 and was not affected).
package kafkago_test

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"

	"github.com/moldau/moldau/internal/brokertest"
)

// produce creates topic with partitions and writes n messages to it with kafka-go.
func produce(ctx context.Context, t *testing.T, addr, topic string, partitions, n int) {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Errors[topic]; err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// consume reads until it has want distinct values or ctx ends.
func consume(ctx context.Context, t *testing.T, r *kafka.Reader, want int) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for len(got) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(got), want, err)
		}
		got[string(m.Value)] = true
	}
	return got
}

func TestPartitionReader(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 50
	produce(ctx, t, addr, "kg-partition", 1, n)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "kg-partition", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	got := consume(ctx, t, r, n)
	for i := 0; i < n; i++ {
		if !got["v"+strconv.Itoa(i)] {
			t.Fatalf("v%d missing", i)
		}
	}
}

func TestClientFetch(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 20
	produce(ctx, t, addr, "kg-fetch", 1, n)
	cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	var got []string
	for offset := int64(0); len(got) < n; {
		resp, err := cl.Fetch(ctx, &kafka.FetchRequest{Topic: "kg-fetch", Partition: 0, Offset: offset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Error != nil {
			t.Fatalf("fetch at %d: %v", offset, resp.Error)
		}
		for {
			r, err := resp.Records.ReadRecord()
			if err != nil {
				break
			}
			v, err := io.ReadAll(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(v))
			offset = r.Offset + 1
		}
		if resp.HighWatermark != n {
			t.Fatalf("high watermark %d, want %d", resp.HighWatermark, n)
		}
	}
	for i, v := range got {
		if v != "v"+strconv.Itoa(i) {
			t.Fatalf("record %d is %q", i, v)
		}
	}
}

func TestGroupReader(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 60
	produce(ctx, t, addr, "kg-group", 3, n)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "kg-group", GroupID: "kg", MaxWait: 100 * time.Millisecond,
		StartOffset: kafka.FirstOffset, CommitInterval: 0, HeartbeatInterval: 500 * time.Millisecond})
	defer r.Close()
	got := consume(ctx, t, r, n)
	if len(got) != n {
		t.Fatalf("got %d of %d", len(got), n)
	}
	// ReadMessage commits synchronously (CommitInterval 0): the group's offsets add up to what
	// was produced.
	cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "kg", Topics: map[string][]int{"kg-group": {0, 1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range resp.Topics["kg-group"] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
		if p.CommittedOffset > 0 {
			sum += p.CommittedOffset
		}
	}
	if sum != n {
		t.Fatalf("committed offsets add up to %d, want %d: %+v", sum, n, resp.Topics)
	}
}
