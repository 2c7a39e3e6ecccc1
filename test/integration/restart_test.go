package integration

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartPersistence: records, a 3-partition topic and a group's committed offsets survive a
// SIGTERM and a start on the same data dir; kcat reads every record back, and new records continue
// at the offsets where the old ones ended.
func TestRestartPersistence(t *testing.T) {
	kcat := needKcat(t)
	b := startBroker(t)
	const topic, n = "persist", 300
	createTopic(t, b.Addr, topic, 3, nil)
	createTopic(t, b.Addr, "single", 1, nil)

	var want []record
	produced := produceSync(t, b.Addr, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: int32(i % 3), Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte(fmt.Sprintf("value %03d", i))}
	}, n)
	for _, r := range produced {
		want = append(want, record{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
	}
	adm := kadm.NewClient(newClient(t, b.Addr))
	ctx := testContext(t, 60*time.Second)
	commit := kadm.Offsets{}
	commit.AddOffset(topic, 0, 17, -1)
	commit.AddOffset(topic, 2, 100, -1)
	if resp, err := adm.CommitOffsets(ctx, "persist-group", commit); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}

	b.stop()
	b.start()

	if got := partitionCount(t, b.Addr, topic); got != 3 {
		t.Errorf("after restart %s has %d partitions, want 3", topic, got)
	}
	if got := partitionCount(t, b.Addr, "single"); got != 1 {
		t.Errorf("after restart single has %d partitions, want 1", got)
	}
	out := mustRun(t, "", kcat, "-C", "-b", b.Addr, "-t", topic, "-o", "beginning", "-e", "-q", "-f", `%p\t%o\t%T\t%k\t%s\t%h\n`)
	got := parseKcat(t, out)
	for i := range got {
		got[i].Timestamp = 0 // stamped by franz-go; not what this test is about
	}
	sortRecords(got)
	sortRecords(want)
	if len(got) != len(want) {
		t.Errorf("after restart kcat read %d records, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("after restart record %d:\n got %v\nwant %v", i, got[i], want[i])
			break
		}
	}
	fetched, err := adm.FetchOffsets(ctx, "persist-group")
	if err != nil {
		t.Fatalf("fetch offsets after restart: %v", err)
	}
	for _, c := range []struct {
		p   int32
		off int64
	}{{0, 17}, {2, 100}} {
		if o, ok := fetched.Lookup(topic, c.p); !ok || o.Err != nil || o.At != c.off {
			t.Errorf("after restart committed offset of %s-%d: %+v (found %v), want %d", topic, c.p, o, ok, c.off)
		}
	}

	// The logs continue where they ended: offsets 100, 100, 100.
	more := produceSync(t, b.Addr, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: int32(i), Value: []byte("after restart")}
	}, 3)
	for _, r := range more {
		if r.Offset != n/3 {
			t.Errorf("first record after restart in partition %d at offset %d, want %d", r.Partition, r.Offset, n/3)
		}
	}
	b.stop()
}

// produceSync produces n records made by mk with franz-go (acks=all, idempotent) and returns them
// with their offsets.
func produceSync(t *testing.T, addr string, mk func(i int) *kgo.Record, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = mk(i)
	}
	if err := cl.ProduceSync(testContext(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

func sortRecords(rs []record) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Offset < rs[j].Offset
	})
}

// TestKill9UnderLoad: franz-go producers (acks=all, idempotent) write from several goroutines
// while the broker is killed with SIGKILL, twice; after each restart on the same data dir every
// acknowledged record is at its acknowledged offset with its value, offsets are contiguous, and no
// value is stored twice.
func TestKill9UnderLoad(t *testing.T) {
	b := startBroker(t)
	const topic = "load"
	createTopic(t, b.Addr, topic, 3, nil)
	acked := map[[2]int64]string{} // {partition, offset} -> value
	for round := 1; round <= 2; round++ {
		n := produceUntilKilled(t, b, topic, round, acked)
		t.Logf("round %d: %d records acknowledged before kill -9", round, n)
		b.start()
		checkAcked(t, b.Addr, topic, acked)
		if t.Failed() {
			return
		}
	}
	b.stop()
}

// produceUntilKilled runs producers against b until at least a second has passed and records
// were acknowledged, kills the broker with SIGKILL, stops the producers and adds what was
// acknowledged to acked. It returns how many records this round acknowledged.
func produceUntilKilled(t *testing.T, b *broker, topic string, round int, acked map[[2]int64]string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(time.Millisecond),
		kgo.MaxBufferedRecords(2000))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		n       int
		failure error // an acknowledgement that makes no sense
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const producers = 4
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				v := fmt.Sprintf("r%d-g%d-%d", round, g, seq)
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err != nil {
						return // not acknowledged: may or may not be in the log
					}
					mu.Lock()
					defer mu.Unlock()
					at := [2]int64{int64(r.Partition), r.Offset}
					if prev, dup := acked[at]; dup && failure == nil {
						failure = fmt.Errorf("partition %d offset %d acknowledged for %q and for %q", r.Partition, r.Offset, prev, v)
					}
					acked[at] = v
					n++
				})
			}
		}()
	}
	// Load for at least a second and until there is something to lose.
	start := time.Now()
	for {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		sofar := n
		mu.Unlock()
		if sofar >= 500 && time.Since(start) > time.Second {
			break
		}
		if time.Since(start) > 60*time.Second {
			cancel()
			t.Fatalf("round %d: only %d records acknowledged after 60 s of load", round, sofar)
		}
	}
	b.kill()
	cancel()
	wg.Wait()
	closed := make(chan struct{})
	go func() { cl.Close(); close(closed) }() // fails what is still buffered or in flight
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		t.Fatal("the producer client did not close within 60 s of the broker's death")
	}
	mu.Lock()
	defer mu.Unlock()
	if failure != nil {
		t.Fatal(failure)
	}
	return n
}

