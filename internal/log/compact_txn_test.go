package log

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/record"
)

// txnWriter appends hand-built batches to a log the way producers and the
// transaction coordinator would: plain, transactional (per producer sequence
// numbers) and markers.
type txnWriter struct {
	t     *testing.T
	l     *Log
	clock *fakeClock
	codec record.Codec
	seq   map[int64]int32
	open  map[int64]int64 // producer -> first offset of its open transaction
}

func newTxnWriter(t *testing.T, l *Log, clock *fakeClock) *txnWriter {
	return &txnWriter{t: t, l: l, clock: clock, seq: map[int64]int32{}, open: map[int64]int64{}}
}

// kvRecords is one record for each key and value of pairs (a value "" is a tombstone), a
// millisecond apart.
func kvRecords(pairs []string) []record.Record {
	var recs []record.Record
	for i := 0; i+1 < len(pairs); i += 2 {
		r := record.Record{TimestampDelta: int64(i / 2), Key: []byte(pairs[i])}
		if pairs[i+1] != "" {
			r.Value = []byte(pairs[i+1])
		}
		recs = append(recs, r)
	}
	return recs
}

// plain appends a non-idempotent batch.
func (w *txnWriter) plain(pairs ...string) AppendResult {
	return mustAppend(w.t, w.l, keyed(w.codec, w.clock.Now().UnixMilli(), pairs...))
}

// txn appends a transactional batch of producer pid.
func (w *txnWriter) txn(pid int64, pairs ...string) AppendResult {
	recs := kvRecords(pairs)
	b := record.Build(record.BatchSpec{Codec: w.codec, Transactional: true, BaseTimestamp: w.clock.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: 0, BaseSequence: w.seq[pid], Records: recs})
	w.seq[pid] += int32(len(recs))
	r := mustAppend(w.t, w.l, b)
	if _, ok := w.open[pid]; !ok {
		w.open[pid] = r.BaseOffset
	}
	return r
}

// marker appends pid's commit or abort marker and, as the partition does,
// indexes an aborted transaction.
func (w *txnWriter) marker(pid int64, commit bool) AppendResult {
	r := mustAppend(w.t, w.l, record.BuildMarker(record.Marker{ProducerID: pid, ProducerEpoch: 0, Commit: commit,
		CoordinatorEpoch: 3, Timestamp: w.clock.Now().UnixMilli()}))
	first, ok := w.open[pid]
	delete(w.open, pid)
	if ok && !commit {
		lso := r.BaseOffset + 1
		for _, f := range w.open {
			lso = min(lso, f)
		}
		if err := w.l.AppendAbortedTxn(AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: r.BaseOffset, LastStableOffset: lso}); err != nil {
			w.t.Fatal(err)
		}
	}
	return r
}

// describeIndex sums up the log's aborted-transaction index: "pid:first-last/lso" per entry.
func describeIndex(l *Log) string {
	var out []string
	for _, t := range l.AbortedTxns(0, math.MaxInt64) {
		out = append(out, fmt.Sprintf("%d:%d-%d/%d", t.ProducerID, t.FirstOffset, t.LastOffset, t.LastStableOffset))
	}
	return strings.Join(out, " ")
}

// control appends a control batch that is not a transaction marker (type 2, Kafka's LeaderChange).
func (w *txnWriter) control() AppendResult {
	return mustAppend(w.t, w.l, record.Build(record.BatchSpec{Control: true, BaseTimestamp: w.clock.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: []record.Record{{Key: []byte{0, 0, 0, 2}, Value: []byte{0}}}}))
}

func (w *txnWriter) roll() {
	if _, err := w.l.rollForTest(); err != nil {
		w.t.Fatal(err)
	}
}

// describeLog sums up every batch of the log in offset order, separated by
// spaces: a data batch as "<base>:k=v,k=v" ("-" when empty, "t" in front when
// transactional), a commit or abort marker as "C<offset>" or "A<offset>" ("h"
// after it when it carries a delete horizon), another control batch as "X<offset>".
func describeLog(t *testing.T, l *Log) string {
	t.Helper()
	var out []string
	eachBatch(t, l, func(h record.BatchHeader, recs []record.Record, _ int64) {
		if h.Control() {
			m, err := record.ParseMarker(h, recs)
			s := fmt.Sprintf("X%d", h.BaseOffset)
			if err == nil {
				s = fmt.Sprintf("A%d", h.BaseOffset)
				if m.Commit {
					s = fmt.Sprintf("C%d", h.BaseOffset)
				}
				if m.CoordinatorEpoch != 3 || m.ProducerEpoch != 0 {
					t.Fatalf("marker at %d: %+v", h.BaseOffset, m)
				}
			}
			if _, ok := h.DeleteHorizon(); ok {
				s += "h"
			}
			out = append(out, s)
			return
		}
		var kvs []string
		for _, rec := range recs {
			kvs = append(kvs, string(rec.Key)+"="+string(rec.Value))
		}
		if len(kvs) == 0 {
			kvs = []string{"-"}
		}
		s := fmt.Sprintf("%d:%s", h.BaseOffset, strings.Join(kvs, ","))
		if h.Transactional() {
			s = "t" + s
		}
		out = append(out, s)
	})
	return strings.Join(out, " ")
}

