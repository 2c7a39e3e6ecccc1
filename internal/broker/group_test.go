package broker

// Consumer group behaviour seen through franz-go (kgo, kadm) against the in-process broker:
// assignment, failover after a member crashes without leaving, static membership, and the group
// admin APIs. Waits are bounded by contexts; nothing asserts on how long a step took.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupMember is one consumer of a test group and what its rebalance callbacks and polls saw.
type groupMember struct {
	name  string
	topic string
	cl    *kgo.Client
	close func() // closes cl once; also run by t.Cleanup

	mu        sync.Mutex
	owned     map[int32]bool // partitions of topic, per the assigned/revoked/lost callbacks
	assigns   int            // callback invocations
	revokes   int
	losts     int
	received  map[int32][]int64 // offsets polled, per partition, in poll order
	committed map[int32]int64   // next offset of the last successful commit, per partition
	nCommit   int               // records covered by successful commits
	commitErr []error
}

// startMember starts a group consumer of topic. The broker is its only seed.
func startMember(t *testing.T, b *Broker, topic, group, name string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	m := &groupMember{
		name:      name,
		topic:     topic,
		owned:     make(map[int32]bool),
		received:  make(map[int32][]int64),
		committed: make(map[int32]int64),
	}
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr().String()),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.assigns++
			for _, p := range a[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.revokes++
			for _, p := range r[topic] {
				delete(m.owned, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.losts++
			for _, p := range l[topic] {
				delete(m.owned, p)
			}
		}),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	m.close = sync.OnceFunc(cl.Close)
	t.Cleanup(m.close)
	return m
}

// ownedPartitions returns the partitions the member owns, sorted.
func (m *groupMember) ownedPartitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedKeys(m.owned)
}

func (m *groupMember) callbacks() (assigns, revokes, losts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigns, m.revokes, m.losts
}

func (m *groupMember) committedRecords() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nCommit
}

// consume polls (at most maxPoll records at a time) until ctx is done, recording every record and
// committing each poll synchronously with commitCtx. crash, if set, runs after a non-empty poll is
// recorded and before it is committed; if it returns true the loop stops there, as a process
// dying between processing and committing would.
func (m *groupMember) consume(t *testing.T, ctx, commitCtx context.Context, maxPoll int, crash func() bool) {
	for ctx.Err() == nil {
		fs := m.cl.PollRecords(ctx, maxPoll)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
				t.Errorf("%s: fetch %s/%d: %v", m.name, topic, p, err)
			}
		})
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		m.mu.Lock()
		for _, r := range recs {
			m.received[r.Partition] = append(m.received[r.Partition], r.Offset)
		}
		m.mu.Unlock()
		if crash != nil && crash() {
			return
		}
		err := m.cl.CommitRecords(commitCtx, recs...)
		m.mu.Lock()
		if err != nil {
			// Legitimate around a rebalance (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION): the
			// records are read again by whoever owns the partition next.
			m.commitErr = append(m.commitErr, err)
		} else {
			m.nCommit += len(recs)
			for _, r := range recs {
				m.committed[r.Partition] = max(m.committed[r.Partition], r.Offset+1)
			}
		}
		m.mu.Unlock()
	}
}

// killableDialer dials real TCP connections and remembers them, so that a test can cut a client
// off from the broker at once: kill closes every connection and refuses every later dial.
type killableDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

var errCrashed = errors.New("simulated crash: dialing refused")

func (d *killableDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	dead := d.dead
	d.mu.Unlock()
	if dead {
		return nil, errCrashed
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		c.Close()
		return nil, errCrashed
	}
	d.conns = append(d.conns, c)
	return c, nil
}

