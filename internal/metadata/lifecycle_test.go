package metadata

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
)

// newLifecycleController is a controller without raft on a fake clock, with no brokers.
func newLifecycleController(t *testing.T, mod func(*Config)) (*Controller, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg := testConfig()
	cfg.Now = clk.Now
	if mod != nil {
		mod(&cfg)
	}
	fsm := NewFSM()
	return newController(cfg, fsm, &directCommitter{fsm: fsm, nodeID: 1}), clk
}

func broker(t *testing.T, c *Controller, id int32) Broker {
	t.Helper()
	b, ok := c.Image().Broker(id)
	if !ok {
		t.Fatalf("broker %d not registered", id)
	}
	return b
}

func partition(t *testing.T, c *Controller, topic string, p int32) Partition {
	t.Helper()
	top, ok := c.Image().Topic(topic)
	if !ok || int(p) >= len(top.Partitions) {
		t.Fatalf("no partition %s-%d", topic, p)
	}
	return top.Partitions[p]
}

func heartbeat(t *testing.T, c *Controller, h Heartbeat) HeartbeatResult {
	t.Helper()
	res, err := c.BrokerHeartbeat(context.Background(), h)
	if err != nil {
		t.Fatalf("heartbeat %+v: %v", h, err)
	}
	return res
}

// caughtUp is a plain heartbeat of a broker that has applied the whole log.
func caughtUp(c *Controller, id int32, epoch int64) Heartbeat {
	return Heartbeat{NodeID: id, Epoch: epoch, MetadataOffset: c.Image().Index()}
}

func createTopic(t *testing.T, c *Controller, ct CreateTopic) *Topic {
	t.Helper()
	top, err := c.CreateTopic(context.Background(), ct)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func assign(replicas ...[]int32) map[int32][]int32 {
	m := map[int32][]int32{}
	for i, r := range replicas {
		m[int32(i)] = r
	}
	return m
}

func TestRegistrationStartsFencedAndUnfencesOnCatchUp(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	epoch, err := c.RegisterBroker(ctx, registration(c, 1, "r1"))
	if err != nil {
		t.Fatal(err)
	}
	b := broker(t, c, 1)
	// The epoch is the index of the registration's entry; the first registration of this build
	// in a log without metadata.version is followed by the entry that writes it.
	if !b.Fenced || b.Epoch != epoch || epoch != int64(c.Image().Index())-1 || c.Image().MetadataVersion() != LatestMetadataVersion || b.Rack != "r1" ||
		len(b.Endpoints) != 1 || b.Endpoints[0].Name != "PLAINTEXT" || b.Host != "localhost" || b.Port != 9091 {
		t.Fatalf("registration %+v, epoch %d, index %d", b, epoch, c.Image().Index())
	}
	// A fenced broker gets no replicas.
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("create on a fenced broker: %v", err)
	}
	before := c.Image()
	res := heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, MetadataOffset: uint64(epoch) - 1})
	if !res.IsFenced || res.IsCaughtUp || res.ShouldShutdown || c.Image() != before {
		t.Fatalf("behind: %+v, committed %v", res, c.Image() != before)
	}
	res = heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, MetadataOffset: uint64(epoch), WantFence: true})
	if !res.IsFenced || !res.IsCaughtUp || c.Image() != before {
		t.Fatalf("want fence: %+v", res)
	}
	res = heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, MetadataOffset: uint64(epoch)})
	if res.IsFenced || !res.IsCaughtUp || broker(t, c, 1).Fenced {
		t.Fatalf("caught up: %+v %+v", res, broker(t, c, 1))
	}
	// Steady heartbeats commit nothing.
	steady := c.Image()
	for range 50 {
		if res := heartbeat(t, c, caughtUp(c, 1, epoch)); res.IsFenced {
			t.Fatal("fenced")
		}
	}
	if c.Image() != steady {
		t.Fatal("steady heartbeats grew the log")
	}
	// WantFence fences an unfenced broker.
	if res := heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, MetadataOffset: c.Image().Index(), WantFence: true}); !res.IsFenced || !broker(t, c, 1).Fenced {
		t.Fatalf("want fence: %+v", res)
	}
}

func TestHeartbeatStaleEpoch(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	epoch := activate(t, c, 1, "")
	for _, h := range []Heartbeat{{NodeID: 1, Epoch: epoch + 1}, {NodeID: 1, Epoch: epoch - 1}, {NodeID: 9, Epoch: epoch}} {
		if _, err := c.BrokerHeartbeat(context.Background(), h); !errors.Is(err, kerr.StaleBrokerEpoch) {
			t.Fatalf("%+v: err = %v", h, err)
		}
	}
}

func TestRegisterClusterID(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	if err := c.ensureClusterID(ctx, "cluster-a"); err != nil {
		t.Fatal(err)
	}
	r := registration(c, 1, "")
	r.ClusterID = "cluster-b"
	if _, err := c.RegisterBroker(ctx, r); !errors.Is(err, kerr.InconsistentClusterID) {
		t.Fatalf("err = %v", err)
	}
	r.ClusterID = "cluster-a"
	if _, err := c.RegisterBroker(ctx, r); err != nil {
		t.Fatal(err)
	}
}

