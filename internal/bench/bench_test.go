package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/moldau/moldau/internal/brokertest"
)

func noEnv(string) string { return "" }

// env is a getenv with one variable set.
func env(name, value string) func(string) string {
	return func(k string) string {
		if k == name {
			return value
		}
		return ""
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		workload string
		args     []string
		err      string             // substring of the usage error; "" = valid
		check    func(*config) bool // for valid command lines
		getenv   func(string) string
	}{
		{name: "produce defaults", workload: "produce", check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"127.0.0.1:9092"}) && c.topic == "bench" && c.records == 1_000_000 &&
				c.producers == 1 && c.acks == "all" && c.idempotent && c.partitions == 6 && c.recordSize == 1024 &&
				c.linger == 5*time.Millisecond && c.compression == "none" && c.rate == 0 && c.progress == time.Second
		}},
		{name: "brokers list", workload: "produce", args: []string{"-brokers", " a:1, b:2 ,"}, check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"a:1", "b:2"})
		}},
		{name: "double dash and duration", workload: "produce", args: []string{"--duration", "10s", "--rate", "100", "--producers", "4"}, check: func(c *config) bool {
			return c.records == 0 && c.duration == 10*time.Second && c.rate == 100 && c.producers == 4
		}},
		{name: "acks leader non-idempotent", workload: "produce", args: []string{"-acks", "leader", "-idempotent=false", "-compression", "zstd"}, check: func(c *config) bool {
			return c.acks == "leader" && !c.idempotent && c.compression == "zstd"
		}},
		{name: "consume defaults", workload: "consume", check: func(c *config) bool {
			return c.records == 0 && c.consumers == 1 && c.group == "" && c.fetchMaxBytes == 50<<20
		}},
		{name: "consume group", workload: "consume", args: []string{"-group", "g", "-consumers", "3", "-records", "10"}, check: func(c *config) bool {
			return c.group == "g" && c.consumers == 3 && c.records == 10
		}},
		{name: "e2e defaults", workload: "e2e", check: func(c *config) bool {
			return c.rate == 20000 && c.duration == 30*time.Second && c.producers == 1 && c.consumers == 1
		}},

		{name: "unknown workload", workload: "fetch", err: "unknown workload"},
		{name: "unknown flag", workload: "produce", args: []string{"-nope"}, err: "flag provided but not defined"},
		{name: "bad value", workload: "produce", args: []string{"-records", "many"}, err: "invalid value"},
		{name: "stray argument", workload: "produce", args: []string{"extra"}, err: `unexpected argument "extra"`},
		{name: "no brokers", workload: "produce", args: []string{"-brokers", " , "}, err: "-bootstrap-server"},
		{name: "bootstrap-server", workload: "produce", args: []string{"--bootstrap-server", "a:1,b:2"}, check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"a:1", "b:2"})
		}},
		{name: "-b", workload: "consume", args: []string{"-b", "a:1"}, check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"a:1"})
		}},
		{name: "MOLDAU_BOOTSTRAP", workload: "e2e", getenv: env(BootstrapEnv, "env:1, env:2"), check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"env:1", "env:2"})
		}},
		{name: "flag wins over MOLDAU_BOOTSTRAP", workload: "produce", args: []string{"-bootstrap-server", "flag:1"}, getenv: env(BootstrapEnv, "env:1"), check: func(c *config) bool {
			return slices.Equal(c.brokers, []string{"flag:1"})
		}},
		{name: "empty topic", workload: "consume", args: []string{"-topic", ""}, err: "-topic"},
		{name: "negative record size", workload: "produce", args: []string{"-record-size", "-1"}, err: "-record-size"},
		{name: "consume has no record size", workload: "consume", args: []string{"-record-size", "10"}, err: "not defined"},
		{name: "records and duration", workload: "produce", args: []string{"-records", "10", "-duration", "1s"}, err: "mutually exclusive"},
		{name: "zero records", workload: "produce", args: []string{"-records", "0"}, err: "-records must be > 0"},
		{name: "zero duration", workload: "produce", args: []string{"-duration", "0s"}, err: "-duration must be > 0"},
		{name: "no producers", workload: "produce", args: []string{"-producers", "0"}, err: "-producers"},
		{name: "rate below producers", workload: "produce", args: []string{"-rate", "3", "-producers", "4"}, err: "below one record/s"},
		{name: "rate times duration is nothing", workload: "produce", args: []string{"-rate", "1", "-duration", "100ms"}, err: "sends no record"},
		{name: "bad acks", workload: "produce", args: []string{"-acks", "2"}, err: "-acks"},
		{name: "idempotent needs acks all", workload: "produce", args: []string{"-acks", "none"}, err: "-idempotent requires -acks all"},
		{name: "bad compression", workload: "e2e", args: []string{"-compression", "brotli"}, err: "-compression"},
		{name: "no partitions", workload: "produce", args: []string{"-partitions", "0"}, err: "-partitions"},
		{name: "negative linger", workload: "produce", args: []string{"-linger", "-1ms"}, err: "-linger"},
		{name: "no stall timeout", workload: "consume", args: []string{"-stall-timeout", "0s"}, err: "-stall-timeout"},
		{name: "negative progress", workload: "consume", args: []string{"-progress", "-1s"}, err: "-progress"},
		{name: "no consumers", workload: "consume", args: []string{"-consumers", "0"}, err: "-consumers"},
		{name: "huge fetch", workload: "consume", args: []string{"-fetch-max-bytes", "2000000000"}, err: "-fetch-max-bytes"},
		{name: "e2e short record", workload: "e2e", args: []string{"-record-size", "7"}, err: ">= 8 for e2e"},
		{name: "e2e no rate", workload: "e2e", args: []string{"-rate", "0"}, err: "-rate must be > 0"},
		{name: "e2e no duration", workload: "e2e", args: []string{"-duration", "0s"}, err: "-duration must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := tc.getenv
			if getenv == nil {
				getenv = noEnv
			}
			cfg, err := parseFlags(tc.workload, tc.args, getenv)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("parseFlags: %v", err)
				}
				if !tc.check(cfg) {
					t.Fatalf("parseFlags: unexpected config %+v", *cfg)
				}
				return
			}
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parseFlags: got error %v, want a usage error containing %q", err, tc.err)
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string // substrings; "" = must be empty
	}{
		{args: nil, code: 2, stderr: "Usage: moldau bench"},
		{args: []string{"help"}, code: 0, stdout: "Workloads:"},
		{args: []string{"produce", "-h"}, code: 0, stdout: "-producers"},
		{args: []string{"consume", "--help"}, code: 0, stdout: "-group"},
		{args: []string{"fetch"}, code: 2, stderr: "unknown workload"},
		{args: []string{"e2e", "-acks", "x"}, code: 2, stderr: "Try 'moldau bench e2e --help'"},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, tc.code, stderr.String())
		}
		for _, c := range []struct{ got, want string }{{stdout.String(), tc.stdout}, {stderr.String(), tc.stderr}} {
			if (c.want == "") != (c.got == "") || !strings.Contains(c.got, c.want) {
				t.Errorf("%q: output %q, want it to contain %q", tc.args, c.got, c.want)
			}
		}
	}
	if _, err := parseFlags("produce", []string{"-help"}, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-help: got %v, want flag.ErrHelp", err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Buckets tile [0, maxValue] without gaps or overlaps, in order.
	last := bucketIndex(maxValue)
	if bucketLow(0) != 0 || bucketHigh(last) != maxValue {
		t.Fatalf("range [%d, %d], want [0, %d]", bucketLow(0), bucketHigh(last), int64(maxValue))
	}
	for i := 0; i < last; i++ {
		if bucketHigh(i)+1 != bucketLow(i+1) || bucketLow(i) > bucketHigh(i) {
			t.Fatalf("bucket %d [%d, %d] then bucket %d starts at %d", i, bucketLow(i), bucketHigh(i), i+1, bucketLow(i+1))
		}
	}
	values := []int64{0, 1, 255, 256, 257, 511, 512, 1023, 1024, 1e6, 1e9, maxValue}
	for range 10000 {
		values = append(values, rand.Int64N(maxValue))
	}
	for _, v := range values {
		i := bucketIndex(v)
		if v < bucketLow(i) || v > bucketHigh(i) {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, bucketLow(i), bucketHigh(i))
		}
		if v >= 2*half && float64(bucketHigh(i)-bucketLow(i)+1)/float64(bucketLow(i)) > 1.0/half {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its low end", i, bucketLow(i), bucketHigh(i), half)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram: want zeros")
	}

	// Below 2^subBits ns every value has its own bucket: exact.
	for v := 1; v <= 200; v++ {
		h.Record(time.Duration(v))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.005, 1}, {0.5, 100}, {0.99, 198}, {1, 200}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("exact range: quantile %v = %d, want %d", c.q, got, c.want)
		}
	}

	// Above it, a quantile is the true value or at most 1/half above it, and never above the max.
	h = newHistogram()
	var vals []time.Duration
	for range 100000 {
		v := time.Duration(rand.ExpFloat64() * float64(2*time.Millisecond))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/half {
			t.Errorf("quantile %v = %s, want %s (+%.2f%% at most)", q, got, want, 100.0/half)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Quantile(1) != h.Max() || h.Count() != uint64(len(vals)) {
		t.Errorf("max %s, quantile(1) %s, count %d; want %s, %s, %d", h.Max(), h.Quantile(1), h.Count(), vals[len(vals)-1], vals[len(vals)-1], len(vals))
	}

	// Out of range values are clamped.
	h = newHistogram()
	h.Record(-5 * time.Second)
	if h.Max() != 0 || h.Quantile(1) != 0 {
		t.Errorf("negative duration: max %s, quantile %s, want 0", h.Max(), h.Quantile(1))
	}
	h.Record(1000 * time.Hour)
	if h.Max() != maxValue || h.Quantile(1) != maxValue || h.Quantile(0.5) != 0 {
		t.Errorf("huge duration: max %d, quantile(1) %d, quantile(0.5) %d", h.Max(), h.Quantile(1), h.Quantile(0.5))
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := newHistogram()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 20000 {
				h.Record(time.Duration(g*20000+i+1) * time.Microsecond)
			}
		})
	}
	wg.Go(func() { // a progress line reading while the others record
		for range 100 {
			if q := h.Quantile(0.99); q < 0 || q > h.Max() {
				t.Errorf("quantile %s outside [0, max %s]", q, h.Max())
			}
		}
	})
	wg.Wait()
	if h.Count() != 80000 || h.Max() != 80000*time.Microsecond {
		t.Fatalf("count %d, max %s; want 80000, 80ms", h.Count(), h.Max())
	}
	if p50 := h.Quantile(0.5); p50 < 40*time.Millisecond || p50 > 40*time.Millisecond*(half+1)/half {
		t.Fatalf("p50 %s, want 40ms", p50)
	}
}

