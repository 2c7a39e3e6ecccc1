// Package server accepts Kafka protocol connections, frames and decodes requests with kmsg, hands
// them to a Handler in order, and writes the responses back in request order.
//
// Per connection there is one reader goroutine and one writer goroutine. The reader decodes a
// request, calls the handler (which may block: long-poll fetch, acks=all, group joins) and queues
// the response for the writer, so a connection's responses always leave in the order its requests
// arrived, as the Kafka protocol requires. While the writer sends one response, the reader is
// already decoding and handling the next request. The writer sends every response queued at that
// moment with one vectored write (writev), record data from segment files by sendfile.
//
// Memory and connections are bounded (limits.go, reader.go): a frame is read as its bytes arrive,
// charged to a broker-wide budget (queued.max.request.bytes) until its request has been handled,
// and a reader whose next chunk does not fit stops reading its socket; idle connections and frames
// that do not arrive in time are closed (connections.max.idle.ms); the accept loop waits at
// max.connections and closes a connection over max.connections.per.ip.
//
// Locks: Server.mu, budget.mu and connLimiter.mu are each taken alone, never one inside another.
package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request with the header fields a handler needs.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	Msg           kmsg.Request
	// RemoteAddr is the client's address ("host:port").
	RemoteAddr string
	// Listener is the name of the listener the request arrived on ("PLAINTEXT").
	Listener string
	// remote is the nanoseconds handling it waited on others (Waited).
	remote atomic.Int64
}

// Waited records that handling the request spent d waiting on something other than this
// broker's own work: replicas catching up (acks=all), new records (a fetch's long poll). It is
// Kafka's RemoteTimeMs (the time a request spends in purgatory); the rest of the handler's time
// is LocalTimeMs. Safe for concurrent use; waits that overlap must be recorded once.
func (r *Request) Waited(d time.Duration) { r.remote.Add(int64(d)) }

// Timing is when a request passed each stage on its way through the server, from which Kafka's
// RequestMetrics times (RequestQueueTimeMs … ResponseSendTimeMs) are computed.
type Timing struct {
	Received time.Time // its frame was read in full
	Handling time.Time // decoded and handed to the handler
	Handled  time.Time // the handler returned: the response is queued for the writer
	Sending  time.Time // the writer began writing the response (Handled when there is none)
	Sent     time.Time // the response is written (Handled when there is none)
	// Remote is the part of Handled − Handling that the handler waited on others
	// (Request.Waited).
	Remote time.Duration
}

// Observer is told of every handled request once its response is written, or when the handler
// returns if there is none (acks=0). A response lost with its connection is not observed. It
// runs on the connection's goroutines, so it must be quick.
type Observer interface {
	Observe(req *Request, resp kmsg.Response, t *Timing)
}

// Handler answers requests. A nil response with a nil error means "send nothing" (acks=0 produce).
// A non-nil error closes the connection: use it only where Kafka closes the connection, never for
// errors that have a Kafka error code.
type Handler interface {
	Handle(ctx context.Context, req *Request) (kmsg.Response, error)
	// SupportedVersion reports whether the handler implements this API key at this version.
	SupportedVersion(key, version int16) bool
	// UnsupportedApiVersions answers an ApiVersions request whose version is not supported
	// (KIP-511: a v0 response with UNSUPPORTED_VERSION).
	UnsupportedApiVersions(req *Request) kmsg.Response
}

// Config configures a Server.
type Config struct {
	// Addr is the TCP address to listen on, "host:port".
	Addr string
	// Ln, when set, is an already bound listener to serve instead of binding Addr.
	Ln net.Listener
	// Listener names the listener, e.g. "PLAINTEXT".
	Listener string
	// MaxRequestBytes is socket.request.max.bytes: a frame larger than this closes the connection.
	MaxRequestBytes int32
	// IdleTimeout is connections.max.idle.ms: a connection with nothing received and no response
	// being written for this long is closed, and so is one whose frame, once begun, is not
	// received in full within it (see conn.readFrame). <= 0: never.
	IdleTimeout time.Duration
	// Limits is the broker-wide request memory budget and connection caps, shared with the
	// broker's other listeners. Nil: no limits.
	Limits *Limits
	// Observer, when set, is told of every handled request with its timing.
	Observer Observer
	Logger   *slog.Logger
}

