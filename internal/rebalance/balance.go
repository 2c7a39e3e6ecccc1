package rebalance

import (
	"cmp"
	"fmt"
	"slices"
)

// Options tune Decommission and Rebalance.
type Options struct {
	// Exclude lists brokers that must end up holding no replicas (decommissioned) and get none.
	Exclude []int32
	// DiskTolerance: after the counts are even, replicas are swapped between the brokers with the
	// most and the fewest bytes while the most exceeds the fewest by more than this fraction of
	// the mean (0: default 0.10; negative: no disk pass).
	DiskTolerance float64
	// NoLeaderBalance leaves replica order (preferred leaders) as the count passes leave it.
	NoLeaderBalance bool
}

// state is a placement being planned, with each broker's load kept current.
type state struct {
	parts    []Partition
	replicas [][]int32 // current placement, index-aligned with parts
	rack     map[int32]string
	racks    bool // every eligible broker has a rack: keep rack spread
	eligible []int32
	excluded map[int32]bool
	count    map[int32]int
	leaders  map[int32]int
	bytes    map[int32]int64
}

func newState(c Cluster, o Options) (*state, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	s := &state{
		parts:    c.Partitions,
		replicas: make([][]int32, len(c.Partitions)),
		rack:     map[int32]string{},
		excluded: map[int32]bool{},
		count:    map[int32]int{},
		leaders:  map[int32]int{},
		bytes:    map[int32]int64{},
	}
	for _, id := range o.Exclude {
		s.excluded[id] = true
	}
	var elig []Broker
	for _, b := range sortedBrokers(c.Brokers) {
		s.rack[b.ID] = b.Rack
		if !s.excluded[b.ID] {
			s.eligible = append(s.eligible, b.ID)
			elig = append(elig, b)
		}
	}
	s.racks = racked(elig)
	for i, p := range c.Partitions {
		s.replicas[i] = slices.Clone(p.Replicas)
		for j, r := range p.Replicas {
			s.count[r]++
			s.bytes[r] += p.Size
			if j == 0 {
				s.leaders[r]++
			}
		}
	}
	return s, nil
}

func (s *state) spread(rs []int32) int {
	if !s.racks {
		return 0
	}
	return rackSpread(rs, s.rack)
}

// replace puts broker to in place of from in partition i (same position).
func (s *state) replace(i int, from, to int32) {
	rs := s.replicas[i]
	j := slices.Index(rs, from)
	rs[j] = to
	size := s.parts[i].Size
	s.count[from]--
	s.count[to]++
	s.bytes[from] -= size
	s.bytes[to] += size
	if j == 0 {
		s.leaders[from]--
		s.leaders[to]++
	}
}

// canReplace reports whether to may take from's replica of partition i: not already a replica,
// eligible, and the rack spread does not go down.
func (s *state) canReplace(i int, from, to int32) bool {
	rs := s.replicas[i]
	if slices.Contains(rs, to) || s.excluded[to] || !slices.Contains(s.eligible, to) {
		return false
	}
	if !s.racks {
		return true
	}
	after := slices.Clone(rs)
	after[slices.Index(after, from)] = to
	return s.spread(after) >= s.spread(rs)
}

func (s *state) plan() Plan { return diff(s.parts, s.replicas) }

// order gives the indexes of the partitions biggest first (then by name): placing big partitions
// first spreads bytes better, as longest-processing-time-first scheduling does.
func (s *state) order() []int {
	idx := make([]int, len(s.parts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(s.parts[b].Size, s.parts[a].Size); c != 0 {
			return c
		}
		return s.parts[a].Compare(s.parts[b].TopicPartition)
	})
	return idx
}

// Decommission plans moving every replica off broker node (and off any broker in o.Exclude):
// each replica goes, in its position, to the eligible broker that keeps the partition's rack
// spread and has the fewest replicas (then the fewest preferred leaders when the replica is the
// first, then the fewest bytes, then the lowest id). Other partitions are not touched.
func Decommission(c Cluster, node int32, o Options) (Plan, error) {
	if !slices.ContainsFunc(c.Brokers, func(b Broker) bool { return b.ID == node }) {
		return Plan{}, fmt.Errorf("broker %d is not in the cluster", node)
	}
	o.Exclude = append(slices.Clone(o.Exclude), node)
	s, err := newState(c, o)
	if err != nil {
		return Plan{}, err
	}
	if err := s.evacuate(); err != nil {
		return Plan{}, err
	}
	return s.plan(), nil
}

