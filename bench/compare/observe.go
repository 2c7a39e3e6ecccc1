package main

// -observe: what watching the broker costs. Moldau's W1 runs in rounds against a fresh broker
// each time, in four variants:
//
//	moldau                 nobody watching
//	moldau+scraped         only the scrape of /metrics every -observe-interval: the broker's own
//	                       cost, without a browser on the same CPUs
//	moldau+observed        a Prometheus-like scrape of /metrics every -observe-interval (the whole
//	                       body read, gzip as Prometheus asks for it) and the web console's overview
//	                       page (#/) open in headless chromium, driven by chromedp
//	moldau+observed-group  the same scrape and the console on the page of a consumer group (#/groups/ID)
//
// The order alternates (off, scraped, overview, group, then group, overview, scraped, off, ...), so that a drift of
// the shared machine during the run falls on every variant alike. Every variant's broker gets the
// same setup before W1: topic w1 created with W1's 6 partitions and a consumer group (observeGroup)
// with offset 0 committed on every partition and no members, so that its lag grows through W1 as a
// group's that has stopped reading does.

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// observeGroup is the consumer group the group variant's console page shows.
const observeGroup = "observe-lag"

// observeVariant is one way of running W1 under -observe.
type observeVariant struct {
	key, title string
	short      string // in the order and the targets
	scrape     bool   // scrape /metrics every -observe-interval
	page       string // the console's hash route open in chromium; "" = no browser
	// poll are admin API paths the harness GETs every consolePollInterval, as the console's
	// page would, without a browser (to tell the API's cost from the browser's).
	poll []string
}

// consolePollInterval is the console pages' refresh period (Context.every in app.js).
const consolePollInterval = 2 * time.Second

// allObserveVariants are the variants -observe-variants chooses from; the unobserved one is
// always run, first in each round's order.
var allObserveVariants = []observeVariant{
	{key: "moldau", title: "Moldau", short: "off"},
	{key: "moldau+scraped", title: "Moldau scraped (no console)", short: "scraped", scrape: true},
	{key: "moldau+observed", title: "Moldau observed (overview)", short: "overview", scrape: true, page: "#/"},
	{key: "moldau+observed-group", title: "Moldau observed (group page)", short: "group", scrape: true, page: "#/groups/" + observeGroup},
	{key: "moldau+polled-group", title: "Moldau scraped + group API polled (no browser)", short: "groupapi", scrape: true,
		poll: []string{"/api/v1/groups/" + observeGroup, "/api/v1/groups/" + observeGroup + "/lag"}},
}

// observeVariants is the default -observe-variants.
var observeVariants = allObserveVariants[:4]

// parseObserveVariants is the variants named in list (their short names, comma separated), the
// unobserved one first whether named or not.
func parseObserveVariants(list string) ([]observeVariant, error) {
	out := []observeVariant{allObserveVariants[0]}
	var known []string
	for _, v := range allObserveVariants {
		known = append(known, v.short)
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" || name == allObserveVariants[0].short {
			continue
		}
		i := slices.IndexFunc(allObserveVariants, func(v observeVariant) bool { return v.short == name })
		if i < 0 {
			return nil, fmt.Errorf("-observe-variants: unknown variant %q (want some of %s)", name, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out, func(v observeVariant) bool { return v.short == name }) {
			out = append(out, allObserveVariants[i])
		}
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("-observe-variants: name at least one observed variant (%s)", strings.Join(known[1:], ", "))
	}
	return out, nil
}

// observeOrder is the order of the runs: rounds times every variant, forwards in even rounds
// and backwards in odd ones (ABC CBA ...), so each variant's mean position in the run is the same
// for an even number of rounds.
func observeOrder(variants []observeVariant, rounds int) [][]observeVariant {
	out := make([][]observeVariant, rounds)
	for r := range rounds {
		vs := slices.Clone(variants)
		if r%2 == 1 {
			slices.Reverse(vs)
		}
		out[r] = vs
	}
	return out
}

// observeOrderText is observeOrder as text: "off, overview, group | group, overview, off".
func observeOrderText(variants []observeVariant, rounds int) string {
	var rs []string
	for _, vs := range observeOrder(variants, rounds) {
		var names []string
		for _, v := range vs {
			names = append(names, v.short)
		}
		rs = append(rs, strings.Join(names, ", "))
	}
	return strings.Join(rs, " | ")
}

// observeReport is the -observe part of the report.
type observeReport struct {
	IntervalMs float64           `json:"scrape_interval_ms"`
	Rounds     int               `json:"rounds"`
	Chromium   string            `json:"chromium"`
	HTTPKey    string            `json:"http_listener_key"` // the config key that set the HTTP listener
	Runs       []*observeRun     `json:"runs"`              // in the order they ran
	Summary    []*observeSummary `json:"summary"`           // per variant
	Variants   []observeVariant  `json:"-"`                 // as run, the unobserved one first
}

