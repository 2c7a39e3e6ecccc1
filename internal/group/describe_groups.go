package group

// DescribeGroups: versions 0-6. Member metadata and assignments are shown only for Stable groups,
// as Kafka does. v6+ answers GROUP_ID_NOT_FOUND for unknown groups (KIP-1043); older versions get
// the Dead state with no error.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// allGroupOperations is the ACL operation bitfield of a group when no authorizer runs:
// READ (3), DELETE (6), DESCRIBE (8).
const allGroupOperations = 1<<3 | 1<<6 | 1<<8

// DescribeGroups describes groups.
func (c *Coordinator) DescribeGroups(r *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = r.Version
	for _, name := range r.Groups {
		code := c.groupStatus(name)
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = name
		if r.IncludeAuthorizedOperations {
			d.AuthorizedOperations = allGroupOperations
		}
		if code != 0 {
			d.ErrorCode = code
			resp.Groups = append(resp.Groups, d)
			continue
		}
		g := c.lockGroup(name, false)
		if g == nil || g.state == stateDead {
			if g != nil {
				g.mu.Unlock()
			}
			d.State = stateDead.String()
			if r.Version >= 6 {
				d.ErrorCode = kerr.GroupIDNotFound.Code
				d.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("Group %s not found.", name))
			}
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d.State = g.state.String()
		d.ProtocolType = g.protocolType
		stable := g.state == stateStable
		if stable {
			d.Protocol = g.protocol
		}
		for _, m := range g.sortedMembers() {
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID = m.id
			dm.InstanceID = m.instanceID
			dm.ClientID = m.clientID
			dm.ClientHost = m.clientHost
			dm.ProtocolMetadata = []byte{}
			dm.MemberAssignment = []byte{}
			if stable {
				if md := m.metadata(g.protocol); md != nil {
					dm.ProtocolMetadata = md
				}
				if m.assignment != nil {
					dm.MemberAssignment = m.assignment
				}
			}
			d.Members = append(d.Members, dm)
		}
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}