func (d *killableDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// offsetSet is a set of partition offsets of one topic.
type offsetSet map[int32]map[int64]bool

func (s offsetSet) add(p int32, o int64) {
	if s[p] == nil {
		s[p] = make(map[int64]bool)
	}
	s[p][o] = true
}

func (s offsetSet) has(p int32, o int64) bool { return s[p][o] }

func (s offsetSet) len() int {
	n := 0
	for _, os := range s {
		n += len(os)
	}
	return n
}

// missing returns up to 10 offsets of want that got lacks, and how many there are in all.
func (want offsetSet) missing(got offsetSet) ([]string, int) {
	var out []string
	n := 0
	for _, p := range sortedKeys(want) {
		os := sortedKeys(want[p])
		for _, o := range os {
			if !got.has(p, o) {
				n++
				if len(out) < 10 {
					out = append(out, fmt.Sprintf("%d@%d", p, o))
				}
			}
		}
	}
	return out, n
}

func sortedKeys[K int32 | int64, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// produceRoundRobin produces n records to topic, spread round-robin over its partitions, and
// returns the offsets they were written at.
func produceRoundRobin(ctx context.Context, t *testing.T, b *Broker, topic string, n int) offsetSet {
	t.Helper()
	cl := client(t, b, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var mu sync.Mutex
	produced := make(offsetSet)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			produced.add(r.Partition, r.Offset)
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if produced.len() != n {
		t.Fatalf("produced %d of %d records", produced.len(), n)
	}
	return produced
}

// waitUntil polls cond until it holds, failing the test with state() if ctx ends first.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool, state func() string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v; %s", what, ctx.Err(), state())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// describeAssignment returns each member's assigned partitions of topic, by member id.
func describeAssignment(g kadm.DescribedGroup, topic string) map[string][]int32 {
	out := make(map[string][]int32)
	for _, m := range g.Members {
		var ps []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic == topic {
					ps = append(ps, at.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		out[m.MemberID] = ps
	}
	return out
}

func describeGroup(ctx context.Context, t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatalf("describe %s: %v", group, err)
	}
	d, ok := ds[group]
	if !ok || d.Err != nil {
		t.Fatalf("describe %s: %+v", group, d)
	}
	return d
}

func TestLoneMemberGetsAllPartitions(t *testing.T) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) }) // after every client is closed
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "lone"); err != nil {
		t.Fatal(err)
	}
	const n = 600
	produced := produceRoundRobin(ctx, t, b, "lone", n)

	m := startMember(t, b, "lone", "lone-group", "lone", kgo.HeartbeatInterval(500*time.Millisecond))
	got := make(offsetSet)
	reads := 0
	for got.len() < n {
		fs := m.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			missing, k := produced.missing(got)
			t.Fatalf("read %d of %d records; %d missing, e.g. %v; owns %v", got.len(), n, k, missing, m.ownedPartitions())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			reads++
			got.add(r.Partition, r.Offset)
		})
	}
	if missing, k := produced.missing(got); k != 0 {
		t.Fatalf("%d produced records never read, e.g. %v", k, missing)
	}
	if reads != n {
		t.Fatalf("%d reads of %d records: a lone member in a group that never rebalanced read some twice", reads, n)
	}
	if owned := m.ownedPartitions(); !slices.Equal(owned, []int32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("lone member owns %v, want all 6 partitions", owned)
	}
	d := describeGroup(ctx, t, adm, "lone-group")
	id, _ := m.cl.GroupMetadata()
	if a := describeAssignment(d, "lone"); d.State != "Stable" || len(a) != 1 || !slices.Equal(a[id], []int32{0, 1, 2, 3, 4, 5}) {
		t.Fatalf("described group: state %s, assignment %v, want Stable with %s on all 6", d.State, a, id)
	}
}

func TestMemberCrashFailover(t *testing.T) {
	for _, bal := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"eager-range", kgo.RangeBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) { testMemberCrashFailover(t, bal.balancer) })
	}
}

