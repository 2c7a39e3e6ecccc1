package txn

import (
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tv := range []int16{0, 2} {
		m := &meta{ProducerID: 7, PrevProducerID: -1, NextProducerID: -1, ProducerEpoch: 3, LastProducerEpoch: -1, TimeoutMs: 60000,
			State: Ongoing, Partitions: []TopicPartition{tp("a", 0), tp("a", 2), tp("b", 1)}, StartMs: 10, UpdateMs: 20, ClientTV: tv}
		if tv == 2 {
			m.PrevProducerID, m.NextProducerID = 5, 9
		}
		got, err := decodeValue(encodeValue(m))
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != m.String() || got.PrevProducerID != m.PrevProducerID || got.NextProducerID != m.NextProducerID ||
			got.ClientTV != m.ClientTV || got.StartMs != 10 || got.UpdateMs != 20 || got.TimeoutMs != 60000 {
			t.Fatalf("tv %d: round trip %+v, want %+v", tv, got, m)
		}
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(encodeValue(m)); err != nil || v.Version != map[int16]int16{0: 0, 2: 1}[tv] {
			t.Fatalf("tv %d: value version %d (%v)", tv, v.Version, err)
		}
	}
	// Kafka stores no partitions for a completed transaction.
	done := &meta{State: CompleteCommit, Partitions: []TopicPartition{tp("a", 0)}, PrevProducerID: -1, NextProducerID: -1}
	if got, _ := decodeValue(encodeValue(done)); len(got.Partitions) != 0 {
		t.Fatalf("CompleteCommit stored partitions %v", got.Partitions)
	}
	if id, err := decodeKey(encodeKey("tx")); err != nil || id != "tx" {
		t.Fatalf("key round trip: %q %v", id, err)
	}
	for _, bad := range [][]byte{{}, {0, 1}, {0, 9, 0, 1, 'x'}} {
		if _, err := decodeKey(bad); err == nil {
			t.Fatalf("decodeKey(%v): no error", bad)
		}
		if _, err := decodeValue(bad); err == nil {
			t.Fatalf("decodeValue(%v): no error", bad)
		}
	}
}

func TestInitProducerIDFencesAndValidates(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx"
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != 0 || resp.ProducerEpoch != 0 {
		t.Fatalf("first init: %+v", resp)
	}
	first := r.init(id, 4, -1, -1)
	if first.ErrorCode != 0 || first.ProducerEpoch != 1 {
		t.Fatalf("second init: epoch %d code %d, want epoch 1", first.ProducerEpoch, first.ErrorCode)
	}
	pid := first.ProducerID
	// The producer at epoch 0 is fenced.
	if codes := r.add(id, pid, 0, tp("a", 0)); codes[tp("a", 0)] != kerr.ProducerFenced.Code {
		t.Fatalf("add with the old epoch: %v", codes)
	}
	bad := r.init(id, 4, -1, -1)
	bad.ErrorCode = 0
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis = &id, int32((16 * time.Minute).Milliseconds())
	if resp := r.c.InitProducerID(t.Context(), req); resp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above transaction.max.timeout.ms: code %d", resp.ErrorCode)
	}
	// KIP-360: the current epoch bumps; the one before it (a retry whose answer was lost) gets
	// the same epoch again; anything older is fenced.
	cur := r.state(id)
	got := r.init(id, 4, pid, cur.ProducerEpoch)
	if got.ErrorCode != 0 || got.ProducerEpoch != cur.ProducerEpoch+1 {
		t.Fatalf("KIP-360 init: %+v", got)
	}
	if again := r.init(id, 4, pid, cur.ProducerEpoch); again.ErrorCode != 0 || again.ProducerEpoch != got.ProducerEpoch {
		t.Fatalf("KIP-360 retry: %+v, want epoch %d", again, got.ProducerEpoch)
	}
	if old := r.init(id, 4, pid, 0); old.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 with a fenced epoch: code %d", old.ErrorCode)
	}
	if other := r.init(id, 4, pid+77, 0); other.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 with another producer id: code %d", other.ErrorCode)
	}
}

