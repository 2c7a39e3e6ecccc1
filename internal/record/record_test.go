package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func sampleRecords() []Record {
	return []Record{
		{TimestampDelta: 0, Key: []byte("k0"), Value: []byte("v0")},
		{TimestampDelta: 5, Key: nil, Value: bytes.Repeat([]byte("x"), 1000)},
		{TimestampDelta: 3, Key: []byte{}, Value: nil, Headers: []Header{{Key: "h", Value: []byte("hv")}, {Key: "n", Value: nil}}},
	}
}

func TestBuildRecordsRoundTrip(t *testing.T) {
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
			in := sampleRecords()
			b := Build(BatchSpec{BaseOffset: 42, Codec: tc.codec, RawSnappy: tc.raw, BaseTimestamp: 1000,
				ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: in})
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Codec() != tc.codec || h.NumRecords != 3 || h.LastOffsetDelta != 2 || h.MaxTimestamp != 1005 ||
				h.BaseOffset != 42 || h.Size() != len(b) || h.LastOffset() != 44 || h.ProducerID != -1 {
				t.Fatalf("header %+v", h)
			}
			_, out, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(in) {
				t.Fatalf("%d records", len(out))
			}
			for i := range in {
				if out[i].OffsetDelta != int32(i) || out[i].TimestampDelta != in[i].TimestampDelta ||
					!bytes.Equal(out[i].Key, in[i].Key) || (out[i].Key == nil) != (in[i].Key == nil) ||
					!bytes.Equal(out[i].Value, in[i].Value) || (out[i].Value == nil) != (in[i].Value == nil) ||
					fmt.Sprint(out[i].Headers) != fmt.Sprint(in[i].Headers) {
					t.Fatalf("record %d: got %+v want %+v", i, out[i], in[i])
				}
			}
			if ts := h.Timestamp(out[1]); ts != 1005 {
				t.Fatalf("timestamp %d", ts)
			}
		})
	}
}

// TestAgainstKmsg checks both directions against franz-go's codec.
func TestAgainstKmsg(t *testing.T) {
	var recs []byte
	for i := range 3 {
		r := kmsg.Record{TimestampDelta64: int64(i * 7), OffsetDelta: int32(i), Key: []byte{byte('a' + i)},
			Value: []byte(fmt.Sprint("value", i)), Headers: []kmsg.Header{{Key: "hk", Value: []byte("hv")}}}
		body := r.AppendTo(nil)
		// kmsg's Record.AppendTo writes the body without the length prefix's self-size; recompute.
		r.Length = int32(len(body) - varintLen(body))
		body = r.AppendTo(nil)
		recs = append(recs, body...)
	}
	kb := kmsg.RecordBatch{FirstOffset: 9, PartitionLeaderEpoch: 3, Magic: 2, LastOffsetDelta: 2,
		FirstTimestamp: 100, MaxTimestamp: 114, ProducerID: 77, ProducerEpoch: 1, FirstSequence: 5,
		NumRecords: 3, Records: recs}
	raw := kb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], ComputeCRC(raw))
	h, out, err := Records(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != 77 || h.BaseSequence != 5 || h.PartitionLeaderEpoch != 3 || len(out) != 3 ||
		string(out[2].Value) != "value2" || out[2].TimestampDelta != 14 || out[1].Headers[0].Key != "hk" {
		t.Fatalf("%+v %+v", h, out)
	}

	ours := Build(BatchSpec{BaseOffset: 1, BaseTimestamp: 50, ProducerID: -1, Records: sampleRecords()})
	var back kmsg.RecordBatch
	if err := back.ReadFrom(ours); err != nil {
		t.Fatal(err)
	}
	if back.NumRecords != 3 || uint32(back.CRC) != ComputeCRC(ours) || back.Length != int32(len(ours)-12) {
		t.Fatalf("%+v", back)
	}
	rest := back.Records
	for i := range 3 {
		l, n := binary.Varint(rest)
		var r kmsg.Record
		if err := r.ReadFrom(rest[:n+int(l)]); err != nil {
			t.Fatal(err)
		}
		if r.OffsetDelta != int32(i) || !bytes.Equal(r.Value, sampleRecords()[i].Value) {
			t.Fatalf("record %d: %+v", i, r)
		}
		rest = rest[n+int(l):]
	}
}

func varintLen(b []byte) int { _, n := binary.Varint(b); return n }

