package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaConsoleProducerUsage = `Usage: kafka-console-producer --bootstrap-server HOST:PORT --topic TOPIC [options] < lines

Reads data from standard input and publishes it to Kafka (Apache Kafka compatible).
Line reader properties (--property): parse.key, key.separator, parse.headers, headers.delimiter,
headers.separator, headers.key.separator, null.marker, ignore.error.`

// lineReaderConfig is Kafka's LineMessageReader configuration.
type lineReaderConfig struct {
	parseKey            bool
	keySeparator        string
	parseHeaders        bool
	headersDelimiter    string
	headersSeparator    string
	headersKeySeparator string
	nullMarker          *string
	ignoreError         bool
}

func defaultLineReaderConfig() lineReaderConfig {
	return lineReaderConfig{
		keySeparator:        "\t",
		headersDelimiter:    "\t",
		headersSeparator:    ",",
		headersKeySeparator: ":",
	}
}

// lineReaderConfigFrom applies --property values; unknown keys are returned for a note.
func lineReaderConfigFrom(props map[string]string) (lineReaderConfig, []string, error) {
	c := defaultLineReaderConfig()
	var unknown []string
	for k, v := range props {
		var err error
		switch k {
		case "parse.key":
			c.parseKey, err = strconv.ParseBool(strings.TrimSpace(v))
		case "key.separator":
			c.keySeparator = v
		case "parse.headers":
			c.parseHeaders, err = strconv.ParseBool(strings.TrimSpace(v))
		case "headers.delimiter":
			c.headersDelimiter = v
		case "headers.separator":
			c.headersSeparator = v
		case "headers.key.separator":
			c.headersKeySeparator = v
		case "null.marker":
			s := v
			c.nullMarker = &s
		case "ignore.error":
			c.ignoreError, err = strconv.ParseBool(strings.TrimSpace(v))
		default:
			unknown = append(unknown, k)
		}
		if err != nil {
			return c, nil, fmt.Errorf("property %s must be true or false, got %q", k, v)
		}
	}
	for name, sep := range map[string]string{"key.separator": c.keySeparator, "headers.delimiter": c.headersDelimiter, "headers.separator": c.headersSeparator, "headers.key.separator": c.headersKeySeparator} {
		if sep == "" {
			return c, nil, fmt.Errorf("property %s must not be empty", name)
		}
	}
	if c.nullMarker != nil {
		m := *c.nullMarker
		if m == c.keySeparator || m == c.headersDelimiter || m == c.headersSeparator || m == c.headersKeySeparator {
			return c, nil, fmt.Errorf("null.marker %q must differ from key.separator, headers.delimiter, headers.separator and headers.key.separator", m)
		}
	}
	return c, unknown, nil
}

// parseLine is Kafka's LineMessageReader.readRecord: [headers<delim>][key<sep>]value.
func (c lineReaderConfig) parseLine(line []byte, lineNo int) (*kgo.Record, error) {
	s := string(line)
	cut := func(enabled bool, start int, demarcation, name string) (string, bool, error) {
		if !enabled {
			return "", false, nil
		}
		i := strings.Index(s[start:], demarcation)
		if i < 0 {
			if c.ignoreError {
				return "", false, nil
			}
			return "", false, fmt.Errorf("No %s found on line number %d: '%s'", name, lineNo, s)
		}
		return s[start : start+i], true, nil
	}
	headers, hasHeaders, err := cut(c.parseHeaders, 0, c.headersDelimiter, "headers delimiter")
	if err != nil {
		return nil, err
	}
	headerOff := 0
	if hasHeaders {
		headerOff = len(headers) + len(c.headersDelimiter)
	}
	key, hasKey, err := cut(c.parseKey, headerOff, c.keySeparator, "key separator")
	if err != nil {
		return nil, err
	}
	keyOff := 0
	if hasKey {
		keyOff = len(key) + len(c.keySeparator)
	}
	value := s[headerOff+keyOff:]
	isNull := func(v string) bool { return c.nullMarker != nil && v == *c.nullMarker }
	rec := &kgo.Record{}
	if hasKey && !isNull(key) {
		rec.Key = []byte(key)
	}
	if !isNull(value) {
		rec.Value = []byte(value)
	}
	if hasHeaders && !isNull(headers) {
		for pair := range strings.SplitSeq(headers, c.headersSeparator) {
			i := strings.Index(pair, c.headersKeySeparator)
			if i < 0 {
				if c.ignoreError {
					rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: pair})
					continue
				}
				return nil, fmt.Errorf("No header key separator found in pair '%s' on line number %d", pair, lineNo)
			}
			hk, hv := pair[:i], pair[i+len(c.headersKeySeparator):]
			if isNull(hk) {
				return nil, fmt.Errorf("Header keys should not be equal to the null marker '%s' as they can't be null", hk)
			}
			h := kgo.RecordHeader{Key: hk}
			if !isNull(hv) {
				h.Value = []byte(hv)
			}
			rec.Headers = append(rec.Headers, h)
		}
	}
	return rec, nil
}

