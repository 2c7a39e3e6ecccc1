package group

import (
	"crypto/rand"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type groupState int8

const (
	stateEmpty groupState = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

// String returns the state name Kafka uses in DescribeGroups and ListGroups.
func (s groupState) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	case stateDead:
		return "Dead"
	}
	return "Unknown"
}

// consumerProtocolType is the protocol type of Java-compatible consumers, whose member metadata
// names the subscribed topics.
const consumerProtocolType = "consumer"

// joinResult is what a blocked JoinGroup receives; the waiting request builds its versioned
// response from it.
type joinResult struct {
	err          int16
	memberID     string
	generation   int32
	protocolType string
	protocol     string
	hasProtocol  bool
	leader       string
	members      []kmsg.JoinGroupResponseMember // the leader's only
	// skipAssignment tells a static leader rejoining a Stable group that it leads but must not
	// assign (JoinGroup v9+, KIP-814).
	skipAssignment bool
}

func joinError(code int16, memberID string) joinResult {
	return joinResult{err: code, memberID: memberID, generation: -1}
}

type syncResult struct {
	err          int16
	protocolType string
	protocol     string
	assignment   []byte
}

type member struct {
	id                string
	instanceID        *string
	clientID          string
	clientHost        string
	protocolType      string
	protocols         []kmsg.JoinGroupRequestProtocol
	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	assignment        []byte
	joinOrder         uint64
	isNew             bool
	joinWait          chan joinResult // non-nil while a JoinGroup waits (the member is "awaiting join")
	syncWait          chan syncResult // non-nil while a SyncGroup waits
	sessionTimer      Timer
	sessionGeneration uint64 // invalidates fired-but-stale session timers
}

func (m *member) invokeJoin(r joinResult) {
	if m.joinWait != nil {
		m.joinWait <- r // buffered 1, and only ever sent once per channel
		m.joinWait = nil
	}
}

func (m *member) invokeSync(r syncResult) {
	if m.syncWait != nil {
		m.syncWait <- r
		m.syncWait = nil
	}
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols equal the member's, in order (Kafka's MemberMetadata.matches).
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(protocols) != len(m.protocols) {
		return false
	}
	for i := range protocols {
		if protocols[i].Name != m.protocols[i].Name || string(protocols[i].Metadata) != string(m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

type offsetEntry struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // unix millis
	// seq orders the group's writes: the record's offset in __consumer_offsets when loaded,
	// the group's next seq when written here (group.nextSeq). A transaction's commit keeps a
	// committed offset written after the transactional one (Kafka compares record offsets).
	seq int64
}

// group is one consumer group. Every field below mu is guarded by it.
type group struct {
	c    *Coordinator
	name string

	mu sync.Mutex

	state        groupState
	stateTime    time.Time
	protocolType string
	protocol     string // selected protocol of the current generation; "" when none
	generation   int32
	leader       string // "" when none
	members      map[string]*member
	static       map[string]string // group.instance.id -> member id
	pending      map[string]Timer  // member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
	pendingSync  map[string]struct{}
	supported    map[string]int // protocol name -> number of members supporting it
	nextJoin     uint64
	subscribed   map[string]struct{} // topics of the current generation; nil: unknown
	stopped      bool                // coordinator closed: timers must not act

	joinTimer      Timer
	joinTimerGen   uint64
	initialDelay   bool // the pending join timer is Kafka's InitialDelayedJoin
	newMemberAdded bool
	delayRemaining time.Duration
	syncTimer      Timer
	syncTimerGen   uint64

	offsets map[string]map[int32]offsetEntry
	// txnOffsets holds, per producer id, the offsets its ongoing transaction committed
	// (TxnOffsetCommit) until its marker: commit moves them into offsets, abort drops them.
	txnOffsets map[int64]map[string]map[int32]offsetEntry
	seq        int64 // the seq of the group's next offset write (offsetEntry.seq)
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c:          c,
		name:       name,
		state:      stateEmpty,
		stateTime:  c.clock.Now(),
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]Timer),
		supported:  make(map[string]int),
		offsets:    make(map[string]map[int32]offsetEntry),
		txnOffsets: make(map[int64]map[string]map[int32]offsetEntry),
	}
}

