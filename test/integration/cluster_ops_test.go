package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/verify"
)

// The operator's day on clusters started by scripts/cluster-local.sh, driven by the commands a
// user types (the kafka-* links the script makes, and moldau's own): a partition moved to
// another set of brokers with a throttle, a broker decommissioned, leaders put back by a
// preferred election after a restart; each while moldau verify's producers write with acks=all,
// and each ends with every acknowledged record read back exactly once.

// tool runs one of the cluster's commands (bin/NAME in the script's directory: moldau or a
// kafka-* link to it) and returns its combined output; a non-zero exit fails with the output.
func (lc *localCluster) tool(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(lc.dir, "bin", name), args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	lc.t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), indent(string(out), "  | "))
	return string(out), nil
}

func (lc *localCluster) mustTool(ctx context.Context, name string, args ...string) string {
	lc.t.Helper()
	out, err := lc.tool(ctx, name, args...)
	if err != nil {
		lc.t.Fatal(err)
	}
	return out
}

func (lc *localCluster) bootstrapFlag() string { return strings.Join(lc.bootstrap(), ",") }

// partitionMeta is one partition as a node's metadata has it.
type partitionMeta struct {
	leader        int32
	replicas, isr []int32
}

// partitions asks node id for topic's partitions.
func partitions(ctx context.Context, cl *kgo.Client, id int32, topic string) (map[int32]partitionMeta, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		return nil, fmt.Errorf("metadata from node %d: %w", id, err)
	}
	if len(resp.Topics) != 1 {
		return nil, fmt.Errorf("metadata from node %d: %d topics", id, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return nil, fmt.Errorf("metadata from node %d: %s: %w", id, topic, err)
	}
	out := map[int32]partitionMeta{}
	for _, p := range resp.Topics[0].Partitions {
		r, isr := slices.Clone(p.Replicas), slices.Clone(p.ISR)
		slices.Sort(isr)
		out[p.Partition] = partitionMeta{leader: p.Leader, replicas: r, isr: isr}
	}
	return out, nil
}

// waitPartitions waits until every running node's metadata of topic satisfies ok.
func (lc *localCluster) waitPartitions(ctx context.Context, cl *kgo.Client, nodes []int32, topic string, timeout time.Duration, what string, ok func(map[int32]partitionMeta) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		why := ""
		for _, id := range nodes {
			ps, err := partitions(ctx, cl, id, topic)
			if err != nil {
				why = err.Error()
				break
			}
			if !ok(ps) {
				why = fmt.Sprintf("node %d has %v", id, ps)
				break
			}
		}
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %s", what, timeout, why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (%s)", what, ctx.Err(), why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ids(n int) []int32 {
	var out []int32
	for id := int32(1); id <= int32(n); id++ {
		out = append(out, id)
	}
	return out
}

// createAssignedTopic creates topic with kafka-topics --replica-assignment and
// min.insync.replicas=2, and waits until every node has it fully in sync.
func (lc *localCluster) createAssignedTopic(ctx context.Context, cl *kgo.Client, topic string, assignment ...[]int32) {
	lc.t.Helper()
	var parts []string
	for _, r := range assignment {
		parts = append(parts, joinInt32(r, ":"))
	}
	lc.mustTool(ctx, "kafka-topics", "--bootstrap-server", lc.bootstrapFlag(), "--create", "--topic", topic,
		"--replica-assignment", strings.Join(parts, ","), "--config", "min.insync.replicas=2")
	err := lc.waitPartitions(ctx, cl, ids(lc.nodes), topic, 30*time.Second, topic+" created and in sync", func(ps map[int32]partitionMeta) bool {
		if len(ps) != len(assignment) {
			return false
		}
		for p, m := range ps {
			if !slices.Equal(m.replicas, assignment[p]) || m.leader < 0 || len(m.isr) != len(assignment[p]) {
				return false
			}
		}
		return true
	})
	if err != nil {
		lc.t.Fatal(err)
	}
}

func joinInt32(ids []int32, sep string) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, sep)
}

// fill writes n records of size bytes to topic's partition p with acks=all.
func fill(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, p int32, n, size int) {
	t.Helper()
	value := make([]byte, size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte("fill-" + strconv.Itoa(i)), Value: value})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("fill %s-%d: %v", topic, p, err)
	}
}

