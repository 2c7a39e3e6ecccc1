package handler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/record"
)

// produceVerifier is a transaction coordinator's TxnVerifier that answers what the test set and
// records the calls.
type produceVerifier struct {
	mu     sync.Mutex
	calls  []produceVerifyCall
	answer func(tps []metadata.TopicPartition) (map[metadata.TopicPartition]error, error)
}

type produceVerifyCall struct {
	txnID      string
	pid        int64
	epoch      int16
	tps        []metadata.TopicPartition
	verifyOnly bool
}

func (f *produceVerifier) AddPartitions(_ context.Context, txnID string, pid int64, epoch int16, tps []metadata.TopicPartition, verifyOnly bool) (map[metadata.TopicPartition]error, error) {
	f.mu.Lock()
	f.calls = append(f.calls, produceVerifyCall{txnID, pid, epoch, append([]metadata.TopicPartition(nil), tps...), verifyOnly})
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		return map[metadata.TopicPartition]error{}, nil
	}
	return answer(tps)
}

func (f *produceVerifier) takeCalls() []produceVerifyCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// allFail answers every partition with code.
func allFail(code *kerr.Error) func([]metadata.TopicPartition) (map[metadata.TopicPartition]error, error) {
	return func(tps []metadata.TopicPartition) (map[metadata.TopicPartition]error, error) {
		out := map[metadata.TopicPartition]error{}
		for _, tp := range tps {
			out[tp] = code
		}
		return out, nil
	}
}

// txnProduceFixture is broker 1 leading t-0 and t-1 alone, its handler with the fake verifier.
func txnProduceFixture(t *testing.T, opts Options) (*Handler, *replicationFixture) {
	t.Helper()
	f := newReplicationFixture(t, 1, map[int32][]int32{0: {1}, 1: {1}})
	for i := int32(0); i < 2; i++ {
		if err := f.part(i).BecomeLeader(partition.LeaderState{LeaderEpoch: 0, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}); err != nil {
			t.Fatal(err)
		}
	}
	opts.NodeID = 1
	return New(opts, f.meta, f.parts, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))), f
}

// txnProduce is a Produce of version v with transactional id "tx" of one transactional batch of
// producer pid (epoch 0) per partition, at the given sequences.
func txnProduce(v int16, pid int64, seqs map[int32]int32) *kmsg.ProduceRequest {
	r := kmsg.NewPtrProduceRequest()
	r.Version = v
	r.Acks, r.TimeoutMillis = -1, 5000
	r.TransactionID = kmsg.StringPtr("tx")
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	for _, i := range []int32{0, 1} {
		seq, ok := seqs[i]
		if !ok {
			continue
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = i
		rp.Records = record.Build(record.BatchSpec{Transactional: true, BaseTimestamp: time.Now().UnixMilli(), ProducerID: pid,
			ProducerEpoch: 0, BaseSequence: seq, Records: []record.Record{{Value: []byte("v")}}})
		rt.Partitions = append(rt.Partitions, rp)
	}
	r.Topics = append(r.Topics, rt)
	return r
}

// codes answers the produce error code of each partition, by index.
func codes(t *testing.T, resp kmsg.Response) map[int32]int16 {
	t.Helper()
	out := map[int32]int16{}
	for _, rt := range resp.(*kmsg.ProduceResponse).Topics {
		for _, rp := range rt.Partitions {
			out[rp.Partition] = rp.ErrorCode
		}
	}
	return out
}

// TestProduceVerifiesTransactions: KIP-890 part 1 through the TxnVerifier: a producer's first
// transactional write to a partition is verified (verifyOnly, one call for the request's
// partitions), later ones of the open transaction are not; a partition the coordinator does not
// know is INVALID_TXN_STATE and nothing is appended; v12 adds instead of verifying.
func TestProduceVerifiesTransactions(t *testing.T) {
	fv := &produceVerifier{}
	h, f := txnProduceFixture(t, Options{TxnVerifier: fv, TxnVerificationEnable: true})
	resp := handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0, 1: 0}))
	if c := codes(t, resp); c[0] != 0 || c[1] != 0 {
		t.Fatalf("verified produce: %v", c)
	}
	calls := fv.takeCalls()
	if len(calls) != 1 || calls[0].txnID != "tx" || calls[0].pid != 7 || calls[0].epoch != 0 || !calls[0].verifyOnly || len(calls[0].tps) != 2 {
		t.Fatalf("verifier calls %+v", calls)
	}
	handle(t, h, txnProduce(11, 7, map[int32]int32{0: 1}))
	if calls := fv.takeCalls(); len(calls) != 0 {
		t.Fatalf("the open transaction was verified again: %+v", calls)
	}

	fv.answer = allFail(kerr.InvalidTxnState)
	resp = handle(t, h, txnProduce(11, 8, map[int32]int32{0: 0}))
	sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.InvalidTxnState.Code || sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "Partition was not added to the transaction") {
		t.Fatalf("unverified partition: %d %v", sp.ErrorCode, sp.ErrorMessage)
	}
	if end := f.part(0).LogEndOffset(); end != 2 {
		t.Fatalf("log end %d after the refused write, want 2", end)
	}

	fv.answer = nil
	handle(t, h, txnProduce(12, 9, map[int32]int32{1: 0}))
	if calls := fv.takeCalls(); len(calls) != 2 || calls[1].verifyOnly || calls[1].pid != 9 {
		t.Fatalf("v12 calls %+v, want an add (verifyOnly false)", calls)
	}
}

