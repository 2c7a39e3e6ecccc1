package partition

// Moving a hosted replica to another log dir of this broker (AlterReplicaLogDirs, Kafka's future
// replicas). The copy is made in <dest>/<name>.<id>-future while the partition serves; then,
// with the partition detached by the caller (no role: nothing writes to it) and closed, every
// file that changed since it was copied is copied again, and the new directory replaces the old
// one.
//
// Crash protocol (each step durable before the next: files fsynced, directories SyncDir'd):
//
//  1. copy into <dest>/<name>.<id>-future (while serving), then again what changed (closed)
//  2. COMMIT: rename <src>/<name> -> <src>/<name>.<id>-delete
//  3. rename <dest>/<name>.<id>-future -> <dest>/<name>
//  4. remove <src>/<name>.<id>-delete
//
// At start (recoverMoves, before the log dirs are scanned): a -delete directory whose -future
// twin (same name and id) exists is a crash between 2 and 3: step 3 and 4 are done then; a
// -delete directory alone is a crash between 3 and 4: it is removed; a -future directory alone
// is a crash before 2 (the source is intact): it is removed.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

const (
	futureSuffix = "-future"
	deleteSuffix = "-delete"
)

// Move is one replica move between log dirs in progress (Manager.StartMove).
type Move struct {
	m                   *Manager
	topic               string
	part                int32
	name, src, dest, id string
	future              string // <dest>/<name>.<id>-future
	// copied: source file name -> its size and modification time when it was copied.
	copied map[string]fileStamp
	bytes  atomic.Int64 // bytes in the future directory (DescribeLogDirs)
}

type fileStamp struct {
	size int64
	mod  time.Time
}

// MoveStatus is a move in progress, for DescribeLogDirs (a future replica in Dest).
type MoveStatus struct {
	Topic     string
	Partition int32
	Dest      string
	Bytes     int64 // copied so far
}

// ErrMoveInProgress is StartMove of a partition already being moved elsewhere.
var ErrMoveInProgress = errors.New("a move of this replica to another log dir is in progress")

// StartMove begins moving a hosted partition to log dir dest. It returns nil (and no error) when
// the partition is in dest already or on its way there. Errors wrap kerr.LogDirNotFound (dest is
// not a log dir of this broker), kerr.KafkaStorageError (dest or the source is offline),
// kerr.ReplicaNotAvailable (the partition is not hosted here) or ErrMoveInProgress.
func (m *Manager) StartMove(topic string, p int32, dest string) (*Move, error) {
	for _, d := range m.dirs {
		if filepath.Clean(d) == filepath.Clean(dest) {
			dest = d
		}
	}
	ld := m.logDirs[dest]
	if ld == nil {
		return nil, fmt.Errorf("log dir %s is not one of this broker's log dirs: %w", dest, kerr.LogDirNotFound)
	}
	if err := ld.Err(); err != nil {
		return nil, fmt.Errorf("log dir %s is offline: %v: %w", dest, err, kerr.KafkaStorageError)
	}
	name := DirName(topic, p)
	m.mu.Lock()
	defer m.mu.Unlock()
	src, ok := m.onDisk[name]
	hosted := false
	if ps := m.topics[topic]; ok && p >= 0 && int(p) < len(ps) && ps[p] != nil {
		hosted = true
	}
	if !hosted {
		return nil, fmt.Errorf("partition %s is not hosted on this broker: %w", name, kerr.ReplicaNotAvailable)
	}
	if mv := m.moving[name]; mv != nil {
		if mv.dest == dest {
			return nil, nil
		}
		return nil, fmt.Errorf("partition %s to %s: %w (to %s)", name, dest, ErrMoveInProgress, mv.dest)
	}
	switch {
	case src == dest:
		return nil, nil
	case m.logDirs[src].Err() != nil:
		return nil, fmt.Errorf("log dir %s of %s is offline: %w", src, name, kerr.KafkaStorageError)
	}
	id := fmt.Sprintf("%x", time.Now().UnixNano())
	mv := &Move{m: m, topic: topic, part: p, name: name, src: src, dest: dest, id: id,
		future: filepath.Join(dest, name+"."+id+futureSuffix), copied: map[string]fileStamp{}}
	m.moving[name] = mv
	return mv, nil
}

// Moves lists the moves in progress.
func (m *Manager) Moves() []MoveStatus {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]MoveStatus, 0, len(m.moving))
	for _, mv := range m.moving {
		out = append(out, MoveStatus{Topic: mv.topic, Partition: mv.part, Dest: mv.dest, Bytes: mv.bytes.Load()})
	}
	return out
}

