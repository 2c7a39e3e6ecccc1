// Package partition is one partition replica: its log, high watermark, leader epoch and the
// idempotent producer state, with the wake-ups long-polling fetches wait on.
package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// Settings are the topic-level settings a partition applies.
type Settings struct {
	Log log.Config
	// MaxMessageBytes is max.message.bytes: the largest record batch accepted.
	MaxMessageBytes int32
	// LogAppendTime is message.timestamp.type=LogAppendTime: the broker stamps batches.
	LogAppendTime bool
	// MinInsyncReplicas is min.insync.replicas, checked for acks=all.
	MinInsyncReplicas int
	// SyncBeforeAck is log.flush.interval.messages=1 (flush.messages=1), the default: a produce
	// (and an offset commit, on __consumer_offsets) is answered only once its batches are on disk,
	// through the log dir's group-commit Syncer.
	SyncBeforeAck bool
	// ReplicaLagTimeMax is replica.lag.time.max.ms, for the high watermark rule (a caught-up
	// replica outside the ISR counts); 0: DefaultReplicaLagTimeMax.
	ReplicaLagTimeMax time.Duration
}

// Partition is a replica of one topic partition on this broker.
//
// Lock order: appendMu, then rep, then the log's internal locks, then watchMu. Readers (fetch, list offsets) do not take
// appendMu: they read the log, which is safe concurrently with appends, and the atomics.
type Partition struct {
	Topic string
	Index int32

	log      *log.Log
	path     string // the partition's directory
	dir      *LogDir
	syncer   *log.Syncer // the log dir's; used when Settings.SyncBeforeAck
	settings atomic.Pointer[Settings]
	clock    log.Clock

	appendMu  sync.Mutex
	producers producerStates // REQUIRES: appendMu
	// guards are the producers' registered KIP-890 verifications (txn.go). REQUIRES: appendMu.
	guards    map[int64]guardEntry
	nextGuard uint64 // REQUIRES: appendMu
	// txns are the open and not yet stable transactions, for the last stable offset (txn.go);
	// written under appendMu and its own leaf lock.
	txns txnTracker
	// replayedFrom is the offset Open replayed batch headers from to rebuild producers (the
	// snapshot's, or the log start): for tests.
	replayedFrom int64

	// highWatermark is the offset below which records are committed and visible to consumers.
	// INVARIANT: LogStartOffset <= highWatermark <= LogEndOffset.
	highWatermark      atomic.Int64
	startHighWatermark int64 // set by Open: StartHighWatermark of the checkpoint
	leaderEpoch        atomic.Int32
	isrSize            atomic.Int32 // size of the committed ISR (0 on a follower)
	role               atomic.Int32 // a role, mirrored from rep.role for lock-free reads

	rep struct {
		sync.Mutex
		replication
	}

	watchMu  sync.Mutex
	watchers map[chan<- struct{}]struct{} // signalled (non-blocking) when the high watermark moves
}

// LogDir is what the partitions of one log dir share.
//
// A log dir goes offline (Fail) when a write or fsync in it failed in a way that leaves the state
// of its data unknown (Kafka's LogDirFailureChannel): a failed fsync of any of its files, a failed
// group-commit sync, an EIO, a failed write that could not be cut back. Its partitions then answer
// KAFKA_STORAGE_ERROR to produce and fetch until the broker restarts; other log dirs keep
// working. A write refused for lack of space and cut back is not a failure: the append fails
// with KAFKA_STORAGE_ERROR and the next one is tried again.
type LogDir struct {
	Path string
	// FS is the filesystem the dir's files are on (nil: vfs.Default).
	FS vfs.FS
	// Syncer group-commits fsyncs for the dir (AckSyncer hands it out under SyncBeforeAck).
	Syncer *log.Syncer
	// CleanShutdown: the dir's log.DirCleanShutdownFile was there at start, so every log of the
	// dir was closed cleanly (log.OpenManaged).
	CleanShutdown bool
	// Logger hears when the dir goes offline (nil: slog.Default()).
	Logger *slog.Logger
	// HighWatermarks are the dir's checkpointed high watermarks (CheckpointFile) read at start, by
	// DirName; nil when there was none or it could not be read. Read-only once partitions open.
	HighWatermarks map[string]int64

	failed atomic.Pointer[error]
}

// Fail takes the log dir offline with err; the first error stays. Safe from any goroutine and
// with any lock held (it takes none).
func (d *LogDir) Fail(err error) {
	if d.failed.CompareAndSwap(nil, &err) {
		logger := d.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Error("log dir offline: its partitions answer KAFKA_STORAGE_ERROR until restart", "dir", d.Path, "err", err)
	}
}

