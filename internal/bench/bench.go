// Package bench implements `moldau bench`: a load generator and latency meter for any broker that
// speaks the Kafka protocol (Moldau, Apache Kafka, franz-go's kfake, ...), on franz-go's kgo.
//
// Three workloads:
//
//	produce  P producer clients send N records (or for a duration, optionally rate-limited);
//	         latency is per record, from the Produce call to its acknowledgement callback.
//	consume  M clients read N records (default: all in the topic) from the start, by direct
//	         partition assignment or as one consumer group; latency is the wait of each poll.
//	e2e      one producer at a fixed rate stamps the send time (unix nanos, big endian) in the
//	         first 8 bytes of each value; one consumer reading from the end measures the
//	         end-to-end latency (send to receipt).
//
// Progress goes to stderr once a second; the run ends with a human summary and then exactly one
// JSON line on stdout (see Result), so `moldau bench ... | tail -1` is machine-readable.
//
// Exit codes: 0 success, 1 the run failed (broker unreachable, a record not acknowledged, no
// progress for -stall-timeout) or was interrupted (Ctrl-C), 2 a usage error (unknown workload or
// flag, invalid or inconsistent flag values). A run that fails or is interrupted after its flags
// were accepted still ends with the JSON line, of what was measured until then, with "partial":
// true.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const usage = `Usage: moldau bench produce|consume|e2e [flags]

Workloads:
  produce   send records as fast as possible (or at -rate) from -producers clients;
            latency = Produce call to acknowledgement, per record
  consume   read -records records (default: all in the topic) from the start with -consumers
            clients (direct partition assignment, or -group G for a consumer group)
  e2e       one producer at -rate (default 20000/s) for -duration (default 30s), one consumer
            from the end; latency = send time stamped in the value to receipt

Progress goes to stderr every second; the run ends with a summary and one JSON line on stdout.
Run 'moldau bench WORKLOAD -h' for a workload's flags.`

// Run runs `moldau bench` with args (the workload name first) and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	cfg, err := parseFlags(args[0], args[1:], os.Getenv)
	if err != nil {
		var ue *usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			printFlags(stdout, args[0])
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "moldau bench %s: %s\n", args[0], ue.msg)
			fmt.Fprintf(stderr, "Try 'moldau bench %s --help' for more information.\n", args[0])
			return 2
		}
		fmt.Fprintf(stderr, "moldau bench: %v\n", err)
		return 2
	}
	var res Result
	switch cfg.workload {
	case "produce":
		res, err = runProduce(ctx, cfg, stderr)
	case "consume":
		res, err = runConsume(ctx, cfg, stderr)
	case "e2e":
		res, err = runE2E(ctx, cfg, stderr)
	}
	if res.Workload != "" { // a partial result is still worth printing
		if err != nil {
			res.Partial = true
		}
		printSummary(stdout, res)
		line, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s\n", line)
	}
	if err != nil {
		fmt.Fprintf(stderr, "moldau bench %s: %v\n", cfg.workload, err)
		return 1
	}
	return 0
}

