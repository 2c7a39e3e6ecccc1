package partition

import (
	"slices"
	"testing"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

const snapDir = "/d/t-0"

// reopenAt opens the partition of fsys again as the sole leader of epoch 1.
func reopenAt(t *testing.T, fsys *vfs.MemFS) *Partition {
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	p, err := Open(snapDir, "t", 0, Settings{Log: cfg, MaxMessageBytes: 8 << 20, MinInsyncReplicas: 1}, 1, nil,
		&LogDir{Path: "/d", FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProducerSnapshot: Close writes the producer state at the log end and the next Open
// replays only what follows it, with the same state a full replay gives; a damaged snapshot,
// or one a truncation made stale, is not used.
func TestProducerSnapshot(t *testing.T) {
	fsys := vfs.NewMem()
	if err := fsys.MkdirAll(snapDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/", "/d"} { // the directories survive a power cut
		if err := fsys.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	p := reopenAt(t, fsys)
	for seq := int32(0); seq < 14; seq += 2 {
		for _, pid := range []int64{3, 4} {
			if _, err := p.Append(idempotentBatch(pid, seq, 2), 1, OriginClient); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := p.Producers()
	end := p.LogEndOffset()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p = reopenAt(t, fsys)
	if p.replayedFrom != end || !slices.Equal(p.Producers(), want) {
		t.Fatalf("replayed from %d (want %d), producers %+v, want %+v", p.replayedFrom, end, p.Producers(), want)
	}
	// A retry of the last batch is still a duplicate after the restart.
	r, err := p.Append(idempotentBatch(4, 12, 2), 1, OriginClient)
	if err != nil || r.BaseOffset != end-2 || p.LogEndOffset() != end {
		t.Fatalf("retry after restart: %+v %v", r, err)
	}
	// Batches after the snapshot are replayed on top of it (the process dies without Close).
	if _, err := p.Append(idempotentBatch(5, 0, 1), 1, OriginClient); err != nil {
		t.Fatal(err)
	}
	want = p.Producers()
	if err := p.log.Flush(); err != nil {
		t.Fatal(err)
	}
	fsys = fsys.Crash() // the process and the machine die without Close
	p = reopenAt(t, fsys)
	if p.replayedFrom != end || !slices.Equal(p.Producers(), want) {
		t.Fatalf("after a crash: replayed from %d, producers %+v, want %+v", p.replayedFrom, p.Producers(), want)
	}
	p.Close()

	// A damaged snapshot is ignored: the whole log is replayed, to the same state.
	path := snapDir + "/" + ProducerSnapshotFile
	b, err := vfs.ReadFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := log.WriteFileAtomic(fsys, snapDir, ProducerSnapshotFile, b); err != nil {
		t.Fatal(err)
	}
	p = reopenAt(t, fsys)
	if p.replayedFrom != 0 || !slices.Equal(p.Producers(), want) {
		t.Fatalf("damaged snapshot: replayed from %d, producers %+v", p.replayedFrom, p.Producers())
	}
	p.Close()

	// A truncation removes the snapshot before it cuts the log: after a crash the state is the
	// replay of what is left, not the snapshot's.
	p = reopenAt(t, fsys)
	if err := p.TruncateTo(4); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(path); err == nil {
		t.Fatal("snapshot still there after a truncation")
	}
	want = p.Producers()
	fsys = fsys.Crash()
	p = reopenAt(t, fsys)
	defer p.Close()
	if p.replayedFrom != 0 || !slices.Equal(p.Producers(), want) {
		t.Fatalf("after truncation: replayed from %d, producers %+v, want %+v", p.replayedFrom, p.Producers(), want)
	}
}

// FuzzDecodeProducerSnapshot: a snapshot read from disk never panics the decoder, and what it
// accepts encodes back to the same bytes (a current-format one: an MPS1 snapshot is written back
// as MPS2).
func FuzzDecodeProducerSnapshot(f *testing.F) {
	ps := producerStates{}
	ps.update(idempotentHeader(7, 0, 0, 2), nil)
	ps.update(idempotentHeader(7, 2, 3, 1), nil)
	f.Add(encodeProducerSnapshot(ps, 10))
	f.Add(encodeProducerSnapshot(producerStates{}, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, off, err := decodeProducerSnapshot(b)
		if err != nil {
			return
		}
		if again := encodeProducerSnapshot(got, off); [4]byte(b[:4]) == snapshotMagic && !slices.Equal(again, b) {
			t.Fatalf("decoded snapshot re-encodes differently")
		}
	})
}

func idempotentHeader(pid int64, base int64, seq int32, n int32) record.BatchHeader {
	return record.BatchHeader{BaseOffset: base, ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq,
		LastOffsetDelta: n - 1, NumRecords: n, MaxTimestamp: 1000 + base}
}

// TestProducerSnapshotAtRoll: an append that rolls a segment writes the producer snapshot, so
// after a power cut (no Close) Open replays only the batches after the roll, and a retried
// batch from before it is still a duplicate.
func TestProducerSnapshotAtRoll(t *testing.T) {
	fsys := newTxnFS(t)
	open := func() *Partition {
		cfg := log.DefaultConfig()
		cfg.FileDeleteDelayMs = 0
		cfg.SegmentBytes = 1024 // a few batches per segment
		cfg.FlushIntervalMessages = 1
		p, err := Open(snapDir, "t", 0, Settings{Log: cfg, MaxMessageBytes: 8 << 20, MinInsyncReplicas: 1}, 1, nil,
			&LogDir{Path: "/d", FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	var lastRoll int64 = -1
	for seq := int32(0); p.log.NumSegments() < 3; seq++ {
		before := p.log.NumSegments()
		if _, err := p.Append(idempotentBatch(7, seq, 1), 1, OriginClient); err != nil {
			t.Fatal(err)
		}
		if p.log.NumSegments() != before {
			lastRoll = p.LogEndOffset()
		}
	}
	if _, err := p.Append(idempotentBatch(7, int32(p.LogEndOffset()), 1), 1, OriginClient); err != nil {
		t.Fatal(err)
	}
	want := p.Producers()
	end := p.LogEndOffset()
	fsys = fsys.Crash() // no Close: only what was synced survives

	p = open()
	defer p.Close()
	if p.replayedFrom != lastRoll {
		t.Fatalf("replayed from %d, want the last roll's snapshot at %d (log end %d)", p.replayedFrom, lastRoll, end)
	}
	if got := p.Producers(); !slices.Equal(got, want) {
		t.Fatalf("producers after the crash %+v, want %+v", got, want)
	}
	r, err := p.Append(idempotentBatch(7, 0, 1), 1, OriginClient)
	if err == nil && r.BaseOffset != 0 || p.LogEndOffset() != end {
		// Only the last 5 batches per producer are remembered (Kafka's window): an old retry is
		// out of sequence, never appended again.
		t.Fatalf("retry of the first batch after the crash: %+v %v, log end %d (want %d)", r, err, p.LogEndOffset(), end)
	}
}
