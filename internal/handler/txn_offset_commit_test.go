package handler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/group"
	"github.com/moldau/moldau/internal/metadata"
)

// fakeVerifier records the AddPartitions calls and answers with answer (or fails with err).
type fakeVerifier struct {
	calls  []verifyCall
	answer error
	err    error
}

type verifyCall struct {
	txnID      string
	pid        int64
	epoch      int16
	partitions []metadata.TopicPartition
	verifyOnly bool
}

func (f *fakeVerifier) AddPartitions(_ context.Context, txnID string, pid int64, epoch int16, tps []metadata.TopicPartition, verifyOnly bool) (map[metadata.TopicPartition]error, error) {
	f.calls = append(f.calls, verifyCall{txnID, pid, epoch, tps, verifyOnly})
	if f.err != nil {
		return nil, f.err
	}
	out := map[metadata.TopicPartition]error{}
	for _, tp := range tps {
		out[tp] = f.answer
	}
	return out, nil
}

func txnOffsetReq(version int16, group string) *kmsg.TxnOffsetCommitRequest {
	r := kmsg.NewPtrTxnOffsetCommitRequest()
	r.Version = version
	r.TransactionalID = "tx"
	r.Group = group
	r.ProducerID = 11
	r.ProducerEpoch = 2
	t := kmsg.NewTxnOffsetCommitRequestTopic()
	t.Topic = "t"
	for _, p := range []int32{0, 7} { // "t" has one partition: 7 does not exist
		tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		tp.Partition = p
		tp.Offset = 42
		t.Partitions = append(t.Partitions, tp)
	}
	r.Topics = append(r.Topics, t)
	return r
}

// TestTxnOffsetCommitVerification: v5 adds the group's __consumer_offsets partition to the
// transaction (verifyOnly=false), v0-4 verify it (verifyOnly=true) unless verification is
// disabled; the coordinator's answers are mapped as Kafka maps them; without a verifier the
// answer is COORDINATOR_NOT_AVAILABLE; an unknown partition is UNKNOWN_TOPIC_OR_PARTITION and
// is not committed.
func TestTxnOffsetCommitVerification(t *testing.T) {
	h, meta := testMetadataHandler(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ct := range []metadata.CreateTopic{
		{Name: "t", Partitions: 1, ReplicationFactor: 1},
		{Name: metadata.ConsumerOffsetsTopic, Partitions: 5, ReplicationFactor: 1, Internal: true},
	} {
		if _, err := meta.CreateTopic(ctx, ct); err != nil {
			t.Fatal(err)
		}
	}
	coord := group.NewCoordinator(group.Config{}, group.NewMemoryStore(), nil)
	defer coord.Close()
	if err := coord.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	h.groups = coord
	offsetsTP := metadata.TopicPartition{Topic: metadata.ConsumerOffsetsTopic, Partition: group.OffsetsPartition("g", 5)}

	codes := func(r kmsg.Response) (known, unknown int16) {
		resp := r.(*kmsg.TxnOffsetCommitResponse)
		ps := resp.Topics[0].Partitions
		if len(ps) != 2 || ps[0].Partition != 0 || ps[1].Partition != 7 {
			t.Fatalf("response partitions: %+v", ps)
		}
		return ps[0].ErrorCode, ps[1].ErrorCode
	}
	cases := []struct {
		name       string
		version    int16
		disabled   bool
		verifier   *fakeVerifier
		wantCall   bool
		verifyOnly bool
		want       int16
	}{
		{"v5 adds the partition", 5, false, &fakeVerifier{}, true, false, 0},
		{"v5 adds even with verification disabled", 5, true, &fakeVerifier{}, true, false, 0},
		{"v3 verifies", 3, false, &fakeVerifier{}, true, true, 0},
		{"v3 not verified when disabled", 3, true, &fakeVerifier{}, false, false, 0},
		{"v5 no verifier", 5, false, nil, false, false, kerr.CoordinatorNotAvailable.Code},
		{"v2 no verifier", 2, false, nil, false, false, kerr.CoordinatorNotAvailable.Code},
		{"fenced", 4, false, &fakeVerifier{answer: kerr.ProducerFenced}, true, true, kerr.InvalidProducerEpoch.Code},
		{"abortable v3", 3, false, &fakeVerifier{answer: kerr.TransactionAbortable}, true, true, kerr.InvalidTxnState.Code},
		{"abortable v4", 4, false, &fakeVerifier{answer: kerr.TransactionAbortable}, true, true, kerr.TransactionAbortable.Code},
		{"not in the transaction", 3, false, &fakeVerifier{answer: fmt.Errorf("no: %w", kerr.InvalidTxnState)}, true, true, kerr.InvalidTxnState.Code},
		{"concurrent", 5, false, &fakeVerifier{answer: kerr.ConcurrentTransactions}, true, false, kerr.ConcurrentTransactions.Code},
		{"unreachable", 5, false, &fakeVerifier{err: errors.New("dial: refused")}, true, false, kerr.CoordinatorLoadInProgress.Code},
		{"timed out", 3, false, &fakeVerifier{answer: kerr.RequestTimedOut}, true, true, kerr.CoordinatorNotAvailable.Code},
	}
	for i, tc := range cases {
		h.opts.TxnVerificationEnable = !tc.disabled
		h.opts.TxnVerifier = nil
		if tc.verifier != nil {
			h.opts.TxnVerifier = tc.verifier
		}
		groupName := "g"
		r := txnOffsetReq(tc.version, groupName)
		r.ProducerID = int64(100 + i)
		known, unknown := codes(handle(t, h, r))
		if known != tc.want || unknown != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("%s: codes %d/%d, want %d/%d", tc.name, known, unknown, tc.want, kerr.UnknownTopicOrPartition.Code)
		}
		if tc.verifier == nil {
			continue
		}
		switch {
		case !tc.wantCall && len(tc.verifier.calls) != 0:
			t.Errorf("%s: %d coordinator calls, want none", tc.name, len(tc.verifier.calls))
		case tc.wantCall && len(tc.verifier.calls) != 1:
			t.Errorf("%s: %d coordinator calls, want 1", tc.name, len(tc.verifier.calls))
		case tc.wantCall:
			c := tc.verifier.calls[0]
			if c.txnID != "tx" || c.pid != r.ProducerID || c.epoch != 2 || c.verifyOnly != tc.verifyOnly ||
				len(c.partitions) != 1 || c.partitions[0] != offsetsTP {
				t.Errorf("%s: call %+v, want %v verifyOnly=%v", tc.name, c, offsetsTP, tc.verifyOnly)
			}
		}
		// A committed one is pending for its producer: RequireStable sees it until the marker.
		f := kmsg.NewPtrOffsetFetchRequest()
		f.Version = 7
		f.Group = groupName
		f.RequireStable = true
		f.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		got := coord.OffsetFetch(f).Topics[0].Partitions[0]
		wantErr := int16(0)
		if tc.want == 0 {
			wantErr = kerr.UnstableOffsetCommit.Code
		}
		if got.ErrorCode != wantErr {
			t.Errorf("%s: OffsetFetch RequireStable code %d, want %d", tc.name, got.ErrorCode, wantErr)
		}
		coord.CompleteTxn(offsetsTP.Partition, r.ProducerID, false)
	}
}
