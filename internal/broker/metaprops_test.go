package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metaprops"
	"github.com/moldau/moldau/internal/vfs"
)

// TestMetaPropertiesWrittenOnFirstStart: a fresh node with no cluster.id writes, in every log
// dir, a meta.properties with its node id and the cluster id the metadata quorum made; a
// restart reads them back and keeps that id.
func TestMetaPropertiesWrittenOnFirstStart(t *testing.T) {
	root := t.TempDir()
	dirs := filepath.Join(root, "a") + "," + filepath.Join(root, "b")
	b := testBroker(t, filepath.Join(root, "a"), "log.dirs", dirs, "node.id", "3")
	id := b.Controller().Image().ClusterID()
	stopBroker(t, b)
	if id == "" {
		t.Fatal("no cluster id after start")
	}
	e, err := metaprops.Load(vfs.Default, strings.Split(dirs, ","))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Empty()) != 0 {
		t.Fatalf("dirs without meta.properties: %v", e.Empty())
	}
	for _, d := range e.Dirs() {
		if p, _ := e.Props(d); p.Version != 1 || p.NodeID != 3 || p.ClusterID != id || p.DirectoryID == "" {
			t.Errorf("%s: %+v, want node 3 of cluster %s", d, p, id)
		}
	}
	b = testBroker(t, filepath.Join(root, "a"), "log.dirs", dirs, "node.id", "3")
	defer stopBroker(t, b)
	if got := b.Controller().Image().ClusterID(); got != id {
		t.Errorf("cluster id after restart %q, want %q", got, id)
	}
}

