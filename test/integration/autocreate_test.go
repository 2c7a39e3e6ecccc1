package integration

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestToolsAutoCreateTopics: moldau produce and kafka-console-producer to a topic that does not
// exist create it, as kcat and Kafka's console producer do (the broker auto-creates); so does
// kafka-console-consumer, which then times out as Kafka's does (exit 0, "Processed a total of 0
// messages").
func TestToolsAutoCreateTopics(t *testing.T) {
	b := startBroker(t)
	mustRun(t, "a\nb\n", moldauBin, "produce", "fresh-produce", "-b", b.Addr)
	mustRun(t, "a\nb\n", moldauBin, "kafka-console-producer", "--topic", "fresh-console", "--bootstrap-server", b.Addr)
	for _, topic := range []string{"fresh-produce", "fresh-console"} {
		if n := len(consumeAll(t, b.Addr, topic)); n != 2 {
			t.Errorf("%s has %d records, want 2", topic, n)
		}
	}
	_, stderr, err := run(t, "", moldauBin, "kafka-console-consumer", "--topic", "fresh-consumer", "--timeout-ms", "1000", "--bootstrap-server", b.Addr)
	if err != nil || !strings.HasSuffix(stderr, "Processed a total of 0 messages\n") {
		t.Errorf("kafka-console-consumer on a new topic: %v, stderr %q", err, stderr)
	}
	if n := partitionCount(t, b.Addr, "fresh-consumer"); n != 1 {
		t.Errorf("fresh-consumer has %d partitions, want 1 (auto-created)", n)
	}
	b.stop()
}

// TestToolsNoAutoCreate: with auto.create.topics.enable=false the producers fail at once with a
// message naming the topic and the setting; kafka-console-consumer warns that the topic is
// missing and waits for it, as Kafka's does, then consumes it once it is created.
func TestToolsNoAutoCreate(t *testing.T) {
	b := startBroker(t, "--override", "auto.create.topics.enable=false")
	want := "topic nope does not exist and the broker does not create topics automatically (auto.create.topics.enable=false)"
	for _, args := range [][]string{
		{"produce", "nope", "-b", b.Addr},
		{"kafka-console-producer", "--topic", "nope", "--bootstrap-server", b.Addr},
	} {
		_, stderr, err := run(t, "a\n", moldauBin, args...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr, want) {
			t.Errorf("moldau %s: %v, stderr %q; want exit 1 and %q", strings.Join(args, " "), err, stderr, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, moldauBin, "kafka-console-consumer", "--topic", "later", "--from-beginning",
		"--max-messages", "1", "--bootstrap-server", b.Addr)
	cmd.Env = childEnv()
	var stdout, stderr logBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	warning := "kafka-console-consumer: warning: topic later does not exist (UNKNOWN_TOPIC_OR_PARTITION); waiting for it to be created (the broker creates it only with auto.create.topics.enable=true)\n"
	for !strings.Contains(stderr.Since(0), warning) {
		select {
		case err := <-exited:
			t.Fatalf("the consumer exited (%v) without waiting for the topic: stderr %q", err, stderr.Since(0))
		case <-ctx.Done():
			t.Fatalf("no warning about the missing topic: stderr %q", stderr.Since(0))
		case <-time.After(20 * time.Millisecond):
		}
	}
	mustRun(t, "", moldauBin, "topic", "create", "later", "-b", b.Addr)
	mustRun(t, "hello\n", moldauBin, "produce", "later", "-b", b.Addr)
	select {
	case err := <-exited:
		if err != nil || stdout.Since(0) != "hello\n" {
			t.Errorf("consumer of a topic created after it started: %v, stdout %q, stderr %q", err, stdout.Since(0), stderr.Since(0))
		}
	case <-ctx.Done():
		t.Fatalf("the consumer did not consume the topic created after it started: stderr %q", stderr.Since(0))
	}
	b.stop()
}
