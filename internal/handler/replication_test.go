package handler

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/server"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// replicationFixture is broker 1's handler, with brokers 1 and 2 registered and topic "t"
// assigned to them as given (the first replica leads), its partitions opened locally with no
// role, for the test to give them one.
type replicationFixture struct {
	h     *Handler
	meta  *metadata.Controller
	parts *partition.Manager
	topic *metadata.Topic
}

func newReplicationFixture(t *testing.T, minISR int, assign map[int32][]int32) *replicationFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	meta, err := metadata.Start(ctx, metadata.Config{NodeID: 1, RaftDir: t.TempDir(), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	for _, id := range []int32{1, 2} {
		if err := meta.RegisterBroker(ctx, metadata.Broker{NodeID: id, Host: "127.0.0.1", Port: 9090 + id}); err != nil {
			t.Fatal(err)
		}
	}
	topic, err := meta.CreateTopic(ctx, metadata.CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1, Assignments: assign})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := partition.NewManager([]string{t.TempDir()}, wallClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parts.Close() })
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	s := partition.Settings{Log: cfg, MaxMessageBytes: 1 << 20, MinInsyncReplicas: minISR, SyncBeforeAck: true}
	for _, p := range topic.Partitions {
		if _, err := parts.Ensure("t", p.Partition, s, -1); err != nil {
			t.Fatal(err)
		}
	}
	h := New(Options{NodeID: 1}, meta, parts, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return &replicationFixture{h: h, meta: meta, parts: parts, topic: topic}
}

func (f *replicationFixture) part(i int32) *partition.Partition { return f.parts.Get("t", i) }

func handle(t *testing.T, h *Handler, r kmsg.Request) kmsg.Response {
	t.Helper()
	if !h.SupportedVersion(r.Key(), r.GetVersion()) {
		t.Fatalf("api %d v%d is not registered", r.Key(), r.GetVersion())
	}
	resp, err := h.Handle(context.Background(), &server.Request{Key: r.Key(), Version: r.GetVersion(), Msg: r})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// decodeFetch encodes a (chunked) fetch response as it goes on the wire and decodes it.
func decodeFetch(t *testing.T, resp kmsg.Response) *kmsg.FetchResponse {
	t.Helper()
	c, ok := resp.(*server.Chunked)
	if !ok {
		t.Fatalf("fetch answered with %T", resp)
	}
	var raw bytes.Buffer
	for _, ch := range c.Chunks {
		if ch.File == nil {
			raw.Write(ch.Bytes)
			continue
		}
		b := make([]byte, ch.Len)
		if _, err := ch.File.ReadAt(b, ch.Pos); err != nil {
			t.Fatal(err)
		}
		raw.Write(b)
	}
	out := kmsg.NewPtrFetchResponse()
	out.Version = c.GetVersion()
	if err := out.ReadFrom(raw.Bytes()); err != nil {
		t.Fatalf("decode fetch response: %v", err)
	}
	return out
}

// fetchReq is a fetch of partition 0 of t at offset, by replica (-1: a consumer).
func fetchReq(topicID [16]byte, replica int32, brokerEpoch int64, offset int64, lastEpoch, leaderEpoch int32) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = 15
	r.ReplicaState.ID, r.ReplicaState.Epoch = replica, brokerEpoch
	r.MaxBytes, r.MinBytes, r.MaxWaitMillis = 1<<20, 1, 0
	r.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.LastFetchedEpoch, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = offset, lastEpoch, leaderEpoch, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

func fetchPartition(t *testing.T, f *replicationFixture, r *kmsg.FetchRequest) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp := decodeFetch(t, handle(t, f.h, r))
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func produceReq(acks int16, timeoutMs int32, n int) *kmsg.ProduceRequest {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Value: []byte("v")}
	}
	r := kmsg.NewPtrProduceRequest()
	r.Version = 10
	r.Acks, r.TimeoutMillis = acks, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = record.Build(record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
	rt.Partitions = append(rt.Partitions, rp)
	r.Topics = append(r.Topics, rt)
	return r
}