func TestSessionExpiryFencesAndMovesLeaders(t *testing.T) {
	c, clk := newLifecycleController(t, nil)
	ctx := context.Background()
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3}, []int32{2, 1, 3})})
	start := clk.Now()
	keepAlive := func() {
		for _, id := range []int32{2, 3} {
			heartbeat(t, c, caughtUp(c, id, epochs[id]))
		}
	}
	clk.Advance(8 * time.Second)
	keepAlive()
	clk.Advance(time.Second) // broker 1: exactly 9 s without a heartbeat
	before := c.Image()
	if err := c.expireSessions(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if c.Image() != before || broker(t, c, 1).Fenced {
		t.Fatal("fenced at exactly the session timeout")
	}
	clk.Advance(time.Millisecond)
	if err := c.expireSessions(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !broker(t, c, 1).Fenced || broker(t, c, 2).Fenced || broker(t, c, 3).Fenced {
		t.Fatalf("after %v: %+v", clk.Now().Sub(start), c.Image().Brokers())
	}
	p0, p1 := partition(t, c, "t", 0), partition(t, c, "t", 1)
	if p0.Leader != 2 || !slices.Equal(p0.ISR, []int32{2, 3}) || p0.LeaderEpoch != 1 || p0.PartitionEpoch != 1 {
		t.Fatalf("p0 %+v", p0)
	}
	// Broker 1 only leaves the ISR of a partition it does not lead: no leader epoch bump.
	if p1.Leader != 2 || !slices.Equal(p1.ISR, []int32{2, 3}) || p1.LeaderEpoch != 0 || p1.PartitionEpoch != 1 || len(p1.ELR) != 0 {
		t.Fatalf("p1 %+v", p1)
	}
	// A fenced broker is not fenced again; the others stay.
	fenced := c.Image()
	clk.Advance(time.Second)
	keepAlive()
	if err := c.expireSessions(ctx, clk.Now()); err != nil || c.Image() != fenced {
		t.Fatalf("second pass: %v, committed %v", err, c.Image() != fenced)
	}
	// Catching up again unfences it; it is not re-added to ISRs (that is the leader's
	// AlterPartition), but offline partitions it can lead get it as leader.
	if res := heartbeat(t, c, caughtUp(c, 1, epochs[1])); res.IsFenced {
		t.Fatalf("not unfenced: %+v", res)
	}
}

func TestSessionsRestartOnLeadership(t *testing.T) {
	c, clk := newLifecycleController(t, func(cfg *Config) { cfg.NodeID = 1 })
	ctx := context.Background()
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	// A new controller process: its sessions are empty until it gains leadership.
	c2 := newController(c.cfg, c.fsm, c.log)
	clk.Advance(time.Minute)
	c2.mu.Lock()
	c2.restartSessionsLocked(clk.Now())
	c2.mu.Unlock()
	if err := c2.expireSessions(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	for _, b := range c2.Image().Brokers() {
		if b.Fenced {
			t.Fatalf("broker %d fenced on gaining leadership", b.NodeID)
		}
	}
	// Broker 2's session is valid: another incarnation of it is a duplicate.
	if _, err := c2.RegisterBroker(ctx, registration(c2, 2, "")); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("err = %v", err)
	}
	// This node's own earlier registration has no session: its new process registers at once.
	if _, err := c2.RegisterBroker(ctx, registration(c2, 1, "")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9*time.Second + time.Millisecond)
	if err := c2.expireSessions(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !broker(t, c2, 2).Fenced || !broker(t, c2, 3).Fenced {
		t.Fatal("sessions restarted at leadership did not expire")
	}
}

// A quick reboot gets a new epoch; the old epoch's requests are refused (no ABA).
func TestQuickRebootNewEpoch(t *testing.T) {
	c, clk := newLifecycleController(t, nil)
	ctx := context.Background()
	old := activate(t, c, 2, "")
	activate(t, c, 3, "")
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{2, 3})})
	reboot := registration(c, 2, "")
	if _, err := c.RegisterBroker(ctx, reboot); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("while the session lives: %v", err)
	}
	clk.Advance(5 * time.Second)
	if _, err := c.RegisterBroker(ctx, reboot); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("after 5 s: %v", err)
	}
	// The old process is gone: its session expires and it is fenced.
	clk.Advance(5 * time.Second)
	heartbeat(t, c, caughtUp(c, 3, broker(t, c, 3).Epoch))
	if err := c.expireSessions(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	epoch, err := c.RegisterBroker(ctx, reboot)
	if err != nil {
		t.Fatal(err)
	}
	if epoch <= old || !broker(t, c, 2).Fenced {
		t.Fatalf("new epoch %d after %d: %+v", epoch, old, broker(t, c, 2))
	}
	if again, err := c.RegisterBroker(ctx, reboot); err != nil || again != epoch {
		t.Fatalf("retried registration: %d, %v", again, err)
	}
	if _, err := c.BrokerHeartbeat(ctx, caughtUp(c, 2, old)); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("old epoch heartbeat: %v", err)
	}
	top, _ := c.Image().Topic("t")
	p := top.Partitions[0]
	if _, err := c.AlterPartition(ctx, 2, old, []AlterPartitionItem{{TopicID: top.ID, Partition: 0,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{2, old}}}}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("old epoch AlterPartition: %v", err)
	}
	// The new incarnation cannot be put back in an ISR with the old epoch either.
	p = partition(t, c, "t", 0)
	if p.Leader != 3 {
		t.Fatalf("partition %+v", p)
	}
	heartbeat(t, c, caughtUp(c, 2, epoch))
	res, err := c.AlterPartition(ctx, 3, broker(t, c, 3).Epoch, []AlterPartitionItem{{TopicID: top.ID, Partition: 0,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{3, -1}, {2, old}}}})
	if err != nil || !errors.Is(res[0].Err, kerr.IneligibleReplica) {
		t.Fatalf("ISR with the old epoch: %v %v", err, res)
	}
	res, err = c.AlterPartition(ctx, 3, broker(t, c, 3).Epoch, []AlterPartitionItem{{TopicID: top.ID, Partition: 0,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{3, -1}, {2, epoch}}}})
	if err != nil || res[0].Err != nil || !slices.Equal(res[0].Partition.ISR, []int32{3, 2}) {
		t.Fatalf("ISR with the new epoch: %v %+v", err, res)
	}
}

// A broker that fenced itself (or was fenced) can register a new incarnation at once.
func TestRegisterAfterFence(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	epoch := activate(t, c, 2, "")
	heartbeat(t, c, Heartbeat{NodeID: 2, Epoch: epoch, WantFence: true})
	if _, err := c.RegisterBroker(context.Background(), registration(c, 2, "")); err != nil {
		t.Fatal(err)
	}
}

