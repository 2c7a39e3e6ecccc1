package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupCmd is one consumer-group operation, filled by kafka-consumer-groups or moldau group.
type groupCmd struct {
	action      string // list, describe, delete, reset-offsets, delete-offsets
	groups      []string
	allGroups   bool
	members     bool
	state       bool
	stateFilter string // list: comma-separated states
	verbose     bool
	topics      []string // t or t:0,1
	allTopics   bool
	reset       resetSpec
	execute     bool
	dryRunNote  bool // print Kafka's "no action will be performed" note
	lagSeconds  bool // describe: the LAG-SECONDS column (moldau group describe only)
}

const (
	errListGroups = "list groups: %w"
)

// resolveGroups returns the named groups, or every group with allGroups.
func resolveGroups(e *env, adm *kadm.Client, c groupCmd) ([]string, error) {
	if !c.allGroups {
		return c.groups, nil
	}
	ctx, cancel := e.adminCtx()
	defer cancel()
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf(errListGroups, err)
	}
	names := lg.Groups()
	sort.Strings(names)
	return names, nil
}

func (e *env) execGroup(seeds []string, c groupCmd) error {
	adm, err := newAdmin(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()

	switch c.action {
	case "list":
		ctx, cancel := e.adminCtx()
		defer cancel()
		var states []string
		for s := range strings.SplitSeq(c.stateFilter, ",") {
			if s = strings.TrimSpace(s); s != "" {
				states = append(states, canonicalState(s))
			}
		}
		lg, err := adm.ListGroups(ctx, states...)
		if err != nil {
			return fmt.Errorf(errListGroups, err)
		}
		sorted := lg.Sorted()
		if !c.state {
			for _, g := range sorted {
				fmt.Fprintln(e.stdout, g.Group)
			}
			return nil
		}
		var names []string
		for _, g := range sorted {
			names = append(names, g.Group)
		}
		gw := padWidth(15, names...)
		fmt.Fprintf(e.stdout, "%-*s %s\n", gw, "GROUP", "STATE")
		for _, g := range sorted {
			fmt.Fprintf(e.stdout, "%-*s %s\n", gw, g.Group, g.State)
		}
		return nil

	case "describe":
		groups, err := resolveGroups(e, adm, c)
		if err != nil {
			return err
		}
		failed := false
		for _, g := range groups {
			s, err := snapshotGroup(e, adm, g)
			if err != nil {
				return err
			}
			note, ok := groupStateNote(g, s.desc.State)
			if note != "" {
				fmt.Fprintln(e.stderr, note)
			}
			if !ok {
				failed = true
				continue
			}
			switch {
			case c.members:
				if s.desc.State == "Empty" {
					continue
				}
				writeGroupMembers(e.stdout, memberRows(s), c.verbose)
			case c.state:
				writeGroupStates(e.stdout, []groupStateRow{stateRow(s)})
			default:
				leo, err := logEndOffsets(e, adm, s)
				if err != nil {
					return err
				}
				rows := groupOffsetRows(s, leo)
				if c.lagSeconds {
					e.fillLagSeconds(seeds, rows)
				}
				writeGroupOffsets(e.stdout, rows, c.lagSeconds)
			}
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil

	case "delete":
		groups, err := resolveGroups(e, adm, c)
		if err != nil {
			return err
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.DeleteGroups(ctx, groups...)
		if err != nil {
			var se *kadm.ShardErrors
			if !asShardErrors(err, &se) {
				return fmt.Errorf("delete groups: %w", err)
			}
		}
		var ok, bad []string
		for _, g := range groups {
			if r, found := resps[g]; found && r.Err == nil {
				ok = append(ok, g)
				continue
			} else if found {
				bad = append(bad, fmt.Sprintf("* Group '%s' could not be deleted due to: %s", g, deleteGroupReason(r.Err, r.ErrMessage)))
			} else {
				bad = append(bad, fmt.Sprintf("* Group '%s' could not be deleted due to: no response", g))
			}
		}
		if len(bad) == 0 {
			fmt.Fprintf(e.stdout, "Deletion of requested consumer groups ('%s') was successful.\n", strings.Join(ok, "', '"))
			return nil
		}
		fmt.Fprintln(e.stderr, "Deletion of some consumer groups failed:")
		for _, b := range bad {
			fmt.Fprintln(e.stderr, b)
		}
		if len(ok) > 0 {
			fmt.Fprintf(e.stdout, "\nThese consumer groups were deleted successfully: '%s'\n", strings.Join(ok, "', '"))
		}
		return &exitError{code: 1}

	case "reset-offsets":
		if c.dryRunNote {
			fmt.Fprintln(e.stderr, "WARN: No action will be performed as the --execute option is missing. "+
				"In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. "+
				"You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.")
		}
		groups, err := resolveGroups(e, adm, c)
		if err != nil {
			return err
		}
		targets, err := parseTopicPartitions(c.topics)
		if err != nil {
			return e.argf("%v", err)
		}
		failed := false
		for _, g := range groups {
			s, err := snapshotGroup(e, adm, g)
			if err != nil {
				return err
			}
			if st := s.desc.State; st != "Empty" && st != "Dead" {
				fmt.Fprintf(e.stderr, "Error: Assignments can only be reset if the group '%s' is inactive, but the current state is %s.\n", g, st)
				failed = true
				continue
			}
			plan, warnings, err := planReset(e, adm, s, targets, c.allTopics, c.reset)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(e.stderr, "WARN: "+w)
			}
			if c.execute && len(plan) > 0 {
				ctx, cancel := e.adminCtx()
				resps, err := adm.CommitOffsets(ctx, g, plan)
				cancel()
				if err != nil {
					return fmt.Errorf("commit offsets for group %s: %w", g, err)
				}
				if err := resps.Error(); err != nil {
					return fmt.Errorf("commit offsets for group %s: %w", g, err)
				}
			}
			writeResetPlan(e.stdout, g, plan)
		}
		if failed {
			return &exitError{code: 1}
		}
		return nil

	case "delete-offsets":
		if len(c.groups) != 1 {
			return e.usagef("--delete-offsets takes exactly one --group")
		}
		g := c.groups[0]
		targets, err := parseTopicPartitions(c.topics)
		if err != nil {
			return e.argf("%v", err)
		}
		if len(targets) == 0 {
			return e.usagef("--delete-offsets needs --topic")
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		var set kadm.TopicsSet
		var names []string
		for t, ps := range targets {
			names = append(names, t)
			if ps != nil {
				set.Add(t, ps...)
			}
		}
		sort.Strings(names)
		var wholeTopics []string
		for t, ps := range targets {
			if ps == nil {
				wholeTopics = append(wholeTopics, t)
			}
		}
		if len(wholeTopics) > 0 {
			md, err := adm.Metadata(ctx, wholeTopics...)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			for _, t := range wholeTopics {
				td, ok := md.Topics[t]
				if !ok || td.Err != nil {
					return fmt.Errorf("topic %s does not exist", t)
				}
				for p := range td.Partitions {
					set.Add(t, p)
				}
			}
		}
		resps, err := adm.DeleteOffsets(ctx, g, set)
		if err != nil {
			return fmt.Errorf("Error: Encountered some unknown error: %w", err)
		}
		type row struct {
			t   string
			p   int32
			err error
		}
		var rows []row
		anyErr := false
		for t, ps := range resps {
			for p, err := range ps {
				rows = append(rows, row{t, p, err})
				anyErr = anyErr || err != nil
			}
		}
		sort.Slice(rows, func(i, j int) bool {
			if rows[i].t != rows[j].t {
				return rows[i].t < rows[j].t
			}
			return rows[i].p < rows[j].p
		})
		if anyErr {
			fmt.Fprintln(e.stderr, "Error: Encountered some partition level error, see the follow-up details:")
		} else {
			fmt.Fprintf(e.stdout, "Request succeed for deleting offsets with topic %s group %s\n", strings.Join(names, ", "), g)
		}
		fmt.Fprintf(e.stdout, "\n%-30s %-15s %-15s\n", "TOPIC", "PARTITION", "STATUS")
		for _, r := range rows {
			status := "Successful"
			if r.err != nil {
				status = "Error: " + kerrMessage(r.err, "")
			}
			fmt.Fprintf(e.stdout, "%-30s %-15s %-15s\n", r.t, itoa32(r.p), status)
		}
		if anyErr {
			return &exitError{code: 1}
		}
		return nil
	}
	return fmt.Errorf("unknown group action %q", c.action)
}

func deleteGroupReason(err error, msg string) string {
	return kerrMessage(err, msg)
}

// canonicalState maps a user-typed state ("stable") to Kafka's spelling ("Stable").
func canonicalState(s string) string {
	for _, st := range []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty", "Assigning", "Reconciling"} {
		if strings.EqualFold(s, st) {
			return st
		}
	}
	return s
}

// parseResetOptions fills the reset spec from the --to-*/--by-*/--shift-by options; exactly one
// must be given.
func (e *env) parseResetOptions(toEarliest, toLatest, toCurrent bool, toOffset, toDatetime, byDuration, shiftBy string) (resetSpec, error) {
	var specs []resetSpec
	if toEarliest {
		specs = append(specs, resetSpec{mode: "to-earliest"})
	}
	if toLatest {
		specs = append(specs, resetSpec{mode: "to-latest"})
	}
	if toCurrent {
		specs = append(specs, resetSpec{mode: "to-current"})
	}
	if toOffset != "" {
		n, err := e.parseInt("to-offset", toOffset, 0, "a non-negative offset")
		if err != nil {
			return resetSpec{}, err
		}
		specs = append(specs, resetSpec{mode: "to-offset", offset: n})
	}
	if toDatetime != "" {
		ms, ok := parseTimestamp(toDatetime, time.Local)
		if !ok {
			return resetSpec{}, e.argf("--to-datetime must look like YYYY-MM-DDTHH:mm:SS.sss (optionally with a zone, e.g. Z or +01:00), got %q", toDatetime)
		}
		specs = append(specs, resetSpec{mode: "to-datetime", millis: ms})
	}
	if byDuration != "" {
		d, ok := parseISODuration(byDuration)
		if !ok || d < 0 {
			return resetSpec{}, e.argf("--by-duration must be an ISO-8601 duration like PT1H30M or P1DT2H, got %q", byDuration)
		}
		specs = append(specs, resetSpec{mode: "by-duration", millis: e.now().Add(-d).UnixMilli()})
	}
	if shiftBy != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(shiftBy), 10, 64)
		if err != nil {
			return resetSpec{}, e.argf("--shift-by must be an integer (negative moves back), got %q", shiftBy)
		}
		specs = append(specs, resetSpec{mode: "shift-by", shift: n})
	}
	if len(specs) != 1 {
		return resetSpec{}, e.usagef("Option --reset-offsets needs exactly one of: --to-earliest, --to-latest, --to-current, --to-offset, --to-datetime, --by-duration, --shift-by")
	}
	return specs[0], nil
}

