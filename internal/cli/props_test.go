package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startClusterOpts is startCluster with kfake options.
func startClusterOpts(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// lastCodec returns the compression codec of the batch of the last record of topic (0 none,
// 1 gzip, 2 snappy, 3 lz4, 4 zstd) and how many records the topic has.
func lastCodec(t *testing.T, addr, topic string) (codec int8, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	for int64(n) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", n, want, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			codec = int8(r.Attrs.CompressionType())
		})
	}
	return codec, n
}

// TestConsoleProducerProperties: client properties reach the producer from --command-property,
// --command-config and the deprecated names, with Kafka's precedence: an explicit tool flag wins
// over a property, a property over a file and over a flag's default.
func TestConsoleProducerProperties(t *testing.T) {
	addr := startCluster(t, "p")
	file := filepath.Join(t.TempDir(), "producer.properties")
	if err := os.WriteFile(file, []byte("compression.type=lz4\nclient.id=from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bs := []string{"--bootstrap-server", addr, "--topic", "p"}
	for i, tc := range []struct {
		args   []string
		codec  int8
		stderr string
	}{
		{[]string{"--command-property", "compression.type=gzip"}, 1, ""},
		{[]string{"--command-config", file}, 3, ""},
		{[]string{"--command-config", file, "--command-property", "compression.type=zstd"}, 4, ""},
		{[]string{"--command-property", "compression.type=gzip", "--compression-codec", "snappy"}, 2, ""},
		{[]string{"--producer-property", "compression.type=gzip"}, 1,
			"Warning: --producer-property is deprecated and will be removed in a future version. Use --command-property instead.\n"},
		{[]string{"--producer.config", file}, 3,
			"Warning: --producer.config is deprecated and will be removed in a future version. Use --command-config instead.\n"},
		{[]string{"--command-property", "foo.bar=1", "--command-property", "ssl.truststore.location=/x", "--command-property", "max.block.ms=5"}, 0,
			"WARN The configuration 'foo.bar' was supplied but isn't a known config.\n" +
				"kafka-console-producer: note: Moldau's kafka-console-producer ignores these producer properties: max.block.ms, ssl.truststore.location\n"},
	} {
		// A compressible value: kgo sends a batch uncompressed when compression would not shrink it.
		stdout, stderr, code := runCmd(t, strings.Repeat("v", 2000)+"\n", "kafka-console-producer", append(bs, tc.args...)...)
		if code != 0 || stdout != "" || stderr != tc.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0, nothing, %q", tc.args, code, stdout, stderr, tc.stderr)
		}
		if codec, n := lastCodec(t, addr, "p"); codec != tc.codec || n != i+1 {
			t.Errorf("%q: codec %d after %d records, want %d after %d", tc.args, codec, n, tc.codec, i+1)
		}
	}

	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--command-property", "acks=1", "--producer-property", "acks=1"}, "Options --command-property and --producer-property cannot be specified together."},
		{[]string{"--command-config", file, "--producer.config", file}, "Options --command-config and --producer.config cannot be specified together."},
		{[]string{"--reader-property", "parse.key=true", "--property", "parse.key=true"}, "Options --reader-property and --property cannot be specified together."},
		{[]string{"--command-property", "acks=2"}, "--producer-property acks must be one of all, -1, 1, 0"},
		{[]string{"--command-property", "linger.ms=soon"}, "producer property linger.ms must be a non-negative number of milliseconds"},
	} {
		_, stderr, code := runCmd(t, "v\n", "kafka-console-producer", append(bs, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.stderr)
		}
	}
}

