package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnCommitReq(version int16, group, memberID string, generation int32, pid int64, topic string, offsets ...int64) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = version
	r.TransactionalID = "txn"
	r.Group = group
	r.ProducerID = pid
	r.ProducerEpoch = 3
	r.MemberID = memberID
	r.Generation = generation
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = topic
	for p, o := range offsets {
		tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		tp.Partition = int32(p)
		tp.Offset = o
		tp.LeaderEpoch = 4
		tp.Metadata = kmsg.StringPtr("txn-md")
		t.Partitions = append(t.Partitions, tp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

// txnCodes lists the error code of every partition of a TxnOffsetCommit response, in order.
func txnCodes(r *kmsg.TxnOffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func (h *harness) txnCommit(r *kmsg.TxnOffsetCommitRequest) int16 {
	h.t.Helper()
	codes := txnCodes(h.c.TxnOffsetCommit(context.Background(), r, nil))
	if len(codes) == 0 {
		h.t.Fatal("TxnOffsetCommit answered no partition")
	}
	for _, c := range codes[1:] {
		if c != codes[0] {
			h.t.Fatalf("partition codes differ: %v", codes)
		}
	}
	return codes[0]
}

func fetchStable(h *harness, version int16, group, topic string, partitions ...int32) *kmsg.OffsetFetchResponse {
	r := kmsg.NewPtrOffsetFetchRequest()
	r.Version = version
	r.RequireStable = true
	if version >= 8 {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = group
		if topic != "" {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: partitions}}
		}
		r.Groups = append(r.Groups, rg)
		return h.c.OffsetFetch(r)
	}
	r.Group = group
	if topic != "" {
		r.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: partitions}}
	}
	return h.c.OffsetFetch(r)
}

type fetchedOffset struct {
	offset int64
	err    int16
}

// fetched returns partition -> (offset, error code) of a one-group OffsetFetch response.
func fetched(r *kmsg.OffsetFetchResponse) map[int32]fetchedOffset {
	out := map[int32]fetchedOffset{}
	if r.Version >= 8 {
		for _, t := range r.Groups[0].Topics {
			for _, p := range t.Partitions {
				out[p.Partition] = fetchedOffset{p.Offset, p.ErrorCode}
			}
		}
		return out
	}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = fetchedOffset{p.Offset, p.ErrorCode}
		}
	}
	return out
}

var unstableCode = kerr.UnstableOffsetCommit.Code