const kafkaConsumerGroupsUsage = `Usage: kafka-consumer-groups --bootstrap-server HOST:PORT (--list | --describe | --delete | --reset-offsets | --delete-offsets) [options]

List all consumer groups, describe a consumer group, delete consumer group info, or reset
consumer group offsets (Apache Kafka compatible).`

func runKafkaConsumerGroups(e *env, args []string) error {
	fs := newFlagSet("kafka-consumer-groups")
	var bootstrap, commandConfig, toOffset, toDatetime, byDuration, shiftBy, state, typ, fromFile, timeoutS string
	var groups, topics listFlag
	var list, describe, del, reset, delOffsets, allGroups, allTopics, members, offsets, verbose, dryRun, execute bool
	var toEarliest, toLatest, toCurrent, export bool
	fs.StringVar(&bootstrap, "bootstrap-server", "", "REQUIRED: the server(s) to connect to")
	fs.StringVar(&commandConfig, "command-config", "", "property file: bootstrap.servers is used, other settings are ignored")
	fs.BoolVar(&list, "list", false, "List all consumer groups.")
	fs.BoolVar(&describe, "describe", false, "Describe consumer group and list offset lag (number of messages not yet processed) related to given group.")
	fs.BoolVar(&del, "delete", false, "Pass in groups to delete topic partition offsets and ownership information over the entire consumer group.")
	fs.BoolVar(&reset, "reset-offsets", false, "Reset offsets of consumer group. Supports one consumer group at the time, and instances should be inactive.")
	fs.BoolVar(&delOffsets, "delete-offsets", false, "Delete offsets of consumer group. Supports one consumer group at the time, and multiple topics.")
	fs.Var(&groups, "group", "The consumer group we wish to act on (repeatable).")
	fs.BoolVar(&allGroups, "all-groups", false, "Apply to all consumer groups.")
	fs.Var(&topics, "topic", "The topic whose consumer group information should be deleted or reset: topic or topic:0,1 (repeatable).")
	fs.BoolVar(&allTopics, "all-topics", false, "Consider all topics assigned to a group in the reset-offsets process.")
	fs.BoolVar(&members, "members", false, "Describe members of the group.")
	fs.BoolVar(&offsets, "offsets", false, "Describe the group and list all topic partitions in the group along with their offset lag (the default).")
	fs.StringVar(&state, "state", "", "With --describe, the group's state; with --list, filter by comma-separated states (optional value).")
	fs.StringVar(&typ, "type", "", "With --list, group types to show; Moldau only has classic consumer groups.")
	fs.BoolVar(&verbose, "verbose", false, "Provide additional information, if any, when describing the group.")
	fs.BoolVar(&dryRun, "dry-run", false, "Only show results without executing changes on consumer groups.")
	fs.BoolVar(&execute, "execute", false, "Execute operation.")
	fs.BoolVar(&export, "export", false, "not supported by Moldau")
	fs.StringVar(&fromFile, "from-file", "", "not supported by Moldau")
	fs.StringVar(&timeoutS, "timeout", "5000", "The timeout that can be set for some use cases, in ms.")
	fs.BoolVar(&toEarliest, "to-earliest", false, "Reset offsets to earliest offset.")
	fs.BoolVar(&toLatest, "to-latest", false, "Reset offsets to latest offset.")
	fs.BoolVar(&toCurrent, "to-current", false, "Reset offsets to current offset.")
	fs.StringVar(&toOffset, "to-offset", "", "Reset offsets to a specific offset.")
	fs.StringVar(&toDatetime, "to-datetime", "", "Reset offsets to offset from datetime. Format: 'YYYY-MM-DDTHH:mm:SS.sss'")
	fs.StringVar(&byDuration, "by-duration", "", "Reset offsets to offset by duration from current timestamp. Format: 'PnDTnHnMnS'")
	fs.StringVar(&shiftBy, "shift-by", "", "Reset offsets shifting current offset by 'n', where 'n' can be positive or negative.")
	args = optionalValue(args, "state", "")
	pos, err := e.parseArgs(fs, args, kafkaConsumerGroupsUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("Found non-option arguments: %s", strings.Join(pos, " "))
	}
	c := groupCmd{groups: groups, allGroups: allGroups, members: members, verbose: verbose, topics: topics, allTopics: allTopics, execute: execute}
	n := 0
	for name, b := range map[string]bool{"list": list, "describe": describe, "delete": del, "reset-offsets": reset, "delete-offsets": delOffsets} {
		if b {
			n++
			c.action = name
		}
	}
	if n != 1 {
		return e.usagef("Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets")
	}
	if export || fromFile != "" {
		return e.argf("--export and --from-file are not supported by Moldau")
	}
	stateSet := isFlagSet(fs, "state")
	switch c.action {
	case "list":
		c.state, c.stateFilter = stateSet, state
	case "describe":
		c.state = stateSet
		if state != "" {
			return e.usagef("--state takes no value with --describe")
		}
		if btoi(members)+btoi(offsets)+btoi(stateSet) > 1 {
			return e.usagef("Option --describe takes at most one of these options: --members, --offsets, --state")
		}
	}
	if c.action != "list" && len(groups) == 0 && !allGroups {
		return e.usagef("Option --%s takes one of these options: --all-groups, --group", c.action)
	}
	if len(groups) > 0 && allGroups {
		return e.usagef("Options --group and --all-groups cannot be specified together")
	}
	if c.action == "reset-offsets" {
		if c.reset, err = e.parseResetOptions(toEarliest, toLatest, toCurrent, toOffset, toDatetime, byDuration, shiftBy); err != nil {
			return err
		}
		if (len(topics) == 0) == !allTopics {
			return e.usagef("Option --reset-offsets takes one of these options: --all-topics, --topic")
		}
		if dryRun && execute {
			return e.usagef("Option --reset-offsets only accepts one of --execute and --dry-run")
		}
		c.dryRunNote = !dryRun && !execute
	}
	cfgBootstrap, _, err := e.commandConfigBootstrap(commandConfig, "command-config", nil)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, cfgBootstrap)
	if err != nil {
		return err
	}
	return e.execGroup(seeds, c)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

