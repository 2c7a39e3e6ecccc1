package raftstore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/moldau/moldau/internal/vfs"
)

// TestSnapshotsThroughFS: the snapshot store's files go through Config.FS: an fsync failure there
// fails the snapshot (and leaves no partial one); once the disk is back a snapshot is taken and
// a restart restores from it.
func TestSnapshotsThroughFS(t *testing.T) {
	dir := t.TempDir()
	ffs := vfs.NewFaultFS(vfs.Default)
	var mu sync.Mutex
	seen := map[string]bool{}
	record := func(op vfs.Op, path string) error {
		mu.Lock()
		seen[filepath.Base(path)] = true
		mu.Unlock()
		return nil
	}
	ffs.SetInjector(record)
	cfg := Config{NodeID: 1, Dir: dir, FS: ffs, LogOutput: io.Discard}
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		apply(t, n, i)
	}
	snapshots := filepath.Join(dir, snapDir)
	broken := vfs.OnPrefix(snapshots, syscall.EIO, vfs.OpSync)
	ffs.SetInjector(func(op vfs.Op, path string) error {
		record(op, path)
		return broken(op, path)
	})
	if err := n.Snapshot(); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("snapshot with failing fsyncs: %v", err)
	}
	if metas, err := n.Snapshots(); err != nil || len(metas) != 0 {
		t.Fatalf("after a failed snapshot: %v %v", metas, err)
	}
	ffs.SetInjector(record)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{snapMetaFile, snapStateFile} {
		if !seen[name] {
			t.Fatalf("%s not written through the FS (saw %v)", name, seen)
		}
	}
	// The raft log and stable store are on the FS too: a WAL segment and the meta file.
	mu.Lock()
	segments := 0
	for name := range seen {
		if strings.HasSuffix(name, ".wal") {
			segments++
		}
	}
	metaSeen := seen[walMetaFile]
	mu.Unlock()
	if segments == 0 || !metaSeen {
		t.Fatalf("WAL files not written through the FS (saw %v)", seen)
	}
	if _, err := os.Stat(filepath.Join(dir, "raft.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("raft.db on disk: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	fsm2 := &counter{}
	n, err = Open(cfg, fsm2)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if sum, _, restored := fsm2.state(); sum != 15 || restored != 1 {
		t.Fatalf("after restart: sum %d, restored %d times", sum, restored)
	}
}

// TestSnapshotStoreReadsFileSnapshotStore: data dirs written by hashicorp's FileSnapshotStore
// (before this store existed) read the same.
func TestSnapshotStoreReadsFileSnapshotStore(t *testing.T) {
	dir := t.TempDir()
	old, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("a")
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "1", Address: "a"}}}
	sink, err := old.Create(1, 42, 3, conf, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	sink.Write([]byte("state bytes"))
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := newSnapshotStore(vfs.Default, dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	metas, err := s.List()
	if err != nil || len(metas) != 1 || metas[0].Index != 42 || metas[0].Term != 3 || len(metas[0].Configuration.Servers) != 1 {
		t.Fatalf("list: %+v %v", metas, err)
	}
	_, rc, err := s.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != "state bytes" {
		t.Fatalf("state %q", b)
	}
	// And the other way round.
	sink2, err := s.Create(1, 50, 3, conf, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	sink2.Write([]byte("newer"))
	if err := sink2.Close(); err != nil {
		t.Fatal(err)
	}
	metas, err = old.List()
	if err != nil || len(metas) != 2 || metas[0].Index != 50 {
		t.Fatalf("FileSnapshotStore lists %+v %v", metas, err)
	}
	if _, _, err := old.Open(metas[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open("nope"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("open a missing snapshot: %v", err)
	}
}
