package partition

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/vfs"
)

// moveSetup is a manager on two in-memory log dirs with t-0 in /d1 holding n records in small
// segments, led alone.
func moveSetup(t *testing.T, fsys vfs.FS, n int) (*Manager, *Partition) {
	t.Helper()
	m, err := NewManager([]string{"/d1", "/d2"}, nil, WithFS(fsys))
	if err != nil {
		t.Fatal(err)
	}
	s := testSettings(true)
	s.Log.SegmentBytes = 400 // several segments
	p, err := m.Ensure("t", 0, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.DirOf("t", 0); got != "/d1" {
		t.Fatalf("t-0 placed in %s", got)
	}
	appendN(t, p, n)
	return m, p
}

func appendN(t *testing.T, p *Partition, n int) {
	t.Helper()
	for range n {
		if _, err := p.Append(plainBatch(1), -1, OriginClient); err != nil {
			t.Fatal(err)
		}
	}
}

func dirEntries(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	es, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestMoveBetweenLogDirs: a replica copied while it takes writes, then swapped, is in the new
// dir with every record (also after a restart), and the old dir holds nothing of it.
func TestMoveBetweenLogDirs(t *testing.T) {
	mem := vfs.NewMem()
	m, p := moveSetup(t, mem, 20)
	s := p.Settings()
	mv, err := m.StartMove("t", 0, "/d2/")
	if err != nil || mv == nil {
		t.Fatalf("start: %v, %v", mv, err)
	}
	if again, err := m.StartMove("t", 0, "/d2"); again != nil || err != nil {
		t.Fatalf("a second move to the same dir: %v, %v", again, err)
	}
	if _, err := m.StartMove("t", 0, "/d1"); !errors.Is(err, ErrMoveInProgress) {
		t.Fatalf("a move elsewhere while one runs: %v", err)
	}
	if err := mv.Copy(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendN(t, p, 10) // after the copy: Finish copies these
	if st := m.Moves(); len(st) != 1 || st[0].Dest != "/d2" || st[0].Bytes <= 0 {
		t.Fatalf("moves: %+v", st)
	}
	np, err := mv.Finish(s)
	if err != nil {
		t.Fatal(err)
	}
	if np == p || np.LogEndOffset() != 30 || m.DirOf("t", 0) != "/d2" || m.Get("t", 0) != np || len(m.Moves()) != 0 {
		t.Fatalf("after the move: log end %d in %s", np.LogEndOffset(), m.DirOf("t", 0))
	}
	if d1, d2 := dirEntries(t, mem, "/d1"), dirEntries(t, mem, "/d2"); len(d1) != 0 || strings.Join(d2, ",") != "t-0" {
		t.Fatalf("dirs: /d1 %v, /d2 %v", d1, d2)
	}
	if err := np.BecomeSoleLeader(1); err != nil {
		t.Fatal(err)
	}
	if n := readCount(t, np); n != 30 {
		t.Fatalf("%d records readable after the move", n)
	}
	appendN(t, np, 5)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := NewManager([]string{"/d1", "/d2"}, nil, WithFS(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.DirOf("t", 0) != "/d2" {
		t.Fatalf("after restart in %q", m2.DirOf("t", 0))
	}
	p2, err := m2.Ensure("t", 0, s, 2)
	if err != nil || readCount(t, p2) != 35 {
		t.Fatalf("after restart: %v", err)
	}
}

func TestStartMoveErrors(t *testing.T) {
	m, _ := moveSetup(t, vfs.NewMem(), 1)
	defer m.Close()
	for _, tc := range []struct {
		topic string
		dir   string
		want  error
	}{{"t", "/nope", kerr.LogDirNotFound}, {"u", "/d2", kerr.ReplicaNotAvailable}} {
		if _, err := m.StartMove(tc.topic, 0, tc.dir); !errors.Is(err, tc.want) {
			t.Errorf("%s-0 to %s: %v, want %v", tc.topic, tc.dir, err, tc.want)
		}
	}
	if mv, err := m.StartMove("t", 0, "/d1"); mv != nil || err != nil {
		t.Errorf("to its own dir: %v, %v", mv, err)
	}
}

// TestMoveCrashAtEveryStep: a power cut before each filesystem change Finish makes leaves, after
// the restart's recovery, the partition in exactly one of the two dirs with every record, and no
// partial copy or old copy behind.
func TestMoveCrashAtEveryStep(t *testing.T) {
	mutating := map[vfs.Op]bool{vfs.OpCreate: true, vfs.OpSync: true, vfs.OpRename: true, vfs.OpRemove: true,
		vfs.OpSyncDir: true, vfs.OpSyncFS: true, vfs.OpWrite: true, vfs.OpTruncate: true, vfs.OpMkdir: true}
	for k := 1; ; k++ {
		mem := vfs.NewMem()
		ffs := vfs.NewFaultFS(mem)
		m, p := moveSetup(t, ffs, 20)
		s := p.Settings()
		mv, err := m.StartMove("t", 0, "/d2")
		if err != nil {
			t.Fatal(err)
		}
		if err := mv.Copy(context.Background()); err != nil {
			t.Fatal(err)
		}
		appendN(t, p, 10)
		// Everything so far is durable (the log dirs themselves too): the crashes are Finish's.
		root, err := mem.OpenDir("/")
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.SyncFS(root); err != nil {
			t.Fatal(err)
		}
		root.Close()
		var crashed *vfs.MemFS
		ops := 0
		ffs.SetInjector(func(op vfs.Op, path string) error {
			if crashed != nil {
				return vfs.ErrCrashed
			}
			if mutating[op] {
				ops++
				if ops == k {
					crashed = mem.Crash()
					return vfs.ErrCrashed
				}
			}
			return nil
		})
		_, ferr := mv.Finish(s)
		if crashed == nil { // Finish made fewer than k changes: every point was tried
			if ferr != nil {
				t.Fatalf("finish: %v", ferr)
			}
			m.Close()
			if k < 10 {
				t.Fatalf("only %d crash points", k-1)
			}
			t.Logf("%d crash points", k-1)
			return
		}
		ffs.SetInjector(nil)
		m2, err := NewManager([]string{"/d1", "/d2"}, nil, WithFS(crashed))
		if err != nil {
			t.Fatalf("crash at change %d: restart: %v", k, err)
		}
		dir := m2.DirOf("t", 0)
		var all []string
		for _, d := range []string{"/d1", "/d2"} {
			for _, e := range dirEntries(t, crashed, d) {
				all = append(all, filepath.Join(d, e))
			}
		}
		if len(all) != 1 || all[0] != filepath.Join(dir, "t-0") {
			t.Fatalf("crash at change %d: dirs after recovery %v (t-0 in %q)", k, all, dir)
		}
		p2, err := m2.Ensure("t", 0, s, 1)
		if err != nil {
			t.Fatalf("crash at change %d: open: %v", k, err)
		}
		if n := readCount(t, p2); n != 30 {
			t.Fatalf("crash at change %d: %d records in %s, want 30", k, n, dir)
		}
		m2.Close()
	}
}