const groupUsage = `Usage: moldau group <list|describe|delete|reset-offsets|delete-offsets> [GROUP...] [options]

  list                        list groups (--state to show states)
  describe GROUP...           lag table like kafka-consumer-groups --describe, plus LAG-SECONDS (--members, --state, --verbose)
  delete GROUP...             delete groups (must have no active members)
  reset-offsets GROUP         print the new offsets; --execute applies them (the group must be inactive)
                              one of --to-earliest, --to-latest, --to-current, --to-offset N,
                              --to-datetime T, --by-duration D, --shift-by N;
                              --topic t[:p,p] (repeatable) or --all-topics
  delete-offsets GROUP        delete committed offsets for --topic t[:p,p]

Brokers come from --bootstrap-server, else $MOLDAU_BOOTSTRAP, else 127.0.0.1:9092.`

func runGroup(e *env, args []string) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: one of list, describe, delete, reset-offsets, delete-offsets")
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		printUsage(e.stdout, newFlagSet("group"), groupUsage)
		return nil
	}
	switch sub {
	case "list", "describe", "delete", "reset-offsets", "delete-offsets":
	default:
		return e.usagef("unknown subcommand %q: want one of list, describe, delete, reset-offsets, delete-offsets", sub)
	}
	e.name = "moldau group " + sub
	fs := newFlagSet("group " + sub)
	var bootstrap, toOffset, toDatetime, byDuration, shiftBy string
	var topics listFlag
	var all, members, state, verbose, allTopics, execute, dryRun, toEarliest, toLatest, toCurrent bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	switch sub {
	case "list":
		fs.BoolVar(&state, "state", false, "show each group's state")
	case "describe", "delete":
		fs.BoolVar(&all, "all-groups", false, "every group")
		if sub == "describe" {
			fs.BoolVar(&members, "members", false, "show members instead of offsets")
			fs.BoolVar(&state, "state", false, "show the group's state instead of offsets")
			fs.BoolVar(&verbose, "verbose", false, "with --members, show each member's partitions")
		}
	case "reset-offsets":
		fs.Var(&topics, "topic", "topic or topic:0,1 (repeatable)")
		fs.BoolVar(&allTopics, "all-topics", false, "every topic the group has committed offsets for")
		fs.BoolVar(&execute, "execute", false, "apply the new offsets (default: dry run)")
		fs.BoolVar(&dryRun, "dry-run", false, "only print the new offsets (the default)")
		fs.BoolVar(&toEarliest, "to-earliest", false, "reset to the log start")
		fs.BoolVar(&toLatest, "to-latest", false, "reset to the log end")
		fs.BoolVar(&toCurrent, "to-current", false, "reset to the committed offset")
		fs.StringVar(&toOffset, "to-offset", "", "reset to this offset (clamped to the log)")
		fs.StringVar(&toDatetime, "to-datetime", "", "reset to the first record at or after this time (RFC 3339 or ms)")
		fs.StringVar(&byDuration, "by-duration", "", "reset to this long ago (PT1H30M or 90m)")
		fs.StringVar(&shiftBy, "shift-by", "", "move the committed offset by N (negative: back)")
	case "delete-offsets":
		fs.Var(&topics, "topic", "topic or topic:0,1 (repeatable)")
	}
	groups, err := e.parseArgs(fs, args[1:], groupUsage)
	if err != nil {
		return err
	}
	c := groupCmd{action: sub, groups: groups, allGroups: all, members: members, state: state, verbose: verbose,
		topics: topics, allTopics: allTopics, execute: execute, lagSeconds: true}
	switch sub {
	case "list":
		if len(groups) > 0 {
			return e.usagef("list takes no group names")
		}
	case "describe", "delete":
		if len(groups) == 0 && !all {
			return e.usagef("missing group name (or --all-groups)")
		}
		if members && state {
			return e.usagef("give at most one of --members and --state")
		}
	case "reset-offsets", "delete-offsets":
		if len(groups) != 1 {
			return e.usagef("want exactly one group: moldau group %s GROUP [options]", sub)
		}
	}
	if sub == "reset-offsets" {
		if c.reset, err = e.parseResetOptions(toEarliest, toLatest, toCurrent, toOffset, toDatetime, byDuration, shiftBy); err != nil {
			return err
		}
		if (len(topics) == 0) == !allTopics {
			return e.usagef("give --topic t[:p,p] or --all-topics")
		}
		if dryRun && execute {
			return e.usagef("give only one of --execute and --dry-run")
		}
	}
	return e.execGroup(e.bootstrap(bootstrap), c)
}

