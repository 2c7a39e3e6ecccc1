package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// LimitsConfig is the broker-wide resource limits, shared by every listener of a broker.
type LimitsConfig struct {
	// QueuedMaxRequestBytes is queued.max.request.bytes: the memory budget of requests that are
	// partially received, or received and not yet handled, on all connections together.
	// <= 0: unbounded (Kafka's -1).
	QueuedMaxRequestBytes int64
	// MaxConnections is max.connections: at the cap, the listeners stop accepting until a
	// connection closes (as Kafka's acceptor does). Kafka's default, math.MaxInt32, is in effect
	// unlimited.
	MaxConnections int
	// MaxConnectionsPerIP is max.connections.per.ip: a connection over the cap for its address is
	// closed at once. As in Kafka, 0 (allowed only with overrides) admits only the addresses that
	// have an override; the default, math.MaxInt32, is in effect unlimited.
	MaxConnectionsPerIP int
	// MaxConnectionsPerIPOverrides is max.connections.per.ip.overrides: the cap per host name or
	// IP address, instead of MaxConnectionsPerIP. Host names are resolved by NewLimits.
	MaxConnectionsPerIPOverrides map[string]int
	Logger                       *slog.Logger
}

// Limits holds the broker-wide state of the limits: the request memory budget and the
// connection counts. One Limits is shared by all the Servers (listeners) of a broker.
type Limits struct {
	budget budget
	conns  connLimiter
}

// NewLimits builds the limits, resolving the host names of MaxConnectionsPerIPOverrides.
func NewLimits(cfg LimitsConfig) (*Limits, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Limits{}
	l.budget.init(cfg.QueuedMaxRequestBytes)
	l.conns.max = cfg.MaxConnections
	l.conns.perIP = cfg.MaxConnectionsPerIP
	l.conns.log = cfg.Logger
	l.conns.mu.byIP = make(map[netip.Addr]int)
	if len(cfg.MaxConnectionsPerIPOverrides) > 0 {
		l.conns.overrides = make(map[netip.Addr]int)
		for host, n := range cfg.MaxConnectionsPerIPOverrides {
			if a, err := netip.ParseAddr(host); err == nil {
				l.conns.overrides[a.Unmap()] = n
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("max.connections.per.ip.overrides: resolve %s: %w", host, err)
			}
			for _, a := range addrs {
				l.conns.overrides[a.Unmap()] = n
			}
		}
	}
	return l, nil
}

// unlimited is the Limits of a Server configured without any.
func unlimited(logger *slog.Logger) *Limits {
	l, _ := NewLimits(LimitsConfig{MaxConnections: math.MaxInt, MaxConnectionsPerIP: math.MaxInt, Logger: logger})
	return l
}

// QueuedRequestBytes is the budget in use: bytes of requests partially received or not yet handled.
func (l *Limits) QueuedRequestBytes() int64 {
	l.budget.mu.Lock()
	defer l.budget.mu.Unlock()
	return l.budget.mu.used
}

// Connections is the number of open client connections on all listeners.
func (l *Limits) Connections() int {
	l.conns.mu.Lock()
	defer l.conns.mu.Unlock()
	return l.conns.mu.total
}

// RejectedConnections counts the connections closed at once because their address had
// max.connections.per.ip (or its override) connections already.
func (l *Limits) RejectedConnections() int64 { return l.conns.rejected.Load() }

// budget bounds the bytes of requests that are partially received, or received and not yet
// handled, across every connection of a broker (queued.max.request.bytes).
//
// A connection's reader charges the budget before it reads into memory, at most one chunk (64 KiB
// to 1 MiB) ahead of the bytes received, so a frame that announces 100 MB and sends 20 MB costs
// about 20 MB. It gives the charge back when the request has been handled. When a charge does not
// fit, the reader waits and reads nothing from its socket meanwhile: the bytes stay in the
// kernel's socket buffers and TCP flow control holds the client back.
//
// A charge of n bytes fits when used+n <= limit-reserve, or, for a small frame (announced size
// at most smallFrameBytes), when used+n <= limit. The last reserve bytes (limit/8) are thus kept for
// small requests: large frames that stall half-received (what an attacker sends) cannot hold up
// the Metadata, Produce, Fetch and group requests of ordinary clients.
//
// A charge that does not fit is still granted when no frame holds the overdraft: the frame takes
// the overdraft and keeps it until its charge is given back (its request was handled). The
// holder's bytes do not count against the limit for the other frames, so one large frame on the
// overdraft does not use up the reserve.
//
// INVARIANT (no deadlock): a reader waits for budget only while another frame holds the
// overdraft, and the holder never waits for budget: it is received as fast as its client sends it
// (or its connection is closed by the read deadline), handled, and gives the overdraft up. So
// readers never wait on each other in a cycle, and a frame larger than the whole budget is still
// received (on the overdraft), alone.
// INVARIANT (bound): used <= limit + the overdraft holder's charge, which is at most one frame
// (socket.request.max.bytes).
type budget struct {
	limit   int64 // <= 0: unbounded, charges are only counted
	reserve int64 // kept for small frames
	small   int64 // frames announcing at most this many bytes are small

	mu struct {
		sync.Mutex
		used      int64
		overdraft *charge       // the frame allowed past the limit; nil when none
		wake      chan struct{} // closed (and cleared) when budget is given back; nil: nobody waits
	}
}

