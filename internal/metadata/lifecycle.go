package metadata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Broker lifecycle, Kafka's model (ClusterControlManager, BrokerHeartbeatManager and the
// broker half of ReplicationControlManager):
//
//   - RegisterBroker with a new incarnation id writes a registration that starts fenced; its
//     epoch is the raft index of that record, so a quick reboot always gets a new epoch and
//     requests carrying the old one are refused (no ABA).
//   - BrokerHeartbeat (every 2 s from each broker) unfences a broker once its metadata offset
//     has reached its registration, fences it on request, and runs controlled shutdown.
//   - The active controller keeps one in-memory session per broker; a broker that does not
//     heartbeat for SessionTimeout is fenced (expireSessions), its leaderships move and it
//     leaves the ISRs.
//
// Heartbeats that change no state commit nothing, so a steady cluster does not grow the
// raft log.

// BrokerRegistration is a BrokerRegistration request.
type BrokerRegistration struct {
	NodeID        int32
	ClusterID     string
	IncarnationID UUID
	Endpoints     []Endpoint // the first one is Broker.Host/Port
	Rack          string
	// LogDirs are the directory ids of the broker's log dirs (meta.properties), empty before
	// they have one.
	LogDirs []UUID
	// PreviousBrokerEpoch is the epoch of the broker's previous clean shutdown (-1 if none);
	// accepted and not yet used (unclean-shutdown detection, KIP-966 part 2).
	PreviousBrokerEpoch int64
	// Features are the feature levels the broker's build supports (nil: a build without feature
	// versions, not checked).
	Features map[string]FeatureRange
}

// Heartbeat is a BrokerHeartbeat request.
type Heartbeat struct {
	NodeID         int32
	Epoch          int64
	MetadataOffset uint64 // the index of the broker's applied metadata image
	WantFence      bool
	WantShutdown   bool
}

// HeartbeatResult is a BrokerHeartbeat response.
type HeartbeatResult struct {
	IsCaughtUp     bool // MetadataOffset has reached the broker's registration
	IsFenced       bool
	ShouldShutdown bool
}

// session is the active controller's view of one broker's liveness.
type session struct {
	lastSeen time.Time
	offset   int64 // last reported metadata offset, -1 until the broker heartbeats
	// probed is the lastSeen for which the broker was last probed (probe.go): one probe per
	// missed heartbeat.
	probed time.Time
	// unheard: the session was started by this controller gaining leadership, not by a
	// heartbeat; the broker is probed at once (the old controller may have died with it).
	unheard bool
}

// brokerState is Kafka's BrokerControlState.
type brokerState int

const (
	stateFenced brokerState = iota
	stateUnfenced
	stateControlledShutdown
	stateShutdownNow
)

func currentState(b Broker) brokerState {
	switch {
	case b.Fenced:
		return stateFenced
	case b.InControlledShutdown:
		return stateControlledShutdown
	}
	return stateUnfenced
}

func stale(op string, nodeID int32, want, have int64, known bool) error {
	if !known {
		return fmt.Errorf("%s: no broker registration found for broker id %d: %w", op, nodeID, kerr.StaleBrokerEpoch)
	}
	return fmt.Errorf("%s: expected broker epoch %d, but got broker epoch %d: %w", op, have, want, kerr.StaleBrokerEpoch)
}

// checkBrokerEpoch returns the registration of nodeID if epoch is its current epoch.
func checkBrokerEpoch(op string, im *Image, nodeID int32, epoch int64) (Broker, error) {
	b, ok := im.Broker(nodeID)
	if !ok || b.Epoch != epoch {
		return b, stale(op, nodeID, epoch, b.Epoch, ok)
	}
	return b, nil
}

