package group

// ListGroups: versions 0-5. v4+ filters by state, v5+ by type; both case-insensitively. Every
// group here is a "classic" group.

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const classicGroupType = "classic"

// ListGroups lists the groups.
func (c *Coordinator) ListGroups(r *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = r.Version
	if code := c.status(); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	var states, types []string
	if r.Version >= 4 {
		states = r.StatesFilter
	}
	if r.Version >= 5 {
		types = r.TypesFilter
	}
	if !match(types, classicGroupType) {
		return resp
	}
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		state, ptype := g.state, g.protocolType
		g.mu.Unlock()
		if state == stateDead || !match(states, state.String()) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.name
		lg.ProtocolType = ptype
		lg.GroupState = state.String()
		lg.GroupType = classicGroupType
		resp.Groups = append(resp.Groups, lg)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}
