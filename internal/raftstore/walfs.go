package raftstore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft-wal/types"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// walFS is raft-wal's types.VFS on a vfs.FS: every segment file of the raft log is created,
// written, fsynced, read and deleted through the filesystem seam. It does what raft-wal's own
// fs.FS (the OS implementation) does, less preallocation:
//   - Create fails if the file exists, and does not fsync the directory at once: the first
//     Sync of the new file also fsyncs its directory (raft-wal Syncs a segment before it
//     acknowledges any entry in it, so the file's name is durable before anything in it is
//     acknowledged).
//   - Delete fsyncs the directory before it returns.
type walFS struct{ fs vfs.FS }

var _ types.VFS = walFS{}

func (w walFS) ListDir(dir string) ([]string, error) {
	entries, err := w.fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil // ReadDir sorts by name
}

// Create implements types.VFS. The existence check and the creation are two steps: raft-wal
// creates segment files from one goroutine only, and the log dir lock keeps other processes out.
func (w walFS) Create(dir, name string, _ uint64) (types.WritableFile, error) {
	path := filepath.Join(dir, name)
	if _, err := w.fs.Stat(path); err == nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := w.fs.OpenReadWrite(path, true)
	if err != nil {
		return nil, err
	}
	return &walNewFile{File: f, fs: w.fs, dir: dir}, nil
}

func (w walFS) Delete(dir, name string) error {
	if err := w.fs.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	return w.fs.SyncDir(dir)
}

func (w walFS) OpenReader(dir, name string) (types.ReadableFile, error) {
	return w.fs.Open(filepath.Join(dir, name))
}

func (w walFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	return w.fs.OpenReadWrite(filepath.Join(dir, name), false)
}

// walNewFile is a file made by walFS.Create: its first successful Sync also fsyncs the
// directory, so the file's entry is durable by the time anything written to it is.
type walNewFile struct {
	vfs.File
	fs        vfs.FS
	dir       string
	dirSynced atomic.Bool
}

func (f *walNewFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	if f.dirSynced.Load() {
		return nil
	}
	if err := f.fs.SyncDir(f.dir); err != nil {
		return err
	}
	f.dirSynced.Store(true)
	return nil
}

// walMetaFile is the name of the raft-wal meta store's file in the WAL dir.
const walMetaFile = "wal-meta.json"

// walMetaDoc is the content of wal-meta.json. Stable keys and values are base64 (they are
// arbitrary bytes); encoding/json writes the []byte values as base64 itself.
type walMetaDoc struct {
	Version int                   `json:"version"`
	State   types.PersistentState `json:"state"`
	Stable  map[string][]byte     `json:"stable"` // base64(key) -> value
}

// walMeta is raft-wal's types.MetaStore on a vfs.FS, replacing its default bbolt one: the WAL's
// persistent state (the segment list) and the stable store (raft's current term and vote) in
// one small file, wal-meta.json, rewritten whole on every CommitState and SetStable under mu.
//
// Why a torn write cannot happen: the file is never written in place. log.WriteFileAtomic
// writes the new content to a temporary file, fsyncs it, renames it over wal-meta.json and
// fsyncs the directory, and only then does the call return (and raft-wal or raft go on). A crash
// before the rename leaves the old wal-meta.json whole (and a stray temporary file that the
// next write truncates and replaces); a crash after it leaves the new one whole, because its
// bytes were durable before the name pointed at them. So Load always reads one complete
// version, the one of the last call that returned (or a later one that was in flight). A
// failed write leaves the in-memory copy unchanged, so later reads do not show what may not be
// on disk.
//
// Both the state and the stable values are written by every call: mu orders the rewrites, so
// a CommitState concurrent with a SetStable cannot lose the other's change.
type walMeta struct {
	fs  vfs.FS
	dir string

	mu     sync.RWMutex
	doc    walMetaDoc
	loaded bool
	closed bool
}

var _ types.MetaStore = (*walMeta)(nil)

func newWALMeta(fsys vfs.FS) *walMeta { return &walMeta{fs: fsys} }

// Load implements types.MetaStore: the state in dir's wal-meta.json, or an empty one if there
// is none yet (the file is written by the first CommitState or SetStable).
func (m *walMeta) Load(dir string) (types.PersistentState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return types.PersistentState{}, types.ErrClosed
	}
	if m.loaded && m.dir != dir {
		return types.PersistentState{}, fmt.Errorf("raftstore: wal meta already loaded from %s", m.dir)
	}
	m.dir = dir
	m.doc = walMetaDoc{Version: 1, Stable: map[string][]byte{}}
	path := filepath.Join(dir, walMetaFile)
	data, err := vfs.ReadFile(m.fs, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return types.PersistentState{}, fmt.Errorf("raftstore: read %s: %w", path, err)
	default:
		var doc walMetaDoc
		if err := json.Unmarshal(data, &doc); err != nil {
			return types.PersistentState{}, fmt.Errorf("raftstore: %s is corrupt: %w", path, err)
		}
		if doc.Version != 1 {
			return types.PersistentState{}, fmt.Errorf("raftstore: %s: unknown version %d", path, doc.Version)
		}
		if doc.Stable == nil {
			doc.Stable = map[string][]byte{}
		}
		for k := range doc.Stable {
			if _, err := base64.StdEncoding.DecodeString(k); err != nil {
				return types.PersistentState{}, fmt.Errorf("raftstore: %s is corrupt: stable key %q: %w", path, k, err)
			}
		}
		m.doc = doc
	}
	m.loaded = true
	return m.doc.State, nil
}

// writeLocked makes doc durable, then the current one.
func (m *walMeta) writeLocked(doc walMetaDoc) error {
	if m.closed {
		return types.ErrClosed
	}
	if !m.loaded {
		return errors.New("raftstore: wal meta not loaded")
	}
	data, err := json.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("raftstore: encode wal meta: %w", err)
	}
	if err := log.WriteFileAtomic(m.fs, m.dir, walMetaFile, data); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	m.doc = doc
	return nil
}

// CommitState implements types.MetaStore.
func (m *walMeta) CommitState(s types.PersistentState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	doc := m.doc
	doc.State = s
	return m.writeLocked(doc)
}

// GetStable implements types.MetaStore: nil if key was never set.
func (m *walMeta) GetStable(key []byte) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, types.ErrClosed
	}
	v, ok := m.doc.Stable[base64.StdEncoding.EncodeToString(key)]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// SetStable implements types.MetaStore.
func (m *walMeta) SetStable(key, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	doc := m.doc
	doc.Stable = make(map[string][]byte, len(m.doc.Stable)+1)
	for k, v := range m.doc.Stable {
		doc.Stable[k] = v
	}
	doc.Stable[base64.StdEncoding.EncodeToString(key)] = append([]byte{}, value...)
	return m.writeLocked(doc)
}

// Close implements types.MetaStore.
func (m *walMeta) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
