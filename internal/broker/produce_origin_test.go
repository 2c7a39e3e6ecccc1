package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/record"
)

// TestClientControlBatchRefused: a Produce carrying a transaction marker (a control batch), or a
// transactional batch in a request without a transactional id, is refused with Kafka's codes,
// and nothing is appended.
func TestClientControlBatchRefused(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	initResp, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || initResp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %+v", err, initResp)
	}
	for _, tc := range []struct {
		name  string
		txnID *string
		spec  record.BatchSpec
		want  *kerr.Error
	}{
		// An abort marker: control record key version 0, type 0.
		{"control", kmsg.StringPtr("t"), record.BatchSpec{Control: true, Transactional: true, BaseSequence: -1,
			Records: []record.Record{{Key: []byte{0, 0, 0, 0}, Value: []byte{0, 0, 0, 0, 0, 0}}}}, kerr.InvalidRecord},
		{"transactional", nil, record.BatchSpec{Transactional: true, BaseSequence: 0,
			Records: []record.Record{{Value: []byte("v")}}}, kerr.TransactionalIDAuthorizationFailed},
	} {
		tc.spec.BaseTimestamp = time.Now().UnixMilli()
		tc.spec.ProducerID, tc.spec.ProducerEpoch = initResp.ProducerID, initResp.ProducerEpoch
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 5000
		req.TransactionID = tc.txnID
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "tx"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = record.Build(tc.spec)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != tc.want.Code {
			t.Errorf("%s batch: error %d, want %s", tc.name, code, tc.want.Message)
		}
	}
	end, err := adm.ListEndOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("tx", 0); o.Offset != 0 {
		t.Fatalf("end offset %d after refused batches, want 0", o.Offset)
	}
}
