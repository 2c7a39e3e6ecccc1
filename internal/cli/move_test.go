package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/rebalance"
)

func fourBrokers() []rebalance.Broker {
	return []rebalance.Broker{{ID: 1}, {ID: 2}, {ID: 3}, {ID: 4}}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReassignmentJSON(t *testing.T) {
	got := formatReassignmentJSON(map[tp][]int32{
		{Topic: "b", Partition: 0}:  {3, 1},
		{Topic: "a", Partition: 10}: {1},
		{Topic: "a", Partition: 2}:  {2, 3},
	}, map[replicaKey]string{{tp: tp{Topic: "b", Partition: 0}, Broker: 1}: "/data/x"})
	want := `{"version":1,"partitions":[{"topic":"a","partition":2,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"a","partition":10,"replicas":[1],"log_dirs":["any"]},{"topic":"b","partition":0,"replicas":[3,1],"log_dirs":["any","/data/x"]}]}`
	if got != want {
		t.Errorf("format:\n got %s\nwant %s", got, want)
	}
	parts, dirs, err := parseReassignment(want)
	if err != nil || len(parts) != 3 || parts[2].Topic != "b" || !slices.Equal(parts[2].Replicas, []int32{3, 1}) || len(dirs) != 1 || dirs[replicaKey{tp: tp{Topic: "b", Partition: 0}, Broker: 1}] != "/data/x" {
		t.Errorf("parse: %+v %v %v", parts, dirs, err)
	}
	for js, msg := range map[string]string{
		`{"version":2,"partitions":[]}`: "Not supported version field value 2",
		`{"partitions":[{"topic":"a","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`: "Size of replicas list [1, 2] is different from size of log dirs list [any] for partition a-0",
		`{"partitions":[{"partition":0,"replicas":[1]}]}`:                                  "No such field exists: `topic`",
		`{"partitions":[{"topic":"a","replicas":[1]}]}`:                                    "No such field exists: `partition`",
	} {
		if _, _, err := parseReassignment(js); err == nil || err.Error() != msg {
			t.Errorf("%s: %v, want %q", js, err, msg)
		}
	}
	if _, _, err := parseReassignment(`{"partitions":[`); err == nil || !strings.HasPrefix(err.Error(), "The input string is not a valid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
	for name, parts := range map[string][]reassignEntry{
		"Partition reassignment list cannot be empty": nil,
		"Partition replica list cannot be empty":      {{tp: tp{Topic: "a"}, Replicas: []int32{}}},
		"Partition reassignment contains duplicate topic partitions: a-0": {
			{tp: tp{Topic: "a"}, Replicas: []int32{1}}, {tp: tp{Topic: "a"}, Replicas: []int32{2}}},
		"Partition replica lists may not contain duplicate entries: a-0 contains multiple entries for 1. a-1 contains multiple entries for 2": {
			{tp: tp{Topic: "a"}, Replicas: []int32{1, 1}}, {tp: tp{Topic: "a", Partition: 1}, Replicas: []int32{2, 3, 2}}},
	} {
		if _, err := validateExecute(parts); err == nil || err.Error() != name {
			t.Errorf("validate: %v, want %q", err, name)
		}
	}
}

func TestKafkaReassignFlags(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("kafka-reassign-partitions", func(e *env, a []string) error { return kafkaReassign(e, a, deps) }, args...)
	}
	js := writeFile(t, "r.json", `{"partitions":[]}`)
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--bootstrap-server", "x"}, 2, "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list"},
		{[]string{"--bootstrap-server", "x", "--list", "--verify"}, 2, "Command must include exactly one action"},
		{[]string{"--bootstrap-server", "x", "--execute"}, 2, `Missing required argument "[reassignment-json-file]"`},
		{[]string{"--bootstrap-server", "x", "--generate", "--broker-list", "1"}, 2, `Missing required argument "[topics-to-move-json-file]"`},
		{[]string{"--bootstrap-server", "x", "--verify", "--reassignment-json-file", js, "--throttle", "5"}, 2, `Option "[throttle]" can't be used with action "[verify]"`},
		{[]string{"--bootstrap-server", "x", "--list", "--additional"}, 2, `Option "[additional]" can't be used with action "[list]"`},
		{[]string{"--list"}, 2, `Missing required argument "[bootstrap-server]"`},
		{[]string{"--bootstrap-server", "x", "--execute", "--reassignment-json-file", js, "--throttle", "fast"}, 1, `--throttle must be a number, got "fast"`},
		{[]string{"--bootstrap-controller", "x", "--list"}, 1, "--bootstrap-controller is not supported"},
	} {
		code := run(c.args...)
		if code != c.code || !strings.Contains(te.stderr.String(), c.err) {
			t.Errorf("%v: exit %d stderr %q; want %d and %q", c.args, code, te.stderr.String(), c.code, c.err)
		}
	}
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js); code != 1 || te.stdout.String() != "Error: Partition reassignment list cannot be empty\n" {
		t.Errorf("empty list: exit %d stdout %q", code, te.stdout.String())
	}
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", "/nonexistent/r.json"); code != 1 || te.stdout.String() != "Error: /nonexistent/r.json (No such file or directory)\n" {
		t.Errorf("missing file: exit %d stdout %q", code, te.stdout.String())
	}
}

