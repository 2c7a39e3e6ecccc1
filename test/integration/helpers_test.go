package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// installHint is what a machine without the external clients needs. A missing client fails the
// test: these tests are the proof the README points at, so they must not quietly skip.
const installHint = "apt-get install -y kcat python3-confluent-kafka python3-kafka nodejs npm (or run test/deps.sh)"

const (
	// python is the interpreter the Debian package python3-confluent-kafka installs into.
	python = "/usr/bin/python3"
	// clientTimeout bounds every external client run.
	clientTimeout = 60 * time.Second
	// brokerTimeout bounds a broker start and a broker stop.
	brokerTimeout = 30 * time.Second
)

var (
	// moldauBin is the broker binary under test: built by TestMain or named by MOLDAU_BIN.
	moldauBin string
	// raceEnabled is set by race_test.go when the tests run with -race.
	raceEnabled bool
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if bin := os.Getenv("MOLDAU_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "MOLDAU_BIN=%s: %v\n", bin, err)
			return 1
		}
		moldauBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "moldau-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	moldauBin = filepath.Join(dir, "moldau")
	args := []string{"build", "-o", moldauBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/moldau")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, out)
		return 1
	}
	return m.Run()
}

// repoRoot is the directory of the module's go.mod, or ../.. from this package.
func repoRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod), nil
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the repository root: %w", err)
	}
	return root, nil
}

// childEnv is this process's environment without the variables the broker reads as configuration
// (KAFKA_*, MOLDAU_*, CLUSTER_ID; MOLDAU_BIN would be the unknown key "bin"), plus
// MOLDAU_HTTP_LISTENER=127.0.0.1:0 (a broker's HTTP listener never takes the default 8080; a
// test that needs its address sets --http-listener, which wins), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KAFKA_") || strings.HasPrefix(kv, "MOLDAU_") || strings.HasPrefix(kv, "CLUSTER_ID=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "MOLDAU_HTTP_LISTENER=127.0.0.1:0")
	return append(env, extra...)
}

// logBuffer collects a broker's stdout and stderr across its restarts.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// Since is what was written from offset off on.
func (l *logBuffer) Since(off int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf.Bytes()[off:])
}

// broker is one `moldau server` process, restartable on the same port and data dir.
type broker struct {
	t       *testing.T
	Addr    string // 127.0.0.1:port
	DataDir string
	args    []string // after "server"
	env     []string // added to childEnv
	log     logBuffer

	// The current run: the process, its exit, and where its output starts in log.
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // valid once exited is closed
	runLog  int
}

// startBroker starts `moldau server --listeners PLAINTEXT://127.0.0.1:<free port> --data-dir
// <temp> --override group.initial.rebalance.delay.ms=0 <extra...>` and waits until it is ready.
func startBroker(t *testing.T, extra ...string) *broker {
	return startBrokerEnv(t, nil, extra...)
}

// startBrokerEnv is startBroker with extra environment variables.
func startBrokerEnv(t *testing.T, env []string, extra ...string) *broker {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	args := append([]string{"--listeners", "PLAINTEXT://" + addr, "--data-dir", dir,
		"--override", "group.initial.rebalance.delay.ms=0"}, extra...)
	return startBrokerArgs(t, addr, dir, env, args...)
}

// startBrokerArgs starts `moldau server <args...>`, which must make it listen on addr.
func startBrokerArgs(t *testing.T, addr, dataDir string, env []string, args ...string) *broker {
	t.Helper()
	b := &broker{t: t, Addr: addr, DataDir: dataDir, args: args, env: env}
	t.Cleanup(b.cleanup)
	b.start()
	return b
}

