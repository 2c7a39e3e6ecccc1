package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by every operation of a MemFS after Crash, and by its open files.
var ErrCrashed = errors.New("vfs: filesystem crashed")

// MemFS is an in-memory filesystem that knows, for every file and directory, what is durable
// and what was only written (pebble's strict MemFS): file data is durable once the file is
// Synced; a creation, rename or removal is durable once its directory is SyncDir'ed; SyncFS
// makes everything durable. Crash returns the filesystem as a power cut would leave it.
//
// All state is behind one mutex: it is for tests, not speed. Paths are cleaned absolute paths;
// the root directory always exists.
type MemFS struct {
	mu      sync.Mutex
	root    *memNode
	crashed bool
}

// memNode is a file or a directory.
type memNode struct {
	dir bool

	// Directory: the entries now, and the entries as of the last SyncDir (or SyncFS).
	children map[string]*memNode
	durable  map[string]*memNode

	// File: the bytes now, and the bytes as of the last Sync.
	// INVARIANT: data and synced agree below min(dirtyFrom, len(data), len(synced)).
	data      []byte
	synced    []byte
	dirtyFrom int64 // lowest offset written or truncated to since the last Sync; MaxInt64: none
	modTime   time.Time
}

// NewMem returns an empty in-memory filesystem.
func NewMem() *MemFS {
	return &MemFS{root: newDirNode()}
}

func newDirNode() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, durable: map[string]*memNode{}, modTime: time.Now()}
}

func newFileNode() *memNode {
	return &memNode{dirtyFrom: 0, modTime: time.Now()}
}

// Crash simulates a power cut: it returns a new MemFS holding only what was durable, and this
// one (with its open files) fails every later operation with ErrCrashed, as a dead machine does.
func (m *MemFS) Crash() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	return &MemFS{root: durableCopy(m.root)}
}

func durableCopy(n *memNode) *memNode {
	if !n.dir {
		c := newFileNode()
		c.data = slices.Clone(n.synced)
		c.synced = slices.Clone(n.synced)
		c.dirtyFrom = math.MaxInt64
		c.modTime = n.modTime
		return c
	}
	c := newDirNode()
	for name, child := range n.durable {
		cc := durableCopy(child)
		c.children[name] = cc
		c.durable[name] = cc
	}
	return c
}

func (n *memNode) syncFile() {
	keep := min(n.dirtyFrom, int64(len(n.data)), int64(len(n.synced)))
	n.synced = append(n.synced[:keep], n.data[keep:]...)
	n.dirtyFrom = math.MaxInt64
}

func (n *memNode) syncDir() {
	n.durable = make(map[string]*memNode, len(n.children))
	for name, c := range n.children {
		n.durable[name] = c
	}
}

func splitPath(name string) []string {
	p := cleanPath(name)
	if p == string(filepath.Separator) {
		return nil
	}
	return strings.Split(strings.TrimPrefix(p, string(filepath.Separator)), string(filepath.Separator))
}

// lookupLocked returns the node at name. REQUIRES: m.mu held.
func (m *MemFS) lookupLocked(name string) (*memNode, error) {
	n := m.root
	for _, part := range splitPath(name) {
		if !n.dir {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOTDIR}
		}
		c, ok := n.children[part]
		if !ok {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		n = c
	}
	return n, nil
}