func TestKafkaReassignGenerate(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 100, 1, 2)
	f.addPartition("orders", 1, 100, 2, 3)
	f.addPartition("orders", 2, 100, 3, 1)
	f.addPartition("other", 0, 100, 1, 2)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("kafka-reassign-partitions", func(e *env, a []string) error { return kafkaReassign(e, a, deps) }, args...)
	}
	topics := writeFile(t, "t.json", `{"topics":[{"topic":"orders"}],"version":1}`)
	if code := run("--bootstrap-server", "x", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3,4"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, te.stdout, te.stderr)
	}
	want := `Current partition replica assignment
{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"orders","partition":1,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"orders","partition":2,"replicas":[3,1],"log_dirs":["any","any"]}]}

Proposed partition reassignment configuration
{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"orders","partition":1,"replicas":[3,4],"log_dirs":["any","any"]},{"topic":"orders","partition":2,"replicas":[4,2],"log_dirs":["any","any"]}]}
`
	if te.stdout.String() != want {
		t.Errorf("generate:\n%s\nwant:\n%s", te.stdout, want)
	}
	for _, c := range []struct{ brokers, topics, out string }{
		{"2,x", `{"topics":[{"topic":"orders"}]}`, "Error: For input string: \"x\"\n"},
		{"2,2", `{"topics":[{"topic":"orders"}]}`, "Error: Broker list contains duplicate entries: [2]\n"},
		{"2,3", `{"topics":[{"topic":"orders"},{"topic":"orders"}]}`, "Error: List of topics to reassign contains duplicate entries: [orders]\n"},
		{"2,3", `{"topics":[{"topic":"nope"}]}`, "Error: Topic nope not found.\n"},
		{"4", `{"topics":[{"topic":"orders"}]}`, "Error: Replication factor: 2 larger than available brokers: 1.\n"},
	} {
		if code := run("--bootstrap-server", "x", "--generate", "--topics-to-move-json-file", writeFile(t, "t.json", c.topics), "--broker-list", c.brokers); code != 1 || te.stdout.String() != c.out {
			t.Errorf("%s %s: exit %d %q, want %q", c.brokers, c.topics, code, te.stdout, c.out)
		}
	}
	// Racks on some brokers only.
	f.brokers[0].Rack = "a"
	if code := run("--bootstrap-server", "x", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "1,2"); code != 1 || !strings.Contains(te.stdout.String(), "Not all brokers have rack information. Add --disable-rack-aware") {
		t.Errorf("partial racks: exit %d %q", code, te.stdout)
	}
	if code := run("--bootstrap-server", "x", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "1,2", "--disable-rack-aware"); code != 0 {
		t.Errorf("--disable-rack-aware: exit %d %q", code, te.stdout)
	}
}

