package replica

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/partition"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock is a Clock a test moves by hand.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func (c *fakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeLog is a Follower over an in-memory log where each record is one byte: its leader epoch.
// Records fetched are those bytes, appended at the log end.
type fakeLog struct {
	mu       sync.Mutex
	start    int64
	epochs   []int32 // epochs[i] is the epoch of offset start+i
	hw       int64
	appended int
	truncs   []int64 // offsets TruncateTo was called with
	full     []int64 // offsets TruncateFullyAndStartAt was called with
	failNext error   // returned by the next append or truncation
	// tailEpoch >= 0 is an epoch-cache entry at the log end with no record in it (the replica
	// became leader of it and wrote nothing); a truncation at the log end drops it, as Kafka's
	// truncateTo does.
	tailEpoch int32
}

func newFakeLog(epochs ...int32) *fakeLog { return &fakeLog{epochs: epochs, tailEpoch: -1} }

func (l *fakeLog) LogStartOffset() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.start }
func (l *fakeLog) LogEndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start + int64(len(l.epochs))
}
func (l *fakeLog) HighWatermark() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.hw }

func (l *fakeLog) LastFetchedEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tailEpoch >= 0 {
		return l.tailEpoch
	}
	if len(l.epochs) == 0 {
		return -1
	}
	return l.epochs[len(l.epochs)-1]
}

// EndOffsetForEpoch has log.Log's semantics over the epochs of the records.
func (l *fakeLog) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tailEpoch >= 0 && epoch >= l.tailEpoch {
		return l.tailEpoch, l.start + int64(len(l.epochs))
	}
	return endOffsetForEpoch(l.start, l.epochs, epoch)
}

func endOffsetForEpoch(start int64, epochs []int32, epoch int32) (int32, int64) {
	if epoch < 0 || len(epochs) == 0 {
		return -1, -1
	}
	if epochs[len(epochs)-1] == epoch {
		return epoch, start + int64(len(epochs))
	}
	for i, e := range epochs {
		if e > epoch {
			if i == 0 {
				return epoch, start
			}
			return epochs[i-1], start + int64(i)
		}
	}
	return -1, -1
}

func (l *fakeLog) TruncateTo(off int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failNext; err != nil {
		l.failNext = nil
		return err
	}
	l.truncs = append(l.truncs, off)
	if off >= l.start+int64(len(l.epochs)) {
		l.tailEpoch = -1
	}
	if n := off - l.start; n >= 0 && n < int64(len(l.epochs)) {
		l.epochs = l.epochs[:n]
	}
	l.hw = min(l.hw, l.start+int64(len(l.epochs)))
	return nil
}

func (l *fakeLog) DeleteRecords(off int64) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off > l.hw {
		return -1, errors.New("above the high watermark")
	}
	if n := off - l.start; n > 0 {
		l.epochs = l.epochs[n:]
		l.start = off
	}
	return l.start, nil
}

func (l *fakeLog) TruncateFullyAndStartAt(off int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.full = append(l.full, off)
	l.start, l.epochs, l.hw = off, nil, off
	return nil
}

func (l *fakeLog) AppendAsFollowerIn(_ int32, records []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.failNext; err != nil {
		l.failNext = nil
		return err
	}
	for _, b := range records {
		l.epochs = append(l.epochs, int32(b))
	}
	l.appended += len(records)
	return nil
}

func (l *fakeLog) UpdateFollowerHighWatermark(hw int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := min(hw, l.start+int64(len(l.epochs))); v > l.hw {
		l.hw = v
	}
}

func (l *fakeLog) epochsCopy() []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.epochs)
}

// fakeLocal is a fakeLog with the roles the manager gives it, recording every transition.
type fakeLocal struct {
	*fakeLog
	name string
	rec  *transitions

	mu        sync.Mutex
	set       partition.Settings
	propose   []int32 // what isrChange answers (nil: nothing)
	pending   bool
	cancelled int
	eligible  map[int32]int64
}

type transitions struct {
	mu  sync.Mutex
	log []string
}

func (r *transitions) add(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf(format, a...))
}

func (r *transitions) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.log
	r.log = nil
	return out
}

func (p *fakeLocal) becomeLeader(le, pe int32, replicas, isr []int32, self int32) error {
	p.rec.add("%s leader epoch=%d pe=%d replicas=%v isr=%v", p.name, le, pe, replicas, isr)
	return nil
}

func (p *fakeLocal) becomeFollower(leader, le, pe int32) error {
	p.rec.add("%s follower of %d epoch=%d pe=%d", p.name, leader, le, pe)
	return nil
}

func (p *fakeLocal) updateISR(isr []int32, pe int32) {
	p.mu.Lock()
	p.pending = false
	p.mu.Unlock()
	p.rec.add("%s isr=%v pe=%d", p.name, isr, pe)
}

func (p *fakeLocal) isrChange(time.Time, time.Duration) ([]int32, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.propose == nil || p.pending {
		return nil, false
	}
	p.pending = true
	return p.propose, true
}

func (p *fakeLocal) cancelISRChange() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = false
	p.cancelled++
}

func (p *fakeLocal) setEligibleBrokers(e map[int32]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eligible = e
}

func (p *fakeLocal) followerBrokerEpochs() map[int32]int64 { return map[int32]int64{2: 22} }

func (p *fakeLocal) settings() partition.Settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set
}

func (p *fakeLocal) updateSettings(s partition.Settings) {
	p.mu.Lock()
	p.set = s
	p.mu.Unlock()
	p.rec.add("%s settings", p.name)
}

// fakeStore opens fakeLocals and records removals.
type fakeStore struct {
	rec     *transitions
	mu      sync.Mutex
	parts   map[tp]*fakeLocal
	onDisk  []tp
	failing map[tp]error
}

func newFakeStore(rec *transitions) *fakeStore {
	return &fakeStore{rec: rec, parts: map[tp]*fakeLocal{}, failing: map[tp]error{}}
}

func (s *fakeStore) open(topic string, p int32, set partition.Settings) (local, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := tp{topic, p}
	if err := s.failing[key]; err != nil {
		return nil, err
	}
	if l := s.parts[key]; l != nil {
		return l, nil
	}
	l := &fakeLocal{fakeLog: newFakeLog(), name: fmt.Sprintf("%s-%d", topic, p), rec: s.rec, set: set}
	s.parts[key] = l
	s.rec.add("%s open", l.name)
	return l, nil
}

func (s *fakeStore) removeTopic(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.parts {
		if key.topic == topic {
			delete(s.parts, key)
		}
	}
	s.onDisk = slices.DeleteFunc(s.onDisk, func(k tp) bool { return k.topic == topic })
	s.rec.add("remove topic %s", topic)
	return nil
}

func (s *fakeStore) removePartition(topic string, p int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := tp{topic, p}
	delete(s.parts, key)
	s.onDisk = slices.DeleteFunc(s.onDisk, func(k tp) bool { return k == key })
	s.rec.add("remove %s-%d", topic, p)
	return nil
}

func (s *fakeStore) orphanPartitions(keep func(string, int32) bool) []tp {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []tp
	for _, k := range s.onDisk {
		if !keep(k.topic, k.part) {
			out = append(out, k)
		}
	}
	return out
}

func (s *fakeStore) orphans(keep func(string, int32) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.onDisk {
		if !keep(k.topic, k.part) && !slices.Contains(out, k.topic) {
			out = append(out, k.topic)
		}
	}
	return out
}

func (s *fakeStore) get(topic string, p int32) *fakeLocal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts[tp{topic, p}]
}

var errBoom = errors.New("boom")