// Copy copies the partition's files into the future directory while the partition serves (files
// that change meanwhile are copied again by Finish). It stops early when ctx ends.
func (mv *Move) Copy(ctx context.Context) error {
	fsys := mv.m.fs
	if err := fsys.MkdirAll(mv.future, 0o755); err != nil {
		return fmt.Errorf("move %s: create %s: %w", mv.name, mv.future, err)
	}
	_, err := mv.syncFiles(ctx, false)
	return err
}

// syncFiles copies every source file that is not in the future directory as it is now (with all,
// every file but the segments' .log files whatever its size and time: indexes are preallocated
// and written in place), and removes the future's files the source no longer has; changed reports
// whether it did anything.
func (mv *Move) syncFiles(ctx context.Context, all bool) (changed bool, err error) {
	fsys := mv.m.fs
	srcDir := filepath.Join(mv.src, mv.name)
	entries, err := fsys.ReadDir(srcDir)
	if err != nil {
		return false, fmt.Errorf("move %s: read %s: %w", mv.name, srcDir, err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return changed, err
		}
		if e.IsDir() {
			continue
		}
		present[e.Name()] = true
		fi, err := fsys.Stat(filepath.Join(srcDir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			delete(present, e.Name()) // removed meanwhile (retention, a compaction swap)
			continue
		}
		if err != nil {
			return changed, fmt.Errorf("move %s: %w", mv.name, err)
		}
		st := fileStamp{fi.Size(), fi.ModTime()}
		if old, ok := mv.copied[e.Name()]; ok && old == st && (!all || strings.HasSuffix(e.Name(), ".log")) {
			continue
		}
		n, err := copyFile(fsys, filepath.Join(srcDir, e.Name()), filepath.Join(mv.future, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			delete(present, e.Name())
			continue
		}
		if err != nil {
			return changed, fmt.Errorf("move %s: %w", mv.name, err)
		}
		if old, ok := mv.copied[e.Name()]; ok {
			mv.bytes.Add(-old.size)
		}
		mv.bytes.Add(n)
		mv.copied[e.Name()] = fileStamp{n, st.mod}
		if n != st.size {
			mv.copied[e.Name()] = fileStamp{-1, st.mod} // changed while copied: copy again next time
		}
		changed = true
	}
	for f, st := range mv.copied {
		if !present[f] {
			if err := fsys.Remove(filepath.Join(mv.future, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return changed, fmt.Errorf("move %s: %w", mv.name, err)
			}
			mv.bytes.Add(-max(st.size, 0))
			delete(mv.copied, f)
			changed = true
		}
	}
	return changed, nil
}

// copyFile copies src to dst (created or truncated) and fsyncs dst; it returns the bytes copied.
func copyFile(fsys vfs.FS, src, dst string) (int64, error) {
	in, err := fsys.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := fsys.Create(dst)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dst, err)
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return n, nil
}

// Finish completes the move. REQUIRES: the caller detached the partition (nothing appends to,
// truncates or reads it for replication any more) and holds off every other open or removal of
// it: replica.Manager.Relocate does both, holding the applyMu under which the replica manager,
// the only caller of Ensure, opens and removes partitions. It closes the partition, copies what changed,
// commits the swap (crash protocol above) and opens the partition from dest with no role (the
// caller gives it its role again). On a failure before the commit the partition is opened again
// where it was and the copy removed; the error says why.
func (mv *Move) Finish(s Settings) (*Partition, error) {
	m := mv.m
	m.mu.Lock()
	var part *Partition
	if ps := m.topics[mv.topic]; int(mv.part) < len(ps) {
		part = ps[mv.part]
		ps = slices.Clone(ps)
		ps[mv.part] = nil
		m.topics[mv.topic] = ps
	}
	m.mu.Unlock()
	if part == nil {
		mv.abort()
		return nil, fmt.Errorf("move %s: the partition is no longer hosted here: %w", mv.name, kerr.ReplicaNotAvailable)
	}
	fail := func(err error) (*Partition, error) {
		mv.abort()
		p, oerr := m.Ensure(mv.topic, mv.part, s, -1)
		if oerr != nil {
			return nil, errors.Join(err, fmt.Errorf("reopen %s in %s: %w", mv.name, mv.src, oerr))
		}
		return p, err
	}
	if err := part.Close(); err != nil {
		return fail(fmt.Errorf("move %s: close: %w", mv.name, err))
	}
	if err := m.fs.MkdirAll(mv.future, 0o755); err != nil {
		return fail(fmt.Errorf("move %s: %w", mv.name, err))
	}
	for i := range 3 { // a file copied while it changed is copied again
		if _, err := mv.syncFiles(context.Background(), i == 0); err != nil {
			return fail(err)
		}
		if !mv.dirty() {
			break
		}
	}
	if mv.dirty() {
		return fail(fmt.Errorf("move %s: files kept changing while closed", mv.name))
	}
	fsys := m.fs
	for _, err := range []error{log.SyncDir(fsys, mv.future), log.SyncDir(fsys, mv.dest)} {
		if err != nil {
			return fail(fmt.Errorf("move %s: %w", mv.name, err))
		}
	}
	oldDir := filepath.Join(mv.src, mv.name)
	deleted := filepath.Join(mv.src, mv.name+"."+mv.id+deleteSuffix)
	if err := fsys.Rename(oldDir, deleted); err != nil {
		return fail(fmt.Errorf("move %s: %w", mv.name, err))
	}
	if err := log.SyncDir(fsys, mv.src); err != nil {
		// The rename may or may not be durable: finishing the move is right either way.
		m.logger.Warn("move: sync of the source log dir failed after the commit", "partition", mv.name, "err", err)
	}
	// Committed: from here the copy is the partition (recoverMoves finishes it after a crash).
	newDir := filepath.Join(mv.dest, mv.name)
	if err := fsys.Rename(mv.future, newDir); err != nil {
		m.logDirs[mv.dest].Fail(fmt.Errorf("move %s: rename %s: %w", mv.name, mv.future, err))
		return nil, fmt.Errorf("move %s: committed, but %s could not be renamed (log dir taken offline, a restart finishes the move): %w: %w", mv.name, mv.future, err, kerr.KafkaStorageError)
	}
	if err := log.SyncDir(fsys, mv.dest); err != nil {
		m.logger.Warn("move: sync of the destination log dir failed", "partition", mv.name, "err", err)
	}
	m.mu.Lock()
	m.onDisk[mv.name] = mv.dest
	m.perDir[mv.src]--
	m.perDir[mv.dest]++
	delete(m.moving, mv.name)
	m.mu.Unlock()
	if err := fsys.RemoveAll(deleted); err != nil {
		m.logger.Warn("move: the old copy was not removed (the next start removes it)", "dir", deleted, "err", err)
	}
	return m.Ensure(mv.topic, mv.part, s, -1)
}

// dirty reports whether a file was seen changing while it was copied.
func (mv *Move) dirty() bool {
	for _, st := range mv.copied {
		if st.size < 0 {
			return true
		}
	}
	return false
}

// Abort gives the move up: the copy is removed, the partition stays where it is.
func (mv *Move) Abort() { mv.abort() }

func (mv *Move) abort() {
	if err := mv.m.fs.RemoveAll(mv.future); err != nil {
		mv.m.logger.Warn("move: the partial copy was not removed (the next start removes it)", "dir", mv.future, "err", err)
	}
	mv.m.mu.Lock()
	if mv.m.moving[mv.name] == mv {
		delete(mv.m.moving, mv.name)
	}
	mv.m.mu.Unlock()
}

// splitMoveDir parses "<name>.<id><suffix>".
func splitMoveDir(entry, suffix string) (name, id string, ok bool) {
	rest, ok := strings.CutSuffix(entry, suffix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// recoverMoves finishes or undoes the moves a crash interrupted (crash protocol above).
func recoverMoves(fsys vfs.FS, dirs []string) error {
	type loc struct{ dir, entry string }
	futures := map[string]loc{} // "<name>.<id>" -> where
	var deletes []loc
	for _, d := range dirs {
		entries, err := fsys.ReadDir(d)
		if err != nil {
			return fmt.Errorf("read log dir %s: %w", d, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if name, id, ok := splitMoveDir(e.Name(), futureSuffix); ok {
				futures[name+"."+id] = loc{d, e.Name()}
			} else if _, _, ok := splitMoveDir(e.Name(), deleteSuffix); ok {
				deletes = append(deletes, loc{d, e.Name()})
			}
		}
	}
	for _, del := range deletes {
		name, id, _ := splitMoveDir(del.entry, deleteSuffix)
		if f, ok := futures[name+"."+id]; ok {
			// Crashed after the commit, before the copy took the name.
			if err := fsys.Rename(filepath.Join(f.dir, f.entry), filepath.Join(f.dir, name)); err != nil {
				return fmt.Errorf("finish the move of %s: %w", name, err)
			}
			if err := log.SyncDir(fsys, f.dir); err != nil {
				return err
			}
			delete(futures, name+"."+id)
		}
		if err := fsys.RemoveAll(filepath.Join(del.dir, del.entry)); err != nil {
			return fmt.Errorf("remove %s: %w", filepath.Join(del.dir, del.entry), err)
		}
	}
	for _, f := range futures { // crashed before the commit: the source is intact
		if err := fsys.RemoveAll(filepath.Join(f.dir, f.entry)); err != nil {
			return fmt.Errorf("remove %s: %w", filepath.Join(f.dir, f.entry), err)
		}
	}
	for _, d := range dirs {
		if err := log.SyncDir(fsys, d); err != nil {
			return err
		}
	}
	return nil
}
