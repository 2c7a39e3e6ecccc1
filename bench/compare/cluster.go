package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clusterNodes is the size of the clusters of the cluster systems (moldau3, kafka3).
const clusterNodes = 3

// clusterRF and clusterMinISR are the replication factor and min.insync.replicas of every topic
// the cluster workloads write.
const (
	clusterRF     = 3
	clusterMinISR = 2
)

// clusterSystem is a peer run as clusterNodes combined broker+controller nodes on this machine,
// each its own process with its own data dir and ports on 127.0.0.1.
type clusterSystem struct {
	*system // key, title and the load generator; start and ready are not used
	// start writes node n's configuration (every node's addresses are known) and starts it.
	start func(ctx context.Context, h *harness, nodes []*clusterNode, n *clusterNode) (*proc, error)
	// prepare, if set, runs once for the cluster before any node starts (Kafka's storage format).
	prepare func(ctx context.Context, h *harness, nodes []*clusterNode) error
}

// clusterNode is one node of a cluster system.
type clusterNode struct {
	id         int32
	clientAddr string // PLAINTEXT listener
	ctrlAddr   string // CONTROLLER listener
	dir        string // server.properties, data/, server.log
	proc       *proc
}

var clusterSystems = []*clusterSystem{
	{
		system: &system{key: "moldau3", title: "Moldau (3 nodes)", bench: func(h *harness) []string { return []string{h.bin("moldau"), "bench"} }},
		start:  startMoldauNode,
	},
	{
		system:  &system{key: "kafka3", title: "Kafka (3 nodes)", bench: func(h *harness) []string { return []string{h.bin("moldau"), "bench"} }},
		prepare: formatKafkaCluster,
		start: func(ctx context.Context, h *harness, nodes []*clusterNode, n *clusterNode) (*proc, error) {
			return h.startKafkaNode(n.dir, fmt.Sprintf("kafka3 node %d", n.id))
		},
	},
}

