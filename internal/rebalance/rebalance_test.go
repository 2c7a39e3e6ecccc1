package rebalance

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

func brokers(ids ...int32) []Broker {
	out := make([]Broker, len(ids))
	for i, id := range ids {
		out[i] = Broker{ID: id}
	}
	return out
}

// TestAssignReplicasRackUnaware: Kafka's AdminUtils doc example (5 brokers, 10 partitions, RF 3,
// start 0): the first replicas round-robin, the second round shifted by one.
func TestAssignReplicasRackUnaware(t *testing.T) {
	got, err := AssignReplicas(brokers(0, 1, 2, 3, 4), 10, 3, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32][]int32{
		0: {0, 1, 2}, 1: {1, 2, 3}, 2: {2, 3, 4}, 3: {3, 4, 0}, 4: {4, 0, 1},
		5: {0, 2, 3}, 6: {1, 3, 4}, 7: {2, 4, 0}, 8: {3, 0, 1}, 9: {4, 1, 2},
	}
	for p, rs := range want {
		if !slices.Equal(got[p], rs) {
			t.Errorf("partition %d: %v, want %v", p, got[p], rs)
		}
	}
}

// TestAssignReplicasRackAware: Kafka's doc example: racks 0:r1 1:r3 2:r3 3:r2 4:r2 5:r1 give the
// alternated list 0,3,1,5,4,2 and, for 7 partitions at RF 3, Kafka's documented assignment.
func TestAssignReplicasRackAware(t *testing.T) {
	bs := []Broker{{0, "rack1"}, {1, "rack3"}, {2, "rack3"}, {3, "rack2"}, {4, "rack2"}, {5, "rack1"}}
	if got := RackAlternated(bs); !slices.Equal(got, []int32{0, 3, 1, 5, 4, 2}) {
		t.Fatalf("rack alternated: %v", got)
	}
	got, err := AssignReplicas(bs, 7, 3, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32][]int32{
		0: {0, 3, 1}, 1: {3, 1, 5}, 2: {1, 5, 4}, 3: {5, 4, 2}, 4: {4, 2, 0}, 5: {2, 0, 3},
		6: {0, 4, 2},
	}
	for p, rs := range want {
		if !slices.Equal(got[p], rs) {
			t.Errorf("partition %d: %v, want %v", p, got[p], rs)
		}
	}
}

func TestAssignReplicasErrors(t *testing.T) {
	if _, err := AssignReplicas(brokers(1, 2), 3, 3, 0, 0); err == nil || err.Error() != "Replication factor: 3 larger than available brokers: 2." {
		t.Errorf("rf > brokers: %v", err)
	}
	if _, err := AssignReplicas([]Broker{{1, "a"}, {2, ""}}, 3, 2, 0, 0); err != ErrRackInfo {
		t.Errorf("partial racks: %v", err)
	}
	if _, err := AssignReplicas(brokers(1), 0, 1, 0, 0); err == nil {
		t.Error("0 partitions accepted")
	}
}

