package broker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/httpapi"
	"github.com/moldau/moldau/internal/record"
)

// The groups, reassignments and leader elections of the admin API (httpapi.Backend). Group
// offsets and lag come from the group's coordinator through kadm (DescribeGroups, OffsetFetch,
// ListOffsets: the lag H − C that kafka-consumer-groups prints); lag in seconds from the lag
// tracker for the groups this node coordinates, else from the record at the committed offset.

// Groups implements httpapi.Backend.
func (a *apiBackend) Groups(ctx context.Context) ([]httpapi.GroupSummary, error) {
	adm, err := a.admin()
	if err != nil {
		return nil, err
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	if len(listed) == 0 {
		return nil, nil
	}
	lags, err := adm.Lag(ctx, listed.Groups()...)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.GroupSummary, 0, len(lags))
	for _, l := range lags.Sorted() {
		s := httpapi.GroupSummary{
			GroupID: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
			Members: len(l.Members), Coordinator: l.Coordinator.NodeID, MaxLagSeconds: -1,
		}
		if s.ProtocolType == "" {
			s.ProtocolType = listed[l.Group].ProtocolType
		}
		for _, ps := range l.Lag {
			for _, pl := range ps {
				if pl.Commit.At >= 0 && pl.Lag > 0 {
					s.TotalLag += pl.Lag
				}
			}
		}
		if secs, ok := a.trackedMaxLagSeconds(l.Group); ok {
			s.MaxLagSeconds = secs
		}
		out = append(out, s)
	}
	return out, nil
}

func unknownGroup(id string) error {
	return fmt.Errorf("group %s does not exist: %w", id, kerr.GroupIDNotFound)
}

// Group implements httpapi.Backend.
func (a *apiBackend) Group(ctx context.Context, id string) (httpapi.GroupDetail, error) {
	adm, err := a.admin()
	if err != nil {
		return httpapi.GroupDetail{}, err
	}
	lags, err := adm.Lag(ctx, id)
	if err != nil {
		return httpapi.GroupDetail{}, err
	}
	l, ok := lags[id]
	if !ok {
		return httpapi.GroupDetail{}, unknownGroup(id)
	}
	if err := l.Error(); err != nil {
		return httpapi.GroupDetail{}, fmt.Errorf("group %s: %w", id, err)
	}
	if l.State == "Dead" && len(l.Lag) == 0 {
		return httpapi.GroupDetail{}, unknownGroup(id)
	}
	d := httpapi.GroupDetail{
		GroupID: id, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Coordinator: l.Coordinator.NodeID, Members: []httpapi.GroupMember{}, Offsets: []httpapi.GroupOffset{},
	}
	for _, m := range l.Members {
		gm := httpapi.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignments: []httpapi.Assignment{}}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				gm.Assignments = append(gm.Assignments, httpapi.Assignment{Topic: t.Topic, Partitions: ps})
			}
			sort.Slice(gm.Assignments, func(i, j int) bool { return gm.Assignments[i].Topic < gm.Assignments[j].Topic })
		}
		d.Members = append(d.Members, gm)
	}
	tracked, haveTracked := a.trackedLagSeconds(id)
	now := time.Now()
	for _, ps := range l.Lag {
		for _, pl := range ps {
			if pl.Commit.At < 0 {
				continue // no commit: no lag to speak of (as kafka_exporter)
			}
			o := httpapi.GroupOffset{
				Topic: pl.Topic, Partition: pl.Partition, CommittedOffset: pl.Commit.At,
				HighWatermark: pl.End.Offset, Lag: max(0, pl.Lag),
			}
			if pl.Member != nil {
				o.MemberID = pl.Member.MemberID
			}
			switch {
			case pl.End.Err != nil:
				o.HighWatermark, o.Lag, o.LagSeconds = -1, 0, -1
			case o.Lag == 0:
				o.LagSeconds = 0
			default:
				// The tracker's value only for the offset just read: computed before a
				// later commit, it is the age of another record.
				if s, ok := tracked[tp{pl.Topic, pl.Partition}]; ok && haveTracked && s.committed == pl.Commit.At {
					o.LagSeconds = s.seconds
				} else {
					o.LagSeconds = a.lagSecondsAt(ctx, pl.Topic, pl.Partition, pl.Commit.At, pl.End.Offset, now)
				}
			}
			d.TotalLag += o.Lag
			d.MaxLagSeconds = max(d.MaxLagSeconds, o.LagSeconds)
			d.Offsets = append(d.Offsets, o)
		}
	}
	sort.Slice(d.Offsets, func(i, j int) bool {
		if d.Offsets[i].Topic != d.Offsets[j].Topic {
			return d.Offsets[i].Topic < d.Offsets[j].Topic
		}
		return d.Offsets[i].Partition < d.Offsets[j].Partition
	})
	return d, nil
}

