package cli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPartitionMoveWait(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 3<<20+512<<10, 1, 2, 3)
	f.addPartition("orders", 1, 1<<20, 2, 3, 1)
	deps.open = f.admin()
	code := te.run("moldau partition move", func(e *env, a []string) error { return partitionCmd(e, a, deps) },
		"move", "orders:0", "orders:1", "--to", "2,3,4", "--throttle", "1048576", "--wait")
	want := `Moving orders-0 from 1,2,3 to 2,3,4 (adding 4, removing 1; 3.5 MiB to copy).
Moving orders-1 from 2,3,1 to 2,3,4 (adding 4, removing 1; 1.0 MiB to copy).
The inter-broker throttle limit was set to 1048576 B/s on brokers 1,2,3,4.
Started moving 2 partitions.
Reassignment of partition orders-1 is completed.
[0:00] 1 partition moving, 2.5 MiB left
  orders-0: 1,2,3 -> 2,3,4: broker 4: 2.5 MiB of 3.5 MiB left
[0:01] 1 partition moving, 1.5 MiB left
  orders-0: 1,2,3 -> 2,3,4: broker 4: 1.5 MiB of 3.5 MiB left
[0:02] 1 partition moving, 512.0 KiB left
  orders-0: 1,2,3 -> 2,3,4: broker 4: 512.0 KiB of 3.5 MiB left
Reassignment of partition orders-0 is completed.
Clearing broker-level throttles on brokers 1,2,3,4
Clearing topic-level throttles on topic orders
`
	if code != 0 || te.stdout.String() != want {
		t.Errorf("exit %d\n%s\nwant:\n%s\nstderr: %s", code, te.stdout, want, te.stderr)
	}
	if got := f.configText(); got != "" {
		t.Errorf("throttles left: %s", got)
	}
	for _, p := range []int32{0, 1} {
		if rs := f.parts[tp{Topic: "orders", Partition: p}].replicas; !slices.Equal(rs, []int32{2, 3, 4}) {
			t.Errorf("orders-%d on %v", p, rs)
		}
	}
}

// TestPartitionMoveNoWait: the move starts, the throttle stays, status shows the progress, and
// status --wait --clear-throttles follows it to the end and removes the throttle.
func TestPartitionMoveNoWait(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 4<<20, 1, 2, 3)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("moldau partition", func(e *env, a []string) error { return partitionCmd(e, a, deps) }, args...)
	}
	if code := run("move", "orders:0", "--to", "4,2,3", "--throttle", "2000"); code != 0 {
		t.Fatalf("move: exit %d %s %s", code, te.stdout, te.stderr)
	}
	want := `Moving orders-0 from 1,2,3 to 4,2,3 (adding 4, removing 1; 4.0 MiB to copy).
The inter-broker throttle limit was set to 2000 B/s on brokers 1,2,3,4.
Started moving 1 partition.
Follow the progress with: moldau partition status --wait --clear-throttles
Warning: the throttle stays set until it is removed: run moldau partition status --wait --clear-throttles (or kafka-reassign-partitions --verify).
`
	if te.stdout.String() != want {
		t.Errorf("move:\n%s\nwant:\n%s", te.stdout, want)
	}
	if !strings.Contains(f.configText(), "broker:4 follower.replication.throttled.rate=2000") {
		t.Errorf("throttle not set: %s", f.configText())
	}
	if code := run("status"); code != 0 || te.stdout.String() != "[0:00] 1 partition moving, 3.0 MiB left\n  orders-0: 1,2,3 -> 4,2,3: broker 4: 3.0 MiB of 4.0 MiB left\n" {
		t.Errorf("status: exit %d %q", code, te.stdout)
	}
	if f.configText() == "" {
		t.Error("status without --clear-throttles removed the throttle")
	}
	if code := run("status", "--wait", "--clear-throttles"); code != 0 ||
		!strings.HasSuffix(te.stdout.String(), "Reassignment of partition orders-0 is completed.\nClearing broker-level throttles on brokers 1,2,3,4\nClearing topic-level throttles on topic orders\n") {
		t.Errorf("status --wait: exit %d %q", code, te.stdout)
	}
	if f.configText() != "" {
		t.Errorf("throttle left: %s", f.configText())
	}
	if code := run("status"); code != 0 || te.stdout.String() != "No partition is being moved.\n" {
		t.Errorf("status after: exit %d %q", code, te.stdout)
	}
	// The leader moved off broker 1 with the move.
	if p := f.parts[tp{Topic: "orders"}]; p.leader != 4 || !slices.Equal(p.replicas, []int32{4, 2, 3}) {
		t.Errorf("after the move: %+v", p)
	}
}