func TestValidateErrors(t *testing.T) {
	good := Build(BatchSpec{ProducerID: -1, Records: sampleRecords()})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"ok", good, nil},
		{"short", good[:HeaderSize-1], ErrCorrupt},
		{"empty", nil, ErrCorrupt},
		{"magic", mut(func(b []byte) []byte { b[16] = 1; return b }), ErrMagic},
		{"crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCRC},
		{"length long", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], uint32(len(b))); return b }), ErrCorrupt},
		{"length negative", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 0xffffffff); return b }), ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"count", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 7)
			binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
			return b
		}), ErrCorrupt},
		{"negative delta", mut(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
			binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
			return b
		}), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.batch)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRecordsCorrupt(t *testing.T) {
	good := Build(BatchSpec{ProducerID: -1, Records: sampleRecords()})
	for cut := HeaderSize; cut < len(good); cut++ {
		b := append([]byte(nil), good[:cut]...)
		binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
		binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
		if _, _, err := Records(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
	// A compressed batch whose payload is garbage.
	b := Build(BatchSpec{ProducerID: -1, Codec: CodecZstd, Records: sampleRecords()})
	b[HeaderSize+5] ^= 0xff
	binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
	if _, _, err := Records(b); err == nil {
		t.Fatal("garbage zstd decoded")
	}
}

func TestSplit(t *testing.T) {
	a := Build(BatchSpec{ProducerID: -1, Records: sampleRecords()[:1]})
	b := Build(BatchSpec{ProducerID: -1, Records: sampleRecords()})
	blob := append(append([]byte(nil), a...), b...)
	got, err := Split(blob)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("%v %d", err, len(got))
	}
	if got, err := Split(nil); err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	for _, bad := range [][]byte{blob[:len(blob)-1], blob[:len(a)+5], append(append([]byte(nil), a...), make([]byte, 12)...)} {
		if _, err := Split(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("want ErrCorrupt, got %v", err)
		}
	}
}

func TestSetters(t *testing.T) {
	b := Build(BatchSpec{ProducerID: -1, BaseTimestamp: 10, Records: sampleRecords()})
	SetBaseOffset(b, 1234)
	SetPartitionLeaderEpoch(b, 9)
	h, err := Validate(b)
	if err != nil || h.BaseOffset != 1234 || h.PartitionLeaderEpoch != 9 || h.LogAppendTime() {
		t.Fatal(h, err)
	}
	SetLogAppendTime(b, 999)
	h, recs, err := Records(b)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 999 || h.Timestamp(recs[0]) != 999 {
		t.Fatal(h, err)
	}
	tx := Build(BatchSpec{ProducerID: 5, Transactional: true, Control: true, Records: sampleRecords()[:1]})
	h, _ = ParseHeader(tx)
	if !h.Transactional() || !h.Control() {
		t.Fatal(h)
	}
}

func TestRawSnappyDetection(t *testing.T) {
	// A raw snappy block must not be mistaken for xerial framing and vice versa.
	payload := appendRecord(nil, 0, Record{Value: []byte("hello")})
	raw := snappy.Encode(nil, payload)
	if out, err := decodeSnappy(raw); err != nil || !bytes.Equal(out, payload) {
		t.Fatal(err)
	}
}

func seedBatches() [][]byte {
	var out [][]byte
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		out = append(out, Build(BatchSpec{ProducerID: -1, Codec: c, Records: sampleRecords()}))
	}
	out = append(out, Build(BatchSpec{ProducerID: -1, Codec: CodecSnappy, RawSnappy: true, Records: sampleRecords()}))
	return out
}

func FuzzRecords(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= HeaderSize {
			// Fix up the framing so the fuzzer reaches the record decoder.
			b[16] = 2
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
			binary.BigEndian.PutUint32(b[17:], ComputeCRC(b))
		}
		h, recs, err := Records(b)
		if err == nil && int32(len(recs)) != h.NumRecords {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
	})
}

func FuzzValidate(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err == nil && h.Size() != len(b) {
			t.Fatalf("size %d, len %d", h.Size(), len(b))
		}
		batches, err := Split(b)
		if err == nil {
			n := 0
			for _, x := range batches {
				n += len(x)
			}
			if n != len(b) {
				t.Fatalf("split covers %d of %d bytes", n, len(b))
			}
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz when MOLDAU_WRITE_SEEDS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("MOLDAU_WRITE_SEEDS") == "" {
		t.Skip("set MOLDAU_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	for _, target := range []string{"FuzzRecords", "FuzzValidate"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seedBatches() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
