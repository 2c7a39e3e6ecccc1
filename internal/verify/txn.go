package verify

// moldau verify --transactions: transactional producers (franz-go, each its own transactional
// id) write numbered records in transactions of a random size and commit or abort each at
// random. After producing stops, every partition gets a non-transactional end record; then the
// topic is read twice up to those records: with read_committed, which must show every record of
// every committed transaction exactly once and in order, and none of an aborted one (a
// transaction whose EndTxn had no answer must show all of its records or none), and with
// read_uncommitted, which must hold every record whose produce was acknowledged, aborted ones
// included. CheckTxn is the accounting, a pure function of what was sent and read.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOutcome is what the producer learned of a transaction's end.
type TxnOutcome int

const (
	// TxnCommitted: EndTxn(commit) succeeded.
	TxnCommitted TxnOutcome = iota
	// TxnAborted: EndTxn(abort) succeeded (the producer chose to abort, or a record failed).
	TxnAborted
	// TxnUnknown: the end had no answer or failed; the producer's next InitProducerId (a new
	// client with the same transactional id) completes or aborts it on the coordinator.
	TxnUnknown
)

func (o TxnOutcome) String() string {
	return [...]string{"committed", "aborted", "unknown"}[o]
}

// Txn is one transaction of a producer: its records are the sequence numbers First..First+Count-1.
type Txn struct {
	Producer int
	First    int64
	Count    int64
	Outcome  TxnOutcome
}

// TxnInput is what CheckTxn accounts for.
type TxnInput struct {
	Sent      map[int]int64 // per producer: sequence numbers 0..Sent[p]-1 were handed to the client
	Txns      []Txn         // every transaction begun, in any order
	Acks      []Ack         // records whose produce was acknowledged
	Committed []Read        // read back with read_committed
	All       []Read        // read back with read_uncommitted
	Foreign   int64
	Corrupt   int64
	Faults    []Fault
	// ProduceEnd is when producing stopped (since the run started): the stall measurement's end.
	ProduceEnd time.Duration
	// ProduceErrors counts failed records and failed transaction ends by message.
	ProduceErrors map[string]int64
	Problems      []string
}

// TxnReport is the transactional part of a Report.
type TxnReport struct {
	Committed int64 `json:"transactions_committed"`
	Aborted   int64 `json:"transactions_aborted"`
	// Unknown transactions ended without an answer; UnknownCommitted and UnknownAborted are how
	// the read-back resolved them (all records visible, none visible).
	Unknown          int64 `json:"transactions_unknown"`
	UnknownCommitted int64 `json:"unknown_resolved_committed"`
	UnknownAborted   int64 `json:"unknown_resolved_aborted"`
	CommittedRecords int64 `json:"committed_records"`
	AbortedRecords   int64 `json:"aborted_records"`
	ReadCommitted    int64 `json:"read_committed"`
	ReadUncommitted  int64 `json:"read_uncommitted"`
	// AbortedRead: records of aborted transactions a read_committed consumer saw (must be 0).
	AbortedRead int64 `json:"aborted_read"`
	// Partial: transactions of unknown outcome read_committed shows only some records of.
	Partial int64 `json:"partial_transactions"`
	// MissingUncommitted: acknowledged records absent from the read_uncommitted read.
	MissingUncommitted int64    `json:"missing_uncommitted"`
	AbortedSample      []string `json:"aborted_read_sample,omitempty"`
	PartialSample      []string `json:"partial_sample,omitempty"`
	MissingSample      []string `json:"missing_uncommitted_sample,omitempty"`
}

