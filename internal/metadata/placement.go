package metadata

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Replica placement: Kafka's rack-aware assignment (AdminUtils.assignReplicasToBrokersRackAware)
// over the usable brokers (registered, unfenced, not in controlled shutdown). Brokers are
// listed alternating between racks (rack a's first broker, rack b's first, ..., then every
// rack's second); partition p's first replica (its leader) is broker (p+start) of that list,
// so leaders go round robin, and each further replica is the next broker after a shift that
// grows each time the round robin wraps, skipping racks (and brokers) the partition already
// has until every rack has one. A broker without broker.rack is in the rack "" (as Kafka's
// KRaft placer treats a missing rack); with one rack this is the rack-unaware assignment.

// usableBrokers returns the brokers new replicas may be placed on, sorted by id.
func usableBrokers(im *Image) []Broker {
	var out []Broker
	for _, b := range im.Brokers() {
		if b.Active() {
			out = append(out, b)
		}
	}
	return out
}

// rackAlternated orders brokers rack by rack: the first broker (lowest id) of every rack in
// rack-name order, then the second of every rack, and so on.
func rackAlternated(brokers []Broker) []Broker {
	byRack := map[string][]Broker{}
	var racks []string
	for _, b := range brokers {
		if _, ok := byRack[b.Rack]; !ok {
			racks = append(racks, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	slices.Sort(racks)
	for _, r := range racks {
		slices.SortFunc(byRack[r], func(a, b Broker) int { return cmp.Compare(a.NodeID, b.NodeID) })
	}
	out := make([]Broker, 0, len(brokers))
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

// placeReplicas assigns partitions [startPartition, startPartition+partitions) with rf
// replicas each over brokers (already rack-alternated). startIndex < 0 picks a random start
// and shift, as Kafka does; otherwise both are startIndex. REQUIRES: 0 < rf <= len(brokers).
func placeReplicas(brokers []Broker, partitions, rf, startPartition, startIndex int) [][]int32 {
	n := len(brokers)
	racks := map[string]bool{}
	for _, b := range brokers {
		racks[b.Rack] = true
	}
	numRacks := len(racks)
	shift := rand.IntN(n)
	if startIndex < 0 {
		startIndex = rand.IntN(n)
	} else {
		shift = startIndex
	}
	out := make([][]int32, 0, partitions)
	for p := startPartition; p < startPartition+partitions; p++ {
		if p > 0 && p%n == 0 {
			shift++
		}
		first := (p + startIndex) % n
		leader := brokers[first]
		replicas := []int32{leader.NodeID}
		haveRacks := map[string]bool{leader.Rack: true}
		haveBrokers := map[int32]bool{leader.NodeID: true}
		for k := 0; len(replicas) < rf; k++ {
			var b Broker
			if n > 1 {
				b = brokers[(first+1+(shift*numRacks+k)%(n-1))%n]
			}
			if (!haveRacks[b.Rack] || len(haveRacks) == numRacks) && (!haveBrokers[b.NodeID] || len(haveBrokers) == n) {
				replicas = append(replicas, b.NodeID)
				haveRacks[b.Rack] = true
				haveBrokers[b.NodeID] = true
			}
		}
		out = append(out, replicas)
	}
	return out
}

// errReplicationFactor is the INVALID_REPLICATION_FACTOR error of Kafka's placer for rf
// replicas over usable brokers.
func errReplicationFactor(rf, usable int) error {
	if usable == 0 {
		return fmt.Errorf("%w: unable to replicate the partition %d time(s): All brokers are currently fenced.", ErrInvalidReplicationFactor, rf)
	}
	return fmt.Errorf("%w: unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.",
		ErrInvalidReplicationFactor, rf, rf, usable)
}

// validateAssignment checks a manual assignment: every partition has a non-empty list of
// distinct registered brokers, all lists of one length (rf, if rf >= 0), each with at least
// one active broker (to lead it).
func validateAssignment(im *Image, assign [][]int32, rf int, firstPartition int) error {
	for p, replicas := range assign {
		if len(replicas) == 0 {
			return fmt.Errorf("%w: the manual partition assignment includes an empty replica list", ErrInvalidReplicaAssignment)
		}
		if rf < 0 {
			rf = len(replicas)
		} else if len(replicas) != rf {
			return fmt.Errorf("%w: the manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s)", ErrInvalidReplicaAssignment, len(replicas), rf)
		}
		seen := make(map[int32]bool, len(replicas))
		active := false
		for _, id := range replicas {
			if seen[id] {
				return fmt.Errorf("%w: the manual partition assignment includes the broker %d more than once (partition %d)", ErrInvalidReplicaAssignment, id, firstPartition+p)
			}
			seen[id] = true
			b, ok := im.brokers[id]
			if !ok {
				return fmt.Errorf("%w: the manual partition assignment includes broker %d, but no broker with that ID is registered", ErrInvalidReplicaAssignment, id)
			}
			active = active || b.Active()
		}
		if !active {
			return fmt.Errorf("%w: all brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown", ErrInvalidReplicaAssignment, firstPartition+p)
		}
	}
	return nil
}

// newPartition is a new partition's state (Kafka's buildPartitionRegistration): ISR = the
// active replicas, leader = the first of them, epochs 0. REQUIRES: one replica is active.
func newPartition(im *Image, id int32, replicas []int32) Partition {
	isr := make([]int32, 0, len(replicas))
	for _, r := range replicas {
		if b, ok := im.brokers[r]; ok && b.Active() {
			isr = append(isr, r)
		}
	}
	leader := int32(-1)
	if len(isr) > 0 {
		leader = isr[0]
	}
	return Partition{
		Partition: id,
		Leader:    leader,
		Replicas:  slices.Clone(replicas),
		ISR:       isr,
	}
}
