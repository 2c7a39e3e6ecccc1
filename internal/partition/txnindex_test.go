package partition

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// txnLogDir opens t-0 in /d of fsys as the sole leader, with segments of segmentBytes.
func txnLogDir(t *testing.T, fsys *vfs.MemFS, segmentBytes int64) *Partition {
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	cfg.SegmentBytes = segmentBytes
	cfg.FlushIntervalMessages = 1 // every append fsynced, as an acknowledged produce is
	p, err := Open(snapDir, "t", 0, Settings{Log: cfg, MaxMessageBytes: 8 << 20, MinInsyncReplicas: 1}, 1, nil,
		&LogDir{Path: "/d", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTxnFS is a file system holding the partition's directory, synced, so that a power cut
// (Crash) keeps it.
func newTxnFS(t *testing.T) *vfs.MemFS {
	t.Helper()
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll(snapDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", "/d"} {
		if err := fsys.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

// writeTxns writes n rounds of: a transaction of producer 7 aborted, one of producer 8
// committed, one of producer 9 aborted while 8's next is open, with small segments, so that
// markers land in many segments (and a marker's append rolls some).
func writeTxns(t *testing.T, p *Partition, n int) {
	t.Helper()
	seq := map[int64]int32{}
	data := func(pid int64) {
		t.Helper()
		mustAppend(t, p, txnBatch(pid, 0, seq[pid], 2), OriginClient)
		seq[pid] += 2
	}
	for range n {
		data(7)
		data(8)
		mustMarker(t, p, marker(7, 0, false, 1), 1)
		mustMarker(t, p, marker(8, 0, true, 1), 1)
		data(9)
		data(8)
		mustMarker(t, p, marker(9, 0, false, 1), 1)
		mustMarker(t, p, marker(8, 0, false, 1), 1)
		mustAppend(t, p, plainBatch(3), OriginClient)
	}
}

// TestTxnIndexSurvivesCrash: the aborted transactions of many segments survive a power cut at
// any point of the writes (the .txnindex files, and the replay from the producer snapshot for
// the rest), and a clean restart reads them from the files alone.
func TestTxnIndexSurvivesCrash(t *testing.T) {
	for rounds := 1; rounds <= 12; rounds += 3 {
		fsys := newTxnFS(t)
		p := txnLogDir(t, fsys, 600)
		writeTxns(t, p, rounds)
		end := p.LogEndOffset()
		want := p.AbortedTransactions(0, end)
		if len(want) != 3*rounds {
			t.Fatalf("%d aborted after %d rounds", len(want), rounds)
		}
		if p.Log().NumSegments() < 2 && rounds > 1 {
			t.Fatalf("%d segments", p.Log().NumSegments())
		}
		lso := p.LastStableOffset()
		disk := fsys.Crash() // no Close: a power cut (everything is fsynced before each ack)
		q := txnLogDir(t, disk, 600)
		if q.LogEndOffset() != end {
			t.Fatalf("end %d after the crash, want %d", q.LogEndOffset(), end)
		}
		if got := q.AbortedTransactions(0, end); !slices.Equal(got, want) {
			t.Fatalf("%d rounds: aborted after a power cut\n%+v\nwant\n%+v", rounds, got, want)
		}
		if got := q.LastStableOffset(); got != lso {
			t.Fatalf("LSO %d after the crash, want %d", got, lso)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		r := txnLogDir(t, disk, 600)
		if r.replayedFrom != end {
			t.Fatalf("clean restart replayed from %d, want the snapshot at %d", r.replayedFrom, end)
		}
		if got := r.AbortedTransactions(0, end); !slices.Equal(got, want) {
			t.Fatalf("aborted after a clean restart: %+v", got)
		}
		r.Close()
	}
}

// TestTxnIndexRebuiltWhenLost: a damaged .txnindex makes Open replay the whole log, which
// writes it again.
func TestTxnIndexRebuiltWhenLost(t *testing.T) {
	fsys := newTxnFS(t)
	p := txnLogDir(t, fsys, 600)
	writeTxns(t, p, 6)
	end := p.LogEndOffset()
	want := p.AbortedTransactions(0, end)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := fsys.ReadDir(snapDir)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txnindex") {
			victim = snapDir + "/" + e.Name()
			break
		}
	}
	if victim == "" {
		t.Fatal("no .txnindex written")
	}
	if err := log.WriteFileAtomic(fsys, snapDir, victim[len(snapDir)+1:], []byte("\x00\x09 not a txn index entry ........ at all")); err != nil {
		t.Fatal(err)
	}
	q := txnLogDir(t, fsys, 600)
	if q.replayedFrom != q.LogStartOffset() {
		t.Fatalf("replayed from %d with a lost index", q.replayedFrom)
	}
	if got := q.AbortedTransactions(0, end); !slices.Equal(got, want) {
		t.Fatalf("aborted after the rebuild %+v, want %+v", got, want)
	}
	if q.Log().TxnIndexLostFrom() != math.MaxInt64 {
		t.Fatal("index still lost after the replay")
	}
	q.Close()
	r := txnLogDir(t, fsys.Crash(), 600)
	defer r.Close()
	if got := r.AbortedTransactions(0, end); !slices.Equal(got, want) || r.replayedFrom != end {
		t.Fatalf("after the rebuild and a restart: replayed from %d, %+v", r.replayedFrom, got)
	}
}

// TestTxnIndexMovesWithLogDir: a log-dir move carries the aborted-transaction index.
func TestTxnIndexMovesWithLogDir(t *testing.T) {
	mem := vfs.NewMem()
	m, p := moveSetup(t, mem, 3)
	writeTxns(t, p, 4)
	end := p.LogEndOffset()
	want := p.AbortedTransactions(0, end)
	s := p.Settings()
	mv, err := m.StartMove("t", 0, "/d2")
	if err != nil || mv == nil {
		t.Fatalf("start: %v, %v", mv, err)
	}
	np, err := mv.Finish(s)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := np.AbortedTransactions(0, end); !slices.Equal(got, want) {
		t.Fatalf("after the move %+v, want %+v", got, want)
	}
	entries, err := mem.ReadDir("/d2/t-0")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".txnindex") {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no .txnindex in the moved replica")
	}
}
