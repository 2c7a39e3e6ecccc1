package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moldau/moldau/internal/verify"
)

const verifyUsage = `Usage: moldau verify [options]

Produces uniquely numbered records (key and value name the producer and its sequence number) with
acks=all and idempotence to a new topic at --rate for --duration, then reads the topic back from a
fresh client and accounts for every record: acknowledged, lost (acknowledged, not read back),
duplicated, reordered (within a partition, per producer), moved (read in another partition than
acknowledged), unacknowledged but present, and the longest produce stall after a fault.

Against a running cluster:
  moldau verify --bootstrap-server 127.0.0.1:9092 --duration 1m

Or on nodes it starts itself (N moldau server processes on 127.0.0.1 with free ports, their own
data dirs and server.properties files), while it injects faults into them in turn:
  moldau verify --nodes 3 --faults kill,pause,restart --fault-interval 10s --duration 5m
  moldau verify --nodes 3 --faults kill --fault-target leader --duration 1m

  kill       kill -9 a node, start it again on the same data dir after --down-time
  pause      SIGSTOP a node for --pause-time (longer than broker.session.timeout.ms), then SIGCONT
  restart    SIGTERM a node (controlled shutdown), start it again
  partition  cut a node off from the others for --partition-time: every node reaches the others'
             CONTROLLER and inter-broker (REPLICATION) listeners through a fault proxy

With --transactions the producers are transactional (one transactional id each): they write
transactions of 1..2x--txn-records records and abort each with probability --abort-ratio. Then a
read_committed consumer must see every record of every committed transaction exactly once, in
order, and none of an aborted one (a transaction whose end had no answer: all of its records or
none), and a read_uncommitted consumer every acknowledged record, aborted ones included:
  moldau verify --transactions --nodes 3 --faults kill --duration 1m

Exits 0 when every acknowledged record was read back exactly once, in order, at the partition
and offset it was acknowledged at, and no node crashed; 1 otherwise.`

