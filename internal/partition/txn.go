package partition

// Transactions on a partition: the ongoing transactions of its producers (their first offsets),
// the last stable offset, transaction markers, the aborted-transaction index, and KIP-890's
// verification guards, as Kafka's ProducerStateManager and UnifiedLog keep them.
//
// The last stable offset (LSO) is min(first unstable offset, high watermark), where the first
// unstable offset is the smallest first offset of a transaction that is still open, or that
// completed with a marker not yet below the high watermark (Kafka's unreplicatedTxns: a
// transaction counts as stable only once its marker is committed), never below the log start.
// Leaders and followers keep the same state from the same batches (markers included), so a new
// leader after a failover answers the same LSO and aborted transactions.

import (
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
)

// completedTxn is a transaction whose marker was appended at last and began at first.
type completedTxn struct {
	producerID  int64
	first, last int64
}

// txnTracker is what the last stable offset is computed from. Its mu is a leaf: writers hold
// the partition's appendMu too, readers (LastStableOffset) only mu.
type txnTracker struct {
	mu sync.Mutex
	// ongoing maps a producer id to the first offset of its open transaction.
	ongoing map[int64]int64
	// unreplicated are completed transactions, in marker order, whose marker may not be below
	// the high watermark yet.
	unreplicated []completedTxn
}

func (t *txnTracker) reset(ps producerStates) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ongoing = map[int64]int64{}
	t.unreplicated = nil
	for id, e := range ps {
		if e.txnFirst >= 0 {
			t.ongoing[id] = e.txnFirst
		}
	}
}

// VerificationGuard ties a KIP-890 verification with the transaction coordinator to the append
// it was made for (Kafka's VerificationGuard). The zero value asks for no verification.
type VerificationGuard struct{ id uint64 }

// sentinelGuard is the guard of a producer that needed no verification (Kafka's
// VerificationGuard.SENTINEL): its append still needs its transaction open at the epoch.
var sentinelGuard = VerificationGuard{id: ^uint64(0)}

// IsZero reports whether g is the zero guard.
func (g VerificationGuard) IsZero() bool { return g.id == 0 }

// guardEntry is a producer's registered verification.
type guardEntry struct {
	id    uint64
	epoch int16
}

// VerificationGuard starts a KIP-890 verification of producerID at epoch: needed is false when
// the producer already has a transaction open here at that epoch (no verification is asked; g
// is Kafka's sentinel guard, with which AppendVerified still refuses a batch that would open a
// transaction, should a marker end that one first); else it registers (or reuses, for concurrent requests of the producer) a guard
// that AppendVerified demands. Appending any batch or marker of the producer clears it, so a
// marker written between the verification and the append makes the append fail
// (INVALID_TXN_STATE): the late write of an already finished transaction cannot open a new one.
func (p *Partition) VerificationGuard(producerID int64, epoch int16) (g VerificationGuard, needed bool) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if e, ok := p.producers[producerID]; ok && e.txnFirst >= 0 && e.epoch == epoch {
		return sentinelGuard, false
	}
	if ge, ok := p.guards[producerID]; ok {
		ge.epoch = max(ge.epoch, epoch)
		p.guards[producerID] = ge
		return VerificationGuard{id: ge.id}, true
	}
	p.nextGuard++
	if p.nextGuard == sentinelGuard.id {
		p.nextGuard = 1
	}
	p.guards[producerID] = guardEntry{id: p.nextGuard, epoch: epoch}
	return VerificationGuard{id: p.nextGuard}, true
}

// checkGuardLocked refuses a transactional data batch that would open a transaction without
// the verification g asked for. REQUIRES: appendMu held.
func (p *Partition) checkGuardLocked(h record.BatchHeader, g VerificationGuard) error {
	if g.IsZero() || !h.Transactional() || h.Control() {
		return nil
	}
	if e, ok := p.producers[h.ProducerID]; ok && e.txnFirst >= 0 && e.epoch == h.ProducerEpoch {
		return nil
	}
	if ge, ok := p.guards[h.ProducerID]; ok && ge.id == g.id && g != sentinelGuard {
		return nil
	}
	return fmt.Errorf("partition %s-%d: the record of producer %d epoch %d was not part of an ongoing transaction: %w",
		p.Topic, p.Index, h.ProducerID, h.ProducerEpoch, kerr.InvalidTxnState)
}

// applyLocked takes an appended batch into the producer state and the transaction state:
// opens, ends and indexes transactions. marker is the batch's marker for a control batch.
// REQUIRES: appendMu held.
func (p *Partition) applyLocked(h record.BatchHeader, marker *record.Marker) error {
	if a, ok := p.trackLocked(h, marker); ok {
		return p.indexAbortLocked(a)
	}
	return nil
}

