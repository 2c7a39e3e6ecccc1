// Package log is the segmented, append-only partition log.
//
// A Log owns one partition directory holding:
//
//	NNNNNNNNNNNNNNNNNNNN.log        batches as received (base offset, leader epoch and
//	                                LogAppendTime rewritten), named by the 20-digit base offset
//	NNNNNNNNNNNNNNNNNNNN.index      sparse offset index: relOffset uint32 + position uint32
//	NNNNNNNNNNNNNNNNNNNN.timeindex  sparse time index: timestamp int64 + relOffset uint32
//	NNNNNNNNNNNNNNNNNNNN.txnindex   aborted transactions whose marker is in the segment,
//	                                Kafka's format (txnindex.go); only when there are some
//	leader-epoch-checkpoint         Kafka's text format: "0", count, "epoch startOffset" lines
//	recovery-point                  decimal offset below which everything was fsynced
//	log-start-offset                decimal log start offset (DeleteRecords, retention)
//	.clean_shutdown                 written by Close, removed by Open
//	*.deleted                       removed segments waiting for FileDeleteDelayMs
//	cleaner-swap, truncate-to       commit points of a cleaner swap / a truncation (compact.go, truncate.go)
//
// Index layouts match Kafka's (big-endian). Index entries are kept in memory
// and their files written whole when a segment is sealed (roll) and at Close;
// only the .log files stay open, one descriptor per segment. A kill -9 loses
// nothing that a write returned for: the active segment (and any segment past
// the recovery point) is validated and re-indexed from its .log at the next
// Open. Data is fsynced per the flush policy, on Flush, and on Close.
//
// # Files and failures
//
// Every file operation goes through a vfs.FS (WithFS; vfs.Default is the OS).
// A write refused for lack of space (ENOSPC) is cut back and returned: the
// log is as before and takes the next append. A failed fsync (of a segment,
// an index, a checkpoint or the directory), an EIO from any operation, or a
// failed write or truncation that could not be undone fails the log: every
// later mutation returns ErrLogFailed (Failed says why), reads go on, Close
// reports it (so no clean-shutdown marker is written), and OnFailure hears
// of it once, so the owner can take the whole log dir offline.
//
// # Locks
//
// Lock order: cleanMu, then appendMu, then mu. OnFailure callbacks run with
// appendMu (or cleanMu) held and must take no lock of the log. cleanMu serializes cleaning
// passes (compact.go), which read rolled segments and write their
// replacements without appendMu and take it only to swap them in. appendMu serializes every mutation (Append,
// roll, Flush, retention, DeleteRecordsBefore, AssignEpoch, SetConfig, Close).
// mu (a RWMutex) guards what readers see: the segment list, the published
// sizes and offsets, the in-memory indexes and the epoch cache. The appender
// does its write syscalls holding only appendMu and takes mu for writing
// briefly to publish; readers hold mu for reading while they pread, so reads
// run concurrently with each other and with the appender's writes.
package log

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// Errors returned by Log methods.
var (
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrLogClosed        = errors.New("log closed")
	// ErrLogFailed wraps the error of a write or fsync after which the state of the log on disk
	// is unknown: the log refuses every later mutation (Failed says why) until it is reopened.
	ErrLogFailed = errors.New("log failed")
)

// Option configures Open and OpenManaged.
type Option func(*options)

type options struct {
	fs        vfs.FS
	onFailure func(error)
	logger    *slog.Logger
}

// WithFS makes the log do all its file I/O through fsys (default vfs.Default).
func WithFS(fsys vfs.FS) Option { return func(o *options) { o.fs = fsys } }

// OnFailure registers fn, called once, from whichever goroutine saw it, when the log fails
// (ErrLogFailed: an fsync failed, or a failed write or truncation could not be undone). fn must
// not call back into the log; the partition layer uses it to take the whole log dir offline.
func OnFailure(fn func(err error)) Option { return func(o *options) { o.onFailure = fn } }

// WithLogger sets where recovery reports what it repaired (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// failure is the first error that failed a log.
type failure struct{ err error }

