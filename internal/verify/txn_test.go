package verify

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/moldau/moldau/internal/brokertest"
)

// TestCheckTxn: the accounting of a --transactions run finds each kind of violation in made-up
// inputs, and passes a clean one.
func TestCheckTxn(t *testing.T) {
	// Producer 0: txn A (seq 0-2) committed, txn B (3-4) aborted, txn C (5-6) unknown.
	txns := []Txn{{0, 0, 3, TxnCommitted}, {0, 3, 2, TxnAborted}, {0, 5, 2, TxnUnknown}}
	acks := func(seqs ...int64) []Ack {
		var out []Ack
		for _, s := range seqs {
			out = append(out, Ack{ID: ID{0, s}, Partition: 0, Offset: s})
		}
		return out
	}
	reads := func(seqs ...int64) []Read {
		var out []Read
		for i, s := range seqs {
			out = append(out, Read{ID: ID{0, s}, Partition: 0, Offset: int64(i)})
		}
		return out
	}
	base := func() TxnInput {
		return TxnInput{Sent: map[int]int64{0: 7}, Txns: txns, Acks: acks(0, 1, 2, 3, 4, 5, 6),
			Committed: reads(0, 1, 2, 5, 6), All: reads(0, 1, 2, 3, 4, 5, 6)}
	}
	r := CheckTxn(base())
	tr := r.Transactions
	if !r.OK || tr.Committed != 1 || tr.Aborted != 1 || tr.Unknown != 1 || tr.UnknownCommitted != 1 || tr.ReadCommitted != 5 ||
		tr.ReadUncommitted != 7 || tr.CommittedRecords != 3 || tr.AbortedRecords != 2 {
		t.Fatalf("clean run: %+v %+v", r, tr)
	}
	in := base()
	in.Committed = reads(0, 1, 2) // the unknown one aborted: fine
	if r := CheckTxn(in); !r.OK || r.Transactions.UnknownAborted != 1 {
		t.Fatalf("unknown resolved as aborted: %+v", r.Problems)
	}

	cases := []struct {
		name   string
		mutate func(*TxnInput)
		want   string
	}{
		{"aborted record read", func(in *TxnInput) { in.Committed = reads(0, 1, 2, 3, 5, 6) }, "1 records of aborted transactions read with read_committed"},
		{"committed record lost", func(in *TxnInput) { in.Committed = reads(0, 2, 5, 6) }, "1 records of committed transactions not read with read_committed"},
		{"unknown read in part", func(in *TxnInput) { in.Committed = reads(0, 1, 2, 5) }, "1 transactions read only in part with read_committed"},
		{"duplicate", func(in *TxnInput) { in.Committed = reads(0, 1, 1, 2, 5, 6) }, "1 duplicated records (read_committed)"},
		{"reordered", func(in *TxnInput) { in.Committed = reads(0, 2, 1, 5, 6) }, "1 reordered records (read_committed)"},
		{"acked record not in the log", func(in *TxnInput) { in.All = reads(0, 1, 2, 4, 5, 6) }, "1 acknowledged records not read with read_uncommitted"},
		{"nothing committed", func(in *TxnInput) { in.Txns = txns[1:]; in.Committed = reads(5, 6) }, "no transaction was committed"},
	}
	for _, c := range cases {
		in := base()
		c.mutate(&in)
		r := CheckTxn(in)
		if r.OK || !slices.Contains(r.Problems, c.want) {
			t.Errorf("%s: ok %v, problems %q; want %q", c.name, r.OK, r.Problems, c.want)
		}
	}
}

// TestRunTransactionsAgainstKfake runs --transactions against franz-go's kfake, which implements
// Kafka's transactions: transactions commit and abort, and the read-back accounts for them all.
func TestRunTransactionsAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Options{
		Bootstrap:    c.ListenAddrs(),
		Partitions:   3,
		Producers:    2,
		Rate:         600,
		Duration:     1500 * time.Millisecond,
		Transactions: true,
		TxnRecords:   5,
		AbortRatio:   0.4,
		Logf:         t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := r.Transactions
	if !r.OK || tr == nil {
		t.Fatalf("report %+v, problems %q", r, r.Problems)
	}
	if tr.Committed < 5 || tr.Aborted < 2 || tr.Unknown != 0 {
		t.Errorf("transactions: %d committed, %d aborted, %d unknown; want several of each of the first two", tr.Committed, tr.Aborted, tr.Unknown)
	}
	if tr.ReadCommitted != tr.CommittedRecords || tr.ReadUncommitted != r.Acknowledged || r.Acknowledged != tr.CommittedRecords+tr.AbortedRecords {
		t.Errorf("read_committed %d of %d committed records; read_uncommitted %d of %d acknowledged (%d aborted)",
			tr.ReadCommitted, tr.CommittedRecords, tr.ReadUncommitted, r.Acknowledged, tr.AbortedRecords)
	}
	if strings.Contains(r.Topic, " ") || r.Partitions != 3 {
		t.Errorf("topic %q, %d partitions", r.Topic, r.Partitions)
	}
}

// TestRunTransactionsAgainstOneBroker: --transactions against one in-process Moldau broker:
// read_committed shows exactly the committed transactions, read_uncommitted every acknowledged
// record.
func TestRunTransactionsAgainstOneBroker(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Options{
		Bootstrap:    []string{addr},
		Partitions:   3,
		Producers:    2,
		Rate:         400,
		Duration:     1500 * time.Millisecond,
		Transactions: true,
		TxnRecords:   5,
		AbortRatio:   0.4,
		Logf:         t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := r.Transactions
	if !r.OK || tr == nil {
		t.Fatalf("report %+v, problems %q", r, r.Problems)
	}
	if tr.Committed < 3 || tr.Aborted < 1 || tr.ReadCommitted != tr.CommittedRecords || tr.ReadUncommitted != r.Acknowledged {
		t.Errorf("%d committed, %d aborted; read_committed %d of %d committed records, read_uncommitted %d of %d acknowledged",
			tr.Committed, tr.Aborted, tr.ReadCommitted, tr.CommittedRecords, tr.ReadUncommitted, r.Acknowledged)
	}
}
