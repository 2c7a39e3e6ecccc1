// Command compare runs Moldau's standard benchmark workloads against Moldau and its peers in one
// invocation, on loopback, each system with a fresh data directory, and prints one table with
// ratios and the targets of issue 4 marked met or missed.
//
//	go run ./bench/compare                      # the standard run (takes a while)
//	go run ./bench/compare -scale 0.05          # a quick run: record counts and durations x0.05
//	go run ./bench/compare -systems moldau,kafka
//
// Systems (-systems, in this order): disk (dd with oflag=direct and buffered + fdatasync, the
// byte count of W1), moldau (built from this tree), kafka (Apache Kafka 4.x in KRaft mode from
// Maven Central, see kafka/pom.xml), kfake (franz-go's in-memory fake broker, bench/kfake) and
// nats (NATS server with JetStream file storage, bench/nats, a module of its own).
//
// Workloads, driven by `moldau bench` for the Kafka-protocol systems and by natsbench in the same
// shapes for NATS:
//
//	W1  produce 2 M records of 1 KiB, 6 partitions, acks=all, 4 producers, linger 5 ms
//	W2  the same with 100-byte records
//	W3  consume W1's records from the start (one consumer)
//	W4  end to end: one producer at 20 000 records/s for 30 s (1 KiB, linger 0), one consumer
//	W5  W1 against a fresh broker with fsync before ack (log.flush.interval.messages=1, which is
//	    Moldau's default; NATS: sync always)
//	W6  W4 against that broker (fsync before ack); Kafka-protocol systems only
//	W7  transactional produce: 4 transactional producers, transactions of 100 records of 1 KiB
//	    over 6 partitions, commit every one (200 000 records x scale); commit latency
//	    (EndTxn, markers included); Kafka-protocol systems only, no fsync (txn.go)
//
// -workloads picks some of them (e.g. -workloads W7 -systems moldau,kafka for the transactions
// alone).
//
// W1-W4 run every system without fsync on the write path, as Kafka's defaults do: Moldau with
// log.flush.interval.messages=9223372036854775807 set explicitly (-moldau-defaults: with its own
// defaults, i.e. fsync before ack, instead). W1/W4 against W5/W6 is the durability cost matrix.
//
// Before each workload it calls sync(2) (-sync) so that one workload's writeback does not land in
// the next, and waits for the shared machine to be idle (-idle-wait).
//
// Per broker it also records the peak RSS through W1 (VmHWM of /proc/PID/status) and the cold
// start: from exec to the port accepting and a metadata request answering.
//
// The cluster systems moldau3 and kafka3 (-systems moldau3,kafka3; not in the default list) are
// three combined broker+controller nodes on 127.0.0.1, each its own process and data dir, with
// the same Kafka keys (process.roles, node.id, controller.quorum.voters, listeners; Kafka's
// storage formatted per node with one cluster id). Every topic gets replication factor 3 and
// min.insync.replicas=2. Against each: W1 and W4 (broker CPU and RSS summed over the nodes), then
// the leader kill: a steady acks=all load (-stall-rate) for -stall-warmup, kill -9 of the leader
// of partition 0, -stall-after more, and the longest gap between successive acknowledgements
// after the kill (internal/verify's measure), with the topic read back and checked by
// verify.Check.
//
// Every process it starts runs in its own process group and is stopped on return, on error and
// on SIGINT/SIGTERM (a second signal kills at once; children then die by Pdeathsig). Temporary
// directories are removed unless -keep.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	scale           float64
	systems         []string
	out             string
	keep            bool
	kafkaHeap       string
	workloadTimeout time.Duration
	tmpRoot         string
	rev             string
	idleWait        time.Duration
	idleMin         float64
	syncBetween     bool
	moldauDefaults  bool
	// The leader-kill stall of the cluster systems.
	stallRate               int
	stallWarmup, stallAfter time.Duration
	stallKill               string
	// clusterConfig are key=value lines added to every cluster node's server.properties.
	clusterConfig []string
	// workloads are the single-node workloads to run (-workloads).
	workloads []string
	// -observe: Moldau's W1 unobserved and observed (/metrics scraped, the console open), in
	// rounds (observe.go).
	observe         bool
	observeRounds   int
	observeVariants []observeVariant
	observeToggle   time.Duration
	observeInterval time.Duration
	chromium        string
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" || strings.ContainsAny(v, "\n\r") {
		return fmt.Errorf("want key=value, got %q", v)
	}
	*l = append(*l, v)
	return nil
}

