package raftstore

// The snapshot store: hashicorp/raft's FileSnapshotStore layout and format, with its file I/O
// going through a vfs.FS (so tests can fail it or cut its power) and with the entries of a new
// snapshot's directory fsynced before the directory takes its final name (FileSnapshotStore
// fsyncs the parent only, so a power cut could leave a snapshot directory without its files).
//
//	<dir>/snapshots/<term>-<index>-<unix ms>/meta.json  raft.SnapshotMeta + CRC, JSON
//	<dir>/snapshots/<term>-<index>-<unix ms>/state.bin  the FSM's snapshot, CRC-64 (ECMA) in meta
//
// A snapshot is written into <name>.tmp and renamed when complete; .tmp directories are ignored
// (and removed by the next reap). Existing data dirs written by FileSnapshotStore read the same.
// The deprecated Peers field (for raft protocol versions below 3) is not written.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/moldau/moldau/internal/vfs"
)

const (
	snapDir       = "snapshots"
	snapMetaFile  = "meta.json"
	snapStateFile = "state.bin"
	snapTmpSuffix = ".tmp"
)

// snapshotMeta is meta.json: FileSnapshotStore's fileSnapshotMeta.
type snapshotMeta struct {
	raft.SnapshotMeta
	CRC []byte
}

// snapshotStore implements raft.SnapshotStore on a vfs.FS.
type snapshotStore struct {
	fs     vfs.FS
	path   string
	retain int
	logger hclog.Logger
}

var _ raft.SnapshotStore = (*snapshotStore)(nil)

func newSnapshotStore(fsys vfs.FS, base string, retain int, logger hclog.Logger) (*snapshotStore, error) {
	if retain < 1 {
		return nil, errors.New("must retain at least one snapshot")
	}
	path := filepath.Join(base, snapDir)
	// Durably: a snapshot made durable inside a directory whose own entry is lost on a power
	// cut is lost with it, after raft has already truncated the log behind it.
	if err := mkdirDurable(fsys, path); err != nil {
		return nil, fmt.Errorf("snapshot path: %w", err)
	}
	return &snapshotStore{fs: fsys, path: path, retain: retain, logger: logger}, nil
}

// Create implements raft.SnapshotStore.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	name := fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli())
	dir := filepath.Join(s.path, name+snapTmpSuffix)
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", name, err)
	}
	sink := &snapshotSink{store: s, dir: dir, meta: snapshotMeta{SnapshotMeta: raft.SnapshotMeta{
		Version: version, ID: name, Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex,
	}}}
	if err := sink.writeMeta(); err != nil {
		s.fs.RemoveAll(dir)
		return nil, err
	}
	f, err := s.fs.Create(filepath.Join(dir, snapStateFile))
	if err != nil {
		s.fs.RemoveAll(dir)
		return nil, fmt.Errorf("create snapshot %s: %w", name, err)
	}
	sink.state = f
	sink.hash = crc64.New(crc64.MakeTable(crc64.ECMA))
	sink.buf = bufio.NewWriter(io.MultiWriter(f, sink.hash))
	return sink, nil
}

// List implements raft.SnapshotStore: the snapshots, newest first, at most retain of them.
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.all()
	if err != nil {
		return nil, err
	}
	var out []*raft.SnapshotMeta
	for _, m := range metas {
		out = append(out, &m.SnapshotMeta)
		if len(out) == s.retain {
			break
		}
	}
	return out, nil
}

// all returns every complete snapshot, newest first.
func (s *snapshotStore) all() ([]*snapshotMeta, error) {
	entries, err := s.fs.ReadDir(s.path)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*snapshotMeta
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapTmpSuffix) {
			continue
		}
		m, err := s.readMeta(e.Name())
		if err != nil {
			s.logger.Warn("failed to read snapshot metadata", "name", e.Name(), "error", err)
			continue
		}
		if m.Version < raft.SnapshotVersionMin || m.Version > raft.SnapshotVersionMax {
			s.logger.Warn("snapshot version not supported", "name", e.Name(), "version", m.Version)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { // newest first, as FileSnapshotStore sorts
		a, b := out[i], out[j]
		if a.Term != b.Term {
			return a.Term > b.Term
		}
		if a.Index != b.Index {
			return a.Index > b.Index
		}
		return a.ID > b.ID
	})
	return out, nil
}

