package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// missing is Kafka's MISSING_COLUMN_VALUE.
const missing = "-"

// groupOffsetRow is one line of kafka-consumer-groups --describe --offsets. Partition, Current,
// LogEnd and Lag are -1 when unknown (printed as "-").
type groupOffsetRow struct {
	Group     string
	Topic     string
	Partition int32
	Current   int64
	LogEnd    int64
	Lag       int64
	// LagSeconds is how long ago the first unconsumed record (the one at Current) was written:
	// now − its timestamp; 0 when caught up, -1 when unknown. Only moldau group describe shows it.
	LagSeconds float64
	ConsumerID string
	Host       string
	ClientID   string
}

func orMissing(n int64) string {
	if n < 0 {
		return missing
	}
	return strconv.FormatInt(n, 10)
}

func strOrMissing(s string) string {
	if s == "" {
		return missing
	}
	return s
}

func padWidth(minimum int, values ...string) int {
	w := minimum
	for _, v := range values {
		w = max(w, len(v))
	}
	return w
}

// writeGroupOffsets prints Kafka's describe table: a blank line, the header, the rows, and a
// final newline (Kafka prints each line with a leading "\n"). With lagSeconds (moldau group
// describe, never kafka-consumer-groups) a LAG-SECONDS column follows LAG.
func writeGroupOffsets(w io.Writer, rows []groupOffsetRow, lagSeconds bool) {
	var groups, topics, ids, hosts []string
	for _, r := range rows {
		groups = append(groups, r.Group)
		topics = append(topics, r.Topic)
		ids = append(ids, r.ConsumerID)
		hosts = append(hosts, r.Host)
	}
	gw, tw, cw, hw := padWidth(15, groups...), padWidth(15, topics...), padWidth(15, ids...), padWidth(15, hosts...)
	line := func(g, t, p, cur, leo, lag, secs, cid, host, client string) {
		fmt.Fprintf(w, "\n%-*s %-*s %-10s %-15s %-15s %-15s ", gw, g, tw, t, p, cur, leo, lag)
		if lagSeconds {
			fmt.Fprintf(w, "%-12s ", secs)
		}
		fmt.Fprintf(w, "%-*s %-*s %s", cw, cid, hw, host, client)
	}
	line("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-SECONDS", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, r := range rows {
		p := missing
		if r.Partition >= 0 {
			p = itoa32(r.Partition)
		}
		secs := missing
		if r.LagSeconds >= 0 {
			secs = strconv.FormatFloat(r.LagSeconds, 'f', 1, 64)
		}
		line(r.Group, strOrMissing(r.Topic), p, orMissing(r.Current), orMissing(r.LogEnd), orMissing(r.Lag), secs,
			strOrMissing(r.ConsumerID), strOrMissing(r.Host), strOrMissing(r.ClientID))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

// groupMemberRow is one line of --describe --members.
type groupMemberRow struct {
	Group, ConsumerID, InstanceID, Host, ClientID string
	Partitions                                    int
	Assignment                                    string // --verbose: "topic(0,1),other(2)"
}

func writeGroupMembers(w io.Writer, rows []groupMemberRow, verbose bool) {
	var groups, ids, insts, hosts, clients []string
	for _, r := range rows {
		groups, ids, insts = append(groups, r.Group), append(ids, r.ConsumerID), append(insts, r.InstanceID)
		hosts, clients = append(hosts, r.Host), append(clients, r.ClientID)
	}
	gw, cw, iw, hw, clw := padWidth(15, groups...), padWidth(15, ids...), padWidth(17, insts...), padWidth(15, hosts...), padWidth(15, clients...)
	line := func(g, cid, inst, host, client, parts, assign string) {
		fmt.Fprintf(w, "\n%-*s %-*s %-*s %-*s %-*s %-15s ", gw, g, cw, cid, iw, inst, hw, host, clw, client, parts)
		if verbose {
			fmt.Fprint(w, assign)
		}
	}
	line("GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT")
	for _, r := range rows {
		line(r.Group, r.ConsumerID, r.InstanceID, r.Host, r.ClientID, strconv.Itoa(r.Partitions), strOrMissing(r.Assignment))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

// groupStateRow is one line of --describe --state.
type groupStateRow struct {
	Group, Coordinator, Strategy, State string
	Members                             int
}

func writeGroupStates(w io.Writer, rows []groupStateRow) {
	var groups, coords []string
	for _, r := range rows {
		groups, coords = append(groups, r.Group), append(coords, r.Coordinator)
	}
	gw, cw := padWidth(15, groups...), padWidth(25, coords...)
	line := func(g, c, s, st, n string) {
		fmt.Fprintf(w, "\n%-*s %-*s %-20s %-15s %s", gw, g, cw, c, s, st, n)
	}
	line("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	for _, r := range rows {
		line(r.Group, r.Coordinator, strOrMissing(r.Strategy), r.State, strconv.Itoa(r.Members))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

// groupStateNote is what Kafka prints to stderr before describing a group in a given state; ok is
// false when the group does not exist.
func groupStateNote(group, state string) (note string, ok bool) {
	switch state {
	case "Dead", "":
		return fmt.Sprintf("\nConsumer group '%s' does not exist.", group), false
	case "Empty":
		return fmt.Sprintf("\nConsumer group '%s' has no active members.", group), true
	case "PreparingRebalance", "CompletingRebalance", "AssigningRebalance", "Reconciling":
		return fmt.Sprintf("\nWarning: Consumer group '%s' is rebalancing.", group), true
	}
	return "", true
}

// groupSnapshot is one described group plus its committed offsets.
type groupSnapshot struct {
	desc      kadm.DescribedGroup
	committed map[string]map[int32]int64 // topic -> partition -> committed offset
}

// snapshotGroup describes a group and fetches its committed offsets. A group that does not
// exist comes back with State "Dead".
func snapshotGroup(e *env, adm *kadm.Client, group string) (groupSnapshot, error) {
	ctx, cancel := e.adminCtx()
	defer cancel()
	s := groupSnapshot{committed: map[string]map[int32]int64{}}
	dgs, err := adm.DescribeGroups(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) {
			return s, fmt.Errorf("describe group %s: %w", group, err)
		}
	}
	d, ok := dgs[group]
	switch {
	case !ok || errors.Is(d.Err, kerr.GroupIDNotFound):
		d = kadm.DescribedGroup{Group: group, State: "Dead"}
	case d.Err != nil:
		return s, fmt.Errorf("describe group %s: %s", group, kerrMessage(d.Err, d.ErrMessage))
	}
	s.desc = d
	if d.State == "Dead" {
		return s, nil
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return s, fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 {
			return
		}
		if s.committed[o.Topic] == nil {
			s.committed[o.Topic] = map[int32]int64{}
		}
		s.committed[o.Topic][o.Partition] = o.At
	})
	return s, nil
}

// memberAssignment lists a member's assigned partitions, sorted.
func memberAssignment(m kadm.DescribedGroupMember) map[string][]int32 {
	out := map[string][]int32{}
	if a, ok := m.Assigned.AsConsumer(); ok {
		for _, t := range a.Topics {
			ps := append([]int32(nil), t.Partitions...)
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			out[t.Topic] = append(out[t.Topic], ps...)
		}
	}
	return out
}

// groupOffsetRows builds the describe rows: each member's assigned partitions (members with the
// most partitions first, as Kafka does), then committed partitions nobody is assigned.
func groupOffsetRows(s groupSnapshot, logEnd func(t string, p int32) int64) []groupOffsetRow {
	var rows []groupOffsetRow
	assigned := map[string]map[int32]bool{}
	members := append([]kadm.DescribedGroupMember(nil), s.desc.Members...)
	count := func(m kadm.DescribedGroupMember) int {
		n := 0
		for _, ps := range memberAssignment(m) {
			n += len(ps)
		}
		return n
	}
	sort.SliceStable(members, func(i, j int) bool { return count(members[i]) > count(members[j]) })
	row := func(t string, p int32) groupOffsetRow {
		cur := int64(-1)
		if c, ok := s.committed[t][p]; ok {
			cur = c
		}
		leo := logEnd(t, p)
		lag := int64(-1)
		if cur >= 0 && leo >= 0 {
			lag = max(leo-cur, 0)
		}
		return groupOffsetRow{Group: s.desc.Group, Topic: t, Partition: p, Current: cur, LogEnd: leo, Lag: lag, LagSeconds: -1}
	}
	for _, m := range members {
		a := memberAssignment(m)
		topics := make([]string, 0, len(a))
		for t := range a {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			for _, p := range a[t] {
				if assigned[t] == nil {
					assigned[t] = map[int32]bool{}
				}
				assigned[t][p] = true
				r := row(t, p)
				r.ConsumerID, r.Host, r.ClientID = m.MemberID, m.ClientHost, m.ClientID
				rows = append(rows, r)
			}
		}
	}
	var rest []groupOffsetRow
	for t, ps := range s.committed {
		for p := range ps {
			if !assigned[t][p] {
				rest = append(rest, row(t, p))
			}
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].Topic != rest[j].Topic {
			return rest[i].Topic < rest[j].Topic
		}
		return rest[i].Partition < rest[j].Partition
	})
	return append(rows, rest...)
}

// logEndOffsets lists end offsets for the topics of a snapshot (assigned or committed).
func logEndOffsets(e *env, adm *kadm.Client, snaps ...groupSnapshot) (func(string, int32) int64, error) {
	set := map[string]bool{}
	for _, s := range snaps {
		for t := range s.committed {
			set[t] = true
		}
		for _, m := range s.desc.Members {
			for t := range memberAssignment(m) {
				set[t] = true
			}
		}
	}
	lookup := func(string, int32) int64 { return -1 }
	if len(set) == 0 {
		return lookup, nil
	}
	topics := make([]string, 0, len(set))
	for t := range set {
		topics = append(topics, t)
	}
	ctx, cancel := e.adminCtx()
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		var se *kadm.ShardErrors
		if !errors.As(err, &se) {
			return nil, fmt.Errorf("list end offsets: %w", err)
		}
	}
	return func(t string, p int32) int64 {
		if o, ok := ends.Lookup(t, p); ok && o.Err == nil {
			return o.Offset
		}
		return -1
	}, nil
}

func memberRows(s groupSnapshot) []groupMemberRow {
	var rows []groupMemberRow
	for _, m := range s.desc.Members {
		a := memberAssignment(m)
		topics := make([]string, 0, len(a))
		n := 0
		for t, ps := range a {
			topics = append(topics, t)
			n += len(ps)
		}
		sort.Strings(topics)
		var parts []string
		for _, t := range topics {
			parts = append(parts, t+"("+joinInt32s(a[t])+")")
		}
		inst := ""
		if m.InstanceID != nil {
			inst = *m.InstanceID
		}
		rows = append(rows, groupMemberRow{Group: s.desc.Group, ConsumerID: m.MemberID, InstanceID: inst,
			Host: m.ClientHost, ClientID: m.ClientID, Partitions: n, Assignment: strings.Join(parts, ",")})
	}
	return rows
}

func stateRow(s groupSnapshot) groupStateRow {
	c := s.desc.Coordinator
	coord := fmt.Sprintf("%s  (%d)", net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.NodeID)
	return groupStateRow{Group: s.desc.Group, Coordinator: coord, Strategy: s.desc.Protocol, State: s.desc.State, Members: len(s.desc.Members)}
}

// resetSpec is one --reset-offsets target.
type resetSpec struct {
	mode   string // to-earliest, to-latest, to-current, to-offset, to-datetime, by-duration, shift-by
	offset int64  // to-offset
	millis int64  // to-datetime, by-duration (already resolved to a time)
	shift  int64  // shift-by
}

// parseTopicPartitions parses --topic values: "t" (all partitions) or "t:0,2".
func parseTopicPartitions(values []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, v := range values {
		t, ps, hasPs := strings.Cut(v, ":")
		if t == "" {
			return nil, fmt.Errorf("--topic %q: missing topic name", v)
		}
		if !hasPs {
			out[t] = nil
			continue
		}
		for p := range strings.SplitSeq(ps, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: partition %q is not a non-negative integer", v, p)
			}
			out[t] = append(out[t], int32(n))
		}
	}
	return out, nil
}

// planReset computes the new offsets for a group. targets maps topic -> partitions (nil: all);
// allTopics takes every topic the group has committed offsets for.
func planReset(e *env, adm *kadm.Client, s groupSnapshot, targets map[string][]int32, allTopics bool, spec resetSpec) (kadm.Offsets, []string, error) {
	var warnings []string
	if allTopics {
		targets = map[string][]int32{}
		for t := range s.committed {
			targets[t] = nil
		}
	}
	if len(targets) == 0 {
		return nil, nil, nil
	}
	topics := make([]string, 0, len(targets))
	for t := range targets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("metadata: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	var byTime kadm.ListedOffsets
	if spec.mode == "to-datetime" || spec.mode == "by-duration" {
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, spec.millis, topics...); err != nil {
			return nil, nil, fmt.Errorf("list offsets by time: %w", err)
		}
	}
	lookup := func(l kadm.ListedOffsets, t string, p int32) (int64, error) {
		o, ok := l.Lookup(t, p)
		if !ok {
			return 0, fmt.Errorf("no offset listed for %s-%d", t, p)
		}
		if o.Err != nil {
			return 0, fmt.Errorf("%s-%d: %w", t, p, o.Err)
		}
		return o.Offset, nil
	}
	out := kadm.Offsets{}
	for _, t := range topics {
		td, ok := md.Topics[t]
		if !ok || td.Err != nil {
			return nil, nil, fmt.Errorf("topic %s does not exist", t)
		}
		ps := targets[t]
		if ps == nil {
			for _, pd := range td.Partitions.Sorted() {
				ps = append(ps, pd.Partition)
			}
		}
		for _, p := range ps {
			if _, ok := td.Partitions[p]; !ok {
				return nil, nil, fmt.Errorf("topic %s has no partition %d", t, p)
			}
			lo, err := lookup(starts, t, p)
			if err != nil {
				return nil, nil, err
			}
			hi, err := lookup(ends, t, p)
			if err != nil {
				return nil, nil, err
			}
			cur, hasCur := s.committed[t][p]
			clamp := func(n int64) int64 {
				switch {
				case n < lo:
					warnings = append(warnings, fmt.Sprintf("New offset (%d) is lower than earliest offset for topic partition %s-%d. Value will be set to %d", n, t, p, lo))
					return lo
				case n > hi:
					warnings = append(warnings, fmt.Sprintf("New offset (%d) is higher than latest offset for topic partition %s-%d. Value will be set to %d", n, t, p, hi))
					return hi
				}
				return n
			}
			var n int64
			switch spec.mode {
			case "to-earliest":
				n = lo
			case "to-latest":
				n = hi
			case "to-current":
				n = hi
				if hasCur {
					n = cur
				}
			case "to-offset":
				n = clamp(spec.offset)
			case "shift-by":
				if !hasCur {
					return nil, nil, fmt.Errorf("cannot shift the offset of %s-%d: the group has no committed offset there", t, p)
				}
				n = clamp(cur + spec.shift)
			case "to-datetime", "by-duration":
				if n, err = lookup(byTime, t, p); err != nil {
					return nil, nil, err
				}
				if n < 0 {
					n = hi
				}
			default:
				return nil, nil, fmt.Errorf("unknown reset mode %q", spec.mode)
			}
			out.Add(kadm.Offset{Topic: t, Partition: p, At: n, LeaderEpoch: -1})
		}
	}
	return out, warnings, nil
}

// writeResetPlan prints Kafka's reset-offsets table.
func writeResetPlan(w io.Writer, group string, offs kadm.Offsets) {
	if len(offs) == 0 {
		return
	}
	const format = "%-30s %-30s %-10s %-15s\n"
	fmt.Fprintf(w, "\n"+format, "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")
	for _, o := range offs.Sorted() {
		fmt.Fprintf(w, format, group, o.Topic, itoa32(o.Partition), strconv.FormatInt(o.At, 10))
	}
	fmt.Fprintln(w)
}

// parseISODuration parses Java's Duration.parse format (PnDTnHnMn.nS, optionally signed) and, as
// a Moldau convenience, Go durations ("90m").
func parseISODuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, true
	}
	re := regexp.MustCompile(`^([-+]?)[Pp](?:([-+]?[0-9]+)[Dd])?(?:[Tt](?:([-+]?[0-9]+)[Hh])?(?:([-+]?[0-9]+)[Mm])?(?:([-+]?[0-9]+(?:\.[0-9]{0,9})?)[Ss])?)?$`)
	m := re.FindStringSubmatch(s)
	if m == nil || (m[2] == "" && m[3] == "" && m[4] == "" && m[5] == "") {
		return 0, false
	}
	var d time.Duration
	unit := []time.Duration{24 * time.Hour, time.Hour, time.Minute}
	for i, u := range unit {
		if m[i+2] != "" {
			n, _ := strconv.ParseInt(m[i+2], 10, 64)
			d += time.Duration(n) * u
		}
	}
	if m[5] != "" {
		f, _ := strconv.ParseFloat(m[5], 64)
		d += time.Duration(f * float64(time.Second))
	}
	if m[1] == "-" {
		d = -d
	}
	return d, true
}
