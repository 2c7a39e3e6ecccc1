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

	"github.com/twmb/franz-go/pkg/kerr"
)

// reassignTopic creates topic "r" with one partition on replicas (leader replicas[0]).
func reassignTopic(t *testing.T, c *Controller, replicas ...int32) {
	t.Helper()
	createTopic(t, c, CreateTopic{Name: "r", Partitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: replicas}})
}

func part0(t *testing.T, c *Controller) Partition {
	t.Helper()
	top, ok := c.Image().Topic("r")
	if !ok {
		t.Fatal("no topic r")
	}
	return top.Partitions[0]
}

// reassign runs one AlterPartitionReassignments item and returns its error.
func reassign(t *testing.T, c *Controller, r Reassignment) error {
	t.Helper()
	errs, err := c.AlterPartitionReassignments(context.Background(), []Reassignment{r})
	if err != nil {
		t.Fatalf("reassign %+v: %v", r, err)
	}
	return errs[0]
}

// expandISR sends the leader's AlterPartition proposing isr for r-0.
func expandISR(t *testing.T, c *Controller, isr ...int32) AlterPartitionResult {
	t.Helper()
	p := part0(t, c)
	top, _ := c.Image().Topic("r")
	item := AlterPartitionItem{TopicID: top.ID, Partition: 0, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch}
	for _, id := range isr {
		item.NewISR = append(item.NewISR, ISRMember{BrokerID: id, BrokerEpoch: -1})
	}
	res, err := c.AlterPartition(context.Background(), p.Leader, broker(t, c, p.Leader).Epoch, []AlterPartitionItem{item})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

type wantPart struct {
	leader                   int32
	replicas, isr            []int32
	adding, removing         []int32
	leaderEpoch, partitionEp int32
}

func checkPart(t *testing.T, p Partition, w wantPart) {
	t.Helper()
	eq := func(a, b []int32) bool { return slices.Equal(a, b) || len(a) == 0 && len(b) == 0 }
	if p.Leader != w.leader || !eq(p.Replicas, w.replicas) || !eq(p.ISR, w.isr) || !eq(p.AddingReplicas, w.adding) ||
		!eq(p.RemovingReplicas, w.removing) || p.LeaderEpoch != w.leaderEpoch || p.PartitionEpoch != w.partitionEp {
		t.Fatalf("partition %+v,\nwant %+v", p, w)
	}
	if p.Reassigning() != (len(w.adding) > 0 || len(w.removing) > 0) {
		t.Fatalf("Reassigning() = %v for %+v", p.Reassigning(), p)
	}
}

func TestReassignMoveLeaderOff(t *testing.T) {
	c := newTestController(t, 4)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	// Stage 1: the target then the removed replicas; the leader and ISR stay.
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 3, 4, 1}, isr: []int32{1, 2, 3},
		adding: []int32{4}, removing: []int32{1}, leaderEpoch: 0, partitionEp: 1})

	// The same target again changes nothing.
	index := c.Image().Index()
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil || c.Image().Index() != index {
		t.Fatalf("repeated target: %v, committed %v", err, c.Image().Index() != index)
	}

	// Stage 3: the leader's AlterPartition adding 4 to the ISR completes the move; the leader
	// (1) is not a target, so 2 takes over and the leader learns NEW_LEADER_ELECTED.
	res := expandISR(t, c, 1, 2, 3, 4)
	if !errors.Is(res.Err, kerr.NewLeaderElected) {
		t.Fatalf("AlterPartition completing the move: %v", res.Err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 2, replicas: []int32{2, 3, 4}, isr: []int32{2, 3, 4}, leaderEpoch: 1, partitionEp: 2})
}

func TestReassignLeaderStays(t *testing.T) {
	c := newTestController(t, 4)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{1, 2, 4}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{1, 2, 4, 3}, isr: []int32{1, 2, 3},
		adding: []int32{4}, removing: []int32{3}, partitionEp: 1})
	// An ISR change that does not yet hold the target keeps the move going.
	if res := expandISR(t, c, 1, 2); res.Err != nil {
		t.Fatal(res.Err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{1, 2, 4, 3}, isr: []int32{1, 2},
		adding: []int32{4}, removing: []int32{3}, partitionEp: 2})
	// Completion keeps leader 1, but replica 3 left: the leader epoch bumps.
	res := expandISR(t, c, 1, 2, 4)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := wantPart{leader: 1, replicas: []int32{1, 2, 4}, isr: []int32{1, 2, 4}, leaderEpoch: 1, partitionEp: 3}
	checkPart(t, part0(t, c), want)
	checkPart(t, res.Partition, want)
}

func TestReassignCompletesAtOnce(t *testing.T) {
	c := newTestController(t, 3)
	reassignTopic(t, c, 1, 2, 3)
	// A reorder moves no data: it completes in its first record, without a leader epoch bump.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{3, 2, 1}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{3, 2, 1}, isr: []int32{1, 2, 3}, partitionEp: 1})
	// Dropping an in-sync replica also completes at once, bumping the leader epoch.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 1}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 1}, isr: []int32{1, 2}, leaderEpoch: 1, partitionEp: 2})
	// Dropping the leader moves leadership to the first target replica.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 2, replicas: []int32{2}, isr: []int32{2}, leaderEpoch: 2, partitionEp: 3})
}

