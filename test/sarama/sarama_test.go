// Package sarama_test drives an in-process Moldau broker with the unmodified IBM/sarama client: the
// Go client many Kafka users run. Each test starts a broker on a free loopback port with a fresh
// data dir and checks what sarama sees against what Apache Kafka would answer.
package sarama_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/moldau/moldau/internal/brokertest"
)

// versions are the Kafka versions sarama is configured for: the newest it knows, 3.6, and sarama's
// default (2.8), which picks older request versions.
var versions = []sarama.KafkaVersion{sarama.MaxVersion, sarama.V3_6_0_0, sarama.DefaultVersion}

// startBroker starts a single Moldau broker on a free loopback port with a fresh data dir and
// returns its address and data dir; the broker is shut down when the test ends.
func startBroker(t *testing.T) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	return brokertest.Addr(t, map[string]string{"log.dirs": dir}), dir
}

// newConfig is a sarama config for version v with timeouts short enough that a hung broker fails
// the test instead of stalling it.
func newConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "moldau-sarama-test"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	cfg.Admin.Timeout = 10 * time.Second
	return cfg
}

func newAdmin(t *testing.T, addr string, v sarama.KafkaVersion) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{addr}, newConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return adm
}

func createTopic(t *testing.T, adm sarama.ClusterAdmin, topic string, partitions int32) {
	t.Helper()
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func TestSarama(t *testing.T) {
	for _, v := range versions {
		t.Run("kafka-"+v.String(), func(t *testing.T) {
			addr, dir := startBroker(t)
			t.Run("ClusterAdmin", func(t *testing.T) { testClusterAdmin(t, addr, v) })
			t.Run("SyncProducerConsumer", func(t *testing.T) { testSyncProducer(t, addr, dir, v) })
			t.Run("AsyncProducer", func(t *testing.T) { testAsyncProducer(t, addr, v) })
			strategies := []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
			if v == sarama.MaxVersion {
				strategies = append(strategies, sarama.NewBalanceStrategyRoundRobin(), sarama.NewBalanceStrategySticky(), sarama.NewBalanceStrategyCooperativeSticky())
			}
			for _, s := range strategies {
				t.Run("ConsumerGroup-"+s.Name(), func(t *testing.T) { testConsumerGroup(t, addr, v, s) })
			}
			t.Run("GetOffset", func(t *testing.T) { testGetOffset(t, addr, v) })
		})
	}
}

func testClusterAdmin(t *testing.T, addr string, v sarama.KafkaVersion) {
	adm := newAdmin(t, addr, v)
	const topic = "admin-topic"
	retention := "3600000"
	detail := &sarama.TopicDetail{
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}
	if err := adm.CreateTopic(topic, detail, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if err := adm.CreateTopic(topic, detail, false); !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("CreateTopic of an existing topic: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}

	topics, err := adm.ListTopics()
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	td, ok := topics[topic]
	if !ok {
		t.Fatalf("ListTopics: %s missing from %v", topic, topics)
	}
	if td.NumPartitions != 3 || td.ReplicationFactor != 1 || len(td.ReplicaAssignment) != 3 {
		t.Fatalf("ListTopics: %s has %d partitions, replication factor %d, assignment %v", topic, td.NumPartitions, td.ReplicationFactor, td.ReplicaAssignment)
	}
	// ListTopics keeps only the non-default configs: exactly the one we set.
	if got := td.ConfigEntries["retention.ms"]; got == nil || *got != retention || len(td.ConfigEntries) != 1 {
		t.Fatalf("ListTopics: config entries %v, want only retention.ms=%s", stringMap(td.ConfigEntries), retention)
	}

	metas, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("DescribeTopics: %v", err)
	}
	if len(metas) != 1 || metas[0].Name != topic || !errors.Is(metas[0].Err, sarama.ErrNoError) || len(metas[0].Partitions) != 3 {
		t.Fatalf("DescribeTopics: %+v", metas)
	}
	for _, p := range metas[0].Partitions {
		if !errors.Is(p.Err, sarama.ErrNoError) || p.Leader < 0 || len(p.Replicas) != 1 || p.Replicas[0] != p.Leader || len(p.Isr) != 1 || p.Isr[0] != p.Leader {
			t.Fatalf("DescribeTopics: partition %+v", p)
		}
	}

	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("DescribeConfig: %v", err)
	}
	byName := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	if e, ok := byName["retention.ms"]; !ok || e.Value != retention || e.Default || e.Source != sarama.SourceTopic {
		t.Fatalf("DescribeConfig: retention.ms = %+v, want %s from the topic", e, retention)
	}
	if e, ok := byName["cleanup.policy"]; !ok || e.Value != "delete" || !e.Default {
		t.Fatalf("DescribeConfig: cleanup.policy = %+v, want the default delete", e)
	}
	only, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
	if err != nil || len(only) != 1 || only[0].Name != "retention.ms" {
		t.Fatalf("DescribeConfig of retention.ms only: %+v, %v", only, err)
	}

	// One broker cannot hold three replicas; Kafka answers INVALID_REPLICATION_FACTOR.
	err = adm.CreateTopic("three-replicas", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 3}, false)
	if !errors.Is(err, sarama.ErrInvalidReplicationFactor) {
		t.Fatalf("CreateTopic with replication factor 3 on one broker: %v, want %v", err, sarama.ErrInvalidReplicationFactor)
	}
	if topics, err := adm.ListTopics(); err != nil {
		t.Fatalf("ListTopics: %v", err)
	} else if _, ok := topics["three-replicas"]; ok {
		t.Fatal("the topic with an invalid replication factor was created")
	}

	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	// Deletion may complete asynchronously in Kafka; wait for it, but not forever.
	deadline := time.Now().Add(10 * time.Second)
	for {
		topics, err := adm.ListTopics()
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still listed after DeleteTopic", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("DeleteTopic of a deleted topic: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
}

func stringMap(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

var codecs = []sarama.CompressionCodec{
	sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD,
}

func testSyncProducer(t *testing.T, addr, dir string, v sarama.KafkaVersion) {
	adm := newAdmin(t, addr, v)
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			topic := "sync-" + codec.String()
			createTopic(t, adm, topic, 2)

			cfg := newConfig(v)
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Retry.Max = 5
			cfg.Producer.Return.Successes = true
			cfg.Producer.Compression = codec
			prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := prod.Close(); err != nil {
					t.Error(err)
				}
			}()

			// A batch through SendMessages (several records per batch, so compression has
			// something to work on), then single records through SendMessage.
			var sent []*sarama.ProducerMessage
			var batch []*sarama.ProducerMessage
			for i := 0; i < 60; i++ {
				batch = append(batch, message(topic, i))
			}
			if err := prod.SendMessages(batch); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			sent = append(sent, batch...)
			for i := 60; i < 70; i++ {
				m := message(topic, i)
				p, off, err := prod.SendMessage(m)
				if err != nil {
					t.Fatalf("SendMessage: %v", err)
				}
				if p != m.Partition || off != m.Offset {
					t.Fatalf("SendMessage returned %d/%d, message says %d/%d", p, off, m.Partition, m.Offset)
				}
				sent = append(sent, m)
			}

			// Offsets in each partition are 0, 1, 2, ... in the order of the acks.
			byPartition := map[int32][]*sarama.ProducerMessage{}
			for _, m := range sent {
				byPartition[m.Partition] = append(byPartition[m.Partition], m)
			}
			for p, ms := range byPartition {
				sort.Slice(ms, func(i, j int) bool { return ms[i].Offset < ms[j].Offset })
				for i, m := range ms {
					if m.Offset != int64(i) {
						t.Fatalf("partition %d: acked offsets %v are not 0..%d", p, offsets(ms), len(ms)-1)
					}
				}
			}
			if len(byPartition) != 2 {
				t.Fatalf("70 keys all went to partitions %v", keys(byPartition))
			}

			cons, err := sarama.NewConsumer([]string{addr}, newConfig(v))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cons.Close() }()
			for p, want := range byPartition {
				got := consumePartition(t, cons, topic, p, sarama.OffsetOldest, len(want))
				for i, m := range got {
					w := want[i]
					if m.Offset != w.Offset || string(m.Key) != mustString(w.Key) || string(m.Value) != mustString(w.Value) {
						t.Fatalf("partition %d record %d: got offset %d key %q value %q, want offset %d key %q value %q",
							p, i, m.Offset, m.Key, m.Value, w.Offset, mustString(w.Key), mustString(w.Value))
					}
					if len(m.Headers) != len(w.Headers) {
						t.Fatalf("partition %d offset %d: %d headers, want %d", p, m.Offset, len(m.Headers), len(w.Headers))
					}
					for j, h := range m.Headers {
						if string(h.Key) != string(w.Headers[j].Key) || string(h.Value) != string(w.Headers[j].Value) {
							t.Fatalf("partition %d offset %d header %d: %q=%q, want %q=%q", p, m.Offset, j, h.Key, h.Value, w.Headers[j].Key, w.Headers[j].Value)
						}
					}
					if m.Timestamp.IsZero() {
						t.Fatalf("partition %d offset %d: no timestamp", p, m.Offset)
					}
				}
				// compression.type=producer: the broker keeps the batches as sarama compressed them;
				// and they carry the producer id of the idempotent producer.
				for i, h := range batchHeaders(t, dir, topic, p) {
					if h.codec != codec || h.producerID < 0 {
						t.Fatalf("partition %d: batch %d on disk has codec %v and producer id %d, want %v and an id", p, i, h.codec, h.producerID, codec)
					}
				}
			}
		})
	}
}