// Err is why the log dir is offline, or nil while it is online.
func (d *LogDir) Err() error {
	if p := d.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (d *LogDir) fs() vfs.FS {
	if d.FS == nil {
		return vfs.Default
	}
	return d.FS
}

// Open opens (or creates) the partition's log in dir, a directory of the log dir ld, and
// rebuilds its producer state.
func Open(dir, topic string, index int32, s Settings, leaderEpoch int32, clock log.Clock, ld *LogDir) (*Partition, error) {
	if err := ld.Err(); err != nil {
		return nil, fmt.Errorf("open partition %s-%d: log dir %s is offline: %v: %w", topic, index, ld.Path, err, kerr.KafkaStorageError)
	}
	l, err := log.OpenManaged(dir, s.Log, clock, ld.CleanShutdown, log.WithFS(ld.fs()), log.OnFailure(ld.Fail))
	if err != nil {
		return nil, fmt.Errorf("open partition %s-%d: %w", topic, index, err)
	}
	p := &Partition{
		Topic:     topic,
		Index:     index,
		log:       l,
		path:      dir,
		dir:       ld,
		syncer:    ld.Syncer,
		clock:     clock,
		producers: make(producerStates),
		guards:    map[int64]guardEntry{},
		watchers:  make(map[chan<- struct{}]struct{}),
	}
	p.settings.Store(&s)
	p.leaderEpoch.Store(-1)
	if err := p.rebuildProducerState(); err != nil {
		l.Close()
		return nil, fmt.Errorf("open partition %s-%d: %w", topic, index, err)
	}
	// Start from the checkpointed high watermark, as Kafka does, so that a replica never exposes
	// more than was known committed. A leaderEpoch >= 0 makes it the sole leader (a single-node
	// partition): then the leader's rule, the high watermark is the smallest log end offset in
	// the ISR, and a single replica is its own ISR, so everything recovered is committed. A
	// leaderEpoch < 0 opens it with no role, for the replica manager to give it one
	// (BecomeLeader, BecomeFollower).
	cp, ok := ld.HighWatermarks[DirName(topic, index)]
	p.startHighWatermark = StartHighWatermark(cp, ok, l.LogStartOffset(), l.LogEndOffset())
	p.highWatermark.Store(p.startHighWatermark)
	if leaderEpoch >= 0 {
		if err := p.BecomeSoleLeader(leaderEpoch); err != nil {
			l.Close()
			return nil, err
		}
	}
	return p, nil
}

// StartHighWatermark is the high watermark a replica starts from: its checkpointed value (ok: the
// checkpoint has an entry) clamped to [logStart, logEnd], or logStart when there is no entry (a new
// partition, a lost or corrupt checkpoint): nothing is exposed that is not known to be committed.
// INVARIANT: logStart <= result <= logEnd.
func StartHighWatermark(checkpointed int64, ok bool, logStart, logEnd int64) int64 {
	if !ok {
		return logStart
	}
	return min(max(checkpointed, logStart), logEnd)
}

// StartedFrom is the high watermark the partition started from (StartHighWatermark), before the
// leader's rule moved it to the log end offset.
func (p *Partition) StartedFrom() int64 { return p.startHighWatermark }

// rebuildProducerState restores idempotent producer state after a restart: from the producer
// snapshot Close wrote (snapshot.go) and the batches after it, or by replaying every batch header
// of the log when there is no usable snapshot.
func (p *Partition) rebuildProducerState() error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	start := p.log.LogStartOffset()
	from, ps := start, make(producerStates)
	if sps, off, ok := p.loadProducerSnapshot(); ok {
		ps, from = sps, off
	}
	// A segment whose aborted-transaction index could not be read gets its entries back from a
	// replay of the whole log (the replay re-adds the entry of every abort marker it meets).
	lost := p.log.TxnIndexLostFrom() != math.MaxInt64
	if lost {
		from, ps = start, make(producerStates)
	}
	p.replayedFrom = from
	if err := p.replayLocked(ps, from); err != nil {
		return err
	}
	if lost {
		return p.log.PersistTxnIndexes()
	}
	return nil
}

// UpdateSettings applies changed topic configuration.
func (p *Partition) UpdateSettings(s Settings) {
	p.settings.Store(&s)
	p.log.SetConfig(s.Log)
}

// Settings returns the current settings.
func (p *Partition) Settings() Settings { return *p.settings.Load() }

