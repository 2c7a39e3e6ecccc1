package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/metrics/metricstest"
)

// TestKafkaGauges: the replica manager, controller and log gauges carry Kafka's JMX exporter
// names and the values a broker alone with one topic of 3 partitions has, and /metrics parses
// as the Prometheus text format.
func TestKafkaGauges(t *testing.T) {
	b := testBroker(t, t.TempDir(), "http.listener", "127.0.0.1:0", "offsets.topic.num.partitions", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 3, 1, map[string]*string{"min.insync.replicas": kadm.StringPtr("1")}, "g"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.DefaultProduceTopic("g"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	families := scrape(t, b)
	value := func(name string, labels map[string]string) (float64, bool) {
		f, ok := families[name]
		if !ok {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kafka_server_replicamanager_partitioncount", nil, 4}, // g's 3 and __consumer_offsets' 1
		{"kafka_server_replicamanager_leadercount", nil, 4},
		{"kafka_server_replicamanager_underreplicatedpartitions", nil, 0},
		{"kafka_server_replicamanager_underminisrpartitioncount", nil, 0},
		{"kafka_server_replicamanager_atminisrpartitioncount", nil, 4},
		{"kafka_server_replicamanager_offlinereplicacount", nil, 0},
		{"kafka_controller_kafkacontroller_activecontrollercount", nil, 1},
		{"kafka_controller_kafkacontroller_globaltopiccount", nil, 2},
		{"kafka_controller_kafkacontroller_globalpartitioncount", nil, 4},
		{"kafka_controller_kafkacontroller_offlinepartitionscount", nil, 0},
		{"kafka_controller_kafkacontroller_activebrokercount", nil, 1},
		{"kafka_controller_kafkacontroller_fencedbrokercount", nil, 0},
		{"kafka_log_log_logendoffset", map[string]string{"topic": "g", "partition": "1"}, 5},
		{"kafka_log_log_logendoffset", map[string]string{"topic": "g", "partition": "0"}, 0},
		{"kafka_log_log_numlogsegments", map[string]string{"topic": "g", "partition": "1"}, 1},
		{"kafka_topic_partition_current_offset", map[string]string{"topic": "g", "partition": "1"}, 5},
		{"kafka_cluster_partition_underminisr", map[string]string{"topic": "g", "partition": "2"}, 0},
	} {
		got, ok := value(c.name, c.labels)
		if !ok {
			t.Errorf("%s%v is not served", c.name, c.labels)
		} else if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if size, _ := value("kafka_log_log_size", map[string]string{"topic": "g", "partition": "1"}); size <= 0 {
		t.Errorf("kafka_log_log_size of g-1 = %v, want the bytes of its 5 batches", size)
	}
}

// TestKafkaGaugesEmitInRegistryOrder: the per-partition gauges come out of the collector in the
// order the Prometheus registry sorts each family into (partition as a string, then topic), so
// that sort, run on every scrape, finds them sorted instead of sorting 10 000 series per family
// (the largest cost of a scrape at 10 000 partitions). Two topics of 12 partitions make the
// string order ("10" < "2") and the partition manager's order differ from it.
func TestKafkaGaugesEmitInRegistryOrder(t *testing.T) {
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopics(ctx, 12, 1, nil, "b", "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "24 partitions led here", func() bool {
		n := 0
		for _, p := range b.parts.All() {
			if p.IsLeader() && (p.Topic == "a" || p.Topic == "b") {
				n++
			}
		}
		return n == 24
	})
	metricstest.AssertRegistryOrder(t, kafkaGauges{b}, 24)
}