// observeRun is one W1 run of one variant.
type observeRun struct {
	Round       int           `json:"round"`
	Variant     string        `json:"variant"`
	W1          *benchResult  `json:"w1,omitempty"`
	ColdStartMs float64       `json:"cold_start_ms"`
	RSSW1MiB    float64       `json:"rss_w1_mib"`
	Scrape      *scrapeStats  `json:"scrape,omitempty"`
	Console     *consoleStats `json:"console,omitempty"`
	// Polls are the admin API GETs of a variant with poll paths (no browser), PollErrors the
	// ones that failed.
	Polls int `json:"api_polls,omitempty"`
	// Toggled is the window-by-window comparison of an -observe-toggle run.
	Toggled    *toggleStats `json:"toggled,omitempty"`
	PollErrors int          `json:"api_poll_errors,omitempty"`
	// HarnessCPUSec is this process's CPU time through the workload: the scraper and chromedp
	// (the load generator is a process of its own).
	HarnessCPUSec float64 `json:"harness_cpu_sec"`
	// CPUs are the machine's CPUs, for the observers' share of its CPU time.
	CPUs  int    `json:"cpus,omitempty"`
	Error string `json:"error,omitempty"`
}

// observerShare is the observers' CPU time (chromium's processes and this harness's scraper and
// chromedp) over the machine's CPU time through r's workload: what observing took from the
// broker and the load generator on a machine they keep busy. -1 when it cannot be told.
func (r *observeRun) observerShare() float64 {
	if r.W1 == nil || r.W1.RecordsPerSec <= 0 || r.CPUs <= 0 {
		return -1
	}
	cpu := r.HarnessCPUSec
	if r.Console != nil {
		cpu += r.Console.ChromiumCPUSec
	}
	return cpu / (float64(r.CPUs) * float64(r.W1.Records) / r.W1.RecordsPerSec)
}

// observeSummary is one variant over its rounds.
type observeSummary struct {
	Variant       string    `json:"variant"`
	Title         string    `json:"title"`
	Runs          int       `json:"runs"` // complete W1 runs
	RecordsPerSec []float64 `json:"records_per_sec"`
	MeanRPS       float64   `json:"mean_records_per_sec"`
	MeanMBps      float64   `json:"mean_mb_per_sec"`
	// VsOff is the mean throughput against the unobserved variant's, minus 1 (-0.02: 2 % slower).
	VsOff         float64 `json:"vs_off"`
	MeanP50Ms     float64 `json:"mean_p50_ms"`
	MeanP99Ms     float64 `json:"mean_p99_ms"`
	MeanBrokerCPU float64 `json:"mean_broker_cpu_sec"`
	// Spread is (max - min) / mean of the runs' records/s: the run-to-run noise.
	Spread float64 `json:"spread"`
	// Paired is, per round where both ran, this variant's records/s against the unobserved run of
	// the same round, minus 1: a drift of the machine between rounds cancels out of each
	// difference. PairedMean is their mean and PairedSE its standard error (0 with one round).
	Paired     []float64 `json:"paired_vs_off,omitempty"`
	PairedMean float64   `json:"paired_vs_off_mean"`
	PairedSE   float64   `json:"paired_vs_off_se"`
	// Pooled over the runs' scrapes.
	Scrapes       int     `json:"scrapes"`
	ScrapeErrors  int     `json:"scrape_errors"`
	ScrapeP50Ms   float64 `json:"scrape_p50_ms"`
	ScrapeP99Ms   float64 `json:"scrape_p99_ms"`
	ScrapeMaxMs   float64 `json:"scrape_max_ms"`
	ScrapeBytes   int64   `json:"scrape_bytes_max"`      // the largest body, uncompressed
	ScrapeWire    int64   `json:"scrape_wire_bytes_max"` // the same scrape's bytes on the wire (gzip)
	ScrapeSeries  int     `json:"scrape_series_max"`     // sample lines of the largest body
	ConsoleAPI    int     `json:"console_api_requests"`  // summed over the runs
	ConsoleErrors int     `json:"console_api_errors"`    // HTTP >= 400 or failed
	Exceptions    int     `json:"console_exceptions"`
	ChromiumCPU   float64 `json:"mean_chromium_cpu_sec"`
	HarnessCPU    float64 `json:"mean_harness_cpu_sec"`
	// ObserverShare is the mean of the runs' observerShare (-1: none known).
	ObserverShare float64 `json:"mean_observer_cpu_share"`
}

// observer is started by bench right before the load generator and stopped right after it.
type observer interface {
	begin()
	end()
}

// observers runs several observers together.
type observers []observer

func (o observers) begin() {
	for _, x := range o {
		x.begin()
	}
}

func (o observers) end() {
	for _, x := range o {
		x.end()
	}
}

// httpArgs are the moldau server flags that put its HTTP listener (/metrics, the console) on
// the address runObserve chose for the broker in dir; none for any other broker.
func (h *harness) httpArgs(dir string) []string {
	h.httpMu.Lock()
	addr, ok := h.httpAddrs[dir]
	h.httpMu.Unlock()
	if !ok {
		return nil
	}
	return []string{"--override", h.httpKey() + "=" + addr}
}

// httpKey is the config key of the HTTP listener of the Moldau built: http.listener, or before
// it existed metrics.listener (which served /metrics and a placeholder console at /).
func (h *harness) httpKey() string {
	h.httpKeyOnce.Do(func() {
		h.httpKeyName = "metrics.listener"
		out, _ := exec.Command(h.bin("moldau"), "server", "--help").CombinedOutput()
		if bytes.Contains(out, []byte("http.listener")) {
			h.httpKeyName = "http.listener"
		}
	})
	return h.httpKeyName
}

