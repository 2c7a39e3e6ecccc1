package broker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/cli"
)

// runCLI runs a moldau or kafka-* command in this process against the cluster and returns its
// output and exit code.
func runCLI(t *testing.T, ctx context.Context, name string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.RunContext(ctx, name, args, strings.NewReader(""), &out, &errOut)
	t.Logf("$ %s %s\n%s%s(exit %d)", name, strings.Join(args, " "), out.String(), errOut.String(), code)
	return out.String() + errOut.String(), code
}

func seedsOf(brokers []*Broker) string {
	var s []string
	for _, b := range brokers {
		s = append(s, b.Addr().String())
	}
	return strings.Join(s, ",")
}

// replicasIn returns a partition's replicas in every node's image, when all agree.
func replicasOf(b *Broker, topic string, p int32) []int32 {
	tm, ok := b.Controller().Image().Topic(topic)
	if !ok || int(p) >= len(tm.Partitions) {
		return nil
	}
	return tm.Partitions[p].Replicas
}

// checkAllRead consumes topic from the start and fails unless every acknowledged record is read.
func checkAllRead(t *testing.T, ctx context.Context, brokers []*Broker, topic string, acked map[string]bool) {
	t.Helper()
	cons := clusterClient(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	missing := len(acked)
	for missing > 0 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d acknowledged records: %v", len(acked)-missing, len(acked), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if acked[v] && !seen[v] {
				seen[v] = true
				missing--
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitForCond(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterMoveCommands runs the operator's commands against four in-process nodes under
// acks=all load: kafka-reassign-partitions --execute with a throttle and --verify until it is
// done (throttles removed), moldau partition move --wait ({1,2,3} -> {2,3,4}), moldau broker
// decommission 4, then moldau cluster rebalance giving node 4 its share back; no acknowledged
// record is lost, and the moved-away replicas' files are gone.
func TestClusterMoveCommands(t *testing.T) {
	// Three voters and a broker-only node: a four-voter cluster loses its quorum in the cleanup
	// with two nodes still up (testClusterPlusBroker).
	brokers := testClusterPlusBroker(t, "replica.lag.time.max.ms", "2000")
	waitCluster(t, brokers, "four live brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	seeds := seedsOf(brokers)
	byID := map[int32]*Broker{}
	for _, b := range brokers {
		byID[b.cfg.NodeID] = b
	}
	if out, code := runCLI(t, ctx, "kafka-topics", "--bootstrap-server", seeds, "--create", "--topic", "moves",
		"--replica-assignment", "1:2:3,2:3:1", "--config", "min.insync.replicas=2"); code != 0 {
		t.Fatalf("create: %s", out)
	}
	waitCluster(t, brokers, "the topic in every image", func(b *Broker) bool { return len(replicasOf(b, "moves", 1)) == 3 })
	// An acks=all producer (reassign_test.go's) writes to both partitions all along.
	load := startLoad(ctx, clusterClient(t, brokers, kgo.DefaultProduceTopic("moves"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MetadataMinAge(100*time.Millisecond)))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			load.finish()
		}
	})
	waitForCond(t, 20*time.Second, "records acknowledged", func() bool { return load.count() >= 200 })

	// kafka-reassign-partitions: moves-1 {2,3,1} -> {2,3,4} with a throttle, verified.
	dir := t.TempDir()
	js := filepath.Join(dir, "move.json")
	if err := os.WriteFile(js, []byte(`{"version":1,"partitions":[{"topic":"moves","partition":1,"replicas":[2,3,4]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, ctx, "kafka-reassign-partitions", "--bootstrap-server", seeds, "--execute", "--reassignment-json-file", js, "--throttle", "50000000")
	if code != 0 || !strings.Contains(out, "Successfully started partition reassignment for moves-1") ||
		!strings.Contains(out, "The inter-broker throttle limit was set to 50000000 B/s") {
		t.Fatalf("execute: %s", out)
	}
	adm := kadm.NewClient(clusterClient(t, brokers))
	rc, err := adm.DescribeTopicConfigs(ctx, "moves")
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := rc.On("moves", nil)
	throttled := map[string]string{}
	for _, c := range cfg.Configs {
		if strings.Contains(c.Key, "throttled.replicas") && c.Value != nil {
			throttled[c.Key] = *c.Value
		}
	}
	if throttled["leader.replication.throttled.replicas"] != "1:1,1:2,1:3" || throttled["follower.replication.throttled.replicas"] != "1:4" {
		t.Errorf("topic throttles while moving: %v", throttled)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code = runCLI(t, ctx, "kafka-reassign-partitions", "--bootstrap-server", seeds, "--verify", "--reassignment-json-file", js)
		if code != 0 {
			t.Fatalf("verify: %s", out)
		}
		if strings.Contains(out, "Reassignment of partition moves-1 is completed.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moves-1 did not complete: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(out, "Clearing broker-level throttles on brokers 1,2,3,4\nClearing topic-level throttles on topic moves\n") {
		t.Errorf("verify did not clear the throttles: %s", out)
	}
	// The node that answered the alteration has applied it; the one DescribeConfigs asks may
	// be a few milliseconds behind.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rc, _ = adm.DescribeTopicConfigs(ctx, "moves")
		cfg, _ = rc.On("moves", nil)
		var left []string
		for _, c := range cfg.Configs {
			if strings.Contains(c.Key, "throttled.replicas") && c.Value != nil && *c.Value != "" && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				left = append(left, c.Key+"="+*c.Value)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("throttles left 10 s after verify: %v", left)
		}
	}

	// moldau partition move: moves-0 {1,2,3} -> {2,3,4}; its leader (1) leaves. A MiB more in
	// it (Kafka's windowed rate lets a fresh quota's first seconds through in a burst, so the
	// 256 KiB/s throttle does not slow this much).
	bulk := clusterClient(t, brokers, kgo.DefaultProduceTopic("moves"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 64 {
		var rs []*kgo.Record
		for range 16 {
			rs = append(rs, &kgo.Record{Partition: 0, Value: []byte(strings.Repeat("b", 1000))})
		}
		if err := bulk.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("bulk produce: %v", err)
		}
	}
	out, code = runCLI(t, ctx, "partition", "move", "moves:0", "--to", "2,3,4", "--throttle", "262144", "--wait", "-b", seeds)
	if code != 0 || !strings.Contains(out, "Moving moves-0 from 1,2,3 to 2,3,4 (adding 4, removing 1; ") ||
		!strings.Contains(out, "Reassignment of partition moves-0 is completed.") ||
		!strings.Contains(out, "Clearing topic-level throttles on topic moves") {
		for _, b := range brokers {
			tm, _ := b.Controller().Image().Topic("moves")
			t.Logf("node %d: %+v", b.cfg.NodeID, tm.Partitions[0])
		}
		t.Fatalf("partition move: %s", out)
	}
	waitCluster(t, brokers, "moves-0 on 2,3,4 everywhere", func(b *Broker) bool {
		return slices.Equal(replicasOf(b, "moves", 0), []int32{2, 3, 4})
	})
	waitForCond(t, 20*time.Second, "node 1 to drop moves-0", func() bool { return byID[1].parts.Get("moves", 0) == nil })

	// moldau broker decommission 4: both partitions leave node 4.
	out, code = runCLI(t, ctx, "broker", "decommission", "4", "--throttle", "50000000", "-b", seeds)
	if code != 0 || !strings.HasSuffix(out, "Broker 4 holds no replicas and can be stopped.\n") {
		t.Fatalf("decommission: %s", out)
	}
	waitForCond(t, 20*time.Second, "node 4 to hold no replica", func() bool {
		for _, p := range byID[4].parts.All() {
			if p.Topic == "moves" {
				return false
			}
		}
		return true
	})

	// moldau cluster rebalance: node 4 gets replicas again, counts even (6 replicas, 4 nodes).
	out, code = runCLI(t, ctx, "cluster", "rebalance", "-b", seeds)
	if code != 0 || !strings.Contains(out, "Rebalance plan: ") {
		t.Fatalf("rebalance: %s", out)
	}
	counts := map[int32]int{}
	for p := range int32(2) {
		for _, r := range replicasOf(brokers[0], "moves", p) {
			counts[r]++
		}
	}
	for id := int32(1); id <= 4; id++ {
		if counts[id] < 1 || counts[id] > 2 {
			t.Errorf("after rebalance node %d holds %d replicas of moves: %v", id, counts[id], counts)
		}
	}

	stopped = true
	ackedList, errs := load.finish()
	if len(errs) > 0 {
		t.Errorf("%d produces failed under the moves, the first: %v", len(errs), errs[0])
	}
	acked := map[string]bool{}
	for _, v := range ackedList {
		acked[v] = true
	}
	t.Logf("%d records acknowledged under the moves", len(acked))
	checkAllRead(t, ctx, brokers, "moves", acked)
}

// TestReassignLogDirsCommand: kafka-reassign-partitions with a log_dirs entry moves a replica to
// another log dir of its broker (AlterReplicaLogDirs) and --verify follows it to the end.
func TestReassignLogDirsCommand(t *testing.T) {
	base := t.TempDir()
	d1, d2 := filepath.Join(base, "d1"), filepath.Join(base, "d2")
	b := testBroker(t, d1+","+d2)
	defer func() { stopBroker(t, b) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeds := b.Addr().String()
	if out, code := runCLI(t, ctx, "kafka-topics", "--bootstrap-server", seeds, "--create", "--topic", "dirs", "--partitions", "1"); code != 0 {
		t.Fatalf("create: %s", out)
	}
	pcl := client(t, b, kgo.DefaultProduceTopic("dirs"))
	for i := range 100 {
		if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	src := b.parts.DirOf("dirs", 0)
	dest := d1
	if src == d1 {
		dest = d2
	}
	node := strconv.Itoa(int(b.cfg.NodeID))
	js := filepath.Join(base, "dirs.json")
	if err := os.WriteFile(js, []byte(`{"version":1,"partitions":[{"topic":"dirs","partition":0,"replicas":[`+node+`],"log_dirs":["`+dest+`"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, ctx, "kafka-reassign-partitions", "--bootstrap-server", seeds, "--execute", "--reassignment-json-file", js)
	if want := "Successfully started moving log directory to " + dest + " for replica dirs-0 with broker " + node + " \n"; code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("execute: %q, want it to end with %q", out, want)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code = runCLI(t, ctx, "kafka-reassign-partitions", "--bootstrap-server", seeds, "--verify", "--reassignment-json-file", js)
		if code != 0 {
			t.Fatalf("verify: %s", out)
		}
		if strings.Contains(out, "Reassignment of replica dirs-0-"+node+" completed successfully.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log dir move did not complete: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := b.parts.DirOf("dirs", 0); got != dest {
		t.Errorf("dirs-0 is in %s, want %s", got, dest)
	}
}
