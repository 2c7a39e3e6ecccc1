package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRealClockSessionExpiry runs the timers on the system clock with millisecond timeouts.
func TestRealClockSessionExpiry(t *testing.T) {
	cfg := testConfig()
	cfg.MinSessionTimeout = time.Millisecond
	c := NewCoordinator(cfg, NewMemoryStore(), nil)
	defer c.Close()
	if err := c.WaitLoaded(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := joinReq(3, "g", "")
	r.SessionTimeoutMillis = 300
	r.RebalanceTimeoutMillis = 300
	j := c.JoinGroup(context.Background(), r)
	if j.ErrorCode != 0 {
		t.Fatalf("join: %+v", j)
	}
	s := c.SyncGroup(context.Background(), syncReq(3, "g", j.MemberID, j.Generation, map[string]string{j.MemberID: "x"}))
	if s.ErrorCode != 0 {
		t.Fatalf("sync: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", j.MemberID, j.Generation
	// Heartbeats every 10ms keep a 300ms session alive...
	for i := 0; i < 10; i++ {
		if code := c.Heartbeat(hb).ErrorCode; code != 0 {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ...and without them it expires.
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(20 * time.Millisecond)
		d := kmsg.NewPtrDescribeGroupsRequest()
		d.Groups = []string{"g"}
		if c.DescribeGroups(d).Groups[0].State == "Empty" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session never expired")
		}
	}
	if code := c.Heartbeat(hb).ErrorCode; code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after expiry: %d", code)
	}
}

func TestDescribeMissingGroupV6(t *testing.T) {
	h := newHarness(t, testConfig())
	d := kmsg.NewPtrDescribeGroupsRequest()
	d.Version = 6
	d.Groups = []string{"missing"}
	g := h.c.DescribeGroups(d).Groups[0]
	if g.ErrorCode != kerr.GroupIDNotFound.Code || g.State != "Dead" {
		t.Fatalf("describe missing: %+v", g)
	}
	d.Version = 5
	if g := h.c.DescribeGroups(d).Groups[0]; g.ErrorCode != 0 || g.State != "Dead" {
		t.Fatalf("describe missing v5: %+v", g)
	}
}

func TestSyncStoreFailureRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	_, ch := h.joinNew(9, "g")
	j := recv(t, ch)
	h.store.SetAppendError(kerr.NotLeaderForPartition)
	s := recv(t, h.sync(syncReq(5, "g", j.MemberID, j.Generation, map[string]string{j.MemberID: "x"})))
	if s.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("sync with failing store: %+v", s)
	}
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	h.store.SetAppendError(nil)
	j2 := recv(t, h.join(joinReq(9, "g", j.MemberID)))
	if j2.ErrorCode != 0 || j2.Generation != j.Generation+1 {
		t.Fatalf("rejoin: %+v", j2)
	}
}
