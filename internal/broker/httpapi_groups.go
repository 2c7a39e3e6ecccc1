package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/httpapi"
	"github.com/moldau/moldau/internal/metrics"
)

// The groups, reassignments and leader elections of the admin API (httpapi.Backend). A group's
// members and committed offsets come from its coordinator: this node's own coordinator when it
// coordinates the group (no request sent), else the coordinator found through kadm
// (DescribeGroups, OffsetFetch). Its lag is H − C with H the high watermark and C the committed
// offset (what kafka-consumer-groups prints), and its lag in seconds the age of the record at C;
// both are resolved as the lag tracker resolves them (lagSource.resolve): from the local log for
// the partitions led here, one ListOffsets and Fetch per leader for the others.

// groupView is one group as its coordinator describes it, with its committed offsets.
type groupView struct {
	id, state, protocolType, protocol string
	coordinator                       int32
	members                           []httpapi.GroupMember
	owner                             map[tp]string // the member a partition is assigned to
	committed                         []metrics.CommittedOffset
	err                               error // the group could not be described
}

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
	views, err := a.groupViews(ctx, listed.Groups())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]httpapi.GroupSummary, 0, len(views))
	for _, v := range views {
		if v.err != nil {
			continue // gone since it was listed, or its coordinator moved: the next poll shows it
		}
		s := httpapi.GroupSummary{
			GroupID: v.id, State: v.state, ProtocolType: v.protocolType, Protocol: v.protocol,
			Members: len(v.members), Coordinator: v.coordinator,
		}
		if s.ProtocolType == "" {
			s.ProtocolType = listed[v.id].ProtocolType
		}
		l := v.lag(now)
		s.TotalLag, s.MaxLagSeconds = l.TotalLag, l.MaxLagSeconds
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GroupID < out[j].GroupID })
	return out, nil
}

func unknownGroup(id string) error {
	return fmt.Errorf("group %s does not exist: %w", id, kerr.GroupIDNotFound)
}

// Group implements httpapi.Backend.
func (a *apiBackend) Group(ctx context.Context, id string) (httpapi.GroupDetail, error) {
	views, err := a.groupViews(ctx, []string{id})
	if err != nil {
		return httpapi.GroupDetail{}, err
	}
	v := views[0]
	if v.err != nil {
		return httpapi.GroupDetail{}, v.err
	}
	d := httpapi.GroupDetail{
		GroupID: id, State: v.state, ProtocolType: v.protocolType, Protocol: v.protocol,
		Coordinator: v.coordinator, Members: v.members, Offsets: []httpapi.GroupOffset{}, Topics: []string{},
	}
	l := v.lag(time.Now())
	d.TotalLag, d.MaxLagSeconds = l.TotalLag, l.MaxLagSeconds
	for _, p := range l.Partitions {
		o := httpapi.GroupOffset{
			Topic: p.Topic, Partition: p.Partition, CommittedOffset: p.CommittedOffset,
			HighWatermark: p.HighWatermark, Lag: max(0, p.Lag), LagSeconds: p.LagSeconds,
			MemberID: v.owner[tp{p.Topic, p.Partition}],
		}
		if n := len(d.Topics); n == 0 || d.Topics[n-1] != p.Topic {
			d.Topics = append(d.Topics, p.Topic) // Partitions are sorted by topic
		}
		d.Offsets = append(d.Offsets, o)
	}
	return d, nil
}

// lag is v's lag at now over its committed offsets (resolved).
func (v *groupView) lag(now time.Time) metrics.GroupLag {
	return metrics.ComputeLag(metrics.GroupOffsets{Group: v.id, State: v.state, Members: len(v.members), Partitions: v.committed}, now)
}

// groupViews describes the groups ids, each from its coordinator, and resolves the high
// watermark and the record timestamp of every committed offset. A group that does not exist has
// err GROUP_ID_NOT_FOUND; the error returned is for a failure of them all (no admin client).
func (a *apiBackend) groupViews(ctx context.Context, ids []string) ([]*groupView, error) {
	views := make([]*groupView, len(ids))
	var remote []string
	remoteAt := map[string]int{}
	for i, v := range a.localGroupViews(ids) {
		if v == nil {
			remoteAt[ids[i]] = i
			remote = append(remote, ids[i])
			continue
		}
		views[i] = v
	}
	if len(remote) > 0 {
		adm, err := a.admin()
		if err != nil {
			return nil, err
		}
		for _, v := range remoteGroupViews(ctx, adm, remote) {
			views[remoteAt[v.id]] = v
		}
	}
	im := a.b.meta.Image()
	var need []*metrics.CommittedOffset
	for _, v := range views {
		if v.err == nil && v.state == "Dead" && len(v.committed) == 0 {
			v.err = unknownGroup(v.id)
		}
		if v.err != nil {
			continue
		}
		kept := v.committed[:0]
		for _, c := range v.committed {
			if c.Committed >= 0 && im.HasPartition(c.Topic, c.Partition) {
				kept = append(kept, c) // no commit, or one of a deleted topic: no lag (as kafka_exporter)
			}
		}
		v.committed = kept
		for j := range v.committed {
			need = append(need, &v.committed[j])
		}
	}
	a.b.lagSrc.resolve(ctx, im, need)
	return views, nil
}