// TestProduceVerificationErrors: Kafka's translation of what the coordinator answers, per
// Produce version.
func TestProduceVerificationErrors(t *testing.T) {
	fv := &produceVerifier{}
	h, _ := txnProduceFixture(t, Options{TxnVerifier: fv, TxnVerificationEnable: true})
	for i, tc := range []struct {
		v      int16
		answer *kerr.Error // nil: the call itself fails
		want   *kerr.Error
	}{
		{11, kerr.CoordinatorNotAvailable, kerr.NotEnoughReplicas},
		{11, kerr.NotCoordinator, kerr.NotEnoughReplicas},
		{11, kerr.CoordinatorLoadInProgress, kerr.NotEnoughReplicas},
		{11, kerr.ConcurrentTransactions, kerr.NotEnoughReplicas},
		{12, kerr.ConcurrentTransactions, kerr.ConcurrentTransactions},
		{11, kerr.ProducerFenced, kerr.InvalidProducerEpoch},
		{10, kerr.TransactionAbortable, kerr.InvalidTxnState},
		{11, kerr.TransactionAbortable, kerr.TransactionAbortable},
		{11, kerr.InvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{11, nil, kerr.NotEnoughReplicas},
	} {
		if tc.answer == nil {
			fv.answer = func([]metadata.TopicPartition) (map[metadata.TopicPartition]error, error) {
				return nil, errors.New("no coordinator reachable")
			}
		} else {
			fv.answer = allFail(tc.answer)
		}
		resp := handle(t, h, txnProduce(tc.v, int64(100+i), map[int32]int32{0: 0}))
		if c := codes(t, resp)[0]; c != tc.want.Code {
			t.Errorf("v%d coordinator %v: code %d, want %s", tc.v, tc.answer, c, tc.want.Message)
		}
	}
}

// TestProduceVerificationRace: a marker that ends the producer's transaction while its write is
// being verified (the hanging-transaction race KIP-890 closes) makes the write fail with
// INVALID_TXN_STATE rather than open a transaction nobody will end.
func TestProduceVerificationRace(t *testing.T) {
	fv := &produceVerifier{}
	h, f := txnProduceFixture(t, Options{TxnVerifier: fv, TxnVerificationEnable: true})
	fv.answer = func(tps []metadata.TopicPartition) (map[metadata.TopicPartition]error, error) {
		if _, err := f.part(0).WriteTxnMarker(record.Marker{ProducerID: 7, ProducerEpoch: 0, CoordinatorEpoch: 0}, 1); err != nil {
			t.Error(err)
		}
		return map[metadata.TopicPartition]error{}, nil
	}
	resp := handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0}))
	if c := codes(t, resp)[0]; c != kerr.InvalidTxnState.Code {
		t.Fatalf("write verified before the marker: code %d, want INVALID_TXN_STATE", c)
	}
	if ps := f.part(0).Producers(); len(ps) != 1 || ps[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("a transaction was opened: %+v", ps)
	}
}

