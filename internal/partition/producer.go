package partition

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/record"
)

// maxCachedBatches is how many recent batches per producer are remembered for duplicate detection;
// Kafka's clients keep at most five requests in flight per connection when idempotent, and Kafka
// remembers the same number.
const maxCachedBatches = 5

// batchMeta is what duplicate detection needs of one appended batch.
type batchMeta struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	lastOffset        int64
	timestamp         int64 // max timestamp of the batch
}

// producerEntry is the idempotence state of one producer id on one partition.
//
// INVARIANT: batches holds at most maxCachedBatches entries, oldest first, and their sequence
// ranges are contiguous: batches[i+1].firstSeq == nextSeq(batches[i].lastSeq).
type producerEntry struct {
	epoch   int16
	batches []batchMeta
	// txnFirst is the offset of the first batch of the producer's ongoing transaction on this
	// partition (Kafka's currentTxnFirstOffset), -1 when none is open.
	txnFirst int64
	// coordEpoch is the epoch of the transaction coordinator that wrote its last marker, -1
	// before any.
	coordEpoch int32
	// lastTs is the max timestamp of its last batch or the timestamp of its last marker, -1
	// before either.
	lastTs int64
}

func newProducerEntry(epoch int16) *producerEntry {
	return &producerEntry{epoch: epoch, txnFirst: -1, coordEpoch: -1, lastTs: -1}
}

func (e *producerEntry) lastSeq() int32 {
	if len(e.batches) == 0 {
		return -1
	}
	return e.batches[len(e.batches)-1].lastSeq
}

// nextSeq is the sequence following s; sequences wrap from MaxInt32 to 0.
func nextSeq(s int32) int32 {
	if s == math.MaxInt32 {
		return 0
	}
	return s + 1
}

// lastSeqOf is the last sequence number a batch header covers.
func lastSeqOf(h record.BatchHeader) int32 {
	last := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if last > math.MaxInt32 {
		last -= math.MaxInt32 + 1
	}
	return int32(last)
}

// producerStates tracks idempotent producers of a partition.
// REQUIRES: the owning partition's append lock is held for every method.
type producerStates map[int64]*producerEntry

// check validates the next batch of an idempotent producer against its state, as Kafka's
// ProducerStateManager does. It returns the cached batch if this is a retry of one of the last
// five batches (the caller answers with the original offsets), or an error carrying the Kafka
// error code: INVALID_PRODUCER_EPOCH for a fenced (older) epoch, OUT_OF_ORDER_SEQUENCE_NUMBER for a gap.
func (ps producerStates) check(h record.BatchHeader) (*batchMeta, error) {
	e, known := ps[h.ProducerID]
	if known && e.txnFirst >= 0 && !h.Transactional() {
		// Kafka's ProducerAppendInfo.appendDataBatch: a transaction is open on the partition.
		return nil, fmt.Errorf("producer %d wrote a non-transactional batch while its transaction from offset %d is open: %w",
			h.ProducerID, e.txnFirst, kerr.InvalidTxnState)
	}
	if !known {
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("producer %d is unknown and its first sequence is %d, not 0: %w",
				h.ProducerID, h.BaseSequence, kerr.OutOfOrderSequenceNumber)
		}
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, fmt.Errorf("producer %d epoch %d is older than the current %d: %w",
			h.ProducerID, h.ProducerEpoch, e.epoch, kerr.InvalidProducerEpoch)
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("producer %d new epoch %d must start at sequence 0, got %d: %w",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, kerr.OutOfOrderSequenceNumber)
		}
		return nil, nil
	}
	last := lastSeqOf(h)
	for i := range e.batches {
		b := &e.batches[i]
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, nil
		}
	}
	if want := nextSeq(e.lastSeq()); h.BaseSequence != want {
		return nil, fmt.Errorf("producer %d epoch %d: sequence %d, expected %d: %w",
			h.ProducerID, h.ProducerEpoch, h.BaseSequence, want, kerr.OutOfOrderSequenceNumber)
	}
	return nil, nil
}