func TestReassignCancel(t *testing.T) {
	c := newTestController(t, 6)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0}); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Fatalf("cancel with none in progress: %v", err)
	}
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{4, 5, 6}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{4, 5, 6, 1, 2, 3}, isr: []int32{1, 2, 3},
		adding: []int32{4, 5, 6}, removing: []int32{1, 2, 3}, partitionEp: 1})
	if res := expandISR(t, c, 1, 2, 3, 4); res.Err != nil {
		t.Fatal(res.Err)
	}
	// Cancelling takes the adding replicas out of the replicas and the ISR; replicas left,
	// so the leader epoch bumps.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leaderEpoch: 1, partitionEp: 3})
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0}); !errors.Is(err, kerr.NoReassignmentInProgress) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestReassignCancelLeaderAdded(t *testing.T) {
	c := newTestController(t, 4)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{4, 1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if res := expandISR(t, c, 1, 2, 3, 4); res.Err != nil {
		t.Fatal(res.Err)
	}
	// Adding a replica completes once it is in the ISR; leadership stays with 1 (still valid).
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{4, 1, 2, 3}, isr: []int32{1, 2, 3, 4}, partitionEp: 2})
}

// setPartition commits a raw change of r-0 (test set-up of states the controller reaches
// through fencing and elections).
func setPartition(t *testing.T, c *Controller, leader int32, isr []int32) {
	t.Helper()
	p := part0(t, c)
	top, _ := c.Image().Topic("r")
	p.Leader, p.ISR = leader, isr
	p.LeaderEpoch++
	p.PartitionEpoch++
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.commitLocked(context.Background(), changeRecord(UUID(top.ID), p)); err != nil {
		t.Fatal(err)
	}
}

func TestReassignCancelUnclean(t *testing.T) {
	c := newTestController(t, 6)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{4, 5, 6}}); err != nil {
		t.Fatal(err)
	}
	// Only adding replicas are left in the ISR (the originals failed over to 4).
	setPartition(t, c, 4, []int32{4})
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0}); !errors.Is(err, kerr.InvalidReplicaAssignment) ||
		!strings.Contains(err.Error(), "unclean leader election") {
		t.Fatalf("revert needing an unclean election: %v", err)
	}
	if err := c.AlterTopicConfigs(context.Background(), "r", map[string]*string{configUncleanLeaderElection: str("true")}); err != nil {
		t.Fatal(err)
	}
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0}); err != nil {
		t.Fatal(err)
	}
	// The first original replica becomes the ISR and leader.
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{1, 2, 3}, isr: []int32{1}, leaderEpoch: 2, partitionEp: 3})
}

func TestReassignReplaceTarget(t *testing.T) {
	c := newTestController(t, 5)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	// A new target is computed against the full set [2 3 4 1]: 5 is added, 1 and 4 removed.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 5}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 3, 5, 1, 4}, isr: []int32{1, 2, 3},
		adding: []int32{5}, removing: []int32{1, 4}, partitionEp: 2})
	// Back to the original replicas, which are all in the ISR: it completes at once.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{1, 2, 3}, isr: []int32{1, 2, 3}, leaderEpoch: 1, partitionEp: 3})
}

func TestReassignValidation(t *testing.T) {
	c := newTestController(t, 3)
	reassignTopic(t, c, 1, 2)
	index := c.Image().Index()
	items := []Reassignment{
		{Topic: "nosuch", Partition: 0, Replicas: []int32{1}},
		{Topic: "r", Partition: 1, Replicas: []int32{1}},
		{Topic: "r", Partition: -1},
		{Topic: "r", Partition: 0, Replicas: []int32{}},
		{Topic: "r", Partition: 0, Replicas: []int32{1, 1}},
		{Topic: "r", Partition: 0, Replicas: []int32{1, 9}},
		{Topic: "r", Partition: 0, Replicas: []int32{1, 2, 3}, KeepReplicationFactor: true},
		{Topic: "r", Partition: 0, Replicas: []int32{2, 1}, KeepReplicationFactor: true},
	}
	want := []error{kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition,
		kerr.InvalidReplicaAssignment, kerr.InvalidReplicaAssignment, kerr.InvalidReplicaAssignment, kerr.InvalidReplicationFactor, nil}
	errs, err := c.AlterPartitionReassignments(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if !errors.Is(errs[i], w) || (w == nil) != (errs[i] == nil) {
			t.Errorf("item %d %+v: %v, want %v", i, items[i], errs[i], w)
		}
	}
	if !strings.Contains(errs[5].Error(), "broker 9, but no broker with that id is registered") {
		t.Errorf("message: %v", errs[5])
	}
	// Only the valid item (a reorder) committed, in one entry.
	if c.Image().Index() != index+1 {
		t.Fatalf("index %d, want %d", c.Image().Index(), index+1)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 1}, isr: []int32{1, 2}, partitionEp: 1})
}

