package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// counter is a tiny FSM: the sum of applied numbers, and how it got there.
type counter struct {
	mu       sync.Mutex
	sum      int
	applied  int
	restored int
}

func (c *counter) Apply(l *raft.Log) any {
	n, err := strconv.Atoi(string(l.Data))
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum += n
	c.applied++
	return c.sum
}

func (c *counter) Snapshot() (raft.FSMSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return counterSnap(c.sum), nil
}

func (c *counter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var sum int
	if err := json.NewDecoder(rc).Decode(&sum); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sum = sum
	c.restored++
	return nil
}

func (c *counter) state() (sum, applied, restored int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum, c.applied, c.restored
}

type counterSnap int

func (s counterSnap) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(int(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (counterSnap) Release() {}

func apply(t *testing.T, n *Node, v int) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := n.Apply(ctx, []byte(strconv.Itoa(v)))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestSingleNodeInmem(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{NodeID: 7, Dir: dir, LogOutput: io.Discard}
	fsm := &counter{}
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	if !n.IsLeader() {
		t.Fatal("not leader after Open")
	}
	if id, _, ok := n.Leader(); !ok || id != 7 {
		t.Fatalf("leader %d %v", id, ok)
	}
	for i := 1; i <= 10; i++ {
		if got := apply(t, n, i); got != i*(i+1)/2 {
			t.Fatalf("response %v", got)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(context.Background(), []byte("1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}

	// Reopen: no second bootstrap, state replayed from the log before Open returns.
	fsm2 := &counter{}
	n, err = Open(cfg, fsm2)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if sum, _, _ := fsm2.state(); sum != 55 {
		t.Fatalf("sum after restart %d", sum)
	}
	if got := apply(t, n, 1); got != 56 {
		t.Fatalf("response %v", got)
	}
}

func TestSnapshotRestoreOnRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{NodeID: 1, Dir: dir, LogOutput: io.Discard, SnapshotThreshold: 10, SnapshotInterval: 10 * time.Millisecond, TrailingLogs: 2}
	n, err := Open(cfg, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		apply(t, n, 1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, err := n.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		snaps, _ := n.Snapshots()
		if first > 1 && len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log not compacted: first index %d, %d snapshots", first, len(snaps))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		apply(t, n, 1)
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	apply(t, n, 100) // after the last snapshot: must come back from the log
	n.Close()

	fsm := &counter{}
	n, err = Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sum, applied, restored := fsm.state()
	if sum != 153 || restored != 1 || applied == 0 || applied > 10 {
		t.Fatalf("sum %d applied %d restored %d", sum, applied, restored)
	}
	snaps, _ := n.Snapshots()
	if len(snaps) > 2 {
		t.Fatalf("%d snapshots kept, want <= 2", len(snaps))
	}
}

func TestSingleNodeTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := Config{NodeID: 1, Dir: t.TempDir(), BindAddr: addr, Voters: map[int32]string{1: addr}, LogOutput: io.Discard}
	n, err := Open(cfg, &counter{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := apply(t, n, 3); got != 3 {
		t.Fatalf("response %v", got)
	}
}

func TestThreeVoters(t *testing.T) {
	voters := map[int32]string{}
	for id := int32(1); id <= 3; id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters[id] = l.Addr().String()
		l.Close()
	}
	nodes := map[int32]*Node{}
	fsms := map[int32]*counter{}
	for id, addr := range voters {
		fsms[id] = &counter{}
		n, err := Open(Config{NodeID: id, Dir: t.TempDir(), BindAddr: addr, Voters: voters, LogOutput: io.Discard}, fsms[id])
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		nodes[id] = n
	}
	var leader *Node
	deadline := time.Now().Add(20 * time.Second)
	for leader == nil {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id, n := range nodes {
		if n != leader {
			if _, err := n.Apply(context.Background(), []byte("1")); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("follower %d apply: %v", id, err)
			}
		}
	}
	apply(t, leader, 5)
	for id, f := range fsms {
		for {
			if sum, _, _ := f.state(); sum == 5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d did not apply", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
