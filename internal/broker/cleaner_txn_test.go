package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
)

// TestCleanerTransactionalOffsets compacts a __consumer_offsets partition full of transactional
// offset commits (committed, aborted, interleaved with plain commits, one transaction still open
// at the end) and replays it into a group coordinator before and after: the cleaned log must
// say the same committed and pending offsets, with the aborted records gone from it.
func TestCleanerTransactionalOffsets(t *testing.T) {
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	cfg.Compact, cfg.NoDelete = true, true
	cfg.SegmentBytes = 2048
	cfg.DeleteRetentionMs = 3_600_000
	p := openOffsetsPartition(t, cfg)
	offsetRecord := func(part int32, off int64) record.Record {
		k := kmsg.NewOffsetCommitKey()
		k.Version = 1
		k.Group, k.Topic, k.Partition = "g", "t", part
		v := kmsg.NewOffsetCommitValue()
		v.Version = 3
		v.Offset = off
		v.LeaderEpoch = -1
		return record.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
	}
	now := time.Now().UnixMilli()
	appendBatch := func(b []byte) {
		t.Helper()
		if _, err := p.Log().Append(b, 0, -1); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(4, 2))
	open := map[int64]bool{}
	aborts := 0
	for i := range 300 {
		pid := int64(7 + rng.IntN(3))
		rec := offsetRecord(int32(rng.IntN(4)), int64(i))
		switch n := rng.IntN(10); {
		case n < 6:
			appendBatch(record.Build(record.BatchSpec{BaseTimestamp: now, Transactional: true,
				ProducerID: pid, ProducerEpoch: 0, BaseSequence: -1, Records: []record.Record{rec}}))
			open[pid] = true
		case n < 8 && open[pid]:
			commit := rng.IntN(3) > 0
			if !commit {
				aborts++
			}
			appendBatch(record.BuildMarker(record.Marker{ProducerID: pid, ProducerEpoch: 0, Commit: commit, Timestamp: now}))
			delete(open, pid)
		default:
			appendBatch(record.Build(record.BatchSpec{BaseTimestamp: now, ProducerID: -1, ProducerEpoch: -1,
				BaseSequence: -1, Records: []record.Record{rec}}))
		}
	}
	for pid := range open {
		appendBatch(record.BuildMarker(record.Marker{ProducerID: pid, ProducerEpoch: 0, Commit: false, Timestamp: now}))
	}
	// The latest record of partition 0's key is an aborted one: the committed one before it stays.
	plain := func(part int32, off int64) {
		appendBatch(record.Build(record.BatchSpec{BaseTimestamp: now, ProducerID: -1, ProducerEpoch: -1,
			BaseSequence: -1, Records: []record.Record{offsetRecord(part, off)}}))
	}
	txn := func(pid int64, part int32, off int64) {
		appendBatch(record.Build(record.BatchSpec{BaseTimestamp: now, Transactional: true,
			ProducerID: pid, ProducerEpoch: 0, BaseSequence: -1, Records: []record.Record{offsetRecord(part, off)}}))
	}
	plain(0, 1000)
	txn(10, 0, 1001)
	appendBatch(record.BuildMarker(record.Marker{ProducerID: 10, ProducerEpoch: 0, Commit: false, Timestamp: now}))
	// Enough to roll a segment, then a transaction left open (partition 3's pending offset) and more.
	for i := range 30 {
		plain(5, int64(i))
	}
	txn(11, 3, 2000)
	for i := range 30 {
		plain(5, int64(100+i))
	}
	if aborts == 0 || p.Log().NumSegments() < 5 {
		t.Fatalf("a weak test: %d aborts, %d open transactions, %d segments", aborts, len(open), p.Log().NumSegments())
	}

	// replay loads the partition into a coordinator and answers its offsets (stable and not),
	// and the number of records of aborted transactions the log holds.
	replay := func() (string, int) {
		t.Helper()
		var stored []group.StoredRecord
		abortedRecords := 0
		pending := map[int64]int{}
		err := loadPartition(p, 0, func(r group.StoredRecord) error {
			if r.Err != nil {
				t.Fatalf("load: %v", r.Err)
			}
			switch {
			case r.Marker == group.MarkerAbort:
				abortedRecords += pending[r.ProducerID]
				delete(pending, r.ProducerID)
			case r.Marker == group.MarkerCommit:
				delete(pending, r.ProducerID)
			case r.Transactional:
				pending[r.ProducerID]++
			}
			stored = append(stored, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		c := group.NewCoordinator(group.Config{}, &replayStore{recs: stored}, nil)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.WaitLoaded(ctx); err != nil {
			t.Fatal(err)
		}
		var res []string
		for _, stable := range []bool{false, true} {
			f := kmsg.NewPtrOffsetFetchRequest()
			f.Version = 7
			f.Group = "g"
			f.RequireStable = stable
			f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 2, 3}}}
			for _, fp := range c.OffsetFetch(f).Topics[0].Partitions {
				res = append(res, fmt.Sprintf("%d:%d/%d", fp.Partition, fp.Offset, fp.ErrorCode))
			}
		}
		return strings.Join(res, " "), abortedRecords
	}
	want, abortedBefore := replay()
	if !strings.HasPrefix(want, "0:1000/0 ") {
		t.Fatalf("offsets before cleaning %s: partition 0 is not at its last committed offset", want)
	}
	sizeBefore := p.Log().Size()
	for pass := range 2 {
		// The log end as the bound: the cleaner itself stops at the open transaction.
		if _, err := p.Log().Clean(p.Log().LogEndOffset()); err != nil {
			t.Fatal(err)
		}
		got, abortedAfter := replay()
		if got != want {
			t.Fatalf("pass %d: replayed offsets\n got %s\nwant %s", pass, got, want)
		}
		if abortedAfter != 0 || abortedBefore == 0 {
			t.Fatalf("pass %d: %d records of aborted transactions, %d before cleaning", pass, abortedAfter, abortedBefore)
		}
	}
	if p.Log().Size() >= sizeBefore {
		t.Fatalf("log %d bytes, %d before cleaning", p.Log().Size(), sizeBefore)
	}
}