// batchHeader is what the tests check in the header of a record batch on disk.
type batchHeader struct {
	codec      sarama.CompressionCodec
	producerID int64
}

// batchHeaders reads the record batch headers in the segment files of topic/partition in the
// broker's data dir.
func batchHeaders(t *testing.T, dir, topic string, partition int32) []batchHeader {
	t.Helper()
	segments, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%s-%d", topic, partition), "*.log"))
	if err != nil || len(segments) == 0 {
		t.Fatalf("segment files of %s-%d: %v, %v", topic, partition, segments, err)
	}
	sort.Strings(segments)
	var headers []batchHeader
	for _, path := range segments {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8, crc int32,
		// attributes int16 (the low three bits are the codec), lastOffsetDelta int32,
		// baseTimestamp int64, maxTimestamp int64, producerId int64, ...
		for len(data) >= 51 {
			length := int(binary.BigEndian.Uint32(data[8:12]))
			if length == 0 {
				break // preallocated space
			}
			if data[16] != 2 {
				t.Fatalf("%s: batch with magic %d", path, data[16])
			}
			headers = append(headers, batchHeader{
				codec:      sarama.CompressionCodec(binary.BigEndian.Uint16(data[21:23]) & 7),
				producerID: int64(binary.BigEndian.Uint64(data[43:51])),
			})
			if 12+length > len(data) {
				t.Fatalf("%s: truncated batch", path)
			}
			data = data[12+length:]
		}
	}
	if len(headers) == 0 {
		t.Fatalf("no batches in the segment files of %s-%d", topic, partition)
	}
	return headers
}

