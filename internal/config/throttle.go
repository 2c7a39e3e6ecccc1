package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Replication quotas (Kafka's KIP-73). The broker keys leader.replication.throttled.rate and
// follower.replication.throttled.rate bound the bytes per second a broker serves to, and fetches
// as, followers of throttled replicas; the topic keys leader.replication.throttled.replicas and
// follower.replication.throttled.replicas say which replicas are throttled.

// Names of the replication quota keys.
const (
	LeaderReplicationThrottledRate     = "leader.replication.throttled.rate"
	FollowerReplicationThrottledRate   = "follower.replication.throttled.rate"
	LeaderReplicationThrottledReplicas = "leader.replication.throttled.replicas"
	// FollowerReplicationThrottledReplicas is the topic key naming the follower replicas whose
	// fetching is throttled.
	FollowerReplicationThrottledReplicas = "follower.replication.throttled.replicas"
)

// ThrottledReplica is one partitionId:brokerId entry of a *.replication.throttled.replicas list.
type ThrottledReplica struct {
	Partition int32
	Broker    int32
}

// ThrottledReplicas is a parsed *.replication.throttled.replicas value: All for "*" (every
// replica of the topic), else the listed entries (none for the empty list).
type ThrottledReplicas struct {
	All     bool
	Entries []ThrottledReplica
}

// Partitions lists the partitions whose replica on broker is throttled; all is true for "*".
// This is what Kafka's TopicConfigHandler.parseThrottledPartitions gives a broker's quota.
func (t ThrottledReplicas) Partitions(broker int32) (parts []int32, all bool) {
	if t.All {
		return nil, true
	}
	for _, e := range t.Entries {
		if e.Broker == broker {
			parts = append(parts, e.Partition)
		}
	}
	return parts, false
}

// throttledReplicasFormat is the reason Kafka's ThrottledReplicaListValidator gives.
const throttledReplicasFormat = "must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."

// ParseThrottledReplicas parses "*", "" or "partitionId:brokerId,..." (whitespace around items
// allowed), as Kafka's ThrottledReplicaListValidator accepts them.
func ParseThrottledReplicas(v string) (ThrottledReplicas, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "":
		return ThrottledReplicas{}, nil
	case "*":
		return ThrottledReplicas{All: true}, nil
	}
	var out ThrottledReplicas
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		p, b, ok := strings.Cut(item, ":")
		if !ok {
			return ThrottledReplicas{}, fmt.Errorf("%q %s", item, throttledReplicasFormat)
		}
		pn, perr := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		bn, berr := strconv.ParseInt(strings.TrimSpace(b), 10, 32)
		if perr != nil || berr != nil || pn < 0 || bn < 0 {
			return ThrottledReplicas{}, fmt.Errorf("%q %s", item, throttledReplicasFormat)
		}
		out.Entries = append(out.Entries, ThrottledReplica{Partition: int32(pn), Broker: int32(bn)})
	}
	return out, nil
}

func checkThrottledReplicas(v string) string {
	if _, err := ParseThrottledReplicas(v); err != nil {
		return throttledReplicasFormat
	}
	return ""
}
