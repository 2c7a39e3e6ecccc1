package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The fault tests of issue 8 on three `moldau server` processes: kill -9 of a follower, SIGSTOP
// of a leader past its session (the zombie must not acknowledge), a rolling restart under an
// idempotent producer, a kill -9 of the raft leader while topics are being created. Each ends by
// counting what was acknowledged against what a fresh client reads back.

// ackedRecord is a record a producer had acknowledged, where it was acknowledged.
type ackedRecord struct {
	partition int32
	offset    int64
	value     string
}

// produceError is a produce error a client saw, with the record's value.
type produceError struct {
	value string
	err   error
}

// producerLoad produces uniquely numbered records (topic-0000000, topic-0000001, ...) to topic
// at about 500 a second with at most 100 unacknowledged, from one goroutine it owns, and notes
// every acknowledgement and every error. The client is acks=all and, unless opts say otherwise,
// idempotent (franz-go's default).
type producerLoad struct {
	topic string
	cl    *kgo.Client
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	count atomic.Int64
	mu    struct {
		sync.Mutex
		acks []ackedRecord
		errs []produceError
	}
}

// loadOpts: acks=all, and short request timeouts, so that a produce request stuck on a paused
// broker is given up and retried elsewhere in seconds (the brokers' session timeout is 4s).
var loadOpts = []kgo.Opt{
	kgo.RequiredAcks(kgo.AllISRAcks()),
	kgo.MetadataMinAge(250 * time.Millisecond),
	kgo.ProduceRequestTimeout(3 * time.Second),
	kgo.RequestTimeoutOverhead(2 * time.Second),
}

func startLoad(t *testing.T, tc *testCluster, topic string, opts ...kgo.Opt) *producerLoad {
	t.Helper()
	l := &producerLoad{
		topic: topic,
		cl:    tc.client(slices.Concat(loadOpts, opts)...),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go l.run()
	t.Cleanup(l.halt)
	return l
}

func (l *producerLoad) run() {
	defer close(l.done)
	inflight := make(chan struct{}, 100)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		for range 5 {
			select {
			case inflight <- struct{}{}:
			case <-l.stop:
				return
			}
			v := fmt.Sprintf("%s-%07d", l.topic, i)
			i++
			l.cl.Produce(context.Background(), &kgo.Record{Topic: l.topic, Value: []byte(v)}, func(r *kgo.Record, err error) {
				<-inflight
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.mu.errs = append(l.mu.errs, produceError{v, err})
					return
				}
				l.mu.acks = append(l.mu.acks, ackedRecord{r.Partition, r.Offset, v})
				l.count.Add(1)
			})
		}
	}
}

// halt stops producing (idempotent).
func (l *producerLoad) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// waitAcks waits until n more records than now are acknowledged.
func (l *producerLoad) waitAcks(t *testing.T, n int64, timeout time.Duration, what string) {
	t.Helper()
	from := l.count.Load()
	waitFor(t, timeout, fmt.Sprintf("%d acknowledgements %s", n, what), func() (bool, string) {
		got := l.count.Load() - from
		return got >= n, fmt.Sprintf("%d acknowledged", got)
	})
}

