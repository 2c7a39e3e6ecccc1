package log

// Log compaction (cleanup.policy=compact), after Kafka's LogCleaner.
//
// A cleaning pass reads the log's cleanable prefix: the rolled segments that
// end at or below the caller's limit (the partition's last stable offset) and hold no record
// younger than min.compaction.lag.ms. It builds a map from every key in that
// prefix to the offset of its latest record there, then rewrites the prefix
// group by group (consecutive segments whose inputs fit in one segment),
// keeping a record only if it is its key's latest; a tombstone (null value)
// also goes once its batch timestamp is delete.retention.ms old. Records
// without a key are dropped (Kafka refuses them on a compacted topic). The
// active segment is never touched, and a record whose key reappears above the
// prefix is kept until a later pass covers the newer one.
//
// Batches keep their offsets: a batch left whole is copied byte for byte, a
// batch that loses records is re-encoded with the survivors at their original
// offsets (record.Rewrite), a batch that loses all of them is dropped, except
// a producer's last data batch, which stays as an empty batch so that its
// sequence number survives (the producer state is rebuilt from batch headers).
//
// # Transactions
//
// The rules are Kafka's (Cleaner, CleanedTransactionMetadata):
//
//   - The caller's limit is the partition's last stable offset, so a pass
//     never reads a transaction still open. The cleaner also stops by itself
//     before the first transaction that has no marker anywhere in the log.
//   - A first pass over the whole log (scanTransactions) learns, from the
//     transactional batches and the markers, which transactions of which
//     producer aborted: their range from the first batch to the abort marker.
//   - The records of an aborted transaction are dropped (and never enter the
//     key map, so they cannot hide an older committed value of their key).
//   - A marker stays while a batch of its transaction is still read by the
//     pass; once none is (a later pass), it is kept for delete.retention.ms
//     more, a horizon stamped into the marker batch itself (KIP-534: attributes
//     bit 6, the base timestamp is the horizon), so that a consumer that read
//     the data before it went still finds the marker; after the horizon a pass
//     drops it. The horizon lives in the segment written by the swap, so it
//     is exactly as crash-safe as the rest of the output.
//   - The aborted-transaction index entries of the abort markers that stay
//     (while a batch of their transaction does) go with them into the cleaned
//     segment (Kafka's cleaned txnIndex); those of markers that go, or wait out
//     their horizon with no batch left, go.
//   - Non-marker control batches are kept as they are.
//
// # Crash safety
//
// A group's output is written to NNN.log.cleaned (+ .index.cleaned,
// .timeindex.cleaned, and .txnindex.cleaned, always, with the carried entries)
// and fsynced. The swap is then committed by writing the cleaner-swap file
// atomically: it names the output's base and the replaced segments' bases.
// After that the replaced files are renamed to *.deleted, the output is
// renamed to its final names (the .txnindex first, the .log last), the
// directory is fsynced and cleaner-swap is removed. Open finishes a committed
// swap (finishCleanerSwap) and drops *.cleaned files of an uncommitted one, so
// a kill -9 at any point leaves either the old segments or the new one, never
// both and never neither. An error once the commit was attempted fails the log
// and leaves the files to Open (removing the output under a manifest that may
// be on disk would lose the replaced segments).

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// segmentExts are the extensions of a segment's files.
var segmentExts = []string{".log", ".index", ".timeindex"}

// errCleanAborted: the segments being cleaned changed under the cleaner
// (retention, DeleteRecords, truncation or Close); the pass is retried later.
var errCleanAborted = errors.New("clean aborted: segments changed")

// CleanStats describes one cleaning pass.
type CleanStats struct {
	Segments       int   // segments read
	Groups         int   // segments written in their place
	BytesRead      int64 // bytes of the segments read
	BytesWritten   int64 // bytes of the segments written
	RecordsRead    int64
	RecordsRemoved int64
}