// config is one workload's validated settings.
type config struct {
	workload      string
	brokers       []string
	topic         string
	partitions    int
	recordSize    int
	records       int64
	duration      time.Duration
	producers     int
	consumers     int
	group         string
	acks          string
	linger        time.Duration
	batchMaxBytes int
	compression   string
	idempotent    bool
	rate          int
	fetchMaxBytes int
	stallTimeout  time.Duration
	progress      time.Duration // interval of progress lines; 0 = none
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// flagSet declares the flags of one workload into cfg; defaults differ per workload.
func flagSet(workload string, cfg *config, brokers *string) *flag.FlagSet {
	fs := flag.NewFlagSet("moldau bench "+workload, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	// The same names and fallback as every other moldau command: -bootstrap-server, -b or
	// -brokers, else $MOLDAU_BOOTSTRAP, else 127.0.0.1:9092.
	fs.StringVar(brokers, "bootstrap-server", "", "comma-separated bootstrap brokers (default $"+BootstrapEnv+" or "+defaultBootstrap+")")
	fs.StringVar(brokers, "b", "", "alias for -bootstrap-server")
	fs.StringVar(brokers, "brokers", "", "alias for -bootstrap-server")
	fs.StringVar(&cfg.topic, "topic", "bench", "topic")
	fs.DurationVar(&cfg.stallTimeout, "stall-timeout", 30*time.Second, "fail if no record is acknowledged or received for this long")
	fs.DurationVar(&cfg.progress, "progress", time.Second, "interval of progress lines on stderr (0: none)")
	producer := func() {
		fs.IntVar(&cfg.recordSize, "record-size", 1024, "record value size in bytes (e2e: at least 8)")
		fs.IntVar(&cfg.partitions, "partitions", 6, "partitions of the topic if it has to be created")
		fs.StringVar(&cfg.acks, "acks", "all", "all, leader or none")
		fs.DurationVar(&cfg.linger, "linger", 5*time.Millisecond, "producer linger")
		fs.IntVar(&cfg.batchMaxBytes, "batch-max-bytes", 1000012, "maximum bytes of one record batch")
		fs.StringVar(&cfg.compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
		fs.BoolVar(&cfg.idempotent, "idempotent", true, "idempotent producer (requires -acks all)")
	}
	switch workload {
	case "produce":
		producer()
		fs.Int64Var(&cfg.records, "records", 0, "records to send (default 1000000 unless -duration is set)")
		fs.DurationVar(&cfg.duration, "duration", 0, "send for this long instead of a record count (with -rate: rate × duration records)")
		fs.IntVar(&cfg.producers, "producers", 1, "producer clients, each with its own connections")
		fs.IntVar(&cfg.rate, "rate", 0, "target records/s across all producers (0: as fast as possible)")
	case "consume":
		fs.Int64Var(&cfg.records, "records", 0, "records to read (0: all currently in the topic)")
		fs.IntVar(&cfg.consumers, "consumers", 1, "consumer clients; partitions are split among them")
		fs.StringVar(&cfg.group, "group", "", "consume as this consumer group instead of assigning partitions (use a fresh name: committed offsets are honoured)")
		fs.IntVar(&cfg.fetchMaxBytes, "fetch-max-bytes", 50<<20, "maximum bytes of one fetch response")
	case "e2e":
		producer()
		fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to produce: rate × duration records")
		fs.IntVar(&cfg.rate, "rate", 20000, "records/s to produce")
	}
	return fs
}

func printFlags(w io.Writer, workload string) {
	var cfg config
	var brokers string
	fs := flagSet(workload, &cfg, &brokers)
	fmt.Fprintf(w, "Usage: moldau bench %s [flags]\n\nFlags (-flag and --flag both work):\n", workload)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// BootstrapEnv names the default bootstrap servers, as for the other moldau commands.
const BootstrapEnv = "MOLDAU_BOOTSTRAP"

const defaultBootstrap = "127.0.0.1:9092"

// parseFlags parses and validates one workload's flags; every error is a *usageError or ErrHelp.
// getenv supplies MOLDAU_BOOTSTRAP when no bootstrap flag is given.
func parseFlags(workload string, args []string, getenv func(string) string) (*config, error) {
	switch workload {
	case "produce", "consume", "e2e":
	default:
		return nil, usagef("unknown workload %q (want produce, consume or e2e)", workload)
	}
	cfg := &config{workload: workload}
	var brokers string
	fs := flagSet(workload, cfg, &brokers)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%s", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if !set["bootstrap-server"] && !set["b"] && !set["brokers"] {
		brokers = getenv(BootstrapEnv)
		if strings.TrimSpace(brokers) == "" {
			brokers = defaultBootstrap
		}
	}
	for s := range strings.SplitSeq(brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.brokers = append(cfg.brokers, s)
		}
	}
	switch {
	case len(cfg.brokers) == 0:
		return nil, usagef("-bootstrap-server must name at least one host:port")
	case cfg.topic == "":
		return nil, usagef("-topic must not be empty")
	case cfg.recordSize < 0:
		return nil, usagef("-record-size must be >= 0, got %d", cfg.recordSize)
	case workload == "e2e" && cfg.recordSize < 8:
		return nil, usagef("-record-size must be >= 8 for e2e (the value carries the send time), got %d", cfg.recordSize)
	case cfg.records < 0:
		return nil, usagef("-records must be >= 0, got %d", cfg.records)
	case cfg.duration < 0:
		return nil, usagef("-duration must be >= 0, got %s", cfg.duration)
	case cfg.rate < 0:
		return nil, usagef("-rate must be >= 0, got %d", cfg.rate)
	case cfg.stallTimeout <= 0:
		return nil, usagef("-stall-timeout must be > 0, got %s", cfg.stallTimeout)
	case cfg.progress < 0:
		return nil, usagef("-progress must be >= 0, got %s", cfg.progress)
	}

	switch workload {
	case "produce":
		switch {
		case set["records"] && set["duration"]:
			return nil, usagef("-records and -duration are mutually exclusive")
		case set["records"] && cfg.records == 0:
			return nil, usagef("-records must be > 0")
		case set["duration"] && cfg.duration == 0:
			return nil, usagef("-duration must be > 0")
		case cfg.producers < 1:
			return nil, usagef("-producers must be >= 1, got %d", cfg.producers)
		case cfg.rate > 0 && cfg.rate < cfg.producers:
			return nil, usagef("-rate %d is below one record/s per producer (-producers %d)", cfg.rate, cfg.producers)
		case cfg.rate > 0 && cfg.duration > 0 && pacedRecords(cfg.rate, cfg.duration) < 1:
			return nil, usagef("-rate %d for -duration %s sends no record", cfg.rate, cfg.duration)
		}
		if !set["records"] && !set["duration"] {
			cfg.records = 1_000_000
		}
	case "consume":
		if cfg.consumers < 1 {
			return nil, usagef("-consumers must be >= 1, got %d", cfg.consumers)
		}
		if cfg.fetchMaxBytes < 1 || cfg.fetchMaxBytes > 1<<30-1<<20 {
			return nil, usagef("-fetch-max-bytes must be between 1 and %d, got %d", 1<<30-1<<20, cfg.fetchMaxBytes)
		}
	case "e2e":
		if cfg.duration == 0 {
			return nil, usagef("-duration must be > 0")
		}
		if cfg.rate == 0 {
			return nil, usagef("-rate must be > 0 for e2e")
		}
		if pacedRecords(cfg.rate, cfg.duration) < 1 {
			return nil, usagef("-rate %d for -duration %s sends no record", cfg.rate, cfg.duration)
		}
		cfg.producers, cfg.consumers = 1, 1
	}
	if workload != "consume" {
		switch cfg.acks {
		case "all", "leader", "none":
		default:
			return nil, usagef("-acks must be all, leader or none, got %q", cfg.acks)
		}
		if cfg.idempotent && cfg.acks != "all" {
			return nil, usagef("-idempotent requires -acks all; add -idempotent=false for -acks %s", cfg.acks)
		}
		if _, ok := codecs[cfg.compression]; !ok {
			return nil, usagef("-compression must be none, gzip, snappy, lz4 or zstd, got %q", cfg.compression)
		}
		switch {
		case cfg.partitions < 1:
			return nil, usagef("-partitions must be >= 1, got %d", cfg.partitions)
		case cfg.linger < 0:
			return nil, usagef("-linger must be >= 0, got %s", cfg.linger)
		case cfg.batchMaxBytes < 1:
			return nil, usagef("-batch-max-bytes must be >= 1, got %d", cfg.batchMaxBytes)
		}
	}
	return cfg, nil
}

var codecs = map[string]func() kgo.CompressionCodec{
	"none":   kgo.NoCompression,
	"gzip":   kgo.GzipCompression,
	"snappy": kgo.SnappyCompression,
	"lz4":    kgo.Lz4Compression,
	"zstd":   kgo.ZstdCompression,
}

// producerOpts are the kgo options every producing workload uses.
func (c *config) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID("moldau-bench"),
		kgo.DefaultProduceTopic(c.topic),
		kgo.ProducerLinger(c.linger),
		kgo.ProducerBatchMaxBytes(int32(c.batchMaxBytes)),
		kgo.ProducerBatchCompression(codecs[c.compression]()),
	}
	switch c.acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !c.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

// Result is the machine-readable outcome of a run: the JSON line that ends stdout.
// MB is 2^20 bytes of record values and keys, as Kafka's perf tools count it.
type Result struct {
	Workload      string  `json:"workload"`
	Brokers       string  `json:"brokers"`
	Topic         string  `json:"topic"`
	Partitions    int     `json:"partitions"`
	RecordSize    int     `json:"record_size"`
	Producers     int     `json:"producers"`
	Consumers     int     `json:"consumers"`
	Group         string  `json:"group,omitempty"`
	Acks          string  `json:"acks"`
	Idempotent    bool    `json:"idempotent"`
	Compression   string  `json:"compression"`
	LingerMs      float64 `json:"linger_ms"`
	TargetRate    int     `json:"target_rate"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	DurationSec   float64 `json:"duration_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	Latency       string  `json:"latency"` // what the percentiles measure
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
	Partial       bool    `json:"partial"` // the run failed or was interrupted before it completed
}

// newResult fills the settings part of a result.
func newResult(c *config, latency string) Result {
	return Result{
		Workload:    c.workload,
		Brokers:     strings.Join(c.brokers, ","),
		Topic:       c.topic,
		Partitions:  c.partitions,
		RecordSize:  c.recordSize,
		Producers:   c.producers,
		Consumers:   c.consumers,
		Group:       c.group,
		Acks:        c.acks,
		Idempotent:  c.idempotent && c.workload != "consume",
		Compression: c.compression,
		LingerMs:    ms(c.linger),
		TargetRate:  c.rate,
		Latency:     latency,
	}
}

// finish fills the measured part of a result.
func (r *Result) finish(records, bytes, errs int64, elapsed time.Duration, h *Histogram) {
	r.Records, r.Bytes, r.Errors = records, bytes, errs
	r.DurationSec = round3(elapsed.Seconds())
	if s := elapsed.Seconds(); s > 0 {
		r.RecordsPerSec = round3(float64(records) / s)
		r.MBPerSec = round3(float64(bytes) / s / (1 << 20))
	}
	r.P50Ms = ms(h.Quantile(0.50))
	r.P99Ms = ms(h.Quantile(0.99))
	r.P999Ms = ms(h.Quantile(0.999))
	r.MaxMs = ms(h.Max())
}

func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func round3(f float64) float64 {
	if f >= 0 {
		return float64(int64(f*1000+0.5)) / 1000
	}
	return -float64(int64(-f*1000+0.5)) / 1000
}

func printSummary(w io.Writer, r Result) {
	fmt.Fprintf(w, "%s: %d records in %.2fs: %.0f records/s, %.2f MB/s", r.Workload, r.Records, r.DurationSec, r.RecordsPerSec, r.MBPerSec)
	if r.Errors > 0 {
		fmt.Fprintf(w, ", %d errors", r.Errors)
	}
	fmt.Fprintf(w, "\n%s latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", r.Latency, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
}

// progress prints a line every interval until stop is closed: the rate since the previous line
// and the p99 of h so far. count and bytes return running totals.
func progress(w io.Writer, interval time.Duration, stop <-chan struct{}, label string, count, bytes func() int64, h *Histogram) {
	if interval <= 0 {
		<-stop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	start := time.Now()
	last, lastCount, lastBytes := start, int64(0), int64(0)
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n, b := count(), bytes()
			s := now.Sub(last).Seconds()
			fmt.Fprintf(w, "%6.1fs %s %10d total %10.0f rec/s %8.2f MB/s  p99 so far %.3f ms\n",
				now.Sub(start).Seconds(), label, n, float64(n-lastCount)/s, float64(b-lastBytes)/s/(1<<20), ms(h.Quantile(0.99)))
			last, lastCount, lastBytes = now, n, b
		}
	}
}