// TestProduceTransactionalWithoutVerification: no TxnVerifier refuses transactional writes
// (INVALID_TXN_STATE); verification disabled appends them below v12 without asking; two
// producers in one request are INVALID_PRODUCER_ID_MAPPING.
func TestProduceTransactionalWithoutVerification(t *testing.T) {
	h, _ := txnProduceFixture(t, Options{})
	if c := codes(t, handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0}))); c[0] != kerr.InvalidTxnState.Code {
		t.Fatalf("no coordinator: %v", c)
	}
	fv := &produceVerifier{}
	h, f := txnProduceFixture(t, Options{TxnVerifier: fv})
	if c := codes(t, handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0}))); c[0] != 0 {
		t.Fatalf("verification disabled: %v", c)
	}
	if calls := fv.takeCalls(); len(calls) != 0 {
		t.Fatalf("verification disabled, yet %+v", calls)
	}
	if ps := f.part(0).Producers(); len(ps) != 1 || ps[0].CurrentTxnStartOffset != 0 {
		t.Fatalf("producers %+v", ps)
	}
	r := txnProduce(11, 8, map[int32]int32{0: 0})
	r2 := txnProduce(11, 9, map[int32]int32{1: 0})
	r.Topics[0].Partitions = append(r.Topics[0].Partitions, r2.Topics[0].Partitions...)
	if c := codes(t, handle(t, h, r)); c[0] != kerr.InvalidProducerIDMapping.Code || c[1] != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("two producers: %v", c)
	}
}

// TestHasTransactionalRecords: any batch of any partition counts, a torn tail stops the walk
// without a panic, and the walk allocates nothing.
func TestHasTransactionalRecords(t *testing.T) {
	plain := record.Build(record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: []record.Record{{Value: []byte("v")}}})
	txn := txnProduce(11, 7, map[int32]int32{0: 0}).Topics[0].Partitions[0].Records
	req := func(parts ...[]byte) *kmsg.ProduceRequest {
		r := kmsg.NewPtrProduceRequest()
		rt := kmsg.NewProduceRequestTopic()
		for _, b := range parts {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = b
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
		return r
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		r    *kmsg.ProduceRequest
		want bool
	}{
		{"plain", req(plain, plain), false},
		{"second batch", req(cat(plain, txn)), true},
		{"second partition", req(plain, txn), true},
		{"torn tail", req(cat(plain, txn[:30])), false},
		{"empty", req(nil), false},
	} {
		if got := hasTransactionalRecords(tc.r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	r := req(plain, cat(plain, plain))
	if n := testing.AllocsPerRun(100, func() { hasTransactionalRecords(r) }); n != 0 {
		t.Fatalf("%.1f allocations", n)
	}
}

// TestProduceRetriesConcurrentTransactions: with transaction version 2 a producer's next
// transaction starts while its previous one's markers are still being written, and the
// coordinator answers CONCURRENT_TRANSACTIONS; the leader asks again (after 1, 2, 4 ms ...) and
// appends once the coordinator adds the partition, rather than send the client away. Here the
// previous transaction's marker lands between the asks, clearing the first guard: the retry
// takes a fresh one.
func TestProduceRetriesConcurrentTransactions(t *testing.T) {
	fv := &produceVerifier{}
	h, f := txnProduceFixture(t, Options{TxnVerifier: fv, TxnVerificationEnable: true})
	mustOK := func(resp kmsg.Response) {
		t.Helper()
		if c := codes(t, resp)[0]; c != 0 {
			t.Fatalf("produce: code %d", c)
		}
	}
	mustOK(handle(t, h, txnProduce(12, 7, map[int32]int32{0: 0}))) // transaction 1, epoch 0
	asks := 0
	fv.answer = func(tps []metadata.TopicPartition) (map[metadata.TopicPartition]error, error) {
		asks++
		if asks == 2 { // the previous transaction completes: its marker (TV2: epoch 1) lands
			if _, err := f.part(0).WriteTxnMarker(record.Marker{ProducerID: 7, ProducerEpoch: 1, Commit: true}, 2); err != nil {
				t.Error(err)
			}
		}
		if asks <= 2 {
			return allFail(kerr.ConcurrentTransactions)(tps)
		}
		return map[metadata.TopicPartition]error{}, nil
	}
	r := txnProduce(12, 7, map[int32]int32{0: 0})
	r.Topics[0].Partitions[0].Records = record.Build(record.BatchSpec{Transactional: true, BaseTimestamp: time.Now().UnixMilli(),
		ProducerID: 7, ProducerEpoch: 1, BaseSequence: 0, Records: []record.Record{{Value: []byte("v")}}}) // transaction 2 runs at epoch 1
	mustOK(handle(t, h, r))
	if asks != 3 {
		t.Fatalf("coordinator asked %d times, want 3", asks)
	}
	if first := f.part(0).Producers()[0].CurrentTxnStartOffset; first != 2 {
		t.Fatalf("transaction 2 starts at %d, want 2 (after transaction 1 and its marker)", first)
	}
}
