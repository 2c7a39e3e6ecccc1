package integration

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Raw protocol helpers: frames written by hand, for requests no well-behaved client sends.

// wireConn is one raw TCP connection to the broker.
type wireConn struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func dialWire(t *testing.T, addr string) *wireConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &wireConn{t: t, conn: c}
}

// writeRaw writes bytes as they are: a size prefix is the caller's business.
func (w *wireConn) writeRaw(b []byte) {
	w.t.Helper()
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := w.conn.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// writeFrame writes a size prefix and body.
func (w *wireConn) writeFrame(body []byte) {
	w.t.Helper()
	w.writeRaw(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
	w.writeRaw(body)
}

// request sends req at the version it is set to and decodes the response.
func (w *wireConn) request(req kmsg.Request) kmsg.Response {
	w.t.Helper()
	w.corr++
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("moldau-integration")).AppendRequest(nil, req, w.corr)
	w.writeRaw(frame)
	body := w.readFrame()
	if got := int32(binary.BigEndian.Uint32(body)); got != w.corr {
		w.t.Fatalf("%s response: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, w.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() { // response header tags
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		body = r.Src
	}
	if err := resp.ReadFrom(body); err != nil {
		w.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// readFrame reads one size-prefixed frame.
func (w *wireConn) readFrame() []byte {
	w.t.Helper()
	_ = w.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(w.conn, size[:]); err != nil {
		w.t.Fatalf("read response size: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(w.conn, body); err != nil {
		w.t.Fatalf("read response: %v", err)
	}
	return body
}

// expectClosed checks that the broker closes the connection without answering.
func (w *wireConn) expectClosed(what string) {
	w.t.Helper()
	_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := w.conn.Read(buf)
	switch {
	case n > 0:
		w.t.Errorf("%s: the broker answered %d bytes (%x...), want the connection closed", what, n, buf[:n])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		// closed, as Kafka does
	default:
		w.t.Errorf("%s: want the connection closed, read returned %v", what, err)
	}
}

// requestHeader is a v1 request header (no tags): api key, version, correlation id, client id.
func requestHeader(key, version int16, corr int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	return append(b, clientID...)
}

// recordBatch encodes an uncompressed v2 record batch of records (key, value) with a correct
// length and CRC, as a producer would send it.
func recordBatch(timestamp int64, kvs ...[2]string) []byte {
	var recs []byte
	for i, kv := range kvs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(kv[0]), Value: []byte(kv[1])}
		body := r.AppendTo(nil) // Length 0: one byte of varint, replaced below
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	batch := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(kvs) - 1),
		FirstTimestamp:       timestamp,
		MaxTimestamp:         timestamp,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(kvs)),
		Records:              recs,
	}
	b := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12))                                          // Length: what follows it
	binary.BigEndian.PutUint32(b[17:21], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))) // CRC from Attributes on
	return b
}

// batchInfo is the header of one stored record batch.
type batchInfo struct {
	BaseOffset int64
	Codec      int16 // attributes & 7: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	Records    int32
}

// storedBatches fetches partition from offset 0 over a raw connection (Fetch v12, topic by name)
// and returns the headers of the record batches exactly as the broker serves them.
func storedBatches(t *testing.T, addr, topic string, partition int32) []batchInfo {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = 64 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = 64 << 20
	rp.CurrentLeaderEpoch = -1
	rp.LastFetchedEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := dialWire(t, addr).request(req).(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch %s-%d: error %s, %d topics", topic, partition, codeName(resp.ErrorCode), len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch %s-%d: %s", topic, partition, codeName(p.ErrorCode))
	}
	var out []batchInfo
	for b := p.RecordBatches; len(b) >= 61; {
		length := int(int32(binary.BigEndian.Uint32(b[8:12])))
		if 12+length > len(b) {
			break // a partial batch at the end of the response
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:12+length]); err != nil {
			t.Fatalf("fetch %s-%d: decode batch: %v", topic, partition, err)
		}
		out = append(out, batchInfo{BaseOffset: rb.FirstOffset, Codec: rb.Attributes & 7, Records: rb.NumRecords})
		b = b[12+length:]
	}
	return out
}

func (b batchInfo) String() string {
	return fmt.Sprintf("{base %d, codec %d, %d records}", b.BaseOffset, b.Codec, b.Records)
}
