package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

func startTest(t *testing.T, dir string, mod func(*Config)) *Controller {
	t.Helper()
	cfg := testConfig()
	cfg.RaftDir = dir
	cfg.LogOutput = io.Discard
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartRestartPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "__raft")
	ctx := context.Background()
	c := startTest(t, dir, nil)
	clusterID := c.Image().ClusterID()
	if len(clusterID) != 22 {
		t.Fatalf("cluster id %q", clusterID)
	}
	if !c.IsController() || c.ControllerID() != 1 {
		t.Fatalf("controller id %d", c.ControllerID())
	}
	activate(t, c, 1, "")
	top, err := c.CreateTopic(ctx, CreateTopic{Name: "orders", Partitions: 4, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "gone", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	first, _, err := c.AllocateProducerIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Image()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "late", Partitions: 1, ReplicationFactor: 1}); err == nil {
		t.Fatal("write after close succeeded")
	}

	c = startTest(t, dir, nil)
	defer c.Close()
	im := c.Image()
	if im.ClusterID() != clusterID {
		t.Fatalf("cluster id changed: %q -> %q", clusterID, im.ClusterID())
	}
	got, ok := im.Topic("orders")
	if !ok || got.ID != top.ID || len(got.Partitions) != 4 || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("topic after restart: %+v", got)
	}
	if _, ok := im.Topic("gone"); ok {
		t.Fatal("deleted topic came back")
	}
	if len(im.Brokers()) != 1 {
		t.Fatal("broker registration lost")
	}
	if !reflect.DeepEqual(before.Topics(), im.Topics()) {
		t.Fatal("topics differ after restart")
	}
	next, _, err := c.AllocateProducerIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next < first+ProducerIDBlockSize {
		t.Fatalf("producer id block %d reused after restart (earlier block %d)", next, first)
	}
}

func TestStartClusterIDMismatch(t *testing.T) {
	dir := t.TempDir()
	c := startTest(t, dir, func(cfg *Config) { cfg.ClusterID = "MkU3OEVBNTcwNTJENDM2Qg" })
	if got := c.Image().ClusterID(); got != "MkU3OEVBNTcwNTJENDM2Qg" {
		t.Fatalf("cluster id %q", got)
	}
	c.Close()
	cfg := testConfig()
	cfg.RaftDir, cfg.LogOutput, cfg.ClusterID = dir, io.Discard, "other"
	if c, err := Start(context.Background(), cfg); err == nil {
		c.Close()
		t.Fatal("mismatched cluster id accepted")
	}
}

