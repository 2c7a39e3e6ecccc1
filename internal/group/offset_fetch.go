package group

// OffsetFetch: versions 0-9 (v10 names topics by id and is not implemented). v0-v7 fetch one
// group, v8+ many. Null topics (v2+) fetch every committed offset of the group. With
// RequireStable (v7+) a partition with a pending transactional offset (TxnOffsetCommit not yet
// ended by its marker) is answered UNSTABLE_OFFSET_COMMIT with offset -1, as Kafka does; without
// it the committed offset is answered.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
	err         int16
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

// OffsetFetch returns committed offsets; unknown partitions get offset -1.
func (c *Coordinator) OffsetFetch(r *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = r.Version
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			code, fetched := c.offsetFetch(rg.Group, topics, r.RequireStable)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			g.ErrorCode = code
			for _, ft := range fetched {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = ft.topic
				for _, fp := range ft.partitions {
					p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					p.Partition = fp.partition
					p.Offset = fp.offset
					p.LeaderEpoch = fp.leaderEpoch
					p.Metadata = kmsg.StringPtr(fp.metadata)
					p.ErrorCode = fp.err
					t.Partitions = append(t.Partitions, p)
				}
				g.Topics = append(g.Topics, t)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}

	topics := r.Topics
	if r.Version < 2 && topics == nil {
		topics = []kmsg.OffsetFetchRequestTopic{}
	}
	code, fetched := c.offsetFetch(r.Group, topics, r.Version >= 7 && r.RequireStable)
	if r.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, ft := range fetched {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, fp := range ft.partitions {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition = fp.partition
			p.Offset = fp.offset
			p.LeaderEpoch = fp.leaderEpoch
			p.Metadata = kmsg.StringPtr(fp.metadata)
			p.ErrorCode = fp.err
			if code != 0 && r.Version < 2 {
				// v0/v1 have no group error field: it goes on every partition.
				p.ErrorCode = code
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// offsetFetch returns a group error and the offsets of topics (every committed offset when
// topics is nil). requireStable answers partitions with pending transactional offsets
// UNSTABLE_OFFSET_COMMIT.
func (c *Coordinator) offsetFetch(name string, topics []kmsg.OffsetFetchRequestTopic, requireStable bool) (int16, []fetchedTopic) {
	code := c.groupStatus(name)
	unknown := func(code int16) []fetchedTopic {
		out := make([]fetchedTopic, 0, len(topics))
		for _, t := range topics {
			ft := fetchedTopic{topic: t.Topic}
			for _, p := range t.Partitions {
				ft.partitions = append(ft.partitions, fetchedPartition{partition: p, offset: -1, leaderEpoch: -1, err: code})
			}
			out = append(out, ft)
		}
		return out
	}
	if code != 0 {
		return code, unknown(0)
	}
	g := c.lockGroup(name, false)
	if g == nil {
		return 0, unknown(0)
	}
	defer g.mu.Unlock()
	if g.state == stateDead {
		return 0, unknown(0)
	}
	if topics == nil {
		names := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			names = append(names, t)
		}
		sort.Strings(names)
		out := make([]fetchedTopic, 0, len(names))
		for _, t := range names {
			ft := fetchedTopic{topic: t}
			for p, e := range g.offsets[t] {
				fp := fetchedPartition{partition: p, offset: e.offset, leaderEpoch: e.leaderEpoch, metadata: e.metadata}
				if requireStable && g.hasPendingOffset(t, p) {
					fp = unstable(p)
				}
				ft.partitions = append(ft.partitions, fp)
			}
			sort.Slice(ft.partitions, func(i, j int) bool { return ft.partitions[i].partition < ft.partitions[j].partition })
			out = append(out, ft)
		}
		return 0, out
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{topic: t.Topic}
		for _, p := range t.Partitions {
			fp := fetchedPartition{partition: p, offset: -1, leaderEpoch: -1}
			if requireStable && g.hasPendingOffset(t.Topic, p) {
				fp = unstable(p)
			} else if e, ok := g.offsets[t.Topic][p]; ok {
				fp.offset, fp.leaderEpoch, fp.metadata = e.offset, e.leaderEpoch, e.metadata
			}
			ft.partitions = append(ft.partitions, fp)
		}
		out = append(out, ft)
	}
	return 0, out
}

// unstable is a partition whose offset an ongoing transaction may still change.
func unstable(p int32) fetchedPartition {
	return fetchedPartition{partition: p, offset: -1, leaderEpoch: -1, err: kerr.UnstableOffsetCommit.Code}
}