// checkAcked reads the whole topic and checks every acknowledged record.
func checkAcked(t *testing.T, addr, topic string, acked map[[2]int64]string) {
	t.Helper()
	stored := map[[2]int64]string{}
	where := map[string][2]int64{}
	next := map[int32]int64{}
	for _, r := range consumeAll(t, addr, topic) {
		at := [2]int64{int64(r.Partition), r.Offset}
		if r.Offset != next[r.Partition] {
			t.Errorf("partition %d: offset %d follows %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition] = r.Offset + 1
		v := string(r.Value)
		if prev, dup := where[v]; dup {
			t.Errorf("value %q stored twice: partition %d offset %d and partition %d offset %d", v, prev[0], prev[1], at[0], at[1])
		}
		where[v] = at
		stored[at] = v
	}
	var missing []string
	for at, v := range acked {
		if got, ok := stored[at]; !ok || got != v {
			missing = append(missing, fmt.Sprintf("partition %d offset %d: acknowledged %q, stored %q (present %v)", at[0], at[1], v, got, ok))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("%d of %d acknowledged records are not in the log after kill -9 and restart (log ends %v); first ones:\n%s",
			len(missing), len(acked), next, strings.Join(missing[:min(len(missing), 20)], "\n"))
	}
}

// TestKill9KeepsCommittedOffsets: consumer groups commit offsets from several goroutines while the
// broker is killed with SIGKILL; after the restart every acknowledged commit (the last one per
// group and partition) is what OffsetFetch returns. Commits live in __consumer_offsets, which the
// log cleaner compacts, so the broker runs with small segments and a busy cleaner.
func TestKill9KeepsCommittedOffsets(t *testing.T) {
	b := startBroker(t, "--override", "offsets.topic.num.partitions=3", "--override", "log.roll.ms=200",
		"--override", "log.cleaner.backoff.ms=100")
	createTopic(t, b.Addr, "work", 4, nil)
	ctx := testContext(t, 60*time.Second)
	var mu sync.Mutex
	acked := map[string]map[int32]int64{}     // group -> partition -> last acknowledged commit
	attempted := map[string]map[int32]int64{} // the last one sent, which the kill may have cut off
	for g := range 3 {
		group := fmt.Sprintf("g%d", g)
		acked[group], attempted[group] = map[int32]int64{}, map[int32]int64{}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		group := fmt.Sprintf("g%d", g)
		adm := kadm.NewClient(newClient(t, b.Addr, kgo.RequestRetries(0)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				part := int32(i % 4)
				mu.Lock()
				attempted[group][part] = i
				mu.Unlock()
				commit := kadm.Offsets{}
				commit.Add(kadm.Offset{Topic: "work", Partition: part, At: i, LeaderEpoch: -1})
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := adm.CommitOffsets(cctx, group, commit)
				cancel()
				if err != nil || resp.Error() != nil {
					continue // the broker is gone: this commit was not acknowledged
				}
				mu.Lock()
				acked[group][part] = i
				mu.Unlock()
			}
		}()
	}
	// Commit until the cleaner has compacted __consumer_offsets at least once (or 10 s passed).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		if out := b.log.Since(0); strings.Contains(out, `msg="log cleaner compacted" topic=__consumer_offsets`) {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	if !strings.Contains(b.log.Since(0), `msg="log cleaner compacted" topic=__consumer_offsets`) {
		t.Error("the log cleaner never compacted __consumer_offsets during the commits")
	}
	b.kill()
	close(stop)
	wg.Wait()

	b.start()
	adm := kadm.NewClient(newClient(t, b.Addr))
	total := 0
	for group, parts := range acked {
		var got kadm.OffsetResponses
		for {
			var err error
			got, err = adm.FetchOffsets(ctx, group)
			if err == nil {
				break
			}
			if !errors.Is(err, kerr.CoordinatorLoadInProgress) || ctx.Err() != nil {
				t.Fatalf("fetch offsets of %s: %v", group, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for part, want := range parts {
			// A commit in flight at the kill may or may not have been applied, and the goroutines
			// go on attempting (unacknowledged) commits until they see stop: any value attempted
			// after the last acknowledged one (for this partition: i%4 == part) may be there,
			// nothing older than the acknowledged one may.
			o, ok := got.Lookup("work", part)
			if !ok || o.Err != nil || o.At < want || o.At > attempted[group][part] || o.At%4 != int64(part) {
				t.Errorf("%s partition %d: committed %+v after kill -9, want %d (or an unacknowledged later one, up to %d)",
					group, part, o, want, attempted[group][part])
			}
			total++
		}
	}
	if total == 0 {
		t.Fatal("no commit was acknowledged before the kill")
	}
	t.Logf("%d acknowledged (group, partition) commits checked after kill -9", total)
	b.stop()
}