// message is the i-th test record of topic: key, value and two headers derived from i.
func message(topic string, i int) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{
		Topic: topic,
		Key:   sarama.StringEncoder("key-" + strconv.Itoa(i)),
		Value: sarama.StringEncoder(fmt.Sprintf("value-%d-%s", i, "some text that compresses well, some text that compresses well")),
		Headers: []sarama.RecordHeader{
			{Key: []byte("i"), Value: []byte(strconv.Itoa(i))},
			{Key: []byte("empty"), Value: []byte{}},
		},
	}
}

func mustString(e sarama.Encoder) string {
	b, err := e.Encode()
	if err != nil {
		panic(err)
	}
	return string(b)
}

func offsets(ms []*sarama.ProducerMessage) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Offset
	}
	return out
}

func keys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// consumePartition reads n records of topic/partition from offset.
func consumePartition(t *testing.T, cons sarama.Consumer, topic string, partition int32, offset int64, n int) []*sarama.ConsumerMessage {
	t.Helper()
	pc, err := cons.ConsumePartition(topic, partition, offset)
	if err != nil {
		t.Fatalf("ConsumePartition %s/%d: %v", topic, partition, err)
	}
	defer func() { _ = pc.Close() }()
	timeout := time.After(20 * time.Second)
	var got []*sarama.ConsumerMessage
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case err := <-pc.Errors():
			t.Fatalf("consume %s/%d: %v", topic, partition, err)
		case <-timeout:
			t.Fatalf("consume %s/%d: %d of %d records after 20s", topic, partition, len(got), n)
		}
	}
	return got
}

