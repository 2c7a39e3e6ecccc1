package group

// JoinGroup: versions 0-9. v4+ requires a known member id (MEMBER_ID_REQUIRED handshake, KIP-394),
// v5+ static membership (KIP-345), v7+ protocol type in the response. A static leader rejoining a
// Stable group is told it leads with SkipAssignment at v9+ (KIP-814), and is answered with the old
// leader id before v9, as Kafka does.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type joinParams struct {
	memberID       string
	instanceID     *string
	clientID       string
	clientHost     string
	protocolType   string
	protocols      []kmsg.JoinGroupRequestProtocol
	session        time.Duration
	rebalance      time.Duration
	requireKnownID bool
	canSkipAssign  bool // v9+: the response can carry SkipAssignment (KIP-814)
}

// JoinGroup adds or updates a member and blocks until the join phase of the rebalance completes
// or ctx is done. The handler calls WithClient on ctx first.
func (c *Coordinator) JoinGroup(ctx context.Context, r *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	res := c.joinGroup(ctx, r)
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = r.Version
	resp.ErrorCode = res.err
	resp.Generation = res.generation
	resp.MemberID = res.memberID
	resp.LeaderID = res.leader
	if res.err == 0 {
		if r.Version >= 7 {
			resp.ProtocolType = kmsg.StringPtr(res.protocolType)
		}
		if res.hasProtocol {
			resp.Protocol = kmsg.StringPtr(res.protocol)
		}
		resp.Members = res.members
		resp.SkipAssignment = res.skipAssignment
	}
	if r.Version < 7 && resp.Protocol == nil {
		resp.Protocol = kmsg.StringPtr("")
	}
	return resp
}

func (c *Coordinator) joinGroup(ctx context.Context, r *kmsg.JoinGroupRequest) joinResult {
	if code := c.groupStatus(r.Group); code != 0 {
		return joinError(code, r.MemberID)
	}
	if r.Group == "" {
		return joinError(kerr.InvalidGroupID.Code, r.MemberID)
	}
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return joinError(kerr.InvalidSessionTimeout.Code, r.MemberID)
	}
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if r.Version == 0 || rebalance <= 0 {
		rebalance = session
	}
	ci := clientFrom(ctx)
	p := joinParams{
		memberID:       r.MemberID,
		clientID:       ci.id,
		clientHost:     ci.host,
		protocolType:   r.ProtocolType,
		protocols:      append([]kmsg.JoinGroupRequestProtocol(nil), r.Protocols...),
		session:        session,
		rebalance:      rebalance,
		requireKnownID: r.Version >= 4,
		canSkipAssign:  r.Version >= 9,
	}
	if r.Version >= 5 && r.InstanceID != nil {
		id := *r.InstanceID
		p.instanceID = &id
	}

	g := c.lockGroup(r.Group, r.MemberID == "")
	if g == nil {
		return joinError(kerr.UnknownMemberID.Code, r.MemberID)
	}
	wait, res := g.join(p)
	g.mu.Unlock()
	if wait == nil {
		return res
	}
	select {
	case res = <-wait:
		return res
	case <-ctx.Done():
		// The member stays in the group as Kafka's does when its connection goes away; the
		// rebalance or session timeout removes it.
		return joinError(kerr.CoordinatorNotAvailable.Code, p.memberID)
	}
}

// join is Kafka's doJoinGroup. It returns a channel to wait on, or nil and an immediate result.
// REQUIRES: g.mu is held.
func (g *group) join(p joinParams) (chan joinResult, joinResult) {
	if g.state == stateDead {
		return nil, joinError(kerr.CoordinatorNotAvailable.Code, p.memberID)
	}
	if !g.supportsProtocols(p.protocolType, p.protocols) {
		return nil, joinError(kerr.InconsistentGroupProtocol.Code, p.memberID)
	}

	if p.memberID == "" {
		newID := newMemberID(p.clientID)
		if p.instanceID != nil {
			if oldID, ok := g.static[*p.instanceID]; ok {
				return g.updateStaticMember(oldID, newID, p)
			}
			return g.addMemberAndRebalance(newID, p), joinResult{}
		}
		if p.requireKnownID {
			g.addPending(newID, p.session)
			return nil, joinError(kerr.MemberIDRequired.Code, newID)
		}
		return g.addMemberAndRebalance(newID, p), joinResult{}
	}

	if _, ok := g.pending[p.memberID]; ok && p.instanceID == nil {
		return g.addMemberAndRebalance(p.memberID, p), joinResult{}
	}
	if g.staticFenced(p.instanceID, p.memberID) {
		return nil, joinError(kerr.FencedInstanceID.Code, p.memberID)
	}
	m := g.members[p.memberID]
	if m == nil {
		return nil, joinError(kerr.UnknownMemberID.Code, p.memberID)
	}
	if p.instanceID != nil {
		if _, ok := g.static[*p.instanceID]; !ok {
			return nil, joinError(kerr.UnknownMemberID.Code, p.memberID)
		}
	}
	switch g.state {
	case statePreparingRebalance:
		return g.updateMemberAndRebalance(m, p), joinResult{}
	case stateCompletingRebalance:
		if m.matches(p.protocols) {
			// A retry of a join that already completed: answer it again.
			r := g.joinResultFor(m)
			if m.id == g.leader {
				r.members = g.memberMetadata()
			}
			return nil, r
		}
		return g.updateMemberAndRebalance(m, p), joinResult{}
	case stateStable:
		// The leader rejoining (e.g. cooperative-sticky's second round, or a metadata change it
		// noticed) or a member with new metadata triggers a rebalance; a follower rejoining with
		// the same metadata just gets the current generation back.
		if m.id == g.leader || !m.matches(p.protocols) {
			return g.updateMemberAndRebalance(m, p), joinResult{}
		}
		return nil, g.joinResultFor(m)
	}
	return nil, joinError(kerr.UnknownMemberID.Code, p.memberID)
}