func (g *group) transition(s groupState) {
	g.state = s
	g.stateTime = g.c.clock.Now()
}

func (g *group) canRebalance() bool {
	return g.state == stateStable || g.state == stateCompletingRebalance || g.state == stateEmpty
}

func (g *group) hasOffsets() bool {
	return len(g.offsets) > 0
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// sortedMembers returns members in join order (the leader, the first joiner, usually first).
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinOrder < ms[j].joinOrder })
	return ms
}

func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	m.joinOrder = g.nextJoin
	g.nextJoin++
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	for _, p := range m.protocols {
		g.supported[p.Name]++
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if t, ok := g.pending[m.id]; ok {
		t.Stop()
		delete(g.pending, m.id)
	}
}

// remove drops a member, electing the oldest remaining member as leader if it led.
func (g *group) remove(id string) {
	m, ok := g.members[id]
	if !ok {
		return
	}
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionGeneration++
	delete(g.members, id)
	for _, p := range m.protocols {
		g.supported[p.Name]--
		if g.supported[p.Name] <= 0 {
			delete(g.supported, p.Name)
		}
	}
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, id)
	if g.leader == id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

func (g *group) updateMember(m *member, protocols []kmsg.JoinGroupRequestProtocol, rebalance, session time.Duration, wait chan joinResult) {
	for _, p := range m.protocols {
		g.supported[p.Name]--
		if g.supported[p.Name] <= 0 {
			delete(g.supported, p.Name)
		}
	}
	for _, p := range protocols {
		g.supported[p.Name]++
	}
	m.protocols = protocols
	m.rebalanceTimeout = rebalance
	m.sessionTimeout = session
	if wait != nil {
		// A JoinGroup retried on another connection replaces the old wait; the old connection is
		// told to rejoin.
		m.invokeJoin(joinError(kerr.RebalanceInProgress.Code, m.id))
		m.joinWait = wait
	}
}

func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supported[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports with the most votes, each member voting
// for its most preferred candidate; ties go to the leader's preference.
func (g *group) selectProtocol() string {
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supported[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	var order []kmsg.JoinGroupRequestProtocol
	if l, ok := g.members[g.leader]; ok {
		order = l.protocols
	} else if ms := g.sortedMembers(); len(ms) > 0 {
		order = ms[0].protocols
	}
	best, bestVotes := "", -1
	for _, p := range order {
		if g.supported[p.Name] != len(g.members) {
			continue
		}
		if v := votes[p.Name]; v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

func (g *group) allMembersJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			return false
		}
	}
	return true
}

func (g *group) staticFenced(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	cur, ok := g.static[*instanceID]
	return ok && cur != memberID
}

func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != consumerProtocolType || g.protocol == "" {
		return
	}
	topics := make(map[string]struct{})
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadata(g.protocol)); err != nil {
			return // unknown: treat every topic as subscribed
		}
		for _, t := range md.Topics {
			topics[t] = struct{}{}
		}
	}
	g.subscribed = topics
}

func (g *group) isSubscribed(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	_, ok := g.subscribed[topic]
	return ok
}

// ---- timers ----

func (g *group) scheduleSession(m *member, d time.Duration) {
	if m.sessionTimer != nil {
		m.sessionTimer.Stop()
	}
	m.sessionGeneration++
	gen := m.sessionGeneration
	m.sessionTimer = g.c.clock.AfterFunc(d, func() { g.sessionExpired(m, gen) })
}

func (g *group) sessionExpired(m *member, gen uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || g.state == stateDead || g.members[m.id] != m || m.sessionGeneration != gen {
		return
	}
	// Members waiting in a rebalance satisfy their heartbeats (the rebalance timeout bounds them),
	// except new members, which are bounded by newMemberJoinTimeout.
	if !m.isNew && (m.joinWait != nil || m.syncWait != nil) {
		return
	}
	g.removeMemberAndUpdate(m)
}