func TestControlledShutdown(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2, 3}, []int32{2, 1, 3})})
	createTopic(t, c, CreateTopic{Name: "solo", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1})})
	res := heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epochs[1], MetadataOffset: c.Image().Index(), WantShutdown: true})
	b := broker(t, c, 1)
	if res.ShouldShutdown || res.IsFenced || !b.InControlledShutdown || b.ControlledShutdownOffset != c.Image().Index() {
		t.Fatalf("entering controlled shutdown: %+v %+v", res, b)
	}
	csOffset := b.ControlledShutdownOffset
	p0, p1, p2 := partition(t, c, "t", 0), partition(t, c, "t", 1), partition(t, c, "solo", 0)
	if p0.Leader != 2 || !slices.Equal(p0.ISR, []int32{2, 3}) || p0.LeaderEpoch != 1 {
		t.Fatalf("p0 %+v", p0)
	}
	if p1.Leader != 2 || !slices.Equal(p1.ISR, []int32{2, 3}) || p1.LeaderEpoch != 0 {
		t.Fatalf("p1 %+v", p1)
	}
	// Its only replica is shutting down: the partition goes offline, 1 stays eligible (ELR).
	if p2.Leader != -1 || len(p2.ISR) != 0 || !slices.Equal(p2.ELR, []int32{1}) {
		t.Fatalf("p2 %+v", p2)
	}
	if hasLeaderships(c.Image(), 1) {
		t.Fatal("still leads")
	}
	// A shutting-down broker gets no new replicas.
	top := createTopic(t, c, CreateTopic{Name: "u", Partitions: 6, ReplicationFactor: 2})
	for _, p := range top.Partitions {
		if slices.Contains(p.Replicas, 1) {
			t.Fatalf("placed on a shutting-down broker: %+v", p)
		}
	}
	// Not before every active broker has seen the controlled-shutdown record.
	heartbeat(t, c, Heartbeat{NodeID: 2, Epoch: epochs[2], MetadataOffset: csOffset})
	heartbeat(t, c, Heartbeat{NodeID: 3, Epoch: epochs[3], MetadataOffset: csOffset - 1})
	before := c.Image()
	res = heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epochs[1], MetadataOffset: c.Image().Index(), WantShutdown: true})
	if res.ShouldShutdown || c.Image() != before {
		t.Fatalf("broker 3 is behind: %+v", res)
	}
	heartbeat(t, c, Heartbeat{NodeID: 3, Epoch: epochs[3], MetadataOffset: csOffset})
	res = heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epochs[1], MetadataOffset: c.Image().Index(), WantShutdown: true})
	if !res.ShouldShutdown || !res.IsFenced || !broker(t, c, 1).Fenced {
		t.Fatalf("shutdown: %+v %+v", res, broker(t, c, 1))
	}
	// Repeating the request commits nothing more.
	done := c.Image()
	if res := heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epochs[1], WantShutdown: true}); !res.ShouldShutdown || c.Image() != done {
		t.Fatalf("again: %+v", res)
	}
}

// An unfenced broker that leads nothing shuts down at once.
func TestShutdownWithoutLeaderships(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	epoch := activate(t, c, 1, "")
	activate(t, c, 2, "")
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{2, 1})})
	res := heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, WantShutdown: true})
	p := partition(t, c, "t", 0)
	if !res.ShouldShutdown || !broker(t, c, 1).Fenced || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("%+v %+v", res, p)
	}
}

func fence(t *testing.T, c *Controller, id int32) {
	t.Helper()
	b := broker(t, c, id)
	if res := heartbeat(t, c, Heartbeat{NodeID: id, Epoch: b.Epoch, WantFence: true}); !res.IsFenced {
		t.Fatalf("broker %d not fenced", id)
	}
}

func unfence(t *testing.T, c *Controller, id int32) {
	t.Helper()
	if res := heartbeat(t, c, caughtUp(c, id, broker(t, c, id).Epoch)); res.IsFenced {
		t.Fatalf("broker %d not unfenced", id)
	}
}

func TestElectionFromISRThenELR(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2, 3}), Configs: map[string]string{"min.insync.replicas": "2"}})
	type want struct {
		leader          int32
		isr, elr        []int32
		leaderEp, partE int32
	}
	check := func(step string, w want) {
		t.Helper()
		p := partition(t, c, "t", 0)
		if p.Leader != w.leader || !slices.Equal(p.ISR, w.isr) || !slices.Equal(p.ELR, w.elr) ||
			p.LeaderEpoch != w.leaderEp || p.PartitionEpoch != w.partE || p.LeaderRecoveryState != LeaderRecovered {
			t.Fatalf("%s: %+v, want %+v", step, p, w)
		}
	}
	fence(t, c, 1)
	check("fence 1", want{2, []int32{2, 3}, []int32{}, 1, 1})
	fence(t, c, 2)
	check("fence 2", want{3, []int32{3}, []int32{2}, 2, 2})
	fence(t, c, 3)
	check("fence 3", want{-1, []int32{}, []int32{2, 3}, 3, 3})
	unfence(t, c, 1) // not eligible: it left the ISR while the ISR was at min ISR
	check("unfence 1", want{-1, []int32{}, []int32{2, 3}, 3, 3})
	unfence(t, c, 3)
	check("unfence 3", want{3, []int32{3}, []int32{2}, 4, 4})
}

