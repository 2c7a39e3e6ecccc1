package partition

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/record"
)

// TestAppendOrigin: what a client may not write (control batches, an idempotent batch without a
// sequence) is refused with Kafka's codes and leaves the log as it
// was; the coordinator origin writes control and transactional batches.
func TestAppendOrigin(t *testing.T) {
	one := []record.Record{{Key: []byte("k"), Value: []byte("v")}}
	batch := func(spec record.BatchSpec) []byte {
		spec.BaseTimestamp = 1_700_000_000_000
		spec.Records = one
		return record.Build(spec)
	}
	control := batch(record.BatchSpec{Control: true, Transactional: true, ProducerID: 7, ProducerEpoch: 0, BaseSequence: -1})
	transactional := batch(record.BatchSpec{Transactional: true, ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0})
	noSequence := batch(record.BatchSpec{ProducerID: 7, ProducerEpoch: 0, BaseSequence: -1})
	plain := batch(record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1})

	p := openTest(t)
	for _, tc := range []struct {
		name  string
		batch []byte
		want  *kerr.Error
	}{
		{"control", control, kerr.InvalidRecord},
		{"idempotent without sequence", noSequence, kerr.InvalidRecord},
	} {
		_, err := p.Append(tc.batch, -1, OriginClient)
		if !errors.Is(err, tc.want) {
			t.Errorf("client %s batch: %v, want %s", tc.name, err, tc.want.Message)
		}
		// A request is appended whole or not at all: a bad batch after a good one refuses both.
		_, err = p.Append(append(append([]byte(nil), plain...), tc.batch...), -1, OriginClient)
		if !errors.Is(err, tc.want) {
			t.Errorf("client plain+%s batches: %v, want %s", tc.name, err, tc.want.Message)
		}
	}
	if end := p.LogEndOffset(); end != 0 {
		t.Fatalf("log end offset %d after refused appends, want 0", end)
	}
	if _, err := p.Append(plain, -1, OriginClient); err != nil {
		t.Fatalf("client plain batch: %v", err)
	}
	// The coordinator origin is not held to the client rules (this control batch has no
	// producer; markers are WriteTxnMarker's, txn_test.go).
	if _, err := p.Append(batch(record.BatchSpec{Control: true, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}),
		-1, OriginCoordinator); err != nil {
		t.Fatalf("coordinator control batch: %v", err)
	}
	if _, err := p.Append(transactional, -1, OriginCoordinator); err != nil {
		t.Fatalf("coordinator transactional batch: %v", err)
	}
	if end := p.LogEndOffset(); end != 3 {
		t.Fatalf("log end offset %d, want 3", end)
	}
	if OriginClient.String() != "client" || OriginCoordinator.String() != "coordinator" || OriginReplication.String() != "replication" {
		t.Fatal("origin names")
	}
}
