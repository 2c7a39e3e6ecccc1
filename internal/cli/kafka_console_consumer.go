package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaConsoleConsumerUsage = `Usage: kafka-console-consumer --bootstrap-server HOST:PORT (--topic TOPIC | --include REGEX) [options]

Consumes messages and writes them to standard output (Apache Kafka compatible).
Formatter properties (--property): print.timestamp, print.key, print.offset, print.partition,
print.headers, print.value, key.separator, line.separator, headers.separator, null.literal.`

// messageFormatter is Kafka's DefaultMessageFormatter.
type messageFormatter struct {
	printTimestamp, printKey, printOffset, printPartition, printHeaders, printValue bool

	keySeparator, lineSeparator, headersSeparator, nullLiteral string
}

func defaultMessageFormatter() messageFormatter {
	return messageFormatter{
		printValue:       true,
		keySeparator:     "\t",
		lineSeparator:    "\n",
		headersSeparator: ",",
		nullLiteral:      "null",
	}
}

// messageFormatterFrom applies --property values; unknown keys are returned for a note.
func messageFormatterFrom(props map[string]string) (messageFormatter, []string, error) {
	f := defaultMessageFormatter()
	var unknown []string
	for k, v := range props {
		var b *bool
		switch k {
		case "print.timestamp":
			b = &f.printTimestamp
		case "print.key":
			b = &f.printKey
		case "print.offset":
			b = &f.printOffset
		case "print.partition":
			b = &f.printPartition
		case "print.headers":
			b = &f.printHeaders
		case "print.value":
			b = &f.printValue
		case "key.separator":
			f.keySeparator = v
		case "line.separator":
			f.lineSeparator = v
		case "headers.separator":
			f.headersSeparator = v
		case "null.literal":
			f.nullLiteral = v
		case "key.deserializer", "value.deserializer", "headers.deserializer":
			// Bytes are printed as UTF-8 text, which is what StringDeserializer does.
		default:
			unknown = append(unknown, k)
		}
		if b != nil {
			// Kafka reads these with Boolean.parseBoolean semantics: "true" (any case) or false.
			*b = strings.EqualFold(strings.TrimSpace(v), "true")
		}
	}
	return f, unknown, nil
}

