package log

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// truncateFixture is a flushed log of several segments and three leader epochs on an in-memory
// filesystem.
func truncateFixture(t *testing.T) (*vfs.MemFS, *Log, map[int64]string) {
	t.Helper()
	m := memDir(t)
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	cfg.IndexIntervalBytes = 128
	l := openFS(t, m, "/data/p-0", cfg)
	for i := range 60 {
		epoch := int32(i / 8) // epoch 1 holds offsets 16-31
		if _, err := l.Append(batch(fmt.Sprint(i), 2, int64(1000+i)), epoch, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	return m, l, values(t, l)
}

// truncationPoint is an offset in the middle of the second segment, in epoch 1, so that the
// truncation retires whole segments, cuts one and drops epoch 2.
func truncationPoint(l *Log) int64 { return l.mu.segments[1].base + 6 } // a batch boundary: batches hold 2 records

// TestTruncateToCrash stops TruncateTo after each of its steps and cuts the power there: the log
// reopened on what survived is valid and ends at the truncation point or at its old end, never
// in between, and holds exactly the records it held below that end.
func TestTruncateToCrash(t *testing.T) {
	_, l, _ := truncateFixture(t)
	var steps []string
	l.truncateHook = func(step string) error { steps = append(steps, step); return nil }
	if err := l.TruncateTo(truncationPoint(l)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	joined := strings.Join(steps, ",")
	for _, want := range []string{"begin", "commit", "retire ", "indexes", "truncate", "sync log", "epochs", "recovery point", "sync dir", "uncommit"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("steps %v lack %q", steps, want)
		}
	}

	for _, step := range append(steps, "none") {
		for _, powerCut := range []bool{true, false} {
			name := step + "/kill -9"
			if powerCut {
				name = step + "/power cut"
			}
			t.Run(name, func(t *testing.T) { truncateCrashAt(t, step, powerCut) })
		}
	}
}

// crashAt is a step hook (truncateHook, swapHook) that fails at step, with the error it returns.
func crashAt(step string) (func(string) error, error) {
	crash := errors.New("crash at " + step)
	return func(s string) error {
		if s == step {
			return crash
		}
		return nil
	}, crash
}

// reopenAfterCrash opens /data/p-0 again after l stopped, and returns the file system it
// opened it on: after a power cut, what m had synced; after a kill -9 (l abandoned), all m
// holds, as the page cache survives.
func reopenAfterCrash(t *testing.T, m *vfs.MemFS, l *Log, powerCut bool) (*Log, *vfs.MemFS) {
	t.Helper()
	disk := m
	if powerCut {
		disk = m.Crash()
	} else {
		abandon(l)
	}
	return openFS(t, disk, "/data/p-0", testConfig()), disk
}

// truncateCrashAt runs one case of TestTruncateToCrash: a power cut loses what was not fsynced;
// a kill -9 keeps every write (the page cache survives) but not the process's memory.
func truncateCrashAt(t *testing.T, step string, powerCut bool) {
	m, l, before := truncateFixture(t)
	oldEnd, cut := l.LogEndOffset(), truncationPoint(l)
	crash := errors.New("power cut at " + step)
	l.truncateHook = func(s string) error {
		if s == step {
			return crash
		}
		return nil
	}
	err := l.TruncateTo(cut)
	if step != "none" && !errors.Is(err, crash) {
		t.Fatalf("truncate: %v", err)
	}
	if step == "none" && (err != nil || l.LogEndOffset() != cut) {
		t.Fatalf("truncate: %v, end %d", err, l.LogEndOffset())
	}
	l2, disk := reopenAfterCrash(t, m, l, powerCut)
	defer l2.Close()
	end := l2.LogEndOffset()
	committed := step != "begin"
	if committed && end != cut || !committed && end != oldEnd {
		t.Fatalf("after a crash at %q: end %d; old end %d, truncation point %d", step, end, oldEnd, cut)
	}
	got := values(t, l2)
	if len(got) != int(end) {
		t.Fatalf("after a crash at %q: %d records below end %d", step, len(got), end)
	}
	for off, v := range got {
		if before[off] != v {
			t.Fatalf("offset %d reads %q, held %q", off, v, before[off])
		}
	}
	if committed {
		if e := l2.LatestEpoch(); e != 1 {
			t.Fatalf("latest epoch %d after truncating into epoch 1", e)
		}
		if ep, eo := l2.EndOffsetForEpoch(1); ep != 1 || eo != cut {
			t.Fatalf("epoch 1 ends at %d (epoch %d), want %d", eo, ep, cut)
		}
	}
	if _, err := disk.Stat("/data/p-0/" + truncateFile); err == nil {
		t.Fatal("truncate-to left behind")
	}
	// The recovered log takes appends right after its end, and they survive a crash.
	r, err := l2.Append(batch("after", 1, 5000), 3, -1)
	if err != nil || r.BaseOffset != end {
		t.Fatalf("append after recovery: %+v %v", r, err)
	}
	if err := l2.Flush(); err != nil {
		t.Fatal(err)
	}
	l3 := openFS(t, disk.Crash(), "/data/p-0", testConfig())
	defer l3.Close()
	if l3.LogEndOffset() != end+1 {
		t.Fatalf("after a second crash: end %d, want %d", l3.LogEndOffset(), end+1)
	}
}

// TestTruncateToErrors: every failing step is returned; one after the commit fails the log
// (whose state on disk the next Open finishes), one before leaves it usable.
func TestTruncateToErrors(t *testing.T) {
	m := memDir(t)
	ffs := vfs.NewFaultFS(m)
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := openFS(t, ffs, "/data/p-0", cfg)
	for i := range 40 {
		mustAppend(t, l, batch(fmt.Sprint(i), 2, 0))
	}
	end := l.LogEndOffset()
	// Before the commit: the truncate-to file cannot be written.
	ffs.SetInjector(vfs.OnPrefix("/data/p-0/"+truncateFile+tmpSuffix, errors.New("disk full"), vfs.OpCreate))
	if err := l.TruncateTo(10); err == nil || l.Failed() != nil || l.LogEndOffset() != end {
		t.Fatalf("uncommitted failure: %v, failed %v, end %d", err, l.Failed(), l.LogEndOffset())
	}
	// After the commit: a rename fails (this used to be ignored).
	ffs.SetInjector(vfs.OnPrefix("/data/p-0", errors.New("rename refused"), vfs.OpRename))
	ffs.SetInjector(func(op vfs.Op, path string) error {
		if op == vfs.OpRename && strings.HasSuffix(path, deletedSuffix) {
			return errors.New("rename refused")
		}
		return nil
	})
	err := l.TruncateTo(10)
	if !errors.Is(err, ErrLogFailed) || !strings.Contains(err.Error(), "rename refused") {
		t.Fatalf("failed retire: %v", err)
	}
	ffs.SetInjector(nil)
	l.Close()
	l2 := openFS(t, m, "/data/p-0", cfg)
	defer l2.Close()
	if l2.LogEndOffset() != 10 || len(values(t, l2)) != 10 {
		t.Fatalf("reopened after a failed committed truncation: end %d", l2.LogEndOffset())
	}
}

// TestTruncateMakesCompactedRangeDirty: data appended after a truncation into a range the
// cleaner had already cleaned is dirty again (it was never cleaned).
func TestTruncateMakesCompactedRangeDirty(t *testing.T) {
	clock := newClock()
	l := mustOpen(t, t.TempDir(), compactConfig(), clock)
	defer l.Close()
	fill(t, l, clock, 20)
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("needs cleaning right after a pass")
	}
	if err := l.TruncateTo(l.mu.segments[0].next); err != nil {
		t.Fatal(err)
	}
	fill(t, l, clock, 10)
	if !l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("data appended after a truncation into the cleaned range counts as clean")
	}
}

