package group

// Heartbeat: versions 0-4. v3+ carries group.instance.id.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat keeps a member's session alive; during a rebalance it answers
// REBALANCE_IN_PROGRESS so the member rejoins.
func (c *Coordinator) Heartbeat(r *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = r.Version
	resp.ErrorCode = c.heartbeat(r)
	return resp
}

func (c *Coordinator) heartbeat(r *kmsg.HeartbeatRequest) int16 {
	if code := c.groupStatus(r.Group); code != 0 {
		return code
	}
	if r.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	var instanceID *string
	if r.Version >= 3 {
		instanceID = r.InstanceID
	}
	m := g.members[r.MemberID]
	switch {
	case g.state == stateDead:
		return kerr.CoordinatorNotAvailable.Code
	case g.staticFenced(instanceID, r.MemberID):
		return kerr.FencedInstanceID.Code
	case m == nil:
		return kerr.UnknownMemberID.Code
	case r.Generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case stateCompletingRebalance, stateStable:
		g.scheduleSession(m, m.sessionTimeout)
		return 0
	case statePreparingRebalance:
		g.scheduleSession(m, m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	}
	return kerr.UnknownMemberID.Code
}
