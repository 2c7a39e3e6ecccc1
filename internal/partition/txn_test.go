package partition

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
)

// txnBatch is a transactional batch of producer pid at epoch, sequence seq, n records.
func txnBatch(pid int64, epoch int16, seq int32, n int) []byte {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Value: []byte("v")}
	}
	return record.Build(record.BatchSpec{Transactional: true, BaseTimestamp: 1_700_000_000_000, ProducerID: pid,
		ProducerEpoch: epoch, BaseSequence: seq, Records: recs})
}

func marker(pid int64, epoch int16, commit bool, coordEpoch int32) record.Marker {
	return record.Marker{ProducerID: pid, ProducerEpoch: epoch, Commit: commit, CoordinatorEpoch: coordEpoch, Timestamp: 1_700_000_000_500}
}

func mustAppend(t *testing.T, p *Partition, b []byte, origin Origin) AppendResult {
	t.Helper()
	r, err := p.Append(b, -1, origin)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustMarker(t *testing.T, p *Partition, m record.Marker, tv int16) AppendResult {
	t.Helper()
	r, err := p.WriteTxnMarker(m, tv)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantLSO(t *testing.T, p *Partition, want int64) {
	t.Helper()
	if got := p.LastStableOffset(); got != want {
		t.Fatalf("last stable offset %d, want %d (high watermark %d)", got, want, p.HighWatermark())
	}
}

// TestTransactionsMoveLSO: an open transaction holds the last stable offset at its first offset;
// a marker ends it; an abort is in the aborted list with Kafka's fields, a commit is not; the
// aborted list answers by range.
func TestTransactionsMoveLSO(t *testing.T) {
	p := openTest(t)
	mustAppend(t, p, plainBatch(2), OriginClient)             // 0-1
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient)      // 2-3: txn of 7 opens at 2
	mustAppend(t, p, plainBatch(1), OriginClient)             // 4
	mustAppend(t, p, txnBatch(8, 3, 0, 1), OriginCoordinator) // 5: txn of 8 opens (a coordinator's batch)
	mustAppend(t, p, txnBatch(7, 0, 2, 1), OriginClient)      // 6: same txn of 7
	wantHW(t, p, 7)
	wantLSO(t, p, 2)
	if got := p.AbortedTransactions(0, 7); len(got) != 0 {
		t.Fatalf("aborted before any marker: %+v", got)
	}
	abort := mustMarker(t, p, marker(7, 0, false, 5), 1) // 7
	if abort.BaseOffset != 7 || abort.LastOffset != 7 {
		t.Fatalf("marker at %+v, want 7", abort)
	}
	wantLSO(t, p, 5) // 8's transaction is still open
	want := []log.AbortedTxn{{ProducerID: 7, FirstOffset: 2, LastOffset: 7, LastStableOffset: 5}}
	if got := p.AbortedTransactions(0, 8); !slices.Equal(got, want) {
		t.Fatalf("aborted %+v, want %+v", got, want)
	}
	mustMarker(t, p, marker(8, 3, true, 5), 1) // 8: commit
	wantLSO(t, p, 9)
	if got := p.AbortedTransactions(0, 9); !slices.Equal(got, want) {
		t.Fatalf("a commit is not aborted: %+v", got)
	}
	// Range: a read starting after the marker sees nothing; one ending at or before the first
	// offset neither.
	if got := p.AbortedTransactions(8, 9); len(got) != 0 {
		t.Fatalf("aborted of [8, 9): %+v", got)
	}
	if got := p.AbortedTransactions(0, 2); len(got) != 0 {
		t.Fatalf("aborted of [0, 2): %+v", got)
	}
	if got := p.AbortedTransactions(3, 4); !slices.Equal(got, want) {
		t.Fatalf("aborted of [3, 4): %+v", got)
	}
	ps := p.Producers()
	if len(ps) != 2 || ps[0].CurrentTxnStartOffset != -1 || ps[0].CoordinatorEpoch != 5 || ps[0].LastTimestamp != 1_700_000_000_500 ||
		ps[1].ProducerEpoch != 3 || ps[1].CoordinatorEpoch != 5 {
		t.Fatalf("producers %+v", ps)
	}
	// Read committed stops at the LSO: a new transaction holds it.
	mustAppend(t, p, txnBatch(7, 0, 3, 1), OriginClient) // 9
	wantLSO(t, p, 9)
	if ps := p.Producers(); ps[0].CurrentTxnStartOffset != 9 {
		t.Fatalf("producer 7: %+v", ps[0])
	}
	if data, err := p.Read(9, 1<<20, true, true); err != nil || len(data) != 0 {
		t.Fatalf("read_committed at the LSO: %d bytes, %v", len(data), err)
	}
	if data, err := p.Read(9, 1<<20, false, true); err != nil || len(data) == 0 {
		t.Fatalf("read_uncommitted at 9: %d bytes, %v", len(data), err)
	}
}

// TestTransactionEpochRules: Kafka's producer-epoch and coordinator-epoch rules for
// transactional batches and markers, TV1 and TV2.
func TestTransactionEpochRules(t *testing.T) {
	p := openTest(t)
	mustAppend(t, p, txnBatch(7, 2, 0, 1), OriginClient)
	if _, err := p.Append(txnBatch(7, 1, 1, 1), -1, OriginClient); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("older epoch: %v", err)
	}
	if _, err := p.Append(txnBatch(7, 1, -1, 1), -1, OriginCoordinator); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("older epoch from a coordinator: %v", err)
	}
	plainSameEpoch := record.Build(record.BatchSpec{BaseTimestamp: 1, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 1,
		Records: []record.Record{{Value: []byte("v")}}})
	if _, err := p.Append(plainSameEpoch, -1, OriginClient); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("non-transactional batch inside a transaction: %v", err)
	}
	if _, err := p.WriteTxnMarker(marker(7, 1, true, 0), 1); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("TV1 marker of an older epoch: %v", err)
	}
	// TV2: the coordinator bumped the epoch; the same epoch is stale while the txn is open.
	if _, err := p.WriteTxnMarker(marker(7, 2, true, 0), 2); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("TV2 marker of the same epoch: %v", err)
	}
	mustMarker(t, p, marker(7, 3, true, 4), 2)
	wantLSO(t, p, p.LogEndOffset())
	// A retried TV2 marker (same epoch, transaction over) is written again, as Kafka does.
	mustMarker(t, p, marker(7, 3, true, 4), 2)
	if _, err := p.WriteTxnMarker(marker(7, 4, false, 3), 2); !errors.Is(err, kerr.TransactionCoordinatorFenced) {
		t.Fatalf("older coordinator epoch: %v", err)
	}
	// The epoch moved to 3 with the marker: epoch 2 data is fenced, epoch 3 starts at sequence 0.
	if _, err := p.Append(txnBatch(7, 2, 1, 1), -1, OriginClient); !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("data of the epoch before the bump: %v", err)
	}
	mustAppend(t, p, txnBatch(7, 3, 0, 1), OriginClient)
	// A marker for a producer the partition never saw is written (the transaction had no data here).
	mustMarker(t, p, marker(99, 0, false, 0), 1)
	if got := p.AbortedTransactions(0, p.LogEndOffset()); len(got) != 0 {
		t.Fatalf("an empty transaction's abort is not indexed: %+v", got)
	}
}

