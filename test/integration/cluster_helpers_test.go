package integration

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/verify"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The multi-process cluster harness: N `moldau server` processes, each with its own Kafka-style
// server.properties (node.id, process.roles=broker,controller, PLAINTEXT and CONTROLLER listeners
// on free loopback ports, advertised.listeners, controller.listener.names,
// controller.quorum.voters, log.dirs), started by internal/verify's Cluster (the one moldau verify
// --nodes uses). Faults: kill (SIGKILL), pause/resume (SIGSTOP/SIGCONT), restart on the same data
// dir, and with proxies, network partitions: every node reaches every other node's controller
// listener through a faultproxy of its own (from, to), and the other nodes' inter-broker listener
// (REPLICATION, inter.broker.listener.name) through one proxy per node.

// clusterOptions configure startTestCluster.
type clusterOptions struct {
	nodes int
	// props are added to every node's file after the test defaults.
	props map[string]string
	// proxies puts a faultproxy on every link between nodes (see isolate).
	proxies bool
}

// clusterDefaults: groups settle at once and start-up is quick.
var clusterDefaults = map[string]string{
	"group.initial.rebalance.delay.ms": "0",
	"offsets.topic.num.partitions":     "3",
}

// testCluster is a running cluster owned by one test: stopped, with each node's output printed
// when the test failed, at its end.
type testCluster struct {
	t *testing.T
	*verify.Cluster
}

// startTestCluster starts o.nodes nodes and waits until every one is ready.
func startTestCluster(t *testing.T, o clusterOptions) *testCluster {
	t.Helper()
	props := maps.Clone(clusterDefaults)
	maps.Copy(props, o.props)
	c, err := verify.NewCluster(verify.ClusterConfig{
		Binary:       moldauBin,
		Nodes:        o.nodes,
		Dir:          t.TempDir(),
		Properties:   props,
		Proxies:      o.proxies,
		ReadyTimeout: brokerTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{t: t, Cluster: c}
	t.Cleanup(tc.cleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 2*brokerTimeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start a %d-node cluster: %v", o.nodes, err)
	}
	return tc
}

func (tc *testCluster) cleanup() {
	tc.Close()
	for _, p := range tc.Problems() {
		tc.t.Errorf("%s", p)
	}
	if tc.t.Failed() {
		for _, n := range tc.Nodes() {
			tc.t.Logf("node %d output (%s, config %s):\n%s", n.ID, n.ClientAddr, n.ConfigPath, indent(n.Output(), fmt.Sprintf("  node%d| ", n.ID)))
		}
	}
}

// node is the node with id, failing the test if there is none.
func (tc *testCluster) node(id int32) *verify.Node {
	tc.t.Helper()
	n := tc.Node(id)
	if n == nil {
		tc.t.Fatalf("no node %d", id)
	}
	return n
}

func (tc *testCluster) kill(id int32) {
	tc.t.Helper()
	if err := tc.node(id).Kill(); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *testCluster) pause(id int32) {
	tc.t.Helper()
	if err := tc.node(id).Pause(); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *testCluster) resume(id int32) {
	tc.t.Helper()
	if err := tc.node(id).Resume(); err != nil {
		tc.t.Fatal(err)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (tc *testCluster) stop(id int32) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	if err := tc.node(id).Stop(ctx); err != nil {
		tc.t.Fatal(err)
	}
}

// restart starts a stopped or killed node again on its data dir and waits until it is ready.
func (tc *testCluster) restart(id int32) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	if err := tc.node(id).Restart(ctx); err != nil {
		tc.t.Fatal(err)
	}
}

// isolate cuts node id off from every other node (both directions of the controller links and
// the inter-broker listener of id) while clients still reach it; heal undoes every cut.
func (tc *testCluster) isolate(id int32) {
	tc.t.Helper()
	if err := tc.Isolate(id); err != nil {
		tc.t.Fatal(err)
	}
}

// heal restores every proxy.
func (tc *testCluster) heal() {
	tc.t.Helper()
	if err := tc.Heal(); err != nil {
		tc.t.Fatal(err)
	}
}

// client is a franz-go client of every node, closed when the test ends.
func (tc *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	tc.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(tc.Bootstrap(), ",")...), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(cl.Close)
	return cl
}

// waitFor polls cond until it holds, failing the test with cond's last explanation after
// timeout. cond reports whether it holds and, when not, why.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, why)
		}
		<-tick.C
	}
}
