package record

import "fmt"

// attrDeleteHorizon is attributes bit 6 (KIP-534): the batch's base timestamp is its delete
// horizon, the time from which the log cleaner may remove the batch's tombstones or, for a
// control batch, the transaction marker.
const attrDeleteHorizon = 0x40

// DeleteHorizon returns the batch's delete horizon (ms) and whether it has one.
func (h BatchHeader) DeleteHorizon() (int64, bool) {
	if h.Attributes&attrDeleteHorizon == 0 {
		return 0, false
	}
	return h.BaseTimestamp, true
}

// WithDeleteHorizon re-encodes a stored batch with header h and records recs (all of them, in
// offset order) with the delete horizon set to horizonMs, as Kafka's cleaner does: attributes
// bit 6 set, the base timestamp becomes the horizon and each record's timestamp delta is
// recomputed against it, so the records keep their timestamps (the max timestamp is unchanged).
// Everything else is as Rewrite keeps it.
func WithDeleteHorizon(h BatchHeader, recs []Record, horizonMs int64, rawSnappy bool) ([]byte, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("set delete horizon of batch at offset %d: no records: %w", h.BaseOffset, ErrCorrupt)
	}
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.TimestampDelta = h.BaseTimestamp + r.TimestampDelta - horizonMs
		out[i] = r
	}
	h.Attributes |= attrDeleteHorizon
	h.BaseTimestamp = horizonMs
	return Rewrite(h, out, rawSnappy)
}