func TestCommitTV1SendsMarkersThenCompletes(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx1"
	ip := r.init(id, 4, -1, -1)
	pid, ep := ip.ProducerID, ip.ProducerEpoch
	if codes := r.add(id, pid, ep, tp("a", 0), tp("b", 3)); codes[tp("a", 0)] != 0 || codes[tp("b", 3)] != 0 {
		t.Fatalf("add: %v", codes)
	}
	offs := kmsg.NewPtrAddOffsetsToTxnRequest()
	offs.TransactionalID, offs.ProducerID, offs.ProducerEpoch, offs.Group = id, pid, ep, "g"
	if resp := r.c.AddOffsetsToTxn(offs); resp.ErrorCode != 0 {
		t.Fatalf("add offsets: %d", resp.ErrorCode)
	}
	if resp := r.end(id, 4, pid, ep, true); resp.ErrorCode != 0 {
		t.Fatalf("end: %d", resp.ErrorCode)
	}
	r.markers.waitPending(t, 1)
	if m := r.state(id); m.State != PrepareCommit || len(m.Partitions) != 3 {
		t.Fatalf("after EndTxn: %v", m)
	}
	// While the markers are out: CONCURRENT_TRANSACTIONS for the next steps, success for none.
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init during PrepareCommit: %d", resp.ErrorCode)
	}
	if resp := r.end(id, 4, pid, ep, true); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("EndTxn retry during PrepareCommit: %d", resp.ErrorCode)
	}
	if resp := r.end(id, 4, pid, ep, false); resp.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("abort during PrepareCommit: %d", resp.ErrorCode)
	}
	call := r.markers.pending[0].m
	if !call.Commit || call.ProducerEpoch != ep || call.TransactionVersion != 0 || len(call.Partitions) != 3 {
		t.Fatalf("markers %+v", call)
	}
	r.markers.resolve(0, true, 0)
	r.waitState(id, CompleteCommit)
	if resp := r.end(id, 4, pid, ep, true); resp.ErrorCode != 0 {
		t.Fatalf("EndTxn retry after CompleteCommit: %d", resp.ErrorCode)
	}
	if resp := r.end(id, 4, pid, ep, false); resp.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after CompleteCommit: %d", resp.ErrorCode)
	}
	// The next transaction starts from CompleteCommit with a clean partition set.
	if codes := r.add(id, pid, ep, tp("c", 0)); codes[tp("c", 0)] != 0 {
		t.Fatalf("add again: %v", codes)
	}
	if m := r.state(id); m.State != Ongoing || len(m.Partitions) != 1 {
		t.Fatalf("second transaction: %v", m)
	}
}

func TestInitAbortsOngoingAndFences(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx"
	ip := r.init(id, 4, -1, -1)
	r.add(id, ip.ProducerID, ip.ProducerEpoch, tp("a", 0))
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init during Ongoing: %d", resp.ErrorCode)
	}
	r.markers.waitPending(t, 1)
	if mk := r.markers.pending[0].m; mk.Commit || mk.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("fencing abort markers %+v, want abort at epoch %d", mk, ip.ProducerEpoch+1)
	}
	// The fenced producer cannot commit.
	if resp := r.end(id, 4, ip.ProducerID, ip.ProducerEpoch, true); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("commit by the fenced producer: %d", resp.ErrorCode)
	}
	if resp := r.end(id, 1, ip.ProducerID, ip.ProducerEpoch, true); resp.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("EndTxn v1 by the fenced producer: %d, want INVALID_PRODUCER_EPOCH", resp.ErrorCode)
	}
	r.markers.resolve(0, true, 0)
	r.waitState(id, CompleteAbort)
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != 0 || resp.ProducerEpoch != ip.ProducerEpoch+2 {
		t.Fatalf("init after the abort: %+v", resp)
	}
}