// LeaderEpoch is the current leader epoch.
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// HighWatermark is the last committed offset + 1.
func (p *Partition) HighWatermark() int64 { return p.highWatermark.Load() }

// LogStartOffset is the first offset in the log.
func (p *Partition) LogStartOffset() int64 { return p.log.LogStartOffset() }

// LogEndOffset is the next offset to be assigned.
func (p *Partition) LogEndOffset() int64 { return p.log.LogEndOffset() }

// Size is the number of bytes of the log.
func (p *Partition) Size() int64 { return p.log.Size() }

// Log exposes the underlying log for maintenance tasks (retention).
func (p *Partition) Log() *log.Log { return p.log }

// AppendResult is what a produce answers for a partition.
type AppendResult struct {
	BaseOffset     int64
	LastOffset     int64 // the last offset appended (of the original, for a duplicate): acks=all waits for it
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
}

// Origin is who an append comes from, as Kafka's AppendOrigin: it decides what a batch may carry.
type Origin uint8

const (
	// OriginClient is a Produce request. Its batches are checked as Kafka's LogValidator checks a
	// client's: no control batches (transaction markers are the broker's to write), an
	// idempotent or transactional batch carries a sequence (checked against the producer's
	// state), and a transactional batch that opens a transaction must carry its KIP-890
	// verification when one was asked for (AppendVerified). The zero value, so that an append that
	// does not say who sent it gets the strictest checks.
	OriginClient Origin = iota
	// OriginCoordinator is the broker's own coordinators writing their internal topics (the group
	// coordinator's __consumer_offsets records; transaction markers later).
	OriginCoordinator
	// OriginReplication is a follower appending what it fetched from the leader, already validated
	// there. Nothing uses it until replication exists.
	OriginReplication
)

func (o Origin) String() string {
	switch o {
	case OriginClient:
		return "client"
	case OriginCoordinator:
		return "coordinator"
	case OriginReplication:
		return "replication"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// checkOrigin refuses what a batch of h may not carry when it comes from origin.
func (p *Partition) checkOrigin(h record.BatchHeader, origin Origin) error {
	if origin != OriginClient {
		return nil
	}
	switch {
	case h.Control():
		return fmt.Errorf("clients are not allowed to write control records in topic partition %s-%d: %w",
			p.Topic, p.Index, kerr.InvalidRecord)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return fmt.Errorf("invalid sequence number %d in record batch with producerId %d in topic partition %s-%d: %w",
			h.BaseSequence, h.ProducerID, p.Topic, p.Index, kerr.InvalidRecord)
	}
	return nil
}

// Append validates and appends the record batches of one produce request partition, or of one
// write of a coordinator. acks is the request's acks (-1 checks min.insync.replicas); origin is
// who sent the batches (see Origin). Errors wrap a kerr.Error with the Kafka code.
//
// All batches are validated before any is written, so a request is appended whole or not at all.
// Append asks for no KIP-890 verification: AppendVerified with the zero guard.
func (p *Partition) Append(records []byte, acks int16, origin Origin) (AppendResult, error) {
	return p.AppendVerified(records, acks, origin, VerificationGuard{})
}

// appendableAsLeader is the first check of a leader's append (a produce, a marker): the
// partition is online, this replica leads it and, for an acks=all write, at least minISR
// replicas are in sync (NOT_ENOUGH_REPLICAS otherwise).
func (p *Partition) appendableAsLeader(acksAll bool, minISR int) error {
	if err := p.offline(); err != nil {
		return err
	}
	if !p.IsLeader() {
		return p.notLeader()
	}
	if acksAll && int(p.isrSize.Load()) < minISR {
		return fmt.Errorf("partition %s-%d has %d in-sync replicas, min.insync.replicas is %d: %w",
			p.Topic, p.Index, p.isrSize.Load(), minISR, kerr.NotEnoughReplicas)
	}
	return nil
}

// AppendVerified is Append for a produce that verified its transactional producer with the
// transaction coordinator under g (VerificationGuard): a transactional batch that opens a
// transaction must carry the guard still registered for its producer, else INVALID_TXN_STATE.
// The zero guard asks for no verification (transaction.partition.verification.enable=false,
// the coordinators' own writes).
func (p *Partition) AppendVerified(records []byte, acks int16, origin Origin, g VerificationGuard) (AppendResult, error) {
	s := p.settings.Load()
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1}
	if err := p.appendableAsLeader(acks == -1, s.MinInsyncReplicas); err != nil {
		return res, err
	}
	batches, err := record.Split(records)
	if err != nil {
		return res, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.CorruptMessage)
	}
	if len(batches) == 0 {
		return res, fmt.Errorf("partition %s-%d: produce with no record batch: %w", p.Topic, p.Index, kerr.InvalidRecord)
	}
	headers := make([]record.BatchHeader, len(batches))
	for i, b := range batches {
		h, err := record.Validate(b)
		if err != nil {
			if errors.Is(err, record.ErrMagic) {
				return res, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.UnsupportedForMessageFormat)
			}
			return res, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.CorruptMessage)
		}
		if err := p.checkOrigin(h, origin); err != nil {
			return res, err
		}
		if int64(len(b)) > int64(s.MaxMessageBytes) {
			return res, fmt.Errorf("partition %s-%d: batch of %d bytes is over max.message.bytes %d: %w",
				p.Topic, p.Index, len(b), s.MaxMessageBytes, kerr.MessageTooLarge)
		}
		if s.Log.Compact && !h.Control() {
			if err := requireKeys(b); err != nil {
				return res, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.InvalidRecord)
			}
		}
		if h.ProducerID >= 0 && len(batches) > 1 {
			return res, fmt.Errorf("partition %s-%d: an idempotent produce carries exactly one batch: %w",
				p.Topic, p.Index, kerr.InvalidRecord)
		}
		headers[i] = h
	}

	return p.appendValidated(batches, headers, s, origin, g)
}

