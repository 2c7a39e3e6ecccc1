package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Clients that are not franz-go against a three-node cluster: librdkafka (kcat,
// confluent-kafka-python) and kafkajs produce with acks=all to a replicated topic
// (replication factor 3, min.insync.replicas=2, three partitions), a partition leader is killed
// (SIGKILL) or stopped (SIGTERM, controlled shutdown) between two halves of the records, and the
// clients must follow the new leaders: every record they had acknowledged is read back, by
// their own consumers and by a fresh franz-go client, exactly once.

const (
	clusterClientPartitions = 3
	// clusterClientRecords is the size of each half, before and after the leader stops.
	clusterClientRecords = 300
)

// startClientCluster starts three nodes that fence a lost broker within seconds and creates
// topic with every partition on all three, min.insync.replicas=2, each with its full ISR.
func startClientCluster(t *testing.T, topic string) (*testCluster, *kadm.Client) {
	t.Helper()
	tc := startTestCluster(t, clusterOptions{nodes: 3, props: fastFailover})
	ctx := testContext(t, time.Minute)
	adm := kadm.NewClient(tc.client())
	mis := "2"
	if resp, err := adm.CreateTopic(ctx, clusterClientPartitions, 3, map[string]*string{"min.insync.replicas": &mis}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
	for p := range int32(clusterClientPartitions) {
		waitFor(t, 30*time.Second, fmt.Sprintf("%s-%d has a leader and a full ISR", topic, p), func() (bool, string) {
			l, isr, err := partitionState(ctx, adm, topic, p)
			return err == nil && l > 0 && len(isr) == 3, fmt.Sprintf("leader %d isr %v err %v", l, isr, err)
		})
	}
	return tc, adm
}

// stopLeader kills (SIGKILL) or stops (SIGTERM, and a clean exit) the leader of partition 0 of
// topic and returns its id and a node that is still running.
func stopLeader(t *testing.T, tc *testCluster, adm *kadm.Client, topic string, kill bool) (stopped, alive int32) {
	t.Helper()
	leader, _, err := partitionState(testContext(t, 10*time.Second), adm, topic, 0)
	if err != nil || leader < 1 {
		t.Fatalf("leader of %s-0: %d, %v", topic, leader, err)
	}
	if kill {
		tc.kill(leader)
	} else {
		tc.stop(leader)
	}
	alive = leader%3 + 1
	t.Logf("%s node %d, the leader of %s-0", map[bool]string{true: "killed", false: "stopped"}[kill], leader, topic)
	return leader, alive
}

// checkReadOnce reads topic from the start with a fresh franz-go client of node alive and fails
// unless every value in acked is there exactly once.
func checkReadOnce(t *testing.T, tc *testCluster, alive int32, topic string, acked []string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range consumeAll(t, tc.node(alive).ClientAddr, topic) {
		seen[string(r.Value)]++
	}
	bad := 0
	for _, v := range acked {
		if seen[v] != 1 {
			if bad++; bad <= 10 {
				t.Errorf("acknowledged %s read %d times by a fresh client", v, seen[v])
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d acknowledged records in all not read exactly once", bad)
	}
}

// values are the record values the failover drivers send: v000000, v000001, ...
func values(from, n int) []string {
	var vs []string
	for i := from; i < from+n; i++ {
		vs = append(vs, fmt.Sprintf("v%06d", i))
	}
	return vs
}

// missing is the values of want not in got, at most 10 of them.
func missing(want, got []string) []string {
	have := map[string]bool{}
	for _, v := range got {
		have[v] = true
	}
	var out []string
	for _, v := range want {
		if !have[v] {
			out = append(out, v)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

// endProcess kills cmd if it still runs (a test that failed half-way) and reaps it.
func endProcess(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// failoverResult is the last line of a failover driver (testdata/confluent.py failover,
// test/kafkajs/failover.js).
type failoverResult struct {
	Acked       []string `json:"acked"`
	Errors      []string `json:"errors"`
	Consumed    []string `json:"consumed"`
	CommitError string   `json:"commit_error"`
}

// runFailoverDriver runs cmd, a failover driver: when it prints PAUSE (the first half of its
// records acknowledged), the leader of partition 0 is killed or stopped and the driver is told
// to go on. It checks that the driver's producer had every record acknowledged, that its group
// consumer read all of them, and that a fresh client reads each exactly once.
func runFailoverDriver(t *testing.T, tc *testCluster, adm *kadm.Client, topic string, kill bool, cmd *exec.Cmd) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() { endProcess(cmd) })
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("%s: the driver ended before %s: %v\nstderr:\n%s", filepath.Base(cmd.Path), what, cmd.ProcessState, stderr.String())
			}
			return l
		case <-time.After(90 * time.Second):
			t.Fatalf("%s: no %s within 90s\nstderr:\n%s", filepath.Base(cmd.Path), what, stderr.String())
		}
		return ""
	}
	if l := next("PAUSE"); l != "PAUSE" {
		t.Fatalf("driver printed %q, want PAUSE\nstderr:\n%s", l, stderr.String())
	}
	_, alive := stopLeader(t, tc, adm, topic, kill)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	last := next("its result")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("driver: %v\nstderr:\n%s", err, stderr.String())
	}
	var r failoverResult
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		t.Fatalf("driver result %q: %v", last, err)
	}
	want := values(0, 2*clusterClientRecords)
	slices.Sort(r.Acked)
	if len(r.Errors) > 0 || !slices.Equal(r.Acked, want) {
		t.Errorf("producer: %d of %d records acknowledged (missing %v), errors %v", len(r.Acked), len(want), missing(want, r.Acked), r.Errors)
	}
	if m := missing(r.Acked, r.Consumed); len(m) > 0 {
		t.Errorf("the group consumer read %d records and not all acknowledged ones: missing %v", len(r.Consumed), m)
	}
	if r.CommitError != "" {
		t.Errorf("the group consumer's commit after the failover: %s", r.CommitError)
	}
	checkReadOnce(t, tc, alive, topic, r.Acked)
	t.Logf("%d acknowledged, %d read by the group consumer (duplicates included)", len(r.Acked), len(r.Consumed))
	if t.Failed() || testing.Verbose() {
		t.Logf("driver stderr:\n%s", indent(stderr.String(), "  driver| "))
	}
}

// TestClusterKcatFailover: kcat (librdkafka) produces keyed records with acks=all and
// idempotence from stdin; the leader of partition 0 is killed with SIGKILL while it produces; kcat goes on
// to the new leader and exits 0; kcat then reads every record from the remaining two nodes, and
// so does a fresh franz-go client, each record exactly once.
func TestClusterKcatFailover(t *testing.T) {
	kcat := needKcat(t)
	const topic = "kcat-failover"
	tc, adm := startClientCluster(t, topic)
	ctx := testContext(t, 2*time.Minute)

	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", tc.Bootstrap(), "-t", topic, "-K", ":",
		"-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=60000", "-X", "linger.ms=5")
	cmd.Env = childEnv()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { endProcess(cmd) })
	write := func(vs []string) {
		t.Helper()
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "k%s:%s\n", v, v)
		}
		if _, err := io.WriteString(stdin, b.String()); err != nil {
			t.Fatalf("write to kcat: %v\n%s", err, stderr.String())
		}
	}
	first := values(0, clusterClientRecords)
	write(first)
	// kcat reads its input in 4 KiB blocks and holds back a partial one, so the kill comes while
	// it is producing: once the high watermarks add up to two thirds of the first half.
	waitFor(t, 30*time.Second, "kcat's first records are committed", func() (bool, string) {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum >= 2*clusterClientRecords/3, fmt.Sprintf("%d of %d", sum, 2*clusterClientRecords/3)
	})
	_, alive := stopLeader(t, tc, adm, topic, true)
	write(values(clusterClientRecords, clusterClientRecords))
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kcat -P through the leader's kill: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Delivery failed") {
		t.Errorf("kcat reported failed deliveries:\n%s", stderr.String())
	}

	all := values(0, 2*clusterClientRecords)
	out := mustRun(t, "", kcat, "-C", "-b", tc.Bootstrap(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", `%s\n`)
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("kcat -C read %d records, want the %d produced once each (missing %v)", len(got), len(all), missing(all, got))
	}
	checkReadOnce(t, tc, alive, topic, all)
}

