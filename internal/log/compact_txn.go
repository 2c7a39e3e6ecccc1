package log

// The cleaner's view of transactions (see compact.go's file comment), after
// Kafka's CleanedTransactionMetadata.

import (
	"fmt"
	"math"
	"sort"

	"github.com/moldau/moldau/internal/record"
)

// txnRange is an aborted transaction of a producer: its batches lie in
// [first, last], last being the offset of its abort marker (Kafka's AbortedTxn).
type txnRange struct {
	producerID  int64
	first, last int64
	lso         int64 // the last stable offset once its marker was appended (AbortedTxn's)
}

// abortedTxn is r as the aborted-transaction index has it.
func (r txnRange) abortedTxn() AbortedTxn {
	return AbortedTxn{ProducerID: r.producerID, FirstOffset: r.first, LastOffset: r.last, LastStableOffset: r.lso}
}

// txnScan is what the cleaner's first pass learns from the whole log.
type txnScan struct {
	aborted   []txnRange      // whose first offset is in the cleanable segments, by first offset
	firstOpen int64           // first offset of the earliest transaction without a marker; MaxInt64: none
	lastData  map[int64]int64 // producer id -> base offset of its last data batch
}

// scanTransactions reads every batch header of the log once, and a control
// batch whole only when it may end a transaction: the cleanable segments segs
// without locks (they are rolled, their bytes do not change), the rest (above
// them, the active segment included) under the read lock. A transaction of a
// producer starts with its first transactional data batch after its previous
// marker and ends with its next marker (commit or abort).
func (c *cleaner) scanTransactions(segs []*segment) (txnScan, error) {
	scan := txnScan{firstOpen: math.MaxInt64, lastData: map[int64]int64{}}
	open := map[int64]int64{} // producer id -> first offset of its transaction without a marker yet
	end := segs[len(segs)-1].next
	visit := func(h record.BatchHeader, records func() ([]record.Record, error)) error {
		pid := h.ProducerID
		if pid < 0 {
			return nil
		}
		if !h.Control() {
			scan.lastData[pid] = h.BaseOffset
			if _, ok := open[pid]; !ok && h.Transactional() {
				open[pid] = h.BaseOffset
			}
			return nil
		}
		first, ok := open[pid]
		if !ok {
			return nil
		}
		recs, err := records()
		if err != nil {
			return err
		}
		m, err := record.ParseMarker(h, recs)
		if err != nil {
			return nil // not a transaction marker (Kafka reserves other control types): it ends nothing
		}
		delete(open, pid)
		if !m.Commit && first < end {
			lso := h.BaseOffset + 1 // as the partition indexes it: the next transaction still open, else after the marker
			for _, f := range open {
				lso = min(lso, f)
			}
			scan.aborted = append(scan.aborted, txnRange{producerID: pid, first: first, last: h.BaseOffset, lso: lso})
		}
		return nil
	}
	for _, s := range segs {
		c.l.mu.RLock()
		size := s.size
		c.l.mu.RUnlock()
		if err := c.eachHeader(s, size, visit); err != nil {
			return scan, err
		}
	}
	err := func() error {
		l := c.l
		l.mu.RLock()
		defer l.mu.RUnlock()
		if l.mu.closed {
			return errCleanAborted
		}
		for _, s := range l.mu.segments[l.segmentFor(end):] {
			if s.base >= end {
				if err := c.eachHeader(s, s.size, visit); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if err != nil {
		return scan, err
	}
	for _, first := range open {
		scan.firstOpen = min(scan.firstOpen, first)
	}
	sort.Slice(scan.aborted, func(i, j int) bool { return scan.aborted[i].first < scan.aborted[j].first })
	return scan, nil
}

// eachHeader calls fn with every batch header of s below size, in order;
// fn's records reads, validates and decodes that batch.
func (c *cleaner) eachHeader(s *segment, size int64, fn func(h record.BatchHeader, records func() ([]record.Record, error)) error) error {
	var hdr [record.HeaderSize]byte
	for pos := int64(0); pos < size; {
		h, err := readHeader(s.log, pos, size, &hdr)
		if err != nil {
			return err
		}
		at := pos
		err = fn(h, func() ([]record.Record, error) {
			if _, err := s.readBatch(at, size, h.BaseOffset, &c.buf); err != nil {
				return nil, fmt.Errorf("read %s at %d: %w", s.log.Name(), at, err)
			}
			_, recs, err := record.Records(c.buf[:h.Size()])
			return recs, err
		})
		if err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// txnState is one transaction as a pass walks through it.
type txnState struct {
	rng      txnRange // aborted transactions only
	aborted  bool
	observed bool // a batch of it was met in this pass
	kept     bool // a batch of it goes into the cleaned segment
}

// txnTracker follows the transactions batch by batch through a pass in
// offset order (Kafka's CleanedTransactionMetadata): it says which data
// batches belong to an aborted transaction and which markers may go because
// no batch of their transaction was met in this pass.
type txnTracker struct {
	pending   []txnRange          // aborted transactions not reached yet, by first offset
	aborted   map[int64]*txnState // producer id -> its aborted transaction under way
	committed map[int64]*txnState // producer id -> its non-aborted transaction whose batches were met
}

func newTxnTracker(aborted []txnRange) *txnTracker {
	return &txnTracker{pending: aborted, aborted: map[int64]*txnState{}, committed: map[int64]*txnState{}}
}

// reach moves the aborted transactions starting at or below off under way.
func (t *txnTracker) reach(off int64) {
	for len(t.pending) > 0 && t.pending[0].first <= off {
		r := t.pending[0]
		t.pending = t.pending[1:]
		if _, ok := t.aborted[r.producerID]; !ok {
			t.aborted[r.producerID] = &txnState{rng: r, aborted: true}
		}
	}
}

// onData is called for each data batch in order: it returns the batch's
// transaction (nil for a non-transactional batch) and whether it aborted.
func (t *txnTracker) onData(h record.BatchHeader) (*txnState, bool) {
	t.reach(h.LastOffset())
	if !h.Transactional() {
		return nil, false
	}
	if st, ok := t.aborted[h.ProducerID]; ok {
		st.observed = true
		return st, true
	}
	st, ok := t.committed[h.ProducerID]
	if !ok {
		st = &txnState{}
		t.committed[h.ProducerID] = st
	}
	return st, false
}

// onControl is called for each control batch in order. For a marker
// (isMarker) it ends the producer's transaction and returns it (nil when no
// batch of it was met in this pass) and whether the marker may go: no batch
// of its transaction was met in this pass.
func (t *txnTracker) onControl(h record.BatchHeader, recs []record.Record) (txn *txnState, discardable, isMarker bool) {
	t.reach(h.LastOffset())
	if len(recs) == 0 {
		return nil, true, false
	}
	m, err := record.ParseMarker(h, recs)
	if err != nil {
		return nil, false, false
	}
	if !m.Commit {
		st, ok := t.aborted[h.ProducerID]
		delete(t.aborted, h.ProducerID)
		if !ok || !st.observed {
			return nil, true, true
		}
		return st, false, true
	}
	st, ok := t.committed[h.ProducerID]
	delete(t.committed, h.ProducerID)
	if !ok {
		return nil, true, true
	}
	return st, false, true
}