// testMemberCrashFailover: of three members of group "g" on six partitions, the group leader
// crashes (its connections drop, it never heartbeats or leaves again) right after reading records
// it has not committed yet. The session timeout removes it; the two survivors take over its
// partitions from its last commit, so every record is processed at least once.
func testMemberCrashFailover(t *testing.T, balancer kgo.GroupBalancer) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) })
	if min := b.cfg.GroupMinSessionTimeoutMs; min > 6000 {
		t.Fatalf("group.min.session.timeout.ms is %d: the 6s session timeout below would be refused", min)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	const topic, group = "events", "g"
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{
		kgo.Balancers(balancer),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond),
		// A cooperative survivor adds the victim's partitions to its fetch session only when its
		// long poll on its own (drained) partitions returns: keep that wait short.
		kgo.FetchMaxWait(time.Second),
		kgo.DisableAutoCommit(),
	}
	// The victim joins first, so it leads the group: its crash also moves the leadership.
	dialer := &killableDialer{}
	victim := startMember(t, b, topic, group, "victim", append(slices.Clone(opts), kgo.Dialer(dialer.dial))...)
	t.Cleanup(func() {
		// Close would retry its LeaveGroup against refused dials; give up on it at once.
		done, stop := context.WithCancel(context.Background())
		stop()
		_ = victim.cl.LeaveGroupContext(done)
	})
	waitUntil(ctx, t, "victim alone owns all partitions", func() bool { return len(victim.ownedPartitions()) == 6 },
		func() string { return fmt.Sprint(victim.ownedPartitions()) })
	s1 := startMember(t, b, topic, group, "survivor-1", opts...)
	s2 := startMember(t, b, topic, group, "survivor-2", opts...)
	members := []*groupMember{victim, s1, s2}
	owners := func(ms ...*groupMember) string {
		var s string
		for _, m := range ms {
			s += fmt.Sprintf("%s owns %v; ", m.name, m.ownedPartitions())
		}
		return s
	}
	// covers reports whether ms own every partition between them, each exactly once, with n each.
	covers := func(n int, ms ...*groupMember) bool {
		seen := make(map[int32]bool)
		for _, m := range ms {
			owned := m.ownedPartitions()
			if n > 0 && len(owned) != n {
				return false
			}
			for _, p := range owned {
				if seen[p] {
					return false
				}
				seen[p] = true
			}
		}
		return len(seen) == 6
	}
	waitUntil(ctx, t, "three members own two partitions each", func() bool { return covers(2, members...) },
		func() string { return owners(members...) })

	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	crashed := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		victim.consume(t, pollCtx, ctx, 10, func() bool {
			if victim.committedRecords() < 30 {
				return false
			}
			dialer.kill()
			close(crashed)
			return true
		})
	}()
	for _, s := range []*groupMember{s1, s2} {
		go func() {
			defer wg.Done()
			s.consume(t, pollCtx, ctx, 10, nil)
		}()
	}

	const n = 600
	produced := produceRoundRobin(ctx, t, b, topic, n)
	select {
	case <-crashed:
	case <-ctx.Done():
		t.Fatalf("the victim never committed 30 records: %d", victim.committedRecords())
	}

	waitUntil(ctx, t, "after the victim's session timeout the survivors own all six partitions",
		func() bool { return covers(0, s1, s2) }, func() string { return owners(s1, s2) })

	// processed: what the survivors read, plus what the victim read and committed before it died.
	// Records the victim read past its last commit must have been read again by a survivor.
	processed := func() offsetSet {
		got := make(offsetSet)
		for _, s := range []*groupMember{s1, s2} {
			s.mu.Lock()
			for p, os := range s.received {
				for _, o := range os {
					got.add(p, o)
				}
			}
			s.mu.Unlock()
		}
		victim.mu.Lock()
		for p, os := range victim.received {
			for _, o := range os {
				if o < victim.committed[p] {
					got.add(p, o)
				}
			}
		}
		victim.mu.Unlock()
		return got
	}
	waitUntil(ctx, t, "every record processed at least once after the crash",
		func() bool { _, k := produced.missing(processed()); return k == 0 },
		func() string {
			missing, k := produced.missing(processed())
			victim.mu.Lock()
			defer victim.mu.Unlock()
			return fmt.Sprintf("%d missing, e.g. %v; victim committed %v; %s", k, missing, victim.committed, owners(s1, s2))
		})

	more := produceRoundRobin(ctx, t, b, topic, n)
	waitUntil(ctx, t, "the survivors read the 600 records produced after the failover",
		func() bool { _, k := more.missing(processed()); return k == 0 },
		func() string {
			missing, k := more.missing(processed())
			return fmt.Sprintf("%d missing, e.g. %v; %s", k, missing, owners(s1, s2))
		})
	stopPolling()
	wg.Wait()

	// At-least-once: count what was read more than once.
	reads, distinct := 0, make(offsetSet)
	var victimUncommitted int
	for _, m := range members {
		m.mu.Lock()
		for p, os := range m.received {
			for _, o := range os {
				reads++
				distinct.add(p, o)
				if m == victim && o >= victim.committed[p] {
					victimUncommitted++
				}
			}
		}
		m.mu.Unlock()
	}
	var commitErrs []error
	for _, s := range []*groupMember{s1, s2} {
		commitErrs = append(commitErrs, s.commitErr...)
	}
	t.Logf("%d reads of %d records: %d duplicates; the victim died holding %d uncommitted records; survivors' failed commits: %v",
		reads, distinct.len(), reads-distinct.len(), victimUncommitted, commitErrs)
	if victimUncommitted == 0 {
		t.Fatal("the victim died with nothing uncommitted: the test did not exercise redelivery")
	}
	if extra, k := distinct.missing(mergeSets(produced, more)); k != 0 {
		t.Fatalf("%d records read that were never produced, e.g. %v", k, extra)
	}

	d := describeGroup(ctx, t, adm, group)
	id1, _ := s1.cl.GroupMetadata()
	id2, _ := s2.cl.GroupMetadata()
	a := describeAssignment(d, topic)
	if d.State != "Stable" || len(d.Members) != 2 || len(a[id1])+len(a[id2]) != 6 {
		t.Fatalf("described group: state %s, %d members, assignment %v; want Stable with %s and %s on six partitions",
			d.State, len(d.Members), a, id1, id2)
	}
	if !slices.Equal(a[id1], s1.ownedPartitions()) || !slices.Equal(a[id2], s2.ownedPartitions()) {
		t.Fatalf("described assignment %v differs from what the members own: %s", a, owners(s1, s2))
	}
	// The survivors' last commits, made in the final generation, cover everything.
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 6; p++ {
		want := int64(len(produced[p]) + len(more[p]))
		if o, ok := offs.Lookup(topic, p); !ok || o.Err != nil || o.At != want {
			t.Fatalf("committed offset of partition %d: %+v, want %d", p, o, want)
		}
	}
}