// parentLocked returns the directory holding name and name's last element. REQUIRES: m.mu held.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", &os.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	dir, err := m.lookupLocked(string(filepath.Separator) + filepath.Join(parts[:len(parts)-1]...))
	if err != nil {
		return nil, "", &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if !dir.dir {
		return nil, "", &os.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return dir, parts[len(parts)-1], nil
}

func (m *MemFS) lock() error {
	m.mu.Lock()
	if m.crashed {
		m.mu.Unlock()
		return ErrCrashed
	}
	return nil
}

func (m *MemFS) openFile(op, name string, create, truncate, write bool) (File, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(op, name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.children[base]
	switch {
	case !ok && !create:
		return nil, &os.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	case !ok:
		n = newFileNode()
		dir.children[base] = n
	case n.dir:
		return nil, &os.PathError{Op: op, Path: name, Err: syscall.EISDIR}
	case truncate:
		n.data = n.data[:0]
		n.dirtyFrom = 0
	}
	return &memFile{fs: m, n: n, name: name, write: write}, nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	return m.openFile("create", name, true, true, true)
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.openFile("open", name, false, false, false) }

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string, create bool) (File, error) {
	return m.openFile("open", name, create, false, true)
}

// OpenDir implements FS.
func (m *MemFS) OpenDir(name string) (File, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.lookupDirLocked("open", name)
	if err != nil {
		return nil, err
	}
	return &memFile{fs: m, n: n, name: name}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.children[base]
	if !ok {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && len(n.children) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	delete(dir.children, base)
	return nil
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(name string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("removeall", name)
	if err != nil {
		return nil // nothing there
	}
	delete(dir.children, base)
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	od, ob, err := m.parentLocked("rename", oldname)
	if err != nil {
		return err
	}
	n, ok := od.children[ob]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	nd, nb, err := m.parentLocked("rename", newname)
	if err != nil {
		return err
	}
	if t, ok := nd.children[nb]; ok && t.dir && (!n.dir || len(t.children) > 0) {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.EEXIST}
	}
	delete(od.children, ob)
	nd.children[nb] = n
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n := m.root
	for _, part := range splitPath(dir) {
		c, ok := n.children[part]
		if !ok {
			c = newDirNode()
			n.children[part] = c
		} else if !c.dir {
			return &os.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		n = c
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.lookupDirLocked("readdir", dir)
	if err != nil {
		return nil, err
	}
	out := make([]os.DirEntry, 0, len(n.children))
	for name, c := range n.children {
		out = append(out, c.info(name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// lookupDirLocked is lookupLocked for a directory: a file is ENOTDIR, reported as op's.
// REQUIRES: m.mu is held.
func (m *MemFS) lookupDirLocked(op, name string) (*memNode, error) {
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, &os.PathError{Op: op, Path: name, Err: syscall.ENOTDIR}
	}
	return n, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	return n.info(filepath.Base(cleanPath(name))), nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n, err := m.lookupDirLocked("fsync", dir)
	if err != nil {
		return err
	}
	n.syncDir()
	return nil
}

// SyncFS implements FS: everything in the filesystem becomes durable.
func (m *MemFS) SyncFS(File) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	var walk func(n *memNode)
	walk = func(n *memNode) {
		if !n.dir {
			n.syncFile()
			return
		}
		n.syncDir()
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(m.root)
	return nil
}

func (n *memNode) info(name string) *memInfo {
	return &memInfo{name: name, size: int64(len(n.data)), dir: n.dir, modTime: n.modTime}
}

// memInfo is both the os.FileInfo and the os.DirEntry of a MemFS node.
type memInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

func (i *memInfo) Name() string { return i.name }
func (i *memInfo) Size() int64  { return i.size }
func (i *memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i *memInfo) ModTime() time.Time         { return i.modTime }
func (i *memInfo) IsDir() bool                { return i.dir }
func (i *memInfo) Sys() any                   { return nil }
func (i *memInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i *memInfo) Info() (fs.FileInfo, error) { return i, nil }

// memFile is an open MemFS file or directory.
type memFile struct {
	fs     *MemFS
	n      *memNode
	name   string
	write  bool
	pos    int64
	closed bool
}

func (f *memFile) lock(op string) error {
	if err := f.fs.lock(); err != nil {
		return err
	}
	if f.closed {
		f.fs.mu.Unlock()
		return &os.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	return nil
}

func (f *memFile) readAtLocked(p []byte, off int64) (int, error) {
	if f.n.dir {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: syscall.EISDIR}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) writeAtLocked(p []byte, off int64) (int, error) {
	if f.n.dir || !f.write {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: fs.ErrInvalid}
	}
	n := f.n
	old := int64(len(n.data))
	if end := off + int64(len(p)); end > old {
		n.data = slices.Grow(n.data, int(end-old))[:end]
		clear(n.data[old:off])
	}
	copy(n.data[off:], p)
	n.dirtyFrom = min(n.dirtyFrom, off, old)
	n.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Read(p []byte) (int, error) {
	if err := f.lock("read"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	n, err := f.readAtLocked(p, f.pos)
	f.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.lock("read"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	return f.readAtLocked(p, off)
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.lock("write"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	n, err := f.writeAtLocked(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.lock("write"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	return f.writeAtLocked(p, off)
}

func (f *memFile) Close() error {
	if err := f.lock("close"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	if err := f.lock("sync"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	if f.n.dir {
		f.n.syncDir()
	} else {
		f.n.syncFile()
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.lock("truncate"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	n := f.n
	if n.dir || !f.write || size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: fs.ErrInvalid}
	}
	if old := int64(len(n.data)); size > old {
		n.data = slices.Grow(n.data, int(size-old))[:size]
		clear(n.data[old:])
		n.dirtyFrom = min(n.dirtyFrom, old)
	} else {
		n.data = n.data[:size]
		n.dirtyFrom = min(n.dirtyFrom, size)
	}
	n.modTime = time.Now()
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	if err := f.lock("stat"); err != nil {
		return nil, err
	}
	defer f.fs.mu.Unlock()
	return f.n.info(filepath.Base(f.name)), nil
}

func (f *memFile) Name() string { return f.name }

// String describes the durable state of a file, for test failure messages.
func (m *MemFS) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	var walk func(path string, n *memNode)
	walk = func(path string, n *memNode) {
		names := make([]string, 0, len(n.children))
		for name := range n.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := n.children[name]
			p := path + "/" + name
			_, durable := n.durable[name]
			if c.dir {
				fmt.Fprintf(&b, "%s/ durable=%v\n", p, durable)
				walk(p, c)
			} else {
				fmt.Fprintf(&b, "%s %d bytes (%d synced) durable=%v\n", p, len(c.data), len(c.synced), durable)
			}
		}
	}
	walk("", m.root)
	return b.String()
}
