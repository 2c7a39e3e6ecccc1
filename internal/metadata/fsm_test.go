package metadata

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

func applyBatch(t *testing.T, f *FSM, index uint64, records ...Record) any {
	t.Helper()
	data, err := EncodeBatch(records)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
}

func TestFSMBatchIsAtomic(t *testing.T) {
	f := NewFSM()
	id := RandomUUID()
	before := f.Image()
	resp := applyBatch(t, f, 1,
		&TopicRecord{Name: "a", TopicID: id},
		&PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		&PartitionRecord{TopicID: id, Partition: 5, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, // gap: invalid
	)
	if err, _ := resp.(error); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("resp = %v", resp)
	}
	if f.Image() != before {
		t.Fatal("failed batch changed the image")
	}
	if resp := f.Apply(&raft.Log{Index: 2, Data: []byte("garbage")}); resp == nil {
		t.Fatal("garbage applied")
	}
	for _, bad := range [][]Record{
		{&PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1}}},                                    // unknown topic
		{&TopicRecord{Name: "a", TopicID: UUID{}}},                                                             // zero id
		{&ProducerIDsRecord{NextProducerID: 0}},                                                                // does not advance
		{&ConfigRecord{ResourceType: "group", ResourceName: "x", Key: "k"}},                                    // resource type
		{&ClusterIDRecord{ClusterID: "one"}, &ClusterIDRecord{ClusterID: "two"}},                               // set once
		{&TopicRecord{Name: "a", TopicID: id}, &PartitionRecord{TopicID: id, Replicas: []int32{1}, Leader: 2}}, // leader not a replica
		{&TopicRecord{Name: "a", TopicID: id}, &TopicRecord{Name: "b", TopicID: id}},                           // id reused
	} {
		if resp := applyBatch(t, f, 3, bad...); resp == nil {
			t.Errorf("batch %v applied", bad)
		}
	}
	if f.Image() != before {
		t.Fatal("failed batches changed the image")
	}
}

func TestSnapshotRestore(t *testing.T) {
	c := newTestController(t, 3)
	ctx := context.Background()
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "a", Partitions: 3, ReplicationFactor: 2, Configs: map[string]string{"x": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: ConsumerOffsetsTopic, Partitions: 2, ReplicationFactor: 1, Internal: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterBrokerConfigs(ctx, map[string]*string{"k": str("v")}); err != nil {
		t.Fatal(err)
	}
	if err := c.AlterNodeConfigs(ctx, 2, map[string]*string{"n": str("m")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.AllocateProducerIDs(ctx); err != nil {
		t.Fatal(err)
	}

	snap, err := c.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	f2 := NewFSM()
	ch := f2.Subscribe()
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("restore did not signal")
	}
	a, b := c.Image(), f2.Image()
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("restored image differs:\n%+v\n%+v", a, b)
	}
	if b.ClusterID() == "" || b.NextProducerID() != ProducerIDBlockSize || b.Index() != a.Index() {
		t.Fatalf("restored %q %d %d", b.ClusterID(), b.NextProducerID(), b.Index())
	}
	if err := f2.Restore(io.NopCloser(bytes.NewReader([]byte(`{"v":99}`)))); err == nil {
		t.Fatal("unsupported snapshot version accepted")
	}
}

type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }
