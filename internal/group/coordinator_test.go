package group

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSingleMemberJoinSyncHeartbeat(t *testing.T) {
	h := newHarness(t, testConfig())
	first := recv(t, h.join(joinReq(9, "g", "")))
	if first.ErrorCode != kerr.MemberIDRequired.Code || !strings.HasPrefix(first.MemberID, "client-") {
		t.Fatalf("first join: error %d member %q", first.ErrorCode, first.MemberID)
	}
	resp := recv(t, h.join(joinReq(9, "g", first.MemberID)))
	if resp.ErrorCode != 0 || resp.Generation != 1 || resp.LeaderID != first.MemberID || resp.MemberID != first.MemberID {
		t.Fatalf("join: %+v", resp)
	}
	if resp.ProtocolType == nil || *resp.ProtocolType != "consumer" || resp.Protocol == nil || *resp.Protocol != "range" {
		t.Fatalf("join protocol: %v %v", resp.ProtocolType, resp.Protocol)
	}
	if len(resp.Members) != 1 || resp.Members[0].MemberID != first.MemberID {
		t.Fatalf("leader members: %+v", resp.Members)
	}
	if s := h.state("g"); s != "CompletingRebalance" {
		t.Fatalf("state %s", s)
	}
	if code := h.heartbeat("g", first.MemberID, 1); code != 0 {
		t.Fatalf("heartbeat while completing: %d", code)
	}
	sresp := recv(t, h.sync(syncReq(5, "g", first.MemberID, 1, map[string]string{first.MemberID: "a0"})))
	if sresp.ErrorCode != 0 || string(sresp.MemberAssignment) != "a0" || *sresp.Protocol != "range" || *sresp.ProtocolType != "consumer" {
		t.Fatalf("sync: %+v", sresp)
	}
	if code := h.heartbeat("g", first.MemberID, 1); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	if code := h.heartbeat("g", first.MemberID, 7); code != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat bad generation: %d", code)
	}
	if code := h.heartbeat("g", "nobody", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat unknown member: %d", code)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"g"}
	dg := h.c.DescribeGroups(d).Groups[0]
	if dg.State != "Stable" || dg.Protocol != "range" || dg.ProtocolType != "consumer" || len(dg.Members) != 1 {
		t.Fatalf("describe: %+v", dg)
	}
	m := dg.Members[0]
	if m.ClientID != "client" || m.ClientHost != "/10.0.0.1" || string(m.MemberAssignment) != "a0" || len(m.ProtocolMetadata) == 0 {
		t.Fatalf("describe member: %+v", m)
	}
	// The completed sync was persisted as a GroupMetadata record.
	var found bool
	for _, r := range h.store.Records() {
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(r.Key) == nil && k.Version == 2 && k.Group == "g" && r.Value != nil {
			var v kmsg.GroupMetadataValue
			if err := v.ReadFrom(r.Value); err != nil {
				t.Fatal(err)
			}
			found = v.Version == 3 && v.Generation == 1 && len(v.Members) == 1 && string(v.Members[0].Assignment) == "a0"
		}
	}
	if !found {
		t.Fatal("no group metadata record for generation 1")
	}
}

func TestJoinErrors(t *testing.T) {
	h := newHarness(t, testConfig())
	r := joinReq(9, "", "")
	if code := recv(t, h.join(r)).ErrorCode; code != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group: %d", code)
	}
	r = joinReq(9, "g", "")
	r.SessionTimeoutMillis = 10
	if code := recv(t, h.join(r)).ErrorCode; code != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("session timeout: %d", code)
	}
	r = joinReq(9, "g", "")
	r.Protocols = nil
	if code := recv(t, h.join(r)).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("no protocols: %d", code)
	}
	if code := recv(t, h.join(joinReq(9, "nogroup", "someone"))).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %d", code)
	}
	ids, gen := h.stableGroup("g", 1)
	other := joinReq(9, "g", "")
	other.ProtocolType = "connect"
	if code := recv(t, h.join(other)).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("other protocol type: %d", code)
	}
	if code := recv(t, h.join(joinReq(9, "g", "", "roundrobin"))).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("no common protocol: %d", code)
	}
	if code := recv(t, h.sync(syncReq(5, "g", ids[0], gen+1, nil))).ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Fatalf("sync bad generation: %d", code)
	}
	bad := syncReq(5, "g", ids[0], gen, nil)
	bad.Protocol = kmsg.StringPtr("roundrobin")
	if code := recv(t, h.sync(bad)).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("sync bad protocol: %d", code)
	}
	// A Stable member syncing again gets its assignment back.
	if r := recv(t, h.sync(syncReq(5, "g", ids[0], gen, nil))); r.ErrorCode != 0 || string(r.MemberAssignment) != "assignment-"+ids[0] {
		t.Fatalf("stable resync: %+v", r)
	}
	// v3 joins skip the handshake; v0-v6 responses carry no protocol type.
	r3 := recv(t, h.join(joinReq(3, "v3", "")))
	if r3.ErrorCode != 0 || r3.MemberID == "" || r3.Generation != 1 {
		t.Fatalf("v3 join: %+v", r3)
	}
}

func TestThreeMembersInitialDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = 3 * time.Second
	h := newHarness(t, cfg)
	protocols := [][]string{{"roundrobin", "range"}, {"range", "roundrobin"}, {"range"}}
	var chans []<-chan *kmsg.JoinGroupResponse
	for i := 0; i < 3; i++ {
		chans = append(chans, h.join(joinReq(3, "g", "", protocols[i]...)))
		waitFor(t, "join parked", func() bool { return h.awaitingJoin("g") == i+1 })
		if i == 0 {
			h.clock.Advance(2 * time.Second) // still inside the initial delay
		}
	}
	h.clock.Advance(time.Second) // the first delay ends, but members arrived: extended
	for _, ch := range chans {
		noRecv(t, ch)
	}
	h.clock.Advance(3 * time.Second)
	var resps []*kmsg.JoinGroupResponse
	for _, ch := range chans {
		resps = append(resps, recv(t, ch))
	}
	leader := resps[0].MemberID
	for i, r := range resps {
		if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != leader || *r.Protocol != "range" {
			t.Fatalf("join %d: %+v", i, r)
		}
		if i == 0 && len(r.Members) != 3 {
			t.Fatalf("leader got %d members", len(r.Members))
		}
		if i > 0 && len(r.Members) != 0 {
			t.Fatalf("follower %d got members", i)
		}
	}
	// Followers block until the leader syncs.
	f1 := h.sync(syncReq(4, "g", resps[1].MemberID, 1, nil))
	f2 := h.sync(syncReq(4, "g", resps[2].MemberID, 1, nil))
	waitFor(t, "followers parked", func() bool { return h.awaitingSync("g") == 2 })
	noRecv(t, f1)
	l := recv(t, h.sync(syncReq(4, "g", leader, 1, map[string]string{
		resps[0].MemberID: "p0", resps[1].MemberID: "p1", // resps[2] left out: gets an empty assignment
	})))
	if l.ErrorCode != 0 || string(l.MemberAssignment) != "p0" {
		t.Fatalf("leader sync: %+v", l)
	}
	if r := recv(t, f1); r.ErrorCode != 0 || string(r.MemberAssignment) != "p1" {
		t.Fatalf("follower 1 sync: %+v", r)
	}
	if r := recv(t, f2); r.ErrorCode != 0 || len(r.MemberAssignment) != 0 {
		t.Fatalf("follower 2 sync: %+v", r)
	}
}

func TestSelectProtocolVotes(t *testing.T) {
	h := newHarness(t, testConfig())
	g := newGroup(h.c, "x")
	for i, ps := range [][]string{{"a", "b"}, {"b", "a"}, {"b", "a"}} {
		m := &member{id: string(rune('0' + i))}
		for _, p := range ps {
			m.protocols = append(m.protocols, kmsg.JoinGroupRequestProtocol{Name: p})
		}
		g.add(m)
	}
	if p := g.selectProtocol(); p != "b" {
		t.Fatalf("selected %q, want b", p)
	}
}

func TestSessionExpiryRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	h.clock.Advance(6 * time.Second)
	if code := h.heartbeat("g", ids[0], gen); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	h.clock.Advance(6 * time.Second) // ids[1]'s 10s session ends
	if s := h.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s", s)
	}
	if code := h.heartbeat("g", ids[0], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	if code := h.heartbeat("g", ids[1], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %d", code)
	}
	r := recv(t, h.join(joinReq(9, "g", ids[0])))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
}

func TestRebalanceTimeoutRemovesMembers(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	// The leader rejoins; the follower never does.
	ch := h.join(joinReq(9, "g", ids[0]))
	waitFor(t, "leader parked", func() bool { return h.awaitingJoin("g") == 1 })
	h.clock.Advance(5 * time.Second)
	h.heartbeat("g", ids[1], gen) // heartbeats do not help: the member must rejoin
	noRecv(t, ch)
	h.clock.Advance(15 * time.Second) // 20s rebalance timeout
	r := recv(t, ch)
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != ids[0] {
		t.Fatalf("join after rebalance timeout: %+v", r)
	}
	// Members that do not sync within the rebalance timeout are removed too.
	h.clock.Advance(21 * time.Second)
	if code := h.heartbeat("g", ids[0], gen+1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after missing sync: %d", code)
	}
	if s := h.state("g"); s != "Empty" {
		t.Fatalf("state %s", s)
	}
}

func TestLeaveGroup(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, _ := h.stableGroup("g", 2)
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Version = 5
	l.Group = "g"
	l.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[1]}, {MemberID: "ghost"}}
	resp := h.c.LeaveGroup(l)
	if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 || resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", resp)
	}
	if s := h.state("g"); s != "PreparingRebalance" {
		t.Fatalf("state %s", s)
	}
	r := recv(t, h.join(joinReq(9, "g", ids[0])))
	if r.ErrorCode != 0 || len(r.Members) != 1 {
		t.Fatalf("rejoin: %+v", r)
	}
	l0 := kmsg.NewPtrLeaveGroupRequest()
	l0.Version = 0
	l0.Group = "g"
	l0.MemberID = ids[0]
	if code := h.c.LeaveGroup(l0).ErrorCode; code != 0 {
		t.Fatalf("v0 leave: %d", code)
	}
	if s := h.state("g"); s != "Empty" {
		t.Fatalf("state after all left: %s", s)
	}
	if code := h.c.LeaveGroup(l0).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("v0 leave again: %d", code)
	}
}

func TestLeaderRejoinWhileStableRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 2)
	// A follower rejoining with unchanged metadata gets the current generation, no rebalance.
	r := recv(t, h.join(joinReq(9, "g", ids[1])))
	if r.ErrorCode != 0 || r.Generation != gen || h.state("g") != "Stable" {
		t.Fatalf("follower rejoin: %+v state %s", r, h.state("g"))
	}
	// The leader rejoining with unchanged metadata (cooperative-sticky's follow-up round)
	// triggers a rebalance.
	ch := h.join(joinReq(9, "g", ids[0]))
	waitFor(t, "rebalance", func() bool { return h.state("g") == "PreparingRebalance" })
	noRecv(t, ch)
	if code := h.heartbeat("g", ids[1], gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("follower heartbeat: %d", code)
	}
	f := h.join(joinReq(9, "g", ids[1]))
	if r := recv(t, ch); r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 2 {
		t.Fatalf("leader: %+v", r)
	}
	if r := recv(t, f); r.ErrorCode != 0 || r.Generation != gen+1 {
		t.Fatalf("follower: %+v", r)
	}
}