// AckSyncer returns the group-commit syncer that a produce to this partition must wait on
// (Syncer.Sync) before it is acknowledged, or nil when the flush policy does not ask for it.
// Callers appending to several partitions sync each distinct syncer once, after all appends, so
// one fsync of a log dir covers every partition of the request (and of concurrent requests).
func (p *Partition) AckSyncer() *log.Syncer {
	if p.settings.Load().SyncBeforeAck {
		return p.syncer
	}
	return nil
}

// appendValidated appends validated batches under appendMu: the idempotent duplicate check, the
// appends, the producer state and the high watermark.
func (p *Partition) appendValidated(batches [][]byte, headers []record.BatchHeader, s *Settings, origin Origin, g VerificationGuard) (AppendResult, error) {
	res := AppendResult{BaseOffset: -1, LogAppendTime: -1}
	var appendTime int64 = -1
	if s.LogAppendTime {
		appendTime = p.now().UnixMilli()
	}

	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	// Roles change under appendMu: checked again here, nothing is appended once this replica
	// stopped leading (BecomeFollower ran after Append's first check).
	if !p.IsLeader() {
		return res, p.notLeader()
	}
	if h := headers[0]; h.ProducerID >= 0 && origin != OriginClient {
		if err := p.producers.checkCoordinatorBatch(h); err != nil {
			return res, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
		}
		if err := p.checkGuardLocked(h, g); err != nil {
			return res, err
		}
	} else if h.ProducerID >= 0 {
		dup, err := p.producers.check(h)
		if err != nil {
			return res, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
		}
		if dup == nil {
			if err := p.checkGuardLocked(h, g); err != nil {
				return res, err
			}
		}
		if dup != nil {
			res.BaseOffset, res.LastOffset = dup.baseOffset, dup.lastOffset
			res.LogStartOffset = p.log.LogStartOffset()
			if s.LogAppendTime {
				res.LogAppendTime = dup.timestamp
			}
			return res, nil
		}
	}
	epoch := p.leaderEpoch.Load()
	defer p.snapshotIfRolled(p.log.NumSegments())
	for i, b := range batches {
		ar, err := p.log.Append(b, epoch, appendTime)
		if err != nil {
			return res, fmt.Errorf("partition %s-%d: append: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
		}
		h := headers[i]
		h.BaseOffset = ar.BaseOffset
		if appendTime >= 0 {
			h.MaxTimestamp = appendTime
		}
		if err := p.applyLocked(h, markerOf(h, b)); err != nil {
			return res, err
		}
		if i == 0 {
			res.BaseOffset = ar.BaseOffset
		}
		res.LastOffset = ar.LastOffset
	}
	res.LogAppendTime = appendTime
	res.LogStartOffset = p.log.LogStartOffset()
	p.publishAppendLocked()
	return res, nil
}

// publishAppendLocked moves the high watermark after a leader's append. One replica: the write
// is committed as soon as it is in the log; more: once the maximal ISR has it (FollowerFetched
// moves the high watermark then). REQUIRES: appendMu held.
func (p *Partition) publishAppendLocked() {
	p.rep.Lock()
	hw := p.highWatermark.Load()
	p.updateHighWatermarkLocked(p.now())
	if p.highWatermark.Load() == hw && len(p.rep.replicas) > 1 {
		p.signalWatchers() // followers' fetches wait for new data, not for the high watermark
	}
	p.rep.Unlock()
}

// requireKeys checks that every record of batch has a key, as a compacted topic requires (Kafka
// refuses keyless records there with INVALID_RECORD). It decodes the batch, so only compacted
// topics pay for it.
func requireKeys(batch []byte) error {
	h, recs, err := record.Records(batch)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Key == nil {
			return fmt.Errorf("record at offset delta %d of batch at %d has no key: a compacted topic cannot accept a record without a key",
				r.OffsetDelta, h.BaseOffset)
		}
	}
	return nil
}