// Config holds the per-partition log settings. Zero values of SegmentBytes,
// SegmentMs, SegmentIndexBytes and the flush intervals mean "default"; the
// others are taken literally (RetentionMs 0 deletes every rolled segment).
type Config struct {
	SegmentBytes          int64 // log.segment.bytes / segment.bytes, default 1 GiB (at most 2 GiB-1)
	SegmentMs             int64 // log.roll.ms / segment.ms, default 7 days
	RetentionMs           int64 // -1: keep forever
	RetentionBytes        int64 // -1: no size limit
	IndexIntervalBytes    int32 // default 4096
	SegmentIndexBytes     int32 // max index file size, default 10 MiB
	FlushIntervalMessages int64 // fsync after this many messages; math.MaxInt64 = never (Kafka default)
	FlushIntervalMs       int64 // fsync when the oldest unflushed data is this old; MaxInt64 = never
	FileDeleteDelayMs     int64 // delay before deleting removed segments, default 60000 (0 ok in tests)

	// Compaction (compact.go). The zero value is Kafka's default cleanup.policy=delete.
	Compact                bool    // cleanup.policy has compact: Clean keeps the latest record per key
	NoDelete               bool    // cleanup.policy lacks delete: retention.ms and retention.bytes do not apply
	DeleteRetentionMs      int64   // delete.retention.ms: how long a tombstone outlives its batch's timestamp
	MinCompactionLagMs     int64   // min.compaction.lag.ms: records younger than this are not compacted
	MaxCompactionLagMs     int64   // max.compaction.lag.ms: dirty records older than this force a clean; 0 = never
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio; 0 = Kafka's 0.5
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:          1 << 30,
		SegmentMs:             7 * 24 * 3600 * 1000,
		RetentionMs:           7 * 24 * 3600 * 1000,
		RetentionBytes:        -1,
		IndexIntervalBytes:    4096,
		SegmentIndexBytes:     10 << 20,
		FlushIntervalMessages: math.MaxInt64,
		FlushIntervalMs:       math.MaxInt64,
		FileDeleteDelayMs:     60000,
	}
}

func (c Config) normalized() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.SegmentMs <= 0 {
		c.SegmentMs = d.SegmentMs
	}
	if c.IndexIntervalBytes < 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.SegmentIndexBytes <= 0 {
		c.SegmentIndexBytes = d.SegmentIndexBytes
	}
	c.SegmentIndexBytes = max(c.SegmentIndexBytes, timeEntrySize)
	if c.FlushIntervalMessages <= 0 {
		c.FlushIntervalMessages = d.FlushIntervalMessages
	}
	if c.FlushIntervalMs <= 0 {
		c.FlushIntervalMs = d.FlushIntervalMs
	}
	c.FileDeleteDelayMs = max(c.FileDeleteDelayMs, 0)
	if c.MaxCompactionLagMs <= 0 {
		c.MaxCompactionLagMs = math.MaxInt64
	}
	if c.MinCleanableDirtyRatio <= 0 {
		c.MinCleanableDirtyRatio = 0.5
	}
	c.DeleteRetentionMs = max(c.DeleteRetentionMs, 0)
	return c
}

// Clock is the time source for rolling, retention and flush intervals.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Log is one partition's log. All methods are safe for concurrent use.
type Log struct {
	dir       string
	fs        vfs.FS
	clock     Clock
	managed   bool // OpenManaged: the log dir's marker, not .clean_shutdown, tells a clean shutdown
	onFailure func(error)
	logger    *slog.Logger

	// failed is set once, by fail, when a write or fsync failed in a way the log cannot undo:
	// from then on every mutation returns ErrLogFailed.
	failed atomic.Pointer[failure]

	appendMu sync.Mutex
	// Guarded by appendMu.
	cfg              Config
	unflushedMsgs    int64
	firstUnflushedMs int64 // -1: nothing unflushed
	recoveryPoint    int64 // persisted in recovery-point
	dirDirty         bool  // files created/renamed since the last directory fsync

	mu struct {
		sync.RWMutex
		// INVARIANT: base offsets of segments are strictly increasing and each
		// segment's offsets are below the next segment's base; only the last
		// segment (the active one) is appended to.
		segments    []*segment
		startOffset int64 // INVARIANT: segments[0].base <= startOffset <= endOffset
		endOffset   int64 // next offset to assign == active segment's next
		epochs      []epochEntry
		closed      bool
	}

	cleanMu sync.Mutex
	// Guarded by cleanMu.
	firstDirty int64 // offsets below this were compacted by this process's last pass
	// truncatedTo is the lowest end offset a TruncateTo left since the cleaner last looked
	// (MaxInt64: none); offsets from there on are new data, dirty again (applyTruncation).
	truncatedTo  atomic.Int64
	tombstoneDue int64                   // clock ms from which a tombstone kept by the last pass may go; MaxInt64: none
	swapHook     func(step string) error // tests only: fail a cleaner swap after a step

	truncateHook func(step string) error // tests only, guarded by appendMu: stop TruncateTo after a step

	delMu   sync.Mutex
	pending map[*segment]*time.Timer // segments renamed to .deleted, waiting for FileDeleteDelayMs
}

// Open opens the log in dir, creating dir and an empty log if needed, and
// recovers it: after a clean shutdown (Close wrote .clean_shutdown) it trusts
// the indexes (after sanity checks) and validates only each segment's tail;
// otherwise it validates every batch from the segment holding the recovery
// point on, truncates at the first invalid or torn byte and deletes later
// segments. Missing or damaged index files are rebuilt.
func Open(dir string, cfg Config, clock Clock, opts ...Option) (*Log, error) {
	return open(dir, cfg, clock, false, false, opts)
}

