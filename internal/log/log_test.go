package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func testConfig() Config {
	c := DefaultConfig()
	c.FileDeleteDelayMs = 0
	c.RetentionMs = -1
	return c
}

// batch builds a batch of n records whose values are "<tag>-<i>" and
// timestamps ts, ts+1, ...
func batch(tag string, n int, ts int64) []byte {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	return record.Build(record.BatchSpec{BaseTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

func mustOpen(t testing.TB, dir string, cfg Config, clock Clock) *Log {
	t.Helper()
	l, err := Open(dir, cfg, clock)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	r, err := l.Append(b, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readAll reads every batch from offset to the end and returns their headers.
func readAllBatches(t testing.TB, l *Log, from int64) []record.BatchHeader {
	t.Helper()
	var out []record.BatchHeader
	for off := from; off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := record.Split(r.Data)
		if err != nil || len(bs) == 0 {
			t.Fatalf("read at %d: %v, %d batches", off, err, len(bs))
		}
		for _, b := range bs {
			h, err := record.ValidateStored(b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, h)
			off = h.LastOffset() + 1
		}
	}
	return out
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	l := mustOpen(t, dir, testConfig(), clock)
	var want [][]byte
	for i := range 50 {
		b := batch(fmt.Sprint("b", i), i%5+1, 1000+int64(i))
		r := mustAppend(t, l, b)
		if r.BaseOffset != l.LogEndOffset()-int64(i%5+1) || r.LastOffset != l.LogEndOffset()-1 || r.LogAppendTime != -1 {
			t.Fatalf("append %d: %+v", i, r)
		}
		want = append(want, append([]byte(nil), b...))
	}
	check := func(l *Log) {
		t.Helper()
		r, err := l.Read(0, math.MaxInt32, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Data, bytes.Join(want, nil)) {
			t.Fatal("read back differs")
		}
		// Every offset finds the batch that contains it.
		for off := int64(0); off < l.LogEndOffset(); off++ {
			r, err := l.Read(off, 1, math.MaxInt64, true)
			if err != nil {
				t.Fatal(err)
			}
			h, err := record.Validate(r.Data)
			if err != nil || h.BaseOffset > off || h.LastOffset() < off {
				t.Fatalf("offset %d: %+v %v", off, h, err)
			}
		}
	}
	check(l)
	end := l.LogEndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err != nil {
		t.Fatal("no clean shutdown marker")
	}
	l = mustOpen(t, dir, testConfig(), clock)
	defer l.Close()
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !os.IsNotExist(err) {
		t.Fatal("marker not removed on open")
	}
	if l.LogEndOffset() != end {
		t.Fatalf("end %d, want %d", l.LogEndOffset(), end)
	}
	check(l)
	r := mustAppend(t, l, batch("after", 1, 5))
	if r.BaseOffset != end {
		t.Fatal(r)
	}
}

func TestReadLimits(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	var sizes []int
	for i := range 5 {
		b := batch("x", 2, int64(i))
		sizes = append(sizes, len(b))
		mustAppend(t, l, b) // offsets 2i, 2i+1
	}
	for _, tc := range []struct {
		name      string
		off       int64
		max       int32
		maxOffset int64
		minOne    bool
		batches   int
		err       error
	}{
		{"all", 0, math.MaxInt32, math.MaxInt64, true, 5, nil},
		{"middle of batch", 3, math.MaxInt32, math.MaxInt64, true, 4, nil},
		{"maxBytes two", 0, int32(sizes[0] + sizes[1]), math.MaxInt64, true, 2, nil},
		{"maxBytes 1 minOne", 0, 1, math.MaxInt64, true, 1, nil},
		{"maxBytes 1 strict", 0, 1, math.MaxInt64, false, 0, nil},
		{"high watermark", 0, math.MaxInt32, 4, true, 2, nil},
		{"hw inside batch", 0, math.MaxInt32, 5, true, 3, nil},
		{"at hw", 4, math.MaxInt32, 4, true, 0, nil},
		{"at end", 10, math.MaxInt32, math.MaxInt64, true, 0, nil},
		{"past end", 11, math.MaxInt32, math.MaxInt64, true, 0, ErrOffsetOutOfRange},
		{"negative", -1, math.MaxInt32, math.MaxInt64, true, 0, ErrOffsetOutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.Read(tc.off, tc.max, tc.maxOffset, tc.minOne)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			bs, _ := record.Split(r.Data)
			if len(bs) != tc.batches {
				t.Fatalf("%d batches, want %d", len(bs), tc.batches)
			}
			secs, err := l.ReadSections(tc.off, tc.max, tc.maxOffset, tc.minOne)
			if (err == nil) != (tc.err == nil) {
				t.Fatal(err)
			}
			n := int64(0)
			for _, s := range secs {
				n += s.Len
			}
			if n != int64(len(r.Data)) {
				t.Fatalf("sections cover %d bytes, read %d", n, len(r.Data))
			}
		})
	}
}

func TestRollAndIndex(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	cfg.IndexIntervalBytes = 300
	l := mustOpen(t, dir, cfg, newClock())
	for i := range 200 {
		mustAppend(t, l, batch("r", 3, int64(i*10)))
	}
	if l.NumSegments() < 4 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	l.mu.RLock()
	for i, s := range l.mu.segments {
		if s.size > cfg.SegmentBytes {
			t.Fatalf("segment %d: %d bytes", i, s.size)
		}
		if i > 0 && s.base != l.mu.segments[i-1].next {
			t.Fatalf("segment %d base %d, previous ends at %d", i, s.base, l.mu.segments[i-1].next)
		}
		if s.offsetEntries() == 0 {
			t.Fatalf("segment %d has no index entries", i)
		}
		if _, err := os.Stat(filepath.Join(dir, segmentName(s.base, ".log"))); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.RUnlock()
	hs := readAllBatches(t, l, 0)
	if len(hs) != 200 || hs[199].LastOffset() != 599 {
		t.Fatalf("%d batches", len(hs))
	}
	// Index file contents match memory (Kafka layout).
	l.mu.RLock()
	s := l.mu.segments[0]
	onDisk, _ := os.ReadFile(s.path(".index"))
	if !bytes.Equal(onDisk, s.offIndex) {
		t.Fatal("index file differs from memory")
	}
	l.mu.RUnlock()
	l.Close()
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if hs := readAllBatches(t, l, 0); len(hs) != 200 {
		t.Fatalf("after reopen: %d batches", len(hs))
	}
	if hs := readAllBatches(t, l, 301); hs[0].BaseOffset != 300 {
		t.Fatal(hs[0])
	}
}

func TestRollOnTimeAndIndexFull(t *testing.T) {
	clock := newClock()
	cfg := testConfig()
	cfg.SegmentMs = 1000
	cfg.IndexIntervalBytes = 0
	cfg.SegmentIndexBytes = 24 // 3 offset entries, 2 time entries
	l := mustOpen(t, t.TempDir(), cfg, clock)
	defer l.Close()
	mustAppend(t, l, batch("a", 1, 1))
	clock.Add(999 * time.Millisecond)
	mustAppend(t, l, batch("a", 1, 2))
	if l.NumSegments() != 1 {
		t.Fatal("rolled early")
	}
	clock.Add(time.Millisecond)
	mustAppend(t, l, batch("a", 1, 3))
	if l.NumSegments() != 2 {
		t.Fatal("did not roll on segment.ms")
	}
	for i := range 10 {
		mustAppend(t, l, batch("b", 1, int64(10+i)))
	}
	if n := l.NumSegments(); n < 4 {
		t.Fatalf("index full did not roll: %d segments", n)
	}
	readAllBatches(t, l, 0)
	// EnforceRetention rolls a segment past segment.ms.
	clock.Add(2 * time.Second)
	before := l.NumSegments()
	if _, err := l.EnforceRetention(); err != nil || l.NumSegments() != before+1 {
		t.Fatal(err, l.NumSegments())
	}
}

func TestLogAppendTimeAndEpoch(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testConfig(), newClock())
	b := batch("t", 2, 100)
	r, err := l.Append(b, 7, 5555)
	if err != nil || r.LogAppendTime != 5555 {
		t.Fatal(r, err)
	}
	rr, _ := l.Read(0, 1000, math.MaxInt64, true)
	h, recs, err := record.Records(rr.Data)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 5555 || h.PartitionLeaderEpoch != 7 || h.Timestamp(recs[1]) != 5555 {
		t.Fatal(h, err)
	}
	if l.LatestEpoch() != 7 {
		t.Fatal(l.LatestEpoch())
	}
	if _, err := l.Append(batch("t", 3, 100), 9, -1); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = mustOpen(t, dir, testConfig(), newClock())
	defer l.Close()
	if e, off := l.EndOffsetForEpoch(7); e != 7 || off != 2 {
		t.Fatal(e, off)
	}
	if e, off := l.EndOffsetForEpoch(9); e != 9 || off != 5 {
		t.Fatal(e, off)
	}
}

func TestEpochCache(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testConfig(), newClock())
	defer l.Close()
	for range 10 {
		mustAppend(t, l, batch("e", 10, 0)) // offsets 0..99
	}
	for _, a := range []struct {
		e int32
		o int64
	}{{1, 0}, {3, 20}, {3, 25}, {5, 50}} {
		if err := l.AssignEpoch(a.e, a.o); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(filepath.Join(dir, leaderEpochFile))
	if string(got) != "0\n3\n1 0\n3 20\n5 50\n" {
		t.Fatalf("checkpoint %q", got)
	}
	for _, tc := range []struct {
		req     int32
		epoch   int32
		endOffs int64
	}{
		{0, 0, 0}, {1, 1, 20}, {2, 1, 20}, {3, 3, 50}, {4, 3, 50}, {5, 5, 100}, {6, -1, -1}, {-1, -1, -1},
	} {
		if e, o := l.EndOffsetForEpoch(tc.req); e != tc.epoch || o != tc.endOffs {
			t.Fatalf("epoch %d: got (%d, %d), want (%d, %d)", tc.req, e, o, tc.epoch, tc.endOffs)
		}
	}
	// A lower epoch at a lower offset replaces conflicting entries (leader change + truncation).
	if err := l.AssignEpoch(4, 30); err != nil {
		t.Fatal(err)
	}
	if l.LatestEpoch() != 4 {
		t.Fatal(l.LatestEpoch())
	}
	if err := l.DeleteRecordsBefore(25); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dir, leaderEpochFile))
	if string(got) != "0\n2\n3 25\n4 30\n" {
		t.Fatalf("checkpoint after delete %q", got)
	}
}

func TestTimestamps(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 2000
	cfg.IndexIntervalBytes = 200
	l := mustOpen(t, dir, cfg, newClock())
	// Batch i holds offsets 3i..3i+2 with timestamps 100i, 100i+1, 100i+2,
	// except batch 10 which goes back in time.
	for i := range 40 {
		ts := int64(100 * i)
		if i == 10 {
			ts = 5
		}
		mustAppend(t, l, batch("ts", 3, ts))
	}
	if off, ts, err := l.MaxTimestamp(); err != nil || off != 119 || ts != 3902 {
		t.Fatal(off, ts, err)
	}
	for _, tc := range []struct {
		ts, off, got int64
		ok           bool
	}{
		{0, 0, 0, true},
		{1, 1, 1, true},
		{3, 3, 100, true},
		{101, 4, 101, true},
		{102, 5, 102, true},
		{103, 6, 200, true},
		{950, 33, 1100, true},
		{3902, 119, 3902, true},
		{3903, 0, 0, false},
	} {
		off, got, ok, err := l.OffsetForTimestamp(tc.ts)
		if err != nil || ok != tc.ok || (ok && (off != tc.off || got != tc.got)) {
			t.Fatalf("ts %d: got (%d, %d, %v, %v), want (%d, %d, %v)", tc.ts, off, got, ok, err, tc.off, tc.got, tc.ok)
		}
	}
	l.Close()
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if off, ts, err := l.MaxTimestamp(); err != nil || off != 119 || ts != 3902 {
		t.Fatal(off, ts, err)
	}
	if off, _, ok, _ := l.OffsetForTimestamp(950); !ok || off != 33 {
		t.Fatal(off)
	}
	if err := l.DeleteRecordsBefore(40); err != nil {
		t.Fatal(err)
	}
	if off, _, ok, _ := l.OffsetForTimestamp(0); !ok || off != 40 {
		t.Fatal("timestamp lookup below log start:", off)
	}
	empty := mustOpen(t, t.TempDir(), cfg, newClock())
	defer empty.Close()
	if off, ts, err := empty.MaxTimestamp(); off != -1 || ts != -1 || err != nil {
		t.Fatal(off, ts, err)
	}
}

func TestRetention(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1000
	l := mustOpen(t, dir, cfg, clock)
	defer l.Close()
	now := clock.Now().UnixMilli()
	for i := range 30 {
		mustAppend(t, l, batch("ret", 2, now-int64(30-i)*60_000)) // one per minute, oldest 30 min ago
	}
	segs := l.NumSegments()
	size := l.Size()
	// Nothing to do with infinite retention.
	if n, err := l.EnforceRetention(); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	// By size: keep at least 1000 bytes.
	cfg.RetentionBytes = 1000
	l.SetConfig(cfg)
	n, err := l.EnforceRetention()
	if err != nil || n == 0 || l.Size() < 1000 || l.NumSegments() != segs-n {
		t.Fatal(n, err, l.Size())
	}
	if l.Size() >= size || l.LogStartOffset() == 0 {
		t.Fatal("nothing removed")
	}
	start := l.LogStartOffset()
	if _, err := l.Read(start-1, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatal(err)
	}
	readAllBatches(t, l, start)
	// By time: everything older than 5 minutes, but never the active segment.
	cfg.RetentionBytes = -1
	cfg.RetentionMs = 5 * 60_000
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	cfg.RetentionMs = 0
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(); err != nil || l.NumSegments() != 1 {
		t.Fatal(err, l.NumSegments())
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == deletedSuffix {
			t.Fatal("left", e.Name())
		}
	}
	if off, ok, _ := readOffsetFile(vfs.Default, dir, logStartOffsetFile); !ok || off != l.LogStartOffset() {
		t.Fatal(off, ok)
	}
}

func TestDeleteDelay(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	// Long enough for the checks "during the delay" below to run within it on a loaded machine.
	cfg.FileDeleteDelayMs = 500
	l := mustOpen(t, dir, cfg, newClock())
	for range 10 {
		mustAppend(t, l, batch("d", 3, 0))
	}
	secs, err := l.ReadSections(0, 100, math.MaxInt64, true)
	if err != nil || len(secs) != 1 {
		t.Fatal(err)
	}
	if err := l.DeleteRecordsBefore(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	// The section stays readable during the delay.
	buf := make([]byte, secs[0].Len)
	if _, err := secs[0].File.ReadAt(buf, secs[0].Pos); err != nil {
		t.Fatal(err)
	}
	if _, err := record.Validate(buf); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*"+deletedSuffix))
	if len(matches) == 0 {
		t.Fatal("no .deleted files")
	}
	// After the delay the files go (the timer may fire late on a loaded machine: wait for it).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if matches, _ = filepath.Glob(filepath.Join(dir, "*"+deletedSuffix)); len(matches) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not deleted 10 s after the 500 ms delay", matches)
		}
	}
	if l.LogStartOffset() != l.LogEndOffset() {
		t.Fatal(l.LogStartOffset())
	}
	l.Close()
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if l.LogStartOffset() != 30 || l.LogEndOffset() != 30 {
		t.Fatal(l.LogStartOffset(), l.LogEndOffset())
	}
	if r := mustAppend(t, l, batch("d", 1, 0)); r.BaseOffset != 30 {
		t.Fatal(r)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 500
	l := mustOpen(t, dir, cfg, newClock())
	for range 20 {
		mustAppend(t, l, batch("d", 3, 0))
	}
	if err := l.DeleteRecordsBefore(61); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatal(err)
	}
	if err := l.DeleteRecordsBefore(20); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 20 {
		t.Fatal(l.LogStartOffset())
	}
	if hs := readAllBatches(t, l, 20); hs[0].BaseOffset != 18 {
		t.Fatal("first batch", hs[0].BaseOffset)
	}
	l.mu.RLock()
	first := l.mu.segments[0].base
	l.mu.RUnlock()
	if first > 20 || first == 0 {
		t.Fatalf("first segment %d", first)
	}
	if err := l.DeleteRecordsBefore(10); err != nil || l.LogStartOffset() != 20 {
		t.Fatal("start moved back")
	}
	l.Close()
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if l.LogStartOffset() != 20 {
		t.Fatal("start offset not persisted", l.LogStartOffset())
	}
}

