package partition

import (
	"fmt"
	"os"
	"testing"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/record"
	"github.com/moldau/moldau/internal/vfs"
)

func openTest(t testing.TB) *Partition {
	t.Helper()
	cfg := log.DefaultConfig()
	cfg.FileDeleteDelayMs = 0
	dir := t.TempDir()
	syncer, err := log.NewSyncer(vfs.Default, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syncer.Close() })
	p, err := Open(dir+"/t-0", "t", 0, Settings{Log: cfg, MaxMessageBytes: 8 << 20, MinInsyncReplicas: 1}, 0, nil,
		&LogDir{Path: dir, Syncer: syncer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// produceBatch is what a producer sends: n records of size bytes in one batch.
func produceBatch(n, size int, codec record.Codec) []byte {
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{TimestampDelta: int64(i), Key: []byte(fmt.Sprint("key-", i)), Value: make([]byte, size)}
	}
	return record.Build(record.BatchSpec{Codec: codec, BaseTimestamp: 1_700_000_000_000, ProducerID: -1,
		ProducerEpoch: -1, BaseSequence: -1, Records: recs})
}

// TestAppendAllocationsIndependentOfRecords: the produce path parses batch headers only, so its
// allocations per request do not grow with the number of records in the batch.
func TestAppendAllocationsIndependentOfRecords(t *testing.T) {
	p := openTest(t)
	allocs := func(n int) float64 {
		b := produceBatch(n, 100, record.CodecNone)
		return testing.AllocsPerRun(200, func() {
			if _, err := p.Append(b, -1, OriginClient); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := allocs(1), allocs(1000)
	if many > one {
		t.Fatalf("%.1f allocations appending 1000 records, %.1f appending 1: something allocates per record", many, one)
	}
	if one > 4 {
		t.Fatalf("%.1f allocations per append, want at most 4 (split slice, header slice)", one)
	}
}

// BenchmarkPartitionAppend is the broker's produce path below the wire codec: split, validate
// (CRC over the whole batch), append to the log with one write, advance the high watermark.
func BenchmarkPartitionAppend(b *testing.B) {
	for _, tc := range []struct {
		records, size int
		codec         record.Codec
	}{{1, 1024, record.CodecNone}, {100, 1024, record.CodecNone}, {1000, 100, record.CodecNone}, {100, 1024, record.CodecZstd}} {
		b.Run(fmt.Sprintf("records=%d/size=%d/%s", tc.records, tc.size, tc.codec), func(b *testing.B) {
			p := openTest(b)
			batch := produceBatch(tc.records, tc.size, tc.codec)
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Append(batch, -1, OriginClient); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(tc.records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestDirCleanShutdownMarker: a Manager that closed every partition marks the log dir clean; the
// next Manager takes the marker (so a crash after that start counts as unclean) and its logs
// reopen with every record.
func TestDirCleanShutdownMarker(t *testing.T) {
	dir := t.TempDir()
	marker := dir + "/" + log.DirCleanShutdownFile
	settings := Settings{Log: log.DefaultConfig(), MaxMessageBytes: 1 << 20, MinInsyncReplicas: 1}
	m, err := NewManager([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.logDirs[dir].CleanShutdown {
		t.Fatal("a new log dir counts as cleanly shut down")
	}
	p, err := m.Ensure("t", 0, settings, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(produceBatch(10, 10, record.CodecNone), -1, OriginClient); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no clean-shutdown marker after Close: %v", err)
	}
	m, err = NewManager([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !m.logDirs[dir].CleanShutdown {
		t.Fatal("clean shutdown not seen")
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker still there after start: %v", err)
	}
	p, err = m.Ensure("t", 0, settings, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.LogEndOffset() != 10 {
		t.Fatalf("log end %d after a clean restart, want 10", p.LogEndOffset())
	}
}