// DirCleanShutdownFile marks a log dir all of whose logs were closed cleanly,
// for logs opened with OpenManaged (Kafka's .kafka_cleanshutdown).
const DirCleanShutdownFile = ".moldau_clean_shutdown"

// OpenManaged is Open for a log whose clean-shutdown state the caller keeps
// for the whole log dir (one DirCleanShutdownFile instead of one marker per
// partition, which costs two fsyncs per partition at every start and stop):
// dirClean says the log was closed cleanly, and Close writes no marker.
func OpenManaged(dir string, cfg Config, clock Clock, dirClean bool, opts ...Option) (*Log, error) {
	return open(dir, cfg, clock, true, dirClean, opts)
}

func open(dir string, cfg Config, clock Clock, managed, dirClean bool, opts []Option) (*Log, error) {
	o := options{fs: vfs.Default, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if clock == nil {
		clock = systemClock{}
	}
	if _, err := o.fs.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// A new partition directory: its entry in the log dir must be durable before anything
		// written into it can be.
		if err := o.fs.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open log %s: %w", dir, err)
		}
		if err := syncDir(o.fs, filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("open log %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	l := &Log{dir: dir, fs: o.fs, clock: clock, cfg: cfg.normalized(), managed: managed, firstUnflushedMs: -1,
		onFailure: o.onFailure, logger: o.logger,
		tombstoneDue: math.MaxInt64, pending: map[*segment]*time.Timer{}}
	l.truncatedTo.Store(math.MaxInt64)
	if err := l.load(dirClean); err != nil {
		for _, s := range l.mu.segments {
			s.close()
		}
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) load(dirClean bool) error {
	if err := finishCleanerSwap(l.fs, l.dir); err != nil {
		return err
	}
	if err := finishTruncation(l.fs, l.dir); err != nil {
		return err
	}
	cleanPath := filepath.Join(l.dir, cleanShutdownFile)
	_, statErr := l.fs.Stat(cleanPath)
	clean := statErr == nil
	if l.managed {
		clean = dirClean
		if statErr == nil { // left by an unmanaged Close: the dir's marker decides
			if err := l.fs.Remove(cleanPath); err != nil {
				return err
			}
		}
	} else if clean {
		// Remove the marker before touching anything: a crash from here on is unclean.
		if err := l.fs.Remove(cleanPath); err != nil {
			return err
		}
		if err := syncDir(l.fs, l.dir); err != nil {
			return err
		}
	}
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name(), ".log"); ok && e.Type().IsRegular() {
			logs[base] = true
			bases = append(bases, base)
		}
	}
	for _, e := range entries {
		name := e.Name()
		orphan := false
		for _, ext := range []string{".index", ".timeindex", txnIndexExt} {
			if base, ok := parseSegmentName(name, ext); ok && !logs[base] {
				orphan = true
			}
		}
		if orphan || strings.HasSuffix(name, deletedSuffix) || strings.HasSuffix(name, tmpSuffix) ||
			strings.HasSuffix(name, cleanedSuffix) {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	if l.mu.epochs, err = loadEpochs(l.fs, l.dir); err != nil {
		return err
	}
	start, _, startErr := readOffsetFile(l.fs, l.dir, logStartOffsetFile)
	if startErr != nil {
		// Reading it as 0 would bring deleted records back. What else says where the log
		// starts: nothing exists below the first segment's base offset, and the first entry of
		// the leader-epoch checkpoint was moved up to the start offset whenever the start
		// moved into its range (truncateEpochsFromStart; a partition records its epoch before
		// its first append). The larger of the two is used, and written back below.
		start = 0
		if len(bases) > 0 {
			start = bases[0]
		}
		if len(l.mu.epochs) > 0 {
			start = max(start, l.mu.epochs[0].start)
		}
		l.logger.Error("log start offset unreadable: recovered it from the segments and the leader-epoch checkpoint",
			"dir", l.dir, "err", startErr, "log_start_offset", start)
	}
	recoveryPoint, _, rpErr := readOffsetFile(l.fs, l.dir, recoveryPointFile) // missing: recover everything
	if rpErr != nil {
		l.logger.Warn("recovery point unreadable: validating every segment", "dir", l.dir, "err", rpErr)
		recoveryPoint = 0
	}

	interval := l.cfg.IndexIntervalBytes
	anyTruncated := false
	var segs []*segment
	for i, base := range bases {
		s, err := openSegment(l.fs, l.dir, base, false)
		if err != nil {
			return err
		}
		if n := len(segs); n > 0 && base < segs[n-1].next {
			// Overlaps its predecessor: this and all later segments go.
			s.close()
			if err := removeSegmentFiles(l.fs, l.dir, bases[i:]); err != nil {
				return err
			}
			break
		}
		segs = append(segs, s)
		l.mu.segments = segs // so Open's error path closes them
		unflushed := i == len(bases)-1 || bases[i+1] > recoveryPoint
		if (clean || !unflushed) && s.load(interval) {
			if !s.loadTxnIndex() {
				l.logger.Warn("aborted-transaction index unreadable: the partition replays the log to rebuild it", "file", s.path(txnIndexExt))
			}
			continue
		}
		truncated, err := s.recover(interval)
		if err != nil {
			return err
		}
		if !s.loadTxnIndex() {
			l.logger.Warn("aborted-transaction index unreadable: the partition replays the log to rebuild it", "file", s.path(txnIndexExt))
		}
		anyTruncated = anyTruncated || truncated
		if truncated && i+1 < len(bases) {
			if err := removeSegmentFiles(l.fs, l.dir, bases[i+1:]); err != nil {
				return err
			}
			break
		}
		if i+1 < len(bases) {
			// A sealed segment: Close writes only the active segment's indexes.
			if err := s.writeIndexes(); err != nil {
				return err
			}
			l.dirDirty = true
		}
	}
	if len(segs) > 0 {
		if end := segs[len(segs)-1].next; start > end {
			// Everything below the persisted start offset is gone: start over there (and
			// drop the epochs of that data, below).
			for _, s := range segs {
				s.close()
			}
			if err := removeSegmentFiles(l.fs, l.dir, bases[:len(segs)]); err != nil {
				return err
			}
			segs = nil
		}
	}
	if len(segs) == 0 {
		// No data at all: the epochs cached below the start describe data that is gone.
		kept := slices.DeleteFunc(slices.Clone(l.mu.epochs), func(e epochEntry) bool { return e.start < start })
		if len(kept) != len(l.mu.epochs) {
			l.mu.epochs = kept
			if err := writeEpochs(l.fs, l.dir, kept); err != nil {
				return err
			}
		}
		s, err := openSegment(l.fs, l.dir, start, true)
		if err != nil {
			return err
		}
		segs = []*segment{s}
		l.dirDirty = true
	}
	active := segs[len(segs)-1]
	if active.size > 0 {
		active.firstAppendMs = l.clock.Now().UnixMilli()
	}
	l.mu.segments = segs
	l.mu.startOffset = max(start, segs[0].base)
	l.mu.endOffset = active.next
	l.recoveryPoint = min(recoveryPoint, l.mu.endOffset)
	// Entries past the recovered end go. One starting exactly at the end (an epoch that began
	// with no data yet, as every empty partition's) stays: dropping it would only have the
	// partition write it back when it becomes leader, two fsyncs per partition per start.
	if e, changed := truncateEpochsFromEnd(l.mu.epochs, l.mu.endOffset+1); changed {
		l.mu.epochs = e
		if err := writeEpochs(l.fs, l.dir, e); err != nil {
			return err
		}
	}
	if e, changed := truncateEpochsFromStart(l.mu.epochs, l.mu.startOffset); changed {
		l.mu.epochs = e
		if err := writeEpochs(l.fs, l.dir, e); err != nil {
			return err
		}
	}
	if startErr != nil {
		if err := writeOffsetFile(l.fs, l.dir, logStartOffsetFile, l.mu.startOffset); err != nil {
			return err
		}
	}
	// A truncation must be durable before anything is appended after it; otherwise nothing is
	// synced here (recovered segments stay dirty, and the recovery point moves at the next
	// flush), which keeps a restart with thousands of partitions free of fsyncs.
	if anyTruncated {
		return l.flushLocked()
	}
	return nil
}

func removeSegmentFiles(fsys vfs.FS, dir string, bases []int64) error {
	for _, base := range bases {
		for _, ext := range []string{".log", ".index", ".timeindex", txnIndexExt} {
			if err := fsys.Remove(filepath.Join(dir, segmentName(base, ext))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// SetConfig applies dynamic topic config changes; they take effect on the
// next append or retention pass.
func (l *Log) SetConfig(cfg Config) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.cfg = cfg.normalized()
}

// AppendResult describes an appended batch.
type AppendResult struct {
	BaseOffset, LastOffset int64
	LogAppendTime          int64 // -1 unless stamped
	FirstPosition          int64 // byte position of the batch in its segment
}

// Append writes ONE batch (the caller validated it with record.Validate) with
// one write syscall, assigning BaseOffset = LogEndOffset and the leader epoch
// in place; if logAppendTime >= 0 it stamps it (record.SetLogAppendTime).
// A leaderEpoch >= 0 above the latest cached epoch starts a new epoch at
// this batch.
//
// INVARIANT: offsets are contiguous and strictly increasing. A failed write
// is truncated back; if that fails too the log is marked failed and refuses
// further appends.
func (l *Log) Append(batch []byte, leaderEpoch int32, logAppendTime int64) (AppendResult, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	h, err := l.checkAppendLocked(batch)
	if err != nil {
		return AppendResult{}, err
	}
	return l.appendLocked(batch, h, l.mu.endOffset, leaderEpoch, logAppendTime, false)
}

// ErrNotLogEnd is returned by AppendReplica for a batch whose base offset is not the log end
// offset: the follower and its leader disagree on where the log ends.
var ErrNotLogEnd = errors.New("replicated batch does not start at the log end offset")

// AppendReplica writes ONE batch a follower fetched from its leader (the caller validated it,
// CRC included) as it is: its base offset, which must equal LogEndOffset (else ErrNotLogEnd),
// its partition leader epoch and its timestamps are kept, the bytes are not rewritten. A
// partition leader epoch above the latest cached epoch starts that epoch at this batch in the
// leader-epoch cache, before the batch is written. Durability (the flush policy), rolling and
// indexing are Append's.
//
// INVARIANT: offsets are contiguous and strictly increasing, as for Append.
func (l *Log) AppendReplica(batch []byte) (AppendResult, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	h, err := l.checkAppendLocked(batch)
	if err != nil {
		return AppendResult{}, err
	}
	if h.BaseOffset != l.mu.endOffset {
		return AppendResult{}, fmt.Errorf("append replica batch at offset %d, log end offset is %d: %w",
			h.BaseOffset, l.mu.endOffset, ErrNotLogEnd)
	}
	return l.appendLocked(batch, h, h.BaseOffset, h.PartitionLeaderEpoch, -1, true)
}

// writableLocked is the error a write (op names it) gets from a closed or failed log, nil when
// the log takes writes. REQUIRES: appendMu held.
func (l *Log) writableLocked(op string) error {
	if l.mu.closed {
		return ErrLogClosed
	}
	if f := l.failed.Load(); f != nil {
		return fmt.Errorf("%s: %w earlier: %w", op, ErrLogFailed, f.err)
	}
	return nil
}

// checkAppendLocked refuses an append to a closed or failed log and a batch whose framing does
// not hold. REQUIRES: appendMu held.
func (l *Log) checkAppendLocked(batch []byte) (record.BatchHeader, error) {
	if err := l.writableLocked("append"); err != nil {
		return record.BatchHeader{}, err
	}
	h, err := record.ParseHeader(batch)
	if err != nil {
		return h, fmt.Errorf("append: %w", err)
	}
	if h.Size() != len(batch) || h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("append: batch of %d bytes, length field %d, lastOffsetDelta %d: %w",
			len(batch), h.Length, h.LastOffsetDelta, record.ErrCorrupt)
	}
	return h, nil
}

// appendLocked writes batch at base (the log end offset). A leader append (replica false)
// rewrites the base offset, the leader epoch and, when logAppendTime >= 0, the timestamp; a
// replica append writes the bytes as they are. REQUIRES: appendMu held; base == endOffset.
func (l *Log) appendLocked(batch []byte, h record.BatchHeader, base int64, leaderEpoch int32, logAppendTime int64, replica bool) (AppendResult, error) {
	var err error
	nowMs := l.clock.Now().UnixMilli()
	if base > math.MaxInt64-1-int64(h.LastOffsetDelta) {
		return AppendResult{}, fmt.Errorf("append: offset overflow: %w", record.ErrCorrupt)
	}
	last := base + int64(h.LastOffsetDelta)
	s := l.mu.segments[len(l.mu.segments)-1]
	if l.shouldRoll(s, int64(len(batch)), last, nowMs) {
		if s, err = l.rollLocked(); err != nil {
			return AppendResult{}, l.checkLocked(fmt.Errorf("append: %w", err))
		}
	}
	// A new epoch is recorded before its first batch is written: a failure leaves nothing
	// appended.
	if leaderEpoch >= 0 && leaderEpoch > l.latestEpochLocked() {
		if err := l.assignEpochLocked(leaderEpoch, base); err != nil {
			return AppendResult{}, l.checkLocked(fmt.Errorf("append: %w", err))
		}
	}

	maxTs, stamped := h.MaxTimestamp, int64(-1)
	if !replica {
		record.SetBaseOffset(batch, base)
		record.SetPartitionLeaderEpoch(batch, leaderEpoch)
	}
	if !replica && logAppendTime >= 0 {
		record.SetLogAppendTime(batch, logAppendTime)
		maxTs, stamped = logAppendTime, logAppendTime
	}
	pos := s.size
	if _, err := s.log.WriteAt(batch, pos); err != nil {
		// Nothing past pos is part of the log: cut it off, and the log is as it was (a full
		// disk can take appends again once space is freed). If the cut fails, the file holds
		// bytes the log does not know: fail.
		if terr := s.log.Truncate(pos); terr != nil {
			return AppendResult{}, l.fail(fmt.Errorf("write %s: %w; truncate back to %d: %v", s.log.Name(), err, pos, terr))
		}
		return AppendResult{}, l.checkLocked(fmt.Errorf("append to %s: %w", s.log.Name(), err))
	}
	s.dirty = true

	l.mu.Lock()
	s.indexBatch(pos, int64(len(batch)), last, maxTs, l.cfg.IndexIntervalBytes)
	l.mu.endOffset = last + 1
	l.mu.Unlock()
	if s.firstAppendMs < 0 {
		s.firstAppendMs = nowMs
	}

	l.unflushedMsgs += int64(h.NumRecords)
	if l.firstUnflushedMs < 0 {
		l.firstUnflushedMs = nowMs
	}
	if l.unflushedMsgs >= l.cfg.FlushIntervalMessages || nowMs-l.firstUnflushedMs >= l.cfg.FlushIntervalMs {
		if err := l.flushLocked(); err != nil {
			return AppendResult{}, l.checkLocked(fmt.Errorf("append: %w", err))
		}
	}
	return AppendResult{BaseOffset: base, LastOffset: last, LogAppendTime: stamped, FirstPosition: pos}, nil
}

// shouldRoll reports whether a batch must go to a new segment.
// REQUIRES: appendMu held.
func (l *Log) shouldRoll(s *segment, size, last, nowMs int64) bool {
	if s.size == 0 {
		return false
	}
	return s.size+size > l.cfg.SegmentBytes ||
		nowMs-s.firstAppendMs >= l.cfg.SegmentMs ||
		int64(len(s.offIndex)+offsetEntrySize) > int64(l.cfg.SegmentIndexBytes) ||
		int64(len(s.timeIndex)+timeEntrySize) > int64(l.cfg.SegmentIndexBytes) ||
		last-s.base > math.MaxInt32
}

// rollLocked seals the active segment (final time index entry) and starts a
// new one at the log end offset. REQUIRES: appendMu held; the active segment
// is not empty.
func (l *Log) rollLocked() (*segment, error) {
	old := l.mu.segments[len(l.mu.segments)-1]
	l.mu.Lock()
	old.maybeAppendTime()
	l.mu.Unlock()
	if err := old.writeIndexes(); err != nil {
		return nil, fmt.Errorf("roll: %w", err)
	}
	s, err := openSegment(l.fs, l.dir, l.mu.endOffset, true)
	if err != nil {
		return nil, fmt.Errorf("roll: %w", err)
	}
	l.dirDirty = true
	l.mu.Lock()
	l.mu.segments = append(l.mu.segments, s)
	l.mu.Unlock()
	return s, nil
}

// Flush fsyncs every segment written since the last flush, the directory
// if files were created, and persists the recovery point.
func (l *Log) Flush() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writableLocked("flush"); err != nil {
		return err
	}
	return l.checkLocked(l.flushLocked())
}

// flushLocked: REQUIRES appendMu held. A failed fsync fails the log (the
// caller's checkLocked).
func (l *Log) flushLocked() error {
	for _, s := range l.mu.segments {
		if s.dirty {
			if err := s.sync(); err != nil {
				return err
			}
		}
	}
	if l.dirDirty {
		if err := syncDir(l.fs, l.dir); err != nil {
			return err
		}
		l.dirDirty = false
	}
	l.unflushedMsgs, l.firstUnflushedMs = 0, -1
	if end := l.mu.endOffset; end != l.recoveryPoint {
		if err := writeOffsetFile(l.fs, l.dir, recoveryPointFile, end); err != nil {
			return err
		}
		l.recoveryPoint = end
	}
	return nil
}

// fail marks the log failed with err (the first failure stays), tells the
// owner (OnFailure) and returns err wrapped with ErrLogFailed. Safe without
// locks.
func (l *Log) fail(err error) error {
	if l.failed.CompareAndSwap(nil, &failure{err: err}) && l.onFailure != nil {
		l.onFailure(fmt.Errorf("log %s: %w", l.dir, err))
	}
	return fmt.Errorf("%w: %w", ErrLogFailed, err)
}

// checkLocked fails the log if err comes from an fsync (after which what is
// on disk is unknown) or is an I/O error (EIO) from any operation, and
// returns err. Other errors, a full disk (ENOSPC) refusing a write that was
// undone among them, leave the log usable.
func (l *Log) checkLocked(err error) error {
	if err != nil && (isSyncError(err) || errors.Is(err, syscall.EIO)) && !errors.Is(err, ErrLogFailed) {
		return l.fail(err)
	}
	return err
}

// Failed returns why the log refuses writes, or nil.
func (l *Log) Failed() error {
	if f := l.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// Section is a byte range of a segment file holding whole batches.
//
// Lifetime: a section's File stays open and its bytes unchanged until the
// segment is removed from the log (retention, DeleteRecordsBefore, Delete,
// Close); removed segments are closed FileDeleteDelayMs later. A caller that
// uses a section after that (only possible if it holds it longer than
// FileDeleteDelayMs, or with a 0 delay) gets an error from the read or
// sendfile, never wrong bytes, and should treat it as a retriable read error.
//
// On a filesystem without OS files (vfs.NewMem, vfs.NewFaultFS: tests), File
// is nil and Data holds the section's bytes, read when the section was made.
type Section struct {
	File     *os.File
	Data     []byte
	Pos, Len int64
}

// ReadResult holds the batches returned by Read.
type ReadResult struct {
	Data []byte // whole batches, starting at the batch that contains `offset`
}

// Read returns whole batches starting at the batch containing offset, up to
// maxBytes, never including a batch whose base offset is >= maxOffset (the
// high watermark or LSO). If the first batch is larger than maxBytes it is
// still returned whole when minOneBatch (Kafka's KIP-74 rule).
// Offset < LogStartOffset or > LogEndOffset: ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) (ReadResult, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	secs, err := l.sectionsLocked(offset, maxBytes, maxOffset, minOneBatch)
	if err != nil || len(secs) == 0 {
		return ReadResult{}, err
	}
	total := int64(0)
	for _, s := range secs {
		total += s.Len
	}
	data := make([]byte, total)
	at := int64(0)
	for _, s := range secs {
		if s.File == nil {
			copy(data[at:], s.Data)
		} else if _, err := s.File.ReadAt(data[at:at+s.Len], s.Pos); err != nil {
			return ReadResult{}, fmt.Errorf("read %s at %d: %w", s.File.Name(), s.Pos, err)
		}
		at += s.Len
	}
	return ReadResult{Data: data}, nil
}

// ReadSections is Read returning file sections instead of bytes (for
// sendfile); see Section for how long they stay valid.
func (l *Log) ReadSections(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) ([]Section, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.sectionsLocked(offset, maxBytes, maxOffset, minOneBatch)
}

// sectionsLocked is sectionsEndLocked without the end offset.
func (l *Log) sectionsLocked(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) ([]Section, error) {
	secs, _, err := l.sectionsEndLocked(offset, maxBytes, maxOffset, minOneBatch)
	return secs, err
}

// segmentFor returns the index of the segment that may hold offset.
// REQUIRES: mu held.
func (l *Log) segmentFor(offset int64) int {
	segs := l.mu.segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset })
	return max(i-1, 0)
}

// sectionsEndLocked reads the sections and answers the offset after the last batch in them
// (offset when there is none). REQUIRES mu held (either mode).
func (l *Log) sectionsEndLocked(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) ([]Section, int64, error) {
	if l.mu.closed {
		return nil, offset, ErrLogClosed
	}
	if offset < l.mu.startOffset || offset > l.mu.endOffset {
		return nil, offset, fmt.Errorf("read offset %d, log has [%d, %d): %w", offset, l.mu.startOffset, l.mu.endOffset, ErrOffsetOutOfRange)
	}
	end := offset
	var out []Section
	var hdr [record.HeaderSize]byte
	remaining := int64(maxBytes)
	found := false
	for i := l.segmentFor(offset); i < len(l.mu.segments); i++ {
		s := l.mu.segments[i]
		pos := int64(0)
		if !found {
			pos = s.lookup(offset)
		}
		sec := Section{File: s.osLog, Pos: -1}
		done := false
		for pos < s.size {
			h, err := readHeader(s.log, pos, s.size, &hdr)
			if err != nil {
				return nil, offset, err
			}
			size := int64(h.Size())
			if !found && h.LastOffset() < offset {
				pos += size
				continue
			}
			if h.BaseOffset >= maxOffset {
				done = true
				break
			}
			if size > remaining && !(len(out) == 0 && sec.Len == 0 && minOneBatch) {
				done = true
				break
			}
			found = true
			if sec.Pos < 0 {
				sec.Pos = pos
			}
			sec.Len += size
			remaining -= size
			end = h.LastOffset() + 1
			pos += size
		}
		if sec.Len > 0 {
			if sec.File == nil {
				sec.Data = make([]byte, sec.Len)
				if _, err := s.log.ReadAt(sec.Data, sec.Pos); err != nil {
					return nil, offset, fmt.Errorf("read %s at %d: %w", s.log.Name(), sec.Pos, err)
				}
			}
			out = append(out, sec)
		}
		if done {
			break
		}
	}
	return out, end, nil
}

// ScanHeaders calls fn for each batch header with base offset >= from, in
// order. fn must not call back into the Log (the read lock is held).
func (l *Log) ScanHeaders(from int64, fn func(h record.BatchHeader) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return ErrLogClosed
	}
	var hdr [record.HeaderSize]byte
	for i := l.segmentFor(from); i < len(l.mu.segments); i++ {
		s := l.mu.segments[i]
		for pos := s.lookup(from); pos < s.size; {
			h, err := readHeader(s.log, pos, s.size, &hdr)
			if err != nil {
				return err
			}
			pos += int64(h.Size())
			if h.BaseOffset >= from {
				if err := fn(h); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// LogStartOffset is the first offset readers may fetch.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.startOffset
}

// LogEndOffset is the next offset to assign.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.endOffset
}

// Size is the number of bytes of all segments' .log files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := int64(0)
	for _, s := range l.mu.segments {
		n += s.size
	}
	return n
}

// NumSegments is the number of segments (for tests and metrics).
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.mu.segments)
}

