package txn

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
)

// AddPartitionsToTxn answers AddPartitionsToTxn v0-5: v0-3 is the client's form (one
// transaction), v4+ the brokers' batched form (KIP-890), each transaction either verified
// (VerifyOnly: INVALID_TXN_STATE for a partition the transaction does not hold) or added to
// (TV2's implicit add by the partition leader, v5). Kafka's
// TransactionCoordinator.handleAddPartitionsToTransaction and handleVerifyPartitionsInTransaction.
func (c *Coordinator) AddPartitionsToTxn(r *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version <= 3 {
		var tps []TopicPartition
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, TopicPartition{t.Topic, p})
			}
		}
		codes := c.addPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, tps, false, 0, false)
		for _, t := range r.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[TopicPartition{t.Topic, p}]
				if r.Version < 2 && rp.ErrorCode == kerr.ProducerFenced.Code {
					rp.ErrorCode = kerr.InvalidProducerEpoch.Code // older clients do not know PRODUCER_FENCED
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, txn := range r.Transactions {
		var tps []TopicPartition
		for _, t := range txn.Topics {
			for _, p := range t.Partitions {
				tps = append(tps, TopicPartition{t.Topic, p})
			}
		}
		tv := int16(0)
		if r.Version >= 5 && !txn.VerifyOnly {
			tv = 2
		}
		codes := c.addPartitions(txn.TransactionalID, txn.ProducerID, txn.ProducerEpoch, tps, txn.VerifyOnly, tv, false)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = txn.TransactionalID
		for _, t := range txn.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[TopicPartition{t.Topic, p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}

// AddOffsetsToTxn answers AddOffsetsToTxn v0-4: the group's __consumer_offsets partition joins
// the transaction, so EndTxn sends it a marker (the group coordinator then commits or drops the
// transaction's offsets).
func (c *Coordinator) AddOffsetsToTxn(r *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	tp := TopicPartition{ConsumerOffsetsTopic, group.OffsetsPartition(r.Group, c.cfg.OffsetsPartitions)}
	resp.ErrorCode = c.addPartitions(r.TransactionalID, r.ProducerID, r.ProducerEpoch, []TopicPartition{tp}, false, 0, true)[tp]
	if r.Version < 2 && resp.ErrorCode == kerr.ProducerFenced.Code {
		resp.ErrorCode = kerr.InvalidProducerEpoch.Code
	}
	return resp
}

// ConsumerOffsetsTopic is the group coordinator's topic.
const ConsumerOffsetsTopic = "__consumer_offsets"

// addPartitions verifies or adds tps and answers a code per partition. tv is the client
// transaction version a (non-verify) add runs the transaction with. offsets: tps is a group's
// __consumer_offsets partition, not checked to exist (Kafka computes it from
// offsets.topic.num.partitions; the topic may not be created yet).
func (c *Coordinator) addPartitions(txnID string, pid int64, epoch int16, tps []TopicPartition, verifyOnly bool, tv int16, offsets bool) map[TopicPartition]int16 {
	codes := make(map[TopicPartition]int16, len(tps))
	all := func(code int16) map[TopicPartition]int16 {
		for _, tp := range tps {
			codes[tp] = code
		}
		return codes
	}
	if txnID == "" {
		return all(kerr.InvalidRequest.Code)
	}
	// Unknown partitions fail the whole request, as Kafka's KafkaApis checks them first.
	if c.cfg.PartitionExists != nil && !verifyOnly && !offsets {
		unknown := false
		for _, tp := range tps {
			if !c.cfg.PartitionExists(tp.Topic, tp.Partition) {
				unknown = true
				codes[tp] = kerr.UnknownTopicOrPartition.Code
			}
		}
		if unknown {
			for _, tp := range tps {
				if codes[tp] == 0 {
					codes[tp] = kerr.OperationNotAttempted.Code
				}
			}
			return codes
		}
	}
	e, code := c.lockEntry(txnID, false)
	if code != 0 {
		return all(code)
	}
	if e == nil {
		return all(kerr.InvalidProducerIDMapping.Code)
	}
	defer e.mu.Unlock()
	m := e.m
	switch {
	case m == nil || m.ProducerID != pid:
		return all(kerr.InvalidProducerIDMapping.Code)
	case m.ProducerEpoch != epoch:
		return all(kerr.ProducerFenced.Code)
	case m.State == PrepareCommit || m.State == PrepareAbort:
		return all(kerr.ConcurrentTransactions.Code)
	case m.State != Empty && m.State != Ongoing && m.State != CompleteCommit && m.State != CompleteAbort:
		return all(kerr.InvalidTxnState.Code)
	}
	if verifyOnly {
		for _, tp := range tps {
			if m.State != Ongoing || !m.has(tp) {
				codes[tp] = kerr.InvalidTxnState.Code
			} else {
				codes[tp] = 0
			}
		}
		return codes
	}
	if m.State == Ongoing {
		missing := false
		for _, tp := range tps {
			missing = missing || !m.has(tp)
		}
		if !missing && (tv < 2 || m.ClientTV >= 2) {
			return all(0)
		}
	}
	next := m.clone()
	if m.State != Ongoing {
		next.Partitions, next.StartMs, next.ClientTV = nil, c.nowMs(), tv
	}
	next.ClientTV = max(next.ClientTV, tv)
	next.State, next.UpdateMs = Ongoing, c.nowMs()
	next.Partitions = withPartitions(next.Partitions, tps)
	return all(c.write(e, next))
}
