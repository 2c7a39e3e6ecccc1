package group

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is a Clock whose timers fire only from Advance, synchronously, in deadline order.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	active := !t.stopped && !t.fired
	t.stopped = true
	return active
}

// Advance moves time forward by d, firing due timers (including ones they arm) in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		live := c.timers[:0]
		for _, t := range c.timers {
			if t.stopped || t.fired {
				continue
			}
			live = append(live, t)
			if !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		c.timers = live
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.fired = true
		c.mu.Unlock()
		next.f()
	}
}

type harness struct {
	t     *testing.T
	c     *Coordinator
	clock *fakeClock
	store *MemoryStore
}

func testConfig() Config {
	return Config{
		MinSessionTimeout: time.Second,
		MaxSessionTimeout: time.Minute,
		OffsetsRetention:  time.Hour,
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessStore(t, cfg, NewMemoryStore(), newFakeClock())
}

func newHarnessStore(t *testing.T, cfg Config, store *MemoryStore, clock *fakeClock) *harness {
	t.Helper()
	c := NewCoordinator(cfg, store, clock)
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx); err != nil {
		t.Fatalf("load: %v", err)
	}
	return &harness{t: t, c: c, clock: clock, store: store}
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 0
	m.Topics = topics
	return m.AppendTo(nil)
}

func joinReq(version int16, group, memberID string, protocols ...string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.SessionTimeoutMillis = 10_000
	r.RebalanceTimeoutMillis = 20_000
	r.ProtocolType = "consumer"
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	for _, p := range protocols {
		r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: consumerMeta("t1")})
	}
	return r
}

// join sends a JoinGroup from its own goroutine, as a connection would.
func (h *harness) join(r *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		ctx := WithClient(context.Background(), "client", "/10.0.0.1")
		ch <- h.c.JoinGroup(ctx, r)
	}()
	return ch
}

func (h *harness) sync(r *kmsg.SyncGroupRequest) <-chan *kmsg.SyncGroupResponse {
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	go func() { ch <- h.c.SyncGroup(context.Background(), r) }()
	return ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a response")
		var zero T
		return zero
	}
}

func noRecv[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected response: %+v", v)
	case <-time.After(20 * time.Millisecond):
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitingJoin counts members of a group whose JoinGroup is parked.
func (h *harness) awaitingJoin(name string) int {
	g := h.c.lockGroup(name, false)
	if g == nil {
		return 0
	}
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.members {
		if m.joinWait != nil {
			n++
		}
	}
	return n
}

func (h *harness) awaitingSync(name string) int {
	g := h.c.lockGroup(name, false)
	if g == nil {
		return 0
	}
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.members {
		if m.syncWait != nil {
			n++
		}
	}
	return n
}

func (h *harness) state(name string) string {
	r := kmsg.NewPtrDescribeGroupsRequest()
	r.Groups = []string{name}
	return h.c.DescribeGroups(r).Groups[0].State
}

// joinNew performs the v4+ MEMBER_ID_REQUIRED handshake and returns the second join's channel.
func (h *harness) joinNew(version int16, group string, protocols ...string) (string, <-chan *kmsg.JoinGroupResponse) {
	h.t.Helper()
	resp := recv(h.t, h.join(joinReq(version, group, "", protocols...)))
	if resp.ErrorCode != 79 { // MEMBER_ID_REQUIRED
		h.t.Fatalf("first join: error %d, want MEMBER_ID_REQUIRED", resp.ErrorCode)
	}
	return resp.MemberID, h.join(joinReq(version, group, resp.MemberID, protocols...))
}

func syncReq(version int16, group, memberID string, generation int32, assign map[string]string) *kmsg.SyncGroupRequest {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = version
	r.Group = group
	r.MemberID = memberID
	r.Generation = generation
	for id, a := range assign {
		r.GroupAssignment = append(r.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return r
}

func (h *harness) heartbeat(group, memberID string, generation int32) int16 {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Version = 4
	r.Group = group
	r.MemberID = memberID
	r.Generation = generation
	return h.c.Heartbeat(r).ErrorCode
}

// stableGroup brings up a group of n dynamic members (v9 handshake) and returns their member
// ids (leader first) and the generation.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var ids []string
	var chans []<-chan *kmsg.JoinGroupResponse
	for i := 0; i < n; i++ {
		id, ch := h.joinNew(9, group)
		ids = append(ids, id)
		chans = append(chans, ch)
		if i == 0 && n > 1 {
			// With no initial delay the first member completes a generation alone; the others then
			// trigger a rebalance that it must rejoin.
			r := recv(h.t, ch)
			chans[0] = nil
			_ = r
		}
	}
	if n > 1 {
		waitFor(h.t, "rebalance", func() bool { return h.state(group) == "PreparingRebalance" && h.awaitingJoin(group) == n-1 })
		chans[0] = h.join(joinReq(9, group, ids[0]))
	}
	var gen int32
	assign := map[string]string{}
	for i, ch := range chans {
		r := recv(h.t, ch)
		if r.ErrorCode != 0 {
			h.t.Fatalf("join %d: error %d", i, r.ErrorCode)
		}
		gen = r.Generation
		assign[ids[i]] = "assignment-" + ids[i]
	}
	var syncs []<-chan *kmsg.SyncGroupResponse
	for i, id := range ids {
		a := map[string]string(nil)
		if i == 0 {
			a = assign
		}
		syncs = append(syncs, h.sync(syncReq(5, group, id, gen, a)))
	}
	for i, ch := range syncs {
		if r := recv(h.t, ch); r.ErrorCode != 0 {
			h.t.Fatalf("sync %d: error %d", i, r.ErrorCode)
		}
	}
	if s := h.state(group); s != "Stable" {
		h.t.Fatalf("state %s, want Stable", s)
	}
	return ids, gen
}
