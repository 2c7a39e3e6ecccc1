package handler

// Produce: v3-12 (record batch v2 only; Kafka 4 dropped older message formats). ApiVersions
// advertises v0-12, as Kafka 4 does, for librdkafka's sake (see api_versions.go).
//
// Internal topics (__consumer_offsets, ...) are refused with INVALID_TOPIC_EXCEPTION, as Kafka
// refuses them: only the coordinators append there. Batches are appended with the client origin:
// control batches are refused (see partition.Origin).
//
// Transactions: transactional records need the request's TransactionalID (else every partition
// is TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka answers), all of one producer id and epoch
// (else INVALID_PRODUCER_ID_MAPPING). KIP-890 (verifyProduce): a producer's first write to a
// partition in its transaction is verified with the transaction coordinator through
// Options.TxnVerifier (verifyOnly, v3-11, when Options.TxnVerificationEnable) or added to it
// (v12+, transaction version 2), one call per request, and appended with the partition's
// VerificationGuard, so a marker written meanwhile makes it INVALID_TXN_STATE; the
// coordinator's errors are translated per version as Kafka's ReplicaManager does
// (produceVerifyError). Without a TxnVerifier transactional writes are INVALID_TXN_STATE.
//
// Each partition's batches are validated whole (CRC, size against max.message.bytes, idempotent
// sequence) and then appended; a partition's error never affects another partition. acks=0 gets
// no response. acks=-1 is refused with NOT_ENOUGH_REPLICAS before the append when the ISR is
// smaller than min.insync.replicas. Under log.flush.interval.messages=1, the default, the response
// waits for one group-committed sync per log dir, after all of the request's appends; then acks=-1
// waits, up to the request's timeout, until the high watermark covers the partition's batches
// (partition.WaitReplicated: REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND,
// NOT_LEADER_OR_FOLLOWER). One replica: its high watermark is the log end offset, so acks=-1 is
// acks=1. A broker that is not the leader answers NOT_LEADER_OR_FOLLOWER with CurrentLeader and
// the leader's endpoint (v10+, KIP-951) when the metadata knows them.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.Produce, 3, 12, (*Handler).handleProduce) }

