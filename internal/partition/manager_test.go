package partition

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func managerTestSettings() Settings {
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	return Settings{Log: cfg, MaxMessageBytes: 1 << 20, MinInsyncReplicas: 1}
}

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m, err := NewManager([]string{t.TempDir()}, wallClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// slowOpen makes m's opens of topic block until release is called, counting them and reporting
// each on entered.
// The test's end releases the opens if it did not (a failed test must not leave an open blocked:
// the manager's Close waits for it; cleanups run last registered first, so before that Close).
func slowOpen(t *testing.T, m *Manager, topic string) (entered chan struct{}, release func(), opens *atomic.Int32) {
	entered, opens = make(chan struct{}, 16), new(atomic.Int32)
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	m.open = func(dir, tp string, index int32, s Settings, epoch int32, clock log.Clock, ld *LogDir) (*Partition, error) {
		if tp == topic {
			opens.Add(1)
			entered <- struct{}{}
			<-ch
		}
		return Open(dir, tp, index, s, epoch, clock, ld)
	}
	return entered, release, opens
}

// waitUntil polls cond, under m.mu, until it holds or a deadline passes.
func waitUntil(t *testing.T, m *Manager, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.RLock()
		ok := cond()
		m.mu.RUnlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// TestEnsureOpensOutsideTheLock: while one partition is being opened (recovery, fsyncs), Get,
// Topic, All and Ensure of other, open partitions answer at once; a second Ensure of the partition
// being opened waits for that open and does not open it again.
func TestEnsureOpensOutsideTheLock(t *testing.T) {
	m := newTestManager(t)
	hot, err := m.Ensure("hot", 0, managerTestSettings(), 0)
	if err != nil {
		t.Fatal(err)
	}
	entered, release, opens := slowOpen(t, m, "new")
	type result struct {
		p   *Partition
		err error
	}
	first := make(chan result, 1)
	go func() { p, err := m.Ensure("new", 0, managerTestSettings(), 0); first <- result{p, err} }()
	waitFor(t, entered, "the slow open")

	got := make(chan *Partition, 1)
	go func() {
		if m.Get("hot", 0) == nil || len(m.Topic("hot")) != 1 || len(m.All()) != 1 {
			t.Error("hot partition not listed during the open")
		}
		p, err := m.Ensure("hot", 0, managerTestSettings(), 0)
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	if p := waitFor(t, got, "Get and Ensure of another partition during a slow open"); p != hot {
		t.Fatalf("Ensure of an open partition returned %p, want %p", p, hot)
	}
	if m.Get("new", 0) != nil {
		t.Fatal("a partition is visible before its open finished")
	}

	second := make(chan result, 1)
	go func() { p, err := m.Ensure("new", 0, managerTestSettings(), 0); second <- result{p, err} }()
	release()
	r1, r2 := waitFor(t, first, "the first Ensure"), waitFor(t, second, "the second Ensure")
	if r1.err != nil || r2.err != nil {
		t.Fatal(r1.err, r2.err)
	}
	if r1.p != r2.p || m.Get("new", 0) != r1.p {
		t.Fatalf("two Ensures returned %p and %p, Get %p", r1.p, r2.p, m.Get("new", 0))
	}
	if n := opens.Load(); n != 1 {
		t.Fatalf("partition opened %d times", n)
	}
}

// TestEnsureConcurrentOpenOnce: many concurrent Ensures of one new partition open it once.
func TestEnsureConcurrentOpenOnce(t *testing.T) {
	m := newTestManager(t)
	entered, release, opens := slowOpen(t, m, "t")
	var wg sync.WaitGroup
	parts := make([]*Partition, 8)
	for i := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := m.Ensure("t", 3, managerTestSettings(), 0)
			if err != nil {
				t.Error(err)
			}
			parts[i] = p
		}()
	}
	waitFor(t, entered, "the open")
	release()
	wg.Wait()
	for _, p := range parts {
		if p == nil || p != parts[0] {
			t.Fatalf("Ensures returned different partitions: %v", parts)
		}
	}
	if n := opens.Load(); n != 1 {
		t.Fatalf("partition opened %d times", n)
	}
}

// TestRemoveTopicDuringOpen: RemoveTopic racing an open waits for it; the opened partition is
// deleted, not published, and its Ensure reports ErrRemovedWhileOpening.
func TestRemoveTopicDuringOpen(t *testing.T) {
	m := newTestManager(t)
	entered, release, _ := slowOpen(t, m, "doomed")
	ensured := make(chan error, 1)
	go func() { _, err := m.Ensure("doomed", 0, managerTestSettings(), 0); ensured <- err }()
	waitFor(t, entered, "the slow open")
	removed := make(chan error, 1)
	go func() { removed <- m.RemoveTopic("doomed") }()
	waitUntil(t, m, "RemoveTopic to mark the open", func() bool {
		op := m.opening[DirName("doomed", 0)]
		return op != nil && op.removed
	})
	select {
	case err := <-removed:
		t.Fatalf("RemoveTopic returned (%v) while the partition was still being opened", err)
	case err := <-ensured:
		t.Fatalf("Ensure returned (%v) before its open finished", err)
	case <-time.After(100 * time.Millisecond): // a bounded look: neither may finish while held
	}
	release()
	if err := waitFor(t, ensured, "Ensure"); !errors.Is(err, ErrRemovedWhileOpening) {
		t.Fatalf("Ensure: %v, want ErrRemovedWhileOpening", err)
	}
	if err := waitFor(t, removed, "RemoveTopic"); err != nil {
		t.Fatal(err)
	}
	if m.Get("doomed", 0) != nil || len(m.All()) != 0 {
		t.Fatal("a removed partition is hosted")
	}
	if _, err := os.Stat(filepath.Join(m.dirs[0], DirName("doomed", 0))); !os.IsNotExist(err) {
		t.Fatalf("the removed partition's directory is still there: %v", err)
	}
	// The topic can be created again.
	if _, err := m.Ensure("doomed", 0, managerTestSettings(), 0); err != nil {
		t.Fatal(err)
	}
}

// TestCloseDuringOpen: Close waits for an open in progress, which closes its partition instead of
// publishing it; the log dir is still marked cleanly shut down.
func TestCloseDuringOpen(t *testing.T) {
	m, err := NewManager([]string{t.TempDir()}, wallClock{})
	if err != nil {
		t.Fatal(err)
	}
	entered, release, _ := slowOpen(t, m, "late")
	ensured := make(chan error, 1)
	go func() { _, err := m.Ensure("late", 0, managerTestSettings(), 0); ensured <- err }()
	waitFor(t, entered, "the slow open")
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	waitUntil(t, m, "Close to begin", func() bool { return m.closed })
	release()
	if err := waitFor(t, closed, "Close"); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, ensured, "Ensure"); !errors.Is(err, ErrRemovedWhileOpening) {
		t.Fatalf("Ensure: %v, want ErrRemovedWhileOpening", err)
	}
	if _, err := os.Stat(filepath.Join(m.dirs[0], log.DirCleanShutdownFile)); err != nil {
		t.Fatalf("no clean-shutdown marker: %v", err)
	}
}

