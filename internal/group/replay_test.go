package group

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// countingCounter is a Counter for tests.
type countingCounter struct{ n atomic.Int64 }

func (c *countingCounter) Inc() { c.n.Add(1) }

// syncBuffer is a bytes.Buffer safe for the coordinator's load goroutine to log into.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func commitKV(group, topic string, partition int32, offset int64) KV {
	return KV{Key: offsetKey(group, topic, partition),
		Value: offsetValue(offsetEntry{offset: offset, leaderEpoch: -1, commitTime: time.Unix(1_700_000_000, 0).UnixMilli()})}
}

// TestReplaySkipsUndecodableRecords: records the coordinator cannot decode are skipped, counted,
// and logged once with the position of the first; they change nothing (no group appears for a
// record whose value does not decode); the valid records before and after them load.
func TestReplaySkipsUndecodableRecords(t *testing.T) {
	store := NewMemoryStore()
	garbage := []KV{
		{Key: nil, Value: []byte("x")},
		{Key: []byte{1}, Value: []byte("x")},                      // the one-byte key of issue 7
		{Key: []byte{0, 1}, Value: []byte("x")},                   // offset commit key v1 with nothing after the version
		{Key: offsetKey("g", "t", 1), Value: []byte{0, 3, 1}},     // truncated offset commit value
		{Key: groupKey("g"), Value: []byte{0, 3, 0xff}},           // truncated group metadata value
		{Key: offsetKey("ghost", "t", 0), Value: []byte{0, 1, 2}}, // a group that must not appear
	}
	records := append([]KV{commitKV("g", "t", 0, 4)}, garbage...)
	records = append(records, commitKV("g", "t", 1, 6), KV{Key: []byte{0, 9, 1, 2}, Value: []byte("a record type not ours")})
	if err := store.Append("g", records); err != nil {
		t.Fatal(err)
	}

	logs := &syncBuffer{}
	var skipped countingCounter
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.RecordsSkipped = &skipped
	h := newHarnessStore(t, cfg, store, newFakeClock())

	f := fetch(h, 7, "g", "t", 0, 1)
	if ps := f.Topics[0].Partitions; ps[0].Offset != 4 || ps[1].Offset != 6 {
		t.Fatalf("loaded offsets %d, %d; want 4, 6", ps[0].Offset, ps[1].Offset)
	}
	if n := skipped.n.Load(); n != int64(len(garbage)) {
		t.Fatalf("%d records counted as skipped, want %d", n, len(garbage))
	}
	if s := h.state("ghost"); s != "Dead" {
		t.Fatalf("a record that did not decode created group ghost (%s)", s)
	}
	out := logs.String()
	if n := strings.Count(out, "skipping a group coordinator record"); n != 1 {
		t.Fatalf("%d lines about a skipped record, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "offset=1 ") || !strings.Contains(out, "records=6") {
		t.Fatalf("the log does not name the first skipped record's offset and the count:\n%s", out)
	}
}

// endlessStore is a Store whose Load hands fn records until fn returns an error, as a very
// large __consumer_offsets would for a long time.
type endlessStore struct{ started chan struct{} }

func (s *endlessStore) Append(string, []KV) error                       { return nil }
func (s *endlessStore) AppendTxn(string, int64, int16, any, []KV) error { return nil }

func (s *endlessStore) Load(fn func(StoredRecord) error) error {
	close(s.started)
	for off := int64(0); ; off++ {
		if err := fn(StoredRecord{Offset: off, Key: offsetKey("g", "t", 0),
			Value: offsetValue(offsetEntry{offset: off, leaderEpoch: -1})}); err != nil {
			return err
		}
	}
}

// TestCloseStopsLoad: Close during the store replay stops the replay and returns once the load
// goroutine is done (it used to go on reading the store, which the broker closes next, after
// Close returned); requests then get COORDINATOR_NOT_AVAILABLE, and the stop is not logged as a
// failed load.
func TestCloseStopsLoad(t *testing.T) {
	store := &endlessStore{started: make(chan struct{})}
	logs := &syncBuffer{}
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	c := NewCoordinator(cfg, store, newFakeClock())
	<-store.started
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s during a load")
	}
	select {
	case <-c.loaded:
	default:
		t.Fatal("Close returned while the load goroutine was still replaying the store")
	}
	if code := c.status(); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("status after Close: %d, want COORDINATOR_NOT_AVAILABLE", code)
	}
	if out := logs.String(); strings.Contains(out, "failed to load") {
		t.Fatalf("a load stopped by Close was logged as failed:\n%s", out)
	}
}