// TestStaticRejoinLeaderID: a static member rejoining a Stable group with an unknown member id
// gets no rebalance. Before JoinGroup v9 a rejoining leader is handed the old leader id, so that
// it runs no assignment; from v9 it is told it leads, with SkipAssignment (KIP-814). A follower is
// told the leader's id either way and gets no member list.
func TestStaticRejoinLeaderID(t *testing.T) {
	h := newHarness(t, testConfig())
	static := func(version int16, inst, memberID string) *kmsg.JoinGroupRequest {
		r := joinReq(version, "g", memberID)
		r.InstanceID = kmsg.StringPtr(inst)
		return r
	}
	a := recv(t, h.join(static(9, "a", "")))
	if a.ErrorCode != 0 || a.LeaderID != a.MemberID {
		t.Fatalf("a joins: %+v", a)
	}
	if r := recv(t, h.sync(syncReq(5, "g", a.MemberID, a.Generation, map[string]string{a.MemberID: "pa"}))); r.ErrorCode != 0 {
		t.Fatalf("a syncs: %+v", r)
	}
	// b joins: a rebalance that a, the leader, rejoins.
	bch := h.join(static(9, "b", ""))
	waitFor(t, "rebalance", func() bool { return h.state("g") == "PreparingRebalance" })
	a = recv(t, h.join(static(9, "a", a.MemberID)))
	b := recv(t, bch)
	if a.ErrorCode != 0 || b.ErrorCode != 0 || a.LeaderID != a.MemberID || b.Generation != a.Generation {
		t.Fatalf("rebalance: a %+v, b %+v", a, b)
	}
	gen := a.Generation
	sa := h.sync(syncReq(5, "g", a.MemberID, gen, map[string]string{a.MemberID: "pa", b.MemberID: "pb"}))
	sb := h.sync(syncReq(5, "g", b.MemberID, gen, nil))
	if r, r2 := recv(t, sa), recv(t, sb); r.ErrorCode != 0 || r2.ErrorCode != 0 {
		t.Fatalf("syncs: %+v %+v", r, r2)
	}

	b2 := recv(t, h.join(static(9, "b", "")))
	if b2.ErrorCode != 0 || b2.Generation != gen || b2.LeaderID != a.MemberID || b2.SkipAssignment || len(b2.Members) != 0 {
		t.Fatalf("follower rejoins: %+v", b2)
	}
	a8 := recv(t, h.join(static(8, "a", "")))
	if a8.ErrorCode != 0 || a8.Generation != gen || a8.LeaderID != a.MemberID || a8.LeaderID == a8.MemberID || len(a8.Members) != 0 {
		t.Fatalf("leader rejoins at v8: %+v", a8)
	}
	a9 := recv(t, h.join(static(9, "a", "")))
	if a9.ErrorCode != 0 || a9.Generation != gen || a9.LeaderID != a9.MemberID || !a9.SkipAssignment || len(a9.Members) != 2 {
		t.Fatalf("leader rejoins at v9: %+v", a9)
	}
	ids := map[string]bool{a9.Members[0].MemberID: true, a9.Members[1].MemberID: true}
	if !ids[a9.MemberID] || !ids[b2.MemberID] {
		t.Fatalf("leader's member list %+v, want %s and %s", a9.Members, a9.MemberID, b2.MemberID)
	}
	// Skipping the assignment, the leader syncs with none and gets its own back; nothing moved.
	if r := recv(t, h.sync(syncReq(5, "g", a9.MemberID, gen, nil))); r.ErrorCode != 0 || string(r.MemberAssignment) != "pa" {
		t.Fatalf("leader syncs: %+v", r)
	}
	if r := recv(t, h.sync(syncReq(5, "g", b2.MemberID, gen, nil))); r.ErrorCode != 0 || string(r.MemberAssignment) != "pb" {
		t.Fatalf("follower syncs: %+v", r)
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s", s)
	}
}

func TestStaticMembership(t *testing.T) {
	h := newHarness(t, testConfig())
	static := func(inst, memberID string) *kmsg.JoinGroupRequest {
		r := joinReq(9, "g", memberID)
		r.InstanceID = kmsg.StringPtr(inst)
		return r
	}
	// Static members skip MEMBER_ID_REQUIRED.
	a := recv(t, h.join(static("a", "")))
	if a.ErrorCode != 0 || a.Generation != 1 {
		t.Fatalf("static join: %+v", a)
	}
	if r := recv(t, h.sync(syncReq(5, "g", a.MemberID, 1, map[string]string{a.MemberID: "pa"}))); r.ErrorCode != 0 {
		t.Fatalf("sync: %+v", r)
	}
	// The same instance restarts: a new member id, no rebalance, old id fenced. It led the group
	// and still does, but must skip the assignment (v9, KIP-814).
	a2 := recv(t, h.join(static("a", "")))
	if a2.ErrorCode != 0 || a2.MemberID == a.MemberID || a2.Generation != 1 || a2.LeaderID != a2.MemberID ||
		!a2.SkipAssignment || len(a2.Members) != 1 || a2.Members[0].MemberID != a2.MemberID {
		t.Fatalf("static rejoin: %+v", a2)
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", a.MemberID, 1, kmsg.StringPtr("a")
	if code := h.c.Heartbeat(hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("stale heartbeat: %d", code)
	}
	hb.MemberID = a2.MemberID
	if code := h.c.Heartbeat(hb).ErrorCode; code != 0 {
		t.Fatalf("new heartbeat: %d", code)
	}
	if r := recv(t, h.join(static("a", a.MemberID))); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Fatalf("stale join: %+v", r)
	}
	// The replacement keeps the assignment.
	if r := recv(t, h.sync(syncReq(5, "g", a2.MemberID, 1, nil))); r.ErrorCode != 0 || string(r.MemberAssignment) != "pa" {
		t.Fatalf("sync after replace: %+v", r)
	}
	// Administrative removal by instance id.
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Version = 4
	l.Group = "g"
	l.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: kmsg.StringPtr("a")}}
	if resp := h.c.LeaveGroup(l); resp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance: %+v", resp)
	}
	if s := h.state("g"); s != "Empty" {
		t.Fatalf("state %s", s)
	}
}

