package cli

// moldau cluster info | health.
//
// info: the cluster id, the active controller, the metadata quorum (raft leader, epoch, high
// watermark, voters, observers), metadata.version and every node: id, roles (broker: registered;
// controller: a raft voter), endpoint, rack, state (active or fenced, from DescribeCluster v2
// with IncludeFencedBrokers) and metadata offset lag (DescribeQuorum: the leader's high
// watermark minus the node's metadata offset, as kafka-metadata-quorum describe --replication).
//
// health: exit 0 when every partition has a leader, its full replica set in the ISR and at
// least min.insync.replicas in the ISR, and no live broker reports an offline log dir;
// otherwise exit 1 with one line per problem partition and offline log dir.
// Fenced brokers are listed as warnings and do not fail the check (a node stopped for good stays
// registered and fenced). Both take --json.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
)

const clusterUsage = `Usage: moldau cluster info|health [options]
       moldau cluster elect-leaders [--unclean] [TOPIC[:PARTITION] ...] [options]
       moldau cluster rebalance [options]

  info           The cluster id, the controller, the metadata quorum (raft leader, voters,
                 observers), metadata.version and every node (roles, endpoint, rack,
                 active or fenced, metadata offset lag).
  health         Exit 0 when every partition has a leader, all its replicas in sync and at least
                 min.insync.replicas in the ISR; exit 1 listing the under-replicated, offline and
                 under-min-ISR partitions and offline log dirs (fenced brokers are listed as
                 warnings).
  elect-leaders  Moves leadership back to the preferred replicas (moldau cluster elect-leaders --help).
  rebalance      Evens out replica and leader counts (moldau cluster rebalance --help).`

// nodeInfo is one node of moldau cluster info.
type nodeInfo struct {
	ID       int32    `json:"id"`
	Roles    []string `json:"roles"`              // "broker", "controller"
	Endpoint string   `json:"endpoint,omitempty"` // host:port ("" for a controller-only node)
	Rack     string   `json:"rack,omitempty"`
	// Fenced is true for a registered broker the controller fenced (down, or not caught up).
	Fenced bool `json:"fenced"`
	// ActiveController is true for the active controller (the raft leader).
	ActiveController bool `json:"activeController"`
	// MetadataOffset is the node's metadata log offset as the quorum leader knows it (-1 unknown);
	// MetadataLag the leader's high watermark minus it (nil unknown).
	MetadataOffset int64  `json:"metadataOffset"`
	MetadataLag    *int64 `json:"metadataLag"`
}

// clusterInfo is what moldau cluster info prints.
type clusterInfo struct {
	ClusterID       string     `json:"clusterId"`
	Controller      int32      `json:"controller"`
	RaftLeader      int32      `json:"raftLeader"` // -1 unknown
	RaftEpoch       int32      `json:"raftEpoch"`
	HighWatermark   int64      `json:"highWatermark"`
	Voters          []int32    `json:"voters"`
	Observers       []int32    `json:"observers"`
	MetadataVersion string     `json:"metadataVersion,omitempty"`
	Nodes           []nodeInfo `json:"nodes"`
	Topics          int        `json:"topics"`
	// QuorumError says why the quorum could not be described ("" when it was).
	QuorumError string `json:"quorumError,omitempty"`
}

