package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator moves: the leadership of a __consumer_offsets partition goes from one coordinator
// (Resign) to another (Elect), both on the same store, as two brokers of a cluster share the
// replicated partition. The group keeps its members as Kafka's does (GroupMetadataManager's
// replay of GroupMetadataValue, then onLoaded scheduling every member's heartbeat).

const movePartitions = 4

// newClusterHarness returns a harness whose coordinator serves only the partitions it is elected
// for, on store and clock.
func newClusterHarness(t *testing.T, store *partitionedStore, clock *fakeClock) *harness {
	t.Helper()
	cfg := testConfig()
	cfg.OffsetsPartitions = movePartitions
	c := NewCoordinator(cfg, store, clock)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx); err != nil {
		t.Fatalf("load: %v", err)
	}
	return &harness{t: t, c: c, clock: clock}
}

// elect makes h's coordinator the owner of partition p and waits until its groups are loaded.
func (h *harness) elect(p int32, group string) {
	h.t.Helper()
	if err := h.c.Elect(p); err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, "partition loaded", func() bool { return h.c.groupStatus(group) == 0 })
}

// describe returns the DescribeGroups answer for one group.
func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Version = 5
	r.Groups = []string{group}
	return h.c.DescribeGroups(r).Groups[0]
}

// leaderOf returns the group's leader as the coordinator holds it.
func (h *harness) leaderOf(group string) string {
	g := h.c.lockGroup(group, false)
	if g == nil {
		return ""
	}
	defer g.mu.Unlock()
	return g.leader
}

// movedGroup brings up a Stable group of two dynamic members on coordinator a, commits an offset
// in its generation, and moves the group's partition to a new coordinator b on the same store
// and clock, after advance has passed with no coordinator serving it. It returns b, the member
// ids (leader first) and the generation.
func movedGroup(t *testing.T, group string, advance time.Duration) (*harness, []string, int32) {
	t.Helper()
	store := newPartitionedStore(movePartitions)
	clock := newFakeClock()
	p := OffsetsPartition(group, movePartitions)
	a := newClusterHarness(t, store, clock)
	a.elect(p, group)
	ids, gen := a.stableGroup(group, 2)
	if code := commitCode(a.c.OffsetCommit(commitReq(group, ids[0], gen, "t1", 42))); code != 0 {
		t.Fatalf("commit on the first coordinator: %d", code)
	}
	a.c.Resign(p)
	if code := a.heartbeat(group, ids[0], gen); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat to the resigned coordinator: %d, want NOT_COORDINATOR", code)
	}
	clock.Advance(advance)
	b := newClusterHarness(t, store, clock)
	b.elect(p, group)
	return b, ids, gen
}

