package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/verify"
)

// stallResult is the produce stall after a kill -9 of the leader of partition 0 under a steady
// acks=all load, measured on the acknowledgements the producers received. The gaps are those of
// internal/verify (verify.Check): the longest gap between successive acknowledgements that ends
// after the kill, the last one ending when producing stopped.
type stallResult struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	RecordSize int    `json:"record_size"`
	Rate       int    `json:"rate"` // records/s, all producers together
	Producers  int    `json:"producers"`
	WarmupMs   int64  `json:"warmup_ms"` // producing before the kill
	AfterMs    int64  `json:"after_ms"`  // producing after the kill
	// Kill is -stall-kill; PlacedLeader the node partition 0 was created led by (0: placed by
	// the cluster).
	Kill         string `json:"kill"`
	PlacedLeader int32  `json:"partition0_placed_leader,omitempty"`
	KilledNode   int32  `json:"killed_node"` // the leader of partition 0 at the kill
	// QuorumLeader is the metadata quorum's leader just before the kill (DescribeQuorum), -1 if
	// unknown: when it is the killed node, the quorum elects a new leader first.
	QuorumLeader int32 `json:"quorum_leader_before_kill"`
	KillAtMs     int64 `json:"kill_at_ms"` // since producing started
	// Partition0StallMs is the longest gap between successive acknowledgements of records in
	// partition 0 that ends after the kill; Partition0Recovered whether partition 0 had any
	// acknowledgement after the kill (if not, the gap runs to the end of producing).
	Partition0StallMs   int64 `json:"partition0_stall_ms"`
	Partition0StallAtMs int64 `json:"partition0_stall_at_ms"`
	Partition0Recovered bool  `json:"partition0_recovered"`
	// MaxPartitionStallMs is the same gap for the partition where it was longest.
	MaxPartitionStallMs int64 `json:"max_partition_stall_ms"`
	MaxStallPartition   int32 `json:"max_stall_partition"`
	// AnyAckStallMs is moldau verify's "longest produce stall": the longest gap between successive
	// acknowledgements of any partition after the kill (the other partitions keep being written).
	AnyAckStallMs int64 `json:"any_ack_stall_ms"`
	// NewLeader is the leader of partition 0 at the end (-1 unknown).
	NewLeader int32 `json:"partition0_leader_after"`
	// Verify is the whole accounting of verify.Check over the records read back at the end:
	// lost, duplicated, reordered, moved (0 expected).
	Verify verify.Report `json:"verify"`
	Error  string        `json:"error,omitempty"`
}

// -stall-kill values: where partition 0's leader is placed before it is killed.
const (
	stallKillNotQuorumLeader = "not-quorum-leader"
	stallKillQuorumLeader    = "quorum-leader"
	stallKillAsPlaced        = "as-placed"
)

// stallProducer is one idempotent acks=all client producing numbered records at a fixed rate, as
// moldau verify's producers do.
type stallProducer struct {
	id         int
	cl         *kgo.Client
	start      time.Time
	recordSize int
	mu         struct {
		sync.Mutex
		sent int64
		acks []verify.Ack
		errs map[string]int64
	}
}

// stallKey is "stall/<producer>/<seq>"; the value repeats it and pads it to the record size.
func stallKey(id verify.ID) []byte { return fmt.Appendf(nil, "stall/%d/%012d", id.Producer, id.Seq) }

func parseStallKey(k []byte) (verify.ID, bool) {
	parts := strings.Split(string(k), "/")
	if len(parts) != 3 || parts[0] != "stall" {
		return verify.ID{}, false
	}
	p, err1 := strconv.Atoi(parts[1])
	seq, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return verify.ID{}, false
	}
	return verify.ID{Producer: p, Seq: seq}, true
}

func (p *stallProducer) run(ctx context.Context, rate float64) {
	var seq int64
	verify.Pace(ctx, rate, func() bool {
		id := verify.ID{Producer: p.id, Seq: seq}
		seq++
		p.mu.Lock()
		p.mu.sent = seq
		p.mu.Unlock()
		key := stallKey(id)
		val := make([]byte, 0, p.recordSize)
		val = append(append(val, key...), ' ')
		for len(val) < p.recordSize {
			val = append(val, byte('a'+len(val)%26))
		}
		p.cl.Produce(context.Background(), &kgo.Record{Key: key, Value: val}, func(r *kgo.Record, err error) {
			at := time.Since(p.start)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.mu.errs[err.Error()]++
				return
			}
			p.mu.acks = append(p.mu.acks, verify.Ack{ID: id, Partition: r.Partition, Offset: r.Offset, At: at})
		})
		return true
	})
}

