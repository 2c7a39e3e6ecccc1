package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readUntil consumes partition 0 of topic from the start, at isolation level, until the record
// of key last; it returns every record read.
func readUntil(ctx context.Context, t *testing.T, b *Broker, topic string, level kgo.IsolationLevel, last string) []*kgo.Record {
	t.Helper()
	cl := client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(level))
	var out []*kgo.Record
	for len(out) == 0 || string(out[len(out)-1].Key) != last {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records of %s without reaching key %s: %v", len(out), topic, last, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// TestCompactedTransactionalTopic: a transactional producer commits and aborts transactions on a
// cleanup.policy=compact topic; the cleaner (the broker's CleanLogs, bounded by the partition's
// last stable offset) leaves the latest committed value of every key and no aborted record, for
// read_committed and read_uncommitted consumers alike. A transaction left open holds the cleaner
// below it until it ends.
func TestCompactedTransactionalTopic(t *testing.T) {
	b := testBroker(t, t.TempDir(), "log.cleaner.enable", "false", "transaction.state.log.num.partitions", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	cfg := map[string]*string{}
	// delete.retention.ms 0: a marker goes at the pass after the one that gave it its horizon.
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096", "delete.retention.ms": "0"} {
		cfg[k] = &v
	}
	const topic = "ctxn"
	if _, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil {
		t.Fatal(err)
	}
	plain := client(t, b, kgo.DefaultProduceTopic(topic))
	inTxn := func(p *kgo.Client, end bool, commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if end {
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
	}
	latest := map[string]string{}
	for i := range 30 {
		commit := i%3 != 1 || i == 28 // ...and the last one aborts
		if i == 29 {
			commit = false
		}
		var recs []*kgo.Record
		for k := range 8 {
			key := fmt.Sprintf("key-%02d", (i*3+k)%16)
			val := fmt.Sprintf("c-%d-%d", i, k)
			if !commit {
				val = fmt.Sprintf("a-%d-%d", i, k)
			} else {
				latest[key] = val
			}
			recs = append(recs, &kgo.Record{Key: []byte(key), Value: []byte(val)})
		}
		// A transactional id per transaction: each is its producer's first (quick to complete).
		prod := client(t, b, kgo.TransactionalID(fmt.Sprintf("p1-%d", i)), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(30*time.Second))
		inTxn(prod, true, commit, recs...)
	}
	pad := func(n int, last string) {
		t.Helper()
		for i := range n {
			latest["pad"] = fmt.Sprintf("%0100d", i)
			if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("pad"), Value: []byte(latest["pad"])}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte(last), Value: []byte("e")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		latest[last] = "e"
	}
	pad(60, "end") // rolls the segment holding the last transaction: the active one is never cleaned

	values := func(rs []*kgo.Record) map[string]string {
		got := map[string]string{}
		for _, r := range rs {
			got[string(r.Key)] = string(r.Value)
		}
		return got
	}
	p := b.parts.Get(topic, 0)
	sizeBefore := p.Size()
	uncommittedBefore := readUntil(ctx, t, b, topic, kgo.ReadUncommitted(), "end")
	for pass := range 3 {
		b.CleanLogs(true)
		committed := readUntil(ctx, t, b, topic, kgo.ReadCommitted(), "end")
		if got := values(committed); fmt.Sprint(got) != fmt.Sprint(latest) {
			t.Fatalf("pass %d: read_committed\n got %v\nwant %v", pass, got, latest)
		}
		uncommitted := readUntil(ctx, t, b, topic, kgo.ReadUncommitted(), "end")
		for _, r := range uncommitted {
			if strings.HasPrefix(string(r.Value), "a-") {
				t.Fatalf("pass %d: read_uncommitted reads aborted %s=%s after cleaning", pass, r.Key, r.Value)
			}
		}
		if len(uncommitted) != len(committed) || len(uncommitted) >= len(uncommittedBefore)/3 {
			t.Fatalf("pass %d: %d records read_uncommitted, %d read_committed, %d before cleaning",
				pass, len(uncommitted), len(committed), len(uncommittedBefore))
		}
	}
	// Each producer's last batch stays (empty) with its marker: 30 producers here.
	if p.Size() >= sizeBefore/2 {
		t.Fatalf("log %d -> %d bytes", sizeBefore, p.Size())
	}

	// A transaction left open: nothing from its first record on is cleaned, until it aborts.
	open := client(t, b, kgo.TransactionalID("p2"), kgo.DefaultProduceTopic(topic), kgo.TransactionTimeout(30*time.Second))
	inTxn(open, false, false, &kgo.Record{Key: []byte("key-00"), Value: []byte("a-open")})
	pad(60, "end2")
	countPads := func() (pads int, sawOpen bool) {
		for _, r := range readUntil(ctx, t, b, topic, kgo.ReadUncommitted(), "end2") {
			pads += map[bool]int{true: 1}[string(r.Key) == "pad"]
			sawOpen = sawOpen || string(r.Value) == "a-open"
		}
		return pads, sawOpen
	}
	b.CleanLogs(true)
	if pads, sawOpen := countPads(); pads < 61 || !sawOpen {
		t.Fatalf("with a transaction open: %d pad records (want the 60 after it and one before), open record seen %v", pads, sawOpen)
	}
	if err := open.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	pad(60, "end3")
	b.CleanLogs(true)
	cl := readUntil(ctx, t, b, topic, kgo.ReadUncommitted(), "end3")
	pads := 0
	for _, r := range cl {
		if string(r.Value) == "a-open" {
			t.Fatal("the aborted open transaction's record survives cleaning after its abort")
		}
		if string(r.Key) == "pad" {
			pads++
		}
	}
	if pads > 61 {
		t.Fatalf("%d pad records after the transaction ended, want the older ones compacted", pads)
	}
}