// TestTruncateFullyAndStartAt empties the log and starts it over at an offset past its end, with
// no epoch; it then takes replicated batches from there. A crash after any step leaves the log
// either as it was or empty at the offset, never a mix.
func TestTruncateFullyAndStartAt(t *testing.T) {
	_, l, _ := truncateFixture(t)
	if err := l.TruncateFullyAndStartAt(l.LogEndOffset()); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start over at the log end: %v", err)
	}
	var steps []string
	l.truncateHook = func(step string) error { steps = append(steps, step); return nil }
	if err := l.TruncateFullyAndStartAt(500); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 500 || l.LogEndOffset() != 500 || l.LatestEpoch() != -1 || l.NumSegments() != 1 {
		t.Fatalf("start %d end %d epoch %d segments %d", l.LogStartOffset(), l.LogEndOffset(), l.LatestEpoch(), l.NumSegments())
	}
	b := batch("r", 2, 0)
	record.SetBaseOffset(b, 500)
	record.SetPartitionLeaderEpoch(b, 7)
	if _, err := l.AppendReplica(b); err != nil {
		t.Fatal(err)
	}
	if e, off := l.EndOffsetForEpoch(7); e != 7 || off != 502 {
		t.Fatalf("epoch 7 after starting over: (%d, %d)", e, off)
	}
	l.Close()
	joined := strings.Join(steps, ",")
	for _, want := range []string{"begin", "commit", "retire ", "new segment", "epochs", "recovery point", "sync dir"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("steps %v lack %q", steps, want)
		}
	}
	for _, step := range append(steps, "none") {
		for _, powerCut := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/power cut %v", step, powerCut), func(t *testing.T) {
				m, l, before := truncateFixture(t)
				oldEnd := l.LogEndOffset()
				var crash error
				l.truncateHook, crash = crashAt(step)
				if err := l.TruncateFullyAndStartAt(500); step != "none" && !errors.Is(err, crash) {
					t.Fatalf("truncate fully: %v", err)
				}
				l2, _ := reopenAfterCrash(t, m, l, powerCut)
				defer l2.Close()
				if step == "begin" {
					if l2.LogEndOffset() != oldEnd || len(values(t, l2)) != len(before) {
						t.Fatalf("uncommitted: end %d, %d records", l2.LogEndOffset(), len(values(t, l2)))
					}
					return
				}
				if l2.LogStartOffset() != 500 || l2.LogEndOffset() != 500 || l2.LatestEpoch() != -1 || len(values(t, l2)) != 0 {
					t.Fatalf("committed: start %d end %d epoch %d, %d records", l2.LogStartOffset(), l2.LogEndOffset(), l2.LatestEpoch(), len(values(t, l2)))
				}
				b := batch("r", 1, 0)
				record.SetBaseOffset(b, 500)
				if _, err := l2.AppendReplica(b); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestTruncateToLogEndDropsEmptyEpoch: a truncation at or past the log end removes no data but
// trims the leader-epoch cache from the log end (Kafka's UnifiedLog.truncateTo): an epoch this
// replica started as leader without writing anything goes, or the replica keeps fetching with
// it as its last fetched epoch and its new leader keeps answering a diverging epoch at its log
// end (sim seed 25). The trim is durable when TruncateTo returns; a checkpoint that cannot be
// renamed into place leaves the old cache, in memory and after a power cut, and a usable log.
func TestTruncateToLogEndDropsEmptyEpoch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		offset     int64 // relative to the log end
		failRename bool
	}{{"at the end", 0, false}, {"past the end", 5, false}, {"checkpoint not renamed", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			m := memDir(t)
			ffs := vfs.NewFaultFS(m)
			l := openFS(t, ffs, "/data/p-0", testConfig())
			if _, err := l.Append(batch("a", 2, 0), 0, -1); err != nil {
				t.Fatal(err)
			}
			if err := l.AssignEpoch(1, 2); err != nil { // led epoch 1, wrote nothing
				t.Fatal(err)
			}
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			want := int32(0)
			if tc.failRename {
				ffs.SetInjector(vfs.OnPrefix("/data/p-0/"+leaderEpochFile+tmpSuffix, errors.New("rename refused"), vfs.OpRename))
				want = 1
			}
			err := l.TruncateTo(l.LogEndOffset() + tc.offset)
			if tc.failRename != (err != nil) {
				t.Fatalf("truncate: %v", err)
			}
			ffs.SetInjector(nil)
			if e := l.LatestEpoch(); e != want || l.LogEndOffset() != 2 || l.Failed() != nil {
				t.Fatalf("latest epoch %d (want %d), end %d, failed %v", e, want, l.LogEndOffset(), l.Failed())
			}
			if e, off := l.EndOffsetForEpoch(0); !tc.failRename && (e != 0 || off != 2) {
				t.Fatalf("epoch 0 after the trim: (%d, %d), want (0, 2)", e, off)
			}
			l2 := openFS(t, m.Crash(), "/data/p-0", testConfig())
			defer l2.Close()
			if e := l2.LatestEpoch(); e != want || l2.LogEndOffset() != 2 {
				t.Fatalf("after a power cut: latest epoch %d (want %d), end %d", e, want, l2.LogEndOffset())
			}
		})
	}
}

