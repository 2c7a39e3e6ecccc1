// Package txn is Moldau's transaction coordinator: the state of every transactional id
// (TransactionMetadata in Kafka), InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// DescribeTransactions and ListTransactions, the completion of a transaction by its markers,
// and the aborts of transactions that ran past their timeout, as Apache Kafka's
// TransactionCoordinator, TransactionStateManager and TransactionMarkerChannelManager do.
//
// The coordinator takes and returns kmsg requests and responses so the handlers stay thin. Its
// state is persisted through a Store as Kafka's __transaction_state records (TxnMetadataKey and
// TxnMetadataValue); a transactional id belongs to partition abs(javaHash(id)) % Partitions, and
// this coordinator serves the ids of the partitions it was elected for (Elect, Resign), with the
// coordinator epoch it was given (the partition's leader epoch). Markers go out through a
// MarkerSender; the broker implements it with WriteTxnMarkers to the partition leaders.
//
// Lock order: entry.mu -> Coordinator.mu. Coordinator.mu guards the partition and id maps and is
// never held while calling the Store, the MarkerSender or the ProducerIDs; an entry's lock is
// held across the Store append of its transition (as a group's lock is in package group), never
// across a marker send.
package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/group"
)

// Config holds the transaction coordinator's broker settings. Zero durations select Kafka's
// defaults.
type Config struct {
	// Partitions is the number of __transaction_state partitions
	// (transaction.state.log.num.partitions, 50).
	Partitions int32
	// OffsetsPartitions is the number of __consumer_offsets partitions: AddOffsetsToTxn adds the
	// group's partition to the transaction.
	OffsetsPartitions int32
	// MaxTimeout is transaction.max.timeout.ms (15 min): a longer transaction.timeout.ms is
	// INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// AbortInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s): how
	// often transactions past their timeout are aborted.
	AbortInterval time.Duration
	// ExpireInterval is transaction.remove.expired.transaction.cleanup.interval.ms (1 h).
	ExpireInterval time.Duration
	// IDExpiration is transactional.id.expiration.ms (7 days): an id idle this long (no
	// transaction ongoing) is removed.
	IDExpiration time.Duration
	// PartitionExists validates the partitions of AddPartitionsToTxn (UNKNOWN_TOPIC_OR_PARTITION
	// otherwise); nil accepts every partition.
	PartitionExists func(topic string, partition int32) bool
	// MarkerRetryBackoff is the pause before a Complete write that failed is tried again (100 ms).
	MarkerRetryBackoff time.Duration
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		Partitions:         50,
		OffsetsPartitions:  50,
		MaxTimeout:         15 * time.Minute,
		AbortInterval:      10 * time.Second,
		ExpireInterval:     time.Hour,
		IDExpiration:       7 * 24 * time.Hour,
		MarkerRetryBackoff: 100 * time.Millisecond,
	}
}

func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if cfg.Partitions <= 0 {
		cfg.Partitions = d.Partitions
	}
	if cfg.OffsetsPartitions <= 0 {
		cfg.OffsetsPartitions = d.OffsetsPartitions
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = d.MaxTimeout
	}
	if cfg.AbortInterval <= 0 {
		cfg.AbortInterval = d.AbortInterval
	}
	if cfg.ExpireInterval <= 0 {
		cfg.ExpireInterval = d.ExpireInterval
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = d.IDExpiration
	}
	if cfg.MarkerRetryBackoff <= 0 {
		cfg.MarkerRetryBackoff = d.MarkerRetryBackoff
	}
	return cfg
}

// Clock gives the coordinator time and timers (tests drive it).
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a test clock, from its Advance) once d
	// has elapsed, unless the returned Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// StoredRecord is one record of a __transaction_state partition as LoadPartition replays it.
type StoredRecord struct {
	Offset     int64
	Key, Value []byte // a nil Value is a tombstone
	// Err: the store could not decode what it holds at Offset; the load skips it.
	Err error
}

// Store persists the coordinator's records in __transaction_state.
type Store interface {
	// Append writes one record (value nil: a tombstone) to partition p and returns once it is
	// durable and on every in-sync replica (Kafka writes the transaction log with acks=all). An
	// error wrapping NOT_LEADER_OR_FOLLOWER (or NOT_COORDINATOR) means this broker lost p.
	Append(p int32, key, value []byte) error
	// LoadPartition replays partition p's records, oldest first.
	LoadPartition(p int32, fn func(StoredRecord) error) error
}

// ProducerIDs hands out new producer ids (the controller's blocks).
type ProducerIDs interface {
	NextProducerID(ctx context.Context) (int64, error)
}

// Markers is one transaction's markers: WriteTxnMarkers for every partition.
type Markers struct {
	TransactionalID    string
	ProducerID         int64
	ProducerEpoch      int16
	Commit             bool
	CoordinatorEpoch   int32
	TransactionVersion int16 // 2: the markers of a TV2 transaction (WriteTxnMarkers v2)
	Partitions         []TopicPartition
}