// finish stops producing, waits until every record produced has its answer, and returns the
// acknowledgements and errors.
func (l *producerLoad) finish(t *testing.T) ([]ackedRecord, []produceError) {
	t.Helper()
	l.halt()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		t.Fatalf("flush the producer: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.mu.acks), slices.Clone(l.mu.errs)
}

// countAcked reads topic back with a fresh client through addr and counts: every acknowledged
// record must be there exactly once, at the partition and offset it was acknowledged at, and no
// record of forbidden (values a broker must not have made visible) may be there at all. No
// value may appear twice.
func countAcked(t *testing.T, addr, topic string, acks []ackedRecord, forbidden []string) {
	t.Helper()
	type at struct {
		p int32
		o int64
	}
	stored := map[at]string{}
	seen := map[string]int{}
	// A new leader answers OFFSET_NOT_AVAILABLE until its high watermark reaches its epoch.
	adm := kadm.NewClient(newClient(t, addr))
	waitFor(t, 30*time.Second, fmt.Sprintf("end offsets of %s", topic), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err == nil, fmt.Sprint(err)
	})
	recs := consumeAll(t, addr, topic)
	next := map[int32]int64{}
	for _, r := range recs {
		if r.Offset != next[r.Partition] {
			t.Errorf("partition %d: offset %d follows %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition] = r.Offset + 1
		stored[at{r.Partition, r.Offset}] = string(r.Value)
		seen[string(r.Value)]++
	}
	var lost, dup int
	for _, a := range acks {
		if got, ok := stored[at{a.partition, a.offset}]; !ok || got != a.value {
			if lost++; lost <= 10 {
				t.Errorf("acknowledged %s at partition %d offset %d; read %q there (present %v)", a.value, a.partition, a.offset, got, ok)
			}
		}
	}
	for v, n := range seen {
		if n > 1 {
			if dup++; dup <= 10 {
				t.Errorf("%s read %d times", v, n)
			}
		}
	}
	for _, v := range forbidden {
		if seen[v] > 0 {
			t.Errorf("%s is visible to a consumer; it was never acknowledged and must not be", v)
		}
	}
	if lost > 0 || dup > 0 {
		t.Errorf("%d of %d acknowledged records lost or moved, %d values duplicated (read %d records)", lost, len(acks), dup, len(recs))
	}
	t.Logf("read back %d records of %s; all %d acknowledged ones at their offsets, none twice", len(recs), topic, len(acks))
}

// pinned are clients of one node each: their requests go to that node and to no other, so an
// answer is that node's own view (or what it forwarded).
type pinned struct {
	t   *testing.T
	tc  *testCluster
	mu  sync.Mutex
	cls map[int32]*kgo.Client
}

func newPinned(t *testing.T, tc *testCluster) *pinned {
	return &pinned{t: t, tc: tc, cls: map[int32]*kgo.Client{}}
}

// request sends req to node id only.
func (p *pinned) request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	p.mu.Lock()
	cl, ok := p.cls[id]
	if !ok {
		cl = newClient(p.t, p.tc.node(id).ClientAddr)
		p.cls[id] = cl
	}
	p.mu.Unlock()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// partitionView is one partition as one node's metadata has it.
type partitionView struct {
	leader      int32
	leaderEpoch int32
	isr         []int32
}

func (v partitionView) String() string {
	return fmt.Sprintf("leader %d epoch %d isr %v", v.leader, v.leaderEpoch, v.isr)
}

// partition asks node id for partition part of topic.
func (p *pinned) partition(ctx context.Context, id int32, topic string, part int32) (partitionView, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := p.request(ctx, id, req)
	if err != nil {
		return partitionView{}, err
	}
	md := resp.(*kmsg.MetadataResponse)
	for _, t := range md.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return partitionView{}, fmt.Errorf("node %d: topic %s: %w", id, topic, err)
		}
		for _, mp := range t.Partitions {
			if mp.Partition == part {
				v := partitionView{mp.Leader, mp.LeaderEpoch, slices.Sorted(slices.Values(mp.ISR))}
				return v, kerr.ErrorForCode(mp.ErrorCode)
			}
		}
	}
	return partitionView{}, fmt.Errorf("node %d has no partition %d of %s", id, part, topic)
}

// waitPartition waits until node id's view of partition part of topic satisfies ok.
func (p *pinned) waitPartition(ctx context.Context, id int32, topic string, part int32, timeout time.Duration, what string, ok func(partitionView) bool) partitionView {
	p.t.Helper()
	var v partitionView
	waitFor(p.t, timeout, fmt.Sprintf("node %d sees %s-%d: %s", id, topic, part, what), func() (bool, string) {
		var err error
		v, err = p.partition(ctx, id, topic, part)
		return err == nil && ok(v), fmt.Sprintf("%v (err %v)", v, err)
	})
	return v
}

// raftLeader is the metadata quorum's leader as DescribeQuorum through node id reports it.
func (p *pinned) raftLeader(ctx context.Context, id int32) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := p.request(ctx, id, req)
	if err != nil {
		return -1, err
	}
	dq := resp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(dq.ErrorCode); err != nil {
		return -1, err
	}
	if len(dq.Topics) != 1 || len(dq.Topics[0].Partitions) != 1 {
		return -1, fmt.Errorf("DescribeQuorum answered %d topics", len(dq.Topics))
	}
	qp := dq.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(qp.ErrorCode); err != nil {
		return -1, err
	}
	if qp.LeaderID < 1 {
		return -1, fmt.Errorf("no quorum leader (leader id %d)", qp.LeaderID)
	}
	return qp.LeaderID, nil
}