// advanceHighWatermark moves the high watermark forward and wakes waiting fetches.
func (p *Partition) advanceHighWatermark(hw int64) {
	if hw <= p.highWatermark.Load() {
		return
	}
	p.highWatermark.Store(hw)
	p.signalWatchers()
}

// signalWatchers wakes the waiting fetches (without blocking).
func (p *Partition) signalWatchers() {
	p.watchMu.Lock()
	for ch := range p.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.watchMu.Unlock()
}

// Watch registers ch to be signalled (without blocking: give it a buffer of one) whenever the
// high watermark moves, and on a partition with followers whenever data is appended, until the
// returned function is called. Long-polling fetches use it.
func (p *Partition) Watch(ch chan<- struct{}) (unwatch func()) {
	p.watchMu.Lock()
	p.watchers[ch] = struct{}{}
	p.watchMu.Unlock()
	return func() {
		p.watchMu.Lock()
		delete(p.watchers, ch)
		p.watchMu.Unlock()
	}
}

// Read returns whole batches from offset, up to maxBytes, below the high watermark (or the last
// stable offset for read_committed).
func (p *Partition) Read(offset int64, maxBytes int32, readCommitted, minOneBatch bool) ([]byte, error) {
	limit, err := p.readLimit(offset, readCommitted)
	if err != nil || offset >= limit {
		return nil, err
	}
	rr, err := p.log.Read(offset, maxBytes, limit, minOneBatch)
	if err != nil {
		return nil, p.readError(err)
	}
	return rr.Data, nil
}

// ReadSections is Read answering with file sections, for sendfile. The sections stay valid for
// log.segment.delete.delay.ms after their segment is removed (see log.Section).
func (p *Partition) ReadSections(offset int64, maxBytes int32, readCommitted, minOneBatch bool) ([]log.Section, error) {
	limit, err := p.readLimit(offset, readCommitted)
	if err != nil || offset >= limit {
		return nil, err
	}
	secs, err := p.log.ReadSections(offset, maxBytes, limit, minOneBatch)
	if err != nil {
		return nil, p.readError(err)
	}
	return secs, nil
}

// Offline returns why the partition's log dir is offline (KAFKA_STORAGE_ERROR), nil while it is
// online. Maintenance (retention, the cleaner) skips offline partitions.
func (p *Partition) Offline() error { return p.offline() }

// offline returns KAFKA_STORAGE_ERROR when the partition's log dir is offline.
func (p *Partition) offline() error {
	if err := p.dir.Err(); err != nil {
		return fmt.Errorf("partition %s-%d: log dir %s is offline: %v: %w", p.Topic, p.Index, p.dir.Path, err, kerr.KafkaStorageError)
	}
	return nil
}

// readLimit checks that offset is in the log and returns the offset reads stop at.
func (p *Partition) readLimit(offset int64, readCommitted bool) (int64, error) {
	if err := p.offline(); err != nil {
		return 0, err
	}
	limit := p.HighWatermark()
	if readCommitted {
		limit = p.LastStableOffset()
	}
	if offset < p.log.LogStartOffset() || offset > p.log.LogEndOffset() {
		return 0, fmt.Errorf("partition %s-%d: offset %d outside [%d, %d]: %w",
			p.Topic, p.Index, offset, p.log.LogStartOffset(), p.log.LogEndOffset(), kerr.OffsetOutOfRange)
	}
	return limit, nil
}

func (p *Partition) readError(err error) error {
	if errors.Is(err, log.ErrOffsetOutOfRange) {
		return fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.OffsetOutOfRange)
	}
	return fmt.Errorf("partition %s-%d: read: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
}

