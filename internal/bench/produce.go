package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceRun is the shared state of a produce workload: its producers' promises all report here.
type produceRun struct {
	*session
	hist   *Histogram
	acked  atomic.Int64
	bytes  atomic.Int64
	failed atomic.Int64
}

// ack is the promise of every record: the latency of a success goes into the histogram; the
// first real failure ends the run (records that fail because the run is stopping do not count).
func (r *produceRun) ack(start time.Time, rec *kgo.Record, err error) {
	if err != nil {
		if !r.aborted(err) {
			r.failed.Add(1)
			r.fail(fmt.Errorf("produce to %s[%d]: %w", rec.Topic, rec.Partition, err))
		}
		return
	}
	r.hist.Record(time.Since(start))
	r.bytes.Add(int64(len(rec.Key) + len(rec.Value)))
	r.acked.Add(1)
}

// send produces from one client: quota records (paced at rate if rate > 0), or, with quota 0,
// until deadline. Each record is a new kgo.Record sharing the read-only value.
func (r *produceRun) send(cl *kgo.Client, value []byte, quota, rate int64, deadline time.Time) {
	pace := newPacer(rate)
	for i := int64(0); quota == 0 || i < quota; i++ {
		if quota == 0 && !time.Now().Before(deadline) {
			return
		}
		if !pace.wait(r.ctx, i) {
			return
		}
		start := time.Now()
		cl.Produce(r.ctx, &kgo.Record{Value: value}, func(rec *kgo.Record, err error) { r.ack(start, rec, err) })
	}
}

// runProduce runs the produce workload: cfg.producers clients, each with its own connections,
// share the records (or the duration) and the rate; the clock runs from the first send to the
// last acknowledgement.
func runProduce(ctx context.Context, cfg *config, stderr io.Writer) (Result, error) {
	res := newResult(cfg, "produce call to acknowledgement")
	s := newSession(ctx)
	r := &produceRun{session: s, hist: newHistogram()}

	parts, err := ensureTopic(s.ctx, cfg, stderr)
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	res.Partitions = parts

	clients := make([]*kgo.Client, cfg.producers)
	for i := range clients {
		if clients[i], err = kgo.NewClient(cfg.producerOpts()...); err != nil {
			for _, cl := range clients[:i] {
				cl.Close()
			}
			s.fail(err)
			return res, s.finish()
		}
	}

	// Records: -records, or rate × duration when paced, or as many as fit in -duration.
	total := cfg.records
	if total == 0 && cfg.rate > 0 {
		total = pacedRecords(cfg.rate, cfg.duration)
	}
	value := payload(cfg.recordSize)
	s.monitor(cfg, stderr, "produce", "acknowledged", r.acked.Load, r.bytes.Load, r.hist)
	start := time.Now()
	deadline := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Go(func() {
			var quota int64
			if total > 0 {
				quota = split(total, len(clients), i)
			}
			r.send(cl, value, quota, split(int64(cfg.rate), len(clients), i), deadline)
			_ = cl.Flush(s.ctx) // fails only when the run is cancelled, which finish reports
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	err = s.finish()
	for _, cl := range clients {
		cl.Close() // fails what is still buffered after a cancelled run
	}
	res.finish(r.acked.Load(), r.bytes.Load(), r.failed.Load(), elapsed, r.hist)
	res.Partial = err != nil
	return res, err
}
