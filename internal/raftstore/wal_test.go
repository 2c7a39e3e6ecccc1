package raftstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/moldau/moldau/internal/vfs"
)

// TestPowerLossKeepsAcknowledgedEntries runs the raft store on an in-memory FS, cuts the power
// (MemFS.Crash: every write not fsynced, and every directory entry not made durable, is lost)
// after entries were acknowledged by Apply, and reopens on what survived: every acknowledged
// entry is there. Small segments make the WAL seal and rotate segment files (CommitState of the
// meta store), and a snapshot in the second round truncates the log (segment deletion), so
// those paths are crossed by a crash too.
func TestPowerLossKeepsAcknowledgedEntries(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{
		NodeID: 1, Dir: "/data/log0/__raft", FS: mem, LogOutput: io.Discard,
		WALSegmentSize: 2048, TrailingLogs: 5, SnapshotThreshold: 1 << 20,
	}
	want := 0
	next := 1
	for round := range 3 {
		fsm := &counter{}
		n, err := Open(cfg, fsm)
		if err != nil {
			t.Fatalf("round %d: open after power loss: %v", round, err)
		}
		if sum, _, _ := fsm.state(); sum != want {
			n.Close()
			t.Fatalf("round %d: sum after power loss %d, want %d (acknowledged entries lost)", round, sum, want)
		}
		for range 40 {
			if got := apply(t, n, next); got != want+next {
				t.Fatalf("round %d: response %v, want %d", round, got, want+next)
			}
			want += next
			next++
			if round == 1 && next%20 == 0 {
				if err := n.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Power loss: nothing is closed or flushed first. Close afterwards only stops the
		// goroutines of the dead node (its FS fails everything with ErrCrashed).
		survivor := mem.Crash()
		n.Close()
		mem = survivor
		cfg.FS = mem
	}
	if first := segmentFiles(t, mem, filepath.Join(cfg.Dir, walDirName)); first < 2 {
		t.Fatalf("only %d segment files: the test did not cross a rotation", first)
	}
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if sum, _, restored := fsm.state(); sum != want || restored != 1 {
		t.Fatalf("final sum %d restored %d, want %d from a snapshot", sum, restored, want)
	}
}

func segmentFiles(t *testing.T, fsys vfs.FS, dir string) int {
	t.Helper()
	names, err := walFS{fs: fsys}.ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".wal") {
			n++
		}
	}
	return n
}