// evacuate moves every replica held by an excluded broker to the best eligible one.
func (s *state) evacuate() error {
	for _, i := range s.order() {
		for _, from := range slices.Clone(s.replicas[i]) {
			if !s.excluded[from] {
				continue
			}
			pos := slices.Index(s.replicas[i], from)
			best := int32(-1)
			for _, to := range s.eligible {
				if !s.canReplace(i, from, to) {
					continue
				}
				if best < 0 || s.better(to, best, pos == 0) {
					best = to
				}
			}
			if best < 0 {
				return fmt.Errorf("cannot move %s off broker %d: no other broker can hold a replica (replicas %v, %d eligible brokers%s)",
					s.parts[i].TopicPartition, from, s.replicas[i], len(s.eligible), s.rackNote())
			}
			s.replace(i, from, best)
		}
	}
	return nil
}

func (s *state) rackNote() string {
	if s.racks {
		return ", keeping the partition's racks"
	}
	return ""
}

// better reports whether a is a better destination than b: fewer replicas, then (for a first
// replica) fewer preferred leaders, then fewer bytes, then the lower id.
func (s *state) better(a, b int32, first bool) bool {
	if s.count[a] != s.count[b] {
		return s.count[a] < s.count[b]
	}
	if first && s.leaders[a] != s.leaders[b] {
		return s.leaders[a] < s.leaders[b]
	}
	if s.bytes[a] != s.bytes[b] {
		return s.bytes[a] < s.bytes[b]
	}
	return a < b
}

// Rebalance plans an even placement with few moves: replicas on excluded brokers are moved off
// first; then, while the most loaded eligible broker holds two or more replicas more than the
// least loaded, one replica moves from a most loaded broker to a least loaded one (the partition
// whose size best evens their bytes, smallest data first on a tie); then replicas are swapped
// between the brokers with the most and the fewest bytes while that narrows the gap beyond
// o.DiskTolerance; last, replica order is changed (no data moves) so that preferred leaders are
// even too. Rack spread is never reduced, so with racks the counts may stay uneven where no
// move keeps it.
func Rebalance(c Cluster, o Options) (Plan, error) {
	s, err := newState(c, o)
	if err != nil {
		return Plan{}, err
	}
	if len(s.eligible) == 0 {
		return Plan{}, fmt.Errorf("no broker is left to hold replicas")
	}
	if err := s.evacuate(); err != nil {
		return Plan{}, err
	}
	s.evenCounts()
	tol := o.DiskTolerance
	if tol == 0 {
		tol = 0.10
	}
	if tol > 0 {
		s.evenBytes(tol)
	}
	if !o.NoLeaderBalance {
		s.evenLeaders()
	}
	return s.plan(), nil
}

