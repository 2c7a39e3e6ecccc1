package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func alterReplicaLogDir(t *testing.T, cl *kgo.Client, topic string, p int32, dir string) int16 {
	t.Helper()
	req := kmsg.NewPtrAlterReplicaLogDirsRequest()
	d := kmsg.NewAlterReplicaLogDirsRequestDir()
	d.Dir = dir
	rt := kmsg.NewAlterReplicaLogDirsRequestDirTopic()
	rt.Topic, rt.Partitions = topic, []int32{p}
	d.Topics = append(d.Topics, rt)
	req.Dirs = append(req.Dirs, d)
	// To the broker itself (kgo would answer an unknown partition without asking).
	raw, err := cl.SeedBrokers()[0].Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.AlterReplicaLogDirsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("AlterReplicaLogDirs answered %+v", resp.Topics)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestAlterReplicaLogDirs: on a broker with two log dirs, a partition moves to the other dir
// while acks=all producers write to it; every acknowledged record is read back once, the old dir
// holds nothing of it, DescribeLogDirs lists it in the new dir, and it stays there after a
// restart. Bad requests get Kafka's per-partition errors.
func TestAlterReplicaLogDirs(t *testing.T) {
	base := t.TempDir()
	d1, d2 := filepath.Join(base, "d1"), filepath.Join(base, "d2")
	b := testBroker(t, d1+","+d2)
	defer func() { stopBroker(t, b) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"segment.bytes": kadm.StringPtr("2000")}, "moving"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	src := b.parts.DirOf("moving", 0)
	dest := d1
	if src == d1 {
		dest = d2
	}

	// Producers write throughout the move.
	pcl := client(t, b, kgo.DefaultProduceTopic("moving"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	var acked sync.Map
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("r-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i)
			if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: 0}).FirstErr(); err != nil {
				continue // retried by the next record; only acknowledged ones must be read back
			}
			acked.Store(v, true)
			n.Add(1)
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("200 acknowledged records", func() bool { return n.Load() >= 200 })

	cl := client(t, b)
	if code := alterReplicaLogDir(t, cl, "moving", 0, dest); code != 0 {
		t.Fatalf("AlterReplicaLogDirs: %v", kerr.ErrorForCode(code))
	}
	waitFor("the replica in "+dest, func() bool { return b.parts.DirOf("moving", 0) == dest && len(b.parts.Moves()) == 0 })
	before := n.Load()
	waitFor("acknowledgements after the move", func() bool { return n.Load() >= before+100 })
	close(stop)
	wg.Wait()

	if _, err := os.Stat(filepath.Join(src, "moving-0")); !os.IsNotExist(err) {
		t.Fatalf("old copy left in %s: %v", src, err)
	}
	got := consumeMoved(t, b, int(n.Load()))
	acked.Range(func(k, _ any) bool {
		if got[k.(string)] == nil {
			t.Errorf("acknowledged record %s lost", k)
		}
		return true
	})
	if int64(len(got)) != n.Load() {
		t.Errorf("read %d distinct records, %d acknowledged", len(got), n.Load())
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := dirs[1].Lookup(dest, "moving", 0); !ok {
		t.Fatalf("DescribeLogDirs does not list moving-0 in %s: %+v", dest, dirs)
	}
	if _, ok := dirs[1].Lookup(src, "moving", 0); ok {
		t.Fatalf("DescribeLogDirs still lists moving-0 in %s", src)
	}

	// Kafka's errors.
	for _, tc := range []struct {
		topic string
		dir   string
		want  *kerr.Error
	}{{"moving", "/no/such/dir", kerr.LogDirNotFound}, {"nope", dest, kerr.ReplicaNotAvailable}} {
		if code := alterReplicaLogDir(t, cl, tc.topic, 0, tc.dir); code != tc.want.Code {
			t.Errorf("%s-0 to %s: %v, want %v", tc.topic, tc.dir, kerr.ErrorForCode(code), tc.want)
		}
	}
	if code := alterReplicaLogDir(t, cl, "moving", 0, dest); code != 0 {
		t.Errorf("to the dir it is in: %v", kerr.ErrorForCode(code))
	}

	// A restart finds it in the new dir with every record.
	stopBroker(t, b)
	b = testBroker(t, d1+","+d2)
	if got := b.parts.DirOf("moving", 0); got != dest {
		t.Fatalf("after restart in %q", got)
	}
	if again := consumeAll(t, b, "moving", len(got)); len(again) != len(got) {
		t.Fatalf("after restart %d records, want %d", len(again), len(got))
	}
}

// TestDescribeLogDirsFutureReplica: while a replica is being copied to another log dir,
// DescribeLogDirs lists the copy there as a future replica.
func TestDescribeLogDirsFutureReplica(t *testing.T) {
	base := t.TempDir()
	d1, d2 := filepath.Join(base, "d1"), filepath.Join(base, "d2")
	b := testBroker(t, d1+","+d2)
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "f"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := client(t, b, kgo.DefaultProduceTopic("f")).ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	src := b.parts.DirOf("f", 0)
	dest := d1
	if src == d1 {
		dest = d2
	}
	mv, err := b.parts.StartMove("f", 0, dest) // the move, without the goroutine that finishes it
	if err != nil || mv == nil {
		t.Fatal(mv, err)
	}
	defer mv.Abort()
	if err := mv.Copy(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := kmsg.NewPtrDescribeLogDirsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, d := range resp.Dirs {
		for _, rt := range d.Topics {
			for _, p := range rt.Partitions {
				if rt.Topic == "f" {
					found[fmt.Sprintf("%s future=%v size>0=%v", d.Dir, p.IsFuture, p.Size > 0)] = true
				}
			}
		}
	}
	if len(found) != 2 || !found[src+" future=false size>0=true"] || !found[dest+" future=true size>0=true"] {
		t.Fatalf("DescribeLogDirs while moving: %v", found)
	}
	// A move elsewhere while this one runs is refused.
	if code := alterReplicaLogDir(t, cl, "f", 0, src); code != kerr.ReassignmentInProgress.Code {
		t.Fatalf("a second move: %v", kerr.ErrorForCode(code))
	}
}

func consumeMoved(t *testing.T, b *Broker, n int) map[string]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"moving": {0: kgo.NewOffset().AtStart()}}))
	got := make(map[string]*kgo.Record)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	return got
}

