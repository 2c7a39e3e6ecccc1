package log

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// memDir returns an in-memory filesystem holding a durable, empty /data.
func memDir(t testing.TB) *vfs.MemFS {
	t.Helper()
	m := vfs.NewMem()
	if err := m.MkdirAll("/data", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return m
}

func openFS(t testing.TB, fsys vfs.FS, dir string, cfg Config, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, cfg, newClock(), append([]Option{WithFS(fsys)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// values reads every record value of the log, by offset.
func values(t testing.TB, l *Log) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		r, err := l.Read(off, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		bs, err := record.Split(r.Data)
		if err != nil || len(bs) == 0 {
			t.Fatalf("read at %d: %v, %d batches", off, err, len(bs))
		}
		for _, b := range bs {
			if _, err := record.ValidateStored(b); err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			h, recs, err := record.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				out[h.BaseOffset+int64(rec.OffsetDelta)] = string(rec.Value)
			}
			off = h.LastOffset() + 1
		}
	}
	return out
}

// TestAppendNoSpace: a write refused by a full disk (after writing part of the batch) is cut
// back; the log stays valid and readable, is not failed, and takes appends again once there is
// space.
func TestAppendNoSpace(t *testing.T) {
	m := memDir(t)
	ffs := vfs.NewFaultFS(m)
	cfg := testConfig()
	cfg.SegmentBytes = 4096
	var failures atomic.Int32
	l := openFS(t, ffs, "/data/p-0", cfg, OnFailure(func(error) { failures.Add(1) }))
	for i := range 20 {
		mustAppend(t, l, batch(fmt.Sprint("a", i), 3, int64(i)))
	}
	end, size := l.LogEndOffset(), l.Size()
	before := values(t, l)

	ffs.SetInjector(vfs.OnPrefix("/data", syscall.ENOSPC, vfs.OpWrite, vfs.OpCreate))
	for i := range 30 { // some of these would roll a segment: its index files cannot be written either
		_, err := l.Append(batch(fmt.Sprint("full", i), 3, 100), 0, -1)
		if !vfs.IsNoSpace(err) || errors.Is(err, ErrLogFailed) {
			t.Fatalf("append to a full disk: %v", err)
		}
	}
	if l.LogEndOffset() != end || l.Size() != size || l.Failed() != nil || failures.Load() != 0 {
		t.Fatalf("after refused appends: end %d (was %d), size %d (was %d), failed %v, %d failure reports",
			l.LogEndOffset(), end, l.Size(), size, l.Failed(), failures.Load())
	}
	for _, s := range l.mu.segments {
		if fi, err := s.log.Stat(); err != nil || fi.Size() != s.size {
			t.Fatalf("segment %d: file holds %d bytes, the log %d (%v): the failed write was not cut back", s.base, fi.Size(), s.size, err)
		}
	}
	if got := values(t, l); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatal("reads changed while the disk was full")
	}

	ffs.SetInjector(nil)
	for i := range 20 {
		r := mustAppend(t, l, batch(fmt.Sprint("b", i), 3, 200))
		if i == 0 && r.BaseOffset != end {
			t.Fatalf("first append after the disk came back at %d, want %d", r.BaseOffset, end)
		}
	}
	want := values(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openFS(t, m, "/data/p-0", cfg)
	defer l2.Close()
	if got := values(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopening: %d records, want %d", len(got), len(want))
	}
}

// TestFsyncFailureFailsLog: an fsync that fails (EIO, or ENOSPC on a filesystem that allocates
// at writeback) fails the log: it is reported once, every later mutation is refused with
// ErrLogFailed, reads keep working, and Close reports it (so the log dir is not marked clean).
func TestFsyncFailureFailsLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ops  []vfs.Op
	}{
		{"EIO on fsync", syscall.EIO, []vfs.Op{vfs.OpSync}},
		{"ENOSPC on fsync", syscall.ENOSPC, []vfs.Op{vfs.OpSync}},
		{"EIO on dir fsync", syscall.EIO, []vfs.Op{vfs.OpSyncDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ffs := vfs.NewFaultFS(memDir(t))
			var reports []error
			l := openFS(t, ffs, "/data/p-0", testConfig(), OnFailure(func(err error) { reports = append(reports, err) }))
			for i := range 5 {
				mustAppend(t, l, batch(fmt.Sprint(i), 2, 0))
			}
			ffs.SetInjector(vfs.OnPrefix("/data", tc.err, tc.ops...))
			if err := l.Flush(); !errors.Is(err, ErrLogFailed) || !errors.Is(err, tc.err) {
				t.Fatalf("flush: %v", err)
			}
			ffs.SetInjector(nil) // the disk "recovers": the log must not trust it again
			if _, err := l.Append(batch("x", 1, 0), 0, -1); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("append after a failed fsync: %v", err)
			}
			if err := l.Flush(); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("flush after a failed fsync: %v", err)
			}
			if err := l.TruncateTo(2); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("truncate after a failed fsync: %v", err)
			}
			if got := values(t, l); len(got) != 10 {
				t.Fatalf("reads after the failure: %d records", len(got))
			}
			if len(reports) != 1 || l.Failed() == nil {
				t.Fatalf("failure reported %d times, Failed() = %v", len(reports), l.Failed())
			}
			if err := l.Close(); !errors.Is(err, ErrLogFailed) {
				t.Fatalf("close of a failed log: %v", err)
			}
		})
	}
}

