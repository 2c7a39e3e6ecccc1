package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
)

// createAssigned creates topic with one partition on replicas (the first leads) and configs,
// through node 1's controller (forwarded to the raft leader).
func createAssigned(ctx context.Context, t *testing.T, b *Broker, topic string, configs map[string]string, replicas ...int32) {
	t.Helper()
	if configs == nil {
		configs = map[string]string{}
	}
	if _, err := b.Controller().CreateTopic(ctx, metadata.CreateTopic{Name: topic, Partitions: -1, ReplicationFactor: -1,
		Assignments: map[int32][]int32{0: replicas}, Configs: configs}); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// minISR2 is the topic config of the reassignment tests' topics.
var minISR2 = map[string]string{"min.insync.replicas": "2"}

// partitionOn is node b's image of topic's partition 0.
func partitionOn(b *Broker, topic string) (metadata.Partition, bool) {
	t, ok := b.Controller().Image().Topic(topic)
	if !ok || len(t.Partitions) == 0 {
		return metadata.Partition{}, false
	}
	return t.Partitions[0], true
}

// listAll asks ListPartitionReassignments with null topics (every reassignment in progress;
// kadm sends no request for an empty set): topic -> partition -> replicas, adding, removing.
func listAll(ctx context.Context, t *testing.T, cl *kgo.Client) map[string]map[int32][3][]int32 {
	t.Helper()
	resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("ListPartitionReassignments: %v code %d", err, resp.ErrorCode)
	}
	out := map[string]map[int32][3][]int32{}
	for _, rt := range resp.Topics {
		out[rt.Topic] = map[int32][3][]int32{}
		for _, rp := range rt.Partitions {
			out[rt.Topic][rp.Partition] = [3][]int32{rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas}
		}
	}
	return out
}

// follower is a node that is not the active controller.
func follower(t *testing.T, brokers []*Broker) *Broker {
	t.Helper()
	for _, b := range brokers {
		if id := b.Controller().ControllerID(); id >= 0 && id != b.cfg.NodeID {
			return b
		}
	}
	t.Fatal("no node knows another node as controller")
	return nil
}

// loadProducer produces "bg-<i>" records acks=all one at a time until stopped, remembering
// the acknowledged ones.
type loadProducer struct {
	mu    sync.Mutex
	acked []string
	errs  []error
	stop  chan struct{}
	done  chan struct{}

	stopOnce sync.Once
}

func startLoad(ctx context.Context, cl *kgo.Client) *loadProducer {
	lp := &loadProducer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(lp.done)
		for i := 0; ; i++ {
			select {
			case <-lp.stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			v := fmt.Sprintf("bg-%d", i)
			err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
			lp.mu.Lock()
			if err != nil {
				lp.errs = append(lp.errs, fmt.Errorf("produce %s: %w", v, err))
			} else {
				lp.acked = append(lp.acked, v)
			}
			lp.mu.Unlock()
		}
	}()
	return lp
}

func (lp *loadProducer) count() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.acked)
}

// finish stops the producer and returns what was acknowledged and the errors.
func (lp *loadProducer) finish() ([]string, []error) {
	lp.halt()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.acked, lp.errs
}

// halt stops the producer; it may be called more than once.
func (lp *loadProducer) halt() {
	lp.stopOnce.Do(func() { close(lp.stop) })
	<-lp.done
}