// TestTruncateFullyAndStartAtBackOnEmptyLog: an empty log (start = end) may start over below its
// start, for a follower whose first fetched batch starts below its log end and holds it (a
// leader log start inside a batch): the log then takes that batch. A crash at any step leaves it
// empty at its old start or empty at the new one; either takes the batch (at the old start only
// after starting over again), and nothing of the old segment is left beside the new one.
func TestTruncateFullyAndStartAtBackOnEmptyLog(t *testing.T) {
	empty := func(t *testing.T) (*vfs.MemFS, *Log) {
		t.Helper()
		m := memDir(t)
		l := openFS(t, m, "/data/p-0", testConfig())
		if err := l.TruncateFullyAndStartAt(3); err != nil {
			t.Fatal(err)
		}
		return m, l
	}
	straddling := func() []byte {
		b := batch("r", 3, 0) // offsets 2-4
		record.SetBaseOffset(b, 2)
		record.SetPartitionLeaderEpoch(b, 4)
		return b
	}
	_, l := empty(t)
	var steps []string
	l.truncateHook = func(step string) error { steps = append(steps, step); return nil }
	if err := l.TruncateFullyAndStartAt(2); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 2 || l.LogEndOffset() != 2 || l.NumSegments() != 1 {
		t.Fatalf("start %d end %d segments %d", l.LogStartOffset(), l.LogEndOffset(), l.NumSegments())
	}
	if _, err := l.AppendReplica(straddling()); err != nil || l.LogEndOffset() != 5 {
		t.Fatalf("append after starting back: %v, end %d", err, l.LogEndOffset())
	}
	// Not empty any more: starting over at or below the end is refused again.
	if err := l.TruncateFullyAndStartAt(4); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("start over inside a non-empty log: %v", err)
	}
	l.Close()
	for _, step := range append(steps, "none") {
		for _, powerCut := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/power cut %v", step, powerCut), func(t *testing.T) {
				m, l := empty(t)
				var crash error
				l.truncateHook, crash = crashAt(step)
				if err := l.TruncateFullyAndStartAt(2); step != "none" && !errors.Is(err, crash) {
					t.Fatalf("truncate fully: %v", err)
				}
				l2, _ := reopenAfterCrash(t, m, l, powerCut)
				defer l2.Close()
				start := l2.LogStartOffset()
				if (start != 2 && start != 3) || l2.LogEndOffset() != start || l2.NumSegments() != 1 {
					t.Fatalf("after a crash: start %d end %d segments %d", start, l2.LogEndOffset(), l2.NumSegments())
				}
				if start == 3 {
					if err := l2.TruncateFullyAndStartAt(2); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := l2.AppendReplica(straddling()); err != nil || l2.LogEndOffset() != 5 {
					t.Fatalf("append after recovery: %v, end %d", err, l2.LogEndOffset())
				}
			})
		}
	}
}