// TestWriteEIOFailsLog: a write failing with EIO (unlike ENOSPC) fails the log even though it
// was cut back: the disk is not to be trusted.
func TestWriteEIOFailsLog(t *testing.T) {
	ffs := vfs.NewFaultFS(memDir(t))
	var reports atomic.Int32
	l := openFS(t, ffs, "/data/p-0", testConfig(), OnFailure(func(error) { reports.Add(1) }))
	defer l.Close()
	mustAppend(t, l, batch("a", 2, 0))
	ffs.SetInjector(vfs.OnPrefix("/data", syscall.EIO, vfs.OpWrite))
	if _, err := l.Append(batch("b", 2, 0), 0, -1); !errors.Is(err, ErrLogFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append whose write fails with EIO: %v", err)
	}
	ffs.SetInjector(nil)
	if _, err := l.Append(batch("c", 2, 0), 0, -1); !errors.Is(err, ErrLogFailed) || reports.Load() != 1 {
		t.Fatalf("append after: %v, %d reports", err, reports.Load())
	}
	if got := values(t, l); len(got) != 2 {
		t.Fatalf("reads after: %d records", len(got))
	}
}

// TestFailedCutBackFailsLog: a write that fails and cannot be cut back leaves bytes the log does
// not know: the log fails.
func TestFailedCutBackFailsLog(t *testing.T) {
	ffs := vfs.NewFaultFS(memDir(t))
	l := openFS(t, ffs, "/data/p-0", testConfig())
	defer l.Close()
	mustAppend(t, l, batch("a", 2, 0))
	full := vfs.OnPrefix("/data", syscall.ENOSPC, vfs.OpWrite)
	broken := vfs.OnPrefix("/data", syscall.EIO, vfs.OpTruncate)
	ffs.SetInjector(func(op vfs.Op, path string) error {
		if err := full(op, path); err != nil {
			return err
		}
		return broken(op, path)
	})
	if _, err := l.Append(batch("b", 2, 0), 0, -1); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append whose write and cut back fail: %v", err)
	}
	ffs.SetInjector(nil)
	if _, err := l.Append(batch("c", 2, 0), 0, -1); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after: %v", err)
	}
}

// ackTrial appends batches to a log on a crashable in-memory filesystem until a crash injected
// before the crashAt-th filesystem operation, acknowledging each batch as the broker does: with
// syncBeforeAck once the log dir's Syncer returned (log.flush.interval.messages=1), otherwise as
// soon as Append returned. It returns the acknowledged records and the filesystem as the power
// cut left it.
func ackTrial(t *testing.T, crashAt int64, syncBeforeAck bool) (map[int64]string, *vfs.MemFS) {
	t.Helper()
	m := memDir(t)
	ffs := vfs.NewFaultFS(m)
	var ops atomic.Int64
	var crashed atomic.Pointer[vfs.MemFS]
	ffs.SetInjector(func(vfs.Op, string) error {
		if ops.Add(1) == crashAt {
			crashed.Store(m.Crash())
		}
		return nil // after the crash, the MemFS itself refuses everything
	})
	cfg := testConfig()
	cfg.SegmentBytes = 2048 // rolls: new segments and index files take part
	cfg.IndexIntervalBytes = 256
	acked := map[int64]string{}
	l, err := Open("/data/p-0", cfg, newClock(), WithFS(ffs))
	if err != nil {
		if crashed.Load() == nil {
			t.Fatal(err)
		}
		return acked, crashed.Load()
	}
	syncer, err := NewSyncer(ffs, "/data", nil)
	if err != nil {
		if crashed.Load() == nil {
			t.Fatal(err)
		}
		return acked, crashed.Load()
	}
	for i := 0; crashed.Load() == nil; i++ {
		v := fmt.Sprint("v", i)
		r, err := l.Append(batch(v, 1, int64(i)), 0, -1)
		if err != nil {
			break
		}
		if syncBeforeAck {
			if err := syncer.Sync(); err != nil {
				break
			}
		}
		acked[r.BaseOffset] = v + "-0"
		if i > 100_000 {
			t.Fatal("no crash")
		}
	}
	return acked, crashed.Load()
}