// TestMetaPropertiesMismatchRefusesStart: data of another node id or another cluster id is
// never opened: Start fails naming the file and both ids, and leaves the dir as it was.
func TestMetaPropertiesMismatchRefusesStart(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	id := b.Controller().Image().ClusterID()
	stopBroker(t, b)
	before, err := os.ReadFile(metaprops.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	path := metaprops.Path(dir)
	for _, tt := range []struct {
		overrides []string
		want      string
	}{
		{[]string{"node.id", "2"}, "log dirs: Stored node id 1 doesn't match previous node id 2 in " + path + ". If you moved your data, make sure your configured node id matches."},
		{[]string{"cluster.id", "otherCluster"}, "log dirs: Invalid cluster.id in: " + path + ". Expected otherCluster, but read " + id},
	} {
		_, err := Start(context.Background(), testConfig(t, dir, tt.overrides...), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("start with %v: %v\nwant %s", tt.overrides, err, tt.want)
		}
	}
	after, err := os.ReadFile(metaprops.Path(dir))
	if err != nil || string(after) != string(before) {
		t.Errorf("meta.properties changed by a refused start: %v", err)
	}
	b = testBroker(t, dir, "cluster.id", id) // the right ids still start
	stopBroker(t, b)
}

// TestFormattedDirGivesClusterID: a dir formatted as `kafka-storage format -t ID` does makes the
// node's cluster that one; a quorum that already holds another id is refused.
func TestFormattedDirGivesClusterID(t *testing.T) {
	dir := t.TempDir()
	const id = "pT4sbvQ2TZKMPG4rsqDyOQ"
	if err := metaprops.Write(vfs.Default, dir, metaprops.Props{NodeID: 1, ClusterID: id, DirectoryID: metaprops.RandomUUID()}); err != nil {
		t.Fatal(err)
	}
	b := testBroker(t, dir)
	if got := b.Controller().Image().ClusterID(); got != id {
		t.Errorf("cluster id %q, want the formatted %q", got, id)
	}
	stopBroker(t, b)

	// Data whose quorum has another cluster's id than its meta.properties.
	if err := metaprops.Write(vfs.Default, dir, metaprops.Props{NodeID: 1, ClusterID: "qT4sbvQ2TZKMPG4rsqDyOQ", DirectoryID: metaprops.RandomUUID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), testConfig(t, dir), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "cluster id mismatch") {
		t.Errorf("start on data of another cluster: %v", err)
	}
}

// freeLoopbackPort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestKafka4ServerPropertiesStartsANode: Apache Kafka 4's shipped config/server.properties
// (combined roles, controller.quorum.bootstrap.servers=localhost:9093, CONTROLLER in
// advertised.listeners) starts a node: a single voter whose raft runs on its CONTROLLER
// listener, serving clients on PLAINTEXT. Only the ports (free loopback ports instead of 9092
// and 9093, all interfaces bound to 127.0.0.1) and the log dir are replaced in the file's text.
func TestKafka4ServerPropertiesStartsANode(t *testing.T) {
	raw, err := os.ReadFile("../config/testdata/kafka4-server.properties")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "kraft-combined-logs")
	clientPort, ctl := strconv.Itoa(freeLoopbackPort(t)), strconv.Itoa(freeLoopbackPort(t))
	text := string(raw)
	for _, s := range []string{"controller.quorum.bootstrap.servers=localhost:9093", "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
		"advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093", "log.dirs=/tmp/kraft-combined-logs"} {
		if !strings.Contains(text, "\n"+s+"\n") {
			t.Fatalf("Kafka's file has no line %q", s)
		}
	}
	text = strings.NewReplacer("localhost:9092", "127.0.0.1:"+clientPort, "://:9092", "://127.0.0.1:"+clientPort,
		"localhost:9093", "127.0.0.1:"+ctl, "://:9093", "://127.0.0.1:"+ctl, "/tmp/kraft-combined-logs", dir).Replace(text)
	props, err := config.ParseProperties(text)
	if err != nil {
		t.Fatal(err)
	}
	props["http.listener"] = "127.0.0.1:0" // not the default 8080
	cfg, err := config.Build(props)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stopBroker(t, b)
	if id, addr, ok := b.Controller().Node().Leader(); !ok || id != 1 || addr != "127.0.0.1:"+ctl {
		t.Errorf("raft leader %d at %q (%v), want node 1 at its CONTROLLER listener 127.0.0.1:%s", id, addr, ok, ctl)
	}
	if b.Addr().String() != "127.0.0.1:"+clientPort {
		t.Errorf("client listener %s", b.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:"+clientPort), kgo.DefaultProduceTopic("quickstart-events"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, "quickstart-events")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("quickstart-events", 0); !ok || o.Offset != 1 {
		t.Errorf("end offset %+v, want 1", o)
	}
	if p, err := metaprops.Read(vfs.Default, dir); err != nil || p.NodeID != 1 || p.ClusterID != b.Controller().Image().ClusterID() {
		t.Errorf("meta.properties %+v, %v", p, err)
	}
}

// TestBrokerRackReachesClients: broker.rack is what Metadata and DescribeCluster report, and a
// restart with another rack updates it.
func TestBrokerRackReachesClients(t *testing.T) {
	dir := t.TempDir()
	for _, rack := range []string{"rack-a", "rack-b"} {
		b := testBroker(t, dir, "broker.rack", rack)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		brokers, err := kadm.NewClient(client(t, b)).ListBrokers(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(brokers) != 1 || brokers[0].Rack == nil || *brokers[0].Rack != rack {
			t.Errorf("brokers %+v, want one in %s", brokers, rack)
		}
		stopBroker(t, b)
	}
}

// TestClusterKeysInDescribeConfigs: the cluster keys are in DescribeConfigs with Kafka's
// defaults; offsets.topic.replication.factor shows the key's value (3) while a node alone
// creates __consumer_offsets with 1.
func TestClusterKeysInDescribeConfigs(t *testing.T) {
	b := testBroker(t, t.TempDir(), "broker.rack", "r1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	rcs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("1", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		got[c.Key] = c.MaybeValue()
	}
	for key, want := range map[string]string{
		"process.roles": "broker,controller", "broker.session.timeout.ms": "9000", "broker.heartbeat.interval.ms": "2000",
		"replica.lag.time.max.ms": "30000", "replica.fetch.wait.max.ms": "500", "replica.fetch.max.bytes": "1048576",
		"replica.fetch.backoff.ms": "1000", "unclean.leader.election.enable": "false", "controlled.shutdown.enable": "true",
		"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "3", "min.insync.replicas": "1",
		"default.replication.factor": "1", "inter.broker.listener.name": "PLAINTEXT", "broker.rack": "r1",
	} {
		if got[key] != want {
			t.Errorf("DescribeConfigs %s = %q, want %q", key, got[key], want)
		}
	}
	td, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if len(td["__consumer_offsets"].Partitions) != 3 {
		t.Fatalf("__consumer_offsets: %+v", td["__consumer_offsets"])
	}
	for _, p := range td["__consumer_offsets"].Partitions {
		if len(p.Replicas) != 1 {
			t.Fatalf("__consumer_offsets partition %d has replicas %v, want 1 on a node alone", p.Partition, p.Replicas)
		}
	}
}

// TestControllerOnlyRefused: until a controller-only node is wired, Start says so.
func TestControllerOnlyRefused(t *testing.T) {
	cfg, err := config.Build(map[string]string{"process.roles": "controller", "node.id": "1", "listeners": "CONTROLLER://127.0.0.1:0",
		"controller.listener.names": "CONTROLLER", "controller.quorum.voters": "1@127.0.0.1:19093", "log.dirs": t.TempDir(), "http.listener": ""})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "process.roles=controller is not supported yet") {
		t.Errorf("Start of a controller-only node: %v", err)
	}
}
