package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// startLimited starts a server with the given limits and idle timeout (0: none); socket.request.max.bytes is 100 MB.
func startLimited(t *testing.T, lc LimitsConfig, idle time.Duration) (*Server, *Limits) {
	t.Helper()
	if lc.MaxConnections == 0 {
		lc.MaxConnections = math.MaxInt32
	}
	if lc.MaxConnectionsPerIP == 0 {
		lc.MaxConnectionsPerIP = math.MaxInt32
	}
	lc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := NewLimits(lc)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0", MaxRequestBytes: 100_000_000, IdleTimeout: idle, Limits: l,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, echoHandler{})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, l
}

func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// announced is the start of a Produce v9 frame that announces size bytes: the size prefix and
// the request header. The rest is the body a client would send (zeros will do: the frame is
// never completed).
func announced(size int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(size))
	b = binary.BigEndian.AppendUint16(b, 0) // Produce
	b = binary.BigEndian.AppendUint16(b, 9)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 1)
	return append(b, 'x', 0)
}

// sendPartial writes the head of a frame announcing size bytes and then n bytes of its body.
func sendPartial(t *testing.T, c net.Conn, size, n int) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	hdr := announced(size)
	if _, err := c.Write(append(hdr, make([]byte, n-len(hdr)+4)...)); err != nil {
		t.Fatal(err)
	}
}

func metadataFrame(corr int32) []byte {
	m := kmsg.NewPtrMetadataRequest()
	m.SetVersion(9)
	return frame(3, 9, corr, "c", m.AppendTo(nil))
}

// waitClosed reads c until the server closes it (EOF or reset), failing after 5 s.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: connection still open after 5 s", what)
	}
}

