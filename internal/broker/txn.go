package broker

// The transaction coordinator's wiring (package txn): its Store on __transaction_state, the
// producer ids it hands out, the MarkerSender that writes WriteTxnMarkers to the partition
// leaders, and the handler.TxnVerifier with which this broker, as a partition leader or a group
// coordinator, asks a transaction coordinator anywhere in the cluster to verify or add
// partitions (KIP-890).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/clientpool"
	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/txn"
)

// newTxnCoordinator builds the transaction coordinator. The first FindCoordinator for a
// transactional id creates __transaction_state, as in Kafka (a broker whose clients never use
// transactions never opens its 50 partitions).
func (b *Broker) newTxnCoordinator() *txn.Coordinator {
	n := b.cfg.TransactionStateLogNumPartitions
	if t, ok := b.meta.Image().Topic(metadata.TransactionStateTopic); ok {
		n = int32(len(t.Partitions))
	}
	b.markers = &markerSender{b: b}
	b.peers = &peerClients{addr: b.interBrokerAddr, pool: clientpool.New(fmt.Sprintf("moldau-txn-%d", b.cfg.NodeID))}
	cfg := b.cfg
	return txn.New(txn.Config{
		Partitions:        n,
		OffsetsPartitions: b.offsets.partitions,
		MaxTimeout:        time.Duration(cfg.TransactionMaxTimeoutMs) * time.Millisecond,
		AbortInterval:     time.Duration(cfg.TransactionAbortTimedOutTransactionCleanupIntervalMs) * time.Millisecond,
		ExpireInterval:    time.Duration(cfg.TransactionRemoveExpiredTransactionCleanupIntervalMs) * time.Millisecond,
		IDExpiration:      time.Duration(cfg.TransactionalIDExpirationMs) * time.Millisecond,
		PartitionExists: func(topic string, p int32) bool {
			return b.meta.Image().HasPartition(topic, p)
		},
		Logger: b.log.With("component", "txn-coordinator"),
	}, &txnStore{b: b}, b.markers, &metadata.ProducerIDs{Controller: b.meta}, nil)
}

// EnsureTransactionsTopic creates __transaction_state if it does not exist yet: compacted,
// transaction.state.log.* partitions, replication factor and segment size, min.insync.replicas
// transaction.state.log.min.isr (capped at the replication factor, so a node alone, whose
// factor is 1, keeps working). It implements handler.Cluster.
func (b *Broker) EnsureTransactionsTopic(ctx context.Context) error {
	if _, ok := b.meta.Image().Topic(metadata.TransactionStateTopic); ok {
		return nil
	}
	rf := b.cfg.TransactionStateLogReplicationFactor
	minISR := min(int32(rf), b.cfg.TransactionStateLogMinISR)
	_, err := b.meta.CreateTopic(ctx, metadata.CreateTopic{
		Name:              metadata.TransactionStateTopic,
		Partitions:        b.cfg.TransactionStateLogNumPartitions,
		ReplicationFactor: rf,
		Configs: map[string]string{
			"cleanup.policy":                 "compact",
			"segment.bytes":                  strconv.Itoa(int(b.cfg.TransactionStateLogSegmentBytes)),
			"compression.type":               "uncompressed",
			"min.insync.replicas":            strconv.Itoa(int(minISR)),
			"unclean.leader.election.enable": "false",
		},
		Internal: true,
	})
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return fmt.Errorf("create %s: %w", metadata.TransactionStateTopic, err)
	}
	return b.Sync()
}

