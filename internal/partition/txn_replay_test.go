package partition

import (
	"testing"
	"time"
)

// TestReplayPastAbortMarker: rebuilding the producer state by replaying the log (a truncation
// here; a restart after a crash, which has no producer snapshot, takes the same path) reads an
// abort marker and indexes its transaction, and finishes. The replay reads the log under
// ScanBatches' read lock, and indexing an abort takes the log's write lock: done inside the
// scan, the two deadlocked and the partition never opened (a node killed with SIGKILL after an
// aborted transaction hung at its restart).
func TestReplayPastAbortMarker(t *testing.T) {
	clock := newTestClock()
	p := leader3(t, clock, 1)
	mustAppend(t, p, txnBatch(7, 0, 0, 2), OriginClient) // 0-1
	mustMarker(t, p, marker(7, 0, false, 0), 1)          // 2: abort
	mustAppend(t, p, plainBatch(2), OriginClient)        // 3-4
	if err := p.BecomeFollower(2, 2, 2); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.TruncateTo(4) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TruncateTo(4), which replays the abort marker at 2, did not return within 10s")
	}
	if got := p.AbortedTransactions(0, 4); len(got) != 1 || got[0].ProducerID != 7 || got[0].FirstOffset != 0 || got[0].LastOffset != 2 {
		t.Fatalf("aborted transactions after the replay: %+v, want producer 7's at 0..2", got)
	}
	if ps := p.Producers(); len(ps) != 1 || ps[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("producers after the replay: %+v, want producer 7 with no open transaction", ps)
	}
}
