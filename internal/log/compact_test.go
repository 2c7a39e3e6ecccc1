package log

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/record"
)

func compactConfig() Config {
	c := testConfig()
	c.Compact, c.NoDelete = true, true
	c.SegmentBytes = 1000
	c.DeleteRetentionMs = 3_600_000
	return c
}

// kv is one record as a reader sees it.
type kv struct {
	offset     int64
	key, value string
	tombstone  bool
	ts         int64
}

// keyed builds a batch of records with the given keys; a value "" is a tombstone.
func keyed(codec record.Codec, ts int64, pairs ...string) []byte {
	return keyedProducer(codec, ts, -1, -1, pairs...)
}

func keyedProducer(codec record.Codec, ts, pid int64, seq int32, pairs ...string) []byte {
	recs := kvRecords(pairs)
	epoch := int16(-1)
	if pid >= 0 {
		epoch = 0
	}
	return record.Build(record.BatchSpec{Codec: codec, BaseTimestamp: ts, ProducerID: pid, ProducerEpoch: epoch,
		BaseSequence: seq, Records: recs})
}

// readRecords reads every record of the log as a consumer would, following
// offset gaps left by compaction.
func readRecords(t testing.TB, l *Log) ([]kv, []record.BatchHeader) {
	t.Helper()
	var out []kv
	var hdrs []record.BatchHeader
	eachBatch(t, l, func(h record.BatchHeader, recs []record.Record, readFrom int64) {
		hdrs = append(hdrs, h)
		if h.Control() { // consumers do not see control records
			return
		}
		for _, rec := range recs {
			o := h.BaseOffset + int64(rec.OffsetDelta)
			if o < readFrom {
				continue
			}
			out = append(out, kv{offset: o, key: string(rec.Key), value: string(rec.Value), tombstone: rec.Value == nil, ts: h.Timestamp(rec)})
		}
	})
	return out, hdrs
}

// eachBatch calls fn with every batch of l, from its log start offset on, in offset order, and
// the offset the read that returned the batch started at (its first batch may begin below).
func eachBatch(t testing.TB, l *Log, fn func(h record.BatchHeader, recs []record.Record, readFrom int64)) {
	t.Helper()
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs, err := record.Split(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) == 0 {
			return
		}
		from := off
		for _, b := range bs {
			h, recs, err := record.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			fn(h, recs, from)
			off = h.LastOffset() + 1
		}
	}
}

// latestByKey is what a compacted log must still say: each key's last record.
func latestByKey(recs []kv) map[string]kv {
	m := map[string]kv{}
	for _, r := range recs {
		m[r.key] = r
	}
	return m
}

// fill appends rounds of updates to keys k0..k9 (one batch per update, some
// multi-record and compressed), then a batch of key "tail" that stays in the
// active segment.
func fill(t *testing.T, l *Log, clock *fakeClock, rounds int) {
	t.Helper()
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	for r := range rounds {
		for k := 0; k < 10; k += 2 {
			ts := clock.Now().UnixMilli()
			mustAppend(t, l, keyed(codecs[(r+k)%len(codecs)], ts,
				fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", k, r),
				fmt.Sprintf("k%d", k+1), fmt.Sprintf("v%d-%d", k+1, r)))
		}
	}
	if _, err := l.rollForTest(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, keyed(record.CodecNone, clock.Now().UnixMilli(), "tail", "t"))
}

func (l *Log) rollForTest() (*segment, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.rollLocked()
}

