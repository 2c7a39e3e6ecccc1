package replica

// The deterministic replication simulation: three brokers with real partitions (partition.Partition
// on vfs.MemFS) and real replica managers and fetchers, driven step by step without goroutines by
// a seeded RNG, over a fake clock, a fake network between followers and leaders (messages
// delivered, delayed, dropped, duplicated, links cut) and a small controller model (ISR, leader and
// partition epochs, fencing, election from the ISR, AlterPartition). After every step it checks:
//
//   - Leader Completeness: every record acknowledged with acks=all is in the log of the elected
//     leader and of every ISR member that is up (Leader Candidate Completeness), at its offset;
//   - Log Matching: two replicas hold the same record with the same epoch at every offset below
//     both their high watermarks;
//   - the high watermark a leader serves consumers never goes back within a leader epoch;
//   - no replica truncates below the highest high watermark it ever had (KIP-101), checked at
//     every TruncateTo;
//   - no record is twice in any log: on odd seeds acks=all goes through an idempotent producer
//     that sends an unacknowledged batch again (same sequence) to whichever broker leads next,
//     which must deduplicate it from the producer state its follower side rebuilt.
//
// Besides the faults (crashes losing unsynced writes, clean restarts, kill-the-leader, network
// partitions, message loss and duplication) leaders delete records (followers behind the
// leader's log start restart their logs there), and every third seed the leaders answer as
// before Fetch v12, so that followers truncate with OffsetForLeaderEpoch. Two seeds in five
// run a fourth broker and move the partition between three of the four (reassignment, as
// metadata/reassign.go: adding replicas follow and join the ISR, the move completes once the ISR
// holds the target, a leader that is not in it gives way, removed replicas delete their files),
// or cancel the move in progress.
//
// After the faults, a calm phase (network healed, every broker up) checks the same invariants
// and liveness: the ISR gets back to all three replicas, every replica reaches the leader's log
// end, and an acks=all produce is acknowledged. (Liveness found stalls in the partition layer,
// each now with its own unit test in internal/partition or internal/log: a leader elected with
// an ISR below min.insync.replicas and its high watermark below its epoch start never expanded
// its ISR (seed 1); a follower whose epoch cache ended with an epoch it led without writing
// fetched with it forever, since TruncateTo at the log end kept the entry (seed 25); a follower
// restarted at a leader log start inside a batch could not append that batch (seed 36); a
// truncation inside a batch kept the batch, so the follower was told to truncate to the same
// offset on every fetch (seed 784).)
//
// MOLDAU_SIM_SEEDS=n runs n seeds (default 20), MOLDAU_SIM_STEPS=n steps each (default 300),
// MOLDAU_SIM_SEED=s only seed s, MOLDAU_SIM_TRACE=1 logs every step.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

const (
	simTopic   = "t"
	simLagMax  = 3 * time.Second
	simBackoff = 200 * time.Millisecond
)

var simTopicID = metadata.UUID{7, 7, 7}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestReplicationSimulation(t *testing.T) {
	seeds := envInt("MOLDAU_SIM_SEEDS", 20)
	steps := envInt("MOLDAU_SIM_STEPS", 300)
	first := int64(1)
	if s := os.Getenv("MOLDAU_SIM_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MOLDAU_SIM_SEED=%q", s)
		}
		first, seeds = v, 1
	}
	var total simStats
	for seed := first; seed < first+int64(seeds); seed++ {
		s := newSim(t, seed)
		s.run(steps)
		s.settle()
		s.stats.acked = len(s.acked)
		total.add(s.stats)
		if os.Getenv("MOLDAU_SIM_TRACE") != "" {
			t.Logf("seed %d:\n%s", seed, strings.Join(s.trace, "\n"))
		}
		s.close()
	}
	t.Logf("%d seeds x %d steps: %+v", seeds, steps, total)
	if total.acked == 0 || total.elections == 0 || total.truncations == 0 || (seeds >= 3 && total.offsetForLeaderEpochs == 0) {
		t.Fatalf("the simulation acknowledged %d records, elected %d leaders and truncated %d times: it proves nothing", total.acked, total.elections, total.truncations)
	}
	if seeds >= 5 && (total.movesDone == 0 || total.cancels == 0) {
		t.Fatalf("the simulation completed %d moves and cancelled %d: the reassignment steps prove nothing", total.movesDone, total.cancels)
	}
}

type simNode struct {
	id    int32
	fs    *vfs.MemFS
	parts *partition.Manager
	mgr   *Manager
	up    bool
	gen   int
	image *metadata.Image
	epoch int64 // broker epoch of its registration
	// maxHW is the highest high watermark this replica ever had (it never truncates below it).
	maxHW int64
}

type simMsg struct {
	from, to int32 // follower, leader
	gen      int   // the follower's incarnation when it sent
	f        *fetcher
	freq     *kmsg.FetchRequest
	oreq     *kmsg.OffsetForLeaderEpochRequest
	fresp    *kmsg.FetchResponse
	oresp    *kmsg.OffsetForLeaderEpochResponse
}

func (m *simMsg) isResponse() bool { return m.fresp != nil || m.oresp != nil }

type ackedRecord struct {
	offset int64
	value  string
}

type pendingAck struct {
	node   *simNode
	gen    int
	epoch  int32
	last   int64
	recs   []ackedRecord
	sentAt time.Time
	idem   bool // the idempotent producer's batch (s.idem)
}

// idemBatch is the idempotent producer's batch not acknowledged yet: it is sent again, with the
// same sequence, until it is (max.in.flight.requests.per.connection=1).
type idemBatch struct {
	seq     int32
	vals    []string
	pending bool // a send of it waits for its acknowledgement
}

// simProducerID is the idempotent producer's id.
const simProducerID = 1000

// simRequestTimeout is when the producer gives up waiting for an acks=all answer and retries.
const simRequestTimeout = 30 * time.Second

