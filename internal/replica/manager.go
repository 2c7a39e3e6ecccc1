package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
)

// DefaultReplicaLagTimeMax is replica.lag.time.max.ms.
const DefaultReplicaLagTimeMax = 30 * time.Second

// maxISRCheckInterval caps the ISR check period (replica.lag.time.max.ms / 2 in Kafka, whose
// leader also expands the ISR inside the fetch path): here expansion is found by the same
// periodic check, so that a caught-up follower rejoins within a second.
const maxISRCheckInterval = time.Second

// alterPartitionTimeout bounds one AlterPartition call to the controller.
const alterPartitionTimeout = 10 * time.Second

// ISRUpdate is one partition's ISR change the leader asks the controller for (AlterPartition):
// LeaderEpoch and PartitionEpoch are the ones the leader has; the controller refuses the change
// when they are stale (FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION).
type ISRUpdate struct {
	Topic          string
	TopicID        [16]byte
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
	// NewISRBrokerEpochs are the broker epochs of NewISR's members, index by index, as the
	// leader saw them in their fetches (this broker's own for the leader), -1 when unknown: the
	// controller refuses a member whose epoch is not its current one (KIP-903).
	NewISRBrokerEpochs []int64
}

// Config configures a Manager.
type Config struct {
	NodeID int32
	Parts  *partition.Manager
	// Settings are the partition settings of a topic (its configs over the broker's).
	Settings func(t *metadata.Topic) (partition.Settings, error)
	// BrokerAddr is the inter-broker listener address (host:port) of a broker.
	BrokerAddr func(id int32) (string, bool)
	// AlterPartition sends ISR changes to the controller. On nil the changes were committed
	// and arrive as a new image (Apply). An error wrapping kerr.OperationNotAttempted or
	// kerr.IneligibleReplica must mean that no change of the call was applied: the changes are
	// then dropped and proposed anew later. On any other error (the call may or may not have
	// reached the controller) the same changes stay pending and are sent again.
	AlterPartition func(ctx context.Context, items []ISRUpdate) error
	// BrokerEpoch is this broker's current epoch (its registration), sent in every fetch.
	BrokerEpoch func() int64
	// EligibleBrokers lists, by broker id, the broker epochs of the brokers that may join an
	// ISR in image (registered, unfenced, not in controlled shutdown: KIP-841, KIP-903); nil
	// (the func or its answer): every replica is eligible.
	EligibleBrokers func(image *metadata.Image) map[int32]int64
	// Dial connects to a leader (default Dialer(NodeID)).
	Dial func(addr string) (LeaderClient, error)
	// Clock defaults to the wall clock.
	Clock  Clock
	Logger *slog.Logger

	// ReplicaLagTimeMax is replica.lag.time.max.ms (default 30 s).
	ReplicaLagTimeMax time.Duration
	// FetchWaitMax is replica.fetch.wait.max.ms (default 500 ms).
	FetchWaitMax time.Duration
	// FetchBackoff is replica.fetch.backoff.ms (default 1 s): the wait after a failed fetch,
	// and before an ISR change the controller refused is asked again.
	FetchBackoff time.Duration
	// FetchMaxBytes is replica.fetch.max.bytes (default 1 MiB), per partition.
	FetchMaxBytes int32
	// FetchResponseMaxBytes is replica.fetch.response.max.bytes (default 10 MiB).
	FetchResponseMaxBytes int32
	// FollowerQuota is the follower replication quota (follower.replication.throttled.rate
	// over follower.replication.throttled.replicas); nil: no throttle.
	FollowerQuota *Quota
	// Appended, when set, is told of the record bytes of every follower append (Kafka's
	// ReplicationBytesInPerSec).
	Appended func(bytes int64)
}

// local is a hosted partition as the manager drives it (*partition.Partition through
// partitionLocal; the tests use fakes).
type local interface {
	Follower
	becomeLeader(leaderEpoch, partitionEpoch int32, replicas, isr []int32, self int32) error
	becomeFollower(leader, leaderEpoch, partitionEpoch int32) error
	updateISR(isr []int32, partitionEpoch int32)
	isrChange(now time.Time, lagMax time.Duration) ([]int32, bool)
	cancelISRChange()
	setEligibleBrokers(epochs map[int32]int64)
	// followerBrokerEpochs are the broker epochs of the followers' last fetches, by id.
	followerBrokerEpochs() map[int32]int64
	settings() partition.Settings
	updateSettings(partition.Settings)
}

