package group

// Ownership. In a cluster a group's coordinator is the leader of its __consumer_offsets
// partition (OffsetsPartition). With Config.OffsetsPartitions set the Coordinator serves only
// the groups of the partitions it was told it leads: Elect loads a partition's groups from the
// store in the background (COORDINATOR_LOAD_IN_PROGRESS until then), Resign drops them (their
// waiting members are answered and rejoin at the new coordinator). As in Kafka a group moves
// with its members: one stored Stable loads Stable with its generation and assignments, and its
// members keep them as long as they heartbeat the new coordinator within their session timeout. Every other group gets
// NOT_COORDINATOR, so the client looks the coordinator up again (FindCoordinator).
//
// Without OffsetsPartitions the Coordinator owns every group and loads the whole store at start.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// PartitionStore is a Store that can replay one __consumer_offsets partition: what Elect needs.
type PartitionStore interface {
	Store
	// LoadPartition replays partition p's records, oldest first, as Load does for all.
	LoadPartition(p int32, fn func(r StoredRecord) error) error
}

// ownedPartition is one __consumer_offsets partition this coordinator leads.
type ownedPartition struct {
	loaded chan struct{} // closed when its replay finished
	err    error         // set before loaded is closed
	stop   chan struct{} // closed by Resign or Close: the replay stops at its next record
	// installed (guarded by Coordinator.mu) is set once the replay's groups are in the group
	// map; until then CompleteTxn queues the partition's markers in completions, applied right
	// after (the replay may have read the log before the marker was appended to it).
	installed   bool
	completions []completion
}

// partitioned reports whether the coordinator serves only the partitions it was elected for.
func (c *Coordinator) partitioned() bool { return c.cfg.OffsetsPartitions > 0 }

// Elect makes this coordinator the owner of __consumer_offsets partition p and loads its
// groups in the background. Electing an owned partition does nothing.
func (c *Coordinator) Elect(p int32) error {
	if !c.partitioned() {
		return nil
	}
	ps, ok := c.store.(PartitionStore)
	if !ok {
		return fmt.Errorf("group coordinator: store %T cannot load one partition", c.store)
	}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return errors.New("group coordinator: closed")
	}
	if _, ok := c.mu.owned[p]; ok {
		c.mu.Unlock()
		return nil
	}
	op := &ownedPartition{loaded: make(chan struct{}), stop: make(chan struct{})}
	c.mu.owned[p] = op
	c.loads.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.loads.Done()
		c.loadPartition(ps, p, op)
	}()
	return nil
}

func (c *Coordinator) loadPartition(ps PartitionStore, p int32, op *ownedPartition) {
	defer close(op.loaded)
	groups, err := replayWith(c, op.stop, func(fn func(StoredRecord) error) error { return ps.LoadPartition(p, fn) })
	if errors.Is(err, errLoadStopped) {
		op.err = err
		return
	}
	if err != nil {
		op.err = fmt.Errorf("load groups of partition %d: %w", p, err)
		c.log.Error("group coordinator failed to load a partition; its groups answer COORDINATOR_NOT_AVAILABLE", "partition", p, "err", op.err)
		return
	}
	c.mu.Lock()
	if c.mu.owned[p] != op {
		c.mu.Unlock()
		return // resigned meanwhile
	}
	installed := make([]*group, 0, len(groups))
	for name, g := range groups {
		if _, ok := c.mu.groups[name]; !ok {
			c.mu.groups[name] = g
			installed = append(installed, g)
		}
	}
	c.installTxnsLocked(installed)
	op.installed = true
	completions := op.completions
	op.completions = nil
	c.mu.Unlock()
	c.completeAll(p, completions)
	// Not under c.mu (lock order group.mu, Coordinator.mu), and before loaded is closed, so no
	// request sees a loaded member without its session timer. A Resign meanwhile marks the
	// group stopped (startSessions then does nothing) or stops the timers started here.
	for _, g := range installed {
		g.startSessions()
	}
}

// Resign gives up partition p: its groups are dropped (members waiting in a rebalance are
// answered COORDINATOR_NOT_AVAILABLE, retriable: they find the new coordinator and rejoin) and
// later requests for them get NOT_COORDINATOR. Resigning a partition not owned does nothing.
func (c *Coordinator) Resign(p int32) {
	if !c.partitioned() {
		return
	}
	c.mu.Lock()
	op, ok := c.mu.owned[p]
	if !ok {
		c.mu.Unlock()
		return
	}
	delete(c.mu.owned, p)
	close(op.stop)
	var drop []*group
	for name, g := range c.mu.groups {
		if OffsetsPartition(name, c.cfg.OffsetsPartitions) == p {
			drop = append(drop, g)
			delete(c.mu.groups, name)
		}
	}
	for pid, gs := range c.mu.txns {
		for name := range gs {
			if OffsetsPartition(name, c.cfg.OffsetsPartitions) == p {
				delete(gs, name)
			}
		}
		if len(gs) == 0 {
			delete(c.mu.txns, pid)
		}
	}
	c.mu.Unlock()
	for _, g := range drop {
		g.mu.Lock()
		g.shutdownLocked()
		g.mu.Unlock()
	}
}

// Owns reports whether this coordinator serves partition p (always, without OffsetsPartitions).
func (c *Coordinator) Owns(p int32) bool {
	if !c.partitioned() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.owned[p]
	return ok
}

// groupStatus is status() for a request about one group: also NOT_COORDINATOR when another
// broker coordinates it, COORDINATOR_LOAD_IN_PROGRESS while its partition loads.
func (c *Coordinator) groupStatus(name string) int16 {
	if code := c.status(); code != 0 || !c.partitioned() {
		return code
	}
	p := OffsetsPartition(name, c.cfg.OffsetsPartitions)
	c.mu.Lock()
	op, ok := c.mu.owned[p]
	c.mu.Unlock()
	if !ok {
		return kerr.NotCoordinator.Code
	}
	select {
	case <-op.loaded:
	default:
		return kerr.CoordinatorLoadInProgress.Code
	}
	if op.err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}