func (g *group) addMemberAndRebalance(id string, p joinParams) chan joinResult {
	wait := make(chan joinResult, 1)
	m := &member{
		id:               id,
		instanceID:       p.instanceID,
		clientID:         p.clientID,
		clientHost:       p.clientHost,
		protocolType:     p.protocolType,
		protocols:        p.protocols,
		sessionTimeout:   p.session,
		rebalanceTimeout: p.rebalance,
		isNew:            true,
		joinWait:         wait,
	}
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	// New members cannot heartbeat before their join completes; bound their wait instead.
	g.scheduleSession(m, newMemberJoinTimeout)
	g.maybePrepareRebalance()
	g.tryCompleteJoin()
	return wait
}

func (g *group) updateMemberAndRebalance(m *member, p joinParams) chan joinResult {
	wait := make(chan joinResult, 1)
	g.updateMember(m, p.protocols, p.rebalance, p.session, wait)
	g.maybePrepareRebalance()
	g.tryCompleteJoin()
	return wait
}

// replaceStaticMember moves the member of a group.instance.id to a new member id, fencing
// whatever waits under the old id.
func (g *group) replaceStaticMember(instanceID, oldID, newID string) *member {
	m := g.members[oldID]
	delete(g.members, oldID)
	m.invokeJoin(joinError(kerr.FencedInstanceID.Code, oldID))
	m.invokeSync(syncResult{err: kerr.FencedInstanceID.Code})
	m.id = newID
	g.members[newID] = m
	if g.leader == oldID {
		g.leader = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	g.static[instanceID] = newID
	return m
}

// updateStaticMember handles a known group.instance.id joining with an empty member id: the
// old member id is replaced (and fenced), and a rebalance runs only if it has to.
func (g *group) updateStaticMember(oldID, newID string, p joinParams) (chan joinResult, joinResult) {
	currentLeader := g.leader
	m := g.replaceStaticMember(*p.instanceID, oldID, newID)
	g.scheduleSession(m, m.sessionTimeout)
	oldProtocols, oldRebalance, oldSession := m.protocols, m.rebalanceTimeout, m.sessionTimeout
	oldClientID, oldClientHost := m.clientID, m.clientHost
	m.clientID, m.clientHost = p.clientID, p.clientHost
	wait := make(chan joinResult, 1)
	g.updateMember(m, p.protocols, p.rebalance, p.session, wait)

	switch g.state {
	case stateStable:
		if g.selectProtocol() == g.protocol {
			// Same selected protocol: persist the new member id, no rebalance. A Stable group would
			// not distribute a new assignment, so a rejoining leader must not run one: from v9 it
			// is told it leads but to skip the assignment, so that it keeps watching the group's
			// topics for changes that need a rebalance; before v9 it is given the old leader id,
			// which makes it believe it follows.
			if err := g.storeGroup(nil); err != nil {
				g.updateMember(m, oldProtocols, oldRebalance, oldSession, nil)
				m.joinWait = nil
				m.clientID, m.clientHost = oldClientID, oldClientHost
				g.replaceStaticMember(*p.instanceID, newID, oldID)
				g.leader = currentLeader
				g.scheduleSession(m, m.sessionTimeout)
				r := g.joinResultFor(m)
				r.err = storeErrorCode(err, false)
				r.memberID = ""
				r.leader = currentLeader
				return nil, r
			}
			r := g.joinResultFor(m)
			switch {
			case !p.canSkipAssign:
				r.leader = currentLeader
			case m.id == g.leader: // replaceStaticMember moved the leadership to the new id
				r.members = g.memberMetadata()
				r.skipAssignment = true
			}
			m.invokeJoin(r)
			return wait, joinResult{}
		}
		g.maybePrepareRebalance()
	case stateCompletingRebalance:
		// The old member id may already be in the leader's hands; run a new round.
		g.prepareRebalance()
	}
	g.tryCompleteJoin()
	return wait, joinResult{}
}