// indexAbortLocked adds an aborted transaction to the log's aborted-transaction index.
// REQUIRES: appendMu held, and not inside the log's ScanBatches (AppendAbortedTxn takes the
// log's write lock).
func (p *Partition) indexAbortLocked(a log.AbortedTxn) error {
	if err := p.log.AppendAbortedTxn(a); err != nil {
		return fmt.Errorf("partition %s-%d: index aborted transaction of producer %d: %v: %w", p.Topic, p.Index, a.ProducerID, err, kerr.KafkaStorageError)
	}
	return nil
}

// trackLocked is applyLocked without the index: it returns the aborted transaction that h's
// marker ended (ok), which the caller indexes. REQUIRES: appendMu held.
func (p *Partition) trackLocked(h record.BatchHeader, marker *record.Marker) (a log.AbortedTxn, ok bool) {
	if h.ProducerID < 0 {
		return a, false
	}
	delete(p.guards, h.ProducerID)
	ev := p.producers.update(h, marker)
	switch {
	case ev.started:
		p.txns.mu.Lock()
		p.txns.ongoing[h.ProducerID] = ev.first
		p.txns.mu.Unlock()
	case ev.completed:
		p.txns.mu.Lock()
		delete(p.txns.ongoing, h.ProducerID)
		// Kafka's lastStableOffset(completedTxn): the next transaction still open, else the
		// offset after the marker.
		lso := h.BaseOffset + 1
		for _, first := range p.txns.ongoing {
			lso = min(lso, first)
		}
		p.txns.unreplicated = append(p.txns.unreplicated, completedTxn{producerID: h.ProducerID, first: ev.first, last: h.BaseOffset})
		p.txns.mu.Unlock()
		if ev.abort {
			return log.AbortedTxn{ProducerID: h.ProducerID, FirstOffset: ev.first, LastOffset: h.BaseOffset, LastStableOffset: lso}, true
		}
	}
	return a, false
}

// markerOf reads the transaction marker of a control batch; nil when batch is not a control
// batch or its marker cannot be read (an empty control batch the cleaner left, an unknown
// control type): such a batch changes no transaction, as in Kafka.
func markerOf(h record.BatchHeader, batch []byte) *record.Marker {
	if !h.Control() || batch == nil {
		return nil
	}
	rh, recs, err := record.Records(batch)
	if err != nil {
		return nil
	}
	m, err := record.ParseMarker(rh, recs)
	if err != nil {
		return nil
	}
	return &m
}

