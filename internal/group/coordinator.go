// Package group is Moldau's classic consumer group coordinator: group membership, the rebalance
// state machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead) and committed
// offsets, behaving as Apache Kafka's GroupCoordinator does.
//
// The coordinator takes and returns kmsg requests and responses so the handlers stay thin.
// JoinGroup and SyncGroup block (long-poll) until their rebalance step completes or the ctx is
// done. State is persisted through a Store as Kafka's __consumer_offsets records.
//
// Transactional offsets (txn_offset_commit.go) are held per group and producer until the
// transaction's marker reaches the group's __consumer_offsets partition (CompleteTxn).
//
// Lock order: group.mu before Coordinator.mu. Coordinator.mu only guards the group map (and the
// owned partitions, CompleteTxn's index of open transactions) and is never held while calling
// into a group; a group's lock is held while appending to the Store. CompleteTxn takes
// Coordinator.mu alone, then each group's mu in turn; TxnOffsetCommit's verification (a round
// trip to the transaction coordinator) runs with no lock held.
package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Config holds the group coordinator's broker settings.
//
// The zero value of InitialRebalanceDelay means no delay (what tests want); DefaultConfig returns
// Kafka's defaults. Zero durations of the other fields select Kafka's defaults.
type Config struct {
	InitialRebalanceDelay                time.Duration // group.initial.rebalance.delay.ms, default 3s (tests: 0)
	MinSessionTimeout, MaxSessionTimeout time.Duration // group.{min,max}.session.timeout.ms: 6s, 30min
	OffsetsRetention                     time.Duration // offsets.retention.minutes, default 7d

	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms, default 10min.
	OffsetsRetentionCheckInterval time.Duration
	// OffsetMetadataMaxBytes is offset.metadata.max.bytes, default 4096.
	OffsetMetadataMaxBytes int
	// PartitionExists, when set, validates the partitions of OffsetCommit and OffsetDelete
	// (UNKNOWN_TOPIC_OR_PARTITION otherwise). nil accepts every topic and partition.
	PartitionExists func(topic string, partition int32) bool

	// OffsetsPartitions, when set, is the number of __consumer_offsets partitions and puts the
	// coordinator in cluster mode: it serves only the groups of partitions it leads (Elect,
	// Resign; ownership.go). Zero: it owns every group and loads the whole Store at start.
	OffsetsPartitions int32

	// Logger receives the coordinator's warnings: records skipped at load, a failed load. nil
	// discards them.
	Logger *slog.Logger
	// RecordsSkipped, when set, counts the stored records the load could not decode and skipped.
	RecordsSkipped Counter
}

// Counter is a monotonic counter; a prometheus.Counter is one.
type Counter interface{ Inc() }

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		InitialRebalanceDelay:         3 * time.Second,
		MinSessionTimeout:             6 * time.Second,
		MaxSessionTimeout:             30 * time.Minute,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,
		OffsetMetadataMaxBytes:        4096,
	}
}

func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = d.MinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = d.MaxSessionTimeout
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = d.OffsetsRetention
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = d.OffsetsRetentionCheckInterval
	}
	if cfg.OffsetMetadataMaxBytes <= 0 {
		cfg.OffsetMetadataMaxBytes = d.OffsetMetadataMaxBytes
	}
	return cfg
}

// newMemberJoinTimeout bounds how long a new member's first JoinGroup may wait in a rebalance
// (Kafka's GroupCoordinator.NewMemberJoinTimeoutMs).
const newMemberJoinTimeout = 5 * time.Minute

// Clock gives the coordinator time and timers, so tests can drive session and rebalance
// timeouts without sleeping.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for a test clock, from its Advance) once d has
	// elapsed, unless the returned Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Coordinator is the group coordinator for all groups of this broker.
type Coordinator struct {
	cfg   Config
	store Store
	clock Clock
	log   *slog.Logger

	loaded   chan struct{}  // closed when the Store replay finished
	loadErr  error          // set before loaded is closed
	stopLoad chan struct{}  // closed by Close: the replay stops at its next record
	loads    sync.WaitGroup // per-partition replays (Elect)

	mu struct {
		sync.Mutex
		groups         map[string]*group
		owned          map[int32]*ownedPartition // cluster mode: the partitions this broker leads
		closed         bool
		retentionTimer Timer
		// txns names, per producer id, the groups that may hold pending transactional offsets
		// of it (CompleteTxn's index; the groups' txnOffsets are the truth).
		txns map[int64]map[string]struct{}
		// installed is set once the whole-store replay installed its groups (without
		// OffsetsPartitions); until then CompleteTxn queues its markers in early.
		installed bool
		early     []completion
	}
}

