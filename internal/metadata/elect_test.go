package metadata

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// rejoin is the leader of topic-p adding id back to the ISR (AlterPartition), as a follower that
// caught up after a restart.
func rejoin(t *testing.T, c *Controller, topic string, p int32, id int32) {
	t.Helper()
	part := partition(t, c, topic, p)
	top, _ := c.Image().Topic(topic)
	leader := broker(t, c, part.Leader)
	var isr []ISRMember
	for _, m := range append(slices.Clone(part.ISR), id) {
		isr = append(isr, ISRMember{BrokerID: m, BrokerEpoch: broker(t, c, m).Epoch})
	}
	res, err := c.AlterPartition(context.Background(), leader.NodeID, leader.Epoch, []AlterPartitionItem{{
		TopicID: top.ID, Partition: p, LeaderEpoch: part.LeaderEpoch, PartitionEpoch: part.PartitionEpoch, NewISR: isr}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("%s-%d: add %d to the ISR: %v %v", topic, p, id, err, res)
	}
}

func electOne(t *testing.T, c *Controller, typ int8, topic string, p int32) error {
	t.Helper()
	tp := TopicPartition{Topic: topic, Partition: p}
	res, err := c.ElectLeaders(context.Background(), typ, []TopicPartition{tp})
	if err != nil {
		t.Fatalf("elect %s: %v", tp, err)
	}
	if len(res) != 1 {
		t.Fatalf("elect %s: %d results %v", tp, len(res), res)
	}
	return res[tp]
}

func isCode(err error, code *kerr.Error) bool {
	if code == nil {
		return err == nil
	}
	return errors.Is(err, code)
}

// TestElectPreferred walks Kafka's preferred election rules on one partition {1,2,3}.
func TestElectPreferred(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3})})

	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.ElectionNotNeeded) {
		t.Fatalf("preferred leader leads: %v", err)
	}
	fence(t, c, 1)
	if p := partition(t, c, "t", 0); p.Leader != 2 {
		t.Fatalf("after fencing 1: %+v", p)
	}
	// Fenced and out of the ISR: not available, nothing changes.
	before := partition(t, c, "t", 0)
	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred fenced: %v", err)
	}
	// Unfenced but not in the ISR yet: still not available.
	unfence(t, c, 1)
	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred not in ISR: %v", err)
	}
	if p := partition(t, c, "t", 0); p.Leader != 2 || p.LeaderEpoch != before.LeaderEpoch {
		t.Fatalf("failed elections changed the partition: %+v (was %+v)", p, before)
	}
	// Back in the ISR: it takes over with a new leader epoch, the ISR stays.
	rejoin(t, c, "t", 0, 1)
	before = partition(t, c, "t", 0)
	if err := electOne(t, c, ElectPreferred, "t", 0); err != nil {
		t.Fatalf("preferred election: %v", err)
	}
	p := partition(t, c, "t", 0)
	if p.Leader != 1 || p.LeaderEpoch != before.LeaderEpoch+1 || p.PartitionEpoch != before.PartitionEpoch+1 ||
		!slices.Equal(p.ISR, before.ISR) || p.LeaderRecoveryState != LeaderRecovered {
		t.Fatalf("after the election %+v (was %+v)", p, before)
	}
	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.ElectionNotNeeded) {
		t.Fatalf("second election: %v", err)
	}

	// In the ISR but shutting down: not available.
	fence(t, c, 1)
	unfence(t, c, 1)
	rejoin(t, c, "t", 0, 1)
	b := broker(t, c, 1)
	heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: b.Epoch, MetadataOffset: c.Image().Index(), WantShutdown: true})
	if !broker(t, c, 1).InControlledShutdown && !broker(t, c, 1).Fenced {
		t.Fatal("broker 1 not shutting down")
	}
	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred shutting down: %v", err)
	}
}

