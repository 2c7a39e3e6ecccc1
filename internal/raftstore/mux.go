package raftstore

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftPrefix is the first byte a raft connection sends on the CONTROLLER listener. A Kafka
// request frame starts with its 4-byte big-endian length, whose first byte is 0 for any frame
// under 16 MiB and never 'R' (0x52, a frame over 1.3 GB, which no listener accepts), so one
// byte tells the two protocols apart.
const raftPrefix = 'R'

// sniffTimeout bounds how long an accepted connection may take to send its first byte.
const sniffTimeout = 10 * time.Second

// Mux shares one TCP listener (Kafka's CONTROLLER listener) between hashicorp/raft and the
// Kafka protocol: connections that start with raftPrefix go to raft (RaftLayer), every other
// connection to Kafka() with its first byte put back.
//
// The accept loop never blocks on a slow client: each accepted connection's first byte is
// read in its own goroutine, bounded by sniffTimeout.
type Mux struct {
	ln     net.Listener
	log    *slog.Logger
	raft   *muxListener
	kafka  *muxListener
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// NewMux starts splitting ln. Close stops it and closes ln.
func NewMux(ln net.Listener, logger *slog.Logger) *Mux {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Mux{ln: ln, log: logger, closed: make(chan struct{})}
	m.raft = newMuxListener(m)
	m.kafka = newMuxListener(m)
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

// Addr is the bound address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Kafka is the listener of the non-raft connections.
func (m *Mux) Kafka() net.Listener { return m.kafka }

// Close stops accepting, closes the listener and waits for the connections being sniffed.
// Connections already handed out are their receivers' to close.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.closed)
		err = m.ln.Close()
		m.wg.Wait()
	})
	return err
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Error("controller listener: accept failed; controller connections are refused until restart", "err", err)
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

// route reads the first byte of conn and hands it to the raft or the Kafka side.
func (m *Mux) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReaderSize(conn, 64)
	first, err := br.Peek(1)
	if err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	to := m.kafka
	if first[0] == raftPrefix {
		_, _ = br.Discard(1)
		to = m.raft
	}
	if !to.deliver(&bufferedConn{Conn: conn, r: br}) {
		conn.Close()
	}
}

// RaftLayer is the raft.StreamLayer over the mux: Accept hands out the raft connections, Dial
// connects to another voter's CONTROLLER listener and sends raftPrefix. advertise is the address
// other voters reach this one at (nil: the bound address).
func (m *Mux) RaftLayer(advertise net.Addr) raft.StreamLayer {
	if advertise == nil {
		advertise = m.ln.Addr()
	}
	return &raftLayer{muxListener: m.raft, addr: advertise}
}

type raftLayer struct {
	*muxListener
	addr net.Addr
}

func (l *raftLayer) Addr() net.Addr { return l.addr }

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{raftPrefix}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raftstore: dial %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// muxListener is one side of a Mux as a net.Listener. Closing it stops that side only (its
// connections are refused from then on); the socket closes when both sides are closed.
type muxListener struct {
	m      *Mux
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMuxListener(m *Mux) *muxListener {
	return &muxListener{m: m, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver hands conn to Accept, or reports false when this side or the mux closed first.
func (l *muxListener) deliver(conn net.Conn) bool {
	select {
	case l.conns <- conn:
		return true
	case <-l.closed:
		return false
	case <-l.m.closed:
		return false
	}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	select {
	case <-l.m.raft.closed:
	default:
		return nil
	}
	select {
	case <-l.m.kafka.closed:
	default:
		return nil
	}
	return l.m.Close()
}

func (l *muxListener) Addr() net.Addr { return l.m.ln.Addr() }

// bufferedConn is a connection whose first bytes were read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