func commitReq(group, memberID string, generation int32, topic string, offsets ...int64) *kmsg.OffsetCommitRequest {
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = 9
	r.Group = group
	r.MemberID = memberID
	r.Generation = generation
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	for p, o := range offsets {
		tp := kmsg.NewOffsetCommitRequestTopicPartition()
		tp.Partition = int32(p)
		tp.Offset = o
		tp.LeaderEpoch = 5
		tp.Metadata = kmsg.StringPtr("md")
		t.Partitions = append(t.Partitions, tp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

func commitCode(r *kmsg.OffsetCommitResponse) int16 {
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return p.ErrorCode
			}
		}
	}
	return 0
}

func fetch(h *harness, version int16, group string, topic string, partitions ...int32) *kmsg.OffsetFetchResponse {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = version
	r.Group = group
	if topic != "" {
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: partitions}}
	}
	return h.c.OffsetFetch(r)
}

func TestOffsetCommitFetch(t *testing.T) {
	h := newHarness(t, testConfig())
	// Simple (group-less) commits.
	if code := commitCode(h.c.OffsetCommit(commitReq("simple", "", -1, "t1", 10, 20))); code != 0 {
		t.Fatalf("simple commit: %d", code)
	}
	f := fetch(h, 7, "simple", "t1", 0, 1, 2)
	ps := f.Topics[0].Partitions
	if f.ErrorCode != 0 || ps[0].Offset != 10 || ps[1].Offset != 20 || ps[2].Offset != -1 || ps[0].LeaderEpoch != 5 || *ps[0].Metadata != "md" {
		t.Fatalf("fetch: %+v", f)
	}
	if ps[2].LeaderEpoch != -1 || *ps[2].Metadata != "" {
		t.Fatalf("unknown partition: %+v", ps[2])
	}
	// Null topics: everything.
	all := fetch(h, 7, "simple", "")
	if len(all.Topics) != 1 || len(all.Topics[0].Partitions) != 2 {
		t.Fatalf("fetch all: %+v", all)
	}
	// Unknown group: -1, no error.
	if f := fetch(h, 5, "nope", "t1", 0); f.ErrorCode != 0 || f.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("unknown group fetch: %+v", f)
	}

	// Group commits are validated.
	ids, gen := h.stableGroup("g", 1)
	if code := commitCode(h.c.OffsetCommit(commitReq("g", ids[0], gen, "t1", 5))); code != 0 {
		t.Fatalf("member commit: %d", code)
	}
	if code := commitCode(h.c.OffsetCommit(commitReq("g", ids[0], gen+1, "t1", 5))); code != kerr.IllegalGeneration.Code {
		t.Fatalf("bad generation: %d", code)
	}
	if code := commitCode(h.c.OffsetCommit(commitReq("g", "ghost", gen, "t1", 5))); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %d", code)
	}
	if code := commitCode(h.c.OffsetCommit(commitReq("g", "", -1, "t1", 5))); code != kerr.UnknownMemberID.Code {
		t.Fatalf("simple commit to a live group: %d", code)
	}
	if code := commitCode(h.c.OffsetCommit(commitReq("other", "m", 3, "t1", 5))); code != kerr.IllegalGeneration.Code {
		t.Fatalf("generation commit to a missing group: %d", code)
	}
	big := commitReq("simple", "", -1, "t1", 1)
	big.Topics[0].Partitions[0].Metadata = kmsg.StringPtr(strings.Repeat("x", 5000))
	if code := commitCode(h.c.OffsetCommit(big)); code != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("large metadata: %d", code)
	}

	// v8+ multi-group fetch.
	m := kmsg.NewPtrOffsetFetchRequest()
	m.Version = 8
	m.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "simple", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t1", Partitions: []int32{1}}}},
		{Group: "g"}, // null topics: all
	}
	mr := h.c.OffsetFetch(m)
	if len(mr.Groups) != 2 || mr.Groups[0].Topics[0].Partitions[0].Offset != 20 || mr.Groups[1].Topics[0].Partitions[0].Offset != 5 {
		t.Fatalf("multi-group fetch: %+v", mr)
	}
}