func runVerify(e *env, args []string) error {
	fs := newFlagSet("verify")
	var (
		bootstrap, binary, dataDir, topic, faultsS, seedS, targetS string
		nodesS, partitionsS, rfS, minISRS, producersS, recordSize  string
		rateS                                                      string
		durationS, intervalS, downS, pauseS, partS, drainS, readS  string
		nodeConfig                                                 listFlag
		jsonOut, keep, transactions                                bool
		txnRecordsS, abortRatioS, txnTimeoutS                      string
	)
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers of a running cluster (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+"); not with --nodes", "bootstrap-server", "b", "brokers")
	fs.StringVar(&nodesS, "nodes", "0", "start this many moldau server nodes on 127.0.0.1 and verify them (0: use --bootstrap-server)")
	fs.StringVar(&binary, "binary", "", "the moldau binary the nodes run (default: this one)")
	fs.StringVar(&dataDir, "data-dir", "", "where the nodes' configs, data and logs go (default: a temporary dir, removed after a passing run)")
	fs.BoolVar(&keep, "keep", false, "keep the nodes' data dir after a passing run too")
	fs.Var(&nodeConfig, "node-config", "key=value added to every node's server.properties (repeatable)")
	fs.StringVar(&topic, "topic", "", "the topic to write (default verify-<run id>, created)")
	fs.StringVar(&partitionsS, "partitions", "6", "partitions of the topic")
	fs.StringVar(&rfS, "replication-factor", "0", "replication factor of the topic (0: the number of brokers, at most 3)")
	fs.StringVar(&minISRS, "min-insync-replicas", "0", "min.insync.replicas of the topic (0: 2 when the replication factor is 3 or more, else 1)")
	fs.StringVar(&producersS, "producers", "2", "producers, each an idempotent client with its own numbered stream")
	fs.StringVar(&rateS, "rate", "1000", "records per second, all producers together")
	fs.StringVar(&recordSize, "record-size", "100", "bytes per record value (at least 64)")
	fs.StringVar(&durationS, "duration", "30s", "how long to produce (Go duration)")
	fs.StringVar(&faultsS, "faults", "none", "faults to inject in turn, comma-separated: kill, pause, restart, partition (needs --nodes)")
	fs.StringVar(&intervalS, "fault-interval", "5s", "time from one fault's recovery to the next fault")
	fs.StringVar(&downS, "down-time", "1s", "how long a killed node stays down")
	fs.StringVar(&pauseS, "pause-time", "", "how long a paused node stays stopped (default broker.session.timeout.ms + 2s, 11s)")
	fs.StringVar(&targetS, "fault-target", "any", "which node a fault hits: any (at random) or leader (the leader of partition 0)")
	fs.StringVar(&partS, "partition-time", "", "how long a partitioned node stays cut off from the others (default: as --pause-time)")
	fs.StringVar(&seedS, "seed", "", "seed of the fault targets (default: from the clock; printed)")
	fs.StringVar(&drainS, "drain-timeout", "60s", "how long to wait for outstanding acknowledgements after producing stops")
	fs.StringVar(&readS, "read-timeout", "60s", "how long reading the topic back may take")
	fs.BoolVar(&jsonOut, "json", false, "print the report as JSON on stdout")
	fs.BoolVar(&transactions, "transactions", false, "transactional producers committing and aborting at random; read back with read_committed and read_uncommitted")
	fs.StringVar(&txnRecordsS, "txn-records", "10", "with --transactions: records per transaction on average (1 to twice this)")
	fs.StringVar(&abortRatioS, "abort-ratio", "0.3", "with --transactions: the share of transactions aborted on purpose (0 to 1)")
	fs.StringVar(&txnTimeoutS, "transaction-timeout", "10s", "with --transactions: the producers' transaction.timeout.ms")
	pos, err := e.parseArgs(fs, args, verifyUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unexpected arguments: %v", pos)
	}

	var o verify.Options
	nodes, err := e.parseInt("nodes", nodesS, 0, "a number of nodes >= 0")
	if err != nil {
		return err
	}
	if nodes > 0 && isFlagSet(fs, "bootstrap-server", "b", "brokers") {
		return e.argf("--nodes and --bootstrap-server exclude each other: verify either nodes it starts or a running cluster")
	}
	if nodes == 0 {
		for _, f := range []string{"binary", "data-dir", "keep", "node-config"} {
			if isFlagSet(fs, f) {
				return e.argf("--%s needs --nodes", f)
			}
		}
	}
	n, err := e.parseInt("partitions", partitionsS, 1, "a number of partitions >= 1")
	if err != nil {
		return err
	}
	o.Partitions = int32(n)
	if n, err = e.parseInt("replication-factor", rfS, 0, "a replication factor >= 1 (or 0)"); err != nil {
		return err
	}
	o.ReplicationFactor = int16(n)
	if n, err = e.parseInt("min-insync-replicas", minISRS, 0, "a number >= 1 (or 0)"); err != nil {
		return err
	}
	o.MinInsync = int(n)
	if n, err = e.parseInt("producers", producersS, 1, "a number of producers >= 1"); err != nil {
		return err
	}
	o.Producers = int(n)
	if n, err = e.parseInt("record-size", recordSize, 64, "a size in bytes >= 64"); err != nil {
		return err
	}
	o.RecordSize = int(n)
	rate, err := strconv.ParseFloat(rateS, 64)
	if err != nil || rate <= 0 || rate > 1e7 {
		return e.argf("--rate must be a number of records per second > 0, got %q", rateS)
	}
	o.Rate = rate
	durations := []struct {
		name, s string
		min     time.Duration
		p       *time.Duration
	}{
		{"duration", durationS, time.Millisecond, &o.Duration},
		{"fault-interval", intervalS, time.Millisecond, &o.Faults.Interval},
		{"down-time", downS, 0, &o.Faults.DownTime},
		{"pause-time", pauseS, time.Millisecond, &o.Faults.PauseTime},
		{"partition-time", partS, time.Millisecond, &o.Faults.PartitionTime},
		{"drain-timeout", drainS, time.Millisecond, &o.DrainTimeout},
		{"read-timeout", readS, time.Millisecond, &o.ReadTimeout},
	}
	for _, d := range durations {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < d.min {
			return e.argf("--%s must be a positive duration like 10s, got %q", d.name, d.s)
		}
		*d.p = v
	}
	if !transactions {
		for _, f := range []string{"txn-records", "abort-ratio", "transaction-timeout"} {
			if isFlagSet(fs, f) {
				return e.argf("--%s needs --transactions", f)
			}
		}
	}
	o.Transactions = transactions
	if n, err = e.parseInt("txn-records", txnRecordsS, 1, "a number of records >= 1"); err != nil {
		return err
	}
	o.TxnRecords = int(n)
	ratio, err := strconv.ParseFloat(abortRatioS, 64)
	if err != nil || ratio < 0 || ratio > 1 {
		return e.argf("--abort-ratio must be a number from 0 to 1, got %q", abortRatioS)
	}
	o.AbortRatio = ratio
	if ratio == 0 {
		o.AbortRatio = -1 // Options: 0 is the default; below 0 never aborts on purpose
	}
	if o.TxnTimeout, err = time.ParseDuration(txnTimeoutS); err != nil || o.TxnTimeout < time.Millisecond {
		return e.argf("--transaction-timeout must be a positive duration like 10s, got %q", txnTimeoutS)
	}
	if o.Faults.Kinds, err = verify.ParseFaults(faultsS); err != nil {
		return e.argf("--faults: %v", err)
	}
	switch targetS {
	case verify.TargetAny, verify.TargetLeader:
		o.Faults.Target = targetS
	default:
		return e.argf("--fault-target must be any or leader, got %q", targetS)
	}
	if len(o.Faults.Kinds) > 0 && nodes == 0 {
		return e.argf("--faults needs --nodes: faults are injected only into nodes moldau verify started itself")
	}
	partition := slices.Contains(o.Faults.Kinds, verify.FaultPartition)
	if partition && nodes < 2 {
		return e.argf("--faults partition needs --nodes 2 or more: a single node has no one to be cut off from")
	}
	props, _, err := e.parseKV("node-config", nodeConfig)
	if err != nil {
		return err
	}
	if o.Faults.PauseTime == 0 {
		session := 9 * time.Second // Kafka's broker.session.timeout.ms
		if v, ok := props["broker.session.timeout.ms"]; ok {
			ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || ms <= 0 {
				return e.argf("--node-config broker.session.timeout.ms must be a number of milliseconds > 0, got %q", v)
			}
			session = time.Duration(ms) * time.Millisecond
		}
		o.Faults.PauseTime = session + 2*time.Second
	}
	if o.Faults.PartitionTime == 0 {
		o.Faults.PartitionTime = o.Faults.PauseTime
	}
	seed := uint64(e.now().UnixNano())
	if seedS != "" {
		if seed, err = strconv.ParseUint(seedS, 10, 64); err != nil {
			return e.argf("--seed must be a non-negative integer, got %q", seedS)
		}
	}
	o.Faults.Seed = seed
	o.Topic = topic
	o.Logf = func(format string, a ...any) { fmt.Fprintf(e.stderr, "%s: %s\n", e.name, fmt.Sprintf(format, a...)) }

	if nodes == 0 {
		o.Bootstrap = e.bootstrap(bootstrap)
		return e.verifyRun(o, jsonOut, "")
	}

	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find this binary (give --binary): %w", err)
		}
	}
	if st, err := os.Stat(binary); err != nil || st.IsDir() {
		return e.argf("--binary %s is not a moldau binary: %v", binary, err)
	}
	removeDir := false
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "moldau-verify-"); err != nil {
			return err
		}
		removeDir = !keep
	} else if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	// Each node's output also goes to node-N/server.log; Output is called at every (re)start,
	// from the fault injector's goroutine too.
	var logsMu sync.Mutex
	logs := map[int32]*os.File{}
	closeLogs := func() {
		logsMu.Lock()
		defer logsMu.Unlock()
		for id, f := range logs {
			f.Close()
			delete(logs, id)
		}
	}
	defer closeLogs()
	cfg := verify.ClusterConfig{
		Binary:     binary,
		Nodes:      int(nodes),
		Dir:        dataDir,
		Properties: props,
		Proxies:    partition,
		Output: func(id int32) io.Writer {
			logsMu.Lock()
			defer logsMu.Unlock()
			if f := logs[id]; f != nil {
				return f
			}
			f, err := os.OpenFile(filepath.Join(dataDir, fmt.Sprintf("node-%d", id), "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return nil
			}
			logs[id] = f
			return f
		},
	}
	if len(o.Faults.Kinds) > 0 {
		o.Logf("fault seed %d (--seed %d repeats the targets)", seed, seed)
	}
	o.Logf("starting %d node(s) in %s", nodes, dataDir)
	c, err := verify.StartCluster(e.ctx, cfg)
	if err != nil {
		return fmt.Errorf("start the nodes (configs and logs in %s): %w", dataDir, err)
	}
	o.Cluster = c
	o.Bootstrap = strings.Split(c.Bootstrap(), ",")
	err = e.verifyRun(o, jsonOut, dataDir)
	c.Close()
	if err == nil && removeDir {
		closeLogs()
		_ = os.RemoveAll(dataDir)
	} else {
		fmt.Fprintf(e.stderr, "%s: the nodes' configs, data and logs (node-N/server.log) are in %s\n", e.name, dataDir)
	}
	return err
}