func mergeSets(sets ...offsetSet) offsetSet {
	out := make(offsetSet)
	for _, s := range sets {
		for p, os := range s {
			for o := range os {
				out.add(p, o)
			}
		}
	}
	return out
}

// TestStaticMemberRejoin: a static member (group.instance.id "a") closes without leaving, and a
// new client with the same instance id takes its place before the session timeout: no rebalance,
// the same partitions, the other member untouched, consumption resumed from the committed offsets.
// Then the topic grows, and the group's leader must notice and rebalance.
func TestStaticMemberRejoin(t *testing.T) {
	// A restarted static leader is told it leads but must skip the assignment (JoinGroup v9,
	// KIP-814). franz-go still computes a plan and rejoins, forcing a rebalance, if the plan differs
	// from what the group has, as it may with cooperative-sticky's ownership-based plans: so the
	// leader case runs with range, whose plan for static members depends only on instance ids.
	t.Run("leader/range", func(t *testing.T) { testStaticMemberRejoin(t, kgo.RangeBalancer(), true) })
	t.Run("follower/cooperative-sticky", func(t *testing.T) {
		testStaticMemberRejoin(t, kgo.CooperativeStickyBalancer(), false)
	})
}

func testStaticMemberRejoin(t *testing.T, balancer kgo.GroupBalancer, leads bool) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	const topic, group = "static", "sg"
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	opts := []kgo.Opt{
		kgo.Balancers(balancer),
		kgo.SessionTimeout(30 * time.Second), // the replacement joins well within it
		kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.DisableAutoCommit(),
		// The leader watches the topic's partition count through its metadata refreshes.
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(250 * time.Millisecond),
	}
	// The first member to join leads the group.
	var a, other *groupMember
	startA := func() {
		a = startMember(t, b, topic, group, "a", append(slices.Clone(opts), kgo.InstanceID("a"))...)
	}
	startOther := func() { other = startMember(t, b, topic, group, "dynamic", opts...) }
	joinFirst, joinSecond := startA, startOther
	if !leads {
		joinFirst, joinSecond = startOther, startA
	}
	joinFirst()
	waitUntil(ctx, t, "the first member alone owns all partitions", func() bool {
		m := a
		if m == nil {
			m = other
		}
		return len(m.ownedPartitions()) == 4
	}, func() string { return "" })
	joinSecond()
	settled := func() bool {
		d, err := adm.DescribeGroups(ctx, group)
		if err != nil || d[group].State != "Stable" {
			return false
		}
		idA, genA := a.cl.GroupMetadata()
		idO, genO := other.cl.GroupMetadata()
		as := describeAssignment(d[group], topic)
		return genA == genO && len(as) == 2 &&
			slices.Equal(as[idA], a.ownedPartitions()) && slices.Equal(as[idO], other.ownedPartitions()) &&
			len(as[idA]) == 2 && len(as[idO]) == 2
	}
	waitUntil(ctx, t, "two members own two partitions each", settled,
		func() string {
			return fmt.Sprintf("a owns %v, the other %v", a.ownedPartitions(), other.ownedPartitions())
		})

	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var wg sync.WaitGroup
	run := func(m *groupMember, ctx context.Context) <-chan struct{} {
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			m.consume(t, ctx, ctx, 10, nil)
		}()
		return done
	}
	aCtx, stopA := context.WithCancel(pollCtx)
	defer stopA()
	aDone := run(a, aCtx)
	run(other, pollCtx)
	first := produceRoundRobin(ctx, t, b, topic, 200)
	// Wait until the group has committed everything, then note the state the restart must keep.
	waitUntil(ctx, t, "the group commits every record", func() bool {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p := int32(0); p < 4; p++ {
			if o, ok := offs.Lookup(topic, p); !ok || o.At != int64(len(first[p])) {
				return false
			}
		}
		return true
	}, func() string { return "" })
	aOwned := a.ownedPartitions()
	oldIDA, _ := a.cl.GroupMetadata()
	idO, genO := other.cl.GroupMetadata()
	assignsO, revokesO, lostsO := other.callbacks()
	otherOwned := other.ownedPartitions()

	// a stops polling, then closes: a static member's Close sends no LeaveGroup.
	stopA()
	<-aDone
	a.close()

	second := produceRoundRobin(ctx, t, b, topic, 200)
	a2 := startMember(t, b, topic, group, "a-restarted", append(slices.Clone(opts), kgo.InstanceID("a"))...)
	run(a2, pollCtx)
	received := func(m *groupMember) offsetSet {
		m.mu.Lock()
		defer m.mu.Unlock()
		s := make(offsetSet)
		for p, os := range m.received {
			for _, o := range os {
				s.add(p, o)
			}
		}
		return s
	}
	// What each member must read of the second batch: the partitions it owns.
	want := func(ps []int32) offsetSet {
		s := make(offsetSet)
		for _, p := range ps {
			for o := range second[p] {
				s.add(p, o)
			}
		}
		return s
	}
	waitUntil(ctx, t, "the restarted member and the other read the second batch", func() bool {
		_, k1 := want(aOwned).missing(received(a2))
		_, k2 := want(otherOwned).missing(received(other))
		return k1 == 0 && k2 == 0
	}, func() string {
		m1, k1 := want(aOwned).missing(received(a2))
		m2, k2 := want(otherOwned).missing(received(other))
		return fmt.Sprintf("restarted a (owns %v, had %v) misses %d, e.g. %v; the other (owns %v) misses %d, e.g. %v",
			a2.ownedPartitions(), aOwned, k1, m1, other.ownedPartitions(), k2, m2)
	})
	stopPolling()
	wg.Wait()

	if got := a2.ownedPartitions(); !slices.Equal(got, aOwned) {
		t.Fatalf("restarted static member owns %v, before the restart %v", got, aOwned)
	}
	newIDA, genA2 := a2.cl.GroupMetadata()
	if newIDA == oldIDA {
		t.Fatalf("the restarted member kept member id %s", oldIDA)
	}
	if id, gen := other.cl.GroupMetadata(); id != idO || gen != genO || genA2 != genO {
		t.Fatalf("generation moved: the other member %s gen %d -> %s gen %d, restarted a gen %d", idO, genO, id, gen, genA2)
	}
	if as, rs, ls := other.callbacks(); as != assignsO || rs != revokesO || ls != lostsO {
		t.Fatalf("the other member's callbacks ran during the static rejoin: assigned %d->%d, revoked %d->%d, lost %d->%d",
			assignsO, as, revokesO, rs, lostsO, ls)
	}
	if got := other.ownedPartitions(); !slices.Equal(got, otherOwned) {
		t.Fatalf("the other member's partitions changed: %v -> %v", otherOwned, got)
	}
	// Resumed from the commits: nothing of the first batch was read again.
	for p, os := range received(a2) {
		for o := range os {
			if first.has(p, o) {
				t.Fatalf("restarted member re-read %d@%d, below the committed offset %d", p, o, len(first[p]))
			}
		}
	}
	d := describeGroup(ctx, t, adm, group)
	as := describeAssignment(d, topic)
	if d.State != "Stable" || len(as) != 2 || !slices.Equal(as[newIDA], aOwned) || !slices.Equal(as[idO], otherOwned) {
		t.Fatalf("described: state %s, assignment %v; want Stable, %s on %v, %s on %v", d.State, as, newIDA, aOwned, idO, otherOwned)
	}
	for _, m := range d.Members {
		if m.MemberID == newIDA && (m.InstanceID == nil || *m.InstanceID != "a") {
			t.Fatalf("restarted member described with instance id %v", m.InstanceID)
		}
	}

	// The group still has a leader that knows it leads: when the topic grows it notices and
	// rebalances, so the new partitions get consumed (a follower does not rejoin for that). If a
	// restarted leader were handed the old leader id, as before JoinGroup v9, the group would be
	// leaderless until its next rebalance.
	if _, err := adm.CreatePartitions(ctx, 2, topic); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the leader rebalances the grown topic onto the group", func() bool {
		d, err := adm.DescribeGroups(ctx, group)
		if err != nil || d[group].State != "Stable" {
			return false
		}
		as := describeAssignment(d[group], topic)
		return len(as[newIDA]) == 3 && len(as[idO]) == 3
	}, func() string {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := adm.DescribeGroups(dctx, group)
		return fmt.Sprintf("state %s, assignment %v (%v)", d[group].State, describeAssignment(d[group], topic), err)
	})
}