// OffsetForTimestamp answers ListOffsets for a timestamp >= 0: the first offset whose timestamp is
// at least ts, or (-1, -1) when there is none.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	if err := p.offline(); err != nil {
		return -1, -1, err
	}
	off, t, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
	}
	if !ok || off >= p.HighWatermark() {
		return -1, -1, nil
	}
	return off, t, nil
}

// MaxTimestamp answers ListOffsets with timestamp -3.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, err error) {
	if err := p.offline(); err != nil {
		return -1, -1, err
	}
	off, t, err := p.log.MaxTimestamp()
	if err != nil {
		return -1, -1, fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
	}
	return off, t, nil
}

// DeleteRecords moves the log start offset to offset (-1: the high watermark).
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	if err := p.offline(); err != nil {
		return -1, err
	}
	hw := p.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("partition %s-%d: delete records before %d, high watermark is %d: %w",
			p.Topic, p.Index, offset, hw, kerr.OffsetOutOfRange)
	}
	if offset > p.log.LogStartOffset() {
		if err := p.log.DeleteRecordsBefore(offset); err != nil {
			return -1, fmt.Errorf("partition %s-%d: delete records: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
		}
	}
	return p.log.LogStartOffset(), nil
}

// TruncateTo removes every batch of the log holding an offset >= offset, a batch holding offset
// whole, as Kafka does (log.Log.TruncateTo, crash-safe: the log end offset ends <= offset), for a replica whose log diverged from its leader's, then rebuilds the idempotent
// producer state from what is left and clamps the high watermark to the new log end offset
// (INVARIANT: highWatermark <= LogEndOffset). Offsets at or past the log end remove no data;
// the leader-epoch cache loses the epochs starting at the log end (epochs led with no data).
//
// Locks: appendMu (no append runs meanwhile), then the log's appendMu and, briefly, its mu.
func (p *Partition) TruncateTo(offset int64) error {
	if err := p.offline(); err != nil {
		return err
	}
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if offset >= p.log.LogEndOffset() {
		// No data goes (the producer state stands), but the log trims its epoch cache from
		// the log end: an epoch this replica led without writing must not stay its last
		// fetched epoch.
		return p.truncateError(p.log.TruncateTo(offset))
	}
	if err := p.removeProducerSnapshot(); err != nil {
		return fmt.Errorf("%v: %w", err, kerr.KafkaStorageError)
	}
	if err := p.truncateError(p.log.TruncateTo(offset)); err != nil {
		return err
	}
	if err := p.replayLocked(make(producerStates), p.log.LogStartOffset()); err != nil {
		return fmt.Errorf("partition %s-%d: rebuild producer state after truncation: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
	}
	if end := p.log.LogEndOffset(); p.highWatermark.Load() > end {
		p.highWatermark.Store(end)
	}
	return nil
}

// truncateError maps an error of the log's truncations to its Kafka code (nil stays nil).
func (p *Partition) truncateError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, log.ErrOffsetOutOfRange):
		return fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.OffsetOutOfRange)
	default:
		return fmt.Errorf("partition %s-%d: %v: %w", p.Topic, p.Index, err, kerr.KafkaStorageError)
	}
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	return p.log.EndOffsetForEpoch(epoch)
}

// CheckLeaderEpoch validates a client's current leader epoch (-1 means unknown, always fine).
func (p *Partition) CheckLeaderEpoch(current int32) error {
	if current < 0 {
		return nil
	}
	mine := p.leaderEpoch.Load()
	switch {
	case current < mine:
		return fmt.Errorf("partition %s-%d: leader epoch %d < %d: %w", p.Topic, p.Index, current, mine, kerr.FencedLeaderEpoch)
	case current > mine:
		return fmt.Errorf("partition %s-%d: leader epoch %d > %d: %w", p.Topic, p.Index, current, mine, kerr.UnknownLeaderEpoch)
	}
	return nil
}

// Close writes the producer snapshot (a failure is logged: the previous snapshot, if any, stays
// valid, or the next Open replays the log) and flushes and closes the log.
func (p *Partition) Close() error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	if p.dir.Err() == nil && p.log.Failed() == nil {
		if err := p.writeProducerSnapshot(); err != nil {
			logger := p.dir.Logger
			if logger == nil {
				logger = slog.Default()
			}
			logger.Warn("producer snapshot not written: the next start replays the log", "err", err)
		}
	}
	return p.log.Close()
}

// Delete closes the log and removes its files.
func (p *Partition) Delete() error { return p.log.Delete() }
