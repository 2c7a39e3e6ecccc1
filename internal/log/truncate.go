package log

// Truncation (TruncateTo), for a follower whose log diverged from its leader's.
//
// # Crash safety
//
// The truncation is committed by writing the truncate-to file atomically (temp file, fsync,
// rename, directory fsync): it holds the offset T. Before that point nothing has changed; after
// it Open finishes the truncation (finishTruncation), so a kill -9 or a power cut at any step
// leaves the log ending either at its old end or at the truncation point, never in between.
// After the commit the steps are:
//
//	retire NNN   the files of every segment wholly at or above T are renamed to *.deleted
//	indexes      the index files of the segment holding T are removed (rebuilt from its .log)
//	truncate     that segment's .log is cut at its first batch with a last offset >= T
//	sync log     the .log is fsynced
//	epochs       the leader-epoch checkpoint loses the epochs starting at or after the new end
//	recovery point  moved back to the new end if it was past it
//	sync dir     the directory is fsynced: the renames and removals are durable
//	uncommit     truncate-to is removed and the directory fsynced again
//
// A failure after the commit fails the log (ErrLogFailed): what is on disk is then finished by
// the next Open.
//
// # Locks
//
// TruncateTo holds appendMu throughout (no append, flush, roll, retention or cleaner swap runs
// meanwhile) and its fsyncs run under it. It takes mu for writing once, briefly, to publish the
// truncated segment list and end offset before any file is touched: readers never see bytes
// that are about to go, and never wait on an fsync.

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// truncateFile commits a truncation (see the file comment).
const truncateFile = "truncate-to"

