package log

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moldau/moldau/internal/vfs"
)

// Files kept in a partition directory besides the segments.
const (
	cleanShutdownFile  = ".clean_shutdown"         // written by Close, removed by Open
	recoveryPointFile  = "recovery-point"          // decimal offset: everything below it was fsynced
	logStartOffsetFile = "log-start-offset"        // decimal offset: DeleteRecords / retention
	leaderEpochFile    = "leader-epoch-checkpoint" // Kafka's text format
	deletedSuffix      = ".deleted"
	tmpSuffix          = ".tmp"
	cleanedSuffix      = ".cleaned"     // a cleaner's output before it is swapped in
	cleanerSwapFile    = "cleaner-swap" // a committed swap of cleaned segments (compact.go)
)

// syncError marks an error of an fsync (of a file or a directory): after one the state of the
// data on disk is unknown, and the log stops taking writes (Log.failed).
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

func isSyncError(err error) bool {
	var se *syncError
	return errors.As(err, &se)
}

// writeFileAtomic replaces dir/name with data: write a temp file, fsync it,
// rename it over the target, fsync the directory.
func writeFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	if err := writeFileAtomicNoDirSync(fsys, filepath.Join(dir, name), data); err != nil {
		return err
	}
	return syncDir(fsys, dir)
}

// WriteFileAtomic is writeFileAtomic for the other files of a log dir (the
// high-watermark checkpoint, the clean-shutdown marker).
func WriteFileAtomic(fsys vfs.FS, dir, name string, data []byte) error {
	return writeFileAtomic(fsys, dir, name, data)
}

// SyncDir fsyncs a directory, making its entries (creations, renames,
// removals) durable.
func SyncDir(fsys vfs.FS, dir string) error { return syncDir(fsys, dir) }

// writeFileAtomicNoDirSync is writeFileAtomic without the directory fsync,
// for files the caller's next directory fsync makes durable (index files:
// a crash before it leaves an old or missing index, which Open rebuilds).
// A failed write removes the temp file (a full disk gets its space back).
func writeFileAtomicNoDirSync(fsys vfs.FS, path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return &syncError{fmt.Errorf("fsync %s: %w", tmp, err)}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func syncDir(fsys vfs.FS, dir string) error {
	if err := fsys.SyncDir(dir); err != nil {
		return &syncError{fmt.Errorf("fsync dir %s: %w", dir, err)}
	}
	return nil
}

// readOffsetFile reads a file holding one decimal offset. A missing file is
// (0, false, nil); a file that cannot be read or parsed is an error.
func readOffsetFile(fsys vfs.FS, dir, name string) (off int64, ok bool, err error) {
	path := filepath.Join(dir, name)
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", path, err)
	}
	off, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0, false, fmt.Errorf("parse %s: %q is not an offset", path, b)
	}
	return off, true, nil
}

func writeOffsetFile(fsys vfs.FS, dir, name string, off int64) error {
	return writeFileAtomic(fsys, dir, name, []byte(strconv.FormatInt(off, 10)+"\n"))
}

// parseSegmentName returns the base offset of a 20-digit segment file name
// with extension ext.
func parseSegmentName(name, ext string) (int64, bool) {
	stem, found := strings.CutSuffix(name, ext)
	if !found || len(stem) != 20 {
		return 0, false
	}
	for _, c := range stem {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	return base, err == nil
}