// NewCoordinator builds a coordinator and starts replaying the store in the background; until
// the replay finishes requests get COORDINATOR_LOAD_IN_PROGRESS. A nil store keeps state in memory
// only; a nil clock is the system clock.
func NewCoordinator(cfg Config, store Store, clock Clock) *Coordinator {
	if clock == nil {
		clock = realClock{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Coordinator{
		cfg:      cfg.withDefaults(),
		store:    store,
		clock:    clock,
		log:      logger,
		loaded:   make(chan struct{}),
		stopLoad: make(chan struct{}),
	}
	c.mu.groups = make(map[string]*group)
	c.mu.owned = make(map[int32]*ownedPartition)
	c.mu.txns = make(map[int64]map[string]struct{})
	go c.load()
	return c
}

func (c *Coordinator) load() {
	defer close(c.loaded)
	if c.store == nil || c.partitioned() {
		c.mu.Lock()
		c.mu.installed = true
		early := c.mu.early
		c.mu.early = nil
		c.mu.Unlock()
		c.completeAll(0, early)
		c.scheduleRetention() // partitions load when elected
		return
	}
	groups, err := replayWith(c, c.stopLoad, c.store.Load)
	if errors.Is(err, errLoadStopped) {
		c.loadErr = err // closed: status answers COORDINATOR_NOT_AVAILABLE anyway
		return
	}
	if err != nil {
		c.loadErr = fmt.Errorf("load group metadata: %w", err)
		c.log.Error("group coordinator failed to load; group requests answer COORDINATOR_NOT_AVAILABLE", "err", c.loadErr)
		return
	}
	c.mu.Lock()
	all := make([]*group, 0, len(groups))
	for name, g := range groups {
		c.mu.groups[name] = g
		all = append(all, g)
	}
	c.installTxnsLocked(all)
	c.mu.installed = true
	early := c.mu.early
	c.mu.early = nil
	c.mu.Unlock()
	c.completeAll(0, early)
	// Before loaded is closed, so no request sees a loaded member without its session timer.
	for _, g := range groups {
		g.startSessions()
	}
	c.scheduleRetention()
}

// WaitLoaded blocks until the store replay finished and returns its error, if any.
func (c *Coordinator) WaitLoaded(ctx context.Context) error {
	select {
	case <-c.loaded:
		return c.loadErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errLoadStopped ends a Store replay that Close interrupted.
var errLoadStopped = errors.New("group coordinator closed during load")

// Close stops the Store replay if it is still running and waits for it (the caller may close
// the store next), stops all timers and answers every blocked JoinGroup and SyncGroup with
// COORDINATOR_NOT_AVAILABLE. Later requests get COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		<-c.loaded
		return
	}
	c.mu.closed = true
	close(c.stopLoad)
	for _, op := range c.mu.owned {
		close(op.stop)
	}
	c.mu.owned = map[int32]*ownedPartition{}
	c.mu.Unlock()
	<-c.loaded // not under c.mu: the replay's end takes it
	c.loads.Wait()
	c.mu.Lock()
	if c.mu.retentionTimer != nil {
		c.mu.retentionTimer.Stop()
	}
	groups := make([]*group, 0, len(c.mu.groups))
	for _, g := range c.mu.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdownLocked()
		g.mu.Unlock()
	}
}

// status returns the error code every request gets while the coordinator is not serving.
func (c *Coordinator) status() int16 {
	select {
	case <-c.loaded:
	default:
		return kerr.CoordinatorLoadInProgress.Code
	}
	if c.loadErr != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	c.mu.Lock()
	closed := c.mu.closed
	c.mu.Unlock()
	if closed {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// lockGroup returns the named group locked, creating an Empty group if create is set. It
// returns nil if the group does not exist and create is false. A locked group may be Dead only if
// create is false.
func (c *Coordinator) lockGroup(name string, create bool) *group {
	for {
		c.mu.Lock()
		g, ok := c.mu.groups[name]
		if !ok {
			if !create || c.mu.closed {
				c.mu.Unlock()
				return nil
			}
			g = newGroup(c, name)
			c.mu.groups[name] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if g.state == stateDead && create {
			// Deleted between the lookup and the lock: it is gone from the map, so retry.
			g.mu.Unlock()
			continue
		}
		return g
	}
}

// removeGroup drops g from the map. REQUIRES: g.mu is held (lock order group.mu, Coordinator.mu).
func (c *Coordinator) removeGroup(g *group) {
	c.mu.Lock()
	if c.mu.groups[g.name] == g {
		delete(c.mu.groups, g.name)
	}
	c.mu.Unlock()
}

// snapshotGroups returns all groups, sorted by nothing in particular.
func (c *Coordinator) snapshotGroups() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.mu.groups))
	for _, g := range c.mu.groups {
		out = append(out, g)
	}
	return out
}

// storeErrorCode maps a Store.Append error to the Kafka error code a client gets, as Kafka's
// GroupMetadataManager does. commit selects the offset commit mapping.
func storeErrorCode(err error, commit bool) int16 {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		// A local write failure: retriable for the client.
		return kerr.CoordinatorNotAvailable.Code
	}
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge, kerr.RecordListTooLarge:
		if commit {
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	case kerr.CoordinatorNotAvailable, kerr.NotCoordinator, kerr.CoordinatorLoadInProgress:
		return ke.Code
	case kerr.InvalidTxnState, kerr.InvalidProducerEpoch, kerr.ProducerFenced, kerr.TransactionAbortable:
		// A transactional write the partition refused (a stale verification guard, a fenced
		// epoch): the client's answer, as Kafka's coordinator runtime passes it on.
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

type clientKey struct{}

type clientInfo struct{ id, host string }

// WithClient returns ctx carrying the connection's client id and host; the handler calls it before
// JoinGroup (the request has no host field).
func WithClient(ctx context.Context, clientID, clientHost string) context.Context {
	return context.WithValue(ctx, clientKey{}, clientInfo{clientID, clientHost})
}

func clientFrom(ctx context.Context) clientInfo {
	ci, _ := ctx.Value(clientKey{}).(clientInfo)
	return ci
}