// TestTxnOffsetCommitCommitAndAbort: transactional offsets are pending until their marker;
// RequireStable sees UNSTABLE_OFFSET_COMMIT for exactly the pending partitions (v7 and v8+,
// named and all-topics fetches), a fetch without it the committed offset; a commit makes them
// committed, an abort drops them.
func TestTxnOffsetCommitCommitAndAbort(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	if code := commitCode(h.c.OffsetCommit(commitReq("g", ids[0], gen, "t", 5, 6))); code != 0 {
		t.Fatalf("plain commit: %d", code)
	}
	// Partition 0 only: offsets 10 in transaction of producer 7.
	if code := h.txnCommit(txnCommitReq(3, "g", ids[0], gen, 7, "t", 10)); code != 0 {
		t.Fatalf("txn commit: %d", code)
	}
	for _, v := range []int16{7, 8, 9} {
		got := fetched(fetchStable(h, v, "g", "t", 0, 1))
		if got[0] != (fetchedOffset{-1, unstableCode}) || got[1] != (fetchedOffset{6, 0}) {
			t.Fatalf("v%d RequireStable while pending: %+v", v, got)
		}
		all := fetched(fetchStable(h, v, "g", ""))
		if all[0] != (fetchedOffset{-1, unstableCode}) || all[1] != (fetchedOffset{6, 0}) {
			t.Fatalf("v%d RequireStable all topics while pending: %+v", v, all)
		}
	}
	if o := fetch(h, 7, "g", "t", 0).Topics[0].Partitions[0]; o.Offset != 5 || o.ErrorCode != 0 {
		t.Fatalf("fetch without RequireStable while pending: %+v", o)
	}
	// A marker of another producer changes nothing.
	h.c.CompleteTxn(0, 8, true)
	if got := fetched(fetchStable(h, 7, "g", "t", 0)); got[0].err != unstableCode {
		t.Fatalf("another producer's marker ended the transaction: %+v", got)
	}
	h.c.CompleteTxn(0, 7, true)
	got := fetched(fetchStable(h, 7, "g", "t", 0, 1))
	if got[0] != (fetchedOffset{10, 0}) || got[1] != (fetchedOffset{6, 0}) {
		t.Fatalf("after commit: %+v", got)
	}
	f := fetch(h, 7, "g", "t", 0).Topics[0].Partitions[0]
	if f.LeaderEpoch != 4 || f.Metadata == nil || *f.Metadata != "txn-md" {
		t.Fatalf("committed transactional offset lost its epoch or metadata: %+v", f)
	}

	// Abort: the pending offset goes, the committed one stays.
	if code := h.txnCommit(txnCommitReq(3, "g", ids[0], gen, 7, "t", 99, 98)); code != 0 {
		t.Fatalf("second txn commit: %d", code)
	}
	if got := fetched(fetchStable(h, 7, "g", "t", 0, 1)); got[0].err != unstableCode || got[1].err != unstableCode {
		t.Fatalf("second transaction not pending: %+v", got)
	}
	h.c.CompleteTxn(0, 7, false)
	got = fetched(fetchStable(h, 7, "g", "t", 0, 1))
	if got[0] != (fetchedOffset{10, 0}) || got[1] != (fetchedOffset{6, 0}) {
		t.Fatalf("after abort: %+v", got)
	}
}

// TestTxnOffsetCommitLaterPlainCommitWins: a plain OffsetCommit written after a transactional
// offset of the same partition stays when the transaction commits (Kafka keeps the commit with
// the larger record offset).
func TestTxnOffsetCommitLaterPlainCommitWins(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	if code := h.txnCommit(txnCommitReq(3, "g", ids[0], gen, 7, "t", 10, 11)); code != 0 {
		t.Fatalf("txn commit: %d", code)
	}
	if code := commitCode(h.c.OffsetCommit(commitReq("g", ids[0], gen, "t", 20))); code != 0 {
		t.Fatalf("plain commit: %d", code)
	}
	h.c.CompleteTxn(0, 7, true)
	got := fetched(fetchStable(h, 7, "g", "t", 0, 1))
	if got[0] != (fetchedOffset{20, 0}) || got[1] != (fetchedOffset{11, 0}) {
		t.Fatalf("after commit: %+v", got)
	}
}

