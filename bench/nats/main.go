// Command natsbench runs a NATS server with JetStream file storage and drives it in the shapes of
// `moldau bench`, so bench/compare can put NATS JetStream beside the Kafka-protocol brokers.
//
// It is a module of its own (bench/nats/go.mod) so that the Moldau module never depends on
// nats-server.
//
//	natsbench server  -addr 127.0.0.1:4222 -store-dir DIR [-sync-always]
//	natsbench produce -brokers 127.0.0.1:4222 -topic w1 -partitions 6 -record-size 1024 -records 2000000 -producers 4
//	natsbench consume -brokers 127.0.0.1:4222 -topic w1
//	natsbench e2e     -brokers 127.0.0.1:4222 -topic w4 -rate 20000 -duration 30s
//
// The mapping: a topic is a stream with file storage and one replica whose subjects are
// TOPIC.>; partition p is the subject TOPIC.p (a stream is one ordered log, so partitions only
// spread the subjects). "acks=all" is a publish answered by its PubAck, after the stream stored
// the message. produce runs -producers connections, each publishing with PublishAsync and up to
// -max-pending unacknowledged messages (nats.go's default, 4000); latency per message is from
// the PublishAsync call to its PubAck. consume reads with ordered (pull) consumers from the
// start; latency is each wait for the next message. e2e publishes at -rate with the send time
// (unix nanos, big endian) in the first 8 bytes of each message while an ordered consumer that
// starts at the end measures receipt minus send time.
//
// Every workload ends with a human summary on stderr and one JSON line on stdout with the keys
// of `moldau bench` (records, records_per_sec, mb_per_sec, p50_ms, p99_ms, p999_ms, max_ms);
// MB is 2^20 bytes of message payload.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: natsbench server|produce|consume|e2e [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(ctx, os.Args[2:])
	case "produce", "consume", "e2e":
		err = runWorkload(ctx, os.Args[1], os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "natsbench: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// runServer runs an embedded nats-server with JetStream until ctx is done.
func runServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("natsbench server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4222", "host:port to listen on")
	storeDir := fs.String("store-dir", "", "JetStream store directory (required)")
	syncAlways := fs.Bool("sync-always", false, "fsync every JetStream write before it is acknowledged")
	_ = fs.Parse(args)
	if *storeDir == "" {
		return errors.New("-store-dir is required")
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("-addr port: %w", err)
	}
	opts := &server.Options{
		ServerName: "natsbench",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   *storeDir,
		SyncAlways: *syncAlways,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(60 * time.Second) {
		s.Shutdown()
		return errors.New("server not ready for connections after 60s")
	}
	<-ctx.Done()
	s.Shutdown()
	s.WaitForShutdown()
	return nil
}

// config is one workload's settings.
type config struct {
	workload   string
	url        string
	topic      string
	partitions int
	recordSize int
	records    int64
	duration   time.Duration
	producers  int
	consumers  int
	rate       int
	maxPending int
	pullMax    int
}

// Result is the JSON line that ends stdout; the keys follow `moldau bench`.
type Result struct {
	Workload      string  `json:"workload"`
	System        string  `json:"system"`
	Topic         string  `json:"topic"`
	Partitions    int     `json:"partitions"`
	RecordSize    int     `json:"record_size"`
	Producers     int     `json:"producers"`
	Consumers     int     `json:"consumers"`
	TargetRate    int     `json:"target_rate"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	DurationSec   float64 `json:"duration_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	Latency       string  `json:"latency"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
	MaxMs         float64 `json:"max_ms"`
	Partial       bool    `json:"partial"`
}

func runWorkload(ctx context.Context, workload string, args []string) error {
	cfg := config{workload: workload}
	fs := flag.NewFlagSet("natsbench "+workload, flag.ExitOnError)
	fs.StringVar(&cfg.url, "brokers", "127.0.0.1:4222", "NATS server host:port")
	fs.StringVar(&cfg.topic, "topic", "bench", "stream name (subjects TOPIC.>)")
	fs.IntVar(&cfg.partitions, "partitions", 6, "subjects TOPIC.0 .. TOPIC.N-1 to spread messages over")
	fs.IntVar(&cfg.recordSize, "record-size", 1024, "message payload size in bytes (e2e: at least 8)")
	fs.Int64Var(&cfg.records, "records", 0, "messages to send (produce; default 1000000) or read (consume; 0: all in the stream)")
	fs.DurationVar(&cfg.duration, "duration", 0, "produce: send for this long instead of -records; e2e: default 30s")
	fs.IntVar(&cfg.producers, "producers", 1, "publishing connections (produce)")
	fs.IntVar(&cfg.consumers, "consumers", 1, "ordered consumers, each on its own connection (consume)")
	fs.IntVar(&cfg.rate, "rate", 20000, "messages/s (e2e)")
	fs.IntVar(&cfg.maxPending, "max-pending", 4000, "unacknowledged async publishes per connection")
	fs.IntVar(&cfg.pullMax, "pull-max-messages", 5000, "messages buffered per pull consumer")
	_ = fs.Parse(args)
	if cfg.producers < 1 || cfg.consumers < 1 || cfg.partitions < 1 || cfg.recordSize < 0 {
		return errors.New("-producers, -consumers and -partitions must be >= 1, -record-size >= 0")
	}
	var (
		res Result
		err error
	)
	switch workload {
	case "produce":
		if cfg.records == 0 && cfg.duration == 0 {
			cfg.records = 1_000_000
		}
		res, err = runProduce(ctx, &cfg)
	case "consume":
		res, err = runConsume(ctx, &cfg)
	case "e2e":
		if cfg.recordSize < 8 {
			return errors.New("-record-size must be >= 8 for e2e")
		}
		if cfg.duration == 0 {
			cfg.duration = 30 * time.Second
		}
		res, err = runE2E(ctx, &cfg)
	}
	if res.Workload != "" {
		res.Partial = err != nil
		fmt.Fprintf(os.Stderr, "%s: %d records in %.2fs, %.0f records/s, %.2f MB/s; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
			res.Workload, res.Records, res.DurationSec, res.RecordsPerSec, res.MBPerSec, res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs)
		line, _ := json.Marshal(res)
		fmt.Printf("%s\n", line)
	}
	return err
}

func newResult(cfg *config, latency string) Result {
	return Result{
		Workload: cfg.workload, System: "nats-jetstream", Topic: cfg.topic, Partitions: cfg.partitions,
		RecordSize: cfg.recordSize, Producers: cfg.producers, Consumers: cfg.consumers, Latency: latency,
	}
}

// finish fills the rates and percentiles of res.
func finish(res *Result, records, bytes int64, elapsed time.Duration, lat []time.Duration) {
	res.Records, res.Bytes = records, bytes
	res.DurationSec = elapsed.Seconds()
	if elapsed > 0 {
		res.RecordsPerSec = float64(records) / elapsed.Seconds()
		res.MBPerSec = float64(bytes) / (1 << 20) / elapsed.Seconds()
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		i = max(0, min(i, len(lat)-1))
		return float64(lat[i]) / 1e6
	}
	res.P50Ms, res.P99Ms, res.P999Ms = q(0.50), q(0.99), q(0.999)
	res.MaxMs = float64(lat[len(lat)-1]) / 1e6
}

func connect(cfg *config, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect("nats://"+cfg.url, nats.Name(name), nats.MaxReconnects(0))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", cfg.url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.maxPending))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// ensureStream creates the stream of cfg.topic with file storage and one replica.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg *config) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     cfg.topic,
		Subjects: []string{cfg.topic + ".>"},
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", cfg.topic, err)
	}
	return nil
}