// TestVerificationGuard: KIP-890's guard: a transactional batch that opens a transaction needs
// the guard still registered for its producer; a marker in between clears it; an open
// transaction at the epoch needs none.
func TestVerificationGuard(t *testing.T) {
	p := openTest(t)
	g, needed := p.VerificationGuard(7, 0)
	if !needed || g.IsZero() {
		t.Fatalf("guard %v needed %v", g, needed)
	}
	if g2, _ := p.VerificationGuard(7, 0); g2 != g {
		t.Fatal("a concurrent verification of the producer shares the guard")
	}
	// A marker (the transaction timed out and was aborted) lands between verify and append.
	mustMarker(t, p, marker(7, 0, false, 0), 1)
	if _, err := p.AppendVerified(txnBatch(7, 0, 0, 1), -1, OriginClient, g); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("append with a cleared guard: %v", err)
	}
	if _, err := p.AppendVerified(txnBatch(7, 0, 0, 1), -1, OriginClient, VerificationGuard{id: 12345}); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("append with a guard never given: %v", err)
	}
	g, _ = p.VerificationGuard(7, 0)
	if _, err := p.AppendVerified(txnBatch(7, 0, 0, 1), -1, OriginClient, g); err != nil {
		t.Fatal(err)
	}
	g, needed = p.VerificationGuard(7, 0)
	if needed || g.IsZero() {
		t.Fatalf("ongoing transaction: guard %v needed %v, want the sentinel", g, needed)
	}
	if _, err := p.AppendVerified(txnBatch(7, 0, 1, 1), -1, OriginClient, g); err != nil {
		t.Fatalf("next batch of the open transaction: %v", err)
	}
	// The sentinel does not open a transaction: a marker ends this one before the next append.
	g, _ = p.VerificationGuard(7, 0)
	mustMarker(t, p, marker(7, 0, true, 0), 1)
	if _, err := p.AppendVerified(txnBatch(7, 0, 2, 1), -1, OriginClient, g); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("sentinel guard after the transaction ended: %v", err)
	}
	// The zero guard asks for nothing (verification disabled, coordinators).
	mustAppend(t, p, txnBatch(8, 0, 0, 1), OriginClient)
}

