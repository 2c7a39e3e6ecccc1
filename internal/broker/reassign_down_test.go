package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/partition"
)

// testClusterPlusBroker is testCluster(t, 3) and a fourth, broker-only node (a raft observer),
// as a cluster grows: the moves of these tests go to and from it. Its cleanup stops node 4
// first, so the three voters keep their quorum until the last of them stops (a four-voter
// cluster loses it with two nodes still up, whose shutdown then waits on the quorum).
func testClusterPlusBroker(t *testing.T, overrides ...string) []*Broker {
	t.Helper()
	brokers := testCluster(t, 3, overrides...)
	var voters []string
	for _, b := range brokers {
		voters = append(voters, fmt.Sprintf("%d@%s", b.cfg.NodeID, raftAdvertiseAddr(b.cfg)))
	}
	cfg := testConfig(t, t.TempDir(), append([]string{
		"node.id", "4",
		"process.roles", "broker",
		"listeners", "PLAINTEXT://" + freeAddrs(t, 1)[0],
		"controller.listener.names", "CONTROLLER",
		"controller.quorum.voters", strings.Join(voters, ","),
		"broker.session.timeout.ms", "3000",
		"broker.heartbeat.interval.ms", "500",
	}, overrides...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b4, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker-only node 4: %v", err)
	}
	t.Cleanup(func() { stopBroker(t, b4) })
	return append(brokers, b4)
}

// TestClusterReassignAwayWhileDown: node 3 is stopped, its replica of a partition moves to
// node 4 meanwhile ({1,2,3} -> {1,2,4} completes without it), and when node 3 starts again it
// deletes the partition's files it still has, before it serves.
func TestClusterReassignAwayWhileDown(t *testing.T) {
	brokers := testClusterPlusBroker(t, "replica.lag.time.max.ms", "2000")
	waitCluster(t, brokers, "four brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createAssigned(ctx, t, brokers[0], "away", minISR2, 1, 2, 3)
	cl := clusterClient(t, brokers, kgo.DefaultProduceTopic("away"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	n3 := brokers[2]
	dir := filepath.Join(n3.cfg.LogDirs[0], partition.DirName("away", 0))
	waitCluster(t, []*Broker{n3}, "node 3's replica caught up", func(b *Broker) bool {
		p := b.parts.Get("away", 0)
		return p != nil && p.LogEndOffset() == 30
	})
	stopBroker(t, n3)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("node 3's replica directory before the move: %v", err)
	}
	live := []*Broker{brokers[0], brokers[1], brokers[3]}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("away", 0, []int32{1, 2, 4})
	res, err := kadm.NewClient(clusterClient(t, live)).AlterPartitionAssignments(ctx, req)
	if err != nil || res["away"][0].Err != nil {
		t.Fatalf("reassign: %v %+v", err, res)
	}
	waitCluster(t, live, "the move completed without node 3", func(b *Broker) bool {
		p, ok := partitionOn(b, "away")
		return ok && slices.Equal(p.Replicas, []int32{1, 2, 4}) && !p.Reassigning()
	})

	restarted, err := Start(ctx, n3.cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("restart node 3: %v", err)
	}
	t.Cleanup(func() { stopBroker(t, restarted) })
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) || restarted.parts.Get("away", 0) != nil {
		t.Fatalf("node 3 kept the replica moved away while it was down: %v", err)
	}
	// The partition serves on with its new replicas.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the move: %v", err)
	}
}