// bench runs `moldau bench args...` and returns its exit code, the result decoded from the one
// JSON line that must end stdout, and stderr.
func bench(t *testing.T, ctx context.Context, args ...string) (int, Result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(ctx, args, &stdout, &stderr)
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	var jsonLines int
	for _, l := range lines {
		if strings.HasPrefix(l, "{") {
			jsonLines++
		}
	}
	var res Result
	if jsonLines != 1 || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil {
		t.Fatalf("%q: exit %d; stdout must end with exactly one JSON line, got:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	}
	var keys map[string]any
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &keys)
	for _, k := range []string{"records", "records_per_sec", "mb_per_sec", "p50_ms", "p99_ms", "p999_ms", "max_ms"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON line lacks %q: %s", k, lines[len(lines)-1])
		}
	}
	return code, res, stderr.String()
}

// checkRun asserts a complete run of records records of size bytes each, with sane figures.
func checkRun(t *testing.T, code int, res Result, stderr string, workload string, records, size int64) {
	t.Helper()
	if code != 0 || res.Partial || res.Errors != 0 {
		t.Fatalf("%s: exit %d, partial %v, errors %d; stderr:\n%s", workload, code, res.Partial, res.Errors, stderr)
	}
	if res.Workload != workload || res.Records != records || res.Bytes != records*size {
		t.Fatalf("%s: got workload %s, %d records, %d bytes; want %d records of %d bytes", workload, res.Workload, res.Records, res.Bytes, records, size)
	}
	if res.DurationSec <= 0 || res.RecordsPerSec <= 0 || res.MBPerSec <= 0 {
		t.Fatalf("%s: duration %v s, %v records/s, %v MB/s; want all > 0", workload, res.DurationSec, res.RecordsPerSec, res.MBPerSec)
	}
	if !(res.P50Ms > 0 && res.P50Ms <= res.P99Ms && res.P99Ms <= res.P999Ms && res.P999Ms <= res.MaxMs) {
		t.Fatalf("%s: percentiles p50 %v p99 %v p99.9 %v max %v; want 0 < p50 <= p99 <= p99.9 <= max", workload, res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs)
	}
}

