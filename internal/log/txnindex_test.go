package log

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// TestTxnIndexFormat: entries are Kafka's 34 bytes (version 0, pid, first, last, LSO,
// big-endian); a torn last entry is dropped; an unknown version or entries out of order are
// refused.
func TestTxnIndexFormat(t *testing.T) {
	ts := []AbortedTxn{{ProducerID: 7, FirstOffset: 3, LastOffset: 9, LastStableOffset: 10}, {ProducerID: 8, FirstOffset: 4, LastOffset: 12, LastStableOffset: 11}}
	b := encodeTxnIndex(ts)
	if len(b) != 2*34 {
		t.Fatalf("%d bytes for two entries", len(b))
	}
	be := binary.BigEndian
	if be.Uint16(b) != 0 || be.Uint64(b[2:]) != 7 || be.Uint64(b[10:]) != 3 || be.Uint64(b[18:]) != 9 || be.Uint64(b[26:]) != 10 {
		t.Fatalf("first entry % x", b[:34])
	}
	got, err := decodeTxnIndex(append(b, 0, 0, 1)) // a torn third entry
	if err != nil || !slices.Equal(got, ts) {
		t.Fatalf("decode: %+v %v", got, err)
	}
	bad := slices.Clone(b)
	bad[35] = 1 // version 1 in the second entry
	if _, err := decodeTxnIndex(bad); err == nil {
		t.Fatal("version 1 accepted")
	}
	if _, err := decodeTxnIndex(encodeTxnIndex([]AbortedTxn{ts[1], ts[0]})); err == nil {
		t.Fatal("entries out of order accepted")
	}
}

