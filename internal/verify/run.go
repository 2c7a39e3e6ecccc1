// Package verify is the checker behind `moldau verify`: it writes uniquely numbered records with
// acks=all and idempotence, optionally while it kills, pauses and restarts nodes it started
// itself, then reads the topic back from a fresh client and accounts for every record: lost,
// duplicated, reordered, moved, present without an acknowledgement, and the longest produce stall.
//
// The accounting (Check) is a pure function of what was sent, acknowledged and read; Run gathers
// those from a live cluster. cluster.go starts the multi-process clusters that moldau verify
// --nodes and the tests in test/integration use.
package verify

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure one run.
type Options struct {
	Bootstrap []string
	// Cluster is set when the run started the nodes itself; faults need it.
	Cluster *Cluster
	Faults  FaultPlan

	Topic             string // "" makes verify-<run id>
	Partitions        int32
	ReplicationFactor int16 // 0: the number of brokers, at most 3
	MinInsync         int   // 0: 2 when the replication factor is 3 or more, else 1

	Producers  int
	Rate       float64 // records per second, all producers together
	RecordSize int
	Duration   time.Duration
	// DrainTimeout bounds waiting for outstanding acknowledgements after producing stops;
	// ReadTimeout bounds reading the topic back.
	DrainTimeout, ReadTimeout time.Duration

	// During, if set, runs beside the producers from their start (a rolling restart, a partition
	// move): producing goes on until Duration has passed and During has returned. An error it
	// returns fails the run (it is one of the report's problems). Run waits for it before the
	// drain, so it must return when its ctx (Run's) ends.
	During func(ctx context.Context) error

	// Transactions makes the producers transactional (txn.go): TxnRecords records per
	// transaction on average (default 10), each transaction aborted with probability AbortRatio
	// (default 0.3; below 0: never), TxnTimeout their transaction.timeout.ms (default 10s).
	Transactions bool
	TxnRecords   int
	AbortRatio   float64
	TxnTimeout   time.Duration

	RunID string                        // "" makes a random one
	Logf  func(format string, a ...any) // progress lines; nil discards them
}

func (o *Options) defaults() {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.RunID == "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		o.RunID = hex.EncodeToString(b[:])
	}
	if o.Topic == "" {
		o.Topic = "verify-" + o.RunID
	}
	if o.Producers < 1 {
		o.Producers = 1
	}
	if o.Partitions < 1 {
		o.Partitions = 1
	}
	if o.RecordSize < 64 {
		o.RecordSize = 64
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 60 * time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.Faults.RecoverTimeout == 0 {
		o.Faults.RecoverTimeout = 60 * time.Second
	}
	if o.TxnRecords < 1 {
		o.TxnRecords = 10
	}
	if o.AbortRatio == 0 {
		o.AbortRatio = 0.3
	}
	if o.TxnTimeout == 0 {
		o.TxnTimeout = 10 * time.Second
	}
}

// Run creates the topic, produces for Duration (injecting Faults when Cluster is set), drains,
// reads everything back and checks it. The error is for a run that could not be carried out; what
// the run found is in the Report (Report.OK).
func Run(ctx context.Context, o Options) (Report, error) {
	o.defaults()
	if len(o.Faults.Kinds) > 0 && o.Cluster == nil {
		return Report{}, errors.New("faults can only be injected into nodes this run started")
	}
	adm, err := newAdmin(o.Bootstrap)
	if err != nil {
		return Report{}, err
	}
	defer adm.Close()
	if err := createTopic(ctx, adm, &o); err != nil {
		return Report{}, err
	}
	o.Logf("topic %s: %d partitions, replication factor %d, min.insync.replicas %d", o.Topic, o.Partitions, o.ReplicationFactor, o.MinInsync)
	if o.Transactions {
		return runTransactions(ctx, o, adm)
	}

	start := time.Now()
	prods := make([]*producer, o.Producers)
	for i := range prods {
		p, err := newProducer(i, &o, start)
		if err != nil {
			for _, q := range prods[:i] {
				q.cl.Close()
			}
			return Report{}, err
		}
		prods[i] = p
	}

	// Produce (and inject faults) for Duration, and until During has returned.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	faultsCh, duringDone, duringErr := startSideWork(ctx, runCtx, stop, &o, adm, start)
	var wg sync.WaitGroup
	for _, p := range prods {
		wg.Add(1)
		go func() { defer wg.Done(); p.run(runCtx, o.Rate/float64(o.Producers)) }()
	}
	wg.Wait()
	produceEnd := time.Since(start)
	o.Logf("%s: producing stopped; waiting for outstanding acknowledgements", produceEnd.Round(time.Millisecond))
	faults := <-faultsCh // every node is back before the drain and the read
	<-duringDone

	dctx, dcancel := context.WithTimeout(ctx, o.DrainTimeout)
	for _, p := range prods {
		if err := p.cl.Flush(dctx); err != nil {
			o.Logf("producer %d: %d records still unacknowledged at the end of the drain (--drain-timeout %s): %v", p.id, p.cl.BufferedProduceRecords(), o.DrainTimeout, err)
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			_ = p.cl.AbortBufferedRecords(actx)
			acancel()
		}
		p.cl.Close()
	}
	dcancel()
	if err := ctx.Err(); err != nil {
		// Interrupted: a read-back now would report the records still in flight as lost.
		return Report{}, fmt.Errorf("interrupted after %s: %w", time.Since(start).Round(time.Millisecond), err)
	}

	in := Input{Sent: map[int]int64{}, Faults: faults, ProduceEnd: produceEnd, ProduceErrors: map[string]int64{}}
	for _, p := range prods {
		p.mu.Lock()
		in.Sent[p.id] = p.mu.sent
		in.Acks = append(in.Acks, p.mu.acks...)
		for e, n := range p.mu.errs {
			in.ProduceErrors[e] += n
		}
		p.mu.Unlock()
	}
	o.Logf("reading %s back", o.Topic)
	rb, err := readBack(ctx, &o)
	if err != nil {
		in.Problems = append(in.Problems, err.Error())
	}
	in.Reads, in.Foreign, in.Corrupt = rb.reads, rb.foreign, rb.corrupt
	if o.Cluster != nil {
		in.Problems = append(in.Problems, o.Cluster.Problems()...)
	}
	if err := duringErr(); err != nil {
		in.Problems = append(in.Problems, fmt.Sprintf("while producing: %v", err))
	}
	r := Check(in)
	r.Topic, r.Partitions, r.Replication, r.MinInsync = o.Topic, o.Partitions, o.ReplicationFactor, o.MinInsync
	r.DurationMs = produceEnd.Milliseconds()
	return r, nil
}