// TestTxnOffsetCommitFencing: v3+ are fenced with the group metadata as OffsetCommit is; v0-2
// carry none and commit to any group; a generation for a group that does not exist is
// ILLEGAL_GENERATION, none creates a simple group.
func TestTxnOffsetCommitFencing(t *testing.T) {
	h := newHarness(t, testConfig())
	ids, gen := h.stableGroup("g", 1)
	cases := []struct {
		name string
		r    *kmsg.TxnOffsetCommitRequest
		want int16
	}{
		{"stale generation", txnCommitReq(3, "g", ids[0], gen-1, 7, "t", 1), kerr.IllegalGeneration.Code},
		{"unknown member", txnCommitReq(4, "g", "nobody", gen, 7, "t", 1), kerr.UnknownMemberID.Code},
		{"no such group with a generation", txnCommitReq(5, "missing", "m", 3, 7, "t", 1), kerr.IllegalGeneration.Code},
		{"empty group id", txnCommitReq(3, "", "", -1, 7, "t", 1), kerr.InvalidGroupID.Code},
	}
	static := txnCommitReq(3, "g", "other-member", gen, 7, "t", 1)
	static.InstanceID = kmsg.StringPtr("instance-of-nobody")
	cases = append(cases, struct {
		name string
		r    *kmsg.TxnOffsetCommitRequest
		want int16
	}{"unknown instance", static, kerr.UnknownMemberID.Code})
	for _, tc := range cases {
		if code := h.txnCommit(tc.r); code != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, code, tc.want)
		}
	}
	if got := fetched(fetchStable(h, 7, "g", "t", 0)); got[0] != (fetchedOffset{-1, 0}) {
		t.Fatalf("a fenced commit left a pending offset: %+v", got)
	}
	// v2 has no group metadata: accepted for the Stable group (the fields are not read).
	old := txnCommitReq(2, "g", "ignored", 99, 7, "t", 3)
	if code := h.txnCommit(old); code != 0 {
		t.Fatalf("v2 commit to a Stable group: %d", code)
	}
	// No group and no generation: a simple group.
	if code := h.txnCommit(txnCommitReq(3, "simple", "", -1, 8, "t", 4)); code != 0 {
		t.Fatalf("simple txn commit: %d", code)
	}
	h.c.CompleteTxn(0, 8, true)
	if got := fetched(fetchStable(h, 7, "simple", "t", 0)); got[0] != (fetchedOffset{4, 0}) {
		t.Fatalf("simple group's committed txn offset: %+v", got)
	}
}

// TestTxnOffsetCommitStaticFenced: a static member's instance id held by another member id is
// FENCED_INSTANCE_ID.
func TestTxnOffsetCommitStaticFenced(t *testing.T) {
	h := newHarness(t, testConfig())
	j := joinReq(9, "g", "")
	j.InstanceID = kmsg.StringPtr("inst")
	r := recv(t, h.join(j))
	if r.ErrorCode != 0 {
		t.Fatalf("static join: %d", r.ErrorCode)
	}
	if s := recv(t, h.sync(syncReq(5, "g", r.MemberID, r.Generation, map[string]string{r.MemberID: "a"}))); s.ErrorCode != 0 {
		t.Fatalf("sync: %d", s.ErrorCode)
	}
	req := txnCommitReq(3, "g", "zombie", r.Generation, 7, "t", 1)
	req.InstanceID = kmsg.StringPtr("inst")
	if code := h.txnCommit(req); code != kerr.FencedInstanceID.Code {
		t.Fatalf("zombie static member: %d, want FENCED_INSTANCE_ID", code)
	}
	req.MemberID = r.MemberID
	if code := h.txnCommit(req); code != 0 {
		t.Fatalf("static member: %d", code)
	}
}

// TestTxnOffsetCommitVerifyAndStore: a failed verification and a failed store write answer
// every partition and leave nothing pending; verify runs only for a group coordinated here.
func TestTxnOffsetCommitVerifyAndStore(t *testing.T) {
	h := newHarness(t, testConfig())
	calls := 0
	verify := func(context.Context) (any, int16) { calls++; return nil, kerr.InvalidTxnState.Code }
	codes := txnCodes(h.c.TxnOffsetCommit(context.Background(), txnCommitReq(3, "s", "", -1, 7, "t", 1, 2), verify))
	if len(codes) != 2 || codes[0] != kerr.InvalidTxnState.Code || codes[1] != kerr.InvalidTxnState.Code || calls != 1 {
		t.Fatalf("verification failure: codes %v, %d calls", codes, calls)
	}
	if s := h.state("s"); s != "Dead" {
		t.Fatalf("a refused commit created the group: %s", s)
	}
	h.store.SetAppendError(kerr.NotEnoughReplicas)
	if code := h.txnCommit(txnCommitReq(3, "s", "", -1, 7, "t", 1)); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("store failure: %d", code)
	}
	h.store.SetAppendError(nil)
	if got := fetched(fetchStable(h, 7, "s", "t", 0)); got[0] != (fetchedOffset{-1, 0}) {
		t.Fatalf("a failed commit left a pending offset: %+v", got)
	}
	ok := func(context.Context) (any, int16) { calls++; return nil, 0 }
	if codes := txnCodes(h.c.TxnOffsetCommit(context.Background(), txnCommitReq(3, "s", "", -1, 7, "t", 1), ok)); codes[0] != 0 || calls != 2 {
		t.Fatalf("verified commit: %v, %d calls", codes, calls)
	}
	var txnRecords int
	for _, r := range h.store.records {
		if r.transactional && r.producerID == 7 && r.marker == MarkerNone {
			txnRecords++
		}
	}
	if txnRecords != 1 {
		t.Fatalf("%d transactional records of producer 7 stored, want 1", txnRecords)
	}
}