// replayLocked rebuilds the producer and transaction state from the batches at or after from,
// over ps (the snapshot's state, or empty). REQUIRES: appendMu held.
func (p *Partition) replayLocked(ps producerStates, from int64) error {
	p.producers = ps
	p.guards = map[int64]guardEntry{}
	p.txns.reset(ps)
	// The scan holds the log's read lock: the aborts it finds are indexed after it.
	var aborts []log.AbortedTxn
	err := p.log.ScanBatches(from, func(h record.BatchHeader, control []byte) error {
		if a, ok := p.trackLocked(h, markerOf(h, control)); ok {
			aborts = append(aborts, a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range aborts {
		if err := p.indexAbortLocked(a); err != nil {
			return err
		}
	}
	return nil
}

// LastStableOffset is the offset below which every transaction is decided and its marker
// committed: min(first unstable offset, high watermark), never below the log start. Without
// transactions it is the high watermark.
func (p *Partition) LastStableOffset() int64 {
	hw := p.highWatermark.Load()
	p.txns.mu.Lock()
	n := 0
	for n < len(p.txns.unreplicated) && p.txns.unreplicated[n].last < hw {
		n++
	}
	p.txns.unreplicated = p.txns.unreplicated[n:]
	lso := hw
	for _, first := range p.txns.ongoing {
		lso = min(lso, first)
	}
	for _, c := range p.txns.unreplicated {
		lso = min(lso, c.first)
	}
	p.txns.mu.Unlock()
	if start := p.log.LogStartOffset(); lso < start {
		lso = min(start, hw)
	}
	return lso
}

// AbortedTransactions is Kafka's collectAbortedTransactions for a read_committed fetch of
// [from, upTo): the aborted transactions with a marker at or after from that began below upTo.
func (p *Partition) AbortedTransactions(from, upTo int64) []log.AbortedTxn {
	return p.log.AbortedTxns(from, upTo)
}

// ReadCommitted is ReadSections for a read_committed consumer: batches below the last stable
// offset, and the aborted transactions of the range read (Kafka's collectAbortedTransactions
// from offset to the offset after the last batch read).
func (p *Partition) ReadCommitted(offset int64, maxBytes int32, minOneBatch bool) ([]log.Section, []log.AbortedTxn, error) {
	limit, err := p.readLimit(offset, true)
	if err != nil || offset >= limit {
		return nil, nil, err
	}
	secs, _, aborted, err := p.log.ReadSectionsUpTo(offset, maxBytes, limit, minOneBatch)
	if err != nil {
		return nil, nil, p.readError(err)
	}
	return secs, aborted, nil
}

// WriteTxnMarker appends the transaction marker m for its producer, as a leader does for
// WriteTxnMarkers: Kafka's epoch rules (transactionVersion >= 2: the marker's epoch must be
// above the producer's, the coordinator having bumped it, except the same epoch again once the
// transaction ended, a retried marker; before: not below it) answer INVALID_PRODUCER_EPOCH, a
// coordinator epoch below the producer's last TRANSACTION_COORDINATOR_FENCED. The marker ends
// the producer's open transaction, indexes an abort and moves the LSO once it is below the high
// watermark. It is appended as an acks=all produce is (NOT_ENOUGH_REPLICAS below
// min.insync.replicas); callers then sync (AckSyncer) and WaitReplicated(LastOffset).
// m.Timestamp 0 takes the clock's time.
func (p *Partition) WriteTxnMarker(m record.Marker, transactionVersion int16) (AppendResult, error) {
	s := p.settings.Load()
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1}
	if err := p.appendableAsLeader(true, s.MinInsyncReplicas); err != nil {
		return res, err
	}
	if m.ProducerID < 0 {
		return res, fmt.Errorf("partition %s-%d: marker for producer id %d: %w", p.Topic, p.Index, m.ProducerID, kerr.InvalidRequest)
	}
	if m.Timestamp == 0 {
		m.Timestamp = p.now().UnixMilli()
	}
	batch := record.BuildMarker(m)
	h, err := record.Validate(batch)
	if err != nil {
		return res, fmt.Errorf("partition %s-%d: build marker: %v: %w", p.Topic, p.Index, err, kerr.UnknownServerError)
	}

	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if !p.IsLeader() {
		return res, p.notLeader()
	}
	if e, ok := p.producers[m.ProducerID]; ok {
		stale := m.ProducerEpoch < e.epoch
		if transactionVersion >= 2 {
			stale = m.ProducerEpoch <= e.epoch && !(m.ProducerEpoch == e.epoch && e.txnFirst < 0)
		}
		if stale {
			return res, fmt.Errorf("partition %s-%d: marker epoch %d of producer %d, its epoch here is %d (transaction version %d): %w",
				p.Topic, p.Index, m.ProducerEpoch, m.ProducerID, e.epoch, transactionVersion, kerr.InvalidProducerEpoch)
		}
		if e.coordEpoch > m.CoordinatorEpoch {
			return res, fmt.Errorf("partition %s-%d: marker of coordinator epoch %d for producer %d, its last was %d: %w",
				p.Topic, p.Index, m.CoordinatorEpoch, m.ProducerID, e.coordEpoch, kerr.TransactionCoordinatorFenced)
		}
	}
	defer p.snapshotIfRolled(p.log.NumSegments())
	ar, err := p.log.Append(batch, p.leaderEpoch.Load(), -1)
	if err != nil {
		return res, fmt.Errorf("partition %s-%d: append marker: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
	}
	h.BaseOffset = ar.BaseOffset
	// With transaction version 2 a marker of epoch E ends the transaction of epoch E-1, and the
	// producer's next transaction runs at E: a verification of it already under way (its first
	// produce arrives as soon as EndTxn answers, before this marker) keeps its guard. A late
	// write of the ended transaction carries E-1, which the epoch check refuses anyway. With
	// version 0/1 every transaction of a producer shares the epoch, so the marker clears the
	// guard, as Kafka's does: that is what keeps such a late write out.
	guard, verifying := p.guards[m.ProducerID]
	if err := p.applyLocked(h, &m); err != nil {
		return res, err
	}
	if verifying && transactionVersion >= 2 && guard.epoch >= m.ProducerEpoch {
		p.guards[m.ProducerID] = guard
	}
	res.BaseOffset, res.LastOffset = ar.BaseOffset, ar.LastOffset
	res.LogStartOffset = p.log.LogStartOffset()
	p.publishAppendLocked()
	return res, nil
}
