package cli

// moldau partition move|status|cancel, moldau broker decommission, moldau cluster rebalance:
// Moldau's own commands for moving replicas, on the same requests as kafka-reassign-partitions
// (AlterPartitionReassignments, ListPartitionReassignments, DescribeLogDirs for the bytes left,
// IncrementalAlterConfigs for Kafka's throttle keys, ElectLeaders), planned by internal/rebalance.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/rebalance"
)

var errElectionNotNeeded = kerr.ElectionNotNeeded

const partitionUsage = `Usage: moldau partition move TOPIC:PARTITION [TOPIC:PARTITION...] --to BROKERS [--throttle BYTES/S] [--wait]
       moldau partition status [TOPIC:PARTITION...] [--wait] [--clear-throttles]
       moldau partition cancel TOPIC:PARTITION [TOPIC:PARTITION...]

move starts moving partitions to the brokers given (the first is the preferred leader), status
shows the moves in progress with the bytes each new replica still has to copy, cancel reverts
moves in progress.`

const brokerUsage = `Usage: moldau broker decommission BROKER [--throttle BYTES/S] [--wait=false] [--dry-run]

Moves every replica off the broker (each to the least-loaded broker that keeps the partition's
rack spread), shows the progress, and says when the broker holds no replicas and can be stopped.`

const rebalanceUsage = `Usage: moldau cluster rebalance [--dry-run] [--throttle BYTES/S] [--exclude BROKERS] [--wait=false]

Evens out replica counts (fewest moves, disk bytes considered, rack spread kept) and preferred
leader counts, prints the plan, runs it with progress, then a preferred leader election.`

func runPartition(e *env, args []string) error { return partitionCmd(e, args, defaultMoveDeps()) }
func runBroker(e *env, args []string) error    { return brokerCmd(e, args, defaultMoveDeps()) }

// moveFlags are the flags the moving commands share.
type moveFlags struct {
	bootstrap string
	throttle  string
	wait      bool
}

