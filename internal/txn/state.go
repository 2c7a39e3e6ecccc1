package txn

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a transaction's state, with Kafka's TransactionState ids (they are stored in
// __transaction_state, TxnMetadataValue.State).
type State int8

// The states, as Kafka's TransactionState:
//
//	Empty -> Ongoing                   (the first AddPartitionsToTxn / AddOffsetsToTxn)
//	Ongoing -> PrepareCommit | PrepareAbort  (EndTxn, or a timeout / a fencing InitProducerId: abort)
//	PrepareCommit -> CompleteCommit    (every marker written)
//	PrepareAbort -> CompleteAbort      (every marker written)
//	Empty | CompleteCommit | CompleteAbort -> Ongoing | Empty (epoch bump) | Dead (expired id)
//
// PrepareEpochFence is Kafka's transient state while an InitProducerId fences an ongoing
// transaction; Moldau goes from Ongoing straight to PrepareAbort with the bumped epoch (what
// Kafka writes after it), so PrepareEpochFence is never stored or shown.
const (
	Empty             State = 0
	Ongoing           State = 1
	PrepareCommit     State = 2
	PrepareAbort      State = 3
	CompleteCommit    State = 4
	CompleteAbort     State = 5
	Dead              State = 6
	PrepareEpochFence State = 7
)

// String is Kafka's name of the state (DescribeTransactions, ListTransactions, the CLI).
func (s State) String() string { return kmsg.TransactionState(s).String() }

// ParseState is the state of a Kafka state name.
func ParseState(name string) (State, bool) {
	for i, n := range kmsg.TransactionStateStrings() {
		if strings.EqualFold(n, name) {
			return State(i), true
		}
	}
	return 0, false
}

// validPrevious are Kafka's TransactionState.validPreviousStates.
var validPrevious = map[State][]State{
	Empty:             {Empty, CompleteCommit, CompleteAbort},
	Ongoing:           {Ongoing, Empty, CompleteCommit, CompleteAbort},
	PrepareCommit:     {Ongoing},
	PrepareAbort:      {Ongoing, PrepareEpochFence, Empty, CompleteCommit, CompleteAbort}, // the last three: a TV2 abort of an empty transaction
	CompleteCommit:    {PrepareCommit},
	CompleteAbort:     {PrepareAbort},
	Dead:              {Empty, CompleteAbort, CompleteCommit},
	PrepareEpochFence: {Ongoing},
}

// canTransition reports whether from -> to is one of Kafka's transitions.
func canTransition(from, to State) bool { return slices.Contains(validPrevious[to], from) }

// TopicPartition is a partition of a transaction.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// noProducerEpoch is Kafka's RecordBatch.NO_PRODUCER_EPOCH.
const noProducerEpoch int16 = -1

// epochExhausted is Kafka's TransactionMetadata.isEpochExhausted: the epoch cannot be bumped
// again (a TV2 commit needs one spare epoch for its markers).
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

// meta is one transactional id's state: what TxnMetadataValue stores, plus the in-memory bits.
// INVARIANT (per transactional id): the stored (ProducerID, ProducerEpoch) never goes back: an
// epoch only grows under one producer id, and a producer id changes only to a new one.
type meta struct {
	ProducerID     int64
	PrevProducerID int64 // the id before an epoch rotation (-1 none)
	NextProducerID int64 // TV2 epoch exhaustion: the id the transaction moves to on completion (-1 none)
	ProducerEpoch  int16
	// LastProducerEpoch is the epoch before the last bump by InitProducerId (-1 none): a retried
	// KIP-360 InitProducerId with it gets the current epoch again instead of PRODUCER_FENCED.
	LastProducerEpoch int16
	TimeoutMs         int32
	State             State
	Partitions        []TopicPartition // sorted, distinct
	StartMs           int64            // when the transaction started (-1: none ongoing)
	UpdateMs          int64
	// ClientTV is the transaction version the client runs the transaction with (2: KIP-890
	// part 2, the epoch is bumped at every EndTxn).
	ClientTV int16
}

func (m *meta) has(tp TopicPartition) bool {
	_, ok := slices.BinarySearchFunc(m.Partitions, tp, compareTP)
	return ok
}

func compareTP(a, b TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

// withPartitions returns the sorted union of ps and add.
func withPartitions(ps, add []TopicPartition) []TopicPartition {
	out := slices.Clone(ps)
	for _, tp := range add {
		if i, ok := slices.BinarySearchFunc(out, tp, compareTP); !ok {
			out = slices.Insert(out, i, tp)
		}
	}
	return out
}

// ---- record format: kmsg.TxnMetadataKey / TxnMetadataValue, as Kafka's TransactionLog ----

func encodeKey(txnID string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = 0
	k.TransactionalID = txnID
	return k.AppendTo(nil)
}

// encodeValue is Kafka's TransactionLog.valueToBytes: version 1 (flexible, with the KIP-890
// tagged fields) when the client runs TV2, else version 0 as Kafka writes for TV0/TV1. Kafka
// stores no partitions for the Empty and Complete states.
func encodeValue(m *meta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = 0
	if m.ClientTV >= 2 {
		v.Version = 1
	}
	v.ProducerID = m.ProducerID
	v.ProducerEpoch = m.ProducerEpoch
	v.TimeoutMillis = m.TimeoutMs
	v.State = kmsg.TransactionState(m.State)
	v.LastUpdateTimestamp = m.UpdateMs
	v.StartTimestamp = m.StartMs
	v.PreviousProducerID = m.PrevProducerID
	v.NextProducerID = m.NextProducerID
	v.ClientTransactionVersion = m.ClientTV
	if m.State != Empty && m.State != CompleteCommit && m.State != CompleteAbort {
		for _, tp := range m.Partitions {
			if n := len(v.Topics); n > 0 && v.Topics[n-1].Topic == tp.Topic {
				v.Topics[n-1].Partitions = append(v.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			t := kmsg.NewTxnMetadataValueTopic()
			t.Topic = tp.Topic
			t.Partitions = []int32{tp.Partition}
			v.Topics = append(v.Topics, t)
		}
	}
	return v.AppendTo(nil)
}

var errBadRecord = errors.New("txn: undecodable __transaction_state record")

// decodeKey returns the transactional id of a record key. Kafka's key version 0 is the only one.
func decodeKey(b []byte) (string, error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(b); err != nil {
		return "", fmt.Errorf("%w: key: %v", errBadRecord, err)
	}
	if k.Version != 0 {
		return "", fmt.Errorf("%w: key version %d", errBadRecord, k.Version)
	}
	return k.TransactionalID, nil
}

// decodeValue reads a TxnMetadataValue; a nil value is a tombstone (nil, nil).
func decodeValue(b []byte) (*meta, error) {
	if b == nil {
		return nil, nil
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("%w: value: %v", errBadRecord, err)
	}
	if v.Version < 0 || v.Version > 1 {
		return nil, fmt.Errorf("%w: value version %d", errBadRecord, v.Version)
	}
	st := State(v.State)
	if st < Empty || st > PrepareEpochFence {
		return nil, fmt.Errorf("%w: state %d", errBadRecord, v.State)
	}
	m := &meta{
		ProducerID: v.ProducerID, ProducerEpoch: v.ProducerEpoch, LastProducerEpoch: noProducerEpoch,
		PrevProducerID: v.PreviousProducerID, NextProducerID: v.NextProducerID,
		TimeoutMs: v.TimeoutMillis, State: st, StartMs: v.StartTimestamp, UpdateMs: v.LastUpdateTimestamp,
		ClientTV: v.ClientTransactionVersion,
	}
	if v.Version == 0 {
		m.PrevProducerID, m.NextProducerID = -1, -1
	}
	var tps []TopicPartition
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, TopicPartition{t.Topic, p})
		}
	}
	m.Partitions = withPartitions(nil, tps)
	return m, nil
}