// syncTxnCoordinator makes the transaction coordinator serve exactly the __transaction_state
// partitions this broker leads and hosts, with the partition's leader epoch as its coordinator
// epoch (what the markers carry, so a partition leader can fence an older coordinator).
// REQUIRES: b.syncMu held, or Start before serving.
func (b *Broker) syncTxnCoordinator() {
	if b.txns == nil {
		return
	}
	t, ok := b.meta.Image().Topic(metadata.TransactionStateTopic)
	if !ok {
		return
	}
	if n := int32(len(t.Partitions)); n != b.txns.Partitions() && !b.txnCountWarned {
		b.txnCountWarned = true
		b.log.Error("__transaction_state has another partition count than this broker's coordinator: transactional ids may be served by the wrong broker; give every node the same transaction.state.log.num.partitions",
			"partitions", n, "coordinator", b.txns.Partitions())
	}
	for _, p := range t.Partitions {
		if p.Leader == b.cfg.NodeID && b.parts.Get(t.Name, p.Partition) != nil {
			b.txns.Elect(p.Partition, p.LeaderEpoch)
			continue
		}
		b.txns.Resign(p.Partition)
	}
}

// txnStore is the coordinator's Store: __transaction_state, one record per batch, written as the
// group coordinator writes __consumer_offsets (fsync before the ack, acks=all).
type txnStore struct{ b *Broker }

func (s *txnStore) partition(p int32) (*partition.Partition, error) {
	part := s.b.parts.Get(metadata.TransactionStateTopic, p)
	if part == nil {
		return nil, fmt.Errorf("%s-%d is not hosted on this broker: %w", metadata.TransactionStateTopic, p, kerr.NotLeaderForPartition)
	}
	return part, nil
}

func (s *txnStore) Append(p int32, key, value []byte) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	batch := record.Build(record.BatchSpec{
		BaseTimestamp: time.Now().UnixMilli(),
		ProducerID:    -1,
		ProducerEpoch: -1,
		BaseSequence:  -1,
		Records:       []record.Record{{Key: key, Value: value}},
	})
	res, err := part.Append(batch, -1, partition.OriginCoordinator)
	if err != nil {
		return fmt.Errorf("append to %s-%d: %w", metadata.TransactionStateTopic, p, err)
	}
	if syncer := part.AckSyncer(); syncer != nil {
		if err := syncer.Sync(); err != nil {
			return fmt.Errorf("%s-%d: fsync before ack: %v: %w", metadata.TransactionStateTopic, p, err, kerr.KafkaStorageError)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), txnLogWriteTimeout)
	defer cancel()
	if err := part.WaitReplicated(ctx, res.LastOffset); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%v: %w", err, kerr.RequestTimedOut)
		}
		return fmt.Errorf("%s-%d: replicate: %w", metadata.TransactionStateTopic, p, err)
	}
	return nil
}

// txnLogWriteTimeout is how long a transaction state write waits for the in-sync replicas
// (Kafka's request timeout for the coordinator's appends).
const txnLogWriteTimeout = 5 * time.Second

// LoadPartition replays partition p from its log start to its log end (as Kafka's loader, not
// only to the high watermark). A batch that does not decode is handed over with Err and
// skipped; broken framing ends the partition's replay the same way.
func (s *txnStore) LoadPartition(p int32, fn func(txn.StoredRecord) error) error {
	part, err := s.partition(p)
	if err != nil {
		return err
	}
	off := part.LogStartOffset()
	for end := part.LogEndOffset(); off < end; {
		rr, err := part.Log().Read(off, 1<<20, end, true)
		if err != nil {
			return fmt.Errorf("load %s-%d at %d: %w", metadata.TransactionStateTopic, p, off, err)
		}
		if len(rr.Data) == 0 {
			return nil
		}
		batches, splitErr := record.Split(rr.Data)
		start := off
		for _, raw := range batches {
			h, recs, err := record.Records(raw)
			if next := h.LastOffset() + 1; next <= off || h.LastOffsetDelta < 0 {
				return fn(txn.StoredRecord{Offset: off, Err: fmt.Errorf("rest of the partition: bad batch header at %d", h.BaseOffset)})
			}
			if err != nil {
				if err := fn(txn.StoredRecord{Offset: h.BaseOffset, Err: err}); err != nil {
					return err
				}
			} else if !h.Control() {
				for _, r := range recs {
					if err := fn(txn.StoredRecord{Offset: h.BaseOffset + int64(r.OffsetDelta), Key: r.Key, Value: r.Value}); err != nil {
						return err
					}
				}
			}
			off = h.LastOffset() + 1
		}
		if splitErr != nil || off == start {
			return fn(txn.StoredRecord{Offset: off, Err: fmt.Errorf("rest of the partition: %v", splitErr)})
		}
	}
	return nil
}

