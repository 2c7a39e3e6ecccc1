package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzTopicID is the id of the topic the fuzzer's base image holds, so that mutated seeds name it.
var fuzzTopicID = UUID{0: 0x6b, 6: 0x40, 8: 0x80, 15: 7}

// metadataSeeds are metadata log entries: each record type as the controller writes it, the
// batches that build the fuzzer's base image, and some that do not decode or apply.
func metadataSeeds() [][]byte {
	v := "compact"
	batches := [][]Record{
		baseBatch(),
		{&RegisterBrokerRecord{NodeID: 2, Host: "h2", Port: 9093, Rack: "r2"}},
		{&TopicRecord{Name: "new", TopicID: UUID{0: 1, 15: 2}},
			&PartitionRecord{TopicID: UUID{0: 1, 15: 2}, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
		{&PartitionRecord{TopicID: fuzzTopicID, Partition: 2, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}},
		{&PartitionRecord{TopicID: fuzzTopicID, Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 5}},
		{&RemoveTopicRecord{TopicID: fuzzTopicID}},
		{&RemoveTopicRecord{TopicID: fuzzTopicID}, &TopicRecord{Name: "orders", TopicID: UUID{0: 3, 15: 3}}},
		{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Key: "cleanup.policy", Value: &v}},
		{&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Key: "retention.ms"}},
		{&ConfigRecord{ResourceType: ResourceBroker, ResourceName: "1", Key: "log.retention.ms", Value: &v}},
		{&ConfigRecord{ResourceType: ResourceBroker, Key: "log.retention.ms"}},
		{&ProducerIDsRecord{BrokerID: 1, NextProducerID: 2000}},
		{&ClusterIDRecord{ClusterID: "other"}},
		{&RegisterBrokerRecord{NodeID: 3, Host: "h3", Port: 9094, Rack: "r3", IncarnationID: UUID{0: 9, 15: 9},
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h3", Port: 9094}}, Fenced: true}},
		{&RegisterBrokerRecord{NodeID: 1, Host: "h", Port: 9092, BrokerEpoch: 1, InControlledShutdown: true,
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9092}, {Name: "SSL", Host: "h", Port: 9093, SecurityProtocol: 1}}}},
		{&BrokerChangeRecord{NodeID: 1, BrokerEpoch: 1, Fenced: boolPtr(true)}},
		{&BrokerChangeRecord{NodeID: 1, BrokerEpoch: 1, InControlledShutdown: boolPtr(true)}},
		{&BrokerChangeRecord{NodeID: 1, BrokerEpoch: 7, Fenced: boolPtr(false)}},
		{&PartitionChangeRecord{TopicID: fuzzTopicID, Partition: 0, Leader: -1, ISR: []int32{}, ELR: []int32{1}, LeaderEpoch: 1, PartitionEpoch: 1}},
		{&PartitionChangeRecord{TopicID: fuzzTopicID, Partition: 1, Leader: 1, ISR: []int32{1}, LeaderRecoveryState: LeaderRecovering, LeaderEpoch: 1, PartitionEpoch: 1}},
		{&PartitionChangeRecord{TopicID: fuzzTopicID, Partition: 1, Leader: 2, ISR: []int32{2}, LeaderEpoch: 1, PartitionEpoch: 1}},
	}
	var out [][]byte
	for _, b := range batches {
		data, err := EncodeBatch(b)
		if err != nil {
			panic(err)
		}
		out = append(out, data)
	}
	return append(out,
		[]byte(`{"v":1,"records":[]}`),
		[]byte(`{"v":2,"records":[]}`),
		[]byte(`{"v":1,"records":[{"type":"nope","v":1}]}`),
		[]byte(`{"v":1,"records":[{"type":"partition","v":1,"topicId":"short"}]}`),
		[]byte(`{"v":1,"records":[{"type":"partition","v":1,"partition":1e10}]}`),
		[]byte(`not json`),
	)
}

// baseBatch builds the fuzzer's base image: a cluster id, a broker, a topic with two partitions
// and a config, and producer ids.
func baseBatch() []Record {
	v := "1000"
	return []Record{
		&ClusterIDRecord{ClusterID: "fuzz-cluster"},
		&RegisterBrokerRecord{NodeID: 1, Host: "localhost", Port: 9092},
		&TopicRecord{Name: "orders", TopicID: fuzzTopicID},
		&PartitionRecord{TopicID: fuzzTopicID, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&PartitionRecord{TopicID: fuzzTopicID, Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Key: "retention.ms", Value: &v},
		&ProducerIDsRecord{BrokerID: 1, NextProducerID: 1000},
	}
}

func snapshotOf(t *testing.T, im *Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := im.writeJSON(&buf); err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	return buf.String()
}

// FuzzDecodeBatch feeds arbitrary bytes to the metadata log decoder and applies what decodes to
// an empty image and to a populated one. Nothing may panic; an entry either decodes or fails with
// ErrBadRecord; what decodes survives an encode/decode round trip; applying never modifies the
// image it starts from (the copy-on-write invariant of published images), fails only with
// ErrBadRecord, and yields an image whose snapshot reads back as the same image.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range metadataSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("decode error does not wrap ErrBadRecord: %v", err)
			}
			return
		}
		again, err := EncodeBatch(recs)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		recs2, err := DecodeBatch(again)
		if err != nil {
			t.Fatalf("decode of the re-encoding %s: %v", again, err)
		}
		if !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("round trip changed the records:\n%#v\n%#v", recs, recs2)
		}

		base, err := emptyImage().applyBatch(1, baseBatch())
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range []*Image{emptyImage(), base} {
			before := snapshotOf(t, im)
			next, err := im.applyBatch(im.index+1, recs)
			if after := snapshotOf(t, im); after != before {
				t.Fatalf("applying modified the image it started from:\n%s\n%s", before, after)
			}
			if err != nil {
				if !errors.Is(err, ErrBadRecord) {
					t.Fatalf("apply error does not wrap ErrBadRecord: %v", err)
				}
				continue
			}
			if len(next.sorted) != len(next.topics) || len(next.topics) != len(next.topicsByID) {
				t.Fatalf("%d sorted topics, %d by name, %d by id", len(next.sorted), len(next.topics), len(next.topicsByID))
			}
			snap := snapshotOf(t, next)
			restored, err := readImageJSON(bytes.NewReader([]byte(snap)))
			if err != nil {
				t.Fatalf("snapshot of an applied image does not read back: %v\n%s", err, snap)
			}
			if s := snapshotOf(t, restored); s != snap {
				t.Fatalf("snapshot round trip differs:\n%s\n%s", snap, s)
			}
		}
	})
}

// TestWriteMetadataSeedCorpus regenerates testdata/fuzz/FuzzDecodeBatch when MOLDAU_WRITE_SEEDS=1.
func TestWriteMetadataSeedCorpus(t *testing.T) {
	if os.Getenv("MOLDAU_WRITE_SEEDS") == "" {
		t.Skip("set MOLDAU_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range metadataSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