func TestCleanKeepsLatestPerKey(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	l := mustOpen(t, dir, compactConfig(), clock)
	defer l.Close()
	fill(t, l, clock, 30)
	before, _ := readRecords(t, l)
	want := latestByKey(before)
	segsBefore, sizeBefore, end := l.NumSegments(), l.Size(), l.LogEndOffset()
	if !l.NeedsCleaning(end) {
		t.Fatal("a never-cleaned log with 300 updates of 10 keys needs no cleaning")
	}

	st, err := l.Clean(end)
	if err != nil {
		t.Fatal(err)
	}
	after, hdrs := readRecords(t, l)
	if len(after) != len(want) {
		t.Fatalf("%d records after cleaning, want one per key (%d): %+v", len(after), len(want), after)
	}
	for _, r := range after {
		if want[r.key] != r {
			t.Fatalf("record %+v, want %+v", r, want[r.key])
		}
	}
	if st.RecordsRemoved != int64(len(before)-len(after)) || st.RecordsRead != int64(len(before)-1) {
		t.Fatalf("stats %+v for %d -> %d records", st, len(before), len(after))
	}
	if l.Size() >= sizeBefore/4 {
		t.Fatalf("bytes %d -> %d", sizeBefore, l.Size())
	}
	if l.LogEndOffset() != end || l.LogStartOffset() != 0 {
		t.Fatalf("offsets moved: [%d, %d)", l.LogStartOffset(), l.LogEndOffset())
	}
	for _, h := range hdrs {
		if h.NumRecords > h.LastOffsetDelta+1 {
			t.Fatalf("batch %+v", h)
		}
	}
	if l.NeedsCleaning(end) {
		t.Fatal("needs cleaning right after a pass with nothing new")
	}
	// A second pass removes nothing more but merges the small cleaned segments.
	if st2, err := l.Clean(end); err != nil || st2.RecordsRemoved != 0 {
		t.Fatalf("second pass: %+v %v", st2, err)
	}
	if l.NumSegments() > 2 {
		t.Fatalf("segments %d -> %d after two passes", segsBefore, l.NumSegments())
	}
	// Appends go on at the end; a restart reads the same.
	mustAppend(t, l, keyed(record.CodecNone, clock.Now().UnixMilli(), "k0", "new"))
	want["k0"] = kv{offset: end, key: "k0", value: "new", ts: clock.Now().UnixMilli()}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := mustOpen(t, dir, compactConfig(), clock)
	defer l2.Close()
	got, _ := readRecords(t, l2)
	if m := latestByKey(got); fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("after restart\n got %v\nwant %v", m, want)
	}
}

func TestCleanOnlyBelowLimitAndLag(t *testing.T) {
	clock := newClock()
	cfg := compactConfig()
	l := mustOpen(t, t.TempDir(), cfg, clock)
	defer l.Close()
	fill(t, l, clock, 10)
	// Nothing below offset 1 ends there: nothing to clean.
	if st, err := l.Clean(1); err != nil || st.Segments != 0 {
		t.Fatalf("clean below 1: %+v %v", st, err)
	}
	// Records are as old as the lag: not yet.
	cfg.MinCompactionLagMs = 60_000
	l.SetConfig(cfg)
	if l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("needs cleaning inside min.compaction.lag.ms")
	}
	if st, err := l.Clean(l.LogEndOffset()); err != nil || st.Segments != 0 {
		t.Fatalf("clean inside the lag: %+v %v", st, err)
	}
	clock.Add(2 * time.Minute)
	if !l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("no cleaning needed past min.compaction.lag.ms")
	}
	// A log without cleanup.policy=compact is never cleaned.
	cfg.Compact = false
	l.SetConfig(cfg)
	if l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("delete-policy log needs cleaning")
	}
	if st, err := l.Clean(l.LogEndOffset()); err != nil || st.Segments != 0 {
		t.Fatalf("delete-policy log cleaned: %+v %v", st, err)
	}
}

func TestDirtyRatioAndMaxLag(t *testing.T) {
	clock := newClock()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.9
	l := mustOpen(t, t.TempDir(), cfg, clock)
	defer l.Close()
	fill(t, l, clock, 20)
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	// A little new data: under the 0.9 ratio.
	for i := range 3 {
		mustAppend(t, l, keyed(record.CodecNone, clock.Now().UnixMilli(), "k1", fmt.Sprint("x", i)))
	}
	l.rollForTest()
	mustAppend(t, l, keyed(record.CodecNone, clock.Now().UnixMilli(), "tail", "t2"))
	if l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("needs cleaning under min.cleanable.dirty.ratio")
	}
	cfg.MaxCompactionLagMs = 10_000
	l.SetConfig(cfg)
	clock.Add(11 * time.Second)
	if !l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("dirty data older than max.compaction.lag.ms does not force cleaning")
	}
}

