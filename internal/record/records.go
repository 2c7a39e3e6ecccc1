package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxUncompressedSize bounds the decompressed size of one batch's records,
// so a small compressed batch cannot make the broker allocate without limit.
const MaxUncompressedSize = 256 << 20

// Record is one decoded record. Key and Value are nil for a null key or
// value; they alias the batch (uncompressed) or a decompression buffer, so
// copy them to keep them beyond the batch's lifetime.
type Record struct {
	OffsetDelta    int32
	TimestampDelta int64
	Key, Value     []byte
	Headers        []Header
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// Timestamp returns the timestamp of r within a batch with header h: the
// batch max timestamp under LogAppendTime, else base timestamp + delta.
func (h BatchHeader) Timestamp(r Record) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.BaseTimestamp + r.TimestampDelta
}

// Records validates batch (as ValidateStored does), decompresses its records
// and decodes every one. The number of records decoded must equal the
// header's record count and the data must have no trailing bytes.
func Records(batch []byte) (BatchHeader, []Record, error) {
	h, err := ValidateStored(batch)
	if err != nil {
		return h, nil, err
	}
	data, err := decompress(h.Codec(), batch[HeaderSize:])
	if err != nil {
		return h, nil, fmt.Errorf("batch at offset %d: %s: %w", h.BaseOffset, h.Codec(), err)
	}
	n := int(h.NumRecords)
	// A record takes at least 7 bytes; do not trust the count for the allocation.
	if limit := len(data)/7 + 1; n > limit {
		n = limit
	}
	recs := make([]Record, 0, n)
	for len(data) > 0 {
		if int32(len(recs)) >= h.NumRecords {
			return h, nil, fmt.Errorf("batch at offset %d: %d trailing bytes after %d records: %w",
				h.BaseOffset, len(data), h.NumRecords, ErrCorrupt)
		}
		var r Record
		r, data, err = decodeRecord(data)
		if err != nil {
			return h, nil, fmt.Errorf("batch at offset %d, record %d: %w", h.BaseOffset, len(recs), err)
		}
		if r.OffsetDelta < 0 || r.OffsetDelta > h.LastOffsetDelta {
			return h, nil, fmt.Errorf("batch at offset %d, record %d: offset delta %d outside [0, %d]: %w",
				h.BaseOffset, len(recs), r.OffsetDelta, h.LastOffsetDelta, ErrCorrupt)
		}
		recs = append(recs, r)
	}
	if int32(len(recs)) != h.NumRecords {
		return h, nil, fmt.Errorf("batch at offset %d: header says %d records, found %d: %w",
			h.BaseOffset, h.NumRecords, len(recs), ErrCorrupt)
	}
	return h, recs, nil
}

// decodeRecord decodes the record at the start of b and returns the rest.
func decodeRecord(b []byte) (Record, []byte, error) {
	var r Record
	length, n := binary.Varint(b)
	if n <= 0 || length < 0 || length > int64(len(b)-n) {
		return r, nil, fmt.Errorf("record length: %w", ErrCorrupt)
	}
	body, rest := b[n:n+int(length)], b[n+int(length):]
	d := decoder{b: body}
	d.byte() // attributes: unused in v2
	r.TimestampDelta = d.varlong()
	r.OffsetDelta = d.varint32()
	r.Key = d.bytes()
	r.Value = d.bytes()
	nh := d.varint32()
	if nh < 0 || int(nh) > len(d.b)/2 {
		d.err = true
	}
	if !d.err && nh > 0 {
		r.Headers = make([]Header, 0, nh)
		for i := int32(0); i < nh && !d.err; i++ {
			k := d.bytes()
			if k == nil {
				d.err = true // header keys are non-null strings
				break
			}
			r.Headers = append(r.Headers, Header{Key: string(k), Value: d.bytes()})
		}
	}
	if d.err {
		return r, nil, fmt.Errorf("record body: %w", ErrCorrupt)
	}
	if len(d.b) != 0 {
		return r, nil, fmt.Errorf("record body: %d trailing bytes: %w", len(d.b), ErrCorrupt)
	}
	return r, rest, nil
}

// decoder reads zig-zag varints and length-prefixed bytes; any failure sets err
// and makes every later read return zero values.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if d.err || len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varlong() int64 {
	if d.err {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint32() int32 {
	v := d.varlong()
	if v != int64(int32(v)) {
		d.err = true
		return 0
	}
	return int32(v)
}

// bytes reads a varint length and that many bytes; length -1 is null (nil).
func (d *decoder) bytes() []byte {
	l := d.varlong()
	if d.err || l == -1 {
		return nil
	}
	if l < -1 || l > int64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:l:l]
	d.b = d.b[l:]
	return v
}

// xerialMagic starts the framing that Java clients (snappy-java) put around
// snappy blocks; librdkafka and Go clients send raw snappy.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
)

func zstdDecoder() (*zstd.Decoder, error) {
	zstdOnce.Do(func() {
		zstdDec, zstdErr = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxUncompressedSize))
	})
	return zstdDec, zstdErr
}

func decompress(c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		return readAllLimited(zr)
	case CodecSnappy:
		return decodeSnappy(src)
	case CodecLZ4:
		return readAllLimited(lz4.NewReader(bytes.NewReader(src)))
	case CodecZstd:
		dec, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		out, err := dec.DecodeAll(src, nil)
		if err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown codec %d: %w", int8(c), ErrCorrupt)
}

func readAllLimited(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, MaxUncompressedSize+1))
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if len(out) > MaxUncompressedSize {
		return nil, fmt.Errorf("more than %d bytes uncompressed: %w", MaxUncompressedSize, ErrCorrupt)
	}
	return out, nil
}

func decodeSnappyBlock(dst, src []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if n < 0 || n > MaxUncompressedSize-len(dst) {
		return nil, fmt.Errorf("snappy block of %d bytes: %w", n, ErrCorrupt)
	}
	out, err := snappy.Decode(nil, src)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if dst == nil {
		return out, nil
	}
	return append(dst, out...), nil
}

// decodeSnappy handles both raw snappy and xerial framing: a 16-byte header
// (magic, version, compatible version) then blocks of int32 length + snappy.
func decodeSnappy(src []byte) ([]byte, error) {
	if len(src) < 16 || !bytes.Equal(src[:8], xerialMagic) {
		return decodeSnappyBlock(nil, src)
	}
	src = src[16:]
	out := []byte{}
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, fmt.Errorf("xerial snappy: truncated block length: %w", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return nil, fmt.Errorf("xerial snappy: block of %d bytes, %d left: %w", n, len(src), ErrCorrupt)
		}
		var err error
		if out, err = decodeSnappyBlock(out, src[:n]); err != nil {
			return nil, err
		}
		src = src[n:]
	}
	return out, nil
}