// simController is the controller model: one partition of simTopic.
type simController struct {
	s              *sim
	replicas       []int32
	leader         int32
	leaderEpoch    int32
	partitionEpoch int32
	isr            []int32
	fenced         map[int32]bool
	brokerEpoch    map[int32]int64
	ims            *images
	latest         *metadata.Image

	// adding and removing: a reassignment in progress (replicas = target, then removing).
	adding, removing []int32
}

type sim struct {
	t        *testing.T
	seed     int64
	rng      *rand.Rand
	clock    *fakeClock
	nodes    []*simNode
	ctrl     *simController
	net      []*simMsg
	inflight map[*fetcher]int
	cut      map[[2]int32]bool // broker links cut (lower id first)
	ctrlCut  map[int32]bool    // brokers the controller cannot reach
	settings partition.Settings
	// oldFetch: the leaders answer as before Fetch v12 (no LastFetchedEpoch, no DivergingEpoch),
	// so the followers truncate with OffsetForLeaderEpoch first (every third seed).
	oldFetch bool
	// reassigning: a fourth broker, and reassignment steps (two seeds in five).
	reassigning bool

	acked     []ackedRecord
	pending   []pendingAck
	nextValue int
	idem      *idemBatch
	nextSeq   int32
	maxHW     map[int32]int64 // leader epoch -> highest high watermark a leader served in it
	step      int
	trace     []string
	failure   string
	stats     simStats
}

// simStats counts what a run went through, so that the test shows it exercised something.
type simStats struct {
	acked, truncations, elections, crashes, restarts, isrChanges, fetchErrors, offsetForLeaderEpochs, deletes, fullTruncations, dedups, idemErrors int

	// The reassignment seeds: moves started, completed, cancelled.
	moves, movesDone, cancels int
}

func (a *simStats) add(b simStats) {
	a.acked += b.acked
	a.truncations += b.truncations
	a.elections += b.elections
	a.crashes += b.crashes
	a.restarts += b.restarts
	a.isrChanges += b.isrChanges
	a.fetchErrors += b.fetchErrors
	a.offsetForLeaderEpochs += b.offsetForLeaderEpochs
	a.deletes += b.deletes
	a.fullTruncations += b.fullTruncations
	a.dedups += b.dedups
	a.idemErrors += b.idemErrors
	a.moves += b.moves
	a.movesDone += b.movesDone
	a.cancels += b.cancels
}

func newSim(t *testing.T, seed int64) *sim {
	lc := log.DefaultConfig()
	lc.SegmentBytes = 4096
	lc.FileDeleteDelayMs = 0
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), clock: newFakeClock(),
		inflight: map[*fetcher]int{}, cut: map[[2]int32]bool{}, ctrlCut: map[int32]bool{},
		maxHW: map[int32]int64{}, oldFetch: seed%3 == 0, reassigning: seed%5 == 2 || seed%5 == 3,
		settings: partition.Settings{Log: lc, MaxMessageBytes: 1 << 20, MinInsyncReplicas: 2,
			SyncBeforeAck: true, ReplicaLagTimeMax: simLagMax}}
	c := &simController{s: s, replicas: []int32{1, 2, 3}, leader: 1, isr: []int32{1, 2, 3},
		fenced: map[int32]bool{}, brokerEpoch: map[int32]int64{}, ims: newImages(t)}
	s.ctrl = c
	c.ims.apply(metadata.TopicRecord{Name: simTopic, TopicID: simTopicID})
	c.publish()
	brokers := int32(3)
	if s.reassigning {
		brokers = 4
	}
	for id := int32(1); id <= brokers; id++ {
		n := &simNode{id: id, fs: vfs.NewMem()}
		s.nodes = append(s.nodes, n)
		c.brokerEpoch[id] = int64(id)
		n.epoch = int64(id)
		s.startNode(n)
	}
	for _, n := range s.nodes {
		s.applyImage(n)
	}
	return s
}

func (s *sim) node(id int32) *simNode { return s.nodes[id-1] }

func (s *sim) logf(format string, a ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%4d %s", s.step, fmt.Sprintf(format, a...)))
}

func (s *sim) fail(format string, a ...any) {
	if s.failure == "" {
		s.failure = fmt.Sprintf(format, a...)
	}
}

// simStore opens real partitions and checks every truncation against the replica's highest
// high watermark.
type simStore struct {
	partitionStore
	s *sim
	n *simNode
}

func (st simStore) open(topic string, p int32, set partition.Settings) (local, error) {
	l, err := st.partitionStore.open(topic, p, set)
	if err != nil {
		return nil, err
	}
	return checkedLocal{partitionLocal: l.(partitionLocal), s: st.s, n: st.n}, nil
}

type checkedLocal struct {
	partitionLocal
	s *sim
	n *simNode
}

func (c checkedLocal) TruncateTo(off int64) error {
	if leo := c.LogEndOffset(); off < leo && off < c.n.maxHW {
		c.s.fail("node %d truncates to %d, below the high watermark %d it had (log end %d)", c.n.id, off, c.n.maxHW, leo)
	}
	if off < c.LogEndOffset() {
		c.s.stats.truncations++
	}
	c.s.logf("node %d truncates to %d (log end %d, hw %d)", c.n.id, off, c.LogEndOffset(), c.HighWatermark())
	return c.partitionLocal.TruncateTo(off)
}

func (c checkedLocal) TruncateFullyAndStartAt(off int64) error {
	c.s.stats.fullTruncations++
	c.s.logf("node %d restarts its log at %d (log end %d, hw %d)", c.n.id, off, c.LogEndOffset(), c.HighWatermark())
	return c.partitionLocal.TruncateFullyAndStartAt(off)
}

