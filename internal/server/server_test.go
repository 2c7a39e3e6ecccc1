package server

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// echoHandler supports every version kmsg knows and answers each request with its empty response.
type echoHandler struct{}

func (echoHandler) Handle(_ context.Context, req *Request) (kmsg.Response, error) {
	return req.Msg.ResponseKind(), nil
}
func (echoHandler) SupportedVersion(key, version int16) bool {
	r := kmsg.RequestForKey(key)
	return r != nil && version >= 0 && version <= r.MaxVersion()
}
func (echoHandler) UnsupportedApiVersions(*Request) kmsg.Response {
	return kmsg.NewPtrApiVersionsResponse()
}

func frame(key, version int16, corr int32, clientID string, body []byte) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	r := kmsg.RequestForKey(key)
	r.SetVersion(version)
	if r.IsFlexible() {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// FuzzDecode feeds arbitrary request bodies (after the size prefix) to the decoder: it must return
// a request or an error, never panic.
func FuzzDecode(f *testing.F) {
	s := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, echoHandler{})
	for key := int16(0); key < 70; key++ {
		r := kmsg.RequestForKey(key)
		if r == nil {
			continue
		}
		r.SetVersion(r.MaxVersion())
		f.Add(frame(key, r.MaxVersion(), 7, "fuzz", r.AppendTo(nil))[4:])
	}
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := s.decode(body, "fuzz")
		if err == nil && req == nil {
			t.Fatal("nil request without error")
		}
	})
}

func startServer(t *testing.T, maxBytes int32) *Server {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", MaxRequestBytes: maxBytes, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, echoHandler{})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func roundTrip(t *testing.T, c net.Conn, req []byte) (int32, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-4)
	if _, err := io.ReadFull(c, body); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(hdr[4:])), nil
}

// Bad frames close only their own connection; other connections keep working.
func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	s := startServer(t, 1024)
	good, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(9)
	if corr, err := roundTrip(t, good, frame(3, 9, 1, "good", meta.AppendTo(nil))); err != nil || corr != 1 {
		t.Fatalf("good request: corr %d err %v", corr, err)
	}

	cases := map[string][]byte{
		"oversized frame":  {0x7f, 0xff, 0xff, 0xff},
		"unknown api key":  frame(3, 0, 2, "x", nil)[:4],
		"garbage body":     append([]byte{0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 3}, 0xff, 0xff, 0xff, 0xff),
		"negative size":    {0xff, 0xff, 0xff, 0xf0},
		"unsupported vers": frame(3, 0, 4, "x", nil),
	}
	// Make "unknown api key" a real frame with key 9999.
	uk := frame(3, 0, 2, "x", nil)
	binary.BigEndian.PutUint16(uk[4:], 9999)
	cases["unknown api key"] = uk
	binary.BigEndian.PutUint16(cases["unsupported vers"][6:], 999)

	for name, b := range cases {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(b)
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: connection still open", name)
		}
		c.Close()
	}
	if corr, err := roundTrip(t, good, frame(3, 9, 5, "good", meta.AppendTo(nil))); err != nil || corr != 5 {
		t.Fatalf("good connection after bad ones: corr %d err %v", corr, err)
	}
}

// Pipelined requests are answered in order.
func TestPipelinedResponsesInOrder(t *testing.T) {
	s := startServer(t, 1<<20)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var all []byte
	for i := int32(0); i < 50; i++ {
		all = append(all, frame(18, 0, i, "p", nil)...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := int32(0); i < 50; i++ {
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != i {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:4])-4))
	}
}