// TestWALSyncFailureFailsApply: when fsync of the WAL's segment files fails, Apply returns the
// error instead of acknowledging the entry, and the FSM never sees it.
func TestWALSyncFailureFailsApply(t *testing.T) {
	ffs := vfs.NewFaultFS(vfs.NewMem())
	cfg := Config{NodeID: 1, Dir: "/data/__raft", FS: ffs, LogOutput: io.Discard}
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	apply(t, n, 1)
	// Segment files only ("0000…-….wal"): the meta file (raft's term and vote) stays writable,
	// since hashicorp/raft panics when it cannot persist its term.
	walDir := filepath.Join(cfg.Dir, walDirName)
	var failed atomic.Int32
	ffs.SetInjector(func(op vfs.Op, path string) error {
		if op == vfs.OpSync && filepath.Dir(path) == walDir && strings.HasSuffix(path, ".wal") {
			failed.Add(1)
			return syscall.EIO
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := n.Apply(ctx, []byte("100")); err == nil {
		t.Fatalf("Apply acknowledged an entry whose fsync failed (response %v)", resp)
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply did not fail: %v", err)
	}
	ffs.SetInjector(nil)
	if failed.Load() == 0 {
		t.Fatal("no segment fsync was attempted")
	}
	if sum, _, _ := fsm.state(); sum != 1 {
		t.Fatalf("FSM sum %d: the failed entry was applied", sum)
	}
}

// writeBoltStore runs a single-voter raft on raft-boltdb in dir/raft.db, as Moldau did before
// raft-wal, applies n entries and shuts down. It returns raft's term at the end.
func writeBoltStore(t *testing.T, dir string, n int) uint64 {
	t.Helper()
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snaps := raft.NewInmemSnapshotStore()
	_, trans := raft.NewInmemTransport("inmem:1")
	rc := raft.DefaultConfig()
	rc.LocalID = ServerID(1)
	rc.Logger = hclog.NewNullLogger()
	rc.HeartbeatTimeout = 50 * time.Millisecond
	rc.ElectionTimeout = 50 * time.Millisecond
	rc.LeaderLeaseTimeout = 25 * time.Millisecond
	if err := raft.BootstrapCluster(rc, store, store, snaps, trans, raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: rc.LocalID, Address: trans.LocalAddr()},
	}}); err != nil {
		t.Fatal(err)
	}
	r, err := raft.NewRaft(rc, &counter{}, store, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("bolt raft: no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 1; i <= n; i++ {
		if err := r.Apply([]byte(strconv.Itoa(i)), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	term, err := store.GetUint64([]byte("CurrentTerm"))
	if err != nil || term == 0 {
		t.Fatalf("bolt term %d %v", term, err)
	}
	return term
}

// TestMigrateFromBolt: a data dir with raft-boltdb's raft.db is copied into the WAL on Open:
// the same log entries (index, term, type, data) and the same term and vote, raft.db renamed
// raft.db.migrated, and the FSM rebuilt from the copied log.
func TestMigrateFromBolt(t *testing.T) {
	dir := t.TempDir()
	const entries = 30
	term := writeBoltStore(t, dir, entries)

	// What bolt holds, read before the migration.
	old, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := old.FirstIndex()
	last, _ := old.LastIndex()
	var oldLogs []raft.Log
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := old.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		oldLogs = append(oldLogs, l)
	}
	vote, err := old.Get([]byte("LastVoteCand"))
	if err != nil {
		t.Fatal(err)
	}
	voteTerm, err := old.GetUint64([]byte("LastVoteTerm"))
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	// A copy a crash interrupted earlier is discarded, not trusted.
	if err := os.MkdirAll(filepath.Join(dir, walDirName+migratingSuffix), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, walDirName+migratingSuffix, walMetaFile), []byte("torn"), 0o644); err != nil {
		t.Fatal(err)
	}

	cfg := Config{NodeID: 1, Dir: dir, FS: vfs.Default, LogOutput: io.Discard}
	var logBuf strings.Builder
	if err := migrateBolt(cfg, filepath.Join(dir, walDirName), hclog.New(&hclog.LoggerOptions{Output: &logBuf, Level: hclog.Info})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "[INFO]") || !strings.Contains(logBuf.String(), "migrated") {
		t.Fatalf("migration not logged at INFO: %q", logBuf.String())
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("raft.db still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltMigrated)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, walDirName+migratingSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("wal.migrating left behind: %v", err)
	}

	w, err := openWAL(vfs.Default, filepath.Join(dir, walDirName), 0, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := w.FirstIndex(); f != first {
		t.Fatalf("first index %d, bolt had %d", f, first)
	}
	if l, _ := w.LastIndex(); l != last {
		t.Fatalf("last index %d, bolt had %d", l, last)
	}
	for _, want := range oldLogs {
		var got raft.Log
		if err := w.GetLog(want.Index, &got); err != nil {
			t.Fatal(err)
		}
		if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type || string(got.Data) != string(want.Data) {
			t.Fatalf("log %d: got %+v, bolt had %+v", want.Index, got, want)
		}
	}
	if got, err := w.GetUint64([]byte("CurrentTerm")); err != nil || got != term {
		t.Fatalf("CurrentTerm %d %v, bolt had %d", got, err, term)
	}
	if got, err := w.GetUint64([]byte("LastVoteTerm")); err != nil || got != voteTerm {
		t.Fatalf("LastVoteTerm %d %v, bolt had %d", got, err, voteTerm)
	}
	if got, err := w.Get([]byte("LastVoteCand")); err != nil || string(got) != string(vote) {
		t.Fatalf("LastVoteCand %q %v, bolt had %q", got, err, vote)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// raft on the migrated store: the log replays into the FSM and the term goes on from bolt's.
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if sum, _, _ := fsm.state(); sum != entries*(entries+1)/2 {
		t.Fatalf("FSM sum %d after migration, want %d", sum, entries*(entries+1)/2)
	}
	if got, _ := strconv.ParseUint(n.Raft().Stats()["term"], 10, 64); got <= term {
		t.Fatalf("raft term %d after migration, bolt had %d (term went back)", got, term)
	}
	if got := apply(t, n, 1); got != entries*(entries+1)/2+1 {
		t.Fatalf("response %v", got)
	}
}

// TestMigrateResumesAfterWALRename: a crash after the migrated WAL was renamed into place but
// before raft.db was renamed leaves both; the next Open keeps the WAL and renames raft.db.
func TestMigrateResumesAfterWALRename(t *testing.T) {
	dir := t.TempDir()
	writeBoltStore(t, dir, 5)
	cfg := Config{NodeID: 1, Dir: dir, FS: vfs.Default, LogOutput: io.Discard}
	walDir := filepath.Join(dir, walDirName)
	if err := copyBolt(cfg, filepath.Join(dir, boltFile), walDir, hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if sum, _, _ := fsm.state(); sum != 15 {
		t.Fatalf("FSM sum %d, want 15", sum)
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("raft.db still there: %v", err)
	}
}

// TestWALMetaAtomic: the meta store's state and stable values survive a power loss once
// CommitState/SetStable returned, and a leftover temporary file does not confuse Load.
func TestWALMetaAtomic(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/d/wal"
	if err := mkdirDurable(mem, dir); err != nil {
		t.Fatal(err)
	}
	m := newWALMeta(mem)
	if _, err := m.Load(dir); err != nil {
		t.Fatal(err)
	}
	if v, err := m.GetStable([]byte("k")); err != nil || v != nil {
		t.Fatalf("unset key: %q %v", v, err)
	}
	if err := m.SetStable([]byte("k\x00\xff"), []byte{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Load(dir)
	st.NextSegmentID = 7
	if err := m.CommitState(st); err != nil {
		t.Fatal(err)
	}
	// An unfinished later write: only a temporary file, never fsynced.
	f, err := mem.Create(filepath.Join(dir, walMetaFile+".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("{torn"))
	mem = mem.Crash()
	m2 := newWALMeta(mem)
	got, err := m2.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.NextSegmentID != 7 {
		t.Fatalf("NextSegmentID %d after power loss, want 7", got.NextSegmentID)
	}
	if v, err := m2.GetStable([]byte("k\x00\xff")); err != nil || string(v) != "\x00\x01\x02" {
		t.Fatalf("stable value %q %v after power loss", v, err)
	}
}

// TestWALReopensAfterTailTruncation: raft clears a log suffix when a vote shows a conflicting
// tail ("clearing log suffix"); the WAL must open again after that. raft-wal v0.4.0 sealed the
// truncated segment without its index, so the next start panicked in raft.NewRaft with "sealed
// segment has no index block" (hashicorp/raft-wal#31, fixed in v0.4.1); a node killed after
// losing an election did not come back in TestClusterVerifyThreeNodes.
func TestWALReopensAfterTailTruncation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), walDirName)
	w, err := openWAL(vfs.Default, dir, 0, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("entry")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(10, 10); err != nil { // the conflicting tail
		t.Fatal(err)
	}
	if err := w.StoreLog(&raft.Log{Index: 10, Term: 2, Type: raft.LogCommand, Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = openWAL(vfs.Default, dir, 0, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, i := range []uint64{1, 9, 10} {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil {
			t.Fatalf("log %d after reopening: %v", i, err)
		}
		if i == 10 && (l.Term != 2 || string(l.Data) != "new") {
			t.Fatalf("log 10: term %d data %q", l.Term, l.Data)
		}
	}
}
