package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStorageAndRaftMetrics: with fsync before ack, every produce request waits on one
// group-committed sync of its log dir, so the batch sizes sum to the produce requests and each
// sync is timed once; the metadata quorum's gauges name this node as the leader, and the image
// catches up with the commit index once a topic is created.
func TestStorageAndRaftMetrics(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir, "log.flush.interval.messages", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := scrape(t, b)
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 1, 1, nil, "st"); err != nil {
		t.Fatal(err)
	}
	hook := &countRequests{}
	p := client(t, b, kgo.DefaultProduceTopic("st"), kgo.WithHooks(hook))
	for i := range 5 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produced := hook.n[kmsg.Produce.Int16()].Load()
	logDir := map[string]string{"log_dir": dir}
	hist := func(f promFamilies, name string) (count uint64, sum float64) {
		for _, m := range f.matching(name, logDir) {
			count += m.GetHistogram().GetSampleCount()
			sum += m.GetHistogram().GetSampleSum()
		}
		return count, sum
	}
	after := scrape(t, b)
	syncs, callers := hist(after, "moldau_log_group_commit_batch_size")
	timed, _ := hist(after, "moldau_log_fsync_duration_seconds")
	syncs0, callers0 := hist(before, "moldau_log_group_commit_batch_size")
	timed0, _ := hist(before, "moldau_log_fsync_duration_seconds")
	if got := callers - callers0; got != float64(produced) {
		t.Errorf("group commits covered %v callers, the client's %d produce requests each waited on one", got, produced)
	}
	if syncs-syncs0 < 1 || syncs-syncs0 > uint64(produced) {
		t.Errorf("%d syncs for %d produce requests", syncs-syncs0, produced)
	}
	if timed-timed0 != syncs-syncs0 {
		t.Errorf("%d syncs timed, %d counted", timed-timed0, syncs-syncs0)
	}

	leader := map[string]string{"current_state": "leader"}
	f := waitScrape(t, b, "the image to catch up with the commit index", func(f promFamilies) bool {
		return f.sum("moldau_raft_apply_lag", nil) == 0 &&
			f.sum("moldau_metadata_image_index", nil) > before.sum("moldau_metadata_image_index", nil)
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kafka_server_kafkaserver_brokerstate", nil, 3}, // RUNNING
		{"kafka_server_raftmetrics_current_leader", nil, float64(b.cfg.NodeID)},
		{"kafka_server_raftmetrics_current_state", leader, 1},
		{"kafka_server_raftmetrics_high_watermark", nil, f.sum("moldau_raft_commit_index", nil)},
		{"moldau_metadata_image_index", nil, f.sum("moldau_raft_commit_index", nil)},
		{"moldau_raft_applied_index", nil, f.sum("moldau_raft_commit_index", nil)},
	} {
		if got := f.sum(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if f.sum("kafka_server_raftmetrics_log_end_offset", nil) < f.sum("kafka_server_raftmetrics_high_watermark", nil) {
		t.Error("the metadata log ends before its high watermark")
	}
	if f.sum("kafka_server_raftmetrics_current_epoch", nil) < 1 {
		t.Error("no raft term")
	}
}