// store is where the manager opens and removes partitions (partition.Manager through
// partitionStore; the tests use fakes).
type store interface {
	open(topic string, p int32, s partition.Settings) (local, error)
	removeTopic(topic string) error
	// removePartition closes and deletes one partition (a replica moved off this broker).
	removePartition(topic string, p int32) error
	orphans(keep func(topic string, p int32) bool) []string
	// orphanPartitions lists the partitions on disk that keep rejects.
	orphanPartitions(keep func(topic string, p int32) bool) []tp
}

type role uint8

const (
	roleNone role = iota
	roleLeader
	roleFollower
)

// hostedPart is the state the manager applied to one hosted partition. REQUIRES: Manager.mu for
// every field but key, topicID and part (immutable).
type hostedPart struct {
	key     tp
	topicID [16]byte
	part    local

	role           role
	leader         int32
	leaderEpoch    int32
	partitionEpoch int32
	replicas, isr  []int32

	// ISR check (leader): the change update was sent to the controller at inflightAt and its
	// outcome is unknown until an image with it arrives (at most one per partition; the
	// partition keeps it pending: maximal ISR). retryAt holds back sending it again after a
	// failed call, or the next change after a change the controller said it did not apply.
	inflight   bool
	update     ISRUpdate
	inflightAt time.Time
	retryAt    time.Time
}

// Manager applies metadata images to this broker's partitions (Kafka's ReplicaManager
// applyDelta): it opens the partitions assigned here, makes them leaders or followers as the
// image says, hands followers to the fetcher of their leader, and deletes the partitions of
// deleted topics. It is the only caller of role transitions. For the partitions it leads it
// runs the ISR check and sends AlterPartition.
//
// It diffs each image against the state it applied, not against the previous image, so a
// transition that failed (an open on a failing disk) is tried again with the next image.
type Manager struct {
	cfg    Config
	store  store
	clock  Clock
	logger *slog.Logger
	lagMax time.Duration
	manual bool // tests: no goroutines (fetchers and the ISR check are driven by hand)

	applyMu sync.Mutex      // serialises Apply, Relocate and Close
	applied *metadata.Image // the image Apply last applied (REQUIRES: applyMu)

	mu       sync.Mutex
	parts    map[tp]*hostedPart
	fetchers map[int32]*fetcher // by leader
	closed   bool

	stop chan struct{}
	done chan struct{}
}

// NewManager makes a Manager over cfg.Parts and starts its ISR check.
func NewManager(cfg Config) *Manager {
	return newManager(cfg, partitionStore{cfg.Parts}, false)
}

func newManager(cfg Config, st store, manual bool) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = Dialer(cfg.NodeID)
	}
	if cfg.BrokerEpoch == nil {
		cfg.BrokerEpoch = func() int64 { return -1 }
	}
	if cfg.BrokerAddr == nil {
		cfg.BrokerAddr = func(int32) (string, bool) { return "", false }
	}
	if cfg.AlterPartition == nil {
		cfg.AlterPartition = func(context.Context, []ISRUpdate) error {
			return errors.New("no controller to send AlterPartition to")
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ReplicaLagTimeMax, DefaultReplicaLagTimeMax)
	def(&cfg.FetchWaitMax, DefaultFetchWaitMax)
	def(&cfg.FetchBackoff, DefaultFetchBackoff)
	if cfg.FetchMaxBytes <= 0 {
		cfg.FetchMaxBytes = DefaultFetchMaxBytes
	}
	if cfg.FetchResponseMaxBytes <= 0 {
		cfg.FetchResponseMaxBytes = DefaultFetchResponseMaxBytes
	}
	m := &Manager{cfg: cfg, store: st, clock: cfg.Clock, logger: cfg.Logger, lagMax: cfg.ReplicaLagTimeMax,
		manual: manual, parts: make(map[tp]*hostedPart), fetchers: make(map[int32]*fetcher),
		stop: make(chan struct{}), done: make(chan struct{})}
	if !manual {
		go m.isrLoop()
	}
	return m
}

