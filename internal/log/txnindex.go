package log

// The aborted-transaction index: per segment, the transactions whose abort marker is in that
// segment (Kafka's TransactionIndex), so that a read_committed fetch can tell the client which
// producers' records of the range it reads to drop (UnifiedLog.collectAbortedTransactions).
//
// INVARIANT: a segment's entries are in marker order (strictly increasing LastOffset), and each
// entry's LastOffset is an offset of that segment, so entries go with their segment when it is
// deleted and are cut with it when it is truncated.

import (
	"encoding/binary"
	"fmt"

	"github.com/moldau/moldau/internal/record"
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