// ErrMarkersFenced is what a MarkerSender returns when a partition leader refused a marker with
// INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED: a newer coordinator or producer epoch
// exists, so this coordinator stops completing the transaction (Kafka drops it the same way).
var ErrMarkersFenced = errors.New("txn: markers fenced by a newer coordinator or producer epoch")

// MarkerSender writes markers to the partition leaders.
type MarkerSender interface {
	// WriteMarkers returns nil once every partition's leader wrote the marker (partitions of
	// deleted topics are skipped), retrying as Kafka's TransactionMarkerChannelManager does
	// until then; ErrMarkersFenced when a leader fenced it; ctx's error when ctx ends first.
	WriteMarkers(ctx context.Context, m Markers) error
}

// Coordinator is the transaction coordinator of this broker.
type Coordinator struct {
	cfg     Config
	store   Store
	markers MarkerSender
	pids    ProducerIDs
	clock   Clock
	log     *slog.Logger

	wg sync.WaitGroup // loads and completions

	mu struct {
		sync.Mutex
		owned   map[int32]*owned
		closed  bool
		timers  []Timer
		stopped chan struct{} // closed by Close
	}
}

// owned is one __transaction_state partition this coordinator leads.
type owned struct {
	p      int32
	epoch  int32         // the coordinator epoch: the partition's leader epoch
	loaded chan struct{} // closed when the replay finished
	err    error         // set before loaded is closed
	ctx    context.Context
	cancel context.CancelFunc // Resign or Close: ends the load, marker sends and completions
	ids    map[string]*entry  // REQUIRES: Coordinator.mu
}

// entry is one transactional id.
type entry struct {
	id   string
	part *owned
	mu   sync.Mutex
	m    *meta // nil until the first InitProducerId's record is written; REQUIRES: mu
}

// New builds a coordinator that owns no partition yet (Elect). A nil clock is the system
// clock.
func New(cfg Config, store Store, markers MarkerSender, pids ProducerIDs, clock Clock) *Coordinator {
	if clock == nil {
		clock = realClock{}
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{cfg: cfg, store: store, markers: markers, pids: pids, clock: clock, log: logger}
	c.mu.owned = map[int32]*owned{}
	c.mu.stopped = make(chan struct{})
	c.schedule(cfg.AbortInterval, c.AbortTimedOut)
	c.schedule(cfg.ExpireInterval, c.ExpireIDs)
	return c
}

// schedule runs fn every d until Close.
func (c *Coordinator) schedule(d time.Duration, fn func()) {
	var tick func()
	tick = func() {
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return
		}
		c.wg.Add(1) // Close waits for a round in progress
		c.mu.Unlock()
		defer c.wg.Done()
		fn()
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.mu.closed {
			c.mu.timers = append(c.mu.timers, c.clock.AfterFunc(d, tick))
		}
	}
	c.mu.Lock()
	c.mu.timers = append(c.mu.timers, c.clock.AfterFunc(d, tick))
	c.mu.Unlock()
}

// Close resigns every partition and waits for the loads and completions to end.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	close(c.mu.stopped)
	for _, t := range c.mu.timers {
		t.Stop()
	}
	for p, o := range c.mu.owned {
		o.cancel()
		delete(c.mu.owned, p)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Partitions is the number of __transaction_state partitions the coordinator hashes ids over.
func (c *Coordinator) Partitions() int32 { return c.cfg.Partitions }

// Partition is the __transaction_state partition of a transactional id (Kafka's
// TransactionStateManager.partitionFor).
func (c *Coordinator) Partition(txnID string) int32 {
	return group.OffsetsPartition(txnID, c.cfg.Partitions)
}

// Elect makes this coordinator the owner of partition p with coordinator epoch epoch and loads
// it in the background (COORDINATOR_LOAD_IN_PROGRESS until done); the transactions the load
// finds in PrepareCommit or PrepareAbort are completed (their markers sent again). Electing an
// owned partition at the same epoch does nothing; at a newer epoch (this broker lost and won
// the leadership between two syncs) it loads again.
func (c *Coordinator) Elect(p int32, epoch int32) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	if o, ok := c.mu.owned[p]; ok {
		if o.epoch >= epoch {
			c.mu.Unlock()
			return
		}
		o.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &owned{p: p, epoch: epoch, loaded: make(chan struct{}), ctx: ctx, cancel: cancel, ids: map[string]*entry{}}
	c.mu.owned[p] = o
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		c.load(o)
	}()
}

// Resign gives up partition p: its ids are dropped (in-flight completions stop; the next
// coordinator finishes them) and later requests for them get NOT_COORDINATOR.
func (c *Coordinator) Resign(p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.mu.owned[p]; ok {
		o.cancel()
		delete(c.mu.owned, p)
	}
}

// Owns reports whether this coordinator leads partition p, and at which coordinator epoch.
func (c *Coordinator) Owns(p int32) (int32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.mu.owned[p]
	if !ok {
		return -1, false
	}
	return o.epoch, true
}