// harness holds one comparison run.
type harness struct {
	opts   options
	repo   string // the repository root (holds go.mod of github.com/moldau/moldau)
	tmp    string // this run's temporary directory
	report *report

	cpOnce    sync.Once
	classpath string
	cpErr     error

	// The HTTP listener of the brokers -observe watches, by data directory (observe.go).
	httpMu      sync.Mutex
	httpAddrs   map[string]string
	httpKeyOnce sync.Once
	httpKeyName string
}

func main() { os.Exit(realMain()) }

func realMain() int {
	var (
		opts      options
		systems   string
		workloads string
	)
	flag.Float64Var(&opts.scale, "scale", 1, "multiply record counts and durations by this (e.g. 0.05 for a quick run)")
	flag.StringVar(&systems, "systems", "disk,moldau,kafka,kfake,nats", "systems to run, comma-separated, in this order: disk, moldau, kafka, kfake, nats, and the three-node clusters moldau3, kafka3")
	flag.StringVar(&opts.out, "out", "", "JSON results file (default bench/compare/results/compare-TIME.json; a .md table is written beside it)")
	flag.BoolVar(&opts.keep, "keep", false, "keep the temporary directory (data dirs, broker and bench logs)")
	flag.StringVar(&opts.kafkaHeap, "kafka-heap", "1g", "Kafka's -Xmx and -Xms")
	flag.DurationVar(&opts.workloadTimeout, "workload-timeout", 30*time.Minute, "give up on one workload after this long")
	flag.StringVar(&opts.tmpRoot, "tmp", "", "parent of the temporary directory (default $TMPDIR or /tmp); data dirs and dd files go here")
	flag.StringVar(&opts.rev, "rev", "", "build Moldau and kfake from this git revision (git archive) instead of the working tree")
	flag.DurationVar(&opts.idleWait, "idle-wait", 60*time.Second, "before each workload, wait up to this long for the machine to be idle (it is shared)")
	flag.Float64Var(&opts.idleMin, "idle-min", 85, "idle CPU percentage (over 1 s) that counts as idle for -idle-wait")
	flag.BoolVar(&opts.moldauDefaults, "moldau-defaults", false, "run Moldau's W1-W4 with its own flush default (fsync before ack) instead of Kafka's (no fsync)")
	flag.IntVar(&opts.stallRate, "stall-rate", 5000, "moldau3, kafka3: records/s (1 KiB, acks=all) during the leader kill")
	flag.DurationVar(&opts.stallWarmup, "stall-warmup", 5*time.Second, "moldau3, kafka3: produce this long before the kill -9 of partition 0's leader")
	flag.DurationVar(&opts.stallAfter, "stall-after", 30*time.Second, "moldau3, kafka3: produce this long after the kill (a partition that stays stalled longer is reported as not recovered)")
	flag.StringVar(&opts.stallKill, "stall-kill", stallKillNotQuorumLeader, "moldau3, kafka3: where partition 0's leader is when it is killed: "+
		stallKillNotQuorumLeader+" (created on a node that is not the metadata quorum's leader), "+stallKillQuorumLeader+" (on the quorum leader: a quorum election too), "+stallKillAsPlaced+" (where the cluster places it)")
	flag.Var((*listFlag)(&opts.clusterConfig), "cluster-config", "moldau3, kafka3: key=value added to every node's server.properties, Moldau's and Kafka's alike (repeatable; e.g. broker.session.timeout.ms=2000)")
	flag.StringVar(&workloads, "workloads", "W1,W2,W3,W4,W5,W6,W7", "the single-node workloads to run, comma-separated (W3 reads W1's records: it needs W1)")
	flag.BoolVar(&opts.observe, "observe", false, "run Moldau's W1 unobserved and observed (/metrics scraped every -observe-interval and the web console open in headless chromium, on the overview and on a consumer group's page), -observe-rounds times each in alternating order, each run against a fresh broker; needs -workloads W1")
	flag.IntVar(&opts.observeRounds, "observe-rounds", 2, "-observe: rounds of the three variants (even: each variant's mean position in the run is the same)")
	variantList := flag.String("observe-variants", "scraped,overview,group", "-observe: the observed variants run besides the unobserved one, comma separated: scraped (/metrics only), overview and group (the console open on #/ or on a group's page), groupapi (the group page's API polled by the harness, no browser)")
	flag.DurationVar(&opts.observeToggle, "observe-toggle", 0, "-observe: instead of rounds of runs, one W1 run per observed variant with the observers switched off and on every this long (the console's page frozen, the scraper paused), its throughput compared window by window (give a larger -scale: the run should hold 10 or more windows)")
	flag.DurationVar(&opts.observeInterval, "observe-interval", time.Second, "-observe: the scrape interval of /metrics")
	flag.StringVar(&opts.chromium, "chromium", "", "-observe: the chromium binary (default $CHROMIUM, else chromium on $PATH)")
	flag.BoolVar(&opts.syncBetween, "sync", true, "sync(2) before each workload, so that the kernel's writeback of one workload's data does not land in the next")
	flag.Parse()
	if opts.scale <= 0 {
		fmt.Fprintln(os.Stderr, "compare: -scale must be > 0")
		return 2
	}
	if opts.stallRate < 1 || opts.stallWarmup <= 0 || opts.stallAfter <= 0 {
		fmt.Fprintln(os.Stderr, "compare: -stall-rate, -stall-warmup and -stall-after must be > 0")
		return 2
	}
	if !slices.Contains([]string{stallKillNotQuorumLeader, stallKillQuorumLeader, stallKillAsPlaced}, opts.stallKill) {
		fmt.Fprintf(os.Stderr, "compare: -stall-kill %q: want %s, %s or %s\n", opts.stallKill, stallKillNotQuorumLeader, stallKillQuorumLeader, stallKillAsPlaced)
		return 2
	}
	for w := range strings.SplitSeq(workloads, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		if !slices.Contains([]string{"W1", "W2", "W3", "W4", "W5", "W6", "W7"}, w) {
			fmt.Fprintf(os.Stderr, "compare: unknown workload %q (want W1 to W7)\n", w)
			return 2
		}
		opts.workloads = append(opts.workloads, w)
	}
	if opts.observe && !slices.Equal(opts.workloads, []string{"W1"}) {
		fmt.Fprintln(os.Stderr, "compare: -observe runs Moldau's W1 only, in rounds: give -workloads W1")
		return 2
	}
	var err error
	if opts.observeVariants, err = parseObserveVariants(*variantList); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		return 2
	}
	if opts.observeRounds < 1 || opts.observeInterval <= 0 {
		fmt.Fprintln(os.Stderr, "compare: -observe-rounds and -observe-interval must be > 0")
		return 2
	}
	known := map[string]bool{"disk": true}
	for _, s := range allSystems {
		known[s.key] = true
	}
	for _, s := range clusterSystems {
		known[s.key] = true
	}
	for s := range strings.SplitSeq(systems, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			fmt.Fprintf(os.Stderr, "compare: unknown system %q (want disk, moldau, kafka, kfake, nats, moldau3, kafka3)\n", s)
			return 2
		}
		opts.systems = append(opts.systems, s)
	}
	if opts.observe && !slices.Contains(opts.systems, "moldau") {
		fmt.Fprintln(os.Stderr, "compare: -observe watches Moldau: -systems must include moldau")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills this process at once
	}()

	repo, err := findRepo()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp(opts.tmpRoot, "moldau-compare-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		return 1
	}
	h := &harness{opts: opts, repo: repo, tmp: tmp}
	defer func() {
		stopAll()
		if opts.keep {
			fmt.Fprintf(os.Stderr, "compare: kept %s\n", tmp)
		} else if err := os.RemoveAll(tmp); err != nil {
			fmt.Fprintf(os.Stderr, "compare: remove %s: %v\n", tmp, err)
		}
	}()
	if err := h.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "compare: %v\n", err)
		return 1
	}
	return 0
}