// TruncateTo removes every batch holding an offset >= offset, for a follower
// that diverged from the new leader: a batch holding offset goes whole (Kafka's
// LogSegment.truncateTo cuts at the first batch whose last offset is >= the
// target), so the log end offset becomes the end of the last batch ending below
// offset, <= offset (offset itself when offset is a batch boundary). A batch
// kept past offset would keep the divergence the follower truncates for. If
// that end is below the log start offset (a log start inside the batch, after
// DeleteRecords), the log starts over empty at its start offset
// (truncateFullyLocked). Offsets at or above the log end remove no data, but
// the leader-epoch cache still loses its entries starting at the log end (see
// truncateEmptyEpochsLocked); below the log start offset: ErrOffsetOutOfRange.
// It is crash-safe (see the file comment) and returns every error; one after
// the commit point fails the log.
//
// Sections (ReadSections) of truncated batches handed out earlier read short
// or fail afterwards: readers retry from the new end.
func (l *Log) TruncateTo(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writableLocked("truncate"); err != nil {
		return err
	}
	if offset >= l.mu.endOffset {
		return l.truncateEmptyEpochsLocked()
	}
	if offset < l.mu.startOffset {
		return fmt.Errorf("truncate to %d, log starts at %d: %w", offset, l.mu.startOffset, ErrOffsetOutOfRange)
	}
	segs := l.mu.segments
	i := l.segmentFor(offset)
	s := segs[i]
	// Start at an indexed batch that ends below offset (it stays), so that the end of the
	// last batch kept is known.
	var hdr [record.HeaderSize]byte
	pos, newEnd := int64(0), s.base
	scanMaxTs, scanMaxOff := int64(-1), int64(-1)
	if offset > s.base {
		pos = s.lookup(offset - 1)
	}
	for pos < s.size {
		h, err := readHeader(s.log, pos, s.size, &hdr)
		if err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
		if h.LastOffset() >= offset {
			break
		}
		if h.MaxTimestamp > scanMaxTs {
			scanMaxTs, scanMaxOff = h.MaxTimestamp, h.LastOffset()
		}
		pos += int64(h.Size())
		newEnd = h.LastOffset() + 1
	}
	if newEnd < l.mu.startOffset {
		return l.truncateFullyLocked(l.mu.startOffset)
	}

	if err := l.truncateStep("begin", nil); err != nil {
		return err
	}
	if err := l.truncateStep("commit", writeFileAtomic(l.fs, l.dir, truncateFile, []byte(strconv.FormatInt(offset, 10)+"\n"))); err != nil {
		return l.checkLocked(fmt.Errorf("truncate: %w", err))
	}
	// Committed: a failure from here on leaves what Open finishes, and fails the log.
	fail := func(err error) error {
		return l.fail(fmt.Errorf("truncate to %d: %w", offset, err))
	}

	nOff, nTime := 0, 0
	for nOff < s.offsetEntries() {
		if _, p := s.offsetEntry(nOff); int64(p) >= pos {
			break
		}
		nOff++
	}
	for nTime < s.timeEntries() {
		if _, rel := s.timeEntry(nTime); s.base+int64(rel) >= newEnd {
			break
		}
		nTime++
	}
	epochs, epochsChanged := truncateEpochsFromEnd(l.mu.epochs, newEnd)
	retired := segs[i+1:]
	l.mu.Lock()
	l.mu.segments = segs[: i+1 : i+1]
	s.offIndex, s.timeIndex = s.offIndex[:nOff*offsetEntrySize], s.timeIndex[:nTime*timeEntrySize]
	s.size, s.next = pos, newEnd
	s.truncateAborted(newEnd)
	// The largest timestamp left: the last time entry kept covers the batches up to the
	// indexed one the scan started at; the scan saw the rest.
	s.maxTs, s.maxTsOffset = scanMaxTs, scanMaxOff
	if n := s.timeEntries(); n > 0 {
		if ts, rel := s.timeEntry(n - 1); ts >= s.maxTs {
			s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
		}
	}
	l.mu.endOffset = newEnd
	l.mu.epochs = epochs
	l.mu.Unlock()
	for t := l.truncatedTo.Load(); newEnd < t && !l.truncatedTo.CompareAndSwap(t, newEnd); t = l.truncatedTo.Load() {
	}
	s.bytesSinceIndex = 0
	if nOff > 0 {
		_, p := s.offsetEntry(nOff - 1)
		s.bytesSinceIndex = pos - int64(p)
	}
	s.idxStale, s.dirty = true, true
	if s.size == 0 {
		s.firstAppendMs = -1
	}

	for j, r := range retired {
		for _, ext := range segmentExts {
			err := l.fs.Rename(r.path(ext), r.path(ext)+deletedSuffix)
			if errors.Is(err, fs.ErrNotExist) && ext != ".log" {
				err = nil // index files are written at roll; a crash may have left none
			}
			if err := l.truncateStep("retire "+segmentName(r.base, ext), err); err != nil {
				for _, r := range retired[j:] {
					r.close() // out of the log: nothing else closes them
				}
				return fail(err)
			}
		}
		if err := l.truncateStep("retire "+segmentName(r.base, txnIndexExt), renameTxnIndex(r, "", deletedSuffix)); err != nil {
			for _, r := range retired[j:] {
				r.close()
			}
			return fail(err)
		}
		l.scheduleDelete(r, l.deleteDelay())
	}
	// The cut segment's aborted transactions lost those past the cut (truncateAborted).
	if err := l.truncateStep("txnindex", s.writeTxnIndex()); err != nil {
		return fail(err)
	}
	for _, ext := range []string{".index", ".timeindex"} {
		err := l.fs.Remove(s.path(ext))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err := l.truncateStep("indexes", err); err != nil {
			return fail(err)
		}
	}
	if err := l.truncateStep("truncate", s.log.Truncate(pos)); err != nil {
		return fail(err)
	}
	if err := l.truncateStep("sync log", s.sync()); err != nil {
		return fail(err)
	}
	if epochsChanged {
		if err := l.truncateStep("epochs", writeEpochs(l.fs, l.dir, epochs)); err != nil {
			return fail(err)
		}
	}
	// Segments rewritten below a stale recovery point would skip validation
	// after a crash: move it back.
	if l.recoveryPoint > newEnd {
		if err := l.truncateStep("recovery point", writeOffsetFile(l.fs, l.dir, recoveryPointFile, newEnd)); err != nil {
			return fail(err)
		}
		l.recoveryPoint = newEnd
	}
	if err := l.truncateStep("sync dir", syncDir(l.fs, l.dir)); err != nil {
		return fail(err)
	}
	if err := l.truncateStep("uncommit", l.fs.Remove(filepath.Join(l.dir, truncateFile))); err != nil {
		return fail(err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return fail(err)
	}
	l.dirDirty = false
	return nil
}

// truncateEmptyEpochsLocked drops the leader-epoch entries starting at or past the log end, as
// Kafka's UnifiedLog.truncateTo does for a target at or past the log end: an epoch this replica
// started as leader and wrote nothing in would otherwise stay its last fetched epoch, and its
// new leader, which never had that epoch, would answer a diverging epoch at the follower's log
// end on every fetch.
//
// Crash safety: no data moves; the checkpoint is written atomically (temp file, fsync, rename,
// directory fsync) before the cache in memory changes. A crash before the rename leaves the old
// checkpoint, whose extra entries start at the log end and so describe no data (Open keeps an
// entry starting exactly at the end; the next truncation at the end drops it again). A failed
// write leaves the cache as it was (an fsync or I/O failure fails the log, as for AssignEpoch).
// REQUIRES: appendMu held.
func (l *Log) truncateEmptyEpochsLocked() error {
	epochs, changed := truncateEpochsFromEnd(l.mu.epochs, l.mu.endOffset)
	if !changed {
		return nil
	}
	if err := l.truncateStep("epochs", writeEpochs(l.fs, l.dir, epochs)); err != nil {
		return l.checkLocked(fmt.Errorf("truncate at the log end %d: %w", l.mu.endOffset, err))
	}
	l.mu.Lock()
	l.mu.epochs = epochs
	l.mu.Unlock()
	return nil
}

// truncateStep returns err, or what the test hook says after a step that
// succeeded (a test stops the truncation there to recover as after a crash).
// REQUIRES: appendMu held.
func (l *Log) truncateStep(step string, err error) error {
	if err == nil && l.truncateHook != nil {
		return l.truncateHook(step)
	}
	return err
}

// finishTruncation completes a truncation that was committed (truncate-to
// exists) when the process stopped: segments above the offset go, the one
// holding it is cut at its first batch holding an offset >= it (as TruncateTo
// cuts) and its indexes are removed (recovery rebuilds them); then truncate-to
// is removed.
func finishTruncation(fsys vfs.FS, dir string) error {
	manifest := filepath.Join(dir, truncateFile)
	data, err := vfs.ReadFile(fsys, manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", manifest, err)
	}
	offset, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || offset < 0 {
		return fmt.Errorf("%s: bad offset %q", manifest, data)
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("finish truncation: %w", err)
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name(), ".log"); ok {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	keep := sort.Search(len(bases), func(i int) bool { return bases[i] > offset })
	if err := removeSegmentFiles(fsys, dir, bases[keep:]); err != nil {
		return fmt.Errorf("finish truncation: %w", err)
	}
	if keep > 0 {
		base := bases[keep-1]
		if err := cutSegmentAt(fsys, dir, base, offset); err != nil {
			return fmt.Errorf("finish truncation: %w", err)
		}
		for _, ext := range []string{".index", ".timeindex"} {
			if err := fsys.Remove(filepath.Join(dir, segmentName(base, ext))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("finish truncation: %w", err)
			}
		}
		// The aborted-transaction index cannot be rebuilt from the log: cut it as the log was.
		if err := trimTxnIndexFile(fsys, dir, base, offset); err != nil {
			return fmt.Errorf("finish truncation: %w", err)
		}
	}
	if err := syncDir(fsys, dir); err != nil {
		return err
	}
	if err := fsys.Remove(manifest); err != nil {
		return fmt.Errorf("finish truncation: %w", err)
	}
	return syncDir(fsys, dir)
}

// cutSegmentAt truncates the .log of segment base at its first batch whose
// last offset is >= offset (or at the first torn or invalid header, which
// recovery would cut anyway) and fsyncs it.
func cutSegmentAt(fsys vfs.FS, dir string, base, offset int64) error {
	s, err := openSegment(fsys, dir, base, false)
	if err != nil {
		return err
	}
	defer s.close()
	fi, err := s.log.Stat()
	if err != nil {
		return err
	}
	var hdr [record.HeaderSize]byte
	pos := int64(0)
	for pos < fi.Size() {
		h, err := readHeader(s.log, pos, fi.Size(), &hdr)
		if err != nil || h.LastOffset() >= offset {
			break
		}
		pos += int64(h.Size())
	}
	if pos == fi.Size() {
		return nil
	}
	if err := s.log.Truncate(pos); err != nil {
		return err
	}
	return s.sync()
}

// TruncateFullyAndStartAt removes every batch and starts the log over, empty, at offset (Kafka's
// truncateFullyAndStartAt), for a follower whose log ends below its leader's log start: the log
// start and end offsets become offset and the leader-epoch cache is emptied. offset must be
// above the log end offset (below it, TruncateTo and DeleteRecordsBefore apply), else
// ErrOffsetOutOfRange; an empty log (start = end) may also start over at or below its start:
// Kafka's follower restarts its empty log at the base offset of a fetched batch that starts
// below the log end and holds it (a leader log start inside a batch, after DeleteRecords).
//
// Crash safety: the commit point is the log-start-offset file, written atomically with offset.
// Before it nothing changed; after it Open discards every segment below the persisted start and
// starts over there (load's "start > end" rule), so a crash at any later step leaves the log
// either as it was or empty at offset. (For a start moved back on an empty log Open reads the
// start as the larger of the file's and the first segment's base: a crash before the old empty
// segment is retired leaves the log as it was, empty at its old start; one after, empty at
// offset.) After the commit the old segments' files are renamed to *.deleted (retire NNN), the
// emptied epoch cache is written (epochs; its directory fsync makes the renames durable), the
// new segment is created (new segment, only once every old one is durably retired, so Open
// never sees an old segment beside it), the recovery point is written (recovery point) and the
// directory fsynced (sync dir). A failure after the commit fails the log (ErrLogFailed); the
// next Open finishes.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writableLocked("truncate fully"); err != nil {
		return err
	}
	if offset <= l.mu.endOffset && l.mu.startOffset != l.mu.endOffset {
		return fmt.Errorf("truncate fully and start at %d, log ends at %d: %w", offset, l.mu.endOffset, ErrOffsetOutOfRange)
	}
	return l.truncateFullyLocked(offset)
}

