package integration

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transaction tests (txn_*_test.go) run against one of two servers, chosen by
// MOLDAU_TXN_TARGET:
//
//	moldau  (the default) the moldau binary under test (single nodes by startBroker, clusters
//	        by startTestCluster);
//	kafka   Apache Kafka 4.4 in KRaft mode, run from the jars bench/compare/kafka resolves
//	        (Maven), with the same settings: this proves the test itself, so that a failure
//	        against Moldau is Moldau's.
//
// Both targets get the same server settings (Kafka's keys), from the test.

// txnTarget is MOLDAU_TXN_TARGET, moldau when unset.
func txnTarget(t *testing.T) string {
	t.Helper()
	switch v := os.Getenv("MOLDAU_TXN_TARGET"); v {
	case "moldau", "kafka":
		return v
	case "":
		return "moldau"
	default:
		t.Fatalf("MOLDAU_TXN_TARGET=%q: want moldau or kafka", v)
	}
	return ""
}

// txnCluster is a running cluster of the transaction tests, owned by one test.
type txnCluster interface {
	bootstrap() []string
	// kill sends SIGKILL to node id and waits for it to exit.
	kill(id int32)
	// restart starts node id again on its data and waits until it serves.
	restart(id int32)
}

// startTxnCluster starts nodes nodes of the target with props (Kafka's keys) on every node.
func startTxnCluster(t *testing.T, target string, nodes int, props map[string]string) txnCluster {
	t.Helper()
	if target == "kafka" {
		return startKafkaPeer(t, nodes, props)
	}
	return moldauTxnCluster{startTestCluster(t, clusterOptions{nodes: nodes, props: props})}
}

type moldauTxnCluster struct{ *testCluster }

func (c moldauTxnCluster) bootstrap() []string { return strings.Split(c.Bootstrap(), ",") }
func (c moldauTxnCluster) kill(id int32)       { c.testCluster.kill(id) }
func (c moldauTxnCluster) restart(id int32)    { c.testCluster.restart(id) }

// kafkaPeer is a KRaft cluster of Apache Kafka nodes (each broker and controller), every node
// its own JVM with its own data dir under the test's temporary directory.
type kafkaPeer struct {
	t     *testing.T
	cp    string
	nodes []*kafkaNode
}

type kafkaNode struct {
	id           int32
	client, ctrl string
	dir          string
	mu           sync.Mutex
	cmd          *exec.Cmd
	exited       chan struct{}
}

// kafkaClasspath resolves bench/compare/kafka's runtime classpath (kafka_2.13 4.4 and its
// dependencies) with Maven, once per pom.xml change, as bench/compare does.
func kafkaClasspath(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bench", "compare", "kafka")
	cpFile := filepath.Join(dir, "target", "classpath.txt")
	pom, err := os.Stat(filepath.Join(dir, "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(cpFile); err != nil || st.ModTime().Before(pom.ModTime()) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-Dstyle.color=never", "dependency:build-classpath",
			"-Dmdep.outputFile=target/classpath.txt", "-Dmdep.includeScope=runtime")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("resolve Kafka's classpath in %s: %v\n%s", dir, err, out)
		}
	}
	b, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const kafkaPeerLog4j = `status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
`

// startKafkaPeer formats and starts n Kafka nodes with props and waits until every node lists
// n brokers.
func startKafkaPeer(t *testing.T, n int, props map[string]string) *kafkaPeer {
	t.Helper()
	kp := &kafkaPeer{t: t, cp: kafkaClasspath(t)}
	base := freeBasePort(t, n)
	dir := t.TempDir()
	var voters []string
	for i := range n {
		kn := &kafkaNode{
			id:     int32(i + 1),
			client: net.JoinHostPort("127.0.0.1", strconv.Itoa(base+100*i)),
			ctrl:   net.JoinHostPort("127.0.0.1", strconv.Itoa(base+100*i+1)),
			dir:    filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
		}
		voters = append(voters, fmt.Sprintf("%d@%s", kn.id, kn.ctrl))
		kp.nodes = append(kp.nodes, kn)
	}
	t.Cleanup(kp.cleanup)
	var id [16]byte
	for {
		_, _ = rand.Read(id[:])
		if s := base64.RawURLEncoding.EncodeToString(id[:]); s[0] != '-' {
			break
		}
	}
	clusterID := base64.RawURLEncoding.EncodeToString(id[:])
	for _, kn := range kp.nodes {
		p := map[string]string{
			"node.id":                        strconv.Itoa(int(kn.id)),
			"process.roles":                  "broker,controller",
			"controller.quorum.voters":       strings.Join(voters, ","),
			"listeners":                      "PLAINTEXT://" + kn.client + ",CONTROLLER://" + kn.ctrl,
			"advertised.listeners":           "PLAINTEXT://" + kn.client,
			"controller.listener.names":      "CONTROLLER",
			"inter.broker.listener.name":     "PLAINTEXT",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"log.dirs":                       filepath.Join(kn.dir, "data"),
		}
		maps.Copy(p, clusterDefaults)
		if n < 3 {
			for _, k := range []string{"offsets.topic.replication.factor", "transaction.state.log.replication.factor",
				"transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr"} {
				p[k] = strconv.Itoa(n)
			}
		}
		maps.Copy(p, props)
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(p)) {
			fmt.Fprintf(&b, "%s=%s\n", k, p[k])
		}
		if err := os.MkdirAll(kn.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kn.dir, "server.properties"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(kn.dir, "log4j2.properties"), []byte(kafkaPeerLog4j), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "java", "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
			"-Dlog4j2.configurationFile="+filepath.Join(kn.dir, "log4j2.properties"), "-cp", kp.cp,
			"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", filepath.Join(kn.dir, "server.properties")).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("format Kafka node %d: %v\n%s", kn.id, err, out)
		}
	}
	for _, kn := range kp.nodes {
		kp.launch(kn)
	}
	for _, kn := range kp.nodes {
		kp.waitServing(kn)
	}
	return kp
}