func TestUncleanElection(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		c, _ := newLifecycleController(t, func(cfg *Config) { cfg.UncleanLeaderElection = unclean })
		ctx := context.Background()
		e1 := activate(t, c, 1, "")
		activate(t, c, 2, "")
		top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2})})
		// The leader drops 2 from the ISR, then dies.
		res, err := c.AlterPartition(ctx, 1, e1, []AlterPartitionItem{{TopicID: top.ID, Partition: 0, NewISR: []ISRMember{{1, e1}}}})
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		fence(t, c, 1)
		p := partition(t, c, "t", 0)
		if !unclean {
			if p.Leader != -1 || len(p.ISR) != 0 || !slices.Equal(p.ELR, []int32{1}) {
				t.Fatalf("clean: %+v", p)
			}
			unfence(t, c, 1)
			if p := partition(t, c, "t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || len(p.ELR) != 0 || p.LeaderEpoch != 2 {
				t.Fatalf("back online: %+v", p)
			}
			if n := c.UncleanElections(); n != 0 {
				t.Fatalf("UncleanElections = %d with unclean elections off, want 0", n)
			}
			continue
		}
		if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || len(p.ELR) != 0 || p.LeaderRecoveryState != LeaderRecovering || p.LeaderEpoch != 1 {
			t.Fatalf("unclean: %+v", p)
		}
		if n := c.UncleanElections(); n != 1 {
			t.Fatalf("UncleanElections = %d after the automatic unclean election, want 1", n)
		}
		// The recovered leader reports RECOVERED; back to RECOVERING is refused.
		e2 := broker(t, c, 2).Epoch
		item := AlterPartitionItem{TopicID: top.ID, Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
			NewISR: []ISRMember{{2, e2}}, LeaderRecoveryState: LeaderRecovered}
		res, err = c.AlterPartition(ctx, 2, e2, []AlterPartitionItem{item})
		if err != nil || res[0].Err != nil || res[0].Partition.LeaderRecoveryState != LeaderRecovered {
			t.Fatal(err, res)
		}
		item.PartitionEpoch, item.LeaderRecoveryState = res[0].Partition.PartitionEpoch, LeaderRecovering
		if res, _ := c.AlterPartition(ctx, 2, e2, []AlterPartitionItem{item}); !errors.Is(res[0].Err, kerr.InvalidRequest) {
			t.Fatalf("RECOVERED -> RECOVERING: %v", res[0].Err)
		}
		if n := c.UncleanElections(); n != 1 {
			t.Fatalf("UncleanElections = %d after the recovery, want still 1", n)
		}
	}
}

// The topic config overrides the broker default in both directions.
func TestUncleanElectionTopicConfig(t *testing.T) {
	c, _ := newLifecycleController(t, func(cfg *Config) { cfg.UncleanLeaderElection = true })
	e1 := activate(t, c, 1, "")
	activate(t, c, 2, "")
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2}),
		Configs: map[string]string{"unclean.leader.election.enable": "false"}})
	if _, err := c.AlterPartition(context.Background(), 1, e1, []AlterPartitionItem{{TopicID: top.ID, Partition: 0, NewISR: []ISRMember{{1, e1}}}}); err != nil {
		t.Fatal(err)
	}
	fence(t, c, 1)
	if p := partition(t, c, "t", 0); p.Leader != -1 {
		t.Fatalf("unclean despite the topic config: %+v", p)
	}
}

func TestOfflineAndBack(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	activate(t, c, 1, "")
	activate(t, c, 2, "")
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1}, []int32{2})})
	fence(t, c, 1)
	if p := partition(t, c, "t", 0); p.Leader != -1 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || !slices.Equal(p.ELR, []int32{1}) {
		t.Fatalf("offline: %+v", p)
	}
	if p := partition(t, c, "t", 1); p.Leader != 2 || p.PartitionEpoch != 0 {
		t.Fatalf("other partition changed: %+v", p)
	}
	unfence(t, c, 1)
	if p := partition(t, c, "t", 0); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || p.LeaderEpoch != 2 || p.PartitionEpoch != 2 || len(p.ELR) != 0 {
		t.Fatalf("back: %+v", p)
	}
}

