package group

// LeaveGroup: versions 0-5. v0-v2 name one member; v3+ a batch of members (by member id, or by
// group.instance.id alone for administrative removal) with per-member errors.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup removes members; the group rebalances (or becomes Empty).
func (c *Coordinator) LeaveGroup(r *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = r.Version
	leaving := r.Members
	if r.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: r.MemberID}}
	}
	top, members := c.leaveGroup(r.Group, leaving)
	resp.ErrorCode = top
	if r.Version >= 3 {
		resp.Members = members
	} else if top == 0 && len(members) == 1 {
		resp.ErrorCode = members[0].ErrorCode
	}
	return resp
}

func (c *Coordinator) leaveGroup(name string, leaving []kmsg.LeaveGroupRequestMember) (int16, []kmsg.LeaveGroupResponseMember) {
	if code := c.groupStatus(name); code != 0 {
		return code, nil
	}
	if name == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	out := make([]kmsg.LeaveGroupResponseMember, 0, len(leaving))
	result := func(l kmsg.LeaveGroupRequestMember, code int16) {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = l.MemberID
		rm.InstanceID = l.InstanceID
		rm.ErrorCode = code
		out = append(out, rm)
	}
	g := c.lockGroup(name, false)
	if g == nil {
		for _, l := range leaving {
			result(l, kerr.UnknownMemberID.Code)
		}
		return 0, out
	}
	defer g.mu.Unlock()
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code, nil
	}
	for _, l := range leaving {
		switch {
		case l.MemberID == "":
			if l.InstanceID == nil {
				result(l, kerr.UnknownMemberID.Code)
				continue
			}
			id, ok := g.static[*l.InstanceID]
			if !ok {
				result(l, kerr.UnknownMemberID.Code)
				continue
			}
			g.removeMemberAndUpdate(g.members[id])
			result(l, 0)
		case g.pending[l.MemberID] != nil:
			g.removePending(l.MemberID)
			result(l, 0)
		case g.staticFenced(l.InstanceID, l.MemberID):
			result(l, kerr.FencedInstanceID.Code)
		case g.members[l.MemberID] != nil:
			g.removeMemberAndUpdate(g.members[l.MemberID])
			result(l, 0)
		default:
			result(l, kerr.UnknownMemberID.Code)
		}
	}
	return 0, out
}