// Server is a Kafka protocol listener.
type Server struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	limits  *Limits

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup // accept loop + every connection's goroutines

	// Connections served: open now, accepted since start, closed since start.
	// INVARIANT: open == accepted − closed, once every serveConn has returned.
	open             atomic.Int64
	accepted, closed atomic.Uint64
}

// ConnectionStats is the listener's connections: open now, and accepted and closed since it
// started (a connection refused over max.connections.per.ip is neither).
func (s *Server) ConnectionStats() (open int64, accepted, closed uint64) {
	return s.open.Load(), s.accepted.Load(), s.closed.Load()
}

// Listener is the listener's name ("PLAINTEXT").
func (s *Server) Listener() string { return s.cfg.Listener }

// New returns a server that is not yet listening.
func New(cfg Config, h Handler) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Listener == "" {
		cfg.Listener = "PLAINTEXT"
	}
	limits := cfg.Limits
	if limits == nil {
		limits = unlimited(cfg.Logger)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, handler: h, log: cfg.Logger, limits: limits, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]struct{})}
}

// Listen binds the listening socket.
func (s *Server) Listen() error {
	if s.cfg.Ln != nil {
		s.ln = s.cfg.Ln
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address; valid after Listen.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown. It returns nil after Shutdown, at once when
// Shutdown came first.
func (s *Server) Serve() error {
	// The accept loop joins wg under mu, where Shutdown sees it before its Wait: an Add from a
	// counter of zero must happen before the Wait (sync.WaitGroup), and Serve usually runs on a
	// goroutine of its own that may start after Shutdown was called.
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		// At max.connections this waits, as Kafka's acceptor does, for a connection to close;
		// over max.connections.per.ip the connection is closed at once.
		addr := remoteAddr(c)
		if !s.limits.conns.admit(s.ctx, addr) {
			c.Close()
			continue
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			s.limits.conns.release(addr)
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		s.open.Add(1)
		go s.serveConn(c, addr)
	}
}

// Shutdown stops accepting, closes every connection and waits for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.cancel() // under mu: a Serve or an accepted connection that sees ctx live has joined wg
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// response is a queued, fully encoded response frame: buf, or chunks for a Chunked response;
// with the request and response, and the request's timing so far, for the Observer.
type response struct {
	buf    []byte
	chunks []Chunk
	req    *Request
	resp   kmsg.Response
	timing Timing
}

// appendTo appends the response's bytes as chunks.
func (r response) appendTo(chunks []Chunk) []Chunk {
	if r.chunks != nil {
		return append(chunks, r.chunks...)
	}
	return append(chunks, Chunk{Bytes: r.buf})
}

// maxChunksPerWrite bounds how many chunks the writer gathers into one write (IOV_MAX is 1024).
const maxChunksPerWrite = 512

func (s *Server) serveConn(nc net.Conn, addr netip.Addr) {
	defer s.wg.Done()
	c := &conn{s: s, nc: nc, remote: nc.RemoteAddr().String()}
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
		s.limits.budget.giveBack(&c.charge)
		s.limits.conns.release(addr)
		s.open.Add(-1)
		s.closed.Add(1)
	}()

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	// The writer owns the write side of nc; the reader closes out when it stops, and the writer
	// drains what is queued, then exits. A write error cancels ctx so a blocked handler returns.
	out := make(chan response, 64)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var chunks []Chunk
		var batch []response
		for r := range out {
			// Every response already queued goes out with this one: their bytes in one vectored
			// write (record data from files by sendfile in between).
			chunks = r.appendTo(chunks[:0])
			batch = append(batch[:0], r)
			for more := true; more && len(chunks) < maxChunksPerWrite; {
				select {
				case r, ok := <-out:
					if !ok {
						more = false
						break
					}
					chunks = r.appendTo(chunks)
					batch = append(batch, r)
				default:
					more = false
				}
			}
			sending := time.Now()
			err := writeChunks(nc, chunks)
			sent := time.Now()
			c.lastWrite.Store(sent.UnixNano())
			c.pending.Add(-int32(len(batch)))
			if err == nil && s.cfg.Observer != nil {
				for i := range batch {
					t := &batch[i].timing
					t.Sending, t.Sent = sending, sent
					s.cfg.Observer.Observe(batch[i].req, batch[i].resp, t)
				}
			}
			clear(batch) // drop the references to requests and responses until the next write
			if err != nil {
				cancel()
				nc.Close()
				for range out {
				}
				return
			}
		}
	}()
	defer func() {
		close(out)
		<-writerDone
	}()

	for {
		body, err := c.readFrame(ctx)
		if err != nil {
			return
		}
		received := time.Now()
		req, err := s.decode(body, c.remote)
		if err != nil {
			s.log.Info("closing connection: undecodable request", "remote", c.remote, "err", err)
			return
		}
		// A decoded request may keep slices of body (kmsg aliases bytes fields), so the buffer is
		// reused only after a Produce, whose handler is done with its record batches when it
		// returns (they are copied into the log); any other request keeps it.
		if req.Key == kmsg.Produce.Int16() && len(body) <= maxReusedRequestBuffer {
			c.buf = body
		} else {
			c.buf = nil
		}
		var resp kmsg.Response
		handling := time.Now()
		if req.Msg == nil { // ApiVersions at an unsupported version
			resp = s.handler.UnsupportedApiVersions(req)
		} else {
			resp, err = s.safeHandle(ctx, req)
			if err != nil {
				s.log.Info("closing connection", "remote", c.remote, "api_key", req.Key, "version", req.Version, "err", err)
				return
			}
		}
		// Handled: the request's bytes leave the budget (the response's do not count).
		s.limits.budget.giveBack(&c.charge)
		c.served = true
		timing := Timing{Received: received, Handling: handling, Handled: time.Now(), Remote: time.Duration(req.remote.Load())}
		if resp == nil {
			if s.cfg.Observer != nil {
				timing.Sending, timing.Sent = timing.Handled, timing.Handled
				s.cfg.Observer.Observe(req, nil, &timing)
			}
			continue
		}
		r := response{req: req, resp: resp, timing: timing}
		if ch, ok := resp.(*Chunked); ok {
			r.chunks = frameChunked(req.CorrelationID, ch)
		} else {
			r.buf = encodeResponse(req.CorrelationID, resp)
		}
		c.pending.Add(1)
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

// maxReusedRequestBuffer caps the request buffer a connection keeps between Produce requests.
const maxReusedRequestBuffer = 8 << 20

// safeHandle calls the handler and turns a panic into a closed connection instead of a crashed
// broker: one bad request must not stop the other clients.
func (s *Server) safeHandle(ctx context.Context, req *Request) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic", "api_key", req.Key, "version", req.Version, "panic", r)
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return s.handler.Handle(ctx, req)
}

// decode parses the request header and body. Req.Msg is nil for an ApiVersions request at a
// version the handler does not support (answered with KIP-511's v0 response).
func (s *Server) decode(body []byte, remote string) (*Request, error) {
	r := kbin.Reader{Src: body}
	key := r.Int16()
	version := r.Int16()
	corr := r.Int32()
	clientID := r.NullableString()
	if err := r.Complete(); err != nil {
		return nil, fmt.Errorf("request header: %w", err)
	}
	req := &Request{Key: key, Version: version, CorrelationID: corr, RemoteAddr: remote, Listener: s.cfg.Listener}
	if clientID != nil {
		req.ClientID = *clientID
	}
	supported := s.handler.SupportedVersion(key, version)
	msg := kmsg.RequestForKey(key)
	if msg == nil {
		return nil, fmt.Errorf("unknown api key %d", key)
	}
	if !supported {
		if key == kmsg.ApiVersions.Int16() {
			return req, nil
		}
		return nil, fmt.Errorf("unsupported version %d of api key %d", version, key)
	}
	msg.SetVersion(version)
	if msg.IsFlexible() {
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return nil, fmt.Errorf("request header tags: %w", err)
		}
	}
	if err := msg.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("decode api key %d v%d: %w", key, version, err)
	}
	req.Msg = msg
	return req, nil
}

// encodeResponse frames a response: size, correlation id, header tags (flexible responses except
// ApiVersions, whose response header is always v0), body.
func encodeResponse(corr int32, resp kmsg.Response) []byte {
	buf := make([]byte, 8, 256)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:8], uint32(corr))
	return buf
}