// TestTxnOffsetsReplay: after a restart, transactional offsets whose commit marker is in the
// store are committed, aborted ones are gone, and an open transaction stays pending and
// completes with CompleteTxn on the new coordinator.
func TestTxnOffsetsReplay(t *testing.T) {
	store := NewMemoryStore()
	clock := newFakeClock()
	h := newHarnessStore(t, testConfig(), store, clock)
	h.txnCommit(txnCommitReq(3, "g", "", -1, 1, "t", 10)) // committed
	store.AppendMarker(1, true)
	h.c.CompleteTxn(0, 1, true)
	h.txnCommit(txnCommitReq(3, "g", "", -1, 2, "t", 0, 20)) // aborted
	store.AppendMarker(2, false)
	h.c.CompleteTxn(0, 2, false)
	h.txnCommit(txnCommitReq(3, "g", "", -1, 3, "u", 30)) // open
	commitCode(h.c.OffsetCommit(commitReq("g", "", -1, "u", 25)))
	h.c.Close()

	h2 := newHarnessStore(t, testConfig(), store, clock)
	got := fetched(fetchStable(h2, 7, "g", "t", 0, 1))
	if got[0] != (fetchedOffset{10, 0}) || got[1] != (fetchedOffset{-1, 0}) {
		t.Fatalf("replayed committed and aborted offsets: %+v", got)
	}
	if got := fetched(fetchStable(h2, 7, "g", "u", 0)); got[0] != (fetchedOffset{-1, unstableCode}) {
		t.Fatalf("open transaction after replay: %+v", got)
	}
	// The plain commit after the open transaction's record is newer: it stays on commit.
	store.AppendMarker(3, true)
	h2.c.CompleteTxn(0, 3, true)
	if got := fetched(fetchStable(h2, 7, "g", "u", 0)); got[0] != (fetchedOffset{25, 0}) {
		t.Fatalf("open transaction committed after replay: %+v", got)
	}
	h2.c.Close()
	h3 := newHarnessStore(t, testConfig(), store, clock)
	if got := fetched(fetchStable(h3, 7, "g", "u", 0)); got[0] != (fetchedOffset{25, 0}) {
		t.Fatalf("second replay: %+v", got)
	}
}