// TestAssignReplicasProperties: for random broker sets (with and without racks), every partition
// gets rf distinct brokers, replica counts are within one of each other when the partitions fill
// whole rounds, and with at least rf racks no rack holds two replicas of a partition.
func TestAssignReplicasProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		nb := 1 + rng.IntN(9)
		nracks := rng.IntN(4) // 0: no racks
		var bs []Broker
		for i := range nb {
			b := Broker{ID: int32(10 + i*3)}
			if nracks > 0 {
				b.Rack = fmt.Sprintf("r%d", rng.IntN(nracks))
			}
			bs = append(bs, b)
		}
		rf := 1 + rng.IntN(nb)
		rounds := 1 + rng.IntN(4)
		n := nb * rounds
		got, err := AssignReplicas(bs, n, rf, rng.IntN(nb), rng.IntN(nb))
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		rack := map[int32]string{}
		for _, b := range bs {
			rack[b.ID] = b.Rack
		}
		distinctRacks := rackSpread(slices.Collect(func(yield func(int32) bool) {
			for _, b := range bs {
				if !yield(b.ID) {
					return
				}
			}
		}), rack)
		count := map[int32]int{}
		for p := range int32(n) {
			rs := got[p]
			if len(rs) != rf {
				t.Fatalf("iter %d partition %d: %v, want %d replicas", iter, p, rs, rf)
			}
			for i, r := range rs {
				if slices.Contains(rs[:i], r) {
					t.Fatalf("iter %d partition %d: %v names %d twice", iter, p, rs, r)
				}
				count[r]++
			}
			if nracks > 0 && rf <= distinctRacks && rackSpread(rs, rack) != rf {
				t.Fatalf("iter %d partition %d: %v spans %d racks, want %d (racks %v)", iter, p, rs, rackSpread(rs, rack), rf, rack)
			}
		}
		if nracks == 0 {
			lo, hi := n*rf, 0
			for _, b := range bs {
				lo, hi = min(lo, count[b.ID]), max(hi, count[b.ID])
			}
			if hi-lo > 1 {
				t.Fatalf("iter %d: replica counts %v not within one", iter, count)
			}
		}
	}
}

func TestGenerate(t *testing.T) {
	c := Cluster{
		Brokers: brokers(1, 2, 3, 4),
		Partitions: []Partition{
			{TopicPartition: TopicPartition{"a", 0}, Replicas: []int32{1, 2}},
			{TopicPartition: TopicPartition{"a", 1}, Replicas: []int32{2, 3}},
			{TopicPartition: TopicPartition{"b", 0}, Replicas: []int32{1}},
		},
	}
	p, err := Generate(c, []string{"a"}, []int32{3, 4}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 2 || !slices.Equal(p.Moves[0].To, []int32{3, 4}) || !slices.Equal(p.Moves[1].To, []int32{4, 3}) {
		t.Errorf("plan: %+v", p.Moves)
	}
	if _, err := Generate(c, []string{"nope"}, []int32{1, 2}, true, nil); err == nil || err.Error() != "Topic nope not found." {
		t.Errorf("unknown topic: %v", err)
	}
	if _, err := Generate(c, []string{"a"}, []int32{4}, true, nil); err == nil {
		t.Error("rf 2 on one broker accepted")
	}
}

func part(topic string, p int32, size int64, replicas ...int32) Partition {
	return Partition{TopicPartition: TopicPartition{topic, p}, Replicas: replicas, Leader: replicas[0], Size: size}
}

func countsOf(c Cluster) map[int32]int {
	m := map[int32]int{}
	for _, l := range Loads(c) {
		m[l.Broker] = l.Replicas
	}
	return m
}

// TestDecommissionFourToThree: the replicas of broker 4 go to the other three evenly; partitions
// without a replica on 4 stay as they are; positions are kept.
func TestDecommissionFourToThree(t *testing.T) {
	c := Cluster{Brokers: brokers(1, 2, 3, 4)}
	asg, _ := AssignReplicas(c.Brokers, 8, 2, 0, 0)
	for p := range int32(8) {
		c.Partitions = append(c.Partitions, part("t", p, 100, asg[p]...))
	}
	plan, err := Decommission(c, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after := Apply(c, plan)
	counts := countsOf(after)
	if counts[4] != 0 {
		t.Fatalf("broker 4 still holds %d replicas: %+v", counts[4], plan.Moves)
	}
	for _, b := range []int32{1, 2, 3} {
		if counts[b] < 5 || counts[b] > 6 {
			t.Errorf("broker %d holds %d replicas, want 5 or 6: %v", b, counts[b], counts)
		}
	}
	for _, m := range plan.Moves {
		if !slices.Contains(m.From, 4) {
			t.Errorf("%s moved although broker 4 holds none of it", m.TopicPartition)
		}
		i := slices.Index(m.From, 4)
		for j := range m.From {
			if j != i && m.From[j] != m.To[j] {
				t.Errorf("%s: %v -> %v changed more than broker 4's slot", m.TopicPartition, m.From, m.To)
			}
		}
	}
	if plan.ReplicaMoves() != 4 || plan.BytesToCopy() != 400 {
		t.Errorf("moves %d bytes %d, want 4 and 400", plan.ReplicaMoves(), plan.BytesToCopy())
	}
}

func TestDecommissionRackAware(t *testing.T) {
	c := Cluster{
		Brokers:    []Broker{{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}},
		Partitions: []Partition{part("t", 0, 1, 1, 3), part("t", 1, 1, 3, 2)},
	}
	plan, err := Decommission(c, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Broker 3's replicas must go to 4, the only other broker of rack b.
	for _, m := range plan.Moves {
		if !slices.Contains(m.To, 4) {
			t.Errorf("%s: %v -> %v lost rack b", m.TopicPartition, m.From, m.To)
		}
	}
	// Nowhere to go: three replicas, three brokers.
	c = Cluster{Brokers: brokers(1, 2, 3), Partitions: []Partition{part("t", 0, 1, 1, 2, 3)}}
	if _, err := Decommission(c, 3, Options{}); err == nil {
		t.Error("decommission with no room succeeded")
	}
	if _, err := Decommission(c, 9, Options{}); err == nil {
		t.Error("decommission of an unknown broker succeeded")
	}
}

// TestRebalanceNewBroker: three brokers full, a fourth empty; the plan gives the fourth its share
// with the fewest moves, and preferred leaders end even.
func TestRebalanceNewBroker(t *testing.T) {
	c := Cluster{Brokers: brokers(1, 2, 3, 4)}
	asg, _ := AssignReplicas(brokers(1, 2, 3), 12, 3, 0, 0)
	for p := range int32(12) {
		c.Partitions = append(c.Partitions, part("t", p, 1000, asg[p]...))
	}
	plan, err := Rebalance(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	after := Apply(c, plan)
	for _, l := range Loads(after) {
		if l.Replicas != 9 || l.Leaders != 3 {
			t.Errorf("broker %d: %d replicas, %d preferred leaders; want 9 and 3", l.Broker, l.Replicas, l.Leaders)
		}
	}
	if plan.ReplicaMoves() != 9 {
		t.Errorf("%d replica moves, want 9", plan.ReplicaMoves())
	}
	again, err := Rebalance(after, Options{})
	if err != nil || len(again.Moves) != 0 {
		t.Errorf("rebalance of a balanced cluster: %+v, %v", again.Moves, err)
	}
}

// TestRebalanceDisk: counts already even but one broker holds the big partitions: a swap evens
// the bytes, counts stay even.
func TestRebalanceDisk(t *testing.T) {
	c := Cluster{
		Brokers: brokers(1, 2),
		Partitions: []Partition{
			part("t", 0, 1000, 1), part("t", 1, 1000, 1),
			part("t", 2, 10, 2), part("t", 3, 10, 2),
		},
	}
	plan, err := Rebalance(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls := Loads(Apply(c, plan))
	if ls[0].Replicas != 2 || ls[1].Replicas != 2 || ls[0].Bytes != 1010 || ls[1].Bytes != 1010 {
		t.Errorf("loads after: %+v (plan %+v)", ls, plan.Moves)
	}
	plan, _ = Rebalance(c, Options{DiskTolerance: -1})
	if len(plan.Moves) != 0 {
		t.Errorf("with the disk pass off: %+v", plan.Moves)
	}
}

// randomCluster builds a random valid model: some brokers, maybe racks, random replicas.
func randomCluster(rng *rand.Rand, withRacks bool) Cluster {
	nb := 2 + rng.IntN(7)
	c := Cluster{}
	for i := range nb {
		b := Broker{ID: int32(1 + i)}
		if withRacks {
			b.Rack = fmt.Sprintf("r%d", rng.IntN(3))
		}
		c.Brokers = append(c.Brokers, b)
	}
	np := rng.IntN(40)
	for p := range np {
		rf := 1 + rng.IntN(min(3, nb))
		perm := rng.Perm(nb)
		var rs []int32
		for _, k := range perm[:rf] {
			rs = append(rs, int32(1+k))
		}
		// Skew: sometimes pile onto low ids.
		if rng.IntN(3) == 0 {
			rs = rs[:0]
			for k := range rf {
				rs = append(rs, int32(1+k))
			}
		}
		c.Partitions = append(c.Partitions, Partition{
			TopicPartition: TopicPartition{fmt.Sprintf("t%d", p%3), int32(p)},
			Replicas:       rs, Leader: rs[rng.IntN(len(rs))], Size: rng.Int64N(1 << 20),
		})
	}
	return c
}

// checkPlan asserts the invariants of every plan: distinct brokers, same replication factor,
// known and not excluded brokers, rack spread not reduced.
func checkPlan(t *testing.T, iter int, c Cluster, p Plan, exclude []int32) {
	t.Helper()
	rack := map[int32]string{}
	allRacked := true
	for _, b := range c.Brokers {
		rack[b.ID] = b.Rack
		if !slices.Contains(exclude, b.ID) && b.Rack == "" {
			allRacked = false
		}
	}
	orig := map[TopicPartition][]int32{}
	for _, pt := range c.Partitions {
		orig[pt.TopicPartition] = pt.Replicas
	}
	for _, m := range p.Moves {
		if !slices.Equal(orig[m.TopicPartition], m.From) {
			t.Fatalf("iter %d %s: From %v is not the current %v", iter, m.TopicPartition, m.From, orig[m.TopicPartition])
		}
		if len(m.To) != len(m.From) {
			t.Fatalf("iter %d %s: %v -> %v changes the replication factor", iter, m.TopicPartition, m.From, m.To)
		}
		for i, r := range m.To {
			if slices.Contains(m.To[:i], r) {
				t.Fatalf("iter %d %s: %v names %d twice", iter, m.TopicPartition, m.To, r)
			}
			if _, ok := rack[r]; !ok || slices.Contains(exclude, r) {
				t.Fatalf("iter %d %s: %v names broker %d, unknown or excluded", iter, m.TopicPartition, m.To, r)
			}
		}
		if allRacked && rackSpread(m.To, rack) < rackSpread(m.From, rack) {
			t.Fatalf("iter %d %s: %v -> %v reduces rack spread", iter, m.TopicPartition, m.From, m.To)
		}
	}
}

// TestRebalanceProperties: random clusters. Every plan keeps the invariants; without racks the
// replica counts end within one with exactly the minimal number of replica moves (the larger of
// the excess above and the deficit below the mean) when the disk pass is off; the preferred-leader
// spread is never worse than the counts pass left it; a second rebalance plans nothing.
func TestRebalanceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for iter := range 400 {
		withRacks := iter%2 == 1
		c := randomCluster(rng, withRacks)
		plan, err := Rebalance(c, Options{})
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		checkPlan(t, iter, c, plan, nil)
		after := Apply(c, plan)
		again, err := Rebalance(after, Options{})
		if err != nil || len(again.Moves) != 0 {
			t.Fatalf("iter %d: second rebalance: %+v, %v", iter, again.Moves, err)
		}
		countsOnly, err := Rebalance(c, Options{DiskTolerance: -1, NoLeaderBalance: true})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, iter, c, countsOnly, nil)
		// The disk pass only swaps: counts as the counts pass left them, bytes no further apart.
		if a, b := countsOf(after), countsOf(Apply(c, countsOnly)); !maps.Equal(a, b) {
			t.Fatalf("iter %d: the disk pass changed counts %v -> %v", iter, b, a)
		}
		if a, b := bytesGap(after), bytesGap(Apply(c, countsOnly)); a > b {
			t.Fatalf("iter %d: the disk pass widened the bytes gap %d -> %d", iter, b, a)
		}
		withLeaders, _ := Rebalance(c, Options{DiskTolerance: -1})
		if ls, lc := leaderSpread(Apply(c, withLeaders)), leaderSpread(Apply(c, countsOnly)); ls > lc {
			t.Fatalf("iter %d: leader spread %d after the leader pass, %d before", iter, ls, lc)
		}
		if withRacks {
			continue
		}
		counts := countsOf(Apply(c, countsOnly))
		total, lo, hi := 0, 1<<30, 0
		for _, n := range counts {
			total += n
			lo, hi = min(lo, n), max(hi, n)
		}
		if hi-lo > 1 {
			t.Fatalf("iter %d: counts %v not within one after %+v", iter, counts, countsOnly.Moves)
		}
		floor, ceil := total/len(counts), (total+len(counts)-1)/len(counts)
		excess, deficit := 0, 0
		for _, n := range countsOf(c) {
			excess += max(0, n-ceil)
			deficit += max(0, floor-n)
		}
		if want := max(excess, deficit); countsOnly.ReplicaMoves() != want {
			t.Fatalf("iter %d: %d replica moves, minimal is %d (counts %v)", iter, countsOnly.ReplicaMoves(), want, countsOf(c))
		}
	}
}

func bytesGap(c Cluster) int64 {
	var lo, hi int64 = 1 << 62, 0
	for _, l := range Loads(c) {
		lo, hi = min(lo, l.Bytes), max(hi, l.Bytes)
	}
	return hi - lo
}

func leaderSpread(c Cluster) int {
	lo, hi := 1<<30, 0
	for _, l := range Loads(c) {
		lo, hi = min(lo, l.Leaders), max(hi, l.Leaders)
	}
	return hi - lo
}

// TestDecommissionProperties: random clusters, a random broker decommissioned: when the plan
// succeeds the broker holds nothing, only its partitions moved, invariants hold; it fails only
// when some partition of it has no eligible broker left.
func TestDecommissionProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 400 {
		c := randomCluster(rng, iter%2 == 1)
		node := c.Brokers[rng.IntN(len(c.Brokers))].ID
		plan, err := Decommission(c, node, Options{})
		if err != nil {
			continue // checked below for the rackless case
		}
		checkPlan(t, iter, c, plan, []int32{node})
		if n := countsOf(Apply(c, plan))[node]; n != 0 {
			t.Fatalf("iter %d: broker %d still holds %d replicas", iter, node, n)
		}
		for _, m := range plan.Moves {
			if !slices.Contains(m.From, node) {
				t.Fatalf("iter %d: %s moved without a replica on %d", iter, m.TopicPartition, node)
			}
		}
	}
	// Without racks a decommission fails only when a partition already spans every other broker.
	for iter := range 200 {
		c := randomCluster(rng, false)
		node := c.Brokers[rng.IntN(len(c.Brokers))].ID
		_, err := Decommission(c, node, Options{})
		full := false
		for _, p := range c.Partitions {
			if slices.Contains(p.Replicas, node) && len(p.Replicas) >= len(c.Brokers) {
				full = true
			}
		}
		if (err != nil) != full {
			t.Fatalf("iter %d: err %v, partition spanning all brokers %v", iter, err, full)
		}
	}
}

// TestRebalanceExclude: an excluded broker is emptied and the rest evened out.
func TestRebalanceExclude(t *testing.T) {
	c := Cluster{Brokers: brokers(1, 2, 3, 4)}
	asg, _ := AssignReplicas(c.Brokers, 8, 2, 0, 0)
	for p := range int32(8) {
		c.Partitions = append(c.Partitions, part("t", p, 10, asg[p]...))
	}
	plan, err := Rebalance(c, Options{Exclude: []int32{2}})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, 0, c, plan, []int32{2})
	counts := countsOf(Apply(c, plan))
	if counts[2] != 0 || counts[1]+counts[3]+counts[4] != 16 {
		t.Fatalf("counts after excluding 2: %v", counts)
	}
	for _, b := range []int32{1, 3, 4} {
		if counts[b] < 5 || counts[b] > 6 {
			t.Errorf("broker %d holds %d, want 5 or 6: %v", b, counts[b], counts)
		}
	}
	if _, err := Rebalance(c, Options{Exclude: []int32{1, 2, 3, 4}}); err == nil {
		t.Error("rebalance with every broker excluded succeeded")
	}
}
