// Package replica is one broker's view of the partition layer in a cluster: the Manager applies
// metadata images to the partitions hosted here (added, removed, became leader, became
// follower) and is the only caller of role transitions; one fetcher per source broker
// replicates the partitions this broker follows (Kafka's ReplicaFetcherThread), truncating by
// leader epoch (KIP-101, KIP-279, truncate-on-fetch with DivergingEpoch, OffsetForLeaderEpoch
// as the fallback); the leader side of the ISR protocol runs in the Manager's ISR check, which
// asks partition.ISRChange and sends AlterPartition to the controller.
//
// Lock order: Manager.applyMu -> Manager.mu -> fetcher.mu -> partition locks. No lock of this
// package is held across a network round trip; fetcher.mu is held while a fetch response is
// applied (appends, truncation), so that removing a partition from its fetcher waits for an
// append in progress and no follower append lands after BecomeLeader.
package replica

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Follower is what a fetcher needs of a partition it replicates (*partition.Partition).
type Follower interface {
	LogStartOffset() int64
	LogEndOffset() int64
	HighWatermark() int64
	// LastFetchedEpoch is the epoch of the last batch in the log, -1 if empty.
	LastFetchedEpoch() int32
	// EndOffsetForEpoch is the largest local epoch <= epoch and its end offset, (-1, -1) if none.
	EndOffsetForEpoch(epoch int32) (int32, int64)
	TruncateTo(offset int64) error
	// AppendAsFollowerIn appends batches fetched from the leader of leaderEpoch, keeping their
	// offsets and epochs; refused (FENCED_LEADER_EPOCH) if the replica follows another epoch.
	AppendAsFollowerIn(leaderEpoch int32, records []byte) error
	// UpdateFollowerHighWatermark sets HW = min(leaderHW, LEO), never moving it back.
	UpdateFollowerHighWatermark(leaderHW int64)
}

// fullTruncater is the optional method of a Follower whose log can be emptied and restarted at
// an offset beyond its end (Kafka's truncateFullyAndStartAt), for a follower that fell behind
// the leader's log start.
type fullTruncater interface {
	TruncateFullyAndStartAt(offset int64) error
}

// logStartMover is the optional method of a Follower whose log start can follow the leader's
// (partition.DeleteRecords: up to the high watermark), Kafka's maybeIncrementLogStartOffset on
// a follower, so that records deleted on the leader are not served again after a failover.
type logStartMover interface {
	DeleteRecords(offset int64) (int64, error)
}

// LeaderClient is a connection to a partition leader, as a fetcher uses it.
type LeaderClient interface {
	Fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error)
	OffsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error)
	Close()
}

// fetchVersioner is the optional method of a LeaderClient that knows the highest Fetch version
// the leader supports. Below 12 (no LastFetchedEpoch, no DivergingEpoch) the fetcher truncates
// with OffsetForLeaderEpoch before fetching, as Kafka does without truncate-on-fetch.
type fetchVersioner interface {
	FetchVersion() int16
}

// Clock is the time source of the manager and the fetchers; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// tp names a topic partition.
type tp struct {
	topic string
	part  int32
}