func TestScanHeaders(t *testing.T) {
	l := mustOpen(t, t.TempDir(), Config{SegmentBytes: 300, FileDeleteDelayMs: 0, RetentionMs: -1, RetentionBytes: -1}, newClock())
	defer l.Close()
	for range 10 {
		mustAppend(t, l, batch("s", 2, 0))
	}
	var got []int64
	if err := l.ScanHeaders(5, func(h record.BatchHeader) error { got = append(got, h.BaseOffset); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[6 8 10 12 14 16 18]" {
		t.Fatal(got)
	}
}

func TestFlushPolicy(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := testConfig()
	cfg.FlushIntervalMessages = 5
	l := mustOpen(t, dir, cfg, clock)
	defer l.Close()
	mustAppend(t, l, batch("f", 3, 0))
	if off, _, _ := readOffsetFile(vfs.Default, dir, recoveryPointFile); off != 0 {
		t.Fatal("flushed early", off)
	}
	mustAppend(t, l, batch("f", 3, 0))
	if off, _, _ := readOffsetFile(vfs.Default, dir, recoveryPointFile); off != 6 {
		t.Fatal("not flushed by count", off)
	}
	cfg.FlushIntervalMessages = math.MaxInt64
	cfg.FlushIntervalMs = 1000
	l.SetConfig(cfg)
	mustAppend(t, l, batch("f", 1, 0))
	clock.Add(time.Second)
	mustAppend(t, l, batch("f", 1, 0))
	if off, _, _ := readOffsetFile(vfs.Default, dir, recoveryPointFile); off != 8 {
		t.Fatal("not flushed by time", off)
	}
}

func TestConcurrentReadAppend(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 4000
	cfg.IndexIntervalBytes = 100
	l := mustOpen(t, t.TempDir(), cfg, newClock())
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := l.LogEndOffset()
				for off := int64(0); off < end; off += 7 {
					r, err := l.Read(off, 500, end, true)
					if err != nil {
						t.Error(err)
						return
					}
					if bs, err := record.Split(r.Data); err != nil || len(bs) == 0 {
						t.Error("bad read", err)
						return
					}
				}
			}
		}()
	}
	for range 500 {
		mustAppend(t, l, batch("c", 2, 0))
	}
	close(stop)
	wg.Wait()
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testConfig(), newClock())
	l.Close()
	if _, err := l.Append(batch("x", 1, 0), 0, -1); !errors.Is(err, ErrLogClosed) {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 1, 1, true); !errors.Is(err, ErrLogClosed) {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestDelete(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "topic-0")
	l := mustOpen(t, dir, testConfig(), newClock())
	mustAppend(t, l, batch("x", 1, 0))
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("dir still there")
	}
}