func (g *group) addPending(id string, session time.Duration) {
	g.pending[id] = g.c.clock.AfterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.stopped {
			return
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			if g.state == statePreparingRebalance {
				g.tryCompleteJoin()
			}
		}
	})
}

func (g *group) removePending(id string) {
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		if g.state == statePreparingRebalance {
			g.tryCompleteJoin()
		}
	}
}

func (g *group) stopJoinTimer() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinTimerGen++
}

func (g *group) startJoinTimer(d time.Duration) {
	g.stopJoinTimer()
	gen := g.joinTimerGen
	g.joinTimer = g.c.clock.AfterFunc(d, func() { g.joinTimerFired(gen) })
}

func (g *group) stopSyncTimer() {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.syncTimerGen++
}

// ---- the rebalance state machine ----

// removeMemberAndUpdate removes m (session expiry, leave, fencing) and moves the group on.
func (g *group) removeMemberAndUpdate(m *member) {
	// A new member may time out with its JoinGroup pending: tell it to rejoin.
	m.invokeJoin(joinError(kerr.UnknownMemberID.Code, m.id))
	m.invokeSync(syncResult{err: kerr.UnknownMemberID.Code})
	g.remove(m.id)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.maybePrepareRebalance()
	case statePreparingRebalance:
		g.tryCompleteJoin()
	}
}

func (g *group) maybePrepareRebalance() {
	if g.canRebalance() {
		g.prepareRebalance()
	}
}

func (g *group) prepareRebalance() {
	if g.state == stateCompletingRebalance {
		g.resetAndPropagateAssignmentError(kerr.RebalanceInProgress.Code)
	}
	g.stopSyncTimer()
	wasEmpty := g.state == stateEmpty
	g.transition(statePreparingRebalance)
	delay := g.c.cfg.InitialRebalanceDelay
	if wasEmpty && delay > 0 {
		// Kafka's InitialDelayedJoin: wait for more members of a new group, extending the wait by
		// delay while members keep arriving, for at most the rebalance timeout.
		g.initialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = max(g.rebalanceTimeout()-delay, 0)
		g.startJoinTimer(delay)
		return
	}
	g.initialDelay = false
	g.startJoinTimer(g.rebalanceTimeout())
	g.tryCompleteJoin()
}

// tryCompleteJoin completes the join phase once every member rejoined (Kafka's DelayedJoin).
func (g *group) tryCompleteJoin() {
	if g.state == statePreparingRebalance && !g.initialDelay && g.allMembersJoined() {
		g.completeJoin()
	}
}

func (g *group) joinTimerFired(gen uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || gen != g.joinTimerGen || g.state != statePreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.delayRemaining > 0 {
		delay := g.c.cfg.InitialRebalanceDelay
		g.newMemberAdded = false
		next := min(delay, g.delayRemaining)
		g.delayRemaining = max(g.delayRemaining-delay, 0)
		g.startJoinTimer(next)
		return
	}
	g.completeJoin()
}

