package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Clusters started the way a user starts one without Docker: scripts/cluster-local.sh, whose
// settings are docker-compose(.cluster).yml's (test/deploy checks that). Each test gets its own
// directory and a free block of ports; the script's stop ends the nodes when the test ends.

// localCluster is a cluster run by scripts/cluster-local.sh for one test.
type localCluster struct {
	t      *testing.T
	script string
	dir    string
	base   int
	nodes  int
	// env is added to every run of the script (KAFKA_* settings for every node).
	env []string
}

// scriptPath is scripts/cluster-local.sh of this repository.
func scriptPath(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "scripts", "cluster-local.sh")
}

// freeBasePort finds a base port for n (at most 4) nodes whose four ports each
// (base+100*(i-1) + 0, 1, 2, and 3 for http.listener) nothing listens on, below Linux's ephemeral range (32768 and up), so
// a port the kernel hands another test's client or listener cannot take one of them meanwhile.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	if n > 4 {
		t.Fatalf("freeBasePort: %d nodes, at most 4", n)
	}
	for range 50 {
		base := 20000 + rand.IntN(120)*100 + rand.IntN(90) // base+3 stays below the next node's base
		ok := true
		var held []net.Listener
		for i := range n {
			for off := range 4 {
				ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+100*i+off)))
				if err != nil {
					ok = false
					break
				}
				held = append(held, ln)
			}
		}
		for _, ln := range held {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free block of ports for the cluster")
	return 0
}

// startLocalCluster runs `cluster-local.sh start n` with bin, extra KAFKA_* settings in env, and
// stops the cluster when the test ends (printing every node's log if the test failed).
func startLocalCluster(t *testing.T, n int, bin string, env ...string) *localCluster {
	t.Helper()
	lc := &localCluster{t: t, script: scriptPath(t), dir: t.TempDir(), base: freeBasePort(t, n), nodes: n, env: env}
	t.Cleanup(lc.cleanup)
	lc.mustRun(bin, "start", strconv.Itoa(n))
	return lc
}

