package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errInterrupted ends a run whose parent context was cancelled (Ctrl-C): the result is partial.
var errInterrupted = errors.New("interrupted: the result is partial")

// session is the lifecycle shared by the workloads: a run context that a stall, a failed record
// or the caller's cancellation ends, plus the progress printer and the stall watchdog, which both
// read the workload's running count.
type session struct {
	parent context.Context
	ctx    context.Context // the run: cancelled with a cause by a stall or a failure
	cancel context.CancelCauseFunc
	stop   chan struct{} // closed by finish: stops the progress printer and the watchdog
	wg     sync.WaitGroup
}

func newSession(parent context.Context) *session {
	ctx, cancel := context.WithCancelCause(parent)
	return &session{parent: parent, ctx: ctx, cancel: cancel, stop: make(chan struct{})}
}

// fail ends the run with err; the first cause wins.
func (s *session) fail(err error) { s.cancel(err) }

// monitor starts the progress printer (label, every cfg.progress) and the stall watchdog, which
// fails the run when count has not moved for cfg.stallTimeout; "what" completes "no record ...".
func (s *session) monitor(cfg *config, stderr io.Writer, label, what string, count, bytes func() int64, h *Histogram) {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		progress(stderr, cfg.progress, s.stop, label, count, bytes, h)
	}()
	go func() {
		defer s.wg.Done()
		s.watchStall(cfg.stallTimeout, what, count)
	}()
}

func (s *session) watchStall(timeout time.Duration, what string, count func() int64) {
	t := time.NewTicker(min(max(timeout/10, 10*time.Millisecond), time.Second))
	defer t.Stop()
	last, since := count(), time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if n := count(); n != last {
				last, since = n, now
			} else if now.Sub(since) >= timeout {
				s.fail(fmt.Errorf("stalled: no record %s for %s (-stall-timeout), %d so far", what, timeout, n))
				return
			}
		}
	}
}

// finish stops the monitor goroutines and returns the outcome of the run: nil, the cause of its
// failure, or errInterrupted when the caller cancelled it. The run context is released.
func (s *session) finish() error {
	close(s.stop)
	s.wg.Wait()
	defer s.cancel(nil)
	cause := context.Cause(s.ctx)
	switch {
	case cause == nil:
		return nil
	case s.parent.Err() != nil && cause == context.Cause(s.parent):
		return errInterrupted
	}
	return cause
}

// aborted reports whether a record failed only because the run was being stopped.
func (s *session) aborted(err error) bool {
	return s.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed))
}

// newAdmin returns an admin client on cfg's brokers; close its kgo client when done.
func newAdmin(cfg *config) (*kadm.Client, *kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ClientID("moldau-bench"))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

// ensureTopic creates cfg.topic with cfg.partitions partitions (broker-default replication) unless
// it exists, waits until its metadata lists every partition with a leader, and returns the
// number of partitions. Setup is bounded by the stall timeout.
func ensureTopic(ctx context.Context, cfg *config, stderr io.Writer) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.stallTimeout)
	defer cancel()
	adm, cl, err := newAdmin(cfg)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	_, err = adm.CreateTopic(ctx, int32(cfg.partitions), -1, nil, cfg.topic)
	created := err == nil
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %q on %s: %w", cfg.topic, cfg.brokers[0], err)
	}
	for {
		n, err := topicPartitions(ctx, adm, cfg.topic)
		if err == nil {
			if !created && n != cfg.partitions {
				fmt.Fprintf(stderr, "moldau bench: topic %q exists with %d partitions; -partitions %d does not apply\n", cfg.topic, n, cfg.partitions)
			}
			return n, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("topic %q not ready: %w", cfg.topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicPartitions returns the partition count of topic once every partition has a leader.
func topicPartitions(ctx context.Context, adm *kadm.Client, topic string) (int, error) {
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, err
	}
	t, ok := topics[topic]
	switch {
	case !ok:
		return 0, kerr.UnknownTopicOrPartition
	case t.Err != nil:
		return 0, t.Err
	case len(t.Partitions) == 0:
		return 0, fmt.Errorf("topic %q has no partitions", topic)
	}
	for _, p := range t.Partitions {
		if p.Err != nil {
			return 0, fmt.Errorf("partition %d: %w", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return 0, fmt.Errorf("partition %d has no leader", p.Partition)
		}
	}
	return len(t.Partitions), nil
}

// payload returns n bytes of random uppercase letters, as Kafka's producer perf tool sends: a
// value that compresses somewhat, not a run of zeros that compresses to nothing.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A' + byte(rand.IntN(26))
	}
	return b
}

// split divides total into n shares that differ by at most one, the larger first.
func split(total int64, n, i int) int64 {
	share := total / int64(n)
	if int64(i) < total%int64(n) {
		share++
	}
	return share
}

// pacer spaces sends at a fixed rate from its start: send i is due at start + i/rate. A sender
// that falls behind sends without sleeping until it has caught up, so the mean rate holds.
type pacer struct {
	start    time.Time
	interval float64 // nanoseconds between sends; 0: unpaced
	timer    *time.Timer
}

func newPacer(rate int64) *pacer {
	p := &pacer{start: time.Now()}
	if rate > 0 {
		p.interval = 1e9 / float64(rate)
	}
	return p
}

// wait blocks until send i is due; it returns false if ctx is done first.
func (p *pacer) wait(ctx context.Context, i int64) bool {
	if p.interval == 0 {
		return ctx.Err() == nil
	}
	d := time.Until(p.start.Add(time.Duration(float64(i) * p.interval)))
	if d <= 0 {
		return ctx.Err() == nil
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pacedRecords is the number of records a rate-limited run of d sends: rate × d, at millisecond
// resolution of d.
func pacedRecords(rate int, d time.Duration) int64 {
	return int64(rate) * d.Milliseconds() / 1000
}
