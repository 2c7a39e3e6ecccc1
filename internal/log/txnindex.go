package log

// The aborted-transaction index: per segment, the transactions whose abort marker is in that
// segment (Kafka's TransactionIndex), so that a read_committed fetch can tell the client which
// producers' records of the range it reads to drop (UnifiedLog.collectAbortedTransactions).
//
// INVARIANT: a segment's entries are in marker order (strictly increasing LastOffset), and each
// entry's LastOffset is an offset of that segment, so entries go with their segment when it is
// deleted and are cut with it when it is truncated.
//
// # Files
//
// NNNNNNNNNNNNNNNNNNNN.txnindex holds a segment's entries in Kafka's format (abortedTxnSize
// bytes each), only for a segment that has some (a cleaned segment's is always written, maybe
// empty, see swapCleaned). Like the other indexes it is kept in memory and written whole
// (temp file, fsync, rename) when the segment is sealed by a roll, at Close, after recovery,
// and by PersistTxnIndexes, which the partition calls before every producer snapshot.
//
// Crash safety. An entry is derived from the producer state (its first offset), which the log
// does not have, so the log never rebuilds entries itself: the partition's producer-state
// replay after a restart re-adds (idempotently) the entries of every marker it replays, from its
// snapshot's offset on. What makes that complete: every entry of a marker below a snapshot's
// offset is in its segment's file before the snapshot is written (PersistTxnIndexes, and a
// roll seals a segment's file before the snapshot at the roll; the snapshot's directory fsync
// makes the renames durable); without a usable snapshot the replay starts at the log start. A
// file that cannot be read is reported (TxnIndexLostFrom) and left in place; the partition then
// replays from the log start and PersistTxnIndexes writes it again. Retention, DeleteRecords,
// truncation and log-dir moves move or delete the file with its segment's; a truncation
// rewrites its cut segment's (also when finished after a crash, finishTruncation), and the
// cleaner's swap installs the output's with the output's indexes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// AbortedTxn is one aborted transaction of a partition, as Kafka's transaction index has it.
type AbortedTxn struct {
	ProducerID int64
	// FirstOffset is the offset of the transaction's first batch on this partition.
	FirstOffset int64
	// LastOffset is the offset of its abort marker.
	LastOffset int64
	// LastStableOffset is the partition's last stable offset once the marker was appended (the
	// first offset of the next transaction still open, or the marker's offset + 1 when none was):
	// a search of [from, upTo) is complete at the first entry whose LastStableOffset >= upTo.
	LastStableOffset int64
}

// abortedTxnSize is an entry's size in a .txnindex file: version int16 (0), producer id,
// first offset, last offset, last stable offset (int64s), big-endian, as Kafka writes it.
const abortedTxnSize = 2 + 8 + 8 + 8 + 8

func appendAbortedTxn(b []byte, t AbortedTxn) []byte {
	be := binary.BigEndian
	b = be.AppendUint16(b, 0)
	b = be.AppendUint64(b, uint64(t.ProducerID))
	b = be.AppendUint64(b, uint64(t.FirstOffset))
	b = be.AppendUint64(b, uint64(t.LastOffset))
	return be.AppendUint64(b, uint64(t.LastStableOffset))
}

// decodeTxnIndex decodes a .txnindex file. A torn last entry is dropped (an entry is whole or
// not there); an entry of an unknown version, or out of order, is an error.
func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	be := binary.BigEndian
	var out []AbortedTxn
	for len(b) >= abortedTxnSize {
		if v := be.Uint16(b); v != 0 {
			return nil, fmt.Errorf("txn index entry %d: version %d", len(out), v)
		}
		t := AbortedTxn{
			ProducerID:       int64(be.Uint64(b[2:])),
			FirstOffset:      int64(be.Uint64(b[10:])),
			LastOffset:       int64(be.Uint64(b[18:])),
			LastStableOffset: int64(be.Uint64(b[26:])),
		}
		if t.FirstOffset > t.LastOffset || (len(out) > 0 && t.LastOffset <= out[len(out)-1].LastOffset) {
			return nil, fmt.Errorf("txn index entry %d: offsets [%d, %d] out of order", len(out), t.FirstOffset, t.LastOffset)
		}
		out = append(out, t)
		b = b[abortedTxnSize:]
	}
	return out, nil
}

// txnIndexExt is the extension of a segment's aborted-transaction index.
const txnIndexExt = ".txnindex"

