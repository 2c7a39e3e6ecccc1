package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Fault kinds: what --faults accepts.
const (
	FaultKill      = "kill"      // SIGKILL, then start again on the same data dir after DownTime
	FaultPause     = "pause"     // SIGSTOP for PauseTime (longer than broker.session.timeout.ms), then SIGCONT
	FaultRestart   = "restart"   // SIGTERM (controlled shutdown), then start again
	FaultPartition = "partition" // cut the node off from the others (proxies) for PartitionTime
)

// FaultKinds lists the kinds in the order the help text gives them.
var FaultKinds = []string{FaultKill, FaultPause, FaultRestart, FaultPartition}

// ParseFaults parses "kill,pause,restart" (any subset, in any order; repeats allowed, they
// weight the rotation). "" and "none" mean no faults.
func ParseFaults(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var kinds []string
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(FaultKinds, k) {
			return nil, fmt.Errorf("unknown fault %q (expected a comma-separated list of %s)", k, strings.Join(FaultKinds, ", "))
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// FaultPlan says which faults to inject and how often.
type FaultPlan struct {
	Kinds     []string      // taken in turn
	Interval  time.Duration // from one fault's recovery to the next fault
	DownTime  time.Duration // how long a killed node stays down
	PauseTime time.Duration // how long a paused node stays stopped
	// PartitionTime is how long a partitioned node stays cut off.
	PartitionTime time.Duration
	Seed          uint64 // picks the target node of each fault
	// RecoverTimeout bounds a restarted node's start-up.
	RecoverTimeout time.Duration
	// Target picks each fault's node: TargetAny (at random) or TargetLeader (the leader of
	// partition 0 of the topic, at random when no leader is known).
	Target string
}

// Fault targets.
const (
	TargetAny    = "any"
	TargetLeader = "leader"
)

// injector runs a FaultPlan against a cluster until its context ends, always finishing (healing)
// the fault in progress.
type injector struct {
	c     *Cluster
	plan  FaultPlan
	start time.Time
	logf  func(format string, a ...any)
	rng   *rand.Rand
	// leader returns the node leading partition 0 of the topic, false if unknown.
	leader func() (int32, bool)
	// abort ends a fault early (the user interrupted the run); the end of the run's duration
	// only stops new faults, the one in progress runs its course.
	abort context.Context
}

// run injects faults until ctx ends and returns what it did. Every node is running and resumed
// when it returns (or the fault's Err says why not).
func (in *injector) run(ctx context.Context) []Fault {
	var faults []Fault
	timer := time.NewTimer(in.plan.Interval)
	defer timer.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return faults
		case <-timer.C:
		}
		kind := in.plan.Kinds[i%len(in.plan.Kinds)]
		n := in.target()
		faults = append(faults, in.inject(kind, n))
		timer.Reset(in.plan.Interval)
	}
}

// target picks the node of the next fault.
func (in *injector) target() *Node {
	if in.plan.Target == TargetLeader && in.leader != nil {
		if id, ok := in.leader(); ok {
			if n := in.c.Node(id); n != nil {
				return n
			}
		}
	}
	nodes := in.c.Nodes()
	return nodes[in.rng.IntN(len(nodes))]
}

// inject applies one fault to n and heals it: a node must be back before the records are read.
func (in *injector) inject(kind string, n *Node) Fault {
	f := Fault{Kind: kind, Node: n.ID, At: time.Since(in.start)}
	fail := func(err error) Fault {
		f.Err = err.Error()
		in.logf("fault %s node %d: %v", kind, n.ID, err)
		return f
	}
	if !n.Running() {
		// It died on its own (recorded as a problem by the node): bring it back first.
		if err := in.restart(n); err != nil {
			return fail(err)
		}
	}
	in.logf("%s: %s node %d", f.At.Round(time.Millisecond), kind, n.ID)
	switch kind {
	case FaultKill:
		if err := n.Kill(); err != nil {
			return fail(err)
		}
		wait(in.abort, in.plan.DownTime)
		if err := in.restart(n); err != nil {
			return fail(err)
		}
	case FaultPause:
		if err := n.Pause(); err != nil {
			return fail(err)
		}
		wait(in.abort, in.plan.PauseTime)
		if err := n.Resume(); err != nil {
			return fail(err)
		}
	case FaultPartition:
		if err := in.c.Isolate(n.ID); err != nil {
			return fail(err)
		}
		wait(in.abort, in.plan.PartitionTime)
		if err := in.c.Heal(); err != nil {
			return fail(err)
		}
	case FaultRestart:
		sctx, cancel := context.WithTimeout(context.Background(), in.plan.RecoverTimeout)
		err := n.Stop(sctx)
		cancel()
		if err != nil {
			return fail(err)
		}
		if err := in.restart(n); err != nil {
			return fail(err)
		}
	}
	f.Recovered = time.Since(in.start)
	in.logf("%s: node %d back after %s", f.Recovered.Round(time.Millisecond), n.ID, (f.Recovered - f.At).Round(time.Millisecond))
	return f
}

func (in *injector) restart(n *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), in.plan.RecoverTimeout)
	defer cancel()
	return n.Restart(ctx)
}

// wait waits d, or less if ctx ends first (the run was interrupted: heal at once).
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