// TestTxnReplayMarkerPartition: a marker ends the producer's pending offsets only in its own
// __consumer_offsets partition; a tombstone drops pending offsets of its partition.
func TestTxnReplayMarkerPartition(t *testing.T) {
	c := NewCoordinator(testConfig(), nil, newFakeClock())
	defer c.Close()
	recs := []StoredRecord{
		{Partition: 0, Offset: 0, Transactional: true, ProducerID: 5, Key: offsetKey("a", "t", 0), Value: offsetValue(offsetEntry{offset: 1, leaderEpoch: -1})},
		{Partition: 1, Offset: 0, Transactional: true, ProducerID: 5, Key: offsetKey("b", "t", 0), Value: offsetValue(offsetEntry{offset: 2, leaderEpoch: -1})},
		{Partition: 1, Offset: 1, Transactional: true, ProducerID: 5, Key: offsetKey("b", "t", 1), Value: offsetValue(offsetEntry{offset: 3, leaderEpoch: -1})},
		{Partition: 1, Offset: 2, Key: offsetKey("b", "t", 1), ProducerID: -1}, // tombstone
		{Partition: 1, Offset: 3, Transactional: true, ProducerID: 5, Marker: MarkerCommit},
	}
	groups, err := replayWith(c, c.stopLoad, func(fn func(StoredRecord) error) error {
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := groups["a"], groups["b"]
	if a == nil || !a.hasPendingOffset("t", 0) || len(a.offsets) != 0 {
		t.Fatalf("group a (partition 0, no marker yet) should stay pending: %+v", a)
	}
	if b == nil || b.hasPendingTxn() || b.offsets["t"][0].offset != 2 {
		t.Fatalf("group b (committed in partition 1): %+v", b)
	}
	if _, ok := b.offsets["t"][1]; ok {
		t.Fatal("the tombstoned pending offset was committed")
	}
}

// TestTxnOffsetsRetentionAndDeletion: a partition with a pending transactional offset does not
// expire and its group is not removed by retention; DeleteGroups and OffsetDelete tombstone and
// drop pending offsets, so a later commit marker brings nothing back.
func TestTxnOffsetsRetentionAndDeletion(t *testing.T) {
	h := newHarness(t, testConfig())
	commitCode(h.c.OffsetCommit(commitReq("simple", "", -1, "t", 1)))
	h.txnCommit(txnCommitReq(3, "simple", "", -1, 7, "t", 2))
	h.txnCommit(txnCommitReq(3, "pendingonly", "", -1, 7, "t", 3))
	h.clock.Advance(2 * time.Hour)
	if n := h.c.ExpireOffsets(); n != 0 {
		t.Fatalf("expired %d offsets with a pending transaction on them", n)
	}
	if h.state("simple") != "Empty" || h.state("pendingonly") != "Empty" {
		t.Fatalf("groups with an ongoing transaction removed: %s %s", h.state("simple"), h.state("pendingonly"))
	}
	h.c.CompleteTxn(0, 7, false)
	if n := h.c.ExpireOffsets(); n != 1 {
		t.Fatalf("expired %d offsets after the abort, want 1", n)
	}
	if h.state("simple") != "Dead" || h.state("pendingonly") != "Dead" {
		t.Fatalf("offsetless groups not removed after the abort: %s %s", h.state("simple"), h.state("pendingonly"))
	}

	// DeleteGroups with a pending-only partition: tombstoned, dropped.
	h.txnCommit(txnCommitReq(3, "del", "", -1, 8, "t", 4, 5))
	before := len(h.store.Records())
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"del"}
	if code := h.c.DeleteGroups(dg).Groups[0].ErrorCode; code != 0 {
		t.Fatalf("delete group with pending offsets: %d", code)
	}
	if n := len(h.store.Records()) - before; n != 3 {
		t.Fatalf("%d records for the deletion, want 2 offset tombstones and the group's", n)
	}
	h.c.CompleteTxn(0, 8, true)
	if got := fetched(fetchStable(h, 7, "del", "t", 0, 1)); got[0] != (fetchedOffset{-1, 0}) || got[1] != (fetchedOffset{-1, 0}) {
		t.Fatalf("deleted group's pending offsets came back: %+v", got)
	}

	// OffsetDelete of a pending-only partition.
	h.txnCommit(txnCommitReq(3, "od", "", -1, 9, "t", 6))
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "od"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "t"
	odt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
	od.Topics = append(od.Topics, odt)
	before = len(h.store.Records())
	if resp := h.c.OffsetDelete(od); resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if n := len(h.store.Records()) - before; n != 1 {
		t.Fatalf("%d records for the offset delete, want a tombstone", n)
	}
	if got := fetched(fetchStable(h, 7, "od", "t", 0)); got[0] != (fetchedOffset{-1, 0}) {
		t.Fatalf("offset delete left the pending offset: %+v", got)
	}
	h.c.CompleteTxn(0, 9, true)
	if got := fetched(fetchStable(h, 7, "od", "t", 0)); got[0] != (fetchedOffset{-1, 0}) {
		t.Fatalf("deleted pending offset committed: %+v", got)
	}
}

// TestCompleteTxnWhileLoading: with OffsetsPartitions, a marker that reaches a partition still
// loading (its replay may have read the log before the marker was appended) is applied once the
// groups are installed; a marker of a partition not coordinated here changes nothing; after a
// Resign and a new Elect the marker in the log is replayed.
func TestCompleteTxnWhileLoading(t *testing.T) {
	const n = 4
	store := newPartitionedStore(n)
	mine, other := groupOn(t, 1, n), groupOn(t, 2, n)
	if err := store.AppendTxn(mine, 7, 0, nil, []KV{commitKV(mine, "t", 0, 42)}); err != nil {
		t.Fatal(err)
	}
	if err := store.AppendTxn(mine, 8, 0, nil, []KV{commitKV(mine, "t", 1, 43)}); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	store.gate[1] = gate
	h := newPartitionedHarness(t, store)
	c := h.c
	c.CompleteTxn(2, 7, true) // not coordinated here: ignored
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	// The marker lands while partition 1 loads: in the log after what the replay reads.
	c.CompleteTxn(1, 7, true)
	close(gate)
	waitFor(t, "partition 1 loaded", func() bool { return fetchStable(h, 7, mine, "t", 0).ErrorCode == 0 })
	got := fetched(fetchStable(h, 7, mine, "t", 0, 1))
	if got[0] != (fetchedOffset{42, 0}) || got[1] != (fetchedOffset{-1, unstableCode}) {
		t.Fatalf("after a marker during the load: %+v", got)
	}
	if code := fetchStable(h, 7, other, "t", 0).ErrorCode; code != kerr.NotCoordinator.Code {
		t.Fatalf("other partition: %d", code)
	}
	// Producer 8 aborts; its marker is in the log. A new coordinator term replays both.
	store.appendMarker(1, 7, true)
	store.appendMarker(1, 8, false)
	c.CompleteTxn(1, 8, false)
	c.Resign(1)
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partition 1 loaded again", func() bool { return fetchStable(h, 7, mine, "t", 0).ErrorCode == 0 })
	got = fetched(fetchStable(h, 7, mine, "t", 0, 1))
	if got[0] != (fetchedOffset{42, 0}) || got[1] != (fetchedOffset{-1, 0}) {
		t.Fatalf("after the reload: %+v", got)
	}
}

// TestTxnOffsetCommitResignDuringVerify: a partition resigned while the transaction coordinator
// is asked answers NOT_COORDINATOR and leaves no group behind, which would otherwise shadow the
// partition's groups when it is elected again.
func TestTxnOffsetCommitResignDuringVerify(t *testing.T) {
	const n = 4
	store := newPartitionedStore(n)
	mine := groupOn(t, 1, n)
	if err := store.Append(mine, []KV{commitKV(mine, "t", 0, 42)}); err != nil {
		t.Fatal(err)
	}
	h := newPartitionedHarness(t, store)
	c := h.c
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partition 1 loaded", func() bool { return fetchStable(h, 7, mine, "t", 0).ErrorCode == 0 })
	verify := func(context.Context) (any, int16) { c.Resign(1); return nil, 0 }
	r := txnCommitReq(3, mine, "", -1, 7, "t", 1)
	if codes := txnCodes(c.TxnOffsetCommit(context.Background(), r, verify)); codes[0] != kerr.NotCoordinator.Code {
		t.Fatalf("resigned during the verification: %v, want NOT_COORDINATOR", codes)
	}
	if err := c.Elect(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "partition 1 loaded again", func() bool { return fetchStable(h, 7, mine, "t", 0).ErrorCode == 0 })
	if got := fetched(fetchStable(h, 7, mine, "t", 0)); got[0] != (fetchedOffset{42, 0}) {
		t.Fatalf("after the re-election: %+v, want the stored offset 42", got)
	}
}