func writeClusterInfo(w io.Writer, ci clusterInfo) {
	id := ci.ClusterID
	if id == "" {
		id = "(none)"
	}
	fmt.Fprintf(w, "Cluster ID: %s\n", id)
	ctrl := "none"
	if ci.Controller >= 0 {
		ctrl = strconv.Itoa(int(ci.Controller))
		for _, n := range ci.Nodes {
			if n.ID == ci.Controller && n.Endpoint != "" {
				ctrl = fmt.Sprintf("%d (%s)", n.ID, n.Endpoint)
			}
		}
	}
	fmt.Fprintf(w, "Controller: %s\n", ctrl)
	if ci.QuorumError != "" {
		fmt.Fprintf(w, "Metadata quorum: unknown (%s)\n", ci.QuorumError)
	} else {
		fmt.Fprintf(w, "Metadata quorum: leader %d, epoch %d, high watermark %d\n", ci.RaftLeader, ci.RaftEpoch, ci.HighWatermark)
		fmt.Fprintf(w, "Voters: %s\n", listIDs(ci.Voters))
		fmt.Fprintf(w, "Observers: %s\n", listIDs(ci.Observers))
	}
	if ci.MetadataVersion != "" {
		fmt.Fprintf(w, "Metadata version: %s\n", ci.MetadataVersion)
	}
	brokers, fenced := 0, 0
	for _, n := range ci.Nodes {
		if slices.Contains(n.Roles, "broker") {
			brokers++
			if n.Fenced {
				fenced++
			}
		}
	}
	if fenced > 0 {
		fmt.Fprintf(w, "Brokers: %d (%d fenced)\n", brokers, fenced)
	} else {
		fmt.Fprintf(w, "Brokers: %d\n", brokers)
	}
	fmt.Fprintf(w, "Nodes: %d\n", len(ci.Nodes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tROLES\tENDPOINT\tRACK\tSTATE\tMETADATA OFFSET\tLAG")
	for _, n := range ci.Nodes {
		state := "active"
		switch {
		case !slices.Contains(n.Roles, "broker"):
			state = "-"
		case n.Fenced:
			state = "fenced"
		}
		if n.ActiveController {
			state += " (active controller)"
		}
		offset, lag := "-", "-"
		if n.MetadataOffset >= 0 {
			offset = strconv.FormatInt(n.MetadataOffset, 10)
		}
		if n.MetadataLag != nil {
			lag = strconv.FormatInt(*n.MetadataLag, 10)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, strings.Join(n.Roles, ","), orDash(n.Endpoint), orDash(n.Rack), state, offset, lag)
	}
	tw.Flush()
	fmt.Fprintf(w, "Topics: %d\n", ci.Topics)
}

func listIDs(ids []int32) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runCluster(e *env, args []string) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: moldau cluster info|health")
	}
	if args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout, newFlagSet("cluster"), clusterUsage)
		return nil
	}
	sub := args[0]
	switch sub {
	case "elect-leaders":
		return runClusterElectLeaders(e, args[1:])
	case "rebalance":
		return runClusterRebalance(e, args[1:])
	case "info", "health":
	default:
		return e.usagef("unknown subcommand %q: want info, health, elect-leaders or rebalance", sub)
	}
	e.name = "moldau cluster " + sub
	fs := newFlagSet("cluster " + sub)
	var bootstrap string
	var asJSON bool
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	pos, err := e.parseArgs(fs, args[1:], clusterUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unexpected arguments: %v", pos)
	}
	cl, err := newClient(e.bootstrap(bootstrap))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if sub == "health" {
		return e.clusterHealth(cl, adm, md, asJSON)
	}
	ci := gatherClusterInfo(e, cl, md)
	if asJSON {
		return writeJSON(e.stdout, ci)
	}
	writeClusterInfo(e.stdout, ci)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// gatherClusterInfo asks for the fenced brokers (DescribeCluster v2), the quorum