// run runs the script with args and the binary bin ("" for the test's moldau), returning its
// combined output and its error.
func (lc *localCluster) run(bin string, args ...string) (string, error) {
	if bin == "" {
		bin = moldauBin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{lc.script}, args...)...)
	cmd.Env = childEnv(append([]string{
		"MOLDAU_BIN=" + bin,
		"MOLDAU_CLUSTER_DIR=" + lc.dir,
		"MOLDAU_BASE_PORT=" + strconv.Itoa(lc.base),
		"MOLDAU_READY_TIMEOUT=" + strconv.Itoa(int(2*brokerTimeout/time.Second)),
	}, lc.env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (lc *localCluster) mustRun(bin string, args ...string) string {
	lc.t.Helper()
	out, err := lc.run(bin, args...)
	if err != nil {
		lc.t.Fatalf("cluster-local.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lc.t.Logf("cluster-local.sh %s:\n%s", strings.Join(args, " "), indent(out, "  | "))
	return out
}

// clientAddr is node id's client listener.
func (lc *localCluster) clientAddr(id int32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(lc.base+100*int(id-1)))
}

func (lc *localCluster) bootstrap() []string {
	var out []string
	for id := int32(1); id <= int32(lc.nodes); id++ {
		out = append(out, lc.clientAddr(id))
	}
	return out
}

// pid is node id's running process as the script recorded it.
func (lc *localCluster) pid(id int32) (int, error) {
	b, err := os.ReadFile(filepath.Join(lc.dir, fmt.Sprintf("node-%d", id), "server.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// binaryOf is the executable node id runs now.
func (lc *localCluster) binaryOf(id int32) (string, error) {
	pid, err := lc.pid(id)
	if err != nil {
		return "", err
	}
	return os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
}

func (lc *localCluster) log(id int32) string {
	b, err := os.ReadFile(filepath.Join(lc.dir, fmt.Sprintf("node-%d", id), "server.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

func (lc *localCluster) cleanup() {
	if out, err := lc.run("", "stop"); err != nil {
		lc.t.Errorf("cluster-local.sh stop: %v\n%s", err, out)
	}
	for id := int32(1); id <= int32(lc.nodes); id++ {
		log := lc.log(id)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "handler panic"} {
			if strings.Contains(log, bad) {
				lc.t.Errorf("node %d's log contains %q", id, bad)
			}
		}
		if lc.t.Failed() {
			lc.t.Logf("node %d log (%s):\n%s", id, lc.clientAddr(id), indent(lastLines(log, 150), fmt.Sprintf("  node%d| ", id)))
		}
	}
}

func lastLines(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// client is a franz-go client of every node, closed when the test ends.
func (lc *localCluster) client(opts ...kgo.Opt) *kgo.Client {
	lc.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(lc.bootstrap()...), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		lc.t.Fatal(err)
	}
	lc.t.Cleanup(cl.Close)
	return cl
}

// underReplicated asks node id itself for the metadata of every topic and lists the partitions
// without a leader or with an ISR smaller than their replicas ("" when there are none).
func underReplicated(ctx context.Context, cl *kgo.Client, id int32, topics ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest() // nil topics: all of them
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		return "", fmt.Errorf("metadata from node %d: %w", id, err)
	}
	var bad []string
	for _, want := range topics {
		if !slices.ContainsFunc(resp.Topics, func(tp kmsg.MetadataResponseTopic) bool { return tp.Topic != nil && *tp.Topic == want }) {
			bad = append(bad, want+": not in this node's metadata yet")
		}
	}
	for _, tp := range resp.Topics {
		if err := kerr.ErrorForCode(tp.ErrorCode); err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", *tp.Topic, err))
			continue
		}
		for _, p := range tp.Partitions {
			if p.Leader < 0 || len(p.ISR) < len(p.Replicas) {
				bad = append(bad, fmt.Sprintf("%s-%d leader %d replicas %v isr %v", *tp.Topic, p.Partition, p.Leader, p.Replicas, p.ISR))
			}
		}
	}
	slices.Sort(bad)
	return strings.Join(bad, "; "), nil
}

// waitFullyReplicated waits until every node reports topics (at least) and every partition led
// and fully in sync.
func (lc *localCluster) waitFullyReplicated(ctx context.Context, cl *kgo.Client, timeout time.Duration, topics ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		why := ""
		for id := int32(1); id <= int32(lc.nodes) && why == ""; id++ {
			bad, err := underReplicated(ctx, cl, id, topics...)
			switch {
			case err != nil:
				why = err.Error()
			case bad != "":
				why = fmt.Sprintf("node %d: %s", id, bad)
			}
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every partition fully replicated within %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%s)", ctx.Err(), why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterLocalScript: cluster-local.sh as a user runs it: start 3, status (every node up,
// then the cluster info), the kafka-* links it makes, a node stopped (status says so, exit 3), a
// second start brings back only that node, the data survives a full stop and start, and stop is
// idempotent.
func TestClusterLocalScript(t *testing.T) {
	lc := startLocalCluster(t, 3, "")
	out := lc.mustRun("", "status")
	for id := int32(1); id <= 3; id++ {
		if want := fmt.Sprintf("node %d  up ", id); !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	// moldau cluster info: the compose files' cluster id, and all three nodes active (a node may
	// still be fenced for a moment after its start).
	active := regexp.MustCompile(`(?m)^\s+[123]\s+broker,controller\s+127\.0\.0\.1:\d+.*\sactive\b`)
	waitFor(t, 30*time.Second, "status shows the cluster info with 3 active nodes", func() (bool, string) {
		if !strings.Contains(out, "Cluster ID: moldau-local-cluster-1") || !strings.Contains(out, "Nodes: 3") ||
			len(active.FindAllString(out, -1)) != 3 {
			why := out
			out, _ = lc.run("", "status")
			return false, why
		}
		return true, ""
	})

	ctx := testContext(t, 2*time.Minute)
	topics := filepath.Join(lc.dir, "bin", "kafka-topics")
	run := func(args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, clientTimeout)
		defer cancel()
		b, err := exec.CommandContext(cctx, topics, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kafka-topics %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	run("--bootstrap-server", strings.Join(lc.bootstrap(), ","), "--create", "--topic", "kept", "--partitions", "3")
	cl := lc.client()
	if err := lc.waitFullyReplicated(ctx, cl, 30*time.Second, "kept"); err != nil {
		t.Fatal(err)
	}
	// The compose files' defaults: three replicas, min.insync.replicas 2.
	desc := run("--bootstrap-server", lc.clientAddr(2), "--describe", "--topic", "kept")
	if !strings.Contains(desc, "ReplicationFactor: 3") || !strings.Contains(desc, "min.insync.replicas=2") {
		t.Errorf("kafka-topics --describe: want ReplicationFactor: 3 and min.insync.replicas=2 from the cluster's defaults:\n%s", desc)
	}

	lc.mustRun("", "stop", "2")
	out, err := lc.run("", "status")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(out, "node 2  down") {
		t.Errorf("status with node 2 stopped: %v, want exit status 3 and node 2 down:\n%s", err, out)
	}
	out = lc.mustRun("", "start", "3")
	if !strings.Contains(out, "node 1 already running") || !strings.Contains(out, "node 2 ready") {
		t.Errorf("start with node 2 stopped: want nodes 1 and 3 left running and node 2 started:\n%s", out)
	}

	lc.mustRun("", "stop")
	if out := lc.mustRun("", "stop"); strings.Count(out, "already stopped") != 3 {
		t.Errorf("a second stop: want every node already stopped:\n%s", out)
	}
	lc.mustRun("", "start", "3")
	cl2 := lc.client()
	if err := lc.waitFullyReplicated(ctx, cl2, 30*time.Second, "kept"); err != nil {
		t.Fatal(err)
	}
	if desc := run("--bootstrap-server", lc.clientAddr(3), "--describe", "--topic", "kept"); !strings.Contains(desc, "PartitionCount: 3") {
		t.Errorf("after stop and start the topic is gone or changed:\n%s", desc)
	}
}

// TestClusterLocalSingleNode: `cluster-local.sh start 1`, docker-compose.yml's settings as a
// process: a topic gets the file's defaults (3 partitions, one replica), and a consumer group
// commits its offsets (__consumer_offsets with one replica) and reads back what was produced.
func TestClusterLocalSingleNode(t *testing.T) {
	lc := startLocalCluster(t, 1, "")
	ctx := testContext(t, time.Minute)
	out := lc.mustTool(ctx, "kafka-topics", "--bootstrap-server", lc.clientAddr(1), "--create", "--topic", "single")
	if !strings.Contains(out, "Created topic single.") {
		t.Fatalf("create: %s", out)
	}
	desc := lc.mustTool(ctx, "kafka-topics", "--bootstrap-server", lc.clientAddr(1), "--describe", "--topic", "single")
	if !strings.Contains(desc, "PartitionCount: 3\tReplicationFactor: 1") {
		t.Errorf("describe: want docker-compose.yml's 3 partitions and 1 replica:\n%s", desc)
	}
	prod := lc.client(kgo.DefaultProduceTopic("single"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 10 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := lc.client(kgo.ConsumeTopics("single"), kgo.ConsumerGroup("g"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var got int
	for got < 10 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of 10 records: %v", got, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit the group's offsets: %v", err)
	}
	groups := lc.mustTool(ctx, "kafka-consumer-groups", "--bootstrap-server", lc.clientAddr(1), "--describe", "--group", "g")
	committed := 0
	for _, m := range regexp.MustCompile(`(?m)^g\s+single\s+\d+\s+(\d+)\s`).FindAllStringSubmatch(groups, -1) {
		n, _ := strconv.Atoi(m[1])
		committed += n
	}
	if committed != 10 {
		t.Errorf("kafka-consumer-groups --describe shows %d committed records of single, want 10:\n%s", committed, groups)
	}
}