// CheckTxn does the accounting of a --transactions run. Report.Lost counts records of committed
// transactions read_committed did not show; Duplicated and Reordered are of the read_committed
// read.
func CheckTxn(in TxnInput) Report {
	r := Report{Foreign: in.Foreign, Corrupt: in.Corrupt, ProduceErrors: in.ProduceErrors, Faults: make([]Fault, len(in.Faults))}
	for i, f := range in.Faults {
		f.AtMs = f.At.Milliseconds()
		if f.Recovered > 0 {
			f.DownMs = (f.Recovered - f.At).Milliseconds()
		}
		r.Faults[i] = f
	}
	tr := &TxnReport{}
	r.Transactions = tr
	for _, n := range in.Sent {
		r.Attempted += n
	}
	acked := map[ID]Ack{}
	for _, a := range in.Acks {
		if _, dup := acked[a.ID]; !dup {
			acked[a.ID] = a
		}
	}
	r.Acknowledged = int64(len(acked))
	r.Unacknowledged = r.Attempted - r.Acknowledged

	// Which transaction each record belongs to.
	txnOf := map[ID]int{}
	for i, t := range in.Txns {
		for s := t.First; s < t.First+t.Count; s++ {
			txnOf[ID{t.Producer, s}] = i
		}
		switch t.Outcome {
		case TxnCommitted:
			tr.Committed++
			tr.CommittedRecords += t.Count
		case TxnAborted:
			tr.Aborted++
			tr.AbortedRecords += t.Count
		default:
			tr.Unknown++
		}
	}

	seen := map[ID][]Read{}
	var committedReads []Read
	for _, rd := range in.Committed {
		if rd.ID.Seq >= in.Sent[rd.ID.Producer] {
			r.Unknown++
			continue
		}
		tr.ReadCommitted++
		r.Read++
		seen[rd.ID] = append(seen[rd.ID], rd)
		committedReads = append(committedReads, rd)
	}
	// Per transaction: how many of its records read_committed showed.
	visible := make([]int64, len(in.Txns))
	ids := make([]ID, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, cmpID)
	for _, id := range ids {
		copies := seen[id]
		if len(copies) > 1 {
			r.Duplicated += int64(len(copies) - 1)
			sample(&r.DuplicatedSample, "%s read %d times with read_committed (first at partition %d offset %d)", id, len(copies), copies[0].Partition, copies[0].Offset)
		}
		i, ok := txnOf[id]
		if !ok {
			continue // handed to the client but never part of a transaction the producer began
		}
		visible[i]++
		if in.Txns[i].Outcome == TxnAborted {
			tr.AbortedRead++
			sample(&tr.AbortedSample, "%s of an aborted transaction read with read_committed at partition %d offset %d", id, copies[0].Partition, copies[0].Offset)
		}
	}
	for i, t := range in.Txns {
		switch t.Outcome {
		case TxnCommitted:
			for s := t.First; s < t.First+t.Count; s++ {
				if id := (ID{t.Producer, s}); len(seen[id]) == 0 {
					r.Lost++
					a, ok := acked[id]
					if ok {
						sample(&r.LostSample, "%s of a committed transaction acked at partition %d offset %d, not read with read_committed", id, a.Partition, a.Offset)
					} else {
						sample(&r.LostSample, "%s of a committed transaction not read with read_committed", id)
					}
				}
			}
		case TxnUnknown:
			switch visible[i] {
			case 0:
				tr.UnknownAborted++
			case t.Count:
				tr.UnknownCommitted++
			default:
				tr.Partial++
				sample(&tr.PartialSample, "transaction p%d/%d..%d: %d of its %d records read with read_committed", t.Producer, t.First, t.First+t.Count-1, visible[i], t.Count)
			}
		}
	}
	r.Reordered, r.ReorderedSample = reordered(committedReads, in.Sent)
	r.LongestStallMs, r.LongestStallAtMs, r.StallFault = longestStall(in.Acks, in.Faults, in.ProduceEnd)

	inLog := map[ID]bool{}
	for _, rd := range in.All {
		if rd.ID.Seq < in.Sent[rd.ID.Producer] {
			tr.ReadUncommitted++
			inLog[rd.ID] = true
		}
	}
	ackIDs := make([]ID, 0, len(acked))
	for id := range acked {
		ackIDs = append(ackIDs, id)
	}
	slices.SortFunc(ackIDs, cmpID)
	for _, id := range ackIDs {
		if !inLog[id] {
			tr.MissingUncommitted++
			a := acked[id]
			sample(&tr.MissingSample, "%s acked at partition %d offset %d, not read with read_uncommitted", id, a.Partition, a.Offset)
		}
	}

	add := func(n int64, what string) {
		if n > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%d %s", n, what))
		}
	}
	if tr.Committed == 0 {
		r.Problems = append(r.Problems, "no transaction was committed")
	}
	add(r.Lost, "records of committed transactions not read with read_committed")
	add(tr.AbortedRead, "records of aborted transactions read with read_committed")
	add(tr.Partial, "transactions read only in part with read_committed")
	add(r.Duplicated, "duplicated records (read_committed)")
	add(r.Reordered, "reordered records (read_committed)")
	add(tr.MissingUncommitted, "acknowledged records not read with read_uncommitted")
	add(r.Corrupt, "corrupt records (value does not match key)")
	add(r.Unknown, "records with a sequence number never sent")
	r.Problems = append(r.Problems, in.Problems...)
	r.OK = len(r.Problems) == 0
	return r
}

