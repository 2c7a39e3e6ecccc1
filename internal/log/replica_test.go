package log

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/moldau/moldau/internal/record"
)

// readBatches reads every stored batch of l, whole, in order.
func readBatches(t *testing.T, l *Log) [][]byte {
	t.Helper()
	r, err := l.Read(l.LogStartOffset(), math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := record.Split(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// TestAppendReplica copies a leader's log batch by batch into a follower's with AppendReplica:
// the follower ends byte-identical (offsets, leader epochs, LogAppendTime stamps kept), with the
// same leader-epoch cache, and both survive a reopen.
func TestAppendReplica(t *testing.T) {
	clock := newClock()
	leader := mustOpen(t, t.TempDir(), testConfig(), clock)
	defer leader.Close()
	if _, err := leader.Append(batch("a", 3, 100), 1, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Append(batch("b", 2, 200), 1, 7777); err != nil { // LogAppendTime
		t.Fatal(err)
	}
	if _, err := leader.Append(batch("c", 4, 300), 4, -1); err != nil { // epoch 4 starts at 5
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.SegmentBytes = 200 // roll between batches: the replica path rolls and indexes too
	dir := t.TempDir()
	follower := mustOpen(t, dir, cfg, clock)
	src := readBatches(t, leader)
	for _, b := range src {
		cp := append([]byte(nil), b...)
		h, _ := record.ParseHeader(cp)
		r, err := follower.AppendReplica(cp)
		if err != nil {
			t.Fatal(err)
		}
		if r.BaseOffset != h.BaseOffset || r.LastOffset != h.LastOffset() || r.LogAppendTime != -1 {
			t.Fatalf("append result %+v for batch at %d", r, h.BaseOffset)
		}
	}
	check := func(l *Log) {
		t.Helper()
		got := readBatches(t, l)
		if len(got) != len(src) {
			t.Fatalf("%d batches, want %d", len(got), len(src))
		}
		for i := range src {
			if !bytes.Equal(got[i], src[i]) {
				t.Fatalf("batch %d differs from the leader's", i)
			}
		}
		if l.LogEndOffset() != 9 || l.LatestEpoch() != 4 {
			t.Fatalf("LEO %d, latest epoch %d", l.LogEndOffset(), l.LatestEpoch())
		}
		if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 5 {
			t.Fatalf("end of epoch 1: (%d, %d), want (1, 5)", e, off)
		}
		if off, ts, ok, err := l.OffsetForTimestamp(7777); err != nil || !ok || off != 3 || ts != 7777 {
			t.Fatalf("offset for the stamped time: %d %d %v %v", off, ts, ok, err)
		}
	}
	check(follower)
	if follower.NumSegments() < 2 {
		t.Fatalf("%d segments: the small segment.bytes did not roll", follower.NumSegments())
	}
	if err := follower.Close(); err != nil {
		t.Fatal(err)
	}
	follower = mustOpen(t, dir, cfg, clock)
	defer follower.Close()
	check(follower)
}

// TestAppendReplicaNotAtLogEnd: a batch that does not start at the log end offset is refused
// with ErrNotLogEnd and leaves the log as it was.
func TestAppendReplicaNotAtLogEnd(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	b := batch("x", 2, 0)
	record.SetBaseOffset(b, 0)
	if _, err := l.AppendReplica(b); err != nil {
		t.Fatal(err)
	}
	for _, base := range []int64{0, 1, 3} { // behind, inside, a gap
		b := batch("y", 1, 0)
		record.SetBaseOffset(b, base)
		if _, err := l.AppendReplica(b); !errors.Is(err, ErrNotLogEnd) {
			t.Fatalf("base %d: %v, want ErrNotLogEnd", base, err)
		}
	}
	if l.LogEndOffset() != 2 || len(readBatches(t, l)) != 1 {
		t.Fatalf("LEO %d after refused appends", l.LogEndOffset())
	}
	// An epoch not above the latest is not recorded again; a higher one is.
	b = batch("z", 1, 0)
	record.SetBaseOffset(b, 2)
	record.SetPartitionLeaderEpoch(b, 3)
	if _, err := l.AppendReplica(b); err != nil {
		t.Fatal(err)
	}
	if e, off := l.EndOffsetForEpoch(2); e != 0 || off != 2 {
		t.Fatalf("end of epoch 2: (%d, %d), want (0, 2)", e, off)
	}
}