// peerClients sends the coordinator's requests to other brokers through a pool of one client per
// broker address (this broker too: markers go over the same path to every leader), each sending
// to that one broker only.
type peerClients struct {
	addr func(id int32) (string, bool)
	pool *clientpool.Pool
}

func (c *peerClients) send(ctx context.Context, node int32, req kmsg.Request) (kmsg.Response, error) {
	addr, ok := c.addr(node)
	if !ok {
		return nil, fmt.Errorf("broker %d is not registered", node)
	}
	cl, err := c.pool.Client(addr)
	if errors.Is(err, clientpool.ErrClosed) {
		return nil, errors.New("broker shutting down")
	}
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", node, err)
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no connection to broker %d at %s", node, addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("broker %d at %s: %w", node, addr, err)
	}
	return resp, nil
}

func (c *peerClients) close() { c.pool.Close() }

// markerSender writes a transaction's markers to its partitions' leaders with WriteTxnMarkers,
// as Kafka's TransactionMarkerChannelManager: a partition whose leader is unknown, moved, or
// failed the write is tried again (backing off, up to a second) until every one has its marker;
// a partition of a deleted topic needs none; a leader that answers INVALID_PRODUCER_EPOCH or
// TRANSACTION_COORDINATOR_FENCED ends the send (a newer coordinator or producer took over).
type markerSender struct {
	b *Broker
	// gate, when set (tests), is called before each round of sends; an error ends the send as
	// a lost coordinator would (the tests hold a coordinator's markers back with it).
	gate atomic.Pointer[func(ctx context.Context) error]
}

func (s *markerSender) WriteMarkers(ctx context.Context, m txn.Markers) error {
	if g := s.gate.Load(); g != nil {
		if err := (*g)(ctx); err != nil {
			return err
		}
	}
	remaining := map[txn.TopicPartition]bool{}
	for _, tp := range m.Partitions {
		remaining[tp] = true
	}
	backoff := 50 * time.Millisecond
	for {
		im := s.b.meta.Image()
		byLeader := map[int32][]txn.TopicPartition{}
		for tp := range remaining {
			t, ok := im.Topic(tp.Topic)
			if !ok || int(tp.Partition) >= len(t.Partitions) {
				delete(remaining, tp) // deleted: Kafka drops its marker too
				continue
			}
			if l := t.Partitions[tp.Partition].Leader; l >= 0 {
				byLeader[l] = append(byLeader[l], tp)
			}
		}
		if len(remaining) == 0 {
			return nil
		}
		for leader, tps := range byLeader {
			done, err := s.send(ctx, leader, m, tps)
			if errors.Is(err, txn.ErrMarkersFenced) {
				return err
			}
			if err != nil {
				s.b.log.Debug("transaction markers: retrying", "leader", leader, "err", err)
			}
			for _, tp := range done {
				delete(remaining, tp)
			}
		}
		if len(remaining) == 0 {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

// send writes the markers of tps to leader and returns the partitions that have them.
func (s *markerSender) send(ctx context.Context, leader int32, m txn.Markers, tps []txn.TopicPartition) ([]txn.TopicPartition, error) {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	mk := kmsg.NewWriteTxnMarkersRequestMarker()
	mk.ProducerID, mk.ProducerEpoch, mk.Committed = m.ProducerID, m.ProducerEpoch, m.Commit
	mk.CoordinatorEpoch, mk.TransactionVersion = m.CoordinatorEpoch, int8(m.TransactionVersion)
	idx := map[string]int{}
	for _, tp := range tps {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(mk.Topics)
			idx[tp.Topic] = i
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			mk.Topics = append(mk.Topics, t)
		}
		mk.Topics[i].Partitions = append(mk.Topics[i].Partitions, tp.Partition)
	}
	req.Markers = append(req.Markers, mk)
	raw, err := s.b.peers.send(ctx, leader, req)
	if err != nil {
		return nil, err
	}
	resp := raw.(*kmsg.WriteTxnMarkersResponse)
	var done []txn.TopicPartition
	var errs []error
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				tp := txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				switch rp.ErrorCode {
				case 0:
					done = append(done, tp)
				case kerr.InvalidProducerEpoch.Code, kerr.TransactionCoordinatorFenced.Code:
					return done, fmt.Errorf("%s-%d: %w: %w", tp.Topic, tp.Partition, txn.ErrMarkersFenced, kerr.ErrorForCode(rp.ErrorCode))
				default:
					errs = append(errs, fmt.Errorf("%s-%d: %w", tp.Topic, tp.Partition, kerr.ErrorForCode(rp.ErrorCode)))
				}
			}
		}
	}
	return done, errors.Join(errs...)
}

