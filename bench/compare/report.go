package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// benchResult is one workload's outcome: the keys every bench JSON line has, and the line itself.
type benchResult struct {
	Records       int64           `json:"records"`
	RecordsPerSec float64         `json:"records_per_sec"`
	MBPerSec      float64         `json:"mb_per_sec"`
	Bytes         int64           `json:"bytes"` // keys plus values
	P50Ms         float64         `json:"p50_ms"`
	P99Ms         float64         `json:"p99_ms"`
	P999Ms        float64         `json:"p999_ms"`
	MaxMs         float64         `json:"max_ms"`
	Partial       bool            `json:"partial"`
	IdleBefore    float64         `json:"machine_idle_pct_before"` // idle CPU % in the second before the run
	BrokerCPUSec  float64         `json:"broker_cpu_sec"`          // CPU time the broker used during the run
	BenchCPUSec   float64         `json:"bench_cpu_sec"`           // CPU time the load generator used
	Command       string          `json:"command"`
	Raw           json.RawMessage `json:"raw"`
}

// systemResult is everything measured of one system.
type systemResult struct {
	System       string                  `json:"system"`
	Title        string                  `json:"title"`
	Nodes        int                     `json:"nodes,omitempty"` // a cluster system's node count
	ColdStartMs  float64                 `json:"cold_start_ms"`   // exec to port accepting + metadata answering
	RSSW1MiB     float64                 `json:"rss_w1_mib"`      // VmHWM right after W1: peak since start, through W1 (a cluster: the sum over its nodes)
	Workloads    map[string]*benchResult `json:"workloads"`
	Errors       []string                `json:"errors,omitempty"`
	LoadAvgStart string                  `json:"loadavg_start"`
	Stall        *stallResult            `json:"stall,omitempty"` // a cluster system's leader kill
}

func (r *systemResult) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.Errors = append(r.Errors, msg)
	fmt.Fprintf(os.Stderr, "compare: %s: %s\n", r.System, msg)
}

// w returns a complete workload result or nil.
func (r *systemResult) w(name string) *benchResult {
	if r == nil {
		return nil
	}
	if b := r.Workloads[name]; b != nil && !b.Partial {
		return b
	}
	return nil
}

type machineFacts struct {
	NumCPU   int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	MemTotal string `json:"mem_total"`
	Kernel   string `json:"kernel"`
	Disk     string `json:"disk"` // the filesystem of the temporary directory
	Go       string `json:"go"`
	Java     string `json:"java"`
}

type target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, missed, n/a
}

type report struct {
	Command     string  `json:"command"`
	Scale       float64 `json:"scale"`
	SyncBetween bool    `json:"sync_between_workloads"`
	// MoldauDefaults: Moldau's W1-W4 ran with its own flush default (fsync before ack).
	MoldauDefaults bool            `json:"moldau_defaults,omitempty"`
	Source         string          `json:"source"` // what Moldau was built from
	Started        time.Time       `json:"started"`
	Finished       time.Time       `json:"finished"`
	Interrupted    bool            `json:"interrupted,omitempty"`
	Machine        machineFacts    `json:"machine"`
	LoadAvg        string          `json:"loadavg_start"`
	LoadAvgEnd     string          `json:"loadavg_end"`
	Disk           *diskResult     `json:"disk,omitempty"`     // measured first
	DiskEnd        *diskResult     `json:"disk_end,omitempty"` // measured again after the systems
	Systems        []*systemResult `json:"systems"`
	// Clusters are the three-node systems (moldau3, kafka3): W1 and W4 with replication factor 3
	// and the leader-kill stall.
	Clusters       []*systemResult `json:"clusters,omitempty"`
	Targets        []target        `json:"targets"`
	Observe        *observeReport  `json:"observe,omitempty"` // -observe (observe.go)
	ClusterTargets []target        `json:"cluster_targets,omitempty"`
	Notes          []string        `json:"notes"`
}

