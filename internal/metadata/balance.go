package metadata

// Automatic leader balance (auto.leader.rebalance.enable): every
// leader.imbalance.check.interval.seconds the active controller runs preferred elections, as
// Kafka's QuorumController schedules ReplicationControlManager.maybeBalancePartitionLeaders.
//
// Which partitions: Kafka's KRaft controller elects every partition whose leader is not its
// preferred replica and no longer reads leader.imbalance.per.broker.percentage; Moldau applies
// the key as Kafka documents it (and as its ZooKeeper controller did, checkAndTriggerAutoLeaderRebalance):
// for each broker, the share of the partitions it is the preferred replica of that another
// replica leads (or nobody); where that share is above the percentage, each of those partitions
// whose preferred replica can lead now (in the ISR, active) gets a preferred election. A
// percentage of 0 is KRaft's behaviour. At most maxElectionsPerBalance elections commit at once;
// when there were that many, the next round runs at once (Kafka's ImbalanceSchedule.IMMEDIATELY).
//
// The loop runs on every controller and acts only while it is the raft leader and has started
// its term (termStartedLocked), so a node that loses leadership stops electing with its next
// round and the new leader takes over without coordination.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LeaderBalance configures the automatic leader balance.
type LeaderBalance struct {
	Enable        bool          // auto.leader.rebalance.enable
	Percentage    int           // leader.imbalance.per.broker.percentage
	CheckInterval time.Duration // leader.imbalance.check.interval.seconds; zero: Kafka's 300 s
}

// maxElectionsPerBalance is Kafka's MAX_ELECTIONS_PER_IMBALANCE.
const maxElectionsPerBalance = 1000

// defaultImbalanceCheckInterval is leader.imbalance.check.interval.seconds' default.
const defaultImbalanceCheckInterval = 300 * time.Second

// imbalancedBrokers returns the brokers whose share of preferred partitions led by another
// replica (or by none) is above percentage %.
func imbalancedBrokers(im *Image, percentage int) map[int32]bool {
	type count struct{ preferred, notLed int }
	counts := map[int32]*count{}
	for _, t := range im.sorted {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			pref := p.Replicas[0]
			n := counts[pref]
			if n == nil {
				n = &count{}
				counts[pref] = n
			}
			n.preferred++
			if p.Leader != pref {
				n.notLed++
			}
		}
	}
	out := map[int32]bool{}
	for id, n := range counts {
		// notLed/preferred > percentage/100, in integers.
		if n.notLed > 0 && int64(n.notLed)*100 > int64(percentage)*int64(n.preferred) {
			out[id] = true
		}
	}
	return out
}

// balanceRecords is the preferred elections of one balance round on im, at most limit.
func (c *Controller) balanceRecords(im *Image, percentage, limit int) []Record {
	over := imbalancedBrokers(im, percentage)
	if len(over) == 0 {
		return nil
	}
	var records []Record
	for _, t := range im.sorted {
		for _, p := range t.Partitions {
			if len(records) >= limit {
				return records
			}
			if len(p.Replicas) == 0 || !over[p.Replicas[0]] || hasPreferredLeader(p) {
				continue
			}
			rec, err := c.electLeader(im, t, p, ElectPreferred)
			// Only a move to the preferred replica: a leaderless partition whose preferred
			// replica cannot lead is the ordinary elections' business, not the balancer's.
			if pc, ok := rec.(*PartitionChangeRecord); err == nil && ok && pc.Leader == p.Replicas[0] {
				records = append(records, rec)
			}
		}
	}
	return records
}

// balanceLeaders runs one balance round: the preferred elections it commits and whether the
// round was cut at maxElectionsPerBalance (run another at once). Nothing unless this node leads.
func (c *Controller) balanceLeaders(ctx context.Context) (elected int, more bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.termStartedLocked() {
		return 0, false, nil
	}
	im := c.Image()
	records := c.balanceRecords(im, c.cfg.LeaderBalance.Percentage, maxElectionsPerBalance)
	if len(records) == 0 {
		return 0, false, nil
	}
	if err := c.commitLocked(ctx, records...); err != nil {
		return 0, false, fmt.Errorf("leader balance: %d preferred elections: %w", len(records), err)
	}
	c.cfg.Logger.Info("leader balance: moved leadership back to the preferred replicas", "partitions", len(records),
		"percentage", c.cfg.LeaderBalance.Percentage)
	return len(records), len(records) >= maxElectionsPerBalance, nil
}

// balanceLoop runs a balance round on every tick until done is closed (Start gives it a ticker
// of LeaderBalance.CheckInterval; tests their own channel).
func (c *Controller) balanceLoop(done <-chan struct{}, tick <-chan time.Time) {
	for {
		select {
		case <-done:
			return
		case <-tick:
		}
		for {
			_, more, err := c.balanceLeaders(context.Background())
			if err != nil && !errors.Is(err, ErrNotController) && !errors.Is(err, ErrClosed) {
				c.reportError(fmt.Errorf("metadata: %w", err))
			}
			if err != nil || !more {
				break
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}
}

// startBalancer starts the balance loop when auto.leader.rebalance.enable is on; it stops with
// done.
func (c *Controller) startBalancer(done <-chan struct{}) {
	if !c.cfg.LeaderBalance.Enable {
		return
	}
	interval := c.cfg.LeaderBalance.CheckInterval
	if interval <= 0 {
		interval = defaultImbalanceCheckInterval
	}
	t := time.NewTicker(interval)
	c.wg.Go(func() {
		defer t.Stop()
		c.balanceLoop(done, t.C)
	})
}