// TestGroupMoveKeepsMembers: after a coordinator move the group is Stable with both members,
// their generation, protocol, leader and assignments; heartbeats, SyncGroup and OffsetCommit in
// that generation work (no REBALANCE_IN_PROGRESS), and members that keep heartbeating stay past
// their session timeout. The sessions start at the load: the time the partition had no
// coordinator (longer than the session timeout) does not count.
func TestGroupMoveKeepsMembers(t *testing.T) {
	group := groupOn(t, 1, movePartitions)
	b, ids, gen := movedGroup(t, group, 30*time.Second)

	d := b.describe(group)
	if d.ErrorCode != 0 || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("moved group: %+v", d)
	}
	for i, m := range d.Members {
		if m.MemberID != ids[i] || m.ClientID != "client" || m.ClientHost != "/10.0.0.1" ||
			string(m.MemberAssignment) != "assignment-"+ids[i] || string(m.ProtocolMetadata) != string(consumerMeta("t1")) {
			t.Fatalf("moved member %d: %+v", i, m)
		}
	}
	if l := b.leaderOf(group); l != ids[0] {
		t.Fatalf("leader %q after the move, want %q", l, ids[0])
	}
	for _, id := range ids {
		if code := b.heartbeat(group, id, gen); code != 0 {
			t.Fatalf("heartbeat of %s in generation %d after the move: %d", id, gen, code)
		}
	}
	if code := b.heartbeat(group, ids[0], gen-1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with an older generation: %d, want ILLEGAL_GENERATION", code)
	}
	// A member that missed its SyncGroup answer asks again: its assignment, not a rebalance.
	if r := recv(t, b.sync(syncReq(5, group, ids[1], gen, nil))); r.ErrorCode != 0 ||
		string(r.MemberAssignment) != "assignment-"+ids[1] || r.Protocol == nil || *r.Protocol != "range" {
		t.Fatalf("sync after the move: %+v", r)
	}
	if code := commitCode(b.c.OffsetCommit(commitReq(group, ids[1], gen, "t1", 50))); code != 0 {
		t.Fatalf("commit in the generation after the move: %d", code)
	}
	if o := fetch(b, 7, group, "t1", 0).Topics[0].Partitions[0].Offset; o != 50 {
		t.Fatalf("offset after the commit: %d, want 50", o)
	}
	// The members keep heartbeating (every 6 s, session 10 s): they stay, nothing rebalances.
	for range 4 {
		b.clock.Advance(6 * time.Second)
		for _, id := range ids {
			if code := b.heartbeat(group, id, gen); code != 0 {
				t.Fatalf("heartbeat of %s after %v: %d", id, b.clock.Now().Sub(time.Unix(1_700_000_000, 0)), code)
			}
		}
	}
	if s := b.state(group); s != "Stable" {
		t.Fatalf("state %s after the members kept heartbeating", s)
	}
}

// TestGroupMoveAbsentMemberExpires: a loaded member that never heartbeats the new coordinator
// expires its stored session timeout after the load (not before); the group rebalances and the
// member that stayed is the next generation alone.
func TestGroupMoveAbsentMemberExpires(t *testing.T) {
	group := groupOn(t, 2, movePartitions)
	b, ids, gen := movedGroup(t, group, 0)

	b.clock.Advance(6 * time.Second)
	if code := b.heartbeat(group, ids[0], gen); code != 0 {
		t.Fatalf("heartbeat at 6 s: %d", code)
	}
	b.clock.Advance(3900 * time.Millisecond) // 9.9 s after the load: the session (10 s) holds
	if s := b.state(group); s != "Stable" {
		t.Fatalf("state %s before the absent member's session timeout", s)
	}
	b.clock.Advance(200 * time.Millisecond) // 10.1 s: ids[1] expired
	if s := b.state(group); s != "PreparingRebalance" {
		t.Fatalf("state %s after the absent member's session timeout, want PreparingRebalance", s)
	}
	if code := b.heartbeat(group, ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during the rebalance: %d, want REBALANCE_IN_PROGRESS", code)
	}
	if code := b.heartbeat(group, ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d, want UNKNOWN_MEMBER_ID", code)
	}
	r := recv(t, b.join(joinReq(9, group, ids[0])))
	if r.ErrorCode != 0 || r.Generation != gen+1 || r.LeaderID != ids[0] || len(r.Members) != 1 || r.Members[0].MemberID != ids[0] {
		t.Fatalf("rejoin after the expiry: %+v", r)
	}
}

// TestGroupMoveLeaderExpires: when the loaded leader never comes back the remaining member leads
// the next generation.
func TestGroupMoveLeaderExpires(t *testing.T) {
	group := groupOn(t, 3, movePartitions)
	b, ids, gen := movedGroup(t, group, 0)
	b.clock.Advance(6 * time.Second)
	if code := b.heartbeat(group, ids[1], gen); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	b.clock.Advance(5 * time.Second)
	if code := b.heartbeat(group, ids[1], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after the leader expired: %d, want REBALANCE_IN_PROGRESS", code)
	}
	r := recv(t, b.join(joinReq(9, group, ids[1])))
	if r.ErrorCode != 0 || r.Generation != gen+1 || r.LeaderID != ids[1] || len(r.Members) != 1 {
		t.Fatalf("rejoin after the leader expired: %+v", r)
	}
}