func TestPartitionMoveCancelAndErrors(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.step = 1
	f.addPartition("orders", 0, 4<<20, 1, 2, 3)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("moldau partition", func(e *env, a []string) error { return partitionCmd(e, a, deps) }, args...)
	}
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"move", "orders:0"}, 2, "missing --to BROKERS"},
		{[]string{"move", "--to", "1,2"}, 2, "missing TOPIC:PARTITION"},
		{[]string{"move", "orders", "--to", "1,2"}, 1, `"orders" is not TOPIC:PARTITION`},
		{[]string{"move", "orders:0", "--to", "1,1"}, 1, "--to names broker 1 twice"},
		{[]string{"move", "orders:0", "--to", "1,9"}, 1, "broker 9 is not in the cluster (brokers 1,2,3,4)"},
		{[]string{"move", "orders:5", "--to", "1,2"}, 1, "partition orders-5 does not exist"},
		{[]string{"move", "orders:0", "--to", "1,2", "--throttle", "0"}, 1, "--throttle must be a positive number"},
		{[]string{"bogus"}, 2, `unknown subcommand "bogus"`},
	} {
		if code := run(c.args...); code != c.code || !strings.Contains(te.stderr.String(), c.stderr) {
			t.Errorf("%v: exit %d stderr %q, want %d %q", c.args, code, te.stderr, c.code, c.stderr)
		}
	}
	if code := run("move", "orders:0", "--to", "1,2,3"); code != 0 || te.stdout.String() != "orders-0 is already on 1,2,3.\n" {
		t.Errorf("no-op move: %d %q", code, te.stdout)
	}
	if code := run("move", "orders:0", "--to", "2,3,4"); code != 0 {
		t.Fatalf("move: %d %s", code, te.stdout)
	}
	if code := run("cancel", "orders:0"); code != 0 || te.stdout.String() != "Cancelled the move of orders-0.\n" {
		t.Errorf("cancel: %d %q", code, te.stdout)
	}
	if code := run("cancel", "orders:0"); code != 1 || te.stdout.String() != "Cancelling the move of orders-0 failed: no reassignment of orders-0 is in progress\n" {
		t.Errorf("cancel again: %d %q", code, te.stdout)
	}
	if rs := f.parts[tp{Topic: "orders"}].replicas; !slices.Equal(rs, []int32{1, 2, 3}) {
		t.Errorf("after cancel: %v", rs)
	}
}

// TestPartitionMoveEndsOffTarget: a move that is cancelled by someone else while this command
// waits ends with Kafka's "no active reassignment" line and exit 1.
func TestPartitionMoveEndsOffTarget(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.step = 1 << 20
	f.addPartition("orders", 0, 10<<20, 1, 2, 3)
	deps.open = f.admin()
	sleep := deps.sleep
	polls := 0
	deps.sleep = func(ctx context.Context, d time.Duration) error {
		if polls++; polls == 2 {
			(&fakeAdmin{f}).AlterReassignments(ctx, map[tp][]int32{{Topic: "orders"}: nil})
		}
		return sleep(ctx, d)
	}
	code := te.run("moldau partition", func(e *env, a []string) error { return partitionCmd(e, a, deps) }, "move", "orders:0", "--to", "2,3,4", "--wait")
	if code != 1 || !strings.HasSuffix(te.stdout.String(), "There is no active reassignment of partition orders-0, but replica set is 1,2,3 rather than 2,3,4.\n") {
		t.Errorf("exit %d\n%s", code, te.stdout)
	}
}

