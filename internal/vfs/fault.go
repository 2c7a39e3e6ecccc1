package vfs

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Op names a filesystem operation, for fault injection.
type Op int

// The operations a FaultFS can fail.
const (
	OpCreate   Op = iota // Create, OpenReadWrite with create
	OpOpen               // Open, OpenReadWrite, OpenDir
	OpRead               // Read, ReadAt
	OpWrite              // Write, WriteAt
	OpSync               // File.Sync
	OpTruncate           // File.Truncate
	OpRename
	OpRemove // Remove, RemoveAll
	OpMkdir
	OpList // ReadDir
	OpStat // Stat, File.Stat
	OpSyncDir
	OpSyncFS
	numOps
)

var opNames = [numOps]string{"create", "open", "read", "write", "sync", "truncate", "rename", "remove",
	"mkdir", "readdir", "stat", "syncdir", "syncfs"}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return "op?"
}

// Injector decides the fate of one operation on path: nil lets it run, an error fails it
// (with nothing done, except that a failed write first writes half its bytes, as a disk that
// fills up mid-write does).
type Injector func(op Op, path string) error

// OnPrefix returns an Injector failing the given ops (all ops when none are given) on paths
// under prefix with err.
func OnPrefix(prefix string, err error, ops ...Op) Injector {
	prefix = cleanPath(prefix)
	var mask uint32
	for _, o := range ops {
		mask |= 1 << o
	}
	return func(op Op, path string) error {
		if mask != 0 && mask&(1<<op) == 0 {
			return nil
		}
		p := cleanPath(path)
		if p == prefix || strings.HasPrefix(p, strings.TrimSuffix(prefix, string(filepath.Separator))+string(filepath.Separator)) {
			return err
		}
		return nil
	}
}

// FaultFS wraps an FS and fails the operations its Injector picks. The injector can be
// changed at any time (SetInjector), from any goroutine: a test fills the disk while the
// broker runs, then frees it.
type FaultFS struct {
	inner    FS
	injector atomic.Pointer[Injector]
}

// NewFaultFS wraps inner; it injects nothing until SetInjector.
func NewFaultFS(inner FS) *FaultFS { return &FaultFS{inner: inner} }

// SetInjector installs fn (nil: no faults).
func (f *FaultFS) SetInjector(fn Injector) {
	if fn == nil {
		f.injector.Store(nil)
		return
	}
	f.injector.Store(&fn)
}

func (f *FaultFS) check(op Op, path string) error {
	if p := f.injector.Load(); p != nil {
		if err := (*p)(op, path); err != nil {
			return &os.PathError{Op: op.String(), Path: path, Err: err}
		}
	}
	return nil
}

func (f *FaultFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{fs: f, f: file}, nil
}

// Create implements FS.
func (f *FaultFS) Create(name string) (File, error) {
	if err := f.check(OpCreate, name); err != nil {
		return nil, err
	}
	return f.wrap(f.inner.Create(name))
}

// Open implements FS.
func (f *FaultFS) Open(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	return f.wrap(f.inner.Open(name))
}

// OpenReadWrite implements FS.
func (f *FaultFS) OpenReadWrite(name string, create bool) (File, error) {
	op := OpOpen
	if create {
		op = OpCreate
	}
	if err := f.check(op, name); err != nil {
		return nil, err
	}
	return f.wrap(f.inner.OpenReadWrite(name, create))
}

// OpenDir implements FS.
func (f *FaultFS) OpenDir(name string) (File, error) {
	if err := f.check(OpOpen, name); err != nil {
		return nil, err
	}
	return f.wrap(f.inner.OpenDir(name))
}

// Remove implements FS.
func (f *FaultFS) Remove(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

// RemoveAll implements FS.
func (f *FaultFS) RemoveAll(name string) error {
	if err := f.check(OpRemove, name); err != nil {
		return err
	}
	return f.inner.RemoveAll(name)
}

// Rename implements FS.
func (f *FaultFS) Rename(oldname, newname string) error {
	if err := f.check(OpRename, oldname); err != nil {
		return err
	}
	if err := f.check(OpRename, newname); err != nil {
		return err
	}
	return f.inner.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := f.check(OpMkdir, dir); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir, perm)
}

// ReadDir implements FS.
func (f *FaultFS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := f.check(OpList, dir); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

// Stat implements FS.
func (f *FaultFS) Stat(name string) (os.FileInfo, error) {
	if err := f.check(OpStat, name); err != nil {
		return nil, err
	}
	return f.inner.Stat(name)
}

// SyncDir implements FS.
func (f *FaultFS) SyncDir(dir string) error {
	if err := f.check(OpSyncDir, dir); err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

// SyncFS implements FS.
func (f *FaultFS) SyncFS(dir File) error {
	if err := f.check(OpSyncFS, dir.Name()); err != nil {
		return err
	}
	if ff, ok := dir.(*faultFile); ok {
		dir = ff.f
	}
	return f.inner.SyncFS(dir)
}

// faultFile is a file of a FaultFS. It has no *os.File (OSFile is false), so readers copy.
type faultFile struct {
	fs *FaultFS
	f  File
}

func (f *faultFile) Read(p []byte) (int, error) {
	if err := f.fs.check(OpRead, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.Read(p)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpRead, f.f.Name()); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.check(OpWrite, f.f.Name()); err != nil {
		n, _ := f.f.Write(p[:len(p)/2])
		return n, err
	}
	return f.f.Write(p)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.check(OpWrite, f.f.Name()); err != nil {
		n, _ := f.f.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.f.WriteAt(p, off)
}

func (f *faultFile) Close() error { return f.f.Close() }

func (f *faultFile) Sync() error {
	if err := f.fs.check(OpSync, f.f.Name()); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check(OpTruncate, f.f.Name()); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *faultFile) Stat() (os.FileInfo, error) {
	if err := f.fs.check(OpStat, f.f.Name()); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

func (f *faultFile) Name() string { return f.f.Name() }