// TestGroupMoveEmptyGroupLoadsEmpty: a group stored Empty (its last member left) loads Empty with
// its generation and offsets and no members; a new member starts the next generation.
func TestGroupMoveEmptyGroupLoadsEmpty(t *testing.T) {
	store := newPartitionedStore(movePartitions)
	clock := newFakeClock()
	group := groupOn(t, 0, movePartitions)
	a := newClusterHarness(t, store, clock)
	a.elect(0, group)
	ids, gen := a.stableGroup(group, 1)
	if code := commitCode(a.c.OffsetCommit(commitReq(group, ids[0], gen, "t1", 42))); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Version = 4
	l.Group = group
	l.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[0]}}
	if resp := a.c.LeaveGroup(l); resp.ErrorCode != 0 || resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v", resp)
	}
	if s := a.state(group); s != "Empty" {
		t.Fatalf("state %s after the last member left", s)
	}
	a.c.Resign(0)

	b := newClusterHarness(t, store, clock)
	b.elect(0, group)
	if d := b.describe(group); d.State != "Empty" || d.ProtocolType != "consumer" || len(d.Members) != 0 {
		t.Fatalf("moved empty group: %+v", d)
	}
	if o := fetch(b, 7, group, "t1", 0).Topics[0].Partitions[0].Offset; o != 42 {
		t.Fatalf("moved offset: %d", o)
	}
	if code := b.heartbeat(group, ids[0], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of the member that left: %d, want UNKNOWN_MEMBER_ID", code)
	}
	_, ch := b.joinNew(9, group)
	// The leave ended generation gen with an Empty generation gen+1.
	if r := recv(t, ch); r.ErrorCode != 0 || r.Generation != gen+2 {
		t.Fatalf("join after the move: %+v, want generation %d", r, gen+2)
	}
}

// TestGroupMoveStaticMembers: static members move with their group.instance.id: they heartbeat
// with it in their generation, a restarted instance (empty member id) takes its place without a
// rebalance and keeps its assignment, and the old member id is fenced.
func TestGroupMoveStaticMembers(t *testing.T) {
	store := newPartitionedStore(movePartitions)
	clock := newFakeClock()
	group := groupOn(t, 1, movePartitions)
	p := OffsetsPartition(group, movePartitions)
	a := newClusterHarness(t, store, clock)
	a.elect(p, group)
	static := func(inst, memberID string) *kmsg.JoinGroupRequest {
		r := joinReq(9, group, memberID)
		r.InstanceID = kmsg.StringPtr(inst)
		return r
	}
	ja := recv(t, a.join(static("a", "")))
	if ja.ErrorCode != 0 {
		t.Fatalf("join a: %+v", ja)
	}
	chB := a.join(static("b", ""))
	waitFor(t, "rebalance", func() bool { return a.state(group) == "PreparingRebalance" })
	ja2 := recv(t, a.join(static("a", ja.MemberID)))
	jb := recv(t, chB)
	if ja2.ErrorCode != 0 || jb.ErrorCode != 0 || ja2.Generation != jb.Generation {
		t.Fatalf("joins: %+v %+v", ja2, jb)
	}
	gen := jb.Generation
	syncA := a.sync(syncReq(5, group, ja.MemberID, gen, map[string]string{ja.MemberID: "pa", jb.MemberID: "pb"}))
	syncB := a.sync(syncReq(5, group, jb.MemberID, gen, nil))
	if r := recv(t, syncA); r.ErrorCode != 0 {
		t.Fatalf("sync a: %+v", r)
	}
	if r := recv(t, syncB); r.ErrorCode != 0 || string(r.MemberAssignment) != "pb" {
		t.Fatalf("sync b: %+v", r)
	}
	a.c.Resign(p)

	b := newClusterHarness(t, store, clock)
	b.elect(p, group)
	d := b.describe(group)
	if d.State != "Stable" || len(d.Members) != 2 || d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != "a" ||
		d.Members[1].InstanceID == nil || *d.Members[1].InstanceID != "b" {
		t.Fatalf("moved static group: %+v", d)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = group, ja.MemberID, gen, kmsg.StringPtr("a")
	if code := b.c.Heartbeat(hb).ErrorCode; code != 0 {
		t.Fatalf("static heartbeat after the move: %d", code)
	}
	hb.MemberID = "someone-else"
	if code := b.c.Heartbeat(hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat with the instance id under another member id: %d, want FENCED_INSTANCE_ID", code)
	}
	// Instance b restarts: a new member id, same generation, no rebalance, its assignment back.
	jb2 := recv(t, b.join(static("b", "")))
	if jb2.ErrorCode != 0 || jb2.MemberID == jb.MemberID || jb2.Generation != gen {
		t.Fatalf("static rejoin after the move: %+v", jb2)
	}
	if s := b.state(group); s != "Stable" {
		t.Fatalf("state %s after the static rejoin", s)
	}
	if r := recv(t, b.sync(syncReq(5, group, jb2.MemberID, gen, nil))); r.ErrorCode != 0 || string(r.MemberAssignment) != "pb" {
		t.Fatalf("sync of the restarted instance: %+v", r)
	}
	hb.MemberID, hb.InstanceID = jb.MemberID, kmsg.StringPtr("b")
	if code := b.c.Heartbeat(hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("heartbeat of the replaced member id: %d, want FENCED_INSTANCE_ID", code)
	}
}

// TestGroupMoveResignStopsLoadedSessions: the loaded members' session timers belong to the
// coordinator that loaded them: after it resigns, their expiry changes nothing there and the
// group is reloaded with both members by the next coordinator.
func TestGroupMoveResignStopsLoadedSessions(t *testing.T) {
	group := groupOn(t, 1, movePartitions)
	b, ids, gen := movedGroup(t, group, 0)
	p := OffsetsPartition(group, movePartitions)
	b.c.Resign(p)
	b.clock.Advance(time.Minute) // past every session: no timer of b's may rebalance or store
	c := newClusterHarness(t, b.c.store.(*partitionedStore), b.clock)
	c.elect(p, group)
	if d := c.describe(group); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after a second move: %+v", d)
	}
	for _, id := range ids {
		if code := c.heartbeat(group, id, gen); code != 0 {
			t.Fatalf("heartbeat of %s after a second move: %d", id, code)
		}
	}
}

