package cli

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/brokertest"
)

// TestKafkaTransactionsArguments: argparse4j's errors and the tool's own checks, as Kafka 4.4's
// kafka-transactions.sh prints them (captured from it), none reaching a broker.
func TestKafkaTransactionsArguments(t *testing.T) {
	bs := []string{"--bootstrap-server", "127.0.0.1:1"}
	mainUsage := "usage: kafka-transactions.sh [-h] [-v] [--command-config FILE]\n                             --bootstrap-server host:port COMMAND ...\n"
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"list"}, mainUsage + "kafka-transactions.sh: error: argument --bootstrap-server is required\n"},
		{bs, mainUsage + "kafka-transactions.sh: error: too few arguments\n"},
		{append(bs, "force-terminate"), mainUsage + "kafka-transactions.sh: error: invalid choice: 'force-terminate' (choose from 'list', 'describe', 'describe-producers', 'abort', 'find-hanging', 'forceTerminateTransaction')\n"},
		{append(bs, "describe"), "usage: kafka-transactions.sh --bootstrap-server host:port describe [-h]\n                             --transactional-id TRANSACTIONAL_ID\nkafka-transactions.sh: error: argument --transactional-id is required\n"},
		{append(bs, "list", "--bogus"), "usage: kafka-transactions.sh --bootstrap-server host:port list [-h]\n                             [--duration-filter DURATION_FILTER]\n                             [--transactional-id-pattern TRANSACTIONAL_ID_PATTERN]\nkafka-transactions.sh: error: unrecognized arguments: '--bogus'\n"},
		{append(bs, "describe-producers", "--topic", "x", "--partition", "y"), "usage: kafka-transactions.sh --bootstrap-server host:port\n                             describe-producers [-h]\n                             [--broker-id BROKER_ID] --topic TOPIC\n                             --partition PARTITION\nkafka-transactions.sh: error: argument --partition: could not convert 'y' to Integer (For input string: \"y\")\n"},
		{append(bs, "abort", "--topic", "x", "--partition", "0", "--producer-epoch", "40000"), "kafka-transactions.sh: error: argument --producer-epoch: could not convert '40000' to Short (Value out of range. Value:\"40000\" Radix:10)\n"},
		{append(bs, "describe", "--transactional-id"), "kafka-transactions.sh: error: argument --transactional-id: expected one argument\n"},
		{append(bs, "abort", "--topic", "x", "--partition", "0"), "The transaction to abort must be identified either with --start-offset (for brokers on 3.0 or above) or with --producer-id, --producer-epoch, and --coordinator-epoch (for older brokers)\n"},
		{append(bs, "abort", "--topic", "x", "--partition", "0", "--producer-id", "3"), "Missing required argument --producer-epoch\n"},
		{append(bs, "abort", "--topic", "x", "--partition", "0", "--producer-id", "3", "--producer-epoch", "1"), "Missing required argument --coordinator-epoch\n"},
		{append(bs, "find-hanging"), "The `find-hanging` command requires either --topic or --broker-id to limit the scope of the search\n"},
		{append(bs, "find-hanging", "--partition", "1", "--broker-id", "1"), "The --partition argument requires --topic to be provided\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", "kafka-transactions", tt.args...)
			if code != 1 || stdout != "" || !strings.HasSuffix(stderr, tt.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and stderr ending in:\n%s", code, stdout, stderr, tt.stderr)
			}
			if strings.Contains(tt.stderr, "error: ") && !strings.HasPrefix(stderr, "usage: kafka-transactions.sh ") {
				t.Fatalf("argument error without the usage line first: %q", stderr)
			}
		})
	}
	// Abbreviated options and --opt=value, as argparse4j takes them; then the help screens.
	_, stderr, _ := runCmd(t, "", "kafka-transactions", "--bootstrap=127.0.0.1:1", "describe", "--transactional")
	if !strings.HasSuffix(stderr, "error: argument --transactional-id: expected one argument\n") {
		t.Fatalf("abbreviations: %q", stderr)
	}
	for _, args := range [][]string{{"--help"}, {"--bootstrap-server", "x", "abort", "-h"}} {
		stdout, _, code := runCmd(t, "", "kafka-transactions", args...)
		if code != 0 || !strings.HasPrefix(stdout, "usage: kafka-transactions.sh") || !strings.Contains(stdout, "optional arguments:") {
			t.Fatalf("%v: exit %d, %q", args, code, stdout)
		}
	}
}