func (h *Handler) handleProduce(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)

	var topLevel error
	switch {
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		topLevel = fmt.Errorf("acks must be -1, 0 or 1, got %d: %w", r.Acks, kerr.InvalidRequiredAcks)
	case r.TransactionID == nil && hasTransactionalRecords(r):
		// KafkaApis.handleProduceRequest: transactional records need the request's
		// transactional id (and the right to write it).
		topLevel = fmt.Errorf("transactional records without a transactional id: %w", kerr.TransactionalIDAuthorizationFailed)
	}

	// Partitions whose flush policy wants the data on disk before the ack, by log dir syncer:
	// synced once each after every append (group commit).
	type at struct{ topic, partition int }
	toSync := map[*log.Syncer][]at{}
	type replicated struct {
		at
		p    *partition.Partition
		last int64
	}
	var toReplicate []replicated // acks=-1: wait for the high watermark after the syncs
	leaders := map[int32]bool{}
	im := h.meta.Image()
	var txnChecks map[metadata.TopicPartition]txnCheck
	if topLevel == nil && r.TransactionID != nil {
		txnChecks, topLevel = h.verifyProduce(ctx, r, im)
	}
	for ti, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		t, topicOK := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			err := topLevel
			if err == nil {
				var res produced
				res, err = h.produceTo(t, topicOK, rt.Topic, rp, r.Acks, txnChecks, &sp)
				if res.syncer != nil {
					toSync[res.syncer] = append(toSync[res.syncer], at{ti, len(st.Partitions)})
				}
				if err == nil && r.Acks == -1 {
					toReplicate = append(toReplicate, replicated{at{ti, len(st.Partitions)}, res.p, res.last})
				}
			}
			if err != nil {
				sp.ErrorCode = errorCode(err)
				if sp.ErrorCode == kerr.NotLeaderForPartition.Code {
					if mp, ok := metaPartition(t, rp.Partition); ok && mp.Leader >= 0 {
						sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = mp.Leader, mp.LeaderEpoch
						leaders[mp.Leader] = true
					}
				}
				if r.Version >= 8 {
					sp.ErrorMessage = errorMessage(err)
				}
				h.log.Debug("produce rejected", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	fail := func(a at, err error) {
		sp := &resp.Topics[a.topic].Partitions[a.partition]
		sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
		sp.ErrorCode = errorCode(err)
		if r.Version >= 8 {
			sp.ErrorMessage = errorMessage(err)
		}
	}
	for syncer, parts := range toSync {
		if err := syncer.Sync(); err != nil {
			err = fmt.Errorf("fsync before ack: %v: %w", err, kerr.KafkaStorageError)
			h.log.Error("produce not durable", "err", err)
			for _, a := range parts {
				fail(a, err)
			}
		}
	}
	if len(toReplicate) > 0 {
		waiting := time.Now()
		wctx, cancel := context.WithTimeout(ctx, time.Duration(max(r.TimeoutMillis, 0))*time.Millisecond)
		for _, w := range toReplicate {
			if resp.Topics[w.topic].Partitions[w.partition].ErrorCode != 0 {
				continue // the sync failed
			}
			if err := w.p.WaitReplicated(wctx, w.last); err != nil {
				h.log.Debug("acks=all produce not replicated", "err", err)
				fail(w.at, err)
			}
		}
		cancel()
		req.Waited(time.Since(waiting)) // waiting on the followers: Kafka's remote time
	}
	if len(leaders) > 0 && r.Version >= 10 {
		for _, fb := range h.leaderEndpoints(req, im, leaders, nil) {
			pb := kmsg.NewProduceResponseBroker()
			pb.NodeID, pb.Host, pb.Port, pb.Rack = fb.NodeID, fb.Host, fb.Port, fb.Rack
			resp.Brokers = append(resp.Brokers, pb)
		}
	}
	if r.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// produced is what produceTo appended: the partition, its last offset, and the syncer to wait on
// before the ack if the partition's flush policy asks for one.
type produced struct {
	p      *partition.Partition
	last   int64
	syncer *log.Syncer
}

// produceTo appends one partition's batches and fills sp.
func (h *Handler) produceTo(t *metadata.Topic, topicOK bool, name string, rp kmsg.ProduceRequestTopicPartition, acks int16,
	txnChecks map[metadata.TopicPartition]txnCheck, sp *kmsg.ProduceResponseTopicPartition) (produced, error) {
	if !topicOK || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return produced{}, fmt.Errorf("%s-%d: %w", name, rp.Partition, kerr.UnknownTopicOrPartition)
	}
	if metadata.IsInternalTopic(name) {
		// Only the coordinators write there (ReplicaManager.appendToLocalLog's rule).
		return produced{}, fmt.Errorf("cannot append to internal topic %s: %w", name, kerr.InvalidTopicException)
	}
	p, err := h.leaderPartition(t, rp.Partition)
	if err != nil {
		return produced{}, err
	}
	var guard partition.VerificationGuard
	if transactional(rp.Records) {
		c, ok := txnChecks[metadata.TopicPartition{Topic: name, Partition: rp.Partition}]
		if !ok {
			c.err = fmt.Errorf("%s-%d: Partition was not added to the transaction: %w", name, rp.Partition, kerr.InvalidTxnState)
		}
		if c.err != nil {
			return produced{}, c.err
		}
		guard = c.guard
	}
	res, err := p.AppendVerified(rp.Records, acks, partition.OriginClient, guard)
	if err != nil {
		return produced{}, err
	}
	sp.BaseOffset = res.BaseOffset
	sp.LogAppendTime = res.LogAppendTime
	sp.LogStartOffset = res.LogStartOffset
	return produced{p: p, last: res.LastOffset, syncer: p.AckSyncer()}, nil
}

// transactional reports whether a partition's records are a transactional data batch (the
// first batch decides: a request with more than one batch per producer is refused by the
// partition, and so is a client's control batch).
func transactional(records []byte) bool {
	h, err := record.ParseHeader(records)
	return err == nil && h.Transactional() && !h.Control()
}

// txnCheck is what the KIP-890 step decided for one partition's transactional batch: the guard
// to append with, or the error to answer.
type txnCheck struct {
	guard partition.VerificationGuard
	err   error
}

// verifyProduce is the KIP-890 step of a transactional Produce (ReplicaManager's
// handleProduceAppend): the transactional batches of a request must all be of one producer id and
// epoch (else INVALID_PRODUCER_ID_MAPPING for the whole request); each partition this broker
// leads takes a verification guard, and those whose producer has no transaction open there are
// verified (v3-11, transaction.partition.verification.enable) or added (v12+, transaction
// version 2, whatever that setting) with the transaction coordinator in one TxnVerifier call.
// Without a TxnVerifier (no transaction coordinator) every transactional partition is
// INVALID_TXN_STATE; with verification disabled below v12 they are appended unverified.
// Partitions it has nothing to say about (unknown, not led here, internal) are left to produceTo.
func (h *Handler) verifyProduce(ctx context.Context, r *kmsg.ProduceRequest, im *metadata.Image) (map[metadata.TopicPartition]txnCheck, error) {
	addPartitions := r.Version >= 12
	checks := map[metadata.TopicPartition]txnCheck{}
	parts := map[metadata.TopicPartition]*partition.Partition{}
	var need []metadata.TopicPartition
	var pid int64
	var epoch int16
	found := false
	for _, rt := range r.Topics {
		t, topicOK := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			hdr, err := record.ParseHeader(rp.Records)
			if err != nil || !hdr.Transactional() || hdr.Control() {
				continue
			}
			if found && (hdr.ProducerID != pid || hdr.ProducerEpoch != epoch) {
				return nil, fmt.Errorf("transactional records contained more than one producer id: %w", kerr.InvalidProducerIDMapping)
			}
			pid, epoch, found = hdr.ProducerID, hdr.ProducerEpoch, true
			tp := metadata.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if h.opts.TxnVerifier == nil {
				checks[tp] = txnCheck{err: fmt.Errorf("%s-%d: no transaction coordinator runs here: Partition was not added to the transaction: %w",
					rt.Topic, rp.Partition, kerr.InvalidTxnState)}
				continue
			}
			if !topicOK || metadata.IsInternalTopic(rt.Topic) {
				continue
			}
			p, err := h.leaderPartition(t, rp.Partition)
			if err != nil {
				continue
			}
			if !addPartitions && !h.opts.TxnVerificationEnable {
				checks[tp] = txnCheck{} // the zero guard: no verification
				continue
			}
			g, needed := p.VerificationGuard(pid, epoch)
			checks[tp] = txnCheck{guard: g}
			if needed {
				need = append(need, tp)
				parts[tp] = p
			}
		}
	}
	if len(need) == 0 {
		return checks, nil
	}
	vctx, cancel := context.WithTimeout(ctx, markerTimeout)
	defer cancel()
	res, err := h.opts.TxnVerifier.AddPartitions(vctx, *r.TransactionID, pid, epoch, need, !addPartitions)
	// CONCURRENT_TRANSACTIONS: the producer's previous transaction is still completing (with
	// TV2 the next one starts as soon as EndTxn answers). As Kafka's ReplicaManager, ask again
	// for up to add.partitions.to.txn.retry.backoff.max.ms before answering, each time with a
	// fresh guard (the previous transaction's marker, written meanwhile, may have cleared the
	// old). Kafka waits add.partitions.to.txn.retry.backoff.ms (20 ms) between asks; the markers
	// usually take about a millisecond here, so the wait starts at 1 ms and doubles up to 20 ms,
	// which took a one-record transaction's p50 from 23 ms to a few.
	backoff := addPartitionsRetryFirst
	for deadline := time.Now().Add(addPartitionsRetryMax); err == nil; backoff = min(2*backoff, addPartitionsRetryBackoff) {
		var again []metadata.TopicPartition
		for _, tp := range need {
			if errors.Is(res[tp], kerr.ConcurrentTransactions) {
				again = append(again, tp)
			}
		}
		if len(again) == 0 || time.Now().Add(backoff).After(deadline) {
			break
		}
		select {
		case <-vctx.Done():
		case <-time.After(backoff):
		}
		if vctx.Err() != nil {
			break
		}
		var ask []metadata.TopicPartition
		for _, tp := range again {
			g, needed := parts[tp].VerificationGuard(pid, epoch)
			checks[tp] = txnCheck{guard: g}
			if needed {
				ask = append(ask, tp)
			} else {
				delete(res, tp)
			}
		}
		if len(ask) == 0 {
			break
		}
		retried, rerr := h.opts.TxnVerifier.AddPartitions(vctx, *r.TransactionID, pid, epoch, ask, !addPartitions)
		if rerr != nil {
			break // keep the first answers
		}
		for _, tp := range ask {
			res[tp] = retried[tp]
		}
	}
	for _, tp := range need {
		perr := err
		if perr == nil {
			perr = res[tp]
		}
		if perr != nil {
			c := checks[tp]
			c.err = fmt.Errorf("%s-%d: %w", tp.Topic, tp.Partition, produceVerifyError(perr, r.Version))
			checks[tp] = c
		}
	}
	return checks, nil
}