// nodeProperties are the Kafka keys of a combined broker+controller node of a static quorum of
// nodes, as internal/verify writes them for Moldau; Kafka reads the same file.
// config (-cluster-config key=value lines) goes last and wins.
func nodeProperties(nodes []*clusterNode, n *clusterNode, extra map[string]string, config []string) string {
	var voters []string
	for _, m := range nodes {
		voters = append(voters, fmt.Sprintf("%d@%s", m.id, m.ctrlAddr))
	}
	p := map[string]string{
		"node.id":                        strconv.Itoa(int(n.id)),
		"process.roles":                  "broker,controller",
		"controller.quorum.voters":       strings.Join(voters, ","),
		"listeners":                      "PLAINTEXT://" + n.clientAddr + ",CONTROLLER://" + n.ctrlAddr,
		"advertised.listeners":           "PLAINTEXT://" + n.clientAddr,
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                       filepath.Join(n.dir, "data"),
	}
	maps.Copy(p, extra)
	for _, kv := range config {
		k, v, _ := strings.Cut(kv, "=")
		p[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# node %d of a %d-node cluster started by bench/compare\n", n.id, len(nodes))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}

// startMoldauNode writes the node's server.properties and starts `moldau server --config` on it.
// The flush policy is the single-node comparison's: Kafka's default (no fsync on the write path),
// set explicitly, unless -moldau-defaults.
func startMoldauNode(ctx context.Context, h *harness, nodes []*clusterNode, n *clusterNode) (*proc, error) {
	httpAddr, err := freeAddr() // the HTTP listener (console, /metrics) on a port of its own, never 8080
	if err != nil {
		return nil, err
	}
	extra := map[string]string{"http.listener": httpAddr}
	if !h.opts.moldauDefaults {
		extra["log.flush.interval.messages"] = kafkaNoFlush
	}
	path := filepath.Join(n.dir, "server.properties")
	if err := os.WriteFile(path, []byte(nodeProperties(nodes, n, extra, h.opts.clusterConfig)), 0o644); err != nil {
		return nil, err
	}
	return startProc(fmt.Sprintf("moldau3 node %d", n.id), filepath.Join(n.dir, "server.log"), n.dir, nil,
		h.bin("moldau"), "server", "--config", path)
}

// formatKafkaCluster writes every node's server.properties (Kafka's defaults otherwise: the
// internal topics' replication factor 3 and min ISR 2 fit three nodes) and formats each node's
// storage with one cluster id. The quorum is static (controller.quorum.voters), so the format
// takes no --standalone or --initial-controllers.
func formatKafkaCluster(ctx context.Context, h *harness, nodes []*clusterNode) error {
	id := newKafkaClusterID()
	for _, n := range nodes {
		if err := h.formatKafka(ctx, fmt.Sprintf("kafka3 node %d", n.id), n.dir, nodeProperties(nodes, n, nil, h.opts.clusterConfig), id); err != nil {
			return err
		}
	}
	return nil
}

// runCluster starts cs's three nodes with fresh data dirs, runs W1 and W4 against a topic of
// replication factor 3 and min.insync.replicas 2, then the leader-kill stall, and stops them.
func (h *harness) runCluster(ctx context.Context, cs *clusterSystem) *systemResult {
	res := &systemResult{System: cs.key, Title: cs.title, Nodes: clusterNodes, Workloads: map[string]*benchResult{}, LoadAvgStart: loadAvg()}
	h.logf("%s: start", cs.key)
	dir := filepath.Join(h.tmp, cs.key)
	nodes, err := h.startClusterNodes(ctx, cs, dir, res)
	defer h.stopCluster(cs, nodes, res)
	if err != nil {
		res.fail("start: %v", err)
		return res
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.clientAddr)
	}
	bootstrap := strings.Join(addrs, ",")
	wl := h.workloads()
	for _, name := range []string{"W1", "W4"} {
		if ctx.Err() != nil {
			return res
		}
		if err := clusterAlive(nodes); err != nil {
			res.fail("before %s: %v", name, err)
			return res
		}
		w := wl[name]
		topic := w.args[slices.Index(w.args, "-topic")+1]
		if err := createReplicatedTopic(ctx, bootstrap, topic, 6, nil); err != nil {
			res.fail("%s: %v", name, err)
			continue
		}
		var pids []int
		for _, n := range nodes {
			pids = append(pids, n.proc.pid())
		}
		br, err := h.bench(ctx, cs.system, pids, bootstrap, dir, w)
		if br != nil {
			res.Workloads[name] = br
		}
		if err != nil {
			res.fail("%s: %v", name, err)
		}
		if name == "W1" {
			var sum float64
			for _, n := range nodes {
				kb, err := procStatusKB(n.proc.pid(), "VmHWM")
				if err != nil {
					res.fail("read RSS of node %d: %v", n.id, err)
					sum = 0
					break
				}
				sum += float64(kb) / 1024
			}
			res.RSSW1MiB = sum
		}
	}
	if ctx.Err() != nil {
		return res
	}
	if err := clusterAlive(nodes); err != nil {
		res.fail("before the leader kill: %v", err)
		return res
	}
	res.Stall = h.runStall(ctx, cs, nodes, bootstrap)
	if res.Stall.Error != "" {
		res.fail("leader kill: %s", res.Stall.Error)
	}
	return res
}

// clusterAlive reports a node that has exited.
func clusterAlive(nodes []*clusterNode) error {
	for _, n := range nodes {
		select {
		case <-n.proc.exited:
			return fmt.Errorf("node %d exited: %v (see %s)", n.id, n.proc.err, filepath.Join(n.dir, "server.log"))
		default:
		}
	}
	return nil
}

// startClusterNodes picks the ports, prepares and starts every node, and waits until each one's
// Metadata lists all three brokers. res gets the time from the first exec to the last node ready.
func (h *harness) startClusterNodes(ctx context.Context, cs *clusterSystem, dir string, res *systemResult) ([]*clusterNode, error) {
	var nodes []*clusterNode
	for i := range clusterNodes {
		client, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ctrl, err := freeAddr()
		if err != nil {
			return nil, err
		}
		n := &clusterNode{id: int32(i + 1), clientAddr: client, ctrlAddr: ctrl, dir: filepath.Join(dir, fmt.Sprintf("node-%d", i+1))}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if cs.prepare != nil {
		if err := cs.prepare(ctx, h, nodes); err != nil {
			return nil, err
		}
	}
	idle := h.waitIdle(ctx)
	start := time.Now()
	var started []*clusterNode
	for _, n := range nodes {
		p, err := cs.start(ctx, h, nodes, n)
		if err != nil {
			return started, fmt.Errorf("node %d: %w", n.id, err)
		}
		n.proc = p
		started = append(started, n)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() {
			go func() { // a node that dies while starting should not cost the whole timeout
				select {
				case <-n.proc.exited:
					cancel()
				case <-readyCtx.Done():
				}
			}()
			if err := kafkaBrokersReady(readyCtx, n.clientAddr, clusterNodes); err != nil {
				select {
				case <-n.proc.exited:
					err = fmt.Errorf("node %d: %w (exited: %v; see %s)", n.id, err, n.proc.err, filepath.Join(n.dir, "server.log"))
				default:
					err = fmt.Errorf("node %d: %w", n.id, err)
				}
				errs <- err
				return
			}
			errs <- nil
		}()
	}
	var all []error
	for range nodes {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	if err := errors.Join(all...); err != nil {
		return started, err
	}
	cold := time.Since(start)
	res.ColdStartMs = float64(cold) / 1e6
	var pids []string
	for _, n := range nodes {
		pids = append(pids, fmt.Sprintf("%d (pid %d)", n.id, n.proc.pid()))
	}
	h.logf("%s: %d nodes serving after %s: %s (machine %.0f%% idle before)", cs.key, len(nodes), cold.Round(time.Millisecond), strings.Join(pids, ", "), idle)
	return nodes, nil
}

// stopCluster stops every node still running and removes the data, keeping the logs; after an
// error it prints the end of each node's log.
func (h *harness) stopCluster(cs *clusterSystem, nodes []*clusterNode, res *systemResult) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.proc != nil {
			wg.Go(func() { n.proc.stop(60 * time.Second) })
		}
	}
	wg.Wait()
	for _, n := range nodes {
		if err := os.RemoveAll(filepath.Join(n.dir, "data")); err != nil {
			res.fail("remove %s: %v", n.dir, err)
		}
		if len(res.Errors) > 0 {
			if b, err := os.ReadFile(filepath.Join(n.dir, "server.log")); err == nil {
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				lines = lines[max(0, len(lines)-15):]
				h.logf("%s node %d: the end of its log:\n    %s", cs.key, n.id, strings.Join(lines, "\n    "))
			}
		}
	}
	h.logf("%s: stopped", cs.key)
}

// createReplicatedTopic creates topic with replication factor 3 and min.insync.replicas 2
// (retrying what a cluster still settling answers) and waits until every partition has a leader
// and all three replicas in its ISR.
//
// assignment, if not nil, is the replicas of each partition (the first is the preferred leader,
// which a new topic's partition starts led by); otherwise the cluster places them.
func createReplicatedTopic(ctx context.Context, bootstrap, topic string, partitions int32, assignment [][]int32) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ClientID("bench-compare"))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	mis := strconv.Itoa(clusterMinISR)
	for {
		var err error
		if assignment == nil {
			var resp kadm.CreateTopicResponse
			resp, err = adm.CreateTopic(ctx, partitions, clusterRF, map[string]*string{"min.insync.replicas": &mis}, topic)
			if err == nil {
				err = resp.Err
			}
		} else {
			err = createAssigned(ctx, cl, topic, assignment)
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.NotController) {
			return fmt.Errorf("create topic %s (replication factor %d, min.insync.replicas %d): %w", topic, clusterRF, clusterMinISR, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topic %s: %w (last error %v)", topic, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	var last string
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			t := md.Topics[topic]
			switch {
			case t.Err != nil:
				last = t.Err.Error()
			case len(t.Partitions) != int(partitions):
				last = fmt.Sprintf("%d partitions listed", len(t.Partitions))
			default:
				last = ""
				for _, p := range t.Partitions {
					if p.Err != nil || p.Leader < 0 || len(p.ISR) < clusterRF {
						last = fmt.Sprintf("partition %d: leader %d, ISR %v, error %v", p.Partition, p.Leader, p.ISR, p.Err)
						break
					}
				}
				if last == "" {
					return nil
				}
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: not every partition has a leader and a full ISR: %s: %w", topic, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createAssigned creates topic with the given replicas per partition and min.insync.replicas 2.
func createAssigned(ctx context.Context, cl *kgo.Client, topic string, assignment [][]int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions, t.ReplicationFactor = -1, -1
	for p, replicas := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), replicas
		t.ReplicaAssignment = append(t.ReplicaAssignment, a)
	}
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = "min.insync.replicas", kmsg.StringPtr(strconv.Itoa(clusterMinISR))
	t.Configs = append(t.Configs, c)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("CreateTopics answered %d topics", len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		if msg := resp.Topics[0].ErrorMessage; msg != nil {
			return fmt.Errorf("%w: %s", err, *msg)
		}
		return err
	}
	return nil
}

// stallAssignment places the stall topic's partitions on nodes 1..n: partition p led by the node
// p after first, the followers the others in order; partition 0 is led by first.
func stallAssignment(partitions int, n int32, first int32) [][]int32 {
	out := make([][]int32, partitions)
	for p := range partitions {
		leader := (first-1+int32(p))%n + 1
		replicas := []int32{leader}
		for i := int32(1); i < n; i++ {
			replicas = append(replicas, (leader-1+i)%n+1)
		}
		out[p] = replicas
	}
	return out
}

// quorumLeader asks for the metadata quorum's leader (DescribeQuorum through a broker); -1 if the
// answer does not say.
func quorumLeader(ctx context.Context, bootstrap string) int32 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ClientID("bench-compare"))
	if err != nil {
		return -1
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return -1
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return -1
	}
	return rp.LeaderID
}

// killNode sends SIGKILL to node n's process group (kill -9) and waits for it to be gone.
func killNode(n *clusterNode) error {
	if err := syscall.Kill(-n.proc.pid(), syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 node %d (pid %d): %w", n.id, n.proc.pid(), err)
	}
	select {
	case <-n.proc.exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("node %d (pid %d) still running 30 s after SIGKILL", n.id, n.proc.pid())
	}
}
