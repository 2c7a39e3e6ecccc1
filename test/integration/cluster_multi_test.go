package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fastFailover makes a lost broker's session end in seconds.
var fastFailover = map[string]string{
	"broker.session.timeout.ms":    "4000",
	"broker.heartbeat.interval.ms": "1000",
	"replica.lag.time.max.ms":      "4000",
}

// TestClusterVerifyThreeNodes: moldau verify on three nodes it starts, through a kill -9, a
// SIGSTOP past the session timeout, a controlled restart and a network partition (proxies):
// nothing acknowledged is lost, duplicated or reordered.
func TestClusterVerifyThreeNodes(t *testing.T) {
	args := []string{"--nodes", "3", "--binary", moldauBin, "--faults", "kill,pause,restart,partition", "--fault-interval", "3s",
		"--duration", "50s", "--rate", "500", "--partitions", "6", "--replication-factor", "3", "--min-insync-replicas", "2"}
	for k, v := range fastFailover {
		args = append(args, "--node-config", k+"="+v)
	}
	r, stderr := runVerify(t, 5*time.Minute, args...)
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Moved != 0 {
		t.Fatalf("report %+v\nstderr:\n%s", r, stderr)
	}
	if len(r.Faults) < 4 {
		t.Errorf("%d faults, want kill, pause, restart and partition\nstderr:\n%s", len(r.Faults), stderr)
	}
	for _, f := range r.Faults {
		if f.Error != "" {
			t.Errorf("fault %s node %d: %s", f.Kind, f.Node, f.Error)
		}
	}
}

// partitionState is partition p of topic as one node's metadata has it.
func partitionState(ctx context.Context, adm *kadm.Client, topic string, p int32) (leader int32, isr []int32, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return -1, nil, err
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok {
		return -1, nil, fmt.Errorf("no partition %d of %s", p, topic)
	}
	if pd.Err != nil {
		return -1, nil, pd.Err
	}
	return pd.Leader, pd.ISR, nil
}

// nodePartitionState is partition p of topic as node id's own metadata has it: the request goes
// to that node's listener only (a kadm client would ask whichever broker it discovered).
func nodePartitionState(ctx context.Context, t *testing.T, tc *testCluster, id int32, topic string, p int32) (int32, []int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl := newClient(t, tc.node(id).ClientAddr)
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return -1, nil, err
	}
	for _, mt := range resp.(*kmsg.MetadataResponse).Topics {
		for _, mp := range mt.Partitions {
			if mp.Partition == p {
				if err := kerr.ErrorForCode(mp.ErrorCode); err != nil {
					return -1, nil, err
				}
				return mp.Leader, mp.ISR, nil
			}
		}
	}
	return -1, nil, fmt.Errorf("node %d has no partition %d of %s", id, p, topic)
}

// TestClusterIsolateLeader: the leader of a replicated partition is cut off from the other two
// nodes (raft and replication through the proxies) while acks=all producers keep writing; the
// others elect a new leader and acknowledgements resume; after the heal the old leader rejoins the
// ISR, and every acknowledged record is read back exactly once at its acknowledged offset.
func TestClusterIsolateLeader(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 3, proxies: true, props: fastFailover})
	ctx := testContext(t, 3*time.Minute)
	const topic = "isolate"
	mis := "2"
	adm := kadm.NewClient(tc.client())
	if resp, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &mis}, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	var leader int32
	waitFor(t, 30*time.Second, "partition 0 has a leader and a full ISR", func() (bool, string) {
		l, isr, err := partitionState(ctx, adm, topic, 0)
		leader = l
		return err == nil && l > 0 && len(isr) == 3, fmt.Sprintf("leader %d isr %v err %v", l, isr, err)
	})

	// acks=all load; every acknowledged record noted with its offset.
	type acked struct {
		offset int64
		value  string
	}
	var (
		mu    sync.Mutex
		acks  []acked
		count atomic.Int64
	)
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	cl := tc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MetadataMinAge(250*time.Millisecond))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			v := fmt.Sprintf("r%06d", i)
			cl.Produce(pctx, &kgo.Record{Topic: topic, Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acks = append(acks, acked{r.Offset, v})
					mu.Unlock()
					count.Add(1)
				}
			})
			if i%50 == 49 {
				_ = cl.Flush(pctx)
			}
		}
	}()
	waitFor(t, 30*time.Second, "acknowledgements before the cut", func() (bool, string) {
		return count.Load() >= 200, fmt.Sprint(count.Load())
	})

	tc.isolate(leader)
	others := slices.DeleteFunc([]int32{1, 2, 3}, func(id int32) bool { return id == leader })
	var newLeader int32
	waitFor(t, 30*time.Second, fmt.Sprintf("nodes %v elect a leader other than %d", others, leader), func() (bool, string) {
		l, isr, err := nodePartitionState(ctx, t, tc, others[0], topic, 0)
		newLeader = l
		return err == nil && l > 0 && l != leader, fmt.Sprintf("leader %d isr %v err %v", l, isr, err)
	})
	atCut := count.Load()
	waitFor(t, 30*time.Second, "acknowledgements resume under the new leader", func() (bool, string) {
		return count.Load() >= atCut+200, fmt.Sprintf("%d since the new leader", count.Load()-atCut)
	})

	tc.heal()
	waitFor(t, 60*time.Second, fmt.Sprintf("node %d rejoins the ISR", leader), func() (bool, string) {
		l, isr, err := partitionState(ctx, adm, topic, 0)
		return err == nil && slices.Contains(isr, leader), fmt.Sprintf("leader %d isr %v err %v", l, isr, err)
	})
	stopProducing()
	wg.Wait()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_ = cl.Flush(fctx)
	cancel()

	read := map[int64]string{}
	seen := map[string]int{}
	for _, r := range consumeAll(t, tc.node(newLeader).ClientAddr, topic) {
		read[r.Offset] = string(r.Value)
		seen[string(r.Value)]++
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range acks {
		if got, ok := read[a.offset]; !ok || got != a.value {
			t.Errorf("acknowledged %s at offset %d; read %q there (found %v)", a.value, a.offset, got, ok)
		}
		if seen[a.value] != 1 {
			t.Errorf("acknowledged %s read %d times", a.value, seen[a.value])
		}
	}
	t.Logf("%d acknowledged (%d after the cut), leader %d -> %d", len(acks), len(acks)-int(atCut), leader, newLeader)
}
