package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// txnRecord is a record as confluent_txn.py consume prints it.
type txnRecord struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Value     string `json:"value"`
}

// confluentTxnConsume reads topic to its end with confluent-kafka-python at isolation (
// read_committed or read_uncommitted) and returns "offset:value" of every record, in order.
func confluentTxnConsume(t *testing.T, addr, topic, isolation string) []string {
	t.Helper()
	out := mustRun(t, "", python, "testdata/confluent_txn.py", "consume", addr, topic, isolation)
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		var r txnRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("record %q: %v", line, err)
		}
		got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	return got
}

// offsetValues is "offset:prefix-i" for offsets[i].
func offsetValues(prefix string, offsets []int64) []string {
	var out []string
	for i, o := range offsets {
		out = append(out, fmt.Sprintf("%d:%s-%d", o, prefix, i))
	}
	return out
}

// stableAndEnd are partition 0's last stable offset (ListOffsets latest, read_committed) and its
// log end offset (read_uncommitted).
func stableAndEnd(t *testing.T, adm *kadm.Client, topic string) (lso, end int64, err error) {
	t.Helper()
	ctx := testContext(t, 10*time.Second)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		return 0, 0, err
	}
	e, _ := ends.Lookup(topic, 0)
	s, _ := stable.Lookup(topic, 0)
	return s.Offset, e.Offset, nil
}

// TestTxnConfluent: confluent-kafka-python (librdkafka) transactions on one node.
//   - commit, abort, commit: each transaction's records take consecutive offsets and its marker
//     the next one; a read_committed consumer sees exactly the two committed transactions' records,
//     a read_uncommitted one all three; the last stable offset is the log end.
//   - a transaction left open (the producer killed with SIGKILL after its records were
//     delivered) holds the last stable offset at its first record until the coordinator aborts it
//     after its transaction.timeout.ms (5 s; the broker looks every 500 ms,
//     transaction.abort.timed.out.transaction.cleanup.interval.ms); then DescribeTransactions says
//     CompleteAbort, read_committed shows none of its records and read_uncommitted all.
func TestTxnConfluent(t *testing.T) {
	target := txnTarget(t)
	needConfluent(t)
	addr := startTxnNode(t, target, map[string]string{
		"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
	})
	adm := kadm.NewClient(newClient(t, addr))

	t.Run("commit-abort-commit", func(t *testing.T) {
		const topic, n = "txn-confluent-seq", 10
		createTopic(t, addr, topic, 1, nil)
		out := mustRun(t, "", python, "testdata/confluent_txn.py", "sequence", addr, topic, "confluent-seq", strconv.Itoa(n))
		txns := map[string][]int64{}
		var order []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct {
				Txn     string  `json:"txn"`
				Offsets []int64 `json:"offsets"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("sequence output %q: %v", line, err)
			}
			txns[r.Txn] = r.Offsets
			order = append(order, r.Txn)
		}
		if !slices.Equal(order, []string{"commit1", "abort", "commit2"}) {
			t.Fatalf("sequence output: transactions %v, want commit1, abort, commit2:\n%s", order, out)
		}
		next := int64(0)
		for _, name := range order {
			for i, o := range txns[name] {
				if o != next+int64(i) {
					t.Errorf("%s: offsets %v, want %d.. (one offset for each earlier transaction's marker)", name, txns[name], next)
					break
				}
			}
			next += n + 1 // the records, then the transaction's marker
		}
		lso, end, err := stableAndEnd(t, adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		if lso != next || end != next {
			t.Errorf("last stable offset %d, log end %d: want both %d (three transactions of %d records and their markers)", lso, end, next, n)
		}
		wantCommitted := append(offsetValues("commit1", txns["commit1"]), offsetValues("commit2", txns["commit2"])...)
		if got := confluentTxnConsume(t, addr, topic, "read_committed"); !slices.Equal(got, wantCommitted) {
			t.Errorf("read_committed:\n got %v\nwant %v", got, wantCommitted)
		}
		wantAll := append(append(offsetValues("commit1", txns["commit1"]), offsetValues("abort", txns["abort"])...), offsetValues("commit2", txns["commit2"])...)
		if got := confluentTxnConsume(t, addr, topic, "read_uncommitted"); !slices.Equal(got, wantAll) {
			t.Errorf("read_uncommitted:\n got %v\nwant %v", got, wantAll)
		}
	})

	t.Run("open-transaction-times-out", func(t *testing.T) {
		const topic, txnID, n, timeoutMs = "txn-confluent-open", "confluent-open", 5, 5000
		createTopic(t, addr, topic, 1, nil)
		ctx := testContext(t, 90*time.Second)
		cmd := exec.CommandContext(ctx, python, "testdata/confluent_txn.py", "open", addr, topic, txnID, strconv.Itoa(n), strconv.Itoa(timeoutMs))
		cmd.Env = childEnv()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		launched := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var offsets []int64
		sc := bufio.NewScanner(stdout)
		open := false
		for !open && sc.Scan() {
			line := sc.Text()
			var r struct {
				Offsets []int64 `json:"offsets"`
			}
			switch {
			case line == "OPEN":
				open = true
			case json.Unmarshal([]byte(line), &r) == nil:
				offsets = r.Offsets
			default:
				t.Errorf("open: unexpected output %q", line)
			}
		}
		if !open || len(offsets) != n {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("open: no OPEN after %d delivered records (offsets %v): %v\n%s", n, offsets, sc.Err(), stderr.String())
		}
		// The open transaction holds the last stable offset at its first record.
		lso, end, err := stableAndEnd(t, adm, topic)
		if err != nil {
			t.Fatal(err)
		}
		if lso != offsets[0] || end != offsets[n-1]+1 {
			t.Errorf("with the transaction open: last stable offset %d, log end %d; want %d and %d", lso, end, offsets[0], offsets[n-1]+1)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		waitFor(t, 45*time.Second, "the coordinator aborts the open transaction", func() (bool, string) {
			lso, end, err := stableAndEnd(t, adm, topic)
			if err != nil {
				return false, err.Error()
			}
			if lso != end || end != offsets[n-1]+2 {
				return false, fmt.Sprintf("last stable offset %d, log end %d; want both %d (the records and the abort marker)", lso, end, offsets[n-1]+2)
			}
			return true, ""
		})
		if took := time.Since(launched); took < timeoutMs*time.Millisecond {
			t.Errorf("the transaction ended %s after the producer started, before its transaction.timeout.ms %d", took, timeoutMs)
		}
		described, err := adm.DescribeTransactions(testContext(t, 10*time.Second), txnID)
		if err == nil {
			err = described[txnID].Err
		}
		if err != nil {
			t.Fatalf("describe transaction %s: %v", txnID, err)
		}
		if d := described[txnID]; d.State != "CompleteAbort" || d.TimeoutMillis != timeoutMs || len(d.Topics) != 0 {
			t.Errorf("describe transaction %s: state %q timeout %d ms topics %v, want CompleteAbort, %d ms, none", txnID, d.State, d.TimeoutMillis, d.Topics, timeoutMs)
		}
		if got := confluentTxnConsume(t, addr, topic, "read_committed"); len(got) != 0 {
			t.Errorf("read_committed after the abort: %v, want nothing", got)
		}
		if got, want := confluentTxnConsume(t, addr, topic, "read_uncommitted"), offsetValues("open", offsets); !slices.Equal(got, want) {
			t.Errorf("read_uncommitted after the abort:\n got %v\nwant %v", got, want)
		}
	})
}