// chromiumPath is -chromium, else $CHROMIUM, else chromium on $PATH.
func (h *harness) chromiumPath() (string, error) {
	for _, p := range []string{h.opts.chromium, os.Getenv("CHROMIUM")} {
		if p != "" {
			return exec.LookPath(p)
		}
	}
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("-observe opens the console in chromium and found none (apt-get install chromium, or -chromium PATH)")
}

// runObserve runs s's W1 in -observe-rounds rounds of every variant, each against a fresh broker,
// and returns one result per variant (its W1 the mean of its runs).
func (h *harness) runObserve(ctx context.Context, s *system) []*systemResult {
	chromium, chromiumErr := h.chromiumPath()
	variants := h.opts.observeVariants
	obs := &observeReport{IntervalMs: float64(h.opts.observeInterval) / 1e6, Rounds: h.opts.observeRounds, Chromium: chromium, HTTPKey: h.httpKey(), Variants: variants}
	if chromiumErr == nil {
		if out, err := exec.Command(chromium, "--version").Output(); err == nil {
			obs.Chromium = strings.TrimSpace(string(out)) + " (" + chromium + ")"
		}
	}
	h.report.Observe = obs
	h.report.Notes = append(h.report.Notes, fmt.Sprintf("-observe: Moldau's W1 %d times in each of %d variants, in the order %s, each run against a fresh broker with its HTTP listener on a free port (%s) "+
		"and the same setup: topic w1 created with 6 partitions and group %s with offset 0 committed on each partition and no members (its lag grows through W1). "+
		"Observed: a scraper in the harness GETs /metrics every %s (Prometheus's Accept header, gzip, 10 s timeout, the whole body read; latency is request to last byte) while the load generator runs, "+
		"and headless chromium (chromedp; --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync, a fresh profile) has the console open "+
		"on its overview (#/) or on the group's page (#/groups/%s), opened before the workload; the console polls the API itself. Chromium runs on the same 2 CPUs as the broker: its CPU time is in the table. "+
		"Moldau's column in the main table is the unobserved variant's mean, the observed ones are the other columns.",
		h.opts.observeRounds, len(variants), observeOrderText(variants, h.opts.observeRounds), obs.HTTPKey, observeGroup, h.opts.observeInterval, observeGroup))
	results := map[string]*systemResult{}
	for _, v := range variants {
		results[v.key] = &systemResult{System: v.key, Title: v.title, Workloads: map[string]*benchResult{}, LoadAvgStart: loadAvg()}
	}
	w1 := h.workloads()["W1"]
	n := 0
rounds:
	for round, vs := range observeOrder(variants, h.opts.observeRounds) {
		for _, v := range vs {
			if ctx.Err() != nil {
				break rounds
			}
			if h.opts.observeToggle > 0 && v.key == variants[0].key {
				continue // the off windows of each run are its comparison
			}
			n++
			run := &observeRun{Round: round + 1, Variant: v.key}
			obs.Runs = append(obs.Runs, run)
			res := results[v.key]
			if v.page != "" && chromiumErr != nil {
				run.Error = chromiumErr.Error()
				res.fail("round %d: %v", round+1, chromiumErr)
				continue
			}
			if err := h.observeRun(ctx, s, v, n, w1, chromium, run); err != nil {
				run.Error = err.Error()
				res.fail("round %d: %v", round+1, err)
			}
		}
	}
	var out []*systemResult
	for _, v := range variants {
		res := results[v.key]
		var runs []*observeRun
		for _, r := range obs.Runs {
			if r.Variant == v.key {
				runs = append(runs, r)
			}
		}
		if w := meanBench(runs); w != nil {
			res.Workloads["W1"] = w
		}
		for _, r := range runs {
			res.ColdStartMs += r.ColdStartMs / float64(len(runs))
			res.RSSW1MiB += r.RSSW1MiB / float64(len(runs))
		}
		out = append(out, res)
	}
	obs.Summary = summarize(variants, obs.Runs)
	return out
}

