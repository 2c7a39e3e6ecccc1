package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterHarnessOneNode drives the harness's faults against the one node a cluster can have
// today: the node's Kafka-style config, kill -9 and restart on the same data dir, SIGSTOP and
// SIGCONT, SIGTERM and restart, with every acknowledged record read back at the end. With
// proxies the node also gets the REPLICATION listener, advertised through its proxy.
func TestClusterHarnessOneNode(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 1, proxies: true, props: map[string]string{"min.insync.replicas": "1"}})
	n := tc.node(1)
	cfg, err := os.ReadFile(n.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	p := tc.InterBrokerProxy(1)
	if p == nil || p.Target() != n.ReplicationAddr {
		t.Fatalf("inter-broker proxy %v, want one in front of %s", p, n.ReplicationAddr)
	}
	for _, want := range []string{"node.id=1\n", "process.roles=broker,controller\n",
		"listeners=PLAINTEXT://" + n.ClientAddr + ",CONTROLLER://" + n.ControllerAddr + ",REPLICATION://" + n.ReplicationAddr + "\n",
		"advertised.listeners=PLAINTEXT://" + n.ClientAddr + ",REPLICATION://" + p.Addr() + "\n",
		"controller.listener.names=CONTROLLER\n", "inter.broker.listener.name=REPLICATION\n",
		"controller.quorum.voters=1@" + n.ControllerAddr + "\n", "log.dirs=" + n.DataDir + "\n", "min.insync.replicas=1\n"} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("server.properties lacks %q:\n%s", want, cfg)
		}
	}

	const topic = "harness"
	createTopic(t, n.ClientAddr, topic, 2, nil)
	var acked int
	produce := func(ctx context.Context, cl *kgo.Client, count int) error {
		for range count {
			r := &kgo.Record{Topic: topic, Value: []byte("v")}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				return err
			}
			acked++
		}
		return nil
	}
	ctx := testContext(t, 2*time.Minute)
	if err := produce(ctx, tc.client(), 50); err != nil {
		t.Fatal(err)
	}

	tc.kill(1)
	if n.Running() {
		t.Fatal("running after Kill")
	}
	tc.restart(1)
	if err := produce(ctx, tc.client(), 50); err != nil {
		t.Fatalf("after kill -9 and restart: %v", err)
	}

	// Paused, the node answers nothing; resumed, a produce sent meanwhile completes.
	cl := tc.client()
	if err := produce(ctx, cl, 1); err != nil {
		t.Fatal(err)
	}
	tc.pause(1)
	if !n.Paused() {
		t.Fatal("not paused after Pause")
	}
	pending := make(chan error, 1)
	go func() { pending <- produce(ctx, cl, 1) }()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = kadm.NewClient(tc.client()).ListTopics(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("metadata from a paused node: %v, want no answer (deadline exceeded)", err)
	}
	select {
	case err := <-pending:
		t.Fatalf("a produce to a paused node completed: %v", err)
	default:
	}
	tc.resume(1)
	if err := <-pending; err != nil {
		t.Fatalf("the produce sent while paused, after SIGCONT: %v", err)
	}
	if err := produce(ctx, cl, 10); err != nil {
		t.Fatalf("after SIGCONT: %v", err)
	}

	tc.stop(1)
	tc.restart(1)
	waitFor(t, 30*time.Second, "the restarted node lists the topic", func() (bool, string) {
		got := partitionCount(t, n.ClientAddr, topic)
		return got == 2, fmt.Sprintf("%d partitions", got)
	})
	if got := len(consumeAll(t, n.ClientAddr, topic)); got < acked {
		t.Errorf("read %d records back, %d were acknowledged", got, acked)
	}
}