// RegisterBroker registers a broker incarnation and returns its broker epoch. A new
// incarnation gets a new, fenced registration; the same incarnation again (a retry) amends
// the endpoints and keeps epoch and state, committing nothing when nothing changed.
func (c *Controller) localRegisterBroker(ctx context.Context, r BrokerRegistration) (int64, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	im := c.Image()
	if r.NodeID < 0 {
		return 0, fmt.Errorf("%w: invalid broker id %d", ErrInvalidRequest, r.NodeID)
	}
	if len(r.Endpoints) == 0 {
		return 0, fmt.Errorf("%w: broker %d: no endpoints", ErrInvalidRequest, r.NodeID)
	}
	for _, e := range r.Endpoints {
		if e.Port < 0 || e.Port > 65535 {
			return 0, fmt.Errorf("%w: broker %d: invalid port %d", ErrInvalidRequest, r.NodeID, e.Port)
		}
	}
	if r.IncarnationID == (UUID{}) {
		return 0, fmt.Errorf("%w: broker %d: zero incarnation id", ErrInvalidRequest, r.NodeID)
	}
	// An empty cluster id is a broker that has not seen the metadata log yet (a broker-only node
	// before the leader added it as a non-voter): its meta.properties check runs once it has.
	if r.ClusterID != "" && r.ClusterID != im.ClusterID() {
		return 0, fmt.Errorf("register broker %d: expected cluster ID %s, but got cluster ID %s: %w",
			r.NodeID, im.ClusterID(), r.ClusterID, kerr.InconsistentClusterID)
	}
	if err := checkRegistrationFeatures(im, r); err != nil {
		return 0, err
	}
	rec := &RegisterBrokerRecord{
		NodeID: r.NodeID, Host: r.Endpoints[0].Host, Port: r.Endpoints[0].Port, Rack: r.Rack,
		IncarnationID: r.IncarnationID, Endpoints: slices.Clone(r.Endpoints), Fenced: true,
		LogDirs: slices.Clone(r.LogDirs), Features: maps.Clone(r.Features),
	}
	existing, ok := im.Broker(r.NodeID)
	if ok && existing.IncarnationID == r.IncarnationID {
		// The same incarnation again amends what changed: endpoints, rack, or the features a
		// controller of an older build left out when it registered this broker.
		if existing.Rack == r.Rack && slices.Equal(existing.Endpoints, r.Endpoints) &&
			(r.Features == nil || maps.Equal(existing.Features, r.Features)) {
			return existing.Epoch, nil
		}
		rec.BrokerEpoch = existing.Epoch
		rec.Fenced, rec.InControlledShutdown = existing.Fenced, existing.InControlledShutdown
	} else if ok && c.hasValidSessionLocked(existing, now) && !sameStorage(existing.LogDirs, r.LogDirs) {
		// A new incarnation on the same log dirs (the same directory ids) is the same node
		// restarted: the dirs' .lock allows one process at a time, so the old one is gone and
		// is replaced now instead of after its session (Kafka waits out the session here). A
		// different process with this node id on other dirs is refused, as in Kafka.
		return 0, fmt.Errorf("register broker %d: another broker is registered with that broker id: %w",
			r.NodeID, kerr.DuplicateBrokerRegistration)
	}
	var records []Record
	if ok && rec.BrokerEpoch == 0 && !existing.Fenced {
		// The previous incarnation went away without a controlled shutdown and is not fenced
		// yet (its session expired between two checks, or it belongs to an earlier run of this
		// controller's own node): it leaves the ISRs and its leaderships as if its session had
		// expired first, so the new incarnation never resumes an old leader epoch.
		records = c.leaderAndISRUpdates(im, r.NodeID, -1, func(p Partition) bool { return slices.Contains(p.ISR, r.NodeID) })
	}
	if err := c.commitLocked(ctx, append(records, rec)...); err != nil {
		return 0, fmt.Errorf("register broker %d: %w", r.NodeID, err)
	}
	b, ok := c.Image().Broker(r.NodeID)
	if !ok {
		return 0, fmt.Errorf("register broker %d: not in image after commit", r.NodeID)
	}
	if rec.BrokerEpoch == 0 {
		c.sessions[r.NodeID] = &session{lastSeen: now, offset: -1}
	}
	// The last node of an older build re-registered with this one: the cluster's
	// metadata.version can be written now (a failure is retried at the next registration).
	if err := c.ensureMetadataVersionLocked(ctx); err != nil {
		c.cfg.Logger.Warn("metadata.version not written after a registration", "broker", r.NodeID, "err", err)
	}
	return b.Epoch, nil
}

// hasValidSessionLocked is Kafka's hasValidSession: the broker is unfenced and has
// heartbeated within the session timeout. REQUIRES: c.mu is held.
func (c *Controller) hasValidSessionLocked(b Broker, now time.Time) bool {
	s, ok := c.sessions[b.NodeID]
	return ok && !b.Fenced && !now.After(s.lastSeen.Add(c.cfg.SessionTimeout))
}

