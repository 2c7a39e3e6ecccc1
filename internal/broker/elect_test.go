package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/cli"
	"github.com/moldau/moldau/internal/metadata"
)

// leadPartitions is the partition count of the topic "lead": each of three nodes is the preferred
// replica of three.
const leadPartitions = 9

// restartAwayFromLeadership starts a three-node cluster with topic "lead" of nine RF=3
// partitions, each node the preferred (first) replica of three, then restarts one node that is not
// the controller: while it is down its leaderships move away, and once it is back it is in every
// ISR (and, unless auto is set, leads nothing). It returns the nodes (the restarted one
// replaced in the slice) and the restarted node's id.
func restartAwayFromLeadership(t *testing.T, auto bool, overrides ...string) ([]*Broker, int32) {
	t.Helper()
	brokers := testCluster(t, 3, append([]string{"replica.lag.time.max.ms", "2000"}, overrides...)...)
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	assignment := map[int32][]int32{}
	for p := range int32(leadPartitions) {
		first := p%3 + 1
		assignment[p] = []int32{first, first%3 + 1, (first+1)%3 + 1}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "lead", -1, -1
	for p := range int32(leadPartitions) {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = p, assignment[p]
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, clusterClient(t, brokers))
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	waitCluster(t, brokers, "every preferred replica leads with a full ISR", balancedWithFullISR(3))

	var victim int
	for i, b := range brokers {
		if b.cfg.NodeID != b.Controller().ControllerID() {
			victim = i
			break
		}
	}
	id := brokers[victim].cfg.NodeID
	cfg := brokers[victim].cfg
	stopBroker(t, brokers[victim])
	rest := slices.Delete(slices.Clone(brokers), victim, victim+1)
	waitCluster(t, rest, "no leadership on the stopped node", func(b *Broker) bool {
		tm, ok := b.Controller().Image().Topic("lead")
		return ok && !slices.ContainsFunc(tm.Partitions, func(p metadata.Partition) bool { return p.Leader == id || p.Leader < 0 })
	})
	// Records written while it is away, which it must fetch before it rejoins the ISRs.
	prod := clusterClient(t, rest, kgo.DefaultProduceTopic("lead"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 12 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d while node %d is down: %v", i, id, err)
		}
	}
	restarted, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("restart node %d: %v", id, err)
	}
	brokers[victim] = restarted // testCluster's cleanup stops it
	waitCluster(t, brokers, "the restarted node back in every ISR", func(b *Broker) bool {
		tm, ok := b.Controller().Image().Topic("lead")
		if !ok {
			return false
		}
		for _, p := range tm.Partitions {
			if !slices.Contains(p.ISR, id) {
				return false
			}
		}
		br, ok := b.Controller().Image().Broker(id)
		return ok && !br.Fenced
	})
	if auto {
		return brokers, id
	}
	tm, _ := restarted.Controller().Image().Topic("lead")
	for _, p := range tm.Partitions {
		if p.Leader == id {
			t.Fatalf("node %d leads %d right after its restart; the test needs leaderships moved away", id, p.Partition)
		}
	}
	return brokers, id
}

// balancedWithFullISR is a waitCluster condition: every partition of "lead" is led by its
// preferred replica with an ISR of n, and the node serves each as leader exactly where it leads.
func balancedWithFullISR(n int) func(*Broker) bool {
	return func(b *Broker) bool {
		tm, ok := b.Controller().Image().Topic("lead")
		if !ok {
			return false
		}
		for _, p := range tm.Partitions {
			if p.Leader != p.Replicas[0] || len(p.ISR) != n {
				return false
			}
			// The node's replica has taken the role its image gives it.
			part := b.parts.Get("lead", p.Partition)
			if part == nil || part.IsLeader() != (p.Leader == b.cfg.NodeID) {
				return false
			}
		}
		return true
	}
}

