package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
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
	return testClusterOn(t, n, func(int) string { return t.TempDir() }, overrides...)
}

// testClusterOn is testCluster with node id's log.dirs from logDirs(id).
func testClusterOn(t *testing.T, n int, logDirs func(id int) string, overrides ...string) []*Broker {
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
			"broker.session.timeout.ms", "3000",
			"broker.heartbeat.interval.ms", "500",
		}, overrides...)
		cfg := testConfig(t, logDirs(i+1), kv...)
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
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
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
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("60000")}}, "spread")
	if err == nil {
		err = alt[0].Err
	}
	if err != nil {
		t.Fatalf("alter configs: %v", err)
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

// TestClusterConsumerGroups: in a cluster __consumer_offsets is created on the first
// FindCoordinator, spread over the three nodes; each group is coordinated by its partition's
// leader (FindCoordinator answers it from any node, the others answer NOT_COORDINATOR), and
// groups coordinated by every node consume and commit.
func TestClusterConsumerGroups(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	if res, err := adm.CreateTopic(ctx, 3, 1, nil, "events"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	prod := clusterClient(t, brokers, kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 30
	for i := range n {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Pick one group name per coordinator node.
	coordinators := map[int32]string{}
	for i := 0; len(coordinators) < 3 && i < 1000; i++ {
		name := "g" + strconv.Itoa(i)
		c := adm.FindGroupCoordinators(ctx, name)[name]
		if c.Err != nil {
			i-- // COORDINATOR_NOT_AVAILABLE while the topic is created: ask again
			continue
		}
		if _, ok := coordinators[c.NodeID]; !ok {
			coordinators[c.NodeID] = name
		}
	}
	if len(coordinators) != 3 {
		t.Fatalf("group coordinators %v: want one on each node", coordinators)
	}

	for _, b := range brokers {
		// Every node answers FindCoordinator the same.
		direct := clusterClient(t, []*Broker{b}).Broker(int(b.cfg.NodeID))
		for id, name := range coordinators {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = name
			req.CoordinatorKeys = []string{name} // the v4+ form kgo sends
			resp, err := direct.Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			got := resp.(*kmsg.FindCoordinatorResponse)
			gotID, code := got.NodeID, got.ErrorCode
			if len(got.Coordinators) == 1 {
				gotID, code = got.Coordinators[0].NodeID, got.Coordinators[0].ErrorCode
			}
			if code != 0 || gotID != id {
				t.Fatalf("node %d: coordinator of %s = %d (code %d), want %d", b.cfg.NodeID, name, gotID, code, id)
			}
			if id == b.cfg.NodeID {
				continue
			}
			// A node that does not lead the group's partition is not its coordinator.
			of := kmsg.NewPtrOffsetFetchRequest()
			of.Group = name
			og := kmsg.NewOffsetFetchRequestGroup()
			og.Group = name
			of.Groups = append(of.Groups, og) // the v8+ form kgo sends
			resp, err = direct.Request(ctx, of)
			if err != nil {
				t.Fatal(err)
			}
			ofr := resp.(*kmsg.OffsetFetchResponse)
			code = ofr.ErrorCode
			if len(ofr.Groups) == 1 {
				code = ofr.Groups[0].ErrorCode
			}
			if code != kerr.NotCoordinator.Code {
				t.Fatalf("node %d answered OffsetFetch for %s (coordinated by %d) with code %d, want NOT_COORDINATOR", b.cfg.NodeID, name, id, code)
			}
		}
	}

	for id, name := range coordinators {
		cons := clusterClient(t, brokers, kgo.ConsumerGroup(name), kgo.ConsumeTopics("events"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		got := 0
		for got < n {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("group %s (coordinator %d): read %d of %d: %v", name, id, got, n, err)
			}
			got += fs.NumRecords()
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("group %s: commit: %v", name, err)
		}
		offs, err := adm.FetchOffsets(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total != n {
			t.Fatalf("group %s (coordinator %d): committed offsets sum to %d, want %d", name, id, total, n)
		}
	}
}

// TestClusterControllerFailover: DescribeQuorum sent to any broker names the raft leader; when the
// leader stops, the other two elect a new one and metadata writes through either go on.
func TestClusterControllerFailover(t *testing.T) {
	brokers := testCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	describe := func(b *Broker) *kmsg.DescribeQuorumResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp, err := clusterClient(t, []*Broker{b}).Broker(int(b.cfg.NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.DescribeQuorumResponse)
		if r.ErrorCode != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
			t.Fatalf("node %d: DescribeQuorum %+v", b.cfg.NodeID, r)
		}
		return &r.Topics[0].Partitions[0]
	}
	leader := brokers[0].Controller().ControllerID()
	for _, b := range brokers {
		p := describe(b)
		if p.ErrorCode != 0 || p.LeaderID != leader || len(p.CurrentVoters) != 3 || p.HighWatermark <= 0 {
			t.Fatalf("node %d: DescribeQuorum partition %+v, want leader %d, 3 voters, a high watermark", b.cfg.NodeID, p, leader)
		}
	}

	var rest []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == leader {
			stopBroker(t, b)
			continue
		}
		rest = append(rest, b)
	}
	for i, b := range rest {
		adm := kadm.NewClient(clusterClient(t, []*Broker{b}))
		name := "after-failover-" + strconv.Itoa(i)
		res, err := adm.CreateTopic(ctx, 1, 1, nil, name)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			t.Fatalf("create %s through node %d after the controller stopped: %v", name, b.cfg.NodeID, err)
		}
	}
	newLeader := rest[0].Controller().ControllerID()
	if newLeader == leader || newLeader < 0 {
		t.Fatalf("controller after failover %d (was %d)", newLeader, leader)
	}
	if p := describe(rest[1]); p.LeaderID != newLeader {
		t.Fatalf("DescribeQuorum names %d, want %d", p.LeaderID, newLeader)
	}
}

// TestClusterControlledShutdown: a broker that stops asks for a controlled shutdown first: by
// the time it is gone, every partition it led has another leader from the ISR and it is in no
// ISR; its registration stays, fenced once its session expires.
func TestClusterControlledShutdown(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	if res, err := adm.CreateTopic(ctx, 6, 3, nil, "rf3"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	// The node to stop: one that is not the controller, so the metadata quorum stays put.
	var victim *Broker
	var rest []*Broker
	for _, b := range brokers {
		if victim == nil && b.cfg.NodeID != b.Controller().ControllerID() {
			victim = b
			continue
		}
		rest = append(rest, b)
	}
	id := victim.cfg.NodeID
	waitCluster(t, brokers, "topic in every image", func(b *Broker) bool { _, ok := b.Controller().Image().Topic("rf3"); return ok })
	led := 0
	tm, _ := rest[0].Controller().Image().Topic("rf3")
	for _, p := range tm.Partitions {
		if p.Leader == id {
			led++
		}
	}
	if led == 0 {
		t.Fatalf("node %d leads none of the 6 partitions: placement did not spread leaders", id)
	}
	stopBroker(t, victim)
	im := rest[0].Controller().Image()
	tm, _ = im.Topic("rf3")
	for _, p := range tm.Partitions {
		if p.Leader == id || p.Leader < 0 {
			t.Fatalf("after controlled shutdown of node %d partition %d has leader %d", id, p.Partition, p.Leader)
		}
		if hosts(p.ISR, id) {
			t.Fatalf("after controlled shutdown of node %d partition %d has ISR %v", id, p.Partition, p.ISR)
		}
	}
	waitCluster(t, rest, "stopped node fenced", func(b *Broker) bool {
		br, ok := b.Controller().Image().Broker(id)
		return ok && br.Fenced
	})
	// Clients are told about live brokers only, and see the stopped one's replicas offline.
	md, err := kadm.NewClient(clusterClient(t, rest)).Metadata(ctx, "rf3")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 2 {
		t.Fatalf("metadata lists brokers %v, want the two live ones", md.Brokers.NodeIDs())
	}
	for _, p := range md.Topics["rf3"].Partitions {
		if !slices.Equal(p.OfflineReplicas, []int32{id}) {
			t.Fatalf("partition %d offline replicas %v, want [%d]", p.Partition, p.OfflineReplicas, id)
		}
	}
}

// TestClusterBrokerOnlyNode: a process.roles=broker node joins a three-voter cluster as a raft
// non-voter (an observer in DescribeQuorum) on its inter-broker listener, gets the metadata log,
// registers, forwards its writes and serves partitions placed on it.
func TestClusterBrokerOnlyNode(t *testing.T) {
	brokers := testCluster(t, 3)
	var voters []string
	for _, b := range brokers {
		voters = append(voters, fmt.Sprintf("%d@%s", b.cfg.NodeID, raftAdvertiseAddr(b.cfg)))
	}
	cfg := testConfig(t, t.TempDir(),
		"node.id", "4",
		"process.roles", "broker",
		"listeners", "PLAINTEXT://"+freeAddrs(t, 1)[0],
		"controller.listener.names", "CONTROLLER",
		"controller.quorum.voters", strings.Join(voters, ","),
		"broker.session.timeout.ms", "3000",
		"broker.heartbeat.interval.ms", "500")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b4, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start broker-only node: %v", err)
	}
	t.Cleanup(func() { stopBroker(t, b4) })
	all := append(append([]*Broker{}, brokers...), b4)
	waitCluster(t, all, "four brokers in every image", liveBrokers(4))
	if got, want := b4.Controller().Image().ClusterID(), brokers[0].Controller().Image().ClusterID(); got != want || got == "" {
		t.Fatalf("broker-only node has cluster id %q, the voters %q", got, want)
	}
	st, err := b4.Controller().DescribeQuorum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Voters) != 3 || len(st.NonVoters) != 1 || st.NonVoters[0] != 4 {
		t.Fatalf("quorum voters %v observers %v, want 3 voters and observer 4", st.Voters, st.NonVoters)
	}
	// A write through the broker-only node, with a partition on it.
	direct := clusterClient(t, []*Broker{b4}).Broker(4)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = "on-four-manual"
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{4}
	rt.NumPartitions, rt.ReplicationFactor, rt.ReplicaAssignment = -1, -1, append(rt.ReplicaAssignment, ra)
	req.Topics = append(req.Topics, rt)
	resp, err := direct.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create through the broker-only node: code %d", code)
	}
	cl := clusterClient(t, all, kgo.DefaultProduceTopic("on-four-manual"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to the partition on node 4: %v", err)
	}
	if p := b4.parts.Get("on-four-manual", 0); p == nil || p.LogEndOffset() != 1 {
		t.Fatal("the record is not in node 4's partition")
	}
}

// TestClusterReplicates: an RF=3 topic with min.insync.replicas=2: acks=all records reach every
// replica; when a leader stops, its partitions move to followers holding every acknowledged
// record and producing goes on; everything acknowledged is read back once.
func TestClusterReplicates(t *testing.T) {
	brokers := testCluster(t, 3, "replica.lag.time.max.ms", "2000")
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	res, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, "replicated")
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	prod := clusterClient(t, brokers, kgo.DefaultProduceTopic("replicated"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MetadataMinAge(100*time.Millisecond))
	acked := map[string]bool{}
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			v := strconv.Itoa(i)
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
			acked[v] = true
		}
	}
	produce(0, 60)
	// Every replica of every partition has every record (the ISR is all three).
	waitCluster(t, brokers, "all replicas caught up", func(b *Broker) bool {
		for p := int32(0); p < 3; p++ {
			part := b.parts.Get("replicated", p)
			if part == nil || part.LogEndOffset() != 20 || part.HighWatermark() != 20 {
				return false
			}
		}
		return true
	})

	// Stop the leader of partition 0 (not the controller, so the quorum stays put).
	tm, _ := brokers[0].Controller().Image().Topic("replicated")
	victim := tm.Partitions[0].Leader
	var rest []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == victim {
			stopBroker(t, b)
			continue
		}
		rest = append(rest, b)
	}
	produce(60, 120)

	seen := readDistinct(ctx, t, clusterClient(t, rest, kgo.ConsumeTopics("replicated"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), len(acked))
	for v, n := range seen {
		if n != 1 || !acked[v] {
			t.Fatalf("record %s read %d times (acknowledged: %v)", v, n, acked[v])
		}
	}
}