// TestSnapshotAndLogReplay makes raft take snapshots and compact its log, then checks that
// a restart restores the snapshot and replays the entries after it.
func TestSnapshotAndLogReplay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	small := func(cfg *Config) {
		cfg.SnapshotThreshold = 20
		cfg.SnapshotInterval = 20 * time.Millisecond
		cfg.TrailingLogs = 5
	}
	c := startTest(t, dir, small)
	activate(t, c, 1, "")
	for i := range 100 {
		if _, err := c.CreateTopic(ctx, CreateTopic{Name: fmt.Sprint("t", i), Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	node := c.Node()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snaps, err := node.Snapshots()
		if err != nil {
			t.Fatal(err)
		}
		first, _ := node.FirstIndex()
		if len(snaps) > 0 && first > 1 {
			if len(snaps) > 2 {
				t.Fatalf("%d snapshots retained", len(snaps))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot/compaction: %d snapshots, first index %d", len(snaps), first)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Entries after the last snapshot, replayed from the log on restart.
	for i := range 3 {
		if err := c.AlterTopicConfigs(ctx, "t0", map[string]*string{fmt.Sprint("k", i): str("v")}); err != nil {
			t.Fatal(err)
		}
	}
	want := c.Image()
	c.Close()

	c = startTest(t, dir, small)
	defer c.Close()
	got := c.Image()
	if !reflect.DeepEqual(want.Topics(), got.Topics()) || got.ClusterID() != want.ClusterID() || len(got.Brokers()) != 1 {
		t.Fatalf("state after restart differs: %d topics, want %d", got.NumTopics(), want.NumTopics())
	}
	if t0, _ := got.Topic("t0"); len(t0.Configs) != 3 {
		t.Fatalf("log entries after the snapshot lost: %v", t0.Configs)
	}
}

func TestNotController(t *testing.T) {
	// Two voters, the other one never answers: this node cannot win an election.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig()
	cfg.RaftDir, cfg.LogOutput = t.TempDir(), io.Discard
	cfg.RaftBindAddr = addr
	cfg.Voters = map[int32]string{1: addr, 2: "127.0.0.1:1"}
	cfg.ApplyTimeout = time.Second
	c, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A forwarded write on a node that does not lead: NOT_CONTROLLER before any validation
	// against this node's image (no brokers are registered here: validating would answer
	// INVALID_REPLICATION_FACTOR).
	if _, err := c.CreateTopic(Forwarded(context.Background()), CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrNotController) {
		t.Fatalf("err = %v, want ErrNotController", err)
	}
	// With no leader to forward to, a write waits for one until its deadline, then times out.
	if _, err := c.RegisterBroker(context.Background(), registration(c, 1, "")); !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("err = %v, want REQUEST_TIMED_OUT", err)
	}
	// A request that arrived on the CONTROLLER listener is never forwarded: NOT_CONTROLLER at once.
	if _, _, err := c.AllocateProducerIDs(Forwarded(context.Background())); !errors.Is(err, ErrNotController) || errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("err = %v, want ErrNotController", err)
	}
	if c.IsController() {
		t.Fatal("IsController")
	}
}

func TestThreeControllers(t *testing.T) {
	voters := map[int32]string{}
	for id := int32(1); id <= 3; id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters[id] = l.Addr().String()
		l.Close()
	}
	cs := map[int32]*Controller{}
	for id, addr := range voters {
		cfg := testConfig()
		cfg.NodeID, cfg.RaftDir, cfg.LogOutput = id, t.TempDir(), io.Discard
		cfg.RaftBindAddr, cfg.Voters = addr, voters
		cfg.ErrorLog = func(err error) { t.Errorf("node %d: %v", id, err) }
		c, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cs[id] = c
	}
	deadline := time.Now().Add(20 * time.Second)
	// Whoever wins the election writes the cluster id; every node applies it.
	for {
		ids := map[string]bool{}
		for _, c := range cs {
			ids[c.Image().ClusterID()] = true
		}
		if len(ids) == 1 && !ids[""] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster ids %v", ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	leaderID := cs[1].ControllerID()
	leader := cs[leaderID]
	if leader == nil || !leader.IsController() {
		t.Fatalf("controller id %d", leaderID)
	}
	ctx := context.Background()
	for id := range voters {
		activate(t, leader, id, "")
	}
	for id, c := range cs {
		if c == leader {
			continue
		}
		// Forwarding needs the CONTROLLER listener's Kafka side (internal/broker tests it); a
		// request that arrived there is answered NOT_CONTROLLER by a node that does not lead.
		if _, err := c.CreateTopic(Forwarded(ctx), CreateTopic{Name: "x", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrNotController) {
			t.Fatalf("node %d: err = %v, want ErrNotController", id, err)
		}
		if c.ControllerID() != leaderID {
			t.Fatalf("node %d sees controller %d, want %d", id, c.ControllerID(), leaderID)
		}
	}
	top, err := leader.CreateTopic(ctx, CreateTopic{Name: "replicated", Partitions: 6, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range cs {
		for {
			if got, ok := c.Image().Topic("replicated"); ok {
				if got.ID != top.ID || len(got.Partitions) != 6 {
					t.Fatalf("node %d: %+v", id, got)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d never saw the topic", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
