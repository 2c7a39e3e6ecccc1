package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// freeAddrs reserves n loopback ports (closed again at once: the broker binds them).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = l.Addr().String()
		l.Close()
	}
	return out
}

// testCluster starts n combined broker+controller nodes in this process, each with its own log
// dir, and stops them when the test ends. Start blocks until a quorum forms, so they start
// together.
func testCluster(t *testing.T, n int, overrides ...string) []*Broker {
	t.Helper()
	ctrl := freeAddrs(t, n)
	var voters []string
	for i, a := range ctrl {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, a))
	}
	brokers := make([]*Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		kv := append([]string{
			"node.id", strconv.Itoa(i + 1),
			"listeners", "PLAINTEXT://127.0.0.1:0,CONTROLLER://" + ctrl[i],
			"controller.listener.names", "CONTROLLER",
			"controller.quorum.voters", strings.Join(voters, ","),
		}, overrides...)
		cfg := testConfig(t, t.TempDir(), kv...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			brokers[i], errs[i] = Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			stopBroker(t, b)
		}
	})
	return brokers
}

func clusterClient(t *testing.T, brokers []*Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr().String())
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestClusterForwardsMetadataWrites: three nodes elect one controller; a topic created through
// a node that is not the controller is validated and committed there, and visible on the node
// that forwarded it as soon as CreateTopics answers; clients produce to and consume from
// partitions led by every node.
func TestClusterForwardsMetadataWrites(t *testing.T) {
	brokers := testCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	controller := brokers[0].Controller().ControllerID()
	if controller < 1 || controller > 3 {
		t.Fatalf("controller id %d", controller)
	}
	var follower *Broker
	for _, b := range brokers {
		if got := b.Controller().ControllerID(); got != controller {
			t.Fatalf("node %d sees controller %d, node 1 sees %d", b.cfg.NodeID, got, controller)
		}
		if b.cfg.NodeID != controller && follower == nil {
			follower = b
		}
	}

	// Each node's Start returned once its own registration was applied there; the others'
	// registrations reach every image shortly after.
	waitCluster(t, brokers, "three brokers in every image", func(b *Broker) bool { return len(b.Controller().Image().Brokers()) == 3 })
	adm := kadm.NewClient(clusterClient(t, []*Broker{follower}))
	// Metadata from any node names the real controller and every broker.
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Controller != controller || len(meta.Brokers) != 3 {
		t.Fatalf("metadata: controller %d, brokers %v; want controller %d and 3 brokers", meta.Controller, meta.Brokers.NodeIDs(), controller)
	}

	// kadm sends CreateTopics to the controller; send it to the follower itself.
	direct := clusterClient(t, []*Broker{follower}).Broker(int(follower.cfg.NodeID))
	create := func() (int16, string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "spread", 6, 1
		req.Topics = append(req.Topics, rt)
		resp, err := direct.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		st := resp.(*kmsg.CreateTopicsResponse).Topics[0]
		msg := ""
		if st.ErrorMessage != nil {
			msg = *st.ErrorMessage
		}
		return st.ErrorCode, msg
	}
	if code, msg := create(); code != 0 {
		t.Fatalf("create topic through node %d: code %d %s", follower.cfg.NodeID, code, msg)
	}
	// Committed and applied on the forwarding node before the answer.
	if _, ok := follower.Controller().Image().Topic("spread"); !ok {
		t.Fatal("CreateTopics answered before the forwarding node's image had the topic")
	}
	// The controller's answer to a second create comes back through forwarding unchanged.
	if code, msg := create(); code != kerr.TopicAlreadyExists.Code || !strings.Contains(msg, "spread") {
		t.Fatalf("second create: code %d %q, want TOPIC_ALREADY_EXISTS naming the topic", code, msg)
	}
	leaders := map[int32]int{}
	tm, _ := follower.Controller().Image().Topic("spread")
	for _, p := range tm.Partitions {
		leaders[p.Leader]++
	}
	if len(leaders) != 3 {
		t.Fatalf("partition leaders %v: want all three nodes to lead some", leaders)
	}

	// Configs and deletion are forwarded too.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("60000")}}, "spread"); err != nil {
		t.Fatal(err)
	}
	waitCluster(t, brokers, "retention.ms on every node", func(b *Broker) bool {
		tt, ok := b.Controller().Image().Topic("spread")
		return ok && tt.Configs["retention.ms"] == "60000"
	})

	// Clients follow the leaders: every record produced to every partition is read back.
	cl := clusterClient(t, brokers, kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 60
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	cons := clusterClient(t, brokers, kgo.ConsumeTopics("spread"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(seen), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}

	if _, err := adm.DeleteTopic(ctx, "spread"); err != nil {
		t.Fatal(err)
	}
	waitCluster(t, brokers, "topic deleted on every node", func(b *Broker) bool {
		_, ok := b.Controller().Image().Topic("spread")
		return !ok && len(b.parts.Topic("spread")) == 0
	})
}

// waitCluster waits (10 s at most) until cond holds on every node.
func waitCluster(t *testing.T, brokers []*Broker, what string, cond func(*Broker) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		all := true
		for _, b := range brokers {
			all = all && cond(b)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