// asShardErrors reports whether err is a partial failure across brokers (some shards answered).
func asShardErrors(err error, se **kadm.ShardErrors) bool {
	return errors.As(err, se)
}

// lagSecondsWait bounds how long fillLagSeconds waits for the records at the committed offsets.
const lagSecondsWait = 5 * time.Second

// fillLagSeconds sets each row's LagSeconds: 0 when the group is caught up, else now − the
// timestamp of the record at its committed offset (the first the group has not consumed), read
// as a consumer resuming there reads it (read_committed: control records and aborted
// transactions are skipped). A row whose record does not arrive within lagSecondsWait (or the
// admin timeout, if shorter) keeps -1 and prints "-".
func (e *env) fillLagSeconds(seeds []string, rows []groupOffsetRow) {
	want := map[string]map[int32]kgo.Offset{}
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Current < 0 || r.Lag < 0:
		case r.Lag == 0:
			r.LagSeconds = 0
		default:
			if want[r.Topic] == nil {
				want[r.Topic] = map[int32]kgo.Offset{}
			}
			want[r.Topic][r.Partition] = kgo.NewOffset().At(r.Current)
		}
	}
	if len(want) == 0 {
		return
	}
	cl, err := newClient(seeds, kgo.ConsumePartitions(want), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(e.ctx, min(lagSecondsWait, e.adminTimeout))
	defer cancel()
	first := map[string]map[int32]time.Time{}
	left := 0
	for _, ps := range want {
		left += len(ps)
	}
	for left > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			if first[rec.Topic] == nil {
				first[rec.Topic] = map[int32]time.Time{}
			}
			if _, seen := first[rec.Topic][rec.Partition]; !seen {
				first[rec.Topic][rec.Partition] = rec.Timestamp
				left--
				cl.PauseFetchPartitions(map[string][]int32{rec.Topic: {rec.Partition}})
			}
		})
	}
	now := time.Now()
	for i := range rows {
		if ts, ok := first[rows[i].Topic][rows[i].Partition]; ok && rows[i].Lag > 0 {
			rows[i].LagSeconds = max(0, now.Sub(ts).Seconds())
		}
	}
}
