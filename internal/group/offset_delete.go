package group

// OffsetDelete: version 0 (KIP-496). Offsets of topics the group is subscribed to cannot be
// deleted (GROUP_SUBSCRIBED_TO_TOPIC); a non-Empty group that is not a consumer group cannot
// delete any (NON_EMPTY_GROUP).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete deletes committed offsets, writing tombstones.
func (c *Coordinator) OffsetDelete(r *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = r.Version
	top, codes := c.offsetDelete(r)
	resp.ErrorCode = top
	if top != 0 {
		return resp
	}
	for i, t := range r.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (c *Coordinator) offsetDelete(r *kmsg.OffsetDeleteRequest) (int16, [][]int16) {
	if code := c.groupStatus(r.Group); code != 0 {
		return code, nil
	}
	if r.Group == "" {
		return kerr.InvalidGroupID.Code, nil
	}
	g := c.lockGroup(r.Group, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code, nil
	}
	defer g.mu.Unlock()
	if g.state == stateDead {
		return kerr.GroupIDNotFound.Code, nil
	}
	if g.state != stateEmpty && g.protocolType != consumerProtocolType {
		return kerr.NonEmptyGroup.Code, nil
	}
	codes := make([][]int16, len(r.Topics))
	var records []KV
	type tp struct {
		topic     string
		partition int32
	}
	var deleted []tp
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			switch {
			case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case g.state != stateEmpty && g.isSubscribed(t.Topic):
				codes[i][j] = kerr.GroupSubscribedToTopic.Code
			default:
				// As Kafka: a tombstone for a committed or a pending transactional offset.
				if _, ok := g.offsets[t.Topic][p.Partition]; ok || g.hasPendingOffset(t.Topic, p.Partition) {
					deleted = append(deleted, tp{t.Topic, p.Partition})
					records = append(records, KV{Key: offsetKey(g.name, t.Topic, p.Partition)})
				}
			}
		}
	}
	if len(records) > 0 && c.store != nil {
		if err := c.store.Append(g.name, records); err != nil {
			return storeErrorCode(err, false), nil
		}
	}
	for _, d := range deleted {
		g.deleteOffset(d.topic, d.partition)
	}
	return 0, codes
}