// smallFrameBytes is the largest frame the budget's reserve is kept for.
const smallFrameBytes = 1 << 20

func (b *budget) init(limit int64) {
	b.limit = limit
	if limit > 0 {
		b.reserve = limit / 8
		b.small = min(smallFrameBytes, b.reserve)
	}
}

// charge is one frame's share of the budget. REQUIRES: one goroutine (the connection's reader)
// uses a charge at a time.
type charge struct {
	n     int64 // bytes charged
	small bool  // the frame is small (see budget)
}

// take adds n bytes to c, waiting until they fit (see budget), and reports how long it waited.
// The error is ctx's when ctx ended first (c is then unchanged).
func (b *budget) take(ctx context.Context, c *charge, n int64) (waited time.Duration, err error) {
	var start time.Time
	for {
		b.mu.Lock()
		// The overdraft holder's bytes are outside the limit.
		used := b.mu.used + n
		if b.mu.overdraft != nil {
			used -= b.mu.overdraft.n
		}
		fits := b.limit <= 0 || used <= b.limit-b.reserve || (c.small && used <= b.limit)
		if fits || b.mu.overdraft == nil || b.mu.overdraft == c {
			if !fits {
				b.mu.overdraft = c
			}
			b.mu.used += n
			c.n += n
			b.mu.Unlock()
			if !start.IsZero() {
				waited = time.Since(start)
			}
			return waited, nil
		}
		if b.mu.wake == nil {
			b.mu.wake = make(chan struct{})
		}
		wake := b.mu.wake
		b.mu.Unlock()
		if start.IsZero() {
			start = time.Now()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		}
	}
}

// giveBack returns all of c's bytes (and the overdraft, if c holds it) and wakes the waiters.
func (b *budget) giveBack(c *charge) {
	if c.n == 0 {
		return
	}
	b.mu.Lock()
	b.mu.used -= c.n
	c.n = 0
	if b.mu.overdraft == c {
		b.mu.overdraft = nil
	}
	if b.mu.wake != nil {
		close(b.mu.wake)
		b.mu.wake = nil
	}
	b.mu.Unlock()
}

// connLimiter counts the open connections, in total and per client address.
type connLimiter struct {
	max       int                // max.connections
	perIP     int                // max.connections.per.ip (0 admits only the overrides)
	overrides map[netip.Addr]int // per address, instead of perIP
	log       *slog.Logger

	rejected atomic.Int64

	mu struct {
		sync.Mutex
		total    int
		byIP     map[netip.Addr]int
		wake     chan struct{} // closed (and cleared) when a connection is released
		lastWarn time.Time     // of the rate-limited warnings
		quiet    int           // warnings not logged since lastWarn
	}
}

// warnEvery is the least time between two connection-limit warnings.
const warnEvery = 10 * time.Second

// admit counts a new connection from addr. At max.connections it waits until one closes (or ctx
// ends: false). Over the address's cap it counts a rejection, logs (rate-limited) and returns
// false: the caller closes the connection.
func (l *connLimiter) admit(ctx context.Context, addr netip.Addr) bool {
	waiting := false
	for {
		l.mu.Lock()
		if l.mu.total >= l.max {
			if !waiting {
				waiting = true
				l.warnLocked("max.connections reached: not accepting connections until one closes",
					"max.connections", l.max)
			}
			if l.mu.wake == nil {
				l.mu.wake = make(chan struct{})
			}
			wake := l.mu.wake
			l.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return false
			}
		}
		capIP := l.perIP
		if n, ok := l.overrides[addr]; ok {
			capIP = n
		}
		if l.mu.byIP[addr] >= capIP {
			l.rejected.Add(1)
			l.warnLocked("closing connection: its address has max.connections.per.ip connections already",
				"remote", addr.String(), "max.connections.per.ip", capIP)
			l.mu.Unlock()
			return false
		}
		l.mu.total++
		l.mu.byIP[addr]++
		l.mu.Unlock()
		return true
	}
}

// release uncounts a connection admitted from addr.
func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	l.mu.total--
	if n := l.mu.byIP[addr]; n <= 1 {
		delete(l.mu.byIP, addr)
	} else {
		l.mu.byIP[addr] = n - 1
	}
	if l.mu.wake != nil {
		close(l.mu.wake)
		l.mu.wake = nil
	}
	l.mu.Unlock()
}

// warnLocked logs at most one warning per warnEvery, saying how many were left out.
// REQUIRES: l.mu is held.
func (l *connLimiter) warnLocked(msg string, args ...any) {
	now := time.Now()
	if now.Sub(l.mu.lastWarn) < warnEvery {
		l.mu.quiet++
		return
	}
	if l.mu.quiet > 0 {
		args = append(args, "similar_warnings_not_logged", l.mu.quiet)
	}
	l.mu.lastWarn, l.mu.quiet = now, 0
	l.log.Warn(msg, args...)
}

// remoteAddr is the IP address of a connection's peer (the zero Addr if it has none).
func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}
