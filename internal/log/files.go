package log

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// writeFileAtomic replaces dir/name with data: write a temp file, fsync it,
// rename it over the target, fsync the directory.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := writeFileAtomicNoDirSync(filepath.Join(dir, name), data); err != nil {
		return err
	}
	return syncDir(dir)
}

// WriteFileAtomic is writeFileAtomic for the other files of a log dir (the
// high-watermark checkpoint, the clean-shutdown marker).
func WriteFileAtomic(dir, name string, data []byte) error { return writeFileAtomic(dir, name, data) }

// SyncDir fsyncs a directory, making its entries (creations, renames,
// removals) durable.
func SyncDir(dir string) error { return syncDir(dir) }

// writeFileAtomicNoDirSync is writeFileAtomic without the directory fsync,
// for files the caller's next directory fsync makes durable (index files:
// a crash before it leaves an old or missing index, which Open rebuilds).
func writeFileAtomicNoDirSync(path string, data []byte) error {
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// readOffsetFile reads a file holding one decimal offset. ok is false if the
// file is missing or unreadable (the caller falls back to a safe default).
func readOffsetFile(dir, name string) (off int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, false
	}
	off, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

func writeOffsetFile(dir, name string, off int64) error {
	return writeFileAtomic(dir, name, []byte(strconv.FormatInt(off, 10)+"\n"))
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