func testAsyncProducer(t *testing.T, addr string, v sarama.KafkaVersion) {
	const topic, n = "async", 5000
	createTopic(t, newAdmin(t, addr, v), topic, 3)

	cfg := newConfig(v)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Compression = sarama.CompressionSnappy
	cfg.Producer.Flush.Messages = 100
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	prod, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			prod.AsyncClose()
		}
	}()

	go func() {
		for i := 0; i < n; i++ {
			prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder("v" + strconv.Itoa(i)), Metadata: i}
		}
	}()
	type tp struct {
		p   int32
		off int64
	}
	acked := map[int]tp{}
	seen := map[tp]bool{}
	var errs []error
	timeout := time.After(40 * time.Second)
	for len(acked)+len(errs) < n {
		select {
		case m := <-prod.Successes():
			i := m.Metadata.(int)
			if _, dup := acked[i]; dup {
				t.Fatalf("record %d acked twice", i)
			}
			at := tp{m.Partition, m.Offset}
			if seen[at] {
				t.Fatalf("two records acked at %d/%d", at.p, at.off)
			}
			seen[at] = true
			acked[i] = at
		case err := <-prod.Errors():
			errs = append(errs, err)
		case <-timeout:
			t.Fatalf("%d acked, %d errors after 40s, want %d acked", len(acked), len(errs), n)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d records failed, first: %v", len(errs), n, errs[0])
	}
	closed = true
	if err := prod.Close(); err != nil {
		t.Fatal(err)
	}

	// The acked offsets of each partition are exactly 0..hw-1.
	cl, err := sarama.NewClient([]string{addr}, newConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	perPartition := map[int32]int64{}
	for at := range seen {
		perPartition[at.p]++
	}
	var total int64
	for p := int32(0); p < 3; p++ {
		hw, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw != perPartition[p] {
			t.Fatalf("partition %d: high watermark %d, %d records acked", p, hw, perPartition[p])
		}
		for off := int64(0); off < hw; off++ {
			if !seen[tp{p, off}] {
				t.Fatalf("partition %d: offset %d below the high watermark %d was never acked", p, off, hw)
			}
		}
		total += hw
	}
	if total != n {
		t.Fatalf("high watermarks sum to %d, want %d", total, n)
	}
}

// groupRecord identifies a record by partition and offset.
type groupRecord struct {
	partition int32
	offset    int64
}

// groupMember is a sarama.ConsumerGroupHandler that records every message it is given and the
// partitions whose claims it is running. With an eager strategy a rebalance ends every claim; with
// a cooperative one only the revoked claims end, so the running claims are what a member holds.
type groupMember struct {
	name      string
	collector *collector

	mu      sync.Mutex
	running map[int32]bool
}

func (m *groupMember) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (m *groupMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *groupMember) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	m.mu.Lock()
	if m.running == nil {
		m.running = map[int32]bool{}
	}
	m.running[c.Partition()] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.running, c.Partition())
		m.mu.Unlock()
	}()
	for msg := range c.Messages() {
		m.collector.add(m.name, msg)
		s.MarkMessage(msg, "")
	}
	return nil
}

// holds lists the partitions whose claims are running.
func (m *groupMember) holds() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return keys(m.running)
}

// collector counts deliveries of each record across the members of a group.
type collector struct {
	mu     sync.Mutex
	count  map[groupRecord]int
	member map[groupRecord]string
	value  map[groupRecord]string
}