// start runs the broker (again) and waits for its "listening on ... ready in" line and its port.
func (b *broker) start() {
	b.t.Helper()
	if b.running() {
		b.t.Fatal("start: the broker is already running")
	}
	fmt.Fprintf(&b.log, "---- %s: moldau server %s\n", time.Now().Format("15:04:05.000"), strings.Join(b.args, " "))
	b.runLog = b.log.Len()
	cmd := exec.Command(moldauBin, append([]string{"server"}, b.args...)...)
	cmd.Env = childEnv(b.env...)
	cmd.Stdout, cmd.Stderr = &b.log, &b.log
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start %s: %v", moldauBin, err)
	}
	b.cmd, b.exited = cmd, make(chan struct{})
	exited := b.exited
	go func() {
		b.waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(brokerTimeout)
	for {
		select {
		case <-exited:
			b.t.Fatalf("the broker exited before it was ready: %v", b.waitErr)
		default:
		}
		out := b.log.Since(b.runLog)
		if strings.Contains(out, "listening on") && strings.Contains(out, "ready in") {
			if c, err := net.DialTimeout("tcp", b.Addr, time.Second); err == nil {
				c.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the broker was not ready on %s within %s", b.Addr, brokerTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *broker) running() bool {
	if b.exited == nil {
		return false
	}
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and expects exit status 0 and "stopped cleanly".
func (b *broker) stop() {
	b.t.Helper()
	if !b.running() {
		b.t.Fatal("stop: the broker is not running")
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-b.exited:
	case <-time.After(brokerTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.t.Fatalf("the broker did not exit within %s of SIGTERM", brokerTimeout)
	}
	out := b.log.Since(b.runLog)
	if b.waitErr != nil {
		b.t.Errorf("after SIGTERM the broker exited with %v, want status 0", b.waitErr)
	}
	if !strings.Contains(out, "stopped cleanly") {
		b.t.Errorf("after SIGTERM the broker did not print \"stopped cleanly\"")
	}
	b.checkLog(out)
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *broker) kill() {
	b.t.Helper()
	if !b.running() {
		b.t.Fatal("kill: the broker is not running")
	}
	if err := b.cmd.Process.Kill(); err != nil {
		b.t.Fatalf("SIGKILL: %v", err)
	}
	<-b.exited
	fmt.Fprintf(&b.log, "---- %s: killed with SIGKILL\n", time.Now().Format("15:04:05.000"))
	b.checkLog(b.log.Since(b.runLog))
}

// checkLog fails the test on what must never be in a broker's output.
func (b *broker) checkLog(out string) {
	b.t.Helper()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "handler panic"} {
		if strings.Contains(out, bad) {
			b.t.Errorf("the broker's output contains %q", bad)
		}
	}
}

func (b *broker) cleanup() {
	if b.running() {
		_ = b.cmd.Process.Kill()
		<-b.exited
		b.checkLog(b.log.Since(b.runLog))
	}
	if b.t.Failed() {
		b.t.Logf("broker output (%s):\n%s", b.Addr, indent(b.log.Since(0), "  broker| "))
	}
}

func indent(s, prefix string) string {
	s = strings.TrimRight(s, "\n")
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// freePort is a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// run runs a command with clientTimeout, stdin as its input and the cleaned environment.
func run(t *testing.T, stdin, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, clientTimeout)
	}
	return out.String(), errb.String(), err
}

// mustRun is run that fails the test when the command fails.
func mustRun(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := run(t, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// needKcat returns kcat's path, failing the test when it is not installed.
func needKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (%v); install the clients these tests drive: %s", err, installHint)
	}
	return path
}

var confluentCheck = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import confluent_kafka").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -c 'import confluent_kafka': %v: %s", python, err, bytes.TrimSpace(out))
	}
	return nil
})

// needConfluent fails the test when /usr/bin/python3 cannot import confluent_kafka.
func needConfluent(t *testing.T) {
	t.Helper()
	if err := confluentCheck(); err != nil {
		t.Fatalf("confluent-kafka-python is not usable (%v); install the clients these tests drive: %s", err, installHint)
	}
}

// newClient is a franz-go client of addr, closed when the test ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// testContext is a context that ends with the test, at most after d.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with replication factor 1 and checks the broker's answer.
func createTopic(t *testing.T, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopic(testContext(t, 30*time.Second), partitions, 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// partitionCount is the number of partitions Metadata reports for topic.
func partitionCount(t *testing.T, addr, topic string) int {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	details, err := adm.ListTopics(testContext(t, 30*time.Second), topic)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		t.Fatalf("metadata has no topic %s", topic)
	}
	if d.Err != nil {
		t.Fatalf("metadata of %s: %v", topic, d.Err)
	}
	return len(d.Partitions)
}

// record is one record as a test expects or finds it.
type record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   string // "k=v,k=v", kcat's %h
	Timestamp int64
}

func (r record) String() string {
	return fmt.Sprintf("p%d@%d key=%q value=%q headers=%q ts=%d", r.Partition, r.Offset, r.Key, r.Value, r.Headers, r.Timestamp)
}

// consumeAll reads every record of topic from the start up to the end offsets listed when it
// begins, with franz-go.
func consumeAll(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	adm := kadm.NewClient(newClient(t, addr))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			offsets[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	next := map[int32]int64{}
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %v; still waiting for partitions (partition: end offset) %v, at %v", topic, ctx.Err(), want, next)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("consume %s: partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// codeName names a Kafka error code for messages: "MESSAGE_TOO_LARGE (10)".
func codeName(code int16) string {
	if code == 0 {
		return "NONE (0)"
	}
	return fmt.Sprintf("%s (%d)", kerr.TypedErrorForCode(code).Message, code)
}