func TestTV2EndTxnBumpsEpochAndRetries(t *testing.T) {
	r := newRig(t, Config{})
	id := "tv2"
	ip := r.init(id, 5, -1, -1)
	pid, ep := ip.ProducerID, ip.ProducerEpoch
	// The partition leader adds the partition (Produce v12): AddPartitionsToTxn v5, not verify.
	if codes := r.addV4(id, pid, ep, false, 5, tp("a", 0)); codes[tp("a", 0)] != 0 {
		t.Fatalf("implicit add: %v", codes)
	}
	if codes := r.addV4(id, pid, ep, true, 5, tp("a", 0), tp("a", 1)); codes[tp("a", 0)] != 0 || codes[tp("a", 1)] != kerr.InvalidTxnState.Code {
		t.Fatalf("verify: %v", codes)
	}
	resp := r.end(id, 5, pid, ep, true)
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != ep+1 {
		t.Fatalf("EndTxn v5: %+v, want epoch %d", resp, ep+1)
	}
	r.markers.waitPending(t, 1)
	if mk := r.markers.pending[0].m; mk.ProducerEpoch != ep+1 || mk.TransactionVersion != 2 {
		t.Fatalf("TV2 markers %+v, want epoch %d and TV 2", mk, ep+1)
	}
	if again := r.end(id, 5, pid, ep, true); again.ErrorCode != kerr.ConcurrentTransactions.Code {
		t.Fatalf("retry during PrepareCommit: %d", again.ErrorCode)
	}
	r.markers.resolve(0, true, 0)
	r.waitState(id, CompleteCommit)
	if again := r.end(id, 5, pid, ep, true); again.ErrorCode != 0 || again.ProducerEpoch != ep+1 {
		t.Fatalf("retry after CompleteCommit: %+v", again)
	}
	if again := r.end(id, 5, pid, ep, false); again.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("abort with the old epoch: %d", again.ErrorCode)
	}
	// An abort with nothing added bumps the epoch too, and completes without markers.
	empty := r.end(id, 5, pid, ep+1, false)
	if empty.ErrorCode != 0 || empty.ProducerEpoch != ep+2 {
		t.Fatalf("empty abort: %+v", empty)
	}
	r.waitState(id, CompleteAbort)
	if n := r.markers.numPending(); n != 0 {
		t.Fatalf("empty abort sent %d marker calls", n)
	}
}

func TestTV2EpochExhaustionMovesToNextProducerID(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx"
	ip := r.init(id, 5, -1, -1)
	e, _ := r.c.lockEntry(id, false)
	m := e.m.clone()
	m.ProducerEpoch = math.MaxInt16 - 2
	e.m = m
	e.mu.Unlock()
	pid, ep := ip.ProducerID, int16(math.MaxInt16-2)
	r.addV4(id, pid, ep, false, 5, tp("a", 0))
	resp := r.end(id, 5, pid, ep, true)
	if resp.ErrorCode != 0 || resp.ProducerID == pid || resp.ProducerEpoch != 0 {
		t.Fatalf("EndTxn at an exhausted epoch: %+v, want a new producer id at epoch 0", resp)
	}
	r.markers.waitPending(t, 1)
	if mk := r.markers.pending[0].m; mk.ProducerID != pid || mk.ProducerEpoch != math.MaxInt16-1 {
		t.Fatalf("markers %+v, want the old id at epoch %d", mk, math.MaxInt16-1)
	}
	r.markers.resolve(0, true, 0)
	done := r.waitState(id, CompleteCommit)
	if done.ProducerID != resp.ProducerID || done.ProducerEpoch != 0 || done.PrevProducerID != pid {
		t.Fatalf("completed: %+v", done)
	}
	if again := r.end(id, 5, pid, ep, true); again.ErrorCode != 0 || again.ProducerID != resp.ProducerID {
		t.Fatalf("retry with the old id: %+v", again)
	}
}