// OffsetForTimestamp returns the first offset >= LogStartOffset whose record
// timestamp is >= ts, with that timestamp; ok is false if there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, 0, false, ErrLogClosed
	}
	start := l.mu.startOffset
	var hdr [record.HeaderSize]byte
	for i := l.segmentFor(start); i < len(l.mu.segments); i++ {
		s := l.mu.segments[i]
		if s.maxTs < ts {
			continue
		}
		for pos := max(s.lookupTime(ts), s.lookup(start)); pos < s.size; {
			h, err := readHeader(s.log, pos, s.size, &hdr)
			if err != nil {
				return 0, 0, false, err
			}
			if h.LastOffset() >= start && h.MaxTimestamp >= ts {
				off, rts, found, err := findInBatch(s.log, pos, h.Size(), func(o, t int64) bool { return o >= start && t >= ts })
				if err != nil || found {
					return off, rts, found, err
				}
			}
			pos += int64(h.Size())
		}
	}
	return 0, 0, false, nil
}

// findInBatch decodes the batch at pos and returns the first record matching.
func findInBatch(f vfs.File, pos int64, size int, match func(offset, ts int64) bool) (int64, int64, bool, error) {
	b := make([]byte, size)
	if _, err := f.ReadAt(b, pos); err != nil {
		return 0, 0, false, fmt.Errorf("read %s at %d: %w", f.Name(), pos, err)
	}
	h, recs, err := record.Records(b)
	if err != nil {
		return 0, 0, false, fmt.Errorf("decode %s at %d: %w", f.Name(), pos, err)
	}
	for _, r := range recs {
		if o, t := h.BaseOffset+int64(r.OffsetDelta), h.Timestamp(r); match(o, t) {
			return o, t, true, nil
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the (first) record with
// the largest timestamp (ListOffsets -3); -1, -1 for an empty log.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return 0, 0, ErrLogClosed
	}
	var best *segment
	for _, s := range l.mu.segments {
		if s.maxTs >= 0 && s.maxTsOffset >= l.mu.startOffset && (best == nil || s.maxTs > best.maxTs) {
			best = s
		}
	}
	if best == nil {
		return -1, -1, nil
	}
	var hdr [record.HeaderSize]byte
	for pos := best.lookup(best.maxTsOffset); pos < best.size; {
		h, err := readHeader(best.log, pos, best.size, &hdr)
		if err != nil {
			return 0, 0, err
		}
		if h.LastOffset() >= best.maxTsOffset {
			off, ts, found, err := findInBatch(best.log, pos, h.Size(), func(_, t int64) bool { return t == best.maxTs })
			if err != nil || !found {
				return best.maxTsOffset, best.maxTs, err
			}
			return off, ts, nil
		}
		pos += int64(h.Size())
	}
	return best.maxTsOffset, best.maxTs, nil
}

// Close flushes, seals the active segment's time index, writes the
// clean-shutdown marker and closes every file. Segments waiting for deletion
// are deleted now.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed {
		return nil
	}
	var errs []error
	active := l.mu.segments[len(l.mu.segments)-1]
	l.mu.Lock()
	active.maybeAppendTime()
	l.mu.Unlock()
	if active.idxStale && l.failed.Load() == nil {
		if err := l.checkLocked(active.writeIndexes()); err != nil {
			errs = append(errs, err)
		}
		l.dirDirty = true
	}
	if l.failed.Load() == nil {
		if err := l.checkLocked(l.persistTxnIndexesLocked()); err != nil {
			errs = append(errs, err)
		}
	}
	if f := l.failed.Load(); f != nil {
		// Nothing written since the failure can be trusted to be on disk: no flush, and the
		// error keeps the log dir from being marked clean.
		errs = append(errs, fmt.Errorf("%w: %w", ErrLogFailed, f.err))
	} else if err := l.checkLocked(l.flushLocked()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 && l.failed.Load() == nil && !l.managed {
		if err := l.checkLocked(writeFileAtomic(l.fs, l.dir, cleanShutdownFile, nil)); err != nil {
			errs = append(errs, err)
		}
	}
	l.mu.Lock()
	l.mu.closed = true
	for _, s := range l.mu.segments {
		errs = append(errs, s.close())
	}
	l.mu.Unlock()
	l.finishPendingDeletes()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close log %s: %w", l.dir, err)
	}
	return nil
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	cerr := l.Close()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("delete log %s: %w", l.dir, err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
		return cerr
	}
	return nil
}