// TestKafkaReassignExecuteVerify: --execute with --throttle prints Kafka's text and sets the
// throttle configs on the topics and brokers involved; --list shows the move; a second --execute
// needs --additional; --verify reports progress, then completion and removes the throttles.
func TestKafkaReassignExecuteVerify(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 4<<20, 1, 2, 3)
	f.addPartition("orders", 1, 1<<20, 2, 3, 1)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("kafka-reassign-partitions", func(e *env, a []string) error { return kafkaReassign(e, a, deps) }, args...)
	}
	js := writeFile(t, "r.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,4]}]}`)
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js, "--throttle", "1048576"); code != 0 {
		t.Fatalf("execute: exit %d: %s%s", code, te.stdout, te.stderr)
	}
	want := `Current partition replica assignment

{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2,3],"log_dirs":["any","any","any"]}]}

Save this to use as the --reassignment-json-file option during rollback
Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.
The inter-broker throttle limit was set to 1048576 B/s
Successfully started partition reassignment for orders-0
`
	if te.stdout.String() != want {
		t.Errorf("execute:\n%s\nwant:\n%s", te.stdout, want)
	}
	wantCfg := `broker:1 follower.replication.throttled.rate=1048576
broker:1 leader.replication.throttled.rate=1048576
broker:2 follower.replication.throttled.rate=1048576
broker:2 leader.replication.throttled.rate=1048576
broker:3 follower.replication.throttled.rate=1048576
broker:3 leader.replication.throttled.rate=1048576
broker:4 follower.replication.throttled.rate=1048576
broker:4 leader.replication.throttled.rate=1048576
topic:orders follower.replication.throttled.replicas=0:4
topic:orders leader.replication.throttled.replicas=0:1,0:2,0:3`
	if got := f.configText(); got != wantCfg {
		t.Errorf("configs:\n%s\nwant:\n%s", got, wantCfg)
	}
	if code := run("--bootstrap-server", "x", "--list"); code != 0 || te.stdout.String() != "Current partition reassignments:\norders-0: replicas: 2,3,4,1. adding: 4. removing: 1.\n" {
		t.Errorf("list: exit %d %q", code, te.stdout)
	}
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js); code != 1 || te.stdout.String() != cannotExecuteBecauseOfExisting+"\n" {
		t.Errorf("second execute: exit %d %q", code, te.stdout)
	}
	// The list above copied 1 MiB, the refused execute another; one more leaves the move running.
	if code := run("--bootstrap-server", "x", "--verify", "--reassignment-json-file", js); code != 0 ||
		te.stdout.String() != "Status of partition reassignment:\nReassignment of partition orders-0 is still in progress.\n\n" {
		t.Errorf("verify in progress: exit %d %q", code, te.stdout)
	}
	if f.configText() != wantCfg {
		t.Errorf("verify in progress changed the throttles: %s", f.configText())
	}
	if code := run("--bootstrap-server", "x", "--verify", "--reassignment-json-file", js); code != 0 {
		t.Fatalf("verify: exit %d", code)
	}
	wantDone := `Status of partition reassignment:
Reassignment of partition orders-0 is completed.

Clearing broker-level throttles on brokers 1,2,3,4
Clearing topic-level throttles on topic orders
`
	if te.stdout.String() != wantDone {
		t.Errorf("verify done:\n%s\nwant:\n%s", te.stdout, wantDone)
	}
	if got := f.configText(); got != "" {
		t.Errorf("throttles left after verify: %s", got)
	}
	if rs := f.parts[tp{Topic: "orders"}].replicas; !slices.Equal(rs, []int32{2, 3, 4}) {
		t.Errorf("replicas after the move: %v", rs)
	}
	// A target that is not the replica set, with no move in progress.
	other := writeFile(t, "o.json", `{"version":1,"partitions":[{"topic":"orders","partition":1,"replicas":[4,3,1]}]}`)
	if code := run("--bootstrap-server", "x", "--verify", "--reassignment-json-file", other, "--preserve-throttles"); code != 0 ||
		te.stdout.String() != "Status of partition reassignment:\nThere is no active reassignment of partition orders-1, but replica set is 2,3,1 rather than 4,3,1.\n\n" {
		t.Errorf("verify of a move never run: exit %d %q", code, te.stdout)
	}
	// Unknown broker, unknown partition.
	bad := writeFile(t, "b.json", `{"version":1,"partitions":[{"topic":"orders","partition":1,"replicas":[9,3,1]}]}`)
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", bad); code != 1 || te.stdout.String() != "Error: Unknown broker id 9\n" {
		t.Errorf("unknown broker: exit %d %q", code, te.stdout)
	}
	bad = writeFile(t, "b.json", `{"version":1,"partitions":[{"topic":"orders","partition":7,"replicas":[1]}]}`)
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", bad); code != 1 || te.stdout.String() != "Error: Unable to find partition: orders-7\n" {
		t.Errorf("unknown partition: exit %d %q", code, te.stdout)
	}
}