func TestCommitStoreFailure(t *testing.T) {
	h := newHarness(t, testConfig())
	h.store.SetAppendError(errors.New("disk on fire"))
	if code := commitCode(h.c.OffsetCommit(commitReq("s", "", -1, "t", 1))); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit with failing store: %d", code)
	}
	h.store.SetAppendError(kerr.MessageTooLarge)
	if code := commitCode(h.c.OffsetCommit(commitReq("s", "", -1, "t", 1))); code != kerr.InvalidCommitOffsetSize.Code {
		t.Fatalf("commit too large: %d", code)
	}
	h.store.SetAppendError(nil)
	if o := fetch(h, 7, "s", "t", 0).Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("failed commit visible: %d", o)
	}
}

func TestOffsetDeleteAndDeleteGroups(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	h.c.OffsetCommit(commitReq("g", ids[0], gen, "t1", 1))
	h.c.OffsetCommit(commitReq("g", ids[0], gen, "gone", 1))
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "t1", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "gone", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	resp := h.c.OffsetDelete(od)
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if o := fetch(h, 7, "g", "gone", 0).Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("deleted offset still there: %d", o)
	}
	od.Group = "missing"
	if code := h.c.OffsetDelete(od).ErrorCode; code != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset delete missing group: %d", code)
	}

	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"g", "missing"}
	dr := h.c.DeleteGroups(dg)
	if dr.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code || dr.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %+v", dr)
	}
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Version = 3
	l.Group = "g"
	l.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[0]}}
	h.c.LeaveGroup(l)
	dg.Groups = []string{"g"}
	if code := h.c.DeleteGroups(dg).Groups[0].ErrorCode; code != 0 {
		t.Fatalf("delete empty group: %d", code)
	}
	if s := h.state("g"); s != "Dead" {
		t.Fatalf("state after delete: %s", s)
	}
	if o := fetch(h, 7, "g", "t1", 0).Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("offset survived group deletion: %d", o)
	}
}

func TestListGroupsFilters(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stableGroup("stable", 1)
	h.c.OffsetCommit(commitReq("simple", "", -1, "t", 1))
	list := func(version int16, states, types []string) []string {
		r := kmsg.NewPtrListGroupsRequest()
		r.Version = version
		r.StatesFilter = states
		r.TypesFilter = types
		var out []string
		for _, g := range h.c.ListGroups(r).Groups {
			out = append(out, g.Group+"/"+g.GroupState+"/"+g.ProtocolType)
		}
		return out
	}
	if got := strings.Join(list(5, nil, nil), ","); got != "simple/Empty/,stable/Stable/consumer" {
		t.Fatalf("list all: %s", got)
	}
	if got := strings.Join(list(4, []string{"stable"}, nil), ","); got != "stable/Stable/consumer" {
		t.Fatalf("list stable: %s", got)
	}
	if got := list(5, nil, []string{"consumer"}); len(got) != 0 {
		t.Fatalf("list consumer-type groups: %v", got)
	}
	if got := list(5, nil, []string{"Classic"}); len(got) != 2 {
		t.Fatalf("list classic groups: %v", got)
	}
}