func (s *sim) startNode(n *simNode) {
	pm, err := partition.NewManager([]string{"/data"}, s.clock, partition.WithFS(n.fs), partition.WithLogger(discardLogger()))
	if err != nil {
		s.t.Fatalf("seed %d: node %d: partition manager: %v", s.seed, n.id, err)
	}
	n.parts = pm
	id := n.id
	n.mgr = newManager(Config{
		NodeID:            id,
		Settings:          func(*metadata.Topic) (partition.Settings, error) { return s.settings, nil },
		AlterPartition:    func(_ context.Context, items []ISRUpdate) error { return s.ctrl.alterPartition(id, items) },
		BrokerEpoch:       func() int64 { return n.epoch },
		EligibleBrokers:   func(*metadata.Image) map[int32]int64 { return s.ctrl.eligible() },
		Clock:             s.clock,
		Logger:            slog.New(traceHandler{s: s, node: id}),
		ReplicaLagTimeMax: simLagMax,
		FetchBackoff:      simBackoff,
	}, simStore{partitionStore{pm}, s, n}, true)
	n.up = true
	n.gen++
	n.image = nil
}

func (s *sim) close() {
	for _, n := range s.nodes {
		if n.up {
			n.mgr.Close()
			n.parts.Close()
		}
	}
}

func (s *sim) part(n *simNode) *partition.Partition {
	if !n.up {
		return nil
	}
	return n.parts.Get(simTopic, 0)
}

// traceHandler puts the warnings and errors a node's manager and fetchers log in the trace.
type traceHandler struct {
	s     *sim
	node  int32
	attrs []slog.Attr
}

func (h traceHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.s.logf("node %d %s: %s%s", h.node, r.Level, r.Message, b.String())
	return nil
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clone(h.attrs), as...)
	return h
}

func (h traceHandler) WithGroup(string) slog.Handler { return h }

// --- the controller model ---

func (c *simController) publish() {
	if c.latest != nil {
		if p, _ := c.latest.Topic(simTopic); p != nil && p.Partitions[0].LeaderEpoch != c.leaderEpoch {
			c.s.stats.elections++
		}
	}
	c.latest = c.ims.apply(metadata.PartitionRecord{TopicID: simTopicID, Partition: 0, Replicas: slices.Clone(c.replicas),
		ISR: slices.Clone(c.isr), Leader: c.leader, LeaderEpoch: c.leaderEpoch, PartitionEpoch: c.partitionEpoch,
		AddingReplicas: slices.Clone(c.adding), RemovingReplicas: slices.Clone(c.removing)})
	c.s.logf("controller: leader %d epoch %d pe %d replicas %v (adding %v, removing %v) isr %v fenced %v",
		c.leader, c.leaderEpoch, c.partitionEpoch, c.replicas, c.adding, c.removing, c.isr, c.fencedList())
}

