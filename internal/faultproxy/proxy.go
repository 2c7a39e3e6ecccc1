// Package faultproxy is a TCP proxy for fault tests: it listens on a loopback port, forwards
// every connection to a target, and on command cuts the link (drops every connection and refuses
// new ones), blackholes it (accepts connections and holds their bytes, forwarding nothing, as a
// network that silently drops packets does), or delays every chunk by a latency. The multi-node
// tests put one in front of each node's controller and inter-broker listeners, so a node can be
// cut off from the others while the process keeps running.
//
// It is a small package of our own rather than toxiproxy: the tests need these four states
// switched synchronously from Go, in process, with no HTTP API server, no toxics and no extra
// dependencies.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

// The modes.
const (
	Forward   Mode = iota // forward, after the latency (if any)
	Blackhole             // accept, hold everything, forward nothing (the target is not even dialled)
	Cut                   // no listener: connections are refused; established ones were closed
)

func (m Mode) String() string {
	switch m {
	case Forward:
		return "forward"
	case Blackhole:
		return "blackhole"
	case Cut:
		return "cut"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Proxy forwards the connections made to Addr to Target.
type Proxy struct {
	addr   string // fixed by the first listen, kept across Cut and Restore
	target string

	mu struct {
		sync.Mutex
		ln      net.Listener // nil while cut or closed
		mode    Mode
		latency time.Duration
		links   map[*link]struct{}
		changed chan struct{} // closed and replaced on every change of mode or latency
		closed  bool
	}
	wg sync.WaitGroup // accept loops and links
}

// New starts a proxy listening on listen ("127.0.0.1:0" picks a free port) and forwarding to
// target.
func New(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", listen, err)
	}
	p := &Proxy{addr: ln.Addr().String(), target: target}
	p.mu.links = map[*link]struct{}{}
	p.mu.changed = make(chan struct{})
	p.mu.ln = ln
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the address the proxy listens on (also while cut: Restore listens there again).
func (p *Proxy) Addr() string { return p.addr }

// Target is the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target }

// Mode is the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.mode
}

// changedLocked wakes everything waiting on the mode. REQUIRES: p.mu is held.
func (p *Proxy) changedLocked() {
	close(p.mu.changed)
	p.mu.changed = make(chan struct{})
}

// Cut closes every connection and the listener: new connections are refused until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return
	}
	p.mu.mode = Cut
	p.closeAllLocked()
}

// closeAllLocked closes the listener and every connection. REQUIRES: p.mu held.
func (p *Proxy) closeAllLocked() {
	if p.mu.ln != nil {
		p.mu.ln.Close()
		p.mu.ln = nil
	}
	for l := range p.mu.links {
		l.close()
	}
	p.changedLocked()
}

// Blackhole makes the proxy accept connections but forward nothing, in either direction, on new
// and established connections alike, until Restore; bytes sent meanwhile are held, not dropped.
func (p *Proxy) Blackhole() error { return p.setMode(Blackhole) }

// Restore forwards again with no latency, listening again if the proxy was cut.
func (p *Proxy) Restore() error {
	if err := p.setMode(Forward); err != nil {
		return err
	}
	p.SetLatency(0)
	return nil
}

// SetLatency delays every chunk of data by d (in each direction) from now on.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.latency = d
	p.changedLocked()
}

func (p *Proxy) setMode(m Mode) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.closed {
		return errors.New("faultproxy: closed")
	}
	if p.mu.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("faultproxy: listen again on %s: %w", p.addr, err)
		}
		p.mu.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	p.mu.mode = m
	p.changedLocked()
	return nil
}

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.mu.closed {
		p.mu.closed = true
		p.closeAllLocked()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// accept owns ln until it is closed.
func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l := &link{p: p, client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.mu.closed || p.mu.ln != ln {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

// waitForward blocks while the proxy is blackholed; false when the link is closed meanwhile.
func (p *Proxy) waitForward(done <-chan struct{}) bool {
	for {
		p.mu.Lock()
		mode, changed := p.mu.mode, p.mu.changed
		p.mu.Unlock()
		if mode == Forward {
			return true
		}
		select {
		case <-changed:
		case <-done:
			return false
		}
	}
}

func (p *Proxy) latency() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.latency
}

// link is one proxied connection: client <-> proxy <-> upstream.
type link struct {
	p         *Proxy
	client    net.Conn
	upstream  net.Conn // set once dialled
	mu        sync.Mutex
	done      chan struct{}
	closeOnce sync.Once
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		close(l.done)
		l.client.Close()
		l.mu.Lock()
		if l.upstream != nil {
			l.upstream.Close()
		}
		l.mu.Unlock()
	})
}

// run dials the target (once the proxy forwards) and pumps both ways until both are done.
func (l *link) run() {
	defer l.p.wg.Done()
	defer func() {
		l.close()
		l.p.mu.Lock()
		delete(l.p.mu.links, l)
		l.p.mu.Unlock()
	}()
	if !l.p.waitForward(l.done) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-l.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", l.p.target)
	cancel()
	if err != nil {
		return
	}
	l.mu.Lock()
	l.upstream = up
	l.mu.Unlock()
	select {
	case <-l.done: // closed while dialling: close did not see upstream
		up.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(l.client, up) }()
	go func() { defer wg.Done(); l.pump(up, l.client) }()
	wg.Wait()
}

// chunk is data read at one moment, to be written at due.
type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst: a reader stamps each chunk with its due time, a writer waits for it
// (and for the proxy to forward) and writes, so latency delays without reordering. At EOF of src
// the write side of dst is closed after the last chunk.
func (l *link) pump(src, dst net.Conn) {
	chunks := make(chan chunk, 64)
	readerDone := make(chan struct{})
	// Every way out of the writer loop either drained chunks (the reader ended) or follows
	// l.close, which closes src and so ends the reader's Read.
	defer func() { <-readerDone }()
	go func() {
		defer close(readerDone)
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{buf[:n], time.Now().Add(l.p.latency())}:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		if !l.p.waitForward(l.done) {
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			l.close()
			return
		}
	}
	select {
	case <-l.done:
		return
	default:
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
