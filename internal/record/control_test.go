package record

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMarkerRoundTrip(t *testing.T) {
	for _, commit := range []bool{true, false} {
		want := Marker{ProducerID: 42, ProducerEpoch: 7, Commit: commit, CoordinatorEpoch: 3, Timestamp: 1700000000000}
		b := BuildMarker(want)
		h, recs, err := Records(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() || !h.Transactional() || h.BaseSequence != -1 || h.ProducerID != 42 || h.ProducerEpoch != 7 {
			t.Fatalf("header %+v", h)
		}
		got, err := ParseMarker(h, recs)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		// Kafka's bytes: key = version 0, type; value = version 0, coordinator epoch.
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(recs[0].Key); err != nil || key.Version != 0 || len(recs[0].Key) != 4 {
			t.Fatalf("key %x: %v", recs[0].Key, err)
		}
		if len(recs[0].Value) != 6 {
			t.Fatalf("value %x", recs[0].Value)
		}
	}
}

func TestParseMarkerRefusesOthers(t *testing.T) {
	data := Build(BatchSpec{ProducerID: 1, BaseSequence: 0, Records: []Record{{Key: []byte("k")}}})
	h, recs, err := Records(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseMarker(h, recs); err == nil {
		t.Fatal("a data batch parsed as a marker")
	}
	key := kmsg.NewControlRecordKey()
	key.Type = 4 // not a transaction marker
	data = Build(BatchSpec{Control: true, ProducerID: 1, BaseSequence: -1, Records: []Record{{Key: key.AppendTo(nil), Value: []byte{0, 0, 0, 0, 0, 0}}}})
	h, recs, _ = Records(data)
	if _, err := ParseMarker(h, recs); err == nil {
		t.Fatal("control type 4 parsed as a marker")
	}
}
