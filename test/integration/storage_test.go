package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKafkaQuickstartStorage: Kafka 4's quickstart with the moldau binary and Kafka's own
// config/server.properties (internal/config/testdata, only its ports and log dir replaced):
// kafka-storage random-uuid, kafka-storage format --standalone -t ID -c server.properties,
// moldau server server.properties. The cluster then has that id; restarted as another node.id
// it refuses to start, naming the meta.properties and both ids.
func TestKafkaQuickstartStorage(t *testing.T) {
	raw, err := os.ReadFile("../../internal/config/testdata/kafka4-server.properties")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctl := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := filepath.Join(t.TempDir(), "kraft-combined-logs")
	text := strings.NewReplacer("localhost:9092", addr, "://:9092", "://"+addr, "localhost:9093", ctl, "://:9093", "://"+ctl,
		"/tmp/kraft-combined-logs", dir).Replace(string(raw))
	props := writeFile(t, "server.properties", text)

	id := strings.TrimSpace(mustRun(t, "", moldauBin, "kafka-storage", "random-uuid"))
	if len(id) != 22 {
		t.Fatalf("random-uuid printed %q", id)
	}
	out := mustRun(t, "", moldauBin, "kafka-storage", "format", "--standalone", "-t", id, "-c", props)
	if want := "Formatting dynamic metadata voter directory " + dir + " with metadata.version 4.1-IV1.\n"; out != want {
		t.Errorf("format printed %q, want %q", out, want)
	}

	b := startBrokerArgs(t, addr, dir, nil, props)
	ctx := testContext(t, 30*time.Second)
	meta, err := kadm.NewClient(newClient(t, addr)).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != id || meta.Controller != 1 {
		t.Errorf("cluster %q controller %d, want the formatted %s and node 1", meta.Cluster, meta.Controller, id)
	}
	b.stop()

	out = serverMustFail(t, props, "--override", "node.id=2")
	if want := "Stored node id 1 doesn't match previous node id 2 in " + filepath.Join(dir, "meta.properties"); !strings.Contains(out, want) {
		t.Errorf("start as node 2 on node 1's data:\n%s\nwant it to say %q", out, want)
	}
	out = serverMustFail(t, props, "--override", "cluster.id=anotherClusterAAAAAAAAA")
	if want := "Invalid cluster.id in: " + filepath.Join(dir, "meta.properties") + ". Expected anotherClusterAAAAAAAAA, but read " + id; !strings.Contains(out, want) {
		t.Errorf("start with another cluster.id:\n%s\nwant it to say %q", out, want)
	}
}
