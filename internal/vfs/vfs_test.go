package vfs

import (
	"bytes"
	"errors"
	"io/fs"
	"syscall"
	"testing"
)

func mustWrite(t *testing.T, fsys FS, name, data string, sync bool) File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func content(t *testing.T, fsys FS, name string) (string, bool) {
	t.Helper()
	b, err := ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// TestMemCrash: only what was fsynced survives, file data by File.Sync and directory entries by
// SyncDir; SyncFS makes everything durable; the crashed filesystem refuses every operation.
func TestMemCrash(t *testing.T) {
	m := NewMem()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, "/d/synced", "durable", true)
	mustWrite(t, m, "/d/unsynced", "lost", false)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	// After the dir sync: more data (not synced), a new file, a rename and a removal (not dir-synced).
	f := mustWrite(t, m, "/d/grows", "base", true)
	if err := m.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("-tail"), 4); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, "/d/new", "new", true)
	if err := m.Rename("/d/synced", "/d/renamed"); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove("/d/unsynced"); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, m, "/d/grows"); got != "base-tail" {
		t.Fatalf("before the crash: %q", got)
	}

	c := m.Crash()
	for name, want := range map[string]string{"/d/synced": "durable", "/d/unsynced": "", "/d/grows": "base"} {
		if got, ok := content(t, c, name); !ok || got != want {
			t.Errorf("%s after crash: %q (exists %v), want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"/d/new", "/d/renamed"} {
		if _, ok := content(t, c, name); ok {
			t.Errorf("%s survived a crash without a directory sync", name)
		}
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write to a crashed filesystem's file: %v", err)
	}
	if _, err := m.Stat("/d"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("stat on a crashed filesystem: %v", err)
	}

	// SyncFS: everything, data and entries, survives.
	mustWrite(t, c, "/d/late", "late", false)
	if err := c.Rename("/d/grows", "/d/moved"); err != nil {
		t.Fatal(err)
	}
	dir, err := c.OpenDir("/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SyncFS(dir); err != nil {
		t.Fatal(err)
	}
	c2 := c.Crash()
	if got, _ := content(t, c2, "/d/late"); got != "late" {
		t.Fatalf("after SyncFS and a crash: %q", got)
	}
	if got, _ := content(t, c2, "/d/moved"); got != "base" {
		t.Fatalf("renamed file after SyncFS and a crash: %q", got)
	}
}

// TestMemTruncateSync: a truncation is durable only once synced; rewriting below the synced
// length is tracked.
func TestMemTruncateSync(t *testing.T) {
	m := NewMem()
	f := mustWrite(t, m, "/f", "0123456789", true)
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, m.Crash(), "/f"); got != "0123456789" {
		t.Fatalf("unsynced truncation survived: %q", got)
	}
	m = NewMem()
	f = mustWrite(t, m, "/f", "0123456789", true)
	m.SyncDir("/")
	f.Truncate(4)
	f.WriteAt([]byte("ab"), 6)
	f.Sync()
	f.WriteAt([]byte("Z"), 0)
	if got, _ := content(t, m.Crash(), "/f"); got != "0123\x00\x00ab" {
		t.Fatalf("after truncate, write past the end, sync: %q", got)
	}
}

// TestFaultFS: injected errors hit only the chosen ops and paths, a failed write writes half its
// bytes, and faults can be switched off while files are open.
func TestFaultFS(t *testing.T) {
	m := NewMem()
	ffs := NewFaultFS(m)
	if err := ffs.MkdirAll("/a", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ffs.MkdirAll("/ab", 0o755); err != nil {
		t.Fatal(err)
	}
	fa, err := ffs.Create("/a/f")
	if err != nil {
		t.Fatal(err)
	}
	fab, err := ffs.Create("/ab/f")
	if err != nil {
		t.Fatal(err)
	}
	ffs.SetInjector(OnPrefix("/a", syscall.ENOSPC, OpWrite))
	if _, err := fa.Write([]byte("12345678")); !errors.Is(err, syscall.ENOSPC) || !IsNoSpace(err) {
		t.Fatalf("write under /a: %v", err)
	}
	if got, _ := content(t, m, "/a/f"); got != "1234" {
		t.Fatalf("a failed write wrote %q, want half of it", got)
	}
	if _, err := fab.Write([]byte("ok")); err != nil {
		t.Fatalf("write under /ab (not under /a): %v", err)
	}
	if err := fa.Sync(); err != nil {
		t.Fatalf("sync is not injected: %v", err)
	}
	if _, ok := OSFile(fa); ok {
		t.Fatal("a fault FS file claims an *os.File")
	}
	ffs.SetInjector(OnPrefix("/", syscall.EIO, OpSync, OpSyncDir, OpSyncFS))
	if err := fab.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v", err)
	}
	if err := ffs.SyncDir("/a"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("syncdir: %v", err)
	}
	ffs.SetInjector(nil)
	if _, err := fa.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := fa.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := content(t, m, "/a/f"); !bytes.Equal([]byte(got), []byte("1234more")) {
		t.Fatalf("after the disk came back: %q", got)
	}
}

// TestDefaultIsOS: Default's files are *os.File (sendfile works on them).
func TestDefaultIsOS(t *testing.T) {
	f := mustWrite(t, Default, t.TempDir()+"/x", "data", true)
	defer f.Close()
	if _, ok := OSFile(f); !ok {
		t.Fatal("Default's file has no *os.File")
	}
}
