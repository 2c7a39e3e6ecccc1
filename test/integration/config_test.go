package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// writeFile writes content to name in a new temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigUnknownKey: a config file with a misspelt key stops `moldau server --config` before it
// listens, with an error naming the key and suggesting the right one.
func TestConfigUnknownKey(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	props := writeFile(t, "server.properties", fmt.Sprintf(
		"listeners=PLAINTEXT://%s\nlog.dirs=%s\nlog.retension.ms=1000\n", addr, t.TempDir()))
	_, stderr, err := run(t, "", moldauBin, "server", "--config", props)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("moldau server with an unknown key: %v, want a non-zero exit", err)
	}
	if !strings.Contains(stderr, `"log.retension.ms"`) || !strings.Contains(stderr, `did you mean "log.retention.ms"`) {
		t.Errorf("stderr does not name the key and the likely one:\n%s", stderr)
	}
	if strings.Contains(stderr, "listening on") {
		t.Errorf("the server started listening:\n%s", stderr)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s", addr)
	}
}

// TestConfigEnvironment: KAFKA_AUTO_CREATE_TOPICS_ENABLE=false in the environment turns
// auto-creation off (a broker without it creates the topic, the control).
func TestConfigEnvironment(t *testing.T) {
	b := startBrokerEnv(t, []string{"KAFKA_AUTO_CREATE_TOPICS_ENABLE=false"})
	checkNotAutoCreated(t, b.Addr, "no-such-topic")
	if code := rawProduce(t, b.Addr, "no-such-topic"); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to an unknown topic: %s, want UNKNOWN_TOPIC_OR_PARTITION (3)", codeName(code))
	}
	b.stop()

	control := startBroker(t)
	if code, n := metadataAutoCreate(t, control.Addr, "auto-created"); code != 0 || n != 1 {
		t.Errorf("without the variable, metadata answered %s with %d partitions, want the topic auto-created with 1", codeName(code), n)
	}
	control.stop()
}

// rawProduce sends one small batch to partition 0 of topic and returns the partition's error code.
func rawProduce(t *testing.T, addr, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(time.Now().UnixMilli(), [2]string{"k", "v"})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := newClient(t, addr).Request(testContext(t, 30*time.Second), req)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics", len(pr.Topics))
	}
	return pr.Topics[0].Partitions[0].ErrorCode
}

// TestConfigServerProperties: `moldau server server.properties`, as kafka-server-start takes it:
// listeners, log.dirs and num.partitions are honoured; a key with no meaning for Moldau
// (num.network.threads) is accepted with a warning.
func TestConfigServerProperties(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := filepath.Join(t.TempDir(), "kafka-logs")
	props := writeFile(t, "server.properties", fmt.Sprintf(`# as in a Kafka quickstart
node.id=1
listeners=PLAINTEXT://%s
log.dirs=%s
num.partitions=3
num.network.threads=3
group.initial.rebalance.delay.ms=0
`, addr, dir))
	b := startBrokerArgs(t, addr, dir, nil, props)
	out := b.log.Since(b.runLog)
	if !strings.Contains(out, "listening on "+addr) || !strings.Contains(out, "data in "+dir) {
		t.Errorf("the server did not report the listener and data dir of the file")
	}
	if !strings.Contains(out, "num.network.threads") {
		t.Errorf("no warning naming the ignored key num.network.threads")
	}
	if code, n := metadataAutoCreate(t, b.Addr, "from-props"); code != 0 || n != 3 {
		t.Fatalf("metadata auto-creating a topic: %s with %d partitions, want num.partitions=3", codeName(code), n)
	}
	produceSync(t, b.Addr, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "from-props", Partition: int32(i), Value: []byte("v")}
	}, 3)
	for p := range 3 {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("from-props-%d", p))); err != nil {
			t.Errorf("partition directory not under log.dirs: %v", err)
		}
	}
	b.stop()
}