func TestPersistenceReload(t *testing.T) {
	store := NewMemoryStore()
	clock := newFakeClock()
	h := newHarnessStore(t, testConfig(), store, clock)
	ids, gen := h.stableGroup("g", 2)
	if code := commitCode(h.c.OffsetCommit(commitReq("g", ids[0], gen, "t1", 42, 43))); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	h.c.OffsetCommit(commitReq("simple", "", -1, "t2", 7))
	h.c.OffsetCommit(commitReq("doomed", "", -1, "t2", 7))
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"doomed"}
	h.c.DeleteGroups(dg)
	h.c.Close()

	h2 := newHarnessStore(t, testConfig(), store, clock)
	f := fetch(h2, 7, "g", "t1", 0, 1)
	if f.Topics[0].Partitions[0].Offset != 42 || f.Topics[0].Partitions[1].Offset != 43 || f.Topics[0].Partitions[0].LeaderEpoch != 5 {
		t.Fatalf("reloaded offsets: %+v", f)
	}
	if o := fetch(h2, 7, "simple", "t2", 0).Topics[0].Partitions[0].Offset; o != 7 {
		t.Fatalf("reloaded simple offset: %d", o)
	}
	if s := h2.state("doomed"); s != "Dead" {
		t.Fatalf("deleted group came back: %s", s)
	}
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Groups = []string{"g"}
	dg2 := h2.c.DescribeGroups(d).Groups[0]
	// As Kafka after a broker restart: the group comes back Stable with its members (in join
	// order, the leader first) and their assignments, and they keep their generation.
	if dg2.State != "Stable" || dg2.ProtocolType != "consumer" || dg2.Protocol != "range" || len(dg2.Members) != 2 ||
		dg2.Members[0].MemberID != ids[0] || dg2.Members[1].MemberID != ids[1] ||
		string(dg2.Members[1].MemberAssignment) != "assignment-"+ids[1] {
		t.Fatalf("reloaded group: %+v", dg2)
	}
	for _, id := range ids {
		if code := h2.heartbeat("g", id, gen); code != 0 {
			t.Fatalf("member %s heartbeat after reload: %d", id, code)
		}
	}
	// A new member starts the next generation.
	_, ch := h2.joinNew(9, "g")
	waitFor(t, "rebalance", func() bool { return h2.state("g") == "PreparingRebalance" })
	rejoin := []<-chan *kmsg.JoinGroupResponse{h2.join(joinReq(9, "g", ids[0])), h2.join(joinReq(9, "g", ids[1]))}
	for _, c := range append(rejoin, ch) {
		if r := recv(t, c); r.ErrorCode != 0 || r.Generation != gen+1 {
			t.Fatalf("join after reload: %+v", r)
		}
	}
}

func TestOffsetRetention(t *testing.T) {
	h := newHarness(t, testConfig())
	h.c.OffsetCommit(commitReq("simple", "", -1, "t", 1))
	ids, gen := h.stableGroup("g", 1)
	h.c.OffsetCommit(commitReq("g", ids[0], gen, "t1", 1))
	h.clock.Advance(30 * time.Minute)
	if code := h.heartbeat("g", ids[0], gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("member should have expired: %d", code)
	}
	// 30 minutes after the simple commit: nothing expires yet.
	if n := h.c.ExpireOffsets(); n != 0 {
		t.Fatalf("expired %d offsets early", n)
	}
	h.clock.Advance(31 * time.Minute) // the periodic check at 60min expires the simple group's offset
	if o := fetch(h, 7, "simple", "t", 0).Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("simple offset not expired: %d", o)
	}
	if s := h.state("simple"); s != "Dead" {
		t.Fatalf("offsetless simple group: %s", s)
	}
	if o := fetch(h, 7, "g", "t1", 0).Topics[0].Partitions[0].Offset; o != 1 {
		t.Fatalf("group offset expired before its group was empty for the retention: %d", o)
	}
	h.clock.Advance(30 * time.Minute)
	if o := fetch(h, 7, "g", "t1", 0).Topics[0].Partitions[0].Offset; o != -1 {
		t.Fatalf("group offset not expired: %d", o)
	}
}

type blockingStore struct {
	*MemoryStore
	release chan struct{}
}

func (s blockingStore) Load(fn func(r StoredRecord) error) error {
	<-s.release
	return s.MemoryStore.Load(fn)
}

func TestLoadInProgress(t *testing.T) {
	s := blockingStore{NewMemoryStore(), make(chan struct{})}
	c := NewCoordinator(testConfig(), s, newFakeClock())
	defer c.Close()
	if code := c.Heartbeat(kmsg.NewPtrHeartbeatRequest()).ErrorCode; code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("heartbeat while loading: %d", code)
	}
	close(s.release)
	if err := c.WaitLoaded(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := kmsg.NewPtrHeartbeatRequest()
	r.Group = "g"
	if code := c.Heartbeat(r).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after load: %d", code)
	}
}