func startKfake(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// testWorkloads produces 2000 records, consumes them three ways, then runs a 2-second e2e.
func testWorkloads(t *testing.T, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	common := []string{"-brokers", addr, "-topic", "t", "-progress", "0", "-stall-timeout", "20s"}
	args := func(workload string, more ...string) []string {
		return append(append([]string{workload}, common...), more...)
	}

	code, res, stderr := bench(t, ctx, args("produce", "-records", "2000", "-record-size", "100", "-producers", "2", "-partitions", "3", "-progress", "50ms")...)
	checkRun(t, code, res, stderr, "produce", 2000, 100)
	if res.Partitions != 3 || res.Producers != 2 || res.Acks != "all" || !res.Idempotent {
		t.Errorf("produce: settings in the result: %+v", res)
	}

	code, res, stderr = bench(t, ctx, args("produce", "-records", "1000", "-record-size", "100", "-rate", "5000", "-acks", "leader", "-idempotent=false", "-compression", "lz4")...)
	checkRun(t, code, res, stderr, "produce", 1000, 100)
	if res.TargetRate != 5000 || res.RecordsPerSec > 5000*1.1 {
		t.Errorf("paced produce: target %d, got %v records/s", res.TargetRate, res.RecordsPerSec)
	}

	code, res, stderr = bench(t, ctx, args("consume")...)
	checkRun(t, code, res, stderr, "consume", 3000, 100)
	if res.Partitions != 3 || res.Consumers != 1 || res.RecordSize != 100 {
		t.Errorf("consume: settings in the result: %+v", res)
	}

	code, res, stderr = bench(t, ctx, args("consume", "-consumers", "5", "-records", "2500")...)
	checkRun(t, code, res, stderr, "consume", 2500, 100)
	if res.Consumers != 3 || !strings.Contains(stderr, "using 3") {
		t.Errorf("consume: 5 consumers on 3 partitions: result says %d, stderr %q", res.Consumers, stderr)
	}

	code, res, stderr = bench(t, ctx, args("consume", "-consumers", "2", "-group", "bench-test")...)
	checkRun(t, code, res, stderr, "consume", 3000, 100)

	code, res, stderr = bench(t, ctx, "e2e", "-brokers", addr, "-topic", "t2", "-progress", "0", "-rate", "1000", "-duration", "2s", "-record-size", "64")
	checkRun(t, code, res, stderr, "e2e", 2000, 64)
	if res.DurationSec < 1.9 {
		t.Errorf("e2e: %d records at 1000/s took %vs, want about 2s", res.Records, res.DurationSec)
	}

	// More records than the topic holds: the consumer stalls and the run fails with what it read.
	code, res, stderr = bench(t, ctx, args("consume", "-records", "3001", "-stall-timeout", "1s")...)
	if code != 1 || !res.Partial || res.Records != 3000 || !strings.Contains(stderr, "stalled") {
		t.Errorf("stalled consume: exit %d, partial %v, %d records, stderr %q", code, res.Partial, res.Records, stderr)
	}
}

func TestWorkloadsKfake(t *testing.T) {
	testWorkloads(t, startKfake(t))
}

func TestWorkloadsMoldau(t *testing.T) {
	testWorkloads(t, brokertest.Addr(t, nil))
}

func TestInterrupted(t *testing.T) {
	addr := startKfake(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	code, res, stderr := bench(t, ctx, "produce", "-brokers", addr, "-topic", "t", "-progress", "0", "-duration", "1m", "-rate", "2000")
	if code != 1 || !res.Partial || res.Errors != 0 || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d, partial %v, errors %d, stderr %q", code, res.Partial, res.Errors, stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("a cancelled run took %s to stop", d)
	}
	if res.Records > 4000 { // at most 2s worth at 2000/s, even if cancellation lags
		t.Fatalf("interrupted after 1s at 2000/s: %d records", res.Records)
	}
}

func TestUnreachable(t *testing.T) {
	code, res, stderr := bench(t, context.Background(), "produce", "-brokers", "127.0.0.1:1", "-progress", "0", "-stall-timeout", "2s")
	if code != 1 || !res.Partial || res.Records != 0 || !strings.Contains(stderr, "moldau bench produce: ") {
		t.Fatalf("exit %d, partial %v, %d records, stderr %q", code, res.Partial, res.Records, stderr)
	}
}