func TestReassignFencedAddingReplica(t *testing.T) {
	c := newTestController(t, 4)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	// The leader is fenced mid-move: 2 (first in the target order) takes over, the move
	// goes on with 1 out of the ISR.
	heartbeat(t, c, Heartbeat{NodeID: 1, Epoch: broker(t, c, 1).Epoch, MetadataOffset: c.Image().Index(), WantFence: true})
	checkPart(t, part0(t, c), wantPart{leader: 2, replicas: []int32{2, 3, 4, 1}, isr: []int32{2, 3},
		adding: []int32{4}, removing: []int32{1}, leaderEpoch: 1, partitionEp: 2})
	// 4 catching up completes it without 1.
	if res := expandISR(t, c, 2, 3, 4); res.Err != nil {
		t.Fatal(res.Err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 2, replicas: []int32{2, 3, 4}, isr: []int32{2, 3, 4}, leaderEpoch: 2, partitionEp: 3})
}

func TestReassignRecordsAndSnapshot(t *testing.T) {
	c := newTestController(t, 4)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	// The snapshot keeps the move in progress.
	snap, err := c.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	f2 := NewFSM()
	if err := f2.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if a, b := c.Image(), f2.Image(); !reflect.DeepEqual(a, b) {
		t.Fatalf("restored image differs:\n%+v\n%+v", a, b)
	}
	if !bytes.Contains(sink.Bytes(), []byte(`"addingReplicas":[4],"removingReplicas":[1]`)) {
		t.Fatalf("snapshot: %s", sink.Bytes())
	}

	// Record versions: a change of the assignment is version 2 with the three fields, an
	// ISR-only change stays version 1 (nodes of the previous release apply it), a clear is [].
	top, _ := c.Image().Topic("r")
	p := part0(t, c)
	cb := changeBuilder{part: p, targetISR: []int32{1, 2, 3, 4}, minISR: 1, acceptable: func(int32) bool { return true }}
	next, ok := cb.build()
	if !ok {
		t.Fatal("no change")
	}
	data, err := EncodeBatch([]Record{cb.record(UUID(top.ID), next)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"v":2`, `"replicas":[2,3,4]`, `"addingReplicas":[]`, `"removingReplicas":[]`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("completion record lacks %s: %s", want, data)
		}
	}
	recs, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[0].(*PartitionChangeRecord); r.AddingReplicas == nil || len(r.AddingReplicas) != 0 || r.RemovingReplicas == nil {
		t.Fatalf("cleared lists decode as %+v", r)
	}
	cb = changeBuilder{part: p, targetISR: []int32{1, 2}, minISR: 1, acceptable: func(int32) bool { return true }}
	next, _ = cb.build()
	data, _ = EncodeBatch([]Record{cb.record(UUID(top.ID), next)})
	if !strings.Contains(string(data), `"v":1`) || strings.Contains(string(data), "eplicas") {
		t.Fatalf("ISR-only change: %s", data)
	}
	// A version 1 change record (no assignment fields) leaves the assignment as it is.
	im, err := c.Image().applyBatch(c.Image().Index()+1, []Record{changeRecord(UUID(top.ID), next)})
	if err != nil {
		t.Fatal(err)
	}
	np := im.topics["r"].Partitions[0]
	if !slices.Equal(np.Replicas, p.Replicas) || !slices.Equal(np.AddingReplicas, []int32{4}) || !slices.Equal(np.RemovingReplicas, []int32{1}) {
		t.Fatalf("v1 change altered the assignment: %+v", np)
	}
	// An apply that would list a replica twice is refused.
	bad := cb.record(UUID(top.ID), next)
	bad.Replicas = []int32{1, 1, 2}
	if _, err := c.Image().applyBatch(c.Image().Index()+1, []Record{bad}); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("duplicate replica applied: %v", err)
	}
}

func TestReassignReplaceTargetKeepsRequestedReplicas(t *testing.T) {
	c := newTestController(t, 5)
	reassignTopic(t, c, 1, 2, 3)
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4}}); err != nil {
		t.Fatal(err)
	}
	// A target adding 5 as well: 4, still catching up, stays an adding replica.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4, 5}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 3, 4, 5, 1}, isr: []int32{1, 2, 3},
		adding: []int32{4, 5}, removing: []int32{1}, partitionEp: 2})
	// The full set as target: nothing is removed any more (Kafka would keep removing [1] and
	// complete as [2 3 4 5]); the move completes, keeping 1, once 4 and 5 are in the ISR.
	if err := reassign(t, c, Reassignment{Topic: "r", Partition: 0, Replicas: []int32{2, 3, 4, 5, 1}}); err != nil {
		t.Fatal(err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 3, 4, 5, 1}, isr: []int32{1, 2, 3},
		adding: []int32{4, 5}, partitionEp: 3})
	if res := expandISR(t, c, 1, 2, 3, 4, 5); res.Err != nil {
		t.Fatal(res.Err)
	}
	checkPart(t, part0(t, c), wantPart{leader: 1, replicas: []int32{2, 3, 4, 5, 1}, isr: []int32{1, 2, 3, 4, 5}, partitionEp: 4})
}
