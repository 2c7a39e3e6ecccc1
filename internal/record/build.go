package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// BatchSpec describes a batch for Encode and Build. Records get offset
// deltas 0..n-1 in order (their OffsetDelta field is ignored); MaxTimestamp is
// BaseTimestamp + the largest TimestampDelta.
type BatchSpec struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32
	Codec                Codec
	RawSnappy            bool // CodecSnappy: raw snappy block instead of xerial framing (Java's)
	Transactional        bool
	Control              bool
	BaseTimestamp        int64
	ProducerID           int64 // -1 for a non-idempotent producer
	ProducerEpoch        int16
	BaseSequence         int32
	Records              []Record
}

// Encode builds a valid v2 batch (CRC included) from spec.
func Encode(spec BatchSpec) ([]byte, error) {
	if len(spec.Records) == 0 {
		return nil, errors.New("encode batch: no records")
	}
	var body []byte
	maxDelta := spec.Records[0].TimestampDelta
	for i, r := range spec.Records {
		body = appendRecord(body, int32(i), r)
		maxDelta = max(maxDelta, r.TimestampDelta)
	}
	body, err := compress(spec.Codec, spec.RawSnappy, body)
	if err != nil {
		return nil, fmt.Errorf("encode batch: %s: %w", spec.Codec, err)
	}
	attrs := int16(spec.Codec) & attrCodecMask
	if spec.Transactional {
		attrs |= attrTransactional
	}
	if spec.Control {
		attrs |= attrControl
	}
	return assemble(BatchHeader{
		BaseOffset:           spec.BaseOffset,
		PartitionLeaderEpoch: spec.PartitionLeaderEpoch,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(spec.Records) - 1),
		BaseTimestamp:        spec.BaseTimestamp,
		MaxTimestamp:         spec.BaseTimestamp + maxDelta,
		ProducerID:           spec.ProducerID,
		ProducerEpoch:        spec.ProducerEpoch,
		BaseSequence:         spec.BaseSequence,
		NumRecords:           int32(len(spec.Records)),
	}, body), nil
}

// Rewrite re-encodes a stored batch with header h holding only recs, a subset
// of its records in offset order (the log cleaner's output). It keeps what
// Kafka's cleaner keeps: the base offset and lastOffsetDelta (so the batch
// still spans its original offsets and the producer's sequence range), each
// record's own offset and timestamp deltas, the base and max timestamps, the
// attributes (codec, timestamp type, transactional, control), the producer
// id, epoch and base sequence, and the partition leader epoch. The records
// are compressed again with the batch's codec (rawSnappy picks the raw block
// format over xerial framing). With no records it writes an empty
// uncompressed batch, which Kafka keeps to preserve a producer's last
// sequence number.
func Rewrite(h BatchHeader, recs []Record, rawSnappy bool) ([]byte, error) {
	var body []byte
	for _, r := range recs {
		if r.OffsetDelta < 0 || r.OffsetDelta > h.LastOffsetDelta {
			return nil, fmt.Errorf("rewrite batch at offset %d: offset delta %d outside [0, %d]: %w",
				h.BaseOffset, r.OffsetDelta, h.LastOffsetDelta, ErrCorrupt)
		}
		body = appendRecord(body, r.OffsetDelta, r)
	}
	if len(recs) == 0 {
		h.Attributes &^= attrCodecMask
	} else {
		var err error
		if body, err = compress(h.Codec(), rawSnappy, body); err != nil {
			return nil, fmt.Errorf("rewrite batch at offset %d: %s: %w", h.BaseOffset, h.Codec(), err)
		}
	}
	h.NumRecords = int32(len(recs))
	return assemble(h, body), nil
}

// assemble writes h's fields (magic 2; length, record count from h and the
// CRC computed) in front of body, an encoded, possibly compressed, records
// section.
func assemble(h BatchHeader, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
	be.PutUint32(b[offLength:], uint32(HeaderSize-lengthFieldEnd+len(body)))
	be.PutUint32(b[offPartitionLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], uint16(h.Attributes))
	be.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	be.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
	be.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
	be.PutUint64(b[offProducerID:], uint64(h.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
	be.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
	be.PutUint32(b[offNumRecords:], uint32(h.NumRecords))
	b = append(b, body...)
	be.PutUint32(b[offCRC:], ComputeCRC(b))
	return b
}

// IsRawSnappy reports whether a snappy batch's records are a raw snappy block
// rather than xerial-framed (as Java's producer writes them).
func IsRawSnappy(batch []byte) bool {
	return len(batch) > HeaderSize && !bytes.HasPrefix(batch[HeaderSize:], xerialMagic)
}

// Build is Encode for tests and tools: it panics if spec cannot be encoded
// (no records, or an unknown codec), which is a bug in the caller.
func Build(spec BatchSpec) []byte {
	b, err := Encode(spec)
	if err != nil {
		panic(err)
	}
	return b
}

func appendRecord(dst []byte, offsetDelta int32, r Record) []byte {
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendBytes(body, r.Key)
	body = appendBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = appendBytes(body, h.Value)
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

func appendBytes(dst, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(v)))
	return append(dst, v...)
}

func compress(codec Codec, rawSnappy bool, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return src, nil
	case CodecGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		if rawSnappy {
			return snappy.Encode(nil, src), nil
		}
		out := append([]byte{}, xerialMagic...)
		out = binary.BigEndian.AppendUint32(out, 1) // version
		out = binary.BigEndian.AppendUint32(out, 1) // compatible version
		const block = 32 << 10                      // snappy-java's default block size
		for len(src) > 0 {
			n := min(block, len(src))
			enc := snappy.Encode(nil, src[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
			out = append(out, enc...)
			src = src[n:]
		}
		return out, nil
	case CodecLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CodecZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			return nil, err
		}
		defer enc.Close()
		return enc.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("unknown codec %d", int8(codec))
}