func TestTimeoutAbortsStalledTransaction(t *testing.T) {
	r := newRig(t, Config{AbortInterval: 10 * time.Second})
	id := "slow"
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version, req.TransactionalID, req.TransactionTimeoutMillis = 4, &id, 30000
	ip := r.c.InitProducerID(t.Context(), req)
	r.add(id, ip.ProducerID, ip.ProducerEpoch, tp("a", 0))
	r.clock.Advance(20 * time.Second)
	if m := r.state(id); m.State != Ongoing {
		t.Fatalf("aborted before its timeout: %v", m)
	}
	r.clock.Advance(20 * time.Second)
	r.markers.waitPending(t, 1)
	if mk := r.markers.pending[0].m; mk.Commit || mk.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("timeout markers %+v", mk)
	}
	r.markers.resolve(0, true, 0)
	r.waitState(id, CompleteAbort)
	if resp := r.end(id, 4, ip.ProducerID, ip.ProducerEpoch, true); resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout abort: %d", resp.ErrorCode)
	}
}

func TestExpireIdleIDs(t *testing.T) {
	r := newRig(t, Config{IDExpiration: time.Hour, ExpireInterval: time.Minute})
	r.init("idle", 4, -1, -1)
	busy := r.init("busy", 4, -1, -1)
	r.add("busy", busy.ProducerID, busy.ProducerEpoch, tp("a", 0))
	r.clock.Advance(61 * time.Minute)
	if m := r.state("idle"); m != nil {
		t.Fatalf("idle id kept: %v", m)
	}
	// busy ran past its 60 s timeout and is being aborted: in progress, so not expired.
	if m := r.state("busy"); m == nil || m.State != PrepareAbort {
		t.Fatalf("busy id: %v, want PrepareAbort (timed out, not expired)", m)
	}
	if _, ok := r.store.latest()["idle"]; ok {
		t.Fatal("no tombstone stored for the expired id")
	}
	d := r.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"idle"}})
	if d.TransactionStates[0].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe expired: %d", d.TransactionStates[0].ErrorCode)
	}
}

func TestFailoverCompletesPreparedTransaction(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx"
	ip := r.init(id, 4, -1, -1)
	r.add(id, ip.ProducerID, ip.ProducerEpoch, tp("a", 0), tp("a", 1))
	r.end(id, 4, ip.ProducerID, ip.ProducerEpoch, true)
	r.markers.waitPending(t, 1)
	r.markers.resolve(0, false, 1) // one leader got its marker, then the coordinator died
	r.failover(1)
	r.markers.waitPending(t, 1)
	mk := r.markers.pending[0].m
	if !mk.Commit || mk.CoordinatorEpoch != 1 || len(mk.Partitions) != 2 {
		t.Fatalf("resent markers %+v, want a commit of both partitions at coordinator epoch 1", mk)
	}
	if m := r.state(id); m.State != PrepareCommit {
		t.Fatalf("after load: %v", m)
	}
	r.markers.resolve(0, true, 0)
	r.waitState(id, CompleteCommit)
}

func TestResignAndNotCoordinator(t *testing.T) {
	r := newRig(t, Config{})
	id := "tx"
	p := r.c.Partition(id)
	r.c.Resign(p)
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("init on a resigned partition: %d", resp.ErrorCode)
	}
	r.store.setFail(kerr.NotLeaderForPartition)
	r.c.Elect(p, 3)
	r.waitLoaded()
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("init with the store refusing (not leader): %d", resp.ErrorCode)
	}
	r.store.setFail(nil)
	if resp := r.init(id, 4, -1, -1); resp.ErrorCode != 0 {
		t.Fatalf("init: %d", resp.ErrorCode)
	}
}