// A frame costs the bytes that arrived, not the bytes its size prefix announces: four
// connections announce 50 MB each and send 3 MiB; the budget in use and the Go heap grow by
// about 12 MiB, not 200 MB.
func TestFrameReadAsBytesArrive(t *testing.T) {
	s, l := startLimited(t, LimitsConfig{QueuedMaxRequestBytes: 256 << 20}, 0)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const conns, sent = 4, 3 << 20
	for range conns {
		sendPartial(t, dial(t, s), 50_000_000, sent)
	}
	waitFor(t, "the server to read what was sent", func() bool { return l.QueuedRequestBytes() >= conns*sent })
	if got := l.QueuedRequestBytes(); got > conns*(sent+maxChunk) {
		t.Errorf("budget in use %d after %d bytes received, want at most %d", got, conns*sent, conns*(sent+maxChunk))
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 40<<20 {
		t.Errorf("heap grew by %d MiB for %d MiB received", grew>>20, conns*sent>>20)
	}
}

// When the budget is full, readers stop reading (and wait), small requests still go through on
// the reserve, and the waiting frame proceeds once the budget is given back.
func TestBudgetFullStopsReading(t *testing.T) {
	const limit = 1 << 20 // reserve 128 KiB: large frames get 896 KiB
	s, l := startLimited(t, LimitsConfig{QueuedMaxRequestBytes: limit}, 0)
	full := produceFrame(7, 4<<20)
	size := len(full) - 4

	// A sends all of its 4 MiB frame but the last byte: it runs on the overdraft.
	a := dial(t, s)
	a.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Write(full[:len(full)-1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A's frame to be read", func() bool { return l.QueuedRequestBytes() == int64(size) })

	// C sends a whole 4 MiB frame: it gets 512 KiB of the large share (64+64+128+256 KiB); its
	// next chunk does not fit and A holds the overdraft, so C waits and reads no more.
	c := dial(t, s)
	cDone := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Write(full)
		cDone <- err
	}()
	waitFor(t, "C to wait for budget", func() bool {
		l.budget.mu.Lock()
		defer l.budget.mu.Unlock()
		return l.budget.mu.used == int64(size)+512<<10 && l.budget.mu.wake != nil
	})

	// A small request on another connection is answered meanwhile (the reserve).
	b := dial(t, s)
	if corr, err := roundTrip(t, b, metadataFrame(3)); err != nil || corr != 3 {
		t.Fatalf("small request while the budget is full: corr %d, err %v", corr, err)
	}

	// A goes away: its budget and the overdraft are given back, and C's request is handled.
	a.Close()
	if err := <-cDone; err != nil {
		t.Fatalf("C's write: %v", err)
	}
	var hdr [8]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[4:]) != 7 {
		t.Fatalf("C's response: %x, %v", hdr, err)
	}
	waitFor(t, "the budget to be given back", func() bool { return l.QueuedRequestBytes() == 0 })
}

// A frame larger than the whole budget is still received (alone, on the overdraft), and so are
// two of them sent at the same time: readers never wait on each other in a cycle.
func TestFrameLargerThanBudget(t *testing.T) {
	s, l := startLimited(t, LimitsConfig{QueuedMaxRequestBytes: 1 << 20}, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := range int32(2) {
		c := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := produceFrame(i, 3<<20)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(req); err != nil {
				errs <- err
				return
			}
			var hdr [8]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "the budget to be given back", func() bool { return l.QueuedRequestBytes() == 0 })
}

// connections.max.idle.ms closes a connection with nothing to do, and one that trickles a frame
// forever; a connection in use stays open.
func TestIdleTimeout(t *testing.T) {
	s, _ := startLimited(t, LimitsConfig{}, 300*time.Millisecond)

	idle := dial(t, s)
	if _, err := roundTrip(t, idle, metadataFrame(1)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, idle, "idle connection")

	trickle := dial(t, s)
	go func() {
		trickle.Write(announced(1000))
		for {
			if _, err := trickle.Write([]byte{0}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the client's pace, not synchronisation
		}
	}()
	waitClosed(t, trickle, "trickling connection")

	// A busy connection (a request every 100 ms for 1 s: more than three idle timeouts) stays open.
	busy := dial(t, s)
	for i := range int32(10) {
		if corr, err := roundTrip(t, busy, metadataFrame(i)); err != nil || corr != i {
			t.Fatalf("busy connection, request %d: corr %d, err %v", i, corr, err)
		}
		time.Sleep(100 * time.Millisecond) // the client's pace, not synchronisation
	}
}

// max.connections: at the cap the server accepts nothing more until a connection closes; the
// waiting connection is then served.
func TestMaxConnections(t *testing.T) {
	s, l := startLimited(t, LimitsConfig{MaxConnections: 2}, 0)
	first, second := dial(t, s), dial(t, s)
	for i, c := range []net.Conn{first, second} {
		if _, err := roundTrip(t, c, metadataFrame(int32(i))); err != nil {
			t.Fatal(err)
		}
	}
	third := dial(t, s)
	third.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Write(metadataFrame(3)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the accept loop to wait for a slot", func() bool {
		l.conns.mu.Lock()
		defer l.conns.mu.Unlock()
		return l.conns.mu.wake != nil && l.conns.mu.total == 2
	})
	if _, err := roundTrip(t, second, metadataFrame(4)); err != nil {
		t.Fatalf("existing connection at the cap: %v", err)
	}
	first.Close()
	var hdr [8]byte
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(third, hdr[:]); err != nil || binary.BigEndian.Uint32(hdr[4:]) != 3 {
		t.Fatalf("waiting connection after one closed: %x, %v", hdr, err)
	}
}

// max.connections.per.ip and its overrides: a connection over its address's cap is closed at
// once, the others keep working.
func TestMaxConnectionsPerIP(t *testing.T) {
	s, l := startLimited(t, LimitsConfig{MaxConnectionsPerIP: 1,
		MaxConnectionsPerIPOverrides: map[string]int{"127.0.0.2": 3}}, 0)
	from := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	one := from("127.0.0.1")
	if _, err := roundTrip(t, one, metadataFrame(1)); err != nil {
		t.Fatal(err)
	}
	over := from("127.0.0.1")
	over.Write(metadataFrame(2))
	waitClosed(t, over, "second connection from 127.0.0.1")
	if _, err := roundTrip(t, one, metadataFrame(3)); err != nil {
		t.Fatalf("first connection after a rejected one: %v", err)
	}
	for i := range 3 {
		if _, err := roundTrip(t, from("127.0.0.2"), metadataFrame(int32(i))); err != nil {
			t.Fatalf("connection %d from 127.0.0.2 (override 3): %v", i, err)
		}
	}
	over2 := from("127.0.0.2")
	over2.Write(metadataFrame(9))
	waitClosed(t, over2, "fourth connection from 127.0.0.2")
	if got := l.RejectedConnections(); got != 2 {
		t.Errorf("rejected connections = %d, want 2", got)
	}
	one.Close()
	waitFor(t, "the slot of a closed connection to be released", func() bool { return l.Connections() == 3 })
	if _, err := roundTrip(t, from("127.0.0.1"), metadataFrame(10)); err != nil {
		t.Fatalf("new connection after the first closed: %v", err)
	}
}

// The first frame of a connection may announce more than 1 MiB only if it is a Produce, and a
// frame whose header is no request Moldau serves is refused before its body arrives. After one
// request a large request of any API is read.
func TestFirstRequestCap(t *testing.T) {
	s, _ := startLimited(t, LimitsConfig{}, 0)
	bigMeta := func(corr int32) []byte {
		m := kmsg.NewPtrMetadataRequest()
		m.SetVersion(9)
		for i := range 40000 {
			tp := kmsg.NewMetadataRequestTopic()
			name := strings.Repeat("t", 24) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26))
			tp.Topic = &name
			m.Topics = append(m.Topics, tp)
		}
		return frame(3, 9, corr, "c", m.AppendTo(nil))
	}
	big := bigMeta(1)
	if len(big) <= firstRequestMaxBytes {
		t.Fatalf("test frame of %d bytes is under the cap", len(big))
	}

	// Only the first 10 bytes are sent: the connection must be closed on the header alone.
	first := dial(t, s)
	first.Write(big[:10])
	waitClosed(t, first, "first frame: a 1.2 MB Metadata")

	garbage := dial(t, s)
	g := binary.BigEndian.AppendUint32(nil, 50_000_000)
	g = append(g, 0x27, 0x0f, 0, 0) // api key 9999
	garbage.Write(g)
	waitClosed(t, garbage, "a frame with api key 9999")

	after := dial(t, s)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	if _, err := roundTrip(t, after, frame(18, 3, 1, "c", av.AppendTo(nil))); err != nil {
		t.Fatal(err)
	}
	if corr, err := roundTrip(t, after, bigMeta(2)); err != nil || corr != 2 {
		t.Fatalf("1.2 MB Metadata after ApiVersions: corr %d, err %v", corr, err)
	}

	produce := dial(t, s)
	if corr, err := roundTrip(t, produce, produceFrame(5, 3<<20)); err != nil || corr != 5 {
		t.Fatalf("3 MiB Produce as the first request: corr %d, err %v", corr, err)
	}
}