// NeedsCleaning reports whether a compacted log is due for a cleaning pass
// over offsets below upTo: its dirty (not yet cleaned) share of the cleanable
// bytes reached min.cleanable.dirty.ratio, or dirty data is older than
// max.compaction.lag.ms, or a tombstone or transaction marker kept by the
// last pass may now go (or, for a marker whose transaction's batches that pass
// removed, get its delete horizon). upTo is the partition's last stable offset.
func (l *Log) NeedsCleaning(upTo int64) bool {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	cfg := l.cfg
	l.appendMu.Unlock()
	if !cfg.Compact {
		return false
	}
	nowMs := l.clock.Now().UnixMilli()
	l.applyTruncation()
	l.mu.RLock()
	defer l.mu.RUnlock()
	segs := l.cleanableLocked(upTo, cfg, nowMs)
	if len(segs) == 0 {
		return false
	}
	if nowMs >= l.tombstoneDue {
		return true
	}
	var total, dirty int64
	oldestDirty := int64(math.MaxInt64)
	for _, s := range segs {
		total += s.size
		if s.next > l.firstDirty {
			dirty += s.size
			if s.maxTs >= 0 {
				oldestDirty = min(oldestDirty, s.maxTs)
			}
		}
	}
	if dirty == 0 {
		return false
	}
	if float64(dirty) >= cfg.MinCleanableDirtyRatio*float64(total) {
		return true
	}
	return oldestDirty != math.MaxInt64 && nowMs-oldestDirty >= cfg.MaxCompactionLagMs
}

// cleanableLocked returns the segments a pass may clean: rolled segments
// ending at or below upTo, up to the first one holding a record younger than
// min.compaction.lag.ms. REQUIRES: cleanMu and mu held.
func (l *Log) cleanableLocked(upTo int64, cfg Config, nowMs int64) []*segment {
	if l.mu.closed {
		return nil
	}
	segs := l.mu.segments[:len(l.mu.segments)-1]
	n := 0
	for n < len(segs) && segs[n].next <= upTo && (cfg.MinCompactionLagMs == 0 || nowMs-segs[n].maxTs >= cfg.MinCompactionLagMs) {
		n++
	}
	return append([]*segment(nil), segs[:n]...)
}

// Clean runs one compaction pass over the cleanable segments below upTo, the
// partition's last stable offset (see the file comment), whatever
// NeedsCleaning says. It is a no-op for a log
// without cleanup.policy=compact.
func (l *Log) Clean(upTo int64) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.appendMu.Lock()
	cfg, closed := l.cfg, l.mu.closed
	l.appendMu.Unlock()
	if !cfg.Compact || closed {
		return CleanStats{}, nil
	}
	nowMs := l.clock.Now().UnixMilli()
	l.mu.RLock()
	segs := l.cleanableLocked(upTo, cfg, nowMs)
	l.mu.RUnlock()
	if len(segs) == 0 {
		return CleanStats{}, nil
	}
	c := cleaner{l: l, cfg: cfg, nowMs: nowMs, tombstoneDue: math.MaxInt64}
	txns, err := c.scanTransactions(segs)
	if err != nil {
		return c.stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	// Never past the first transaction still open (the limit, the last stable offset, already
	// keeps it there: this holds even for a caller that passed a larger one).
	for len(segs) > 0 && segs[len(segs)-1].next > txns.firstOpen {
		segs = segs[:len(segs)-1]
	}
	if len(segs) == 0 {
		return CleanStats{}, nil
	}
	c.lastData = txns.lastData
	c.aborted = txns.aborted
	if err := c.buildOffsetMap(segs); err != nil {
		return c.stats, fmt.Errorf("clean %s: %w", l.dir, err)
	}
	c.txns = newTxnTracker(c.aborted)
	for _, group := range l.groupForCleaning(segs, cfg) {
		if err := c.cleanGroup(group); err != nil {
			return c.stats, fmt.Errorf("clean %s: %w", l.dir, err)
		}
	}
	l.mu.RLock()
	l.firstDirty = segs[len(segs)-1].next
	l.mu.RUnlock()
	l.applyTruncation()
	l.tombstoneDue = c.tombstoneDue
	return c.stats, nil
}