func newCollector() *collector {
	return &collector{count: map[groupRecord]int{}, member: map[groupRecord]string{}, value: map[groupRecord]string{}}
}

func (c *collector) add(member string, msg *sarama.ConsumerMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := groupRecord{msg.Partition, msg.Offset}
	c.count[r]++
	c.member[r] = member
	c.value[r] = string(msg.Value)
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.count)
}

// runMember consumes topic as a member of group until ctx ends; stop closes it and waits.
func runMember(t *testing.T, addr string, v sarama.KafkaVersion, s sarama.BalanceStrategy, group, topic string, h *groupMember) (stop func()) {
	t.Helper()
	cfg := newConfig(v)
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{s}
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				if !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for err := range cg.Errors() {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}()
	return func() {
		t.Helper()
		cancel()
		if err := cg.Close(); err != nil {
			t.Errorf("%s: close: %v", h.name, err)
		}
		wg.Wait()
		// Errors are logged, not failed on: a commit racing a rebalance is normal client life;
		// the assertions on delivered records and committed offsets decide.
		for _, err := range errs {
			t.Logf("%s: %v", h.name, err)
		}
	}
}

// produceN sends n records to topic and returns where each landed.
func produceN(t *testing.T, addr string, v sarama.KafkaVersion, topic string, from, n int) map[groupRecord]string {
	t.Helper()
	cfg := newConfig(v)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close() }()
	var msgs []*sarama.ProducerMessage
	for i := from; i < from+n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k" + strconv.Itoa(i)), Value: sarama.StringEncoder("v" + strconv.Itoa(i))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	out := map[groupRecord]string{}
	for _, m := range msgs {
		out[groupRecord{m.Partition, m.Offset}] = mustString(m.Value)
	}
	return out
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkExactlyOnce fails unless c holds every record of want exactly once and nothing else.
func checkExactlyOnce(t *testing.T, c *collector, want map[groupRecord]string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, n := range c.count {
		if _, ok := want[r]; !ok {
			t.Errorf("unexpected record %d/%d (%q) delivered to %s", r.partition, r.offset, c.value[r], c.member[r])
		} else if n != 1 {
			t.Errorf("record %d/%d delivered %d times", r.partition, r.offset, n)
		} else if c.value[r] != want[r] {
			t.Errorf("record %d/%d: value %q, want %q", r.partition, r.offset, c.value[r], want[r])
		}
	}
	for r := range want {
		if _, ok := c.count[r]; !ok {
			t.Errorf("record %d/%d (%q) never delivered", r.partition, r.offset, want[r])
		}
	}
}

