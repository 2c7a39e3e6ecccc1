package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/record"
)

// testBroker starts a broker on a free loopback port with a fresh data dir.
func testBroker(t testing.TB, dir string, overrides ...string) *Broker {
	t.Helper()
	b, err := Start(context.Background(), testConfig(t, dir, overrides...), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testConfig is the configuration of a test broker: a free loopback port, log.dirs dir, no
// initial rebalance delay, three __consumer_offsets partitions, the HTTP listener on a free
// loopback port (never 8080), then overrides (key, value, ...).
func testConfig(t testing.TB, dir string, overrides ...string) *config.Config {
	t.Helper()
	layer := map[string]string{
		"listeners":                        "PLAINTEXT://127.0.0.1:0",
		"http.listener":                    "127.0.0.1:0",
		"log.dirs":                         dir,
		"group.initial.rebalance.delay.ms": "0",
		"offsets.topic.num.partitions":     "3",
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		if overrides[i] == "metrics.listener" {
			delete(layer, "http.listener") // the alias given alone wins over the default above
		}
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		layer[overrides[i]] = overrides[i+1]
	}
	cfg, err := config.Build(layer)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func stopBroker(t testing.TB, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func client(t testing.TB, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestProduceConsumeRestart(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.DefaultProduceTopic("orders"))
	const n = 300
	for i := 0; i < n; i++ {
		r := &kgo.Record{
			Key:     []byte("k" + strconv.Itoa(i%7)),
			Value:   []byte("v" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}},
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, b, "orders", n)
	for i := 0; i < n; i++ {
		r, ok := got["v"+strconv.Itoa(i)]
		if !ok {
			t.Fatalf("record v%d missing", i)
		}
		if string(r.Key) != "k"+strconv.Itoa(i%7) || len(r.Headers) != 1 || string(r.Headers[0].Value) != strconv.Itoa(i) {
			t.Fatalf("record v%d: key %q headers %v", i, r.Key, r.Headers)
		}
	}
	stopBroker(t, b)

	// A clean shutdown leaves the high watermarks checkpointed, in Kafka's format.
	cp, err := os.ReadFile(filepath.Join(dir, "replication-offset-checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	var hwSum int64
	for _, line := range strings.Split(string(cp), "\n") {
		var topic string
		var p, hw int64
		if n, _ := fmt.Sscanf(line, "%s %d %d", &topic, &p, &hw); n == 3 && topic == "orders" {
			hwSum += hw
		}
	}
	if !strings.HasPrefix(string(cp), "0\n") || hwSum != n {
		t.Fatalf("checkpoint: high watermarks of orders sum to %d, want %d:\n%s", hwSum, n, cp)
	}

	b = testBroker(t, dir)
	defer stopBroker(t, b)
	got = consumeAll(t, b, "orders", n)
	if len(got) != n {
		t.Fatalf("after restart: %d records, want %d", len(got), n)
	}
	// The idempotent producer keeps working after a restart (producer ids are never reused).
	cl = client(t, b, kgo.DefaultProduceTopic("orders"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads n records of topic from the start, keyed by value.
func consumeAll(t *testing.T, b *Broker, topic string, n int) map[string]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := client(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := make(map[string]*kgo.Record)
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = r })
	}
	return got
}

func TestCompressionRoundTrip(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := "c-" + name
		cl := client(t, b, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation())
		for i := 0; i < 50; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d-xxxxxxxxxxxxxxxxxxxxxxxx", name, i))}).FirstErr(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		got := consumeAll(t, b, topic, 50)
		if _, ok := got[name+"-49-xxxxxxxxxxxxxxxxxxxxxxxx"]; !ok {
			t.Fatalf("%s: last record missing", name)
		}
	}
}

func TestListOffsetsByTimestamp(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b, kgo.DefaultProduceTopic("ts"), kgo.AllowAutoTopicCreation())
	base := time.UnixMilli(1_700_000_000_000)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offs, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4500*time.Millisecond).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup("ts", 0)
	if o.Err != nil || o.Offset != 5 || o.Timestamp != base.Add(5*time.Second).UnixMilli() {
		t.Fatalf("offset after 4.5s: %+v", o)
	}
	end, err := adm.ListEndOffsets(ctx, "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("ts", 0); o.Offset != 10 {
		t.Fatalf("end offset %d, want 10", o.Offset)
	}
	// After the last timestamp: no offset (-1), as Kafka answers.
	offs, err = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("ts", 0); o.Offset != -1 && o.Offset != 10 {
		t.Fatalf("offset after the end: %+v", o)
	}
}

func TestConsumerGroupsSplitAndCommit(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	const n = 600
	var mu sync.Mutex
	seen := make(map[string]int)
	assigned := make(map[int]map[int32]bool)
	var wg sync.WaitGroup
	// Members poll until the group has seen every record, then commit what they consumed.
	pollCtx, allSeen := context.WithCancel(ctx)
	defer allSeen()
	for m := 0; m < 3; m++ {
		assigned[m] = make(map[int32]bool)
	}
	for m := 0; m < 3; m++ {
		m := m
		cl := client(t, b, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("events"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range a["events"] {
					assigned[m][p] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for _, p := range r["events"] {
					delete(assigned[m], p)
				}
			}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				fs.EachRecord(func(r *kgo.Record) {
					mu.Lock()
					seen[string(r.Value)]++
					mu.Unlock()
				})
				mu.Lock()
				if len(seen) == n {
					allSeen()
				}
				mu.Unlock()
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	// Produce once the three members share the six partitions, two each.
	for {
		mu.Lock()
		balanced := len(assigned[0]) == 2 && len(assigned[1]) == 2 && len(assigned[2]) == 2
		mu.Unlock()
		if balanced {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("group never balanced: %v", assigned)
		}
		time.Sleep(50 * time.Millisecond)
	}
	prod := client(t, b, kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("group g1 did not read every record in time")
	}
	if len(seen) != n {
		t.Fatalf("group read %d distinct records, want %d", len(seen), n)
	}
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("record %s read %d times", v, c)
		}
	}
	// A second group reads everything again.
	cl := client(t, b, kgo.ConsumerGroup("g2"), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	count := 0
	for count < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("g2 read %d of %d", count, n)
		}
		count += fs.NumRecords()
	}
	// g1's commits cover every record.
	offs, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != n {
		t.Fatalf("g1 committed %d in all, want %d", total, n)
	}
}

func TestIdempotentDuplicateAndGap(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "idem"); err != nil {
		t.Fatal(err)
	}
	initReq := kmsg.NewPtrInitProducerIDRequest()
	initResp, err := initReq.RequestWith(ctx, cl)
	if err != nil || initResp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %d", err, initResp.ErrorCode)
	}
	produce := func(cl *kgo.Client, epoch int16, seq int32, n int) (*kmsg.ProduceResponseTopicPartition, error) {
		var recs []record.Record
		for i := 0; i < n; i++ {
			recs = append(recs, record.Record{Value: []byte("x")})
		}
		batch := record.Build(record.BatchSpec{
			BaseTimestamp: time.Now().UnixMilli(),
			ProducerID:    initResp.ProducerID,
			ProducerEpoch: epoch,
			BaseSequence:  seq,
			Records:       recs,
		})
		req := kmsg.NewPtrProduceRequest()
		req.Acks = -1
		req.TimeoutMillis = 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "idem"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		return &resp.Topics[0].Partitions[0], nil
	}
	epoch := initResp.ProducerEpoch
	p, err := produce(cl, epoch, 0, 3)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first batch: %v %+v", err, p)
	}
	p, err = produce(cl, epoch, 3, 2)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("second batch: %v %+v", err, p)
	}
	// A retry of the first batch is answered with its original offset and not appended again.
	p, err = produce(cl, epoch, 0, 3)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("duplicate: %v %+v", err, p)
	}
	// A gap is refused.
	p, err = produce(cl, epoch, 9, 1)
	if err != nil || p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %v %+v", err, p)
	}
	end, err := adm.ListEndOffsets(ctx, "idem")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("idem", 0); o.Offset != 5 {
		t.Fatalf("end offset %d, want 5", o.Offset)
	}

	// The producer state survives a restart: it is rebuilt from the batch headers in the log.
	stopBroker(t, b)
	b = testBroker(t, dir)
	defer stopBroker(t, b)
	cl = client(t, b)
	p, err = produce(cl, epoch, 3, 2)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("duplicate after restart: %v %+v", err, p)
	}
	p, err = produce(cl, epoch, 9, 1)
	if err != nil || p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: %v %+v", err, p)
	}
	p, err = produce(cl, epoch, 5, 1)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 5 {
		t.Fatalf("next batch after restart: %v %+v", err, p)
	}
	// A newer epoch (as after InitProducerId bumps it) fences the older one.
	p, err = produce(cl, epoch+1, 0, 1)
	if err != nil || p.ErrorCode != 0 || p.BaseOffset != 6 {
		t.Fatalf("new epoch: %v %+v", err, p)
	}
	p, err = produce(cl, epoch, 6, 1)
	if err != nil || p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: %v %+v", err, p)
	}
}

func TestAdminErrors(t *testing.T) {
	b := testBroker(t, t.TempDir(), "auto.create.topics.enable", "false")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("invalid name: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 3 on one broker: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "dup"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	bad := "x"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &bad}, "badcfg"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	// Produce to an unknown topic with auto-create off.
	pcl := client(t, b, kgo.DefaultProduceTopic("nope"), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(2*time.Second))
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to unknown topic: %v", err)
	}
	// Configs: alter, describe, delete.
	ret := "3600000"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &ret}}, "dup"); err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "dup")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" {
			found = c.MaybeValue() == "3600000" && c.Source == kmsg.ConfigSourceDynamicTopicConfig
		}
	}
	if !found {
		t.Fatalf("retention.ms override not described: %+v", rc[0].Configs)
	}
	if _, err := adm.CreatePartitions(ctx, 3, "dup"); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "dup")
	if err != nil || len(td["dup"].Partitions) != 5 {
		t.Fatalf("after create partitions: %v %+v", err, td["dup"])
	}
	if _, err := adm.DeleteTopics(ctx, "dup"); err != nil {
		t.Fatal(err)
	}
	td, err = adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("dup") {
		t.Fatal("topic still listed after delete")
	}
}
