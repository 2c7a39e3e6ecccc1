package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moldau/moldau/internal/vfs"
)

// epochEntry: leader epoch `epoch` started at offset `start`.
// INVARIANT: entries are sorted by epoch and by start offset, both strictly
// increasing.
type epochEntry struct {
	epoch int32
	start int64
}

func loadEpochs(fsys vfs.FS, dir string) ([]epochEntry, error) {
	path := filepath.Join(dir, leaderEpochFile)
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	bad := func(why string) error { return fmt.Errorf("parse %s: %s", path, why) }
	if v, ok := line(); !ok || v != "0" {
		return nil, bad("version line is not 0")
	}
	cs, ok := line()
	count, err := strconv.Atoi(cs)
	if !ok || err != nil || count < 0 {
		return nil, bad("bad count line")
	}
	var out []epochEntry
	for i := 0; i < count; i++ {
		l, ok := line()
		f := strings.Fields(l)
		if !ok || len(f) != 2 {
			return nil, bad(fmt.Sprintf("entry %d missing", i))
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		s, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || s < 0 {
			return nil, bad(fmt.Sprintf("entry %d: %q", i, l))
		}
		if n := len(out); n > 0 && (int32(e) <= out[n-1].epoch || s < out[n-1].start) {
			return nil, bad(fmt.Sprintf("entry %d not increasing", i))
		}
		out = append(out, epochEntry{int32(e), s})
	}
	return out, nil
}

func writeEpochs(fsys vfs.FS, dir string, entries []epochEntry) error {
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return writeFileAtomic(fsys, dir, leaderEpochFile, []byte(b.String()))
}

// assignEpoch applies Kafka's LeaderEpochFileCache.assign rule and reports
// whether the entries changed.
func assignEpoch(entries []epochEntry, epoch int32, start int64) ([]epochEntry, bool) {
	if n := len(entries); n > 0 {
		last := entries[n-1]
		if last.epoch == epoch && start >= last.start {
			return entries, false
		}
	}
	kept := entries[:0:0]
	for _, e := range entries {
		if e.epoch < epoch && e.start < start {
			kept = append(kept, e)
		}
	}
	return append(kept, epochEntry{epoch, start}), true
}

// truncateEpochsFromEnd drops entries starting at or after end.
func truncateEpochsFromEnd(entries []epochEntry, end int64) ([]epochEntry, bool) {
	n := len(entries)
	for n > 0 && entries[n-1].start >= end {
		n--
	}
	return entries[:n:n], n != len(entries)
}

// truncateEpochsFromStart drops entries wholly below start and moves the
// start of the entry covering start up to it.
func truncateEpochsFromStart(entries []epochEntry, start int64) ([]epochEntry, bool) {
	i := 0
	for i+1 < len(entries) && entries[i+1].start <= start {
		i++
	}
	if len(entries) == 0 || (i == 0 && entries[0].start >= start) {
		return entries, false
	}
	out := append([]epochEntry(nil), entries[i:]...)
	if out[0].start < start {
		out[0].start = start
	}
	return out, true
}