// TestClusterReassignUnderLoad: a partition on {1,2,3} (led by 1, min.insync.replicas=2,
// log start moved to 40) moves to {2,3,4} while an acks=all producer keeps writing: node 4
// starts its replica at the leader's log start, catches up and joins the ISR, which completes
// the move; leadership leaves node 1 for 2, node 1 deletes its replica's files, and every
// acknowledged record is read back once from the new replicas.
func TestClusterReassignUnderLoad(t *testing.T) {
	brokers := testClusterPlusBroker(t, "replica.lag.time.max.ms", "2000")
	waitCluster(t, brokers, "four brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	createAssigned(ctx, t, brokers[0], "moving", minISR2, 1, 2, 3)
	cl := clusterClient(t, brokers, kgo.DefaultProduceTopic("moving"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MetadataMinAge(100*time.Millisecond))
	adm := kadm.NewClient(clusterClient(t, []*Broker{follower(t, brokers)})) // writes are forwarded
	var expected []string
	for i := range 100 {
		v := fmt.Sprintf("pre-%d", i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
		if i >= 40 {
			expected = append(expected, v)
		}
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "moving", Partition: 0, At: 40})
	if res, err := adm.DeleteRecords(ctx, offs); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}

	load := startLoad(ctx, cl)
	waitUntil(ctx, t, "load running", func() bool { return load.count() >= 50 }, func() string { return "" })

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moving", 0, []int32{2, 3, 4})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil || res["moving"][0].Err != nil {
		t.Fatalf("reassign: %v %+v", err, res)
	}
	state := func() string {
		p, _ := partitionOn(brokers[0], "moving")
		s := fmt.Sprintf("node 1 image: %+v", p)
		if lp := brokers[0].parts.Get("moving", 0); lp != nil {
			snap, _ := lp.Replication()
			s += fmt.Sprintf("; node 1 leader state %+v LEO %d", snap, lp.LogEndOffset())
		}
		if p4 := brokers[3].parts.Get("moving", 0); p4 != nil {
			s += fmt.Sprintf("; node 4 log %d..%d hw %d", p4.LogStartOffset(), p4.LogEndOffset(), p4.HighWatermark())
		}
		return s
	}
	waitUntil(ctx, t, "the move completed on every node", func() bool {
		for _, b := range brokers {
			p, ok := partitionOn(b, "moving")
			if !ok || !slices.Equal(p.Replicas, []int32{2, 3, 4}) || p.Reassigning() || p.Leader == 1 {
				return false
			}
		}
		return true
	}, state)
	p, _ := partitionOn(brokers[0], "moving")
	if !slices.Equal(p.ISR, []int32{2, 3, 4}) || p.Leader != 2 {
		t.Fatalf("after the move: %+v, want leader 2, ISR [2 3 4]", p)
	}
	if listed := listAll(ctx, t, cl); len(listed) != 0 {
		t.Fatalf("ListPartitionReassignments after the move: %+v", listed)
	}
	n1 := brokers[0]
	dir := filepath.Join(n1.cfg.LogDirs[0], partition.DirName("moving", 0))
	waitUntil(ctx, t, "node 1 deleted its replica", func() bool {
		_, err := os.Stat(dir)
		return n1.parts.Get("moving", 0) == nil && errors.Is(err, os.ErrNotExist)
	}, func() string { return dir })
	if p4 := brokers[3].parts.Get("moving", 0); p4 == nil || p4.LogStartOffset() != 40 {
		t.Fatalf("node 4's replica does not start at the leader's log start 40: %v", p4)
	}

	// Producing goes on with the new leader.
	after := load.count()
	waitUntil(ctx, t, "records acknowledged after the move", func() bool { return load.count() >= after+50 }, func() string { return "" })
	acked, errs := load.finish()
	if len(errs) > 0 {
		t.Fatalf("%d produces failed during the move, first: %v", len(errs), errs[0])
	}
	expected = append(expected, acked...)

	seen := readDistinct(ctx, t, clusterClient(t, brokers[1:], kgo.ConsumeTopics("moving"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), len(expected))
	for _, v := range expected {
		if seen[v] != 1 {
			t.Fatalf("record %s read %d times", v, seen[v])
		}
	}
	if len(seen) != len(expected) {
		t.Fatalf("read %d distinct records, %d acknowledged", len(seen), len(expected))
	}
	// Every new replica holds the whole log.
	waitCluster(t, brokers[1:], "new replicas caught up", func(b *Broker) bool {
		part := b.parts.Get("moving", 0)
		return part != nil && part.LogEndOffset() == int64(100+len(acked)) && part.HighWatermark() == part.LogEndOffset()
	})
}

// TestClusterReassignCancel: a move to a stopped broker cannot complete; it is listed with its
// adding and removing replicas while producing goes on, and cancelling it restores the
// original replicas; a second cancel has nothing to cancel.
func TestClusterReassignCancel(t *testing.T) {
	brokers := testClusterPlusBroker(t, "replica.lag.time.max.ms", "2000")
	waitCluster(t, brokers, "four brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createAssigned(ctx, t, brokers[0], "stuck", minISR2, 1, 2, 3)
	stopBroker(t, brokers[3])
	live := brokers[:3]
	adm := kadm.NewClient(clusterClient(t, live))
	cl := clusterClient(t, live, kgo.DefaultProduceTopic("stuck"), kgo.RequiredAcks(kgo.AllISRAcks()))

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("stuck", 0, []int32{1, 2, 4})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil || res["stuck"][0].Err != nil {
		t.Fatalf("reassign: %v %+v", err, res)
	}
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"stuck": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	got := listed["stuck"][0]
	if !slices.Equal(got.Replicas, []int32{1, 2, 4, 3}) || !slices.Equal(got.AddingReplicas, []int32{4}) || !slices.Equal(got.RemovingReplicas, []int32{3}) {
		t.Fatalf("listed %+v, want replicas [1 2 4 3], adding [4], removing [3]", listed)
	}
	if all := listAll(ctx, t, cl); len(all) != 1 || len(all["stuck"]) != 1 || !slices.Equal(all["stuck"][0][0], []int32{1, 2, 4, 3}) {
		t.Fatalf("ListPartitionReassignments of all: %+v", all)
	}
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce during the stuck move: %v", err)
		}
	}

	req = nil
	req.CancelAssign("stuck", 0)
	if res, err = adm.AlterPartitionAssignments(ctx, req); err != nil || res["stuck"][0].Err != nil {
		t.Fatalf("cancel: %v %+v", err, res)
	}
	waitCluster(t, live, "the original replicas back on every node", func(b *Broker) bool {
		p, ok := partitionOn(b, "stuck")
		return ok && slices.Equal(p.Replicas, []int32{1, 2, 3}) && !p.Reassigning() && slices.Equal(p.ISR, []int32{1, 2, 3})
	})
	if all := listAll(ctx, t, cl); len(all) != 0 {
		t.Fatalf("listed after the cancel: %+v", all)
	}
	if res, err = adm.AlterPartitionAssignments(ctx, req); err != nil || !errors.Is(res["stuck"][0].Err, kerr.NoReassignmentInProgress) {
		t.Fatalf("second cancel: %v %+v", err, res)
	}
	// v1 with AllowReplicationFactorChange=false, through a node that forwards it: a target of
	// another size is refused, one of the same size accepted (a reorder, done at once).
	direct := clusterClient(t, []*Broker{follower(t, live)})
	for _, tc := range []struct {
		replicas []int32
		code     int16
	}{{[]int32{1, 2}, kerr.InvalidReplicationFactor.Code}, {[]int32{3, 2, 1}, 0}} {
		raw := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		raw.AllowReplicationFactorChange = false
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = "stuck"
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Partition, rp.Replicas = 0, tc.replicas
		rt.Partitions = append(rt.Partitions, rp)
		raw.Topics = append(raw.Topics, rt)
		resp, err := raw.RequestWith(ctx, direct)
		if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != tc.code {
			t.Fatalf("v1 keeping the replication factor, target %v: %v %+v, want code %d", tc.replicas, err, resp, tc.code)
		}
	}
	waitCluster(t, live, "the reorder on every node", func(b *Broker) bool {
		p, ok := partitionOn(b, "stuck")
		return ok && slices.Equal(p.Replicas, []int32{3, 2, 1}) && p.Leader == 1
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the cancel: %v", err)
	}
}