// completeJoin ends PreparingRebalance: members that did not rejoin are removed, the generation
// is bumped, and every waiting JoinGroup is answered (the leader gets the member metadata).
func (g *group) completeJoin() {
	g.stopJoinTimer()
	g.initialDelay = false
	joined := 0
	for _, m := range g.members {
		if m.joinWait != nil {
			joined++
		}
	}
	// As Kafka: the dynamic members that did not rejoin leave; a static member that did not stays
	// in the new generation (the leader assigns it its share), and goes only if it does not come
	// back before the pending-sync timeout, or its session timeout, whichever comes first. With
	// nobody rejoined, everyone goes.
	for _, m := range g.sortedMembers() {
		if m.joinWait == nil && (m.instanceID == nil || joined == 0) {
			m.invokeSync(syncResult{err: kerr.UnknownMemberID.Code})
			g.remove(m.id)
		}
	}
	// The leader must be a member that rejoined (Kafka's maybeElectNewJoinedLeader).
	if l, ok := g.members[g.leader]; ok && l.joinWait == nil {
		for _, m := range g.sortedMembers() {
			if m.joinWait != nil {
				g.leader = m.id
				break
			}
		}
	}
	g.generation++
	g.pendingSync = make(map[string]struct{})
	if len(g.members) == 0 {
		g.protocol = ""
		g.subscribed = nil
		g.transition(stateEmpty)
		// Kafka logs and carries on when this write fails; the group is Empty either way.
		_ = g.storeGroup(nil)
		return
	}
	g.protocol = g.selectProtocol()
	g.computeSubscribed()
	g.transition(stateCompletingRebalance)
	metadata := g.memberMetadata()
	for _, m := range g.sortedMembers() {
		r := g.joinResultFor(m)
		if m.id == g.leader {
			r.members = metadata
		}
		m.invokeJoin(r)
		g.scheduleSession(m, m.sessionTimeout)
		m.isNew = false
		g.pendingSync[m.id] = struct{}{}
	}
	// Members that do not SyncGroup within the rebalance timeout are removed (Kafka's
	// pending-sync expiration).
	g.stopSyncTimer()
	gen := g.syncTimerGen
	generation := g.generation
	g.syncTimer = g.c.clock.AfterFunc(g.rebalanceTimeout(), func() { g.syncTimerFired(gen, generation) })
}

// memberMetadata is what the leader's JoinGroup response lists: every member, in join order, with
// its metadata for the selected protocol.
func (g *group) memberMetadata() []kmsg.JoinGroupResponseMember {
	var out []kmsg.JoinGroupResponseMember
	for _, m := range g.sortedMembers() {
		out = append(out, kmsg.JoinGroupResponseMember{
			MemberID:         m.id,
			InstanceID:       m.instanceID,
			ProtocolMetadata: m.metadata(g.protocol),
		})
	}
	return out
}

func (g *group) joinResultFor(m *member) joinResult {
	return joinResult{
		memberID:     m.id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		hasProtocol:  g.protocol != "",
		leader:       g.leader,
	}
}

func (g *group) syncTimerFired(gen uint64, generation int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped || gen != g.syncTimerGen || generation != g.generation {
		return
	}
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	if len(g.pendingSync) == 0 {
		return
	}
	for id := range g.pendingSync {
		if m, ok := g.members[id]; ok {
			m.invokeSync(syncResult{err: kerr.UnknownMemberID.Code})
			g.remove(id)
		}
	}
	g.pendingSync = make(map[string]struct{})
	g.maybePrepareRebalance()
}

func (g *group) receivedSync(id string) {
	delete(g.pendingSync, id)
	if len(g.pendingSync) == 0 {
		g.stopSyncTimer()
	}
}

func (g *group) resetAndPropagateAssignmentError(code int16) {
	for _, m := range g.members {
		m.assignment = nil
		m.invokeSync(syncResult{err: code})
	}
}

func (g *group) setAndPropagateAssignment(assignments map[string][]byte) {
	for id, m := range g.members {
		m.assignment = assignments[id]
		if m.syncWait != nil {
			m.invokeSync(syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment})
			g.scheduleSession(m, m.sessionTimeout)
		}
	}
}

// shutdownLocked stops every timer and answers every waiter; the coordinator is closing.
func (g *group) shutdownLocked() {
	g.stopped = true
	g.stopJoinTimer()
	g.stopSyncTimer()
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	for _, m := range g.members {
		if m.sessionTimer != nil {
			m.sessionTimer.Stop()
		}
		m.invokeJoin(joinError(kerr.CoordinatorNotAvailable.Code, m.id))
		m.invokeSync(syncResult{err: kerr.CoordinatorNotAvailable.Code})
	}
}