// write prints one record exactly as Kafka's DefaultMessageFormatter.writeTo does.
func (f messageFormatter) write(w io.Writer, r *kgo.Record) error {
	var b strings.Builder
	sep := func(more bool) {
		if more {
			b.WriteString(f.keySeparator)
		} else {
			b.WriteString(f.lineSeparator)
		}
	}
	bytesOrNull := func(v []byte) {
		if v == nil {
			b.WriteString(f.nullLiteral)
		} else {
			b.Write(v)
		}
	}
	if f.printTimestamp {
		if r.Attrs.TimestampType() == 1 {
			b.WriteString("LogAppendTime:")
		} else {
			b.WriteString("CreateTime:")
		}
		b.WriteString(strconv.FormatInt(r.Timestamp.UnixMilli(), 10))
		sep(f.printPartition || f.printOffset || f.printHeaders || f.printKey || f.printValue)
	}
	if f.printPartition {
		b.WriteString("Partition:" + itoa32(r.Partition))
		sep(f.printOffset || f.printHeaders || f.printKey || f.printValue)
	}
	if f.printOffset {
		b.WriteString("Offset:" + strconv.FormatInt(r.Offset, 10))
		sep(f.printHeaders || f.printKey || f.printValue)
	}
	if f.printHeaders {
		if len(r.Headers) == 0 {
			b.WriteString("NO_HEADERS")
		}
		for i, h := range r.Headers {
			if i > 0 {
				b.WriteString(f.headersSeparator)
			}
			b.WriteString(h.Key + ":")
			bytesOrNull(h.Value)
		}
		sep(f.printKey || f.printValue)
	}
	if f.printKey {
		bytesOrNull(r.Key)
		sep(f.printValue)
	}
	if f.printValue {
		bytesOrNull(r.Value)
		b.WriteString(f.lineSeparator)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (e *env) isolationOpt(v string) (kgo.Opt, error) {
	switch strings.TrimSpace(v) {
	case "read_uncommitted":
		return kgo.FetchIsolationLevel(kgo.ReadUncommitted()), nil
	case "read_committed":
		return kgo.FetchIsolationLevel(kgo.ReadCommitted()), nil
	}
	return nil, e.argf("--isolation-level must be read_committed or read_uncommitted, got %q", v)
}

func runKafkaConsoleConsumer(e *env, args []string) error {
	fs := newFlagSet("kafka-console-consumer")
	var bootstrap, topic, include, group, partitionS, offsetS, maxS, timeoutS, isolation, ignoredS string
	var fromBeginning, skipErrors bool
	client := toolProps{propFlag: "command-property", oldPropFlag: "consumer-property",
		configFlag: "command-config", oldConfigFlag: "consumer.config", deprecation: consumerDeprecation, oldFirst: true}
	formatterProps := toolProps{propFlag: "formatter-property", oldPropFlag: "property",
		configFlag: "formatter-config", deprecation: consumerDeprecation, oldFirst: true}
	fs.StringVar(&bootstrap, "bootstrap-server", "", "REQUIRED: the server(s) to connect to")
	fs.StringVar(&topic, "topic", "", "the topic to consume on")
	fs.StringVar(&include, "include", "", "regular expression of the topics to consume")
	fs.StringVar(&include, "whitelist", "", "DEPRECATED, use --include")
	fs.StringVar(&group, "group", "", "the consumer group id of the consumer")
	fs.StringVar(&partitionS, "partition", "", "the partition to consume from")
	fs.StringVar(&offsetS, "offset", "latest", "the offset to start from: a non-negative number, earliest or latest (needs --partition)")
	fs.BoolVar(&fromBeginning, "from-beginning", false, "start with the earliest message present rather than the latest")
	fs.StringVar(&maxS, "max-messages", "", "the maximum number of messages to consume before exiting")
	fs.StringVar(&timeoutS, "timeout-ms", "", "exit if no message is available for consumption for this long")
	formatterProps.register(fs, "formatter")
	client.register(fs, "consumer config")
	fs.StringVar(&isolation, "isolation-level", "read_uncommitted", "read_committed or read_uncommitted")
	fs.BoolVar(&skipErrors, "skip-message-on-error", false, "accepted and ignored")
	fs.BoolVar(&skipErrors, "enable-systest-events", false, "accepted and ignored")
	fs.StringVar(&ignoredS, "formatter", "", "only the default formatter is supported")
	fs.StringVar(&ignoredS, "key-deserializer", "", "accepted and ignored (bytes are printed as text)")
	fs.StringVar(&ignoredS, "value-deserializer", "", "accepted and ignored (bytes are printed as text)")
	pos, err := e.parseArgs(fs, args, kafkaConsoleConsumerUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("Found non-option arguments: %s", strings.Join(pos, " "))
	}
	if (topic == "") == (include == "") {
		return e.usagef("Exactly one of --include/--topic is required.")
	}
	if ignoredS != "" && isFlagSet(fs, "formatter") && !strings.HasSuffix(ignoredS, "DefaultMessageFormatter") {
		return e.argf("--formatter %s is not supported; only the default formatter is", ignoredS)
	}
	merged, err := client.resolve(e)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, merged["bootstrap.servers"])
	if err != nil {
		return err
	}
	fprops, err := formatterProps.resolve(e)
	if err != nil {
		return err
	}
	formatter, unknown, err := messageFormatterFrom(fprops)
	if err != nil {
		return e.argf("%v", err)
	}
	if len(unknown) > 0 {
		fmt.Fprintf(e.stderr, "%s: note: ignoring unknown formatter properties: %s\n", e.name, strings.Join(sortedCopy(unknown), ", "))
	}
	cs, err := e.consumerPropertyOpts(merged)
	if err != nil {
		return err
	}
	copts, propGroup, reset := cs.opts, cs.group, cs.reset
	if group != "" && propGroup != "" && group != propGroup {
		return e.usagef("Group id from --group (%s) and the group.id property (%s) differ; give one", group, propGroup)
	}
	if group == "" {
		group = propGroup
	}
	iso, err := e.isolationOpt(isolation)
	if err != nil {
		return err
	}
	// --isolation-level given on the command line wins over the isolation.level property, which
	// wins over the flag's default (Kafka's maybeMergeOptions).
	opts := append([]kgo.Opt{iso, kgo.ClientID("console-consumer")}, copts...)
	if isFlagSet(fs, "isolation-level") {
		opts = append(opts, iso)
	}
	spec := consumeSpec{partition: -1, group: group, opts: opts, autoCreate: cs.autoCreate, warnMissing: true}
	if topic != "" {
		spec.topics = []string{topic}
	} else {
		spec.topics, spec.regex = []string{"^(?:" + include + ")$"}, true
	}
	offsetGiven := isFlagSet(fs, "offset")
	if partitionS != "" {
		p, err := e.parseInt("partition", partitionS, 0, "a non-negative partition number")
		if err != nil {
			return err
		}
		spec.partition = int32(p)
		if include != "" {
			return e.usagef("Option --partition is only valid with --topic, not --include")
		}
	}
	switch {
	case fromBeginning && offsetGiven:
		return e.usagef("Options --from-beginning and --offset cannot be specified together.")
	case offsetGiven && spec.partition < 0:
		return e.usagef("The partition is required when offset is specified.")
	case fromBeginning && group != "" && spec.partition < 0:
		// Kafka resets the group to the start only if it has no committed offsets; that is what
		// the reset policy does.
		spec.start = startEarliest
	case fromBeginning:
		spec.start = startEarliest
	case offsetGiven:
		k, n, ok := parseStart(offsetS)
		if !ok {
			return e.argf("--offset must be earliest, latest or a non-negative number, got %q", offsetS)
		}
		spec.start, spec.offset = k, n
	case reset == "earliest":
		spec.start = startEarliest
	}
	if group != "" && spec.partition >= 0 {
		return e.usagef("Moldau's console consumer cannot combine --group with --partition; drop one")
	}
	if maxS != "" {
		if spec.maxMessages, err = e.parseInt("max-messages", maxS, 1, "a positive integer"); err != nil {
			return err
		}
	}
	if timeoutS != "" {
		ms, err := e.parseInt("timeout-ms", timeoutS, 1, "a positive number of milliseconds")
		if err != nil {
			return err
		}
		spec.idle = time.Duration(ms) * time.Millisecond
	}
	out := bufio.NewWriter(e.stdout)
	n, err := consumeRecords(e, seeds, spec, func(r *kgo.Record) error {
		if err := formatter.write(out, r); err != nil {
			return err
		}
		// Flush per poll would be cheaper, but a console tool must show records as they arrive.
		return out.Flush()
	})
	_ = out.Flush()
	if errors.Is(err, errIdleTimeout) {
		fmt.Fprintln(e.stderr, "ERROR Error processing message, terminating consumer process:  (org.apache.kafka.common.errors.TimeoutException)")
		err = nil
	}
	fmt.Fprintf(e.stderr, "Processed a total of %d messages\n", n)
	return err
}