func TestAlterPartitionValidation(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	e := map[int32]int64{}
	for id := int32(1); id <= 4; id++ {
		e[id] = activate(t, c, id, "")
	}
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2, 3})})
	p := top.Partitions[0]
	item := func(mod func(*AlterPartitionItem)) AlterPartitionItem {
		it := AlterPartitionItem{TopicID: top.ID, Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
			NewISR: []ISRMember{{1, e[1]}, {2, e[2]}}}
		if mod != nil {
			mod(&it)
		}
		return it
	}
	if _, err := c.AlterPartition(ctx, 1, e[1]+100, []AlterPartitionItem{item(nil)}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.AlterPartition(ctx, 9, 1, []AlterPartitionItem{item(nil)}); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("unknown broker: %v", err)
	}
	before := c.Image()
	for _, tc := range []struct {
		name   string
		sender int32
		it     AlterPartitionItem
		want   *kerr.Error
	}{
		{"unknown topic id", 1, item(func(it *AlterPartitionItem) { it.TopicID = RandomUUID() }), kerr.UnknownTopicID},
		{"unknown partition", 1, item(func(it *AlterPartitionItem) { it.Partition = 5 }), kerr.UnknownTopicOrPartition},
		{"newer leader epoch", 1, item(func(it *AlterPartitionItem) { it.LeaderEpoch++ }), kerr.NotController},
		{"old leader epoch", 1, item(func(it *AlterPartitionItem) { it.LeaderEpoch-- }), kerr.FencedLeaderEpoch},
		{"not the leader", 2, item(nil), kerr.InvalidRequest},
		{"old partition epoch", 1, item(func(it *AlterPartitionItem) { it.PartitionEpoch-- }), kerr.InvalidUpdateVersion},
		{"not a replica", 1, item(func(it *AlterPartitionItem) { it.NewISR = append(it.NewISR, ISRMember{4, e[4]}) }), kerr.InvalidRequest},
		{"duplicate member", 1, item(func(it *AlterPartitionItem) { it.NewISR = append(it.NewISR, ISRMember{2, e[2]}) }), kerr.InvalidRequest},
		{"leader not in ISR", 1, item(func(it *AlterPartitionItem) { it.NewISR = []ISRMember{{2, e[2]}, {3, e[3]}} }), kerr.InvalidRequest},
		{"epoch mismatch", 1, item(func(it *AlterPartitionItem) { it.NewISR[1].BrokerEpoch = e[2] + 1 }), kerr.IneligibleReplica},
		{"recovering with 2", 1, item(func(it *AlterPartitionItem) { it.LeaderRecoveryState = LeaderRecovering }), kerr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.AlterPartition(ctx, tc.sender, e[tc.sender], []AlterPartitionItem{tc.it})
			if err != nil || len(res) != 1 || !errors.Is(res[0].Err, tc.want) {
				t.Fatalf("got %v %+v, want %v", err, res, tc.want)
			}
		})
	}
	if c.Image() != before {
		t.Fatal("a refused AlterPartition committed")
	}
	// Fenced and shutting-down replicas are ineligible.
	fence(t, c, 3)
	p = partition(t, c, "t", 0)
	if res, _ := c.AlterPartition(ctx, 1, e[1], []AlterPartitionItem{item(func(it *AlterPartitionItem) { it.NewISR = append(it.NewISR, ISRMember{3, e[3]}) })}); !errors.Is(res[0].Err, kerr.IneligibleReplica) {
		t.Fatalf("fenced member: %v", res[0].Err)
	}
	unfence(t, c, 3)
	heartbeat(t, c, Heartbeat{NodeID: 2, Epoch: e[2], WantShutdown: true})
	p = partition(t, c, "t", 0)
	if !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("after controlled shutdown of 2: %+v", p)
	}
	if res, _ := c.AlterPartition(ctx, 1, e[1], []AlterPartitionItem{item(nil)}); !errors.Is(res[0].Err, kerr.IneligibleReplica) {
		t.Fatalf("shutting-down member: %v", res[0].Err)
	}
	// Success: expand to {1, 3}; the partition epoch bumps, the leader epoch does not.
	res, err := c.AlterPartition(ctx, 1, e[1], []AlterPartitionItem{item(func(it *AlterPartitionItem) { it.NewISR = []ISRMember{{1, e[1]}, {3, -1}} })})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	got := res[0].Partition
	if !slices.Equal(got.ISR, []int32{1, 3}) || got.PartitionEpoch != p.PartitionEpoch+1 || got.LeaderEpoch != p.LeaderEpoch || got.Leader != 1 {
		t.Fatalf("after expand: %+v (was %+v)", got, p)
	}
	if !reflect.DeepEqual(partition(t, c, "t", 0), got) {
		t.Fatalf("image %+v, result %+v", partition(t, c, "t", 0), got)
	}
	// The same ISR again changes nothing and commits nothing.
	same := c.Image()
	res, err = c.AlterPartition(ctx, 1, e[1], []AlterPartitionItem{{TopicID: top.ID, Partition: 0, LeaderEpoch: got.LeaderEpoch,
		PartitionEpoch: got.PartitionEpoch, NewISR: []ISRMember{{1, e[1]}, {3, e[3]}}}})
	if err != nil || res[0].Err != nil || c.Image() != same || res[0].Partition.PartitionEpoch != got.PartitionEpoch {
		t.Fatalf("no-op: %v %+v", err, res)
	}
	// The old partition epoch is now refused.
	if res, _ := c.AlterPartition(ctx, 1, e[1], []AlterPartitionItem{{TopicID: top.ID, Partition: 0, LeaderEpoch: got.LeaderEpoch,
		PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{1, e[1]}}}}); !errors.Is(res[0].Err, kerr.InvalidUpdateVersion) {
		t.Fatalf("stale partition epoch: %v", res[0].Err)
	}
}

// Shrinking the ISR below min ISR moves the removed members into the ELR.
func TestAlterPartitionShrinkIntoELR(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	e := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		e[id] = activate(t, c, id, "")
	}
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2, 3}), Configs: map[string]string{"min.insync.replicas": "2"}})
	res, err := c.AlterPartition(context.Background(), 1, e[1], []AlterPartitionItem{{TopicID: top.ID, Partition: 0, NewISR: []ISRMember{{1, e[1]}}}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if p := res[0].Partition; !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.ELR, []int32{2, 3}) || p.LeaderEpoch != 0 || p.PartitionEpoch != 1 {
		t.Fatalf("%+v", p)
	}
	// Back at min ISR: the ELR is cleared.
	p := res[0].Partition
	res, err = c.AlterPartition(context.Background(), 1, e[1], []AlterPartitionItem{{TopicID: top.ID, Partition: 0,
		PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{1, e[1]}, {2, e[2]}}}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if p := res[0].Partition; !slices.Equal(p.ISR, []int32{1, 2}) || len(p.ELR) != 0 {
		t.Fatalf("%+v", p)
	}
}

func TestRackAwarePlacement(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
	for id := int32(1); id <= 6; id++ {
		activate(t, c, id, racks[id])
	}
	for _, parts := range []int32{6, 12, 7} {
		top := createTopic(t, c, CreateTopic{Name: "t" + string(rune('a'+parts)), Partitions: parts, ReplicationFactor: 3})
		leaders := map[int32]int{}
		for _, p := range top.Partitions {
			seen := map[string]bool{}
			for _, r := range p.Replicas {
				seen[racks[r]] = true
			}
			if len(seen) != 3 || p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) {
				t.Fatalf("%d partitions: partition %+v spans racks %v", parts, p, seen)
			}
			leaders[p.Leader]++
		}
		lo, hi := int(parts)/6, (int(parts)+5)/6
		for id := int32(1); id <= 6; id++ {
			if leaders[id] < lo || leaders[id] > hi {
				t.Fatalf("%d partitions: leaders %v", parts, leaders)
			}
		}
	}
	// CreatePartitions places the same way.
	if err := c.CreatePartitions(context.Background(), "tg", 12, nil, false); err != nil {
		t.Fatal(err)
	}
	top, _ := c.Image().Topic("tg")
	for _, p := range top.Partitions[6:] {
		seen := map[string]bool{}
		for _, r := range p.Replicas {
			seen[racks[r]] = true
		}
		if len(seen) != 3 {
			t.Fatalf("added partition %+v", p)
		}
	}
}

// Two racks of unequal size with RF 2: every partition still spans both racks.
func TestRackAwareUnevenRacks(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	racks := map[int32]string{1: "a", 2: "a", 3: "a", 4: "b"}
	for id := int32(1); id <= 4; id++ {
		activate(t, c, id, racks[id])
	}
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: 8, ReplicationFactor: 2})
	for _, p := range top.Partitions {
		if racks[p.Replicas[0]] == racks[p.Replicas[1]] {
			t.Fatalf("partition %+v on one rack", p)
		}
	}
}