// TestReplayRejectsInvalidMembers: a GroupMetadataValue whose members cannot be served (no
// protocol, an empty or repeated member id, one group.instance.id for two members) is skipped
// and counted; the group keeps what the record before it said.
func TestReplayRejectsInvalidMembers(t *testing.T) {
	value := func(protocol *string, members ...kmsg.GroupMetadataValueMember) []byte {
		v := kmsg.NewGroupMetadataValue()
		v.Version = 3
		v.ProtocolType = "consumer"
		v.Generation = 4
		v.Protocol = protocol
		v.Leader = kmsg.StringPtr("m1")
		v.Members = members
		return v.AppendTo(nil)
	}
	member := func(id string, instance *string) kmsg.GroupMetadataValueMember {
		m := kmsg.NewGroupMetadataValueMember()
		m.MemberID, m.InstanceID = id, instance
		m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = 10_000, 20_000
		m.Subscription, m.Assignment = consumerMeta("t1"), []byte("a-"+id)
		return m
	}
	good := KV{Key: groupKey("g"), Value: value(kmsg.StringPtr("range"), member("m1", nil), member("m2", nil))}
	bad := []KV{
		{Key: groupKey("g"), Value: value(nil, member("m1", nil))},
		{Key: groupKey("g"), Value: value(kmsg.StringPtr("range"), member("", nil))},
		{Key: groupKey("g"), Value: value(kmsg.StringPtr("range"), member("m1", nil), member("m1", nil))},
		{Key: groupKey("g"), Value: value(kmsg.StringPtr("range"), member("m1", kmsg.StringPtr("i")), member("m2", kmsg.StringPtr("i")))},
	}
	store := NewMemoryStore()
	if err := store.Append("g", append([]KV{good}, bad...)); err != nil {
		t.Fatal(err)
	}
	var skipped countingCounter
	cfg := testConfig()
	cfg.RecordsSkipped = &skipped
	h := newHarnessStore(t, cfg, store, newFakeClock())
	if n := skipped.n.Load(); n != int64(len(bad)) {
		t.Fatalf("%d records skipped, want %d", n, len(bad))
	}
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 || d.Members[0].MemberID != "m1" || string(d.Members[1].MemberAssignment) != "a-m2" {
		t.Fatalf("group after invalid records: %+v", d)
	}
	if code := h.heartbeat("g", "m2", 4); code != 0 {
		t.Fatalf("heartbeat of a loaded member: %d", code)
	}
}