// verifyRun runs the check, prints the report and turns a failed check into exit status 1.
func (e *env) verifyRun(o verify.Options, jsonOut bool, dataDir string) error {
	r, err := verify.Run(e.ctx, o)
	if err != nil {
		return err
	}
	if jsonOut {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
	} else {
		writeVerifyReport(e.stdout, r, o.Rate)
	}
	if !r.OK {
		return &exitError{code: 1}
	}
	return nil
}

func writeVerifyReport(w io.Writer, r verify.Report, rate float64) {
	fmt.Fprintf(w, "Topic %s: %d partitions, replication factor %d, min.insync.replicas %d; %s at %g records/s\n",
		r.Topic, r.Partitions, r.Replication, r.MinInsync, (time.Duration(r.DurationMs) * time.Millisecond).String(), rate)
	if len(r.Faults) > 0 {
		fmt.Fprintf(w, "Faults: %d\n", len(r.Faults))
		for _, f := range r.Faults {
			line := fmt.Sprintf("  %-8s node %d at %s", f.Kind, f.Node, ms(f.AtMs))
			if f.DownMs > 0 {
				line += ", back after " + ms(f.DownMs)
			}
			if f.Err != "" {
				line += ", error: " + f.Err
			}
			fmt.Fprintln(w, line)
		}
	}
	row := func(name string, v any) { fmt.Fprintf(w, "%-24s %v\n", name, v) }
	if tr := r.Transactions; tr != nil {
		writeTxnReport(w, r, tr, row)
		return
	}
	row("attempted", r.Attempted)
	row("acknowledged", r.Acknowledged)
	row("unacknowledged", r.Unacknowledged)
	row("read back", r.Read)
	row("lost", r.Lost)
	row("duplicated", r.Duplicated)
	row("reordered", r.Reordered)
	row("moved", r.Moved)
	row("offset changed", r.OffsetChanged)
	row("unacknowledged present", r.UnacknowledgedPresent)
	writeReadRows(r, row)
	writeProduceErrors(w, "Produce errors (unacknowledged records):", r.ProduceErrors)
	writeSamples(w, r.LostSample, r.DuplicatedSample, r.ReorderedSample, r.MovedSample, r.OffsetSample)
	writeVerdict(w, r, "OK: every acknowledged record was read back once, in order, where it was acknowledged")
}