// observeRun starts a fresh broker with its HTTP listener on a free port, sets up topic w1 and
// the group, opens the console if the variant has a page, runs W1 with the variant's observers
// and stops everything.
func (h *harness) observeRun(ctx context.Context, s *system, v observeVariant, n int, w1 workload, chromium string, run *observeRun) error {
	sc := *s
	sc.key = fmt.Sprintf("%s-observe-%d", s.key, n) // the directory and the log prefix
	dir := filepath.Join(h.tmp, sc.key)
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	h.httpMu.Lock()
	if h.httpAddrs == nil {
		h.httpAddrs = map[string]string{}
	}
	h.httpAddrs[dir] = httpAddr
	h.httpMu.Unlock()
	h.logf("observe round %d: %s (run %d, http %s)", run.Round, v.key, n, httpAddr)

	res := &systemResult{System: sc.key, Workloads: map[string]*benchResult{}}
	p, addr, _, err := h.startSystem(ctx, &sc, false, res)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	run.ColdStartMs = res.ColdStartMs
	defer func() {
		h.stopSystem(&sc, p, dir, res)
		if len(res.Errors) > 0 && run.Error == "" {
			run.Error = strings.Join(res.Errors, "; ")
		}
	}()
	if err := setupObserveGroup(ctx, addr); err != nil {
		return fmt.Errorf("set up topic w1 and group %s: %w", observeGroup, err)
	}

	var obs observers
	var sc1 *scraper
	if v.scrape {
		sc1 = newScraper("http://"+httpAddr+"/metrics", h.opts.observeInterval)
		obs = append(obs, sc1)
	}
	var pl *poller
	if len(v.poll) > 0 {
		pl = &poller{base: "http://" + httpAddr, paths: v.poll, every: consolePollInterval}
		obs = append(obs, pl)
	}
	var br *consoleBrowser
	if v.page != "" {
		br, err = openConsole(ctx, chromium, dir, "http://"+httpAddr+"/"+v.page)
		if err != nil {
			return fmt.Errorf("open the console: %w", err)
		}
		defer br.close()
		obs = append(obs, br)
	}
	cpu := &selfCPU{}
	obs = append(obs, cpu)
	w := w1
	w.observe = obs
	var tg *toggler
	if h.opts.observeToggle > 0 {
		tg = &toggler{obs: obs, every: h.opts.observeToggle}
		w.observe = tg
		w.kafk = append(slices.Clone(w.kafk), "-progress", "1s") // the windows' resolution
	}
	b, err := h.bench(ctx, &sc, []int{p.pid()}, addr, dir, w)
	run.W1 = b
	run.HarnessCPUSec = cpu.sec
	run.CPUs = runtime.NumCPU()
	if tg != nil && b != nil {
		points, perr := readProgress(filepath.Join(dir, w.name+".bench.log"))
		if perr != nil {
			return perr
		}
		tg.mu.Lock()
		run.Toggled = windowStats(points, tg.switches, tg.every, 500*time.Millisecond)
		tg.mu.Unlock()
		h.logf("observe %s toggled: %s", v.key, run.toggledRow())
	}
	if sc1 != nil {
		st := sc1.stats()
		run.Scrape = &st
		h.logf("observe %s: %d scrapes of /metrics, p50 %.1f ms, p99 %.1f ms, %d bytes (%d on the wire), %d series, %d errors",
			v.key, st.Scrapes, st.P50Ms, st.P99Ms, st.BytesMax, st.WireBytesMax, st.Series, st.Errors)
	}
	if pl != nil {
		run.Polls, run.PollErrors = pl.polls, pl.errors
		h.logf("observe %s: %d API polls (%d errors)", v.key, pl.polls, pl.errors)
	}
	if br != nil {
		st := br.stats()
		run.Console = &st
		br.screenshot(filepath.Join(dir, "console.png"))
		h.logf("observe %s: console %q: %d API responses (%d errors), %.0f KiB, %d exceptions, chromium %.2f CPU-s",
			v.key, st.Title, st.APIRequests, st.APIErrors, st.APIBytes/1024, st.Exceptions, st.ChromiumCPUSec)
	}
	if kb, err := procStatusKB(p.pid(), "VmHWM"); err == nil {
		run.RSSW1MiB = float64(kb) / 1024
	}
	return err
}

// setupObserveGroup creates topic w1 as W1 would (6 partitions) and commits offset 0 on each of
// its partitions for observeGroup, a group with no members.
func setupObserveGroup(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 6, -1, nil, "w1"); err != nil {
		return err
	}
	var offs kadm.Offsets
	for p := range int32(6) {
		offs.Add(kadm.Offset{Topic: "w1", Partition: p, At: 0, LeaderEpoch: -1})
	}
	committed, err := adm.CommitOffsets(ctx, observeGroup, offs)
	if err != nil {
		return err
	}
	return committed.Error()
}

// poller GETs paths of base every interval between begin and end, one after the other, as a
// console page refreshes; the responses are read whole and dropped.
type poller struct {
	base   string
	paths  []string
	every  time.Duration
	cancel context.CancelFunc
	done   chan struct{}
	// polls and errors are written by the polling goroutine and read after end.
	polls, errors int
}

func (p *poller) begin() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		defer client.CloseIdleConnections()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			for _, path := range p.paths {
				if err := pollOnce(ctx, client, p.base+path); err != nil {
					if ctx.Err() != nil {
						return
					}
					p.errors++
				}
				p.polls++
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (p *poller) end() {
	p.cancel()
	<-p.done
}

func pollOnce(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// selfCPU measures this process's CPU time between begin and end.
type selfCPU struct {
	t0  float64
	sec float64
}

func rusageSelf() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func (c *selfCPU) begin() { c.t0 = rusageSelf() }
func (c *selfCPU) end()   { c.sec = rusageSelf() - c.t0 }

// scraper GETs a Prometheus endpoint every interval, as Prometheus does: a fixed schedule (a
// scrape that takes longer than the interval delays the next tick), a 10 s timeout, gzip asked
// for, and the whole body read.
type scraper struct {
	paused atomic.Bool // -observe-toggle: no scrapes while set
	url    string
	every  time.Duration
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	mu     struct {
		sync.Mutex
		latMs   []float64
		bytes   []int64 // uncompressed body sizes
		wire    []int64 // bytes read from the connection
		series  int     // sample lines of the largest body
		errors  int
		lastErr string
	}
}

// scrapeStats are a scraper's figures.
type scrapeStats struct {
	URL          string    `json:"url"`
	Scrapes      int       `json:"scrapes"` // successful
	Errors       int       `json:"errors"`
	LastError    string    `json:"last_error,omitempty"`
	P50Ms        float64   `json:"p50_ms"` // request sent to the last byte of the body read
	P99Ms        float64   `json:"p99_ms"`
	MaxMs        float64   `json:"max_ms"`
	BytesP50     int64     `json:"bytes_p50"` // uncompressed body
	BytesMax     int64     `json:"bytes_max"`
	WireBytesMax int64     `json:"wire_bytes_max"` // on the wire (gzip), the largest
	Series       int       `json:"series"`         // sample lines of the largest body
	LatMs        []float64 `json:"latencies_ms"`
}

// prometheusAccept is the Accept header of Prometheus's scrapes (3.x, the text formats it asks
// for in its order of preference).
const prometheusAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

func newScraper(url string, every time.Duration) *scraper {
	return &scraper{
		url: url, every: every,
		// Compression handled here, so the wire size can be counted; one kept-alive connection.
		client: &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second},
	}
}

func (s *scraper) begin() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.every)
		defer t.Stop()
		for {
			if !s.paused.Load() {
				s.scrape(ctx)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *scraper) end() {
	s.cancel()
	<-s.done
	s.client.CloseIdleConnections()
}

// scrape does one GET and records it; a scrape cut short by end is not counted.
func (s *scraper) scrape(ctx context.Context) {
	t0 := time.Now()
	body, wire, err := s.get(ctx)
	lat := time.Since(t0)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.mu.errors++
		s.mu.lastErr = err.Error()
		return
	}
	s.mu.latMs = append(s.mu.latMs, float64(lat)/1e6)
	s.mu.bytes = append(s.mu.bytes, int64(len(body)))
	s.mu.wire = append(s.mu.wire, wire)
	if len(body) >= int(slices.Max(s.mu.bytes)) {
		s.mu.series = countSeries(body)
	}
}