// TestPowerLossKeepsAcknowledged: with fsync before ack, a power cut at any point (before any
// of the first few hundred filesystem operations, sampled) loses no acknowledged record: the log
// reopened on what survived is valid and reads back every acknowledged offset with its bytes.
// Without it, the same cut loses acknowledged records (the test can fail).
func TestPowerLossKeepsAcknowledged(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	points := []int64{1, 2, 3, 5, 8, 13}
	for range 40 {
		points = append(points, 14+rng.Int63n(1500))
	}
	lostWithoutSync := 0
	for _, at := range points {
		for _, syncBeforeAck := range []bool{true, false} {
			acked, disk := ackTrial(t, at, syncBeforeAck)
			if disk == nil {
				t.Fatalf("crash point %d never reached", at)
			}
			l, err := Open("/data/p-0", testConfig(), newClock(), WithFS(disk))
			if err != nil {
				t.Fatalf("crash at op %d: reopen: %v", at, err)
			}
			got := values(t, l)
			lost := 0
			for off, v := range acked {
				if got[off] != v {
					lost++
					if syncBeforeAck {
						t.Fatalf("crash at op %d: acknowledged offset %d reads %q, want %q (%d acknowledged, end %d)\n%s",
							at, off, got[off], v, len(acked), l.LogEndOffset(), disk)
					}
				}
			}
			if !syncBeforeAck && len(acked) > 0 && lost > 0 {
				lostWithoutSync++
			}
			// The survivor takes appends after what it recovered.
			if r, err := l.Append(batch("after", 1, 0), 0, -1); err != nil || r.BaseOffset != l.LogEndOffset()-1 {
				t.Fatalf("crash at op %d: append after recovery: %+v %v", at, r, err)
			}
			l.Close()
		}
	}
	if lostWithoutSync == 0 {
		t.Fatal("without fsync before ack no crash lost an acknowledged record: the test cannot tell")
	}
	t.Logf("%d crash points; without fsync before ack %d of them lost acknowledged records", len(points), lostWithoutSync)
}

// TestCorruptLogStartOffset: an unparsable log-start-offset is not read as 0 (which brought
// deleted records back): the start is recovered from the segments and the leader-epoch
// checkpoint, reported, and written back.
func TestCorruptLogStartOffset(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.SegmentBytes = 1024
	l := mustOpen(t, dir, cfg, newClock())
	if err := l.AssignEpoch(0, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		mustAppend(t, l, batch(fmt.Sprint(i), 2, 0))
	}
	// Delete whole segments and into the middle of the next one.
	mid := l.mu.segments[2].base + 3
	if err := l.DeleteRecordsBefore(mid); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, garbage := range []string{"", "garbage\n", "-5\n", "12x\n"} {
		if err := os.WriteFile(filepath.Join(dir, logStartOffsetFile), []byte(garbage), 0o644); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, dir, cfg, newClock())
		if got := l.LogStartOffset(); got != mid {
			t.Fatalf("log-start-offset %q: start %d, want %d", garbage, got, mid)
		}
		if _, err := l.Read(mid-1, 1<<20, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("deleted record %d readable: %v", mid-1, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, logStartOffsetFile)); strings.TrimSpace(string(b)) != fmt.Sprint(mid) {
			t.Fatalf("log-start-offset not rewritten: %q", b)
		}
	}
	// Without an epoch checkpoint the first segment's base is the floor: never below it.
	os.Remove(filepath.Join(dir, leaderEpochFile))
	os.WriteFile(filepath.Join(dir, logStartOffsetFile), []byte("bad"), 0o644)
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	if got, first := l.LogStartOffset(), l.mu.segments[0].base; got != first || first == 0 {
		t.Fatalf("without epochs: start %d, first segment %d", got, first)
	}
	if !bytes.Contains([]byte(fmt.Sprint(values(t, l))), []byte(fmt.Sprint(mid, ":"))) {
		t.Fatal("records at the start missing")
	}
}

// TestFlushedNewLogSurvivesPowerLoss: Flush makes a new log's records durable, including the
// partition directory's own entry in its log dir (fsynced when the directory is created).
func TestFlushedNewLogSurvivesPowerLoss(t *testing.T) {
	m := memDir(t)
	l := openFS(t, m, "/data/new-0", testConfig())
	for i := range 5 {
		mustAppend(t, l, batch(fmt.Sprint(i), 2, 0))
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	disk := m.Crash()
	l2 := openFS(t, disk, "/data/new-0", testConfig())
	defer l2.Close()
	if got := values(t, l2); len(got) != 10 {
		t.Fatalf("after a power cut: %d of 10 flushed records\n%s", len(got), disk)
	}
}