// TestVerificationGuardAcrossTV2Marker: with transaction version 2 the producer's next
// transaction (epoch E) may be verified before the marker of its previous one (epoch E, ending
// the transaction of E-1) lands; the marker must leave that verification's guard in place, and
// still clear a guard of the ended epoch.
func TestVerificationGuardAcrossTV2Marker(t *testing.T) {
	p := openTest(t)
	mustAppend(t, p, txnBatch(7, 0, 0, 1), OriginClient) // the transaction of epoch 0
	g, needed := p.VerificationGuard(7, 1)               // the next one's first produce
	if !needed {
		t.Fatal("a new transaction needs verification")
	}
	mustMarker(t, p, marker(7, 1, true, 0), 2) // EndTxn v5 bumped the epoch to 1
	if _, err := p.AppendVerified(txnBatch(7, 1, 0, 1), -1, OriginClient, g); err != nil {
		t.Fatalf("the next transaction's verified append after the TV2 marker: %v", err)
	}
	mustMarker(t, p, marker(7, 2, false, 0), 2)
	// A guard of the epoch the marker ends goes with it.
	g, _ = p.VerificationGuard(8, 0)
	mustAppend(t, p, txnBatch(8, 0, 0, 1), OriginClient)
	mustMarker(t, p, marker(8, 1, true, 0), 2)
	if _, err := p.AppendVerified(txnBatch(8, 0, 1, 1), -1, OriginClient, g); err == nil {
		t.Fatal("a late write of the ended transaction was appended")
	}
	// With transaction version 1 the marker clears the guard (TestVerificationGuard).
	g, _ = p.VerificationGuard(9, 0)
	mustAppend(t, p, txnBatch(9, 0, 0, 1), OriginClient)
	mustMarker(t, p, marker(9, 0, true, 0), 1)
	g, _ = p.VerificationGuard(9, 0)
	mustMarker(t, p, marker(9, 0, false, 0), 1) // a retried or timed-out abort
	if _, err := p.AppendVerified(txnBatch(9, 0, 1, 1), -1, OriginClient, g); !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("TV1: append with a guard a marker cleared: %v", err)
	}
}

// TestTransactionStateSurvivesRestart: the producer snapshot carries the open transactions, and
// the replay after it the rest, so the LSO, the aborted list and DescribeProducers' fields are
// the same after Close and Open.
func TestTransactionStateSurvivesRestart(t *testing.T) {
	clock := newTestClock()
	p, _ := openReplica(t, clock, 1, false)
	if err := p.BecomeSoleLeader(0); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient) // 0-1
	mustAppend(t, p, txnBatch(8, 0, 0, 1), OriginClient) // 2
	mustMarker(t, p, marker(8, 0, false, 1), 1)          // 3
	mustAppend(t, p, plainBatch(1), OriginClient)        // 4
	wantLSO(t, p, 0)
	aborted, producers := p.AbortedTransactions(0, 5), p.Producers()
	if len(aborted) != 1 {
		t.Fatalf("aborted %+v", aborted)
	}
	dir, ld := p.path, p.dir
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q, err := Open(dir, "t", 0, p.Settings(), 0, clock, ld)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if q.replayedFrom != 5 {
		t.Fatalf("replayed from %d: the snapshot was not used", q.replayedFrom)
	}
	wantLSO(t, q, 0)
	if got := q.Producers(); !slices.Equal(got, producers) {
		t.Fatalf("producers after restart %+v, want %+v", got, producers)
	}
	mustMarker(t, q, marker(7, 0, true, 1), 1)
	wantLSO(t, q, q.LogEndOffset())
}

