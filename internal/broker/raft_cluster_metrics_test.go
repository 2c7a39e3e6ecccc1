package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// raftSample is the raft gauges of one scrape.
type raftSample struct {
	state                       map[string]float64 // current_state label → value
	leader, epoch, hw, leo, lag float64
	applied                     float64
}

func scrapeRaft(t *testing.T, b *Broker) raftSample {
	t.Helper()
	f := scrape(t, b)
	s := raftSample{state: map[string]float64{}}
	for _, m := range f.matching("kafka_server_raftmetrics_current_state", nil) {
		for _, l := range m.GetLabel() {
			if l.GetName() == "current_state" {
				s.state[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	s.leader = f.sum("kafka_server_raftmetrics_current_leader", nil)
	s.epoch = f.sum("kafka_server_raftmetrics_current_epoch", nil)
	s.hw = f.sum("kafka_server_raftmetrics_high_watermark", nil)
	s.leo = f.sum("kafka_server_raftmetrics_log_end_offset", nil)
	s.applied = f.sum("moldau_raft_applied_index", nil)
	s.lag = f.sum("moldau_raft_apply_lag", nil)
	return s
}

// waitRaft scrapes b until cond holds of its raft gauges, failing after 20 s.
func waitRaft(t *testing.T, b *Broker, what string, cond func(raftSample) bool) raftSample {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := scrapeRaft(t, b)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s: raft gauges %+v", b.cfg.NodeID, what, s)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising on time
	}
}

// TestRaftMetrics: the kafka_server_raftmetrics_* gauges (Strimzi's KRaft dashboard) and
// moldau_raft_apply_lag report the metadata quorum as raft has it: in a 3-node cluster one
// leader that every node names, the others followers, one epoch; a topic creation commits
// metadata entries that every node's high watermark and log end offset reach and applies them
// (lag 0, applied = commit index).
func TestRaftMetrics(t *testing.T) {
	brokers := testCluster(t, 3)
	waitCluster(t, brokers, "three brokers in every image", liveBrokers(3))
	caughtUp := func(s raftSample) bool { return s.leader > 0 && s.hw == s.leo && s.lag == 0 && s.applied == s.hw }
	before := make([]raftSample, len(brokers))
	for i, b := range brokers {
		before[i] = waitRaft(t, b, "caught up", caughtUp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(clusterClient(t, brokers)).CreateTopic(ctx, 3, 3, nil, "raftm")
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	// Every node has the topic in its image, so its raft applied the entries that created it.
	waitCluster(t, brokers, "topic raftm in every image", func(b *Broker) bool {
		_, ok := b.meta.Image().Topic("raftm")
		return ok
	})
	var leaders, followers int
	var leaderID, epoch float64
	for i, b := range brokers {
		s := waitRaft(t, b, "caught up after the create", func(s raftSample) bool { return caughtUp(s) && s.hw > before[i].hw })
		if len(s.state) != 1 {
			t.Errorf("node %d: current_state series %v, want one", b.cfg.NodeID, s.state)
		}
		switch {
		case s.state["leader"] == 1:
			leaders++
			if s.leader != float64(b.cfg.NodeID) {
				t.Errorf("node %d leads but names %v as leader", b.cfg.NodeID, s.leader)
			}
		case s.state["follower"] == 1:
			followers++
		}
		if i == 0 {
			leaderID, epoch = s.leader, s.epoch
		} else if s.leader != leaderID || s.epoch != epoch {
			t.Errorf("node %d: leader %v epoch %v, node 1 has %v, %v", b.cfg.NodeID, s.leader, s.epoch, leaderID, epoch)
		}
		if s.epoch < 1 {
			t.Errorf("node %d: epoch %v", b.cfg.NodeID, s.epoch)
		}
	}
	if leaders != 1 || followers != 2 {
		t.Errorf("%d leaders, %d followers; want 1 and 2", leaders, followers)
	}
}