func TestTombstonesOutliveDeleteRetention(t *testing.T) {
	clock := newClock()
	cfg := compactConfig()
	cfg.DeleteRetentionMs = 60_000
	l := mustOpen(t, t.TempDir(), cfg, clock)
	defer l.Close()
	now := clock.Now().UnixMilli()
	mustAppend(t, l, keyed(record.CodecNone, now, "a", "1", "b", "1"))
	mustAppend(t, l, keyed(record.CodecNone, now, "a", "")) // delete a
	l.rollForTest()
	mustAppend(t, l, keyed(record.CodecNone, now, "tail", "t"))

	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	got, _ := readRecords(t, l)
	if len(got) != 3 || got[0].key != "b" || got[1].key != "a" || !got[1].tombstone || got[1].offset != 2 {
		t.Fatalf("after first clean: %+v", got)
	}
	if l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("needs cleaning before the tombstone is due")
	}
	clock.Add(time.Minute)
	if !l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("a tombstone past delete.retention.ms does not make the log cleanable")
	}
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	got, _ = readRecords(t, l)
	if len(got) != 2 || got[0].key != "b" || got[1].key != "tail" {
		t.Fatalf("after delete.retention.ms: %+v", got)
	}
}

func TestCleanKeepsProducersLastBatch(t *testing.T) {
	clock := newClock()
	l := mustOpen(t, t.TempDir(), compactConfig(), clock)
	defer l.Close()
	now := clock.Now().UnixMilli()
	mustAppend(t, l, keyedProducer(record.CodecNone, now, 5, 0, "x", "1", "x", "2")) // pid 5's only batch
	mustAppend(t, l, keyedProducer(record.CodecZstd, now, 6, 0, "y", "1"))           // pid 6, superseded
	mustAppend(t, l, keyedProducer(record.CodecZstd, now, 6, 1, "y", "2"))           // pid 6's last
	mustAppend(t, l, keyed(record.CodecNone, now, "x", "3"))
	l.rollForTest()
	mustAppend(t, l, keyed(record.CodecNone, now, "tail", "t"))
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	got, hdrs := readRecords(t, l)
	if len(got) != 3 || got[0].value != "2" || got[1].value != "3" || got[2].key != "tail" {
		t.Fatalf("records %+v", got)
	}
	if len(hdrs) != 4 {
		t.Fatalf("%d batches, want pid 5's empty one, pid 6's last, x=3, tail: %+v", len(hdrs), hdrs)
	}
	if h := hdrs[0]; h.ProducerID != 5 || h.NumRecords != 0 || h.BaseOffset != 0 || h.LastOffset() != 1 || h.BaseSequence != 0 {
		t.Fatalf("pid 5's batch %+v", h)
	}
	if h := hdrs[1]; h.ProducerID != 6 || h.BaseSequence != 1 || h.BaseOffset != 3 {
		t.Fatalf("pid 6's batch %+v", h)
	}
}

// TestCleanerSwapCrash stops the swap after each of its steps, as a kill -9
// would, and checks that reopening the log yields a valid log that still says
// the same latest value for every key, at the same offsets.
//
// With transactional data (fillTxn: transactions committed and aborted, the
// first segment's included) the log must also never show an aborted record as
// committed, its aborted-transaction index must come back whole (the swap
// carries the first segment's entry in the output's .txnindex), and the
// recovered log's next pass must drop every aborted record and keep an index
// entry only for an abort marker that stays.
func TestCleanerSwapCrash(t *testing.T) {
	steps := []string{"commit", "retire 00000000000000000000.log", "retire 00000000000000000000.timeindex",
		"retire 00000000000000000000.txnindex", "install .txnindex", "install .index", "install .log", "sync", "uncommit"}
	for _, txns := range []bool{false, true} {
		for _, step := range append([]string{"before commit"}, steps...) {
			name := step
			if txns {
				name = "transactional/" + step
			}
			t.Run(name, func(t *testing.T) { testCleanerSwapCrash(t, step, txns) })
		}
	}
}

