package log

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/moldau/moldau/internal/record"
)

// crashLog writes n batches and "crashes": files are closed without Close, so
// there is no clean-shutdown marker. It returns the batches as appended.
func crashLog(t *testing.T, dir string, cfg Config, n int, flushAfter int) [][]byte {
	t.Helper()
	l := mustOpen(t, dir, cfg, newClock())
	var out [][]byte
	for i := range n {
		b := batch(fmt.Sprint("crash", i), 3, int64(i))
		mustAppend(t, l, b)
		out = append(out, append([]byte(nil), b...))
		if i+1 == flushAfter {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	l.mu.Lock()
	for _, s := range l.mu.segments {
		s.close()
	}
	l.mu.closed = true
	l.mu.Unlock()
	return out
}

func lastSegmentPath(t *testing.T, dir, ext string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) == 0 {
		t.Fatal("no segments")
	}
	return m[len(m)-1][:len(m[len(m)-1])-len(".log")] + ext
}

// checkPrefix asserts that the log holds exactly want[:n] for some n >= minKeep
// and accepts an append afterwards; it returns n.
func checkPrefix(t *testing.T, l *Log, want [][]byte, minKeep int) int {
	t.Helper()
	r, err := l.Read(0, math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := record.Split(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < minKeep || len(got) > len(want) {
		t.Fatalf("kept %d batches, want at least %d of %d", len(got), minKeep, len(want))
	}
	for i, b := range got {
		if !bytes.Equal(b, want[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}
	if l.LogEndOffset() != int64(3*len(got)) {
		t.Fatalf("end offset %d for %d batches", l.LogEndOffset(), len(got))
	}
	res, err := l.Append(batch("after", 1, 0), 0, -1)
	if err != nil || res.BaseOffset != int64(3*len(got)) {
		t.Fatal(res, err)
	}
	readAllBatches(t, l, 0)
	return len(got)
}

func TestRecovery(t *testing.T) {
	const n = 40
	cfg := testConfig()
	cfg.SegmentBytes = 1500
	cfg.IndexIntervalBytes = 200
	for _, tc := range []struct {
		name     string
		flush    int // batches before a Flush (recovery point), 0: none
		damage   func(t *testing.T, dir string, want [][]byte)
		keepLast int // batches that must survive, counted from the start
	}{
		{"no damage", 0, func(*testing.T, string, [][]byte) {}, n},
		{"truncate mid-batch", 0, func(t *testing.T, dir string, want [][]byte) {
			p := lastSegmentPath(t, dir, ".log")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-int64(len(want[n-1]))/2)
		}, n - 1},
		{"flip byte in last batch", 0, func(t *testing.T, dir string, want [][]byte) {
			p := lastSegmentPath(t, dir, ".log")
			b, _ := os.ReadFile(p)
			b[len(b)-5] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}, n - 1},
		{"garbage appended", 0, func(t *testing.T, dir string, want [][]byte) {
			f, _ := os.OpenFile(lastSegmentPath(t, dir, ".log"), os.O_WRONLY|os.O_APPEND, 0)
			f.Write(bytes.Repeat([]byte{0xde, 0xad}, 1000))
			f.Close()
		}, n},
		{"zeros appended (preallocated tail)", 0, func(t *testing.T, dir string, want [][]byte) {
			f, _ := os.OpenFile(lastSegmentPath(t, dir, ".log"), os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, 4096))
			f.Close()
		}, n},
		{"missing index files", 0, func(t *testing.T, dir string, want [][]byte) {
			m, _ := filepath.Glob(filepath.Join(dir, "*.index"))
			for _, p := range m {
				os.Remove(p)
			}
			m, _ = filepath.Glob(filepath.Join(dir, "*.timeindex"))
			for _, p := range m {
				os.Remove(p)
			}
		}, n},
		{"truncated index after flush", 30, func(t *testing.T, dir string, want [][]byte) {
			m, _ := filepath.Glob(filepath.Join(dir, "*.index"))
			os.Truncate(m[0], 5)
		}, n},
		{"garbage index after flush", 30, func(t *testing.T, dir string, want [][]byte) {
			m, _ := filepath.Glob(filepath.Join(dir, "*.index"))
			os.WriteFile(m[0], bytes.Repeat([]byte{0xff}, 64), 0o644)
		}, n},
		{"corrupt middle segment (unflushed)", 0, func(t *testing.T, dir string, want [][]byte) {
			m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			b, _ := os.ReadFile(m[1])
			b[100] ^= 0xff
			os.WriteFile(m[1], b, 0o644)
		}, 0},
		{"empty last segment file", 0, func(t *testing.T, dir string, want [][]byte) {
			os.Truncate(lastSegmentPath(t, dir, ".log"), 0)
		}, 0},
		{"garbage recovery point", 0, func(t *testing.T, dir string, want [][]byte) {
			os.WriteFile(filepath.Join(dir, recoveryPointFile), []byte("zz"), 0o644)
		}, n},
		{"stray files", 0, func(t *testing.T, dir string, want [][]byte) {
			os.WriteFile(filepath.Join(dir, "00000000000000000007.index"), []byte("x"), 0o644)
			os.WriteFile(filepath.Join(dir, "junk.log"), []byte("x"), 0o644)
			os.WriteFile(filepath.Join(dir, "00000000000000000000.log.deleted"), []byte("x"), 0o644)
		}, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := crashLog(t, dir, cfg, n, tc.flush)
			tc.damage(t, dir, want)
			l := mustOpen(t, dir, cfg, newClock())
			kept := checkPrefix(t, l, want, tc.keepLast)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopen cleanly and unclean again: same content.
			l = mustOpen(t, dir, cfg, newClock())
			if got := l.LogEndOffset(); got != int64(3*kept+1) {
				t.Fatalf("after clean reopen end %d", got)
			}
			l.Close()
			os.Remove(filepath.Join(dir, cleanShutdownFile))
			l = mustOpen(t, dir, cfg, newClock())
			defer l.Close()
			if got := l.LogEndOffset(); got != int64(3*kept+1) {
				t.Fatalf("after unclean reopen end %d", got)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*.deleted")); len(m) != 0 {
				t.Fatal(m)
			}
		})
	}
}

// TestRecoveryCorruptMiddleKeepsPrefix: damage in a middle segment keeps
// every batch before it and deletes the later segments.
func TestRecoveryCorruptMiddleKeepsPrefix(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1500
	dir := t.TempDir()
	want := crashLog(t, dir, cfg, 40, 0)
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) < 3 {
		t.Fatal("need 3 segments")
	}
	base, _ := parseSegmentName(filepath.Base(m[1]), ".log")
	b, _ := os.ReadFile(m[1])
	h, _ := record.ParseHeader(b)
	b[h.Size()+70] ^= 0xff // second batch of the second segment
	os.WriteFile(m[1], b, 0o644)
	l := mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	kept := checkPrefix(t, l, want, 0)
	if int64(3*kept) != base+3 {
		t.Fatalf("kept %d batches, second segment starts at %d", kept, base)
	}
	if m2, _ := filepath.Glob(filepath.Join(dir, "*.log")); len(m2) != 2 {
		t.Fatal("later segments not deleted", m2)
	}
}

// TestCleanShutdownTrustsIndexes: after a clean shutdown a damaged tail is
// still caught (the tail is verified) but the index is used as is.
func TestCleanShutdownTailCheck(t *testing.T) {
	cfg := testConfig()
	cfg.IndexIntervalBytes = 200
	dir := t.TempDir()
	l := mustOpen(t, dir, cfg, newClock())
	var want [][]byte
	for i := range 20 {
		b := batch(fmt.Sprint(i), 3, 0)
		mustAppend(t, l, b)
		want = append(want, append([]byte(nil), b...))
	}
	l.Close()
	p := lastSegmentPath(t, dir, ".log")
	fi, _ := os.Stat(p)
	os.Truncate(p, fi.Size()-10)
	l = mustOpen(t, dir, cfg, newClock())
	defer l.Close()
	checkPrefix(t, l, want, 19)
}

// FuzzRecover writes the fuzz input as a segment file (and optionally an
// index) and opens the log: it must not panic and must end in a valid log.
func FuzzRecover(f *testing.F) {
	var seed []byte
	for i := range 4 {
		b := batch(fmt.Sprint(i), 2, int64(i))
		record.SetBaseOffset(b, int64(2*i))
		seed = append(seed, b...)
	}
	f.Add(seed, []byte(nil), false)
	f.Add(seed[:len(seed)-7], []byte{0, 0, 0, 3, 0, 0, 0, 87}, true)
	f.Add(append(append([]byte(nil), seed...), 0xff, 0xff), []byte{0, 0, 0, 1}, false)
	f.Add([]byte{}, []byte{}, true)
	f.Fuzz(func(t *testing.T, segment, index []byte, clean bool) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), segment, 0o644)
		if index != nil {
			os.WriteFile(filepath.Join(dir, segmentName(0, ".index")), index, 0o644)
			os.WriteFile(filepath.Join(dir, segmentName(0, ".timeindex")), index, 0o644)
		}
		if clean {
			os.WriteFile(filepath.Join(dir, cleanShutdownFile), nil, 0o644)
		}
		cfg := testConfig()
		cfg.IndexIntervalBytes = 50
		l, err := Open(dir, cfg, newClock())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// Every batch readable and valid, offsets increasing.
		last := int64(-1)
		if err := l.ScanHeaders(0, func(h record.BatchHeader) error {
			if h.BaseOffset <= last {
				return fmt.Errorf("offset %d after %d", h.BaseOffset, last)
			}
			last = h.LastOffset()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if last+1 != l.LogEndOffset() && !(last == -1 && l.LogEndOffset() >= 0) {
			t.Fatalf("last offset %d, end %d", last, l.LogEndOffset())
		}
		if l.LogEndOffset() > 0 {
			r, err := l.Read(l.LogStartOffset(), math.MaxInt32, math.MaxInt64, true)
			if err != nil {
				t.Fatal(err)
			}
			bs, err := record.Split(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bs {
				if _, err := record.ValidateStored(b); err != nil {
					t.Fatal(err)
				}
			}
		}
		end := l.LogEndOffset()
		if _, err := l.Append(batch("x", 1, 0), 0, -1); err != nil {
			t.Fatal(err)
		}
		l.Close()
		l2, err := Open(dir, cfg, newClock())
		if err != nil {
			t.Fatal(err)
		}
		defer l2.Close()
		if l2.LogEndOffset() != end+1 {
			t.Fatalf("reopen: end %d, want %d", l2.LogEndOffset(), end+1)
		}
	})
}
