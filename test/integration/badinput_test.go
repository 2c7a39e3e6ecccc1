package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBadInput sends the running binary what a broken or hostile client would, and after each
// checks that a new connection is still served and that the data already written reads back
// intact. The answers are Apache Kafka's: frames that cannot be decoded, oversized frames and
// unknown API keys close the connection; bad batches and bad names get per-partition or per-topic
// error codes.
func TestBadInput(t *testing.T) {
	b := startBroker(t,
		"--override", "socket.request.max.bytes=1048576",
		"--override", "message.max.bytes=10000",
		"--override", "auto.create.topics.enable=false")
	const topic = "intact"
	createTopic(t, b.Addr, topic, 1, nil)
	var intact []string
	for _, r := range produceSync(t, b.Addr, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}, 20) {
		intact = append(intact, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value))
	}

	// stillServing: a fresh connection gets an ApiVersions answer, and the topic holds exactly
	// what was acknowledged.
	stillServing := func(t *testing.T) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "moldau-integration", "1"
		resp := dialWire(t, b.Addr).request(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
			t.Fatalf("ApiVersions on a new connection: %s, %d keys", codeName(resp.ErrorCode), len(resp.ApiKeys))
		}
		var got []string
		for _, r := range consumeAll(t, b.Addr, topic) {
			got = append(got, fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value))
		}
		if strings.Join(got, " ") != strings.Join(intact, " ") {
			t.Fatalf("topic %s now holds\n%v\nwant\n%v", topic, got, intact)
		}
	}
	stillServing(t)

	closes := []struct {
		name  string
		frame []byte // written as is
	}{
		{"garbage frame", frame(bytes.Repeat([]byte{0xff}, 64))},
		{"garbage body after a Produce v9 header", frame(append(requestHeader(0, 9, 1, "x"), bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16)...))},
		{"frame shorter than a request header", frame([]byte{0, 1, 2})},
		{"negative frame size", []byte{0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"frame size over socket.request.max.bytes", append(binary.BigEndian.AppendUint32(nil, 1048577), requestHeader(18, 3, 1, "x")...)},
		{"unknown API key 9999", frame(requestHeader(9999, 0, 1, "x"))},
		{"Metadata at unsupported version 999", frame(requestHeader(3, 999, 1, "x"))},
	}
	for _, c := range closes {
		t.Run(c.name, func(t *testing.T) {
			w := dialWire(t, b.Addr)
			w.writeRaw(c.frame)
			w.expectClosed(c.name)
			stillServing(t)
		})
	}

	t.Run("ApiVersions at unsupported version", func(t *testing.T) {
		// KIP-511: a v0 answer with UNSUPPORTED_VERSION and the broker's ApiVersions range; the
		// connection stays open.
		w := dialWire(t, b.Addr)
		w.writeFrame(requestHeader(18, 99, 42, "x"))
		body := w.readFrame()
		var resp kmsg.ApiVersionsResponse
		if corr := int32(binary.BigEndian.Uint32(body)); corr != 42 {
			t.Fatalf("correlation id %d, want 42", corr)
		}
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatalf("decode v0 ApiVersions response: %v", err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 || resp.ApiKeys[0].ApiKey != 18 {
			t.Errorf("got %s with keys %+v, want UNSUPPORTED_VERSION (35) and the ApiVersions range", codeName(resp.ErrorCode), resp.ApiKeys)
		}
		req := kmsg.NewPtrApiVersionsRequest() // the same connection still works
		req.SetVersion(0)
		if r := w.request(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
			t.Errorf("ApiVersions v0 after the retry answer: %s", codeName(r.ErrorCode))
		}
		stillServing(t)
	})

	cl := newClient(t, b.Addr)
	ctx := testContext(t, 60*time.Second)
	produce := func(t *testing.T, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		pr := resp.(*kmsg.ProduceResponse)
		if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
			t.Fatalf("produce response has %d topics", len(pr.Topics))
		}
		return pr.Topics[0].Partitions[0]
	}

	t.Run("hand-built batch accepted", func(t *testing.T) {
		// The control for the two cases below: the same builder, unmodified, is a valid batch.
		p := produce(t, topic, recordBatch(time.Now().UnixMilli(), [2]string{"raw", "batch"}))
		if p.ErrorCode != 0 || p.BaseOffset != int64(len(intact)) {
			t.Fatalf("got %s at offset %d, want NONE at offset %d", codeName(p.ErrorCode), p.BaseOffset, len(intact))
		}
		intact = append(intact, fmt.Sprintf("%d:raw=batch", len(intact)))
		stillServing(t)
	})

	t.Run("corrupt CRC", func(t *testing.T) {
		batch := recordBatch(time.Now().UnixMilli(), [2]string{"crc", "this value is about to change"})
		batch[len(batch)-3] ^= 0x20 // a byte of the value, after the CRC was computed
		if p := produce(t, topic, batch); p.ErrorCode != kerr.CorruptMessage.Code {
			t.Errorf("got %s, want CORRUPT_MESSAGE (2)", codeName(p.ErrorCode))
		}
		stillServing(t)
	})

	t.Run("batch over message.max.bytes", func(t *testing.T) {
		batch := recordBatch(time.Now().UnixMilli(), [2]string{"big", strings.Repeat("x", 12000)})
		if p := produce(t, topic, batch); p.ErrorCode != kerr.MessageTooLarge.Code {
			t.Errorf("%d-byte batch: got %s, want MESSAGE_TOO_LARGE (10)", len(batch), codeName(p.ErrorCode))
		}
		stillServing(t)
	})

	t.Run("invalid topic names", func(t *testing.T) {
		for _, name := range []string{"", ".", "..", "bad name", "bad/name", "bad\\name", "bäd", strings.Repeat("x", 250)} {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 10000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
			req.Topics = append(req.Topics, rt)
			resp, err := cl.Request(ctx, req)
			if err != nil {
				t.Fatalf("CreateTopics %q: %v", name, err)
			}
			ct := resp.(*kmsg.CreateTopicsResponse)
			if len(ct.Topics) != 1 || ct.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
				t.Errorf("CreateTopics %q: %+v, want INVALID_TOPIC_EXCEPTION (17)", name, ct.Topics)
			}
		}
		stillServing(t)
	})

	t.Run("unknown topic without auto-create", func(t *testing.T) {
		batch := recordBatch(time.Now().UnixMilli(), [2]string{"k", "v"})
		if p := produce(t, "nosuch", batch); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("produce to nosuch: got %s, want UNKNOWN_TOPIC_OR_PARTITION (3)", codeName(p.ErrorCode))
		}
		checkNotAutoCreated(t, b.Addr, "nosuch")
		stillServing(t)
	})
	b.stop()
}

