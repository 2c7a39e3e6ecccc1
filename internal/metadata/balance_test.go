package metadata

import (
	"context"
	"slices"
	"testing"
	"time"
)

// leaders returns the leader of each partition of topic.
func leaders(t *testing.T, c *Controller, topic string) []int32 {
	t.Helper()
	top, ok := c.Image().Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	var out []int32
	for _, p := range top.Partitions {
		out = append(out, p.Leader)
	}
	return out
}

// restartBroker fences and unfences id (its leaderships move away), then adds it back to the
// ISR of every partition of topic that has it as a replica.
func restartBroker(t *testing.T, c *Controller, topic string, id int32) {
	t.Helper()
	fence(t, c, id)
	unfence(t, c, id)
	top, _ := c.Image().Topic(topic)
	for _, p := range top.Partitions {
		if p.Leader >= 0 && !slices.Contains(p.ISR, id) && slices.Contains(p.Replicas, id) {
			rejoin(t, c, topic, p.Partition, id)
		}
	}
}

// TestBalanceElectsImbalancedBrokers: the per-broker rule of leader.imbalance.per.broker.percentage.
func TestBalanceElectsImbalancedBrokers(t *testing.T) {
	c, _ := newLifecycleController(t, func(cfg *Config) { cfg.LeaderBalance = LeaderBalance{Enable: true, Percentage: 10} })
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	// Broker 1 is preferred for partitions 0-9, broker 2 for 10, broker 3 for 11.
	var rs [][]int32
	for range 10 {
		rs = append(rs, []int32{1, 2, 3})
	}
	rs = append(rs, []int32{2, 3, 1}, []int32{3, 1, 2})
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign(rs...)})
	ctx := context.Background()

	if n, more, err := c.balanceLeaders(ctx); n != 0 || more || err != nil {
		t.Fatalf("balanced cluster: %d %v %v", n, more, err)
	}
	restartBroker(t, c, "t", 1)
	// Broker 1 now leads none of the 10 it is preferred for (100% > 10%).
	got := leaders(t, c, "t")
	for p := range 10 {
		if got[p] == 1 {
			t.Fatalf("partition %d still led by 1 after its restart: %v", p, got)
		}
	}
	// Partitions 0-8 go back by hand; partition 9 alone is 10% of broker 1's: not above.
	var parts []TopicPartition
	for p := range int32(9) {
		parts = append(parts, TopicPartition{"t", p})
	}
	if res, err := c.ElectLeaders(ctx, ElectPreferred, parts); err != nil || len(res) != 9 {
		t.Fatalf("elect 0-8: %v %v", res, err)
	}
	if n, _, err := c.balanceLeaders(ctx); n != 0 || err != nil {
		t.Fatalf("10%% imbalance at 10%%: %d elections %v", n, err)
	}
	// At 9% it is above.
	c.cfg.LeaderBalance.Percentage = 9
	if n, more, err := c.balanceLeaders(ctx); n != 1 || more || err != nil {
		t.Fatalf("10%% imbalance at 9%%: %d %v %v", n, more, err)
	}
	if got := leaders(t, c, "t"); got[9] != 1 {
		t.Fatalf("partition 9 not back on 1: %v", got)
	}
}

// TestBalanceOnlyMovesToAnAblePreferredReplica: a broker out of the ISR, fenced or shutting
// down is not elected; once it is back in the ISR the next round elects it.
func TestBalanceOnlyMovesToAnAblePreferredReplica(t *testing.T) {
	c, _ := newLifecycleController(t, func(cfg *Config) { cfg.LeaderBalance = LeaderBalance{Enable: true} })
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3}, []int32{2, 3, 1})})
	ctx := context.Background()
	fence(t, c, 1)
	if n, _, err := c.balanceLeaders(ctx); n != 0 || err != nil {
		t.Fatalf("preferred replica fenced: %d %v", n, err)
	}
	unfence(t, c, 1)
	if n, _, err := c.balanceLeaders(ctx); n != 0 || err != nil {
		t.Fatalf("preferred replica not in the ISR: %d %v", n, err)
	}
	rejoin(t, c, "t", 0, 1)
	if n, _, err := c.balanceLeaders(ctx); n != 1 || err != nil {
		t.Fatalf("preferred replica back in the ISR: %d %v", n, err)
	}
	if got := leaders(t, c, "t"); got[0] != 1 || got[1] != 2 {
		t.Fatalf("leaders %v", got)
	}
}

// TestBalanceRoundLimit: a round elects at most its limit and says there is more.
func TestBalanceRoundLimit(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	for id := int32(1); id <= 2; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2}, []int32{1, 2}, []int32{1, 2})})
	restartBroker(t, c, "t", 1)
	if recs := c.balanceRecords(c.Image(), 0, 2); len(recs) != 2 {
		t.Fatalf("limit 2: %d records", len(recs))
	}
	if recs := c.balanceRecords(c.Image(), 0, 10); len(recs) != 3 {
		t.Fatalf("limit 10: %d records", len(recs))
	}
}

// TestBalanceNotLeader: a controller that does not lead elects nothing.
func TestBalanceNotLeader(t *testing.T) {
	fsm := NewFSM()
	c := newController(testConfig(), fsm, &directCommitter{fsm: fsm, nodeID: 2})
	if n, more, err := c.balanceLeaders(context.Background()); n != 0 || more || err != nil {
		t.Fatalf("not the leader: %d %v %v", n, more, err)
	}
}

// TestBalanceLoop: the loop runs a round on each tick (the test's channel, no timer) and stops
// when done closes.
func TestBalanceLoop(t *testing.T) {
	c, _ := newLifecycleController(t, func(cfg *Config) { cfg.LeaderBalance = LeaderBalance{Enable: true, Percentage: 10} })
	for id := int32(1); id <= 2; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2}, []int32{2, 1})})
	restartBroker(t, c, "t", 1)
	if got := leaders(t, c, "t"); got[0] != 2 {
		t.Fatalf("leaders before the tick %v", got)
	}
	tick := make(chan time.Time)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.balanceLoop(done, tick)
	}()
	ch := c.Subscribe()
	defer c.Unsubscribe(ch)
	tick <- time.Now()
	deadline := time.After(10 * time.Second)
	for leaders(t, c, "t")[0] != 1 {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no election after a tick: leaders %v", leaders(t, c, "t"))
		}
	}
	close(done)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop")
	}
}
