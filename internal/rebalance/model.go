// Package rebalance plans partition replica placements: Kafka's kafka-reassign-partitions
// --generate (AdminUtils.assignReplicasToBrokers), the decommission of a broker, and a rebalance
// that evens out replica counts, preferred-leader counts and disk use with few moves.
//
// Everything here is a pure function of a Cluster model: no network, no clock, no global state
// (randomness comes from the caller). The CLI builds the model from Metadata and DescribeLogDirs
// and executes a Plan with AlterPartitionReassignments.
//
// INVARIANTS of every plan this package returns (checked by the property tests):
//   - a target replica list never names a broker twice and keeps the partition's replication
//     factor;
//   - a target never names a broker that is not in the model (nor an excluded one);
//   - rack spread (the number of distinct racks among a partition's replicas) never goes down
//     when racks are known.
package rebalance

import (
	"cmp"
	"fmt"
	"slices"
)

// Broker is one broker of the model.
type Broker struct {
	ID   int32
	Rack string // "" when the broker has no rack
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Compare orders partitions by topic, then partition (Kafka's compareTopicPartitions).
func (tp TopicPartition) Compare(o TopicPartition) int {
	if c := cmp.Compare(tp.Topic, o.Topic); c != 0 {
		return c
	}
	return cmp.Compare(tp.Partition, o.Partition)
}

// Partition is one partition of the model. Replicas are in preference order: the first is the
// preferred leader.
type Partition struct {
	TopicPartition
	Replicas []int32
	Leader   int32 // current leader, -1 if none
	Size     int64 // bytes of the partition's log on its leader (the bytes a new replica copies)
}

// Cluster is the model the planners work on.
type Cluster struct {
	Brokers    []Broker
	Partitions []Partition
}

// Move is one partition's change of replicas.
type Move struct {
	TopicPartition
	From []int32 // current replicas
	To   []int32 // target replicas, preferred leader first
	Size int64
}

// Copies reports whether the move copies data (a broker is added); false for a reorder.
func (m Move) Copies() bool { return len(added(m.From, m.To)) > 0 }

// Adding returns the brokers of To that are not in From, in To's order.
func (m Move) Adding() []int32 { return added(m.From, m.To) }

// Removing returns the brokers of From that are not in To, in From's order.
func (m Move) Removing() []int32 { return added(m.To, m.From) }

func added(from, to []int32) []int32 {
	var out []int32
	for _, b := range to {
		if !slices.Contains(from, b) {
			out = append(out, b)
		}
	}
	return out
}

// Plan is a set of moves, sorted by partition; partitions that keep their replicas exactly are
// left out.
type Plan struct {
	Moves []Move
}

// Targets returns the plan as partition -> target replicas.
func (p Plan) Targets() map[TopicPartition][]int32 {
	out := make(map[TopicPartition][]int32, len(p.Moves))
	for _, m := range p.Moves {
		out[m.TopicPartition] = m.To
	}
	return out
}

// BytesToCopy is the data the plan copies: each partition's size once per added replica.
func (p Plan) BytesToCopy() int64 {
	var n int64
	for _, m := range p.Moves {
		n += m.Size * int64(len(m.Adding()))
	}
	return n
}

// ReplicaMoves counts the replicas the plan places on a new broker.
func (p Plan) ReplicaMoves() int {
	n := 0
	for _, m := range p.Moves {
		n += len(m.Adding())
	}
	return n
}

// Load is one broker's share of a placement.
type Load struct {
	Broker   int32
	Replicas int
	Leaders  int   // preferred leaders (first replicas)
	Bytes    int64 // sum of the sizes of the partitions it holds
}

// Loads computes each broker's load for partitions placed as in c (brokers of c only, sorted by id).
func Loads(c Cluster) []Load {
	idx := map[int32]int{}
	out := make([]Load, 0, len(c.Brokers))
	for _, b := range sortedBrokers(c.Brokers) {
		idx[b.ID] = len(out)
		out = append(out, Load{Broker: b.ID})
	}
	for _, p := range c.Partitions {
		for i, r := range p.Replicas {
			j, ok := idx[r]
			if !ok {
				continue
			}
			out[j].Replicas++
			out[j].Bytes += p.Size
			if i == 0 {
				out[j].Leaders++
			}
		}
	}
	return out
}

// Apply returns c with the plan's targets in place of the partitions' replicas.
func Apply(c Cluster, p Plan) Cluster {
	t := p.Targets()
	out := Cluster{Brokers: slices.Clone(c.Brokers), Partitions: make([]Partition, len(c.Partitions))}
	for i, part := range c.Partitions {
		part.Replicas = slices.Clone(part.Replicas)
		if to, ok := t[part.TopicPartition]; ok {
			part.Replicas = slices.Clone(to)
		}
		out.Partitions[i] = part
	}
	return out
}

func sortedBrokers(bs []Broker) []Broker {
	out := slices.Clone(bs)
	slices.SortFunc(out, func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// racked reports whether every broker has a rack (rack-aware planning); a model where only some
// brokers have one is treated as rackless by the rebalancers (Generate refuses it, as Kafka).
func racked(bs []Broker) bool {
	if len(bs) == 0 {
		return false
	}
	for _, b := range bs {
		if b.Rack == "" {
			return false
		}
	}
	return true
}

// rackSpread counts the distinct racks of replicas (0 when racks are unknown).
func rackSpread(replicas []int32, rack map[int32]string) int {
	seen := map[string]bool{}
	for _, r := range replicas {
		if k := rack[r]; k != "" {
			seen[k] = true
		}
	}
	return len(seen)
}

// validate checks the model: brokers unique, replicas unique per partition, partitions unique.
func (c Cluster) validate() error {
	ids := map[int32]bool{}
	for _, b := range c.Brokers {
		if ids[b.ID] {
			return fmt.Errorf("broker %d is listed twice", b.ID)
		}
		ids[b.ID] = true
	}
	seen := map[TopicPartition]bool{}
	for _, p := range c.Partitions {
		if seen[p.TopicPartition] {
			return fmt.Errorf("partition %s is listed twice", p.TopicPartition)
		}
		seen[p.TopicPartition] = true
		if len(p.Replicas) == 0 {
			return fmt.Errorf("partition %s has no replicas", p.TopicPartition)
		}
		for i, r := range p.Replicas {
			if slices.Contains(p.Replicas[:i], r) {
				return fmt.Errorf("partition %s names broker %d twice", p.TopicPartition, r)
			}
		}
	}
	return nil
}

// diff builds the plan from the original cluster and the final placements (same order).
func diff(orig []Partition, final [][]int32) Plan {
	var p Plan
	for i, part := range orig {
		if !slices.Equal(part.Replicas, final[i]) {
			p.Moves = append(p.Moves, Move{
				TopicPartition: part.TopicPartition,
				From:           slices.Clone(part.Replicas),
				To:             slices.Clone(final[i]),
				Size:           part.Size,
			})
		}
	}
	slices.SortFunc(p.Moves, func(a, b Move) int { return a.Compare(b.TopicPartition) })
	return p
}