// TestClusterPreferredElectionAfterRestart: a node restarted in a three-node cluster gets its
// preferred leaderships back: one partition by an ElectLeaders request for it sent to a node that
// is not the controller, which forwards it and answers once its own image has the new leader;
// one by moldau cluster elect-leaders TOPIC:PARTITION; the last by kafka-leader-election
// --all-topic-partitions, which names just that partition.
// Every node's image agrees, the restarted node serves as leader, acks=all produce goes on, and
// further elections find nothing to do.
func TestClusterPreferredElectionAfterRestart(t *testing.T) {
	brokers, id := restartAwayFromLeadership(t, false, "auto.leader.rebalance.enable", "false")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var want []int32 // the restarted node's preferred partitions
	for p := range int32(leadPartitions) {
		if p%3+1 == id {
			want = append(want, p)
		}
	}

	var via *Broker
	for _, b := range brokers {
		if b.cfg.NodeID != b.Controller().ControllerID() {
			via = b
			break
		}
	}
	direct := clusterClient(t, []*Broker{via}).Broker(int(via.cfg.NodeID))
	elect := func(parts ...int32) *kmsg.ElectLeadersResponse {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType, req.TimeoutMillis = 0, 10000
		if parts != nil {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = "lead", parts
			req.Topics = append(req.Topics, rt)
		}
		resp, err := direct.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.ElectLeadersResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("ElectLeaders through node %d: code %d", via.cfg.NodeID, r.ErrorCode)
		}
		return r
	}
	// acks=all load across both elections: nothing acknowledged may be lost or doubled.
	load := clusterClient(t, brokers, kgo.DefaultProduceTopic("lead"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MetadataMinAge(100*time.Millisecond))
	lp := startLoad(ctx, load)
	t.Cleanup(lp.halt) // before the clients close, also when the test fails
	waitLoad := func(n int) {
		t.Helper()
		waitForCond(t, 20*time.Second, fmt.Sprintf("%d records acknowledged under load", n), func() bool { return lp.count() >= n })
	}
	waitLoad(20)
	r := elect(want[0])
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("elect lead-%d through node %d: %+v", want[0], via.cfg.NodeID, r.Topics)
	}
	if tm, _ := via.Controller().Image().Topic("lead"); tm.Partitions[want[0]].Leader != id {
		t.Fatalf("node %d answered before applying the election: %+v", via.cfg.NodeID, tm.Partitions[want[0]])
	}

	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr().String())
	}
	runTool := func(tool string, args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(tool, append(args, "--bootstrap-server", strings.Join(seeds, ",")), strings.NewReader(""), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	run := func(args ...string) (string, string, int) { return runTool("kafka-leader-election", args...) }
	// Moldau's own command for one partition.
	out, errOut, code := runTool("cluster", "elect-leaders", "lead:"+strconv.Itoa(int(want[1])))
	if wantOut := fmt.Sprintf("Elected a new leader (preferred) for lead-%d.\n", want[1]); code != 0 || out != wantOut {
		t.Fatalf("moldau cluster elect-leaders: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, wantOut, errOut)
	}
	out, errOut, code = run("--election-type", "preferred", "--all-topic-partitions")
	if wantOut := fmt.Sprintf("Successfully completed leader election (PREFERRED) for partitions lead-%d\n", want[2]); code != 0 || out != wantOut {
		t.Fatalf("kafka-leader-election --all-topic-partitions: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, wantOut, errOut)
	}
	waitCluster(t, brokers, "preferred leaders everywhere", balancedWithFullISR(3))
	for _, b := range brokers {
		if b.cfg.NodeID != id {
			continue
		}
		for _, p := range want {
			// The roles follow the image on the node's own sync, a moment after it.
			waitForCond(t, 10*time.Second, fmt.Sprintf("node %d serving lead-%d as leader", id, p), func() bool {
				part := b.parts.Get("lead", p)
				return part != nil && part.IsLeader()
			})
		}
	}
	waitLoad(lp.count() + 20) // the load goes on with the new leaders
	acked, errs := lp.finish()
	if len(errs) > 0 {
		t.Fatalf("%d produces failed during the elections, the first: %v", len(errs), errs[0])
	}
	for i := range 12 {
		v := "after-" + strconv.Itoa(i)
		if err := load.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s after the elections: %v", v, err)
		}
		acked = append(acked, v)
	}
	// 12 records from while the node was down, then everything acknowledged since, once each.
	cons := clusterClient(t, brokers, kgo.ConsumeTopics("lead"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	total := 0
	for total < 12+len(acked) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", total, 12+len(acked), err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
	}
	for _, v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged record %s read %d times (%d acknowledged under load)", v, seen[v], len(acked)-12)
		}
	}
	// Nothing left to do: all partitions (forwarded) answer nothing, a named one is not needed.
	if r := elect(); len(r.Topics) != 0 {
		t.Fatalf("election for all partitions answered %+v, want nothing (every preferred replica leads)", r.Topics)
	}
	if r := elect(want[2]); r.Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Fatalf("lead-%d again: %+v", want[2], r.Topics)
	}
	out, _, code = run("--election-type", "preferred", "--topic", "lead", "--partition", strconv.Itoa(int(want[2])))
	if wantOut := fmt.Sprintf("Valid replica already elected for partitions lead-%d\n", want[2]); code != 0 || out != wantOut {
		t.Fatalf("kafka-leader-election --topic: exit %d %q, want %q", code, out, wantOut)
	}
}

// TestClusterAutoLeaderRebalance: with auto.leader.rebalance.enable and a one-second check
// interval, the leaderships a restarted node lost come back to it without any ElectLeaders
// request, once it is in the ISRs again.
func TestClusterAutoLeaderRebalance(t *testing.T) {
	brokers, id := restartAwayFromLeadership(t, true, "auto.leader.rebalance.enable", "true",
		"leader.imbalance.check.interval.seconds", "1", "leader.imbalance.per.broker.percentage", "10")
	waitCluster(t, brokers, "the balancer gives node "+strconv.Itoa(int(id))+" its preferred leaderships back", balancedWithFullISR(3))
	for _, b := range brokers {
		if b.cfg.NodeID != id {
			continue
		}
		for p := range int32(leadPartitions) {
			if p%3+1 != id {
				continue
			}
			// The roles follow the image on the node's own sync, a moment after it.
			waitForCond(t, 10*time.Second, fmt.Sprintf("node %d serving lead-%d as leader", id, p), func() bool {
				part := b.parts.Get("lead", p)
				return part != nil && part.IsLeader()
			})
		}
	}
}