func (s *scraper) get(ctx context.Context) ([]byte, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", prometheusAccept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "Prometheus/3 (moldau bench/compare -observe)")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	cr := &countingReader{r: resp.Body}
	var r io.Reader = cr
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return nil, cr.n, err
		}
		r = zr
	}
	body, err := io.ReadAll(r)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: HTTP %s", s.url, resp.Status)
	}
	return body, cr.n, err
}

func (s *scraper) stats() scrapeStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := scrapeStats{URL: s.url, Scrapes: len(s.mu.latMs), Errors: s.mu.errors, LastError: s.mu.lastErr, Series: s.mu.series, LatMs: slices.Clone(s.mu.latMs)}
	st.P50Ms, st.P99Ms, st.MaxMs = quantile(s.mu.latMs, 0.5), quantile(s.mu.latMs, 0.99), quantile(s.mu.latMs, 1)
	sizes := make([]float64, len(s.mu.bytes))
	for i, b := range s.mu.bytes {
		sizes[i] = float64(b)
		if b >= st.BytesMax {
			st.BytesMax, st.WireBytesMax = b, s.mu.wire[i]
		}
	}
	st.BytesP50 = int64(quantile(sizes, 0.5))
	return st
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countSeries counts the sample lines of a Prometheus text or OpenMetrics body: the lines that
// are neither empty nor comments (# HELP, # TYPE, # EOF).
func countSeries(body []byte) int {
	n := 0
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 && line[0] != '#' {
			n++
		}
	}
	return n
}

// quantile is the nearest-rank q-quantile of vs (q=1: the maximum); 0 for none.
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// consoleBrowser is the web console open in headless chromium (chromedp), with the flags of
// the console's e2e test and a fresh profile. It counts the page's requests to /api/ and the
// uncaught exceptions between begin and end, and the CPU time of chromium's processes.
type consoleBrowser struct {
	ctx         context.Context
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	pid         int
	cpu0        float64
	mu          struct {
		sync.Mutex
		counting   bool
		api        map[network.RequestID]bool // API requests answered, not yet finished
		apiN       int
		apiErr     int
		apiBytes   float64
		exceptions int
		firstExc   string
		cpuSec     float64
		title      string
		everAPI    int // API responses since the page opened
	}
}

// consoleStats are what the console did through the workload.
type consoleStats struct {
	URL            string  `json:"url"`
	Title          string  `json:"title"`
	APIRequests    int     `json:"api_requests"` // responses to /api/ requests
	APIErrors      int     `json:"api_errors"`   // HTTP >= 400 or failed
	APIBytes       float64 `json:"api_bytes"`    // encoded bytes of those responses
	Exceptions     int     `json:"exceptions"`   // uncaught, since the page opened
	FirstException string  `json:"first_exception,omitempty"`
	ChromiumCPUSec float64 `json:"chromium_cpu_sec"` // chromium's processes through the workload
}

// chromiumFlags are the console e2e test's flags (test/console), on top of chromedp's defaults.
func chromiumFlags(chromium, profile string) []chromedp.ExecAllocatorOption {
	return append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
}

