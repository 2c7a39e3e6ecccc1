package broker

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// raftGauges is a prometheus.Collector of the metadata quorum's state on this node, read from
// hashicorp/raft at scrape time, under the names of Kafka's KRaft raft-metrics (as Strimzi's
// rules name them) where they mean the same, and moldau_raft_* for the apply lag:
//
//	kafka_server_raftmetrics_current_leader   the leader's node id, -1 when none is known
//	kafka_server_raftmetrics_current_epoch    the raft term (KRaft's epoch)
//	kafka_server_raftmetrics_high_watermark   the commit index (raft indexes start at 1, so
//	                                          index n is Kafka's offset n-1 and the commit
//	                                          index is the first offset not committed)
//	kafka_server_raftmetrics_log_end_offset   the last log index (likewise, the log end offset)
//	kafka_server_raftmetrics_current_state    1, with current_state="leader", "follower",
//	                                          "candidate" or "shutdown"
//	moldau_raft_commit_index                  entries committed by the quorum
//	moldau_raft_applied_index                 entries applied to the metadata state machine
//	moldau_metadata_image_index               the raft index of the metadata image this
//	                                          broker serves from
//	moldau_raft_apply_lag                     commit index − image index: committed metadata
//	                                          this broker does not act on yet
//
// A broker without a metadata quorum of its own serves none of them.
type raftGauges struct{ b *Broker }

var (
	raftLeader     = desc("kafka_server_raftmetrics_current_leader", "Node id of the metadata quorum's leader, -1 when none is known.")
	raftEpoch      = desc("kafka_server_raftmetrics_current_epoch", "The metadata quorum's current epoch (raft term).")
	raftHW         = desc("kafka_server_raftmetrics_high_watermark", "The metadata log's high watermark: its raft commit index.")
	raftLEO        = desc("kafka_server_raftmetrics_log_end_offset", "The metadata log's end offset: its last raft index.")
	raftState      = desc("kafka_server_raftmetrics_current_state", "1, labelled with this node's raft state.", "current_state")
	raftCommitted  = desc("moldau_raft_commit_index", "The metadata log's raft commit index on this node.")
	raftApplied    = desc("moldau_raft_applied_index", "The raft index last applied to the metadata state machine on this node.")
	raftImage      = desc("moldau_metadata_image_index", "The raft index of the metadata image this broker serves from.")
	raftApplyLagGa = desc("moldau_raft_apply_lag", "Committed metadata log entries not yet in the image this broker serves from (commit index − image index).")
)

func (g raftGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftLeader, raftEpoch, raftHW, raftLEO, raftState, raftCommitted, raftApplied, raftImage, raftApplyLagGa} {
		ch <- d
	}
}

func (g raftGauges) Collect(ch chan<- prometheus.Metric) {
	node := g.b.meta.Node()
	if node == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	r := node.Raft()
	leader := int32(-1)
	if id, _, ok := node.Leader(); ok {
		leader = id
	}
	commit := r.CommitIndex()
	image := g.b.meta.Image().Index()
	gauge(raftLeader, float64(leader))
	gauge(raftEpoch, float64(r.CurrentTerm()))
	gauge(raftHW, float64(commit))
	gauge(raftLEO, float64(r.LastIndex()))
	gauge(raftState, 1, strings.ToLower(r.State().String()))
	gauge(raftCommitted, float64(commit))
	gauge(raftApplied, float64(r.AppliedIndex()))
	gauge(raftImage, float64(image))
	gauge(raftApplyLagGa, float64(commit-min(image, commit)))
}