// TestFollowerKeepsTransactions: a follower that replicated transactional batches and markers
// has the leader's LSO (bounded by its own high watermark) and aborted list, and keeps them as
// the next leader.
func TestFollowerKeepsTransactions(t *testing.T) {
	clock := newTestClock()
	old := leader3(t, clock, 1)
	mustAppend(t, old, txnBatch(7, 0, 0, 2), OriginClient)
	mustAppend(t, old, txnBatch(8, 0, 0, 1), OriginClient)
	mustMarker(t, old, marker(7, 0, false, 2), 1)
	mustAppend(t, old, plainBatch(1), OriginClient)
	f, _ := openReplica(t, clock, 1, false)
	if err := f.BecomeFollower(1, 1, 1); err != nil {
		t.Fatal(err)
	}
	copyLog(t, old, f)
	end := old.LogEndOffset()
	fetched(t, old, clock, 2, end)
	fetched(t, old, clock, 3, end)
	wantHW(t, old, end)
	f.UpdateFollowerHighWatermark(old.HighWatermark())
	if a, b := old.LastStableOffset(), f.LastStableOffset(); a != 2 || b != 2 {
		t.Fatalf("LSO leader %d follower %d, want 2", a, b)
	}
	if a, b := old.AbortedTransactions(0, end), f.AbortedTransactions(0, end); len(a) != 1 || !slices.Equal(a, b) {
		t.Fatalf("aborted leader %+v follower %+v", a, b)
	}
	if !slices.Equal(old.Producers(), f.Producers()) {
		t.Fatalf("producers leader %+v follower %+v", old.Producers(), f.Producers())
	}
	if err := f.BecomeLeader(LeaderState{LeaderEpoch: 2, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}}); err != nil {
		t.Fatal(err)
	}
	mustMarker(t, f, marker(8, 0, true, 3), 1)
	wantLSO(t, f, f.LogEndOffset())
}

// TestLSOWaitsForMarkerReplication: with followers, a completed transaction counts as stable
// only once its marker is below the high watermark.
func TestLSOWaitsForMarkerReplication(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 1)
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient) // 0-1
	fetched(t, p, clock, 2, 2)
	fetched(t, p, clock, 3, 2)
	wantHW(t, p, 2)
	wantLSO(t, p, 0)
	mustMarker(t, p, marker(7, 0, true, 0), 1) // 2
	wantLSO(t, p, 0)                           // the marker is not committed yet
	fetched(t, p, clock, 2, 3)
	fetched(t, p, clock, 3, 3)
	wantHW(t, p, 3)
	wantLSO(t, p, 3)
}

// TestTruncationRebuildsTransactions: a truncation below a marker reopens its transaction and
// drops its aborted-index entry.
func TestTruncationRebuildsTransactions(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 1)
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient) // 0-1
	mustMarker(t, p, marker(7, 0, false, 0), 1)          // 2
	if len(p.AbortedTransactions(0, 3)) != 1 {
		t.Fatal("abort not indexed")
	}
	if err := p.BecomeFollower(2, 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.TruncateTo(2); err != nil {
		t.Fatal(err)
	}
	if got := p.AbortedTransactions(0, 3); len(got) != 0 {
		t.Fatalf("aborted after truncation: %+v", got)
	}
	if ps := p.Producers(); len(ps) != 1 || ps[0].CurrentTxnStartOffset != 0 {
		t.Fatalf("producers after truncation: %+v", ps)
	}
	p.UpdateFollowerHighWatermark(2)
	wantLSO(t, p, 0)
}

// TestTruncationReplaysAborts: the replay after a truncation re-reads the abort markers below
// the cut (the index keeps their entries, and the replay adds none twice).
func TestTruncationReplaysAborts(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 1)
	mustAppend(t, p, txnBatch(8, 0, 0, 1), OriginClient) // 0
	mustMarker(t, p, marker(8, 0, false, 0), 1)          // 1
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient) // 2-3
	mustMarker(t, p, marker(7, 0, false, 0), 1)          // 4
	if err := p.BecomeFollower(2, 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := p.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	want := []log.AbortedTxn{{ProducerID: 8, FirstOffset: 0, LastOffset: 1, LastStableOffset: 2}}
	if got := p.AbortedTransactions(0, 10); !slices.Equal(got, want) {
		t.Fatalf("aborted after truncation %+v, want %+v", got, want)
	}
	if ps := p.Producers(); len(ps) != 2 || ps[0].CurrentTxnStartOffset != 2 || ps[1].CurrentTxnStartOffset != -1 {
		t.Fatalf("producers %+v", ps)
	}
}