// (DescribeQuorum) and metadata.version (ApiVersions); a broker that answers none of them
// still gets the Metadata part.
func gatherClusterInfo(e *env, cl *kgo.Client, md kadm.Metadata) clusterInfo {
	ctx, cancel := e.adminCtx()
	defer cancel()
	ci := clusterInfo{ClusterID: md.Cluster, Controller: md.Controller, RaftLeader: -1, Topics: len(md.Topics),
		Voters: []int32{}, Observers: []int32{}, Nodes: []nodeInfo{}}
	nodes := map[int32]*nodeInfo{}
	node := func(id int32) *nodeInfo {
		n, ok := nodes[id]
		if !ok {
			n = &nodeInfo{ID: id, MetadataOffset: -1}
			nodes[id] = n
		}
		return n
	}
	addBroker := func(id int32, host string, port int32, rack *string, fenced bool) {
		n := node(id)
		n.Roles = append(n.Roles, "broker")
		n.Endpoint = net.JoinHostPort(host, strconv.Itoa(int(port)))
		if rack != nil {
			n.Rack = *rack
		}
		n.Fenced = fenced
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeFencedBrokers = true
	if resp, err := dc.RequestWith(ctx, cl); err == nil && resp.ErrorCode == 0 {
		for _, b := range resp.Brokers {
			addBroker(b.NodeID, b.Host, b.Port, b.Rack, b.IsFenced)
		}
	} else {
		for _, b := range md.Brokers {
			addBroker(b.NodeID, b.Host, b.Port, b.Rack, false)
		}
	}

	dq := kmsg.NewPtrDescribeQuorumRequest()
	qt := kmsg.NewDescribeQuorumRequestTopic()
	qt.Topic = metadata.ClusterMetadataTopic
	qt.Partitions = append(qt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	dq.Topics = append(dq.Topics, qt)
	resp, err := dq.RequestWith(ctx, cl)
	switch {
	case err != nil:
		ci.QuorumError = err.Error()
	case kerr.ErrorForCode(resp.ErrorCode) != nil:
		ci.QuorumError = kerr.ErrorForCode(resp.ErrorCode).Error()
	case len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1:
		ci.QuorumError = "no __cluster_metadata partition in the answer"
	case kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode) != nil:
		ci.QuorumError = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode).Error()
	default:
		p := resp.Topics[0].Partitions[0]
		ci.RaftLeader, ci.RaftEpoch, ci.HighWatermark = p.LeaderID, p.LeaderEpoch, p.HighWatermark
		for i, set := range [][]kmsg.DescribeQuorumResponseTopicPartitionReplicaState{p.CurrentVoters, p.Observers} {
			for _, r := range set {
				n := node(r.ReplicaID)
				if i == 0 {
					ci.Voters = append(ci.Voters, r.ReplicaID)
					n.Roles = append(n.Roles, "controller")
				} else {
					ci.Observers = append(ci.Observers, r.ReplicaID)
				}
				n.MetadataOffset = r.LogEndOffset
				if r.LogEndOffset >= 0 {
					lag := max(p.HighWatermark-r.LogEndOffset, 0)
					n.MetadataLag = &lag
				}
			}
		}
		slices.Sort(ci.Voters)
		slices.Sort(ci.Observers)
	}

	if av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl); err == nil {
		for _, f := range av.FinalizedFeatures {
			if f.Name == metadata.FeatureMetadataVersion {
				ci.MetadataVersion = levelString(f.Name, f.MaxVersionLevel)
			}
		}
	}
	for _, n := range nodes {
		slices.SortFunc(n.Roles, func(a, b string) int { return cmp.Compare(a, b) })
		n.Roles = slices.Compact(n.Roles)
		n.ActiveController = n.ID == ci.Controller
		ci.Nodes = append(ci.Nodes, *n)
	}
	slices.SortFunc(ci.Nodes, func(a, b nodeInfo) int { return cmp.Compare(a.ID, b.ID) })
	return ci
}

// partitionProblem is one unhealthy partition of moldau cluster health.
type partitionProblem struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Problems  []string `json:"problems"` // "offline", "under-replicated", "under-min-isr"
	Leader    int32    `json:"leader"`
	Replicas  []int32  `json:"replicas"`
	ISR       []int32  `json:"isr"`
	MinISR    int      `json:"minIsr"`
}

// offlineLogDir is a log dir a broker reports offline (KAFKA_STORAGE_ERROR in DescribeLogDirs):
// its partitions answer errors until the broker restarts.
type offlineLogDir struct {
	Broker int32  `json:"broker"`
	Dir    string `json:"dir"`
	Error  string `json:"error"`
}

// healthReport is what moldau cluster health prints.
type healthReport struct {
	Healthy        bool               `json:"healthy"`
	Partitions     int                `json:"partitions"`
	Problems       []partitionProblem `json:"problems"`
	OfflineLogDirs []offlineLogDir    `json:"offlineLogDirs"`
	FencedBrokers  []int32            `json:"fencedBrokers"`
}

