package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Chunk is a run of response bytes: either Bytes, or Len bytes of File at Pos.
type Chunk struct {
	Bytes []byte
	File  *os.File
	Pos   int64
	Len   int64
}

// Size is the number of bytes the chunk contributes to the response.
func (c Chunk) Size() int64 {
	if c.File != nil {
		return c.Len
	}
	return int64(len(c.Bytes))
}

// Chunked is a response whose body the handler has already encoded as chunks, so that record
// data can go from segment files to the socket with sendfile, never through user space. The
// embedded Response names the API key and version (for the response header); its own encoding
// is not used.
type Chunked struct {
	kmsg.Response
	Chunks []Chunk
	// RecordBytes is, for a Fetch response, how many record bytes the chunks carry for each
	// partition: [t][p] for Topics[t].Partitions[p] of the embedded FetchResponse (whose
	// RecordBatches are empty where the chunks carry them). Metrics read it, so that counting
	// bytes out needs no decoding. Nil for other responses.
	RecordBytes [][]int64
}

// frameChunked prepends the frame header (size, correlation id, header tags) to the chunks.
func frameChunked(corr int32, r *Chunked) []Chunk {
	var size int64
	for _, c := range r.Chunks {
		size += c.Size()
	}
	hdr := make([]byte, 8, 9)
	if r.IsFlexible() && r.Key() != kmsg.ApiVersions.Int16() {
		hdr = append(hdr, 0)
	}
	putUint32(hdr[0:4], uint32(int64(len(hdr)-4)+size))
	putUint32(hdr[4:8], uint32(corr))
	return append([]Chunk{{Bytes: hdr}}, r.Chunks...)
}

func putUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// writeChunks writes consecutive byte chunks with one vectored write and file chunks with
// sendfile (or a plain copy where the connection is not a TCP socket).
func writeChunks(c net.Conn, chunks []Chunk) error {
	var bufs net.Buffers
	for _, ch := range chunks {
		if ch.File == nil {
			bufs = append(bufs, ch.Bytes)
			continue
		}
		if len(bufs) > 0 {
			if _, err := bufs.WriteTo(c); err != nil {
				return err
			}
			bufs = nil
		}
		if err := sendFile(c, ch.File, ch.Pos, ch.Len); err != nil {
			return err
		}
	}
	if len(bufs) > 0 {
		_, err := bufs.WriteTo(c)
		return err
	}
	return nil
}

// sendFile copies n bytes of f at pos to c. On a TCP connection it uses sendfile(2) with an
// explicit offset, so concurrent readers of the same file do not disturb each other's position.
func sendFile(c net.Conn, f *os.File, pos, n int64) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_, err := io.Copy(c, io.NewSectionReader(f, pos, n))
		return err
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	ctlErr := fc.Read(func(ffd uintptr) bool {
		werr = sc.Write(func(sfd uintptr) bool {
			for n > 0 {
				w, err := syscall.Sendfile(int(sfd), int(ffd), &pos, int(min(n, 1<<30)))
				if w > 0 {
					n -= int64(w)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket is writable, then continue
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					werr = fmt.Errorf("sendfile: %w", err)
					return true
				case w == 0:
					werr = fmt.Errorf("sendfile: %w", io.ErrUnexpectedEOF)
					return true
				}
			}
			return true
		})
		return true
	})
	if ctlErr != nil {
		return ctlErr
	}
	return werr
}
