package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/record"
)

// TestInitProducerIDCannotFenceOthers: a client that names another producer's id and epoch in
// InitProducerId (no transactional id) gets a fresh producer id, so producing with it does not
// fence that producer, which keeps producing.
func TestInitProducerIDCannotFenceOthers(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "f"); err != nil {
		t.Fatal(err)
	}
	victim := client(t, b, kgo.DefaultProduceTopic("f"), kgo.RecordRetries(2))
	if err := victim.ProduceSync(ctx, &kgo.Record{Value: []byte("v0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id, epoch, err := victim.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	req := kmsg.NewPtrInitProducerIDRequest()
	req.ProducerID, req.ProducerEpoch = id, epoch
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("init producer id naming %d/%d: %v %+v", id, epoch, err, resp)
	}
	if resp.ProducerID == id || resp.ProducerEpoch != 0 {
		t.Fatalf("naming producer %d epoch %d got producer %d epoch %d, want a fresh id at epoch 0",
			id, epoch, resp.ProducerID, resp.ProducerEpoch)
	}
	// The attacker produces with what it got.
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks = -1
	preq.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "f"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = record.Build(record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: resp.ProducerID,
		ProducerEpoch: resp.ProducerEpoch, BaseSequence: 0, Records: []record.Record{{Value: []byte("a")}}})
	rt.Partitions = append(rt.Partitions, rp)
	preq.Topics = append(preq.Topics, rt)
	presp, err := preq.RequestWith(ctx, cl)
	if err != nil || presp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("attacker produce: %v %+v", err, presp)
	}

	for i := range 3 {
		if err := victim.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("victim produce %d after another client named its producer id: %v", i, err)
		}
	}
	if id2, epoch2, err := victim.ProducerID(ctx); err != nil || id2 != id || epoch2 != epoch {
		t.Fatalf("victim's producer id %d/%d -> %d/%d (%v)", id, epoch, id2, epoch2, err)
	}
}