func encodeTxnIndex(ts []AbortedTxn) []byte {
	b := make([]byte, 0, len(ts)*abortedTxnSize)
	for _, t := range ts {
		b = appendAbortedTxn(b, t)
	}
	return b
}

// writeTxnIndex writes the segment's .txnindex from memory (temp file, fsync, rename; no
// directory fsync), or removes it when the segment has no entry (a cleaner's output always
// writes one, see swapCleaned). A segment whose file could not be read is left alone until its
// entries were replayed (txnLost). REQUIRES: the appender's lock, or the segment not yet
// published.
func (s *segment) writeTxnIndex() error {
	if s.txnLost {
		return nil
	}
	path := s.path(txnIndexExt) + s.idxSuffix
	if len(s.aborted) == 0 && s.idxSuffix == "" {
		if s.hasTxnFile {
			if err := s.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			s.hasTxnFile = false
		}
		s.txnStale = false
		return nil
	}
	if err := writeFileAtomicNoDirSync(s.fs, path, encodeTxnIndex(s.aborted)); err != nil {
		return err
	}
	s.hasTxnFile, s.txnStale = true, false
	return nil
}

// loadTxnIndex reads the segment's .txnindex, keeping the entries whose marker is in the
// segment as recovered (a crash or a truncation may have cut it). It reports false when the file
// is there but cannot be read: the segment is marked txnLost and its file kept.
func (s *segment) loadTxnIndex() bool {
	path := s.path(txnIndexExt) + s.idxSuffix
	b, err := vfs.ReadFile(s.fs, path)
	s.aborted, s.txnStale, s.txnLost = nil, false, false
	if errors.Is(err, fs.ErrNotExist) {
		s.hasTxnFile = false
		return true
	}
	s.hasTxnFile = true
	var entries []AbortedTxn
	if err == nil {
		entries, err = decodeTxnIndex(b)
	}
	if err != nil {
		s.txnLost = true
		return false
	}
	n := len(entries)
	for n > 0 && entries[n-1].LastOffset >= s.next {
		n--
	}
	lo := 0
	for lo < n && entries[lo].LastOffset < s.base {
		lo++
	}
	s.aborted = entries[lo:n]
	s.txnStale = n != len(entries) || lo > 0 || len(b)%abortedTxnSize != 0
	return true
}

// TxnIndexLostFrom is the base offset of the first segment whose .txnindex could not be read at
// Open (math.MaxInt64: none): its entries must be replayed from the log start, then
// PersistTxnIndexes writes them.
func (l *Log) TxnIndexLostFrom() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, s := range l.mu.segments {
		if s.txnLost {
			return s.base
		}
	}
	return math.MaxInt64
}

// PersistTxnIndexes writes the .txnindex of every segment whose entries changed since its file
// was written (and of those whose file was lost: the caller replayed their entries). The
// partition calls it before writing a producer snapshot, so that every entry of a marker below
// the snapshot's offset is on disk when the snapshot is.
func (l *Log) PersistTxnIndexes() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.writableLocked("persist txn indexes"); err != nil {
		return err
	}
	return l.checkLocked(l.persistTxnIndexesLocked())
}

// persistTxnIndexesLocked: REQUIRES appendMu held.
func (l *Log) persistTxnIndexesLocked() error {
	for _, s := range l.mu.segments {
		if s.txnLost {
			s.txnLost, s.txnStale = false, true
		}
		if s.txnStale {
			if err := s.writeTxnIndex(); err != nil {
				return err
			}
			l.dirDirty = true
		}
	}
	return nil
}

// trimTxnIndexFile rewrites the .txnindex of segment base in dir without the entries whose
// marker is at or past offset (a truncation finished after a crash); no file, nothing to do.
func trimTxnIndexFile(fsys vfs.FS, dir string, base, offset int64) error {
	path := filepath.Join(dir, segmentName(base, txnIndexExt))
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries, err := decodeTxnIndex(b)
	if err != nil {
		return nil // unreadable: Open reports it (TxnIndexLostFrom) and the partition replays
	}
	n := len(entries)
	for n > 0 && entries[n-1].LastOffset >= offset {
		n--
	}
	if n == len(entries) {
		return nil
	}
	if n == 0 {
		return fsys.Remove(path)
	}
	return writeFileAtomicNoDirSync(fsys, path, encodeTxnIndex(entries[:n]))
}