type tp struct {
	topic     string
	partition int32
}

// lagSecondsAt is now − the timestamp of the first data record at or after committed (below
// end), -1 when it cannot be read.
func (a *apiBackend) lagSecondsAt(ctx context.Context, topic string, p int32, committed, end int64, now time.Time) float64 {
	off := committed
	for off < end {
		data, err := a.ReadBatches(ctx, topic, p, off, 64<<10)
		if err != nil || len(data) == 0 {
			return -1
		}
		batches, _ := record.Split(data)
		if len(batches) == 0 {
			return -1
		}
		for _, b := range batches {
			h, recs, err := record.Records(b)
			if err != nil {
				return -1
			}
			if !h.Control() {
				for _, r := range recs {
					if h.BaseOffset+int64(r.OffsetDelta) >= committed {
						return max(0, now.Sub(time.UnixMilli(h.Timestamp(r))).Seconds())
					}
				}
			}
			off = h.LastOffset() + 1
		}
	}
	return 0
}

// GroupLagHistory implements httpapi.Backend.
func (a *apiBackend) GroupLagHistory(ctx context.Context, id string) (httpapi.LagHistory, error) {
	adm, err := a.admin()
	if err != nil {
		return httpapi.LagHistory{}, err
	}
	h := httpapi.LagHistory{IntervalMs: a.lagIntervalMs(), Coordinator: -1}
	co := adm.FindGroupCoordinators(ctx, id)
	if c, ok := co[id]; ok && c.Err == nil {
		h.Coordinator = c.NodeID
	}
	h.Samples = a.lagHistory(id)
	return h, nil
}