// txnProducer is one transactional client; on a failure it closes the client and opens a new
// one with the same transactional id, whose InitProducerId fences the old and ends what it left.
type txnProducer struct {
	id    int
	o     *Options
	txnID string
	start time.Time
	rng   *rand.Rand

	// Owned by run's goroutine until run returns.
	cl   *kgo.Client
	seq  int64
	txns []Txn
	// pending: a client was dropped after a failure and no new one has ended a transaction
	// since; what it left may still be open on the coordinator.
	pending bool
	acks    []Ack
	errs    map[string]int64
	sent    int64
	ackMu   sync.Mutex // acks and errs are also written by the client's promise goroutine
}

func (p *txnProducer) client() (*kgo.Client, error) {
	if p.cl != nil {
		return p.cl, nil
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(p.o.Bootstrap...),
		kgo.ClientID(fmt.Sprintf("moldau-verify-txn-%d", p.id)),
		kgo.TransactionalID(p.txnID),
		kgo.TransactionTimeout(p.o.TxnTimeout),
		kgo.DefaultProduceTopic(p.o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.UnknownTopicRetries(-1),
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %d: %w", p.id, err)
	}
	p.cl = cl
	return cl, nil
}

// fail counts err, drops the client and waits a moment (ctx permitting) before the next try.
func (p *txnProducer) fail(ctx context.Context, what string, err error) {
	p.ackMu.Lock()
	p.errs[what+": "+err.Error()]++
	p.ackMu.Unlock()
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
	p.pending = true
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// resolve ends what a dropped client may have left open: InitProducerId for the transactional
// id (Admin's fenceProducers) bumps the epoch, so the coordinator completes a transaction it was
// committing and aborts one still ongoing. Retried through coordinator moves until DrainTimeout.
func (p *txnProducer) resolve() error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.o.Bootstrap...), kgo.ClientID(fmt.Sprintf("moldau-verify-fence-%d", p.id)))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), p.o.DrainTimeout)
	defer cancel()
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &p.txnID
		req.TransactionTimeoutMillis = int32(p.o.TxnTimeout.Milliseconds())
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			return nil
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.ConcurrentTransactions) {
			return fmt.Errorf("fence transactional id %s: %w", p.txnID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fence transactional id %s: %w (last error %v)", p.txnID, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// run writes transactions until ctx ends, at about rate records per second.
func (p *txnProducer) run(ctx context.Context, rate float64) {
	next := time.Now()
	interval := time.Duration(float64(time.Second) / max(rate, 0.001))
	for ctx.Err() == nil {
		cl, err := p.client()
		if err != nil {
			p.fail(ctx, "new client", err)
			return
		}
		if err := cl.BeginTransaction(); err != nil {
			p.fail(ctx, "begin transaction", err)
			continue
		}
		n := 1 + p.rng.Int64N(int64(2*p.o.TxnRecords))
		txn := Txn{Producer: p.id, First: p.seq, Count: n}
		var failed sync.WaitGroup
		var recordErr error
		var errMu sync.Mutex
		for range n {
			if d := time.Until(next); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
			next = next.Add(interval)
			if now := time.Now(); next.Before(now.Add(-time.Second)) {
				next = now // catch up at most a second after a stall
			}
			id := ID{Producer: p.id, Seq: p.seq}
			p.seq++
			p.sent = p.seq
			rec := &kgo.Record{Key: encodeKey(p.o.RunID, id), Value: encodeValue(p.o.RunID, id, p.o.RecordSize)}
			failed.Add(1)
			cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
				defer failed.Done()
				if err != nil {
					errMu.Lock()
					recordErr = err
					errMu.Unlock()
					p.ackMu.Lock()
					p.errs["produce: "+err.Error()]++
					p.ackMu.Unlock()
					return
				}
				p.ackMu.Lock()
				p.acks = append(p.acks, Ack{ID: id, Partition: r.Partition, Offset: r.Offset, At: time.Since(p.start)})
				p.ackMu.Unlock()
			})
		}
		fctx, cancel := context.WithTimeout(context.Background(), p.o.DrainTimeout)
		flushErr := cl.Flush(fctx)
		cancel()
		if flushErr != nil {
			actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = cl.AbortBufferedRecords(actx)
			acancel()
		}
		failed.Wait()
		errMu.Lock()
		commit := recordErr == nil && flushErr == nil && p.rng.Float64() >= p.o.AbortRatio
		errMu.Unlock()
		how := kgo.TryAbort
		txn.Outcome = TxnAborted
		if commit {
			how, txn.Outcome = kgo.TryCommit, TxnCommitted
		}
		ectx, ecancel := context.WithTimeout(context.Background(), p.o.DrainTimeout)
		err = cl.EndTransaction(ectx, how)
		ecancel()
		if err != nil {
			txn.Outcome = TxnUnknown
			p.fail(ctx, "end transaction ("+map[bool]string{true: "commit", false: "abort"}[commit]+")", err)
		} else {
			p.pending = false
		}
		p.txns = append(p.txns, txn)
	}
	if p.cl != nil {
		p.cl.Close()
		p.cl = nil
	}
	if p.pending {
		if err := p.resolve(); err != nil {
			p.ackMu.Lock()
			p.errs[err.Error()]++
			p.ackMu.Unlock()
		}
	}
}

