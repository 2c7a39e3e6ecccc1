package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
)

// TestReadCommittedWithMarkers: transactional batches (appended as a verified producer's would
// be) and WriteTxnMarkers over the wire; a franz-go read_committed consumer sees committed and
// plain records only, up to the last stable offset (the client drops the aborted ones by the
// AbortedTransactions the broker answers), a read_uncommitted one sees everything, and
// ListOffsets answers the LSO for read_committed.
func TestReadCommittedWithMarkers(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p := b.parts.Get("tx", 0)
	if p == nil {
		t.Fatal("no local partition tx-0")
	}
	seqs := map[int64]int32{}
	write := func(pid int64, values ...string) {
		t.Helper()
		recs := make([]record.Record, len(values))
		for i, v := range values {
			recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte(v)}
		}
		spec := record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs}
		if pid >= 0 {
			spec.Transactional, spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = true, pid, 0, seqs[pid]
			seqs[pid] += int32(len(values))
		}
		if _, err := p.Append(record.Build(spec), -1, partition.OriginClient); err != nil {
			t.Fatal(err)
		}
	}
	markers := func(commit map[int64]bool) {
		t.Helper()
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		for _, pid := range []int64{1000, 2000} {
			c, ok := commit[pid]
			if !ok {
				continue
			}
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, 0, c, 1
			mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			mt.Topic, mt.Partitions = "tx", []int32{0, 7} // 7 does not exist
			m.Topics = append(m.Topics, mt)
			req.Markers = append(req.Markers, m)
		}
		// To the broker itself: kgo would shard the request by partition leader and refuse the
		// unknown partition before sending.
		brokers := cl.DiscoveredBrokers()
		if len(brokers) != 1 {
			t.Fatalf("%d brokers discovered", len(brokers))
		}
		kresp, err := brokers[0].Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		resp := kresp.(*kmsg.WriteTxnMarkersResponse)
		if len(resp.Markers) != len(req.Markers) {
			t.Fatalf("%d markers answered, want %d", len(resp.Markers), len(req.Markers))
		}
		for _, m := range resp.Markers {
			ps := m.Topics[0].Partitions
			if len(ps) != 2 || ps[0].ErrorCode != 0 || ps[1].ErrorCode != 3 { // UNKNOWN_TOPIC_OR_PARTITION
				t.Fatalf("marker of %d: %+v", m.ProducerID, ps)
			}
		}
	}
	write(1000, "a1", "a2")                          // 0-1, aborted below
	write(-1, "p1")                                  // 2
	write(2000, "c1")                                // 3, committed below
	markers(map[int64]bool{1000: false, 2000: true}) // 4, 5
	write(1000, "open")                              // 6: a new transaction, left open
	write(-1, "p2")                                  // 7

	consume := func(level kgo.IsolationLevel, n int) []string {
		t.Helper()
		c := client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tx": {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(100*time.Millisecond))
		var got []string
		for len(got) < n {
			fs := c.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %q, want %d records: %v", got, n, err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		c.Close()
		return got
	}
	if got, want := consume(kgo.ReadCommitted(), 2), []string{"p1", "c1"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	if got, want := consume(kgo.ReadUncommitted(), 6), []string{"a1", "a2", "p1", "c1", "open", "p2"}; !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted: %q, want %q", got, want)
	}
	committedEnd, err := adm.ListCommittedOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := committedEnd.Lookup("tx", 0); o.Offset != 6 {
		t.Fatalf("read_committed end offset %d, want the LSO 6", o.Offset)
	}
	if o, _ := end.Lookup("tx", 0); o.Offset != 8 {
		t.Fatalf("end offset %d, want 8", o.Offset)
	}
	// The fetch answer itself: the aborted transaction of producer 1000 from offset 0, and an
	// empty (not null) list past it; null for read_uncommitted.
	topics, err := adm.ListTopics(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(offset int64, level int8) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.IsolationLevel = -1, 0, 1<<20, level
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "tx", topics["tx"].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("fetch: %v %+v", err, resp)
		}
		return resp.Topics[0].Partitions[0]
	}
	sp := fetch(0, 1)
	if sp.ErrorCode != 0 || sp.LastStableOffset != 6 || sp.HighWatermark != 8 ||
		len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != 1000 || sp.AbortedTransactions[0].FirstOffset != 0 {
		t.Fatalf("read_committed fetch from 0: %+v", sp)
	}
	if sp := fetch(5, 1); sp.AbortedTransactions == nil || len(sp.AbortedTransactions) != 0 {
		t.Fatalf("read_committed fetch from 5: aborted %+v, want empty, not null", sp.AbortedTransactions)
	}
	if sp := fetch(0, 0); sp.AbortedTransactions != nil {
		t.Fatalf("read_uncommitted fetch: aborted %+v, want null", sp.AbortedTransactions)
	}

	// Commit the open transaction: the LSO moves to the end and read_committed sees the rest.
	markers(map[int64]bool{1000: true})
	if got, want := consume(kgo.ReadCommitted(), 4), []string{"p1", "c1", "open", "p2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed after the commit: %q, want %q", got, want)
	}
	// DescribeProducers: no transaction open, the coordinator epoch of the last marker.
	dp := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "tx", []int32{0}
	dp.Topics = append(dp.Topics, dt)
	dresp, err := dp.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	aps := dresp.Topics[0].Partitions[0].ActiveProducers
	if len(aps) != 2 || aps[0].ProducerID != 1000 || aps[0].CurrentTxnStartOffset != -1 || aps[0].CoordinatorEpoch != 1 {
		t.Fatalf("describe producers: %+v", aps)
	}
}