func testCleanerSwapCrash(t *testing.T, step string, txns bool) {
	clock := newClock()
	dir := t.TempDir()
	l := mustOpen(t, dir, compactConfig(), clock)
	aborted := map[int64]bool{}
	if txns {
		aborted = fillTxn(t, l, clock, 20)
	} else {
		fill(t, l, clock, 20)
	}
	committed := func(recs []kv) []kv {
		var out []kv
		for _, r := range recs {
			if !aborted[r.offset] {
				out = append(out, r)
			}
		}
		return out
	}
	before, _ := readRecords(t, l)
	want := latestByKey(committed(before))
	indexBefore := describeIndex(l)
	if txns && !strings.HasPrefix(indexBefore, "1:0-") {
		t.Fatalf("index %q: the first segment's transaction is not an indexed abort", indexBefore)
	}
	crash := errors.New("crash at " + step)
	hookStep := step
	if step == "before commit" {
		hookStep = "commit" // and the manifest is removed below, as if never written
	}
	l.swapHook = func(s string) error {
		if s == hookStep {
			return crash
		}
		return nil
	}
	if _, err := l.Clean(l.LogEndOffset()); !errors.Is(err, crash) {
		t.Fatalf("clean: %v", err)
	}
	if step == "before commit" {
		if err := os.Remove(filepath.Join(dir, cleanerSwapFile)); err != nil {
			t.Fatal(err)
		}
	}
	abandon(l)
	l2 := mustOpen(t, dir, compactConfig(), clock)
	defer l2.Close()
	got, _ := readRecords(t, l2)
	if m := latestByKey(committed(got)); fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("after crash at %q\n got %v\nwant %v", step, m, want)
	}
	seen := map[int64]bool{}
	for _, r := range got {
		if seen[r.offset] {
			t.Fatalf("offset %d twice", r.offset)
		}
		seen[r.offset] = true
	}
	if got := describeIndex(l2); got != indexBefore {
		t.Fatalf("after crash at %q: aborted-transaction index\n got %s\nwant %s", step, got, indexBefore)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), cleanedSuffix) || e.Name() == cleanerSwapFile {
			t.Fatalf("%s left behind", e.Name())
		}
	}
	// The recovered log cleans and takes appends.
	for range 2 {
		if _, err := l2.Clean(l2.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = readRecords(t, l2)
	if m := latestByKey(got); fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("cleaned again after a crash at %q\n got %v\nwant %v", step, m, want)
	}
	// Two passes: an abort marker with no batch left has its horizon and no index entry; the
	// entries left are those of the markers that stay, and they survive a restart.
	index := describeIndex(l2)
	staying := map[string]bool{}
	for _, b := range strings.Fields(describeLog(t, l2)) {
		if strings.HasPrefix(b, "A") && !strings.HasSuffix(b, "h") {
			staying[b[1:]] = true
		}
	}
	for _, e := range strings.Fields(index) {
		if !staying[e[strings.Index(e, "-")+1:strings.Index(e, "/")]] {
			t.Fatalf("index entry %s after cleaning, of no abort marker that stays (log %s)", e, describeLog(t, l2))
		}
	}
	if txns && len(strings.Fields(index)) != len(staying) {
		t.Fatalf("index %q for the abort markers that stay %v", index, staying)
	}
	mustAppend(t, l2, keyed(record.CodecNone, clock.Now().UnixMilli(), "k3", "late"))
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	l3 := mustOpen(t, dir, compactConfig(), clock)
	defer l3.Close()
	if got := describeIndex(l3); got != index {
		t.Fatalf("index after a restart %q, want %q", got, index)
	}
}

// fillTxn is fill with transactions: each round one of three producers
// writes its updates of k0..k9 in a transaction, which the first and every
// fourth round abort. It returns the offsets of the aborted records.
func fillTxn(t *testing.T, l *Log, clock *fakeClock, rounds int) map[int64]bool {
	t.Helper()
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}
	w := newTxnWriter(t, l, clock)
	aborted := map[int64]bool{}
	for r := range rounds {
		pid := int64(1 + r%3)
		abort := r == 0 || r%4 == 3 // the last round (19 of 20) too: its aborted values are the latest ones
		for k := 0; k < 10; k += 2 {
			w.codec = codecs[(r+k)%len(codecs)]
			res := w.txn(pid, fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", k, r), fmt.Sprintf("k%d", k+1), fmt.Sprintf("v%d-%d", k+1, r))
			if abort {
				aborted[res.BaseOffset], aborted[res.BaseOffset+1] = true, true
			}
		}
		w.marker(pid, !abort)
	}
	w.roll()
	w.plain("tail", "t")
	return aborted
}

// abandon closes a log's files without the clean-shutdown marker, as a crash leaves it.
func abandon(l *Log) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.closed = true
	for _, s := range l.mu.segments {
		s.close()
	}
}
