package txn

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestSimulation drives one coordinator over the fake clock, store and marker network with
// random steps (inits, adds, commits and aborts of TV1 and TV2 clients, zombie clients, marker
// deliveries that are partial or late, clock jumps past transaction timeouts, coordinator
// failovers) and checks Kafka's invariants at every write and after every step:
//   - a transaction's markers are all written before its Complete state is;
//   - a transactional id's (producer id, epoch) never goes back;
//   - a fenced producer never ends a transaction (no EndTxn of it succeeds);
//   - a prepared transaction always has its markers on their way (no transaction hangs).
func TestSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { simulate(t, seed, 250) })
	}
}

type simClient struct {
	id       string
	tv2      bool
	pid      int64
	epoch    int16
	fenced   bool // a later InitProducerId of its id succeeded
	lastEnd  *[2]int64
	inited   bool
	children int
}

func simulate(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	r := newRig(t, Config{Partitions: 3, AbortInterval: 5 * time.Second})
	type pe struct {
		pid   int64
		epoch int16
	}
	lastStored := map[string]*meta{}
	seenPIDs := map[string]map[int64]bool{}
	var violation string
	r.store.check = func(p int32, id string, m *meta) {
		prev := lastStored[id]
		if m != nil && (m.State == CompleteCommit || m.State == CompleteAbort) {
			if prev == nil || (prev.State != PrepareCommit && prev.State != PrepareAbort) {
				violation = fmt.Sprintf("%s: %v written after %v", id, m, prev)
			} else if !r.markers.allDelivered(prev) {
				violation = fmt.Sprintf("%s: %v written before every marker of %v", id, m, prev)
			}
		}
		if m != nil && prev != nil {
			if m.ProducerID == prev.ProducerID && m.ProducerEpoch < prev.ProducerEpoch {
				violation = fmt.Sprintf("%s: epoch went back: %v after %v", id, m, prev)
			}
			if m.ProducerID != prev.ProducerID && seenPIDs[id][m.ProducerID] {
				violation = fmt.Sprintf("%s: producer id %d reused", id, m.ProducerID)
			}
		}
		if m != nil {
			if seenPIDs[id] == nil {
				seenPIDs[id] = map[int64]bool{}
			}
			if prev != nil {
				seenPIDs[id][prev.ProducerID] = true
			}
		}
		lastStored[id] = m
	}
	ids := []string{"t1", "t2", "t3", "t4"}
	var clients []*simClient
	topics := []TopicPartition{tp("a", 0), tp("a", 1), tp("b", 0), tp("c", 2)}
	epochFailover := int32(0)
	for step := 0; step < steps; step++ {
		var what string
		switch k := rng.IntN(100); {
		case k < 15 || len(clients) == 0: // a client (new or restarted) inits its id
			id := ids[rng.IntN(len(ids))]
			cl := &simClient{id: id, tv2: id == "t3" || id == "t4"}
			v := int16(4)
			if cl.tv2 {
				v = 5
			}
			resp := r.init(id, v, -1, -1)
			what = fmt.Sprintf("init %s -> %d", id, resp.ErrorCode)
			if resp.ErrorCode == 0 {
				cl.pid, cl.epoch, cl.inited = resp.ProducerID, resp.ProducerEpoch, true
				for _, o := range clients {
					if o.id == id {
						o.fenced = true
					}
				}
				clients = append(clients, cl)
			}
		case k < 40:
			cl := clients[rng.IntN(len(clients))]
			part := topics[rng.IntN(len(topics))]
			var code int16
			if cl.tv2 {
				code = r.addV4(cl.id, cl.pid, cl.epoch, false, 5, part)[part]
			} else {
				code = r.add(cl.id, cl.pid, cl.epoch, part)[part]
			}
			what = fmt.Sprintf("add %s@%d %v -> %d", cl.id, cl.epoch, part, code)
			if code == 0 && cl.fenced {
				violation = fmt.Sprintf("fenced client %s@%d added a partition", cl.id, cl.epoch)
			}
		case k < 60:
			cl := clients[rng.IntN(len(clients))]
			commit := rng.IntN(3) > 0
			v := int16(4)
			if cl.tv2 {
				v = 5
			}
			resp := r.end(cl.id, v, cl.pid, cl.epoch, commit)
			what = fmt.Sprintf("end %s@%d commit=%v -> %d (%d/%d)", cl.id, cl.epoch, commit, resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch)
			if resp.ErrorCode == 0 {
				isRetry := cl.lastEnd != nil && cl.lastEnd[0] == int64(cl.epoch) && (cl.lastEnd[1] == 1) == commit
				if cl.fenced && !isRetry {
					violation = fmt.Sprintf("fenced client %s@%d ended a transaction (commit=%v)", cl.id, cl.epoch, commit)
				}
				cl.lastEnd = &[2]int64{int64(cl.epoch), map[bool]int64{true: 1}[commit]}
				if cl.tv2 && rng.IntN(4) > 0 { // else: the answer was lost, the client retries
					cl.pid, cl.epoch = resp.ProducerID, resp.ProducerEpoch
				}
			}
		case k < 80:
			if n := r.markers.numPending(); n > 0 {
				i := rng.IntN(n)
				partial := rng.IntN(3) == 0
				r.markers.resolve(i, !partial, 1)
				what = fmt.Sprintf("markers %d partial=%v", i, partial)
			}
		case k < 92:
			d := time.Duration(rng.IntN(40)) * time.Second
			r.clock.Advance(d)
			what = fmt.Sprintf("advance %v", d)
		default:
			epochFailover++
			r.failover(epochFailover)
			what = fmt.Sprintf("failover to coordinator epoch %d", epochFailover)
		}
		settle(t, r)
		if violation != "" {
			t.Fatalf("seed %d step %d (%s): %s", seed, step, what, violation)
		}
	}
	// Deliver everything: every transaction completes.
	for i := 0; i < 100 && r.markers.numPending() > 0; i++ {
		r.markers.resolve(0, true, 0)
		settle(t, r)
	}
	for id, m := range r.store.latest() {
		if m.State == PrepareCommit || m.State == PrepareAbort || m.State == Ongoing && false {
			t.Fatalf("seed %d: %s left %v", seed, id, m)
		}
	}
	if violation != "" {
		t.Fatalf("seed %d: %s", seed, violation)
	}
	_ = kerr.NotCoordinator
}

// settle waits until every prepared transaction of the coordinator has its marker call
// pending in the network, or completed: the coordinator has nothing left to do on its own.
func settle(t testing.TB, r *rig) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		prepared := 0
		for _, e := range r.c.entries() {
			e.mu.Lock()
			if e.m != nil && (e.m.State == PrepareCommit || e.m.State == PrepareAbort) && len(e.m.Partitions) > 0 {
				prepared++
			}
			empty := e.m != nil && (e.m.State == PrepareCommit || e.m.State == PrepareAbort) && len(e.m.Partitions) == 0
			e.mu.Unlock()
			if empty {
				prepared = -1 << 20 // an empty abort completes on its own: wait for it
			}
		}
		if prepared == r.markers.numPending() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("coordinator did not settle: %d prepared transactions, %d marker calls pending", prepared, r.markers.numPending())
		}
		time.Sleep(200 * time.Microsecond)
	}
}