func (m *moveFlags) register(fs *flag.FlagSet, waitDefault bool) {
	stringVars(fs, &m.bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	fs.StringVar(&m.throttle, "throttle", "", "limit the replication of the moving partitions to this many bytes/s per broker (Kafka's replication throttle); removed when the moves end")
	fs.BoolVar(&m.wait, "wait", waitDefault, "wait for the moves to finish, showing progress")
}

func (m *moveFlags) throttleRate(e *env) (int64, error) {
	if m.throttle == "" {
		return -1, nil
	}
	n, err := e.parseInt("throttle", m.throttle, 1, "a positive number of bytes per second")
	return n, err
}

// openMover connects to the cluster the flags name; the caller closes m.adm.
func (mf *moveFlags) openMover(e *env, deps moveDeps) (*mover, error) {
	adm, err := deps.open(e.bootstrap(mf.bootstrap))
	if err != nil {
		return nil, err
	}
	return &mover{e: e, adm: adm, deps: deps}, nil
}

// parseTPs parses TOPIC:PARTITION arguments.
func (e *env) parseTPs(args []string) ([]tp, error) {
	var out []tp
	for _, a := range args {
		i := strings.LastIndexByte(a, ':')
		if i <= 0 {
			return nil, e.argf("%q is not TOPIC:PARTITION", a)
		}
		n, err := strconv.ParseInt(a[i+1:], 10, 32)
		if err != nil || n < 0 {
			return nil, e.argf("%q is not TOPIC:PARTITION", a)
		}
		p := tp{Topic: a[:i], Partition: int32(n)}
		if slices.Contains(out, p) {
			return nil, e.argf("%s is given twice", p)
		}
		out = append(out, p)
	}
	return out, nil
}

func (e *env) parseBrokerList(flagName, s string) ([]int32, error) {
	var out []int32
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 0 {
			return nil, e.argf("--%s must be comma-separated broker ids, got %q", flagName, s)
		}
		if slices.Contains(out, int32(n)) {
			return nil, e.argf("--%s names broker %d twice", flagName, n)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

func partitionCmd(e *env, args []string, deps moveDeps) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: one of move, status, cancel")
	}
	sub := args[0]
	if sub == "-h" || sub == "--help" || sub == "help" {
		printUsage(e.stdout, newFlagSet("partition"), partitionUsage)
		return nil
	}
	if sub != "move" && sub != "status" && sub != "cancel" {
		return e.usagef("unknown subcommand %q: want one of move, status, cancel", sub)
	}
	e.name = "moldau partition " + sub
	fs := newFlagSet("partition " + sub)
	var mf moveFlags
	var to string
	var clear bool
	switch sub {
	case "move":
		mf.register(fs, false)
		fs.StringVar(&to, "to", "", "REQUIRED: the target brokers, comma-separated, preferred leader first")
	case "status":
		stringVars(fs, &mf.bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
		fs.BoolVar(&mf.wait, "wait", false, "wait until nothing is moving, showing progress")
		fs.BoolVar(&clear, "clear-throttles", false, "once nothing is moving, remove Kafka's replication throttle configs (as kafka-reassign-partitions --verify does)")
	case "cancel":
		stringVars(fs, &mf.bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	}
	pos, err := e.parseArgs(fs, args[1:], partitionUsage)
	if err != nil {
		return err
	}
	parts, err := e.parseTPs(pos)
	if err != nil {
		return err
	}
	if sub != "status" && len(parts) == 0 {
		return e.usagef("missing TOPIC:PARTITION")
	}
	m, err := mf.openMover(e, deps)
	if err != nil {
		return err
	}
	defer m.adm.Close()
	switch sub {
	case "move":
		if to == "" {
			return e.usagef("missing --to BROKERS")
		}
		target, err := e.parseBrokerList("to", to)
		if err != nil {
			return err
		}
		rate, err := mf.throttleRate(e)
		if err != nil {
			return err
		}
		return m.move(parts, target, rate, mf.wait)
	case "status":
		return m.status(parts, mf.wait, clear)
	default:
		return m.cancel(parts)
	}
}

// mover runs the moldau move commands against one cluster.
type mover struct {
	e    *env
	adm  moveAdmin
	deps moveDeps
	// from holds the replicas (in their order) of the partitions this command moves: a
	// reassignment's replica list puts the target first, so the old order is not in it.
	from map[tp][]int32
}

func (m *mover) printf(format string, a ...any) { fmt.Fprintf(m.e.stdout, format, a...) }

// call runs one bounded round of admin requests.
func (m *mover) call(fn func(ctx context.Context) error) error {
	ctx, cancel := m.e.adminCtx()
	defer cancel()
	return fn(ctx)
}

func (m *mover) move(parts []tp, target []int32, rate int64, wait bool) error {
	var view clusterView
	var sizes map[int32]map[tp]replicaDir
	err := m.call(func(ctx context.Context) error {
		var topics []string
		for _, p := range parts {
			if !slices.Contains(topics, p.Topic) {
				topics = append(topics, p.Topic)
			}
		}
		var err error
		if view, err = m.adm.Describe(ctx, topics); err != nil {
			return err
		}
		var leaders []int32
		for _, p := range parts {
			pv, ok := view.partition(p)
			if !ok {
				return fmt.Errorf("partition %s does not exist", p)
			}
			if !slices.Contains(leaders, pv.Leader) && pv.Leader >= 0 {
				leaders = append(leaders, pv.Leader)
			}
		}
		for _, b := range target {
			if !slices.Contains(view.brokerIDs(), b) {
				return fmt.Errorf("broker %d is not in the cluster (brokers %s)", b, joinIDs(view.brokerIDs()))
			}
		}
		sizes, err = m.adm.LogDirSizes(ctx, leaders, parts)
		return err
	})
	if err != nil {
		return err
	}
	model := modelOf(view, sizes)
	var plan rebalance.Plan
	for _, p := range parts {
		i := slices.IndexFunc(model.Partitions, func(x rebalance.Partition) bool { return x.TopicPartition == p })
		mp := model.Partitions[i]
		if slices.Equal(mp.Replicas, target) {
			m.printf("%s is already on %s.\n", p, joinIDs(target))
			continue
		}
		plan.Moves = append(plan.Moves, rebalance.Move{TopicPartition: p, From: mp.Replicas, To: target, Size: mp.Size})
	}
	if len(plan.Moves) == 0 {
		return nil
	}
	for _, mv := range plan.Moves {
		m.printf("Moving %s from %s to %s (%s).\n", mv.TopicPartition, joinIDs(mv.From), joinIDs(mv.To), moveNote(mv))
	}
	return m.run(plan, rate, wait)
}

// moveNote describes a move: the brokers added and removed and the bytes to copy.
func moveNote(mv rebalance.Move) string {
	var parts []string
	if a := mv.Adding(); len(a) > 0 {
		parts = append(parts, "adding "+joinIDs(a))
	}
	if r := mv.Removing(); len(r) > 0 {
		parts = append(parts, "removing "+joinIDs(r))
	}
	if !mv.Copies() {
		return "new replica order, no data to copy"
	}
	return strings.Join(parts, ", ") + "; " + humanBytes(mv.Size*int64(len(mv.Adding()))) + " to copy"
}

// run executes a plan: the throttle, the reassignments, and (wait) the progress until done and
// the throttle's removal. It returns an error when a move failed or did not reach its target.
func (m *mover) run(plan rebalance.Plan, rate int64, wait bool) error {
	targets := plan.Targets()
	m.from = map[tp][]int32{}
	for _, mv := range plan.Moves {
		m.from[mv.TopicPartition] = mv.From
	}
	if rate >= 0 {
		err := m.call(func(ctx context.Context) error {
			current := map[tp][]int32{}
			for _, mv := range plan.Moves {
				current[mv.TopicPartition] = mv.From
			}
			ongoing, err := m.adm.ListReassignments(ctx, nil)
			if err != nil {
				return err
			}
			moves := proposedMoveMap(ongoing, targets, current)
			if err := setReassignmentThrottle(ctx, m.adm, moves, rate); err != nil {
				return fmt.Errorf("set the throttle: %w", err)
			}
			_, _, brokers := throttleConfigs(moves)
			m.printf("The inter-broker throttle limit was set to %d B/s on broker%s %s.\n", rate, plural(len(brokers)), joinIDs(brokers))
			return nil
		})
		if err != nil {
			return err
		}
	}
	var errs map[tp]error
	if err := m.call(func(ctx context.Context) (err error) {
		errs, err = m.adm.AlterReassignments(ctx, targets)
		return err
	}); err != nil {
		return err
	}
	for _, p := range sortedTPs(errs) {
		m.printf("Moving %s failed: %s\n", p, kafkaMessage(errs[p]))
		delete(targets, p)
	}
	if len(targets) == 0 {
		if rate >= 0 {
			if err := m.clearThrottles(plan.Targets()); err != nil {
				return err
			}
		}
		return &exitError{code: 1}
	}
	m.printf("Started moving %d partition%s.\n", len(targets), plural(len(targets)))
	if !wait {
		follow := "moldau partition status --wait"
		if rate >= 0 {
			follow += " --clear-throttles"
		}
		m.printf("Follow the progress with: %s\n", follow)
		if rate >= 0 {
			m.printf("%s\n", "Warning: the throttle stays set until it is removed: run moldau partition status --wait --clear-throttles (or kafka-reassign-partitions --verify).")
		}
		if len(errs) > 0 {
			return &exitError{code: 1}
		}
		return nil
	}
	ok, err := m.wait(targets)
	if err != nil {
		return err
	}
	if rate >= 0 {
		if err := m.clearThrottles(plan.Targets()); err != nil {
			return err
		}
	}
	if !ok || len(errs) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func (m *mover) clearThrottles(targets map[tp][]int32) error {
	return m.call(func(ctx context.Context) error {
		view, err := m.adm.Describe(ctx, nil)
		if err != nil {
			return err
		}
		if err := clearThrottles(ctx, m.printf, m.adm, view, targets); err != nil {
			return fmt.Errorf("remove the throttle: %w", err)
		}
		return nil
	})
}

// progress is one moving partition's state.
type progress struct {
	tp
	from, to []int32 // the replicas before and after the move
	adding   []int32
	leader   int32
	size     int64           // the leader's replica size, -1 unknown
	left     map[int32]int64 // bytes each adding replica still has to copy, -1 unknown
}

func (p progress) totalLeft() int64 {
	var n int64
	for _, l := range p.left {
		n += max(l, 0)
	}
	return n
}

// snapshot reads what is moving among tps (all when nil) and how far each new replica is.
func (m *mover) snapshot(ctx context.Context, tps []tp) ([]progress, clusterView, error) {
	ongoing, err := m.adm.ListReassignments(ctx, tps)
	if err != nil {
		return nil, clusterView{}, err
	}
	view, err := m.adm.Describe(ctx, nil)
	if err != nil {
		return nil, clusterView{}, err
	}
	var out []progress
	var brokers []int32
	var moving []tp
	for _, p := range sortedTPs(ongoing) {
		ra := ongoing[p]
		pr := progress{tp: p, adding: ra.Adding, leader: -1, size: -1, left: map[int32]int64{}}
		for _, b := range ra.Replicas {
			if !slices.Contains(ra.Adding, b) {
				pr.from = append(pr.from, b)
			}
			if !slices.Contains(ra.Removing, b) {
				pr.to = append(pr.to, b)
			}
		}
		if from, ok := m.from[p]; ok && sameSet(from, pr.from) {
			pr.from = from
		} else {
			slices.Sort(pr.from) // the old order is not known to this command
		}
		if pv, ok := view.partition(p); ok {
			pr.leader = pv.Leader
		}
		for _, b := range append([]int32{pr.leader}, ra.Adding...) {
			if b >= 0 && !slices.Contains(brokers, b) {
				brokers = append(brokers, b)
			}
		}
		moving = append(moving, p)
		out = append(out, pr)
	}
	if len(out) == 0 {
		return nil, view, nil
	}
	sizes, err := m.adm.LogDirSizes(ctx, brokers, moving)
	if err != nil {
		return nil, clusterView{}, err
	}
	for i := range out {
		pr := &out[i]
		if s, ok := sizes[pr.leader][pr.tp]; ok {
			pr.size = s.Size
		}
		for _, b := range pr.adding {
			pr.left[b] = -1
			if pr.size < 0 {
				continue
			}
			if s, ok := sizes[b][pr.tp]; ok {
				pr.left[b] = max(0, pr.size-s.Size)
			} else if _, up := sizes[b]; up {
				pr.left[b] = pr.size // the new replica has not started yet
			}
		}
	}
	return out, view, nil
}

// progressText renders a snapshot: a summary line, then one line per moving partition.
func progressText(ps []progress, elapsed time.Duration) string {
	var total int64
	for _, p := range ps {
		total += p.totalLeft()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %d partition%s moving, %s left\n", formatElapsed(elapsed), len(ps), plural(len(ps)), humanBytes(total))
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s: %s -> %s", p.tp, joinIDs(p.from), joinIDs(p.to))
		if len(p.adding) == 0 {
			b.WriteString(": removing replicas\n")
			continue
		}
		var each []string
		for _, a := range p.adding {
			l := p.left[a]
			if l < 0 {
				each = append(each, fmt.Sprintf("broker %d: ? left", a))
				continue
			}
			each = append(each, fmt.Sprintf("broker %d: %s of %s left", a, humanBytes(l), humanBytes(p.size)))
		}
		fmt.Fprintf(&b, ": %s\n", strings.Join(each, ", "))
	}
	return b.String()
}

func formatElapsed(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// humanBytes formats a byte count with binary units: 0 B, 512 B, 1.5 KiB, 3.2 MiB.
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return fmt.Sprintf("%d B", n) // not reached
}

// wait polls until none of targets is moving, printing the progress whenever it changes and a
// line per partition that ends. ok is false when some partition ended off its target
// (cancelled, or replaced by another reassignment).
func (m *mover) wait(targets map[tp][]int32) (ok bool, err error) {
	tps := sortedTPs(targets)
	start := m.e.now()
	seen := map[tp]bool{}
	pending := map[tp]bool{}
	for _, p := range tps {
		pending[p] = true
	}
	ok = true
	var last string
	graceLeft := 30 // polls during which a partition not seen moving yet may still appear
	offTarget := map[tp]int{}
	for {
		var ps []progress
		var view clusterView
		if err := m.call(func(ctx context.Context) (err error) {
			ps, view, err = m.snapshot(ctx, tps)
			return err
		}); err != nil {
			return false, err
		}
		moving := map[tp]bool{}
		for _, p := range ps {
			moving[p.tp] = true
			seen[p.tp] = true
		}
		for _, p := range tps {
			if !pending[p] || moving[p] {
				offTarget[p] = 0
				continue
			}
			// The list and the metadata may come from brokers whose images are at different
			// offsets: a replica set that is the target plus the replicas being removed is a
			// move that one broker still sees running, and anything else off the target must
			// hold for a few polls before it counts.
			pv, _ := view.partition(p)
			switch {
			case slices.Equal(pv.Replicas, targets[p]):
				m.printf("Reassignment of partition %s is completed.\n", p)
			case isPrefix(targets[p], pv.Replicas):
				continue
			case offTarget[p] >= 2 && (seen[p] || graceLeft <= 0):
				m.printf("There is no active reassignment of partition %s, but replica set is %s rather than %s.\n", p, joinIDs(pv.Replicas), joinIDs(targets[p]))
				ok = false
			default:
				offTarget[p]++
				continue
			}
			delete(pending, p)
		}
		if len(pending) == 0 {
			return ok, nil
		}
		graceLeft--
		if len(ps) > 0 {
			if txt := progressText(ps, m.e.now().Sub(start)); stripElapsed(txt) != stripElapsed(last) {
				m.printf("%s", txt)
				last = txt
			}
		}
		if err := m.deps.sleep(m.e.ctx, m.deps.poll); err != nil {
			return false, err
		}
	}
}

// stripElapsed drops the elapsed-time prefix so that unchanged progress is not printed again.
func stripElapsed(s string) string {
	if i := strings.IndexByte(s, ']'); i >= 0 {
		return s[i:]
	}
	return s
}

func (m *mover) status(parts []tp, wait, clear bool) error {
	var filter []tp
	if len(parts) > 0 {
		filter = parts
	}
	var ps []progress
	if err := m.call(func(ctx context.Context) (err error) {
		ps, _, err = m.snapshot(ctx, filter)
		return err
	}); err != nil {
		return err
	}
	if len(ps) == 0 {
		m.printf("No partition is being moved.\n")
	} else {
		m.printf("%s", progressText(ps, 0))
	}
	targets := map[tp][]int32{}
	for _, p := range ps {
		targets[p.tp] = p.to
	}
	ok := true
	if wait && len(ps) > 0 {
		var err error
		if ok, err = m.wait(targets); err != nil {
			return err
		}
	}
	if clear && (wait || len(ps) == 0) {
		if err := m.clearThrottles(targets); err != nil {
			return err
		}
	}
	if !ok {
		return &exitError{code: 1}
	}
	return nil
}

func (m *mover) cancel(parts []tp) error {
	targets := map[tp][]int32{}
	for _, p := range parts {
		targets[p] = nil
	}
	var errs map[tp]error
	if err := m.call(func(ctx context.Context) (err error) {
		errs, err = m.adm.AlterReassignments(ctx, targets)
		return err
	}); err != nil {
		return err
	}
	for _, p := range parts {
		if err, bad := errs[p]; bad {
			m.printf("Cancelling the move of %s failed: %s\n", p, kafkaMessage(err))
		} else {
			m.printf("Cancelled the move of %s.\n", p)
		}
	}
	if len(errs) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// ---- moldau broker decommission

func brokerCmd(e *env, args []string, deps moveDeps) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: decommission")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stdout, newFlagSet("broker"), brokerUsage)
		return nil
	}
	if args[0] != "decommission" {
		return e.usagef("unknown subcommand %q: want decommission", args[0])
	}
	e.name = "moldau broker decommission"
	fs := newFlagSet("broker decommission")
	var mf moveFlags
	var dry bool
	mf.register(fs, true)
	fs.BoolVar(&dry, "dry-run", false, "print the plan and move nothing")
	pos, err := e.parseArgs(fs, args[1:], brokerUsage)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return e.usagef("want exactly one broker id, got %d arguments", len(pos))
	}
	id, err := strconv.ParseInt(pos[0], 10, 32)
	if err != nil || id < 0 {
		return e.argf("%q is not a broker id", pos[0])
	}
	node := int32(id)
	rate, err := mf.throttleRate(e)
	if err != nil {
		return err
	}
	m, err := mf.openMover(e, deps)
	if err != nil {
		return err
	}
	defer m.adm.Close()
	model, view, err := m.model()
	if err != nil {
		return err
	}
	// A broker that is down is not in the metadata's broker list, but its replicas may still
	// be in partitions: it can be decommissioned too (its data is copied from the leaders).
	if !slices.Contains(view.brokerIDs(), node) {
		for _, p := range model.Partitions {
			if slices.Contains(p.Replicas, node) {
				model.Brokers = append(model.Brokers, rebalance.Broker{ID: node})
				m.printf("Broker %d is not registered or not alive; moving its replicas from the leaders.\n", node)
				break
			}
		}
	}
	plan, err := rebalance.Decommission(model, node, rebalance.Options{})
	if err != nil {
		return err
	}
	if len(plan.Moves) == 0 {
		m.printf("Broker %d holds no replicas and can be stopped.\n", node)
		return nil
	}
	m.printf("Decommission of broker %d: %d partition%s to move (%s to copy).\n", node, len(plan.Moves), plural(len(plan.Moves)), humanBytes(plan.BytesToCopy()))
	m.printPlan(plan)
	if dry {
		m.printf("Dry run: nothing was moved.\n")
		return nil
	}
	if err := m.run(plan, rate, mf.wait); err != nil {
		return err
	}
	if !mf.wait {
		return nil
	}
	return m.checkEmpty(node)
}

// checkEmpty says whether node still holds a replica, by the metadata.
// The metadata may come from a broker a little behind the one that answered the list of moves,
// so a replica still seen on node is looked at again a few times.
func (m *mover) checkEmpty(node int32) error {
	for try := 0; ; try++ {
		var view clusterView
		if err := m.call(func(ctx context.Context) (err error) {
			view, err = m.adm.Describe(ctx, nil)
			return err
		}); err != nil {
			return err
		}
		var held []tp
		for _, p := range view.Partitions {
			if slices.Contains(p.Replicas, node) {
				held = append(held, p.tp)
			}
		}
		if len(held) == 0 {
			m.printf("Broker %d holds no replicas and can be stopped.\n", node)
			return nil
		}
		if try >= 5 {
			return fmt.Errorf("broker %d still holds replicas of %s", node, joinTPs(held))
		}
		if err := m.deps.sleep(m.e.ctx, m.deps.poll); err != nil {
			return err
		}
	}
}

// model reads the cluster and every replica's size into the planner's model.
func (m *mover) model() (rebalance.Cluster, clusterView, error) {
	var view clusterView
	var sizes map[int32]map[tp]replicaDir
	err := m.call(func(ctx context.Context) (err error) {
		if view, err = m.adm.Describe(ctx, nil); err != nil {
			return err
		}
		sizes, err = m.adm.LogDirSizes(ctx, view.brokerIDs(), nil)
		return err
	})
	if err != nil {
		return rebalance.Cluster{}, clusterView{}, err
	}
	return modelOf(view, sizes), view, nil
}

func (m *mover) printPlan(plan rebalance.Plan) {
	for _, mv := range plan.Moves {
		m.printf("  %s: %s -> %s (%s)\n", mv.TopicPartition, joinIDs(mv.From), joinIDs(mv.To), moveNote(mv))
	}
}

// ---- moldau cluster rebalance

func runClusterRebalance(e *env, args []string) error {
	return clusterRebalance(e, args, defaultMoveDeps())
}

func clusterRebalance(e *env, args []string, deps moveDeps) error {
	e.name = "moldau cluster rebalance"
	fs := newFlagSet("cluster rebalance")
	var mf moveFlags
	var dry bool
	var exclude string
	mf.register(fs, true)
	fs.BoolVar(&dry, "dry-run", false, "print the plan and move nothing")
	fs.StringVar(&exclude, "exclude", "", "brokers to empty and leave out of the placement, comma-separated")
	pos, err := e.parseArgs(fs, args, rebalanceUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unexpected arguments: %v", pos)
	}
	var excl []int32
	if exclude != "" {
		if excl, err = e.parseBrokerList("exclude", exclude); err != nil {
			return err
		}
	}
	rate, err := mf.throttleRate(e)
	if err != nil {
		return err
	}
	m, err := mf.openMover(e, deps)
	if err != nil {
		return err
	}
	defer m.adm.Close()
	model, _, err := m.model()
	if err != nil {
		return err
	}
	plan, err := rebalance.Rebalance(model, rebalance.Options{Exclude: excl})
	if err != nil {
		return err
	}
	reorders := 0
	for _, mv := range plan.Moves {
		if !mv.Copies() {
			reorders++
		}
	}
	m.printf("Rebalance plan: %d replica move%s (%s to copy), %d partition%s with a new preferred leader order only.\n",
		plan.ReplicaMoves(), plural(plan.ReplicaMoves()), humanBytes(plan.BytesToCopy()), reorders, plural(reorders))
	writeLoads(m.e.stdout, rebalance.Loads(model), rebalance.Loads(rebalance.Apply(model, plan)))
	m.printPlan(plan)
	if dry {
		m.printf("Dry run: nothing was moved.\n")
		return nil
	}
	if len(plan.Moves) > 0 {
		if err := m.run(plan, rate, mf.wait); err != nil {
			return err
		}
		if !mf.wait {
			m.printf("Run moldau cluster rebalance again once the moves are done to elect the preferred leaders.\n")
			return nil
		}
	} else {
		m.printf("Replica placement is balanced: nothing to move.\n")
	}
	return m.electPreferred()
}

// electPreferred runs a preferred leader election for every partition whose leader is not its
// first replica.
func (m *mover) electPreferred() error {
	return m.call(func(ctx context.Context) error {
		view, err := m.adm.Describe(ctx, nil)
		if err != nil {
			return err
		}
		var off []tp
		for _, p := range view.Partitions {
			if len(p.Replicas) > 0 && p.Leader != p.Replicas[0] {
				off = append(off, p.tp)
			}
		}
		if len(off) == 0 {
			m.printf("Every partition is led by its preferred leader.\n")
			return nil
		}
		errs, err := m.adm.ElectPreferred(ctx, off)
		if err != nil {
			return err
		}
		var moved, failed []string
		for _, p := range off {
			if e, bad := errs[p]; bad {
				if !errors.Is(e, errElectionNotNeeded) {
					failed = append(failed, fmt.Sprintf("%s: %s", p, kafkaMessage(e)))
				}
				continue
			}
			moved = append(moved, p.String())
		}
		if len(moved) > 0 {
			m.printf("Preferred leader election moved the leader of %s.\n", strings.Join(moved, ", "))
		}
		for _, f := range failed {
			m.printf("Preferred leader election failed for %s\n", f)
		}
		return nil
	})
}

// writeLoads prints each broker's replicas, preferred leaders and bytes before and after a plan.
func writeLoads(w io.Writer, before, after []rebalance.Load) {
	fmt.Fprintf(w, "%-8s %-22s %-22s %s\n", "Broker", "Replicas", "Leaders", "Bytes")
	for i, b := range before {
		a := after[i]
		fmt.Fprintf(w, "%-8d %-22s %-22s %s -> %s\n", b.Broker,
			fmt.Sprintf("%d -> %d", b.Replicas, a.Replicas),
			fmt.Sprintf("%d -> %d", b.Leaders, a.Leaders),
			humanBytes(b.Bytes), humanBytes(a.Bytes))
	}
}

func sameSet(a, b []int32) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// isPrefix reports whether full starts with prefix and is longer: a reassignment's replica list
// (target first, then the replicas being removed).
func isPrefix(prefix, full []int32) bool {
	return len(full) > len(prefix) && slices.Equal(full[:len(prefix)], prefix)
}
