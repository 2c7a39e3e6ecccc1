package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

const clusterElectUsage = `Usage: moldau cluster elect-leaders [--unclean] [TOPIC[:PARTITION] ...] [options]

Moves the leadership of the named partitions back to their preferred replica (the first of the
assignment) where it is in sync and up; a topic alone names all its partitions, nothing names every
partition of the cluster. With --unclean it elects a leader for partitions that have none, an out
of sync replica if no in-sync one is up: records acknowledged by the lost leader may be gone.
Exits 1 when a partition could not be elected.`

func runClusterElectLeaders(e *env, args []string) error {
	e.name = "moldau cluster elect-leaders"
	fs := newFlagSet("cluster elect-leaders")
	var bootstrap string
	var unclean bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	fs.BoolVar(&unclean, "unclean", false, "elect leaders for partitions without one, out-of-sync replicas included")
	pos, err := e.parseArgs(fs, args, clusterElectUsage)
	if err != nil {
		return err
	}
	seeds := e.bootstrap(bootstrap)
	var parts []electionPartition // nil: every partition
	var topicsOnly []string
	for _, a := range pos {
		topic, ps, ok := strings.Cut(a, ":")
		if topic == "" {
			return e.usagef("bad partition %q: want TOPIC or TOPIC:PARTITION", a)
		}
		if !ok {
			topicsOnly = append(topicsOnly, topic)
			continue
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || p < 0 {
			return e.argf("bad partition %q: want TOPIC:PARTITION with a partition number", a)
		}
		parts = append(parts, electionPartition{Topic: topic, Partition: int32(p)})
	}
	if len(topicsOnly) > 0 {
		adm, err := newAdmin(seeds)
		if err != nil {
			return err
		}
		ctx, cancel := e.adminCtx()
		md, err := adm.Metadata(ctx, topicsOnly...)
		cancel()
		adm.Close()
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		for _, topic := range topicsOnly {
			td, ok := md.Topics[topic]
			if !ok || td.Err != nil {
				return fmt.Errorf("topic %q does not exist", topic)
			}
			for _, p := range td.Partitions.Numbers() {
				parts = append(parts, electionPartition{Topic: topic, Partition: p})
			}
		}
	}
	if len(pos) > 0 {
		slices.SortFunc(parts, compareElectionPartitions)
		parts = slices.Compact(parts)
	}
	typ, what := int8(0), "preferred"
	if unclean {
		typ, what = 1, "unclean"
	}
	results, err := e.electLeaders(seeds, typ, parts)
	if err != nil {
		return fmt.Errorf("%s leader election: %w", what, err)
	}
	elected, notNeeded, failed := sortElectionResults(results)
	switch {
	case len(results) == 0 && unclean:
		fmt.Fprintln(e.stdout, "Every partition has a leader: no election needed.")
	case len(results) == 0:
		fmt.Fprintln(e.stdout, "Every partition is led by its preferred replica: no election needed.")
	}
	if len(elected) > 0 {
		fmt.Fprintf(e.stdout, "Elected a new leader (%s) for %s.\n", what, strings.Join(elected, ", "))
	}
	if len(notNeeded) > 0 && unclean {
		fmt.Fprintf(e.stdout, "Already led, no election needed: %s.\n", strings.Join(notNeeded, ", "))
	} else if len(notNeeded) > 0 {
		fmt.Fprintf(e.stdout, "Already led by the preferred replica: %s.\n", strings.Join(notNeeded, ", "))
	}
	for _, r := range failed {
		why := r.message
		switch r.code {
		case kerr.PreferredLeaderNotAvailable.Code:
			why = "the preferred replica is not in sync or not up"
		case kerr.EligibleLeadersNotAvailable.Code:
			why = "no replica is up"
		}
		name := fmt.Sprintf("error code %d", r.code)
		if ke := kerr.TypedErrorForCode(r.code); ke != nil {
			name = ke.Message
			if why == "" {
				why = ke.Description
			}
		}
		fmt.Fprintf(e.stdout, "Could not elect a leader for %s: %s (%s).\n", r, why, name)
	}
	if len(failed) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d partition(s) could not be elected", e.name, len(failed))}
	}
	return nil
}