func runKafkaConsoleProducer(e *env, args []string) error {
	fs := newFlagSet("kafka-console-producer")
	var bootstrap, brokerList, topic, codec, acks, lingerS, batchS string
	var syncSend bool
	var ignoredS string
	client := toolProps{propFlag: "command-property", oldPropFlag: "producer-property",
		configFlag: "command-config", oldConfigFlag: "producer.config", deprecation: producerDeprecation}
	reader := toolProps{propFlag: "reader-property", oldPropFlag: "property",
		configFlag: "reader-config", deprecation: producerDeprecation}
	fs.StringVar(&bootstrap, "bootstrap-server", "", "REQUIRED unless --broker-list is given: the server(s) to connect to")
	fs.StringVar(&brokerList, "broker-list", "", "DEPRECATED, use --bootstrap-server instead")
	fs.StringVar(&topic, "topic", "", "REQUIRED: the topic to produce messages to")
	client.register(fs, "producer config")
	reader.register(fs, "line reader")
	fs.StringVar(&codec, "compression-codec", "", "none, gzip, snappy, lz4 or zstd; given without a value, gzip")
	fs.StringVar(&acks, "request-required-acks", "-1", "the required acks of the producer requests")
	fs.BoolVar(&syncSend, "sync", false, "send each message synchronously")
	fs.StringVar(&lingerS, "timeout", "1000", "linger: ms a message may wait for its batch to fill")
	fs.StringVar(&batchS, "batch-size", "", "number of bytes in a batch (batch.size)")
	for _, n := range []string{"message-send-max-retries", "retry-backoff-ms", "max-block-ms", "max-memory-bytes", "max-partition-memory-bytes", "metadata-expiry-ms", "request-timeout-ms", "socket-buffer-size", "line-reader"} {
		fs.StringVar(&ignoredS, n, "", "accepted and ignored by Moldau")
	}
	// Kafka's --compression-codec takes an optional value; give a bare one its default.
	args = optionalValue(args, "compression-codec", "gzip")
	pos, err := e.parseArgs(fs, args, kafkaConsoleProducerUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("Found non-option arguments: %s", strings.Join(pos, " "))
	}
	if topic == "" {
		return e.usagef("Missing required argument \"[topic]\"")
	}
	clientProps, err := client.resolve(e)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, brokerList, clientProps["bootstrap.servers"])
	if err != nil {
		return err
	}
	readerProps, err := reader.resolve(e)
	if err != nil {
		return err
	}
	lr, unknown, err := lineReaderConfigFrom(readerProps)
	if err != nil {
		return e.argf("%v", err)
	}
	if len(unknown) > 0 {
		fmt.Fprintf(e.stderr, "%s: note: ignoring unknown line reader properties: %s\n", e.name, strings.Join(sortedCopy(unknown), ", "))
	}
	linger, err := e.parseInt("timeout", lingerS, 0, "a non-negative number of milliseconds")
	if err != nil {
		return err
	}
	// As Kafka's maybeMergeOptions: a tool flag given on the command line wins over a client
	// property, a client property wins over a flag's default.
	acksOpts, err := e.acksOpts("request-required-acks", acks)
	if err != nil {
		return err
	}
	comp, err := e.compressionOpt("compression-codec", codec)
	if err != nil {
		return err
	}
	flagOpts := map[string][]kgo.Opt{
		"request-required-acks": acksOpts,
		"compression-codec":     {comp},
		"timeout":               {kgo.ProducerLinger(time.Duration(linger) * time.Millisecond)},
	}
	if batchS != "" {
		n, err := e.parseInt("batch-size", batchS, 1, "a positive number of bytes")
		if err != nil {
			return err
		}
		flagOpts["batch-size"] = []kgo.Opt{kgo.ProducerBatchMaxBytes(int32(min(n, 1<<30)))}
	}
	// Kafka's producer asks the broker to create a missing topic (the broker's
	// auto.create.topics.enable decides); so does this one.
	opts := []kgo.Opt{kgo.ClientID("console-producer"), kgo.RecordDeliveryTimeout(2 * time.Minute), kgo.AllowAutoTopicCreation()}
	flagNames := slices.Sorted(maps.Keys(flagOpts))
	for _, name := range flagNames {
		opts = append(opts, flagOpts[name]...)
	}
	propOpts, err := e.producerPropertyOpts(clientProps)
	if err != nil {
		return err
	}
	opts = append(opts, propOpts...)
	for _, name := range flagNames {
		if isFlagSet(fs, name) {
			opts = append(opts, flagOpts[name]...)
		}
	}
	cl, err := newClient(seeds, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var prompt io.Writer
	if interactive(e.stdin, e.stdout) {
		prompt = e.stdout
	}
	res, err := produceLines(e, cl, e.stdin, prompt, topic, -1, lr.parseLine, syncSend)
	if err != nil {
		return err
	}
	if res.failed > 0 {
		if errors.Is(res.firstErr, kerr.UnknownTopicOrPartition) {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: %d of %d messages failed: %s", e.name, res.failed, res.sent+res.failed,
				missingTopicMessage(topic, "kafka-topics --create --topic "+topic+" --bootstrap-server "+strings.Join(seeds, ",")))}
		}
		return &exitError{code: 1, msg: fmt.Sprintf("%s: %d of %d messages failed; first error: %v", e.name, res.failed, res.sent+res.failed, res.firstErr)}
	}
	return nil
}

// optionalValue gives a flag with an optional value (joptsimple style) its default when it is
// last or followed by another flag: "--compression-codec --topic t" -> "--compression-codec=gzip".
func optionalValue(args []string, name, def string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--"+name || a == "-"+name {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				out = append(out, a+"="+def)
				continue
			}
		}
		out = append(out, a)
	}
	return out
}