// TestCleanTransactionRules runs each of the cleaner's transaction rules on a
// log built by hand, pass after pass: before each pass the clock moves on by
// advance and NeedsCleaning must say needs; after it the log must read want.
func TestCleanTransactionRules(t *testing.T) {
	type pass struct {
		advance time.Duration
		needs   bool
		want    string
		index   string // describeIndex after the pass
	}
	const retention = time.Hour // compactConfig's delete.retention.ms
	tests := []struct {
		name   string
		codec  record.Codec
		build  func(w *txnWriter)
		passes []pass
	}{{
		name: "aborted records go, then their marker after delete.retention.ms",
		build: func(w *txnWriter) {
			w.plain("a", "0")            // 0
			w.txn(1, "a", "1", "b", "1") // 1-2, aborted
			w.marker(1, false)           // 3
			w.txn(2, "c", "2")           // 4
			w.marker(2, true)            // 5
			w.txn(1, "a", "3")           // 6
			w.marker(1, true)            // 7
			w.roll()
			w.plain("tail", "t") // 8
		},
		passes: []pass{
			// The abort marker stays: the pass met its transaction's batches.
			{needs: true, want: "A3 t4:c=2 C5 t6:a=3 C7 8:tail=t", index: "1:1-3/4"},
			// None left: the marker gets its horizon; the commit markers' data remain.
			{needs: true, want: "A3h t4:c=2 C5 t6:a=3 C7 8:tail=t"},
			{advance: retention - time.Second, needs: false, want: "A3h t4:c=2 C5 t6:a=3 C7 8:tail=t"},
			{advance: time.Second, needs: true, want: "t4:c=2 C5 t6:a=3 C7 8:tail=t"},
		},
	}, {
		name:  "an aborted value never hides the committed one; a producer's last batch stays empty",
		codec: record.CodecZstd,
		build: func(w *txnWriter) {
			w.plain("x", "0")  // 0
			w.txn(1, "x", "1") // 1, pid 1's last data batch, aborted
			w.marker(1, false) // 2
			w.roll()
			w.plain("tail", "t") // 3
		},
		passes: []pass{
			{needs: true, want: "0:x=0 t1:- A2 3:tail=t", index: "1:1-2/3"},
			// The empty batch is of the aborted transaction: its marker stays with it.
			{advance: 2 * retention, needs: false, want: "0:x=0 t1:- A2 3:tail=t", index: "1:1-2/3"},
		},
	}, {
		name:  "a commit marker stays while its transaction keeps a record",
		codec: record.CodecLZ4,
		build: func(w *txnWriter) {
			w.txn(1, "k", "1", "j", "1") // 0-1
			w.marker(1, true)            // 2
			w.txn(1, "k", "2")           // 3
			w.marker(1, true)            // 4
			w.roll()
			w.plain("tail", "t") // 5
		},
		passes: []pass{
			{needs: true, want: "t0:j=1 C2 t3:k=2 C4 5:tail=t"},
			{advance: 2 * retention, needs: false, want: "t0:j=1 C2 t3:k=2 C4 5:tail=t"},
		},
	}, {
		name: "a commit marker goes after its transaction's records and delete.retention.ms",
		build: func(w *txnWriter) {
			w.txn(1, "k", "1") // 0
			w.marker(1, true)  // 1
			w.txn(1, "k", "2") // 2
			w.marker(1, true)  // 3
			w.roll()
			w.plain("tail", "t") // 4
		},
		passes: []pass{
			{needs: true, want: "C1 t2:k=2 C3 4:tail=t"},
			{needs: true, want: "C1h t2:k=2 C3 4:tail=t"},
			{advance: retention / 2, needs: false, want: "C1h t2:k=2 C3 4:tail=t"},
			{advance: retention / 2, needs: true, want: "t2:k=2 C3 4:tail=t"},
			{advance: retention, needs: false, want: "t2:k=2 C3 4:tail=t"},
		},
	}, {
		name: "nothing from the first open transaction on is cleaned, whatever the limit",
		build: func(w *txnWriter) {
			w.txn(1, "a", "1") // 0
			w.marker(1, true)  // 1
			w.plain("a", "2")  // 2
			w.roll()
			w.txn(2, "b", "1") // 3, pid 2's transaction has no marker
			w.plain("b", "2")  // 4
			w.roll()
			w.plain("tail", "t") // 5
		},
		passes: []pass{
			{needs: true, want: "t0:- C1 2:a=2 t3:b=1 4:b=2 5:tail=t"},
		},
	}, {
		name:  "an abort marker above the cleanable segments still drops its records",
		codec: record.CodecSnappy,
		build: func(w *txnWriter) {
			w.txn(1, "a", "1") // 0
			w.txn(1, "b", "1") // 1, pid 1's last data batch
			w.plain("c", "0")  // 2
			w.roll()
			w.marker(1, false)   // 3, in the active segment
			w.plain("tail", "t") // 4
		},
		passes: []pass{
			{needs: true, want: "t1:- 2:c=0 A3 4:tail=t", index: "1:0-3/4"},
		},
	}, {
		name:  "interleaved transactions of two producers",
		codec: record.CodecGzip,
		build: func(w *txnWriter) {
			w.txn(1, "a", "1") // 0
			w.txn(2, "a", "2") // 1
			w.txn(1, "b", "1") // 2
			w.marker(2, false) // 3
			w.txn(2, "b", "2") // 4
			w.marker(1, true)  // 5
			w.marker(2, true)  // 6
			w.plain("z", "0")  // 7
			w.roll()
			w.plain("tail", "t") // 8
		},
		passes: []pass{
			// a=1 is the latest committed a; b=2 supersedes b=1 (both committed).
			{needs: true, want: "t0:a=1 t2:- A3 t4:b=2 C5 C6 7:z=0 8:tail=t", index: "2:1-3/0"},
			{needs: true, want: "t0:a=1 t2:- A3h t4:b=2 C5 C6 7:z=0 8:tail=t"},
			{advance: retention, needs: true, want: "t0:a=1 t2:- t4:b=2 C5 C6 7:z=0 8:tail=t"},
		},
	}, {
		name: "other control batches stay as they are",
		build: func(w *txnWriter) {
			w.control()       // 0
			w.plain("a", "1") // 1
			w.roll()
			w.plain("tail", "t") // 2
		},
		passes: []pass{
			{needs: true, want: "X0 1:a=1 2:tail=t"},
			{advance: 2 * retention, needs: false, want: "X0 1:a=1 2:tail=t"},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			dir := t.TempDir()
			l := mustOpen(t, dir, compactConfig(), clock)
			defer func() { l.Close() }()
			w := newTxnWriter(t, l, clock)
			w.codec = tc.codec
			tc.build(w)
			for i, p := range tc.passes {
				clock.Add(p.advance)
				if got := l.NeedsCleaning(l.LogEndOffset()); got != p.needs {
					t.Fatalf("pass %d: NeedsCleaning %v, want %v (log %s)", i, got, p.needs, describeLog(t, l))
				}
				if _, err := l.Clean(l.LogEndOffset()); err != nil {
					t.Fatalf("pass %d: %v", i, err)
				}
				if got := describeLog(t, l); got != p.want {
					t.Fatalf("pass %d:\n got %s\nwant %s", i, got, p.want)
				}
				if got := describeIndex(l); got != p.index {
					t.Fatalf("pass %d: index %q, want %q", i, got, p.index)
				}
			}
			// A restart reads the same.
			want := describeLog(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir, compactConfig(), clock)
			if got := describeLog(t, l); got != want {
				t.Fatalf("after restart\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestCleanStampsMarkerHorizon checks the marker batch a pass gives a delete
// horizon: the horizon is the pass's clock plus delete.retention.ms, and
// everything else a reader or the producer state uses is unchanged.
func TestCleanStampsMarkerHorizon(t *testing.T) {
	clock := newClock()
	l := mustOpen(t, t.TempDir(), compactConfig(), clock)
	defer l.Close()
	w := newTxnWriter(t, l, clock)
	w.txn(7, "k", "1")
	w.marker(7, false) // 1
	w.txn(7, "k", "2")
	w.marker(7, true)
	w.roll()
	w.plain("tail", "t")
	before, _ := l.Read(1, 1<<20, 2, true)
	orig, _ := record.ParseHeader(before.Data)
	for range 2 {
		if _, err := l.Clean(l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	r, err := l.Read(1, 1<<20, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := record.Split(r.Data)
	h, recs, err := record.Records(bs[0])
	if err != nil {
		t.Fatal(err)
	}
	horizon, ok := h.DeleteHorizon()
	if !ok || horizon != clock.Now().UnixMilli()+compactConfig().DeleteRetentionMs {
		t.Fatalf("marker %+v: horizon %d %v", h, horizon, ok)
	}
	m, err := record.ParseMarker(h, recs)
	if err != nil || m.Commit || m.ProducerID != 7 || m.CoordinatorEpoch != 3 {
		t.Fatalf("marker %+v %v", m, err)
	}
	if h.BaseOffset != 1 || h.MaxTimestamp != orig.MaxTimestamp || h.ProducerEpoch != orig.ProducerEpoch ||
		h.BaseSequence != -1 || !h.Transactional() || h.Timestamp(recs[0]) != orig.MaxTimestamp {
		t.Fatalf("stamped marker %+v, was %+v", h, orig)
	}
}

// TestCleanTransactionalTopic writes a compacted topic the way transactional
// and plain producers do (interleaved transactions, some aborted, batches of
// every codec, many segments), cleans it pass after pass and reads it back:
// it must hold exactly the latest non-aborted record of every key, no aborted
// record, each producer's last batch with its sequence, and, once
// delete.retention.ms passed, no marker whose transaction has no batch left.
func TestCleanTransactionalTopic(t *testing.T) {
	clock := newClock()
	dir := t.TempDir()
	cfg := compactConfig()
	l := mustOpen(t, dir, cfg, clock)
	defer func() { l.Close() }()
	w := newTxnWriter(t, l, clock)
	rng := rand.New(rand.NewPCG(10, 1))
	codecs := []record.Codec{record.CodecNone, record.CodecGzip, record.CodecSnappy, record.CodecLZ4, record.CodecZstd}

	type write struct {
		offset     int64
		key, value string
	}
	var writes []write
	open := map[int64][]int{}    // producer -> indexes in writes of its transaction's records
	aborted := map[int64]bool{}  // offsets of aborted records
	lastSeq := map[int64]int32{} // producer -> base sequence of its last data batch
	end := func(pid int64, commit bool) {
		if !commit {
			for _, i := range open[pid] {
				aborted[writes[i].offset] = true
			}
		}
		delete(open, pid)
		w.marker(pid, commit)
	}
	for i := range 500 {
		w.codec = codecs[rng.IntN(len(codecs))]
		pid := int64(1 + rng.IntN(3))
		k, v := fmt.Sprintf("k%d", rng.IntN(12)), fmt.Sprintf("v%d", i)
		switch n := rng.IntN(10); {
		case n < 6:
			lastSeq[pid] = w.seq[pid]
			r := w.txn(pid, k, v)
			open[pid] = append(open[pid], len(writes))
			writes = append(writes, write{r.BaseOffset, k, v})
		case n < 8 && open[pid] != nil:
			end(pid, rng.IntN(3) > 0)
		default:
			r := w.plain(k, v)
			writes = append(writes, write{r.BaseOffset, k, v})
		}
	}
	for pid := int64(1); pid <= 3; pid++ {
		if open[pid] != nil {
			end(pid, false)
		}
	}
	w.roll()
	w.plain("tail", "t")
	want := map[string]write{}
	for _, wr := range writes {
		if !aborted[wr.offset] {
			want[wr.key] = wr
		}
	}
	want["tail"] = write{l.LogEndOffset() - 1, "tail", "t"}
	if len(aborted) == 0 || len(want) < 10 || l.NumSegments() < 5 {
		t.Fatalf("a weak test: %d aborted records, %d keys, %d segments", len(aborted), len(want), l.NumSegments())
	}

	check := func(l *Log, when string, markersGone bool) {
		t.Helper()
		got, hdrs := readRecords(t, l)
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d: %+v", when, len(got), len(want), got)
		}
		for _, r := range got {
			if wr := want[r.key]; wr.offset != r.offset || wr.value != r.value {
				t.Fatalf("%s: record %+v, want %+v", when, r, wr)
			}
		}
		lastBatch := map[int64]record.BatchHeader{}
		dataLeft := map[int64]bool{} // producer -> a data batch of it since its previous marker
		for _, h := range hdrs {
			if h.ProducerID < 0 {
				continue
			}
			if !h.Control() {
				lastBatch[h.ProducerID] = h
				dataLeft[h.ProducerID] = true
				continue
			}
			if markersGone && !dataLeft[h.ProducerID] {
				t.Fatalf("%s: marker %+v of a transaction without batches outlived delete.retention.ms", when, h)
			}
			dataLeft[h.ProducerID] = false
		}
		for pid, seq := range lastSeq {
			if h := lastBatch[pid]; h.BaseSequence != seq {
				t.Fatalf("%s: producer %d's last batch %+v, want base sequence %d", when, pid, h, seq)
			}
		}
	}
	for i := range 3 {
		if _, err := l.Clean(l.LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		check(l, fmt.Sprintf("pass %d", i), false)
	}
	clock.Add(time.Duration(cfg.DeleteRetentionMs) * time.Millisecond)
	if !l.NeedsCleaning(l.LogEndOffset()) {
		t.Fatal("markers past their horizon do not make the log cleanable")
	}
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	check(l, "after delete.retention.ms", true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, cfg, clock)
	check(l, "after restart", true)
}

// TestCleanCarriesAbortedIndex: the cleaned segment's aborted-transaction
// index holds the entries of the abort markers that stay, the segment's own
// (LastStableOffset as indexed) or, for a marker the index lacked, one built
// from the pass's scan.
func TestCleanCarriesAbortedIndex(t *testing.T) {
	clock := newClock()
	l := mustOpen(t, t.TempDir(), compactConfig(), clock)
	defer l.Close()
	w := newTxnWriter(t, l, clock)
	w.txn(1, "a", "1") // 0, pid 1's last data batch
	w.txn(2, "b", "1") // 1, pid 2's last data batch
	w.marker(1, false) // 2: indexed, pid 2 still open: lso 1
	// pid 2's abort, appended without its index entry.
	mustAppend(t, l, record.BuildMarker(record.Marker{ProducerID: 2, ProducerEpoch: 0, CoordinatorEpoch: 3,
		Timestamp: clock.Now().UnixMilli()})) // 3
	w.roll()
	w.plain("tail", "t")
	if got, want := describeIndex(l), "1:0-2/1"; got != want {
		t.Fatalf("index before cleaning %q, want %q", got, want)
	}
	if _, err := l.Clean(l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if got, want := describeLog(t, l), "t0:- t1:- A2 A3 4:tail=t"; got != want {
		t.Fatalf("log %s, want %s", got, want)
	}
	if got, want := describeIndex(l), "1:0-2/1 2:1-3/4"; got != want {
		t.Fatalf("index after cleaning %q, want %q", got, want)
	}
}

// TestCleanerSwapFailsAfterCommit: an error once the swap's commit was
// attempted (here the manifest written, then a failure) fails the log and
// leaves the cleaned output for Open, which finishes the swap: the segments of
// a group of several are all still there, none dropped with the output.
func TestCleanerSwapFailsAfterCommit(t *testing.T) {
	for _, step := range []string{"commit", "retire 00000000000000000000.log", "install .log"} {
		t.Run(step, func(t *testing.T) {
			clock := newClock()
			dir := t.TempDir()
			l := mustOpen(t, dir, compactConfig(), clock)
			w := newTxnWriter(t, l, clock)
			for seg := range 3 { // three small segments: one group
				w.plain(fmt.Sprintf("a%d", seg), "1", fmt.Sprintf("b%d", seg), "1")
				w.plain(fmt.Sprintf("a%d", seg), "2")
				w.roll()
			}
			w.plain("tail", "t")
			if groups := l.groupForCleaning(l.mu.segments[:3], compactConfig()); len(groups) != 1 {
				t.Fatalf("%d groups, want one of three segments", len(groups))
			}
			fail := errors.New("disk error")
			l.swapHook = func(s string) error {
				if s == step {
					return fail
				}
				return nil
			}
			if _, err := l.Clean(l.LogEndOffset()); !errors.Is(err, fail) {
				t.Fatalf("clean: %v", err)
			}
			if l.Failed() == nil {
				t.Fatal("the log is not failed after a failure past the commit")
			}
			abandon(l)
			l2 := mustOpen(t, dir, compactConfig(), clock)
			defer l2.Close()
			if got, want := describeLog(t, l2), "0:b0=1 2:a0=2 3:b1=1 5:a1=2 6:b2=1 8:a2=2 9:tail=t"; got != want {
				t.Fatalf("after the failure and a restart\n got %s\nwant %s", got, want)
			}
		})
	}
}