func newReport(o options) *report {
	syncNote := "No sync(2) between workloads (-sync=false): a workload may run while the kernel writes back the previous one's data."
	if o.syncBetween {
		syncNote = "sync(2) before each workload (-sync): no workload runs while the kernel writes back the previous one's data."
	}
	flushNote := "Moldau W1-W4: log.flush.interval.messages=" + kafkaNoFlush + " set explicitly, i.e. no fsync on the write path as in Kafka's default; Moldau's own default is fsync before ack (W5, W6)."
	if o.moldauDefaults {
		flushNote = "Moldau W1-W4 with its default flush policy (-moldau-defaults): fsync before ack, as in W5 and W6."
	}
	r := &report{
		Command:        "go run ./bench/compare " + strings.Join(os.Args[1:], " "),
		Scale:          o.scale,
		SyncBetween:    o.syncBetween,
		MoldauDefaults: o.moldauDefaults,
		Started:        time.Now().UTC(),
		LoadAvg:        loadAvg(),
		Notes: []string{
			syncNote,
			"W4 uses linger 0 so that its latency is the broker's, not the client's batching delay.",
			"Kafka: every setting default except what one KRaft node needs; JVM options of kafka-server-start.sh; heap -Xmx/-Xms " + o.kafkaHeap + ".",
			"NATS: stream of file storage, 1 replica, subjects TOPIC.0..5; PublishAsync with 4000 pending per connection; ordered pull consumers; W5 with sync always, for a time window (60 s x scale) instead of W1's record count.",
			"kfake is in memory: no W5, no W6.",
			"W7: 4 transactional franz-go producers in the harness's process, each its own transactional id, transactions of 100 records of 1 KiB round-robin over 6 partitions, acks=all, linger 5 ms, commit every transaction; records/s are committed records; the p50/p99/max are of EndTxn(commit), call to answer (the coordinator's markers included).",
			"W5 and W6 (fsync before ack) run against a second, fresh broker: Moldau with its default flush policy, Kafka with log.flush.interval.messages=1, NATS with sync always (no W6: it cannot keep W4's rate).",
		},
	}
	singleNode := slices.ContainsFunc(o.systems, func(k string) bool { return k != "moldau3" && k != "kafka3" })
	if singleNode {
		r.Notes = slices.Insert(r.Notes, 1, flushNote)
	} else {
		r.Notes = r.Notes[:2] // the rest are about the single-node systems
	}
	if slices.Contains(o.systems, "moldau3") || slices.Contains(o.systems, "kafka3") {
		moldau3Flush := "Moldau's nodes with log.flush.interval.messages=" + kafkaNoFlush + " set explicitly (no fsync on the write path, Kafka's default), as the single-node W1-W4"
		if o.moldauDefaults {
			moldau3Flush = "Moldau's nodes with its default flush policy (-moldau-defaults): fsync before ack"
		}
		if len(o.clusterConfig) > 0 {
			r.Notes = append(r.Notes, "moldau3, kafka3: added to every node's server.properties (-cluster-config): "+strings.Join(o.clusterConfig, ", ")+".")
		}
		r.Notes = append(r.Notes,
			"moldau3, kafka3: three combined broker+controller nodes on 127.0.0.1, each its own process and data dir, with the same keys (process.roles=broker,controller, node.id 1-3, a static controller.quorum.voters, PLAINTEXT and CONTROLLER listeners); Kafka's storage formatted per node with one cluster id (StorageTool format -t ID -c server.properties, not counted in the start time), every other Kafka setting default, each JVM with heap "+o.kafkaHeap+". "+moldau3Flush+"; Kafka with its default (no fsync).",
			"moldau3, kafka3: every topic created by the harness with replication factor 3 and min.insync.replicas=2, every replica in the ISR before the workload starts; W1 and W4 as in the single-node runs (acks=all); broker CPU and RSS summed over the three processes; CPU-s per GiB is over W1's keys and values.",
			fmt.Sprintf("moldau3, kafka3 leader kill: 2 idempotent acks=all producers (franz-go, linger 0, metadata refresh after a failure within 250 ms as moldau verify) at %d records/s of 1 KiB in all to a 6-partition topic (-stall-kill %s: %s); after %s the leader of partition 0 gets kill -9 (its process group) and producing goes on for %s; the stall is the longest gap between successive acknowledgements that ends after the kill (internal/verify's measure: partition 0's own, the longest of any partition, and of all acknowledgements together); the topic is then read back and checked with verify.Check. The killed node is not restarted.", o.stallRate, o.stallKill, stallKillNote[o.stallKill], o.stallWarmup, o.stallAfter),
		)
	}
	r.Machine = machineFacts{NumCPU: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				r.Machine.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		r.Machine.MemTotal = strings.Join(strings.Fields(line)[1:], " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Machine.Kernel = strings.TrimSpace(string(b))
	}
	tmp := o.tmpRoot
	if tmp == "" {
		tmp = os.TempDir()
	}
	if out, err := exec.Command("df", "-PT", tmp).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 3 {
			r.Machine.Disk = fmt.Sprintf("%s (%s) mounted on %s", f[0], f[1], f[len(f)-1])
		}
	}
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		line, _, _ := strings.Cut(string(out), "\n")
		r.Machine.Java = strings.TrimSpace(line)
	}
	return r
}

func (r *report) system(key string) *systemResult {
	for _, s := range r.Systems {
		if s.System == key {
			return s
		}
	}
	return nil
}