func TestBrokerDecommission(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 2<<20, 1, 2, 3)
	f.addPartition("orders", 1, 1<<20, 2, 3, 4)
	f.addPartition("orders", 2, 1<<20, 3, 4, 1)
	f.addPartition("orders", 3, 1<<20, 4, 1, 2)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("moldau broker", func(e *env, a []string) error { return brokerCmd(e, a, deps) }, args...)
	}
	plan := `Decommission of broker 4: 3 partitions to move (3.0 MiB to copy).
  orders-1: 2,3,4 -> 2,3,1 (adding 1, removing 4; 1.0 MiB to copy)
  orders-2: 3,4,1 -> 3,2,1 (adding 2, removing 4; 1.0 MiB to copy)
  orders-3: 4,1,2 -> 3,1,2 (adding 3, removing 4; 1.0 MiB to copy)
`
	if code := run("decommission", "4", "--dry-run"); code != 0 || te.stdout.String() != plan+"Dry run: nothing was moved.\n" {
		t.Errorf("dry run: %d\n%s", code, te.stdout)
	}
	if len(f.alterLog) != 0 {
		t.Errorf("dry run moved: %v", f.alterLog)
	}
	if code := run("decommission", "4", "--throttle", "1048576"); code != 0 {
		t.Fatalf("decommission: %d %s %s", code, te.stdout, te.stderr)
	}
	want := plan + `The inter-broker throttle limit was set to 1048576 B/s on brokers 1,2,3,4.
Started moving 3 partitions.
Reassignment of partition orders-1 is completed.
Reassignment of partition orders-2 is completed.
Reassignment of partition orders-3 is completed.
Clearing broker-level throttles on brokers 1,2,3,4
Clearing topic-level throttles on topic orders
Broker 4 holds no replicas and can be stopped.
`
	if te.stdout.String() != want {
		t.Errorf("decommission:\n%s\nwant:\n%s", te.stdout, want)
	}
	for k, p := range f.parts {
		if slices.Contains(p.replicas, 4) || p.leader == 4 {
			t.Errorf("%s still on broker 4: %+v", k, p)
		}
	}
	if code := run("decommission", "4"); code != 0 || te.stdout.String() != "Broker 4 holds no replicas and can be stopped.\n" {
		t.Errorf("again: %d %q", code, te.stdout)
	}
	// Three brokers left, replication factor three: broker 3 cannot go.
	f.brokers = f.brokers[:3]
	if code := run("decommission", "3"); code != 1 || !strings.Contains(te.stderr.String(), "cannot move orders-0 off broker 3: no other broker can hold a replica") {
		t.Errorf("impossible: %d %q", code, te.stderr)
	}
	if code := run("decommission"); code != 2 {
		t.Errorf("no id: %d", code)
	}
}

func TestClusterRebalance(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 2<<20, 1, 2, 3)
	f.addPartition("orders", 1, 1<<20, 2, 3, 1)
	f.addPartition("orders", 2, 1<<20, 3, 2, 1)
	f.addPartition("orders", 3, 1<<20, 3, 1, 2)
	deps.open = f.admin()
	run := func(args ...string) int {
		return te.run("moldau cluster rebalance", func(e *env, a []string) error { return clusterRebalance(e, a, deps) }, args...)
	}
	plan := `Rebalance plan: 3 replica moves (4.0 MiB to copy), 0 partitions with a new preferred leader order only.
Broker   Replicas               Leaders                Bytes
1        4 -> 3                 1 -> 1                 5.0 MiB -> 3.0 MiB
2        4 -> 3                 1 -> 1                 5.0 MiB -> 4.0 MiB
3        4 -> 3                 2 -> 1                 5.0 MiB -> 4.0 MiB
4        0 -> 3                 0 -> 1                 0 B -> 4.0 MiB
  orders-0: 1,2,3 -> 4,2,3 (adding 4, removing 1; 2.0 MiB to copy)
  orders-1: 2,3,1 -> 2,4,1 (adding 4, removing 3; 1.0 MiB to copy)
  orders-2: 3,2,1 -> 1,4,3 (adding 4, removing 2; 1.0 MiB to copy)
`
	if code := run("--dry-run"); code != 0 || te.stdout.String() != plan+"Dry run: nothing was moved.\n" {
		t.Errorf("dry run: %d\n%s\nwant:\n%s", code, te.stdout, plan)
	}
	if code := run(); code != 0 {
		t.Fatalf("rebalance: %d %s %s", code, te.stdout, te.stderr)
	}
	want := plan + `Started moving 3 partitions.
Reassignment of partition orders-1 is completed.
Reassignment of partition orders-2 is completed.
[0:00] 1 partition moving, 1.0 MiB left
  orders-0: 1,2,3 -> 4,2,3: broker 4: 1.0 MiB of 2.0 MiB left
Reassignment of partition orders-0 is completed.
Preferred leader election moved the leader of orders-2.
`
	if te.stdout.String() != want {
		t.Errorf("rebalance:\n%s\nwant:\n%s", te.stdout, want)
	}
	leaders := map[int32]int{}
	for _, p := range f.parts {
		leaders[p.leader]++
		if p.leader != p.replicas[0] {
			t.Errorf("leader %d is not the preferred %v", p.leader, p.replicas)
		}
	}
	if len(leaders) != 4 {
		t.Errorf("leaders per broker: %v", leaders)
	}
	if code := run(); code != 0 || te.stdout.String() != `Rebalance plan: 0 replica moves (0 B to copy), 0 partitions with a new preferred leader order only.
Broker   Replicas               Leaders                Bytes
1        3 -> 3                 1 -> 1                 3.0 MiB -> 3.0 MiB
2        3 -> 3                 1 -> 1                 4.0 MiB -> 4.0 MiB
3        3 -> 3                 1 -> 1                 4.0 MiB -> 4.0 MiB
4        3 -> 3                 1 -> 1                 4.0 MiB -> 4.0 MiB
Replica placement is balanced: nothing to move.
Every partition is led by its preferred leader.
` {
		t.Errorf("balanced: %d\n%s", code, te.stdout)
	}
	if code := run("--exclude", "x"); code != 1 {
		t.Errorf("bad --exclude: %d", code)
	}
}

