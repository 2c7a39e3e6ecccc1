package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
)

// txnOffsetsClient drives one transactional producer's offset commits with raw requests, so a
// test sees the offsets between the TxnOffsetCommit and the marker.
type txnOffsetsClient struct {
	t     *testing.T
	cl    *kgo.Client
	txnID string
	group string
	tv2   bool // TxnOffsetCommit v5 adds the group implicitly; else AddOffsetsToTxn first
	pid   int64
	epoch int16
}

// retriable reports the errors a client retries while the coordinators settle.
func retriable(code int16) bool {
	switch code {
	case kerr.CoordinatorLoadInProgress.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code,
		kerr.ConcurrentTransactions.Code, kerr.UnknownTopicOrPartition.Code:
		return true
	}
	return false
}

// request sends req until its error code (code) is not retriable, for up to ctx's deadline.
func request[T kmsg.Response](ctx context.Context, t *testing.T, cl *kgo.Client, req kmsg.Request, code func(T) int16) T {
	t.Helper()
	for {
		resp, err := cl.Request(ctx, req)
		if err != nil {
			// A broker the test stopped may still be what the client's metadata names (as
			// coordinator or leader) for a moment: connection errors are retried like the
			// retriable codes, until ctx ends.
			if transportError(err) && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // polling a condition with a deadline (ctx)
				continue
			}
			t.Fatalf("%T: %v", req, err)
		}
		r := resp.(T)
		if c := code(r); !retriable(c) || ctx.Err() != nil {
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// transportError reports whether err is a failed connection (refused, reset, closed), not an
// answer.
func transportError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (c *txnOffsetsClient) init(ctx context.Context) {
	c.t.Helper()
	r := kmsg.NewPtrInitProducerIDRequest()
	r.TransactionalID = kmsg.StringPtr(c.txnID)
	r.TransactionTimeoutMillis = 60_000
	r.ProducerID, r.ProducerEpoch = c.pid, c.epoch
	resp := request(ctx, c.t, c.cl, r, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode })
	if resp.ErrorCode != 0 {
		c.t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	c.pid, c.epoch = resp.ProducerID, resp.ProducerEpoch
}

// commit commits offset at of topic/partition 0 in the producer's transaction.
func (c *txnOffsetsClient) commit(ctx context.Context, topic string, at int64) {
	c.t.Helper()
	if !c.tv2 {
		a := kmsg.NewPtrAddOffsetsToTxnRequest()
		a.TransactionalID, a.ProducerID, a.ProducerEpoch, a.Group = c.txnID, c.pid, c.epoch, c.group
		resp := request(ctx, c.t, c.cl, a, func(r *kmsg.AddOffsetsToTxnResponse) int16 { return r.ErrorCode })
		if resp.ErrorCode != 0 {
			c.t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group = c.txnID, c.pid, c.epoch, c.group
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Offset, rp.LeaderEpoch = at, -1
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	code := func(r *kmsg.TxnOffsetCommitResponse) int16 { return r.Topics[0].Partitions[0].ErrorCode }
	resp := request(ctx, c.t, c.cl, r, code)
	if code(resp) != 0 {
		c.t.Fatalf("TxnOffsetCommit v%d: %v", resp.Version, kerr.ErrorForCode(code(resp)))
	}
	if want := int16(5); c.tv2 != (resp.Version >= want) {
		c.t.Fatalf("TxnOffsetCommit v%d, want TV2 %v", resp.Version, c.tv2)
	}
}

func (c *txnOffsetsClient) end(ctx context.Context, commit bool) {
	c.t.Helper()
	r := kmsg.NewPtrEndTxnRequest()
	r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit = c.txnID, c.pid, c.epoch, commit
	resp := request(ctx, c.t, c.cl, r, func(r *kmsg.EndTxnResponse) int16 { return r.ErrorCode })
	if resp.ErrorCode != 0 {
		c.t.Fatalf("EndTxn: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if resp.Version >= 5 { // TV2: every transaction ends with an epoch bump
		c.pid, c.epoch = resp.ProducerID, resp.ProducerEpoch
	}
}

// stableOffset is an OffsetFetch of group's topic/0 with RequireStable: the offset and the
// partition's error code.
func stableOffset(ctx context.Context, t *testing.T, cl *kgo.Client, group, topic string) (int64, int16) {
	t.Helper()
	r := kmsg.NewPtrOffsetFetchRequest()
	r.RequireStable = true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	r.Groups = append(r.Groups, rg)
	r.Group = group
	r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	resp := request(ctx, t, cl, r, func(r *kmsg.OffsetFetchResponse) int16 {
		if r.Version >= 8 {
			return r.Groups[0].ErrorCode
		}
		return r.ErrorCode
	})
	if resp.Version < 7 {
		t.Fatalf("OffsetFetch v%d has no RequireStable", resp.Version)
	}
	if resp.Version >= 8 {
		p := resp.Groups[0].Topics[0].Partitions[0]
		return p.Offset, p.ErrorCode
	}
	p := resp.Topics[0].Partitions[0]
	return p.Offset, p.ErrorCode
}

// waitStable waits (10 s) until RequireStable answers offset want for group's topic/0: the
// transaction's marker reaches the coordinator after EndTxn returns.
func waitStable(ctx context.Context, t *testing.T, cl *kgo.Client, group, topic string, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		off, code := stableOffset(ctx, t, cl, group, topic)
		if code == 0 && off == want {
			return
		}
		if code != 0 && code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("OffsetFetch RequireStable: %v", kerr.ErrorForCode(code))
		}
		if time.Now().After(deadline) {
			t.Fatalf("RequireStable still answers offset %d (%v), want %d", off, kerr.ErrorForCode(code), want)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestTxnOffsetCommitUnstableCommitAbortRestart: a transaction's offsets are pending between the
// TxnOffsetCommit and the transaction's end (RequireStable: UNSTABLE_OFFSET_COMMIT; without it:
// the previous committed offset); a commit makes them the committed offset, an abort drops them;
// a restart of the coordinator replays the committed one and keeps an open transaction's pending,
// which its later commit completes. Once with transaction.version 2 (TxnOffsetCommit v5 adds the
// group) and once as a TV1 client (AddOffsetsToTxn, TxnOffsetCommit v3, EndTxn v3).
func TestTxnOffsetCommitUnstableCommitAbortRestart(t *testing.T) {
	for _, tv2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("tv2=%v", tv2), func(t *testing.T) {
			dir := t.TempDir()
			b := testBroker(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const topic = "in"
			if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			var opts []kgo.Opt
			if !tv2 {
				opts = append(opts, kgo.MaxVersions(kversion.V3_6_0()))
			}
			c := &txnOffsetsClient{t: t, cl: client(t, b, opts...), txnID: "tx", group: "g", tv2: tv2, pid: -1, epoch: -1}
			c.init(ctx)

			c.commit(ctx, topic, 5)
			if off, code := stableOffset(ctx, t, c.cl, "g", topic); code != kerr.UnstableOffsetCommit.Code || off != -1 {
				t.Fatalf("RequireStable before the commit: offset %d, %v", off, kerr.ErrorForCode(code))
			}
			adm := kadm.NewClient(c.cl)
			if o, ok := fetchOffsetsLoaded(ctx, t, adm, "g").Lookup(topic, 0); ok {
				t.Fatalf("a pending offset is listed as committed: %+v", o)
			}
			c.end(ctx, true)
			waitStable(ctx, t, c.cl, "g", topic, 5)

			c.commit(ctx, topic, 9)
			if _, code := stableOffset(ctx, t, c.cl, "g", topic); code != kerr.UnstableOffsetCommit.Code {
				t.Fatalf("RequireStable in the second transaction: %v", kerr.ErrorForCode(code))
			}
			c.end(ctx, false)
			waitStable(ctx, t, c.cl, "g", topic, 5)

			c.commit(ctx, topic, 12) // left open across the restart
			stopBroker(t, b)

			b = testBroker(t, dir)
			defer stopBroker(t, b)
			c.cl = client(t, b, opts...)
			if off, code := stableOffset(ctx, t, c.cl, "g", topic); code != kerr.UnstableOffsetCommit.Code || off != -1 {
				t.Fatalf("RequireStable after the restart, transaction open: offset %d, %v", off, kerr.ErrorForCode(code))
			}
			wantOffset(t, fetchOffsetsLoaded(ctx, t, kadm.NewClient(c.cl), "g"), topic, 0, 5)
			c.end(ctx, true)
			waitStable(ctx, t, c.cl, "g", topic, 12)
		})
	}
}

// TestGroupTransactSessionOffsets: franz-go's GroupTransactSession consumes, produces and commits
// its offsets in transactions: a committed transaction moves the group's offset (and the output
// holds its records for a read_committed consumer), an aborted one leaves it where it was.
func TestGroupTransactSessionOffsets(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "out"); err != nil {
		t.Fatal(err)
	}
	produce := func(from, n int) {
		t.Helper()
		p := client(t, b, kgo.DefaultProduceTopic("in"))
		for i := from; i < from+n; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(b.Addr().String()),
		kgo.TransactionalID("gts"),
		kgo.ConsumerGroup("gts-group"),
		kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic("out"),
		kgo.RequireStableFetchOffsets(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// transform polls until n records came in and produces each to "out" in a transaction.
	transform := func(n int, commit kgo.TransactionEndTry) bool {
		t.Helper()
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < n {
			fs := sess.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("polled %d of %d records", got, n)
			}
			if err := fs.Err(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				got++
				sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil)
			})
		}
		committed, err := sess.End(ctx, commit)
		if err != nil {
			t.Fatalf("End: %v", err)
		}
		return committed
	}
	produce(0, 10)
	if !transform(10, kgo.TryCommit) {
		t.Fatal("first transaction not committed")
	}
	waitStable(ctx, t, client(t, b), "gts-group", "in", 10)

	produce(10, 5)
	if transform(5, kgo.TryAbort) {
		t.Fatal("aborted transaction reported committed")
	}
	if off, code := stableOffset(ctx, t, client(t, b), "gts-group", "in"); code != 0 || off != 10 {
		t.Fatalf("after the abort: offset %d, %v; want 10", off, kerr.ErrorForCode(code))
	}
	// read_committed sees the committed transaction's ten records only.
	rc := client(t, b, kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for len(seen) < 10 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed saw %d of 10 records", len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for i := 0; i < 10; i++ {
		if n := seen["out-"+strconv.Itoa(i)]; n != 1 {
			t.Fatalf("out-%d seen %d times; all: %v", i, n, seen)
		}
	}
	if len(seen) != 10 {
		t.Fatalf("read_committed saw records of the aborted transaction: %v", seen)
	}
}

// TestClusterTxnOffsetsSurviveCoordinatorMove: in a three-node cluster a transaction's pending
// offsets are in the replicated __consumer_offsets partition; when the group coordinator's node
// stops with the transaction open, the partition's new leader loads them pending
// (UNSTABLE_OFFSET_COMMIT), and the transaction's commit, whose marker goes to the new leader,
// makes them the committed offset.
func TestClusterTxnOffsetsSurviveCoordinatorMove(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three live brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := clusterClient(t, brokers)
	if res, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "in"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	c := &txnOffsetsClient{t: t, cl: cl, txnID: "moving-tx", group: "moving", tv2: true, pid: -1, epoch: -1}
	c.init(ctx)
	c.commit(ctx, "in", 3)
	c.end(ctx, true)
	waitStable(ctx, t, cl, "moving", "in", 3)
	c.commit(ctx, "in", 8) // open while its group coordinator moves
	if _, code := stableOffset(ctx, t, cl, "moving", "in"); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("before the move: %v", kerr.ErrorForCode(code))
	}

	im := brokers[0].Controller().Image()
	offsets, _ := im.Topic(metadata.ConsumerOffsetsTopic)
	coordinator := offsets.Partitions[group.OffsetsPartition("moving", int32(len(offsets.Partitions)))].Leader
	var rest []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == coordinator {
			stopBroker(t, b)
			continue
		}
		rest = append(rest, b)
	}
	c.cl = clusterClient(t, rest)
	deadline := time.Now().Add(30 * time.Second)
	for {
		off, code := stableOffset(ctx, t, c.cl, "moving", "in")
		if code == kerr.UnstableOffsetCommit.Code {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new coordinator answers offset %d, %v; want UNSTABLE_OFFSET_COMMIT", off, kerr.ErrorForCode(code))
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	wantOffset(t, fetchOffsetsLoaded(ctx, t, kadm.NewClient(c.cl), "moving"), "in", 0, 3)
	c.end(ctx, true)
	waitStable(ctx, t, c.cl, "moving", "in", 8)
}