func (c *simController) fencedList() []int32 {
	var out []int32
	for id, f := range c.fenced {
		if f {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (c *simController) eligible() map[int32]int64 {
	out := map[int32]int64{}
	for _, id := range c.replicas {
		if !c.fenced[id] {
			out[id] = c.brokerEpoch[id]
		}
	}
	return out
}

// fence is the session expiry (or a re-registration): the broker leaves the ISR unless it is
// its last member, and a leader is replaced from the ISR.
func (c *simController) fence(id int32) {
	if c.fenced[id] {
		return
	}
	c.fenced[id] = true
	changed := false
	if slices.Contains(c.isr, id) && len(c.isr) > 1 {
		c.isr = slices.DeleteFunc(slices.Clone(c.isr), func(x int32) bool { return x == id })
		changed = true
	}
	if c.leader == id {
		c.leader = -1
		for _, x := range c.isr {
			if !c.fenced[x] {
				c.leader = x
				break
			}
		}
		c.leaderEpoch++
		changed = true
	}
	if changed {
		c.partitionEpoch++
	}
	c.publish()
}

func (c *simController) unfence(id int32) {
	if !c.fenced[id] {
		return
	}
	c.fenced[id] = false
	if c.leader == -1 && slices.Contains(c.isr, id) {
		c.leader = id
		c.leaderEpoch++
		c.partitionEpoch++
	}
	c.publish()
}

// alterPartition is the controller's AlterPartition: the leader of the current epochs may
// change the ISR to replicas that are not fenced (except those already in it).
func (c *simController) alterPartition(from int32, items []ISRUpdate) error {
	s := c.s
	if s.ctrlCut[from] || !s.node(from).up {
		return errors.New("controller unreachable")
	}
	for _, it := range items {
		switch {
		case c.fenced[from] || s.node(from).epoch != c.brokerEpoch[from]:
			return fmt.Errorf("broker %d: %w", from, kerr.StaleBrokerEpoch)
		case it.LeaderEpoch != c.leaderEpoch || c.leader != from:
			return fmt.Errorf("leader epoch %d, controller has %d: %w", it.LeaderEpoch, c.leaderEpoch, kerr.FencedLeaderEpoch)
		case it.PartitionEpoch != c.partitionEpoch:
			return fmt.Errorf("partition epoch %d, controller has %d: %w", it.PartitionEpoch, c.partitionEpoch, kerr.InvalidUpdateVersion)
		case !slices.Contains(it.NewISR, from):
			return fmt.Errorf("ISR %v without the leader: %w", it.NewISR, kerr.InvalidRequest)
		}
		if len(it.NewISRBrokerEpochs) != len(it.NewISR) {
			return fmt.Errorf("%d broker epochs for ISR %v: %w", len(it.NewISRBrokerEpochs), it.NewISR, kerr.InvalidRequest)
		}
		for i, id := range it.NewISR {
			if !slices.Contains(c.replicas, id) || (c.fenced[id] && !slices.Contains(c.isr, id)) {
				return fmt.Errorf("replica %d: %w", id, kerr.IneligibleReplica)
			}
			// KIP-903: a member named with an old broker epoch rebooted since (-1: unknown).
			if e := it.NewISRBrokerEpochs[i]; e >= 0 && e != c.brokerEpoch[id] {
				return fmt.Errorf("replica %d with broker epoch %d, now %d: %w", id, e, c.brokerEpoch[id], kerr.IneligibleReplica)
			}
		}
	}
	var err error
	for _, it := range items {
		s.logf("controller: AlterPartition from %d: isr %v -> %v", from, c.isr, it.NewISR)
		c.isr = slices.Clone(it.NewISR)
		c.partitionEpoch++
		s.stats.isrChanges++
		c.maybeCompleteMove()
		c.publish()
		if c.leader != from {
			// Committed, and it moved the leadership (the broker's translation of the
			// controller's answer: not a refusal, the change stays pending).
			err = fmt.Errorf("the change completed a move and elected %d: %w", c.leader, kerr.NewLeaderElected)
		}
	}
	return err
}

// electFrom is the first replica, in assignment order, in the ISR and not fenced (-1: none).
func (c *simController) electFrom() int32 {
	for _, id := range c.replicas {
		if slices.Contains(c.isr, id) && !c.fenced[id] {
			return id
		}
	}
	return -1
}

// startMove is AlterPartitionReassignments with target while none is in progress: the
// replicas become the target followed by the removed ones; the move completes at once when the
// ISR already holds the target.
func (c *simController) startMove(target []int32) {
	current := c.replicas
	c.removing = slices.Sorted(slices.Values(without(current, target)))
	c.adding = slices.Sorted(slices.Values(without(target, current)))
	c.replicas = append(slices.Clone(target), c.removing...)
	c.partitionEpoch++
	c.s.stats.moves++
	c.s.logf("controller: move %v -> %v", current, target)
	c.maybeCompleteMove()
	c.publish()
}

// maybeCompleteMove completes the move in progress once the ISR, less the removing replicas,
// holds every replica that stays: a leader that is not in it gives way; replicas leaving bump
// the leader epoch. REQUIRES: the caller bumps the partition epoch and publishes.
func (c *simController) maybeCompleteMove() {
	if len(c.adding) == 0 && len(c.removing) == 0 {
		return
	}
	isr, replicas := without(c.isr, c.removing), without(c.replicas, c.removing)
	if len(isr) == 0 || !containsAll(isr, replicas) {
		return
	}
	removed := len(c.removing) > 0
	c.replicas, c.isr, c.adding, c.removing = replicas, isr, nil, nil
	c.s.stats.movesDone++
	if !slices.Contains(c.isr, c.leader) {
		c.leader = c.electFrom()
		c.leaderEpoch++
	} else if removed {
		c.leaderEpoch++
	}
	c.s.logf("controller: move complete: replicas %v isr %v leader %d", c.replicas, c.isr, c.leader)
}

// cancelMove reverts the move in progress: the adding replicas leave the replicas and the ISR
// (not when that empties the ISR: it would need an unclean election).
func (c *simController) cancelMove() {
	replicas, isr := without(c.replicas, c.adding), without(c.isr, c.adding)
	if len(isr) == 0 {
		return
	}
	c.replicas, c.isr, c.adding, c.removing = replicas, isr, nil, nil
	c.s.stats.cancels++
	if !slices.Contains(c.isr, c.leader) {
		c.leader = c.electFrom()
	}
	c.leaderEpoch++ // replicas left (the adding ones)
	c.partitionEpoch++
	c.s.logf("controller: move cancelled")
	c.publish()
}

func without(s, drop []int32) []int32 {
	return slices.DeleteFunc(slices.Clone(s), func(x int32) bool { return slices.Contains(drop, x) })
}

func containsAll(s, sub []int32) bool {
	return !slices.ContainsFunc(sub, func(x int32) bool { return !slices.Contains(s, x) })
}

// reassign starts a move to three of the four brokers in a random order, or cancels the move
// in progress.
func (s *sim) reassign() {
	c := s.ctrl
	if len(c.adding) > 0 || len(c.removing) > 0 {
		if s.rng.Intn(2) == 0 {
			c.cancelMove()
		}
		return
	}
	ids := []int32{1, 2, 3, 4}
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	c.startMove(ids[:3])
}

// --- steps ---

func (s *sim) run(steps int) {
	for s.step = 1; s.step <= steps; s.step++ {
		s.randomStep()
		s.pollAcks()
		s.checkInvariants()
		if s.failure != "" {
			s.report()
		}
	}
}

// settle ends the faults (network healed, every broker restarted) and runs only fault-free
// steps: the cluster must get back to a full ISR, with every replica at the leader's log end,
// and acknowledge an acks=all produce (liveness, with everything reachable).
func (s *sim) settle() {
	s.heal()
	for _, n := range s.nodes {
		if !n.up {
			s.startNode(n)
			s.ctrl.fence(n.id)
			s.ctrl.brokerEpoch[n.id]++
			n.epoch = s.ctrl.brokerEpoch[n.id]
			s.applyImage(n)
		}
	}
	s.logf("settling")
	calm := []weighted{
		{10, s.sendFetch},
		{20, func() {
			for range 1 + s.rng.Intn(3) {
				s.deliver()
			}
		}},
		{5, s.advance},
		{5, s.checkISR},
		{5, s.deliverMetadata},
		{5, s.heartbeat},
		{3, func() { s.produce(-1) }},
	}
	acked := len(s.acked)
	for i := 0; i < 1000; i++ {
		s.step++
		s.pick(calm)
		s.pollAcks()
		s.checkInvariants()
		if s.failure != "" {
			break
		}
		c := s.ctrl
		if len(s.acked) > acked && len(c.adding) == 0 && len(c.removing) == 0 && len(c.isr) == 3 && s.converged() {
			return
		}
	}
	if s.failure == "" {
		s.fail("no progress after the faults ended: isr %v, leader %d, %d acknowledged before, %d now", s.ctrl.isr, s.ctrl.leader, acked, len(s.acked))
	}
	s.report()
}

// converged: every replica has the leader's log end offset and high watermark.
func (s *sim) converged() bool {
	l := s.ctrl.leader
	if l < 0 || !s.node(l).up {
		return false
	}
	lp := s.part(s.node(l))
	if lp == nil {
		return false
	}
	for _, id := range s.ctrl.replicas {
		p := s.part(s.node(id))
		if p == nil || p.LogEndOffset() != lp.LogEndOffset() || p.HighWatermark() != lp.HighWatermark() {
			return false
		}
	}
	// A broker no longer a replica has deleted its copy (once up with the latest image).
	for _, n := range s.nodes {
		if !slices.Contains(s.ctrl.replicas, n.id) && n.image == s.ctrl.latest && s.part(n) != nil {
			return false
		}
	}
	return true
}

func (s *sim) report() {
	tail := s.trace
	if len(tail) > 80 {
		tail = tail[len(tail)-80:]
	}
	s.t.Fatalf("seed %d, step %d: %s\n(rerun: MOLDAU_SIM_SEED=%d go test -run TestReplicationSimulation ./internal/replica/)\nlast steps:\n%s",
		s.seed, s.step, s.failure, s.seed, strings.Join(tail, "\n"))
}

func (s *sim) pick(steps []weighted) {
	total := 0
	for _, st := range steps {
		total += st.w
	}
	r := s.rng.Intn(total)
	for _, st := range steps {
		if r < st.w {
			st.do()
			return
		}
		r -= st.w
	}
}

type weighted struct {
	w  int
	do func()
}

func (s *sim) randomStep() {
	steps := []weighted{
		{30, func() { s.produce(-1) }},
		{8, func() { s.produce(1) }},
		{30, s.sendFetch},
		{60, func() {
			for range 1 + s.rng.Intn(3) {
				s.deliver()
			}
		}},
		{3, s.drop},
		{3, s.duplicate},
		{14, s.advance},
		{12, s.checkISR},
		{16, s.deliverMetadata},
		{14, s.heartbeat},
		{1, s.crashRandom},
		{1, s.killLeader},
		{4, s.restart},
		{1, s.isolate},
		{1, s.cutLink},
		{3, s.heal},
		{1, s.deleteRecords},
		{1, s.cleanRestart},
	}
	if s.reassigning {
		steps = append(steps, weighted{3, s.reassign})
	}
	s.pick(steps)
}

func (s *sim) upNodes() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.up {
			out = append(out, n)
		}
	}
	return out
}

func (s *sim) randomUp() *simNode {
	up := s.upNodes()
	if len(up) == 0 {
		return nil
	}
	return up[s.rng.Intn(len(up))]
}

func (s *sim) produce(acks int16) {
	n := s.randomUp()
	if n == nil {
		return
	}
	p := s.part(n)
	if p == nil || !p.IsLeader() {
		return
	}
	idem := acks == -1 && s.seed%2 == 1 // odd seeds: acks=all goes through the idempotent producer
	var vals []string
	spec := record.BatchSpec{ProducerID: -1, BaseSequence: -1, BaseTimestamp: s.clock.Now().UnixMilli()}
	if idem {
		if s.idem != nil && s.idem.pending {
			return // one in flight
		}
		if s.idem == nil {
			k := 1 + s.rng.Intn(3)
			s.idem = &idemBatch{seq: s.nextSeq}
			for range k {
				s.nextValue++
				s.idem.vals = append(s.idem.vals, fmt.Sprintf("v%d", s.nextValue))
			}
			s.nextSeq += int32(k)
		}
		vals = s.idem.vals
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = simProducerID, 0, s.idem.seq
	} else {
		k := 1 + s.rng.Intn(3)
		for range k {
			s.nextValue++
			vals = append(vals, fmt.Sprintf("v%d", s.nextValue))
		}
	}
	k := len(vals)
	for _, v := range vals {
		spec.Records = append(spec.Records, record.Record{Value: []byte(v)})
	}
	batch := record.Build(spec)
	leo := p.LogEndOffset()
	res, err := p.Append(batch, acks, partition.OriginClient)
	if err == nil && res.BaseOffset < leo {
		s.stats.dedups++
	}
	if err != nil && idem && !errors.Is(err, kerr.NotEnoughReplicas) && !errors.Is(err, kerr.NotLeaderForPartition) {
		s.stats.idemErrors++
	}
	if err != nil {
		s.logf("node %d produce acks=%d: %v", n.id, acks, err)
		return
	}
	if sy := p.AckSyncer(); sy != nil {
		if err := sy.Sync(); err != nil {
			s.logf("node %d produce sync: %v", n.id, err)
			return
		}
	}
	s.logf("node %d produce acks=%d %v at %d (epoch %d)", n.id, acks, vals, res.BaseOffset, p.LeaderEpoch())
	if acks != -1 {
		return
	}
	pa := pendingAck{node: n, gen: n.gen, epoch: p.LeaderEpoch(), last: res.BaseOffset + int64(k) - 1,
		sentAt: s.clock.Now(), idem: idem}
	if idem {
		s.idem.pending = true
	}
	for i, v := range vals {
		pa.recs = append(pa.recs, ackedRecord{res.BaseOffset + int64(i), v})
	}
	s.pending = append(s.pending, pa)
}

// pollAcks completes the acks=all produces whose records are replicated (WaitReplicated with a
// context that is already done: it answers at once).
func (s *sim) pollAcks() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	kept := s.pending[:0]
	for _, pa := range s.pending {
		p := s.part(pa.node)
		if p == nil || pa.node.gen != pa.gen || p.LeaderEpoch() != pa.epoch {
			s.logf("produce of %v at node %d not acknowledged: leadership lost", pa.recs, pa.node.id)
			s.unacked(pa)
			continue
		}
		err := p.WaitReplicated(done, pa.last)
		switch {
		case err == nil:
			s.logf("node %d ACKS %v (hw %d)", pa.node.id, pa.recs, p.HighWatermark())
			s.acked = append(s.acked, pa.recs...)
			if pa.idem {
				s.idem = nil
			}
		case errors.Is(err, kerr.RequestTimedOut) && s.clock.Now().Sub(pa.sentAt) < simRequestTimeout:
			kept = append(kept, pa)
		default:
			s.logf("produce of %v at node %d failed: %v", pa.recs, pa.node.id, err)
			s.unacked(pa)
		}
	}
	s.pending = kept
}