// gainedLeadershipLocked restarts the sessions when this node becomes the raft leader after
// not being it (a repeated notification of the same term changes nothing).
// REQUIRES: c.mu is held.
func (c *Controller) gainedLeadershipLocked(now time.Time) {
	if c.leading {
		return
	}
	c.leading = true
	c.restartSessionsLocked(now)
}

// lostLeadershipLocked drops the sessions: they are the leader's alone, and stale ones must
// not fence anybody when this node leads again. REQUIRES: c.mu is held.
func (c *Controller) lostLeadershipLocked() {
	c.leading = false
	c.sessions = map[int32]*session{}
}

// termStartedLocked reports whether this node leads and has restarted the sessions for its
// term (always, for a controller without raft). REQUIRES: c.mu is held.
func (c *Controller) termStartedLocked() bool {
	return c.IsController() && (c.leading || c.Node() == nil)
}

// restartSessionsLocked is called on gaining raft leadership: every registered broker's
// session starts now (no mass fencing of brokers that heartbeated to the old leader). The
// registration of this node itself gets no session unless it already had one: it belongs
// to an earlier run of this process, so this process's broker can register again at once.
// REQUIRES: c.mu is held.
func (c *Controller) restartSessionsLocked(now time.Time) {
	old := c.sessions
	c.sessions = map[int32]*session{}
	for _, b := range c.Image().Brokers() {
		s, ok := old[b.NodeID]
		if b.NodeID == c.cfg.NodeID && !ok {
			continue
		}
		offset := int64(-1)
		if ok {
			offset = s.offset
		}
		c.sessions[b.NodeID] = &session{lastSeen: now, offset: offset, unheard: true}
	}
}

// BrokerHeartbeat processes a heartbeat (Kafka's processBrokerHeartbeat and
// calculateNextBrokerState) and commits the records of a state change, if any.
func (c *Controller) localBrokerHeartbeat(ctx context.Context, h Heartbeat) (HeartbeatResult, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.IsController() {
		return HeartbeatResult{}, fmt.Errorf("broker heartbeat: %w", ErrNotController)
	}
	im := c.Image()
	b, err := checkBrokerEpoch("broker heartbeat", im, h.NodeID, h.Epoch)
	if err != nil {
		return HeartbeatResult{}, err
	}
	offset := int64(min(h.MetadataOffset, uint64(1<<63-1)))
	cur := currentState(b)
	next := c.nextState(im, b, cur, h, offset)

	var records []Record
	if cur != next {
		switch next {
		case stateFenced, stateShutdownNow:
			records = c.fenceRecords(im, b)
		case stateUnfenced:
			records = c.unfenceRecords(im, b)
		case stateControlledShutdown:
			records = c.controlledShutdownRecords(im, b)
		}
	}
	if len(records) > 0 {
		if err := c.commitLocked(ctx, records...); err != nil {
			return HeartbeatResult{}, fmt.Errorf("broker heartbeat %d: %w", h.NodeID, err)
		}
	}
	c.sessions[h.NodeID] = &session{lastSeen: now, offset: offset}
	return HeartbeatResult{
		IsCaughtUp:     offset >= b.Epoch,
		IsFenced:       next == stateFenced || next == stateShutdownNow,
		ShouldShutdown: next == stateShutdownNow,
	}, nil
}

// nextState is Kafka's calculateNextBrokerState.
func (c *Controller) nextState(im *Image, b Broker, cur brokerState, h Heartbeat, offset int64) brokerState {
	switch cur {
	case stateFenced:
		switch {
		case h.WantShutdown:
			return stateShutdownNow
		case !h.WantFence && offset >= b.Epoch:
			return stateUnfenced
		}
		return stateFenced
	case stateUnfenced:
		switch {
		case h.WantFence && h.WantShutdown:
			return stateShutdownNow
		case h.WantFence:
			return stateFenced
		case h.WantShutdown && hasLeaderships(im, b.NodeID):
			return stateControlledShutdown
		case h.WantShutdown:
			return stateShutdownNow
		}
		return stateUnfenced
	default: // controlled shutdown
		if hasLeaderships(im, b.NodeID) {
			return stateControlledShutdown
		}
		if int64(b.ControlledShutdownOffset) <= c.lowestActiveOffsetLocked(im) {
			return stateShutdownNow
		}
		return stateControlledShutdown
	}
}