func TestDescribeAndListTransactions(t *testing.T) {
	r := newRig(t, Config{})
	a := r.init("a", 4, -1, -1)
	r.add("a", a.ProducerID, a.ProducerEpoch, tp("t", 1), tp("t", 0))
	r.init("b", 4, -1, -1)
	d := r.c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"a", "zz"}})
	st := d.TransactionStates[0]
	if st.ErrorCode != 0 || st.State != "Ongoing" || st.ProducerID != a.ProducerID || st.TimeoutMillis != 60000 ||
		len(st.Topics) != 1 || len(st.Topics[0].Partitions) != 2 || st.StartTimestamp != r.clock.Now().UnixMilli() {
		t.Fatalf("describe a: %+v", st)
	}
	if d.TransactionStates[1].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe unknown: %+v", d.TransactionStates[1])
	}
	list := func(states []string, pids []int64, pattern string) []string {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version, req.StateFilters, req.ProducerIDFilters = 2, states, pids
		if pattern != "" {
			req.TransactionalIDPattern = &pattern
		}
		var out []string
		for _, s := range r.c.ListTransactions(req).TransactionStates {
			out = append(out, s.TransactionalID+":"+s.TransactionState)
		}
		return out
	}
	if got := list(nil, nil, ""); len(got) != 2 || got[0] != "a:Ongoing" || got[1] != "b:Empty" {
		t.Fatalf("list all: %v", got)
	}
	if got := list([]string{"Ongoing"}, nil, ""); len(got) != 1 || got[0] != "a:Ongoing" {
		t.Fatalf("list Ongoing: %v", got)
	}
	if got := list(nil, []int64{a.ProducerID}, ""); len(got) != 1 {
		t.Fatalf("list by producer id: %v", got)
	}
	if got := list(nil, nil, "^b"); len(got) != 1 || got[0] != "b:Empty" {
		t.Fatalf("list by pattern: %v", got)
	}
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = []string{"Bogus"}
	if resp := r.c.ListTransactions(req); len(resp.UnknownStateFilters) != 1 || len(resp.TransactionStates) != 0 {
		t.Fatalf("unknown state filter: %+v", resp)
	}
}

// TestEndTxnV5DecidesTV2: the EndTxn version decides the transaction version of the end, not how
// the partitions were added: a transaction whose partitions a v3 AddPartitionsToTxn added and an
// EndTxn v5 ends is bumped and answered as TV2.
func TestEndTxnV5DecidesTV2(t *testing.T) {
	r := newRig(t, Config{})
	ip := r.init("tx", 5, -1, -1)
	r.add("tx", ip.ProducerID, ip.ProducerEpoch, tp("a", 0))
	resp := r.end("tx", 5, ip.ProducerID, ip.ProducerEpoch, false)
	if resp.ErrorCode != 0 || resp.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("EndTxn v5: %+v", resp)
	}
	r.markers.waitPending(t, 1)
	if mk := r.markers.pending[0].m; mk.TransactionVersion != 2 || mk.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("markers %+v", mk)
	}
}

// TestAddPartitionsUnknown: a partition that does not exist fails the whole AddPartitionsToTxn
// (UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED) and adds nothing; the group's
// __consumer_offsets partition of AddOffsetsToTxn is not checked (the topic may not exist yet).
func TestAddPartitionsUnknown(t *testing.T) {
	r := newRig(t, Config{PartitionExists: func(topic string, _ int32) bool { return topic == "a" }})
	ip := r.init("tx", 4, -1, -1)
	codes := r.add("tx", ip.ProducerID, ip.ProducerEpoch, tp("a", 0), tp("zz", 0))
	if codes[tp("zz", 0)] != kerr.UnknownTopicOrPartition.Code || codes[tp("a", 0)] != kerr.OperationNotAttempted.Code {
		t.Fatalf("codes %v", codes)
	}
	if m := r.state("tx"); m.State != Empty {
		t.Fatalf("after a refused add: %v", m)
	}
	offs := kmsg.NewPtrAddOffsetsToTxnRequest()
	offs.TransactionalID, offs.ProducerID, offs.ProducerEpoch, offs.Group = "tx", ip.ProducerID, ip.ProducerEpoch, "g"
	if resp := r.c.AddOffsetsToTxn(offs); resp.ErrorCode != 0 {
		t.Fatalf("add offsets: %d", resp.ErrorCode)
	}
	if m := r.state("tx"); m.State != Ongoing || len(m.Partitions) != 1 || m.Partitions[0].Topic != ConsumerOffsetsTopic {
		t.Fatalf("after AddOffsetsToTxn: %v", m)
	}
}
