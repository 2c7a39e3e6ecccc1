package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the lock file in every log dir, Kafka's name for it.
const lockFileName = ".lock"

// errDirLocked is what tryLock returns when another process holds the lock.
var errDirLocked = errors.New("log dir is locked by another process")

// dirLock is the exclusive lock this process holds on one log dir: an flock(2) on <dir>/.lock
// (Kafka's LogManager lock), held from the first thing Start does until Shutdown, so a second
// broker on the same data dir fails at once instead of waiting on the raft store's file lock.
// The file holds the holder's pid, for the other process's error message.
type dirLock struct {
	dir  string
	file *os.File
	// fresh: the dir did not exist or was empty before this start, so everything in it was
	// created by this start and a failed start removes it.
	fresh bool
	// created lists the dirs this start created (the log dir and the missing parents, deepest
	// first), for a failed start to remove.
	created []string
}

// lockLogDirs creates the log dirs that do not exist and locks every one of them. When a dir is
// held by another process, it releases the locks it took (removing what it created) and says
// which dir and which process.
func lockLogDirs(dirs []string) ([]*dirLock, error) {
	var locks []*dirLock
	for _, d := range dirs {
		l, err := lockLogDir(d)
		if err != nil {
			releaseDirLocks(locks, true)
			return nil, err
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func lockLogDir(dir string) (*dirLock, error) {
	l := &dirLock{dir: dir}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		l.fresh = true
		for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
			if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
				break
			}
			l.created = append(l.created, d)
		}
	case err != nil:
		return nil, fmt.Errorf("log dir %s: %w", dir, err)
	default:
		l.fresh = len(entries) == 0
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFileName)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			l.removeCreated()
			return nil, fmt.Errorf("log dir %s: open lock file: %w", dir, err)
		}
		if err := tryLock(f); err != nil {
			f.Close()
			if errors.Is(err, errDirLocked) {
				return nil, fmt.Errorf("log dir %s is in use by another process%s; stop it or choose another --data-dir (log.dirs)", dir, holderOf(path))
			}
			l.removeCreated()
			return nil, fmt.Errorf("log dir %s: lock %s: %w", dir, path, err)
		}
		// A failed start of another process may have removed the file between our open and our
		// lock: then we hold a lock on a file nobody else opens. Lock the file the path names.
		if same, err := samePath(f, path); err != nil || !same {
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("log dir %s: %w", dir, err)
			}
			continue
		}
		l.file = f
		break
	}
	pid := strconv.Itoa(os.Getpid()) + "\n"
	if err := l.file.Truncate(0); err == nil {
		_, _ = l.file.WriteAt([]byte(pid), 0) // the pid is only for messages: best effort
	}
	return l, nil
}

// samePath reports whether f is still the file at path.
func samePath(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat lock file: %w", err)
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat lock file: %w", err)
	}
	return os.SameFile(fi, pi), nil
}

// holderOf is " (pid N)" from the lock file at path, "" when it names no pid.
func holderOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 32) // a pid and a newline; anything longer is not one
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

// releaseDirLocks unlocks every dir. With removeFresh (a failed start), a dir that was fresh
// before this start is left as it was: emptied, and removed if this start created it. The lock
// file of a dir that was not fresh stays, as Kafka's does.
func releaseDirLocks(locks []*dirLock, removeFresh bool) {
	for _, l := range locks {
		if removeFresh && l.fresh {
			// Emptied while still locked, so no other process starts in it meanwhile.
			entries, _ := os.ReadDir(l.dir)
			for _, e := range entries {
				_ = os.RemoveAll(filepath.Join(l.dir, e.Name()))
			}
		}
		l.file.Close() // closing the last descriptor releases the flock
		if removeFresh {
			l.removeCreated()
		}
	}
}

// removeCreated removes the dirs this start created, where they are empty.
func (l *dirLock) removeCreated() {
	for _, d := range l.created {
		if os.Remove(d) != nil {
			return
		}
	}
}
