package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The smoke suites of two clients that share no code with librdkafka, the Java client or
// franz-go: kafkajs (test/kafkajs) and kafka-python (testdata/kafka_python.py). Each prints a line
// per check and 'N passed, N failed', and exits non-zero when a check failed.

// TestKafkaJS runs test/kafkajs/smoke.js (kafkajs 2.2.4, pinned by its package-lock.json) against
// the built binary: topic admin, an idempotent acks=-1 producer, two group members splitting four
// partitions, committed offsets, describeGroups, seek, deleteTopics.
func TestKafkaJS(t *testing.T) {
	node, dir := kafkajsSuite(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := startBroker(t)
	cmd := exec.CommandContext(ctx, node, "smoke.js")
	cmd.Dir = dir
	cmd.Env = childEnv("BOOTSTRAP=" + b.Addr)
	out, err := cmd.CombinedOutput()
	t.Logf("kafkajs:\n%s", indent(string(out), "  kafkajs| "))
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("kafkajs smoke suite failed: %v", err)
	}
}

// kafkajsSuite returns node's path and a temporary copy of test/kafkajs (so node_modules never
// lands in the work tree) with its pinned packages installed by npm ci.
func kafkajsSuite(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (%v); install the clients these tests drive: %s", err, installHint)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is not installed (%v); install the clients these tests drive: %s", err, installHint)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "smoke.js", "failover.js"} {
		b, err := os.ReadFile(filepath.Join(root, "test", "kafkajs", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	install.Env = childEnv()
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in a copy of test/kafkajs: %v\n%s", err, out)
	}
	return node, dir
}

// TestKafkaPython runs testdata/kafka_python.py (Debian's python3-kafka) against the built
// binary: admin, acks=all keyed produce, a group that commits and resumes, offsets_for_times,
// assign and seek.
func TestKafkaPython(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "-c", "import kafka").CombinedOutput(); err != nil {
		t.Fatalf("kafka-python is not usable (%v: %s); install the clients these tests drive: %s", err, strings.TrimSpace(string(out)), installHint)
	}
	b := startBroker(t)
	stdout, stderr, err := run(t, "", python, "testdata/kafka_python.py", b.Addr)
	t.Logf("kafka-python:\n%s", indent(stdout+stderr, "  kafka-python| "))
	if err != nil || !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("kafka-python smoke suite failed: %v", err)
	}
}
