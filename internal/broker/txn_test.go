package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
)

// retryTxn sends req until its error code is not a retriable coordinator one (the topic being
// created, its partitions loading), with a deadline.
func retryTxn[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request, code func(R) int16) R {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw, err := cl.Request(context.Background(), req)
		if err == nil {
			resp := raw.(R)
			switch c := code(resp); c {
			case kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.ConcurrentTransactions.Code:
				if time.Now().After(deadline) {
					t.Fatalf("%T: still %v", req, kerr.ErrorForCode(c))
				}
			default:
				return resp
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%T: %v", req, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func initTxn(t *testing.T, cl *kgo.Client, id string) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
	resp := retryTxn(t, cl, req, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode })
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId %s: %v", id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func describeTxn(t *testing.T, cl *kgo.Client, id string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	adm := kadm.NewClient(cl)
	d, err := adm.DescribeTransactions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := d[id]
	if !ok || st.Err != nil {
		t.Fatalf("describe %s: %+v", id, st)
	}
	out := kmsg.NewDescribeTransactionsResponseTransactionState()
	out.State, out.ProducerID, out.ProducerEpoch, out.TimeoutMillis = st.State, st.ProducerID, st.ProducerEpoch, st.TimeoutMillis
	for t, ps := range st.Topics {
		tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		tt.Topic = t
		for p := range ps {
			tt.Partitions = append(tt.Partitions, p)
		}
		out.Topics = append(out.Topics, tt)
	}
	return out
}

// TestTxnCoordinatorSingleNode: a node alone coordinates transactions out of the box: the
// first FindCoordinator for a transactional id creates __transaction_state (one replica, so
// acks=all writes succeed), InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn
// work, and the state survives a restart (it is in __transaction_state).
func TestTxnCoordinatorSingleNode(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir, "transaction.state.log.num.partitions", "3")
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey = 1, "tx"
	fresp := retryTxn(t, cl, fc, func(r *kmsg.FindCoordinatorResponse) int16 { return r.ErrorCode })
	if fresp.ErrorCode != 0 || fresp.NodeID != b.cfg.NodeID {
		t.Fatalf("FindCoordinator: %+v", fresp)
	}
	tp, ok := b.meta.Image().Topic(metadata.TransactionStateTopic)
	if !ok || len(tp.Partitions) != 3 || len(tp.Partitions[0].Replicas) != 1 || tp.Configs["cleanup.policy"] != "compact" || tp.Configs["min.insync.replicas"] != "1" {
		t.Fatalf("__transaction_state: %+v", tp)
	}

	ip := initTxn(t, cl, "tx")
	if ip.ProducerEpoch != 0 {
		t.Fatalf("first epoch %d", ip.ProducerEpoch)
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx", ip.ProducerID, ip.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0, 1}
	unknown := kmsg.NewAddPartitionsToTxnRequestTopic()
	unknown.Topic, unknown.Partitions = "nope", []int32{0}
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{at, unknown}
	aresp, err := add.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, rt := range aresp.Topics {
		for _, rp := range rt.Partitions {
			codes[rt.Topic] = rp.ErrorCode
		}
	}
	if codes["nope"] != kerr.UnknownTopicOrPartition.Code || codes["t"] != kerr.OperationNotAttempted.Code {
		t.Fatalf("add with an unknown topic: %v", codes)
	}
	add = kmsg.NewPtrAddPartitionsToTxnRequest() // kgo rewrites a request it sends (v4+ form)
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx", ip.ProducerID, ip.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{at}
	if aresp, err = add.RequestWith(context.Background(), cl); err != nil || aresp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("add: %+v %v", aresp, err)
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "tx", ip.ProducerID, ip.ProducerEpoch, "g"
	if resp, err := ao.RequestWith(context.Background(), cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("add offsets: %+v %v", resp, err)
	}
	st := describeTxn(t, cl, "tx")
	n := 0
	for _, tt := range st.Topics {
		n += len(tt.Partitions)
	}
	if st.State != "Ongoing" || st.ProducerID != ip.ProducerID || n != 3 {
		t.Fatalf("describe: %+v", st)
	}
	lresp, err := adm.ListTransactions(context.Background(), nil, nil)
	if err != nil || len(lresp) != 1 {
		t.Fatalf("list: %v %v", lresp, err)
	}

	// EndTxn: PrepareCommit, then the markers go to the leaders (WriteTxnMarkers, over the
	// inter-broker listener to this node itself) and the transaction completes.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx", ip.ProducerID, ip.ProducerEpoch, true
	if resp, err := end.RequestWith(context.Background(), cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %+v %v", resp, err)
	}
	waitFor(t, "the transaction to complete", func() bool { return describeTxn(t, cl, "tx").State == "CompleteCommit" })
	for _, p := range []int32{0, 1} {
		part := b.parts.Get("t", p)
		if part.LogEndOffset() != 1 {
			t.Fatalf("t-%d: log end %d, want 1 (the commit marker)", p, part.LogEndOffset())
		}
	}
	ip2 := initTxn(t, cl, "other")
	stopBroker(t, b)
	b = testBroker(t, dir, "transaction.state.log.num.partitions", "3")
	defer stopBroker(t, b)
	cl = client(t, b)
	again := initTxn(t, cl, "other")
	if again.ProducerID != ip2.ProducerID || again.ProducerEpoch != ip2.ProducerEpoch+1 {
		t.Fatalf("after restart: %+v, want producer id %d at epoch %d", again, ip2.ProducerID, ip2.ProducerEpoch+1)
	}
	if st := describeTxn(t, cl, "tx"); st.State != "CompleteCommit" || st.ProducerID != ip.ProducerID {
		t.Fatalf("after restart: %+v", st)
	}
}

// TestTransactionVersionFeature: a new cluster finalizes transaction.version 2 and ApiVersions
// advertises it (what makes franz-go and the Java client use KIP-890 part 2).
func TestTransactionVersionFeature(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	cl := client(t, b)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	var supported, finalized int16 = -1, -1
	for _, f := range resp.SupportedFeatures {
		if f.Name == "transaction.version" {
			supported = f.MaxVersion
		}
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" {
			finalized = f.MaxVersionLevel
		}
	}
	if supported != 2 || finalized != 2 {
		t.Fatalf("transaction.version supported up to %d, finalized %d; want 2 and 2", supported, finalized)
	}
}