// findRepo walks up from the working directory to the root of the Moldau module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/moldau/moldau\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the github.com/moldau/moldau repository")
		}
		dir = parent
	}
}

func (h *harness) selected(key string) bool { return slices.Contains(h.opts.systems, key) }

func (h *harness) bin(name string) string { return filepath.Join(h.tmp, "bin", name) }

func (h *harness) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "compare %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// run builds what the selected systems need, runs them one after the other and reports.
func (h *harness) run(ctx context.Context) error {
	h.report = newReport(h.opts)
	if err := h.build(ctx); err != nil {
		return err
	}
	if h.selected("kafka") || h.selected("kafka3") {
		if _, err := h.kafkaClasspath(ctx); err != nil {
			return err
		}
	}
	for _, key := range h.opts.systems {
		if ctx.Err() != nil {
			break
		}
		if key == "disk" {
			h.report.Disk = h.runDisk(ctx)
			continue
		}
		for _, s := range allSystems {
			if s.key == key && key == "moldau" && h.opts.observe {
				h.report.Systems = append(h.report.Systems, h.runObserve(ctx, s)...)
			} else if s.key == key {
				h.report.Systems = append(h.report.Systems, h.runSystem(ctx, s))
			}
		}
		for _, cs := range clusterSystems {
			if cs.key == key {
				h.report.Clusters = append(h.report.Clusters, h.runCluster(ctx, cs))
			}
		}
	}
	if h.selected("disk") && ctx.Err() == nil {
		// The disk is shared too: measure it again at the end and keep the better figures.
		h.report.DiskEnd = h.runDisk(ctx)
	}
	h.report.Finished = time.Now().UTC()
	h.report.LoadAvgEnd = loadAvg()
	h.report.evaluate()
	if ctx.Err() != nil {
		h.report.Interrupted = true
	}
	return h.report.write(h.opts.out, h.repo, os.Stdout)
}

