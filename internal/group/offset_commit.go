package group

// OffsetCommit: versions 0-9 (v10 names topics by id and is not implemented). Generation -1 with
// an empty member id is a simple (group-less) commit, allowed while the group is Empty; other
// commits are validated against the member id, group.instance.id (v7+) and generation.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit stores offsets; it answers only after the Store made them durable.
func (c *Coordinator) OffsetCommit(r *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = r.Version
	codes := c.offsetCommit(r)
	for i, t := range r.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes(i, j)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// offsetCommit returns the error code of each requested partition, by topic and partition index.
func (c *Coordinator) offsetCommit(r *kmsg.OffsetCommitRequest) func(t, p int) int16 {
	all := func(code int16) func(int, int) int16 { return func(int, int) int16 { return code } }
	if code := c.groupStatus(r.Group); code != 0 {
		return all(code)
	}
	generation, memberID := r.Generation, r.MemberID
	if r.Version == 0 {
		generation, memberID = -1, ""
	}
	var instanceID *string
	if r.Version >= 7 {
		instanceID = r.InstanceID
	}
	g := c.lockGroup(r.Group, generation < 0)
	if g == nil {
		// Not a group-less commit, and no such group: a commit from an older generation.
		return all(kerr.IllegalGeneration.Code)
	}
	defer g.mu.Unlock()
	if code := g.validateCommit(generation, memberID, instanceID, false); code != 0 {
		return all(code)
	}
	switch g.state {
	case stateCompletingRebalance:
		// The member has the new generation but not its assignment yet.
		return all(kerr.RebalanceInProgress.Code)
	case stateStable, statePreparingRebalance:
		// Commits are allowed while preparing: the heartbeat tells the member to rejoin.
		if m := g.members[memberID]; m != nil {
			g.scheduleSession(m, m.sessionTimeout)
		}
	}

	codes := make([][]int16, len(r.Topics))
	var records []KV
	type pending struct {
		topic     string
		partition int32
		entry     offsetEntry
	}
	var entries []pending
	now := c.clock.Now().UnixMilli()
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			switch {
			case len(md) > c.cfg.OffsetMetadataMaxBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			epoch := p.LeaderEpoch
			if r.Version < 6 {
				epoch = -1
			}
			e := offsetEntry{offset: p.Offset, leaderEpoch: epoch, metadata: md, commitTime: now}
			entries = append(entries, pending{t.Topic, p.Partition, e})
			records = append(records, KV{Key: offsetKey(r.Group, t.Topic, p.Partition), Value: offsetValue(e)})
		}
	}
	if len(records) > 0 && c.store != nil {
		if err := c.store.Append(r.Group, records); err != nil {
			code := storeErrorCode(err, true)
			for i := range codes {
				for j := range codes[i] {
					if codes[i][j] == 0 {
						codes[i][j] = code
					}
				}
			}
			return func(t, p int) int16 { return codes[t][p] }
		}
	}
	for _, e := range entries {
		e.entry.seq = g.nextSeq()
		g.setOffset(e.topic, e.partition, e.entry)
	}
	return func(t, p int) int16 { return codes[t][p] }
}

// validateCommit is Kafka's validateOffsetCommit (ClassicGroup): transactional is set for a
// TxnOffsetCommit, which may commit without group metadata (v0-2) to a group with members.
// REQUIRES: g.mu is held.
func (g *group) validateCommit(generation int32, memberID string, instanceID *string, transactional bool) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if instanceID != nil {
			cur, ok := g.static[*instanceID]
			if !ok {
				return kerr.UnknownMemberID.Code
			}
			if cur != memberID {
				return kerr.FencedInstanceID.Code
			}
		} else if g.members[memberID] == nil {
			return kerr.UnknownMemberID.Code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if g.state != stateEmpty && !transactional {
		// Only members commit to a group with members.
		return kerr.UnknownMemberID.Code
	}
	return 0
}