// writeReadRows are the rows both reports end their counts with: what the read could not
// decode or place, other runs' records, the longest produce stall.
func writeReadRows(r verify.Report, row func(string, any)) {
	if r.Corrupt > 0 || r.Unknown > 0 {
		row("corrupt", r.Corrupt)
		row("unknown", r.Unknown)
	}
	if r.Foreign > 0 {
		row("other runs' records", r.Foreign)
	}
	row("longest produce stall", stallText(r))
}

// writeProduceErrors lists the produce errors under title, with their counts; nothing without one.
func writeProduceErrors(w io.Writer, title string, errs map[string]int64) {
	if len(errs) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	for msg, n := range errs {
		fmt.Fprintf(w, "  %d  %s\n", n, msg)
	}
}

// writeSamples prints every sample line of every list, indented.
func writeSamples(w io.Writer, samples ...[]string) {
	for _, s := range samples {
		for _, x := range s {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
}

// writeVerdict ends a report: ok when the run passed, else FAILED and its problems.
func writeVerdict(w io.Writer, r verify.Report, ok string) {
	if r.OK {
		fmt.Fprintln(w, ok)
		return
	}
	fmt.Fprintln(w, "FAILED:")
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(p, "\n", "\n    "))
	}
}

// stallText is the longest gap between acknowledgements, with the fault that caused it.
func stallText(r verify.Report) string {
	if r.LongestStallMs <= 0 {
		return "none"
	}
	stall := fmt.Sprintf("%s from %s", ms(r.LongestStallMs), ms(r.LongestStallAtMs))
	if r.StallFault != "" {
		stall += " (" + r.StallFault + ")"
	}
	return stall
}

// writeTxnReport is the report of a --transactions run.
func writeTxnReport(w io.Writer, r verify.Report, tr *verify.TxnReport, row func(string, any)) {
	row("transactions committed", tr.Committed)
	row("transactions aborted", tr.Aborted)
	unknown := fmt.Sprint(tr.Unknown)
	if tr.Unknown > 0 {
		unknown += fmt.Sprintf(" (read back as %d committed, %d aborted, %d partial)", tr.UnknownCommitted, tr.UnknownAborted, tr.Partial)
	}
	row("transactions unknown", unknown)
	row("attempted", r.Attempted)
	row("acknowledged", r.Acknowledged)
	row("committed records", tr.CommittedRecords)
	row("aborted records", tr.AbortedRecords)
	row("read_committed", tr.ReadCommitted)
	row("read_uncommitted", tr.ReadUncommitted)
	row("lost", r.Lost)
	row("aborted read", tr.AbortedRead)
	row("duplicated", r.Duplicated)
	row("reordered", r.Reordered)
	row("missing uncommitted", tr.MissingUncommitted)
	writeReadRows(r, row)
	writeProduceErrors(w, "Produce and transaction errors:", r.ProduceErrors)
	writeSamples(w, r.LostSample, tr.AbortedSample, tr.PartialSample, r.DuplicatedSample, r.ReorderedSample, tr.MissingSample)
	writeVerdict(w, r, "OK: read_committed showed every committed transaction once, in order, and no aborted one; read_uncommitted every acknowledged record")
}

func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }
