package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// system is one peer under test.
type system struct {
	key   string // the -systems name
	title string // the table header
	// start starts the system listening on addr with its data under dir; fsync asks for the
	// "fsync before ack" durability of W5 and W6, otherwise it runs without fsync on the write
	// path (Kafka's default; Moldau's only with log.flush.interval.messages set explicitly).
	start func(ctx context.Context, h *harness, dir, addr string, fsync bool) (*proc, error)
	// ready returns once the system answers a metadata request on addr.
	ready func(ctx context.Context, addr string) error
	// bench is the load generator's argv prefix: `moldau bench` or `natsbench`.
	bench func(h *harness) []string
	// fsync: whether W5 applies (kfake has no disk).
	fsync bool
}

var allSystems = []*system{
	{
		key: "moldau", title: "Moldau", fsync: true,
		start: func(ctx context.Context, h *harness, dir, addr string, fsync bool) (*proc, error) {
			argv := []string{h.bin("moldau"), "server", "--listeners", "PLAINTEXT://" + addr, "--data-dir", filepath.Join(dir, "data")}
			if !fsync && !h.opts.moldauDefaults {
				// Moldau's default is fsync before ack; the first pass runs every system as Kafka's
				// default does, without: Kafka's log.flush.interval.messages, set explicitly.
				argv = append(argv, "--override", "log.flush.interval.messages="+kafkaNoFlush)
			}
			argv = append(argv, h.httpArgs(dir)...) // -observe's brokers: /metrics and the console
			return startProc("moldau", filepath.Join(dir, "server.log"), dir, nil, argv...)
		},
		ready: kafkaReady,
		bench: func(h *harness) []string { return []string{h.bin("moldau"), "bench"} },
	},
	{
		key: "kafka", title: "Kafka", fsync: true,
		start: startKafka,
		ready: kafkaReady,
		bench: func(h *harness) []string { return []string{h.bin("moldau"), "bench"} },
	},
	{
		key: "kfake", title: "kfake",
		start: func(ctx context.Context, h *harness, dir, addr string, fsync bool) (*proc, error) {
			return startProc("kfake", filepath.Join(dir, "server.log"), dir, nil, h.bin("kfake"), "-addr", addr, "-partitions", "6")
		},
		ready: kafkaReady,
		bench: func(h *harness) []string { return []string{h.bin("moldau"), "bench"} },
	},
	{
		key: "nats", title: "NATS JetStream", fsync: true,
		start: func(ctx context.Context, h *harness, dir, addr string, fsync bool) (*proc, error) {
			argv := []string{h.bin("natsbench"), "server", "-addr", addr, "-store-dir", filepath.Join(dir, "jetstream")}
			if fsync {
				argv = append(argv, "-sync-always")
			}
			return startProc("nats", filepath.Join(dir, "server.log"), dir, nil, argv...)
		},
		ready: natsReady,
		bench: func(h *harness) []string { return []string{h.bin("natsbench")} },
	},
}

// kafkaNoFlush is Kafka's default log.flush.interval.messages: never fsync on the write path.
const kafkaNoFlush = "9223372036854775807"

// kafkaServerProperties is a single KRaft node (broker and controller) on loopback. Apart from
// what one node needs (replication factors of internal topics), every setting is Kafka's default.
const kafkaServerProperties = `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=%[2]s
listeners=PLAINTEXT://%[1]s,CONTROLLER://%[2]s
advertised.listeners=PLAINTEXT://%[1]s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
`

const kafkaLog4j = `status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
`

// kafkaJVM are the JVM options of Kafka's own start scripts (kafka-server-start.sh and
// kafka-run-class.sh), with the heap from -kafka-heap.
func kafkaJVM(heap string) []string {
	return []string{
		"-Xmx" + heap, "-Xms" + heap, "-server",
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
		"-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true",
	}
}

// startKafka writes server.properties, formats the storage (not part of the cold start: it is
// a one-time step) and starts `java -cp ... kafka.Kafka server.properties`.
func startKafka(ctx context.Context, h *harness, dir, addr string, fsync bool) (*proc, error) {
	controller, err := freeAddr()
	if err != nil {
		return nil, err
	}
	props := fmt.Sprintf(kafkaServerProperties, addr, controller, filepath.Join(dir, "data"))
	if fsync {
		props += "log.flush.interval.messages=1\n"
	}
	if err := h.formatKafka(ctx, "kafka", dir, props, newKafkaClusterID(), "--standalone"); err != nil {
		return nil, err
	}
	return h.startKafkaNode(dir, "kafka")
}

// newKafkaClusterID makes a cluster id as Kafka's Uuid does: url-safe base64 of 16 random bytes,
// not starting with '-' (StorageTool would take it for an option).
func newKafkaClusterID() string {
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		var id [16]byte
		_, _ = rand.Read(id[:])
		clusterID = base64.RawURLEncoding.EncodeToString(id[:])
	}
	return clusterID
}

// formatKafka writes dir/server.properties (props) and dir/log4j2.properties and formats the
// node's storage with `kafka.tools.StorageTool format -t clusterID -c server.properties [extra...]`.
func (h *harness) formatKafka(ctx context.Context, name, dir, props, clusterID string, extra ...string) error {
	cp, err := h.kafkaClasspath(ctx)
	if err != nil {
		return err
	}
	propsPath := filepath.Join(dir, "server.properties")
	log4jPath := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(propsPath, []byte(props), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(log4jPath, []byte(kafkaLog4j), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "format.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	formatStart := time.Now()
	argv := []string{"java", "-Xmx256m", "-Dlog4j2.configurationFile=" + log4jPath, "-cp", cp,
		"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsPath}
	if _, err := run(ctx, dir, logf, append(argv, extra...)...); err != nil {
		return fmt.Errorf("format %s storage (see %s): %w", name, logf.Name(), err)
	}
	h.logf("%s: storage formatted in %s", name, time.Since(formatStart).Round(time.Millisecond))
	return nil
}

// startKafkaNode starts `java <kafka-server-start.sh's JVM flags> -cp ... kafka.Kafka
// dir/server.properties` (formatKafka wrote it) with its output in dir/server.log.
func (h *harness) startKafkaNode(dir, name string) (*proc, error) {
	cp, err := h.kafkaClasspath(context.Background()) // resolved by formatKafka
	if err != nil {
		return nil, err
	}
	argv := append([]string{"java"}, kafkaJVM(h.opts.kafkaHeap)...)
	argv = append(argv, "-Dlog4j2.configurationFile="+filepath.Join(dir, "log4j2.properties"), "-cp", cp,
		"kafka.Kafka", filepath.Join(dir, "server.properties"))
	return startProc(name, filepath.Join(dir, "server.log"), dir, nil, argv...)
}

// waitAccept waits until addr accepts TCP connections.
func waitAccept(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never accepted a connection: %w", addr, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// kafkaReady waits for the port, then for a Metadata request that lists at least one broker.
func kafkaReady(ctx context.Context, addr string) error { return kafkaBrokersReady(ctx, addr, 1) }

// kafkaBrokersReady waits for the port, then for a Metadata request that lists at least
// brokers brokers (a cluster's node lists only the brokers that are registered and unfenced).
func kafkaBrokersReady(ctx context.Context, addr string, brokers int) error {
	if err := waitAccept(ctx, addr); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(rctx, cl)
		cancel()
		if err == nil && len(resp.Brokers) >= brokers {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("metadata lists %d brokers, want %d", len(resp.Brokers), brokers)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no metadata from %s (last error %v): %w", addr, err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// natsReady waits for the port, then speaks the NATS text protocol until a JetStream API request
// ($JS.API.INFO) is answered: the server is serving JetStream.
func natsReady(ctx context.Context, addr string) error {
	if err := waitAccept(ctx, addr); err != nil {
		return err
	}
	for {
		err := natsJetStreamInfo(addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream on %s not answering (last error %v): %w", addr, err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func natsJetStreamInfo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("no INFO from server: %q %v", line, err)
	}
	if _, err := fmt.Fprint(c, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB _INBOX.ready 1\r\nPUB $JS.API.INFO _INBOX.ready 0\r\n\r\n"); err != nil {
		return err
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(line, "PING"):
			fmt.Fprint(c, "PONG\r\n")
		case strings.HasPrefix(line, "-ERR"):
			return fmt.Errorf("server: %s", strings.TrimSpace(line))
		case strings.HasPrefix(line, "MSG _INBOX.ready"):
			body, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.Contains(body, "account_info_response") || strings.Contains(body, `"error"`) {
				return fmt.Errorf("JetStream not ready: %s", strings.TrimSpace(body))
			}
			return nil
		}
	}
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