// FuzzDecodeTxnIndex: a .txnindex read from disk never panics the decoder, and what it accepts
// encodes back to its whole entries.
func FuzzDecodeTxnIndex(f *testing.F) {
	f.Add(encodeTxnIndex([]AbortedTxn{{ProducerID: 7, FirstOffset: 3, LastOffset: 9, LastStableOffset: 10}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeTxnIndex(b)
		if err != nil {
			return
		}
		if again := encodeTxnIndex(got); !slices.Equal(again, b[:len(b)/34*34]) {
			t.Fatal("decoded entries re-encode differently")
		}
	})
}

// txnFixture is truncateFixture with an aborted transaction whose marker is in each of the
// first segments (the second entry of segment 1 past truncationPoint), persisted and flushed.
func txnFixture(t *testing.T) (*vfs.MemFS, *Log, []AbortedTxn) {
	t.Helper()
	m, l, _ := truncateFixture(t)
	var all []AbortedTxn
	for i, s := range l.mu.segments[:4] {
		for _, last := range []int64{s.base + 1, s.base + 9} {
			a := AbortedTxn{ProducerID: int64(100 + i), FirstOffset: max(last-5, 0), LastOffset: last, LastStableOffset: last + 1}
			if err := l.AppendAbortedTxn(a); err != nil {
				t.Fatal(err)
			}
			all = append(all, a)
		}
	}
	if err := l.AppendAbortedTxn(all[0]); err != nil { // a replay adding it again changes nothing
		t.Fatal(err)
	}
	if err := l.PersistTxnIndexes(); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := l.AbortedTxns(0, l.LogEndOffset()); !slices.Equal(got, all) {
		t.Fatalf("aborted %+v, want %+v", got, all)
	}
	return m, l, all
}

func below(ts []AbortedTxn, end int64) []AbortedTxn {
	return slices.DeleteFunc(slices.Clone(ts), func(a AbortedTxn) bool { return a.LastOffset >= end })
}

// TestTxnIndexFilesAndReopen: each segment with entries has its .txnindex; a reopen after a
// power cut reads them back; AbortedTxns answers a range across segments and stops at
// the first entry whose last stable offset reaches its end.
func TestTxnIndexFilesAndReopen(t *testing.T) {
	m, l, all := txnFixture(t)
	for _, s := range l.mu.segments[:4] {
		b, err := vfs.ReadFile(m, s.path(txnIndexExt))
		if err != nil || len(b) != 2*abortedTxnSize {
			t.Fatalf("%s: %d bytes, %v", s.path(txnIndexExt), len(b), err)
		}
	}
	if _, err := m.Stat(l.mu.segments[4].path(txnIndexExt)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a segment without aborts has a .txnindex: %v", err)
	}
	s1 := l.mu.segments[1].base
	if got := l.AbortedTxns(s1, s1+2); !slices.Equal(got, all[2:3]) {
		t.Fatalf("aborted of [%d, %d): %+v, want %+v", s1, s1+2, got, all[2:3])
	}
	end := l.LogEndOffset()
	l2 := openFS(t, m.Crash(), "/data/p-0", testConfig())
	defer l2.Close()
	if got := l2.AbortedTxns(0, end); !slices.Equal(got, all) {
		t.Fatalf("after a power cut: %+v, want %+v", got, all)
	}
}

// TestTxnIndexTruncateCrash: TruncateTo cut short after each step, by a power cut or a kill -9:
// the log reopened keeps exactly the entries whose marker is below its end, never one past it.
func TestTxnIndexTruncateCrash(t *testing.T) {
	_, l, _ := txnFixture(t)
	var steps []string
	l.truncateHook = func(step string) error { steps = append(steps, step); return nil }
	if err := l.TruncateTo(truncationPoint(l)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if !slices.Contains(steps, "txnindex") {
		t.Fatalf("steps %v lack txnindex", steps)
	}
	for _, step := range append(steps, "none") {
		for _, powerCut := range []bool{true, false} {
			t.Run(step+map[bool]string{true: "/power cut", false: "/kill -9"}[powerCut], func(t *testing.T) {
				m, l, all := txnFixture(t)
				cut := truncationPoint(l)
				var crash error
				l.truncateHook, crash = crashAt(step)
				if err := l.TruncateTo(cut); step != "none" && !errors.Is(err, crash) {
					t.Fatalf("truncate: %v", err)
				}
				if step == "none" {
					if got := l.AbortedTxns(0, cut+100); !slices.Equal(got, below(all, cut)) {
						t.Fatalf("in memory after the truncation: %+v", got)
					}
				}
				l2, disk := reopenAfterCrash(t, m, l, powerCut)
				defer l2.Close()
				end := l2.LogEndOffset()
				if got, want := l2.AbortedTxns(0, end+100), below(all, end); !slices.Equal(got, want) {
					t.Fatalf("end %d: aborted %+v, want %+v", end, got, want)
				}
				entries, _ := disk.ReadDir("/data/p-0")
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), txnIndexExt+deletedSuffix) {
						t.Fatalf("%s left behind", e.Name())
					}
				}
			})
		}
	}
}

// TestTxnIndexRetention: retention and DeleteRecords delete a segment's .txnindex with it.
func TestTxnIndexRetention(t *testing.T) {
	m, l, all := txnFixture(t)
	defer l.Close()
	first, second := l.mu.segments[0], l.mu.segments[1]
	if err := l.DeleteRecordsBefore(second.base + 1); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{first.path(txnIndexExt), first.path(txnIndexExt) + deletedSuffix} {
		if _, err := m.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s after DeleteRecords: %v", name, err)
		}
	}
	if got := l.AbortedTxns(l.LogStartOffset(), l.LogEndOffset()); !slices.Equal(got, all[2:]) {
		t.Fatalf("aborted after DeleteRecords %+v, want %+v", got, all[2:])
	}
	cfg := testConfig()
	cfg.RetentionMs = 0
	l.SetConfig(cfg)
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	entries, _ := m.ReadDir("/data/p-0")
	for _, e := range entries {
		if strings.Contains(e.Name(), txnIndexExt) {
			t.Fatalf("%s after retention", e.Name())
		}
	}
	if got := l.AbortedTxns(0, l.LogEndOffset()); len(got) != 0 {
		t.Fatalf("aborted after retention: %+v", got)
	}
}

