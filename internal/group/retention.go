package group

// Offset retention (KIP-211): offsets of an Empty group expire OffsetsRetention after the group
// became Empty (after their commit, for groups without a protocol type: simple consumers); a
// Stable consumer group's offsets of topics it no longer subscribes to expire OffsetsRetention
// after their commit. An Empty group left with no offsets is deleted. As in Kafka's
// OffsetMetadataManager.cleanupExpiredOffsets, an offset whose partition has a pending
// transactional offset does not expire, and a group with an ongoing transaction is not deleted.

import (
	"time"
)

func (c *Coordinator) scheduleRetention() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return
	}
	c.mu.retentionTimer = c.clock.AfterFunc(c.cfg.OffsetsRetentionCheckInterval, func() {
		c.ExpireOffsets()
		c.scheduleRetention()
	})
}

// ExpireOffsets runs one offset retention pass now (it also runs every
// OffsetsRetentionCheckInterval) and returns the number of offsets removed.
func (c *Coordinator) ExpireOffsets() int {
	if c.status() != 0 {
		return 0
	}
	n := 0
	for _, g := range c.snapshotGroups() {
		g.mu.Lock()
		n += g.expireOffsetsLocked(c.clock.Now(), c.cfg.OffsetsRetention)
		g.mu.Unlock()
	}
	return n
}

func (g *group) expireOffsetsLocked(now time.Time, retention time.Duration) int {
	if g.stopped || g.state == stateDead {
		return 0
	}
	nowMs := now.UnixMilli()
	retMs := retention.Milliseconds()
	var expired []KV
	type tp struct {
		topic     string
		partition int32
	}
	var gone []tp
	for t, ps := range g.offsets {
		for p, e := range ps {
			var base int64
			switch {
			case g.state == stateEmpty && g.protocolType == "":
				base = e.commitTime
			case g.state == stateEmpty:
				base = max(g.stateTime.UnixMilli(), e.commitTime)
			case g.state == stateStable && g.protocolType == consumerProtocolType && g.subscribed != nil && !g.isSubscribed(t):
				base = e.commitTime
			default:
				continue
			}
			if nowMs-base >= retMs && !g.hasPendingOffset(t, p) {
				expired = append(expired, KV{Key: offsetKey(g.name, t, p)})
				gone = append(gone, tp{t, p})
			}
		}
	}
	if len(expired) > 0 && g.c.store != nil {
		if err := g.c.store.Append(g.name, expired); err != nil {
			return 0 // retried at the next pass
		}
	}
	for _, x := range gone {
		g.deleteOffset(x.topic, x.partition)
	}
	if g.state == stateEmpty && !g.hasOffsets() && !g.hasPendingTxn() && len(g.pending) == 0 {
		_ = g.deleteLocked()
	}
	return len(gone)
}
