package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestKafkaToolNames: the binary symlinked as kafka-topics, kafka-console-producer and
// kafka-console-consumer behaves as Kafka's scripts do, output included.
func TestKafkaToolNames(t *testing.T) {
	kcat := needKcat(t)
	bin := t.TempDir()
	tool := func(name string) string { return filepath.Join(bin, name) }
	for _, name := range []string{"kafka-topics", "kafka-topics.sh", "kafka-console-producer", "kafka-console-consumer"} {
		if err := os.Symlink(moldauBin, tool(name)); err != nil {
			t.Fatal(err)
		}
	}
	b := startBroker(t)
	bs := []string{"--bootstrap-server", b.Addr}

	out := mustRun(t, "", tool("kafka-topics"), append([]string{"--create", "--topic", "topic1", "--replication-factor", "1", "--partitions", "1"}, bs...)...)
	if out != "Created topic topic1.\n" {
		t.Errorf("kafka-topics --create printed %q, want %q", out, "Created topic topic1.\n")
	}
	out = mustRun(t, "", tool("kafka-topics"), append([]string{"--describe", "--topic", "topic1"}, bs...)...)
	describe := regexp.MustCompile("^Topic: topic1\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: [^\n]*\n" +
		"\tTopic: topic1\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: \n$")
	if !describe.MatchString(out) {
		t.Errorf("kafka-topics --describe printed\n%q\nwant a match for\n%q", out, describe)
	}
	// Moldau creates __consumer_offsets when it first starts (Kafka: on first use), so leave
	// internal topics out.
	if out := mustRun(t, "", tool("kafka-topics.sh"), append([]string{"--list", "--exclude-internal"}, bs...)...); out != "topic1\n" {
		t.Errorf("kafka-topics.sh --list --exclude-internal printed %q, want %q", out, "topic1\n")
	}

	mustRun(t, "k1:v1\nk2:v2\n", tool("kafka-console-producer"), append([]string{"--topic", "topic1",
		"--property", "parse.key=true", "--property", "key.separator=:"}, bs...)...)
	stdout, stderr, err := run(t, "", tool("kafka-console-consumer"), append([]string{"--topic", "topic1",
		"--from-beginning", "--max-messages", "2", "--property", "print.key=true"}, bs...)...)
	if err != nil {
		t.Fatalf("kafka-console-consumer: %v\n%s", err, stderr)
	}
	if stdout != "k1\tv1\nk2\tv2\n" {
		t.Errorf("kafka-console-consumer printed %q, want %q", stdout, "k1\tv1\nk2\tv2\n")
	}
	if !strings.Contains(stderr, "Processed a total of 2 messages") {
		t.Errorf("kafka-console-consumer stderr %q, want \"Processed a total of 2 messages\"", stderr)
	}
	// Another client sees the keys as keys.
	if out := mustRun(t, "", kcat, "-C", "-b", b.Addr, "-t", "topic1", "-o", "beginning", "-e", "-q", "-f", `%o %k=%s\n`); out != "0 k1=v1\n1 k2=v2\n" {
		t.Errorf("kcat read %q, want %q", out, "0 k1=v1\n1 k2=v2\n")
	}
	b.stop()
}