// TestConsoleConsumerProperties: group.id and auto.offset.reset from --command-config make a
// group consumer that starts at the beginning and commits; the deprecated names warn; both names
// of one option are refused.
func TestConsoleConsumerProperties(t *testing.T) {
	addr := startCluster(t, "c")
	mustRun(t, "a\nb\n", "kafka-console-producer", "--bootstrap-server", addr, "--topic", "c")
	file := filepath.Join(t.TempDir(), "consumer.properties")
	if err := os.WriteFile(file, []byte("group.id=from-file\nauto.offset.reset=earliest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bs := []string{"--bootstrap-server", addr, "--topic", "c", "--max-messages", "2", "--timeout-ms", "10000"}
	stdout, stderr, code := runCmd(t, "", "kafka-console-consumer", append(bs, "--command-config", file)...)
	if code != 0 || stdout != "a\nb\n" || stderr != "Processed a total of 2 messages\n" {
		t.Errorf("--command-config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	adm, err := newAdmin([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, "from-file")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("c", 0); !ok || o.At != 2 {
		t.Errorf("group from-file committed %+v, want offset 2 on c-0", o)
	}

	stdout, stderr, code = runCmd(t, "", "kafka-console-consumer", append(bs, "--consumer-property", "auto.offset.reset=earliest", "--consumer-property", "group.id=g2")...)
	if code != 0 || stdout != "a\nb\n" || !strings.HasPrefix(stderr, "Option --consumer-property is deprecated and will be removed in a future version. Use --command-property instead.\n") {
		t.Errorf("--consumer-property: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--command-property", "group.id=x", "--consumer-property", "group.id=x"}, "Options --consumer-property and --command-property cannot be specified together."},
		{[]string{"--command-config", file, "--consumer.config", file}, "Options --consumer.config and --command-config cannot be specified together."},
		{[]string{"--formatter-property", "print.key=true", "--property", "print.key=true"}, "Options --property and --formatter-property cannot be specified together."},
		{[]string{"--command-property", "auto.offset.reset=soon"}, "auto.offset.reset must be earliest, latest or none"},
		{[]string{"--command-property", "partition.assignment.strategy=Nope"}, `unknown assignor "Nope"`},
	} {
		_, stderr, code := runCmd(t, "", "kafka-console-consumer", append(bs, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.stderr)
		}
	}
}

// TestProducersAutoCreate: moldau produce and kafka-console-producer ask the broker to create a
// missing topic; a broker that does not create topics gets a clear error naming the topic.
func TestProducersAutoCreate(t *testing.T) {
	addr := startClusterOpts(t, kfake.AllowAutoTopicCreation())
	mustRun(t, "x\n", "produce", "new-by-produce", "-b", addr)
	mustRun(t, "x\n", "kafka-console-producer", "--topic", "new-by-console", "--bootstrap-server", addr)
	for _, topic := range []string{"new-by-produce", "new-by-console"} {
		if _, n := lastCodec(t, addr, topic); n != 1 {
			t.Errorf("%s has %d records, want 1", topic, n)
		}
	}

	off := startClusterOpts(t)
	_, stderr, code := runCmd(t, "x\n", "produce", "missing", "-b", off)
	if code != 1 || !strings.Contains(stderr, "topic missing does not exist and the broker does not create topics automatically (auto.create.topics.enable=false): create it with 'moldau topic create missing'") {
		t.Errorf("moldau produce to a missing topic: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCmd(t, "x\n", "kafka-console-producer", "--topic", "missing", "--bootstrap-server", off)
	if code != 1 || !strings.Contains(stderr, "topic missing does not exist and the broker does not create topics automatically") {
		t.Errorf("kafka-console-producer to a missing topic: exit %d, stderr %q", code, stderr)
	}
}

// TestConsoleConsumerMissingTopic: as Kafka's console consumer, ours asks for auto-creation
// (so a broker that auto-creates creates the topic), and with allow.auto.create.topics=false it
// says the topic is missing, then waits for it: created later, its records are consumed.
func TestConsoleConsumerMissingTopic(t *testing.T) {
	addr := startClusterOpts(t, kfake.AllowAutoTopicCreation())
	_, stderr, code := runCmd(t, "", "kafka-console-consumer", "--bootstrap-server", addr, "--topic", "auto", "--timeout-ms", "500")
	if code != 0 || strings.Contains(stderr, "warning") || !strings.HasSuffix(stderr, "Processed a total of 0 messages\n") {
		t.Errorf("auto-created topic: exit %d, stderr %q", code, stderr)
	}
	if _, n := lastCodec(t, addr, "auto"); n != 0 {
		t.Errorf("auto has %d records", n)
	}
	adm, err := newAdmin([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ts, err := adm.ListTopics(ctx); err != nil || !ts.Has("auto") {
		t.Fatalf("the consumer did not have the topic created: %v %v", ts.Names(), err)
	}

	// allow.auto.create.topics=false: a warning, then the consumer waits for the topic.
	var out, errb syncBuffer
	e := &env{ctx: ctx, stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }, adminTimeout: 15 * time.Second, now: time.Now}
	done := make(chan int, 1)
	go func() {
		done <- e.run("kafka-console-consumer", []string{"--bootstrap-server", addr, "--topic", "later", "--from-beginning",
			"--max-messages", "1", "--command-property", "allow.auto.create.topics=false"})
	}()
	want := "kafka-console-consumer: warning: topic later does not exist (UNKNOWN_TOPIC_OR_PARTITION); waiting for it to be created (allow.auto.create.topics=false: this consumer does not ask the broker to create it)\n"
	for !strings.Contains(errb.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("the consumer exited (%d) before warning: stderr %q", code, errb.String())
		case <-ctx.Done():
			t.Fatalf("no warning about the missing topic: stderr %q", errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "later"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "hello\n", "kafka-console-producer", "--topic", "later", "--bootstrap-server", addr)
	select {
	case code := <-done:
		if code != 0 || out.String() != "hello\n" {
			t.Errorf("consumer of a topic created later: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
		}
	case <-ctx.Done():
		t.Fatalf("the consumer did not see the topic created after it started: stderr %q", errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
