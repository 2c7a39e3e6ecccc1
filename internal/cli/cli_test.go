package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCluster starts a one-broker kfake cluster with the seed topics (one partition each) and
// returns its address.
func startCluster(t *testing.T, topics ...string) string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(1, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// mustRun runs a command that must exit 0 and returns its stdout.
func mustRun(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	out, errOut, code := runCmd(t, stdin, name, args...)
	if code != 0 {
		t.Fatalf("%s %v: exit %d\nstdout: %s\nstderr: %s", name, args, code, out, errOut)
	}
	return out
}

func TestMoldauTopicLifecycle(t *testing.T) {
	addr := startCluster(t)
	b := []string{"-b", addr}
	if out := mustRun(t, "", "topic", append([]string{"create", "orders", "--partitions", "3"}, b...)...); out != "Created topic orders.\n" {
		t.Errorf("create: %q", out)
	}
	// Flags before the topic name, --flag=value form, and a config.
	if out := mustRun(t, "", "topic", "create", "--partitions=2", "--config", "retention.ms=1000", "--bootstrap-server", addr, "events"); out != "Created topic events.\n" {
		t.Errorf("create events: %q", out)
	}
	if out := mustRun(t, "", "topic", "list", "--brokers", addr); out != "events\norders\n" {
		t.Errorf("list: %q", out)
	}
	out := mustRun(t, "", "topic", "describe", "events", "-b", addr)
	if !regexp.MustCompile(`^Topic: events\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: .*retention.ms=1000`).MatchString(out) {
		t.Errorf("describe: %q", out)
	}
	if !strings.Contains(out, "\tTopic: events\tPartition: 1\tLeader: ") {
		t.Errorf("describe partitions: %q", out)
	}
	// Creating again fails, unless --if-not-exists.
	_, stderr, code := runCmd(t, "", "topic", "create", "orders", "-b", addr)
	if code != 1 || !strings.Contains(stderr, "Topic 'orders' already exists.") {
		t.Errorf("duplicate create: code %d stderr %q", code, stderr)
	}
	mustRun(t, "", "topic", "create", "orders", "--if-not-exists", "-b", addr)
	if out := mustRun(t, "", "topic", "add-partitions", "orders", "--partitions", "5", "-b", addr); out != "Topic orders now has 5 partitions.\n" {
		t.Errorf("add-partitions: %q", out)
	}
	if out := mustRun(t, "", "topic", "describe", "orders", "-b", addr); !strings.Contains(out, "PartitionCount: 5") {
		t.Errorf("after add-partitions: %q", out)
	}
	mustRun(t, "", "topic", "alter-config", "orders", "--config", "retention.ms=5000", "-b", addr)
	if out := mustRun(t, "", "topic", "describe", "orders", "-b", addr); !strings.Contains(out, "retention.ms=5000") {
		t.Errorf("after alter-config: %q", out)
	}
	if out := mustRun(t, "", "topic", "delete", "orders", "events", "-b", addr); out != "Deleted topic orders.\nDeleted topic events.\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr, code = runCmd(t, "", "topic", "delete", "orders", "-b", addr)
	if code != 1 || !strings.Contains(stderr, `topic "orders" does not exist`) {
		t.Errorf("delete missing: code %d stderr %q", code, stderr)
	}
	mustRun(t, "", "topic", "delete", "orders", "--if-exists", "-b", addr)
	if out := mustRun(t, "", "topic", "list", "-b", addr); out != "" {
		t.Errorf("list after delete: %q", out)
	}
}

func TestMoldauBootstrapFromEnv(t *testing.T) {
	addr := startCluster(t, "a")
	var out, errb strings.Builder
	e := &env{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string {
			if k == BootstrapEnv {
				return addr
			}
			return ""
		}, adminTimeout: 15 * time.Second, now: time.Now}
	if code := e.run("topic", []string{"list"}); code != 0 || out.String() != "a\n" {
		t.Errorf("code %d out %q err %q", code, out.String(), errb.String())
	}
}

func TestKafkaTopics(t *testing.T) {
	addr := startCluster(t)
	bs := []string{"--bootstrap-server", addr}
	kt := func(args ...string) string { return mustRun(t, "", "kafka-topics", append(bs, args...)...) }
	if out := kt("--create", "--topic", "topic1", "--partitions", "1", "--replication-factor", "1"); out != "Created topic topic1.\n" {
		t.Errorf("create: %q", out)
	}
	if out := kt("--create", "--topic", "my.topic"); !strings.HasPrefix(out, "WARNING: Due to limitations in metric names") || !strings.HasSuffix(out, "Created topic my.topic.\n") {
		t.Errorf("create with period: %q", out)
	}
	out := kt("--describe", "--topic", "topic1")
	re := regexp.MustCompile("^Topic: topic1\tTopicId: [A-Za-z0-9_-]{22}\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: [^\n]*\n" +
		"\tTopic: topic1\tPartition: 0\tLeader: [0-9]+\tReplicas: [0-9]+\tIsr: [0-9]+\tElr: \tLastKnownElr: \n$")
	if !re.MatchString(out) {
		t.Errorf("describe: %q", out)
	}
	// Kafka 4.x's paging option is accepted; the output is the same.
	if out2 := kt("--describe", "--topic", "topic1", "--partition-size-limit-per-response", "1"); out2 != out {
		t.Errorf("describe with --partition-size-limit-per-response: %q, want %q", out2, out)
	}
	if out := kt("--list"); out != "my.topic\ntopic1\n" {
		t.Errorf("list: %q", out)
	}
	if out := kt("--list", "--topic", "topic.*"); out != "topic1\n" {
		t.Errorf("list regex: %q", out)
	}
	if out := kt("--describe", "--under-replicated-partitions"); out != "" {
		t.Errorf("under-replicated on one node: %q", out)
	}
	_, stderr, code := runCmd(t, "", "kafka-topics", append(bs, "--create", "--topic", "topic1")...)
	if code != 1 || stderr != "Error while executing topic command : Topic 'topic1' already exists.\n" {
		t.Errorf("duplicate: code %d stderr %q", code, stderr)
	}
	kt("--create", "--topic", "topic1", "--if-not-exists")
	_, stderr, code = runCmd(t, "", "kafka-topics", append(bs, "--describe", "--topic", "nosuch")...)
	if code != 1 || stderr != "Error while executing topic command : Topic 'nosuch' does not exist as expected\n" {
		t.Errorf("describe missing: code %d stderr %q", code, stderr)
	}
	kt("--describe", "--topic", "nosuch", "--if-exists")
	kt("--alter", "--topic", "topic1", "--partitions", "3")
	if out := kt("--describe", "--topic", "topic1"); !strings.Contains(out, "PartitionCount: 3") || !strings.Contains(out, "\tPartition: 2\t") {
		t.Errorf("after alter: %q", out)
	}
	_, stderr, code = runCmd(t, "", "kafka-topics", append(bs, "--alter", "--topic", "topic1", "--partitions", "2")...)
	if code != 1 || !strings.Contains(stderr, "can only be increased") {
		t.Errorf("shrink: code %d stderr %q", code, stderr)
	}
	if out := kt("--delete", "--topic", "my\\..*"); out != "" {
		t.Errorf("delete output: %q", out)
	}
	if out := kt("--list"); out != "topic1\n" {
		t.Errorf("list after regex delete: %q", out)
	}
}

func TestConsoleProduceConsumeRoundTrip(t *testing.T) {
	addr := startCluster(t, "t")
	bs := []string{"--bootstrap-server", addr}
	input := "k1:v1\nk2:v2\nk3:v3" // no trailing newline: the last line still counts
	mustRun(t, input, "kafka-console-producer", append(bs, "--topic", "t", "--reader-property", "parse.key=true", "--reader-property", "key.separator=:")...)
	mustRun(t, "h1:a,h2:b\tk4\tv4\n", "kafka-console-producer", append(bs, "--topic", "t", "--property", "parse.key=true", "--property", "parse.headers=true", "--compression-codec")...)
	stdout, stderr, code := runCmd(t, "", "kafka-console-consumer", append(bs, "--topic", "t", "--from-beginning", "--max-messages", "4",
		"--formatter-property", "print.key=true", "--formatter-property", "print.partition=true", "--formatter-property", "print.offset=true", "--formatter-property", "print.headers=true")...)
	if code != 0 {
		t.Fatalf("consume: code %d stderr %q", code, stderr)
	}
	want := "Partition:0\tOffset:0\tNO_HEADERS\tk1\tv1\n" +
		"Partition:0\tOffset:1\tNO_HEADERS\tk2\tv2\n" +
		"Partition:0\tOffset:2\tNO_HEADERS\tk3\tv3\n" +
		"Partition:0\tOffset:3\th1:a,h2:b\tk4\tv4\n"
	if stdout != want {
		t.Errorf("got\n%q\nwant\n%q", stdout, want)
	}
	if stderr != "Processed a total of 4 messages\n" {
		t.Errorf("stderr %q", stderr)
	}
	// --max-messages stops early; print.timestamp shows CreateTime.
	// The deprecated --property still works, with Kafka's deprecation warning.
	stdout, stderr, _ = runCmd(t, "", "kafka-console-consumer", append(bs, "--topic", "t", "--from-beginning", "--max-messages", "1", "--property", "print.timestamp=true")...)
	if !regexp.MustCompile(`^CreateTime:\d{13}\tv1\n$`).MatchString(stdout) {
		t.Errorf("timestamp: %q", stdout)
	}
	if !strings.HasPrefix(stderr, "Option --property is deprecated and will be removed in a future version. Use --formatter-property instead.\n") {
		t.Errorf("--property: stderr %q, want Kafka's deprecation warning", stderr)
	}
	// --partition with --offset, and --timeout-ms ends an idle consumer with Kafka's message.
	stdout, stderr, code = runCmd(t, "", "kafka-console-consumer", append(bs, "--topic", "t", "--partition", "0", "--offset", "2", "--timeout-ms", "1500")...)
	if code != 0 || stdout != "v3\nv4\n" || !strings.HasSuffix(stderr, "TimeoutException)\nProcessed a total of 2 messages\n") {
		t.Errorf("offset 2: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	// --include takes a regex.
	stdout, _, _ = runCmd(t, "", "kafka-console-consumer", append(bs, "--include", "t|u", "--from-beginning", "--max-messages", "4")...)
	if stdout != "v1\nv2\nv3\nv4\n" {
		t.Errorf("include: %q", stdout)
	}
	// A bad line fails the producer with Kafka's message and a non-zero exit.
	_, stderr, code = runCmd(t, "nokey\n", "kafka-console-producer", append(bs, "--topic", "t", "--property", "parse.key=true")...)
	if code != 1 || !strings.Contains(stderr, "No key separator found on line number 1: 'nokey'") {
		t.Errorf("bad line: code %d stderr %q", code, stderr)
	}
}

func TestMoldauProduceConsume(t *testing.T) {
	addr := startCluster(t, "m")
	mustRun(t, "a=1\nb=2\nnokey\n", "produce", "m", "-b", addr, "--key-separator", "=", "--header", "src=test", "--header", "n=1", "--acks", "1", "--compression", "zstd")
	out := mustRun(t, "", "consume", "m", "-b", addr, "--from-beginning", "-n", "3", "--format", "%k|%v|%h|%p|%o")
	if out != "a|1|src:test,n:1|0|0\nb|2|src:test,n:1|0|1\n|nokey|src:test,n:1|0|2\n" {
		t.Errorf("format: %q", out)
	}
	out = mustRun(t, "", "consume", "m", "-b", addr, "--offset", "2", "--count", "1", "--print-key")
	if out != "\tnokey\n" {
		t.Errorf("print-key: %q", out)
	}
	out = mustRun(t, "", "consume", "m", "-b", addr, "--from-beginning", "-n", "1", "--json")
	if !regexp.MustCompile(`^\{"topic":"m","partition":0,"offset":0,"timestamp":\d+,"key":"a","value":"1","headers":\{"n":"1","src":"test"\}\}\n$`).MatchString(out) {
		t.Errorf("json: %q", out)
	}
	// Default start is the end: an idle consumer with --timeout prints nothing and exits 0.
	if out := mustRun(t, "", "consume", "m", "-b", addr, "--timeout", "1s"); out != "" {
		t.Errorf("latest: %q", out)
	}
	_, stderr, code := runCmd(t, "", "consume", "nosuch", "-b", addr, "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "topic nosuch does not exist") {
		t.Errorf("missing topic: code %d stderr %q", code, stderr)
	}
	// Produce -v summary and explicit partition.
	_, stderr, code = runCmd(t, "x\n", "produce", "m", "-b", addr, "--partition", "0", "-v")
	if code != 0 || !strings.HasPrefix(stderr, "produced 1 records to m") {
		t.Errorf("-v: code %d stderr %q", code, stderr)
	}
}

func TestTimestampReplay(t *testing.T) {
	addr := startCluster(t, "ts")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, ms := range []int64{1000, 2000, 3000} {
		r := &kgo.Record{Topic: "ts", Value: []byte{byte('a' + i)}, Timestamp: time.UnixMilli(ms)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	out := mustRun(t, "", "consume", "ts", "-b", addr, "--timestamp", "2000", "--timeout", "1500ms", "--format", "%t %v")
	if out != "2000 b\n3000 c\n" {
		t.Errorf("replay from 2000: %q", out)
	}
	out = mustRun(t, "", "consume", "ts", "-b", addr, "--timestamp", "1970-01-01T00:00:01.500Z", "-n", "1")
	if out != "b\n" {
		t.Errorf("replay from RFC 3339: %q", out)
	}
}

func TestConsumerGroupCommitDescribeReset(t *testing.T) {
	addr := startCluster(t, "orders")
	bs := []string{"--bootstrap-server", addr}
	mustRun(t, "1\n2\n3\n4\n5\n", "produce", "orders", "-b", addr)
	out := mustRun(t, "", "kafka-console-consumer", append(bs, "--topic", "orders", "--group", "g1", "--from-beginning", "--max-messages", "3")...)
	if out != "1\n2\n3\n" {
		t.Fatalf("group consume: %q", out)
	}
	if out := mustRun(t, "", "kafka-consumer-groups", append(bs, "--list")...); out != "g1\n" {
		t.Errorf("list: %q", out)
	}
	out, stderr, code := runCmd(t, "", "kafka-consumer-groups", append(bs, "--describe", "--group", "g1")...)
	if code != 0 {
		t.Fatalf("describe: code %d stderr %q", code, stderr)
	}
	want := "\nGROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n" +
		"g1              orders          0          3               5               2               -               -               -\n\n"
	if out != want {
		t.Errorf("describe:\n%q\nwant\n%q", out, want)
	}
	if !strings.Contains(stderr, "Consumer group 'g1' has no active members.") {
		t.Errorf("describe stderr %q", stderr)
	}
	// The same group continues where it left off.
	if out := mustRun(t, "", "consume", "orders", "-b", addr, "--group", "g1", "--timeout", "2s"); out != "4\n5\n" {
		t.Errorf("resume: %q", out)
	}
	// Dry run by default; --execute applies.
	out = mustRun(t, "", "group", "reset-offsets", "g1", "-b", addr, "--topic", "orders", "--to-offset", "1")
	if !strings.Contains(out, "g1                             orders                         0          1") {
		t.Errorf("dry run: %q", out)
	}
	if out := mustRun(t, "", "group", "describe", "g1", "-b", addr); !strings.Contains(out, "orders          0          5               5               0") {
		t.Errorf("dry run changed offsets: %q", out)
	}
	mustRun(t, "", "kafka-consumer-groups", append(bs, "--reset-offsets", "--group", "g1", "--all-topics", "--to-earliest", "--execute")...)
	if out := mustRun(t, "", "group", "describe", "g1", "-b", addr); !strings.Contains(out, "orders          0          0               5               5") {
		t.Errorf("after reset to earliest: %q", out)
	}
	mustRun(t, "", "group", "reset-offsets", "g1", "-b", addr, "--all-topics", "--shift-by", "2", "--execute")
	mustRun(t, "", "group", "reset-offsets", "g1", "-b", addr, "--all-topics", "--shift-by", "100", "--execute")
	if out := mustRun(t, "", "group", "describe", "g1", "-b", addr); !strings.Contains(out, "orders          0          5               5               0") {
		t.Errorf("after shift-by past the end: %q", out)
	}
	mustRun(t, "", "group", "reset-offsets", "g1", "-b", addr, "--all-topics", "--by-duration", "PT1H", "--execute")
	if out := mustRun(t, "", "group", "describe", "g1", "-b", addr); !strings.Contains(out, "orders          0          0 ") {
		t.Errorf("after by-duration: %q", out)
	}
	// --list --state shows the state column.
	if out := mustRun(t, "", "kafka-consumer-groups", append(bs, "--list", "--state")...); out != "GROUP           STATE\ng1              Empty\n" {
		t.Errorf("list --state: %q", out)
	}
	// Delete offsets, then the group.
	out = mustRun(t, "", "kafka-consumer-groups", append(bs, "--delete-offsets", "--group", "g1", "--topic", "orders")...)
	if !strings.HasPrefix(out, "Request succeed for deleting offsets with topic orders group g1\n\nTOPIC") || !strings.Contains(out, "Successful") {
		t.Errorf("delete-offsets: %q", out)
	}
	if out := mustRun(t, "", "kafka-consumer-groups", append(bs, "--delete", "--group", "g1")...); out != "Deletion of requested consumer groups ('g1') was successful.\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr, code = runCmd(t, "", "kafka-consumer-groups", append(bs, "--describe", "--group", "g1")...)
	if code != 1 || !strings.Contains(stderr, "Consumer group 'g1' does not exist.") {
		t.Errorf("describe deleted: code %d stderr %q", code, stderr)
	}
}

func TestResetRefusedWhileActive(t *testing.T) {
	addr := startCluster(t, "busy")
	mustRun(t, "1\n", "produce", "busy", "-b", addr)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("active"), kgo.ConsumeTopics("busy"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if fs := cl.PollFetches(ctx); len(fs.Records()) != 1 {
		t.Fatalf("active member did not consume: %v", fs.Errors())
	}
	_, stderr, code := runCmd(t, "", "group", "reset-offsets", "active", "-b", addr, "--all-topics", "--to-earliest", "--execute")
	if code != 1 || !strings.Contains(stderr, "Error: Assignments can only be reset if the group 'active' is inactive, but the current state is Stable.") {
		t.Errorf("code %d stderr %q", code, stderr)
	}
	out := mustRun(t, "", "kafka-consumer-groups", "--bootstrap-server", addr, "--describe", "--group", "active", "--members")
	if !strings.Contains(out, "GROUP           CONSUMER-ID") || !strings.Contains(out, " 1               \n") {
		t.Errorf("members: %q", out)
	}
	out = mustRun(t, "", "kafka-consumer-groups", "--bootstrap-server", addr, "--describe", "--group", "active", "--state")
	if !strings.Contains(out, "Stable") || !strings.Contains(out, "COORDINATOR (ID)") {
		t.Errorf("state: %q", out)
	}
	out = mustRun(t, "", "group", "describe", "active", "-b", addr)
	if !regexp.MustCompile(`active +busy +0 +`).MatchString(out) {
		t.Errorf("describe active: %q", out)
	}
}

// TestKafkaTopicsReplicaAssignment: --create --replica-assignment sends each partition's replicas
// (Kafka's format: partitions by ',', brokers by ':'), and refuses what Kafka's TopicCommand
// refuses. kfake keeps only the counts; test/integration's createAssignedTopic checks the placement
// on a Moldau cluster.
func TestKafkaTopicsReplicaAssignment(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bs := []string{"--bootstrap-server", c.ListenAddrs()[0]}
	if out := mustRun(t, "", "kafka-topics", append(bs, "--create", "--topic", "placed", "--replica-assignment", "2:0, 1:2", "--config", "retention.ms=1000")...); out != "Created topic placed.\n" {
		t.Errorf("create: %q", out)
	}
	out := mustRun(t, "", "kafka-topics", append(bs, "--describe", "--topic", "placed")...)
	if !strings.Contains(out, "PartitionCount: 2\tReplicationFactor: 2\tConfigs: retention.ms=1000") {
		t.Errorf("describe: %q", out)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--replica-assignment", "1:1,0:2"}, 1, "Error while executing topic command : Partition replica lists may not contain duplicate entries: 1\n"},
		{[]string{"--replica-assignment", "1:2,0"}, 1, "Error while executing topic command : Partition 1 has different replication factor: [0]\n"},
		{[]string{"--replica-assignment", "1:x"}, 1, "Error while executing topic command : For input string: \"x\"\n"},
		{[]string{"--replica-assignment", "1:2", "--partitions", "2"}, 2, "Option \"[replica-assignment]\" can't be used with option \"[partitions]\""},
	} {
		_, stderr, code := runCmd(t, "", "kafka-topics", append(append(bs, "--create", "--topic", "bad"), tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: code %d stderr %q, want %d and %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
}

// TestConsumeIsolationLevel: --isolation-level read_committed skips the records of an aborted
// transaction; the default, read_uncommitted, prints them.
func TestConsumeIsolationLevel(t *testing.T) {
	addr := startCluster(t, "tx")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("cli-iso"), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range []string{"kept", "aborted"} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(v == "kept")); err != nil {
			t.Fatal(err)
		}
	}
	if out := mustRun(t, "", "consume", "tx", "-b", addr, "--from-beginning", "--timeout", "1s", "--isolation-level", "read_committed"); out != "kept\n" {
		t.Errorf("read_committed: %q", out)
	}
	if out := mustRun(t, "", "consume", "tx", "-b", addr, "--from-beginning", "--timeout", "1s"); out != "kept\naborted\n" {
		t.Errorf("read_uncommitted: %q", out)
	}
	if _, stderr, code := runCmd(t, "", "consume", "tx", "-b", addr, "--isolation-level", "committed"); code != 1 || !strings.Contains(stderr, "--isolation-level must be read_committed or read_uncommitted") {
		t.Errorf("bad level: code %d stderr %q", code, stderr)
	}
}