// lowestActiveOffsetLocked is the lowest metadata offset reported by an active broker (one
// that is unfenced and not shutting down); brokers that have not heartbeated to this
// controller count as -1. REQUIRES: c.mu is held.
func (c *Controller) lowestActiveOffsetLocked(im *Image) int64 {
	lowest := int64(1<<63 - 1)
	for _, b := range im.brokers {
		if !b.Active() {
			continue
		}
		off := int64(-1)
		if s, ok := c.sessions[b.NodeID]; ok {
			off = s.offset
		}
		lowest = min(lowest, off)
	}
	return lowest
}

func hasLeaderships(im *Image, id int32) bool {
	for _, t := range im.sorted {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// fenceRecords fences b: it leaves every ISR (into the ELR where the ISR drops below
// min.insync.replicas) and its leaderships move (Kafka's handleBrokerFenced).
func (c *Controller) fenceRecords(im *Image, b Broker) []Record {
	records := c.leaderAndISRUpdates(im, b.NodeID, -1, func(p Partition) bool { return slices.Contains(p.ISR, b.NodeID) })
	if !b.Fenced {
		records = append(records, &BrokerChangeRecord{NodeID: b.NodeID, BrokerEpoch: b.Epoch, Fenced: boolPtr(true)})
	}
	return records
}

// unfenceRecords unfences b and elects leaders for the offline partitions it can lead
// (Kafka's handleBrokerUnfenced).
func (c *Controller) unfenceRecords(im *Image, b Broker) []Record {
	records := []Record{&BrokerChangeRecord{NodeID: b.NodeID, BrokerEpoch: b.Epoch, Fenced: boolPtr(false)}}
	return append(records, c.leaderAndISRUpdates(im, -1, b.NodeID, func(p Partition) bool { return p.Leader == -1 })...)
}

// controlledShutdownRecords marks b in controlled shutdown, moves its leaderships and
// removes it from the ISRs (Kafka's handleBrokerInControlledShutdown).
func (c *Controller) controlledShutdownRecords(im *Image, b Broker) []Record {
	var records []Record
	if !b.InControlledShutdown {
		records = append(records, &BrokerChangeRecord{NodeID: b.NodeID, BrokerEpoch: b.Epoch, InControlledShutdown: boolPtr(true)})
	}
	return append(records, c.leaderAndISRUpdates(im, b.NodeID, -1, func(p Partition) bool { return slices.Contains(p.ISR, b.NodeID) })...)
}

// expireSessions fences every unfenced broker whose session has expired at now, one
// broker per commit so each fencing sees the leaderships the previous one moved (as
// Kafka's maybeFenceOneStaleBroker). It is the leader-only timer; sessionLoop drives it.
func (c *Controller) expireSessions(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.termStartedLocked() {
		return nil
	}
	for _, b := range c.Image().Brokers() {
		s, ok := c.sessions[b.NodeID]
		if b.Fenced || !ok || !now.After(s.lastSeen.Add(c.cfg.SessionTimeout)) {
			continue
		}
		im := c.Image()
		b, _ := im.Broker(b.NodeID)
		if err := c.commitLocked(ctx, c.fenceRecords(im, b)...); err != nil {
			return fmt.Errorf("fence broker %d after its session expired: %w", b.NodeID, err)
		}
	}
	return nil
}

// sessionInterval is how often the active controller checks broker sessions.
const sessionInterval = 500 * time.Millisecond

// sessionLoop calls expireSessions every sessionInterval (a no-op unless this node leads),
// until done is closed.
func (c *Controller) sessionLoop(done <-chan struct{}) {
	t := time.NewTicker(sessionInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			// A lost leadership whose notification raft coalesced away is seen here.
			c.mu.Lock()
			if c.leading && !c.IsController() {
				c.lostLeadershipLocked()
			}
			c.mu.Unlock()
			err := c.expireSessions(context.Background(), c.cfg.Now())
			if err == nil {
				err = c.fenceDeadBrokers(context.Background(), c.cfg.Now())
			}
			if err != nil && !errors.Is(err, ErrNotController) && !errors.Is(err, ErrClosed) {
				c.reportError(fmt.Errorf("metadata: %w", err))
			}
		}
	}
}

func boolPtr(v bool) *bool { return &v }

// sameStorage reports whether two registrations name the same non-empty set of log dirs.
func sameStorage(a, b []UUID) bool {
	if len(a) == 0 || len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}
