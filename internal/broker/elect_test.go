package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
)

// restartAwayFromLeadership starts a three-node cluster with topic "lead" of six RF=3
// partitions, each node the preferred (first) replica of two, then restarts one node that is not
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
	for p := range int32(6) {
		first := p%3 + 1
		assignment[p] = []int32{first, first%3 + 1, (first+1)%3 + 1}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "lead", -1, -1
	for p := range int32(6) {
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
// preferred replica with an ISR of n.
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
			part := b.parts.Get("lead", p.Partition)
			if part == nil {
				return false
			}
		}
		return true
	}
}

// TestClusterPreferredElectionAfterRestart: a node restarted in a three-node cluster gets its
// preferred leaderships back from a preferred election for all partitions (null topics) sent to
// a node that is not the controller, which forwards it; the answer lists just the partitions
// moved, every node's image agrees, the restarted node serves as leader, and acks=all produce goes
// on. A second election finds nothing to do.
func TestClusterPreferredElectionAfterRestart(t *testing.T) {
	brokers, id := restartAwayFromLeadership(t, false, "auto.leader.rebalance.enable", "false")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var via *Broker
	for _, b := range brokers {
		if b.cfg.NodeID != b.Controller().ControllerID() {
			via = b
			break
		}
	}
	elect := func() *kmsg.ElectLeadersResponse {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType, req.TimeoutMillis = 0, 10000
		resp, err := clusterClient(t, []*Broker{via}).Broker(int(via.cfg.NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.ElectLeadersResponse)
		if r.ErrorCode != 0 {
			t.Fatalf("ElectLeaders through node %d: code %d", via.cfg.NodeID, r.ErrorCode)
		}
		return r
	}
	r := elect()
	var moved []int32
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != "lead" || rp.ErrorCode != 0 {
				t.Fatalf("result %s-%d: code %d", rt.Topic, rp.Partition, rp.ErrorCode)
			}
			moved = append(moved, rp.Partition)
		}
	}
	slices.Sort(moved)
	var want []int32
	for p := range int32(6) {
		if p%3+1 == id {
			want = append(want, p)
		}
	}
	if !slices.Equal(moved, want) {
		t.Fatalf("elected %v, want node %d's preferred partitions %v", moved, id, want)
	}
	// The forwarding node answered after its own image had the new leaders.
	if tm, _ := via.Controller().Image().Topic("lead"); slices.ContainsFunc(tm.Partitions, func(p metadata.Partition) bool { return p.Leader != p.Replicas[0] }) {
		t.Fatalf("node %d answered before applying the election: %+v", via.cfg.NodeID, tm.Partitions)
	}
	waitCluster(t, brokers, "preferred leaders everywhere", balancedWithFullISR(3))
	for _, b := range brokers {
		if b.cfg.NodeID != id {
			continue
		}
		for _, p := range want {
			if part := b.parts.Get("lead", p); part == nil || !part.IsLeader() {
				t.Fatalf("node %d does not serve %d as leader", id, p)
			}
		}
	}
	prod := clusterClient(t, brokers, kgo.DefaultProduceTopic("lead"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 12 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d after the election: %v", i, err)
		}
	}
	if r := elect(); len(r.Topics) != 0 {
		t.Fatalf("second election answered %+v, want nothing (every preferred replica leads)", r.Topics)
	}
	// kadm (Kafka's admin semantics) names partitions: no election needed now.
	res, err := kadm.NewClient(clusterClient(t, brokers)).ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"lead": {0: {}}})
	if err != nil || !errors.Is(res["lead"][0].Err, kerr.ElectionNotNeeded) {
		t.Fatalf("kadm ElectLeaders lead-0: %v %+v", err, res)
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
		for p := range int32(6) {
			if p%3+1 != id {
				continue
			}
			if part := b.parts.Get("lead", p); part == nil || !part.IsLeader() {
				t.Fatalf("node %d does not serve %d as leader", id, p)
			}
		}
	}
}