// unacked: the producer got no acknowledgement; the idempotent one sends the batch again.
func (s *sim) unacked(pa pendingAck) {
	if pa.idem && s.idem != nil {
		s.idem.pending = false
	}
}

func (s *sim) fetchersOf(n *simNode) []*fetcher {
	n.mgr.mu.Lock()
	defer n.mgr.mu.Unlock()
	ids := make([]int32, 0, len(n.mgr.fetchers))
	for id := range n.mgr.fetchers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*fetcher, len(ids))
	for i, id := range ids {
		out[i] = n.mgr.fetchers[id]
	}
	return out
}

// sendFetch has every fetcher with no request in flight send its next one (a fetcher has one
// at a time, as its goroutine does).
func (s *sim) sendFetch() {
	for _, n := range s.upNodes() {
		for _, f := range s.fetchersOf(n) {
			if s.inflight[f] > 0 {
				continue
			}
			if s.oldFetch {
				f.mu.Lock()
				old := f.truncateOnFetch
				f.mu.Unlock()
				if old {
					f.setTruncateOnFetch(false) // as the loop does on connecting to such a leader
				}
			}
			now := s.clock.Now()
			m := &simMsg{from: n.id, to: f.cfg.leader, gen: n.gen, f: f}
			if m.oreq = f.buildOffsetForLeaderEpoch(now); m.oreq == nil {
				if m.freq = f.buildFetch(now); m.freq == nil {
					continue
				}
			}
			s.inflight[f]++
			s.net = append(s.net, m)
			if m.freq != nil {
				p := m.freq.Topics[0].Partitions[0]
				s.logf("node %d -> %d fetch offset %d lastEpoch %d leaderEpoch %d", n.id, m.to, p.FetchOffset, p.LastFetchedEpoch, p.CurrentLeaderEpoch)
			} else {
				s.logf("node %d -> %d offsetForLeaderEpoch %d", n.id, m.to, m.oreq.Topics[0].Partitions[0].LeaderEpoch)
			}
		}
	}
}