// txnVerifier is handler.TxnVerifier: AddPartitionsToTxn v5 (kgo sends v4 to a coordinator
// that has only v4) to the transactional id's coordinator, this broker's own in process. As
// Kafka's AddPartitionsToTxnManager it batches per coordinator node: one request in flight
// per node, the verifications that arrive meanwhile go together in the next one (one entry per
// transactional id in a request; a second one for the same id waits for the request after).
type txnVerifier struct {
	b *Broker

	mu     sync.Mutex
	queues map[int32]*verifyQueue // by coordinator node
}

type verifyQueue struct {
	busy    bool // a caller is sending for this node
	pending []*verifyCall
}

type verifyCall struct {
	tx   kmsg.AddPartitionsToTxnRequestTransaction
	res  chan verifyResult // buffered: the sender never waits for a caller
	lead chan struct{}     // closed when this caller is to send the next request
}

type verifyResult struct {
	tx  *kmsg.AddPartitionsToTxnResponseTransaction
	err error
}

func (v *txnVerifier) AddPartitions(ctx context.Context, txnID string, pid int64, epoch int16,
	partitions []metadata.TopicPartition, verifyOnly bool) (map[metadata.TopicPartition]error, error) {
	node, ok := v.coordinator(txnID)
	if !ok {
		return nil, fmt.Errorf("transaction coordinator of %q: %w", txnID, kerr.CoordinatorNotAvailable)
	}
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = txnID, pid, epoch, verifyOnly
	idx := map[string]int{}
	for _, tp := range partitions {
		i, ok := idx[tp.Topic]
		if !ok {
			i = len(tx.Topics)
			idx[tp.Topic] = i
			t := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			t.Topic = tp.Topic
			tx.Topics = append(tx.Topics, t)
		}
		tx.Topics[i].Partitions = append(tx.Topics[i].Partitions, tp.Partition)
	}
	r, err := v.call(ctx, node, tx)
	if err != nil {
		return nil, err
	}
	out := make(map[metadata.TopicPartition]error, len(partitions))
	answered := map[metadata.TopicPartition]bool{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			tp := metadata.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			answered[tp] = true
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				out[tp] = err
			}
		}
	}
	for _, tp := range partitions {
		if !answered[tp] {
			out[tp] = fmt.Errorf("transaction coordinator %d did not answer for %s: %w", node, tp, kerr.UnknownServerError)
		}
	}
	return out, nil
}

