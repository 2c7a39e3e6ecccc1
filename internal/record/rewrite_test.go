package record

import (
	"bytes"
	"testing"
)

// TestRewriteKeepsOffsetsAndHeader removes records from a batch as the log cleaner does and checks
// that the survivors keep their offsets and timestamps and the header keeps its span and producer.
func TestRewriteKeepsOffsetsAndHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec Codec
		raw   bool
	}{
		{"none", CodecNone, false},
		{"gzip", CodecGzip, false},
		{"snappy-xerial", CodecSnappy, false},
		{"snappy-raw", CodecSnappy, true},
		{"lz4", CodecLZ4, false},
		{"zstd", CodecZstd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := Build(BatchSpec{BaseOffset: 100, PartitionLeaderEpoch: 7, Codec: tc.codec, RawSnappy: tc.raw,
				BaseTimestamp: 5000, ProducerID: 9, ProducerEpoch: 2, BaseSequence: 40, Records: []Record{
					{TimestampDelta: 0, Key: []byte("a"), Value: []byte("1")},
					{TimestampDelta: 1, Key: []byte("b"), Value: []byte("2")},
					{TimestampDelta: 2, Key: []byte("a"), Value: nil},
					{TimestampDelta: 3, Key: []byte("c"), Value: []byte("4"), Headers: []Header{{Key: "h", Value: []byte("v")}}},
				}})
			if got := IsRawSnappy(orig); tc.codec == CodecSnappy && got != tc.raw {
				t.Fatalf("IsRawSnappy = %v", got)
			}
			h, recs, err := Records(orig)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Rewrite(h, []Record{recs[1], recs[3]}, IsRawSnappy(orig))
			if err != nil {
				t.Fatal(err)
			}
			nh, nrecs, err := Records(out)
			if err != nil {
				t.Fatal(err)
			}
			want := h
			want.NumRecords, want.Length, want.CRC = 2, nh.Length, nh.CRC
			if nh != want {
				t.Fatalf("header\n got %+v\nwant %+v", nh, want)
			}
			if len(nrecs) != 2 || nrecs[0].OffsetDelta != 1 || nrecs[1].OffsetDelta != 3 ||
				string(nrecs[0].Value) != "2" || string(nrecs[1].Key) != "c" ||
				nh.Timestamp(nrecs[1]) != 5003 || len(nrecs[1].Headers) != 1 || string(nrecs[1].Headers[0].Value) != "v" {
				t.Fatalf("records %+v", nrecs)
			}
			if tc.codec == CodecSnappy && IsRawSnappy(out) != tc.raw {
				t.Fatal("snappy framing changed")
			}

			empty, err := Rewrite(h, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			eh, erecs, err := Records(empty)
			if err != nil {
				t.Fatal(err)
			}
			if len(erecs) != 0 || eh.NumRecords != 0 || eh.Codec() != CodecNone || eh.Size() != HeaderSize ||
				eh.LastOffset() != 103 || eh.ProducerID != 9 || eh.BaseSequence != 40 {
				t.Fatalf("empty batch %+v", eh)
			}
			if bytes.Equal(out, orig) {
				t.Fatal("rewrite returned the original")
			}
		})
	}
}

func TestRewriteRejectsForeignOffsetDelta(t *testing.T) {
	b := Build(BatchSpec{BaseOffset: 0, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Records: []Record{{Key: []byte("k"), Value: []byte("v")}}})
	h, _, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rewrite(h, []Record{{OffsetDelta: 5, Key: []byte("k")}}, false); err == nil {
		t.Fatal("offset delta beyond lastOffsetDelta accepted")
	}
}