// newTarget is a target with its status: met or missed when known, else n/a ("not measured"
// when there is no figure).
func newTarget(name, want, measured string, ok, known bool) target {
	st := "n/a"
	if known {
		st = "missed"
		if ok {
			st = "met"
		}
	} else if measured == "" {
		measured = "not measured"
	}
	return target{Name: name, Want: want, Measured: measured, Status: st}
}

// evaluate marks the targets of issue 4.
func (r *report) evaluate() {
	m, k, f, n := r.system("moldau"), r.system("kafka"), r.system("kfake"), r.system("nats")
	r.Targets = nil
	add := func(name, want, measured string, ok, known bool) {
		r.Targets = append(r.Targets, newTarget(name, want, measured, ok, known))
	}
	// atLeast: a ratio a/b that must be >= want.
	atLeast := func(name string, want, a, b float64, known bool) {
		if !known || b == 0 {
			add(name, fmt.Sprintf(">= %.2gx", want), "", false, false)
			return
		}
		ratio := a / b
		measured := fmt.Sprintf("%.2fx", ratio)
		if ratio < want {
			measured += fmt.Sprintf(" (short by %.0f%%)", 100*(1-ratio/want))
		}
		add(name, fmt.Sprintf(">= %.2gx", want), measured, ratio >= want, true)
	}
	// atMost: a ratio a/b that must be <= want.
	atMost := func(name string, want, a, b float64, known bool) {
		if !known || b == 0 {
			add(name, fmt.Sprintf("<= %.2gx", want), "", false, false)
			return
		}
		ratio := a / b
		measured := fmt.Sprintf("%.2fx", ratio)
		if ratio > want {
			measured += fmt.Sprintf(" (%.1f times the allowed)", ratio/want)
		}
		add(name, fmt.Sprintf("<= %.2gx", want), measured, ratio <= want, true)
	}
	limit := func(name string, v, max float64, unit string, known bool) {
		if !known {
			add(name, fmt.Sprintf("<= %g %s", max, unit), "", false, false)
			return
		}
		measured := fmt.Sprintf("%.2f %s", v, unit)
		if v > max {
			measured += fmt.Sprintf(" (over by %.0f%%)", 100*(v/max-1))
		}
		add(name, fmt.Sprintf("<= %g %s", max, unit), measured, v <= max, true)
	}
	mw1, kw1, fw1, nw1 := m.w("W1"), k.w("W1"), f.w("W1"), n.w("W1")
	mbps := func(b *benchResult) float64 {
		if b == nil {
			return 0
		}
		return b.MBPerSec
	}
	atLeast("W1 throughput vs Apache Kafka", 1.2, mbps(mw1), mbps(kw1), mw1 != nil && kw1 != nil)
	atLeast("W1 throughput vs kfake", 1.5, mbps(mw1), mbps(fw1), mw1 != nil && fw1 != nil)
	atLeast("W1 throughput vs NATS JetStream", 1.0, mbps(mw1), mbps(nw1), mw1 != nil && nw1 != nil)
	var direct float64
	for _, d := range []*diskResult{r.Disk, r.DiskEnd} {
		if d != nil && d.Error == "" {
			direct = max(direct, d.DirectMBps)
		}
	}
	atLeast("W1 MB/s vs the disk's dd oflag=direct MB/s (the better of two)", 0.5, mbps(mw1), direct, mw1 != nil && direct > 0)

	mw4, kw4 := m.w("W4"), k.w("W4")
	if mw4 != nil && kw4 != nil {
		atMost("W4 p99 end-to-end latency vs Apache Kafka", 0.5, mw4.P99Ms, kw4.P99Ms, true)
	} else {
		atMost("W4 p99 end-to-end latency vs Apache Kafka", 0.5, 0, 0, false)
	}
	atMost("broker RSS through W1 vs Apache Kafka", 0.25, rss(m), rss(k), rss(m) > 0 && rss(k) > 0)
	atMost("cold start to serving vs Apache Kafka", 0.1, cold(m), cold(k), cold(m) > 0 && cold(k) > 0)
	mw3 := m.w("W3")
	atLeast("W3 consume MB/s vs W1 produce MB/s", 3, mbps(mw3), mbps(mw1), mw3 != nil && mw1 != nil)
	if mw4 != nil {
		limit("W4 p99 end-to-end latency at 20 000 records/s", mw4.P99Ms, 5, "ms", true)
		limit("W4 p99.9 end-to-end latency at 20 000 records/s", mw4.P999Ms, 15, "ms", true)
	} else {
		limit("W4 p99 end-to-end latency at 20 000 records/s", 0, 5, "ms", false)
		limit("W4 p99.9 end-to-end latency at 20 000 records/s", 0, 15, "ms", false)
	}
	mw5 := m.w("W5")
	atLeast("W5 (fsync before ack) vs W1 throughput", 0.5, mbps(mw5), mbps(mw1), mw5 != nil && mw1 != nil)
	limit("Moldau RSS through W1", rss(m), 256, "MiB", rss(m) > 0)
	add("restart with 10 000 partitions holding data", "<= 5 s", "not measured by bench/compare (see the 10 000 partitions section of docs/performance.md)", false, false)
	r.evaluateClusters()
}

func rss(s *systemResult) float64 {
	if s == nil {
		return 0
	}
	return s.RSSW1MiB
}

func cold(s *systemResult) float64 {
	if s == nil {
		return 0
	}
	return s.ColdStartMs
}

// row is one line of the table: a figure per system, and whether higher is better.
type row struct {
	label string
	get   func(*systemResult) (float64, bool)
	disk  func(*diskResult) (float64, bool)
	prec  int
	plain bool   // no ratio column
	cpu   string // a "broker / bench" CPU-seconds cell of this workload (the ratio is the broker's)
}

func field(name string, f func(*benchResult) float64) func(*systemResult) (float64, bool) {
	return func(s *systemResult) (float64, bool) {
		if b := s.w(name); b != nil {
			return f(b), true
		}
		return 0, false
	}
}

var (
	rps  = func(b *benchResult) float64 { return b.RecordsPerSec }
	mb   = func(b *benchResult) float64 { return b.MBPerSec }
	p50  = func(b *benchResult) float64 { return b.P50Ms }
	p99  = func(b *benchResult) float64 { return b.P99Ms }
	p999 = func(b *benchResult) float64 { return b.P999Ms }
	pmax = func(b *benchResult) float64 { return b.MaxMs }
)

var rows = []row{
	{label: "W1 produce 1 KiB, records/s", get: field("W1", rps)},
	{label: "W1 produce 1 KiB, MB/s", get: field("W1", mb), prec: 1,
		disk: func(d *diskResult) (float64, bool) { return d.DirectMBps, d.DirectMBps > 0 }},
	{label: "W1 produce→ack p50 / p99 ms (ratio of p99)", get: field("W1", p99), prec: 1},
	{label: "W2 produce 100 B, records/s", get: field("W2", rps)},
	{label: "W2 produce 100 B, MB/s", get: field("W2", mb), prec: 1},
	{label: "W2 produce→ack p99 ms", get: field("W2", p99), prec: 1},
	{label: "W3 consume W1, records/s", get: field("W3", rps)},
	{label: "W3 consume W1, MB/s", get: field("W3", mb), prec: 1},
	{label: "W4 e2e p50 ms", get: field("W4", p50), prec: 2},
	{label: "W4 e2e p99 ms", get: field("W4", p99), prec: 2},
	{label: "W4 e2e p99.9 ms", get: field("W4", p999), prec: 2},
	{label: "W4 e2e max ms", get: field("W4", pmax), prec: 2},
	{label: "W4 e2e records/s", get: field("W4", rps)},
	{label: "W5 fsync before ack, records/s", get: field("W5", rps)},
	{label: "W5 fsync before ack, MB/s", get: field("W5", mb), prec: 1,
		disk: func(d *diskResult) (float64, bool) { return d.FdatasyncMBps, d.FdatasyncMBps > 0 }},
	{label: "W5 fsync before ack, produce→ack p99 ms", get: field("W5", p99), prec: 1},
	{label: "W6 fsync before ack, e2e p50 ms", get: field("W6", p50), prec: 2},
	{label: "W6 fsync before ack, e2e p99 ms", get: field("W6", p99), prec: 2},
	{label: "W6 fsync before ack, e2e p99.9 ms", get: field("W6", p999), prec: 2},
	{label: "W7 transactional produce (100 records/txn, commit each), records/s", get: field("W7", rps)},
	{label: "W7 commit (EndTxn) p50 ms", get: field("W7", p50), prec: 2},
	{label: "W7 commit (EndTxn) p99 ms", get: field("W7", p99), prec: 2},
	{label: "W7 commit (EndTxn) max ms", get: field("W7", pmax), prec: 2},
	{label: "W5 / W1 throughput", get: func(s *systemResult) (float64, bool) {
		w1, w5 := s.w("W1"), s.w("W5")
		if w1 == nil || w5 == nil || w1.MBPerSec == 0 {
			return 0, false
		}
		return w5.MBPerSec / w1.MBPerSec, true
	}, prec: 2},
	{label: "W1 CPU-s broker / load generator", get: field("W1", func(b *benchResult) float64 { return b.BrokerCPUSec }), prec: 1, cpu: "W1"},
	{label: "W3 CPU-s broker / load generator", get: field("W3", func(b *benchResult) float64 { return b.BrokerCPUSec }), prec: 1, cpu: "W3"},
	{label: "RSS peak through W1, MiB", get: func(s *systemResult) (float64, bool) { return s.RSSW1MiB, s.RSSW1MiB > 0 }},
	{label: "cold start to serving, ms", get: func(s *systemResult) (float64, bool) { return s.ColdStartMs, s.ColdStartMs > 0 }},
	{label: "machine idle % before W1 (shared)", get: func(s *systemResult) (float64, bool) {
		if b := s.Workloads["W1"]; b != nil {
			return b.IdleBefore, true
		}
		return 0, false
	}, plain: true},
}

