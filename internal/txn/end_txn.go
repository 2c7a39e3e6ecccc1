package txn

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn answers EndTxn v0-5: PrepareCommit or PrepareAbort is written and answered; the markers
// go out afterwards and the transaction becomes CompleteCommit or CompleteAbort once every
// partition has its marker (until then the id's requests get CONCURRENT_TRANSACTIONS). v5 is
// transaction version 2 (KIP-890 part 2): the epoch is bumped at every end and the response
// carries the producer id and epoch the client goes on with; a retried v5 EndTxn (its epoch one
// below the current) is answered with them. Kafka's TransactionCoordinator.handleEndTransaction.
func (c *Coordinator) EndTxn(r *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	resp.ErrorCode = c.endTxn(r, resp)
	if r.Version < 2 && resp.ErrorCode == kerr.ProducerFenced.Code {
		resp.ErrorCode = kerr.InvalidProducerEpoch.Code
	}
	return resp
}

func (c *Coordinator) endTxn(r *kmsg.EndTxnRequest, resp *kmsg.EndTxnResponse) int16 {
	tv2 := r.Version >= 5
	if r.TransactionalID == "" {
		return kerr.InvalidRequest.Code
	}
	e, code := c.lockEntry(r.TransactionalID, false)
	if code != 0 {
		return code
	}
	if e == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	defer e.mu.Unlock()
	m := e.m
	if m == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	ok := func() int16 {
		resp.ProducerID, resp.ProducerEpoch = m.ProducerID, m.ProducerEpoch
		return 0
	}
	retry := false
	if tv2 && m.ClientTV >= 2 {
		sameEnd := (r.Commit && (m.State == PrepareCommit || m.State == CompleteCommit)) ||
			(!r.Commit && (m.State == PrepareAbort || m.State == CompleteAbort))
		prev := (r.ProducerID == m.ProducerID && r.ProducerEpoch == m.ProducerEpoch-1) ||
			(r.ProducerID == m.PrevProducerID && m.ProducerEpoch == 0 && epochExhausted(r.ProducerEpoch+1))
		retry = sameEnd && prev
	}
	if !retry {
		if r.ProducerID != m.ProducerID {
			return kerr.InvalidProducerIDMapping.Code
		}
		if r.ProducerEpoch != m.ProducerEpoch {
			return kerr.ProducerFenced.Code
		}
	}
	switch m.State {
	case Ongoing:
		if code := c.prepareEnd(e, r.Commit, false, tv2); code != 0 {
			return code
		}
		answerProducer(resp, e.m)
		return 0
	case PrepareCommit, PrepareAbort:
		if r.Commit == (m.State == PrepareCommit) {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	case CompleteCommit, CompleteAbort:
		if r.Commit == (m.State == CompleteCommit) && (!tv2 || retry) {
			return ok()
		}
		if tv2 && !r.Commit && !retry {
			return c.emptyAbort(e, resp)
		}
		return kerr.InvalidTxnState.Code
	case Empty:
		if tv2 && !r.Commit {
			return c.emptyAbort(e, resp)
		}
		return kerr.InvalidTxnState.Code
	}
	return kerr.InvalidTxnState.Code
}

// emptyAbort is TV2's abort of a transaction that holds no partition: the epoch is bumped (the
// client may have produced without knowing whether the partition was added) and the abort
// completes at once, there being no marker to send. REQUIRES: e.mu held.
func (c *Coordinator) emptyAbort(e *entry, resp *kmsg.EndTxnResponse) int16 {
	m := e.m.clone()
	m.State, m.Partitions, m.ClientTV = Ongoing, nil, 2
	saved := e.m
	e.m = m // prepareEnd starts from an ongoing transaction without partitions
	if code := c.prepareEnd(e, false, false, true); code != 0 {
		e.m = saved
		return code
	}
	answerProducer(resp, e.m)
	return 0
}

// answerProducer puts in an EndTxn response the producer id and epoch the client goes on with
// after prepareEnd wrote m: the next producer id at epoch 0 once the epoch is exhausted.
func answerProducer(resp *kmsg.EndTxnResponse, m *meta) {
	resp.ProducerID, resp.ProducerEpoch = m.ProducerID, m.ProducerEpoch
	if m.NextProducerID >= 0 {
		resp.ProducerID, resp.ProducerEpoch = m.NextProducerID, 0
	}
}

// prepareEnd writes PrepareCommit or PrepareAbort for e's transaction (Ongoing) and starts its
// completion. fence bumps the epoch (InitProducerId fencing an ongoing transaction, or a
// timeout); a TV2 transaction (tv2: ended by EndTxn v5) bumps it at every end, and moves to a
// new producer id on completion when the bumped epoch is exhausted (Kafka's
// prepareAbortOrCommit). REQUIRES: e.mu.
func (c *Coordinator) prepareEnd(e *entry, commit, fence, tv2 bool) int16 {
	m := e.m
	next := m.clone()
	next.State, next.UpdateMs = PrepareAbort, c.nowMs()
	if commit {
		next.State = PrepareCommit
	}
	if tv2 {
		next.ClientTV = 2
	}
	if (fence || next.ClientTV >= 2) && m.ProducerEpoch < 1<<15-1 {
		next.ProducerEpoch = m.ProducerEpoch + 1
		next.LastProducerEpoch = noProducerEpoch
		if next.ClientTV >= 2 && epochExhausted(next.ProducerEpoch) && m.NextProducerID < 0 {
			pid, err := c.pids.NextProducerID(context.Background())
			if err != nil {
				c.log.Warn("transaction coordinator: allocate producer id", "err", err)
				return kerr.CoordinatorNotAvailable.Code
			}
			next.NextProducerID = pid
		}
	}
	if code := c.write(e, next); code != 0 {
		return code
	}
	c.startCompletion(e, next)
	return 0
}

// startCompletion sends the markers of e's prepared transaction and then writes its Complete
// state, in a goroutine the Coordinator owns. REQUIRES: e.mu held, e.m == prepared.
func (c *Coordinator) startCompletion(e *entry, prepared *meta) {
	mk := Markers{
		TransactionalID:    e.id,
		ProducerID:         prepared.ProducerID,
		ProducerEpoch:      prepared.ProducerEpoch,
		Commit:             prepared.State == PrepareCommit,
		CoordinatorEpoch:   e.part.epoch,
		TransactionVersion: prepared.ClientTV,
		Partitions:         append([]TopicPartition(nil), prepared.Partitions...),
	}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		c.complete(e, prepared, mk)
	}()
}