// build compiles the Moldau binary (also the load generator for every Kafka-protocol system),
// kfake and natsbench into the temporary directory.
func (h *harness) build(ctx context.Context) error {
	src, err := h.source(ctx)
	if err != nil {
		return err
	}
	type target struct{ dir, pkg, out string }
	targets := []target{{src, "./cmd/moldau", "moldau"}}
	if h.selected("kfake") {
		targets = append(targets, target{src, "./bench/kfake", "kfake"})
	}
	if h.selected("nats") {
		targets = append(targets, target{filepath.Join(h.repo, "bench", "nats"), ".", "natsbench"})
	}
	for _, t := range targets {
		h.logf("go build %s", t.out)
		if _, err := run(ctx, t.dir, os.Stderr, "go", "build", "-o", h.bin(t.out), t.pkg); err != nil {
			return fmt.Errorf("build %s: %w", t.out, err)
		}
	}
	return nil
}

// source returns the directory to build Moldau from: the working tree, or with -rev an export
// of that revision; it records which in the report.
func (h *harness) source(ctx context.Context) (string, error) {
	git := func(args ...string) string {
		out, err := run(ctx, h.repo, io.Discard, append([]string{"git"}, args...)...)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if h.opts.rev == "" {
		head := git("rev-parse", "--short", "HEAD")
		dirty := ""
		if git("status", "--porcelain", "--untracked-files=no", "--", "cmd", "internal", "go.mod", "go.sum") != "" {
			dirty = " with uncommitted changes in cmd/, internal/ or go.mod"
		}
		h.report.Source = "working tree at " + head + dirty
		return h.repo, nil
	}
	commit := git("rev-parse", "--short", h.opts.rev+"^{commit}")
	if commit == "" {
		return "", fmt.Errorf("-rev %s: not a commit", h.opts.rev)
	}
	dir := filepath.Join(h.tmp, "src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if _, err := run(ctx, h.repo, os.Stderr, "sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", commit, dir); err != nil {
		return "", fmt.Errorf("export %s: %w", commit, err)
	}
	h.report.Source = "git archive of " + commit
	return dir, nil
}

// waitIdle waits up to -idle-wait for the machine to be at least -idle-min % idle over one second
// (other people's builds and tests share it) and returns the idle percentage it last saw.
func (h *harness) waitIdle(ctx context.Context) float64 {
	deadline := time.Now().Add(h.opts.idleWait)
	for {
		idle := idlePercent(ctx, time.Second)
		if idle >= h.opts.idleMin || time.Now().After(deadline) || ctx.Err() != nil {
			return idle
		}
	}
}

// idlePercent is the share of CPU time spent idle (idle + iowait) over d, from /proc/stat.
func idlePercent(ctx context.Context, d time.Duration) float64 {
	read := func() (idle, total float64) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			var v float64
			fmt.Sscan(f, &v)
			total += v
			if i == 3 || i == 4 {
				idle += v
			}
		}
		return idle, total
	}
	i1, t1 := read()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	i2, t2 := read()
	if t2 <= t1 {
		return 0
	}
	return 100 * (i2 - i1) / (t2 - t1)
}