// openConsole starts chromium with a fresh profile under dir, opens pageURL and waits for the
// page to load and (up to 5 s) for its first API response.
func openConsole(ctx context.Context, chromium, dir, pageURL string) (*consoleBrowser, error) {
	profile := filepath.Join(dir, "chromium-profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		return nil, err
	}
	b := &consoleBrowser{}
	b.mu.api = map[network.RequestID]bool{}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), append(chromiumFlags(chromium, profile), chromedp.CombinedOutput(logf))...)
	bctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.onEvent))
	b.ctx, b.cancel = bctx, func() { cancel(); logf.Close() }
	b.allocCancel = allocCancel
	stop := context.AfterFunc(ctx, b.close) // a signal closes the browser too
	defer stop()
	if err := chromedp.Do(bctx, chromedp.Navigate(pageURL)); err != nil {
		b.close()
		return nil, fmt.Errorf("chromium %s: %w (see %s)", pageURL, err, logf.Name())
	}
	if c := chromedp.FromContext(bctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.pid = c.Browser.Process().Pid
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b.mu.Lock()
		n := b.mu.everAPI
		b.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tctx, tcancel := context.WithTimeout(bctx, 5*time.Second)
	defer tcancel()
	if title, err := chromedp.Run(tctx, chromedp.Title()); err == nil {
		b.mu.Lock()
		b.mu.title = title
		b.mu.Unlock()
	}
	return b, nil
}

// isAPI reports whether a request the page made is one of the console's API calls.
func isAPI(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.HasPrefix(p.Path, "/api/")
}

// onEvent runs on chromedp's reading goroutine: it only counts.
func (b *consoleBrowser) onEvent(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventResponseReceived:
		if e.Response == nil || !isAPI(e.Response.URL) {
			return
		}
		b.mu.everAPI++
		if !b.mu.counting {
			return
		}
		b.mu.api[e.RequestID] = true
		b.mu.apiN++
		if e.Response.Status >= 400 {
			b.mu.apiErr++
		}
	case *network.EventLoadingFinished:
		if b.mu.api[e.RequestID] {
			delete(b.mu.api, e.RequestID)
			b.mu.apiBytes += e.EncodedDataLength
		}
	case *network.EventLoadingFailed:
		if b.mu.api[e.RequestID] {
			delete(b.mu.api, e.RequestID)
			if !e.Canceled {
				b.mu.apiErr++
			}
		}
	case *cdpruntime.EventExceptionThrown:
		b.mu.exceptions++
		if b.mu.firstExc == "" && e.ExceptionDetails != nil {
			b.mu.firstExc = e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil && e.ExceptionDetails.Exception.Description != "" {
				b.mu.firstExc += ": " + e.ExceptionDetails.Exception.Description
			}
		}
	}
}

func (b *consoleBrowser) begin() {
	b.cpu0, _ = treeCPUSeconds(b.pid)
	b.mu.Lock()
	b.mu.counting = true
	b.mu.Unlock()
}

func (b *consoleBrowser) end() {
	cpu, _ := treeCPUSeconds(b.pid)
	b.mu.Lock()
	b.mu.counting = false
	b.mu.cpuSec = cpu - b.cpu0
	b.mu.Unlock()
}

func (b *consoleBrowser) stats() consoleStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return consoleStats{Title: b.mu.title, APIRequests: b.mu.apiN, APIErrors: b.mu.apiErr, APIBytes: b.mu.apiBytes,
		Exceptions: b.mu.exceptions, FirstException: b.mu.firstExc, ChromiumCPUSec: b.mu.cpuSec}
}

// screenshot saves the page as it is now (kept with -keep); failures are ignored.
func (b *consoleBrowser) screenshot(path string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(path, png, 0o644)
	}
}

// close stops chromium; safe to call more than once.
func (b *consoleBrowser) close() {
	b.cancel()
	b.allocCancel()
}

// treeCPUSeconds is the CPU time (user + system) of process root and its descendants now
// alive, from /proc (chromium's renderer and helper processes are its descendants).
func treeCPUSeconds(root int) (float64, error) {
	if root <= 0 {
		return 0, errors.New("no process")
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, err := procPPID(pid); err == nil {
			children[pp] = append(children[pp], pid)
		}
	}
	var sum float64
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if s, err := procCPUSeconds(pid); err == nil {
			sum += s
		}
		queue = append(queue, children[pid]...)
	}
	return sum, nil
}