func TestPlacementUsableBrokers(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	fence(t, c, 3)
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: 10, ReplicationFactor: 2})
	for _, p := range top.Partitions {
		if slices.Contains(p.Replicas, 3) {
			t.Fatalf("placed on a fenced broker: %+v", p)
		}
	}
	_, err := c.CreateTopic(ctx, CreateTopic{Name: "u", Partitions: 1, ReplicationFactor: 3})
	if !errors.Is(err, ErrInvalidReplicationFactor) ||
		err.Error() != "invalid replication factor: unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 2 broker(s) are registered." {
		t.Fatalf("err = %v", err)
	}
	if err := c.CreatePartitions(ctx, "t", 11, nil, false); err != nil {
		t.Fatal(err)
	}
	// A manual assignment may name a fenced broker: it is left out of the ISR and leadership.
	top = createTopic(t, c, CreateTopic{Name: "m", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{3, 1})})
	if p := top.Partitions[0]; p.Leader != 1 || !slices.Equal(p.ISR, []int32{1}) || !slices.Equal(p.Replicas, []int32{3, 1}) {
		t.Fatalf("manual: %+v", p)
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "n", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{3})}); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("only fenced: %v", err)
	}
	if err := c.CreatePartitions(ctx, "m", 2, [][]int32{{3}}, false); !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Fatalf("create partitions on fenced only: %v", err)
	}
	fence(t, c, 1)
	fence(t, c, 2)
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "v", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrInvalidReplicationFactor) ||
		err.Error() != "invalid replication factor: unable to replicate the partition 1 time(s): All brokers are currently fenced." {
		t.Fatalf("all fenced: %v", err)
	}
}

// Records written by the previous version (RegisterBrokerRecord v1, PartitionRecord v1) and
// its snapshots still load: the brokers they registered are unfenced, with one endpoint.
func TestOldRecordsLoad(t *testing.T) {
	const topicID = "kx6Jg7yrQ0Ws8gnm9x0y2Q"
	old := `{"v":1,"records":[` +
		`{"type":"registerBroker","v":1,"nodeId":1,"host":"localhost","port":9092,"rack":"r1"},` +
		`{"type":"topic","v":1,"name":"orders","topicId":"` + topicID + `"},` +
		`{"type":"partition","v":1,"topicId":"` + topicID + `","partition":0,"replicas":[1],"isr":[1],"leader":1,"leaderEpoch":2,"partitionEpoch":3}]}`
	f := NewFSM()
	if err := f.Apply(rawLog(7, old)); err != nil {
		t.Fatal(err)
	}
	im := f.Image()
	b, _ := im.Broker(1)
	if b.Fenced || b.Epoch != 7 || b.Host != "localhost" || b.Port != 9092 || b.Rack != "r1" ||
		!slices.Equal(b.Endpoints, []Endpoint{{Host: "localhost", Port: 9092}}) {
		t.Fatalf("broker %+v", b)
	}
	top, _ := im.Topic("orders")
	if p := top.Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 2 || p.PartitionEpoch != 3 || p.ELR == nil || len(p.ELR) != 0 {
		t.Fatalf("partition %+v", p)
	}
	// A snapshot of the previous version.
	snap := `{"v":1,"index":9,"clusterId":"c","nextProducerId":0,"brokers":[{"nodeId":1,"host":"h","port":9092}],"brokerConfigs":{},` +
		`"topics":[{"name":"orders","id":"` + topicID + `","partitions":[{"partition":0,"leader":1,"leaderEpoch":0,"partitionEpoch":0,"replicas":[1],"isr":[1]}]}]}`
	if err := f.Restore(readCloser(snap)); err != nil {
		t.Fatal(err)
	}
	b, _ = f.Image().Broker(1)
	if b.Fenced || !slices.Equal(b.Endpoints, []Endpoint{{Host: "h", Port: 9092}}) {
		t.Fatalf("broker from snapshot %+v", b)
	}
	// The new records apply on top of the old state.
	c := newController(testConfig(), f, &directCommitter{fsm: f, nodeID: 1, index: 9})
	e := activate(t, c, 1, "")
	if e <= 9 {
		t.Fatalf("epoch %d", e)
	}
}

// The image with every new field survives a snapshot round trip.
func TestLifecycleSnapshotRoundTrip(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "r")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2, 3}, []int32{3, 2, 1}), Configs: map[string]string{"min.insync.replicas": "3"}})
	fence(t, c, 3)
	heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: broker(t, c, 1).Epoch, WantShutdown: true})
	var buf bytes.Buffer
	if err := c.Image().writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := readImageJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Image()
	if !reflect.DeepEqual(got.Brokers(), want.Brokers()) {
		t.Fatalf("brokers\n%+v\n%+v", got.Brokers(), want.Brokers())
	}
	gt, _ := got.Topic("t")
	wt, _ := want.Topic("t")
	if !reflect.DeepEqual(gt.Partitions, wt.Partitions) {
		t.Fatalf("partitions\n%+v\n%+v", gt.Partitions, wt.Partitions)
	}
	if p := wt.Partitions[0]; len(p.ELR) == 0 || !broker(t, c, 1).InControlledShutdown {
		t.Fatalf("test does not cover the ELR / controlled shutdown: %+v", p)
	}
}

// The session loop started by Start fences a broker whose session expired on the fake clock.
func TestSessionLoopFences(t *testing.T) {
	clk := newFakeClock()
	c := startTest(t, t.TempDir(), func(cfg *Config) { cfg.Now = clk.Now })
	defer c.Close()
	activate(t, c, 2, "")
	ch := c.Subscribe()
	defer c.Unsubscribe(ch)
	clk.Advance(9*time.Second + time.Millisecond)
	timeout := time.After(10 * time.Second)
	for !broker(t, c, 2).Fenced {
		select {
		case <-ch:
		case <-timeout:
			t.Fatal("broker 2 not fenced by the session loop")
		}
	}
}