// TestElectUnclean: only leaderless partitions; ISR/ELR first, else any active replica with
// RECOVERING; no active replica: ELIGIBLE_LEADERS_NOT_AVAILABLE. The topic's
// unclean.leader.election.enable=false does not stop an election an operator asks for.
func TestElectUnclean(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	e1 := activate(t, c, 1, "")
	activate(t, c, 2, "")
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2}),
		Configs: map[string]string{"unclean.leader.election.enable": "false"}})
	if err := electOne(t, c, ElectUnclean, "t", 0); !isCode(err, kerr.ElectionNotNeeded) {
		t.Fatalf("partition has a leader: %v", err)
	}
	// The leader drops 2 from the ISR, then dies: 1 is the only eligible replica, no leader.
	if res, err := c.AlterPartition(ctx, 1, e1, []AlterPartitionItem{{TopicID: top.ID, Partition: 0, NewISR: []ISRMember{{1, e1}}}}); err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	fence(t, c, 1)
	before := partition(t, c, "t", 0)
	if before.Leader != -1 || !slices.Equal(before.ELR, []int32{1}) {
		t.Fatalf("offline: %+v", before)
	}
	if err := electOne(t, c, ElectPreferred, "t", 0); !isCode(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election of an offline partition: %v", err)
	}
	if err := electOne(t, c, ElectUnclean, "t", 0); err != nil {
		t.Fatalf("unclean election: %v", err)
	}
	p := partition(t, c, "t", 0)
	if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || len(p.ELR) != 0 || len(p.LastKnownELR) != 0 ||
		p.LeaderRecoveryState != LeaderRecovering || p.LeaderEpoch != before.LeaderEpoch+1 {
		t.Fatalf("after the unclean election %+v (was %+v)", p, before)
	}
	if n := c.UncleanElections(); n != 1 {
		t.Fatalf("UncleanElections = %d after one unclean election, want 1", n)
	}

	// Nobody active: not available.
	fence(t, c, 2)
	if p := partition(t, c, "t", 0); p.Leader != -1 {
		t.Fatalf("offline again: %+v", p)
	}
	if err := electOne(t, c, ElectUnclean, "t", 0); !isCode(err, kerr.EligibleLeadersNotAvailable) {
		t.Fatalf("no active replica: %v", err)
	}
	if n := c.UncleanElections(); n != 1 {
		t.Fatalf("UncleanElections = %d, want still 1 (the refused election and the fencing are not elections)", n)
	}
}

// TestElectLeaderCases drives electLeader on partitions a running controller would rarely
// show (a leaderless partition with an active ISR member), brokers 2 and 3 active, 1 fenced.
func TestElectLeaderCases(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3})})
	fence(t, c, 1)
	im := c.Image()
	base := Partition{Partition: 0, Replicas: []int32{1, 2, 3}, LeaderEpoch: 5, PartitionEpoch: 9}
	cases := []struct {
		name     string
		typ      int8
		leader   int32
		isr, elr []int32
		code     *kerr.Error
		// want, when the election succeeds
		newLeader int32
		newISR    []int32
		recovery  int8
	}{
		// Kafka's electPreferredLeader falls back to the other valid replicas.
		{"preferred, leaderless, other ISR member", ElectPreferred, -1, []int32{1, 3}, nil, nil, 3, []int32{1, 3}, LeaderRecovered},
		{"preferred, current leader stays", ElectPreferred, 3, []int32{1, 2, 3}, nil, kerr.PreferredLeaderNotAvailable, 0, nil, 0},
		{"unclean, ISR member first", ElectUnclean, -1, []int32{1, 3}, nil, nil, 3, []int32{1, 3}, LeaderRecovered},
		{"unclean, ELR member while the ISR is empty", ElectUnclean, -1, []int32{}, []int32{3}, nil, 3, []int32{3}, LeaderRecovered},
		{"unclean, any active replica", ElectUnclean, -1, []int32{1}, nil, nil, 2, []int32{2}, LeaderRecovering},
		{"unclean, led", ElectUnclean, 2, []int32{2}, nil, kerr.ElectionNotNeeded, 0, nil, 0},
	}
	for _, tc := range cases {
		p := base
		p.Leader, p.ISR, p.ELR = tc.leader, tc.isr, tc.elr
		rec, err := c.electLeader(im, top, p, tc.typ)
		if tc.code != nil {
			if !isCode(err, tc.code) || rec != nil {
				t.Errorf("%s: %v %v, want %v", tc.name, rec, err, tc.code)
			}
			continue
		}
		pc, ok := rec.(*PartitionChangeRecord)
		if err != nil || !ok {
			t.Errorf("%s: %v %v", tc.name, rec, err)
			continue
		}
		if pc.Leader != tc.newLeader || !slices.Equal(pc.ISR, tc.newISR) || pc.LeaderRecoveryState != tc.recovery ||
			pc.LeaderEpoch != 6 || pc.PartitionEpoch != 10 {
			t.Errorf("%s: %+v, want leader %d ISR %v recovery %d epochs 6/10", tc.name, pc, tc.newLeader, tc.newISR, tc.recovery)
		}
	}
}