// waitRaftLeader waits until node id names a raft leader and returns it.
func (p *pinned) waitRaftLeader(ctx context.Context, id int32) int32 {
	p.t.Helper()
	var leader int32
	waitFor(p.t, 30*time.Second, fmt.Sprintf("node %d names the raft leader", id), func() (bool, string) {
		var err error
		leader, err = p.raftLeader(ctx, id)
		return err == nil, fmt.Sprint(err)
	})
	return leader
}

// createAssigned creates topic with one partition on replicas (in that order: replicas[0] is the
// preferred leader) and min.insync.replicas=2, through node via, and waits until via sees it led
// by replicas[0] with every replica in the ISR.
func (p *pinned) createAssigned(ctx context.Context, via int32, topic string, replicas ...int32) {
	p.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions, rt.ReplicationFactor = -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = "min.insync.replicas", kmsg.StringPtr("2")
	rt.Configs = append(rt.Configs, c)
	req.Topics = append(req.Topics, rt)
	resp, err := p.request(ctx, via, req)
	if err == nil {
		err = kerr.ErrorForCode(resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	}
	if err != nil {
		p.t.Fatalf("create %s on replicas %v: %v", topic, replicas, err)
	}
	p.waitPartition(ctx, via, topic, 0, 30*time.Second, fmt.Sprintf("led by %d, ISR %v", replicas[0], replicas), func(v partitionView) bool {
		return v.leader == replicas[0] && len(v.isr) == len(replicas)
	})
}

// Lines of the replica fetcher's log (internal/replica/fetcher.go) the fault tests look for.
const (
	logTruncated        = "truncated follower log to the leader's"
	logTruncatedBelowHW = "truncating follower log below its high watermark"
)

// noTruncationBelowHW fails the test if a node truncated below its high watermark, which a
// clean election never requires (KIP-101: the new leader has every committed record). Tests call
// it at their end, as a cleanup.
func noTruncationBelowHW(t *testing.T, tc *testCluster) {
	t.Cleanup(func() {
		for _, n := range tc.Nodes() {
			if strings.Contains(n.Output(), logTruncatedBelowHW) {
				t.Errorf("node %d truncated its log below its high watermark", n.ID)
			}
		}
	})
}

// others are the node ids 1..3 other than the given ones.
func others(ids ...int32) []int32 {
	return slices.DeleteFunc([]int32{1, 2, 3}, func(id int32) bool { return slices.Contains(ids, id) })
}

// TestClusterKillFollower: a follower of a replicated partition is killed with kill -9 under
// acks=all load; the ISR shrinks to the other two and acknowledgements go on; restarted on its
// data dir, the follower catches up (truncating what it must) and rejoins the ISR. To prove its
// log holds every acknowledged record, including those written while it was down, the leader is
// then stopped so that the restarted follower leads, and everything is read back from it.
func TestClusterKillFollower(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 3, props: fastFailover})
	ctx := testContext(t, 3*time.Minute)
	pn := newPinned(t, tc)
	noTruncationBelowHW(t, tc)
	// The raft leader stays up: the leader and the killed follower are the other two.
	ctrl := pn.waitRaftLeader(ctx, 1)
	rest := others(ctrl)
	leader, follower := rest[0], rest[1]
	const topic = "killfollower"
	pn.createAssigned(ctx, leader, topic, leader, follower, ctrl)

	load := startLoad(t, tc, topic)
	load.waitAcks(t, 300, 30*time.Second, "before the kill")

	tc.kill(follower)
	pn.waitPartition(ctx, leader, topic, 0, 30*time.Second, fmt.Sprintf("ISR without %d", follower), func(v partitionView) bool {
		return v.leader == leader && !slices.Contains(v.isr, follower) && len(v.isr) == 2
	})
	load.waitAcks(t, 500, 30*time.Second, fmt.Sprintf("with follower %d down", follower))

	tc.restart(follower)
	for _, id := range []int32{leader, follower} {
		pn.waitPartition(ctx, id, topic, 0, 60*time.Second, fmt.Sprintf("follower %d back in the ISR", follower), func(v partitionView) bool {
			return v.leader == leader && slices.Contains(v.isr, follower) && len(v.isr) == 3
		})
	}
	load.waitAcks(t, 300, 30*time.Second, "after the follower rejoined")
	acks, errs := load.finish(t)
	for _, e := range errs {
		t.Logf("produce error (record %s): %v", e.value, e.err)
	}

	// The restarted follower leads once the leader is gone (first in the assignment in the ISR).
	tc.stop(leader)
	pn.waitPartition(ctx, follower, topic, 0, 30*time.Second, fmt.Sprintf("led by the restarted follower %d", follower), func(v partitionView) bool {
		return v.leader == follower
	})
	countAcked(t, tc.node(follower).ClientAddr, topic, acks, nil)
}

