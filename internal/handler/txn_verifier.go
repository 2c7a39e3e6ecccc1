package handler

import (
	"context"

	"github.com/moldau/moldau/internal/metadata"
)

// TxnVerifier is how this broker, as a partition leader or a group coordinator, consults the
// transaction coordinator of a transactional id (KIP-890), wherever that coordinator runs: it
// sends AddPartitionsToTxn v4+ (the broker's batched form) to the coordinator's node, as Kafka's
// AddPartitionsToTxnManager does.
//
// Part 1 (verification): before the first transactional write of a producer to a partition, the
// leader asks with verifyOnly=true whether the transaction holds the partition; Produce answers
// INVALID_TXN_STATE when it does not. Part 2 (transaction.version 2): Produce v12+ and
// TxnOffsetCommit v5+ add the partition (or the group's __consumer_offsets partition)
// implicitly, verifyOnly=false.
//
// Options.TxnVerifier holds it (the transaction coordinator's client side). Nil: no transaction coordinator runs here,
// and transactional writes are refused with INVALID_TXN_STATE, as before transactions existed.
type TxnVerifier interface {
	// AddPartitions verifies (verifyOnly) or adds partitions to the ongoing transaction of
	// (producerID, producerEpoch) under transactionalID. It answers per partition: nil when
	// verified or added, else an error wrapping the coordinator's kerr code (INVALID_TXN_STATE,
	// INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, NOT_COORDINATOR,
	// COORDINATOR_LOAD_IN_PROGRESS, ...). A returned err applies to every partition (no
	// coordinator reachable); callers map both to what their client understands, as Kafka does.
	AddPartitions(ctx context.Context, transactionalID string, producerID int64, producerEpoch int16,
		partitions []metadata.TopicPartition, verifyOnly bool) (map[metadata.TopicPartition]error, error)
}
