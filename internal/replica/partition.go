package replica

import (
	"time"

	"github.com/moldau/moldau/internal/partition"
)

// partitionStore is the store over a partition.Manager.
type partitionStore struct{ parts *partition.Manager }

// open opens the partition with no role (leader epoch -1): the manager gives it one next.
func (s partitionStore) open(topic string, p int32, set partition.Settings) (local, error) {
	part, err := s.parts.Ensure(topic, p, set, -1)
	if err != nil {
		return nil, err
	}
	return partitionLocal{part}, nil
}

func (s partitionStore) removeTopic(topic string) error { return s.parts.RemoveTopic(topic) }

func (s partitionStore) removePartition(topic string, p int32) error {
	return s.parts.RemovePartition(topic, p)
}

func (s partitionStore) orphanPartitions(keep func(string, int32) bool) []tp {
	var out []tp
	for _, name := range s.parts.OrphanPartitions(keep) {
		if topic, p, ok := partition.ParseDirName(name); ok {
			out = append(out, tp{topic, p})
		}
	}
	return out
}

func (s partitionStore) orphans(keep func(string, int32) bool) []string { return s.parts.Orphans(keep) }

// partitionLocal is a *partition.Partition as the manager drives it.
type partitionLocal struct{ *partition.Partition }

func (p partitionLocal) becomeLeader(leaderEpoch, partitionEpoch int32, replicas, isr []int32, self int32) error {
	return p.BecomeLeader(partition.LeaderState{LeaderEpoch: leaderEpoch, PartitionEpoch: partitionEpoch,
		Replicas: replicas, ISR: isr, Leader: self})
}

func (p partitionLocal) becomeFollower(leader, leaderEpoch, partitionEpoch int32) error {
	return p.BecomeFollower(leader, leaderEpoch, partitionEpoch)
}

func (p partitionLocal) updateISR(isr []int32, partitionEpoch int32) {
	p.UpdateISR(isr, partitionEpoch)
}

func (p partitionLocal) isrChange(now time.Time, lagMax time.Duration) ([]int32, bool) {
	return p.ISRChange(now, lagMax)
}

func (p partitionLocal) cancelISRChange() { p.CancelISRChange() }

func (p partitionLocal) setEligibleBrokers(epochs map[int32]int64) { p.SetEligibleBrokers(epochs) }

func (p partitionLocal) settings() partition.Settings { return p.Settings() }

func (p partitionLocal) updateSettings(s partition.Settings) { p.UpdateSettings(s) }

func (p partitionLocal) followerBrokerEpochs() map[int32]int64 {
	snap, ok := p.Replication()
	if !ok {
		return nil
	}
	out := make(map[int32]int64, len(snap.Followers))
	for _, r := range snap.Followers {
		out[r.ID] = r.BrokerEpoch
	}
	return out
}