// runTransactions is Run for Options.Transactions.
func runTransactions(ctx context.Context, o Options, adm *kadm.Client) (Report, error) {
	start := time.Now()
	prods := make([]*txnProducer, o.Producers)
	for i := range prods {
		prods[i] = &txnProducer{id: i, o: &o, txnID: fmt.Sprintf("moldau-verify-%s-%d", o.RunID, i), start: start,
			rng: rand.New(rand.NewPCG(o.Faults.Seed+uint64(i), uint64(i)^0x5851f42d4c957f2d)), errs: map[string]int64{}}
	}
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
	o.Logf("%s: producing stopped", produceEnd.Round(time.Millisecond))
	faults := <-faultsCh
	<-duringDone
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("interrupted after %s: %w", time.Since(start).Round(time.Millisecond), err)
	}

	in := TxnInput{Sent: map[int]int64{}, Faults: faults, ProduceEnd: produceEnd, ProduceErrors: map[string]int64{}}
	for _, p := range prods {
		p.ackMu.Lock()
		in.Sent[p.id] = p.sent
		in.Txns = append(in.Txns, p.txns...)
		in.Acks = append(in.Acks, p.acks...)
		for e, n := range p.errs {
			in.ProduceErrors[e] += n
		}
		p.ackMu.Unlock()
	}
	o.Logf("writing end records, then reading %s back with read_committed and read_uncommitted", o.Topic)
	ends, err := writeEndRecords(ctx, &o)
	if err != nil {
		in.Problems = append(in.Problems, err.Error())
	} else {
		committed, err := readTo(ctx, &o, ends, kgo.ReadCommitted())
		if err != nil {
			in.Problems = append(in.Problems, "read_committed: "+err.Error())
		}
		all, err := readTo(ctx, &o, ends, kgo.ReadUncommitted())
		if err != nil {
			in.Problems = append(in.Problems, "read_uncommitted: "+err.Error())
		}
		in.Committed, in.All = committed.reads, all.reads
		in.Foreign, in.Corrupt = all.foreign, all.corrupt
	}
	if o.Cluster != nil {
		in.Problems = append(in.Problems, o.Cluster.Problems()...)
	}
	if err := duringErr(); err != nil {
		in.Problems = append(in.Problems, fmt.Sprintf("while producing: %v", err))
	}
	r := CheckTxn(in)
	r.Topic, r.Partitions, r.Replication, r.MinInsync = o.Topic, o.Partitions, o.ReplicationFactor, o.MinInsync
	r.DurationMs = produceEnd.Milliseconds()
	return r, nil
}