func TestDescribeListDeleteGroups(t *testing.T) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	const topic = "dl"
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	const n = 30
	produceRoundRobin(ctx, t, b, topic, n)

	// "live": one member that read and committed everything.
	live := startMember(t, b, topic, "live", "live", kgo.ClientID("dl-live"), kgo.HeartbeatInterval(500*time.Millisecond), kgo.DisableAutoCommit())
	for read := 0; read < n; {
		fs := live.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("live member read %d of %d", read, n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		read += fs.NumRecords()
	}
	if err := live.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "live member owns all partitions", func() bool { return len(live.ownedPartitions()) == 3 },
		func() string { return fmt.Sprint(live.ownedPartitions()) })

	// "simple": an assign()-style commit, with no member id and no generation.
	var simple kadm.Offsets
	simple.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: -1, Metadata: "m0"})
	simple.Add(kadm.Offset{Topic: topic, Partition: 1, At: 3, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "simple", simple); err != nil {
		t.Fatalf("simple commit: %v", err)
	}
	offs, err := adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	o0, ok0 := offs.Lookup(topic, 0)
	o1, ok1 := offs.Lookup(topic, 1)
	_, ok2 := offs.Lookup(topic, 2)
	if !ok0 || o0.At != 7 || o0.Metadata != "m0" || !ok1 || o1.At != 3 || ok2 {
		t.Fatalf("simple commit fetched back as %+v", offs.Sorted())
	}

	// ListGroups, all and by state.
	list := func(states ...string) []string {
		t.Helper()
		ls, err := adm.ListGroups(ctx, states...)
		if err != nil {
			t.Fatalf("list groups %v: %v", states, err)
		}
		names := ls.Groups()
		sort.Strings(names)
		return names
	}
	if got := list(); !slices.Equal(got, []string{"live", "simple"}) {
		t.Fatalf("groups: %v", got)
	}
	if got := list("Stable"); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("Stable groups: %v", got)
	}
	if got := list("Empty"); !slices.Equal(got, []string{"simple"}) {
		t.Fatalf("Empty groups: %v", got)
	}
	ls, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l := ls["live"]; l.State != "Stable" || l.ProtocolType != "consumer" {
		t.Fatalf("listed live: %+v", l)
	}

	// DescribeGroups: members with client id, host and assignment.
	d := describeGroup(ctx, t, adm, "live")
	liveID, _ := live.cl.GroupMetadata()
	if d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
		t.Fatalf("described live: %+v", d)
	}
	dm := d.Members[0]
	if dm.MemberID != liveID || dm.ClientID != "dl-live" || dm.ClientHost != "/127.0.0.1" {
		t.Fatalf("described member: id %q client %q host %q; want %q dl-live /127.0.0.1", dm.MemberID, dm.ClientID, dm.ClientHost, liveID)
	}
	if md, ok := dm.Join.AsConsumer(); !ok || !slices.Equal(md.Topics, []string{topic}) {
		t.Fatalf("described member metadata: %+v", dm.Join)
	}
	if a := describeAssignment(d, topic); !slices.Equal(a[liveID], []int32{0, 1, 2}) {
		t.Fatalf("described assignment: %v", a)
	}
	if ds := describeGroup(ctx, t, adm, "simple"); ds.State != "Empty" || len(ds.Members) != 0 {
		t.Fatalf("described simple: %+v", ds)
	}

	// OffsetDelete: refused for a topic the live group consumes, done for an Empty group.
	del, err := adm.DeleteOffsets(ctx, "live", kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := del.Lookup(topic, 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("deleting the offset of a subscribed topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", e)
	}
	del, err = adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{topic: {0: {}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("offset delete: %v %v", err, del.Error())
	}
	offs, err = adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := offs.Lookup(topic, 0); ok || len(offs.Sorted()) != 1 {
		t.Fatalf("after deleting partition 0's offset: %+v", offs.Sorted())
	}

	// DeleteGroups: NON_EMPTY_GROUP while the member is in, deleted once Empty.
	dr, err := adm.DeleteGroups(ctx, "live", "simple")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr["live"].Err, kerr.NonEmptyGroup) {
		t.Fatalf("deleting a group with a member: %v, want NON_EMPTY_GROUP", dr["live"].Err)
	}
	if dr["simple"].Err != nil {
		t.Fatalf("deleting an empty group: %v", dr["simple"].Err)
	}
	if offs, err := adm.FetchOffsets(ctx, "simple"); err != nil || len(offs.Sorted()) != 0 {
		t.Fatalf("offsets of the deleted group: %v %+v", err, offs.Sorted())
	}
	if got := list(); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("groups after deleting simple: %v", got)
	}
	if ds := describeGroup(ctx, t, adm, "simple"); ds.State != "Dead" {
		t.Fatalf("described deleted group: %+v", ds)
	}

	live.close() // a dynamic member leaves the group
	waitUntil(ctx, t, "live group Empty after its member left", func() bool {
		ls, err := adm.ListGroups(ctx, "Empty")
		return err == nil && ls["live"].Group == "live"
	}, func() string { return fmt.Sprint(list()) })
	if _, err := adm.DeleteGroup(ctx, "live"); err != nil {
		t.Fatalf("deleting the emptied group: %v", err)
	}
	if offs, err := adm.FetchOffsets(ctx, "live"); err != nil || len(offs.Sorted()) != 0 {
		t.Fatalf("offsets of the deleted group: %v %+v", err, offs.Sorted())
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("groups after deleting both: %v", got)
	}
}