// checkReport fails the test unless the verify run lost, duplicated, reordered and moved
// nothing and acknowledged at least minAcked records.
func checkReport(t *testing.T, r verify.Report, minAcked int64) {
	t.Helper()
	t.Logf("report: attempted %d, acknowledged %d, read %d, lost %d, duplicated %d, reordered %d, longest stall %d ms, produce errors %v, problems %q",
		r.Attempted, r.Acknowledged, r.Read, r.Lost, r.Duplicated, r.Reordered, r.LongestStallMs, r.ProduceErrors, r.Problems)
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Moved != 0 || r.OffsetChanged != 0 {
		t.Fatalf("acknowledged records lost or mangled: %+v", r)
	}
	if r.Acknowledged < minAcked {
		t.Errorf("only %d records acknowledged, want at least %d", r.Acknowledged, minAcked)
	}
}

// replicaBytes is the size of node id's replica of topic-p (DescribeLogDirs), -1 if it has none.
func replicaBytes(ctx context.Context, adm *kadm.Client, id int32, topic string, p int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dirs, err := adm.DescribeBrokerLogDirs(ctx, id, kadm.TopicsSet{topic: {p: {}}})
	if err != nil {
		return 0, err
	}
	size := int64(-1)
	dirs.Each(func(d kadm.DescribedLogDir) {
		if pd, ok := d.Topics[topic][p]; ok {
			size = max(size, 0) + pd.Size
		}
	})
	return size, nil
}