// startSideWork starts o.During and the fault injector beside the producers and stops runCtx
// (stop) once Duration has passed and During returned. faults delivers the injected faults
// once every node is back.
func startSideWork(ctx, runCtx context.Context, stop context.CancelFunc, o *Options, adm *kadm.Client, start time.Time) (faults <-chan []Fault, duringDone <-chan struct{}, duringErr func() error) {
	var derr error
	dd := make(chan struct{})
	if o.During != nil {
		go func() { defer close(dd); derr = o.During(ctx) }()
	} else {
		close(dd)
	}
	go func() {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		select {
		case <-t.C:
		case <-runCtx.Done():
			return
		}
		select {
		case <-dd:
			stop()
		case <-runCtx.Done():
		}
	}()
	fc := make(chan []Fault, 1)
	if len(o.Faults.Kinds) > 0 {
		in := &injector{c: o.Cluster, plan: o.Faults, start: start, logf: o.Logf,
			rng: rand.New(rand.NewPCG(o.Faults.Seed, o.Faults.Seed^0x9e3779b97f4a7c15)), abort: ctx,
			leader: func() (int32, bool) { return PartitionLeader(ctx, adm, o.Topic, 0) }}
		go func() { fc <- in.run(runCtx) }()
	} else {
		fc <- nil
	}
	return fc, dd, func() error { <-dd; return derr }
}

// endKey marks the record writeEndRecords puts at the end of every partition.
func endKey(run string) []byte { return []byte(keyPrefix + "/" + run + "/end") }

// writeEndRecords writes one non-transactional record to every partition (idempotent, acks=all,
// retried until DrainTimeout) and returns the offset each landed at: a read that reaches it has
// read everything the transactions wrote before it.
func writeEndRecords(ctx context.Context, o *Options) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...), kgo.ClientID("moldau-verify-end"), kgo.DefaultProduceTopic(o.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.UnknownTopicRetries(-1),
		kgo.RecordDeliveryTimeout(o.DrainTimeout))
	if err != nil {
		return nil, fmt.Errorf("end records: %w", err)
	}
	defer cl.Close()
	ends := map[int32]int64{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for p := range o.Partitions {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Partition: p, Key: endKey(o.RunID), Value: endKey(o.RunID)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, fmt.Errorf("end record of partition %d: %w", r.Partition, err))
				return
			}
			ends[r.Partition] = r.Offset
		})
	}
	wg.Wait()
	return ends, firstErr
}

// readTo reads every partition from its start up to and including its end record, at the given
// isolation level, through retriable errors until ReadTimeout.
func readTo(ctx context.Context, o *Options, ends map[int32]int64, level kgo.IsolationLevel) (readResult, error) {
	var res readResult
	ctx, cancel := context.WithTimeout(ctx, o.ReadTimeout)
	defer cancel()
	offsets := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for p, end := range ends {
		offsets[p] = kgo.NewOffset().AtStart()
		want[p] = end
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...), kgo.ClientID("moldau-verify-reader"), kgo.FetchIsolationLevel(level),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: offsets}))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	next := map[int32]int64{}
	var lastErr error
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: end records not reached after %s (partition: next offset/end record %s; last error %v)",
				o.Topic, o.ReadTimeout, progress(next, want), lastErr)
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				lastErr = fmt.Errorf("partition %d: %w", fe.Partition, fe.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if end, ok := want[r.Partition]; ok && r.Offset >= end {
				delete(want, r.Partition)
			}
			if string(r.Key) == string(endKey(o.RunID)) {
				return
			}
			res.add(o.RunID, r)
		})
	}
	return res, nil
}
