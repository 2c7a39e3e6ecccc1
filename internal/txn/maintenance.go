package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// entries lists the ids of every loaded partition this coordinator owns.
func (c *Coordinator) entries() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*entry
	for _, o := range c.mu.owned {
		select {
		case <-o.loaded:
		default:
			continue
		}
		for _, e := range o.ids {
			out = append(out, e)
		}
	}
	return out
}

// AbortTimedOut aborts every ongoing transaction that ran past its transaction.timeout.ms,
// fencing its producer (the epoch is bumped), as Kafka's abortTimedOutTransactions does every
// transaction.abort.timed.out.transaction.cleanup.interval.ms.
func (c *Coordinator) AbortTimedOut() {
	now := c.nowMs()
	for _, e := range c.entries() {
		e.mu.Lock()
		if c.current(e) && e.m != nil && e.m.State == Ongoing && e.m.StartMs+int64(e.m.TimeoutMs) < now {
			c.log.Info("transaction coordinator: aborting a transaction past its timeout", "id", e.id,
				"producer_id", e.m.ProducerID, "epoch", e.m.ProducerEpoch, "timeout_ms", e.m.TimeoutMs)
			if code := c.prepareEnd(e, false, true, false); code != 0 {
				c.log.Warn("transaction coordinator: abort of a timed-out transaction failed; retried next round", "id", e.id, "err", kerr.ErrorForCode(code))
			}
		}
		e.mu.Unlock()
	}
}

// ExpireIDs removes the ids idle for transactional.id.expiration.ms with no transaction in
// progress: a tombstone is written and the id is forgotten (Kafka's
// removeExpiredTransactionalIds).
func (c *Coordinator) ExpireIDs() {
	now := c.nowMs()
	for _, e := range c.entries() {
		e.mu.Lock()
		m := e.m
		if c.current(e) && m != nil && (m.State == Empty || m.State == CompleteCommit || m.State == CompleteAbort) &&
			m.UpdateMs+c.cfg.IDExpiration.Milliseconds() <= now {
			if err := c.store.Append(e.part.p, encodeKey(e.id), nil); err != nil {
				c.log.Warn("transaction coordinator: expire transactional id", "id", e.id, "err", err)
			} else {
				c.mu.Lock()
				if e.part.ids[e.id] == e {
					delete(e.part.ids, e.id)
				}
				c.mu.Unlock()
				dead := m.clone()
				dead.State = Dead
				e.m = dead
			}
		}
		e.mu.Unlock()
	}
}
