package record

import "testing"

func TestWithDeleteHorizon(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecZstd} {
		spec := BatchSpec{BaseOffset: 40, PartitionLeaderEpoch: 2, Codec: codec, Transactional: true, BaseTimestamp: 1000,
			ProducerID: 9, ProducerEpoch: 4, BaseSequence: 17,
			Records: []Record{{TimestampDelta: 0, Key: []byte("a"), Value: []byte("1")}, {TimestampDelta: 5, Key: []byte("b")}}}
		orig := Build(spec)
		h, recs, err := Records(orig)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := h.DeleteHorizon(); ok {
			t.Fatalf("%s: a fresh batch has a delete horizon", codec)
		}
		b, err := WithDeleteHorizon(h, recs, 90_000, false)
		if err != nil {
			t.Fatal(err)
		}
		nh, nrecs, err := Records(b) // validates the CRC
		if err != nil {
			t.Fatal(err)
		}
		if hz, ok := nh.DeleteHorizon(); !ok || hz != 90_000 {
			t.Fatalf("%s: horizon %d %v", codec, hz, ok)
		}
		if nh.BaseOffset != 40 || nh.LastOffsetDelta != 1 || nh.MaxTimestamp != 1005 || nh.ProducerID != 9 ||
			nh.ProducerEpoch != 4 || nh.BaseSequence != 17 || nh.PartitionLeaderEpoch != 2 || !nh.Transactional() ||
			nh.Codec() != codec || len(nrecs) != 2 {
			t.Fatalf("%s: header %+v", codec, nh)
		}
		for i, r := range nrecs {
			if nh.Timestamp(r) != h.Timestamp(recs[i]) || string(r.Key) != string(recs[i].Key) || (r.Value == nil) != (recs[i].Value == nil) {
				t.Fatalf("%s: record %d %+v, was %+v", codec, i, r, recs[i])
			}
		}
		if _, err := WithDeleteHorizon(h, nil, 1, false); err == nil {
			t.Fatalf("%s: a horizon on no records", codec)
		}
	}
}
