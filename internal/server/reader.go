package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Frame reading. A frame is read into memory as its bytes arrive, never allocated from its size
// prefix alone: the first chunk is at most firstChunk bytes, and each next chunk is as large as
// what has been received so far, at most maxChunk. So a frame that announces 100 MB and sends
// 20 MB holds about 20 MB (less than 21 MB), and a frame that arrives whole costs one extra copy
// when it is larger than firstChunk (its chunks are joined, because kmsg decodes from one slice),
// except when it fits the connection's reused Produce buffer, which it is read into directly.
const (
	firstChunk = 64 << 10
	maxChunk   = 1 << 20
)

// firstRequestMaxBytes caps the first frame of a connection, unless that frame is a Produce.
//
// Every frame's request header (API key and version) is checked as soon as its first bytes
// arrive, so bytes that are not a request Moldau serves close the connection before more of them
// are buffered. On top of that, until the connection has had one request handled, a frame that
// announces more than firstRequestMaxBytes closes the connection unless it is a Produce. Real
// clients open with ApiVersions (a few hundred bytes); those that skip it (sarama below V2_4_0,
// librdkafka with api.version.request=false) open with Metadata or, on a connection to a
// partition leader, with a Produce of any size up to socket.request.max.bytes: that is why
// Produce is exempt. Other first requests over 1 MiB (Metadata naming ~50 000 topics) are not
// something a real client sends before ApiVersions. Kafka itself caps only SASL's unauthenticated
// frames (sasl.server.max.receive.size, 512 KiB).
const firstRequestMaxBytes = 1 << 20

// conn is one client connection: the reader's state and what the writer tells it.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string

	charge  charge  // the budget held by the frame being read or handled
	sizeBuf [4]byte // the frame size prefix
	buf     []byte  // the request buffer, reused from one Produce to the next
	served  bool    // a request was handled: firstRequestMaxBytes no longer applies

	// deadline is the current frame's read deadline (zero: no idle timeout).
	deadline time.Time

	// Written by the writer, read by the reader for the idle timeout.
	pending   atomic.Int32 // responses queued and not yet written
	lastWrite atomic.Int64 // when the last write ended, unix nanoseconds
}

// errClosing is returned by readFrame when it refused a frame (and logged why).
var errClosing = errors.New("closing connection")

// readFrame reads the next request frame and returns its body (after the size prefix). The
// frame's bytes are charged to the budget as they are read; the caller gives the charge back
// when the request has been handled.
//
// With connections.max.idle.ms set, the connection is closed when nothing arrives for that long
// while no response is being written (idle), and when a frame has begun but is not received in
// full within that time, not counting the time the reader waited for budget (a client trickling
// a frame forever).
func (c *conn) readFrame(ctx context.Context) ([]byte, error) {
	if err := c.readSize(c.sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(c.sizeBuf[:]))
	if size < 8 || (c.s.cfg.MaxRequestBytes > 0 && size > c.s.cfg.MaxRequestBytes) {
		c.s.log.Warn("closing connection: request frame size out of range",
			"remote", c.remote, "size", size, "socket.request.max.bytes", c.s.cfg.MaxRequestBytes)
		return nil, errClosing
	}
	return c.readBody(ctx, int(size))
}

// readSize reads the 4-byte size prefix, under the idle timeout until its first byte arrives.
func (c *conn) readSize(p []byte) error {
	idle := c.s.cfg.IdleTimeout
	if idle <= 0 {
		_, err := io.ReadFull(c.nc, p)
		return err
	}
	c.nc.SetReadDeadline(time.Now().Add(idle))
	n := 0
	for n == 0 {
		m, err := c.nc.Read(p)
		n += m
		if m > 0 {
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		// Not idle while a response is being written, nor for idle after the last write.
		now := time.Now()
		next := time.Unix(0, c.lastWrite.Load()).Add(idle)
		if c.pending.Load() > 0 {
			next = now.Add(idle)
		}
		if !next.After(now) {
			c.s.log.Debug("closing idle connection", "remote", c.remote, "connections.max.idle.ms", idle.Milliseconds())
			return errClosing
		}
		c.nc.SetReadDeadline(next)
	}
	c.deadline = time.Now().Add(idle)
	c.nc.SetReadDeadline(c.deadline)
	if _, err := io.ReadFull(c.nc, p[n:]); err != nil {
		return c.readErr(err)
	}
	return nil
}

// readErr logs a frame that did not arrive in time; any other error closes quietly.
func (c *conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.log.Info("closing connection: request not received within connections.max.idle.ms",
			"remote", c.remote, "connections.max.idle.ms", c.s.cfg.IdleTimeout.Milliseconds())
		return errClosing
	}
	return err
}