// truncateFullyLocked is TruncateFullyAndStartAt without its argument checks (TruncateTo also
// starts over at the log start when its cut falls below it). REQUIRES: appendMu held; the log
// open and not failed.
func (l *Log) truncateFullyLocked(offset int64) error {
	if err := l.truncateStep("begin", nil); err != nil {
		return err
	}
	if err := l.truncateStep("commit", writeOffsetFile(l.fs, l.dir, logStartOffsetFile, offset)); err != nil {
		return l.checkLocked(fmt.Errorf("truncate fully: %w", err))
	}
	fail := func(err error) error {
		return l.fail(fmt.Errorf("truncate fully and start at %d: %w", offset, err))
	}
	retired := l.mu.segments
	for _, r := range retired {
		for _, ext := range segmentExts {
			err := l.fs.Rename(r.path(ext), r.path(ext)+deletedSuffix)
			if errors.Is(err, fs.ErrNotExist) && ext != ".log" {
				err = nil // index files are written at roll; a crash may have left none
			}
			if err := l.truncateStep("retire "+segmentName(r.base, ext), err); err != nil {
				return fail(err)
			}
		}
		if err := l.truncateStep("retire "+segmentName(r.base, txnIndexExt), renameTxnIndex(r, "", deletedSuffix)); err != nil {
			return fail(err)
		}
	}
	// The epochs go before the new segment exists: Open keeps the cached epochs of a log that
	// has a segment (moving the last one up to the start offset), and drops those below the
	// start of a log that has none. Their write fsyncs the directory, which also makes the
	// retirements durable before the new segment is created: a power cut never keeps the new
	// segment and loses a rename (for a start moved back, an old empty segment above the new
	// one would leave a hole at the log end).
	if err := l.truncateStep("epochs", writeEpochs(l.fs, l.dir, nil)); err != nil {
		return fail(err)
	}
	s, err := openSegment(l.fs, l.dir, offset, true)
	if err := l.truncateStep("new segment", err); err != nil {
		return fail(err)
	}
	l.mu.Lock()
	l.mu.segments = []*segment{s}
	l.mu.startOffset, l.mu.endOffset = offset, offset
	l.mu.epochs = nil
	l.mu.Unlock()
	for _, r := range retired {
		l.scheduleDelete(r, l.deleteDelay())
	}
	for t := l.truncatedTo.Load(); offset < t && !l.truncatedTo.CompareAndSwap(t, offset); t = l.truncatedTo.Load() {
	}
	l.unflushedMsgs, l.firstUnflushedMs = 0, -1
	if err := l.truncateStep("recovery point", writeOffsetFile(l.fs, l.dir, recoveryPointFile, offset)); err != nil {
		return fail(err)
	}
	l.recoveryPoint = offset
	if err := l.truncateStep("sync dir", syncDir(l.fs, l.dir)); err != nil {
		return fail(err)
	}
	l.dirDirty = false
	return nil
}
