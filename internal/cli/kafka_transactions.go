package cli

// kafka-transactions: Kafka's TransactionsCommand (kafka-transactions.sh, Kafka 4.4) with its
// subcommands, options, tables and messages: list, describe, describe-producers, abort,
// find-hanging and forceTerminateTransaction. The help screens are Kafka's text; argument errors
// print Kafka's usage line and "kafka-transactions.sh: error: ..." (argparse4j's words, without
// its line justification) and exit 1 as Kafka does. A failure after the arguments parsed prints
// Kafka's "<what failed>: <cause>. Enable debug logging for additional detail." and exits 1.
//
// The requests are the Admin client's: ListTransactions to every broker, DescribeTransactions to
// the transaction coordinator, DescribeProducers to the partition leader (or --broker-id),
// WriteTxnMarkers (abort, transaction version 0 as the Admin client sends it) to the partition
// leader, and InitProducerId with the transactional id (forceTerminateTransaction: Admin's
// fenceProducers, which bumps the epoch and so aborts an ongoing transaction).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const txnToolProg = "kafka-transactions.sh"

const txnMainUsage = `usage: kafka-transactions.sh [-h] [-v] [--command-config FILE]
                             --bootstrap-server host:port COMMAND ...`

const txnMainHelp = txnMainUsage + `

This tool is used to analyze  the  transactional  state of producers in the
cluster. It can be used to detect and recover from hanging transactions.

optional arguments:
  -h, --help             show this help message and exit
  -v, --version          show the version  of  this  Kafka distribution and
                         exit
  --command-config FILE  property file containing configs  to  be passed to
                         admin client
  --bootstrap-server host:port
                         hostname and port for  the  broker  to connect to,
                         in  the   form   ` + "`host:port`" + `    (multiple   comma-
                         separated entries can be given)

commands:
  COMMAND
    list                 list transactions
    describe             describe the state of an active transactional-id
    describe-producers   describe the  states  of  active  producers  for a
                         topic partition
    abort                abort    a    hanging     transaction    (requires
                         administrative privileges)
    find-hanging         find hanging transactions
    forceTerminateTransaction
                         Force   abort    an    ongoing    transaction   on
                         transactionalId      (requires      administrative
                         privileges)
`

// txnOpt is one option of a subcommand; kind is the Java type argparse4j converts it to.
type txnOpt struct {
	name     string // "--topic"
	kind     string // "String", "Integer", "Long", "Short"
	required bool
}

type txnSubcommand struct {
	name  string
	opts  []txnOpt
	usage string // Kafka's usage line(s)
	help  string // Kafka's help screen after the usage
}

