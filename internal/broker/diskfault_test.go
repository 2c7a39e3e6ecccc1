package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

// faultBroker starts a broker whose log dirs are on a fault-injecting filesystem over the OS.
func faultBroker(t *testing.T, logDirs string, overrides ...string) (*Broker, *vfs.FaultFS) {
	t.Helper()
	ffs := vfs.NewFaultFS(vfs.Default)
	b, err := Start(context.Background(), testConfig(t, logDirs, overrides...), slog.New(slog.NewTextHandler(io.Discard, nil)), WithFS(ffs))
	if err != nil {
		t.Fatal(err)
	}
	return b, ffs
}

// rawProduce sends one record to topic-partition in its own Produce request and returns the
// partition's error code.
func rawProduce(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, p int32, value string) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = record.Build(record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, Records: []record.Record{{Value: []byte(value)}}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// rawFetch fetches topic-partition from offset 0 and returns the error code and the number of
// records.
func rawFetch(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, id [16]byte, p int32) (int16, int) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = 0, 1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = p, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response %+v", resp)
	}
	sp := resp.Topics[0].Partitions[0]
	n := 0
	if bs, err := record.Split(sp.RecordBatches); err == nil {
		for _, b := range bs {
			h, _ := record.ParseHeader(b)
			n += int(h.NumRecords)
		}
	}
	return sp.ErrorCode, n
}

// TestProduceDiskFull: a full disk answers KAFKA_STORAGE_ERROR to produce, the partition stays
// readable (through the broker's fetch path, here without sendfile), and a franz-go producer's
// records go through once there is space again.
func TestProduceDiskFull(t *testing.T) {
	dir := t.TempDir()
	b, ffs := faultBroker(t, dir)
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The producer refreshes metadata before retrying a KAFKA_STORAGE_ERROR: at most every 100ms.
	cl := client(t, b, kgo.DefaultProduceTopic("full"), kgo.MetadataMinAge(100*time.Millisecond))
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopic(ctx, 1, 1, nil, "full")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ffs.SetInjector(vfs.OnPrefix(filepath.Join(dir, "full-0"), syscall.ENOSPC, vfs.OpWrite, vfs.OpCreate))
	for i := range 3 {
		if code := rawProduce(ctx, t, cl, "full", 0, "refused"); code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce %d to a full disk: error code %d, want KAFKA_STORAGE_ERROR", i, code)
		}
	}
	if code, n := rawFetch(ctx, t, cl, "full", created.ID, 0); code != 0 || n != 10 {
		t.Fatalf("fetch while the disk is full: error %d, %d records", code, n)
	}
	// Space comes back while a franz-go producer retries: wait until one of its attempts was
	// refused, then free the disk.
	var refused atomic.Int32
	full := vfs.OnPrefix(filepath.Join(dir, "full-0"), syscall.ENOSPC, vfs.OpWrite)
	ffs.SetInjector(func(op vfs.Op, path string) error {
		err := full(op, path)
		if err != nil {
			refused.Add(1)
		}
		return err
	})
	done := make(chan error, 1)
	go func() { done <- cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr() }()
	for refused.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the producer never tried")
		case <-time.After(time.Millisecond):
		}
	}
	ffs.SetInjector(nil)
	if err := <-done; err != nil {
		t.Fatalf("produce once there is space: %v", err)
	}
	if code, n := rawFetch(ctx, t, cl, "full", created.ID, 0); code != 0 || n != 11 {
		t.Fatalf("fetch after: error %d, %d records", code, n)
	}
	if got := consumeAll(t, b, "full", 11); got["after"] == nil || got["refused"] != nil {
		t.Fatalf("consumed %d records: after %v, refused %v", len(got), got["after"] != nil, got["refused"] != nil)
	}
}

// TestLogDirFailure: with two log dirs and fsync before ack, an fsync failing in one dir takes
// that dir offline: produce and fetch to its partitions answer KAFKA_STORAGE_ERROR while the
// partitions of the other dir keep working.
func TestLogDirFailure(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	b, ffs := faultBroker(t, d1+","+d2, "log.flush.interval.messages", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	created, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, "two-dirs")
	if err != nil {
		t.Fatal(err)
	}
	byDir := map[string][]int32{}
	for p := range int32(4) {
		if code := rawProduce(ctx, t, cl, "two-dirs", p, "before"); code != 0 {
			t.Fatalf("produce to %d: %d", p, code)
		}
		byDir[b.parts.DirOf("two-dirs", p)] = append(byDir[b.parts.DirOf("two-dirs", p)], p)
	}
	if len(byDir[d1]) == 0 || len(byDir[d2]) == 0 {
		t.Fatalf("partitions by dir: %v", byDir)
	}
	ffs.SetInjector(vfs.OnPrefix(d2, syscall.EIO, vfs.OpSync, vfs.OpSyncDir, vfs.OpSyncFS))
	bad, good := byDir[d2], byDir[d1]
	if code := rawProduce(ctx, t, cl, "two-dirs", bad[0], "lost"); code != kerr.KafkaStorageError.Code {
		t.Fatalf("produce whose fsync fails: error %d", code)
	}
	ffs.SetInjector(nil) // the dir stays offline: its state is unknown
	for _, p := range bad {
		if code := rawProduce(ctx, t, cl, "two-dirs", p, "refused"); code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce to %d in the failed dir: error %d", p, code)
		}
		if code, _ := rawFetch(ctx, t, cl, "two-dirs", created.ID, p); code != kerr.KafkaStorageError.Code {
			t.Fatalf("fetch from %d in the failed dir: error %d", p, code)
		}
	}
	dirs, err := kadm.NewClient(cl).DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, byDir := range dirs {
		if err := byDir[d2].Err; !errors.Is(err, kerr.KafkaStorageError) {
			t.Fatalf("DescribeLogDirs: failed dir %s: %v", d2, err)
		}
		if err := byDir[d1].Err; err != nil {
			t.Fatalf("DescribeLogDirs: healthy dir %s: %v", d1, err)
		}
	}
	for _, p := range good {
		if code := rawProduce(ctx, t, cl, "two-dirs", p, "after"); code != 0 {
			t.Fatalf("produce to %d in the healthy dir: error %d", p, code)
		}
		if code, n := rawFetch(ctx, t, cl, "two-dirs", created.ID, p); code != 0 || n != 2 {
			t.Fatalf("fetch from %d in the healthy dir: error %d, %d records", p, code, n)
		}
	}
}