// TestJavaHashSetOrder: the TopicPartitions column of describe lists the partitions in the
// iteration order of Java's HashSet filled from the response, topic by topic.
func TestJavaHashSetOrder(t *testing.T) {
	// txa-0 and txb-1 share a bucket (so do txa-1 and txb-2): insertion order decides between them.
	for in, want := range map[string]string{
		"txa-0,txa-1,txa-2,txb-0,txb-1,txb-2": "txa-1,txb-2,txa-2,txb-0,txa-0,txb-1", // what Kafka 4.4 printed
		"txb-0,txb-1,txb-2,txa-0,txa-1,txa-2": "txb-2,txa-1,txa-2,txb-0,txb-1,txa-0",
	} {
		var ps []txnPartition
		for _, s := range strings.Split(in, ",") {
			topic, p, _ := strings.Cut(s, "-")
			ps = append(ps, txnPartition{topic, int32(p[0] - '0')})
		}
		var got []string
		for _, p := range javaHashSetOrder(ps) {
			got = append(got, p.String())
		}
		if s := strings.Join(got, ","); s != want {
			t.Fatalf("inserted %s: order %s, want %s", in, s, want)
		}
	}
	if javaStringHash("txa") != 115293 || javaStringHash("") != 0 {
		t.Fatalf("String.hashCode")
	}
}

// runTxnTool runs kafka-transactions in process with now fixed, so the duration columns are known.
func runTxnTool(t *testing.T, now time.Time, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }, adminTimeout: 15 * time.Second, now: func() time.Time { return now }}
	code := e.run("kafka-transactions", args)
	return out.String(), errb.String(), code
}

