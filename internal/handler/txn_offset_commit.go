package handler

// TxnOffsetCommit: versions 0-5. The group coordinator (internal/group) writes the offsets to
// the group's __consumer_offsets partition as a transactional batch of the producer and holds
// them pending until the transaction's marker (WriteTxnMarkers → group.Coordinator.CompleteTxn).
// v3+ carry the group metadata (generation, member id, group.instance.id, KIP-447) and are fenced
// as OffsetCommit is; v4 may answer TRANSACTION_ABORTABLE (KIP-890).
//
// KIP-890, as Kafka's GroupCoordinatorService.commitTransactionalOffsets and
// CoordinatorPartitionWriter.maybeStartTransactionVerification do: v5 (transaction.version 2)
// adds the group's __consumer_offsets partition to the transaction itself (AddPartitionsToTxn,
// verifyOnly=false: the client sent no AddOffsetsToTxn); v0-4 with
// transaction.partition.verification.enable (the default) verify that AddOffsetsToTxn added it
// (verifyOnly=true) before writing. Without a transaction coordinator client (Options.TxnVerifier
// nil) such a request is answered COORDINATOR_NOT_AVAILABLE, what Kafka answers while no
// transaction coordinator is reachable.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.TxnOffsetCommit, 0, 5, (*Handler).handleTxnOffsetCommit)
}

// handleTxnOffsetCommit answers UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist, as
// Kafka's KafkaApis does before it hands the rest to the group coordinator.
func (h *Handler) handleTxnOffsetCommit(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.TxnOffsetCommitRequest)
	im := h.meta.Image()
	exists := im.HasPartition
	known := *r
	known.Topics = nil
	for _, t := range r.Topics {
		kt := t
		kt.Partitions = nil
		for _, p := range t.Partitions {
			if exists(t.Topic, p.Partition) {
				kt.Partitions = append(kt.Partitions, p)
			}
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	codes := map[string]map[int32]int16{}
	if len(known.Topics) > 0 {
		kresp := h.groups.TxnOffsetCommit(ctx, &known, h.txnOffsetVerifier(im, r))
		for _, t := range kresp.Topics {
			if codes[t.Topic] == nil {
				codes[t.Topic] = map[int32]int16{}
			}
			for _, p := range t.Partitions {
				codes[t.Topic][p.Partition] = p.ErrorCode
			}
		}
	}
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if exists(t.Topic, p.Partition) {
				rp.ErrorCode = codes[t.Topic][p.Partition]
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// txnOffsetVerifier returns the KIP-890 step of a TxnOffsetCommit (see the file comment), nil
// when there is none (v0-4 with verification disabled). As Kafka's
// ReplicaManager.maybeStartTransactionVerificationForPartition, the transaction coordinator is
// not asked when the producer already has its transaction open on the group's partition at that
// epoch; otherwise the partition registers a verification guard first, which the write carries.
func (h *Handler) txnOffsetVerifier(im *metadata.Image, r *kmsg.TxnOffsetCommitRequest) group.TxnVerify {
	addPartition := r.Version >= 5
	if !addPartition && !h.opts.TxnVerificationEnable {
		return nil
	}
	return func(ctx context.Context) (any, int16) {
		t, ok := im.Topic(metadata.ConsumerOffsetsTopic)
		if !ok || len(t.Partitions) == 0 {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
		tp := metadata.TopicPartition{Topic: metadata.ConsumerOffsetsTopic,
			Partition: group.OffsetsPartition(r.Group, int32(len(t.Partitions)))}
		var guard any
		if h.parts != nil {
			part := h.parts.Get(tp.Topic, tp.Partition)
			if part == nil {
				return nil, kerr.NotCoordinator.Code
			}
			g, needed := part.VerificationGuard(r.ProducerID, r.ProducerEpoch)
			if !needed {
				// Kafka's sentinel guard: the write must still find the transaction open.
				return g, 0
			}
			guard = g
		}
		if h.opts.TxnVerifier == nil {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
		res, err := h.opts.TxnVerifier.AddPartitions(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch,
			[]metadata.TopicPartition{tp}, !addPartition)
		var code int16
		switch {
		case err != nil:
			code = kerr.NetworkException.Code // no coordinator answered
			var ke *kerr.Error
			if errors.As(err, &ke) {
				code = ke.Code
			}
		default:
			code = errorCode(res[tp])
		}
		return guard, txnOffsetVerifyCode(code, r.Version)
	}
}

// txnOffsetVerifyCode maps what the transaction coordinator answered for the group's partition to
// what a TxnOffsetCommit client of version v expects: Kafka's AddPartitionsToTxnManager mapping
// (PRODUCER_FENCED → INVALID_PRODUCER_EPOCH; TRANSACTION_ABORTABLE, new in v4, → INVALID_TXN_STATE
// before; CLUSTER_AUTHORIZATION_FAILED → INVALID_TXN_STATE) and then the group coordinator's
// (CoordinatorOperationExceptionHelper: a network failure → COORDINATOR_LOAD_IN_PROGRESS, which
// clients retry without a coordinator lookup; replication and leadership errors → the coordinator
// errors).
func txnOffsetVerifyCode(code int16, v int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.TransactionAbortable.Code:
		if v < 4 {
			return kerr.InvalidTxnState.Code
		}
	case kerr.ClusterAuthorizationFailed.Code:
		return kerr.InvalidTxnState.Code
	case kerr.NetworkException.Code:
		return kerr.CoordinatorLoadInProgress.Code
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.RequestTimedOut.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		return kerr.UnknownServerError.Code
	}
	return code
}