// kafkaClasspath resolves org.apache.kafka:kafka_2.13 and its dependencies with Maven
// (bench/compare/kafka/pom.xml) once per pom change; the jars stay in the local repository.
func (h *harness) kafkaClasspath(ctx context.Context) (string, error) {
	h.cpOnce.Do(func() {
		dir := filepath.Join(h.repo, "bench", "compare", "kafka")
		cpFile := filepath.Join(dir, "target", "classpath.txt")
		pom, err := os.Stat(filepath.Join(dir, "pom.xml"))
		if err != nil {
			h.cpErr = err
			return
		}
		if st, err := os.Stat(cpFile); err != nil || st.ModTime().Before(pom.ModTime()) {
			h.logf("resolving the Kafka broker's classpath with Maven (%s)", dir)
			if _, err := run(ctx, dir, os.Stderr, "mvn", "-q", "-B", "-Dstyle.color=never", "dependency:build-classpath",
				"-Dmdep.outputFile=target/classpath.txt", "-Dmdep.includeScope=runtime"); err != nil {
				h.cpErr = fmt.Errorf("resolve kafka classpath: %w", err)
				return
			}
		}
		b, err := os.ReadFile(cpFile)
		if err != nil {
			h.cpErr = err
			return
		}
		h.classpath = strings.TrimSpace(string(b))
	})
	return h.classpath, h.cpErr
}

// workload is one standard workload's bench command line, without -brokers.
type workload struct {
	name string
	args []string // common to moldau bench and natsbench
	kafk []string // moldau bench only (Kafka client settings)
	// observe, if set, is started right before the load generator and stopped right after it.
	observe observer
}

func (h *harness) records(n int64) int64 {
	return max(1000, int64(math.Round(float64(n)*h.opts.scale)))
}

func (h *harness) workloads() map[string]workload {
	n := fmt.Sprint(h.records(2_000_000))
	e2eDur := max(2*time.Second, time.Duration(float64(30*time.Second)*h.opts.scale)).Round(time.Second)
	produce := func(topic, size string) workload {
		return workload{
			args: []string{"produce", "-topic", topic, "-partitions", "6", "-record-size", size, "-producers", "4", "-records", n},
			kafk: []string{"-acks", "all", "-linger", "5ms", "-progress", "5s"},
		}
	}
	w := map[string]workload{
		"W1": produce("w1", "1024"),
		"W2": produce("w2", "100"),
		"W3": {args: []string{"consume", "-topic", "w1", "-consumers", "1"}, kafk: []string{"-progress", "5s"}},
		"W4": {
			args: []string{"e2e", "-topic", "w4", "-partitions", "6", "-record-size", "1024", "-rate", "20000", "-duration", e2eDur.String()},
			kafk: []string{"-acks", "all", "-linger", "0s", "-progress", "5s"},
		},
		"W5": produce("w5", "1024"),
	}
	w6 := w["W4"]
	w6.args = slices.Clone(w6.args)
	w6.args[slices.Index(w6.args, "-topic")+1] = "w6"
	w["W6"] = w6
	for k, v := range w {
		v.name = k
		w[k] = v
	}
	return w
}