// byLoad returns the eligible brokers sorted most loaded first (replicas, then bytes, then id).
func (s *state) byLoad() []int32 {
	out := slices.Clone(s.eligible)
	slices.SortFunc(out, func(a, b int32) int {
		if c := cmp.Compare(s.count[b], s.count[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(s.bytes[b], s.bytes[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}

// evenCounts moves single replicas from heavy to light brokers until counts are within one or no
// move is possible. Each move lowers the sum of squared counts, so it ends.
func (s *state) evenCounts() {
	for range 1 << 20 {
		if !s.countStep() {
			return
		}
	}
}

func (s *state) countStep() bool {
	order := s.byLoad()
	for _, src := range order {
		for k := len(order) - 1; k >= 0; k-- {
			dst := order[k]
			if s.count[src]-s.count[dst] < 2 {
				break // dsts only get heavier from here
			}
			if i := s.pickMove(src, dst); i >= 0 {
				s.replace(i, src, dst)
				return true
			}
		}
	}
	return false
}

// pickMove chooses a partition to move from src to dst: the one whose size brings their bytes
// closest together; ties go to the smaller partition (less to copy), then the not-leader replica,
// then partition order. -1 if none can move.
func (s *state) pickMove(src, dst int32) int {
	best := -1
	var bestGap, bestSize int64
	bestLead := true
	for i, rs := range s.replicas {
		if !slices.Contains(rs, src) || !s.canReplace(i, src, dst) {
			continue
		}
		size := s.parts[i].Size
		gap := abs((s.bytes[src] - size) - (s.bytes[dst] + size))
		lead := rs[0] == src
		if best < 0 || gap < bestGap || gap == bestGap && (size < bestSize || size == bestSize && !lead && bestLead) {
			best, bestGap, bestSize, bestLead = i, gap, size, lead
		}
	}
	return best
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// evenBytes swaps a replica of a full broker with one of an emptier broker (counts unchanged)
// while some pair's gap is above tol of the mean and a swap narrows it: the fullest broker with
// the emptiest first, then the next pairs. A swap of d bytes across a gap g > d lowers the sum of
// squared bytes by 2d(g-d), so this ends.
func (s *state) evenBytes(tol float64) {
	if len(s.eligible) < 2 {
		return
	}
	for range 10000 {
		if !s.bytesStep(tol) {
			return
		}
	}
}

func (s *state) bytesStep(tol float64) bool {
	var total int64
	for _, b := range s.eligible {
		total += s.bytes[b]
	}
	mean := float64(total) / float64(len(s.eligible))
	order := slices.Clone(s.eligible)
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(s.bytes[b], s.bytes[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, full := range order {
		for k := len(order) - 1; k >= 0; k-- {
			empty := order[k]
			gap := s.bytes[full] - s.bytes[empty]
			if gap <= 0 || float64(gap) <= tol*mean {
				break // emptier brokers come first: the rest are closer to full
			}
			if i, j := s.pickSwap(full, empty, gap); i >= 0 {
				s.replace(i, full, empty)
				s.replace(j, empty, full)
				return true
			}
		}
	}
	return false
}

// pickSwap finds partitions i (on full, not on empty) and j (on empty, not on full) whose swap
// narrows the gap the most; -1, -1 if none does.
func (s *state) pickSwap(full, empty int32, gap int64) (int, int) {
	bi, bj := -1, -1
	best := gap
	for i, ri := range s.replicas {
		if !slices.Contains(ri, full) || slices.Contains(ri, empty) || !s.canReplace(i, full, empty) {
			continue
		}
		for j, rj := range s.replicas {
			if !slices.Contains(rj, empty) || slices.Contains(rj, full) || !s.canReplace(j, empty, full) {
				continue
			}
			d := s.parts[i].Size - s.parts[j].Size
			if d <= 0 {
				continue
			}
			if g := abs(gap - 2*d); g < best {
				bi, bj, best = i, j, g
			}
		}
	}
	return bi, bj
}

// evenLeaders reorders replicas so preferred-leader counts are within one where possible: while
// some broker leads two more partitions than another, a partition led by the first that has the
// second as a replica gets the second moved to the front (the old first takes its place).
func (s *state) evenLeaders() {
	for range 1 << 20 {
		if !s.leaderStep() {
			return
		}
	}
}

func (s *state) leaderStep() bool {
	order := slices.Clone(s.eligible)
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(s.leaders[b], s.leaders[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, hi := range order {
		for k := len(order) - 1; k >= 0; k-- {
			lo := order[k]
			if s.leaders[hi]-s.leaders[lo] < 2 {
				break
			}
			// First a partition that lo leads already (the election then changes nothing),
			// then any.
			for _, needLeader := range []bool{true, false} {
				for _, i := range s.order() {
					rs := s.replicas[i]
					if rs[0] != hi || needLeader && s.parts[i].Leader != lo {
						continue
					}
					j := slices.Index(rs, lo)
					if j < 0 {
						continue
					}
					rs[0], rs[j] = rs[j], rs[0]
					s.leaders[hi]--
					s.leaders[lo]++
					return true
				}
			}
		}
	}
	return false
}
