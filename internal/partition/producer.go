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

// update records an appended batch (h carries the assigned base offset).
func (ps producerStates) update(h record.BatchHeader) {
	if h.ProducerID < 0 {
		return
	}
	e, ok := ps[h.ProducerID]
	if !ok {
		e = &producerEntry{epoch: h.ProducerEpoch}
		ps[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if h.BaseSequence < 0 { // transactional markers and non-idempotent batches carry no sequence
		return
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
}

// ProducerState is what DescribeProducers reports of one idempotent producer of a partition.
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // -1 before its first sequenced batch
	LastTimestamp int64 // max timestamp of its last batch; -1 before its first sequenced batch
}

// Producers lists, by producer id, the idempotent producers this partition remembers.
func (p *Partition) Producers() []ProducerState {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	out := make([]ProducerState, 0, len(p.producers))
	for id, e := range p.producers {
		s := ProducerState{ProducerID: id, ProducerEpoch: e.epoch, LastSequence: e.lastSeq(), LastTimestamp: -1}
		if n := len(e.batches); n > 0 {
			s.LastTimestamp = e.batches[n-1].timestamp
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}