func producePartition(t *testing.T, resp kmsg.Response) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", pr)
	}
	return pr.Topics[0].Partitions[0]
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFollowerFetchMovesHighWatermark: with ISR [1, 2], an acks=all produce completes only once
// follower 2's fetch (ReplicaState {2, epoch}) reports the offset; the follower reads past the
// high watermark, consumers never do.
func TestFollowerFetchMovesHighWatermark(t *testing.T) {
	f := newReplicationFixture(t, 2, map[int32][]int32{0: {1, 2}})
	p := f.part(0)
	epoch := f.topic.Partitions[0].LeaderEpoch
	if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: epoch, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	id := f.topic.ID

	done := make(chan kmsg.ProduceResponseTopicPartition, 1)
	go func() {
		r := produceReq(-1, 10_000, 3)
		resp, err := f.h.Handle(context.Background(), &server.Request{Key: r.Key(), Version: r.Version, Msg: r})
		sp := kmsg.NewProduceResponseTopicPartition()
		sp.ErrorCode = -1 // UNKNOWN_SERVER_ERROR stands for "no answer"
		if pr, ok := resp.(*kmsg.ProduceResponse); err == nil && ok && len(pr.Topics) == 1 && len(pr.Topics[0].Partitions) == 1 {
			sp = pr.Topics[0].Partitions[0]
		}
		done <- sp
	}()
	waitCond(t, "the produce's append", func() bool { return p.LogEndOffset() == 3 })

	// A consumer sees nothing: the high watermark has not moved.
	if cp := fetchPartition(t, f, fetchReq(id, -1, -1, 0, -1, epoch)); cp.ErrorCode != 0 || cp.HighWatermark != 0 || len(cp.RecordBatches) != 0 {
		t.Fatalf("consumer fetch before replication: err %d, HW %d, %d bytes", cp.ErrorCode, cp.HighWatermark, len(cp.RecordBatches))
	}
	// The follower reads the batch, past the high watermark.
	fp := fetchPartition(t, f, fetchReq(id, 2, 7, 0, -1, epoch))
	if fp.ErrorCode != 0 || fp.HighWatermark != 0 || len(fp.RecordBatches) == 0 {
		t.Fatalf("follower fetch at 0: err %d, HW %d, %d bytes", fp.ErrorCode, fp.HighWatermark, len(fp.RecordBatches))
	}
	select {
	case sp := <-done:
		t.Fatalf("acks=all produce answered (%+v) before the follower had the records", sp)
	default:
	}
	// Its next fetch, at 3, says it has them: the high watermark moves and the produce completes.
	fp = fetchPartition(t, f, fetchReq(id, 2, 7, 3, epoch, epoch))
	if fp.ErrorCode != 0 || fp.HighWatermark != 3 || fp.LogStartOffset != 0 {
		t.Fatalf("follower fetch at 3: err %d, HW %d, log start %d", fp.ErrorCode, fp.HighWatermark, fp.LogStartOffset)
	}
	select {
	case sp := <-done:
		if sp.ErrorCode != 0 || sp.BaseOffset != 0 {
			t.Fatalf("acks=all produce: err %d, base offset %d", sp.ErrorCode, sp.BaseOffset)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acks=all produce did not complete after the follower's fetch")
	}
	if cp := fetchPartition(t, f, fetchReq(id, -1, -1, 0, -1, epoch)); cp.HighWatermark != 3 || len(cp.RecordBatches) == 0 {
		t.Fatalf("consumer fetch after replication: HW %d, %d bytes", cp.HighWatermark, len(cp.RecordBatches))
	}

	// A follower whose last epoch is one the leader never had is told where to truncate.
	fp = fetchPartition(t, f, fetchReq(id, 2, 7, 3, epoch+5, epoch))
	if fp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch with an epoch above the leader's: err %d", fp.ErrorCode)
	}
	if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: epoch + 2, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	fp = fetchPartition(t, f, fetchReq(id, 2, 7, 5, epoch+1, epoch+2))
	if fp.DivergingEpoch.Epoch != epoch || fp.DivergingEpoch.EndOffset != 3 || len(fp.RecordBatches) != 0 {
		t.Fatalf("diverging epoch %+v, want {%d 3}", fp.DivergingEpoch, epoch)
	}
	// Stale and unknown leader epochs.
	if fp := fetchPartition(t, f, fetchReq(id, 2, 7, 3, -1, epoch)); fp.ErrorCode != kerr.FencedLeaderEpoch.Code || fp.CurrentLeader.LeaderID != 1 {
		t.Fatalf("fetch with an old leader epoch: err %d, current leader %+v", fp.ErrorCode, fp.CurrentLeader)
	}
	if fp := fetchPartition(t, f, fetchReq(id, 2, 7, 3, -1, epoch+3)); fp.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("fetch with a future leader epoch: err %d", fp.ErrorCode)
	}
}