func TestMoveCommandsHelp(t *testing.T) {
	for _, c := range [][]string{
		{"kafka-reassign-partitions", "--help"}, {"partition", "--help"}, {"partition", "move", "--help"},
		{"broker", "help"}, {"broker", "decommission", "-h"}, {"cluster", "rebalance", "--help"},
	} {
		stdout, _, code := runCmd(t, "", c[0], c[1:]...)
		if code != 0 || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: code %d, stdout %q", c, code, stdout)
		}
	}
	if stdout, _, _ := runCmd(t, "", "kafka-reassign-partitions", "--help"); !strings.Contains(stdout, "-reassignment-json-file") || !strings.Contains(stdout, "-preserve-throttles") {
		t.Errorf("kafka-reassign-partitions --help lacks Kafka's flags: %s", stdout)
	}
	if name, ok := ToolName("/opt/kafka/bin/kafka-reassign-partitions.sh"); !ok || name != "kafka-reassign-partitions" {
		t.Errorf("ToolName: %q %v", name, ok)
	}
}

// TestDecommissionDeadBroker: a broker that is no longer in the broker list but still named in
// replicas is decommissioned from the leaders' copies.
func TestDecommissionDeadBroker(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 1<<20, 4, 1, 2)
	f.addPartition("orders", 1, 1<<20, 1, 2, 3)
	f.brokers = f.brokers[:3]
	f.parts[tp{Topic: "orders"}].leader = 1
	deps.open = f.admin()
	code := te.run("moldau broker", func(e *env, a []string) error { return brokerCmd(e, a, deps) }, "decommission", "4")
	want := `Broker 4 is not registered or not alive; moving its replicas from the leaders.
Decommission of broker 4: 1 partition to move (1.0 MiB to copy).
  orders-0: 4,1,2 -> 3,1,2 (adding 3, removing 4; 1.0 MiB to copy)
Started moving 1 partition.
Reassignment of partition orders-0 is completed.
Broker 4 holds no replicas and can be stopped.
`
	if code != 0 || te.stdout.String() != want {
		t.Errorf("exit %d\n%s\nwant:\n%s\n%s", code, te.stdout, want, te.stderr)
	}
}

// TestPartitionMoveRefused: a move the cluster refuses is reported, exits 1, and leaves no
// throttle behind.
func TestPartitionMoveRefused(t *testing.T) {
	te, deps := newTestEnv(t)
	f := newFakeCluster(fourBrokers())
	f.addPartition("orders", 0, 1<<20, 1, 2, 3)
	deps.open = f.admin()
	open := deps.open
	deps.open = func(s []string) (moveAdmin, error) {
		a, err := open(s)
		return refusingAdmin{a}, err
	}
	code := te.run("moldau partition", func(e *env, a []string) error { return partitionCmd(e, a, deps) }, "move", "orders:0", "--to", "2,3,4", "--throttle", "1000", "--wait")
	if code != 1 || !strings.Contains(te.stdout.String(), "Moving orders-0 failed: the cluster says no\n") {
		t.Errorf("exit %d\n%s", code, te.stdout)
	}
	if got := f.configText(); got != "" {
		t.Errorf("throttle left behind: %s", got)
	}
}

type refusingAdmin struct{ moveAdmin }

func (r refusingAdmin) AlterReassignments(_ context.Context, targets map[tp][]int32) (map[tp]error, error) {
	errs := map[tp]error{}
	for p := range targets {
		errs[p] = apiError(errors.New("refused"), ptrTo("the cluster says no"))
	}
	return errs, nil
}
