package main

// W7, transactional produce: txnProducers franz-go clients, each with its own transactional id,
// write transactions of txnBatch records of 1 KiB spread over the topic's 6 partitions
// (round-robin, acks=all, linger 5 ms) and commit every one: begin, produce, flush, commit.
// Throughput is committed records per second; the latency figures are of the commit
// (EndTxn(commit) from the call to its answer, which includes the coordinator writing its
// markers), and the JSON keeps the whole transaction's latency too (begin to committed).
// The load generator runs in this process (moldau bench has no transactional mode); its CPU
// time is this process's over the run.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	txnProducers = 4
	txnBatch     = 100 // records per transaction
	txnTopic     = "w7"
)

// txnRaw is W7's own JSON (benchResult.Raw).
type txnRaw struct {
	Transactions  int64   `json:"transactions"`
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	TxnsPerSec    float64 `json:"transactions_per_sec"`
	CommitP50Ms   float64 `json:"commit_p50_ms"`
	CommitP99Ms   float64 `json:"commit_p99_ms"`
	CommitP999Ms  float64 `json:"commit_p999_ms"`
	CommitMaxMs   float64 `json:"commit_max_ms"`
	TxnP50Ms      float64 `json:"transaction_p50_ms"`
	TxnP99Ms      float64 `json:"transaction_p99_ms"`
	RecordsPerTxn int     `json:"records_per_transaction"`
	Producers     int     `json:"producers"`
	Error         string  `json:"error,omitempty"`
}

// percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return float64(sorted[min(max(i, 0), len(sorted)-1)]) / 1e6
}

func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// benchTxn runs W7 against addr: records records in all (rounded up to whole transactions).
func (h *harness) benchTxn(ctx context.Context, s *system, brokerPIDs []int, addr string, records int64) (*benchResult, error) {
	wctx, cancel := context.WithTimeout(ctx, h.opts.workloadTimeout)
	defer cancel()
	if h.opts.syncBetween {
		syscall.Sync()
	}
	idle := h.waitIdle(wctx)
	cmd := fmt.Sprintf("in-process: %d transactional producers (franz-go), %d records of 1 KiB per transaction over 6 partitions, commit every transaction, acks=all, linger 5ms, %d records", txnProducers, txnBatch, records)
	h.logf("%s W7 (machine %.0f%% idle): %s", s.key, idle, cmd)

	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(wctx, 6, -1, nil, txnTopic); err != nil {
		return nil, fmt.Errorf("create topic %s: %w", txnTopic, err)
	}

	perProducer := (records + txnProducers*txnBatch - 1) / (txnProducers * txnBatch) // transactions each
	value := make([]byte, 1024)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var mu sync.Mutex
	var commits, txns []time.Duration
	var firstErr error
	brokerCPU0, _ := sumCPUSeconds(brokerPIDs)
	selfCPU0 := selfCPUSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range txnProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := runTxnProducer(wctx, addr, fmt.Sprintf("w7-%d-%d", start.UnixNano(), p), perProducer, value, func(commit, txn time.Duration) {
				mu.Lock()
				commits, txns = append(commits, commit), append(txns, txn)
				mu.Unlock()
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("producer %d: %w", p, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	br := &benchResult{IdleBefore: idle, Command: cmd, BenchCPUSec: selfCPUSeconds() - selfCPU0}
	if brokerCPU1, err := sumCPUSeconds(brokerPIDs); err == nil {
		br.BrokerCPUSec = brokerCPU1 - brokerCPU0
	}
	slices.Sort(commits)
	slices.Sort(txns)
	n := int64(len(commits))
	br.Records = n * txnBatch
	br.Bytes = br.Records * int64(len(value))
	br.RecordsPerSec = float64(br.Records) / elapsed.Seconds()
	br.MBPerSec = float64(br.Bytes) / 1e6 / elapsed.Seconds()
	br.P50Ms, br.P99Ms, br.P999Ms, br.MaxMs = percentile(commits, 50), percentile(commits, 99), percentile(commits, 99.9), percentile(commits, 100)
	br.Partial = firstErr != nil
	raw := txnRaw{Transactions: n, Records: br.Records, Seconds: elapsed.Seconds(), TxnsPerSec: float64(n) / elapsed.Seconds(),
		CommitP50Ms: br.P50Ms, CommitP99Ms: br.P99Ms, CommitP999Ms: br.P999Ms, CommitMaxMs: br.MaxMs,
		TxnP50Ms: percentile(txns, 50), TxnP99Ms: percentile(txns, 99), RecordsPerTxn: txnBatch, Producers: txnProducers}
	if firstErr != nil {
		raw.Error = firstErr.Error()
	}
	br.Raw, _ = json.Marshal(raw)
	h.logf("%s W7: %.0f records/s, %.1f transactions/s, commit p50 %.2f ms, p99 %.2f ms, max %.2f ms; transaction p50 %.2f ms",
		s.key, br.RecordsPerSec, raw.TxnsPerSec, br.P50Ms, br.P99Ms, br.MaxMs, raw.TxnP50Ms)
	return br, firstErr
}

// runTxnProducer commits txns transactions of len(value)-byte records, reporting each one's
// commit latency and whole duration.
func runTxnProducer(ctx context.Context, addr, txnID string, txns int64, value []byte, done func(commit, txn time.Duration)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(txnTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	for range txns {
		// A transaction that makes no progress for txnStall fails the workload rather than
		// retrying until the workload timeout.
		tctx, cancel := context.WithTimeout(ctx, txnStall)
		err := oneTxn(tctx, cl, value, done)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// txnStall bounds one W7 transaction, begin to committed.
const txnStall = 30 * time.Second

func oneTxn(ctx context.Context, cl *kgo.Client, value []byte, done func(commit, txn time.Duration)) error {
	t0 := time.Now()
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var produceErr error
	var emu sync.Mutex
	for range txnBatch {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				emu.Lock()
				produceErr = err
				emu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	emu.Lock()
	perr := produceErr
	emu.Unlock()
	if perr != nil {
		return fmt.Errorf("produce: %w", perr)
	}
	t1 := time.Now()
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	now := time.Now()
	done(now.Sub(t1), now.Sub(t0))
	return nil
}