func (s *sim) linked(a, b int32) bool {
	if a > b {
		a, b = b, a
	}
	return !s.cut[[2]int32{a, b}]
}

// failMsg tells the fetcher that its request got no answer (connection error or timeout).
func (s *sim) failMsg(m *simMsg) {
	s.inflight[m.f]--
	if n := s.node(m.from); n.up && n.gen == m.gen {
		m.f.connFailed(s.clock.Now())
	}
}

func (s *sim) takeMsg() *simMsg {
	if len(s.net) == 0 {
		return nil
	}
	i := s.rng.Intn(len(s.net))
	m := s.net[i]
	s.net = slices.Delete(s.net, i, i+1)
	return m
}

func (s *sim) deliver() {
	m := s.takeMsg()
	if m == nil {
		return
	}
	follower, leader := s.node(m.from), s.node(m.to)
	if !s.linked(m.from, m.to) || !follower.up || follower.gen != m.gen || (!m.isResponse() && !leader.up) {
		s.logf("message %d <-> %d lost", m.from, m.to)
		s.failMsg(m)
		return
	}
	if !m.isResponse() {
		if m.freq != nil {
			m.fresp = serveFetch(leader.parts, m.freq, s.clock.Now(), s.oldFetch)
			rp := m.fresp.Topics[0].Partitions[0]
			if rp.ErrorCode != 0 {
				s.stats.fetchErrors++
			}
			s.logf("node %d serves fetch of %d: err %d hw %d diverging %+v bytes %d", leader.id, follower.id, rp.ErrorCode, rp.HighWatermark, rp.DivergingEpoch, len(rp.RecordBatches))
		} else {
			m.oresp = s.serveOffsetForLeaderEpoch(leader, m.oreq)
			s.stats.offsetForLeaderEpochs++
			rp := m.oresp.Topics[0].Partitions[0]
			s.logf("node %d serves offsetForLeaderEpoch of %d: err %d epoch %d end %d", leader.id, follower.id, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset)
		}
		s.net = append(s.net, m)
		return
	}
	s.inflight[m.f]--
	if m.fresp != nil {
		m.f.applyFetch(m.freq, m.fresp, s.clock.Now())
	} else {
		m.f.applyOffsetForLeaderEpoch(m.oreq, m.oresp, s.clock.Now())
	}
	if p := s.part(follower); p != nil {
		s.logf("node %d applied response: log end %d hw %d", follower.id, p.LogEndOffset(), p.HighWatermark())
	}
}

func (s *sim) drop() {
	if m := s.takeMsg(); m != nil {
		s.logf("network drops %d <-> %d", m.from, m.to)
		s.failMsg(m)
	}
}

func (s *sim) duplicate() {
	if len(s.net) == 0 {
		return
	}
	m := *s.net[s.rng.Intn(len(s.net))]
	s.inflight[m.f]++
	s.net = append(s.net, &m)
	s.logf("network duplicates %d <-> %d", m.from, m.to)
}

func errCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// serveFetch is the leader's side of a follower fetch (what handler/fetch.go does with the
// partition): FollowerFetched, then the batches from the fetch offset up to the log end.
func serveFetch(parts *partition.Manager, req *kmsg.FetchRequest, now time.Time, oldFetch bool) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, rp := range t.Partitions {
			out := kmsg.NewFetchResponseTopicPartition()
			out.Partition = rp.Partition
			p := parts.Get(t.Topic, rp.Partition)
			if p == nil {
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, out)
				continue
			}
			lastFetched := rp.LastFetchedEpoch
			if oldFetch {
				lastFetched = -1 // not in Fetch v11
			}
			div, err := p.FollowerFetched(partition.FollowerFetch{ReplicaID: req.ReplicaState.ID, BrokerEpoch: req.ReplicaState.Epoch,
				FetchOffset: rp.FetchOffset, LastFetchedEpoch: lastFetched, CurrentLeaderEpoch: rp.CurrentLeaderEpoch, Now: now})
			switch {
			case err != nil:
				out.ErrorCode = errCode(err)
			case div != nil:
				out.DivergingEpoch.Epoch, out.DivergingEpoch.EndOffset = div.Epoch, div.EndOffset
			default:
				if end := p.LogEndOffset(); rp.FetchOffset < end {
					rr, err := p.Log().Read(rp.FetchOffset, rp.PartitionMaxBytes, end, true)
					if err != nil {
						out.ErrorCode = errCode(err)
						break
					}
					out.RecordBatches = rr.Data
				}
			}
			out.HighWatermark, out.LogStartOffset = p.HighWatermark(), p.LogStartOffset()
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *sim) serveOffsetForLeaderEpoch(leader *simNode, req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, rp := range t.Partitions {
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition = rp.Partition
			p := leader.parts.Get(t.Topic, rp.Partition)
			switch {
			case p == nil:
				out.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !p.IsLeader():
				out.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				if err := p.CheckLeaderEpoch(rp.CurrentLeaderEpoch); err != nil {
					out.ErrorCode = errCode(err)
					break
				}
				out.LeaderEpoch, out.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func (s *sim) advance() {
	d := time.Duration(50+s.rng.Intn(1500)) * time.Millisecond
	s.clock.Advance(d)
	s.logf("clock +%v", d)
}

func (s *sim) checkISR() {
	n := s.randomUp()
	if n == nil {
		return
	}
	s.logf("node %d ISR check", n.id)
	n.mgr.checkISR(context.Background())
}

func (s *sim) applyImage(n *simNode) {
	if !n.up || s.ctrlCut[n.id] {
		return
	}
	latest := s.ctrl.latest
	if err := n.mgr.Apply(n.image, latest); err != nil {
		s.fail("node %d: Apply image %d: %v", n.id, latest.Index(), err)
	}
	n.image = latest
	if !slices.Contains(s.ctrl.replicas, n.id) {
		if s.part(n) != nil {
			s.fail("node %d still hosts the partition after applying an image without it (replicas %v)", n.id, s.ctrl.replicas)
		}
		n.maxHW = 0 // its copy is gone; a later move starts a new one
	}
	if p := s.part(n); p != nil {
		s.logf("node %d applies image %d: leader %v epoch %d log end %d hw %d", n.id, latest.Index(), p.IsLeader(), p.LeaderEpoch(), p.LogEndOffset(), p.HighWatermark())
	}
}

func (s *sim) deliverMetadata() {
	if n := s.randomUp(); n != nil {
		s.applyImage(n)
	}
}

// heartbeat is one broker's session at the controller: a broker it cannot reach is fenced
// (its session expired), a reachable fenced one that has the latest metadata is unfenced.
func (s *sim) heartbeat() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	reachable := n.up && !s.ctrlCut[n.id]
	switch {
	case !reachable && !s.ctrl.fenced[n.id]:
		s.logf("controller: session of %d expires", n.id)
		s.ctrl.fence(n.id)
	case reachable && s.ctrl.fenced[n.id]:
		if n.image != s.ctrl.latest {
			s.applyImage(n)
		}
		s.logf("controller: %d caught up, unfenced", n.id)
		s.ctrl.unfence(n.id)
	}
}

func (s *sim) crash(n *simNode) {
	s.logf("node %d CRASHES", n.id)
	s.stats.crashes++
	n.mgr.Close()
	n.parts.Close() // on the dead filesystem: everything fails; it stops the syncer
	n.fs = n.fs.Crash()
	n.up = false
	n.parts, n.mgr = nil, nil
}

func (s *sim) crashRandom() {
	if up := s.upNodes(); len(up) > 1 {
		s.crash(up[s.rng.Intn(len(up))])
	}
}

// killLeader crashes the leader and the controller notices at once: a new leader from the ISR.
func (s *sim) killLeader() {
	l := s.ctrl.leader
	if l < 0 || !s.node(l).up || len(s.upNodes()) < 2 {
		return
	}
	s.crash(s.node(l))
	s.ctrl.fence(l)
}

// restart brings a crashed broker back: it recovers its logs, registers with a new broker
// epoch (fenced until it has the metadata), and applies the latest image.
func (s *sim) restart() {
	var down []*simNode
	for _, n := range s.nodes {
		if !n.up {
			down = append(down, n)
		}
	}
	if len(down) == 0 {
		return
	}
	n := down[s.rng.Intn(len(down))]
	s.startNode(n)
	s.stats.restarts++
	s.ctrl.fence(n.id)
	s.ctrl.brokerEpoch[n.id]++
	n.epoch = s.ctrl.brokerEpoch[n.id]
	if p := n.parts; p != nil {
		s.logf("node %d RESTARTS with broker epoch %d", n.id, n.epoch)
	}
	s.applyImage(n)
}

// deleteRecords moves the leader's log start up (DeleteRecords, as retention would): a
// follower left below it restarts its log at the leader's log start (OFFSET_OUT_OF_RANGE).
func (s *sim) deleteRecords() {
	if s.reassigning && s.seed%2 == 1 {
		// A replica a move adds starts at the leader's log start, without the producer state
		// of the records before it (as in Kafka, whose clients then start over: KIP-360); the
		// simulated idempotent producer never does, so these seeds keep every record.
		return
	}
	n := s.randomUp()
	if n == nil {
		return
	}
	p := s.part(n)
	if p == nil || !p.IsLeader() || p.HighWatermark() <= p.LogStartOffset() {
		return
	}
	to := p.LogStartOffset() + 1 + s.rng.Int63n(p.HighWatermark()-p.LogStartOffset())
	start, err := p.DeleteRecords(to)
	s.logf("node %d deletes records before %d: log start %d, err %v", n.id, to, start, err)
	s.stats.deletes++
}

// cleanRestart stops a broker cleanly (partitions closed, clean-shutdown marker, producer
// snapshots) and starts it again at once, with a new broker epoch.
func (s *sim) cleanRestart() {
	n := s.randomUp()
	if n == nil {
		return
	}
	s.logf("node %d restarts cleanly", n.id)
	n.mgr.Close()
	if err := n.parts.Close(); err != nil {
		s.fail("node %d: close partitions: %v", n.id, err)
		return
	}
	s.startNode(n)
	s.stats.restarts++
	s.ctrl.fence(n.id)
	s.ctrl.brokerEpoch[n.id]++
	n.epoch = s.ctrl.brokerEpoch[n.id]
	s.applyImage(n)
}

func (s *sim) isolate() {
	n := s.nodes[s.rng.Intn(len(s.nodes))]
	for _, o := range s.nodes {
		if o != n {
			a, b := min(n.id, o.id), max(n.id, o.id)
			s.cut[[2]int32{a, b}] = true
		}
	}
	s.ctrlCut[n.id] = true
	s.logf("network: node %d isolated", n.id)
}

func (s *sim) cutLink() {
	a := int32(1 + s.rng.Intn(3))
	b := int32(1 + s.rng.Intn(3))
	if a == b {
		return
	}
	s.cut[[2]int32{min(a, b), max(a, b)}] = true
	s.logf("network: link %d-%d cut", min(a, b), max(a, b))
}

func (s *sim) heal() {
	s.cut = map[[2]int32]bool{}
	s.ctrlCut = map[int32]bool{}
	s.logf("network healed")
}

// --- invariants ---

type simEntry struct {
	epoch int32
	value string
}

// logOf reads a replica's whole log: offset -> (batch epoch, value).
func (s *sim) logOf(p *partition.Partition) map[int64]simEntry {
	out := map[int64]simEntry{}
	end := p.LogEndOffset()
	for off := p.LogStartOffset(); off < end; {
		rr, err := p.Log().Read(off, 1<<20, end, true)
		if err != nil {
			s.fail("read log of %s-%d at %d: %v", p.Topic, p.Index, off, err)
			return out
		}
		batches, err := record.Split(rr.Data)
		if err != nil || len(batches) == 0 {
			s.fail("split log of %s-%d at %d: %v (%d batches)", p.Topic, p.Index, off, err, len(batches))
			return out
		}
		for _, b := range batches {
			h, recs, err := record.Records(b)
			if err != nil {
				s.fail("decode batch at %d: %v", off, err)
				return out
			}
			for _, r := range recs {
				out[h.BaseOffset+int64(r.OffsetDelta)] = simEntry{h.PartitionLeaderEpoch, string(r.Value)}
			}
			off = h.LastOffset() + 1
		}
	}
	return out
}

func (s *sim) checkInvariants() {
	logs := map[int32]map[int64]simEntry{}
	for _, n := range s.upNodes() {
		p := s.part(n)
		if p == nil {
			continue
		}
		hw := p.HighWatermark()
		if hw > p.LogEndOffset() {
			s.fail("node %d: high watermark %d above its log end %d", n.id, hw, p.LogEndOffset())
		}
		n.maxHW = max(n.maxHW, hw)
		logs[n.id] = s.logOf(p)
		// No record twice in a log: the idempotent producer's retries are deduplicated by
		// whichever leader gets them, from the producer state the followers rebuilt.
		seenAt := map[string]int64{}
		for off, e := range logs[n.id] {
			if prev, dup := seenAt[e.value]; dup {
				s.fail("node %d holds %q twice, at %d and %d", n.id, e.value, min(prev, off), max(prev, off))
			}
			seenAt[e.value] = off
		}
		// The high watermark consumers see from a leader never goes back in its epoch.
		if p.IsLeader() {
			e := p.LeaderEpoch()
			if prev, ok := s.maxHW[e]; ok && hw < prev {
				s.fail("leader %d of epoch %d serves high watermark %d after %d", n.id, e, hw, prev)
			}
			s.maxHW[e] = max(s.maxHW[e], hw)
		}
	}
	// Leader Completeness (and Leader Candidate Completeness: every ISR member that is up).
	holders := slices.Clone(s.ctrl.isr)
	if l := s.ctrl.leader; l >= 0 && !slices.Contains(holders, l) {
		holders = append(holders, l)
	}
	for _, id := range holders {
		lg, ok := logs[id]
		if !ok {
			continue
		}
		start := s.part(s.node(id)).LogStartOffset()
		for _, a := range s.acked {
			if a.offset < start {
				continue // deleted (DeleteRecords), not lost
			}
			if e, ok := lg[a.offset]; !ok || e.value != a.value {
				what := "ISR member"
				if id == s.ctrl.leader {
					what = "leader"
				}
				s.fail("%s %d (epoch %d, isr %v) lacks acknowledged record %q at offset %d (has %+v, present %v)",
					what, id, s.ctrl.leaderEpoch, s.ctrl.isr, a.value, a.offset, e, ok)
				return
			}
		}
	}
	// Log Matching below both high watermarks.
	ids := make([]int32, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			pa, pb := s.part(s.node(a)), s.part(s.node(b))
			hw := min(pa.HighWatermark(), pb.HighWatermark())
			from := max(pa.LogStartOffset(), pb.LogStartOffset())
			for off := from; off < hw; off++ {
				ea, eb := logs[a][off], logs[b][off]
				if ea != eb {
					s.fail("log matching: offset %d below both high watermarks (%d): node %d has %+v, node %d has %+v", off, hw, a, ea, b, eb)
					return
				}
			}
		}
	}
}
