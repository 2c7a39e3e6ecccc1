package partition

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

func faultManager(t *testing.T, dirs ...string) (*Manager, *vfs.FaultFS) {
	t.Helper()
	mem := vfs.NewMem()
	ffs := vfs.NewFaultFS(mem)
	m, err := NewManager(dirs, nil, WithFS(ffs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, ffs
}

func testSettings(syncBeforeAck bool) Settings {
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	return Settings{Log: cfg, MaxMessageBytes: 1 << 20, MinInsyncReplicas: 1, SyncBeforeAck: syncBeforeAck}
}

func readCount(t *testing.T, p *Partition) int {
	t.Helper()
	data, err := p.Read(p.LogStartOffset(), 1<<20, false, true)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := record.Split(data)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range bs {
		h, err := record.ValidateStored(b)
		if err != nil {
			t.Fatal(err)
		}
		n += int(h.NumRecords)
	}
	return n
}

// TestAppendNoSpace: a full disk answers KAFKA_STORAGE_ERROR for the produce, leaves the
// partition readable and its dir online, and produce resumes once there is space.
func TestAppendNoSpace(t *testing.T) {
	m, ffs := faultManager(t, "/d1")
	p, err := m.Ensure("t", 0, testSettings(false), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(produceBatch(5, 10, record.CodecNone), -1, OriginClient); err != nil {
		t.Fatal(err)
	}
	ffs.SetInjector(vfs.OnPrefix("/d1", syscall.ENOSPC, vfs.OpWrite))
	if _, err := p.Append(produceBatch(5, 10, record.CodecNone), -1, OriginClient); !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("append to a full disk: %v", err)
	}
	if err := m.LogDir("/d1").Err(); err != nil {
		t.Fatalf("a full disk took the dir offline: %v", err)
	}
	if n := readCount(t, p); n != 5 || p.HighWatermark() != 5 {
		t.Fatalf("%d records readable, high watermark %d", n, p.HighWatermark())
	}
	ffs.SetInjector(nil)
	r, err := p.Append(produceBatch(5, 10, record.CodecNone), -1, OriginClient)
	if err != nil || r.BaseOffset != 5 {
		t.Fatalf("append after space came back: %+v %v", r, err)
	}
	if n := readCount(t, p); n != 10 {
		t.Fatalf("%d records readable", n)
	}
}

// TestFsyncFailureTakesDirOffline: a failed fsync in one log dir (the group-commit sync of
// fsync-before-ack, or a log's own flush) takes that dir offline: its partitions answer
// KAFKA_STORAGE_ERROR for produce and fetch, new partitions go to the other dir, whose partitions
// keep working; the failed dir is not marked cleanly shut down.
func TestFsyncFailureTakesDirOffline(t *testing.T) {
	for _, syncBeforeAck := range []bool{true, false} {
		t.Run(fmt.Sprint("syncBeforeAck=", syncBeforeAck), func(t *testing.T) {
			m, ffs := faultManager(t, "/d1", "/d2")
			s := testSettings(syncBeforeAck)
			var parts []*Partition
			for i := range int32(4) {
				p, err := m.Ensure("t", i, s, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Append(produceBatch(3, 10, record.CodecNone), -1, OriginClient); err != nil {
					t.Fatal(err)
				}
				parts = append(parts, p)
			}
			ffs.SetInjector(vfs.OnPrefix("/d1", syscall.EIO, vfs.OpSync, vfs.OpSyncDir, vfs.OpSyncFS))
			var bad, good []*Partition
			for _, p := range parts {
				if m.DirOf(p.Topic, p.Index) == "/d1" {
					bad = append(bad, p)
				} else {
					good = append(good, p)
				}
			}
			if len(bad) != 2 || len(good) != 2 {
				t.Fatalf("placement: %d in /d1, %d in /d2", len(bad), len(good))
			}
			if syncBeforeAck {
				if err := bad[0].AckSyncer().Sync(); !errors.Is(err, syscall.EIO) {
					t.Fatalf("sync: %v", err)
				}
			} else if err := bad[0].Log().Flush(); !errors.Is(err, log.ErrLogFailed) {
				t.Fatalf("flush: %v", err)
			}
			ffs.SetInjector(nil)
			if err := m.LogDir("/d1").Err(); err == nil {
				t.Fatal("/d1 still online after a failed fsync")
			}
			for _, p := range bad {
				if _, err := p.Append(produceBatch(1, 10, record.CodecNone), -1, OriginClient); !errors.Is(err, kerr.KafkaStorageError) {
					t.Fatalf("produce to %d in the offline dir: %v", p.Index, err)
				}
				if _, err := p.Read(0, 1<<20, false, true); !errors.Is(err, kerr.KafkaStorageError) {
					t.Fatalf("fetch from %d in the offline dir: %v", p.Index, err)
				}
				if _, err := p.ReadSections(0, 1<<20, false, true); !errors.Is(err, kerr.KafkaStorageError) {
					t.Fatalf("fetch sections from %d in the offline dir: %v", p.Index, err)
				}
			}
			for _, p := range good {
				if _, err := p.Append(produceBatch(1, 10, record.CodecNone), -1, OriginClient); err != nil {
					t.Fatalf("produce to %d in the online dir: %v", p.Index, err)
				}
				if syncBeforeAck {
					if err := p.AckSyncer().Sync(); err != nil {
						t.Fatal(err)
					}
				}
				if n := readCount(t, p); n != 4 {
					t.Fatalf("partition %d: %d records", p.Index, n)
				}
			}
			for i := int32(4); i < 8; i++ {
				if _, err := m.Ensure("t", i, s, 0); err != nil {
					t.Fatal(err)
				}
				if d := m.DirOf("t", i); d != "/d2" {
					t.Fatalf("new partition %d placed in %s", i, d)
				}
			}
			m.Close()
			if _, err := ffs.Stat("/d1/" + log.DirCleanShutdownFile); err == nil {
				t.Fatal("the offline dir was marked cleanly shut down")
			}
			if _, err := ffs.Stat("/d2/" + log.DirCleanShutdownFile); err != nil {
				t.Fatalf("the online dir was not marked cleanly shut down: %v", err)
			}
		})
	}
}

// TestTruncateTo: truncation rebuilds the idempotent producer state from what is left (a
// producer's truncated batches are no longer duplicates; it continues from the last kept
// sequence) and clamps the high watermark to the new log end.
func TestTruncateTo(t *testing.T) {
	p := openTest(t)
	const pid = 7
	idem := func(seq int32, n int) []byte {
		recs := make([]record.Record, n)
		for i := range recs {
			recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte("v")}
		}
		return record.Build(record.BatchSpec{BaseTimestamp: 1, ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq, Records: recs})
	}
	for i := range int32(4) { // offsets 0-2, 3-5, 6-8, 9-11
		if _, err := p.Append(idem(3*i, 3), -1, OriginClient); err != nil {
			t.Fatal(err)
		}
	}
	if p.HighWatermark() != 12 {
		t.Fatalf("high watermark %d", p.HighWatermark())
	}
	if err := p.TruncateTo(6); err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 6 || p.HighWatermark() != 6 {
		t.Fatalf("after truncation: end %d, high watermark %d", p.LogEndOffset(), p.HighWatermark())
	}
	// Sequence 6 was truncated: sending it again (after other data, at offset 8) is new data, not
	// a duplicate of the batch that was at offset 6.
	if _, err := p.Append(produceBatch(2, 10, record.CodecNone), -1, OriginClient); err != nil {
		t.Fatal(err)
	}
	r, err := p.Append(idem(6, 3), -1, OriginClient)
	if err != nil || r.BaseOffset != 8 {
		t.Fatalf("resend of a truncated batch: %+v %v", r, err)
	}
	// Sequence 12 (after the truncated 9-11) is out of order now.
	if _, err := p.Append(idem(12, 3), -1, OriginClient); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("sequence past the truncated ones: %v", err)
	}
	if err := p.TruncateTo(-1); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("truncate below the start: %v", err)
	}
}