var txnSubcommands = []txnSubcommand{
	{
		name: "list",
		opts: []txnOpt{{"--duration-filter", "Long", false}, {"--transactional-id-pattern", "String", false}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port list [-h]
                             [--duration-filter DURATION_FILTER]
                             [--transactional-id-pattern TRANSACTIONAL_ID_PATTERN]`,
		help: `
optional arguments:
  -h, --help             show this help message and exit
  --duration-filter DURATION_FILTER
                         Duration (in millis) to  filter  by:  if  < 0, all
                         transactions will  be  returned;  otherwise,  only
                         transactions running  longer  than  this  duration
                         will be returned
  --transactional-id-pattern TRANSACTIONAL_ID_PATTERN
                         Transactional id  regular  expression  pattern  to
                         filter by
`,
	},
	{
		name: "describe",
		opts: []txnOpt{{"--transactional-id", "String", true}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port describe [-h]
                             --transactional-id TRANSACTIONAL_ID`,
		help: `
Describe the state of an active transactional-id.

optional arguments:
  -h, --help             show this help message and exit
  --transactional-id TRANSACTIONAL_ID
                         transactional id
`,
	},
	{
		name: "describe-producers",
		opts: []txnOpt{{"--broker-id", "Integer", false}, {"--topic", "String", true}, {"--partition", "Integer", true}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port
                             describe-producers [-h]
                             [--broker-id BROKER_ID] --topic TOPIC
                             --partition PARTITION`,
		help: `
optional arguments:
  -h, --help             show this help message and exit
  --broker-id BROKER_ID  optional broker id to  describe the producer state
                         on a specific replica
  --topic TOPIC          topic name
  --partition PARTITION  partition number
`,
	},
	{
		name: "abort",
		opts: []txnOpt{{"--topic", "String", true}, {"--partition", "Integer", true}, {"--start-offset", "Long", false},
			{"--producer-id", "Long", false}, {"--producer-epoch", "Short", false}, {"--coordinator-epoch", "Integer", false}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port abort [-h]
                             --topic TOPIC --partition PARTITION
                             [--start-offset START_OFFSET]
                             [--producer-id PRODUCER_ID]
                             [--producer-epoch PRODUCER_EPOCH]
                             [--coordinator-epoch COORDINATOR_EPOCH]`,
		help: `
optional arguments:
  -h, --help             show this help message and exit
  --topic TOPIC          topic name
  --partition PARTITION  partition number

Brokers on versions 3.0 and above:
  For newer brokers,  only  the  start  offset  of  the  transaction  to be
  aborted is required

  --start-offset START_OFFSET
                         start offset of the transaction to abort

Brokers on versions older than 3.0:
  For older brokers, you must provide all of these arguments

  --producer-id PRODUCER_ID
                         producer id
  --producer-epoch PRODUCER_EPOCH
                         producer epoch
  --coordinator-epoch COORDINATOR_EPOCH
                         coordinator epoch
`,
	},
	{
		name: "find-hanging",
		opts: []txnOpt{{"--broker-id", "Integer", false}, {"--max-transaction-timeout", "Integer", false},
			{"--topic", "String", false}, {"--partition", "Integer", false}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port find-hanging [-h]
                             [--broker-id BROKER_ID]
                             [--max-transaction-timeout MAX_TRANSACTION_TIMEOUT]
                             [--topic TOPIC] [--partition PARTITION]`,
		help: `
optional arguments:
  -h, --help             show this help message and exit
  --broker-id BROKER_ID  broker id to search for hanging transactions
  --max-transaction-timeout MAX_TRANSACTION_TIMEOUT
                         maximum transaction timeout  in  minutes  to limit
                         the scope of the search (15 minutes by default)
  --topic TOPIC          topic name to  limit  search  to  (required  if --
                         partition is specified)
  --partition PARTITION  partition number
`,
	},
	{
		name: "forceTerminateTransaction",
		opts: []txnOpt{{"--transactionalId", "String", true}},
		usage: `usage: kafka-transactions.sh --bootstrap-server host:port
                             forceTerminateTransaction [-h]
                             --transactionalId TRANSACTIONALID`,
		help: `
Force abort an ongoing transaction on transactionalId

optional arguments:
  -h, --help             show this help message and exit
  --transactionalId TRANSACTIONALID
                         transactional id
`,
	},
}

// txnArgs is the parsed command line: option values by name ("--topic"), as given.
type txnArgs struct {
	bootstrap, commandConfig string
	sub                      *txnSubcommand
	vals                     map[string]string
}

func (a *txnArgs) str(name string) (string, bool) {
	v, ok := a.vals[name]
	return v, ok
}

// num returns a numeric option already validated by the parser.
func (a *txnArgs) num(name string) (int64, bool) {
	v, ok := a.vals[name]
	if !ok {
		return 0, false
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n, true
}

// txnArgError is an argparse4j error: usage on stderr, then the message, exit 1.
func txnArgError(usage, format string, a ...any) error {
	return &exitError{code: 1, msg: usage + "\n" + txnToolProg + ": error: " + fmt.Sprintf(format, a...)}
}

// txnFail is TransactionsCommand.printErrorAndExit: the message on stderr, exit 1.
func txnFail(format string, a ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, a...)}
}

// txnFailCause is printErrorAndExit(message, cause).
func txnFailCause(message string, cause error) error {
	return txnFail("%s: %s. Enable debug logging for additional detail.", message, javaMessage(cause))
}

// javaMessage is what Java's getMessage would say for err: a broker error's own message as
// Kafka's Errors enum words it (kerr carries the same descriptions), anything else as is.
func javaMessage(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Description
	}
	var me *txnMessageError
	if errors.As(err, &me) {
		return me.msg
	}
	return err.Error()
}

// txnMessageError is an error with the exact message the Admin client would give it.
type txnMessageError struct{ msg string }

func (e *txnMessageError) Error() string { return e.msg }

// parseTxnArgs parses the command line the way argparse4j does for this tool: the global
// options, the command, then that command's options (an option may be abbreviated to a unique
// prefix; --opt=value works; a later value replaces an earlier one).
func (e *env) parseTxnArgs(args []string) (*txnArgs, error) {
	a := &txnArgs{vals: map[string]string{}}
	main := []txnOpt{{"--command-config", "String", false}, {"--bootstrap-server", "String", true}}
	mainVals := map[string]string{}
	var unrecognized []string
	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		switch arg {
		case "-h", "--help":
			fmt.Fprint(e.stdout, txnMainHelp)
			return nil, errTxnDone
		case "-v", "--version":
			fmt.Fprintln(e.stdout, "4.4.0 (Moldau)")
			return nil, errTxnDone
		}
		if isTxnOption(arg) {
			n, err := takeTxnOption(args, &i, main, mainVals, txnMainUsage)
			if err != nil {
				return nil, err
			}
			if !n {
				unrecognized = append(unrecognized, arg)
			}
			continue
		}
		break
	}
	if i == len(args) {
		if len(unrecognized) > 0 {
			return nil, txnArgError(txnMainUsage, "unrecognized arguments: '%s'", strings.Join(unrecognized, " "))
		}
		return nil, txnArgError(txnMainUsage, "too few arguments")
	}
	cmd := args[i]
	for k := range txnSubcommands {
		if txnSubcommands[k].name == cmd {
			a.sub = &txnSubcommands[k]
		}
	}
	if a.sub == nil {
		return nil, txnArgError(txnMainUsage, "invalid choice: '%s' (choose from 'list', 'describe', 'describe-producers', 'abort', 'find-hanging', 'forceTerminateTransaction')", cmd)
	}
	for i++; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" || arg == "--help" {
			fmt.Fprint(e.stdout, a.sub.usage+"\n"+a.sub.help)
			return nil, errTxnDone
		}
		if isTxnOption(arg) {
			n, err := takeTxnOption(args, &i, a.sub.opts, a.vals, a.sub.usage)
			if err != nil {
				return nil, err
			}
			if n {
				continue
			}
		}
		unrecognized = append(unrecognized, arg)
	}
	for _, o := range a.sub.opts {
		if _, ok := a.vals[o.name]; o.required && !ok {
			return nil, txnArgError(a.sub.usage, "argument %s is required", o.name)
		}
	}
	if len(unrecognized) > 0 {
		return nil, txnArgError(a.sub.usage, "unrecognized arguments: '%s'", strings.Join(unrecognized, " "))
	}
	a.commandConfig = mainVals["--command-config"]
	var ok bool
	if a.bootstrap, ok = mainVals["--bootstrap-server"]; !ok {
		if a.bootstrap = e.getenv(BootstrapEnv); a.bootstrap == "" { // Moldau's fallback, as the other tools
			return nil, txnArgError(txnMainUsage, "argument --bootstrap-server is required")
		}
	}
	return a, nil
}

// errTxnDone ends the tool with exit 0 after a help screen or the version.
var errTxnDone = &exitError{code: 0}

// isTxnOption: argparse4j takes "-x..." for an option unless it looks like a negative number.
func isTxnOption(arg string) bool {
	if !strings.HasPrefix(arg, "-") || arg == "-" {
		return false
	}
	_, err := strconv.ParseFloat(arg, 64)
	return err != nil
}

// takeTxnOption consumes the option at args[*i] (and its value) into vals if it is one of opts
// (exactly or by a unique prefix); false if it is none of them.
func takeTxnOption(args []string, i *int, opts []txnOpt, vals map[string]string, usage string) (bool, error) {
	name, value, hasValue := strings.Cut(args[*i], "=")
	var match []txnOpt
	for _, o := range opts {
		if o.name == name {
			match = []txnOpt{o}
			break
		}
		if strings.HasPrefix(o.name, name) && len(name) > 2 {
			match = append(match, o)
		}
	}
	switch {
	case len(match) == 0:
		return false, nil
	case len(match) > 1:
		var names []string
		for _, o := range match {
			names = append(names, o.name)
		}
		return false, txnArgError(usage, "ambiguous option: %s could match %s", name, strings.Join(names, ", "))
	}
	o := match[0]
	if !hasValue {
		if *i+1 >= len(args) || isTxnOption(args[*i+1]) {
			return false, txnArgError(usage, "argument %s: expected one argument", o.name)
		}
		*i++
		value = args[*i]
	}
	if err := checkJavaNumber(o.kind, value); err != nil {
		return false, txnArgError(usage, "argument %s: could not convert '%s' to %s (%s)", o.name, value, o.kind, err.Error())
	}
	vals[o.name] = value
	return true, nil
}

// checkJavaNumber converts as Integer/Long/Short.valueOf would, with Java's NumberFormatException
// message.
func checkJavaNumber(kind, s string) error {
	bits := map[string]int{"Integer": 32, "Long": 64, "Short": 16}[kind]
	if bits == 0 {
		return nil
	}
	parseBits := bits
	if bits == 16 {
		parseBits = 32 // Short.parseShort parses an int, then range-checks
	}
	n, err := strconv.ParseInt(s, 10, parseBits)
	if err != nil || strings.HasPrefix(s, "+-") {
		return errors.New(`For input string: "` + s + `"`)
	}
	if bits == 16 && (n < math.MinInt16 || n > math.MaxInt16) {
		return fmt.Errorf(`Value out of range. Value:"%s" Radix:10`, s)
	}
	return nil
}

func runKafkaTransactions(e *env, args []string) error {
	a, err := e.parseTxnArgs(args)
	if err != nil {
		return err
	}
	cfgBootstrap, _, err := e.commandConfigBootstrap(a.commandConfig, "command-config", nil)
	if err != nil {
		return txnFail("Failed to load admin client properties: %v. Enable debug logging for additional detail.", err)
	}
	_ = cfgBootstrap // Kafka's tool always takes --bootstrap-server over the file's bootstrap.servers
	cl, err := newClient(e.bootstrap(a.bootstrap))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := e.adminCtx()
	defer cancel()
	t := &txnTool{e: e, cl: cl, ctx: ctx}
	switch a.sub.name {
	case "list":
		return t.list(a)
	case "describe":
		return t.describe(a)
	case "describe-producers":
		return t.describeProducers(a)
	case "abort":
		return t.abort(a)
	case "find-hanging":
		return t.findHanging(a)
	default:
		return t.forceTerminate(a)
	}
}

type txnTool struct {
	e   *env
	cl  *kgo.Client
	ctx context.Context
}

// printTxnTable is ToolsUtils.prettyPrintTable: every column padded to its widest cell and
// followed by a tab, the header first.
func printTxnTable(w io.Writer, headers []string, rows [][]string) {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i := range headers {
			widths[i] = max(widths[i], len(r[i]))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		b.Reset()
		for i, v := range r {
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", widths[i]-len(v)))
			b.WriteByte('\t')
		}
		b.WriteByte('\n')
		io.WriteString(w, b.String())
	}
	line(headers)
	for _, r := range rows {
		line(r)
	}
}

// adminState is the Admin client's TransactionState.toString for a state from the wire.
func adminState(s string) string {
	switch s {
	case "Ongoing", "PrepareAbort", "PrepareCommit", "CompleteAbort", "CompleteCommit", "Empty", "PrepareEpochFence":
		return s
	}
	return "Unknown"
}

// brokerIDs lists the brokers of the cluster, sorted (Java's HashMap<Integer, ...> order).
func (t *txnTool) brokerIDs() ([]int32, error) {
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(t.ctx, t.cl)
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, b := range resp.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids, nil
}

type txnListing struct {
	coordinator int32
	id          string
	producerID  int64
	state       string
}

// listAll is Admin.listTransactions: ListTransactions to every broker, retrying a coordinator
// that is still loading.
func (t *txnTool) listAll(req *kmsg.ListTransactionsRequest) ([]txnListing, error) {
	ids, err := t.brokerIDs()
	if err != nil {
		return nil, err
	}
	var out []txnListing
	for _, id := range ids {
		for {
			resp, err := req.RequestWith(t.ctx, t.cl.Broker(int(id)))
			if err != nil {
				return nil, err
			}
			if resp.ErrorCode == kerr.CoordinatorLoadInProgress.Code {
				if err := t.backoff(); err != nil {
					return nil, err
				}
				continue
			}
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return nil, err
			}
			for _, s := range resp.TransactionStates {
				out = append(out, txnListing{id, s.TransactionalID, s.ProducerID, s.TransactionState})
			}
			break
		}
	}
	return out, nil
}

func (t *txnTool) backoff() error {
	select {
	case <-t.ctx.Done():
		return t.ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func (t *txnTool) list(a *txnArgs) error {
	req := kmsg.NewPtrListTransactionsRequest()
	if d, ok := a.num("--duration-filter"); ok {
		req.DurationFilterMillis = d
	}
	if p, ok := a.str("--transactional-id-pattern"); ok {
		if _, err := regexp.Compile(p); err != nil {
			return txnFailCause("Failed to list transactions", err)
		}
		req.TransactionalIDPattern = &p
	}
	listings, err := t.listAll(req)
	if err != nil {
		return txnFailCause("Failed to list transactions", err)
	}
	var rows [][]string
	for _, l := range listings {
		rows = append(rows, []string{l.id, strconv.Itoa(int(l.coordinator)), strconv.FormatInt(l.producerID, 10), adminState(l.state)})
	}
	printTxnTable(t.e.stdout, []string{"TransactionalId", "Coordinator", "ProducerId", "TransactionState"}, rows)
	return nil
}

type txnDescription struct {
	coordinator   int32
	producerID    int64
	producerEpoch int16
	state         string
	timeoutMs     int32
	startMs       int64
	partitions    []txnPartition
}

type txnPartition struct {
	topic     string
	partition int32
}

func (p txnPartition) String() string { return p.topic + "-" + strconv.Itoa(int(p.partition)) }

// describeTxns is Admin.describeTransactions: each id at its coordinator (kgo finds it),
// retried while the coordinator loads or moves. A missing id is absent from found with its
// error in failed.
func (t *txnTool) describeTxns(ids []string) (found map[string]txnDescription, failed map[string]error, err error) {
	found, failed = map[string]txnDescription{}, map[string]error{}
	pending := slices.Clone(ids)
	for len(pending) > 0 {
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = pending
		shards := t.cl.RequestSharded(t.ctx, req)
		var retry []string
		for _, sh := range shards {
			if sh.Err != nil {
				return nil, nil, sh.Err
			}
			for _, s := range sh.Resp.(*kmsg.DescribeTransactionsResponse).TransactionStates {
				switch code := s.ErrorCode; {
				case code == 0:
					d := txnDescription{coordinator: sh.Meta.NodeID, producerID: s.ProducerID, producerEpoch: s.ProducerEpoch,
						state: s.State, timeoutMs: s.TimeoutMillis, startMs: s.StartTimestamp}
					for _, tp := range s.Topics {
						for _, p := range tp.Partitions {
							d.partitions = append(d.partitions, txnPartition{tp.Topic, p})
						}
					}
					found[s.TransactionalID] = d
				case code == kerr.CoordinatorLoadInProgress.Code || code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code:
					retry = append(retry, s.TransactionalID)
				case code == kerr.TransactionalIDNotFound.Code:
					failed[s.TransactionalID] = &txnMessageError{"DescribeTransactions request for transactionalId `" + s.TransactionalID + "` failed because the ID could not be found"}
				case code == kerr.TransactionalIDAuthorizationFailed.Code:
					failed[s.TransactionalID] = &txnMessageError{"DescribeTransactions request for transactionalId `" + s.TransactionalID + "` failed due to authorization failure"}
				default:
					failed[s.TransactionalID] = &txnMessageError{"DescribeTransactions request for transactionalId `" + s.TransactionalID + "` failed due to unexpected error"}
				}
			}
		}
		if pending = retry; len(pending) > 0 {
			if err := t.backoff(); err != nil {
				return nil, nil, err
			}
		}
	}
	return found, failed, nil
}

func (t *txnTool) describe(a *txnArgs) error {
	id, _ := a.str("--transactional-id")
	found, failed, err := t.describeTxns([]string{id})
	what := "Failed to describe transaction state of transactional-id `" + id + "`"
	if err != nil {
		return txnFailCause(what, err)
	}
	if err := failed[id]; err != nil {
		return txnFailCause(what, err)
	}
	d, ok := found[id]
	if !ok {
		return txnFailCause(what, fmt.Errorf("no answer for transactional id %s", id))
	}
	start, duration := "None", "None"
	if d.startMs != -1 {
		start = strconv.FormatInt(d.startMs, 10)
		duration = strconv.FormatInt(t.e.now().UnixMilli()-d.startMs, 10)
	}
	parts := make([]string, 0, len(d.partitions))
	for _, p := range javaHashSetOrder(d.partitions) {
		parts = append(parts, p.String())
	}
	printTxnTable(t.e.stdout, []string{"CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
		"TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs", "TopicPartitions"},
		[][]string{{strconv.Itoa(int(d.coordinator)), id, strconv.FormatInt(d.producerID, 10), strconv.Itoa(int(d.producerEpoch)),
			adminState(d.state), strconv.Itoa(int(d.timeoutMs)), start, duration, strings.Join(parts, ",")}})
	return nil
}

// javaHashSetOrder is the iteration order of a java.util.HashSet<TopicPartition> the Admin
// client fills in this order: buckets by (h ^ h>>>16) & (capacity-1), insertion order within a
// bucket, capacity the power of two ≥ 16 that keeps the load at most 0.75.
func javaHashSetOrder(ps []txnPartition) []txnPartition {
	capacity := 16
	for float64(len(ps)) > 0.75*float64(capacity) {
		capacity *= 2
	}
	seen := map[txnPartition]bool{}
	buckets := make([][]txnPartition, capacity)
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		h := 31*(31+p.partition) + javaStringHash(p.topic)
		u := uint32(h)
		idx := int((u ^ (u >> 16)) & uint32(capacity-1))
		buckets[idx] = append(buckets[idx], p)
	}
	var out []txnPartition
	for _, b := range buckets {
		out = append(out, b...)
	}
	return out
}

// javaStringHash is java.lang.String.hashCode over the UTF-16 code units of s.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// producerState is one row of DescribeProducers as the Admin client's ProducerState holds it.
type producerState struct {
	producerID, lastTimestamp, txnStartOffset int64
	epoch, coordinatorEpoch, lastSequence     int32
}

// describeProducers is Admin.describeProducers for partitions of one request: to each
// partition's leader, or to brokerID (>= 0). Partition errors come back as Kafka's messages.
func (t *txnTool) describeProducers(a *txnArgs) error {
	topic, _ := a.str("--topic")
	part, _ := a.num("--partition")
	tp := txnPartition{topic, int32(part)}
	broker := int32(-1)
	clause := "leader"
	if b, ok := a.num("--broker-id"); ok {
		broker = int32(b)
		clause = "broker " + strconv.Itoa(int(b))
	}
	states, err := t.producersOf([]txnPartition{tp}, broker)
	if err != nil {
		return txnFailCause("Failed to describe producers for partition "+tp.String()+" on "+clause, err)
	}
	var rows [][]string
	for _, p := range states[tp] {
		start := "None"
		if p.txnStartOffset >= 0 {
			start = strconv.FormatInt(p.txnStartOffset, 10)
		}
		rows = append(rows, []string{strconv.FormatInt(p.producerID, 10), strconv.Itoa(int(p.epoch)),
			strconv.Itoa(int(max(p.coordinatorEpoch, -1))), strconv.Itoa(int(p.lastSequence)),
			strconv.FormatInt(p.lastTimestamp, 10), start})
	}
	printTxnTable(t.e.stdout, []string{"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
		"CurrentTransactionStartOffset"}, rows)
	return nil
}

// producersOf describes the producers of partitions, at their leaders (broker < 0) or at broker;
// a leader that moved or a partition the metadata does not know yet is retried until the
// deadline, as the Admin client does.
func (t *txnTool) producersOf(tps []txnPartition, broker int32) (map[txnPartition][]producerState, error) {
	out := map[txnPartition][]producerState{}
	pending := tps
	for len(pending) > 0 {
		req := kmsg.NewPtrDescribeProducersRequest()
		byTopic := map[string]int{}
		for _, tp := range pending {
			i, ok := byTopic[tp.topic]
			if !ok {
				i = len(req.Topics)
				byTopic[tp.topic] = i
				rt := kmsg.NewDescribeProducersRequestTopic()
				rt.Topic = tp.topic
				req.Topics = append(req.Topics, rt)
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, tp.partition)
		}
		var resps []*kmsg.DescribeProducersResponse
		if broker >= 0 {
			resp, err := req.RequestWith(t.ctx, t.cl.Broker(int(broker)))
			if err != nil {
				return nil, err
			}
			resps = append(resps, resp)
		} else {
			for _, sh := range t.cl.RequestSharded(t.ctx, req) {
				if sh.Err != nil {
					return nil, sh.Err
				}
				resps = append(resps, sh.Resp.(*kmsg.DescribeProducersResponse))
			}
		}
		var retry []txnPartition
		for _, resp := range resps {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					tp := txnPartition{rt.Topic, rp.Partition}
					switch code := rp.ErrorCode; {
					case code == 0:
						for _, ap := range rp.ActiveProducers {
							out[tp] = append(out[tp], producerState{producerID: ap.ProducerID, lastTimestamp: ap.LastTimestamp,
								txnStartOffset: ap.CurrentTxnStartOffset, epoch: ap.ProducerEpoch,
								coordinatorEpoch: ap.CoordinatorEpoch, lastSequence: ap.LastSequence})
						}
						if _, ok := out[tp]; !ok {
							out[tp] = nil
						}
					case code == kerr.TopicAuthorizationFailed.Code:
						return nil, &txnMessageError{"Failed to describe active producers for partition " + tp.String() + " due to authorization failure on topic `" + tp.topic + "`"}
					case (code == kerr.NotLeaderForPartition.Code) && broker >= 0:
						return nil, &txnMessageError{"Failed to describe active producers for partition " + tp.String() + " on brokerId " + strconv.Itoa(int(broker))}
					case code == kerr.NotLeaderForPartition.Code || code == kerr.UnknownTopicOrPartition.Code:
						retry = append(retry, tp)
					default:
						return nil, &txnMessageError{"Failed to describe active producers for partition " + tp.String() + " due to unexpected error"}
					}
				}
			}
		}
		if pending = retry; len(pending) > 0 {
			if err := t.backoff(); err != nil {
				return nil, fmt.Errorf("describe producers of %s: %w", pending[0], kerr.ErrorForCode(kerr.UnknownTopicOrPartition.Code))
			}
			t.cl.ForceMetadataRefresh()
		}
	}
	return out, nil
}

// abortSpec is Kafka's AbortTransactionSpec.
type abortSpec struct {
	tp               txnPartition
	producerID       int64
	producerEpoch    int16
	coordinatorEpoch int32
}

func (s abortSpec) String() string {
	return fmt.Sprintf("AbortTransactionSpec(topicPartition=%s, producerId=%d, producerEpoch=%d, coordinatorEpoch=%d)",
		s.tp, s.producerID, s.producerEpoch, s.coordinatorEpoch)
}

func (t *txnTool) abort(a *txnArgs) error {
	topic, _ := a.str("--topic")
	part, _ := a.num("--partition")
	tp := txnPartition{topic, int32(part)}
	startOffset, haveStart := a.num("--start-offset")
	producerID, haveProducer := a.num("--producer-id")
	if !haveStart && !haveProducer {
		return txnFail("The transaction to abort must be identified either with --start-offset (for brokers on 3.0 or above) or with --producer-id, --producer-epoch, and --coordinator-epoch (for older brokers)")
	}
	var spec abortSpec
	if !haveStart {
		epoch, ok := a.num("--producer-epoch")
		if !ok {
			return txnFail("Missing required argument --producer-epoch")
		}
		coordEpoch, ok := a.num("--coordinator-epoch")
		if !ok {
			return txnFail("Missing required argument --coordinator-epoch")
		}
		// A transaction that hung before its first marker shows coordinator epoch -1 in
		// DescribeProducers; 0 is at most any leader epoch (Kafka's rule).
		spec = abortSpec{tp, producerID, int16(epoch), int32(max(coordEpoch, 0))}
	} else {
		states, err := t.producersOf([]txnPartition{tp}, -1)
		if err != nil {
			return txnFailCause("Failed to validate producer state for partition "+tp.String(), err)
		}
		found := false
		for _, p := range states[tp] {
			if p.txnStartOffset >= 0 && p.txnStartOffset == startOffset {
				spec = abortSpec{tp, p.producerID, int16(p.epoch), max(p.coordinatorEpoch, 0)}
				found = true
				break
			}
		}
		if !found {
			return txnFail("Could not find any open transactions starting at offset %d on partition %s", startOffset, tp)
		}
	}
	if err := t.writeAbortMarker(spec); err != nil {
		return txnFailCause("Failed to abort transaction "+spec.String(), err)
	}
	return nil
}

// writeAbortMarker is Admin.abortTransaction: an abort marker (WriteTxnMarkers, transaction
// version 0) to the partition's leader, retried while the leader moves.
func (t *txnTool) writeAbortMarker(s abortSpec) error {
	for {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = s.producerID, s.producerEpoch, false, s.coordinatorEpoch
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = s.tp.topic, []int32{s.tp.partition}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		var code int16 = -1
		for _, sh := range t.cl.RequestSharded(t.ctx, req) {
			if sh.Err != nil {
				return sh.Err
			}
			for _, rm := range sh.Resp.(*kmsg.WriteTxnMarkersResponse).Markers {
				for _, rt := range rm.Topics {
					for _, rp := range rt.Partitions {
						code = rp.ErrorCode
					}
				}
			}
		}
		switch code {
		case 0:
			return nil
		case -1:
			return fmt.Errorf("WriteTxnMarkers response included no entry for %s", s.tp)
		case kerr.ClusterAuthorizationFailed.Code:
			return &txnMessageError{"WriteTxnMarkers request with " + s.String() + " failed due to cluster authorization error"}
		case kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code:
			return &txnMessageError{"WriteTxnMarkers request with " + s.String() + " failed due an invalid producer epoch"}
		case kerr.TransactionCoordinatorFenced.Code:
			return &txnMessageError{fmt.Sprintf("WriteTxnMarkers request with %s failed since the provided coordinator epoch %d has been fenced by the active coordinator", s, s.coordinatorEpoch)}
		case kerr.NotLeaderForPartition.Code, kerr.ReplicaNotAvailable.Code, kerr.BrokerNotAvailable.Code, kerr.UnknownTopicOrPartition.Code:
			if err := t.backoff(); err != nil {
				return kerr.ErrorForCode(code)
			}
			t.cl.ForceMetadataRefresh()
			continue
		default:
			return &txnMessageError{"WriteTxnMarkers request with " + s.String() + " failed due to unexpected error: " + javaMessage(kerr.ErrorForCode(code))}
		}
	}
}

type openTxn struct {
	tp txnPartition
	p  producerState
}

func (t *txnTool) findHanging(a *txnArgs) error {
	brokerID, haveBroker := a.num("--broker-id")
	topic, haveTopic := a.str("--topic")
	if !haveTopic && !haveBroker {
		return txnFail("The `find-hanging` command requires either --topic or --broker-id to limit the scope of the search")
	}
	part, havePart := a.num("--partition")
	if havePart && !haveTopic {
		return txnFail("The --partition argument requires --topic to be provided")
	}
	maxTimeoutMin := int64(15)
	if m, ok := a.num("--max-transaction-timeout"); ok {
		maxTimeoutMin = m
	}
	maxTimeoutMs := maxTimeoutMin * 60_000
	broker := int32(-1)
	brokerClause := "Optional.empty"
	if haveBroker {
		broker = int32(brokerID)
		brokerClause = "Optional[" + strconv.Itoa(int(broker)) + "]"
	}

	var tps []txnPartition
	if havePart {
		tps = []txnPartition{{topic, int32(part)}}
	} else {
		var topics []string
		if haveTopic {
			topics = []string{topic}
		}
		meta, err := t.topicMetadata(topics)
		if err != nil {
			if haveTopic {
				return txnFailCause("Failed to describe 1 topics", err)
			}
			return txnFailCause("Failed to list topics", err)
		}
		for _, mt := range meta {
			for _, mp := range mt.Partitions {
				if !haveBroker || slices.Contains(mp.Replicas, broker) {
					tps = append(tps, txnPartition{*mt.Topic, mp.Partition})
				}
			}
		}
	}

	var candidates []openTxn
	for batch := range slices.Chunk(tps, 500) {
		states, err := t.producersOf(batch, broker)
		if err != nil {
			return txnFailCause(fmt.Sprintf("Failed to describe producers for %d partitions on broker %s", len(batch), brokerClause), err)
		}
		now := t.e.now().UnixMilli()
		for _, tp := range batch {
			for _, p := range states[tp] {
				if p.txnStartOffset >= 0 && now-p.lastTimestamp > maxTimeoutMs {
					candidates = append(candidates, openTxn{tp, p})
				}
			}
		}
	}

	var hanging []openTxn
	if len(candidates) > 0 {
		pids := map[int64]bool{}
		var pidList []int64
		for _, c := range candidates {
			if !pids[c.p.producerID] {
				pids[c.p.producerID] = true
				pidList = append(pidList, c.p.producerID)
			}
		}
		req := kmsg.NewPtrListTransactionsRequest()
		req.ProducerIDFilters = pidList
		listings, err := t.listAll(req)
		if err != nil {
			return txnFailCause(fmt.Sprintf("Failed to list transactions for %d producers", len(pidList)), err)
		}
		txnIDs := map[int64]string{}
		var ids []string
		for _, l := range listings {
			if pids[l.producerID] {
				txnIDs[l.producerID] = l.id
				ids = append(ids, l.id)
			}
		}
		var descs map[string]txnDescription
		if len(ids) > 0 {
			var failed map[string]error
			descs, failed, err = t.describeTxns(ids)
			if err == nil {
				for _, id := range ids {
					if ferr := failed[id]; ferr != nil && !strings.HasSuffix(ferr.Error(), "the ID could not be found") {
						err = ferr
					}
				}
			}
			if err != nil {
				return txnFailCause(fmt.Sprintf("Failed to describe %d transactions", len(ids)), err)
			}
		}
		hanging = hangingOf(candidates, txnIDs, descs)
	}
	now := t.e.now().UnixMilli()
	var rows [][]string
	for _, h := range hanging {
		rows = append(rows, []string{h.tp.topic, strconv.Itoa(int(h.tp.partition)), strconv.FormatInt(h.p.producerID, 10),
			strconv.Itoa(int(h.p.epoch)), strconv.Itoa(int(max(h.p.coordinatorEpoch, -1))), strconv.FormatInt(h.p.txnStartOffset, 10),
			strconv.FormatInt(h.p.lastTimestamp, 10), strconv.FormatInt((now-h.p.lastTimestamp)/60_000, 10)})
	}
	printTxnTable(t.e.stdout, []string{"Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
		"LastTimestamp", "Duration(min)"}, rows)
	return nil
}

// hangingOf is find-hanging's verdict on the open transactions it found: hanging when no
// transactional id lists the producer, when the coordinator does not know that id, or when the
// coordinator's transaction does not hold the partition (it would never write its marker there).
func hangingOf(candidates []openTxn, txnIDs map[int64]string, descs map[string]txnDescription) []openTxn {
	var hanging []openTxn
	for _, c := range candidates {
		id, ok := txnIDs[c.p.producerID]
		if !ok {
			hanging = append(hanging, c)
			continue
		}
		d, ok := descs[id]
		if !ok || !slices.Contains(d.partitions, c.tp) {
			hanging = append(hanging, c)
		}
	}
	return hanging
}

// topicMetadata describes topics (all but the internal ones when topics is empty).
func (t *txnTool) topicMetadata(topics []string) ([]kmsg.MetadataResponseTopic, error) {
	req := kmsg.NewPtrMetadataRequest()
	if len(topics) > 0 {
		for _, n := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
	} else {
		req.Topics = nil
	}
	resp, err := req.RequestWith(t.ctx, t.cl)
	if err != nil {
		return nil, err
	}
	var out []kmsg.MetadataResponseTopic
	for _, mt := range resp.Topics {
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return nil, err
		}
		if mt.Topic != nil && (len(topics) > 0 || !mt.IsInternal) { // Admin.listTopics leaves internal topics out
			out = append(out, mt)
		}
	}
	return out, nil
}

// forceTerminate is Admin.forceTerminateTransaction (fenceProducers): InitProducerId for the
// transactional id with no producer id, which bumps the epoch and aborts what is ongoing;
// retried while the coordinator loads, moves or finishes a concurrent transaction.
func (t *txnTool) forceTerminate(a *txnArgs) error {
	id, _ := a.str("--transactionalId")
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = 30_000 // the Admin client's request.timeout.ms, what fenceProducers sends
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp, err := req.RequestWith(t.ctx, t.cl)
		if err != nil {
			return txnFailCause("Failed to force terminate transactionalId `"+id+"`", err)
		}
		switch resp.ErrorCode {
		case 0:
			return nil
		case kerr.CoordinatorLoadInProgress.Code, kerr.ConcurrentTransactions.Code, kerr.NotCoordinator.Code, kerr.CoordinatorNotAvailable.Code:
			if err := t.backoff(); err != nil {
				return txnFailCause("Failed to force terminate transactionalId `"+id+"`", kerr.ErrorForCode(resp.ErrorCode))
			}
			continue
		}
		msg := "InitProducerId request for transactionalId `" + id + "` failed due to unexpected error"
		switch resp.ErrorCode {
		case kerr.ClusterAuthorizationFailed.Code:
			msg = "InitProducerId request for transactionalId `" + id + "` failed due to cluster authorization failure"
		case kerr.TransactionalIDAuthorizationFailed.Code:
			msg = "InitProducerId request for transactionalId `" + id + "` failed due to transactional ID authorization failure"
		}
		return txnFailCause("Failed to force terminate transactionalId `"+id+"`", &txnMessageError{msg})
	}
}

// runTransactions is `moldau transactions COMMAND [options]`: kafka-transactions with Moldau's
// bootstrap rules (--bootstrap-server or -b anywhere, else $MOLDAU_BOOTSTRAP, else
// 127.0.0.1:9092); the commands, options and output are kafka-transactions'.
func runTransactions(e *env, args []string) error {
	var bootstrap string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if name == "--bootstrap-server" || name == "-b" || name == "--brokers" {
			if !hasValue {
				if i+1 >= len(args) {
					return e.usagef("%s needs a value", name)
				}
				i++
				value = args[i]
			}
			bootstrap = value
			continue
		}
		rest = append(rest, a)
	}
	seeds := strings.Join(e.bootstrap(bootstrap), ",")
	return runKafkaTransactions(e, append([]string{"--bootstrap-server", seeds}, rest...))
}