// procPPID is the parent of pid, from /proc/PID/stat (field 4).
func procPPID(pid int) (int, error) {
	f, err := procStatFields(pid, 2)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// meanBench is the mean of the complete W1 runs (nil if none): throughput, latency percentiles
// and CPU averaged, max the largest.
func meanBench(runs []*observeRun) *benchResult {
	var ok []*benchResult
	for _, r := range runs {
		if r.W1 != nil && !r.W1.Partial && r.Error == "" {
			ok = append(ok, r.W1)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	n := float64(len(ok))
	m := &benchResult{Records: ok[0].Records, Bytes: ok[0].Bytes, Command: ok[0].Command, IdleBefore: 100}
	for _, b := range ok {
		m.RecordsPerSec += b.RecordsPerSec / n
		m.MBPerSec += b.MBPerSec / n
		m.P50Ms += b.P50Ms / n
		m.P99Ms += b.P99Ms / n
		m.P999Ms += b.P999Ms / n
		m.MaxMs = max(m.MaxMs, b.MaxMs)
		m.BrokerCPUSec += b.BrokerCPUSec / n
		m.BenchCPUSec += b.BenchCPUSec / n
		m.IdleBefore = min(m.IdleBefore, b.IdleBefore)
	}
	return m
}

// summarize is one line per variant, over the runs in order.
func summarize(variants []observeVariant, runs []*observeRun) []*observeSummary {
	var out []*observeSummary
	var off float64
	for i, v := range variants {
		s := &observeSummary{Variant: v.key, Title: v.title}
		var lat, shares []float64
		var chromium, harness float64
		for _, r := range runs {
			if r.Variant != v.key || r.W1 == nil || r.W1.Partial || r.Error != "" {
				continue
			}
			s.Runs++
			if sh := r.observerShare(); sh >= 0 {
				shares = append(shares, sh)
			}
			s.RecordsPerSec = append(s.RecordsPerSec, r.W1.RecordsPerSec)
			s.MeanMBps += r.W1.MBPerSec
			s.MeanP50Ms += r.W1.P50Ms
			s.MeanP99Ms += r.W1.P99Ms
			s.MeanBrokerCPU += r.W1.BrokerCPUSec
			harness += r.HarnessCPUSec
			if sc := r.Scrape; sc != nil {
				s.Scrapes += sc.Scrapes
				s.ScrapeErrors += sc.Errors
				lat = append(lat, sc.LatMs...)
				if sc.BytesMax >= s.ScrapeBytes {
					s.ScrapeBytes, s.ScrapeWire, s.ScrapeSeries = sc.BytesMax, sc.WireBytesMax, sc.Series
				}
			}
			if c := r.Console; c != nil {
				s.ConsoleAPI += c.APIRequests
				s.ConsoleErrors += c.APIErrors
				s.Exceptions += c.Exceptions
				chromium += c.ChromiumCPUSec
			}
		}
		if s.Runs > 0 {
			n := float64(s.Runs)
			for _, v := range s.RecordsPerSec {
				s.MeanRPS += v / n
			}
			s.MeanMBps /= n
			s.MeanP50Ms /= n
			s.MeanP99Ms /= n
			s.MeanBrokerCPU /= n
			s.ChromiumCPU = chromium / n
			s.HarnessCPU = harness / n
			s.Spread = (slices.Max(s.RecordsPerSec) - slices.Min(s.RecordsPerSec)) / s.MeanRPS
		}
		s.ObserverShare = -1
		if len(shares) > 0 {
			s.ObserverShare, _ = meanSE(shares)
		}
		s.ScrapeP50Ms, s.ScrapeP99Ms, s.ScrapeMaxMs = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1)
		if i == 0 {
			off = s.MeanRPS
		}
		if off > 0 && s.MeanRPS > 0 {
			s.VsOff = s.MeanRPS/off - 1
		}
		if i > 0 {
			s.Paired = pairedVsOff(runs, variants[0].key, v.key)
			s.PairedMean, s.PairedSE = meanSE(s.Paired)
		}
		out = append(out, s)
	}
	return out
}

// pairedVsOff is, round by round, variant's W1 records/s over the unobserved variant's in the
// same round, minus 1; rounds where either run failed are left out.
func pairedVsOff(runs []*observeRun, offKey, variant string) []float64 {
	rps := func(round int, key string) float64 {
		for _, r := range runs {
			if r.Round == round && r.Variant == key && r.W1 != nil && !r.W1.Partial && r.Error == "" {
				return r.W1.RecordsPerSec
			}
		}
		return 0
	}
	var out []float64
	for round := 1; ; round++ {
		found := false
		for _, r := range runs {
			found = found || r.Round == round
		}
		if !found {
			return out
		}
		if off, v := rps(round, offKey), rps(round, variant); off > 0 && v > 0 {
			out = append(out, v/off-1)
		}
	}
}

// meanSE is the mean of vs and its standard error (the sample standard deviation over sqrt(n));
// the error is 0 for fewer than two values.
func meanSE(vs []float64) (mean, se float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	n := float64(len(vs))
	for _, v := range vs {
		mean += v / n
	}
	if len(vs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, v := range vs {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss/(n-1)) / math.Sqrt(n)
}

// observeMaxCost is issue 11's bound: observing W1 costs under 3 % of its throughput.
const observeMaxCost = 0.03

// observeTable writes the -observe section of the report.
func (o *observeReport) table(w io.Writer) {
	fmt.Fprintf(w, "\nW1 watched (-observe): %d rounds, a fresh broker for each run; /metrics scraped every %.0f ms (gzip, the whole body read); the console open in %s.\n\n", o.Rounds, o.IntervalMs, o.Chromium)
	fmt.Fprintf(w, "| variant | runs | W1 records/s (each run) | mean records/s | mean MB/s | vs unobserved | spread of runs | produce→ack p50 / p99 ms | broker CPU-s | scrapes (errors) | scrape p50 / p99 / max ms | scrape size: bytes / gzip / series | console API calls (errors) | chromium CPU-s | harness CPU-s | observers' share of the CPUs |\n")
	fmt.Fprintf(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range o.Summary {
		each := make([]string, len(s.RecordsPerSec))
		for i, v := range s.RecordsPerSec {
			each[i] = fmt.Sprintf("%.0f", v)
		}
		vs := "–"
		if s.Variant != o.Variants[0].key && s.Runs > 0 && s.VsOff != 0 {
			vs = fmt.Sprintf("%+.1f %%", 100*s.VsOff)
		}
		scr, scrLat, scrSize, cons, chr := "–", "–", "–", "–", "–"
		if s.Scrapes+s.ScrapeErrors > 0 {
			scr = fmt.Sprintf("%d (%d)", s.Scrapes, s.ScrapeErrors)
			scrLat = fmt.Sprintf("%.1f / %.1f / %.1f", s.ScrapeP50Ms, s.ScrapeP99Ms, s.ScrapeMaxMs)
			scrSize = fmt.Sprintf("%d / %d / %d", s.ScrapeBytes, s.ScrapeWire, s.ScrapeSeries)
		}
		if s.Variant != o.Variants[0].key && s.Runs > 0 {
			for _, v := range o.Variants {
				if v.key == s.Variant && v.page != "" {
					cons = fmt.Sprintf("%d (%d)", s.ConsoleAPI, s.ConsoleErrors)
					chr = fmt.Sprintf("%.2f", s.ChromiumCPU)
				}
			}
		}
		share := "–"
		if s.ObserverShare >= 0 && s.Variant != o.Variants[0].key {
			share = fmt.Sprintf("%.2f %%", 100*s.ObserverShare)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.1f | %s | %.1f %% | %.1f / %.1f | %.2f | %s | %s | %s | %s | %s | %.2f | %s |\n",
			s.Title, s.Runs, strings.Join(each, ", "), s.MeanRPS, s.MeanMBps, vs, 100*s.Spread, s.MeanP50Ms, s.MeanP99Ms, s.MeanBrokerCPU,
			scr, scrLat, scrSize, cons, chr, s.HarnessCPU, share)
	}
	fmt.Fprintf(w, "\n| target (issue 11) | want | measured | status |\n|---|---|---|---|\n")
	for i, s := range o.Summary[1:] {
		name := fmt.Sprintf("W1 throughput cost of /metrics every %.0f ms", o.IntervalMs)
		if v := o.Variants[i+1]; v.page != "" {
			name += fmt.Sprintf(" + the console open (%s)", v.page)
		} else if len(v.poll) > 0 {
			name += fmt.Sprintf(" + %s polled every %s (no browser)", strings.Join(v.poll, " and "), consolePollInterval)
		}
		if s.Runs == 0 || o.Summary[0].Runs == 0 {
			fmt.Fprintf(w, "| %s | < 3 %% | not measured | n/a |\n", name)
			continue
		}
		// The paired mean is the estimate when there are pairs: each round's difference has the
		// drift between rounds taken out.
		cost, how := -s.VsOff, "of the means"
		if len(s.Paired) > 0 {
			cost, how = -s.PairedMean, fmt.Sprintf("paired over %d rounds, standard error %.1f %%", len(s.Paired), 100*s.PairedSE)
		}
		st := "met"
		if cost >= observeMaxCost {
			st = "missed"
		}
		share := ""
		if s.ObserverShare >= 0 {
			share = fmt.Sprintf("; the observers used %.2f %% of the CPUs", 100*s.ObserverShare)
		}
		fmt.Fprintf(w, "| %s | < 3 %% | %.1f %% (%s; %.0f vs %.0f records/s; runs spread %.1f %% unobserved, %.1f %% observed%s) | %s |\n",
			name, 100*cost, how, s.MeanRPS, o.Summary[0].MeanRPS, 100*o.Summary[0].Spread, 100*s.Spread, share, st)
	}
	var toggled []*observeRun
	for _, r := range o.Runs {
		if r.Toggled != nil {
			toggled = append(toggled, r)
		}
	}
	if len(toggled) > 0 {
		fmt.Fprintf(w, "\nObservers switched off and on within each run (-observe-toggle): the scraper paused and the console's page frozen in every other window; each window with them against the windows without them on either side.\n\n| target (issue 11) | run | want | measured | status |\n|---|---|---|---|---|\n")
		for _, r := range toggled {
			name := fmt.Sprintf("W1 throughput cost of /metrics every %.0f ms", o.IntervalMs)
			for _, v := range o.Variants {
				if v.key == r.Variant && v.page != "" {
					name += fmt.Sprintf(" + the console open (%s)", v.page)
				}
			}
			st := "met"
			if r.Toggled.Cost >= observeMaxCost || len(r.Toggled.Costs) == 0 {
				st = "missed"
			}
			share := ""
			if sh := r.observerShare(); sh >= 0 {
				share = fmt.Sprintf("; the observers used %.2f %% of the CPUs while on and off", 100*sh)
			}
			fmt.Fprintf(w, "| %s | round %d | < 3 %% | %s%s | %s |\n", name, r.Round, r.toggledRow(), share, st)
		}
	}
	fmt.Fprintf(w, "\nRuns in order:\n\n| # | round | variant | W1 records/s | p99 ms | broker CPU-s | scrapes | console API calls | chromium CPU-s | idle before %% | error |\n|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for i, r := range o.Runs {
		rps, p99, bcpu, idle := "–", "–", "–", "–"
		if r.W1 != nil {
			rps, p99, bcpu, idle = fmt.Sprintf("%.0f", r.W1.RecordsPerSec), fmt.Sprintf("%.1f", r.W1.P99Ms), fmt.Sprintf("%.2f", r.W1.BrokerCPUSec), fmt.Sprintf("%.0f", r.W1.IdleBefore)
		}
		scr, cons, chr := "–", "–", "–"
		if r.Scrape != nil {
			scr = fmt.Sprintf("%d", r.Scrape.Scrapes)
		}
		if r.Console != nil {
			cons, chr = fmt.Sprintf("%d", r.Console.APIRequests), fmt.Sprintf("%.2f", r.Console.ChromiumCPUSec)
		}
		fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i+1, r.Round, r.Variant, rps, p99, bcpu, scr, cons, chr, idle, r.Error)
	}
}