// call queues tx for node and returns its answer, sending the node's next request itself when
// no other caller is.
func (v *txnVerifier) call(ctx context.Context, node int32, tx kmsg.AddPartitionsToTxnRequestTransaction) (*kmsg.AddPartitionsToTxnResponseTransaction, error) {
	c := &verifyCall{tx: tx, res: make(chan verifyResult, 1), lead: make(chan struct{})}
	v.mu.Lock()
	if v.queues == nil {
		v.queues = map[int32]*verifyQueue{}
	}
	q := v.queues[node]
	if q == nil {
		q = &verifyQueue{}
		v.queues[node] = q
	}
	q.pending = append(q.pending, c)
	lead := !q.busy
	q.busy = true
	v.mu.Unlock()
	if !lead {
		select {
		case r := <-c.res:
			return r.tx, r.err
		case <-c.lead:
		case <-ctx.Done():
			v.mu.Lock()
			for i, p := range q.pending {
				if p == c {
					q.pending = append(q.pending[:i], q.pending[i+1:]...)
					break
				}
			}
			select {
			case <-c.lead: // handed the lead: pass it on
				v.handOffLocked(q)
			default:
			}
			v.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	v.send(node, q)
	r := <-c.res // the request just sent held c: it was first in line
	return r.tx, r.err
}

// handOffLocked makes the first waiting caller the next sender, or marks q idle.
// REQUIRES: v.mu held.
func (v *txnVerifier) handOffLocked(q *verifyQueue) {
	if len(q.pending) == 0 {
		q.busy = false
		return
	}
	close(q.pending[0].lead)
}

// send sends one request with the pending calls of node (one per transactional id, in order)
// and answers them.
func (v *txnVerifier) send(node int32, q *verifyQueue) {
	v.mu.Lock()
	var batch, rest []*verifyCall
	seen := map[string]bool{}
	for _, c := range q.pending {
		if seen[c.tx.TransactionalID] {
			rest = append(rest, c)
			continue
		}
		seen[c.tx.TransactionalID] = true
		batch = append(batch, c)
	}
	q.pending = rest
	v.mu.Unlock()

	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	for _, c := range batch {
		req.Transactions = append(req.Transactions, c.tx)
	}
	var resp *kmsg.AddPartitionsToTxnResponse
	var err error
	if node == v.b.cfg.NodeID && v.b.txns != nil {
		resp = v.b.txns.AddPartitionsToTxn(req)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var raw kmsg.Response
		raw, err = v.b.peers.send(ctx, node, req)
		cancel()
		if err != nil {
			err = fmt.Errorf("transaction coordinator %d: %v: %w", node, err, kerr.CoordinatorNotAvailable)
		} else {
			resp = raw.(*kmsg.AddPartitionsToTxnResponse)
		}
	}
	if err == nil {
		if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
			err = fmt.Errorf("transaction coordinator %d: %w", node, e)
		}
	}
	for i, c := range batch {
		switch {
		case err != nil:
			c.res <- verifyResult{err: err}
		case i < len(resp.Transactions) && resp.Transactions[i].TransactionalID == c.tx.TransactionalID:
			c.res <- verifyResult{tx: &resp.Transactions[i]}
		default:
			c.res <- verifyResult{err: fmt.Errorf("transaction coordinator %d did not answer for %q: %w", node, c.tx.TransactionalID, kerr.UnknownServerError)}
		}
	}
	v.mu.Lock()
	v.handOffLocked(q)
	v.mu.Unlock()
}

// coordinator is the node leading txnID's __transaction_state partition.
func (v *txnVerifier) coordinator(txnID string) (int32, bool) {
	t, ok := v.b.meta.Image().Topic(metadata.TransactionStateTopic)
	if !ok || len(t.Partitions) == 0 {
		return -1, false
	}
	p := t.Partitions[v.b.txnPartition(txnID, int32(len(t.Partitions)))]
	return p.Leader, p.Leader >= 0
}

// txnPartition is the __transaction_state partition of a transactional id (the group hash, as
// Kafka's TransactionStateManager.partitionFor).
func (b *Broker) txnPartition(txnID string, n int32) int32 { return group.OffsetsPartition(txnID, n) }
