package txn

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID answers InitProducerId v0-5 for a transactional id (the handler serves the
// idempotent form, without one): a new producer id at epoch 0 for a new id, else the epoch
// bumped, which fences every older producer of the id; an ongoing transaction is aborted first
// (CONCURRENT_TRANSACTIONS, the client retries); v3+ with ProducerId and ProducerEpoch is KIP-360's
// recovery, PRODUCER_FENCED unless they are the id's current (or, for a retry, its last) ones.
// Kafka's TransactionCoordinator.handleInitProducerId. PRODUCER_FENCED is left to the handler to
// map for old versions.
func (c *Coordinator) InitProducerID(ctx context.Context, r *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	fail := func(code int16) *kmsg.InitProducerIDResponse { resp.ErrorCode = code; return resp }
	if r.TransactionalID == nil || *r.TransactionalID == "" {
		return fail(kerr.InvalidRequest.Code)
	}
	id := *r.TransactionalID
	if r.TransactionTimeoutMillis <= 0 || int64(r.TransactionTimeoutMillis) > c.cfg.MaxTimeout.Milliseconds() {
		return fail(kerr.InvalidTransactionTimeout.Code)
	}
	expected := r.Version >= 3 && r.ProducerID >= 0
	if r.Version >= 3 && (r.ProducerID < 0) != (r.ProducerEpoch < 0) {
		return fail(kerr.InvalidRequest.Code)
	}
	e, code := c.lockEntry(id, true)
	if code != 0 {
		return fail(code)
	}
	defer e.mu.Unlock()

	base := e.m
	if base == nil {
		pid, err := c.pids.NextProducerID(ctx)
		if err != nil {
			c.log.Warn("transaction coordinator: allocate producer id", "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		base = &meta{ProducerID: pid, PrevProducerID: -1, NextProducerID: -1, ProducerEpoch: noProducerEpoch,
			LastProducerEpoch: noProducerEpoch, TimeoutMs: r.TransactionTimeoutMillis, State: Empty, StartMs: -1, UpdateMs: c.nowMs()}
	}
	// Kafka's isValidProducerId: a fresh id, the current producer id, or a retry of the
	// request that rotated the id after epoch exhaustion.
	if expected && base.ProducerEpoch != noProducerEpoch && r.ProducerID != base.ProducerID &&
		!(r.ProducerID == base.PrevProducerID && epochExhausted(r.ProducerEpoch)) {
		return fail(kerr.ProducerFenced.Code)
	}
	switch base.State {
	case PrepareCommit, PrepareAbort:
		return fail(kerr.ConcurrentTransactions.Code)
	case Ongoing:
		// Fence the producer of the ongoing transaction and abort it; the client retries and
		// gets its bumped epoch once the abort completed.
		if code := c.prepareEnd(e, false, true, false); code != 0 {
			return fail(code)
		}
		return fail(kerr.ConcurrentTransactions.Code)
	case Empty, CompleteCommit, CompleteAbort:
	default:
		return fail(kerr.UnknownServerError.Code)
	}

	next := base.clone()
	next.Partitions, next.State, next.StartMs, next.UpdateMs = nil, Empty, -1, c.nowMs()
	next.TimeoutMs, next.NextProducerID = r.TransactionTimeoutMillis, -1
	switch {
	case expected && r.ProducerID == base.PrevProducerID && r.ProducerID != base.ProducerID:
		// A retry of the rotation: the client gets the id it was not told about.
		if base.ProducerEpoch == 0 {
			resp.ProducerID, resp.ProducerEpoch = base.ProducerID, 0
			return resp
		}
		return fail(kerr.ProducerFenced.Code)
	case base.ProducerEpoch != noProducerEpoch && epochExhausted(base.ProducerEpoch) &&
		(!expected || r.ProducerEpoch == base.ProducerEpoch):
		pid, err := c.pids.NextProducerID(ctx)
		if err != nil {
			c.log.Warn("transaction coordinator: allocate producer id", "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		next.PrevProducerID, next.ProducerID, next.ProducerEpoch, next.LastProducerEpoch = base.ProducerID, pid, 0, noProducerEpoch
	case !expected:
		next.ProducerEpoch, next.LastProducerEpoch = base.ProducerEpoch+1, noProducerEpoch
	case base.ProducerEpoch == noProducerEpoch || r.ProducerEpoch == base.ProducerEpoch:
		next.ProducerEpoch, next.LastProducerEpoch = base.ProducerEpoch+1, base.ProducerEpoch
	case r.ProducerEpoch == base.LastProducerEpoch:
		// The retry of a bump whose answer was lost: the same epoch again.
	default:
		return fail(kerr.ProducerFenced.Code)
	}
	if code := c.write(e, next); code != 0 {
		return fail(code)
	}
	resp.ProducerID, resp.ProducerEpoch = next.ProducerID, next.ProducerEpoch
	return resp
}