// pending is one unacknowledged async publish.
type pending struct {
	fut  jetstream.PubAckFuture
	sent time.Time
}

// publisher publishes asynchronously on one connection; a collector goroutine waits for the
// PubAcks in publish order (one stream, one connection: they arrive in that order).
type publisher struct {
	js      jetstream.JetStream
	queue   chan pending
	done    chan struct{}
	lat     []time.Duration
	acked   atomic.Int64
	lastAck atomic.Int64 // unix nanos of the latest PubAck
	err     atomic.Pointer[error]
}

func newPublisher(js jetstream.JetStream, maxPending int, trackLatency bool) *publisher {
	p := &publisher{js: js, queue: make(chan pending, maxPending+1), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for pd := range p.queue {
			select {
			case <-pd.fut.Ok():
				now := time.Now()
				if trackLatency {
					p.lat = append(p.lat, now.Sub(pd.sent))
				}
				p.acked.Add(1)
				p.lastAck.Store(now.UnixNano())
			case err := <-pd.fut.Err():
				p.err.CompareAndSwap(nil, &err)
			}
		}
	}()
	return p
}

func (p *publisher) publish(subject string, data []byte) error {
	sent := time.Now()
	// A full window blocks the publisher, as a full kgo buffer blocks Produce; nats.go's default
	// gives up after 200 ms, this waits as long as moldau bench's -stall-timeout.
	fut, err := p.js.PublishAsync(subject, data, jetstream.WithStallWait(30*time.Second))
	if err != nil {
		return err
	}
	p.queue <- pending{fut: fut, sent: sent}
	return nil
}

