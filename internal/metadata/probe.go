package metadata

// Fast failure detection. Kafka fences a broker only when its session expires
// (broker.session.timeout.ms, 9 s), and its partitions have no leader until then. Moldau also
// probes a broker whose heartbeat is late (more than broker.heartbeat.interval.ms since the last
// one): when a connection to its inter-broker listener is refused, nothing listens there any
// more, its process is gone (kill -9, a crash), and it is fenced at once, as the session expiry
// would fence it seconds later. A controller that has just gained leadership probes every broker
// at once: its predecessor may have died with one of them (kill -9 of a combined node), and it
// has heard no heartbeat yet to be late against. A probe that connects or times out (a paused process, a
// partitioned or lost machine) changes nothing: the session timeout decides, as in Kafka.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// probeTimeout bounds one probe dial.
const probeTimeout = 500 * time.Millisecond

// refusesConnections is the default Config.Probe.
func refusesConnections(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// fenceDeadBrokers probes the unfenced brokers whose heartbeat is late (once per missed
// heartbeat) or not heard yet in this term, and fences those whose process is gone. Probes run with no lock held; a broker that
// heartbeated meanwhile is left alone. Leader only; sessionLoop drives it.
func (c *Controller) fenceDeadBrokers(ctx context.Context, now time.Time) error {
	type target struct {
		id       int32
		addr     string
		lastSeen time.Time
	}
	var targets []target
	c.mu.Lock()
	if c.termStartedLocked() {
		for _, b := range c.Image().Brokers() {
			s, ok := c.sessions[b.NodeID]
			if b.Fenced || !ok || b.NodeID == c.cfg.NodeID {
				continue
			}
			late := now.After(s.lastSeen.Add(c.cfg.HeartbeatInterval + sessionInterval/2))
			if !(late || s.unheard) || s.probed.Equal(s.lastSeen) {
				continue
			}
			s.probed, s.unheard = s.lastSeen, false
			if addr := probeAddr(b, c.cfg.RaftListenerName); addr != "" {
				targets = append(targets, target{b.NodeID, addr, s.lastSeen})
			}
		}
	}
	c.mu.Unlock()

	for _, tg := range targets {
		if !c.cfg.Probe(tg.addr) {
			continue
		}
		c.cfg.Logger.Info("fencing a broker whose heartbeat is late and whose listener refuses connections: its process is gone",
			"broker", tg.id, "addr", tg.addr, "last_heartbeat", now.Sub(tg.lastSeen).Round(time.Millisecond))
		if err := c.fenceIfStill(ctx, tg.id, tg.lastSeen); err != nil {
			return err
		}
	}
	return nil
}

// fenceIfStill fences broker id if it has not heartbeated since lastSeen.
func (c *Controller) fenceIfStill(ctx context.Context, id int32, lastSeen time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[id]
	if !c.termStartedLocked() || !ok || !s.lastSeen.Equal(lastSeen) {
		return nil
	}
	im := c.Image()
	b, ok := im.Broker(id)
	if !ok || b.Fenced {
		return nil
	}
	if err := c.commitLocked(ctx, c.fenceRecords(im, b)...); err != nil {
		return fmt.Errorf("fence broker %d, whose listener refuses connections: %w", id, err)
	}
	return nil
}

// probeAddr is the address a broker is probed at: its endpoint of the inter-broker listener,
// else its first.
func probeAddr(b Broker, listener string) string {
	for _, e := range b.Endpoints {
		if e.Name == listener {
			return net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))
		}
	}
	if b.Host == "" {
		return ""
	}
	return net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
}