func (s *snapshotStore) readMeta(name string) (*snapshotMeta, error) {
	b, err := vfs.ReadFile(s.fs, filepath.Join(s.path, name, snapMetaFile))
	if err != nil {
		return nil, err
	}
	m := &snapshotMeta{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(s.path, name, snapMetaFile), err)
	}
	return m, nil
}

// Open implements raft.SnapshotStore; the state's CRC is checked before it is handed out.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	m, err := s.readMeta(id)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	f, err := s.fs.Open(filepath.Join(s.path, id, snapStateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, m.Size)); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read snapshot %s: %w", id, err)
	}
	if !bytes.Equal(m.CRC, h.Sum(nil)) {
		f.Close()
		return nil, nil, fmt.Errorf("snapshot %s: CRC mismatch", id)
	}
	return &m.SnapshotMeta, &snapshotReader{r: bufio.NewReader(io.NewSectionReader(f, 0, m.Size)), f: f}, nil
}

// reap removes the snapshots beyond retain, and abandoned .tmp directories.
func (s *snapshotStore) reap() error {
	metas, err := s.all()
	if err != nil {
		return err
	}
	for _, m := range metas[min(s.retain, len(metas)):] {
		if err := s.fs.RemoveAll(filepath.Join(s.path, m.ID)); err != nil {
			return fmt.Errorf("reap snapshot %s: %w", m.ID, err)
		}
	}
	return nil
}

type snapshotReader struct {
	r *bufio.Reader
	f vfs.File
}

func (r *snapshotReader) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *snapshotReader) Close() error               { return r.f.Close() }

// snapshotSink implements raft.SnapshotSink.
type snapshotSink struct {
	store  *snapshotStore
	dir    string // the .tmp directory
	meta   snapshotMeta
	state  vfs.File
	hash   hash.Hash64
	buf    *bufio.Writer
	closed bool
}

func (s *snapshotSink) ID() string                  { return s.meta.ID }
func (s *snapshotSink) Write(b []byte) (int, error) { return s.buf.Write(b) }

// Close completes the snapshot: state fsynced, meta written and fsynced, the directory's entries
// fsynced, the directory renamed to its final name and the parent fsynced; then old snapshots go.
func (s *snapshotSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	fsys := s.store.fs
	if err := s.finish(); err != nil {
		fsys.RemoveAll(s.dir)
		return err
	}
	if err := s.writeMeta(); err != nil {
		fsys.RemoveAll(s.dir)
		return err
	}
	if err := fsys.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snapshot %s: fsync dir: %w", s.meta.ID, err)
	}
	final := strings.TrimSuffix(s.dir, snapTmpSuffix)
	if err := fsys.Rename(s.dir, final); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.meta.ID, err)
	}
	if err := fsys.SyncDir(s.store.path); err != nil {
		return fmt.Errorf("snapshot %s: fsync dir: %w", s.meta.ID, err)
	}
	return s.store.reap()
}

// Cancel abandons the snapshot.
func (s *snapshotSink) Cancel() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.finish()
	return s.store.fs.RemoveAll(s.dir)
}

// finish flushes, fsyncs and closes the state file and fills in its size and CRC.
func (s *snapshotSink) finish() error {
	err := s.buf.Flush()
	if err == nil {
		err = s.state.Sync()
	}
	var size int64
	if err == nil {
		var fi interface{ Size() int64 }
		if fi, err = s.state.Stat(); err == nil {
			size = fi.Size()
		}
	}
	if cerr := s.state.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: write state: %w", s.meta.ID, err)
	}
	s.meta.Size = size
	s.meta.CRC = s.hash.Sum(nil)
	return nil
}

// writeMeta writes and fsyncs meta.json.
func (s *snapshotSink) writeMeta() error {
	b, err := json.Marshal(&s.meta)
	if err != nil {
		return fmt.Errorf("snapshot %s: encode meta: %w", s.meta.ID, err)
	}
	f, err := s.store.fs.Create(filepath.Join(s.dir, snapMetaFile))
	if err != nil {
		return fmt.Errorf("snapshot %s: write meta: %w", s.meta.ID, err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: write meta: %w", s.meta.ID, err)
	}
	return nil
}