// TestKafkaTransactionsAgainstKfake drives every subcommand against franz-go's kfake with one
// committed and one open transaction: the tables are Kafka's, and abort and
// forceTerminateTransaction end the open transaction on the broker.
func TestKafkaTransactionsAgainstKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	ctx := context.Background()
	if err := beginOpenTxn(ctx, t, addr, "done").EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	beginOpenTxn(ctx, t, addr, "open")

	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	described, err := adm.DescribeTransactions(ctx, "open", "done")
	if err != nil {
		t.Fatal(err)
	}
	open, done := described["open"], described["done"]
	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"orders": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0 := producers["orders"].Partitions[0].ActiveProducers[open.ProducerID]
	now := time.UnixMilli(open.StartTimestamp).Add(20 * time.Minute)
	bs := []string{"--bootstrap-server", addr}
	run := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := runTxnTool(t, now, append(bs, args...)...)
		if code != 0 || out != want {
			t.Fatalf("%v: exit %d, stderr %q\ngot:\n%s\nwant:\n%s", args, code, errOut, out, want)
		}
	}
	table := func(headers []string, rows ...[]string) string {
		var b bytes.Buffer
		printTxnTable(&b, headers, rows)
		return b.String()
	}

	listHeaders := []string{"TransactionalId", "Coordinator", "ProducerId", "TransactionState"}
	listed, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	coord := fmt.Sprint(listed["open"].Coordinator)
	run(table(listHeaders, []string{"open", coord, fmt.Sprint(open.ProducerID), "Ongoing"}), "list", "--transactional-id-pattern", "^op")
	run(table(listHeaders), "list", "--transactional-id-pattern", "^nothing")
	// moldau transactions: the same commands with Moldau's bootstrap flags, anywhere.
	if out, errOut, code := runCmd(t, "", "transactions", "list", "--transactional-id-pattern", "^op", "-b", addr); code != 0 ||
		out != table(listHeaders, []string{"open", coord, fmt.Sprint(open.ProducerID), "Ongoing"}) {
		t.Fatalf("moldau transactions list: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if out, _, code := runTxnTool(t, now, append(bs, "list")...); code != 0 || !strings.Contains(out, "\ndone ") || !strings.Contains(out, "\nopen ") {
		t.Fatalf("list: %d %q", code, out)
	}

	describeHeaders := []string{"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
		"TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs", "TopicPartitions"}
	run(table(describeHeaders, []string{fmt.Sprint(open.Coordinator), "open", fmt.Sprint(open.ProducerID), fmt.Sprint(open.ProducerEpoch),
		"Ongoing", "600000", fmt.Sprint(open.StartTimestamp), "1200000", "orders-0,orders-1"}), "describe", "--transactional-id", "open")
	doneStart, doneDuration := "None", "None"
	if done.StartTimestamp != -1 {
		doneStart, doneDuration = fmt.Sprint(done.StartTimestamp), fmt.Sprint(now.UnixMilli()-done.StartTimestamp)
	}
	run(table(describeHeaders, []string{fmt.Sprint(done.Coordinator), "done", fmt.Sprint(done.ProducerID), fmt.Sprint(done.ProducerEpoch),
		done.State, "600000", doneStart, doneDuration, ""}), "describe", "--transactional-id", "done")
	if _, errOut, code := runTxnTool(t, now, append(bs, "describe", "--transactional-id", "nope")...); code != 1 ||
		errOut != "Failed to describe transaction state of transactional-id `nope`: DescribeTransactions request for transactionalId `nope` failed because the ID could not be found. Enable debug logging for additional detail.\n" {
		t.Fatalf("describe nope: %d %q", code, errOut)
	}

	// describe-producers: one row per active producer of the partition, as the leader lists them.
	var rows [][]string
	for _, p := range producers["orders"].Partitions[0].ActiveProducers.Sorted() {
		start := "None"
		if p.CurrentTxnStartOffset >= 0 {
			start = fmt.Sprint(p.CurrentTxnStartOffset)
		}
		rows = append(rows, []string{fmt.Sprint(p.ProducerID), fmt.Sprint(p.ProducerEpoch), fmt.Sprint(max(p.CoordinatorEpoch, -1)),
			fmt.Sprint(p.LastSequence), fmt.Sprint(p.LastTimestamp), start})
	}
	if len(rows) == 0 || p0.CurrentTxnStartOffset < 0 {
		t.Fatalf("kfake lists no open transaction on orders-0: %+v", producers)
	}
	want := strings.Split(table([]string{"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
		"CurrentTransactionStartOffset"}, rows...), "\n")
	out, _, code := runTxnTool(t, now, append(bs, "describe-producers", "--topic", "orders", "--partition", "0")...)
	got := strings.Split(out, "\n")
	slices.Sort(got[1:])
	slices.Sort(want[1:])
	if code != 0 || !slices.Equal(got, want) {
		t.Fatalf("describe-producers: exit %d\n%s\nwant (any row order):\n%s", code, out, strings.Join(want, "\n"))
	}

	// The open transaction is older than --max-transaction-timeout but its coordinator still
	// lists both partitions: not hanging.
	hangHeaders := []string{"Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"}
	run(table(hangHeaders), "find-hanging", "--topic", "orders", "--max-transaction-timeout", "1")
	run(table(hangHeaders), "find-hanging", "--broker-id", coord, "--max-transaction-timeout", "1")

	// Abort it on partition 0 by its start offset: the abort marker lands and the last stable
	// offset moves to the end of the partition (kfake's DescribeProducers answers from its
	// coordinator, so the producer row itself stays).
	if committed, end := stableAndEnd(ctx, t, adm, "orders"); committed != p0.CurrentTxnStartOffset || end <= committed {
		t.Fatalf("before abort: last stable offset %d, end %d, open transaction from %d", committed, end, p0.CurrentTxnStartOffset)
	}
	run("", "abort", "--topic", "orders", "--partition", "0", "--start-offset", fmt.Sprint(p0.CurrentTxnStartOffset))
	if committed, end := stableAndEnd(ctx, t, adm, "orders"); committed != end {
		t.Fatalf("after abort: last stable offset %d, end %d", committed, end)
	}
	if _, errOut, code := runTxnTool(t, now, append(bs, "abort", "--topic", "orders", "--partition", "0", "--start-offset", "999")...); code != 1 ||
		errOut != "Could not find any open transactions starting at offset 999 on partition orders-0\n" {
		t.Fatalf("abort of nothing: %d %q", code, errOut)
	}

	// forceTerminateTransaction fences the producer: the epoch goes up and the transaction ends.
	run("", "forceTerminateTransaction", "--transactionalId", "open")
	described, err = adm.DescribeTransactions(ctx, "open")
	if err != nil {
		t.Fatal(err)
	}
	if d := described["open"]; d.ProducerEpoch <= open.ProducerEpoch || d.State == "Ongoing" {
		t.Fatalf("after forceTerminateTransaction: %+v (before %+v)", d, open)
	}
}