func TestJoinContextCancel(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelay = time.Second
	h := newHarness(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { ch <- h.c.JoinGroup(ctx, joinReq(3, "g", "")) }()
	waitFor(t, "join parked", func() bool { return h.awaitingJoin("g") == 1 })
	cancel()
	if r := recv(t, ch); r.ErrorCode == 0 {
		t.Fatalf("cancelled join succeeded: %+v", r)
	}
}

func TestOffsetsPartition(t *testing.T) {
	// Java: Math.abs("group".hashCode()) % 50 == 98629247 % 50.
	if p := OffsetsPartition("group", 50); p != 98629247%50 {
		t.Fatalf("partition %d", p)
	}
}

// TestStaticMemberAbsentDuringRebalance: a static member that does not rejoin a rebalance stays
// in the new generation, as in Kafka (the new leader, a member that did rejoin, assigns it its
// share), and is removed only if it does not come back before the pending-sync timeout. A dynamic
// member that does not rejoin leaves at once.
func TestStaticMemberAbsentDuringRebalance(t *testing.T) {
	h := newHarness(t, testConfig())
	static := func(inst, memberID string) *kmsg.JoinGroupRequest {
		r := joinReq(9, "g", memberID)
		r.InstanceID = kmsg.StringPtr(inst)
		return r
	}
	a := recv(t, h.join(static("a", "")))
	if r := recv(t, h.sync(syncReq(5, "g", a.MemberID, a.Generation, map[string]string{a.MemberID: "pa"}))); r.ErrorCode != 0 {
		t.Fatalf("a syncs: %+v", r)
	}
	// b (static) and c (dynamic) join; a, the leader, stays away.
	bch := h.join(static("b", ""))
	waitFor(t, "rebalance", func() bool { return h.state("g") == "PreparingRebalance" })
	cID, cch := h.joinNew(9, "g")
	waitFor(t, "b and c parked", func() bool { return h.awaitingJoin("g") == 2 })
	// a stays alive (its heartbeats say REBALANCE_IN_PROGRESS) but does not rejoin before the
	// 20 s rebalance timeout, as a consumer busy in its poll loop would.
	for range 4 {
		h.clock.Advance(5 * time.Second)
		if code := h.heartbeat("g", a.MemberID, a.Generation); code != kerr.RebalanceInProgress.Code && h.state("g") == "PreparingRebalance" {
			t.Fatalf("a's heartbeat during the rebalance: %d", code)
		}
	}
	b, c := recv(t, bch), recv(t, cch)
	if b.ErrorCode != 0 || c.ErrorCode != 0 || b.Generation != a.Generation+1 {
		t.Fatalf("join: b %+v, c %+v", b, c)
	}
	leader := b
	if c.LeaderID == c.MemberID {
		leader = c
	}
	if leader.LeaderID != leader.MemberID || leader.LeaderID == a.MemberID {
		t.Fatalf("leader %q, want b or c, not the absent a", leader.LeaderID)
	}
	var listed []string
	for _, m := range leader.Members {
		listed = append(listed, m.MemberID)
	}
	if len(listed) != 3 || !slices.Contains(listed, a.MemberID) || !slices.Contains(listed, cID) {
		t.Fatalf("leader's member list %v, want a (absent, static), b and c", listed)
	}
	// a does not come back.
	for _, m := range []*kmsg.JoinGroupResponse{b, c} {
		var assign map[string]string
		if m == leader {
			assign = map[string]string{a.MemberID: "pa", b.MemberID: "pb", c.MemberID: "pc"}
		}
		if r := recv(t, h.sync(syncReq(5, "g", m.MemberID, m.Generation, assign))); r.ErrorCode != 0 {
			t.Fatalf("sync of %s: %+v", m.MemberID, r)
		}
	}
	if s := h.state("g"); s != "Stable" {
		t.Fatalf("state %s after the leader's sync", s)
	}
	// b and c heartbeat; a never comes back and is removed (its session times out before its
	// overdue sync would) and the group rebalances without it.
	for range 3 {
		h.clock.Advance(7 * time.Second)
		h.heartbeat("g", b.MemberID, b.Generation)
		h.heartbeat("g", c.MemberID, c.Generation)
	}
	waitFor(t, "a removed", func() bool { return h.state("g") == "PreparingRebalance" })
	if code := h.heartbeat("g", a.MemberID, b.Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("a's heartbeat after the pending-sync timeout: %d", code)
	}
}