// PartitionLeader is the leader of topic's partition p as the cluster's metadata has it now;
// false while it has none or the metadata cannot be read.
func PartitionLeader(ctx context.Context, adm *kadm.Client, topic string, p int32) (int32, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, false
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok || pd.Err != nil || pd.Leader < 0 {
		return 0, false
	}
	return pd.Leader, true
}

func newAdmin(seeds []string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("moldau-verify"), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("create client for %v: %w", seeds, err)
	}
	return kadm.NewClient(cl), nil
}

// createTopic fills in the automatic replication factor and min.insync.replicas and creates the
// topic, retrying what a cluster still electing its controller answers. An existing topic is
// used as it is (records of other runs in it are counted as foreign and otherwise ignored).
func createTopic(ctx context.Context, adm *kadm.Client, o *Options) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if o.ReplicationFactor == 0 {
		md, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		o.ReplicationFactor = int16(min(3, len(md.Brokers)))
	}
	if o.MinInsync == 0 {
		o.MinInsync = 1
		if o.ReplicationFactor >= 3 {
			o.MinInsync = 2
		}
	}
	mis := strconv.Itoa(o.MinInsync)
	for {
		resp, err := adm.CreateTopic(ctx, o.Partitions, o.ReplicationFactor, map[string]*string{"min.insync.replicas": &mis}, o.Topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Report the topic as it is, not as asked for.
			td, err := adm.ListTopics(ctx, o.Topic)
			if err != nil {
				return fmt.Errorf("describe the existing topic %s: %w", o.Topic, err)
			}
			d := td[o.Topic]
			if d.Err != nil {
				return fmt.Errorf("describe the existing topic %s: %w", o.Topic, d.Err)
			}
			o.Partitions, o.ReplicationFactor = int32(len(d.Partitions)), int16(d.Partitions.NumReplicas())
			if rc, err := adm.DescribeTopicConfigs(ctx, o.Topic); err == nil {
				if c, err := rc.On(o.Topic, nil); err == nil {
					for _, kv := range c.Configs {
						if kv.Key == "min.insync.replicas" {
							if n, err := strconv.Atoi(kv.MaybeValue()); err == nil {
								o.MinInsync = n
							}
						}
					}
				}
			}
			o.Logf("topic %s exists; using it", o.Topic)
			return nil
		case kerr.IsRetriable(err) || errors.Is(err, kerr.NotController):
			select {
			case <-ctx.Done():
				return fmt.Errorf("create topic %s: %w (last error %v)", o.Topic, ctx.Err(), err)
			case <-time.After(200 * time.Millisecond):
			}
		default:
			return fmt.Errorf("create topic %s (%d partitions, replication factor %d, min.insync.replicas %d): %w",
				o.Topic, o.Partitions, o.ReplicationFactor, o.MinInsync, err)
		}
	}
}

// producer is one idempotent acks=all client writing its own numbered stream.
type producer struct {
	id    int
	o     *Options
	cl    *kgo.Client
	start time.Time
	// maxBuffered: the loop skips its turn rather than block in Produce when the client holds
	// this many unacknowledged records (the cluster is not answering).
	maxBuffered int64

	mu struct {
		sync.Mutex
		sent int64
		acks []Ack
		errs map[string]int64
	}
}