// close waits for every outstanding PubAck and returns the first publish error.
func (p *publisher) close() error {
	close(p.queue)
	<-p.done
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

func runProduce(ctx context.Context, cfg *config) (Result, error) {
	res := newResult(cfg, "publish call to PubAck")
	conns := make([]*nats.Conn, cfg.producers)
	pubs := make([]*publisher, cfg.producers)
	for i := range cfg.producers {
		nc, js, err := connect(cfg, fmt.Sprintf("natsbench-producer-%d", i))
		if err != nil {
			return res, err
		}
		defer nc.Close()
		if i == 0 {
			if err := ensureStream(ctx, js, cfg); err != nil {
				return res, err
			}
		}
		conns[i], pubs[i] = nc, newPublisher(js, cfg.maxPending, true)
	}
	subjects := make([]string, cfg.partitions)
	for p := range subjects {
		subjects[p] = fmt.Sprintf("%s.%d", cfg.topic, p)
	}
	data := payload(cfg.recordSize)
	var deadline time.Time
	start := time.Now()
	if cfg.duration > 0 {
		deadline = start.Add(cfg.duration)
	}
	var wg sync.WaitGroup
	errs := make([]error, cfg.producers)
	var sent atomic.Int64
	for i, p := range pubs {
		share := cfg.records / int64(cfg.producers)
		if int64(i) < cfg.records%int64(cfg.producers) {
			share++
		}
		wg.Go(func() {
			for n := int64(0); (cfg.duration > 0 || n < share) && ctx.Err() == nil; n++ {
				if cfg.duration > 0 && n%256 == 0 && time.Now().After(deadline) {
					break
				}
				if err := p.publish(subjects[(int64(i)+n)%int64(len(subjects))], data); err != nil {
					errs[i] = err
					break
				}
				sent.Add(1)
			}
			if err := p.close(); err != nil && errs[i] == nil {
				errs[i] = err
			}
		})
	}
	stopProgress := progress(ctx, "produce", "acked", func() int64 {
		var n int64
		for _, p := range pubs {
			n += p.acked.Load()
		}
		return n
	})
	wg.Wait()
	stopProgress()
	var acked, last int64
	var lat []time.Duration
	for _, p := range pubs {
		acked += p.acked.Load()
		last = max(last, p.lastAck.Load())
		lat = append(lat, p.lat...)
	}
	elapsed := time.Since(start)
	if last > 0 {
		elapsed = time.Unix(0, last).Sub(start)
	}
	res.Errors = sent.Load() - acked
	finish(&res, acked, acked*int64(cfg.recordSize), elapsed, lat)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

func runConsume(ctx context.Context, cfg *config) (Result, error) {
	res := newResult(cfg, "wait for each next message")
	nc, js, err := connect(cfg, "natsbench-consumer-admin")
	if err != nil {
		return res, err
	}
	defer nc.Close()
	target := cfg.records
	if target == 0 {
		info, err := js.Stream(ctx, cfg.topic)
		if err != nil {
			return res, fmt.Errorf("stream %s: %w", cfg.topic, err)
		}
		target = int64(info.CachedInfo().State.Msgs)
	}
	var (
		received, bytes atomic.Int64
		wg              sync.WaitGroup
		errs            = make([]error, cfg.consumers)
		lats            = make([][]time.Duration, cfg.consumers)
		lastRecv        atomic.Int64
	)
	reading, stopReading := context.WithCancel(ctx)
	defer stopReading()
	iters := make([]jetstream.MessagesContext, cfg.consumers)
	for j := range cfg.consumers {
		cnc, cjs, err := connect(cfg, fmt.Sprintf("natsbench-consumer-%d", j))
		if err != nil {
			return res, err
		}
		defer cnc.Close()
		occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if cfg.consumers > 1 { // split the subjects among the consumers
			for p := j; p < cfg.partitions; p += cfg.consumers {
				occ.FilterSubjects = append(occ.FilterSubjects, fmt.Sprintf("%s.%d", cfg.topic, p))
			}
		}
		cons, err := cjs.OrderedConsumer(ctx, cfg.topic, occ)
		if err != nil {
			return res, fmt.Errorf("ordered consumer on %s: %w", cfg.topic, err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(cfg.pullMax))
		if err != nil {
			return res, err
		}
		iters[j] = it
	}
	start := time.Now()
	for j, it := range iters {
		wg.Go(func() {
			for received.Load() < target && reading.Err() == nil {
				t := time.Now()
				msg, err := it.Next()
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						errs[j] = err
					}
					return
				}
				now := time.Now()
				lats[j] = append(lats[j], now.Sub(t))
				bytes.Add(int64(len(msg.Data())))
				lastRecv.Store(now.UnixNano())
				if received.Add(1) >= target {
					stopReading()
				}
			}
		})
	}
	stopProgress := progress(ctx, "consume", "received", received.Load)
	// Next blocks; a finished run stops every iterator.
	go func() {
		<-reading.Done()
		for _, it := range iters {
			it.Stop()
		}
	}()
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	if l := lastRecv.Load(); l > 0 {
		elapsed = time.Unix(0, l).Sub(start)
	}
	var lat []time.Duration
	for _, l := range lats {
		lat = append(lat, l...)
	}
	finish(&res, received.Load(), bytes.Load(), elapsed, lat)
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	if received.Load() < target {
		return res, fmt.Errorf("received %d of %d messages: %w", received.Load(), target, ctx.Err())
	}
	return res, nil
}

func runE2E(ctx context.Context, cfg *config) (Result, error) {
	res := newResult(cfg, "end to end (send time in the payload to receipt)")
	res.Producers, res.Consumers, res.TargetRate = 1, 1, cfg.rate
	nc, js, err := connect(cfg, "natsbench-e2e-producer")
	if err != nil {
		return res, err
	}
	defer nc.Close()
	if err := ensureStream(ctx, js, cfg); err != nil {
		return res, err
	}
	cnc, cjs, err := connect(cfg, "natsbench-e2e-consumer")
	if err != nil {
		return res, err
	}
	defer cnc.Close()
	cons, err := cjs.OrderedConsumer(ctx, cfg.topic, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return res, fmt.Errorf("ordered consumer on %s: %w", cfg.topic, err)
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		received atomic.Int64
		bytes    atomic.Int64
		lastRecv atomic.Int64
	)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		now := time.Now().UnixNano()
		d := msg.Data()
		if len(d) < 8 {
			return
		}
		mu.Lock()
		lat = append(lat, time.Duration(now-int64(binary.BigEndian.Uint64(d))))
		mu.Unlock()
		bytes.Add(int64(len(d)))
		lastRecv.Store(now)
		received.Add(1)
	}, jetstream.PullMaxMessages(cfg.pullMax))
	if err != nil {
		return res, err
	}
	defer cc.Stop()

	pub := newPublisher(js, cfg.maxPending, false)
	n := int64(cfg.rate) * int64(cfg.duration) / int64(time.Second)
	subjects := make([]string, cfg.partitions)
	for p := range subjects {
		subjects[p] = fmt.Sprintf("%s.%d", cfg.topic, p)
	}
	filler := payload(cfg.recordSize)
	stopProgress := progress(ctx, "e2e", "received", received.Load)
	start := time.Now()
	var perr error
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(cfg.rate))); wait > 0 {
			time.Sleep(wait)
		}
		v := make([]byte, cfg.recordSize)
		copy(v[8:], filler)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		if perr = pub.publish(subjects[i%int64(len(subjects))], v); perr != nil {
			break
		}
	}
	if err := pub.close(); err != nil && perr == nil {
		perr = err
	}
	// The tail: wait for the consumer to receive what was acknowledged.
	tail := time.Now()
	for ctx.Err() == nil && received.Load() < pub.acked.Load() && time.Since(tail) < 30*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	stopProgress()
	elapsed := time.Since(start)
	if l := lastRecv.Load(); l > 0 {
		elapsed = time.Unix(0, l).Sub(start)
	}
	mu.Lock()
	finish(&res, received.Load(), bytes.Load(), elapsed, lat)
	mu.Unlock()
	switch {
	case perr != nil:
		return res, perr
	case received.Load() < pub.acked.Load():
		return res, fmt.Errorf("received %d of %d acknowledged messages", received.Load(), pub.acked.Load())
	}
	return res, ctx.Err()
}

// progress prints count() to stderr once a second until the returned stop is called.
func progress(ctx context.Context, workload, what string, count func() int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, prev := time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				n := count()
				fmt.Fprintf(os.Stderr, "%s %5.0fs: %d %s (%d/s)\n", workload, time.Since(start).Seconds(), n, what, n-prev)
				prev = n
			}
		}
	}()
	return func() { close(done); <-finished }
}