// renameTxnIndex renames segment s's .txnindex (if it has one) to its name + suffix.
func renameTxnIndex(s *segment, from, to string) error {
	err := s.fs.Rename(s.path(txnIndexExt)+from, s.path(txnIndexExt)+to)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// AppendAbortedTxn records an aborted transaction in the index of the segment holding its
// marker (t.LastOffset). It is idempotent: an entry whose marker is not past the segment's last
// entry is already there (a replay of the log after a restart adds what the index lacks) and is
// ignored, as is a marker outside the log. The caller (the partition) serializes it with its
// appends.
func (l *Log) AppendAbortedTxn(t AbortedTxn) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.mu.closed {
		return ErrLogClosed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.LastOffset < l.mu.segments[0].base || t.LastOffset >= l.mu.endOffset {
		return nil
	}
	s := l.mu.segments[l.segmentFor(t.LastOffset)]
	if n := len(s.aborted); n > 0 && s.aborted[n-1].LastOffset >= t.LastOffset {
		return nil
	}
	s.aborted = append(s.aborted, t)
	s.txnStale = true
	return nil
}

// AbortedTxns answers Kafka's collectAbortedTransactions for a read of [from, upTo): the
// aborted transactions with a marker at or after from and a first offset below upTo, in marker
// order, from the segment holding from on, stopping at the first entry whose last stable offset
// reaches upTo (nothing later can start below upTo).
func (l *Log) AbortedTxns(from, upTo int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.abortedTxnsLocked(from, upTo)
}

// abortedTxnsLocked: REQUIRES mu held (either mode).
func (l *Log) abortedTxnsLocked(from, upTo int64) []AbortedTxn {
	var out []AbortedTxn
	if l.mu.closed {
		return nil
	}
	for i := l.segmentFor(from); i < len(l.mu.segments); i++ {
		for _, t := range l.mu.segments[i].aborted {
			if t.LastOffset >= from && t.FirstOffset < upTo {
				out = append(out, t)
			}
			if t.LastStableOffset >= upTo {
				return out
			}
		}
	}
	return out
}

// ReadSectionsUpTo is ReadSections that also answers the offset after the last batch read (from
// when nothing was) and the aborted transactions of [from, that offset), read under one lock so
// the two agree (a read_committed fetch).
func (l *Log) ReadSectionsUpTo(offset int64, maxBytes int32, maxOffset int64, minOneBatch bool) ([]Section, int64, []AbortedTxn, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	secs, end, err := l.sectionsEndLocked(offset, maxBytes, maxOffset, minOneBatch)
	if err != nil {
		return nil, offset, nil, err
	}
	return secs, end, l.abortedTxnsLocked(offset, end), nil
}

// truncateAbortedLocked drops the entries whose marker is at or past end from segment s (a
// truncation). REQUIRES: appendMu and mu held for writing.
func (s *segment) truncateAborted(end int64) {
	n := len(s.aborted)
	for n > 0 && s.aborted[n-1].LastOffset >= end {
		n--
	}
	if n != len(s.aborted) {
		s.aborted = s.aborted[:n]
		s.txnStale = true
	}
}

// maxControlBatch bounds the control batches ScanBatches reads whole: a transaction marker is
// about 80 bytes; a larger control batch is passed without its bytes.
const maxControlBatch = 64 << 10

// ScanBatches is ScanHeaders that also passes the bytes of each control batch (transaction
// markers: the producer-state replay needs to know commit from abort); data batches come with
// nil. fn must not call back into the Log (the read lock is held) nor keep the bytes.
func (l *Log) ScanBatches(from int64, fn func(h record.BatchHeader, control []byte) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.mu.closed {
		return ErrLogClosed
	}
	var hdr [record.HeaderSize]byte
	var buf []byte
	for i := l.segmentFor(from); i < len(l.mu.segments); i++ {
		s := l.mu.segments[i]
		for pos := s.lookup(from); pos < s.size; {
			h, err := readHeader(s.log, pos, s.size, &hdr)
			if err != nil {
				return err
			}
			size := int64(h.Size())
			if h.BaseOffset >= from {
				var ctl []byte
				if h.Control() && size <= maxControlBatch {
					if int64(cap(buf)) < size {
						buf = make([]byte, size)
					}
					ctl = buf[:size]
					if _, err := s.log.ReadAt(ctl, pos); err != nil {
						return fmt.Errorf("read %s at %d: %w", s.log.Name(), pos, err)
					}
				}
				if err := fn(h, ctl); err != nil {
					return err
				}
			}
			pos += size
		}
	}
	return nil
}