// Kafka's add.partitions.to.txn.retry.backoff.ms and add.partitions.to.txn.retry.backoff.max.ms
// defaults (the longest wait between asks and the time to give up), and the first wait.
const (
	addPartitionsRetryBackoff = 20 * time.Millisecond
	addPartitionsRetryMax     = 100 * time.Millisecond
	addPartitionsRetryFirst   = time.Millisecond
)

// produceVerifyError maps what the transaction coordinator answered for a partition (or the
// TxnVerifier's error for all of them) to what a Produce client of version v understands:
// AddPartitionsToTxnManager's translation (PRODUCER_FENCED → INVALID_PRODUCER_EPOCH,
// CLUSTER_AUTHORIZATION_FAILED → INVALID_TXN_STATE, TRANSACTION_ABORTABLE → INVALID_TXN_STATE
// before v11), then ReplicaManager's (the retriable NETWORK_EXCEPTION,
// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, and below v12
// CONCURRENT_TRANSACTIONS → NOT_ENOUGH_REPLICAS, which old clients retry without a metadata
// refresh). An error with no Kafka code is a NETWORK_EXCEPTION (no coordinator answered).
func produceVerifyError(err error, v int16) error {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		ke = kerr.NetworkException
	}
	switch ke {
	case kerr.ProducerFenced:
		ke = kerr.InvalidProducerEpoch
	case kerr.ClusterAuthorizationFailed:
		ke = kerr.InvalidTxnState
	case kerr.TransactionAbortable:
		if v <= 10 {
			ke = kerr.InvalidTxnState
		}
	}
	switch {
	case ke == kerr.InvalidTxnState:
		return fmt.Errorf("Partition was not added to the transaction: %w", ke)
	case ke == kerr.NetworkException, ke == kerr.CoordinatorLoadInProgress, ke == kerr.CoordinatorNotAvailable,
		ke == kerr.NotCoordinator, ke == kerr.ConcurrentTransactions && v < 12:
		return fmt.Errorf("Unable to verify the partition has been added to the transaction. Underlying error: %s: %w", ke.Message, kerr.NotEnoughReplicas)
	}
	return fmt.Errorf("%v: %w", err, ke)
}

// hasTransactionalRecords is Kafka's ProduceRequest.hasTransactionalRecords. It walks the batch
// headers without allocating (every produce pays for it); framing errors are the partition's
// to answer.
func hasTransactionalRecords(r *kmsg.ProduceRequest) bool {
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			for b := rp.Records; len(b) >= record.HeaderSize; {
				h, err := record.ParseHeader(b)
				if err != nil {
					break
				}
				if h.Transactional() {
					return true
				}
				n := h.Size()
				if n < record.HeaderSize || n > len(b) {
					break
				}
				b = b[n:]
			}
		}
	}
	return false
}