func TestElectLeadersRequestShapes(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "a", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2, 3}, []int32{2, 3, 1}, []int32{3, 1, 2})})
	createTopic(t, c, CreateTopic{Name: "b", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2})})

	// Unknown election type: the whole request.
	if _, err := c.ElectLeaders(ctx, 2, nil); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("election type 2: %v", err)
	}
	// Unknown topic and partition, duplicates answered once.
	res, err := c.ElectLeaders(ctx, ElectPreferred, []TopicPartition{{"nope", 0}, {"a", 7}, {"a", -1}, {"a", 0}, {"a", 0}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || !isCode(res[TopicPartition{"nope", 0}], kerr.UnknownTopicOrPartition) ||
		res[TopicPartition{"nope", 0}].Error() != "No such topic as nope" ||
		res[TopicPartition{"a", 7}].Error() != "No such partition as a-7" ||
		!isCode(res[TopicPartition{"a", -1}], kerr.UnknownTopicOrPartition) ||
		!isCode(res[TopicPartition{"a", 0}], kerr.ElectionNotNeeded) {
		t.Fatalf("results %v", res)
	}
	// Everything balanced: an election for all partitions answers nothing and commits nothing.
	index := c.Image().Index()
	if res, err := c.ElectLeaders(ctx, ElectPreferred, nil); err != nil || len(res) != 0 || c.Image().Index() != index {
		t.Fatalf("all balanced: %v %v (index %d -> %d)", res, err, index, c.Image().Index())
	}

	// Broker 1 restarts: it leads nothing. A-0 and b-0 move; a-2 has 1 as a follower only.
	fence(t, c, 1)
	unfence(t, c, 1)
	rejoin(t, c, "a", 0, 1)
	rejoin(t, c, "a", 2, 1)
	// b-0 stays without 1 in the ISR: the election for all partitions reports it, and a-0.
	res, err = c.ElectLeaders(ctx, ElectPreferred, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[TopicPartition]*kerr.Error{{"a", 0}: nil, {"b", 0}: kerr.PreferredLeaderNotAvailable}
	if len(res) != len(want) {
		t.Fatalf("all partitions: %v, want %v", res, want)
	}
	for tp, code := range want {
		if got, ok := res[tp]; !ok || !isCode(got, code) {
			t.Fatalf("%s: %v, want %v (all: %v)", tp, got, code, res)
		}
	}
	if p := partition(t, c, "a", 0); p.Leader != 1 {
		t.Fatalf("a-0 %+v", p)
	}
	// Unclean for all partitions: every partition has a leader, none is answered.
	if res, err := c.ElectLeaders(ctx, ElectUnclean, nil); err != nil || len(res) != 0 {
		t.Fatalf("unclean, all led: %v %v", res, err)
	}
}

// A controller that does not lead refuses (a forwarded request is retried on the leader).
func TestElectLeadersNotController(t *testing.T) {
	fsm := NewFSM()
	c := newController(testConfig(), fsm, &directCommitter{fsm: fsm, nodeID: 2})
	if _, err := c.ElectLeaders(context.Background(), ElectPreferred, nil); !errors.Is(err, ErrNotController) {
		t.Fatalf("not the leader: %v", err)
	}
}

// TestElectPreferredWithReassignment: the preferred replica is the first of the target
// assignment. A reorder of the replicas (a reassignment to the same set, done at once) followed by
// a preferred election moves the leadership, as kafka-reassign-partitions and moldau cluster
// rebalance use it; during a move to a replica not yet in the ISR the target's first replica is
// not available, and once the move completes it can take over.
func TestElectPreferredWithReassignment(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	for id := int32(1); id <= 4; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3}, []int32{1, 2, 3})})

	reassign := func(p int32, replicas ...int32) {
		t.Helper()
		errs, err := c.AlterPartitionReassignments(ctx, []Reassignment{{Topic: "t", Partition: p, Replicas: replicas}})
		if err != nil || errs[0] != nil {
			t.Fatalf("reassign t-%d to %v: %v %v", p, replicas, err, errs)
		}
	}
	reassign(0, 2, 1, 3)
	if p := partition(t, c, "t", 0); !slices.Equal(p.Replicas, []int32{2, 1, 3}) || len(p.AddingReplicas) != 0 || p.Leader != 1 {
		t.Fatalf("after the reorder: %+v", p)
	}
	if err := electOne(t, c, ElectPreferred, "t", 0); err != nil {
		t.Fatalf("preferred election after the reorder: %v", err)
	}
	if p := partition(t, c, "t", 0); p.Leader != 2 || !slices.Equal(p.Replicas, []int32{2, 1, 3}) {
		t.Fatalf("after the election: %+v", p)
	}

	// A move of t-1 to {4,2,3}: 4 first, but not in the ISR yet.
	reassign(1, 4, 2, 3)
	moving := partition(t, c, "t", 1)
	if moving.Replicas[0] != 4 || !slices.Equal(moving.AddingReplicas, []int32{4}) {
		t.Fatalf("moving: %+v", moving)
	}
	if err := electOne(t, c, ElectPreferred, "t", 1); !isCode(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election while 4 catches up: %v", err)
	}
	if got := partition(t, c, "t", 1); !slices.Equal(got.Replicas, moving.Replicas) || !slices.Equal(got.AddingReplicas, moving.AddingReplicas) {
		t.Fatalf("the failed election changed the move: %+v (was %+v)", got, moving)
	}
	// 4 caught up: the leader adds it to the ISR, the move completes, and 1, which leaves the
	// assignment, hands the leadership to the first of the target in the ISR: 4.
	top, _ := c.Image().Topic("t")
	leader := broker(t, c, moving.Leader)
	var isr []ISRMember
	for _, m := range append(slices.Clone(moving.ISR), 4) {
		isr = append(isr, ISRMember{BrokerID: m, BrokerEpoch: broker(t, c, m).Epoch})
	}
	res, err := c.AlterPartition(ctx, leader.NodeID, leader.Epoch, []AlterPartitionItem{{TopicID: top.ID, Partition: 1,
		LeaderEpoch: moving.LeaderEpoch, PartitionEpoch: moving.PartitionEpoch, NewISR: isr}})
	if err != nil || !isCode(res[0].Err, kerr.NewLeaderElected) {
		t.Fatalf("add 4 to the ISR: %v %v", err, res)
	}
	if p := partition(t, c, "t", 1); !slices.Equal(p.Replicas, []int32{4, 2, 3}) || len(p.AddingReplicas)+len(p.RemovingReplicas) != 0 || p.Leader != 4 {
		t.Fatalf("move not complete: %+v", p)
	}
	if err := electOne(t, c, ElectPreferred, "t", 1); !isCode(err, kerr.ElectionNotNeeded) {
		t.Fatalf("preferred election after the move: %v", err)
	}
}
