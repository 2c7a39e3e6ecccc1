package metadata

import (
	"errors"
	"strings"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	v := "compact"
	id := RandomUUID()
	in := []Record{
		&RegisterBrokerRecord{NodeID: 1, Host: "localhost", Port: 9092, Rack: "r1"},
		&TopicRecord{Name: "orders", TopicID: id, Internal: true},
		&PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 4},
		&RemoveTopicRecord{TopicID: id},
		&ConfigRecord{ResourceType: ResourceTopic, ResourceName: "orders", Key: "cleanup.policy", Value: &v},
		&ConfigRecord{ResourceType: ResourceBroker, Key: "log.retention.ms"},
		&ProducerIDsRecord{BrokerID: 1, NextProducerID: 1000},
		&ClusterIDRecord{ClusterID: "abc"},
	}
	data, err := EncodeBatch(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `{"type":"topic","v":1,"name":"orders","topicId":"`+id.String()+`","internal":true}`) {
		t.Fatalf("unexpected encoding: %s", data)
	}
	out, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d records", len(out))
	}
	again, err := EncodeBatch(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Fatalf("re-encoding differs:\n%s\n%s", data, again)
	}
	if out[5].(*ConfigRecord).Value != nil {
		t.Fatal("nil config value did not survive")
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	for _, tc := range []string{
		`not json`,
		`{"v":2,"records":[]}`,
		`{"v":1,"records":[{"type":"nope","v":1}]}`,
		`{"v":1,"records":[{"type":"topic","v":9}]}`,
		`{"v":1,"records":[{"type":"topic","v":1,"topicId":"short"}]}`,
	} {
		if _, err := DecodeBatch([]byte(tc)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v, want ErrBadRecord", tc, err)
		}
	}
}

func TestUUID(t *testing.T) {
	seen := map[UUID]bool{}
	for range 1000 {
		u := RandomUUID()
		if seen[u] {
			t.Fatal("duplicate uuid")
		}
		seen[u] = true
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("not a v4 uuid: %x", u)
		}
		s := u.String()
		if len(s) != 22 || strings.HasPrefix(s, "-") {
			t.Fatalf("bad text form %q", s)
		}
		p, err := ParseUUID(s)
		if err != nil || p != u {
			t.Fatalf("parse %q: %v %x", s, err, p)
		}
	}
	if len(NewClusterID()) != 22 {
		t.Fatal("cluster id length")
	}
}