// runSystem starts s with a fresh data directory, runs W1, W3, W2 and W4 against it, stops it,
// then (where it applies) starts it again with fsync before ack for W5 and W6.
func (h *harness) runSystem(ctx context.Context, s *system) *systemResult {
	res := &systemResult{System: s.key, Title: s.title, Workloads: map[string]*benchResult{}, LoadAvgStart: loadAvg()}
	h.logf("%s: start", s.key)
	wl := h.workloads()

	p, addr, dir, err := h.startSystem(ctx, s, false, res)
	if err != nil {
		res.fail("start: %v", err)
		return res
	}
loop:
	for _, name := range []string{"W1", "W3", "W2", "W4", "W7"} {
		if !slices.Contains(h.opts.workloads, name) || (name == "W7" && s.key == "nats") {
			continue
		}
		select {
		case <-ctx.Done():
			break loop
		case <-p.exited:
			res.fail("exited before %s: %v (see %s)", name, p.err, filepath.Join(dir, "server.log"))
			break loop
		default:
		}
		var br *benchResult
		var err error
		if name == "W7" {
			br, err = h.benchTxn(ctx, s, []int{p.pid()}, addr, h.records(200_000))
		} else {
			br, err = h.bench(ctx, s, []int{p.pid()}, addr, dir, wl[name])
		}
		if br != nil {
			res.Workloads[name] = br
		}
		if err != nil {
			res.fail("%s: %v", name, err)
		}
		if name == "W1" {
			if kb, err := procStatusKB(p.pid(), "VmHWM"); err == nil {
				res.RSSW1MiB = float64(kb) / 1024
			} else {
				res.fail("read RSS: %v", err)
			}
		}
	}
	h.stopSystem(s, p, dir, res)

	if s.fsync && ctx.Err() == nil && (slices.Contains(h.opts.workloads, "W5") || slices.Contains(h.opts.workloads, "W6")) {
		p, addr, dir, err := h.startSystem(ctx, s, true, nil)
		if err != nil {
			res.fail("start with fsync before ack: %v", err)
			return res
		}
		w5 := wl["W5"]
		if s.key == "nats" {
			// JetStream's sync always fsyncs every message (a few thousand per second here):
			// 2 M records would take a quarter of an hour, so NATS gets a time window instead.
			w5.args = slices.Clone(w5.args)
			i := slices.Index(w5.args, "-records")
			d := max(5*time.Second, time.Duration(float64(60*time.Second)*h.opts.scale)).Round(time.Second)
			w5.args[i], w5.args[i+1] = "-duration", d.String()
		}
		if slices.Contains(h.opts.workloads, "W5") {
			br, err := h.bench(ctx, s, []int{p.pid()}, addr, dir, w5)
			if br != nil {
				res.Workloads["W5"] = br
			}
			if err != nil {
				res.fail("W5: %v", err)
			}
		}
		if s.key != "nats" && ctx.Err() == nil && slices.Contains(h.opts.workloads, "W6") {
			// End-to-end latency with fsync before ack (JetStream's sync always cannot keep W4's
			// rate: no W6 for NATS).
			br, err := h.bench(ctx, s, []int{p.pid()}, addr, dir, wl["W6"])
			if br != nil {
				res.Workloads["W6"] = br
			}
			if err != nil {
				res.fail("W6: %v", err)
			}
		}
		h.stopSystem(s, p, dir, res)
	}
	return res
}