func testConsumerGroup(t *testing.T, addr string, v sarama.KafkaVersion, s sarama.BalanceStrategy) {
	const partitions = 4
	topic := "group-" + s.Name()
	group := "g-" + s.Name()
	adm := newAdmin(t, addr, v)
	createTopic(t, adm, topic, partitions)

	// Two members; records are produced only once they have split the partitions between them,
	// so no rebalance can hand a record to both.
	col := newCollector()
	a := &groupMember{name: "a", collector: col}
	b := &groupMember{name: "b", collector: col}
	stopA := runMember(t, addr, v, s, group, topic, a)
	stopB := runMember(t, addr, v, s, group, topic, b)
	stopped := false
	defer func() {
		if !stopped {
			stopA()
			stopB()
		}
	}()
	waitFor(t, 30*time.Second, "the two members to split the partitions", func() bool {
		ca, cb := a.holds(), b.holds()
		if len(ca) == 0 || len(cb) == 0 {
			return false
		}
		all := map[int32]bool{}
		for _, p := range append(ca, cb...) {
			if all[p] {
				return false
			}
			all[p] = true
		}
		return len(all) == partitions
	})
	claimsA, claimsB := a.holds(), b.holds()
	t.Logf("a holds %v, b holds %v", claimsA, claimsB)

	const n = 400
	first := produceN(t, addr, v, topic, 0, n)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d records to reach the group", n), func() bool { return col.distinct() >= n })
	checkExactlyOnce(t, col, first)
	col.mu.Lock()
	for r, who := range col.member {
		claims := claimsA
		if who == "b" {
			claims = claimsB
		}
		if !contains(claims, r.partition) {
			t.Errorf("%s got record %d/%d of a partition it does not hold (%v)", who, r.partition, r.offset, claims)
		}
	}
	col.mu.Unlock()

	// Auto-commit stores the next offset to read: the high watermark of each partition.
	hw := map[int32]int64{}
	for r := range first {
		if r.offset+1 > hw[r.partition] {
			hw[r.partition] = r.offset + 1
		}
	}
	waitFor(t, 20*time.Second, "committed offsets to reach the high watermarks", func() bool {
		resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
		if err != nil {
			t.Logf("ListConsumerGroupOffsets: %v", err)
			return false
		}
		for p := int32(0); p < partitions; p++ {
			blk := resp.GetBlock(topic, p)
			if blk == nil || !errors.Is(blk.Err, sarama.ErrNoError) || blk.Offset != hw[p] {
				return false
			}
		}
		return true
	})
	stopA()
	stopB()
	stopped = true

	// A fresh member of the same group resumes from the committed offsets.
	const m = 40
	second := produceN(t, addr, v, topic, n, m)
	colC := newCollector()
	c := &groupMember{name: "c", collector: colC}
	stopC := runMember(t, addr, v, s, group, topic, c)
	waitFor(t, 30*time.Second, fmt.Sprintf("%d new records to reach the resumed member", m), func() bool { return colC.distinct() >= m })
	stopC()
	checkExactlyOnce(t, colC, second)

	// Another group starts from the oldest offset and reads everything.
	all := map[groupRecord]string{}
	for r, val := range first {
		all[r] = val
	}
	for r, val := range second {
		all[r] = val
	}
	colD := newCollector()
	d := &groupMember{name: "d", collector: colD}
	stopD := runMember(t, addr, v, s, "other-"+group, topic, d)
	waitFor(t, 30*time.Second, "another group to read every record", func() bool { return colD.distinct() >= n+m })
	stopD()
	checkExactlyOnce(t, colD, all)

	groups, err := adm.ListConsumerGroups()
	if err != nil {
		t.Fatalf("ListConsumerGroups: %v", err)
	}
	if groups[group] != "consumer" || groups["other-"+group] != "consumer" {
		t.Fatalf("ListConsumerGroups: %v", groups)
	}
}

func contains(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func testGetOffset(t *testing.T, addr string, v sarama.KafkaVersion) {
	const topic, n = "timestamps", 10
	createTopic(t, newAdmin(t, addr, v), topic, 1)

	cfg := newConfig(v)
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close() }()
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	// Record i carries the timestamp base + i seconds.
	for i := 0; i < n; i++ {
		m := &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("v" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if _, off, err := prod.SendMessage(m); err != nil || off != int64(i) {
			t.Fatalf("SendMessage %d: offset %d, %v", i, off, err)
		}
	}

	cl, err := sarama.NewClient([]string{addr}, newConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close() }()
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	for _, tc := range []struct {
		name string
		time int64
		want int64
	}{
		{"newest", sarama.OffsetNewest, n},
		{"oldest", sarama.OffsetOldest, 0},
		{"before every record", ms(-time.Hour), 0},
		{"first record's timestamp", ms(0), 0},
		{"exactly record 3's timestamp", ms(3 * time.Second), 3},
		{"between records 3 and 4", ms(3500 * time.Millisecond), 4},
		{"last record's timestamp", ms((n - 1) * time.Second), n - 1},
		// No record is that new: Kafka answers offset -1.
		{"after every record", ms(time.Hour), -1},
	} {
		got, err := cl.GetOffset(topic, 0, tc.time)
		if err != nil {
			t.Fatalf("GetOffset %s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("GetOffset %s (%d): %d, want %d", tc.name, tc.time, got, tc.want)
		}
	}
	if _, err := cl.GetOffset(topic, 7, sarama.OffsetNewest); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("GetOffset of a partition that does not exist: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
}