// TestTruncateToInsideBatch: a truncation offset inside a batch removes that whole batch, as
// Kafka's LogSegment.truncateTo does (it cuts at the first batch whose last offset is >= the
// offset): the log end offset ends at or below the offset. Keeping the batch left a follower
// told that its epoch ends at 1, with a batch 0-2, at log end 3, fetching with the same epoch and
// truncating to 1 on every fetch (sim seed 784). A crash after the commit finishes the same
// cut; a cut below the log start leaves the log empty at its start.
func TestTruncateToInsideBatch(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash %v", crash), func(t *testing.T) {
			m := memDir(t)
			l := openFS(t, m, "/data/p-0", testConfig())
			mustAppend(t, l, batch("a", 2, 0))                           // 0-1
			if _, err := l.Append(batch("b", 3, 0), 1, -1); err != nil { // 2-4, epoch 1
				t.Fatal(err)
			}
			mustAppend(t, l, batch("c", 1, 0)) // 5
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			if crash {
				l.truncateHook = func(step string) error {
					if step == "truncate" { // cut, not fsynced: Open finishes from truncate-to
						return errors.New("power cut")
					}
					return nil
				}
			}
			err := l.TruncateTo(3)
			if crash != (err != nil) {
				t.Fatalf("truncate: %v", err)
			}
			if crash {
				abandon(l)
				l = openFS(t, m.Crash(), "/data/p-0", testConfig())
			}
			defer l.Close()
			if l.LogEndOffset() != 2 || len(values(t, l)) != 2 {
				t.Fatalf("end %d, %d records, want 2", l.LogEndOffset(), len(values(t, l)))
			}
			if crash {
				// Open keeps an epoch entry starting exactly at the log end (an epoch
				// begun with no data); the next truncation at the end drops it.
				if err := l.TruncateTo(l.LogEndOffset()); err != nil {
					t.Fatal(err)
				}
			}
			if e := l.LatestEpoch(); e == 1 {
				t.Fatal("epoch 1 kept with its only batch gone")
			}
			// The log start inside a batch (DeleteRecords) and a cut in that batch: empty at the start.
			if err := l.DeleteRecordsBefore(1); err != nil {
				t.Fatal(err)
			}
			l.truncateHook = nil
			if err := l.TruncateTo(1); err != nil {
				t.Fatal(err)
			}
			if l.LogStartOffset() != 1 || l.LogEndOffset() != 1 || len(values(t, l)) != 0 {
				t.Fatalf("cut below the log start: start %d end %d, %d records", l.LogStartOffset(), l.LogEndOffset(), len(values(t, l)))
			}
		})
	}
}