// twoDirCluster is testCluster with two log dirs per node (<tmp>/n<id>a,<tmp>/n<id>b).
func twoDirCluster(t *testing.T, n int) ([]*Broker, func(id int) (string, string)) {
	t.Helper()
	base := t.TempDir()
	dirs := func(id int) (string, string) {
		return filepath.Join(base, fmt.Sprintf("n%da", id)), filepath.Join(base, fmt.Sprintf("n%db", id))
	}
	ctrl := freeAddrs(t, n)
	var voters []string
	for i, a := range ctrl {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, a))
	}
	brokers := make([]*Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		a, bdir := dirs(i + 1)
		cfg := testConfig(t, a+","+bdir,
			"node.id", fmt.Sprint(i+1),
			"listeners", "PLAINTEXT://127.0.0.1:0,CONTROLLER://"+ctrl[i],
			"controller.listener.names", "CONTROLLER",
			"controller.quorum.voters", strings.Join(voters, ","),
			"broker.session.timeout.ms", "3000",
			"broker.heartbeat.interval.ms", "500")
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			brokers[i], errs[i] = Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			stopBroker(t, b)
		}
	})
	return brokers, dirs
}

// TestClusterAlterReplicaLogDirs: in a three-node cluster (RF 3, min ISR 2), the leader's and a
// follower's replicas of a partition move to their other log dirs while acks=all producers
// write; every acknowledged record is read back once and the ISR is full again afterwards.
func TestClusterAlterReplicaLogDirs(t *testing.T) {
	brokers, dirs := twoDirCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	cl := clusterClient(t, brokers)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2"), "segment.bytes": kadm.StringPtr("4000")}, "mv"); err != nil {
		t.Fatal(err)
	}
	fullISR := func(b *Broker) bool {
		tp, ok := b.Controller().Image().Topic("mv")
		return ok && len(tp.Partitions[0].ISR) == 3
	}
	waitCluster(t, brokers, "mv-0 fully in sync", fullISR)
	mvTopic, _ := brokers[0].Controller().Image().Topic("mv")
	leaderID := mvTopic.Partitions[0].Leader

	pcl := clusterClient(t, brokers, kgo.DefaultProduceTopic("mv"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	var acked sync.Map
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := fmt.Sprintf("c-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i)
			if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err == nil {
				acked.Store(v, true)
				n.Add(1)
			}
		}
	}()
	waitN := func(k int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for n.Load() < k {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d records acknowledged", n.Load(), k)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitN(200)
	for _, id := range []int32{leaderID, leaderID%3 + 1} {
		b := brokers[id-1]
		a, bd := dirs(int(id))
		dest := a
		if b.parts.DirOf("mv", 0) == a {
			dest = bd
		}
		if code := alterReplicaLogDir(t, client(t, b), "mv", 0, dest); code != 0 {
			t.Fatalf("node %d: %v", id, kerr.ErrorForCode(code))
		}
		deadline := time.Now().Add(30 * time.Second)
		for b.parts.DirOf("mv", 0) != dest || len(b.parts.Moves()) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d: replica not moved to %s", id, dest)
			}
			time.Sleep(10 * time.Millisecond)
		}
		waitN(n.Load() + 100)
	}
	close(stop)
	wg.Wait()
	waitCluster(t, brokers, "mv-0 fully in sync after the moves", fullISR)

	ccl := clusterClient(t, brokers, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mv": {0: kgo.NewOffset().AtStart()}}))
	got := map[string]bool{}
	for int64(len(got)) < n.Load() {
		fs := ccl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n.Load(), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	acked.Range(func(k, _ any) bool {
		if !got[k.(string)] {
			t.Errorf("acknowledged record %s lost", k)
		}
		return true
	})
}
