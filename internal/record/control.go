package record

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transaction markers: the control batches that end a transaction on a partition. A marker is a
// control batch (attributes bit 5) of the producer's id and epoch, transactional (bit 4), without
// a sequence, holding one record whose key is Kafka's ControlRecordKey (version 0, type 0 abort,
// 1 commit) and whose value is its EndTxnMarker (version 0, the coordinator epoch).

// Marker is one transaction marker.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool  // false: abort
	CoordinatorEpoch int32 // the epoch of the transaction coordinator that wrote it
	Timestamp        int64 // ms since the epoch: the batch's base and max timestamp
}

// BuildMarker builds the control batch of m (base offset 0: the log assigns it).
func BuildMarker(m Marker) []byte {
	key := kmsg.NewControlRecordKey()
	key.Type = kmsg.ControlRecordKeyTypeAbort
	if m.Commit {
		key.Type = kmsg.ControlRecordKeyTypeCommit
	}
	value := kmsg.NewEndTxnMarker()
	value.CoordinatorEpoch = m.CoordinatorEpoch
	return Build(BatchSpec{
		Control:       true,
		Transactional: true,
		BaseTimestamp: m.Timestamp,
		ProducerID:    m.ProducerID,
		ProducerEpoch: m.ProducerEpoch,
		BaseSequence:  -1,
		Records:       []Record{{Key: key.AppendTo(nil), Value: value.AppendTo(nil)}},
	})
}

// ParseMarker reads the marker of a control batch: h is its header, recs its records
// (Records). A control batch whose key is not a commit or abort (Kafka reserves other types) is
// an error, as is one that is not a control batch.
func ParseMarker(h BatchHeader, recs []Record) (Marker, error) {
	m := Marker{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, Timestamp: h.MaxTimestamp}
	if !h.Control() {
		return m, fmt.Errorf("batch at offset %d is not a control batch", h.BaseOffset)
	}
	if len(recs) != 1 {
		return m, fmt.Errorf("control batch at offset %d holds %d records, a marker holds one", h.BaseOffset, len(recs))
	}
	var key kmsg.ControlRecordKey
	if err := key.ReadFrom(recs[0].Key); err != nil {
		return m, fmt.Errorf("control batch at offset %d: key: %w", h.BaseOffset, err)
	}
	switch key.Type {
	case kmsg.ControlRecordKeyTypeAbort:
	case kmsg.ControlRecordKeyTypeCommit:
		m.Commit = true
	default:
		return m, fmt.Errorf("control batch at offset %d: record type %d is not a transaction marker", h.BaseOffset, key.Type)
	}
	var value kmsg.EndTxnMarker
	if err := value.ReadFrom(recs[0].Value); err != nil {
		return m, fmt.Errorf("control batch at offset %d: value: %w", h.BaseOffset, err)
	}
	m.CoordinatorEpoch = value.CoordinatorEpoch
	return m, nil
}
