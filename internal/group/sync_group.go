package group

// SyncGroup: versions 0-5. v3+ carries group.instance.id, v5+ protocol type and name in both
// request (validated) and response.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup completes a member's rebalance round: the leader's assignments are persisted and
// distributed; followers block until then or until ctx is done.
func (c *Coordinator) SyncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	res := c.syncGroup(ctx, r)
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = r.Version
	resp.ErrorCode = res.err
	if res.err == 0 {
		resp.MemberAssignment = res.assignment
		if r.Version >= 5 {
			resp.ProtocolType = kmsg.StringPtr(res.protocolType)
			resp.Protocol = kmsg.StringPtr(res.protocol)
		}
	}
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

func (c *Coordinator) syncGroup(ctx context.Context, r *kmsg.SyncGroupRequest) syncResult {
	if code := c.groupStatus(r.Group); code != 0 {
		return syncResult{err: code}
	}
	if r.Group == "" {
		return syncResult{err: kerr.InvalidGroupID.Code}
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		return syncResult{err: kerr.UnknownMemberID.Code}
	}
	var instanceID *string
	if r.Version >= 3 {
		instanceID = r.InstanceID
	}
	var ptype, protocol *string
	if r.Version >= 5 {
		ptype, protocol = r.ProtocolType, r.Protocol
	}
	wait, res := g.sync(r.MemberID, instanceID, r.Generation, ptype, protocol, r.GroupAssignment)
	g.mu.Unlock()
	if wait == nil {
		return res
	}
	select {
	case res = <-wait:
		return res
	case <-ctx.Done():
		return syncResult{err: kerr.CoordinatorNotAvailable.Code}
	}
}

// sync is Kafka's doSyncGroup. REQUIRES: g.mu is held.
func (g *group) sync(memberID string, instanceID *string, generation int32, ptype, protocol *string,
	assignments []kmsg.SyncGroupRequestGroupAssignment,
) (chan syncResult, syncResult) {
	switch {
	case g.state == stateDead:
		return nil, syncResult{err: kerr.CoordinatorNotAvailable.Code}
	case g.staticFenced(instanceID, memberID):
		return nil, syncResult{err: kerr.FencedInstanceID.Code}
	case g.members[memberID] == nil:
		return nil, syncResult{err: kerr.UnknownMemberID.Code}
	case generation != g.generation:
		return nil, syncResult{err: kerr.IllegalGeneration.Code}
	case ptype != nil && *ptype != g.protocolType:
		return nil, syncResult{err: kerr.InconsistentGroupProtocol.Code}
	case protocol != nil && (g.protocol == "" || *protocol != g.protocol):
		return nil, syncResult{err: kerr.InconsistentGroupProtocol.Code}
	}
	m := g.members[memberID]
	switch g.state {
	case statePreparingRebalance:
		return nil, syncResult{err: kerr.RebalanceInProgress.Code}
	case stateCompletingRebalance:
		wait := make(chan syncResult, 1)
		m.invokeSync(syncResult{err: kerr.RebalanceInProgress.Code}) // superseded retry
		m.syncWait = wait
		g.receivedSync(memberID)
		if memberID == g.leader {
			assign := make(map[string][]byte, len(g.members))
			for _, a := range assignments {
				if _, ok := g.members[a.MemberID]; ok {
					assign[a.MemberID] = a.MemberAssignment
				}
			}
			for id := range g.members {
				if assign[id] == nil {
					assign[id] = []byte{}
				}
			}
			if err := g.storeGroup(assign); err != nil {
				g.resetAndPropagateAssignmentError(storeErrorCode(err, false))
				g.maybePrepareRebalance()
			} else {
				g.setAndPropagateAssignment(assign)
				g.transition(stateStable)
			}
		}
		return wait, syncResult{}
	case stateStable:
		g.receivedSync(memberID)
		g.scheduleSession(m, m.sessionTimeout)
		return nil, syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}
	}
	return nil, syncResult{err: kerr.UnknownMemberID.Code}
}