// complete is Kafka's TransactionMarkerChannelManager: send every marker, then write the
// Complete state (retried while the store fails with this coordinator still in charge).
func (c *Coordinator) complete(e *entry, prepared *meta, mk Markers) {
	ctx := e.part.ctx
	if len(mk.Partitions) > 0 {
		if err := c.markers.WriteMarkers(ctx, mk); err != nil {
			if errors.Is(err, ErrMarkersFenced) {
				c.log.Warn("transaction coordinator: markers fenced; the newer coordinator completes the transaction", "id", e.id, "err", err)
			}
			return
		}
	}
	for {
		e.mu.Lock()
		if !c.current(e) || e.m != prepared {
			e.mu.Unlock()
			return
		}
		next := prepared.clone()
		next.State, next.Partitions, next.UpdateMs = CompleteAbort, nil, c.nowMs()
		if prepared.State == PrepareCommit {
			next.State = CompleteCommit
		}
		if prepared.NextProducerID >= 0 {
			next.PrevProducerID, next.ProducerID, next.ProducerEpoch = prepared.ProducerID, prepared.NextProducerID, 0
			next.NextProducerID, next.LastProducerEpoch = -1, noProducerEpoch
		}
		code := c.write(e, next)
		e.mu.Unlock()
		if code == 0 || code == kerr.NotCoordinator.Code {
			return
		}
		if !c.sleep(ctx, c.cfg.MarkerRetryBackoff) {
			return
		}
	}
}

// sleep waits d on the coordinator's clock; false when ctx ended first.
func (c *Coordinator) sleep(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	t := c.clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}