// startSystem starts s in a fresh directory and waits until it serves; res (if not nil) gets the
// cold start time.
func (h *harness) startSystem(ctx context.Context, s *system, fsync bool, res *systemResult) (*proc, string, string, error) {
	name := s.key
	if fsync {
		name += "-fsync"
	}
	dir := filepath.Join(h.tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", dir, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, "", dir, err
	}
	idle := h.waitIdle(ctx)
	p, err := s.start(ctx, h, dir, addr, fsync)
	if err != nil {
		return nil, "", dir, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	go func() { // a system that dies while starting should not cost the whole timeout
		select {
		case <-p.exited:
			cancel()
		case <-readyCtx.Done():
		}
	}()
	if err := s.ready(readyCtx, addr); err != nil {
		p.stop(10 * time.Second)
		if p.err != nil {
			err = fmt.Errorf("%w (exited: %v; see %s)", err, p.err, filepath.Join(dir, "server.log"))
		}
		return nil, "", dir, err
	}
	cold := time.Since(p.started)
	if res != nil {
		res.ColdStartMs = float64(cold) / 1e6
	}
	h.logf("%s: serving on %s after %s (pid %d; machine %.0f%% idle before)", name, addr, cold.Round(time.Millisecond), p.pid(), idle)
	return p, addr, dir, nil
}

// stopSystem stops the broker and removes its data, keeping its logs in the temporary directory
// (see -keep); after an error it prints the end of the broker's log.
func (h *harness) stopSystem(s *system, p *proc, dir string, res *systemResult) {
	p.stop(60 * time.Second)
	for _, data := range []string{"data", "jetstream"} {
		if err := os.RemoveAll(filepath.Join(dir, data)); err != nil {
			res.fail("remove %s: %v", dir, err)
		}
	}
	if len(res.Errors) > 0 {
		if b, err := os.ReadFile(filepath.Join(dir, "server.log")); err == nil {
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			lines = lines[max(0, len(lines)-20):]
			h.logf("%s: the end of its log:\n    %s", s.key, strings.Join(lines, "\n    "))
		}
	}
	h.logf("%s: stopped", s.key)
}

// bench runs one workload's load generator against addr and parses its JSON line.
// CPU is the sum over brokerPIDs (a cluster's nodes).
func (h *harness) bench(ctx context.Context, s *system, brokerPIDs []int, addr, dir string, w workload) (*benchResult, error) {
	argv := append(s.bench(h), w.args...)
	argv = append(argv, "-brokers", addr)
	if s.key != "nats" {
		argv = append(argv, w.kafk...)
	}
	if h.opts.syncBetween {
		t := time.Now()
		syscall.Sync()
		if d := time.Since(t); d > 100*time.Millisecond {
			h.logf("%s %s: sync(2) took %s", s.key, w.name, d.Round(time.Millisecond))
		}
	}
	idle := h.waitIdle(ctx)
	h.logf("%s %s (machine %.0f%% idle): %s", s.key, w.name, idle, strings.Join(argv[1:], " "))
	logPath := filepath.Join(dir, w.name+".bench.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	wctx, cancel := context.WithTimeout(ctx, h.opts.workloadTimeout)
	defer cancel()
	brokerCPU0, _ := sumCPUSeconds(brokerPIDs)
	if w.observe != nil {
		w.observe.begin()
	}
	out, benchCPU, runErr := runTimed(wctx, h.tmp, io.MultiWriter(logf, &prefixWriter{prefix: "    " + s.key + " " + w.name + " | ", w: os.Stderr}), argv...)
	if w.observe != nil {
		w.observe.end()
	}
	br, err := parseBench(out)
	if err != nil {
		if runErr != nil {
			return nil, runErr
		}
		return nil, err
	}
	br.Command = strings.Join(argv, " ")
	if brokerCPU1, err := sumCPUSeconds(brokerPIDs); err == nil {
		br.BrokerCPUSec = brokerCPU1 - brokerCPU0
	}
	br.BenchCPUSec = benchCPU
	br.IdleBefore = idle
	if runErr != nil {
		return br, runErr
	}
	h.logf("%s %s: %.0f records/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
		s.key, w.name, br.RecordsPerSec, br.MBPerSec, br.P50Ms, br.P99Ms, br.P999Ms, br.MaxMs)
	return br, nil
}

// parseBench reads the JSON line that ends a bench run's stdout.
func parseBench(out []byte) (*benchResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "{") {
			last = l
		}
	}
	if last == "" {
		return nil, fmt.Errorf("no JSON result line in the bench output")
	}
	var br benchResult
	if err := json.Unmarshal([]byte(last), &br); err != nil {
		return nil, fmt.Errorf("bench result %q: %w", last, err)
	}
	br.Raw = json.RawMessage(last)
	return &br, nil
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mid    bool // in the middle of a line
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !p.mid {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.mid = true
			_, err := p.w.Write(b)
			return n, err
		}
		if _, err := p.w.Write(b[:i+1]); err != nil {
			return 0, err
		}
		p.mid = false
		b = b[i+1:]
	}
	return n, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}