// liveBrokers is a waitCluster condition: n unfenced brokers in the node's image.
func liveBrokers(n int) func(*Broker) bool {
	return func(b *Broker) bool {
		live := 0
		for _, br := range b.Controller().Image().Brokers() {
			if !br.Fenced {
				live++
			}
		}
		return live == n
	}
}

// TestClusterGroupSurvivesCoordinatorMove: __consumer_offsets is replicated (RF 3 in a
// cluster); when the node coordinating a group stops, the new leader of its partition loads the
// group with its members, and the consumer goes on in the same generation without a rebalance.
func TestClusterGroupSurvivesCoordinatorMove(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three live brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	if res, err := adm.CreateTopic(ctx, 2, 3, nil, "moved"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	var mu sync.Mutex
	assigned := 0
	cons := clusterClient(t, brokers, kgo.ConsumerGroup("stays"), kgo.ConsumeTopics("moved"),
		kgo.HeartbeatInterval(200*time.Millisecond), kgo.SessionTimeout(6*time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			mu.Lock()
			assigned++
			mu.Unlock()
		}))
	stable := func(from *kadm.Client) (kadm.DescribedGroup, bool) {
		gs, err := from.DescribeGroups(ctx, "stays")
		if err != nil {
			return kadm.DescribedGroup{}, false
		}
		g := gs["stays"]
		return g, g.Err == nil && g.State == "Stable" && len(g.Members) == 1
	}
	var before kadm.DescribedGroup
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cons.PollRecords(pctx, 1) // joins and heartbeats
		pcancel()
		g, ok := stable(adm)
		mu.Lock()
		n := assigned
		mu.Unlock()
		if ok && n == 1 {
			before = g
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never stable: %+v, %d assignments", g, n)
		}
	}
	coordinator := before.Coordinator.NodeID
	offsets, _ := brokers[0].Controller().Image().Topic("__consumer_offsets")
	if len(offsets.Partitions[0].Replicas) != 3 {
		t.Fatalf("__consumer_offsets has %d replicas, want 3 in a three-node cluster", len(offsets.Partitions[0].Replicas))
	}
	var rest []*Broker
	for _, b := range brokers {
		if b.cfg.NodeID == coordinator {
			stopBroker(t, b)
			continue
		}
		rest = append(rest, b)
	}
	restAdm := kadm.NewClient(clusterClient(t, rest))
	deadline = time.Now().Add(30 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cons.PollRecords(pctx, 1) // keeps heartbeating, now to the new coordinator
		pcancel()
		g, ok := stable(restAdm)
		if ok && g.Coordinator.NodeID != coordinator {
			if g.Members[0].MemberID != before.Members[0].MemberID {
				t.Fatalf("member %s after the move, %s before: the group rebalanced", g.Members[0].MemberID, before.Members[0].MemberID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group not stable on a new coordinator: %+v", g)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if assigned != 1 {
		t.Fatalf("partitions assigned %d times: the coordinator move caused a rebalance", assigned)
	}
}

// readDistinct consumes with cons until it has read n distinct record values and returns how
// often it read each.
func readDistinct(ctx context.Context, t *testing.T, cons *kgo.Client, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d acknowledged records: %v", len(seen), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	return seen
}