// cleaner holds one pass's state.
type cleaner struct {
	l     *Log
	cfg   Config
	nowMs int64

	latest   map[string]int64 // key -> offset of its latest record in the cleanable segments
	lastData map[int64]int64  // producer id -> base offset of its last data batch in the whole log
	aborted  []txnRange       // the aborted transactions reaching into the cleanable segments
	txns     *txnTracker      // the transactions as the rewrite walks the segments in order
	// groupIndex holds the aborted-transaction index entries of the group being cleaned, by
	// marker offset; carried, those of its abort markers that stay, for the cleaned segment.
	groupIndex map[int64]AbortedTxn
	carried    []AbortedTxn
	// tombstoneDue is the earliest time a tombstone or marker kept by this pass may go
	// (a marker whose transaction's batches went in this pass: at once, to start its horizon).
	tombstoneDue int64
	stats        CleanStats
	buf          []byte
}

// eachBatch calls fn with every batch of s (validated: CRC and offsets).
// A rolled segment's bytes do not change, so it reads without locks.
func (c *cleaner) eachBatch(s *segment, fn func(h record.BatchHeader, batch []byte) error) error {
	c.l.mu.RLock()
	size := s.size
	c.l.mu.RUnlock()
	next := s.base
	for pos := int64(0); pos < size; {
		h, err := s.readBatch(pos, size, next, &c.buf)
		if err != nil {
			return fmt.Errorf("read %s at %d: %w", s.log.Name(), pos, err)
		}
		if err := fn(h, c.buf[:h.Size()]); err != nil {
			return err
		}
		pos += int64(h.Size())
		next = h.LastOffset() + 1
	}
	return nil
}