// TestKafkaTransactionsAgainstMoldau: against a Moldau node, an open transaction is listed,
// described with its partitions, found by describe-producers at its start offset, not hanging
// while its coordinator holds it, aborted by --start-offset (the partition's last stable offset
// moves to its end), and forceTerminateTransaction ends it at the coordinator.
func TestKafkaTransactionsAgainstMoldau(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	ctx := context.Background()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	beginOpenTxn(ctx, t, addr, "open")
	described, err := adm.DescribeTransactions(ctx, "open")
	if err != nil {
		t.Fatal(err)
	}
	open := described["open"]
	now := time.UnixMilli(open.StartTimestamp).Add(20 * time.Minute)
	bs := []string{"--bootstrap-server", addr}
	run := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := runTxnTool(t, now, append(bs, args...)...)
		if code != 0 || (want != "*" && out != want) {
			t.Fatalf("%v: exit %d, stderr %q\ngot:\n%s\nwant:\n%s", args, code, errOut, out, want)
		}
	}
	table := func(headers []string, rows ...[]string) string {
		var b bytes.Buffer
		printTxnTable(&b, headers, rows)
		return b.String()
	}
	node := "1"
	run(table([]string{"TransactionalId", "Coordinator", "ProducerId", "TransactionState"}, []string{"open", node, fmt.Sprint(open.ProducerID), "Ongoing"}), "list")
	run(table([]string{"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState", "TransactionTimeoutMs",
		"CurrentTransactionStartTimeMs", "TransactionDurationMs", "TopicPartitions"},
		[]string{node, "open", fmt.Sprint(open.ProducerID), fmt.Sprint(open.ProducerEpoch), "Ongoing", "600000", fmt.Sprint(open.StartTimestamp),
			"1200000", "orders-0,orders-1"}), "describe", "--transactional-id", "open")

	producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"orders": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0 := producers["orders"].Partitions[0].ActiveProducers[open.ProducerID]
	if p0.CurrentTxnStartOffset != 0 {
		t.Fatalf("producer state of orders-0: %+v, want an open transaction from offset 0", p0)
	}
	run(table([]string{"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"},
		[]string{fmt.Sprint(open.ProducerID), fmt.Sprint(p0.ProducerEpoch), fmt.Sprint(max(p0.CoordinatorEpoch, -1)), fmt.Sprint(p0.LastSequence),
			fmt.Sprint(p0.LastTimestamp), "0"}), "describe-producers", "--topic", "orders", "--partition", "0")
	hangHeaders := []string{"Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"}
	run(table(hangHeaders), "find-hanging", "--broker-id", node, "--max-transaction-timeout", "1")

	if lso, end := stableAndEnd(ctx, t, adm, "orders"); lso != 0 || end != 1 {
		t.Fatalf("before the abort: last stable offset %d, end %d; want 0 and 1", lso, end)
	}
	run("", "abort", "--topic", "orders", "--partition", "0", "--start-offset", "0")
	if lso, end := stableAndEnd(ctx, t, adm, "orders"); lso != end || end != 2 {
		t.Fatalf("after the abort: last stable offset %d, end %d; want both 2 (the marker)", lso, end)
	}
	if _, errOut, code := runTxnTool(t, now, append(bs, "abort", "--topic", "orders", "--partition", "0", "--start-offset", "0")...); code != 1 ||
		errOut != "Could not find any open transactions starting at offset 0 on partition orders-0\n" {
		t.Fatalf("second abort: %d %q", code, errOut)
	}
	// The coordinator still holds orders-0 in the transaction it never ended: that partition is
	// no longer open, orders-1 is; neither is hanging.
	run(table(hangHeaders), "find-hanging", "--topic", "orders", "--max-transaction-timeout", "1")

	run("", "forceTerminateTransaction", "--transactionalId", "open")
	deadline := time.Now().Add(10 * time.Second)
	for {
		described, err = adm.DescribeTransactions(ctx, "open")
		if err != nil {
			t.Fatal(err)
		}
		d := described["open"]
		if d.ProducerEpoch > open.ProducerEpoch && (d.State == "CompleteAbort" || d.State == "Empty") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after forceTerminateTransaction: %+v (before %+v)", d, open)
		}
		time.Sleep(20 * time.Millisecond) // polling the coordinator's state with a deadline
	}
}