// zombieProduce sends one acks=all Produce of value to partition 0 of topic straight to cl's
// seed broker (no client retries, no redirection) and returns the partition's answer.
func zombieProduce(ctx context.Context, cl *kgo.Client, topic, value string) (kmsg.ProduceResponseTopicPartition, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 1500
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = recordBatch(time.Now().UnixMilli(), [2]string{"zombie", value})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return kmsg.ProduceResponseTopicPartition{}, err
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return kmsg.ProduceResponseTopicPartition{}, fmt.Errorf("produce answered %d topics", len(pr.Topics))
	}
	return pr.Topics[0].Partitions[0], nil
}

// produceWrites counts the Produce requests a client has written to a connection.
type produceWrites struct{ n *atomic.Int64 }

func (h produceWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == kmsg.Produce.Int16() && err == nil {
		h.n.Add(1)
	}
}

// TestClusterPausedLeaderZombie: the leader of a replicated partition is stopped with SIGSTOP
// past its session timeout under acks=all load. The others fence it and elect a new leader, and
// acknowledgements resume. The old leader is also cut off from the other nodes right after the
// SIGSTOP, so that once continued with SIGCONT it cannot learn it was replaced: a zombie that
// believes it leads.
// Acks=all Produce requests sent straight to it (some written to its socket while it was
// stopped, the rest one after another) must all be refused (NOT_LEADER_OR_FOLLOWER,
// FENCED_LEADER_EPOCH, NOT_ENOUGH_REPLICAS(_AFTER_APPEND) or REQUEST_TIMED_OUT), during the cut
// and after the heal until it answers that it no longer leads; it then rejoins the ISR as a
// follower. Finally the new leader is stopped so that the old one leads again: every
// acknowledged record is read back from it and none the zombie may have appended is visible.
func TestClusterPausedLeaderZombie(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 3, proxies: true, props: fastFailover})
	ctx := testContext(t, 3*time.Minute)
	pn := newPinned(t, tc)
	noTruncationBelowHW(t, tc)
	ctrl := pn.waitRaftLeader(ctx, 1)
	rest := others(ctrl)
	old, next := rest[0], rest[1]
	const topic = "zombie"
	pn.createAssigned(ctx, ctrl, topic, old, next, ctrl)
	pn.waitPartition(ctx, old, topic, 0, 30*time.Second, fmt.Sprintf("led by %d", old), func(v partitionView) bool { return v.leader == old })

	// A client of the old leader alone, its produce connection opened by one acknowledged write.
	var written atomic.Int64
	zcl := newClient(t, tc.node(old).ClientAddr, kgo.WithHooks(produceWrites{&written}))
	// (The metadata may name it leader a moment before its partition has become leader.)
	var (
		first    kmsg.ProduceResponseTopicPartition
		firstVal string
		attempts int
	)
	waitFor(t, 10*time.Second, fmt.Sprintf("an acks=all produce straight to the leader %d", old), func() (bool, string) {
		var err error
		attempts++
		firstVal = fmt.Sprintf("before-the-pause-%d", attempts)
		first, err = zombieProduce(ctx, zcl, topic, firstVal)
		if err == nil {
			err = kerr.ErrorForCode(first.ErrorCode)
		}
		return err == nil, fmt.Sprint(err)
	})
	direct := []ackedRecord{{0, first.BaseOffset, firstVal}}

	load := startLoad(t, tc, topic)
	load.waitAcks(t, 300, 30*time.Second, "before the pause")

	tc.pause(old)
	paused := time.Now()
	// Cut off at once, before the others have anything new to tell it (what they sent a stopped
	// process would wait in its socket and be read first thing after SIGCONT).
	tc.isolate(old)
	nv := pn.waitPartition(ctx, ctrl, topic, 0, 30*time.Second, fmt.Sprintf("a leader other than the paused %d", old), func(v partitionView) bool {
		return v.leader > 0 && v.leader != old
	})
	t.Logf("new leader %d after %s: %v", nv.leader, time.Since(paused).Round(time.Millisecond), nv)
	load.waitAcks(t, 300, 30*time.Second, "under the new leader")

	var (
		mu       sync.Mutex
		zombies  []string
		answered = map[string]int{}
		stepped  bool
		// refusedAfterAppend counts REQUEST_TIMED_OUT and NOT_ENOUGH_REPLICAS_AFTER_APPEND.
		refusedAfterAppend int
	)
	// note judges one answer of the old leader; it reports whether the old leader has said it no
	// longer leads.
	note := func(v string, p kmsg.ProduceResponseTopicPartition, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			answered["no answer: "+err.Error()]++
			return false
		}
		answered[codeName(p.ErrorCode)]++
		switch p.ErrorCode {
		case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code:
			stepped = true
			return true
		case kerr.NotEnoughReplicasAfterAppend.Code, kerr.RequestTimedOut.Code:
			refusedAfterAppend++
		case kerr.NotEnoughReplicas.Code:
		case 0:
			t.Errorf("the old leader %d acknowledged the acks=all write %s at offset %d as a zombie", old, v, p.BaseOffset)
		default:
			t.Errorf("the old leader %d answered %s to %s; want it refused as not the leader", old, codeName(p.ErrorCode), v)
		}
		return false
	}
	const queued = 5
	before := written.Load()
	var wg sync.WaitGroup
	for i := range queued {
		v := fmt.Sprintf("zombie-queued-%d", i)
		zombies = append(zombies, v)
		wg.Go(func() {
			p, err := zombieProduce(ctx, zcl, topic, v)
			note(v, p, err)
		})
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("%d produce requests written to the paused node %d", queued, old), func() (bool, string) {
		return written.Load()-before >= queued, fmt.Sprint(written.Load() - before)
	})
	tc.resume(old)
	send := func(v string) bool {
		mu.Lock()
		zombies = append(zombies, v)
		mu.Unlock()
		p, err := zombieProduce(ctx, zcl, topic, v)
		return note(v, p, err)
	}
	for i := range 3 {
		send(fmt.Sprintf("zombie-cut-%d", i))
	}
	wg.Wait()
	mu.Lock()
	t.Logf("%d acks=all writes straight to the old leader %d while it was cut off: %v", len(zombies), old, answered)
	clear(answered)
	mu.Unlock()
	tc.heal()
	deadline := time.Now().Add(45 * time.Second)
	for i := 0; time.Now().Before(deadline) && !send(fmt.Sprintf("zombie-%04d", i)); i++ {
	}
	t.Logf("writes straight to the old leader %d after the heal: %v", old, answered)
	if !stepped {
		t.Fatalf("the old leader %d did not answer NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH within 45s of the heal", old)
	}

	for _, id := range []int32{ctrl, old} {
		pn.waitPartition(ctx, id, topic, 0, 60*time.Second, fmt.Sprintf("the old leader %d back in the ISR as a follower", old), func(v partitionView) bool {
			return v.leader == nv.leader && slices.Contains(v.isr, old) && len(v.isr) == 3
		})
	}
	load.waitAcks(t, 300, 30*time.Second, "after the old leader rejoined")
	acks, errs := load.finish(t)
	for _, e := range errs {
		t.Logf("produce error (record %s): %v", e.value, e.err)
	}

	// The old leader leads again (first in the assignment, in the ISR): whatever it appended as
	// a zombie must have been truncated away.
	tc.stop(nv.leader)
	pn.waitPartition(ctx, old, topic, 0, 30*time.Second, fmt.Sprintf("led by the old leader %d again", old), func(v partitionView) bool {
		return v.leader == old
	})
	countAcked(t, tc.node(old).ClientAddr, topic, append(direct, acks...), zombies)
	// A refusal after the append (the zombie waited for followers that never came) left records
	// in its log that it had to truncate on becoming a follower.
	mu.Lock()
	appended := refusedAfterAppend
	mu.Unlock()
	truncated := slices.ContainsFunc(strings.Split(tc.node(old).Output(), "\n"), func(line string) bool {
		return strings.Contains(line, logTruncated) && strings.Contains(line, "topic="+topic+" ")
	})
	if appended > 0 && !truncated {
		t.Errorf("the old leader %d refused %d writes after appending them, but never logged %q for %s", old, appended, logTruncated, topic)
	}
}