func rawLog(index uint64, data string) *raft.Log {
	return &raft.Log{Index: index, Type: raft.LogCommand, Data: []byte(data)}
}

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// A raft log written by the previous version replays after a restart, and this node's broker
// registers its new incarnation at once (its old registration has no session here).
func TestOldRaftLogReplays(t *testing.T) {
	const topicID = "kx6Jg7yrQ0Ws8gnm9x0y2Q"
	old := `{"v":1,"records":[` +
		`{"type":"registerBroker","v":1,"nodeId":1,"host":"localhost","port":9092},` +
		`{"type":"topic","v":1,"name":"orders","topicId":"` + topicID + `"},` +
		`{"type":"partition","v":1,"topicId":"` + topicID + `","partition":0,"replicas":[1],"isr":[1],"leader":1,"leaderEpoch":0,"partitionEpoch":0}]}`
	dir := t.TempDir()
	c := startTest(t, dir, nil)
	resp, err := c.log.commit(context.Background(), []byte(old))
	if err != nil || resp != nil {
		t.Fatalf("commit: %v %v", resp, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = startTest(t, dir, nil)
	defer c.Close()
	if b := broker(t, c, 1); b.Fenced || b.Host != "localhost" {
		t.Fatalf("broker %+v", b)
	}
	if p := partition(t, c, "orders", 0); p.Leader != 1 {
		t.Fatalf("partition %+v", p)
	}
	old1 := broker(t, c, 1).Epoch
	if e := activate(t, c, 1, ""); e <= old1 {
		t.Fatalf("epoch %d after %d", e, old1)
	}
	// The old incarnation was never fenced: it left the ISR (into the ELR) when the new one
	// registered, and the new one leads again, with a new leader epoch, once unfenced.
	if p := partition(t, c, "orders", 0); p.Leader != 1 || p.LeaderEpoch != 2 || !slices.Equal(p.ISR, []int32{1}) || len(p.ELR) != 0 {
		t.Fatalf("partition after re-registration %+v", p)
	}
}

// Sessions of an earlier term never fence anybody after leadership comes back.
func TestLostLeadershipDropsSessions(t *testing.T) {
	c, clk := newLifecycleController(t, nil)
	ctx := context.Background()
	activate(t, c, 2, "")
	c.mu.Lock()
	c.gainedLeadershipLocked(clk.Now())
	c.lostLeadershipLocked()
	c.mu.Unlock()
	clk.Advance(time.Minute)
	if err := c.expireSessions(ctx, clk.Now()); err != nil || broker(t, c, 2).Fenced {
		t.Fatalf("fenced by a stale session: %v", err)
	}
	c.mu.Lock()
	c.gainedLeadershipLocked(clk.Now())
	c.mu.Unlock()
	clk.Advance(9 * time.Second)
	if err := c.expireSessions(ctx, clk.Now()); err != nil || broker(t, c, 2).Fenced {
		t.Fatalf("fenced before its restarted session expired: %v", err)
	}
	clk.Advance(time.Millisecond)
	if err := c.expireSessions(ctx, clk.Now()); err != nil || !broker(t, c, 2).Fenced {
		t.Fatalf("not fenced after its restarted session expired: %v", err)
	}
}

// A valid leader keeps leading when a more preferred replica comes back (no preferred
// election), and min.insync.replicas above the replication factor counts as the factor.
func TestLeaderStaysAndMinISRCap(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	e := map[int32]int64{}
	for id := int32(1); id <= 2; id++ {
		e[id] = activate(t, c, id, "")
	}
	top := createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1,
		Assignments: assign([]int32{1, 2}), Configs: map[string]string{"min.insync.replicas": "5"}})
	fence(t, c, 1)
	if p := partition(t, c, "t", 0); p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || !slices.Equal(p.ELR, []int32{1}) {
		t.Fatalf("after fencing 1: %+v", p)
	}
	unfence(t, c, 1)
	p := partition(t, c, "t", 0)
	if p.Leader != 2 || p.LeaderEpoch != 1 {
		t.Fatalf("after unfencing 1: %+v", p)
	}
	// Back to two members = the replication factor: the ELR is cleared.
	res, err := c.AlterPartition(context.Background(), 2, e[2], []AlterPartitionItem{{TopicID: top.ID, Partition: 0,
		LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: []ISRMember{{2, e[2]}, {1, e[1]}}}})
	if err != nil || res[0].Err != nil || len(res[0].Partition.ELR) != 0 {
		t.Fatalf("%v %+v", err, res)
	}
}

// A new incarnation whose predecessor was not fenced (its session lapsed between two checks)
// takes over cleanly: the predecessor leaves ISRs and leaderships in the registration batch.
func TestReregisterFencesPredecessor(t *testing.T) {
	c, clk := newLifecycleController(t, nil)
	ctx := context.Background()
	activate(t, c, 1, "")
	e2 := activate(t, c, 2, "")
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{1, 2})})
	clk.Advance(10 * time.Second)
	heartbeat(t, c, caughtUp(c, 2, e2))
	// No expireSessions pass yet: broker 1 is unfenced with a lapsed session.
	epoch, err := c.RegisterBroker(ctx, registration(c, 1, ""))
	if err != nil {
		t.Fatal(err)
	}
	p := partition(t, c, "t", 0)
	if p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) || p.LeaderEpoch != 1 || !broker(t, c, 1).Fenced || broker(t, c, 1).Epoch != epoch {
		t.Fatalf("after re-registration: %+v %+v", p, broker(t, c, 1))
	}
	// A predecessor that shut down cleanly (fenced) changes no partition.
	heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: epoch, WantShutdown: true})
	before := partition(t, c, "t", 0)
	if _, err := c.RegisterBroker(ctx, registration(c, 1, "")); err != nil {
		t.Fatal(err)
	}
	if after := partition(t, c, "t", 0); !reflect.DeepEqual(after, before) {
		t.Fatalf("partition changed: %+v -> %+v", before, after)
	}
}