// TestClusterMovePartitionThrottled: on four nodes, a partition holding 6 MiB is moved from
// {1,2,3} to {2,3,4} with kafka-reassign-partitions --execute --throttle 1 MiB/s while moldau
// verify writes to it with acks=all. The copy to node 4 keeps to the throttle (it takes at least
// as long as the bytes over the rate, less one window and one fetch), --verify reports the move
// completed and clears the throttles, node 1's copy of the partition is deleted. Then `moldau
// partition move` brings it back to {1,2,3} unthrottled, faster, and node 4's copy is deleted;
// every acknowledged record is read back.
func TestClusterMovePartitionThrottled(t *testing.T) {
	const (
		topic    = "moved"
		rate     = 1 << 20 // bytes/s
		fillSize = 6 << 20
		record   = 1 << 10
	)
	// Two one-second quota windows: the measured rate may run ahead by at most about one window.
	lc := startLocalCluster(t, 4, "", "KAFKA_REPLICATION_QUOTA_WINDOW_NUM=2", "KAFKA_REPLICATION_QUOTA_WINDOW_SIZE_SECONDS=1")
	ctx := testContext(t, 4*time.Minute)
	cl := lc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	lc.createAssignedTopic(ctx, cl, topic, []int32{1, 2, 3})
	fill(ctx, t, cl, topic, 0, fillSize/record, record)

	plan := filepath.Join(t.TempDir(), "reassignment.json")
	planJSON, _ := json.Marshal(map[string]any{"version": 1, "partitions": []map[string]any{{"topic": topic, "partition": 0, "replicas": []int32{2, 3, 4}}}})
	if err := os.WriteFile(plan, planJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	var moveTook, backTook time.Duration
	var copied int64
	move := func(ctx context.Context) error {
		start := time.Now()
		out, err := lc.tool(ctx, "kafka-reassign-partitions", "--bootstrap-server", lc.bootstrapFlag(),
			"--reassignment-json-file", plan, "--execute", "--throttle", strconv.Itoa(rate))
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Successfully started partition reassignment for "+topic+"-0") ||
			!strings.Contains(out, fmt.Sprintf("The inter-broker throttle limit was set to %d B/s", rate)) {
			return fmt.Errorf("kafka-reassign-partitions --execute printed:\n%s", out)
		}
		for {
			out, err := lc.tool(ctx, "kafka-reassign-partitions", "--bootstrap-server", lc.bootstrapFlag(),
				"--reassignment-json-file", plan, "--verify")
			if err != nil {
				return err
			}
			if strings.Contains(out, "Reassignment of partition "+topic+"-0 is completed.") {
				moveTook = time.Since(start)
				if !strings.Contains(out, "Clearing broker-level throttles") || !strings.Contains(out, "Clearing topic-level throttles on topic "+topic) {
					return fmt.Errorf("--verify of the completed move did not clear the throttles:\n%s", out)
				}
				break
			}
			if !strings.Contains(out, "Reassignment of partition "+topic+"-0 is still in progress.") {
				return fmt.Errorf("kafka-reassign-partitions --verify printed:\n%s", out)
			}
			if b, err := replicaBytes(ctx, adm, 4, topic, 0); err == nil {
				copied = max(copied, b)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err := lc.waitPartitions(ctx, cl, ids(4), topic, 30*time.Second, "replicas 2,3,4 all in sync on every node", func(ps map[int32]partitionMeta) bool {
			m := ps[0]
			return slices.Equal(m.replicas, []int32{2, 3, 4}) && slices.Equal(m.isr, []int32{2, 3, 4}) && m.leader >= 2
		}); err != nil {
			return err
		}
		// Node 1 no longer holds the partition: its files are gone.
		if err := waitGone(ctx, filepath.Join(lc.dir, "node-1", "data", topic+"-0"), 30*time.Second); err != nil {
			return err
		}
		// And back with moldau's own command, unthrottled: the same bytes, copied at full speed.
		start = time.Now()
		out, err = lc.tool(ctx, "moldau", "partition", "move", topic+":0", "--to", "1,2,3", "--bootstrap-server", lc.bootstrapFlag(), "--wait")
		if err != nil {
			return err
		}
		backTook = time.Since(start)
		if !strings.Contains(out, "Moving "+topic+"-0 from 2,3,4 to 1,2,3") {
			return fmt.Errorf("moldau partition move printed:\n%s", out)
		}
		return lc.waitPartitions(ctx, cl, ids(4), topic, 30*time.Second, "replicas 1,2,3 all in sync on every node", func(ps map[int32]partitionMeta) bool {
			m := ps[0]
			return slices.Equal(m.replicas, []int32{1, 2, 3}) && slices.Equal(m.isr, []int32{1, 2, 3}) && m.leader >= 1
		})
	}
	r, err := verify.Run(ctx, verify.Options{
		Bootstrap: lc.bootstrap(), Topic: topic, Producers: 2, Rate: 300, Duration: 2 * time.Second,
		During: move, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, 300)

	// The throttle: 6 MiB at 1 MiB/s, less what one window and one fetch (replica.fetch.max.bytes,
	// 1 MiB) may carry ahead of it. Unthrottled, the copy takes well under a second here.
	minTook := time.Duration(float64(fillSize-rate-1<<20) / rate * float64(time.Second))
	t.Logf("the move took %s (%d bytes seen on node 4 while it ran); the throttle allows no less than %s", moveTook, copied, minTook)
	if moveTook < minTook {
		t.Errorf("the move of %d bytes at a throttle of %d B/s took %s, less than %s: the throttle was not kept", fillSize, rate, moveTook, minTook)
	}
	t.Logf("the move back without a throttle took %s", backTook)
	// --verify removed the throttle configs from the brokers.
	bc, err := adm.DescribeBrokerConfigs(ctx, 1, 2, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range bc {
		for _, c := range rc.Configs {
			if (c.Key == "leader.replication.throttled.rate" || c.Key == "follower.replication.throttled.rate") &&
				c.Source == kmsg.ConfigSourceDynamicBrokerConfig {
				t.Errorf("broker %s still has %s=%s after --verify", rc.Name, c.Key, c.MaybeValue())
			}
		}
	}
	// The throttle, not the machine, set the pace: the same bytes unthrottled went faster.
	if backTook >= moveTook {
		t.Errorf("the unthrottled move back took %s, the throttled move %s", backTook, moveTook)
	}
	if err := waitGone(ctx, filepath.Join(lc.dir, "node-4", "data", topic+"-0"), 30*time.Second); err != nil {
		t.Error(err)
	}
}

// waitGone waits until path does not exist (a replica's directory deleted after a move).
func waitGone(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if os.IsNotExist(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still there %s after its replica moved away (%v)", path, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterDecommissionUnderLoad: `moldau broker decommission 4 --wait` on four nodes moves
// every replica off node 4 (a leader of one partition and a follower of three) while moldau
// verify writes with acks=all; then node 4 is stopped and every partition still takes writes,
// and every acknowledged record is read back.
func TestClusterDecommissionUnderLoad(t *testing.T) {
	const topic = "decom"
	lc := startLocalCluster(t, 4, "")
	ctx := testContext(t, 4*time.Minute)
	cl := lc.client()
	lc.createAssignedTopic(ctx, cl, topic, []int32{4, 1, 2}, []int32{1, 4, 3}, []int32{2, 3, 4}, []int32{3, 4, 1})
	probe := lc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	decommission := func(ctx context.Context) error {
		out, err := lc.tool(ctx, "moldau", "broker", "decommission", "4", "--bootstrap-server", lc.bootstrapFlag(), "--wait")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "can be stopped") {
			return fmt.Errorf("moldau broker decommission did not end saying node 4 can be stopped:\n%s", out)
		}
		if err := lc.waitPartitions(ctx, cl, ids(4), topic, 30*time.Second, "no replica on node 4", func(ps map[int32]partitionMeta) bool {
			for _, m := range ps {
				if slices.Contains(m.replicas, 4) || len(m.isr) != 3 || m.leader == 4 || m.leader < 0 {
					return false
				}
			}
			return len(ps) == 4
		}); err != nil {
			return err
		}
		if out, err := lc.run("", "stop", "4"); err != nil {
			return fmt.Errorf("cluster-local.sh stop 4: %v\n%s", err, out)
		}
		// Every partition takes an acks=all write with node 4 gone.
		for p := range int32(4) {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := probe.ProduceSync(pctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("after node 4 stopped")}).FirstErr()
			cancel()
			if err != nil {
				return fmt.Errorf("produce to %s-%d after node 4 stopped: %w", topic, p, err)
			}
		}
		return nil
	}
	r, err := verify.Run(ctx, verify.Options{
		Bootstrap: lc.bootstrap()[:3], Topic: topic, Producers: 2, Rate: 300, Duration: 2 * time.Second,
		During: decommission, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, 300)
}

// TestClusterPreferredElectionAfterRestart: on three nodes with auto.leader.rebalance.enable
// off, node 1 is restarted (its leaderships move away and stay away), then
// `kafka-leader-election --election-type PREFERRED --all-topic-partitions` puts every partition's
// leader back on its first replica, while moldau verify writes with acks=all.
func TestClusterPreferredElectionAfterRestart(t *testing.T) {
	const topic = "elect"
	lc := startLocalCluster(t, 3, "", "KAFKA_AUTO_LEADER_REBALANCE_ENABLE=false")
	ctx := testContext(t, 4*time.Minute)
	cl := lc.client()
	assignment := [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 3, 2}}
	lc.createAssignedTopic(ctx, cl, topic, assignment...)
	preferred := func(ps map[int32]partitionMeta) bool {
		for p, m := range ps {
			if m.leader != assignment[p][0] || len(m.isr) != 3 {
				return false
			}
		}
		return len(ps) == len(assignment)
	}
	if err := lc.waitPartitions(ctx, cl, ids(3), topic, 30*time.Second, "every leader its preferred replica", preferred); err != nil {
		t.Fatal(err)
	}
	elect := func(ctx context.Context) error {
		if out, err := lc.run("", "restart", "1"); err != nil {
			return fmt.Errorf("cluster-local.sh restart 1: %v\n%s", err, out)
		}
		if err := lc.waitPartitions(ctx, cl, ids(3), topic, 60*time.Second, "node 1 back in every ISR, leading nothing", func(ps map[int32]partitionMeta) bool {
			for _, m := range ps {
				if len(m.isr) != 3 || m.leader == 1 || m.leader < 0 {
					return false
				}
			}
			return true
		}); err != nil {
			return err
		}
		out, err := lc.tool(ctx, "kafka-leader-election", "--bootstrap-server", lc.bootstrapFlag(),
			"--election-type", "PREFERRED", "--all-topic-partitions")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Successfully completed leader election (PREFERRED) for partitions") ||
			!strings.Contains(out, topic+"-0") || !strings.Contains(out, topic+"-3") {
			return fmt.Errorf("kafka-leader-election did not report %s-0 and %s-3 elected:\n%s", topic, topic, out)
		}
		return lc.waitPartitions(ctx, cl, ids(3), topic, 30*time.Second, "every leader back on its preferred replica", preferred)
	}
	r, err := verify.Run(ctx, verify.Options{
		Bootstrap: lc.bootstrap(), Topic: topic, Producers: 2, Rate: 300, Duration: 2 * time.Second,
		During: elect, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, 300)
}