// frame prefixes body with its size.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// metadataAutoCreate asks Metadata for topic with auto-creation allowed (kadm and kgo's producer
// do not allow it) and returns the topic's error code and partition count.
func metadataAutoCreate(t *testing.T, addr, topic string) (int16, int) {
	t.Helper()
	code, n := metadataTopic(t, addr, topic, true)
	if code == kerr.LeaderNotAvailable.Code && n == 0 {
		// As in Kafka, the response that creates the topic answers LEADER_NOT_AVAILABLE without
		// partitions; the next one describes it.
		code, n = metadataTopic(t, addr, topic, false)
	}
	return code, n
}

// metadataTopic asks Metadata for one topic and returns its error code and partition count.
func metadataTopic(t *testing.T, addr, topic string, autoCreate bool) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := newClient(t, addr).Request(testContext(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	md := resp.(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 {
		t.Fatalf("metadata for %s: %d topics", topic, len(md.Topics))
	}
	return md.Topics[0].ErrorCode, len(md.Topics[0].Partitions)
}

// checkNotAutoCreated expects Metadata with auto-creation allowed to answer
// UNKNOWN_TOPIC_OR_PARTITION for topic, and the topic to be absent afterwards.
func checkNotAutoCreated(t *testing.T, addr, topic string) {
	t.Helper()
	if code, _ := metadataAutoCreate(t, addr, topic); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata for %s with auto-creation allowed: %s, want UNKNOWN_TOPIC_OR_PARTITION (3)", topic, codeName(code))
	}
	topics, err := kadm.NewClient(newClient(t, addr)).ListTopics(testContext(t, 30*time.Second))
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if topics.Has(topic) {
		t.Errorf("topic %s was created", topic)
	}
}