// TestClusterConfluentFailover: confluent-kafka-python, an acks=all idempotent producer and a
// consumer group member, through a SIGKILL of the leader of partition 0 (testdata/confluent.py
// failover): every record is acknowledged, the group reads all of them and commits, and a fresh
// client reads each exactly once.
func TestClusterConfluentFailover(t *testing.T) {
	needConfluent(t)
	const topic = "confluent-failover"
	tc, adm := startClientCluster(t, topic)
	ctx := testContext(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, python, "testdata/confluent.py", "failover", tc.Bootstrap(), topic, "confluent-failover-group",
		fmt.Sprint(clusterClientRecords))
	cmd.Env = childEnv()
	runFailoverDriver(t, tc, adm, topic, true, cmd)
}

// TestClusterKafkaJSFailover: kafkajs, an idempotent acks=-1 producer and a consumer group
// member, through a SIGTERM (controlled shutdown) of the leader of partition 0
// (test/kafkajs/failover.js): every record is acknowledged, the group reads all of them, and a
// fresh client reads each exactly once. kafkajs' consumer may crash and restart itself on the way
// (KafkaJSNumberOfRetriesExceeded: ECONNREFUSED to the stopped node, its consumer retries being
// spent before it refreshes metadata, as against Kafka: tulios/kafkajs#1439); it then re-reads from
// its committed offsets, so its reads include duplicates and only the fresh client's count once.
func TestClusterKafkaJSFailover(t *testing.T) {
	node, dir := kafkajsSuite(t)
	const topic = "kafkajs-failover"
	tc, adm := startClientCluster(t, topic)
	ctx := testContext(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, "failover.js")
	cmd.Dir = dir
	cmd.Env = childEnv("BOOTSTRAP="+tc.Bootstrap(), "TOPIC="+topic, "GROUP=kafkajs-failover-group", fmt.Sprintf("N=%d", clusterClientRecords))
	runFailoverDriver(t, tc, adm, topic, false, cmd)
}