// TestHangingOf: an open transaction is hanging unless a transactional id lists its producer and
// that id's coordinator holds the partition in its transaction; the rows print as Kafka's.
func TestHangingOf(t *testing.T) {
	open := func(topic string, p int32, pid int64) openTxn {
		return openTxn{txnPartition{topic, p}, producerState{producerID: pid, epoch: 3, coordinatorEpoch: -1, txnStartOffset: 40, lastTimestamp: 1000}}
	}
	candidates := []openTxn{open("a", 0, 1), open("a", 1, 1), open("b", 0, 2), open("c", 0, 3)}
	txnIDs := map[int64]string{1: "t1", 2: "t2"}                                     // producer 3: no transactional id lists it
	descs := map[string]txnDescription{"t1": {partitions: []txnPartition{{"a", 0}}}} // t2: unknown to its coordinator
	var got []string
	for _, h := range hangingOf(candidates, txnIDs, descs) {
		got = append(got, h.tp.String())
	}
	if strings.Join(got, ",") != "a-1,b-0,c-0" {
		t.Fatalf("hanging %v, want a-1 (not in t1's partitions), b-0 (t2 unknown), c-0 (no transactional id)", got)
	}
	if h := hangingOf(candidates[:1], txnIDs, descs); len(h) != 0 {
		t.Fatalf("a-0 is in t1's transaction: not hanging, got %v", h)
	}
}

// stableAndEnd is partition 0 of topic's last stable offset (ListOffsets read_committed) and
// its end offset.
func stableAndEnd(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) (lso, end int64) {
	t.Helper()
	c, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	co, _ := c.Lookup(topic, 0)
	eo, _ := e.Lookup(topic, 0)
	return co.Offset, eo.Offset
}

// beginOpenTxn begins a transaction of transactional id id (timeout 10 min) and writes a record
// (value id) to partitions 0 and 1 of orders in it, leaving it open; the producer is closed
// when the test ends.
func beginOpenTxn(ctx context.Context, t *testing.T, addr, id string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID(id), kgo.TransactionTimeout(10*time.Minute),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: p, Value: []byte(id)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return cl
}