// localGroupViews describes the groups of ids this node coordinates from its own coordinator,
// in one DescribeGroups and one OffsetFetch; the entry of a group coordinated elsewhere (or not
// loaded yet here) is nil.
func (a *apiBackend) localGroupViews(ids []string) []*groupView {
	out := make([]*groupView, len(ids))
	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Version = 5 // an unknown group is Dead, as for older clients
	describe.Groups = ids
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 8 // many groups in one request
	at := map[string]int{}
	for i, d := range a.b.groups.DescribeGroups(describe).Groups {
		if d.ErrorCode != 0 {
			continue // NOT_COORDINATOR, or loading: asked of the coordinator through kadm
		}
		v := &groupView{id: d.Group, state: d.State, protocolType: d.ProtocolType, protocol: d.Protocol,
			coordinator: a.b.cfg.NodeID, members: []httpapi.GroupMember{}, owner: map[tp]string{}}
		for _, m := range d.Members {
			var assigned *kmsg.ConsumerMemberAssignment
			if d.ProtocolType == "consumer" && len(m.MemberAssignment) > 0 {
				var ca kmsg.ConsumerMemberAssignment
				if err := ca.ReadFrom(m.MemberAssignment); err == nil {
					assigned = &ca
				}
			}
			v.addMember(m.MemberID, m.InstanceID, m.ClientID, m.ClientHost, assigned)
		}
		out[i] = v
		at[d.Group] = i
		fg := kmsg.NewOffsetFetchRequestGroup()
		fg.Group = d.Group // Topics nil: every committed offset
		fetch.Groups = append(fetch.Groups, fg)
	}
	if len(fetch.Groups) == 0 {
		return out
	}
	for _, fg := range a.b.groups.OffsetFetch(fetch).Groups {
		i, ok := at[fg.Group]
		if !ok {
			continue
		}
		if fg.ErrorCode != 0 {
			out[i] = nil // moved away between the two requests: asked through kadm
			continue
		}
		for _, t := range fg.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					out[i].committed = append(out[i].committed, metrics.CommittedOffset{
						Topic: t.Topic, Partition: p.Partition, Committed: p.Offset, HighWatermark: -1, Timestamp: -1})
				}
			}
		}
	}
	return out
}

// remoteGroupViews describes ids through their coordinators (kadm finds them).
func remoteGroupViews(ctx context.Context, adm *kadm.Client, ids []string) []*groupView {
	described, err := adm.DescribeGroups(ctx, ids...)
	out := make([]*groupView, 0, len(ids))
	fetched := adm.FetchManyOffsets(ctx, ids...)
	for _, id := range ids {
		v := &groupView{id: id, members: []httpapi.GroupMember{}, owner: map[tp]string{}}
		out = append(out, v)
		g, ok := described[id]
		switch {
		case !ok && err != nil: // kadm answers the groups it could describe with the error of the others
			v.err = fmt.Errorf("describe group %s: %w", id, err)
			continue
		case !ok || g.Err == kerr.GroupIDNotFound:
			v.err = unknownGroup(id)
			continue
		case g.Err != nil:
			v.err = fmt.Errorf("group %s: %w", id, withMessage(g.Err, g.ErrMessage))
			continue
		}
		v.state, v.protocolType, v.protocol, v.coordinator = g.State, g.ProtocolType, g.Protocol, g.Coordinator.NodeID
		for _, m := range g.Members {
			assigned, _ := m.Assigned.AsConsumer()
			v.addMember(m.MemberID, m.InstanceID, m.ClientID, m.ClientHost, assigned)
		}
		f, ok := fetched[id]
		if !ok || f.Err != nil {
			ferr := f.Err
			if !ok {
				ferr = errors.New("no answer")
			}
			v.err = fmt.Errorf("fetch offsets of %s: %w", id, ferr)
			continue
		}
		f.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil {
				v.committed = append(v.committed, metrics.CommittedOffset{
					Topic: o.Topic, Partition: o.Partition, Committed: o.At, HighWatermark: -1, Timestamp: -1})
			}
		})
	}
	return out
}

// addMember adds a member with its consumer assignment (nil: none, or not a consumer group's),
// the assignment's partitions sorted, and the partitions it owns.
func (v *groupView) addMember(id string, instanceID *string, clientID, host string, assigned *kmsg.ConsumerMemberAssignment) {
	m := httpapi.GroupMember{MemberID: id, InstanceID: instanceID, ClientID: clientID, Host: host, Assignments: []httpapi.Assignment{}}
	if assigned != nil {
		for _, t := range assigned.Topics {
			ps := slices.Clone(t.Partitions)
			slices.Sort(ps)
			for _, p := range ps {
				v.owner[tp{t.Topic, p}] = id
			}
			m.Assignments = append(m.Assignments, httpapi.Assignment{Topic: t.Topic, Partitions: ps})
		}
	}
	sort.Slice(m.Assignments, func(i, j int) bool { return m.Assignments[i].Topic < m.Assignments[j].Topic })
	v.members = append(v.members, m)
}

type tp struct {
	topic     string
	partition int32
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