// runStall produces at -stall-rate to a new topic (6 partitions, replication factor 3,
// min.insync.replicas 2) for -stall-warmup, kills -9 the leader of partition 0, keeps producing
// for -stall-after, drains, reads everything back and measures the gaps.
func (h *harness) runStall(ctx context.Context, cs *clusterSystem, nodes []*clusterNode, bootstrap string) *stallResult {
	const topic, partitions, producers, recordSize = "stall", 6, 2, 1024
	res := &stallResult{Topic: topic, Partitions: partitions, RecordSize: recordSize, Rate: h.opts.stallRate, Producers: producers,
		WarmupMs: h.opts.stallWarmup.Milliseconds(), AfterMs: h.opts.stallAfter.Milliseconds(), Kill: h.opts.stallKill, KilledNode: -1, QuorumLeader: -1, NewLeader: -1}
	fail := func(format string, a ...any) *stallResult {
		res.Error = fmt.Sprintf(format, a...)
		return res
	}
	// Where partition 0's leader is: on a node that is not the metadata quorum's leader (the
	// common case: two of three nodes), on the quorum leader (the kill then needs a quorum
	// election too), or wherever the cluster places it.
	var assignment [][]int32
	if h.opts.stallKill != stallKillAsPlaced {
		q := quorumLeader(ctx, bootstrap)
		if q < 1 || int(q) > len(nodes) {
			return fail("-stall-kill %s: the metadata quorum's leader is not known (DescribeQuorum answered %d)", h.opts.stallKill, q)
		}
		first := q
		if h.opts.stallKill == stallKillNotQuorumLeader {
			first = q%int32(len(nodes)) + 1
		}
		assignment = stallAssignment(partitions, int32(len(nodes)), first)
		res.PlacedLeader = first
	}
	if err := createReplicatedTopic(ctx, bootstrap, topic, partitions, assignment); err != nil {
		return fail("%v", err)
	}
	seeds := strings.Split(bootstrap, ",")
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("bench-compare"))
	if err != nil {
		return fail("%v", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if h.opts.syncBetween {
		syscall.Sync()
	}
	idle := h.waitIdle(ctx)
	h.logf("%s stall (machine %.0f%% idle): %d records/s of %d B to %s (%d partitions, RF %d, min ISR %d) from %d acks=all idempotent producers; kill -9 the leader of partition 0 after %s, produce %s more",
		cs.key, idle, res.Rate, recordSize, topic, partitions, clusterRF, clusterMinISR, producers, h.opts.stallWarmup, h.opts.stallAfter)

	start := time.Now()
	prods := make([]*stallProducer, producers)
	for i := range prods {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(seeds...),
			kgo.ClientID(fmt.Sprintf("bench-compare-stall-%d", i)),
			kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent: franz-go's default with acks=all
			kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			// Room for every record of the whole run: a stalled partition must not block the
			// others' records in Produce.
			kgo.MaxBufferedRecords(max(10000, res.Rate*int(h.opts.stallWarmup+h.opts.stallAfter+time.Minute)/int(time.Second))),
			kgo.UnknownTopicRetries(-1),
			// As moldau verify: refresh metadata after a failure within 250 ms, not franz-go's
			// default 5 s, so the stall is the cluster's, not the client's backoff.
			kgo.MetadataMinAge(250*time.Millisecond),
		)
		if err != nil {
			for _, q := range prods[:i] {
				q.cl.Close()
			}
			return fail("producer %d: %v", i, err)
		}
		prods[i] = &stallProducer{id: i, cl: cl, start: start, recordSize: recordSize}
		prods[i].mu.errs = map[string]int64{}
	}
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var wg sync.WaitGroup
	for _, p := range prods {
		wg.Go(func() { p.run(pctx, float64(res.Rate)/producers) })
	}

	var faults []verify.Fault
	killErr := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.opts.stallWarmup):
		}
		leader, ok := verify.PartitionLeader(ctx, adm, topic, 0)
		if !ok || leader < 1 || int(leader) > len(nodes) {
			return fmt.Errorf("no leader of partition 0 known (got %d)", leader)
		}
		res.KilledNode = leader
		res.QuorumLeader = quorumLeader(ctx, bootstrap)
		n := nodes[leader-1]
		at := time.Since(start)
		if err := killNode(n); err != nil {
			return err
		}
		res.KillAtMs = at.Milliseconds()
		faults = append(faults, verify.Fault{Kind: "kill", Node: leader, At: at})
		h.logf("%s stall: %s: kill -9 node %d (pid %d), the leader of partition 0 (quorum leader: %d)", cs.key, at.Round(time.Millisecond), leader, n.proc.pid(), res.QuorumLeader)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.opts.stallAfter):
		}
		return nil
	}()
	stopProducing()
	wg.Wait()
	produceEnd := time.Since(start)
	dctx, dcancel := context.WithTimeout(ctx, 60*time.Second)
	for _, p := range prods {
		if err := p.cl.Flush(dctx); err != nil {
			h.logf("%s stall: producer %d: %d records unacknowledged after the 60 s drain: %v", cs.key, p.id, p.cl.BufferedProduceRecords(), err)
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			_ = p.cl.AbortBufferedRecords(actx)
			acancel()
		}
		p.cl.Close()
	}
	dcancel()
	if killErr != nil {
		return fail("%v", killErr)
	}
	if l, ok := verify.PartitionLeader(ctx, adm, topic, 0); ok {
		res.NewLeader = l
	}

	in := verify.Input{Sent: map[int]int64{}, Faults: faults, ProduceEnd: produceEnd, ProduceErrors: map[string]int64{}}
	for _, p := range prods {
		p.mu.Lock()
		in.Sent[p.id] = p.mu.sent
		in.Acks = append(in.Acks, p.mu.acks...)
		for e, n := range p.mu.errs {
			in.ProduceErrors[e] += n
		}
		p.mu.Unlock()
	}
	reads, foreign, err := readStallTopic(ctx, adm, seeds, topic)
	if err != nil {
		in.Problems = append(in.Problems, err.Error())
	}
	in.Reads, in.Foreign = reads, foreign
	res.Verify = verify.Check(in)
	res.Verify.Topic, res.Verify.Partitions, res.Verify.Replication, res.Verify.MinInsync = topic, partitions, clusterRF, clusterMinISR
	res.Verify.DurationMs = produceEnd.Milliseconds()
	res.AnyAckStallMs = res.Verify.LongestStallMs

	// The same gap per partition: verify.Check over that partition's acknowledgements alone.
	byPart := map[int32][]verify.Ack{}
	for _, a := range in.Acks {
		byPart[a.Partition] = append(byPart[a.Partition], a)
	}
	res.MaxStallPartition = -1
	for p := range int32(partitions) {
		r := verify.Check(verify.Input{Acks: byPart[p], Faults: faults, ProduceEnd: produceEnd})
		if p == 0 {
			res.Partition0StallMs, res.Partition0StallAtMs = r.LongestStallMs, r.LongestStallAtMs
			for _, a := range byPart[0] {
				if a.At > faults[0].At {
					res.Partition0Recovered = true
					break
				}
			}
		}
		if r.LongestStallMs > res.MaxPartitionStallMs || res.MaxStallPartition < 0 {
			res.MaxPartitionStallMs, res.MaxStallPartition = r.LongestStallMs, p
		}
	}
	h.logf("%s stall: partition 0 stalled %d ms (recovered: %v; new leader %d), the longest partition %d ms (partition %d), any acknowledgement %d ms; %d acknowledged, %d lost, %d duplicated, %d reordered; produce errors %v",
		cs.key, res.Partition0StallMs, res.Partition0Recovered, res.NewLeader, res.MaxPartitionStallMs, res.MaxStallPartition, res.AnyAckStallMs,
		res.Verify.Acknowledged, res.Verify.Lost, res.Verify.Duplicated, res.Verify.Reordered, res.Verify.ProduceErrors)
	if !res.Verify.OK {
		h.logf("%s stall: the read-back found problems: %v (logs in %s)", cs.key, res.Verify.Problems, filepath.Join(h.tmp, cs.key))
	}
	return res
}

// readStallTopic reads topic from the start to the end offsets listed first, from a client of its
// own, within a minute.
func readStallTopic(ctx context.Context, adm *kadm.Client, seeds []string, topic string) ([]verify.Read, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	want := map[int32]int64{}
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			ends.Each(func(lo kadm.ListedOffset) {
				if lo.Offset > 0 {
					want[lo.Partition] = lo.Offset
				}
			})
			break
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("read back: list end offsets of %s: %w", topic, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if len(want) == 0 {
		return nil, 0, nil
	}
	offsets := map[int32]kgo.Offset{}
	for p := range want {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("bench-compare-reader"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	var reads []verify.Read
	var foreign int64
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return reads, foreign, fmt.Errorf("read back: %s: %d partitions not read to their end offsets within 60 s", topic, len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			id, ok := parseStallKey(r.Key)
			if !ok || !strings.HasPrefix(string(r.Value), string(r.Key)+" ") {
				foreign++
				return
			}
			reads = append(reads, verify.Read{ID: id, Partition: r.Partition, Offset: r.Offset})
		})
	}
	return reads, foreign, nil
}
