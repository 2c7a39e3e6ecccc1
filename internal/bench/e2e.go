package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eRun is the shared state of an end-to-end workload.
type e2eRun struct {
	*session
	hist     *Histogram
	start    time.Time // the clock's start, before the consumer's first poll
	acked    atomic.Int64
	received atomic.Int64
	bytes    atomic.Int64 // bytes received
	lastRecv atomic.Int64 // nanoseconds from start to the latest receipt
}

// produce sends rate × duration records at rate, each value stamped with its send time in its
// first 8 bytes (unix nanos, big endian), and waits for their acknowledgements.
func (r *e2eRun) produce(cl *kgo.Client, cfg *config, filler []byte) {
	n := pacedRecords(cfg.rate, cfg.duration)
	pace := newPacer(int64(cfg.rate))
	for i := range n {
		if !pace.wait(r.ctx, i) {
			return
		}
		v := make([]byte, cfg.recordSize)
		copy(v[8:], filler)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		cl.Produce(r.ctx, &kgo.Record{Value: v}, func(rec *kgo.Record, err error) {
			if err != nil {
				if !r.aborted(err) {
					r.fail(fmt.Errorf("produce to %s[%d]: %w", rec.Topic, rec.Partition, err))
				}
				return
			}
			r.acked.Add(1)
		})
	}
	_ = cl.Flush(r.ctx) // fails only when the run is cancelled, which finish reports
}

// consume reads until reading is done, recording for every record its receipt time minus the
// send time in its value. All records of one poll share one receipt time.
func (r *e2eRun) consume(reading context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(reading)
		now := time.Now().UnixNano()
		if reading.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !r.aborted(err) {
				r.fail(fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		var n, b int64
		fs.EachRecord(func(rec *kgo.Record) {
			if len(rec.Value) < 8 {
				return // not ours
			}
			r.hist.Record(time.Duration(now - int64(binary.BigEndian.Uint64(rec.Value))))
			n++
			b += int64(len(rec.Key) + len(rec.Value))
		})
		if n > 0 {
			r.bytes.Add(b)
			r.lastRecv.Store(int64(time.Since(r.start)))
			r.received.Add(n)
		}
	}
}

// runE2E runs the end-to-end workload: a consumer positioned at the topic's end offsets, then one
// producer at cfg.rate for cfg.duration. The run ends once every acknowledged record has been
// received; the clock runs from the first send to the last receipt.
func runE2E(ctx context.Context, cfg *config, stderr io.Writer) (Result, error) {
	res := newResult(cfg, "end to end (send time in the value to receipt)")
	s := newSession(ctx)
	r := &e2eRun{session: s, hist: newHistogram()}

	parts, err := ensureTopic(s.ctx, cfg, stderr)
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	res.Partitions = parts
	ends, err := endOffsets(s.ctx, cfg)
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ClientID("moldau-bench"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.topic: ends}))
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	defer consumer.Close()
	producer, err := kgo.NewClient(cfg.producerOpts()...)
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	defer producer.Close()

	// Connect both clients before the clock starts, so the first records do not carry the
	// connection setup.
	pingCtx, cancelPing := context.WithTimeout(s.ctx, cfg.stallTimeout)
	err = consumer.Ping(pingCtx)
	if err == nil {
		err = producer.Ping(pingCtx)
	}
	cancelPing()
	if err != nil {
		s.fail(fmt.Errorf("connect to %s: %w", cfg.brokers[0], err))
		return res, s.finish()
	}

	reading, stopReading := context.WithCancel(s.ctx)
	s.monitor(cfg, stderr, "e2e", "received", r.received.Load, r.bytes.Load, r.hist)
	r.start = time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { r.consume(reading, consumer) })
	r.produce(producer, cfg, payload(cfg.recordSize-8))

	// The tail: wait for the consumer to catch up with what was acknowledged.
	tick := time.NewTicker(5 * time.Millisecond)
	for s.ctx.Err() == nil && r.received.Load() < r.acked.Load() {
		select {
		case <-tick.C:
		case <-s.ctx.Done():
		}
	}
	tick.Stop()
	stopReading()
	wg.Wait()
	elapsed := time.Since(r.start)
	if last := r.lastRecv.Load(); last > 0 {
		elapsed = time.Duration(last)
	}
	err = s.finish()
	res.finish(r.received.Load(), r.bytes.Load(), 0, elapsed, r.hist)
	res.Partial = err != nil
	return res, err
}

// endOffsets returns the current end offset of every partition of the topic, as exact offsets to
// consume from: records produced afterwards are all read, whenever the consumer connects.
func endOffsets(ctx context.Context, cfg *config) (map[int32]kgo.Offset, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.stallTimeout)
	defer cancel()
	adm, cl, err := newAdmin(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := adm.ListEndOffsets(ctx, cfg.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", cfg.topic, err)
	}
	offsets := map[int32]kgo.Offset{}
	for p, o := range ends[cfg.topic] {
		offsets[p] = kgo.NewOffset().At(o.Offset)
	}
	return offsets, nil
}
