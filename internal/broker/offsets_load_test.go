package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// TestConsumerOffsetsUndecodableRecordSkipped: a record the group coordinator cannot decode in
// __consumer_offsets (written below the client checks, as a log from before them could hold it)
// is skipped and counted at the next start; the committed offsets before and after it load and
// the group works.
func TestConsumerOffsetsUndecodableRecordSkipped(t *testing.T) {
	dir := t.TempDir()
	overrides := []string{"offsets.topic.num.partitions", "1", "metrics.listener", "127.0.0.1:0"}
	b := testBroker(t, dir, overrides...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	const topic = "t"
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceRoundRobin(ctx, t, b, topic, 20) // 10 records per partition

	commitOffset(ctx, t, adm, "g", topic, 0, 4)
	p := b.parts.Get(metadata.ConsumerOffsetsTopic, 0)
	if p == nil {
		t.Fatal("no __consumer_offsets partition 0")
	}
	garbage := record.Build(record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, Records: []record.Record{{Key: []byte{1}, Value: []byte("x")}}})
	if _, err := p.Append(garbage, -1, partition.OriginCoordinator); err != nil {
		t.Fatal(err)
	}
	commitOffset(ctx, t, adm, "g", topic, 1, 6)
	commitOffset(ctx, t, adm, "other", topic, 0, 9)
	stopBroker(t, b)

	b = testBroker(t, dir, overrides...)
	defer stopBroker(t, b)
	adm = kadm.NewClient(client(t, b))
	got := fetchOffsetsLoaded(ctx, t, adm, "g")
	wantOffset(t, got, topic, 0, 4)
	wantOffset(t, got, topic, 1, 6)
	wantOffset(t, fetchOffsetsLoaded(ctx, t, adm, "other"), topic, 0, 9)

	// The group works: a member joins, gets both partitions and reads from the committed offsets.
	m := startMember(t, b, topic, "g", "m", kgo.DisableAutoCommit())
	first := map[int32]int64{}
	for len(first) < 2 {
		fs := m.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group member read from %v only", first)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		})
	}
	if first[0] != 4 || first[1] != 6 {
		t.Fatalf("group member started at %v, want partition 0 at 4, 1 at 6", first)
	}

	resp, err := http.Get("http://" + b.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := `moldau_internal_topic_records_skipped_total{topic="__consumer_offsets"} 1` + "\n"; !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
}

// openOffsetsPartition opens partition 0 of __consumer_offsets with log settings cfg in a
// fresh directory, as its only replica; it is closed when the test ends.
func openOffsetsPartition(t *testing.T, cfg log.Config) *partition.Partition {
	t.Helper()
	dir := t.TempDir()
	syncer, err := log.NewSyncer(vfs.Default, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syncer.Close() })
	p, err := partition.Open(filepath.Join(dir, metadata.ConsumerOffsetsTopic+"-0"), metadata.ConsumerOffsetsTopic, 0,
		partition.Settings{Log: cfg, MaxMessageBytes: 1 << 20, MinInsyncReplicas: 1}, 0, nil, &partition.LogDir{Path: dir, Syncer: syncer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestLoadPartitionSkipsUndecodableBatch: a batch whose CRC holds but whose records do not decode
// (here a gzip flag over plain bytes) is handed to the replay as one skipped entry at its offset,
// and the batches after it load.
func TestLoadPartitionSkipsUndecodableBatch(t *testing.T) {
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	p := openOffsetsPartition(t, cfg)
	build := func(keys ...string) []byte {
		var recs []record.Record
		for _, k := range keys {
			recs = append(recs, record.Record{Key: []byte(k), Value: []byte("v")})
		}
		return record.Build(record.BatchSpec{BaseTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: recs})
	}
	bad := build("x")
	binary.BigEndian.PutUint16(bad[21:], uint16(record.CodecGzip)) // attributes: gzip, over records that are not
	binary.BigEndian.PutUint32(bad[17:], record.ComputeCRC(bad))
	for _, b := range [][]byte{build("a", "b"), bad, build("c")} {
		if _, err := p.Append(b, -1, partition.OriginCoordinator); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := loadPartition(p, 0, func(r group.StoredRecord) error {
		if r.Err != nil {
			got = append(got, fmt.Sprintf("skip@%d", r.Offset))
		} else {
			got = append(got, fmt.Sprintf("%s@%d", r.Key, r.Offset))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "a@0 b@1 skip@2 c@3"; strings.Join(got, " ") != want {
		t.Fatalf("loaded %q, want %q", strings.Join(got, " "), want)
	}
}

// TestLoadPartitionTransactionalRecords: loadPartition hands the group coordinator the records of
// a transactional batch as transactional records of their producer, and a transaction marker as
// a marker of its producer (commit or abort); the coordinator's replay then keeps a producer's
// offsets pending until its marker: committed ones count, aborted ones are gone, an open
// transaction stays pending.
func TestLoadPartitionTransactionalRecords(t *testing.T) {
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	p := openOffsetsPartition(t, cfg)
	offsetRecord := func(g string, part int32, off int64) record.Record {
		k := kmsg.NewOffsetCommitKey()
		k.Version = 1
		k.Group, k.Topic, k.Partition = g, "t", part
		v := kmsg.NewOffsetCommitValue()
		v.Version = 3
		v.Offset = off
		v.LeaderEpoch = -1
		return record.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
	}
	txnBatch := func(pid int64, recs ...record.Record) []byte {
		return record.Build(record.BatchSpec{BaseTimestamp: 1_700_000_000_000, Transactional: true,
			ProducerID: pid, ProducerEpoch: 0, BaseSequence: -1, Records: recs})
	}
	plain := record.Build(record.BatchSpec{BaseTimestamp: 1_700_000_000_000, ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, Records: []record.Record{offsetRecord("g", 3, 5)}})
	marker := func(pid int64, commit bool) []byte {
		return record.BuildMarker(record.Marker{ProducerID: pid, ProducerEpoch: 0, Commit: commit, Timestamp: 1_700_000_000_000})
	}
	for _, b := range [][]byte{
		txnBatch(7, offsetRecord("g", 0, 10), offsetRecord("g", 1, 11)), // 0-1: committed at 5
		txnBatch(8, offsetRecord("g", 2, 20)),                           // 2: aborted at 4
		plain,                                                           // 3
		marker(8, false),                                                // 4
		marker(7, true),                                                 // 5
		txnBatch(9, offsetRecord("g", 0, 30)),                           // 6: open
	} {
		// Straight to the log: what the partition accepts of a transaction is not this test's.
		if _, err := p.Log().Append(b, 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var stored []group.StoredRecord
	err := loadPartition(p, 0, func(r group.StoredRecord) error {
		stored = append(stored, r)
		switch {
		case r.Err != nil:
			got = append(got, fmt.Sprintf("skip@%d", r.Offset))
		case r.Marker == group.MarkerCommit:
			got = append(got, fmt.Sprintf("commit(%d)@%d", r.ProducerID, r.Offset))
		case r.Marker == group.MarkerAbort:
			got = append(got, fmt.Sprintf("abort(%d)@%d", r.ProducerID, r.Offset))
		case r.Transactional:
			got = append(got, fmt.Sprintf("txn(%d)@%d", r.ProducerID, r.Offset))
		default:
			got = append(got, fmt.Sprintf("plain@%d", r.Offset))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "txn(7)@0 txn(7)@1 txn(8)@2 plain@3 abort(8)@4 commit(7)@5 txn(9)@6"; strings.Join(got, " ") != want {
		t.Fatalf("loaded %q, want %q", strings.Join(got, " "), want)
	}

	// The coordinator's replay of those records.
	store := &replayStore{recs: stored}
	c := group.NewCoordinator(group.Config{}, store, nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	f := kmsg.NewPtrOffsetFetchRequest()
	f.Version = 7
	f.Group = "g"
	f.RequireStable = true
	f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2, 3}}}
	var res []string
	for _, fp := range c.OffsetFetch(f).Topics[0].Partitions {
		res = append(res, fmt.Sprintf("%d:%d/%d", fp.Partition, fp.Offset, fp.ErrorCode))
	}
	unstable := kerr.UnstableOffsetCommit.Code
	if want := fmt.Sprintf("0:-1/%d 1:11/0 2:-1/0 3:5/0", unstable); strings.Join(res, " ") != want {
		t.Fatalf("replayed offsets %q, want %q", strings.Join(res, " "), want)
	}
	f.RequireStable = false
	if o := c.OffsetFetch(f).Topics[0].Partitions[0].Offset; o != 10 {
		t.Fatalf("partition 0's committed offset under the open transaction: %d, want 10", o)
	}
}

// replayStore is a group.Store that replays fixed records and writes nothing.
type replayStore struct{ recs []group.StoredRecord }

func (s *replayStore) Append(string, []group.KV) error { return errors.New("replayStore: read only") }
func (s *replayStore) AppendTxn(string, int64, int16, any, []group.KV) error {
	return errors.New("replayStore: read only")
}
func (s *replayStore) Load(fn func(group.StoredRecord) error) error {
	for _, r := range s.recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// TestOffsetsStoreAppendTxnGuard: the group coordinator's transactional write carries the
// verification guard its TxnOffsetCommit took (KIP-890): with the registered guard it opens the
// producer's transaction on the __consumer_offsets partition; a guard a marker cleared since is
// refused with INVALID_TXN_STATE, and so is the sentinel guard once the transaction ended.
func TestOffsetsStoreAppendTxnGuard(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	const pid, epoch = 42, 0
	part := b.parts.Get(metadata.ConsumerOffsetsTopic, group.OffsetsPartition("g", b.offsets.partitions))
	if part == nil {
		t.Fatal("the group's __consumer_offsets partition is not here")
	}
	kv := func(off int64) []group.KV {
		r := kmsg.NewOffsetCommitKey()
		r.Version = 1
		r.Group, r.Topic = "g", "t"
		v := kmsg.NewOffsetCommitValue()
		v.Version = 3
		v.Offset = off
		return []group.KV{{Key: r.AppendTo(nil), Value: v.AppendTo(nil)}}
	}
	g1, needed := part.VerificationGuard(pid, epoch)
	if !needed {
		t.Fatal("a producer without a transaction here needs no verification")
	}
	if err := b.offsets.AppendTxn("g", pid, epoch, g1, kv(1)); err != nil {
		t.Fatalf("write with the registered guard: %v", err)
	}
	sentinel, needed := part.VerificationGuard(pid, epoch)
	if needed {
		t.Fatal("the producer's transaction is open: no verification needed")
	}
	if err := b.offsets.AppendTxn("g", pid, epoch, sentinel, kv(2)); err != nil {
		t.Fatalf("write in the open transaction: %v", err)
	}
	if _, err := part.WriteTxnMarker(record.Marker{ProducerID: pid, ProducerEpoch: epoch, Commit: true,
		Timestamp: time.Now().UnixMilli()}, 1); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]any{"cleared guard": g1, "sentinel guard": sentinel} {
		err := b.offsets.AppendTxn("g", pid, epoch, g, kv(3))
		if !errors.Is(err, kerr.InvalidTxnState) {
			t.Fatalf("%s after the marker: %v, want INVALID_TXN_STATE", name, err)
		}
	}
}