func BenchmarkAppend(b *testing.B) {
	cfg := testConfig()
	l := mustOpen(b, b.TempDir(), cfg, newClock())
	defer l.Close()
	bt := batch("bench", 10, 0)
	b.SetBytes(int64(len(bt)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(bt, 0, -1); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTruncateTo(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 600
	cfg.IndexIntervalBytes = 100
	l := mustOpen(t, dir, cfg, newClock())
	for i := range 30 {
		if _, err := l.Append(batch("t", 2, int64(i)), int32(i/10), -1); err != nil { // epochs 0,1,2 at 0,20,40
			t.Fatal(err)
		}
	}
	if err := l.TruncateTo(100); err != nil || l.LogEndOffset() != 60 {
		t.Fatal("no-op truncate", err)
	}
	if err := l.TruncateTo(31); err != nil { // inside batch [30,31]: it goes whole (Kafka)
		t.Fatal(err)
	}
	if l.LogEndOffset() != 30 {
		t.Fatal(l.LogEndOffset())
	}
	if l.LatestEpoch() != 1 {
		t.Fatal(l.LatestEpoch())
	}
	hs := readAllBatches(t, l, 0)
	if len(hs) != 15 {
		t.Fatal(len(hs))
	}
	if off, ts, _ := l.MaxTimestamp(); off != 29 || ts != 15 {
		t.Fatal(off, ts)
	}
	if r := mustAppend(t, l, batch("n", 1, 0)); r.BaseOffset != 30 {
		t.Fatal(r)
	}
	if err := l.TruncateTo(0); err != nil || l.LogEndOffset() != 0 || l.NumSegments() != 1 {
		t.Fatal(err, l.LogEndOffset(), l.NumSegments())
	}
	mustAppend(t, l, batch("n", 1, 0))
	l.Close()
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if l.LogEndOffset() != 1 {
		t.Fatal(l.LogEndOffset())
	}
}
