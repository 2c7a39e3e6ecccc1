package log

import (
	"fmt"
	"time"
)

// EnforceRetention rolls the active segment if segment.ms elapsed, then
// deletes the oldest segments that are wholly below the log start offset,
// older than retention.ms (by their largest timestamp, or file mtime when no
// batch has a timestamp) or beyond retention.bytes (deleting a segment only
// while the log stays >= retention.bytes without it). It never deletes the
// active segment and only ever deletes a prefix of the log. Under NoDelete
// (cleanup.policy=compact alone) only the log start offset removes segments.
// It returns the
// number of segments removed.
func (l *Log) EnforceRetention() (int, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed {
		return 0, ErrLogClosed
	}
	nowMs := l.clock.Now().UnixMilli()
	if f := l.failed.Load(); f != nil {
		return 0, fmt.Errorf("retention: %w earlier: %w", ErrLogFailed, f.err)
	}
	if active := l.mu.segments[len(l.mu.segments)-1]; active.size > 0 && nowMs-active.firstAppendMs >= l.cfg.SegmentMs {
		if _, err := l.rollLocked(); err != nil {
			return 0, l.checkLocked(fmt.Errorf("retention: %w", err))
		}
	}
	segs := l.mu.segments
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= l.mu.startOffset {
		n++
	}
	if l.cfg.RetentionMs >= 0 && !l.cfg.NoDelete {
		for n < len(segs)-1 && nowMs-segmentTimestamp(segs[n]) > l.cfg.RetentionMs {
			n++
		}
	}
	if l.cfg.RetentionBytes >= 0 && !l.cfg.NoDelete {
		diff := -l.cfg.RetentionBytes
		for _, s := range segs[n:] {
			diff += s.size
		}
		for n < len(segs)-1 && diff-segs[n].size >= 0 {
			diff -= segs[n].size
			n++
		}
	}
	if err := l.deleteSegmentsLocked(n); err != nil {
		return 0, l.checkLocked(fmt.Errorf("retention: %w", err))
	}
	return n, nil
}

func segmentTimestamp(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	if fi, err := s.log.Stat(); err == nil {
		return fi.ModTime().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// DeleteRecordsBefore moves the log start offset to offset (DeleteRecords),
// persists it in log-start-offset and removes the segments wholly below it.
// Offsets above the log end offset are ErrOffsetOutOfRange; offsets at or
// below the current start are a no-op.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed {
		return ErrLogClosed
	}
	if offset > l.mu.endOffset || offset < 0 {
		return fmt.Errorf("delete records before %d, log end %d: %w", offset, l.mu.endOffset, ErrOffsetOutOfRange)
	}
	if offset <= l.mu.startOffset {
		return nil
	}
	if f := l.failed.Load(); f != nil {
		return fmt.Errorf("delete records: %w earlier: %w", ErrLogFailed, f.err)
	}
	if err := l.setStartOffsetLocked(offset); err != nil {
		return l.checkLocked(fmt.Errorf("delete records: %w", err))
	}
	segs := l.mu.segments
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= offset {
		n++
	}
	if err := l.deleteSegmentsLocked(n); err != nil {
		return l.checkLocked(fmt.Errorf("delete records: %w", err))
	}
	return nil
}