func (kp *kafkaPeer) launch(kn *kafkaNode) {
	kp.t.Helper()
	kn.mu.Lock()
	defer kn.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(kn.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		kp.t.Fatal(err)
	}
	fmt.Fprintf(f, "---- %s start\n", time.Now().Format("15:04:05.000"))
	cmd := exec.Command("java", "-Xmx512m", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(kn.dir, "log4j2.properties"), "-cp", kp.cp,
		"kafka.Kafka", filepath.Join(kn.dir, "server.properties"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		kp.t.Fatalf("start Kafka node %d: %v", kn.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	kn.cmd, kn.exited = cmd, exited
}

// waitServing waits until node kn answers Metadata with every node of the cluster registered.
func (kp *kafkaPeer) waitServing(kn *kafkaNode) {
	kp.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kn.client), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		kp.t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		cancel()
		if err == nil && len(resp.Brokers) == len(kp.nodes) {
			return
		}
		if err == nil {
			err = fmt.Errorf("metadata lists %d brokers", len(resp.Brokers))
		}
		select {
		case <-kn.exited:
			kp.t.Fatalf("Kafka node %d exited before serving:\n%s", kn.id, lastLines(kp.output(kn), 40))
		default:
		}
		if time.Now().After(deadline) {
			kp.t.Fatalf("Kafka node %d not serving within 90s: %v", kn.id, err)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of the readiness check
	}
}

func (kp *kafkaPeer) node(id int32) *kafkaNode {
	kp.t.Helper()
	if id < 1 || int(id) > len(kp.nodes) {
		kp.t.Fatalf("no Kafka node %d", id)
	}
	return kp.nodes[id-1]
}

func (kp *kafkaPeer) bootstrap() []string {
	var out []string
	for _, kn := range kp.nodes {
		out = append(out, kn.client)
	}
	return out
}

func (kp *kafkaPeer) kill(id int32) {
	kp.t.Helper()
	kn := kp.node(id)
	kn.mu.Lock()
	cmd, exited := kn.cmd, kn.exited
	kn.mu.Unlock()
	if cmd == nil {
		kp.t.Fatalf("kill Kafka node %d: not running", id)
	}
	_ = cmd.Process.Kill()
	<-exited
}

func (kp *kafkaPeer) restart(id int32) {
	kp.t.Helper()
	kn := kp.node(id)
	select {
	case <-kn.exited:
	default:
		kp.t.Fatalf("restart Kafka node %d: still running", id)
	}
	kp.launch(kn)
	kp.waitServing(kn)
}

func (kp *kafkaPeer) output(kn *kafkaNode) string {
	b, _ := os.ReadFile(filepath.Join(kn.dir, "server.log"))
	return string(b)
}

func (kp *kafkaPeer) logs() string {
	var b strings.Builder
	for _, kn := range kp.nodes {
		fmt.Fprintf(&b, "Kafka node %d (%s):\n%s\n", kn.id, kn.client, indent(lastLines(kp.output(kn), 80), fmt.Sprintf("  kafka%d| ", kn.id)))
	}
	return b.String()
}

func (kp *kafkaPeer) cleanup() {
	for _, kn := range kp.nodes {
		kn.mu.Lock()
		cmd, exited := kn.cmd, kn.exited
		kn.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Kill()
		<-exited
	}
	if kp.t.Failed() {
		kp.t.Log(kp.logs())
	}
}

// startTxnNode starts one node of the target with props (Kafka's keys): `moldau server` alone,
// as a user starts it, or a one-node Kafka cluster. It returns the node's client address.
func startTxnNode(t *testing.T, target string, props map[string]string) string {
	t.Helper()
	if target == "kafka" {
		return startKafkaPeer(t, 1, props).bootstrap()[0]
	}
	var args []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		args = append(args, "--override", k+"="+props[k])
	}
	return startBroker(t, args...).Addr
}
