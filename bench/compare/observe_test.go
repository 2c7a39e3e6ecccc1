package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond every 5 ms until it holds or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const fakeMetrics = `# HELP kafka_server_brokertopicmetrics_messagesin_total Messages in.
# TYPE kafka_server_brokertopicmetrics_messagesin_total counter
kafka_server_brokertopicmetrics_messagesin_total 12345
kafka_server_brokertopicmetrics_messagesin_total{topic="w1"} 12345
# HELP kafka_consumergroup_lag Lag.
# TYPE kafka_consumergroup_lag gauge
kafka_consumergroup_lag{consumergroup="observe-lag",partition="0",topic="w1"} 42

kafka_consumergroup_lag{consumergroup="observe-lag",partition="1",topic="w1"} 43
# EOF
`

// TestScraper: the scraper GETs the URL on its schedule with Prometheus's headers, reads and
// un-gzips the whole body, and reports sizes, series and latencies; errors are counted apart.
func TestScraper(t *testing.T) {
	var hits, gzipped atomic.Int64
	var badAccept atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if a := r.Header.Get("Accept"); a != prometheusAccept {
			badAccept.Store(a)
		}
		body := strings.Repeat(fakeMetrics, 20)
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			gzipped.Add(1)
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			fmt.Fprint(zw, body)
			zw.Close()
			return
		}
		fmt.Fprint(w, body)
	}))
	defer srv.Close()

	s := newScraper(srv.URL+"/metrics", 10*time.Millisecond)
	s.begin()
	waitFor(t, 10*time.Second, "5 scrapes", func() bool { return s.stats().Scrapes >= 5 })
	s.end()
	st := s.stats()
	if a := badAccept.Load(); a != nil {
		t.Errorf("Accept header %q, want Prometheus's", a)
	}
	if st.Errors != 0 || st.LastError != "" {
		t.Errorf("errors %d (%s), want none", st.Errors, st.LastError)
	}
	if int64(st.Scrapes) > hits.Load() || gzipped.Load() != hits.Load() {
		t.Errorf("%d scrapes counted, %d requests served, %d asked for gzip", st.Scrapes, hits.Load(), gzipped.Load())
	}
	want := int64(20 * len(fakeMetrics))
	if st.BytesMax != want || st.BytesP50 != want {
		t.Errorf("body %d bytes (p50 %d), want %d", st.BytesMax, st.BytesP50, want)
	}
	if st.WireBytesMax <= 0 || st.WireBytesMax >= want/4 {
		t.Errorf("wire bytes %d: want the gzip size, well under %d", st.WireBytesMax, want)
	}
	if st.Series != 20*4 {
		t.Errorf("series %d, want %d", st.Series, 20*4)
	}
	if len(st.LatMs) != st.Scrapes || st.P50Ms <= 0 || st.P50Ms > st.P99Ms || st.P99Ms > st.MaxMs {
		t.Errorf("latencies %v: p50 %.3f p99 %.3f max %.3f", st.LatMs, st.P50Ms, st.P99Ms, st.MaxMs)
	}

	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	s = newScraper(bad.URL+"/metrics", 10*time.Millisecond)
	s.begin()
	waitFor(t, 10*time.Second, "2 failed scrapes", func() bool { return s.stats().Errors >= 2 })
	s.end()
	if st := s.stats(); st.Scrapes != 0 || !strings.Contains(st.LastError, "503") {
		t.Errorf("against a 503: %d scrapes, last error %q", st.Scrapes, st.LastError)
	}
}

func TestQuantileCountSeries(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 10}, {1, 10}, {0.1, 1}, {0, 1}} {
		if got := quantile(vs, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if quantile(nil, 0.5) != 0 || !slices.Equal(vs, []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}) {
		t.Error("quantile of none is not 0, or it sorted its input")
	}
	if n := countSeries([]byte(fakeMetrics)); n != 4 {
		t.Errorf("countSeries = %d, want 4", n)
	}
}

// TestObserveOrder: rounds alternate forwards and backwards, so with an even number of rounds
// every variant's mean position is the same.
func TestObserveOrder(t *testing.T) {
	order := observeOrder(observeVariants, 4)
	pos := map[string]int{}
	i := 0
	for _, round := range order {
		for _, v := range round {
			pos[v.key] += i
			i++
		}
	}
	if i != 16 || order[0][0].key != "moldau" || order[1][0].key != "moldau+observed-group" {
		t.Fatalf("order %v", order)
	}
	for k, p := range pos {
		if p != pos["moldau"] {
			t.Errorf("%s: positions sum to %d, the unobserved %d", k, p, pos["moldau"])
		}
	}
	if got := observeOrderText(observeVariants, 2); got != "off, scraped, overview, group | group, overview, scraped, off" {
		t.Errorf("observeOrderText(observeVariants, 2) = %q", got)
	}
}