// checkCoordinatorBatch validates a transactional or idempotent batch the broker's own
// coordinators write (TxnOffsetCommit into __consumer_offsets: a producer id and epoch, sequence
// -1): only the epoch is checked, as Kafka checks an AppendOrigin.COORDINATOR batch.
func (ps producerStates) checkCoordinatorBatch(h record.BatchHeader) error {
	e, known := ps[h.ProducerID]
	switch {
	case !known:
		return nil
	case h.ProducerEpoch < e.epoch:
		return fmt.Errorf("producer %d epoch %d is older than the current %d: %w",
			h.ProducerID, h.ProducerEpoch, e.epoch, kerr.InvalidProducerEpoch)
	case e.txnFirst >= 0 && !h.Transactional():
		return fmt.Errorf("producer %d wrote a non-transactional batch while its transaction from offset %d is open: %w",
			h.ProducerID, e.txnFirst, kerr.InvalidTxnState)
	}
	return nil
}

// txnEvent is what a batch did to its producer's transaction on this partition.
type txnEvent struct {
	started   bool  // a transactional data batch opened a transaction at first
	completed bool  // a marker ended the transaction that began at first
	abort     bool  // completed by an abort marker
	first     int64 // the transaction's first offset
}

// update records an appended batch (h carries the assigned base offset); marker is the batch's
// transaction marker when it is a control batch (nil for a control batch whose marker could not
// be read: the transaction state stays as it was).
func (ps producerStates) update(h record.BatchHeader, marker *record.Marker) txnEvent {
	if h.ProducerID < 0 {
		return txnEvent{}
	}
	e, ok := ps[h.ProducerID]
	if !ok {
		e = newProducerEntry(h.ProducerEpoch)
		ps[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if h.Control() {
		if marker == nil {
			return txnEvent{}
		}
		// ProducerStateEntry.update: the marker's coordinator epoch and timestamp; the
		// transaction, if one was open, is over.
		e.coordEpoch, e.lastTs = marker.CoordinatorEpoch, h.MaxTimestamp
		ev := txnEvent{}
		if e.txnFirst >= 0 {
			ev = txnEvent{completed: true, abort: !marker.Commit, first: e.txnFirst}
		}
		e.txnFirst = -1
		return ev
	}
	e.lastTs = h.MaxTimestamp
	var ev txnEvent
	if h.Transactional() && e.txnFirst < 0 {
		e.txnFirst = h.BaseOffset
		ev = txnEvent{started: true, first: h.BaseOffset}
	}
	if h.BaseSequence < 0 { // coordinator batches and non-idempotent batches carry no sequence
		return ev
	}
	if len(e.batches) == maxCachedBatches {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:maxCachedBatches-1]
	}
	e.batches = append(e.batches, batchMeta{
		firstSeq:   h.BaseSequence,
		lastSeq:    lastSeqOf(h),
		baseOffset: h.BaseOffset,
		lastOffset: h.LastOffset(),
		timestamp:  h.MaxTimestamp,
	})
	return ev
}

// ProducerState is what DescribeProducers reports of one producer of a partition.
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // -1 before its first sequenced batch
	LastTimestamp int64 // max timestamp of its last batch or its last marker's; -1 before either
	// CurrentTxnStartOffset is the first offset of its ongoing transaction here, -1 when none.
	CurrentTxnStartOffset int64
	// CoordinatorEpoch is the epoch of the transaction coordinator of its last marker, -1 before any.
	CoordinatorEpoch int32
}

// Producers lists, by producer id, the idempotent producers this partition remembers.
func (p *Partition) Producers() []ProducerState {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	out := make([]ProducerState, 0, len(p.producers))
	for id, e := range p.producers {
		out = append(out, ProducerState{ProducerID: id, ProducerEpoch: e.epoch, LastSequence: e.lastSeq(),
			LastTimestamp: e.lastTs, CurrentTxnStartOffset: e.txnFirst, CoordinatorEpoch: e.coordEpoch})
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
