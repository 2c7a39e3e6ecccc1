package group

// Transactional offsets (KIP-98, KIP-447). TxnOffsetCommit writes a producer's offsets to the
// group's __consumer_offsets partition as a transactional batch of the producer; they stay
// pending, per group and producer, until the transaction's marker reaches that partition
// (CompleteTxn): a commit makes them the group's committed offsets, an abort drops them. While a
// partition has a pending offset, an OffsetFetch with RequireStable answers it
// UNSTABLE_OFFSET_COMMIT, retention does not expire its committed offset and the group is not
// deleted by retention. A tombstone (OffsetDelete, DeleteGroups) drops the partition's pending
// offsets too. The rules are those of Kafka's OffsetMetadataManager.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TxnOffsetCommit stores the offsets of a transaction as pending; it answers only after the
// Store made them durable. verify, when not nil, is called (with no lock held) once the group is
// known to be coordinated here and before anything is written: it consults the transaction
// coordinator (KIP-890) and returns 0 or the error code every partition gets, and the guard the
// write must carry (Store.AppendTxn; opaque here).
//
// Versions 0-2 carry no group metadata (generation -1, no member): they commit to any group,
// as Kafka does; v3+ are fenced as OffsetCommit is (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID). A group that does not exist is created (a simple group) for a commit
// without a generation and answered ILLEGAL_GENERATION otherwise.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, r *kmsg.TxnOffsetCommitRequest, verify TxnVerify) *kmsg.TxnOffsetCommitResponse {
	resp := kmsg.NewPtrTxnOffsetCommitResponse()
	resp.Version = r.Version
	codes := c.txnOffsetCommit(ctx, r, verify)
	for i, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes(i, j)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TxnVerify is the KIP-890 step of a TxnOffsetCommit: 0 or the error code of every partition, and
// the guard to hand Store.AppendTxn (nil: none).
type TxnVerify func(ctx context.Context) (guard any, code int16)

func (c *Coordinator) txnOffsetCommit(ctx context.Context, r *kmsg.TxnOffsetCommitRequest, verify TxnVerify) func(t, p int) int16 {
	all := func(code int16) func(int, int) int16 { return func(int, int) int16 { return code } }
	if r.Group == "" {
		return all(kerr.InvalidGroupID.Code)
	}
	if code := c.groupStatus(r.Group); code != 0 {
		return all(code)
	}
	var guard any
	if verify != nil {
		var code int16
		if guard, code = verify(ctx); code != 0 {
			return all(code)
		}
		// The partition may have moved during the round trip: a group created now for a
		// partition no longer coordinated here would shadow its groups at the next load.
		if code := c.groupStatus(r.Group); code != 0 {
			return all(code)
		}
	}
	generation, memberID, instanceID := r.Generation, r.MemberID, r.InstanceID
	if r.Version < 3 {
		generation, memberID, instanceID = -1, "", nil
	}
	g := c.lockGroup(r.Group, generation < 0)
	if g == nil {
		return all(kerr.IllegalGeneration.Code)
	}
	defer g.mu.Unlock()
	if code := g.validateCommit(generation, memberID, instanceID, true); code != 0 {
		return all(code)
	}
	if g.state == stateCompletingRebalance {
		return all(kerr.RebalanceInProgress.Code)
	}

	b := newCommitBatch(len(r.Topics))
	now := c.clock.Now().UnixMilli()
	for i, t := range r.Topics {
		b.codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if r.Version < 2 {
				epoch = -1
			}
			b.codes[i][j] = c.addCommit(b, r.Group, t.Topic, p.Partition, p.Offset, epoch, p.Metadata, now)
		}
	}
	if len(b.records) > 0 && c.store != nil {
		if err := c.store.AppendTxn(r.Group, r.ProducerID, r.ProducerEpoch, guard, b.records); err != nil {
			b.fail(storeErrorCode(err, true))
			return b.code
		}
	}
	for _, e := range b.entries {
		e.entry.seq = g.nextSeq()
		g.setPendingOffset(r.ProducerID, e.topic, e.partition, e.entry)
	}
	if len(b.entries) > 0 {
		c.addTxn(r.ProducerID, g.name)
	}
	return b.code
}