// chunkSize is the size of the next chunk of a frame of size bytes, got of them received.
func chunkSize(got, size int) int {
	return min(size-got, max(firstChunk, min(got, maxChunk)))
}

// readBody reads a frame's size bytes chunk by chunk, charging each chunk to the budget before
// reading into it.
func (c *conn) readBody(ctx context.Context, size int) ([]byte, error) {
	b := &c.s.limits.budget
	c.charge.small = int64(size) <= b.small
	var whole []byte // the frame's buffer, when it is read in place
	if cap(c.buf) >= size {
		whole = c.buf[:size]
	} else if size <= firstChunk {
		whole = make([]byte, size)
	}
	var chunks [][]byte
	for got := 0; got < size; {
		step := chunkSize(got, size)
		waited, err := b.take(ctx, &c.charge, int64(step))
		if err != nil {
			return nil, err
		}
		if waited > 0 && !c.deadline.IsZero() {
			c.deadline = c.deadline.Add(waited)
			c.nc.SetReadDeadline(c.deadline)
		}
		var dst []byte
		if whole != nil {
			dst = whole[got : got+step]
		} else {
			dst = make([]byte, step)
			chunks = append(chunks, dst)
		}
		n := 0
		if got == 0 {
			// The request header first: a frame that is no request of ours is refused before
			// more of it is buffered.
			if n, err = io.ReadAtLeast(c.nc, dst, 4); err != nil {
				return nil, c.readErr(err)
			}
			if err := c.checkHeader(dst[:4], size); err != nil {
				return nil, err
			}
		}
		if _, err := io.ReadFull(c.nc, dst[n:]); err != nil {
			return nil, c.readErr(err)
		}
		got += step
	}
	if chunks != nil {
		whole = make([]byte, size)
		off := 0
		for _, ch := range chunks {
			off += copy(whole[off:], ch)
		}
	}
	return whole, nil
}

// checkHeader checks the API key and version at the start of a frame of size bytes, and the
// first-request cap (see firstRequestMaxBytes).
func (c *conn) checkHeader(hdr []byte, size int) error {
	key := int16(binary.BigEndian.Uint16(hdr[0:2]))
	version := int16(binary.BigEndian.Uint16(hdr[2:4]))
	if err := c.s.checkAPI(key, version); err != nil {
		c.s.log.Info("closing connection: undecodable request", "remote", c.remote, "err", err)
		return errClosing
	}
	if !c.served && size > firstRequestMaxBytes && key != kmsg.Produce.Int16() {
		c.s.log.Warn("closing connection: first request too large",
			"remote", c.remote, "api_key", key, "size", size, "limit", firstRequestMaxBytes)
		return errClosing
	}
	return nil
}

// checkAPI reports whether a request with this API key and version can be decoded and handled:
// ApiVersions at any version (an unsupported one is answered as KIP-511 says), other known keys
// at a version the handler supports.
func (s *Server) checkAPI(key, version int16) error {
	if key == kmsg.ApiVersions.Int16() {
		return nil
	}
	if kmsg.NameForKey(key) == "Unknown" {
		return fmt.Errorf("unknown api key %d", key)
	}
	if !s.handler.SupportedVersion(key, version) {
		return fmt.Errorf("unsupported version %d of api key %d", version, key)
	}
	return nil
}