// retriableProduceError: an error an idempotent producer may see in a rolling restart.
func retriableProduceError(err error) bool {
	return kerr.IsRetriable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout)
}

// TestClusterRollingRestart: every node in turn is stopped with SIGTERM (a controlled shutdown:
// it leads nothing and is in no ISR) and started again, the next only once the restarted one is
// back in every ISR, under acks=all
// idempotent load on three partitions. Every produce error is recorded and must be retriable;
// every acknowledged record is read back exactly once.
func TestClusterRollingRestart(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 3, props: fastFailover})
	ctx := testContext(t, 3*time.Minute)
	pn := newPinned(t, tc)
	noTruncationBelowHW(t, tc)
	const topic = "rolling"
	const partitions = 3
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 3
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = "min.insync.replicas", kmsg.StringPtr("2")
	rt.Configs = append(rt.Configs, c)
	req.Topics = append(req.Topics, rt)
	resp, err := pn.request(ctx, 1, req)
	if err == nil {
		err = kerr.ErrorForCode(resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	fullISR := func(id int32, what string) {
		for p := range int32(partitions) {
			pn.waitPartition(ctx, id, topic, p, 60*time.Second, what, func(v partitionView) bool {
				return v.leader > 0 && len(v.isr) == 3
			})
		}
	}
	fullISR(1, "a leader and a full ISR")

	load := startLoad(t, tc, topic)
	load.waitAcks(t, 300, 30*time.Second, "before the restarts")
	for id := int32(1); id <= 3; id++ {
		tc.stop(id)
		other := others(id)[0]
		for p := range int32(partitions) {
			pn.waitPartition(ctx, other, topic, p, 30*time.Second, fmt.Sprintf("led by a node other than the stopped %d", id), func(v partitionView) bool {
				return v.leader > 0 && v.leader != id && !slices.Contains(v.isr, id)
			})
		}
		load.waitAcks(t, 100, 30*time.Second, fmt.Sprintf("while node %d is down", id))
		tc.restart(id)
		fullISR(id, fmt.Sprintf("node %d restarted and back in the ISR", id))
		load.waitAcks(t, 200, 30*time.Second, fmt.Sprintf("after node %d is back", id))
	}
	acks, errs := load.finish(t)
	for _, e := range errs {
		if !retriableProduceError(e.err) {
			t.Errorf("produce of %s: %v, not a retriable error", e.value, e.err)
		} else {
			t.Logf("produce of %s: %v (retriable)", e.value, e.err)
		}
	}
	countAcked(t, tc.node(1).ClientAddr, topic, acks, nil)
}

// topicResult is how the creation of one topic went.
type topicResult struct {
	name     string
	created  bool    // answered success, or TOPIC_ALREADY_EXISTS on a retry
	errs     []error // the answers before that
	afterAt  time.Time
	attempts int
	exists   bool // the answer that ended it was TOPIC_ALREADY_EXISTS
	took     time.Duration
}

// TestClusterKillControllerCreatingTopics: topics are created one after another through a node
// that is not the raft leader while the raft leader is killed with kill -9. Every CreateTopics
// that answered success (or TOPIC_ALREADY_EXISTS when retried after an error) names a topic that
// exists afterwards on every node, the killed one restarted included; every failure was a
// retriable error; creation resumes after the kill.
func TestClusterKillControllerCreatingTopics(t *testing.T) {
	tc := startTestCluster(t, clusterOptions{nodes: 3, props: fastFailover})
	ctx := testContext(t, 3*time.Minute)
	pn := newPinned(t, tc)
	ctrl := pn.waitRaftLeader(ctx, 1)
	via := others(ctrl)[0]

	var (
		mu      sync.Mutex
		results []topicResult
		created atomic.Int64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	create := func(name string) topicResult {
		r := topicResult{name: name}
		for attempt := 0; ; attempt++ {
			select {
			case <-stop:
				return r
			default:
			}
			r.attempts++
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 5000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 2
			req.Topics = append(req.Topics, rt)
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := pn.request(rctx, via, req)
			cancel()
			if err == nil {
				ct := resp.(*kmsg.CreateTopicsResponse)
				if len(ct.Topics) != 1 {
					err = fmt.Errorf("CreateTopics answered %d topics", len(ct.Topics))
				} else {
					err = kerr.ErrorForCode(ct.Topics[0].ErrorCode)
				}
			}
			// TOPIC_ALREADY_EXISTS on a first attempt too: only this test creates these names, so
			// it is this request, committed by the old raft leader and sent again by the
			// forwarding node to the new one after the connection broke, as Kafka's
			// NodeToControllerChannelManager sends a disconnected request again.
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				r.created, r.afterAt, r.exists = true, time.Now(), err != nil
				return r
			}
			r.errs = append(r.errs, err)
			if !retriableProduceError(err) && !isNetErr(err) {
				return r
			}
		}
	}
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			r := create(fmt.Sprintf("ct-%04d", i))
			r.took = time.Since(start)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			if r.created {
				created.Add(1)
			}
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(halt)

	waitCreated := func(n int64, what string) {
		from := created.Load()
		waitFor(t, 45*time.Second, fmt.Sprintf("%d topics created through node %d %s", n, via, what), func() (bool, string) {
			return created.Load()-from >= n, fmt.Sprint(created.Load() - from)
		})
	}
	waitCreated(10, "before the kill")
	tc.kill(ctrl)
	killed := time.Now()
	waitCreated(10, fmt.Sprintf("after the raft leader %d was killed", ctrl))
	newCtrl := pn.waitRaftLeader(ctx, via)
	t.Logf("raft leader %d -> %d", ctrl, newCtrl)
	tc.restart(ctrl)
	waitCreated(5, fmt.Sprintf("after node %d restarted", ctrl))
	halt()

	var names []string
	resumed := 0
	var longest topicResult
	for _, r := range results {
		if r.took > longest.took {
			longest = r
		}
		if r.exists {
			t.Logf("create %s: TOPIC_ALREADY_EXISTS after %d attempts (errors before: %v)", r.name, r.attempts, r.errs)
		}
		for _, err := range r.errs {
			if retriableProduceError(err) || isNetErr(err) {
				t.Logf("create %s: %v (retriable; %d attempts, created %v)", r.name, err, r.attempts, r.created)
			} else {
				t.Errorf("create %s: %v, not a retriable error", r.name, err)
			}
		}
		if r.created {
			names = append(names, r.name)
			if r.afterAt.After(killed) {
				resumed++
			}
		}
	}
	if len(results) > 0 && !results[len(results)-1].created {
		results = results[:len(results)-1] // cut short by the end of the loop
	}
	for _, r := range results {
		if !r.created {
			t.Errorf("topic %s was never created (%d attempts: %v)", r.name, r.attempts, r.errs)
		}
	}
	for id := int32(1); id <= 3; id++ {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d has all %d created topics", id, len(names)), func() (bool, string) {
			missing, err := missingTopics(ctx, pn, id, names)
			return err == nil && len(missing) == 0, fmt.Sprintf("missing %v (err %v)", missing, err)
		})
	}
	t.Logf("%d topics created through node %d, %d of them after the raft leader %d was killed; the longest creation, of %s, took %s",
		len(names), via, resumed, ctrl, longest.name, longest.took.Round(time.Millisecond))
}

// missingTopics are the names node id's Metadata does not list with one partition.
func missingTopics(ctx context.Context, pn *pinned, id int32, names []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := pn.request(ctx, id, kmsg.NewPtrMetadataRequest()) // every topic
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic != nil && t.ErrorCode == 0 && len(t.Partitions) == 1 {
			have[*t.Topic] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// isNetErr: the request got no answer (the connection broke or the client gave up waiting).
func isNetErr(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) ||
		kgo.IsRetryableBrokerErr(err)
}