// TestReplayLaterRecordReplacesMembers: the last GroupMetadataValue of a group decides its
// members (an earlier generation's members are gone), and a tombstone for a group with offsets
// leaves it Empty without members.
func TestReplayLaterRecordReplacesMembers(t *testing.T) {
	value := func(gen int32, ids ...string) []byte {
		v := kmsg.NewGroupMetadataValue()
		v.Version = 3
		v.ProtocolType = "consumer"
		v.Generation = gen
		v.Protocol = kmsg.StringPtr("range")
		v.Leader = kmsg.StringPtr(ids[0])
		for _, id := range ids {
			m := kmsg.NewGroupMetadataValueMember()
			m.MemberID = id
			m.SessionTimeoutMillis = 10_000
			m.Subscription, m.Assignment = consumerMeta("t1"), []byte{}
			v.Members = append(v.Members, m)
		}
		return v.AppendTo(nil)
	}
	store := NewMemoryStore()
	recs := []KV{
		{Key: groupKey("g"), Value: value(1, "old1", "old2")},
		{Key: groupKey("g"), Value: value(2, "new1")},
		commitKV("h", "t", 0, 3),
		{Key: groupKey("h"), Value: value(7, "x")},
		{Key: groupKey("h")}, // tombstone
	}
	if err := store.Append("g", recs); err != nil {
		t.Fatal(err)
	}
	h := newHarnessStore(t, testConfig(), store, newFakeClock())
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != "new1" {
		t.Fatalf("group g: %+v", d)
	}
	if code := h.heartbeat("g", "old1", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of a member of an older record: %d", code)
	}
	if code := h.heartbeat("g", "new1", 2); code != 0 {
		t.Fatalf("heartbeat of the loaded member: %d", code)
	}
	if d := h.describe("h"); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("group h after its tombstone: %+v", d)
	}
	if code := h.heartbeat("h", "x", 7); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat of a member of a deleted group record: %d", code)
	}
}

// TestReplayRebalanceTimeout: a loaded member keeps its stored rebalance timeout; a version 0
// record has none, and the session timeout stands in for it, as in Kafka.
func TestReplayRebalanceTimeout(t *testing.T) {
	value := func(version int16, group string) KV {
		v := kmsg.NewGroupMetadataValue()
		v.Version = version
		v.ProtocolType = "consumer"
		v.Generation = 3
		v.Protocol = kmsg.StringPtr("range")
		v.Leader = kmsg.StringPtr("m")
		m := kmsg.NewGroupMetadataValueMember()
		m.MemberID = "m"
		m.SessionTimeoutMillis, m.RebalanceTimeoutMillis = 10_000, 25_000
		m.Subscription, m.Assignment = consumerMeta("t1"), []byte{}
		v.Members = []kmsg.GroupMetadataValueMember{m}
		return KV{Key: groupKey(group), Value: v.AppendTo(nil)}
	}
	store := NewMemoryStore()
	if err := store.Append("g", []KV{value(0, "v0"), value(3, "v3")}); err != nil {
		t.Fatal(err)
	}
	h := newHarnessStore(t, testConfig(), store, newFakeClock())
	for group, want := range map[string]time.Duration{"v0": 10 * time.Second, "v3": 25 * time.Second} {
		g := h.c.lockGroup(group, false)
		if g == nil {
			t.Fatalf("group %s not loaded", group)
		}
		m := g.members["m"]
		got, state := time.Duration(0), g.state
		if m != nil {
			got = m.rebalanceTimeout
		}
		g.mu.Unlock()
		if state != stateStable || got != want {
			t.Fatalf("group %s: state %v, rebalance timeout %v, want Stable and %v", group, state, got, want)
		}
	}
}