// TestDeadBrokerFencedEarly: a broker whose heartbeat is late is probed once per missed
// heartbeat; when its listener refuses connections (its process is gone) it is fenced at once,
// long before its session expires; a late broker that still accepts connections (paused) and one
// that heartbeated meanwhile are left to the session timeout.
func TestDeadBrokerFencedEarly(t *testing.T) {
	dead := map[string]bool{}
	probes := map[string]int{}
	c, clk := newLifecycleController(t, func(cfg *Config) {
		cfg.HeartbeatInterval = 2 * time.Second
		cfg.Probe = func(addr string) bool { probes[addr]++; return dead[addr] }
	})
	ctx := context.Background()
	epochs := map[int32]int64{}
	for id := int32(1); id <= 3; id++ {
		epochs[id] = activate(t, c, id, "")
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{2, 3, 1})})
	addr := func(id int32) string { return probeAddr(broker(t, c, id), c.cfg.RaftListenerName) }
	dead[addr(2)] = true

	clk.Advance(2 * time.Second) // on time: nobody is probed
	if err := c.fenceDeadBrokers(ctx, clk.Now()); err != nil || len(probes) != 0 {
		t.Fatalf("probed on time: %v %v", probes, err)
	}
	clk.Advance(time.Second) // both late; 3 still accepts connections
	if err := c.fenceDeadBrokers(ctx, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if !broker(t, c, 2).Fenced || broker(t, c, 3).Fenced {
		t.Fatalf("after 3 s: broker 2 fenced %v, broker 3 fenced %v; want only 2", broker(t, c, 2).Fenced, broker(t, c, 3).Fenced)
	}
	if p := partition(t, c, "t", 0); p.Leader != 3 {
		t.Fatalf("leader of the dead broker's partition: %d, want 3", p.Leader)
	}
	// One probe per missed heartbeat: broker 3 is not probed again until it heartbeats and is
	// late once more.
	if err := c.fenceDeadBrokers(ctx, clk.Now().Add(time.Second)); err != nil || probes[addr(3)] != 1 {
		t.Fatalf("broker 3 probed %d times, want 1 (%v)", probes[addr(3)], err)
	}
	heartbeat(t, c, caughtUp(c, 3, epochs[3]))
	dead[addr(3)] = true // it dies right after its heartbeat
	clk.Advance(2 * time.Second)
	if err := c.fenceDeadBrokers(ctx, clk.Now()); err != nil || broker(t, c, 3).Fenced {
		t.Fatalf("fenced before its heartbeat was late: %v", err)
	}
	clk.Advance(time.Second)
	if err := c.fenceDeadBrokers(ctx, clk.Now()); err != nil || !broker(t, c, 3).Fenced {
		t.Fatalf("not fenced once late and refusing connections: %v", err)
	}
}

// TestRestartOnSameLogDirsReplacesAtOnce: a new incarnation whose log dirs are the old one's
// (the same directory ids: the node restarted after kill -9; the dirs' lock allows one process)
// replaces the live session at once, fencing the old incarnation out of its leaderships; a new
// incarnation on other dirs is still DUPLICATE_BROKER_REGISTRATION until the session expires.
func TestRestartOnSameLogDirsReplacesAtOnce(t *testing.T) {
	c, _ := newLifecycleController(t, nil)
	ctx := context.Background()
	dirs := []UUID{RandomUUID(), RandomUUID()}
	for id := int32(1); id <= 3; id++ {
		reg := registration(c, id, "")
		if id == 2 {
			reg.LogDirs = dirs
		}
		epoch, err := c.RegisterBroker(ctx, reg)
		if err != nil {
			t.Fatal(err)
		}
		heartbeat(t, c, caughtUp(c, id, epoch))
	}
	createTopic(t, c, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign([]int32{2, 1, 3})})
	old := broker(t, c, 2)

	other := registration(c, 2, "")
	other.LogDirs = []UUID{RandomUUID()}
	if _, err := c.RegisterBroker(ctx, other); !errors.Is(err, kerr.DuplicateBrokerRegistration) {
		t.Fatalf("other dirs: err %v, want DUPLICATE_BROKER_REGISTRATION", err)
	}
	again := registration(c, 2, "")
	again.LogDirs = []UUID{dirs[1], dirs[0]}
	epoch, err := c.RegisterBroker(ctx, again)
	if err != nil {
		t.Fatalf("same dirs: %v", err)
	}
	if epoch <= old.Epoch || !broker(t, c, 2).Fenced {
		t.Fatalf("new registration epoch %d (old %d), fenced %v: want a new, fenced registration", epoch, old.Epoch, broker(t, c, 2).Fenced)
	}
	if p := partition(t, c, "t", 0); p.Leader == 2 || slices.Contains(p.ISR, 2) {
		t.Fatalf("the old incarnation still leads or is in the ISR: %+v", p)
	}
}

// TestNewControllerProbesAtOnce: a controller that gains leadership has heard no heartbeat to
// be late against; it probes every broker at once and fences one whose process is gone (it may
// have died together with the old controller).
func TestNewControllerProbesAtOnce(t *testing.T) {
	var probed []string
	c, clk := newLifecycleController(t, func(cfg *Config) {
		cfg.Probe = func(addr string) bool { probed = append(probed, addr); return addr == "localhost:9093" }
	})
	for id := int32(1); id <= 3; id++ {
		activate(t, c, id, "")
	}
	c.mu.Lock()
	c.restartSessionsLocked(clk.Now())
	delete(c.sessions, 2) // a broker with no session (registered, never heard): not probed, no panic
	c.mu.Unlock()
	if err := c.fenceDeadBrokers(context.Background(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	if len(probed) != 1 || !broker(t, c, 3).Fenced || broker(t, c, 2).Fenced {
		t.Fatalf("probed %v; broker 3 fenced %v, broker 2 fenced %v: want 3 probed and fenced", probed, broker(t, c, 3).Fenced, broker(t, c, 2).Fenced)
	}
	// Once probed, an unheard session waits for lateness like any other.
	if err := c.fenceDeadBrokers(context.Background(), clk.Now()); err != nil || len(probed) != 1 {
		t.Fatalf("probed again: %v %v", probed, err)
	}
}
