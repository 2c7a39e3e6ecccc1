package broker

import (
	"time"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metrics"
	"github.com/moldau/moldau/internal/replica"
)

// newQuotas makes the leader and follower replication quotas (KIP-73) with the static window
// settings; their bounds and throttled partitions come from each image (applyQuotas).
func newQuotas(cfg *config.Config, clock replica.QuotaClock) (leader, follower *replica.Quota) {
	qc := replica.QuotaConfig{
		Samples: int(cfg.ReplicationQuotaWindowNum),
		Window:  time.Duration(cfg.ReplicationQuotaWindowSizeSeconds) * time.Second,
		Clock:   clock,
	}
	return replica.NewQuota(qc), replica.NewQuota(qc)
}

// applyQuotas sets the replication quotas from an image, as Kafka's BrokerConfigHandler and
// TopicConfigHandler do on a config change: the bounds from the effective
// leader/follower.replication.throttled.rate (this broker's dynamic value, else the cluster
// default, else the static one), the throttled partitions from each topic's
// leader/follower.replication.throttled.replicas entries naming this broker (or "*").
func (b *Broker) applyQuotas(im *metadata.Image) {
	eff := b.effectiveConfigOf(im)
	b.leaderQuota.SetBound(eff.LeaderReplicationThrottledRate)
	b.followerQuota.SetBound(eff.FollowerReplicationThrottledRate)
	leader, follower := replica.Throttled{}, replica.Throttled{}
	for _, t := range im.Topics() {
		b.addThrottled(leader, t, config.LeaderReplicationThrottledReplicas)
		b.addThrottled(follower, t, config.FollowerReplicationThrottledReplicas)
	}
	b.leaderQuota.SetThrottled(leader)
	b.followerQuota.SetThrottled(follower)
}

func (b *Broker) addThrottled(dst replica.Throttled, t *metadata.Topic, key string) {
	v, ok := t.Configs[key]
	if !ok {
		return
	}
	tr, err := config.ParseThrottledReplicas(v)
	if err != nil {
		// Validated before it was committed; an older or foreign record is ignored.
		b.log.Warn("topic config ignored", "topic", t.Name, "key", key, "value", v, "err", err)
		return
	}
	parts, all := tr.Partitions(b.cfg.NodeID)
	if !all && len(parts) == 0 {
		return
	}
	tp := replica.ThrottledPartitions{All: all}
	if !all {
		tp.Partitions = make(map[int32]bool, len(parts))
		for _, p := range parts {
			tp.Partitions[p] = true
		}
	}
	dst[t.Name] = tp
}

// quotaMetrics exports the replication quotas' accounting (Kafka's LeaderReplication and
// FollowerReplication byte-rate): the bytes of throttled partitions each counted, their
// measured rate and the bound.
func (b *Broker) quotaMetrics(m *metrics.Metrics) {
	for _, q := range []struct {
		side  string
		quota *replica.Quota
	}{{"leader", b.leaderQuota}, {"follower", b.followerQuota}} {
		m.Counter("moldau_"+q.side+"_replication_throttled_bytes_total",
			"Bytes of partitions in "+q.side+".replication.throttled.replicas this broker replicated as a "+q.side+".",
			func() float64 { return float64(q.quota.Recorded()) })
		m.Gauge("moldau_"+q.side+"_replication_throttled_byte_rate",
			"Measured rate of those bytes, per second, over the replication quota's window.",
			q.quota.Rate)
		m.Gauge("moldau_"+q.side+"_replication_throttled_rate",
			"The bound: "+q.side+".replication.throttled.rate (9223372036854775807: none).",
			func() float64 { return float64(q.quota.Bound()) })
	}
}