// TestTxnIndexLost: an unreadable .txnindex is reported (TxnIndexLostFrom); once the caller
// replayed its entries, PersistTxnIndexes writes it again.
func TestTxnIndexLost(t *testing.T) {
	m, l, all := txnFixture(t)
	s1 := l.mu.segments[1]
	path := s1.path(txnIndexExt)
	l.Close()
	if err := writeFileAtomicNoDirSync(m, path, []byte("garbage that is not an index at all, thirty-four+ bytes")); err != nil {
		t.Fatal(err)
	}
	l2 := openFS(t, m, "/data/p-0", testConfig())
	defer l2.Close()
	if got := l2.TxnIndexLostFrom(); got != s1.base {
		t.Fatalf("lost from %d, want %d", got, s1.base)
	}
	if got := l2.mu.segments[1].aborted; len(got) != 0 {
		t.Fatalf("entries of the lost index: %+v", got)
	}
	for _, a := range all[2:4] { // the replay
		if err := l2.AppendAbortedTxn(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := l2.PersistTxnIndexes(); err != nil {
		t.Fatal(err)
	}
	b, err := vfs.ReadFile(m, path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeTxnIndex(b); err != nil || !slices.Equal(got, all[2:4]) {
		t.Fatalf("rewritten index %+v %v", got, err)
	}
	if l2.TxnIndexLostFrom() != 1<<63-1 {
		t.Fatal("still lost")
	}
}

// abortMarkers lists the offsets of the abort markers in l.
func abortMarkers(t *testing.T, l *Log) []int64 {
	t.Helper()
	var out []int64
	err := l.ScanBatches(l.LogStartOffset(), func(h record.BatchHeader, control []byte) error {
		if control == nil {
			return nil
		}
		rh, recs, err := record.Records(control)
		if err != nil {
			return err
		}
		if m, err := record.ParseMarker(rh, recs); err == nil && !m.Commit {
			out = append(out, h.BaseOffset)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTxnIndexCleanerSwapCrash: a cleaner swap stopped after any step, the process killed, and
// the log reopened: the index (read from the .txnindex files alone) has exactly one entry per
// abort marker left in the log, whichever of the old segments or the cleaned one survived.
func TestTxnIndexCleanerSwapCrash(t *testing.T) {
	var steps []string
	{
		clock := newClock()
		l := mustOpen(t, t.TempDir(), compactConfig(), clock)
		fillTxn(t, l, clock, 8)
		l.swapHook = func(s string) error { steps = append(steps, s); return nil }
		if _, err := l.Clean(l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	if !slices.Contains(steps, "install "+txnIndexExt) {
		t.Fatalf("steps %v do not install the .txnindex", steps)
	}
	seen := map[string]bool{}
	for _, step := range steps {
		if seen[step] { // a later group's same step: the hook stops at the first
			continue
		}
		seen[step] = true
		t.Run(step, func(t *testing.T) {
			clock := newClock()
			dir := t.TempDir()
			l := mustOpen(t, dir, compactConfig(), clock)
			fillTxn(t, l, clock, 8)
			if len(abortMarkers(t, l)) == 0 || len(l.AbortedTxns(0, l.LogEndOffset())) == 0 {
				t.Fatal("no aborted transaction to index")
			}
			var crash error
			l.swapHook, crash = crashAt(step)
			if _, err := l.Clean(l.LogEndOffset()); !errors.Is(err, crash) {
				t.Fatalf("clean: %v", err)
			}
			abandon(l)
			l2 := mustOpen(t, dir, compactConfig(), clock)
			defer l2.Close()
			var indexed []int64
			for _, a := range l2.AbortedTxns(0, l2.LogEndOffset()) {
				indexed = append(indexed, a.LastOffset)
			}
			if markers := abortMarkers(t, l2); !slices.Equal(indexed, markers) {
				t.Fatalf("after a crash at %q: index has markers %v, the log %v", step, indexed, markers)
			}
		})
	}
}
