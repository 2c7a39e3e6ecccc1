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
	if id := findTxnCoordinator(t, cl, "tx"); id != b.cfg.NodeID {
		t.Fatalf("FindCoordinator: node %d", id)
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
		findTxnCoordinator(t, cl, id)
		ip := initTxn(t, cl, id)
		ps[i] = producer{id, ip.ProducerID, ip.ProducerEpoch}
		addTxnPartitions(context.Background(), t, cl, id, ip, "t", 0)
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
func waitFor(t *testing.T, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, d := range detail {
				what += "; " + d()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// describeState is id's state as its coordinator describes it, "" while none answers.
func describeState(ctx context.Context, adm *kadm.Client, id string) (kadm.DescribedTransaction, bool) {
	d, err := adm.DescribeTransactions(ctx, id)
	if err != nil {
		return kadm.DescribedTransaction{}, false
	}
	st, ok := d[id]
	return st, ok && st.Err == nil
}

// TestClusterTxnCoordinatorFailover: __transaction_state is replicated (RF 3, min.isr 2); the
// coordinator of a transaction writes PrepareCommit and stops before its markers go out (they
// are held back); the new leader of the state partition loads the transaction and finishes the
// commit: every partition gets its marker and the transaction is CompleteCommit there.
func TestClusterTxnCoordinatorFailover(t *testing.T) {
	brokers := testCluster(t, 3, "transaction.state.log.num.partitions", "1")
	waitCluster(t, brokers, "three live brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := clusterClient(t, brokers)
	adm := kadm.NewClient(cl)
	if res, err := adm.CreateTopic(ctx, 3, 3, nil, "t"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	coordID := findTxnCoordinator(t, cl, "tx")
	waitCluster(t, brokers, "__transaction_state in every image", func(b *Broker) bool {
		_, ok := b.Controller().Image().Topic(metadata.TransactionStateTopic)
		return ok
	})
	ts, _ := brokers[0].Controller().Image().Topic(metadata.TransactionStateTopic)
	if len(ts.Partitions) != 1 || len(ts.Partitions[0].Replicas) != 3 || ts.Configs["min.insync.replicas"] != "2" {
		t.Fatalf("__transaction_state: %+v", ts)
	}
	coord, rest := splitNode(t, brokers, coordID)
	hold := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	coord.markers.gate.Store(&hold)

	ip := initTxn(t, cl, "tx")
	addTxnPartitions(ctx, t, cl, "tx", ip, "t", 0, 1, 2)
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx", ip.ProducerID, ip.ProducerEpoch, true
	endResp, err := end.RequestWith(ctx, cl)
	if err != nil || endResp.ErrorCode != 0 {
		t.Fatalf("EndTxn: %+v %v", endResp, err)
	}
	epoch := ip.ProducerEpoch
	if endResp.Version >= 5 { // TV2: the end bumped the epoch
		epoch = endResp.ProducerEpoch
		if epoch != ip.ProducerEpoch+1 {
			t.Fatalf("EndTxn v%d answered epoch %d, want %d", endResp.Version, epoch, ip.ProducerEpoch+1)
		}
	}
	if st, ok := describeState(ctx, adm, "tx"); !ok || st.State != "PrepareCommit" {
		t.Fatalf("with the markers held: %+v", st)
	}

	stopBroker(t, coord)
	restAdm := kadm.NewClient(clusterClient(t, rest))
	var last kadm.DescribedTransaction
	waitFor(t, "the new coordinator to complete the commit", func() bool {
		st, ok := describeState(ctx, restAdm, "tx")
		last = st
		return ok && st.State == "CompleteCommit" && st.ProducerID == ip.ProducerID && st.ProducerEpoch == epoch
	}, func() string { return fmt.Sprintf("last described %+v", last) })
	im := rest[0].Controller().Image()
	topic, _ := im.Topic("t")
	for _, p := range topic.Partitions {
		for _, b := range rest {
			if b.cfg.NodeID == p.Leader {
				if end := b.parts.Get("t", p.Partition).LogEndOffset(); end != 1 {
					t.Fatalf("t-%d on its leader %d: log end %d, want 1 (the commit marker)", p.Partition, p.Leader, end)
				}
			}
		}
	}
	// The new coordinator fences as the old one would have: the next epoch, same producer id.
	restCl := clusterClient(t, rest)
	if again := initTxn(t, restCl, "tx"); again.ProducerID != ip.ProducerID || again.ProducerEpoch != epoch+1 {
		t.Fatalf("init at the new coordinator: %+v", again)
	}
}

// TestTxnTimeoutAborts: a transaction left open past its transaction.timeout.ms is aborted by
// the coordinator (its markers written, the epoch bumped so the producer is fenced).
func TestTxnTimeoutAborts(t *testing.T) {
	b := testBroker(t, t.TempDir(), "transaction.state.log.num.partitions", "1",
		"transaction.abort.timed.out.transaction.cleanup.interval.ms", "50")
	defer stopBroker(t, b)
	cl := client(t, b)
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	findTxnCoordinator(t, cl, "slow")
	id := "slow"
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, 200
	ip := retryTxn(t, cl, req, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode })
	addTxnPartitions(context.Background(), t, cl, id, ip, "t", 0)
	waitFor(t, "the timeout abort", func() bool {
		st := describeTxn(t, cl, id)
		return st.State == "CompleteAbort" && st.ProducerEpoch == ip.ProducerEpoch+1
	})
	if end := b.parts.Get("t", 0).LogEndOffset(); end != 1 {
		t.Fatalf("t-0: log end %d, want 1 (the abort marker)", end)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ip.ProducerID, ip.ProducerEpoch, true
	if resp, err := end.RequestWith(context.Background(), cl); err != nil || resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout: %+v %v", resp, err)
	}
}

// addTxnPartitions adds partitions of topic to the transaction of id (ip: its InitProducerId
// answer) with AddPartitionsToTxn in its client form; every partition must be answered
// without an error.
func addTxnPartitions(ctx context.Context, t *testing.T, cl *kgo.Client, id string, ip *kmsg.InitProducerIDResponse, topic string, partitions ...int32) {
	t.Helper()
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ip.ProducerID, ip.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = topic, partitions
	add.Topics = append(add.Topics, at)
	resp, err := add.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("add %s: %v", id, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("add %s: %s-%d: %v", id, rt.Topic, rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
			}
		}
	}
}

// splitNode returns the broker of node id (the test fails without one) and the others.
func splitNode(t *testing.T, brokers []*Broker, id int32) (node *Broker, rest []*Broker) {
	t.Helper()
	for _, b := range brokers {
		if b.cfg.NodeID == id {
			node = b
		} else {
			rest = append(rest, b)
		}
	}
	if node == nil {
		t.Fatalf("node %d is not a node of the cluster", id)
	}
	return node, rest
}

// findTxnCoordinator looks up id's transaction coordinator (FindCoordinator key type 1, which
// creates __transaction_state on first use) until one answers.
func findTxnCoordinator(t *testing.T, cl *kgo.Client, id string) int32 {
	t.Helper()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey, fc.CoordinatorKeys = 1, id, []string{id}
	resp := retryTxn(t, cl, fc, func(r *kmsg.FindCoordinatorResponse) int16 {
		if len(r.Coordinators) == 1 {
			return r.Coordinators[0].ErrorCode
		}
		return r.ErrorCode
	})
	node, code := resp.NodeID, resp.ErrorCode
	if len(resp.Coordinators) == 1 {
		node, code = resp.Coordinators[0].NodeID, resp.Coordinators[0].ErrorCode
	}
	if code != 0 {
		t.Fatalf("FindCoordinator %s: %v", id, kerr.ErrorForCode(code))
	}
	return node
}

// TestTransactionalProducer: franz-go's transactional producer against one node, with
// transaction.version 2 (KIP-890 part 2: Produce v12 adds the partitions, EndTxn v5 bumps the
// epoch) and with transaction.version 0 (AddPartitionsToTxn, and the partition leader verifies
// the first write with the coordinator): committed records are read by a read_committed
// consumer, aborted ones are not; a read_uncommitted consumer reads both.
func TestTransactionalProducer(t *testing.T) {
	for _, tv := range []int16{2, 0} {
		t.Run(fmt.Sprintf("transaction.version=%d", tv), func(t *testing.T) {
			b := testBroker(t, t.TempDir(), "transaction.state.log.num.partitions", "2")
			defer stopBroker(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if tv != 2 {
				if err := b.meta.UpdateFeatures(ctx, []metadata.FeatureUpdate{{Name: metadata.FeatureTransactionVersion, Level: tv, UpgradeType: metadata.UpgradeTypeSafeDowngrade}}, false); err != nil {
					t.Fatal(err)
				}
			}
			adm := kadm.NewClient(client(t, b))
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, "out"); err != nil {
				t.Fatal(err)
			}
			prod := client(t, b, kgo.TransactionalID("producer"), kgo.DefaultProduceTopic("out"),
				kgo.TransactionTimeout(30*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			produce := func(commit bool, values ...string) {
				t.Helper()
				if err := prod.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for _, v := range values {
					if err := prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
						t.Fatalf("produce %s: %v", v, err)
					}
				}
				if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					t.Fatalf("end (commit=%v): %v", commit, err)
				}
			}
			produce(true, "c1", "c2", "c3")
			produce(false, "a1", "a2")
			produce(true, "c4", "c5")
			read := func(level kgo.IsolationLevel, want int) []string {
				t.Helper()
				cons := client(t, b, kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(level),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				var got []string
				for len(got) < want {
					fs := cons.PollFetches(ctx)
					if err := ctx.Err(); err != nil {
						t.Fatalf("read %v: %d of %d records: %v", got, len(got), want, err)
					}
					fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
				}
				return got
			}
			committed := read(kgo.ReadCommitted(), 5)
			for _, v := range committed {
				if v[0] != 'c' {
					t.Fatalf("read_committed read %v: an aborted record", committed)
				}
			}
			if all := read(kgo.ReadUncommitted(), 7); len(all) != 7 {
				t.Fatalf("read_uncommitted: %v", all)
			}
			dcl := client(t, b)
			var st kmsg.DescribeTransactionsResponseTransactionState
			waitFor(t, "the last commit to complete", func() bool {
				st = describeTxn(t, dcl, "producer")
				return st.State == "CompleteCommit"
			}, func() string { return fmt.Sprintf("%+v", st) })
			if tv == 2 && st.ProducerEpoch < 3 {
				t.Fatalf("TV2: epoch %d after three transactions, want it bumped at each end", st.ProducerEpoch)
			}
		})
	}
}
