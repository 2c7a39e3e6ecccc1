package faultproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// echoServer echoes every connection; accepted counts the connections it got.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			e.wg.Add(1)
			go func() { defer e.wg.Done(); _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads its echo, within 5s.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// expectSilence checks that nothing arrives on c for d: the negative half of a blackhole.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %d bytes (%v), want nothing until the deadline", n, err)
	}
}

func TestForward(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "hello")
	roundTrip(t, c, "again")
	if p.Mode() != Forward || p.Target() != e.ln.Addr().String() {
		t.Errorf("mode %v target %s", p.Mode(), p.Target())
	}
}

func TestCutDropsConnectionsAndRefusesNewOnes(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	roundTrip(t, c, "before")

	p.Cut()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("established connection after Cut: read %d bytes, err %v; want it closed", n, err)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after Cut: %v, want connection refused", err)
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, p.Addr()), "after")
}

func TestBlackholeHoldsTrafficUntilRestore(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, e.ln.Addr().String())
	old := dial(t, p.Addr())
	roundTrip(t, old, "before")
	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	acceptedBefore := e.accepted.Load()

	// Both an established and a new connection: the proxy accepts, forwards nothing.
	fresh := dial(t, p.Addr())
	for _, c := range []net.Conn{old, fresh} {
		if _, err := io.WriteString(c, "held"); err != nil {
			t.Fatal(err)
		}
	}
	expectSilence(t, old, 300*time.Millisecond)
	expectSilence(t, fresh, 50*time.Millisecond)
	if n := e.accepted.Load(); n != acceptedBefore {
		t.Errorf("the target got %d new connections while blackholed, want none", n-acceptedBefore)
	}

	// Restore delivers what was held, not dropped, on both.
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{old, fresh} {
		if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
			t.Fatalf("after Restore read %q, %v; want \"held\"", buf, err)
		}
	}
	roundTrip(t, fresh, "flowing")
}

func TestBlackholeAfterCutListensAgain(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, e.ln.Addr().String())
	p.Cut()
	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr()) // accepted again
	if _, err := io.WriteString(c, "x"); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, c, 100*time.Millisecond)
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestLatencyDelaysEachWayAndKeepsOrder(t *testing.T) {
	e := startEcho(t)
	p := startProxy(t, e.ln.Addr().String())
	c := dial(t, p.Addr())
	const latency = 100 * time.Millisecond
	p.SetLatency(latency)

	start := time.Now()
	roundTrip(t, c, "ping")
	if rtt := time.Since(start); rtt < 2*latency {
		t.Errorf("round trip %s with %s latency each way, want at least %s", rtt, latency, 2*latency)
	}

	// Many small writes come back complete and in order.
	const n = 200
	go func() {
		for i := range n {
			if _, err := fmt.Fprintf(c, "%d\n", i); err != nil {
				return
			}
		}
	}()
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(c)
	for i := range n {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		if got, want := sc.Text(), fmt.Sprint(i); got != want {
			t.Fatalf("line %d is %q: reordered", i, got)
		}
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "fast again")
}

func TestCloseEndsEverything(t *testing.T) {
	e := startEcho(t)
	p, err := New("127.0.0.1:0", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	roundTrip(t, c, "x")
	if err := p.Blackhole(); err != nil {
		t.Fatal(err)
	}
	held := dial(t, p.Addr()) // a link waiting to dial: Close must not wait for it forever
	_ = held
	p.Close() // returns only when every goroutine has stopped
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("dial after Close succeeded")
	}
	if err := p.Restore(); err == nil {
		t.Error("Restore after Close succeeded")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