func newProducer(id int, o *Options, start time.Time) (*producer, error) {
	const maxBuffered = 10000
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(o.Bootstrap...),
		kgo.ClientID(fmt.Sprintf("moldau-verify-%d", id)),
		kgo.DefaultProduceTopic(o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is franz-go's default with acks=all
		kgo.MaxBufferedRecords(maxBuffered),
		// --record-size is what goes over the wire and onto the disk: the filler would compress
		// to nothing.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		// A restarting node may briefly not know the topic: keep retrying until the drain deadline
		// rather than fail the record after franz-go's default of 4 tries.
		kgo.UnknownTopicRetries(-1),
		// After a failed request franz-go refreshes metadata at most every MetadataMinAge (5s by
		// default), which would make every stall at least that long: measure the cluster instead.
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("producer %d: %w", id, err)
	}
	p := &producer{id: id, o: o, cl: cl, start: start, maxBuffered: maxBuffered}
	p.mu.errs = map[string]int64{}
	return p, nil
}

// run produces at rate records per second until ctx ends. Sequence numbers are consecutive: a
// record is numbered when it is handed to the client, and every numbered record ends in an
// acknowledgement or an error in the promise.
func (p *producer) run(ctx context.Context, rate float64) {
	var seq int64
	Pace(ctx, rate, func() bool {
		if p.cl.BufferedProduceRecords() >= p.maxBuffered {
			return false
		}
		id := ID{Producer: p.id, Seq: seq}
		seq++
		p.mu.Lock()
		p.mu.sent = seq
		p.mu.Unlock()
		rec := &kgo.Record{Key: encodeKey(p.o.RunID, id), Value: encodeValue(p.o.RunID, id, p.o.RecordSize)}
		// The record's context is not ctx: a record handed over before the end must be given
		// its chance until the drain deadline.
		p.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) { p.done(id, r, err) })
		return true
	})
}

// Pace calls send about rate times a second until ctx ends, catching up at most one second's
// worth after a stall. send returning false ends this tick's sends (the producer's buffer is
// full): what is owed waits for the next tick.
func Pace(ctx context.Context, rate float64, send func() bool) {
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			owed = min(owed+rate*now.Sub(last).Seconds(), max(rate, 1))
			last = now
		}
		for ; owed >= 1; owed-- {
			if !send() {
				break
			}
		}
	}
}

func (p *producer) done(id ID, r *kgo.Record, err error) {
	at := time.Since(p.start)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.mu.errs[err.Error()]++
		return
	}
	p.mu.acks = append(p.mu.acks, Ack{ID: id, Partition: r.Partition, Offset: r.Offset, At: at})
}

type readResult struct {
	reads            []Read
	foreign, corrupt int64
}

// add counts one record read back: a record of run, another run's (foreign), or one whose value
// does not match its key (corrupt).
func (res *readResult) add(run string, r *kgo.Record) {
	id, ok := decodeKey(run, r.Key)
	switch {
	case !ok:
		res.foreign++
	case !valueMatches(r.Key, r.Value):
		res.corrupt++
	default:
		res.reads = append(res.reads, Read{ID: id, Partition: r.Partition, Offset: r.Offset})
	}
}

// readBack reads the whole topic, from a client of its own, up to the end offsets it lists first.
// It keeps going through retriable errors until ReadTimeout, then reports how far it got.
func readBack(ctx context.Context, o *Options) (readResult, error) {
	var res readResult
	ctx, cancel := context.WithTimeout(ctx, o.ReadTimeout)
	defer cancel()
	adm, err := newAdmin(o.Bootstrap)
	if err != nil {
		return res, err
	}
	defer adm.Close()
	want := map[int32]int64{}
	for {
		ends, err := adm.ListEndOffsets(ctx, o.Topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			ends.Each(func(lo kadm.ListedOffset) { want[lo.Partition] = lo.Offset })
			break
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("read back: list end offsets of %s: %w", o.Topic, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	offsets := map[int32]kgo.Offset{}
	for p, end := range want {
		if end > 0 {
			offsets[p] = kgo.NewOffset().AtStart()
		} else {
			delete(want, p)
		}
	}
	if len(want) == 0 {
		return res, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...), kgo.ClientID("moldau-verify-reader"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: offsets}))
	if err != nil {
		return res, fmt.Errorf("read back: %w", err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	var lastErr error
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, fmt.Errorf("read back: %s: still reading after %s (partition: next offset/end offset %s; last error %v)",
				o.Topic, o.ReadTimeout, progress(next, want), lastErr)
		}
		for _, fe := range fs.Errors() {
			lastErr = fmt.Errorf("partition %d: %w", fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			res.add(o.RunID, r)
		})
	}
	return res, nil
}

func progress(next, want map[int32]int64) string {
	s := ""
	for p, end := range want {
		s += fmt.Sprintf(" %d: %d/%d", p, next[p], end)
	}
	return s
}
