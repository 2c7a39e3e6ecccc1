package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeRun is the shared state of a consume workload.
type consumeRun struct {
	*session
	hist        *Histogram
	target      int64
	read        atomic.Int64    // records claimed by the consumers; may pass target in the last fetch
	bytes       atomic.Int64    // bytes of the first target records only
	reading     context.Context // the polls' context: done once target records are read
	stopReading context.CancelFunc
	once        sync.Once
	end         time.Time // when target was reached; written in once
}

// count is the number of records read, at most target.
func (r *consumeRun) count() int64 { return min(r.read.Load(), r.target) }

// poll reads from one client until target records have been read by all, or the run ends. Each
// poll's wait goes into the histogram when it returns records.
func (r *consumeRun) poll(cl *kgo.Client) {
	for {
		t0 := time.Now()
		fs := cl.PollFetches(r.reading)
		wait := time.Since(t0)
		if r.reading.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !r.aborted(err) {
				r.fail(fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		n := int64(fs.NumRecords())
		if n == 0 {
			continue
		}
		r.hist.Record(wait)
		after := r.read.Add(n)
		before := after - n
		take := min(n, max(r.target-before, 0)) // only the first target records count
		var b int64
		i := int64(0)
		fs.EachRecord(func(rec *kgo.Record) {
			if i < take {
				b += int64(len(rec.Key) + len(rec.Value))
			}
			i++
		})
		r.bytes.Add(b)
		if after >= r.target {
			r.once.Do(func() { r.end = time.Now(); r.stopReading() })
			return
		}
	}
}

// runConsume runs the consume workload: cfg.consumers clients read the topic from its start,
// each assigned every consumers-th partition, or as members of cfg.group. The clock runs from
// the first poll to the poll that completes the target.
func runConsume(ctx context.Context, cfg *config, stderr io.Writer) (Result, error) {
	res := newResult(cfg, "poll wait (per poll that returned records)")
	s := newSession(ctx)
	r := &consumeRun{session: s, hist: newHistogram()}

	parts, available, err := topicExtent(s.ctx, cfg)
	if err != nil {
		s.fail(err)
		return res, s.finish()
	}
	res.Partitions = len(parts)
	r.target = cfg.records
	if r.target == 0 {
		if available == 0 {
			s.fail(fmt.Errorf("topic %q has no records to consume; produce some first", cfg.topic))
			return res, s.finish()
		}
		r.target = available
	}
	if cfg.group == "" && cfg.consumers > len(parts) {
		fmt.Fprintf(stderr, "moldau bench consume: %d consumers for %d partitions; using %d\n", cfg.consumers, len(parts), len(parts))
		res.Consumers = len(parts)
	}

	common := []kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ClientID("moldau-bench"),
		kgo.FetchMaxBytes(int32(cfg.fetchMaxBytes)),
		kgo.BrokerMaxReadBytes(int32(max(cfg.fetchMaxBytes+1<<20, 100<<20))),
	}
	clients := make([]*kgo.Client, res.Consumers)
	for i := range clients {
		opts := common
		if cfg.group != "" {
			opts = append(opts[:len(opts):len(opts)], kgo.ConsumerGroup(cfg.group), kgo.ConsumeTopics(cfg.topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		} else {
			assigned := map[int32]kgo.Offset{}
			for j := i; j < len(parts); j += len(clients) {
				assigned[parts[j]] = kgo.NewOffset().AtStart()
			}
			opts = append(opts[:len(opts):len(opts)], kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.topic: assigned}))
		}
		if clients[i], err = kgo.NewClient(opts...); err != nil {
			for _, cl := range clients[:i] {
				cl.Close()
			}
			s.fail(err)
			return res, s.finish()
		}
	}

	r.reading, r.stopReading = context.WithCancel(s.ctx)
	defer r.stopReading()
	s.monitor(cfg, stderr, "consume", "received", r.count, r.bytes.Load, r.hist)
	start := time.Now()
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() { r.poll(cl) })
	}
	wg.Wait()
	end := r.end
	if end.IsZero() {
		end = time.Now()
	}
	err = s.finish()
	for _, cl := range clients {
		cl.Close()
	}
	res.finish(r.count(), r.bytes.Load(), 0, end.Sub(start), r.hist)
	if res.Records > 0 {
		res.RecordSize = int(res.Bytes / res.Records) // measured: the mean of keys plus values
	}
	res.Partial = err != nil
	return res, err
}

// topicExtent returns the topic's partitions, sorted, and the number of records between their
// start and end offsets (high watermarks).
func topicExtent(ctx context.Context, cfg *config) ([]int32, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.stallTimeout)
	defer cancel()
	adm, cl, err := newAdmin(cfg)
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	if _, err := topicPartitions(ctx, adm, cfg.topic); err != nil {
		return nil, 0, fmt.Errorf("topic %q on %s: %w", cfg.topic, cfg.brokers[0], err)
	}
	starts, err := adm.ListStartOffsets(ctx, cfg.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list start offsets of %q: %w", cfg.topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("list end offsets of %q: %w", cfg.topic, err)
	}
	var parts []int32
	var total int64
	for p, end := range ends[cfg.topic] {
		start, ok := starts.Lookup(cfg.topic, p)
		if !ok {
			return nil, 0, errors.New("start offsets and end offsets name different partitions")
		}
		parts = append(parts, p)
		total += end.Offset - start.Offset
	}
	slices.Sort(parts)
	return parts, total, nil
}
