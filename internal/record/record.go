// Package record parses, validates and rewrites Kafka v2 record batches
// (magic 2, the only format Moldau stores) and decodes the records inside
// them.
//
// Batches travel through the broker as raw bytes. The hot path (produce →
// log) only parses the 61-byte header, checks the CRC and rewrites a few
// header fields in place; Records, which decompresses and decodes every
// record, is for the few places that need record contents (timestamp
// lookups, compaction, tools and tests).
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a v2 batch header in bytes.
const HeaderSize = 61

// Byte offsets of the header fields.
const (
	offBaseOffset           = 0
	offLength               = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21
	offLastOffsetDelta      = 23
	offBaseTimestamp        = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57
)

// lengthFieldEnd is where the bytes counted by the length field start.
const lengthFieldEnd = 12

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Errors returned (wrapped with context) for bad batches.
var (
	ErrCorrupt = errors.New("corrupt record batch")
	ErrCRC     = errors.New("record batch CRC mismatch")
	ErrMagic   = errors.New("unsupported record batch magic")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec of a batch (attributes & 7).
type Codec int8

// Compression codecs, as numbered by Kafka.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// BatchHeader is the decoded 61-byte v2 batch header.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // batchLength field: bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the number of bytes of the whole batch: 12 + Length.
func (h BatchHeader) Size() int { return lengthFieldEnd + int(h.Length) }

// Codec is the compression codec (attributes & 7).
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the timestamps are broker-assigned (attributes bit 3).
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports attributes bit 4.
func (h BatchHeader) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports attributes bit 5 (transaction markers).
func (h BatchHeader) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset is BaseOffset + LastOffsetDelta.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// ParseHeader decodes the header at the start of b. It needs len(b) >= HeaderSize
// and does not check the CRC, the magic or the length.
func ParseHeader(b []byte) (BatchHeader, error) {
	if len(b) < HeaderSize {
		return BatchHeader{}, fmt.Errorf("batch header: %d bytes, need %d: %w", len(b), HeaderSize, ErrCorrupt)
	}
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offPartitionLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// ComputeCRC returns the CRC-32C of batch[21:] (attributes to the end), the
// value the CRC field must hold. It needs len(batch) >= HeaderSize.
func ComputeCRC(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// Validate checks that batch is exactly one well-formed v2 batch: magic 2, a
// length field matching len(batch), the CRC-32C, lastOffsetDelta >= 0 and
// numRecords == lastOffsetDelta+1 (Kafka's producers always send contiguous
// offset deltas; compacted batches may hold fewer records, but those never
// come from a client). It returns the parsed header.
func Validate(batch []byte) (BatchHeader, error) {
	h, err := checkFrame(batch)
	if err != nil {
		return h, err
	}
	if h.NumRecords != h.LastOffsetDelta+1 {
		return h, fmt.Errorf("batch at offset %d: %d records but lastOffsetDelta %d: %w",
			h.BaseOffset, h.NumRecords, h.LastOffsetDelta, ErrCorrupt)
	}
	return h, nil
}

// ValidateStored is Validate without the numRecords == lastOffsetDelta+1 rule,
// for batches read back from a log (compaction may remove records from a batch
// and keep its offset range).
func ValidateStored(batch []byte) (BatchHeader, error) {
	h, err := checkFrame(batch)
	if err != nil {
		return h, err
	}
	if h.NumRecords < 0 || h.NumRecords > h.LastOffsetDelta+1 {
		return h, fmt.Errorf("batch at offset %d: %d records but lastOffsetDelta %d: %w",
			h.BaseOffset, h.NumRecords, h.LastOffsetDelta, ErrCorrupt)
	}
	return h, nil
}

func checkFrame(batch []byte) (BatchHeader, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return h, err
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("batch at offset %d: magic %d: %w", h.BaseOffset, h.Magic, ErrMagic)
	}
	if h.Length < HeaderSize-lengthFieldEnd || int64(h.Length)+lengthFieldEnd != int64(len(batch)) {
		return h, fmt.Errorf("batch at offset %d: length field %d, batch is %d bytes: %w",
			h.BaseOffset, h.Length, len(batch), ErrCorrupt)
	}
	if got := ComputeCRC(batch); got != h.CRC {
		return h, fmt.Errorf("batch at offset %d: crc %08x, computed %08x: %w", h.BaseOffset, h.CRC, got, ErrCRC)
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("batch at offset %d: lastOffsetDelta %d: %w", h.BaseOffset, h.LastOffsetDelta, ErrCorrupt)
	}
	return h, nil
}

// Split walks a records blob (a produce request's partition records, or a
// fetch response's) and returns each whole batch as a sub-slice of records,
// without copying. It checks only the framing (length fields); a trailing
// partial batch or a bad length is an ErrCorrupt.
func Split(records []byte) ([][]byte, error) {
	var out [][]byte
	for pos := 0; pos < len(records); {
		rest := records[pos:]
		if len(rest) < lengthFieldEnd {
			return out, fmt.Errorf("records at byte %d: %d trailing bytes: %w", pos, len(rest), ErrCorrupt)
		}
		length := int32(binary.BigEndian.Uint32(rest[offLength:]))
		if length < HeaderSize-lengthFieldEnd {
			return out, fmt.Errorf("records at byte %d: batch length %d: %w", pos, length, ErrCorrupt)
		}
		size := int64(length) + lengthFieldEnd
		if size > int64(len(rest)) {
			return out, fmt.Errorf("records at byte %d: batch of %d bytes, %d left: %w", pos, size, len(rest), ErrCorrupt)
		}
		out = append(out, rest[:size:size])
		pos += int(size)
	}
	return out, nil
}

// SetBaseOffset rewrites the base offset in place (not covered by the CRC).
// It needs len(batch) >= HeaderSize.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch in place (not
// covered by the CRC). It needs len(batch) >= HeaderSize.
func SetPartitionLeaderEpoch(batch []byte, e int32) {
	binary.BigEndian.PutUint32(batch[offPartitionLeaderEpoch:], uint32(e))
}

// SetLogAppendTime sets the LogAppendTime attribute bit and the max timestamp
// to ts, then recomputes the CRC. It needs len(batch) >= HeaderSize.
func SetLogAppendTime(batch []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(batch[offAttributes:]) | attrLogAppendTime
	be.PutUint16(batch[offAttributes:], attrs)
	be.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	be.PutUint32(batch[offCRC:], ComputeCRC(batch))
}