// Apply brings this broker's partitions to what image next says: opens the partitions newly
// assigned here (outside the map lock), makes each the leader or a follower when its leader or
// leader epoch changed, passes committed ISR changes to the leaders, stops fetching the
// partitions moved away, and deletes the partitions of topics that no longer exist (also those
// deleted while this broker was down). old is the image applied before (nil at start); the
// diff is taken against the state this manager applied, which is old's after a clean Apply.
func (m *Manager) Apply(old, next *metadata.Image) error {
	_ = old
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return errors.New("replica manager closed")
	}
	m.applied = next
	var errs []error
	seen := make(map[tp]bool)
	for _, t := range next.Topics() {
		hostsAny := false
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, m.cfg.NodeID) {
				hostsAny = true
				break
			}
		}
		if !hostsAny {
			continue
		}
		// A topic deleted and created again under the same name between two images this
		// manager saw: the old partitions go first.
		if m.hostsOtherTopicID(t.Name, t.ID) {
			if err := m.removeTopic(t.Name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, m.cfg.NodeID) {
				seen[tp{t.Name, p.Partition}] = true // kept as they are if the rest fails
			}
		}
		s, err := m.cfg.Settings(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("settings of topic %s: %w", t.Name, err))
			continue
		}
		for _, p := range t.Partitions {
			if !slices.Contains(p.Replicas, m.cfg.NodeID) {
				continue
			}
			key := tp{t.Name, p.Partition}
			if err := m.applyPartition(key, t.ID, p, s); err != nil {
				errs = append(errs, err)
			}
		}
	}

	// Partitions no longer assigned here.
	m.mu.Lock()
	var gone []tp
	for key := range m.parts {
		if !seen[key] {
			gone = append(gone, key)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(gone, func(a, b tp) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.part - b.part)
	})
	removed := map[string]bool{}
	for _, key := range gone {
		if _, ok := next.Topic(key.topic); !ok {
			if !removed[key.topic] {
				removed[key.topic] = true
				if err := m.removeTopic(key.topic); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		// Moved away while the topic stays (a reassignment removed this replica): Kafka's
		// StopReplica with deletion. A leader steps down first, so that produces waiting for
		// replication fail with NOT_LEADER_OR_FOLLOWER and go to the new leader.
		if err := m.removePartition(key, next); err != nil {
			errs = append(errs, err)
		}
	}
	// Topics deleted while this broker was down (or whose partitions never opened).
	keep := func(topic string, p int32) bool {
		t, ok := next.Topic(topic)
		return ok && int(p) < len(t.Partitions) && slices.Contains(t.Partitions[p].Replicas, m.cfg.NodeID)
	}
	for _, topic := range m.store.orphans(keep) {
		if _, ok := next.Topic(topic); ok || removed[topic] {
			continue
		}
		m.logger.Info("deleting partitions of removed topic", "topic", topic)
		if err := m.removeTopic(topic); err != nil {
			errs = append(errs, err)
		}
	}
	// Replicas moved off this broker while it was down (their topic stays).
	for _, key := range m.store.orphanPartitions(keep) {
		if _, ok := next.Topic(key.topic); !ok || removed[key.topic] {
			continue
		}
		if err := m.removePartition(key, next); err != nil {
			errs = append(errs, err)
		}
	}
	if m.cfg.EligibleBrokers != nil {
		eligible := m.cfg.EligibleBrokers(next)
		m.mu.Lock()
		for _, h := range m.parts {
			if h.role == roleLeader {
				h.part.setEligibleBrokers(eligible)
			}
		}
		m.mu.Unlock()
	}
	m.closeIdleFetchers()
	return errors.Join(errs...)
}

func (m *Manager) hostsOtherTopicID(topic string, id [16]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, h := range m.parts {
		if key.topic == topic && h.topicID != id {
			return true
		}
	}
	return false
}

// applyPartition opens the partition if it is new here, then applies its role.
func (m *Manager) applyPartition(key tp, topicID [16]byte, p metadata.Partition, s partition.Settings) error {
	m.mu.Lock()
	h := m.parts[key]
	m.mu.Unlock()
	if h == nil {
		// Opening (recovery, fsyncs) runs without the map lock.
		part, err := m.store.open(key.topic, key.part, s)
		if err != nil {
			return fmt.Errorf("open partition %s-%d: %w", key.topic, key.part, err)
		}
		h = &hostedPart{key: key, topicID: topicID, part: part, leader: -1, leaderEpoch: -1, partitionEpoch: -1}
		m.mu.Lock()
		m.parts[key] = h
		m.mu.Unlock()
	} else if h.part.settings() != s {
		h.part.updateSettings(s)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.transitionLocked(h, p)
}

// transitionLocked makes h what p says. The state is recorded only once a transition
// succeeded, so a failed one is tried again with the next image. REQUIRES: mu.
func (m *Manager) transitionLocked(h *hostedPart, p metadata.Partition) error {
	lg := m.logger.With("topic", h.key.topic, "partition", h.key.part, "leader", p.Leader, "leaderEpoch", p.LeaderEpoch)
	if p.Leader == m.cfg.NodeID {
		if h.role != roleLeader || h.leaderEpoch != p.LeaderEpoch || !slices.Equal(h.replicas, p.Replicas) {
			m.unfollowLocked(h) // no follower append may land after BecomeLeader
			if err := h.part.becomeLeader(p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.ISR, m.cfg.NodeID); err != nil {
				return fmt.Errorf("partition %s-%d: become leader in epoch %d: %w", h.key.topic, h.key.part, p.LeaderEpoch, err)
			}
			lg.Info("became leader", "isr", p.ISR)
			h.role, h.leader, h.leaderEpoch = roleLeader, p.Leader, p.LeaderEpoch
			h.partitionEpoch, h.replicas, h.isr = p.PartitionEpoch, slices.Clone(p.Replicas), slices.Clone(p.ISR)
			h.inflight, h.retryAt = false, time.Time{}
			return nil
		}
		if h.partitionEpoch != p.PartitionEpoch || !slices.Equal(h.isr, p.ISR) {
			h.part.updateISR(p.ISR, p.PartitionEpoch)
			h.partitionEpoch, h.isr = p.PartitionEpoch, slices.Clone(p.ISR)
			h.inflight, h.retryAt = false, time.Time{}
		}
		return nil
	}
	if h.role != roleFollower || h.leaderEpoch != p.LeaderEpoch || h.leader != p.Leader {
		m.unfollowLocked(h)
		if err := h.part.becomeFollower(p.Leader, p.LeaderEpoch, p.PartitionEpoch); err != nil {
			h.role = roleNone
			return fmt.Errorf("partition %s-%d: become follower of %d in epoch %d: %w", h.key.topic, h.key.part, p.Leader, p.LeaderEpoch, err)
		}
		lg.Info("became follower", "logEndOffset", h.part.LogEndOffset())
		h.role, h.leader, h.leaderEpoch = roleFollower, p.Leader, p.LeaderEpoch
		h.inflight = false
		if p.Leader >= 0 {
			m.fetcherLocked(p.Leader).add(h.key, h.topicID, h.part, p.LeaderEpoch)
		}
	}
	h.partitionEpoch, h.replicas, h.isr = p.PartitionEpoch, slices.Clone(p.Replicas), slices.Clone(p.ISR)
	return nil
}

// unfollowLocked stops fetching h (waiting for a response being applied to it). REQUIRES: mu.
func (m *Manager) unfollowLocked(h *hostedPart) {
	if h.role == roleFollower && h.leader >= 0 {
		if f := m.fetchers[h.leader]; f != nil {
			f.remove(h.key)
		}
	}
}

// fetcherLocked is the fetcher of leader, started on first use. REQUIRES: mu.
func (m *Manager) fetcherLocked(leader int32) *fetcher {
	if f := m.fetchers[leader]; f != nil {
		return f
	}
	f := newFetcher(fetcherConfig{
		nodeID: m.cfg.NodeID, leader: leader, brokerEpoch: m.cfg.BrokerEpoch, addr: m.cfg.BrokerAddr,
		dial: m.cfg.Dial, clock: m.clock, logger: m.logger.With("fetcher", leader),
		waitMax: m.cfg.FetchWaitMax, backoff: m.cfg.FetchBackoff,
		maxBytes: m.cfg.FetchMaxBytes, respMax: m.cfg.FetchResponseMaxBytes,
		quota: m.cfg.FollowerQuota, appended: m.cfg.Appended,
	})
	m.fetchers[leader] = f
	if !m.manual {
		f.start()
	}
	return f
}

// closeIdleFetchers stops the fetchers left with no partition.
func (m *Manager) closeIdleFetchers() {
	m.mu.Lock()
	var idle []*fetcher
	for id, f := range m.fetchers {
		if f.empty() {
			idle = append(idle, f)
			delete(m.fetchers, id)
		}
	}
	m.mu.Unlock()
	if !m.manual {
		for _, f := range idle {
			f.close()
		}
	}
}

// removePartition stops the replica key (no longer assigned here in next: a leader becomes a
// follower of next's leader first), forgets it and deletes its files.
func (m *Manager) removePartition(key tp, next *metadata.Image) error {
	m.mu.Lock()
	m.detachLocked(key, next, "a partition moved off this broker")
	m.mu.Unlock()
	m.logger.Info("deleting partition moved off this broker", "topic", key.topic, "partition", key.part)
	if err := m.store.removePartition(key.topic, key.part); err != nil {
		return fmt.Errorf("delete partition %s-%d moved off this broker: %w", key.topic, key.part, err)
	}
	return nil
}

// detachLocked stops replica key and forgets it: its fetcher lets go of it, and a leader first
// becomes a follower (of next's leader at next's epoch; without next, of none at the next
// epoch), so that the produces waiting on it answer NOT_LEADER_OR_FOLLOWER and go elsewhere.
// what names the replica in the log. REQUIRES: m.mu held.
func (m *Manager) detachLocked(key tp, next *metadata.Image, what string) {
	h := m.parts[key]
	if h == nil {
		return
	}
	m.unfollowLocked(h)
	if h.role == roleLeader {
		leader, epoch, partitionEpoch := int32(-1), h.leaderEpoch+1, h.partitionEpoch
		if next != nil {
			if t, ok := next.Topic(key.topic); ok && int(key.part) < len(t.Partitions) {
				p := t.Partitions[key.part]
				leader, epoch, partitionEpoch = p.Leader, max(p.LeaderEpoch, epoch), p.PartitionEpoch
			}
		}
		if err := h.part.becomeFollower(leader, epoch, partitionEpoch); err != nil {
			m.logger.Warn("step down as leader of "+what, "topic", key.topic, "partition", key.part, "err", err)
		}
	}
	delete(m.parts, key)
}

// removeTopic stops fetching every partition of topic, forgets them, and deletes them
// (partition.Manager.RemoveTopic, as broker.Sync did).
func (m *Manager) removeTopic(topic string) error {
	m.mu.Lock()
	for key, h := range m.parts {
		if key.topic == topic {
			m.unfollowLocked(h)
			delete(m.parts, key)
		}
	}
	m.mu.Unlock()
	m.logger.Info("deleting partitions of removed topic", "topic", topic)
	if err := m.store.removeTopic(topic); err != nil {
		return fmt.Errorf("delete partitions of topic %s: %w", topic, err)
	}
	return nil
}

// isrCheckInterval is how often the leader looks for ISR changes.
func (m *Manager) isrCheckInterval() time.Duration {
	return min(m.lagMax/2, maxISRCheckInterval)
}

func (m *Manager) isrLoop() {
	defer close(m.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-m.stop:
			cancel()
		case <-m.done:
		}
	}()
	for {
		select {
		case <-m.stop:
			return
		case <-m.clock.After(m.isrCheckInterval()):
		}
		m.checkISR(ctx)
	}
}

// checkISR is Kafka's isr-expiration and expansion check for the partitions led here: each
// asks its partition for the ISR it wants now (partition.ISRChange); the changes go to the
// controller in one AlterPartition call, with at most one in flight per partition.
//
// A change in flight stays pending on the partition (its maximal ISR holds the high watermark)
// until the image with its outcome arrives (Apply), as Kafka's Partition keeps its
// PendingPartitionChange: a call that failed or was never answered may have been committed by
// the controller, and dropping the change then would let the high watermark pass an ISR member
// the controller has (an acknowledged acks=all record lost on failover; sim seed 1872). So a
// change whose call failed, or whose image has not come within a few check intervals, is sent
// again, the same, after FetchBackoff: the controller applies it if it never did, or refuses it
// as stale (INVALID_UPDATE_VERSION) if it did, and the image follows. Only an explicit "not
// applied" (OPERATION_NOT_ATTEMPTED, INELIGIBLE_REPLICA: Kafka's handleAlterPartitionError)
// drops it; a new change is proposed after FetchBackoff.
func (m *Manager) checkISR(ctx context.Context) {
	now := m.clock.Now()
	expiry := 4 * m.isrCheckInterval()
	m.mu.Lock()
	var leaders, resend []*hostedPart
	for _, h := range m.parts {
		switch {
		case h.role != roleLeader:
		case h.inflight:
			if (!h.retryAt.IsZero() && !now.Before(h.retryAt)) || now.Sub(h.inflightAt) >= expiry {
				resend = append(resend, h)
			}
		case !now.Before(h.retryAt):
			leaders = append(leaders, h)
		}
	}
	m.mu.Unlock()
	byKey := func(a, b *hostedPart) int {
		if a.key.topic != b.key.topic {
			if a.key.topic < b.key.topic {
				return -1
			}
			return 1
		}
		return int(a.key.part - b.key.part)
	}
	slices.SortFunc(leaders, byKey)
	slices.SortFunc(resend, byKey)
	type sent struct {
		h                   *hostedPart
		epoch, partitionEpo int32
	}
	var items []ISRUpdate
	var sents []sent
	m.mu.Lock()
	for _, h := range resend {
		if h.role != roleLeader || m.parts[h.key] != h || !h.inflight {
			continue
		}
		h.inflightAt, h.retryAt = now, time.Time{}
		items = append(items, h.update)
		sents = append(sents, sent{h, h.update.LeaderEpoch, h.update.PartitionEpoch})
	}
	m.mu.Unlock()
	for _, h := range leaders {
		isr, ok := h.part.isrChange(now, m.lagMax)
		if !ok {
			continue
		}
		m.mu.Lock()
		if h.role != roleLeader || m.parts[h.key] != h {
			m.mu.Unlock()
			continue
		}
		u := ISRUpdate{Topic: h.key.topic, TopicID: h.topicID, Partition: h.key.part,
			LeaderEpoch: h.leaderEpoch, PartitionEpoch: h.partitionEpoch, NewISR: slices.Clone(isr)}
		epochs := h.part.followerBrokerEpochs()
		for _, id := range isr {
			e, ok := epochs[id]
			switch {
			case id == m.cfg.NodeID:
				e = m.cfg.BrokerEpoch()
			case !ok:
				e = -1
			}
			u.NewISRBrokerEpochs = append(u.NewISRBrokerEpochs, e)
		}
		h.inflight, h.update, h.inflightAt, h.retryAt = true, u, now, time.Time{}
		m.mu.Unlock()
		items = append(items, u)
		sents = append(sents, sent{h, u.LeaderEpoch, u.PartitionEpoch})
	}
	if len(items) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(ctx, alterPartitionTimeout)
	err := m.cfg.AlterPartition(actx, items)
	cancel()
	if err == nil {
		return
	}
	notApplied := errors.Is(err, kerr.OperationNotAttempted) || errors.Is(err, kerr.IneligibleReplica)
	if notApplied {
		m.logger.Warn("alter partition (ISR change) refused; proposing again later", "partitions", len(items), "err", err)
	} else {
		m.logger.Warn("alter partition (ISR change) failed; sending it again later", "partitions", len(items), "err", err)
	}
	retry := m.clock.Now().Add(m.cfg.FetchBackoff)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range sents {
		if s.h.inflight && s.h.leaderEpoch == s.epoch && s.h.partitionEpoch == s.partitionEpo {
			s.h.retryAt = retry
			if notApplied {
				s.h.inflight = false
				s.h.part.cancelISRChange()
			}
		}
	}
}

// Close stops the ISR check and every fetcher. The partitions stay open (the partition.Manager
// closes them).
func (m *Manager) Close() error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	fs := make([]*fetcher, 0, len(m.fetchers))
	for id, f := range m.fetchers {
		fs = append(fs, f)
		delete(m.fetchers, id)
	}
	m.mu.Unlock()
	if !m.manual {
		close(m.stop)
		<-m.done
		for _, f := range fs {
			f.close()
		}
	}
	return nil
}

// Relocate runs finish with the replica topic-p detached (moving it to another log dir,
// partition.Move.Finish): Apply waits; a follower stops fetching, a leader steps down (the
// produces waiting on it answer NOT_LEADER_OR_FOLLOWER and are retried); the replica is
// forgotten. Then its role is applied again, from the image Apply last applied, to the partition
// finish left open.
func (m *Manager) Relocate(topic string, p int32, finish func() error) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	key := tp{topic, p}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("replica manager closed")
	}
	m.detachLocked(key, nil, "a replica moving to another log dir")
	m.mu.Unlock()
	err := finish()
	if im := m.applied; im != nil {
		if t, ok := im.Topic(topic); ok && int(p) < len(t.Partitions) && slices.Contains(t.Partitions[p].Replicas, m.cfg.NodeID) {
			s, serr := m.cfg.Settings(t)
			if serr == nil {
				serr = m.applyPartition(key, t.ID, t.Partitions[p], s)
			}
			if serr != nil {
				err = errors.Join(err, fmt.Errorf("after moving %s-%d: %w", topic, p, serr))
			}
		}
	}
	return err
}