// buildOffsetMap fills latest from the cleanable segments, leaving out
// control batches and the batches of aborted transactions.
func (c *cleaner) buildOffsetMap(segs []*segment) error {
	c.latest = map[string]int64{}
	txns := newTxnTracker(c.aborted)
	for _, s := range segs {
		err := c.eachBatch(s, func(h record.BatchHeader, batch []byte) error {
			_, recs, err := record.Records(batch)
			if err != nil {
				return err
			}
			if h.Control() {
				txns.onControl(h, recs)
				return nil
			}
			if _, aborted := txns.onData(h); aborted {
				return nil
			}
			for _, r := range recs {
				if r.Key != nil {
					c.latest[string(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// groupForCleaning splits segs into runs of consecutive segments whose sizes
// and index entries together fit one segment and whose offsets fit the
// 32-bit relative offsets of one index (Kafka's groupSegmentsBySize).
func (l *Log) groupForCleaning(segs []*segment, cfg Config) [][]*segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var groups [][]*segment
	for i := 0; i < len(segs); {
		size, offIdx, timeIdx := segs[i].size, len(segs[i].offIndex), len(segs[i].timeIndex)
		j := i + 1
		for j < len(segs) {
			s := segs[j]
			if size+s.size > cfg.SegmentBytes ||
				int64(offIdx+len(s.offIndex)) > int64(cfg.SegmentIndexBytes) ||
				int64(timeIdx+len(s.timeIndex)) > int64(cfg.SegmentIndexBytes) ||
				s.next-1-segs[i].base > math.MaxInt32 {
				break
			}
			size, offIdx, timeIdx = size+s.size, offIdx+len(s.offIndex), timeIdx+len(s.timeIndex)
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

// keep reports whether the record at offset off of a batch with header h
// survives compaction.
func (c *cleaner) keep(h record.BatchHeader, off int64, r record.Record) bool {
	if r.Key == nil || c.latest[string(r.Key)] > off {
		return false
	}
	if r.Value == nil {
		if age := c.nowMs - h.MaxTimestamp; age >= c.cfg.DeleteRetentionMs {
			return false
		}
		due := int64(math.MaxInt64)
		if h.MaxTimestamp <= math.MaxInt64-c.cfg.DeleteRetentionMs {
			due = h.MaxTimestamp + c.cfg.DeleteRetentionMs
		}
		c.tombstoneDue = min(c.tombstoneDue, due)
	}
	return true
}

// compactBatch returns what of batch goes into the cleaned segment: the batch
// itself, a rewritten one, or nil.
func (c *cleaner) compactBatch(h record.BatchHeader, batch []byte) ([]byte, error) {
	c.stats.RecordsRead += int64(h.NumRecords)
	_, recs, err := record.Records(batch)
	if err != nil {
		return nil, err
	}
	if h.Control() {
		return c.compactControl(h, batch, recs)
	}
	txn, aborted := c.txns.onData(h)
	kept := make([]record.Record, 0, len(recs))
	if !aborted {
		for _, r := range recs {
			if c.keep(h, h.BaseOffset+int64(r.OffsetDelta), r) {
				kept = append(kept, r)
			}
		}
	}
	c.stats.RecordsRemoved += int64(len(recs) - len(kept))
	out := batch
	switch {
	case len(kept) == 0 && (h.ProducerID < 0 || c.lastData[h.ProducerID] != h.BaseOffset):
		return nil, nil
	case len(kept) != len(recs):
		if out, err = record.Rewrite(h, kept, h.Codec() == record.CodecSnappy && record.IsRawSnappy(batch)); err != nil {
			return nil, err
		}
	}
	if txn != nil {
		txn.kept = true
	}
	return out, nil
}

// compactControl returns what of a control batch goes into the cleaned
// segment (see the file comment's transaction rules).
func (c *cleaner) compactControl(h record.BatchHeader, batch []byte, recs []record.Record) ([]byte, error) {
	txn, discardable, isMarker := c.txns.onControl(h, recs)
	switch {
	case len(recs) == 0:
		return nil, nil // nothing left to say (Kafka drops an emptied control batch too)
	case !isMarker:
		return batch, nil
	case !discardable:
		if txn != nil && txn.aborted {
			c.carryAborted(h.BaseOffset, txn.rng)
		}
		if txn != nil && !txn.kept {
			// Every batch of its transaction went in this pass: the next one starts its horizon.
			c.tombstoneDue = c.nowMs
		}
		return batch, nil
	}
	if horizon, ok := h.DeleteHorizon(); ok {
		if horizon <= c.nowMs {
			c.stats.RecordsRemoved += int64(len(recs))
			return nil, nil
		}
		c.tombstoneDue = min(c.tombstoneDue, horizon)
		return batch, nil
	}
	horizon := int64(math.MaxInt64)
	if c.nowMs <= math.MaxInt64-c.cfg.DeleteRetentionMs {
		horizon = c.nowMs + c.cfg.DeleteRetentionMs
	}
	c.tombstoneDue = min(c.tombstoneDue, horizon)
	return record.WithDeleteHorizon(h, recs, horizon, h.Codec() == record.CodecSnappy && record.IsRawSnappy(batch))
}

// carryAborted puts the index entry of the abort marker at offset marker,
// which stays, into the cleaned segment's index (Kafka's cleaned txnIndex):
// the group's own entry, or rng's when the index lacks it.
func (c *cleaner) carryAborted(marker int64, rng txnRange) {
	t, ok := c.groupIndex[marker]
	if !ok {
		t = rng.abortedTxn()
	}
	c.carried = append(c.carried, t)
}

// cleanGroup writes the compacted contents of group into one new segment
// and swaps it in for them.
func (c *cleaner) cleanGroup(group []*segment) error {
	l := c.l
	out, err := openSegmentFiles(l.fs, l.dir, group[0].base, cleanedSuffix, true)
	if err != nil {
		return err
	}
	c.groupIndex, c.carried = map[int64]AbortedTxn{}, nil
	l.mu.RLock()
	for _, s := range group {
		for _, t := range s.aborted {
			c.groupIndex[t.LastOffset] = t
		}
	}
	l.mu.RUnlock()
	swapped, committing := false, false
	defer func() {
		if !swapped {
			out.close()
			if committing {
				// The commit was attempted: the manifest may be on disk, and then Open
				// finishes the swap with these files. The log is failed; Open decides.
				return
			}
			for _, ext := range []string{".log", ".index", ".timeindex", txnIndexExt} {
				l.fs.Remove(out.path(ext) + cleanedSuffix)
			}
		}
	}()
	for _, s := range group {
		c.stats.Segments++
		err := c.eachBatch(s, func(h record.BatchHeader, batch []byte) error {
			c.stats.BytesRead += int64(len(batch))
			b, err := c.compactBatch(h, batch)
			if err != nil || b == nil {
				return err
			}
			if _, err := out.log.WriteAt(b, out.size); err != nil {
				return fmt.Errorf("write %s: %w", out.log.Name(), err)
			}
			nh, _ := record.ParseHeader(b)
			out.indexBatch(out.size, int64(len(b)), nh.LastOffset(), nh.MaxTimestamp, c.cfg.IndexIntervalBytes)
			return nil
		})
		if err != nil {
			if l.isClosed() {
				return errCleanAborted
			}
			return err
		}
	}
	out.aborted = c.carried
	out.maybeAppendTime()
	if err := out.writeIndexes(); err != nil {
		return err
	}
	if err := out.sync(); err != nil {
		l.appendMu.Lock()
		defer l.appendMu.Unlock()
		return l.checkLocked(err)
	}
	if committing, err = l.swapCleaned(out, group); err != nil {
		return err
	}
	swapped = true
	c.stats.Groups++
	c.stats.BytesWritten += out.size
	return nil
}

// applyTruncation makes the offsets from the lowest end a truncation left
// dirty again: what is appended there was never cleaned. REQUIRES: cleanMu held.
func (l *Log) applyTruncation() {
	if t := l.truncatedTo.Swap(math.MaxInt64); t < l.firstDirty {
		l.firstDirty = t
	}
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.closed
}

// swapCleaned replaces the segments of group, which must still be in the log
// unchanged, with out. See the file comment for the protocol. committing
// reports that the commit (the cleaner-swap file) was attempted: from then on
// an error fails the log and leaves every file as it is for Open to finish or
// undo, since the manifest may be on disk (a failed write may still have
// renamed it into place), and removing the output under it would lose the
// replaced segments.
func (l *Log) swapCleaned(out *segment, group []*segment) (committing bool, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed || l.failed.Load() != nil {
		return false, errCleanAborted
	}
	segs := l.mu.segments
	i := 0
	for i < len(segs) && segs[i] != group[0] {
		i++
	}
	if i+len(group) >= len(segs) { // the active segment is never part of a group
		return false, errCleanAborted
	}
	for j, s := range group {
		if segs[i+j] != s {
			return false, errCleanAborted
		}
	}
	// From here on Open may finish the swap, so a failure marks the log failed.
	fail := func(err error) (bool, error) {
		return true, l.fail(fmt.Errorf("swap cleaned segment %s: %w", out.path(".log"), err))
	}
	if err := l.swapStep("commit", writeFileAtomic(l.fs, l.dir, cleanerSwapFile, swapManifest(out.base, group))); err != nil {
		return fail(err)
	}
	for _, s := range group {
		for _, ext := range segmentExts {
			if err := l.swapStep("retire "+segmentName(s.base, ext), l.fs.Rename(s.path(ext), s.path(ext)+deletedSuffix)); err != nil {
				return fail(err)
			}
		}
		if err := l.swapStep("retire "+segmentName(s.base, txnIndexExt), renameTxnIndex(s, "", deletedSuffix)); err != nil {
			return fail(err)
		}
	}
	// The output's .txnindex.cleaned always exists (writeTxnIndex), so finishCleanerSwap tells
	// an installed one from an old one by it.
	for _, ext := range []string{txnIndexExt, ".index", ".timeindex", ".log"} {
		if err := l.swapStep("install "+ext, l.fs.Rename(out.path(ext)+cleanedSuffix, out.path(ext))); err != nil {
			return fail(err)
		}
	}
	if err := l.swapStep("sync", syncDir(l.fs, l.dir)); err != nil {
		return fail(err)
	}
	if err := l.swapStep("uncommit", l.fs.Remove(filepath.Join(l.dir, cleanerSwapFile))); err != nil {
		return fail(err)
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return fail(err)
	}
	l.mu.Lock()
	out.idxSuffix = ""
	l.mu.segments = append(append(append([]*segment(nil), segs[:i]...), out), segs[i+len(group):]...)
	l.mu.Unlock()
	delay := l.deleteDelay()
	for _, s := range group {
		l.scheduleDelete(s, delay)
	}
	return true, nil
}

// swapStep returns err, or what the test hook says after a step that
// succeeded (a test stops the swap there to recover as after a crash).
func (l *Log) swapStep(step string, err error) error {
	if err == nil && l.swapHook != nil {
		return l.swapHook(step)
	}
	return err
}

// swapManifest is the content of cleaner-swap: the output's base offset,
// then the bases of the segments it replaces, one per line.
func swapManifest(base int64, group []*segment) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", base)
	for _, s := range group {
		fmt.Fprintf(&b, "%d\n", s.base)
	}
	return []byte(b.String())
}

// finishCleanerSwap completes a swap that was committed (cleaner-swap
// exists) when the process stopped: the replaced segments go and the cleaned
// .log takes its final name (its indexes are rebuilt by recovery). Without a
// cleaner-swap file there is nothing to do; Open removes stray *.cleaned.
func finishCleanerSwap(fsys vfs.FS, dir string) error {
	manifest := filepath.Join(dir, cleanerSwapFile)
	data, err := vfs.ReadFile(fsys, manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", manifest, err)
	}
	var bases []int64
	for _, line := range strings.Fields(string(data)) {
		b, err := strconv.ParseInt(line, 10, 64)
		if err != nil || b < 0 {
			return fmt.Errorf("%s: bad base offset %q", manifest, line)
		}
		bases = append(bases, b)
	}
	if len(bases) < 2 {
		return fmt.Errorf("%s: %d base offsets, want the output's and at least one replaced", manifest, len(bases))
	}
	newBase, replaced := bases[0], bases[1:]
	cleanedLog := filepath.Join(dir, segmentName(newBase, ".log")+cleanedSuffix)
	if _, err := fsys.Stat(cleanedLog); err == nil {
		// The output is not in place yet: every replaced file goes (the one
		// named like the output included), then the output takes its name.
		// Its .txnindex is installed first: with no .txnindex.cleaned left, the
		// one under the final name is the output's (the replaced ones' were
		// retired before any install) and is kept through the removal.
		txn := filepath.Join(dir, segmentName(newBase, txnIndexExt))
		if _, err := fsys.Stat(txn + cleanedSuffix); errors.Is(err, fs.ErrNotExist) {
			if err := fsys.Rename(txn, txn+cleanedSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("finish cleaner swap: %w", err)
			}
		}
		if err := removeSegmentFiles(fsys, dir, replaced); err != nil {
			return err
		}
		if err := fsys.Rename(txn+cleanedSuffix, txn); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("finish cleaner swap: %w", err)
		}
		if err := fsys.Rename(cleanedLog, filepath.Join(dir, segmentName(newBase, ".log"))); err != nil {
			return fmt.Errorf("finish cleaner swap: %w", err)
		}
	} else {
		// The output is in place; replaced segments other than its own name may remain.
		var others []int64
		for _, b := range replaced {
			if b != newBase {
				others = append(others, b)
			}
		}
		if err := removeSegmentFiles(fsys, dir, others); err != nil {
			return err
		}
	}
	for _, ext := range []string{".index", ".timeindex"} {
		// Whichever index files exist may be the old segment's: rebuild them.
		for _, name := range []string{segmentName(newBase, ext), segmentName(newBase, ext) + cleanedSuffix} {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("finish cleaner swap: %w", err)
			}
		}
	}
	if err := syncDir(fsys, dir); err != nil {
		return err
	}
	if err := fsys.Remove(manifest); err != nil {
		return fmt.Errorf("finish cleaner swap: %w", err)
	}
	return syncDir(fsys, dir)
}