// TestObserveSummary: the means, the difference to the unobserved variant, the spread and the
// 3 % target in the table.
func TestObserveSummary(t *testing.T) {
	run := func(round int, v string, rps float64, scrapes int, lat ...float64) *observeRun {
		r := &observeRun{Round: round, Variant: v, W1: &benchResult{RecordsPerSec: rps, MBPerSec: rps / 1024, P99Ms: 10, BrokerCPUSec: 2}}
		if scrapes > 0 {
			r.Scrape = &scrapeStats{Scrapes: scrapes, LatMs: lat, BytesMax: 1000, WireBytesMax: 100, Series: 7}
			r.Console = &consoleStats{APIRequests: 4, ChromiumCPUSec: 0.5}
		}
		return r
	}
	runs := []*observeRun{
		run(1, "moldau", 100_000, 0), run(1, "moldau+observed", 99_000, 3, 1, 2, 3), run(1, "moldau+observed-group", 90_000, 3, 4, 5, 6),
		run(2, "moldau+observed-group", 92_000, 3, 7, 8, 9), run(2, "moldau+observed", 98_000, 3, 1, 1, 1), run(2, "moldau", 102_000, 0),
		{Round: 3, Variant: "moldau", Error: "exited"}, // not counted
	}
	sum := summarize(observeVariants, runs)
	off, scr, ov, grp := sum[0], sum[1], sum[2], sum[3]
	if scr.Runs != 0 || scr.Variant != "moldau+scraped" {
		t.Errorf("scraped, which did not run: %+v", scr)
	}
	if off.Runs != 2 || off.MeanRPS != 101_000 || off.VsOff != 0 {
		t.Errorf("unobserved: %+v", off)
	}
	if ov.MeanRPS != 98_500 || fmt.Sprintf("%.4f", ov.VsOff) != "-0.0248" || fmt.Sprintf("%.4f", ov.Spread) != "0.0102" {
		t.Errorf("overview: mean %v, vs off %v, spread %v", ov.MeanRPS, ov.VsOff, ov.Spread)
	}
	if ov.Scrapes != 6 || ov.ScrapeMaxMs != 3 || ov.ScrapeP50Ms != 1 || ov.ConsoleAPI != 8 || ov.ChromiumCPU != 0.5 || ov.ScrapeSeries != 7 {
		t.Errorf("overview scrapes and console: %+v", ov)
	}
	// Paired: round 1 99000/100000 - 1 = -1 %, round 2 98000/102000 - 1 = -3.92 %; round 3 has
	// no complete unobserved run, so no pair.
	if len(ov.Paired) != 2 || fmt.Sprintf("%.4f %.4f", ov.PairedMean, ov.PairedSE) != "-0.0246 0.0146" {
		t.Errorf("overview paired: %v mean %v se %v", ov.Paired, ov.PairedMean, ov.PairedSE)
	}
	if grp.MeanRPS != 91_000 || grp.ScrapeP50Ms != 6 {
		t.Errorf("group: %+v", grp)
	}
	if m := meanBench(runs[:1]); m == nil || m.RecordsPerSec != 100_000 {
		t.Errorf("meanBench of one run: %+v", m)
	}
	var b strings.Builder
	(&observeReport{Variants: observeVariants, Rounds: 2, IntervalMs: 1000, Summary: sum, Runs: runs}).table(&b)
	out := b.String()
	for _, want := range []string{
		"| Moldau observed (overview) | 2 | 99000, 98000 | 98500 |",
		"| -2.5 % |",
		"| W1 throughput cost of /metrics every 1000 ms + the console open (#/) | < 3 % | 2.5 % (paired over 2 rounds, standard error 1.5 %; 98500 vs 101000 records/s; runs spread 2.0 % unobserved, 1.0 % observed) | met |",
		"console open (#/groups/observe-lag) | < 3 % | 9.9 % ",
		"| missed |",
		"| 7 | 3 | moldau | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestHTTPArgs(t *testing.T) {
	h := &harness{}
	h.httpKeyOnce.Do(func() { h.httpKeyName = "http.listener" })
	if a := h.httpArgs("/tmp/x"); a != nil {
		t.Errorf("a broker -observe did not set up got %q", a)
	}
	h.httpAddrs = map[string]string{"/tmp/x": "127.0.0.1:1234"}
	if a := h.httpArgs("/tmp/x"); !slices.Equal(a, []string{"--override", "http.listener=127.0.0.1:1234"}) {
		t.Errorf("httpArgs = %q", a)
	}
}

const fakeConsole = `<!doctype html><html><head><title>fake console</title></head><body><p id="n">0</p>
<script>
let n = 0;
setInterval(async () => {
  const r = await fetch('/api/v1/cluster');
  await r.json();
  document.getElementById('n').textContent = ++n;
}, 20);
setTimeout(() => fetch('/api/v1/missing'), 10);
setTimeout(() => { throw new Error('console broke'); }, 30);
</script></body></html>`

// TestConsoleBrowser: chromium opens the page, and between begin and end the page's API calls,
// their errors and bytes, its uncaught exceptions and chromium's CPU time are counted.
func TestConsoleBrowser(t *testing.T) {
	chromium, err := (&harness{}).chromiumPath()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skipf("%v: apt-get install chromium", err)
	}
	var api atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, fakeConsole)
		case "/api/v1/cluster":
			api.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"cluster_id":"x","nodes":[{"id":1}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if out, err := exec.Command(chromium, "--version").Output(); err == nil {
		t.Logf("%s", strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := openConsole(ctx, chromium, t.TempDir(), srv.URL+"/#/")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	waitFor(t, 20*time.Second, "the 404 and the exception", func() bool {
		st := b.stats()
		return st.Exceptions > 0
	})
	b.begin()
	from := api.Load()
	waitFor(t, 20*time.Second, "10 API calls", func() bool { return b.stats().APIRequests >= 10 })
	b.end()
	served := api.Load() - from
	st := b.stats()
	if st.Title != "fake console" {
		t.Errorf("title %q", st.Title)
	}
	if st.APIRequests < 10 || int64(st.APIRequests) > served+1 || st.APIErrors != 0 {
		t.Errorf("%d API responses (%d errors) counted, %d served in the window", st.APIRequests, st.APIErrors, served)
	}
	if st.APIBytes < float64(st.APIRequests)*10 {
		t.Errorf("API bytes %.0f for %d responses", st.APIBytes, st.APIRequests)
	}
	if st.Exceptions != 1 || !strings.Contains(st.FirstException, "console broke") {
		t.Errorf("exceptions %d, first %q", st.Exceptions, st.FirstException)
	}
	if total, err := treeCPUSeconds(b.pid); err != nil || total <= 0 || st.ChromiumCPUSec < 0 || st.ChromiumCPUSec > total {
		t.Errorf("chromium (pid %d) CPU: %.2f s in the window, %.2f s in all (%v)", b.pid, st.ChromiumCPUSec, total, err)
	}
	t.Logf("%d API responses, %.0f bytes, chromium %.3f CPU-s in the window", st.APIRequests, st.APIBytes, st.ChromiumCPUSec)
	after := b.stats().APIRequests
	b.close()
	if n := b.stats().APIRequests; n != after {
		t.Errorf("counted %d API responses after end", n-after)
	}
}

// TestObserverShare: the observers' CPU time (chromium's and the harness's) over the machine's
// CPU time through the workload; unknown without the CPU count.
func TestObserverShare(t *testing.T) {
	r := &observeRun{W1: &benchResult{Records: 1000, RecordsPerSec: 100}, CPUs: 2, HarnessCPUSec: 0.1, Console: &consoleStats{ChromiumCPUSec: 0.3}}
	if got := r.observerShare(); math.Abs(got-0.02) > 1e-12 {
		t.Errorf("share %v, want 0.02 (0.4 CPU-s of 2 CPUs over 10 s)", got)
	}
	r.Console = nil
	if got := r.observerShare(); math.Abs(got-0.005) > 1e-12 {
		t.Errorf("share without a browser %v, want 0.005", got)
	}
	r.CPUs = 0
	if got := r.observerShare(); got != -1 {
		t.Errorf("share without the CPU count %v, want -1", got)
	}
}

// TestWindowStats: progress intervals go to the window they lie in whole (given the load
// generator's clock offset), and each on window is held against the off windows around it.
func TestWindowStats(t *testing.T) {
	// 1 s progress lines; on windows (even) run at 90 records/s, off ones at 100; switches
	// every 4 s; the load generator's clock 0.2 s behind the toggler's.
	var points []progressPoint
	var total int64
	for i := 0; i <= 24; i++ {
		at := time.Duration(i) * time.Second
		if i > 0 {
			if w := int((at - time.Second/2 + 200*time.Millisecond) / (4 * time.Second)); w%2 == 0 {
				total += 90
			} else {
				total += 100
			}
		}
		points = append(points, progressPoint{at, total})
	}
	var switches []time.Duration
	for i := 1; i < 6; i++ {
		switches = append(switches, time.Duration(i)*4*time.Second-200*time.Millisecond)
	}
	st := windowStats(points, switches, 4*time.Second, 500*time.Millisecond)
	if len(st.OnRPS) != 3 || len(st.OffRPS) != 3 || len(st.Costs) != 3 {
		t.Fatalf("windows on %v, off %v, costs %v: want 3, 3, 3", st.OnRPS, st.OffRPS, st.Costs)
	}
	for _, v := range st.OnRPS {
		if v != 90 {
			t.Errorf("an on window at %v records/s, want 90 (an interval across a switch counted)", v)
		}
	}
	if math.Abs(st.Cost-0.1) > 1e-9 || st.CostSE > 1e-9 {
		t.Errorf("cost %v ± %v, want 0.1 ± 0", st.Cost, st.CostSE)
	}
}