// setStartOffsetLocked publishes and persists a new log start offset and
// trims the epoch cache. REQUIRES: appendMu held.
func (l *Log) setStartOffsetLocked(start int64) error {
	epochs, changed := truncateEpochsFromStart(l.mu.epochs, start)
	// Disk first: a failed write leaves the log as it was, in memory and on disk.
	if err := writeOffsetFile(l.fs, l.dir, logStartOffsetFile, start); err != nil {
		return err
	}
	if changed {
		if err := writeEpochs(l.fs, l.dir, epochs); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.mu.startOffset = start
	l.mu.epochs = epochs
	l.mu.Unlock()
	return nil
}

// deleteSegmentsLocked removes the first n segments from the log (n < number
// of segments), renames their files to *.deleted and schedules their removal
// after FileDeleteDelayMs. REQUIRES: appendMu held.
func (l *Log) deleteSegmentsLocked(n int) error {
	if n <= 0 {
		return nil
	}
	segs := l.mu.segments
	removed := append([]*segment(nil), segs[:n]...)
	l.mu.Lock()
	l.mu.segments = append([]*segment(nil), segs[n:]...)
	l.mu.Unlock()
	if newStart := l.mu.segments[0].base; newStart > l.mu.startOffset {
		if err := l.setStartOffsetLocked(newStart); err != nil {
			return err
		}
	}
	delay := l.deleteDelay()
	var firstErr error
	for _, s := range removed {
		for _, ext := range []string{".log", ".index", ".timeindex"} {
			if err := l.fs.Rename(s.path(ext), s.path(ext)+deletedSuffix); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if err := renameTxnIndex(s, "", deletedSuffix); err != nil && firstErr == nil {
			firstErr = err
		}
		l.scheduleDelete(s, delay)
	}
	l.dirDirty = true
	return firstErr
}

// deleteDelay is file.delete.delay.ms. REQUIRES: appendMu held.
func (l *Log) deleteDelay() time.Duration {
	return time.Duration(l.cfg.FileDeleteDelayMs) * time.Millisecond
}

func (l *Log) scheduleDelete(s *segment, delay time.Duration) {
	if delay <= 0 {
		removeDeleted(s)
		return
	}
	l.delMu.Lock()
	defer l.delMu.Unlock()
	l.pending[s] = time.AfterFunc(delay, func() {
		l.delMu.Lock()
		_, ok := l.pending[s]
		delete(l.pending, s)
		l.delMu.Unlock()
		if ok {
			removeDeleted(s)
		}
	})
}

// finishPendingDeletes deletes every segment still waiting for its delay.
func (l *Log) finishPendingDeletes() {
	l.delMu.Lock()
	pending := l.pending
	l.pending = map[*segment]*time.Timer{}
	l.delMu.Unlock()
	for s, t := range pending {
		t.Stop()
		removeDeleted(s)
	}
}

func removeDeleted(s *segment) {
	s.close()
	for _, ext := range []string{".log", ".index", ".timeindex", txnIndexExt} {
		s.fs.Remove(s.path(ext) + deletedSuffix)
	}
}

// AssignEpoch records that leader epoch `epoch` starts at startOffset
// (Kafka's LeaderEpochFileCache.assign: entries with an epoch >= epoch or a
// start offset >= startOffset are replaced) and persists the cache.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writableLocked("assign epoch"); err != nil {
		return err
	}
	return l.checkLocked(l.assignEpochLocked(epoch, startOffset))
}

// assignEpochLocked: REQUIRES appendMu held.
func (l *Log) assignEpochLocked(epoch int32, start int64) error {
	if epoch < 0 || start < 0 {
		return fmt.Errorf("assign epoch %d at %d: negative", epoch, start)
	}
	entries, changed := assignEpoch(l.mu.epochs, epoch, start)
	if !changed {
		return nil
	}
	if err := writeEpochs(l.fs, l.dir, entries); err != nil {
		return fmt.Errorf("assign epoch: %w", err)
	}
	l.mu.Lock()
	l.mu.epochs = entries
	l.mu.Unlock()
	return nil
}

// latestEpochLocked: REQUIRES appendMu or mu held.
func (l *Log) latestEpochLocked() int32 {
	if n := len(l.mu.epochs); n > 0 {
		return l.mu.epochs[n-1].epoch
	}
	return -1
}

// LatestEpoch is the latest cached leader epoch, -1 if none.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.latestEpochLocked()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch like Kafka's
// LeaderEpochFileCache.endOffsetFor: for the latest epoch, the log end
// offset; otherwise the largest epoch <= epoch and the start offset of the
// next higher epoch; (-1, -1) if epoch is above the latest or there are none.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	entries := l.mu.epochs
	if epoch < 0 || len(entries) == 0 {
		return -1, -1
	}
	if entries[len(entries)-1].epoch == epoch {
		return epoch, l.mu.endOffset
	}
	hi := -1 // first entry with epoch > requested
	for i, e := range entries {
		if e.epoch > epoch {
			hi = i
			break
		}
	}
	if hi < 0 {
		return -1, -1
	}
	if hi == 0 {
		return epoch, entries[0].start
	}
	return entries[hi-1].epoch, entries[hi].start
}