// TestTxnVerifierBatches: concurrent verifications (what produce requests of many transactional
// producers ask a partition leader to do) are each answered with their own transaction's
// result, whether the coordinator holds the partition (nil), not (INVALID_TXN_STATE) or the
// epoch is stale (PRODUCER_FENCED).
func TestTxnVerifierBatches(t *testing.T) {
	b := testBroker(t, t.TempDir(), "transaction.state.log.num.partitions", "2")
	defer stopBroker(t, b)
	cl := client(t, b)
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	const n = 12
	type producer struct {
		id    string
		pid   int64
		epoch int16
	}
	ps := make([]producer, n)
	for i := range ps {
		id := "v" + string(rune('a'+i))
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorType, fc.CoordinatorKey = 1, id
		retryTxn(t, cl, fc, func(r *kmsg.FindCoordinatorResponse) int16 { return r.ErrorCode })
		ip := initTxn(t, cl, id)
		ps[i] = producer{id, ip.ProducerID, ip.ProducerEpoch}
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ip.ProducerID, ip.ProducerEpoch
		at := kmsg.NewAddPartitionsToTxnRequestTopic()
		at.Topic, at.Partitions = "t", []int32{0}
		add.Topics = append(add.Topics, at)
		if resp, err := add.RequestWith(context.Background(), cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("add %s: %+v %v", id, resp, err)
		}
	}
	v := &txnVerifier{b: b}
	errs := make(chan error, 3*n)
	for _, p := range ps {
		for _, c := range []struct {
			tp    metadata.TopicPartition
			epoch int16
			want  error
		}{
			{metadata.TopicPartition{Topic: "t", Partition: 0}, p.epoch, nil},
			{metadata.TopicPartition{Topic: "t", Partition: 1}, p.epoch, kerr.InvalidTxnState},
			{metadata.TopicPartition{Topic: "t", Partition: 0}, p.epoch - 1, kerr.ProducerFenced},
		} {
			go func() {
				got, err := v.AddPartitions(context.Background(), p.id, p.pid, c.epoch, []metadata.TopicPartition{c.tp}, true)
				switch {
				case err != nil:
					errs <- err
				case got[c.tp] != c.want && !errors.Is(got[c.tp], c.want):
					errs <- fmt.Errorf("%s epoch %d %v: %v, want %v", p.id, c.epoch, c.tp, got[c.tp], c.want)
				default:
					errs <- nil
				}
			}()
		}
	}
	for range 3 * n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// waitFor waits up to 15 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