// TestProduceAcksAllErrors: NOT_ENOUGH_REPLICAS before the append, REQUEST_TIMED_OUT when the
// follower does not fetch in time, OFFSET_NOT_AVAILABLE from a new leader whose high watermark
// lags its epoch start.
func TestProduceAcksAllErrors(t *testing.T) {
	f := newReplicationFixture(t, 2, map[int32][]int32{0: {1, 2}})
	p := f.part(0)
	epoch := f.topic.Partitions[0].LeaderEpoch
	if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: epoch, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	if sp := producePartition(t, handle(t, f.h, produceReq(-1, 1000, 1))); sp.ErrorCode != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR [1], min ISR 2: err %d", sp.ErrorCode)
	}
	if p.LogEndOffset() != 0 {
		t.Fatal("a NOT_ENOUGH_REPLICAS produce was appended")
	}
	p.UpdateISR([]int32{1, 2}, 1)
	if sp := producePartition(t, handle(t, f.h, produceReq(-1, 50, 1))); sp.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("acks=all that nobody replicates: err %d", sp.ErrorCode)
	}
	if sp := producePartition(t, handle(t, f.h, produceReq(1, 50, 1))); sp.ErrorCode != 0 || sp.BaseOffset != 1 {
		t.Fatalf("acks=1: err %d, base offset %d", sp.ErrorCode, sp.BaseOffset)
	}

	// Leader again in a new epoch, at log end 2 with its high watermark still 0.
	if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: epoch + 1, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "t"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	code := func() int16 {
		return handle(t, f.h, lo).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
	}
	if c := code(); c != kerr.OffsetNotAvailable.Code {
		t.Fatalf("ListOffsets latest on a new leader with a lagging high watermark: err %d", c)
	}
	fetchPartition(t, f, fetchReq(f.topic.ID, 2, 7, 2, -1, epoch+1))
	if c := code(); c != 0 {
		t.Fatalf("ListOffsets latest once the follower confirmed: err %d", c)
	}
}

// TestNotLeaderNamesLeader: a consumer fetch or a produce on a replica that follows broker 2
// answers NOT_LEADER_OR_FOLLOWER naming broker 2 and its endpoint (KIP-951); a follower's fetch
// gets NOT_LEADER_OR_FOLLOWER too.
func TestNotLeaderNamesLeader(t *testing.T) {
	f := newReplicationFixture(t, 1, map[int32][]int32{0: {2, 1}})
	p := f.part(0)
	mp := f.topic.Partitions[0]
	if err := p.BecomeFollower(2, mp.LeaderEpoch, mp.PartitionEpoch); err != nil {
		t.Fatal(err)
	}
	r := fetchReq(f.topic.ID, -1, -1, 0, -1, -1)
	r.Version = 16
	resp := decodeFetch(t, handle(t, f.h, r))
	cp := resp.Topics[0].Partitions[0]
	if cp.ErrorCode != kerr.NotLeaderForPartition.Code || cp.CurrentLeader.LeaderID != 2 || cp.CurrentLeader.LeaderEpoch != mp.LeaderEpoch {
		t.Fatalf("consumer fetch from a follower: err %d, current leader %+v", cp.ErrorCode, cp.CurrentLeader)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 2 || resp.Brokers[0].Port != 9092 {
		t.Fatalf("fetch response brokers %+v", resp.Brokers)
	}
	if fp := fetchPartition(t, f, fetchReq(f.topic.ID, 3, 1, 0, -1, -1)); fp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower fetch from a follower: err %d", fp.ErrorCode)
	}
	pr := handle(t, f.h, produceReq(1, 1000, 1)).(*kmsg.ProduceResponse)
	sp := pr.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != 2 || len(pr.Brokers) != 1 || pr.Brokers[0].NodeID != 2 {
		t.Fatalf("produce to a follower: err %d, current leader %+v, brokers %+v", sp.ErrorCode, sp.CurrentLeader, pr.Brokers)
	}
}

// TestOffsetForLeaderEpochForFollower: a follower's OffsetForLeaderEpoch (ReplicaID 2) is answered
// by the leader from its leader-epoch cache, including for an epoch it never had (KIP-279: the
// largest below and where it ended); a replica that is not the leader answers
// NOT_LEADER_OR_FOLLOWER.
func TestOffsetForLeaderEpochForFollower(t *testing.T) {
	f := newReplicationFixture(t, 1, map[int32][]int32{0: {1, 2}, 1: {2, 1}})
	p := f.part(0)
	for _, e := range []int32{1, 3} {
		if err := p.BecomeLeader(partition.LeaderState{LeaderEpoch: e, Leader: 1, Replicas: []int32{1, 2}, ISR: []int32{1}}); err != nil {
			t.Fatal(err)
		}
		if sp := producePartition(t, handle(t, f.h, produceReq(1, 1000, 2))); sp.ErrorCode != 0 {
			t.Fatalf("produce in epoch %d: err %d", e, sp.ErrorCode)
		}
	}
	if err := f.part(1).BecomeFollower(2, 0, 0); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = 2
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "t"
	for _, q := range []struct{ partition, epoch int32 }{{0, 1}, {0, 2}, {0, 3}, {1, 0}} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = q.partition, q.epoch, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	got := handle(t, f.h, req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions
	want := []struct {
		code  int16
		epoch int32
		end   int64
	}{{0, 1, 2}, {0, 1, 2}, {0, 3, 4}, {kerr.NotLeaderForPartition.Code, -1, -1}}
	for i, w := range want {
		if got[i].ErrorCode != w.code || got[i].LeaderEpoch != w.epoch || got[i].EndOffset != w.end {
			t.Fatalf("query %d: err %d epoch %d end %d, want %+v", i, got[i].ErrorCode, got[i].LeaderEpoch, got[i].EndOffset, w)
		}
	}
}