// bigFetchHandler answers a Fetch with a response of 48 MiB (one Chunked byte run) and every
// other request as echoHandler.
type bigFetchHandler struct{ echoHandler }

func (bigFetchHandler) Handle(ctx context.Context, req *Request) (kmsg.Response, error) {
	if req.Key == kmsg.Fetch.Int16() {
		resp := req.Msg.ResponseKind()
		resp.SetVersion(req.Version)
		return &Chunked{Response: resp, Chunks: []Chunk{{Bytes: make([]byte, 48<<20)}}}, nil
	}
	return echoHandler{}.Handle(ctx, req)
}

// A connection whose response is still being written (a consumer slower than the idle timeout
// to read a large fetch) is not idle.
func TestNotIdleWhileWriting(t *testing.T) {
	l, err := NewLimits(LimitsConfig{MaxConnections: math.MaxInt32, MaxConnectionsPerIP: math.MaxInt32})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Addr: "127.0.0.1:0", IdleTimeout: 500 * time.Millisecond, Limits: l,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, bigFetchHandler{})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c := dial(t, s)
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(11)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(frame(1, 11, 1, "slow", f.AppendTo(nil))); err != nil {
		t.Fatal(err)
	}
	// The client reads the first 24 MiB at 1 MiB every 25 ms (over 600 ms, more than the idle
	// timeout; the socket buffers hold far less than the 24 MiB left, so the server is still
	// writing), then the rest at once.
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	left := int64(binary.BigEndian.Uint32(hdr[:4])) - 4
	for left > 24<<20 {
		n, err := io.CopyN(io.Discard, c, 1<<20)
		if err != nil {
			t.Fatalf("slow read of the response, %d bytes left: %v", left, err)
		}
		left -= n
		time.Sleep(25 * time.Millisecond) // the client's pace, not synchronisation
	}
	if _, err := io.CopyN(io.Discard, c, left); err != nil {
		t.Fatalf("rest of the response: %v", err)
	}
	if corr, err := roundTrip(t, c, metadataFrame(2)); err != nil || corr != 2 {
		t.Fatalf("request after the slow response: corr %d, err %v", corr, err)
	}
}
