package group

// DeleteGroups: versions 0-3. Only Empty groups can be deleted (NON_EMPTY_GROUP otherwise); their
// offsets and metadata are tombstoned.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups deletes groups and their offsets.
func (c *Coordinator) DeleteGroups(r *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = r.Version
	for _, name := range r.Groups {
		code := c.groupStatus(name)
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = name
		d.ErrorCode = code
		if code == 0 {
			d.ErrorCode = c.deleteGroup(name)
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func (c *Coordinator) deleteGroup(name string) int16 {
	g := c.lockGroup(name, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	defer g.mu.Unlock()
	switch g.state {
	case stateDead:
		return kerr.GroupIDNotFound.Code
	case stateEmpty:
	default:
		return kerr.NonEmptyGroup.Code
	}
	if err := g.deleteLocked(); err != nil {
		return storeErrorCode(err, false)
	}
	return 0
}

// deleteLocked tombstones the group's offsets and metadata and marks it Dead. As Kafka's
// deleteAllOffsets, the partitions that only a pending transactional offset holds get a tombstone
// too (it drops pending offsets on replay): the group's ongoing transactions lose their offsets.
// REQUIRES: g.mu is held and the group is Empty.
func (g *group) deleteLocked() error {
	if g.c.store != nil {
		var records []KV
		for t, ps := range g.offsets {
			for p := range ps {
				records = append(records, KV{Key: offsetKey(g.name, t, p)})
			}
		}
		tombstoned := make(map[string]map[int32]bool)
		for _, txn := range g.txnOffsets {
			for t, ps := range txn {
				for p := range ps {
					if _, ok := g.offsets[t][p]; ok || tombstoned[t][p] {
						continue
					}
					if tombstoned[t] == nil {
						tombstoned[t] = make(map[int32]bool)
					}
					tombstoned[t][p] = true
					records = append(records, KV{Key: offsetKey(g.name, t, p)})
				}
			}
		}
		records = append(records, KV{Key: groupKey(g.name)})
		if err := g.c.store.Append(g.name, records); err != nil {
			return err
		}
	}
	g.offsets = make(map[string]map[int32]offsetEntry)
	g.txnOffsets = make(map[int64]map[string]map[int32]offsetEntry)
	g.stopJoinTimer()
	g.stopSyncTimer()
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	g.transition(stateDead)
	g.c.removeGroup(g)
	return nil
}