// checkHealth finds the problem partitions of md; minISR is each topic's min.insync.replicas.
// Offline log dirs make the cluster unhealthy too; fenced brokers do not.
func checkHealth(md kadm.Metadata, minISR map[string]int, offline []offlineLogDir, fenced []int32) healthReport {
	rep := healthReport{Problems: []partitionProblem{}, OfflineLogDirs: offline, FencedBrokers: fenced}
	if rep.OfflineLogDirs == nil {
		rep.OfflineLogDirs = []offlineLogDir{}
	}
	if rep.FencedBrokers == nil {
		rep.FencedBrokers = []int32{}
	}
	for _, t := range md.Topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			rep.Partitions++
			pp := partitionProblem{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader,
				Replicas: p.Replicas, ISR: p.ISR, MinISR: max(minISR[t.Topic], 1)}
			if p.Leader < 0 {
				pp.Problems = append(pp.Problems, "offline")
			}
			if len(p.ISR) < len(p.Replicas) {
				pp.Problems = append(pp.Problems, "under-replicated")
			}
			if len(p.ISR) < pp.MinISR {
				pp.Problems = append(pp.Problems, "under-min-isr")
			}
			if len(pp.Problems) > 0 {
				rep.Problems = append(rep.Problems, pp)
			}
		}
	}
	rep.Healthy = len(rep.Problems) == 0 && len(rep.OfflineLogDirs) == 0
	return rep
}

func writeHealth(w io.Writer, rep healthReport) {
	switch {
	case rep.Healthy:
		fmt.Fprintf(w, "Healthy: %d partitions, all with a leader and every replica in sync.\n", rep.Partitions)
	case len(rep.Problems) == 0:
		fmt.Fprintf(w, "Unhealthy: %d partitions with a leader and every replica in sync, but offline log dirs.\n", rep.Partitions)
	default:
		fmt.Fprintf(w, "Unhealthy: %d of %d partitions have problems.\n", len(rep.Problems), rep.Partitions)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TOPIC\tPARTITION\tPROBLEMS\tLEADER\tREPLICAS\tISR\tMIN ISR")
		for _, p := range rep.Problems {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\t%d\n", p.Topic, p.Partition, strings.Join(p.Problems, ","), p.Leader,
				joinComma(p.Replicas), joinComma(p.ISR), p.MinISR)
		}
		tw.Flush()
	}
	for _, d := range rep.OfflineLogDirs {
		fmt.Fprintf(w, "Offline log dir: broker %d %s (%s)\n", d.Broker, d.Dir, d.Error)
	}
	if len(rep.FencedBrokers) > 0 {
		fmt.Fprintf(w, "Warning: fenced brokers (registered but not serving): %s\n", listIDs(rep.FencedBrokers))
	}
}

func joinComma(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

func (e *env) clusterHealth(cl *kgo.Client, adm *kadm.Client, md kadm.Metadata, asJSON bool) error {
	ctx, cancel := e.adminCtx()
	defer cancel()
	minISR := map[string]int{}
	if topics := md.Topics.Names(); len(topics) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return fmt.Errorf("describe topic configs: %w", err)
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return fmt.Errorf("describe configs of %s: %w", rc.Name, rc.Err)
			}
			for _, c := range rc.Configs {
				if c.Key == "min.insync.replicas" && c.Value != nil {
					n, err := strconv.Atoi(*c.Value)
					if err != nil {
						return fmt.Errorf("topic %s: min.insync.replicas %q: %w", rc.Name, *c.Value, err)
					}
					minISR[rc.Name] = n
				}
			}
		}
	}
	var fenced []int32
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeFencedBrokers = true
	if resp, err := dc.RequestWith(ctx, cl); err == nil && resp.ErrorCode == 0 {
		for _, b := range resp.Brokers {
			if b.IsFenced {
				fenced = append(fenced, b.NodeID)
			}
		}
		slices.Sort(fenced)
	}
	// Every live broker's log dirs, without their partitions.
	var offline []offlineLogDir
	dirs, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{})
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: note: not every broker described its log dirs: %v\n", e.name, err)
	}
	for _, d := range dirs.Sorted() {
		if d.Err != nil {
			offline = append(offline, offlineLogDir{Broker: d.Broker, Dir: d.Dir, Error: d.Err.Error()})
		}
	}
	rep := checkHealth(md, minISR, offline, fenced)
	if asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		writeHealth(e.stdout, rep)
	}
	if !rep.Healthy {
		return &exitError{code: 1}
	}
	return nil
}