func TestKafkaReassignCancel(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.step = 1
	f.addPartition("orders", 0, 3<<20, 1, 2, 3)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("kafka-reassign-partitions", func(e *env, a []string) error { return kafkaReassign(e, a, deps) }, args...)
	}
	js := writeFile(t, "r.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,4]}]}`)
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js, "--throttle", "5000"); code != 0 {
		t.Fatalf("execute: %d %s", code, te.stdout)
	}
	if code := run("--bootstrap-server", "x", "--cancel", "--reassignment-json-file", js); code != 0 {
		t.Fatalf("cancel: %d %s", code, te.stdout)
	}
	want := "Successfully cancelled partition reassignment for: orders-0\n" +
		"None of the specified partition moves are active." +
		"Clearing broker-level throttles on brokers 1,2,3,4\nClearing topic-level throttles on topic orders\n"
	if te.stdout.String() != want {
		t.Errorf("cancel:\n%q\nwant:\n%q", te.stdout, want)
	}
	if rs := f.parts[tp{Topic: "orders"}].replicas; !slices.Equal(rs, []int32{1, 2, 3}) || f.configText() != "" {
		t.Errorf("after cancel: replicas %v configs %q", rs, f.configText())
	}
	if code := run("--bootstrap-server", "x", "--cancel", "--reassignment-json-file", js, "--preserve-throttles"); code != 0 ||
		te.stdout.String() != "None of the specified partition reassignments are active.\nNone of the specified partition moves are active." {
		t.Errorf("cancel again: %d %q", code, te.stdout)
	}
	if code := run("--bootstrap-server", "x", "--list"); code != 0 || te.stdout.String() != "No partition reassignments found.\n" {
		t.Errorf("list: %d %q", code, te.stdout)
	}
}

// TestKafkaReassignLogDirs: a log_dirs entry starts an AlterReplicaLogDirs once the replica
// exists on its broker, and --verify reports the replica's dir move.
func TestKafkaReassignLogDirs(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 100, 1, 2)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("kafka-reassign-partitions", func(e *env, a []string) error { return kafkaReassign(e, a, deps) }, args...)
	}
	js := writeFile(t, "r.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2],"log_dirs":["/data/other","any"]}]}`)
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js); code != 0 {
		t.Fatalf("execute: %d %s", code, te.stdout)
	}
	if !strings.HasSuffix(te.stdout.String(), "Successfully started partition reassignment for orders-0\nSuccessfully started moving log directory to /data/other for replica orders-0 with broker 1 \n") {
		t.Errorf("execute: %q", te.stdout)
	}
	if code := run("--bootstrap-server", "x", "--verify", "--reassignment-json-file", js, "--preserve-throttles"); code != 0 ||
		te.stdout.String() != "Status of partition reassignment:\nReassignment of partition orders-0 is completed.\nReassignment of replica orders-0-1 is still in progress.\n" {
		t.Errorf("verify: %d %q", code, te.stdout)
	}
	f.mu.Lock()
	delete(f.futures, replicaKey{tp: tp{Topic: "orders"}, Broker: 1})
	f.dirs[replicaKey{tp: tp{Topic: "orders"}, Broker: 1}] = "/data/other"
	f.mu.Unlock()
	if code := run("--bootstrap-server", "x", "--verify", "--reassignment-json-file", js, "--preserve-throttles"); code != 0 ||
		te.stdout.String() != "Status of partition reassignment:\nReassignment of partition orders-0 is completed.\nReassignment of replica orders-0-1 completed successfully.\n" {
		t.Errorf("verify done: %d %q", code, te.stdout)
	}
	// A replica that never reaches its broker: the move cannot start before the timeout.
	js = writeFile(t, "r3.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,3],"log_dirs":["any","/d"]}]}`)
	f.step = 1
	if code := run("--bootstrap-server", "x", "--execute", "--reassignment-json-file", js, "--timeout", "1000"); code != 1 ||
		!strings.HasSuffix(te.stdout.String(), "Timed out before log directory move could be started for: orders-0-3\n") {
		t.Errorf("timeout: %d %q", code, te.stdout)
	}
}