// table writes the results as a Markdown table: one column per system, the disk's figures, and
// Moldau's figure divided by each peer's.
func (r *report) table(w io.Writer) {
	m := r.system("moldau")
	var peers []*systemResult
	for _, s := range r.Systems {
		if s.System != "moldau" {
			peers = append(peers, s)
		}
	}
	hdr := []string{"workload / figure"}
	for _, s := range r.Systems {
		hdr = append(hdr, s.Title)
	}
	if r.Disk != nil {
		hdr = append(hdr, "disk (dd)")
	}
	if m != nil {
		for _, p := range peers {
			hdr = append(hdr, "Moldau/"+p.Title)
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(hdr)))
	num := func(v float64, prec int) string {
		if prec == 0 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	for _, rw := range rows {
		cells := []string{rw.label}
		if rw.cpu != "" {
			for _, s := range r.Systems {
				if b := s.w(rw.cpu); b != nil {
					cells = append(cells, fmt.Sprintf("%.2f / %.2f", b.BrokerCPUSec, b.BenchCPUSec))
				} else {
					cells = append(cells, "–")
				}
			}
		} else if strings.Contains(rw.label, "p50 / p99") { // two figures in one cell
			for _, s := range r.Systems {
				if b := s.w("W1"); b != nil {
					cells = append(cells, fmt.Sprintf("%.1f / %.1f", b.P50Ms, b.P99Ms))
				} else {
					cells = append(cells, "–")
				}
			}
		} else {
			for _, s := range r.Systems {
				if v, ok := rw.get(s); ok {
					cells = append(cells, num(v, rw.prec))
				} else {
					cells = append(cells, "–")
				}
			}
		}
		if r.Disk != nil {
			if rw.disk != nil {
				var figs []string
				for _, d := range []*diskResult{r.Disk, r.DiskEnd} {
					if d == nil {
						continue
					}
					if v, ok := rw.disk(d); ok {
						figs = append(figs, num(v, rw.prec))
					} else {
						figs = append(figs, "–")
					}
				}
				label := " direct"
				if strings.HasPrefix(rw.label, "W5") {
					label = " buffered+fdatasync"
				}
				cells = append(cells, strings.Join(figs, " / ")+label)
			} else {
				cells = append(cells, "")
			}
		}
		if m != nil {
			mv, mok := rw.get(m)
			for _, p := range peers {
				pv, pok := rw.get(p)
				if mok && pok && pv != 0 && !rw.plain {
					cells = append(cells, fmt.Sprintf("%.2fx", mv/pv))
				} else {
					cells = append(cells, "–")
				}
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// durability writes the durability cost matrix: per system with a disk, without fsync on the
// write path (W1, W4) and with fsync before ack (W5, W6).
func (r *report) durability(w io.Writer) {
	fmt.Fprintf(w, "| system | fsync before ack | W1/W5 produce MB/s | W1/W5 produce→ack p99 ms | W4/W6 e2e p50 ms | W4/W6 e2e p99 ms | W4/W6 e2e p99.9 ms |\n|---|---|---:|---:|---:|---:|---:|\n")
	cell := func(b *benchResult, f func(*benchResult) float64, prec int) string {
		if b == nil {
			return "–"
		}
		return fmt.Sprintf("%.*f", prec, f(b))
	}
	for _, s := range r.Systems {
		if s.w("W5") == nil && s.w("W6") == nil {
			continue
		}
		for _, mode := range []struct{ label, produce, e2e string }{{"off", "W1", "W4"}, {"on", "W5", "W6"}} {
			label := mode.label
			if s.System == "moldau" {
				if mode.label == "on" {
					label += " (Moldau's default)"
				} else if !r.MoldauDefaults {
					label += " (log.flush.interval.messages=" + kafkaNoFlush + ")"
				}
			} else if s.System == "kafka" && mode.label == "off" {
				label += " (Kafka's default)"
			}
			pw, ew := s.w(mode.produce), s.w(mode.e2e)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", s.Title, label,
				cell(pw, mb, 1), cell(pw, p99, 1), cell(ew, p50, 2), cell(ew, p99, 2), cell(ew, p999, 2))
		}
	}
}

func (r *report) targets(w io.Writer) {
	fmt.Fprintf(w, "| target (issue 4) | want | measured | status |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, t.Status)
	}
}

// write prints the table and the targets to w and saves the JSON (and a Markdown copy) under
// bench/compare/results unless out names another file.
func (r *report) write(out, repo string, w io.Writer) error {
	var md strings.Builder
	fmt.Fprintf(&md, "Command: `%s`\n\n", r.Command)
	fmt.Fprintf(&md, "Moldau built from the %s.\n\n", r.Source)
	fmt.Fprintf(&md, "Machine: %d CPUs (%s), %s, %s; %s; Go %s; %s. Load average at start %q, at end %q.\n\n",
		r.Machine.NumCPU, r.Machine.CPUModel, r.Machine.MemTotal, r.Machine.Kernel, r.Machine.Disk, r.Machine.Go, r.Machine.Java, r.LoadAvg, r.LoadAvgEnd)
	if r.Interrupted {
		md.WriteString("**Interrupted: the figures are incomplete.**\n\n")
	}
	if len(r.Systems) > 0 || r.Disk != nil {
		r.table(&md)
		md.WriteString("\nThe disk column is dd of W1's byte count at the start / at the end of the run. ")
		md.WriteString("Ratios are Moldau's figure divided by the peer's: above 1 is better for throughput, below 1 is better for latency, RSS and start time.\n\n")
		md.WriteString("Durability cost (fsync on/off, same run):\n\n")
		r.durability(&md)
		md.WriteString("\n")
		r.targets(&md)
	}
	if r.Observe != nil {
		r.Observe.table(&md)
	}
	if len(r.Clusters) > 0 {
		md.WriteString("\nThree nodes on this machine, every topic with replication factor 3 and min.insync.replicas=2:\n\n")
		r.clusterTable(&md)
		md.WriteString("\n")
		fmt.Fprintf(&md, "| target (issue 8) | want | measured | status |\n|---|---|---|---|\n")
		for _, t := range r.ClusterTargets {
			fmt.Fprintf(&md, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, t.Status)
		}
	}
	md.WriteString("\nNotes:\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&md, "- %s\n", n)
	}
	for _, s := range append(slices.Clone(r.Systems), r.Clusters...) {
		for _, e := range s.Errors {
			fmt.Fprintf(&md, "\n- %s error: %s", s.Title, e)
		}
	}
	for _, d := range []*diskResult{r.Disk, r.DiskEnd} {
		if d != nil && d.Error != "" {
			fmt.Fprintf(&md, "\n- disk error: %s", d.Error)
		}
	}
	md.WriteString("\n")
	fmt.Fprint(w, "\n"+md.String())

	if out == "" {
		out = filepath.Join(repo, "bench", "compare", "results", "compare-"+r.Started.Format("20060102-150405")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	mdPath := strings.TrimSuffix(out, ".json") + ".md"
	if err := os.WriteFile(mdPath, []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nresults: %s and %s\n", out, mdPath)
	return nil
}

var stallKillNote = map[string]string{
	stallKillNotQuorumLeader: "created with a replica assignment that puts partition 0's leader on a node that is not the metadata quorum's leader, the other partitions' leaders round-robin",
	stallKillQuorumLeader:    "created with a replica assignment that puts partition 0's leader on the metadata quorum's leader (its kill needs a quorum election too), the other partitions' leaders round-robin",
	stallKillAsPlaced:        "partitions placed by the cluster",
}

// gib is 2^30 bytes: MB in these reports is 2^20, as in `moldau bench`.
const gib = 1 << 30

// cpuPerGiB is the broker CPU seconds (a cluster: summed over its nodes) per GiB of keys and
// values the load generator wrote.
func cpuPerGiB(b *benchResult) (float64, bool) {
	if b == nil || b.Bytes <= 0 {
		return 0, false
	}
	return b.BrokerCPUSec / (float64(b.Bytes) / gib), true
}

// crow is one line of the cluster table: a figure per cluster system (and its text), and
// whether Moldau's divided by Kafka's means anything.
type crow struct {
	label string
	get   func(*systemResult) (text string, v float64, ok bool)
	ratio bool
}

func num(prec int, f func(*systemResult) (float64, bool)) func(*systemResult) (string, float64, bool) {
	return func(s *systemResult) (string, float64, bool) {
		v, ok := f(s)
		if !ok {
			return "–", 0, false
		}
		return fmt.Sprintf("%.*f", prec, v), v, true
	}
}

func stallField(f func(*stallResult) (float64, bool)) func(*systemResult) (float64, bool) {
	return func(s *systemResult) (float64, bool) {
		if s.Stall == nil || s.Stall.Error != "" {
			return 0, false
		}
		return f(s.Stall)
	}
}

var clusterRows = []crow{
	{label: "W1 produce 1 KiB, RF=3, acks=all, records/s", get: num(0, field("W1", rps)), ratio: true},
	{label: "W1 produce 1 KiB, RF=3, acks=all, MB/s", get: num(1, field("W1", mb)), ratio: true},
	{label: "W1 produce→ack p50 / p99 ms (ratio of p99)", get: func(s *systemResult) (string, float64, bool) {
		if b := s.w("W1"); b != nil {
			return fmt.Sprintf("%.1f / %.1f", b.P50Ms, b.P99Ms), b.P99Ms, true
		}
		return "–", 0, false
	}, ratio: true},
	{label: "W1 CPU-s, 3 brokers summed / load generator (ratio of the brokers')", get: func(s *systemResult) (string, float64, bool) {
		if b := s.w("W1"); b != nil {
			return fmt.Sprintf("%.2f / %.2f", b.BrokerCPUSec, b.BenchCPUSec), b.BrokerCPUSec, true
		}
		return "–", 0, false
	}, ratio: true},
	{label: "W1 broker CPU-s per GiB produced (3 brokers summed)", get: num(2, func(s *systemResult) (float64, bool) { return cpuPerGiB(s.w("W1")) }), ratio: true},
	{label: "W4 e2e at 20 000 records/s, RF=3: p50 ms", get: num(2, field("W4", p50)), ratio: true},
	{label: "W4 e2e p99 ms", get: num(2, field("W4", p99)), ratio: true},
	{label: "W4 e2e p99.9 ms", get: num(2, field("W4", p999)), ratio: true},
	{label: "W4 e2e max ms", get: num(2, field("W4", pmax)), ratio: true},
	{label: "W4 e2e records/s", get: num(0, field("W4", rps)), ratio: true},
	{label: "leader kill -9: partition 0 stall ms (longest gap between its acks after the kill)", get: func(s *systemResult) (string, float64, bool) {
		st := s.Stall
		if st == nil || st.Error != "" {
			return "–", 0, false
		}
		t := fmt.Sprintf("%d", st.Partition0StallMs)
		if !st.Partition0Recovered {
			t = fmt.Sprintf("≥ %d (no acknowledgement after the kill)", st.Partition0StallMs)
		}
		return t, float64(st.Partition0StallMs), true
	}, ratio: true},
	{label: "leader kill -9: longest stall of any partition, ms", get: num(0, stallField(func(st *stallResult) (float64, bool) {
		return float64(st.MaxPartitionStallMs), true
	})), ratio: true},
	{label: "leader kill -9: longest gap between any acks, ms (moldau verify's stall)", get: num(0, stallField(func(st *stallResult) (float64, bool) {
		return float64(st.AnyAckStallMs), true
	})), ratio: true},
	{label: "leader kill -9: killed node / quorum leader before / partition 0 leader after", get: func(s *systemResult) (string, float64, bool) {
		st := s.Stall
		if st == nil || st.KilledNode < 0 {
			return "–", 0, false
		}
		return fmt.Sprintf("%d / %d / %d", st.KilledNode, st.QuorumLeader, st.NewLeader), 0, true
	}},
	{label: "leader kill -9: acknowledged / lost / duplicated / reordered (read back)", get: func(s *systemResult) (string, float64, bool) {
		st := s.Stall
		if st == nil || st.Error != "" {
			return "–", 0, false
		}
		v := st.Verify
		return fmt.Sprintf("%d / %d / %d / %d", v.Acknowledged, v.Lost, v.Duplicated, v.Reordered), 0, true
	}},
	{label: "RSS peak through W1, MiB, 3 nodes summed", get: num(0, func(s *systemResult) (float64, bool) { return s.RSSW1MiB, s.RSSW1MiB > 0 }), ratio: true},
	{label: "cold start to 3 brokers serving, ms", get: num(0, func(s *systemResult) (float64, bool) { return s.ColdStartMs, s.ColdStartMs > 0 }), ratio: true},
	{label: "machine idle % before W1 (shared)", get: func(s *systemResult) (string, float64, bool) {
		if b := s.Workloads["W1"]; b != nil {
			return fmt.Sprintf("%.0f", b.IdleBefore), b.IdleBefore, true
		}
		return "–", 0, false
	}},
}

func (r *report) cluster(key string) *systemResult {
	for _, s := range r.Clusters {
		if s.System == key {
			return s
		}
	}
	return nil
}

// clusterTable writes the three-node results: one column per cluster system and Moldau's figure
// divided by Kafka's.
func (r *report) clusterTable(w io.Writer) {
	m, k := r.cluster("moldau3"), r.cluster("kafka3")
	hdr := []string{"three nodes, RF=3, min.insync.replicas=2"}
	for _, s := range r.Clusters {
		hdr = append(hdr, s.Title)
	}
	if m != nil && k != nil {
		hdr = append(hdr, "Moldau/Kafka")
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(hdr)))
	for _, rw := range clusterRows {
		cells := []string{rw.label}
		for _, s := range r.Clusters {
			t, _, _ := rw.get(s)
			cells = append(cells, t)
		}
		if m != nil && k != nil {
			_, mv, mok := rw.get(m)
			_, kv, kok := rw.get(k)
			if rw.ratio && mok && kok && kv != 0 {
				cells = append(cells, fmt.Sprintf("%.2fx", mv/kv))
			} else {
				cells = append(cells, "–")
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// evaluateClusters marks the benchmark targets of issue 8 (three nodes, RF=3).
func (r *report) evaluateClusters() {
	r.ClusterTargets = nil
	if len(r.Clusters) == 0 {
		return
	}
	m, k := r.cluster("moldau3"), r.cluster("kafka3")
	add := func(name, want, measured string, ok, known bool) {
		r.ClusterTargets = append(r.ClusterTargets, newTarget(name, want, measured, ok, known))
	}
	mw1, kw1 := m.w("W1"), k.w("W1")
	if mw1 != nil && kw1 != nil && kw1.MBPerSec > 0 {
		ratio := mw1.MBPerSec / kw1.MBPerSec
		add("W1 with RF=3: throughput vs Kafka's (3 nodes each)", ">= 1.5x", fmt.Sprintf("%.2fx (%.1f vs %.1f MB/s)", ratio, mw1.MBPerSec, kw1.MBPerSec), ratio >= 1.5, true)
	} else {
		add("W1 with RF=3: throughput vs Kafka's (3 nodes each)", ">= 1.5x", "", false, false)
	}
	mc, mok := cpuPerGiB(mw1)
	kc, kok := cpuPerGiB(kw1)
	if mok && kok && kc > 0 {
		ratio := mc / kc
		add("W1 with RF=3: broker CPU-s per GB vs Kafka's (3 brokers summed)", "<= 0.4x", fmt.Sprintf("%.2fx (%.2f vs %.2f CPU-s/GiB)", ratio, mc, kc), ratio <= 0.4, true)
	} else {
		add("W1 with RF=3: broker CPU-s per GB vs Kafka's (3 brokers summed)", "<= 0.4x", "", false, false)
	}
	if m != nil && m.Stall != nil && m.Stall.Error == "" {
		st := m.Stall
		measured := fmt.Sprintf("%.2f s (partition 0; Kafka: %s)", float64(st.Partition0StallMs)/1000, kafkaStall(k))
		add("produce stall after kill -9 of partition 0's leader", "<= 2 s", measured, st.Partition0Recovered && st.Partition0StallMs <= 2000, true)
		add("acknowledged records lost across the leader kill", "0", fmt.Sprintf("%d of %d (Moldau)", st.Verify.Lost, st.Verify.Acknowledged), st.Verify.Lost == 0 && st.Verify.Acknowledged > 0, true)
	} else {
		add("produce stall after kill -9 of partition 0's leader", "<= 2 s", "", false, false)
	}
	mw4 := m.w("W4")
	if mw4 != nil {
		kt := "–"
		if kw4 := k.w("W4"); kw4 != nil {
			kt = fmt.Sprintf("%.2f ms", kw4.P99Ms)
		}
		add("W4 e2e p99 at 20 000 records/s with RF=3 (measured; no target)", "–", fmt.Sprintf("%.2f ms (Kafka: %s)", mw4.P99Ms, kt), false, false)
	}
}

func kafkaStall(k *systemResult) string {
	if k == nil || k.Stall == nil || k.Stall.Error != "" {
		return "not measured"
	}
	if !k.Stall.Partition0Recovered {
		return fmt.Sprintf("≥ %.2f s, not recovered", float64(k.Stall.Partition0StallMs)/1000)
	}
	return fmt.Sprintf("%.2f s", float64(k.Stall.Partition0StallMs)/1000)
}
