package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/moldau/moldau/internal/brokertest"
)

func TestClusterInfoAgainstMoldau(t *testing.T) {
	addr := brokertest.Addr(t, map[string]string{"broker.rack": "r1"})
	mustRun(t, "", "topic", "create", "a", "-b", addr)
	out := mustRun(t, "", "cluster", "info", "-b", addr)
	re := regexp.MustCompile(`^Cluster ID: \S{22}\nController: 1 \(127\.0\.0\.1:\d+\)\nMetadata quorum: leader 1, epoch \d+, high watermark (\d+)\nVoters: 1\nObservers: none\nMetadata version: 4\.1-IV1\nBrokers: 1\nNodes: 1\n` +
		`  ID +ROLES +ENDPOINT +RACK +STATE +METADATA OFFSET +LAG\n  1 +broker,controller +127\.0\.0\.1:\d+ +r1 +active \(active controller\) +\d+ +0\nTopics: 2\n$`)
	if !re.MatchString(out) {
		t.Fatalf("cluster info:\n%s", out)
	}
	var ci clusterInfo
	if err := json.Unmarshal([]byte(mustRun(t, "", "cluster", "info", "-b", addr, "--json")), &ci); err != nil {
		t.Fatal(err)
	}
	if len(ci.Nodes) != 1 || ci.Nodes[0].Rack != "r1" || ci.Nodes[0].Fenced || !ci.Nodes[0].ActiveController ||
		ci.Nodes[0].MetadataLag == nil || ci.RaftLeader != 1 || ci.MetadataVersion != "4.1-IV1" || len(ci.Voters) != 1 {
		t.Fatalf("cluster info --json: %+v", ci)
	}
}

func TestClusterHealthAgainstMoldau(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	mustRun(t, "", "topic", "create", "ok", "--partitions", "2", "-b", addr)
	if out := mustRun(t, "", "cluster", "health", "-b", addr); out != "Healthy: 5 partitions, all with a leader and every replica in sync.\n" {
		t.Fatalf("healthy: %q", out)
	}
	// (2 + the 3 of __consumer_offsets.) One replica cannot satisfy min.insync.replicas=2.
	mustRun(t, "", "topic", "create", "strict", "--config", "min.insync.replicas=2", "--partitions", "1", "-b", addr)
	out, _, code := runCmd(t, "", "cluster", "health", "-b", addr)
	if code != 1 || !regexp.MustCompile(`^Unhealthy: 1 of 6 partitions have problems\.\n  TOPIC +PARTITION +PROBLEMS +LEADER +REPLICAS +ISR +MIN ISR\n  strict +0 +under-min-isr +1 +1 +1 +2\n$`).MatchString(out) {
		t.Fatalf("unhealthy: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "", "cluster", "health", "-b", addr, "--json")
	var rep healthReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Healthy || len(rep.Problems) != 1 ||
		rep.Problems[0].Topic != "strict" || strings.Join(rep.Problems[0].Problems, ",") != "under-min-isr" {
		t.Fatalf("--json: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
}

func TestCheckHealth(t *testing.T) {
	md := kadm.Metadata{Topics: kadm.TopicDetails{
		"t": {Topic: "t", Partitions: kadm.PartitionDetails{
			0: {Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
			1: {Partition: 1, Leader: 2, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 3}},
			2: {Partition: 2, Leader: 3, Replicas: []int32{3, 1, 2}, ISR: []int32{3}},
			3: {Partition: 3, Leader: -1, Replicas: []int32{1, 2, 3}, ISR: []int32{}},
		}},
	}}
	rep := checkHealth(md, map[string]int{"t": 2}, nil, []int32{4})
	got := []string{}
	for _, p := range rep.Problems {
		got = append(got, strings.Join(p.Problems, "+"))
	}
	if rep.Healthy || rep.Partitions != 4 || strings.Join(got, " ") != "under-replicated under-replicated+under-min-isr offline+under-replicated+under-min-isr" {
		t.Fatalf("problems %v (%+v)", got, rep)
	}
	var b strings.Builder
	writeHealth(&b, rep)
	want := "Unhealthy: 3 of 4 partitions have problems.\n" +
		"  TOPIC  PARTITION  PROBLEMS                                LEADER  REPLICAS  ISR  MIN ISR\n" +
		"  t      1          under-replicated                        2       2,3,1     2,3  2\n" +
		"  t      2          under-replicated,under-min-isr          3       3,1,2     3    2\n" +
		"  t      3          offline,under-replicated,under-min-isr  -1      1,2,3          2\n" +
		"Warning: fenced brokers (registered but not serving): 4\n"
	if b.String() != want {
		t.Fatalf("report:\n%s\nwant:\n%s", b.String(), want)
	}
	// A fenced broker alone does not fail the check; no min.insync.replicas means 1.
	md.Topics["t"] = kadm.TopicDetail{Topic: "t", Partitions: kadm.PartitionDetails{0: {Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}}}
	if rep := checkHealth(md, nil, nil, []int32{4}); !rep.Healthy {
		t.Fatalf("healthy with a fenced broker: %+v", rep)
	}
	// An offline log dir is a problem of its own.
	rep = checkHealth(md, nil, []offlineLogDir{{Broker: 2, Dir: "/data/b", Error: "KAFKA_STORAGE_ERROR"}}, nil)
	b.Reset()
	writeHealth(&b, rep)
	if rep.Healthy || b.String() != "Unhealthy: 1 partitions with a leader and every replica in sync, but offline log dirs.\nOffline log dir: broker 2 /data/b (KAFKA_STORAGE_ERROR)\n" {
		t.Fatalf("offline log dir: %v\n%s", rep.Healthy, b.String())
	}
}

func TestWriteClusterInfoFencedAndControllerOnly(t *testing.T) {
	lag := int64(3)
	var b strings.Builder
	writeClusterInfo(&b, clusterInfo{ClusterID: "c", Controller: 4, RaftLeader: 4, RaftEpoch: 7, HighWatermark: 40,
		Voters: []int32{4}, Observers: []int32{1, 2}, MetadataVersion: "4.1-IV1", Topics: 2, Nodes: []nodeInfo{
			{ID: 1, Roles: []string{"broker"}, Endpoint: "h1:9092", Rack: "a", MetadataOffset: 37, MetadataLag: &lag},
			{ID: 2, Roles: []string{"broker"}, Endpoint: "h2:9092", Fenced: true, MetadataOffset: -1},
			{ID: 4, Roles: []string{"controller"}, ActiveController: true, MetadataOffset: 40, MetadataLag: new(int64)},
		}})
	want := "Cluster ID: c\nController: 4\nMetadata quorum: leader 4, epoch 7, high watermark 40\nVoters: 4\nObservers: 1, 2\nMetadata version: 4.1-IV1\nBrokers: 2 (1 fenced)\nNodes: 3\n" +
		"  ID  ROLES       ENDPOINT  RACK  STATE                  METADATA OFFSET  LAG\n" +
		"  1   broker      h1:9092   a     active                 37               3\n" +
		"  2   broker      h2:9092   -     fenced                 -                -\n" +
		"  4   controller  -         -     - (active controller)  40               0\n" +
		"Topics: 2\n"
	if b.String() != want {
		t.Fatalf("info:\n%s\nwant:\n%s", b.String(), want)
	}
}
