package rebalance

import (
	"errors"
	"fmt"
	"slices"
)

// ErrRackInfo is returned when some but not all brokers have a rack.
var ErrRackInfo = errors.New("Not all brokers have rack information for replica rack aware assignment.")

// AssignReplicas places partitions 0..n-1 with rf replicas each on brokers, the way Kafka's
// AdminUtils.assignReplicasToBrokers does (kafka-reassign-partitions --generate, topic creation):
// first replicas round-robin from startIndex, the others at an increasing shift, so replicas and
// leaders spread evenly and a broker's partitions have their followers on different brokers.
// When every broker has a rack the round-robin walks a rack-alternated broker list and each
// partition's followers go first to racks that hold none of its replicas yet.
//
// start and shift are Kafka's startIndex and nextReplicaShift (Kafka picks both at random;
// pass rand.IntN(len(brokers)) for each to do the same, 0 and 0 to be reproducible).
func AssignReplicas(brokers []Broker, n, rf, start, shift int) (map[int32][]int32, error) {
	if n <= 0 {
		return nil, errors.New("Number of partitions must be larger than 0.")
	}
	if rf <= 0 {
		return nil, errors.New("Replication factor must be larger than 0.")
	}
	if rf > len(brokers) {
		return nil, fmt.Errorf("Replication factor: %d larger than available brokers: %d.", rf, len(brokers))
	}
	withRack := 0
	for _, b := range brokers {
		if b.Rack != "" {
			withRack++
		}
	}
	switch withRack {
	case 0:
		ids := make([]int32, len(brokers))
		for i, b := range brokers {
			ids[i] = b.ID
		}
		return assignRackUnaware(ids, n, rf, start, shift), nil
	case len(brokers):
		return assignRackAware(brokers, n, rf, start, shift), nil
	default:
		return nil, ErrRackInfo
	}
}

// replicaIndex is the position of a partition's (j+2)th replica: never the first replica's.
func replicaIndex(first, shift, j, n int) int {
	return (first + 1 + (shift+j)%(n-1)) % n
}

func assignRackUnaware(ids []int32, n, rf, start, shift int) map[int32][]int32 {
	out := make(map[int32][]int32, n)
	nb := len(ids)
	for p := range n {
		if p > 0 && p%nb == 0 {
			shift++
		}
		first := (p + start) % nb
		rs := []int32{ids[first]}
		for j := range rf - 1 {
			rs = append(rs, ids[replicaIndex(first, shift, j, nb)])
		}
		out[int32(p)] = rs
	}
	return out
}

func assignRackAware(brokers []Broker, n, rf, start, shift int) map[int32][]int32 {
	rack := map[int32]string{}
	for _, b := range brokers {
		rack[b.ID] = b.Rack
	}
	list := RackAlternated(brokers)
	nb := len(list)
	numRacks := 0
	{
		seen := map[string]bool{}
		for _, b := range brokers {
			if !seen[b.Rack] {
				seen[b.Rack] = true
				numRacks++
			}
		}
	}
	out := make(map[int32][]int32, n)
	for p := range n {
		if p > 0 && p%nb == 0 {
			shift++
		}
		first := (p + start) % nb
		leader := list[first]
		rs := []int32{leader}
		racks := map[string]bool{rack[leader]: true}
		k := 0
		for range rf - 1 {
			for {
				b := list[replicaIndex(first, shift*numRacks, k, nb)]
				k++
				// Skip a broker whose rack already has a replica while some rack has none, and
				// a broker that has one while some broker has none.
				if (!racks[rack[b]] || len(racks) == numRacks) && (!slices.Contains(rs, b) || len(rs) == nb) {
					rs = append(rs, b)
					racks[rack[b]] = true
					break
				}
			}
		}
		out[int32(p)] = rs
	}
	return out
}

// RackAlternated lists brokers alternating between racks (racks sorted, each rack's brokers by
// id): racks a:{0,1,2} b:{3,4,5} c:{6,7,8} give 0,3,6,1,4,7,2,5,8.
func RackAlternated(brokers []Broker) []int32 {
	byRack := map[string][]int32{}
	for _, b := range sortedBrokers(brokers) {
		byRack[b.Rack] = append(byRack[b.Rack], b.ID)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	slices.Sort(racks)
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		r := racks[i%len(racks)]
		if len(byRack[r]) > 0 {
			out = append(out, byRack[r][0])
			byRack[r] = byRack[r][1:]
		}
	}
	return out
}

// Generate is kafka-reassign-partitions --generate: every partition of the given topics placed
// afresh on brokers by AssignReplicas, per topic with the replication factor of its partition 0
// (as Kafka). rackAware=false ignores the brokers' racks. startAndShift supplies each topic's
// start index and shift (Kafka: random); it is called twice per topic with len(brokers).
func Generate(c Cluster, topics []string, brokers []int32, rackAware bool, startAndShift func(n int) int) (Plan, error) {
	if err := c.validate(); err != nil {
		return Plan{}, err
	}
	known := map[int32]Broker{}
	for _, b := range c.Brokers {
		known[b.ID] = b
	}
	// Kafka's order: the brokers as described by the cluster, filtered to the list.
	var use []Broker
	for _, b := range c.Brokers {
		if slices.Contains(brokers, b.ID) {
			if !rackAware {
				b.Rack = ""
			}
			use = append(use, b)
		}
	}
	byTopic := map[string][]int{}
	for i, p := range c.Partitions {
		byTopic[p.Topic] = append(byTopic[p.Topic], i)
	}
	final := make([][]int32, len(c.Partitions))
	for i, p := range c.Partitions {
		final[i] = p.Replicas
	}
	for _, t := range topics {
		idx := byTopic[t]
		if len(idx) == 0 {
			return Plan{}, fmt.Errorf("Topic %s not found.", t)
		}
		slices.SortFunc(idx, func(a, b int) int { return c.Partitions[a].Compare(c.Partitions[b].TopicPartition) })
		rf := len(c.Partitions[idx[0]].Replicas)
		start, shift := 0, 0
		if startAndShift != nil && len(use) > 0 {
			start, shift = startAndShift(len(use)), startAndShift(len(use))
		}
		asg, err := AssignReplicas(use, len(idx), rf, start, shift)
		if err != nil {
			return Plan{}, err
		}
		for _, i := range idx {
			if rs, ok := asg[c.Partitions[i].Partition]; ok {
				final[i] = rs
			}
		}
	}
	return generatePlan(c.Partitions, final, topics), nil
}

// generatePlan keeps every partition of the topics in the plan, moved or not: --generate prints
// the whole proposed assignment.
func generatePlan(orig []Partition, final [][]int32, topics []string) Plan {
	var p Plan
	for i, part := range orig {
		if slices.Contains(topics, part.Topic) {
			p.Moves = append(p.Moves, Move{TopicPartition: part.TopicPartition, From: slices.Clone(part.Replicas), To: slices.Clone(final[i]), Size: part.Size})
		}
	}
	slices.SortFunc(p.Moves, func(a, b Move) int { return a.Compare(b.TopicPartition) })
	return p
}
