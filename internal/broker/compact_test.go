package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readAll consumes partition 0 of a one-partition topic from the start up to its end offset. The
// record just below the end must survive compaction (the tests end with a fresh key).
func readAll(t *testing.T, b *Broker, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	end := b.parts.Get(topic, 0).HighWatermark()
	cl := client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var out []*kgo.Record
	for len(out) == 0 || out[len(out)-1].Offset < end-1 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records of %s, end offset %d: %v", len(out), topic, end, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// TestCompactedTopic produces many updates per key to a cleanup.policy=compact topic with small
// segments, runs the cleaner, and reads back one record per key with its latest value; a deleted
// key's tombstone stays for delete.retention.ms and then goes.
func TestCompactedTopic(t *testing.T) {
	b := testBroker(t, t.TempDir(), "log.cleaner.enable", "false")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	cfg := map[string]*string{}
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096", "delete.retention.ms": "2000"} {
		cfg[k] = &v
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, cfg, "compacted"); err != nil {
		t.Fatal(err)
	}
	pcl := client(t, b, kgo.DefaultProduceTopic("compacted"))
	latest := map[string]string{}
	for round := range 50 {
		var rs []*kgo.Record
		for k := range 20 {
			key, val := fmt.Sprintf("key-%02d", k), fmt.Sprintf("value-%02d-%03d", k, round)
			rs = append(rs, &kgo.Record{Key: []byte(key), Value: []byte(val)})
			latest[key] = val
		}
		if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Delete key-00; then enough updates of one key to roll the segment holding the tombstone (the
	// active segment is never cleaned), and a fresh key so the last record survives compaction.
	if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte("key-00")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	delete(latest, "key-00")
	for i := range 60 {
		latest["pad"] = fmt.Sprintf("%0100d", i)
		if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte("pad"), Value: []byte(latest["pad"])}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte("end"), Value: []byte("e")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	latest["end"] = "e"
	// A compacted topic refuses records without a key.
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record on a compacted topic: %v", err)
	}

	before := readAll(t, b, "compacted")
	sizeBefore := b.parts.Get("compacted", 0).Size()
	b.CleanLogs(false)
	after := readAll(t, b, "compacted")
	sizeAfter := b.parts.Get("compacted", 0).Size()
	if sizeAfter >= sizeBefore/2 {
		t.Fatalf("log %d -> %d bytes", sizeBefore, sizeAfter)
	}
	check := func(rs []*kgo.Record, tombstone bool) {
		t.Helper()
		got := map[string]string{}
		sawTombstone := false
		for _, r := range rs {
			if r.Value == nil {
				sawTombstone = string(r.Key) == "key-00"
				delete(got, string(r.Key))
				continue
			}
			got[string(r.Key)] = string(r.Value)
		}
		if fmt.Sprint(got) != fmt.Sprint(latest) {
			t.Fatalf("latest values\n got %v\nwant %v", got, latest)
		}
		if sawTombstone != tombstone {
			t.Fatalf("tombstone of key-00 seen: %v, want %v", sawTombstone, tombstone)
		}
	}
	check(after, true)
	if len(after) >= len(before)/5 {
		t.Fatalf("%d records before cleaning, %d after", len(before), len(after))
	}
	// Past delete.retention.ms the tombstone goes too.
	time.Sleep(2100 * time.Millisecond)
	b.CleanLogs(false)
	check(readAll(t, b, "compacted"), false)
}

// TestConsumerOffsetsCompactedAndDurable commits one group's offsets many times, compacts
// __consumer_offsets, restarts the broker and reads the last commit back.
func TestConsumerOffsetsCompactedAndDurable(t *testing.T) {
	dir := t.TempDir()
	// log.roll.ms=1: every commit goes to a new segment, so they are all cleanable.
	b := testBroker(t, dir, "log.cleaner.enable", "false", "offsets.topic.num.partitions", "1", "log.roll.ms", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		commit := kadm.Offsets{}
		commit.Add(kadm.Offset{Topic: "t", Partition: int32(i % 2), At: int64(i), LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, "g", commit); err != nil {
			t.Fatal(err)
		}
	}
	p := b.parts.Get("__consumer_offsets", 0)
	if p == nil {
		t.Fatal("no __consumer_offsets partition 0")
	}
	// Roll so the commits are in cleanable segments.
	if _, err := p.Log().EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	sizeBefore := p.Size()
	b.CleanLogs(true)
	if p.Size() > sizeBefore/10 {
		t.Fatalf("__consumer_offsets %d -> %d bytes after compaction", sizeBefore, p.Size())
	}
	stopBroker(t, b)

	b = testBroker(t, dir, "log.cleaner.enable", "false", "offsets.topic.num.partitions", "1", "log.roll.ms", "1")
	defer stopBroker(t, b)
	adm = kadm.NewClient(client(t, b))
	var got kadm.OffsetResponses
	for {
		var err error
		got, err = adm.FetchOffsets(ctx, "g")
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.CoordinatorLoadInProgress) || ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for part, want := range map[int32]int64{0: 398, 1: 399} {
		o, ok := got.Lookup("t", part)
		if !ok || o.Err != nil || o.At != want {
			t.Fatalf("partition %d: %+v, want committed offset %d", part, o, want)
		}
	}
}
