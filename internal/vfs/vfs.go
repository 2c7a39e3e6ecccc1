// Package vfs is the filesystem seam of Moldau's storage: every file operation of internal/log,
// internal/partition (its checkpoints and the log dir's clean-shutdown marker) and of the raft
// store in internal/raftstore (raft-wal's segment files and meta file, and the snapshots) goes
// through an FS, after pebble's vfs.FS. Default is the
// operating system; tests use NewMem (an in-memory filesystem that can lose, as a power cut
// does, everything not made durable) and NewFaultFS (fails chosen operations on chosen paths with
// EIO, ENOSPC or anything else, switchable while the broker runs).
//
// What does not go through the seam: files outside the storage layer (configuration, the CLI's
// files), the log dir's .lock (an flock of the OS), and the one read of a raft.db left by a
// Moldau from before raft-wal, which bolt does itself while raftstore migrates it.
//
// # Sendfile
//
// Default's files are *os.File values, so a caller that wants to hand a file to sendfile(2)
// asks OSFile for it; files of the other implementations have no *os.File and callers fall back
// to reading the bytes (internal/log's Section does).
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File is an open file (or, from OpenDir, directory) of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's data and size durable (fsync). Its name in its directory is made
	// durable by FS.SyncDir of the directory.
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Name() string
}

// FS is the set of filesystem operations the storage layer uses. Paths are OS paths.
type FS interface {
	// Create creates or truncates name, open for reading and writing.
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens name for reading and writing, creating it (empty) if create is set
	// and it does not exist.
	OpenReadWrite(name string, create bool) (File, error)
	// OpenDir opens a directory, for SyncFS.
	OpenDir(name string) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname (made durable by SyncDir of both dirs).
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir lists a directory sorted by name.
	ReadDir(dir string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the entries of dir (creations, renames, removals) durable.
	SyncDir(dir string) error
	// SyncFS makes every write to any file of the filesystem holding dir durable, and every
	// directory entry (syncfs(2) on Linux). dir comes from OpenDir.
	SyncFS(dir File) error
}

// Default is the operating system's filesystem. It holds no state.
var Default FS = osFS{}

// OSFile returns the *os.File behind f, if it has one (files of Default do), for sendfile.
func OSFile(f File) (*os.File, bool) {
	of, ok := f.(*os.File)
	return of, ok
}

// ReadFile reads a whole file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// IsNoSpace reports whether err says the disk is full.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) OpenReadWrite(name string, create bool) (File, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) OpenDir(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error)   { return os.ReadDir(dir) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (osFS) SyncFS(dir File) error {
	f, ok := dir.(*os.File)
	if !ok {
		return fmt.Errorf("syncfs %s: not a file of the OS filesystem", dir.Name())
	}
	return syncFS(f)
}

// cleanPath is filepath.Clean of an absolute form of name.
func cleanPath(name string) string {
	if !filepath.IsAbs(name) {
		if abs, err := filepath.Abs(name); err == nil {
			return abs
		}
	}
	return filepath.Clean(name)
}

var _ fs.FileInfo = (*memInfo)(nil)