// CompleteTxn applies a transaction marker written to __consumer_offsets partition
// offsetsPartition: the offsets producerID committed in its transaction (TxnOffsetCommit) to
// the groups of that partition become their committed offsets (commit) or are dropped (abort).
// WriteTxnMarkers calls it once the marker is replicated, as Kafka's
// GroupCoordinator.onTransactionCompleted. Without Config.OffsetsPartitions every group is in
// one partition and offsetsPartition is not looked at.
//
// A marker for a partition still loading is applied once its groups are installed; one for a
// partition not coordinated here is ignored: the coordinator that loads the partition next reads
// the marker from the log (WriteTxnMarkers calls CompleteTxn after the append).
func (c *Coordinator) CompleteTxn(offsetsPartition int32, producerID int64, commit bool) {
	c.mu.Lock()
	if c.partitioned() {
		op, ok := c.mu.owned[offsetsPartition]
		if !ok {
			c.mu.Unlock()
			return
		}
		if !op.installed {
			op.completions = append(op.completions, completion{producerID, commit})
			c.mu.Unlock()
			return
		}
	} else if !c.mu.installed {
		c.mu.early = append(c.mu.early, completion{producerID, commit})
		c.mu.Unlock()
		return
	}
	var names []string
	for name := range c.mu.txns[producerID] {
		if !c.partitioned() || OffsetsPartition(name, c.cfg.OffsetsPartitions) == offsetsPartition {
			names = append(names, name)
			delete(c.mu.txns[producerID], name)
		}
	}
	if len(c.mu.txns[producerID]) == 0 {
		delete(c.mu.txns, producerID)
	}
	c.mu.Unlock()
	for _, name := range names {
		g := c.lockGroup(name, false)
		if g == nil {
			continue // deleted: its pending offsets went with it
		}
		if g.state != stateDead {
			g.completeTxn(producerID, commit)
		}
		g.mu.Unlock()
	}
}

// addTxn notes that group holds pending offsets of producerID, for CompleteTxn.
// REQUIRES: the group's mu is held (lock order group.mu, Coordinator.mu).
func (c *Coordinator) addTxn(producerID int64, group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := c.mu.txns[producerID]
	if gs == nil {
		gs = make(map[string]struct{})
		c.mu.txns[producerID] = gs
	}
	gs[group] = struct{}{}
}

// nextSeq returns the seq of a new offset write of the group. REQUIRES: g.mu is held.
func (g *group) nextSeq() int64 {
	s := g.seq
	g.seq++
	return s
}

func (g *group) setPendingOffset(producerID int64, topic string, partition int32, e offsetEntry) {
	txn, ok := g.txnOffsets[producerID]
	if !ok {
		txn = make(map[string]map[int32]offsetEntry)
		g.txnOffsets[producerID] = txn
	}
	ps, ok := txn[topic]
	if !ok {
		ps = make(map[int32]offsetEntry)
		txn[topic] = ps
	}
	ps[partition] = e
}

// hasPendingOffset reports whether an ongoing transaction committed an offset of the partition.
func (g *group) hasPendingOffset(topic string, partition int32) bool {
	for _, txn := range g.txnOffsets {
		if _, ok := txn[topic][partition]; ok {
			return true
		}
	}
	return false
}

// hasPendingTxn reports whether any ongoing transaction holds offsets of the group.
func (g *group) hasPendingTxn() bool { return len(g.txnOffsets) > 0 }

// completeTxn ends producerID's transaction in the group, as Kafka's
// replayEndTransactionMarker: on commit each pending offset becomes the committed one unless
// the committed one was written after it (a plain OffsetCommit after the TxnOffsetCommit wins).
func (g *group) completeTxn(producerID int64, commit bool) {
	txn, ok := g.txnOffsets[producerID]
	if !ok {
		return
	}
	delete(g.txnOffsets, producerID)
	if !commit {
		return
	}
	for t, ps := range txn {
		for p, e := range ps {
			if cur, ok := g.offsets[t][p]; ok && cur.seq > e.seq {
				continue
			}
			g.setOffset(t, p, e)
		}
	}
}

// completion is a marker CompleteTxn received before its partition's groups were installed.
type completion struct {
	producerID int64
	commit     bool
}

func (c *Coordinator) completeAll(p int32, cs []completion) {
	for _, m := range cs {
		c.CompleteTxn(p, m.producerID, m.commit)
	}
}

// installTxnsLocked registers the pending transactions of freshly loaded groups for CompleteTxn.
// REQUIRES: c.mu is held and the groups were just put in the group map by the replay that built
// them, so no request has locked them yet and their txnOffsets are read without g.mu.
func (c *Coordinator) installTxnsLocked(groups []*group) {
	for _, g := range groups {
		for pid := range g.txnOffsets {
			gs := c.mu.txns[pid]
			if gs == nil {
				gs = make(map[string]struct{})
				c.mu.txns[pid] = gs
			}
			gs[g.name] = struct{}{}
		}
	}
}