var errLoadStopped = errors.New("txn: load stopped")

func (c *Coordinator) load(o *owned) {
	ids := map[string]*meta{}
	err := c.store.LoadPartition(o.p, func(r StoredRecord) error {
		if o.ctx.Err() != nil {
			return errLoadStopped
		}
		if r.Err != nil {
			c.log.Warn("transaction coordinator: skipped an undecodable record", "partition", o.p, "offset", r.Offset, "err", r.Err)
			return nil
		}
		id, err := decodeKey(r.Key)
		if err != nil {
			c.log.Warn("transaction coordinator: skipped a record", "partition", o.p, "offset", r.Offset, "err", err)
			return nil
		}
		m, err := decodeValue(r.Value)
		if err != nil {
			c.log.Warn("transaction coordinator: skipped a record", "partition", o.p, "offset", r.Offset, "id", id, "err", err)
			return nil
		}
		if m == nil || m.State == Dead {
			delete(ids, id)
			return nil
		}
		ids[id] = m
		return nil
	})
	if err != nil {
		if !errors.Is(err, errLoadStopped) {
			c.log.Error("transaction coordinator: load failed; its ids answer COORDINATOR_NOT_AVAILABLE", "partition", o.p, "err", err)
		}
		o.err = fmt.Errorf("load __transaction_state-%d: %w", o.p, err)
		close(o.loaded)
		return
	}
	var finish []*entry
	c.mu.Lock()
	if c.mu.owned[o.p] != o {
		c.mu.Unlock()
		o.err = errLoadStopped
		close(o.loaded)
		return
	}
	for id, m := range ids {
		e := &entry{id: id, part: o, m: m}
		o.ids[id] = e
		if m.State == PrepareCommit || m.State == PrepareAbort {
			finish = append(finish, e)
		}
	}
	c.mu.Unlock()
	close(o.loaded)
	// As Kafka's loadTransactionsForTxnTopicPartition: the transactions whose EndTxn was
	// written but not completed get their markers again, from this coordinator epoch.
	for _, e := range finish {
		e.mu.Lock()
		c.startCompletion(e, e.m)
		e.mu.Unlock()
	}
}

// status is the error for a request about txnID when this coordinator cannot serve it.
func (c *Coordinator) status(txnID string) (*owned, int16) {
	p := c.Partition(txnID)
	c.mu.Lock()
	o, ok := c.mu.owned[p]
	closed := c.mu.closed
	c.mu.Unlock()
	if closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if !ok {
		return nil, kerr.NotCoordinator.Code
	}
	select {
	case <-o.loaded:
	default:
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	if o.err != nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	return o, 0
}

// lockEntry returns txnID's entry locked, or an error code. With create a missing entry is
// made (its m nil). The entry is checked to still belong to an owned partition after locking.
func (c *Coordinator) lockEntry(txnID string, create bool) (*entry, int16) {
	o, code := c.status(txnID)
	if code != 0 {
		return nil, code
	}
	c.mu.Lock()
	e, ok := o.ids[txnID]
	if !ok {
		if !create {
			c.mu.Unlock()
			return nil, 0
		}
		e = &entry{id: txnID, part: o}
		o.ids[txnID] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	if !c.current(e) {
		e.mu.Unlock()
		return nil, kerr.NotCoordinator.Code
	}
	return e, 0
}

// current reports whether e still belongs to this coordinator (its partition was not resigned
// or re-elected, and e was not expired). REQUIRES: e.mu held.
func (c *Coordinator) current(e *entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.owned[e.part.p] == e.part && e.part.ids[e.id] == e
}

// write stores the next state of e and installs it. REQUIRES: e.mu held.
func (c *Coordinator) write(e *entry, next *meta) int16 {
	if e.m != nil && !canTransition(e.m.State, next.State) {
		c.log.Error("transaction coordinator: illegal transition refused", "id", e.id, "from", e.m.State, "to", next.State)
		return kerr.UnknownServerError.Code
	}
	if err := c.store.Append(e.part.p, encodeKey(e.id), encodeValue(next)); err != nil {
		c.log.Warn("transaction coordinator: write __transaction_state", "id", e.id, "state", next.State, "err", err)
		return storeErrorCode(err)
	}
	e.m = next
	return 0
}

// storeErrorCode is Kafka's TransactionStateManager.appendTransactionToLog error mapping.
func storeErrorCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code, kerr.RequestTimedOut.Code:
			return kerr.CoordinatorNotAvailable.Code
		case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code, kerr.NotCoordinator.Code:
			return kerr.NotCoordinator.Code
		case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
			return kerr.UnknownServerError.Code
		}
	}
	return kerr.CoordinatorNotAvailable.Code
}

func (c *Coordinator) nowMs() int64 { return c.clock.Now().UnixMilli() }

// clone copies m (the partitions too) for building the next state.
func (m *meta) clone() *meta {
	n := *m
	n.Partitions = append([]TopicPartition(nil), m.Partitions...)
	return &n
}
