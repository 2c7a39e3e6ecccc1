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

	b := newCommitBatch(len(r.Topics))
	now := c.clock.Now().UnixMilli()
	for i, t := range r.Topics {
		b.codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if r.Version < 6 {
				epoch = -1
			}
			b.codes[i][j] = c.addCommit(b, r.Group, t.Topic, p.Partition, p.Offset, epoch, p.Metadata, now)
		}
	}
	if len(b.records) > 0 && c.store != nil {
		if err := c.store.Append(r.Group, b.records); err != nil {
			b.fail(storeErrorCode(err, true))
			return b.code
		}
	}
	for _, e := range b.entries {
		e.entry.seq = g.nextSeq()
		g.setOffset(e.topic, e.partition, e.entry)
	}
	return b.code
}

// commitBatch is what one OffsetCommit or TxnOffsetCommit writes: the error code of each
// requested partition by topic and partition index (0: written), and the entries and records of
// the partitions to write, in the same order.
type commitBatch struct {
	codes   [][]int16
	entries []commitEntry
	records []KV
}

// commitEntry is one partition's offset of a commitBatch.
type commitEntry struct {
	topic     string
	partition int32
	entry     offsetEntry
}

func newCommitBatch(topics int) *commitBatch { return &commitBatch{codes: make([][]int16, topics)} }

// addCommit checks one partition of a commit (metadata size, the partition exists) and adds its
// entry and offset record to b; it returns the partition's error code, 0 when added. leaderEpoch
// is -1 for request versions that carry none.
func (c *Coordinator) addCommit(b *commitBatch, group, topic string, partition int32, offset int64, leaderEpoch int32, metadata *string, now int64) int16 {
	md := ""
	if metadata != nil {
		md = *metadata
	}
	switch {
	case len(md) > c.cfg.OffsetMetadataMaxBytes:
		return kerr.OffsetMetadataTooLarge.Code
	case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(topic, partition):
		return kerr.UnknownTopicOrPartition.Code
	}
	e := offsetEntry{offset: offset, leaderEpoch: leaderEpoch, metadata: md, commitTime: now}
	b.entries = append(b.entries, commitEntry{topic, partition, e})
	b.records = append(b.records, KV{Key: offsetKey(group, topic, partition), Value: offsetValue(e)})
	return 0
}

// fail answers code for every partition that was to be written: the store failed.
func (b *commitBatch) fail(code int16) {
	for i := range b.codes {
		for j := range b.codes[i] {
			if b.codes[i][j] == 0 {
				b.codes[i][j] = code
			}
		}
	}
}

// code is the error code of partition p of topic t.
func (b *commitBatch) code(t, p int) int16 { return b.codes[t][p] }

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