func TestStartHighWatermark(t *testing.T) {
	for _, tc := range []struct {
		cp                 int64
		ok                 bool
		start, end, wantHW int64
	}{
		{5, true, 0, 10, 5},
		{0, true, 3, 10, 3},   // below the log start (records deleted since): the log start
		{99, true, 0, 10, 10}, // beyond the log end (unflushed tail lost in a crash): the log end
		{7, false, 2, 10, 2},  // no entry: nothing known committed
		{0, false, 0, 0, 0},
	} {
		if got := StartHighWatermark(tc.cp, tc.ok, tc.start, tc.end); got != tc.wantHW {
			t.Errorf("StartHighWatermark(%d, %v, %d, %d) = %d, want %d", tc.cp, tc.ok, tc.start, tc.end, got, tc.wantHW)
		}
	}
}

// TestHighWatermarkCheckpointReadAtStart: a partition starts from its checkpointed high watermark,
// clamped to its log; a corrupt checkpoint is reported and ignored (start from the log start),
// then rewritten. A single replica then commits its whole log (the leader's rule), as before.
func TestHighWatermarkCheckpointReadAtStart(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Manager, *Partition) {
		t.Helper()
		m, err := NewManager([]string{dir}, wallClock{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.Ensure("t", 0, managerTestSettings(), 0)
		if err != nil {
			t.Fatal(err)
		}
		return m, p
	}
	m, p := open()
	for range 10 {
		if _, err := p.Append(produceBatch(1, 10, 0), -1, OriginClient); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.DeleteRecords(2); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteHighWatermarks(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	hws, err := ReadHighWatermarks(vfs.Default, dir)
	if err != nil || hws["t-0"] != 10 {
		t.Fatalf("checkpoint written: %v, %v", hws, err)
	}

	path := filepath.Join(dir, CheckpointFile)
	for _, tc := range []struct {
		name, checkpoint string
		wantStart        int64
		wantErr          bool
	}{
		{"as written", "", 10, false},
		{"inside the log", "0\n1\nt 0 6\n", 6, false},
		{"below the log start", "0\n1\nt 0 1\n", 2, false},
		{"beyond the log end", "0\n1\nt 0 500\n", 10, false},
		{"no entry", "0\n1\nother 0 5\n", 2, false},
		{"corrupt count", "0\n3\nt 0 6\n", 2, true},
		{"corrupt line", "0\n1\nt 0 six\n", 2, true},
		{"wrong version", "1\n1\nt 0 6\n", 2, true},
		{"garbage", "\x00\xff\n", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.checkpoint != "" {
				if err := os.WriteFile(path, []byte(tc.checkpoint), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m, p := open()
			defer func() {
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			}()
			if errs := m.CheckpointErrors(); (len(errs) > 0) != tc.wantErr {
				t.Fatalf("checkpoint errors %v, want some: %v", errs, tc.wantErr)
			}
			if got := p.StartedFrom(); got != tc.wantStart {
				t.Fatalf("started from high watermark %d, want %d", got, tc.wantStart)
			}
			if hw := p.HighWatermark(); hw != 10 {
				t.Fatalf("high watermark %d after start, want the log end 10 (a single replica)", hw)
			}
			// The next checkpoint replaces whatever was there with the partition's real state.
			if err := m.WriteHighWatermarks(); err != nil {
				t.Fatal(err)
			}
			if hws, err := ReadHighWatermarks(vfs.Default, dir); err != nil || hws["t-0"] != 10 {
				t.Fatalf("checkpoint rewritten: %v, %v", hws, err)
			}
		})
	}
}

// FuzzParseHighWatermarks: any bytes on disk give a map of non-negative offsets or an error, never
// a panic; a well-formed file gives back what it says.
func FuzzParseHighWatermarks(f *testing.F) {
	for _, seed := range []string{
		"0\n0\n", "0\n1\nt 0 5\n", "0\n2\na-b 3 0\nc 0 9223372036854775807\n", "0\n1\nt 0 5",
		"1\n0\n", "0\n2\nt 0 5\n", "0\n1\nt -1 5\n", "0\n1\nt 0 -5\n", "0\n1\nt 0\n", "", "\n\n\n",
		"0\n99999999999999999999\n", "0\n1\n 0 1\n", "0\n1\nt 0 5 6\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hws, err := parseHighWatermarks("fuzz", b)
		if err != nil {
			if hws != nil {
				t.Fatalf("entries %v with error %v", hws, err)
			}
			return
		}
		for name, off := range hws {
			if _, _, ok := ParseDirName(name); !ok || off < 0 {
				t.Fatalf("entry %q %d", name, off)
			}
		}
	})
}

// TestRemovePartition: one partition of a topic is closed and its directory deleted; the
// topic's other partitions stay; a directory left on disk (not open) is listed by
// OrphanPartitions and removed too.
func TestRemovePartition(t *testing.T) {
	m := newTestManager(t)
	for p := int32(0); p < 2; p++ {
		if _, err := m.Ensure("moving", p, managerTestSettings(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RemovePartition("moving", 0); err != nil {
		t.Fatal(err)
	}
	if m.Get("moving", 0) != nil || m.Get("moving", 1) == nil || len(m.All()) != 1 {
		t.Fatal("RemovePartition removed the wrong partitions")
	}
	if _, err := os.Stat(filepath.Join(m.dirs[0], DirName("moving", 0))); !os.IsNotExist(err) {
		t.Fatalf("the removed partition's directory is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.dirs[0], DirName("moving", 1))); err != nil {
		t.Fatalf("the other partition's directory: %v", err)
	}
	keepNone := func(string, int32) bool { return false }
	if got := m.OrphanPartitions(keepNone); !slices.Equal(got, []string{"moving-1"}) {
		t.Fatalf("OrphanPartitions = %v", got)
	}
	if err := m.RemovePartition("moving", 1); err != nil {
		t.Fatal(err)
	}
	if got := m.OrphanPartitions(keepNone); len(got) != 0 || len(m.Topic("moving")) != 0 {
		t.Fatalf("after removing both: orphans %v, hosted %v", got, m.Topic("moving"))
	}
	// Removing what is not there is no error; the partition can be created again.
	if err := m.RemovePartition("moving", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ensure("moving", 0, managerTestSettings(), 0); err != nil {
		t.Fatal(err)
	}
}