// ResetOffsets implements httpapi.Backend as kafka-consumer-groups --reset-offsets does: only for
// a group without members; the partitions are the ones asked for, else every partition the group
// has committed offsets for (of the topics asked for, if any).
func (a *apiBackend) ResetOffsets(ctx context.Context, id string, req httpapi.ResetOffsets) ([]httpapi.OffsetReset, error) {
	adm, err := a.admin()
	if err != nil {
		return nil, err
	}
	described, err := adm.DescribeGroups(ctx, id)
	if err != nil {
		return nil, err
	}
	if g, ok := described[id]; ok {
		if g.Err != nil && g.Err != kerr.GroupIDNotFound {
			return nil, fmt.Errorf("describe group %s: %w", id, g.Err)
		}
		if len(g.Members) > 0 {
			return nil, fmt.Errorf("group %s has %d active members (state %s): stop its consumers first, as kafka-consumer-groups --reset-offsets requires: %w",
				id, len(g.Members), g.State, kerr.NonEmptyGroup)
		}
	}
	committed, err := adm.FetchOffsets(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := committed.Error(); err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", id, err)
	}
	im := a.b.meta.Image()
	want := map[string]map[int32]bool{}
	add := func(t string, p int32) {
		if want[t] == nil {
			want[t] = map[int32]bool{}
		}
		want[t][p] = true
	}
	switch {
	case len(req.Partitions) > 0:
		for t, ps := range req.Partitions {
			for _, p := range ps {
				if !im.HasPartition(t, p) {
					return nil, fmt.Errorf("partition %s-%d: %w", t, p, kerr.UnknownTopicOrPartition)
				}
				add(t, p)
			}
		}
	case len(req.Topics) > 0:
		for _, t := range req.Topics {
			top, ok := im.Topic(t)
			if !ok {
				return nil, unknownTopic(t)
			}
			for _, p := range top.Partitions {
				add(t, p.Partition)
			}
		}
	default:
		committed.Each(func(o kadm.OffsetResponse) {
			if o.At >= 0 && im.HasPartition(o.Topic, o.Partition) {
				add(o.Topic, o.Partition)
			}
		})
	}
	var out []httpapi.OffsetReset
	commit := kadm.Offsets{}
	for t, ps := range want {
		parts := make([]int32, 0, len(ps))
		for p := range ps {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		starts, err := a.ListOffsets(ctx, t, parts, -2)
		if err != nil {
			return nil, err
		}
		ends, err := a.ListOffsets(ctx, t, parts, -1)
		if err != nil {
			return nil, err
		}
		var at map[int32]int64
		if req.To == "timestamp" {
			if at, err = a.ListOffsets(ctx, t, parts, *req.Timestamp); err != nil {
				return nil, err
			}
		}
		for _, p := range parts {
			cur := int64(-1)
			if o, ok := committed.Lookup(t, p); ok && o.Err == nil {
				cur = o.At
			}
			var n int64
			switch req.To {
			case "earliest":
				n = starts[p]
			case "latest":
				n = ends[p]
			case "timestamp":
				n = at[p]
			case "offset":
				n = min(max(*req.Offset, starts[p]), ends[p]) // as the Kafka tool clamps
			}
			out = append(out, httpapi.OffsetReset{Topic: t, Partition: p, Current: cur, New: n})
			commit.Add(kadm.Offset{Topic: t, Partition: p, At: n, LeaderEpoch: -1})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	if req.DryRun || len(out) == 0 {
		return out, nil
	}
	resps, err := adm.CommitOffsets(ctx, id, commit)
	if err != nil {
		return nil, err
	}
	if err := resps.Error(); err != nil {
		return nil, fmt.Errorf("commit offsets of %s: %w", id, err)
	}
	return out, nil
}

// DeleteGroup implements httpapi.Backend.
func (a *apiBackend) DeleteGroup(ctx context.Context, id string) error {
	adm, err := a.admin()
	if err != nil {
		return err
	}
	r, err := adm.DeleteGroup(ctx, id)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return fmt.Errorf("delete group %s: %w", id, err)
	}
	return nil
}

// Reassignments implements httpapi.Backend.
//
// It sends ListPartitionReassignments with null topics, which asks for every reassignment in
// progress: kadm's ListPartitionReassignments answers nothing without topics, so it is not used.
func (a *apiBackend) Reassignments(ctx context.Context) ([]httpapi.Reassignment, error) {
	cl, _, err := a.client()
	if err != nil {
		return nil, err
	}
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		return nil, withMessage(err, msg)
	}
	var out []httpapi.Reassignment
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, httpapi.Reassignment{
				Topic: t.Topic, Partition: p.Partition,
				Replicas: nonNil(p.Replicas), Adding: nonNil(p.AddingReplicas), Removing: nonNil(p.RemovingReplicas),
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

func resultOf(topic string, p int32, err error, msg string) httpapi.PartitionResult {
	r := httpapi.PartitionResult{Topic: topic, Partition: p, Message: msg}
	if err != nil {
		name := err.Error()
		if ke, ok := err.(*kerr.Error); ok {
			name = ke.Message
		}
		r.Error = &name
		if r.Message == "" {
			r.Message = err.Error()
		}
	}
	return r
}

func sortResults(rs []httpapi.PartitionResult) []httpapi.PartitionResult {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Topic != rs[j].Topic {
			return rs[i].Topic < rs[j].Topic
		}
		return rs[i].Partition < rs[j].Partition
	})
	return rs
}

func (a *apiBackend) alterAssignments(ctx context.Context, req kadm.AlterPartitionAssignmentsReq) ([]httpapi.PartitionResult, error) {
	adm, err := a.admin()
	if err != nil {
		return nil, err
	}
	resps, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []httpapi.PartitionResult
	for _, r := range resps.Sorted() {
		out = append(out, resultOf(r.Topic, r.Partition, r.Err, r.ErrMessage))
	}
	return sortResults(out), nil
}

// Reassign implements httpapi.Backend.
func (a *apiBackend) Reassign(ctx context.Context, parts []httpapi.PartitionReplicas) ([]httpapi.PartitionResult, error) {
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, p := range parts {
		req.Assign(p.Topic, p.Partition, p.Replicas)
	}
	return a.alterAssignments(ctx, req)
}

// CancelReassignments implements httpapi.Backend.
func (a *apiBackend) CancelReassignments(ctx context.Context, parts []httpapi.TopicPartition) ([]httpapi.PartitionResult, error) {
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, p := range parts {
		req.CancelAssign(p.Topic, p.Partition)
	}
	return a.alterAssignments(ctx, req)
}

// ElectLeaders implements httpapi.Backend; no partitions: every partition.
func (a *apiBackend) ElectLeaders(ctx context.Context, unclean bool, parts []httpapi.TopicPartition) ([]httpapi.PartitionResult, error) {
	adm, err := a.admin()
	if err != nil {
		return nil, err
	}
	how := kadm.ElectPreferredReplica
	if unclean {
		how = kadm.ElectLiveReplica
	}
	var set kadm.TopicsSet
	if len(parts) > 0 {
		set = kadm.TopicsSet{}
		for _, p := range parts {
			set.Add(p.Topic, p.Partition)
		}
	}
	res, err := adm.ElectLeaders(ctx, how, set)
	if err != nil {
		return nil, err
	}
	var out []httpapi.PartitionResult
	for _, ps := range res {
		for _, r := range ps {
			if r.Err == kerr.ElectionNotNeeded && len(parts) == 0 {
				continue // all partitions: only the ones that moved or failed
			}
			out = append(out, resultOf(r.Topic, r.Partition, r.Err, r.ErrMessage))
		}
	}
	return sortResults(out), nil
}
