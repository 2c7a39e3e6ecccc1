package cli

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Client properties of Kafka's tools (--command-property k=v, --command-config FILE and their
// deprecated names) mapped onto kgo options. A property Moldau maps changes the client; a Kafka
// client property it does not map is accepted with a note (it has no effect here); anything else
// is not a Kafka config at all and gets Kafka's warning.

// commonClientConfigs are Kafka's CommonClientConfigs and the security settings every client
// takes; ssl.*, sasl.* and security.* are matched by prefix in isKnownClientConfig.
var commonClientConfigs = []string{
	"bootstrap.servers", "client.id", "client.dns.lookup", "client.rack", "connections.max.idle.ms",
	"default.api.timeout.ms", "enable.metrics.push", "interceptor.classes", "metadata.max.age.ms",
	"metadata.recovery.strategy", "metadata.recovery.rebootstrap.trigger.ms", "metric.reporters",
	"metrics.num.samples", "metrics.recording.level", "metrics.sample.window.ms", "receive.buffer.bytes",
	"reconnect.backoff.max.ms", "reconnect.backoff.ms", "request.timeout.ms", "retry.backoff.max.ms",
	"retry.backoff.ms", "send.buffer.bytes", "socket.connection.setup.timeout.max.ms",
	"socket.connection.setup.timeout.ms", "auto.include.jmx.reporter", "config.providers",
	"bootstrap.resolve.timeout.ms",
}

// producerConfigs are Kafka 4.4's ProducerConfig names (besides commonClientConfigs).
var producerConfigs = []string{
	"acks", "batch.size", "buffer.memory", "compression.type", "compression.gzip.level",
	"compression.lz4.level", "compression.zstd.level", "delivery.timeout.ms", "enable.idempotence",
	"key.serializer", "value.serializer", "linger.ms", "max.block.ms", "max.in.flight.requests.per.connection",
	"max.request.size", "metadata.max.idle.ms", "partitioner.class", "partitioner.adaptive.partitioning.enable",
	"partitioner.availability.timeout.ms", "partitioner.ignore.keys", "retries", "transaction.timeout.ms",
	"transactional.id", "transaction.two.phase.commit.enable",
}

// consumerConfigs are Kafka 4.4's ConsumerConfig names (besides commonClientConfigs).
var consumerConfigs = []string{
	"allow.auto.create.topics", "auto.commit.interval.ms", "auto.offset.reset", "check.crcs",
	"enable.auto.commit", "exclude.internal.topics", "fetch.max.bytes", "fetch.max.wait.ms", "fetch.min.bytes",
	"group.id", "group.instance.id", "group.protocol", "group.remote.assignor", "heartbeat.interval.ms",
	"isolation.level", "key.deserializer", "value.deserializer", "max.partition.fetch.bytes",
	"max.poll.interval.ms", "max.poll.records", "partition.assignment.strategy", "session.timeout.ms",
	"share.acknowledgement.mode", "internal.leave.group.on.close", "internal.throw.on.fetch.stable.offset.unsupported",
}

// isKnownClientConfig reports whether k is a Kafka client config of the given kind.
func isKnownClientConfig(k string, kind []string) bool {
	for _, p := range []string{"ssl.", "sasl.", "security."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return slices.Contains(commonClientConfigs, k) || slices.Contains(kind, k)
}

// reportProps prints the notes for properties that had no effect: Kafka's warning for names that
// are no Kafka config, a note for Kafka configs Moldau's tool does not use.
func (e *env) reportProps(kind string, unknown, unused []string) {
	for _, k := range sortedCopy(unknown) {
		fmt.Fprintf(e.stderr, "WARN The configuration '%s' was supplied but isn't a known config.\n", k)
	}
	if len(unused) > 0 {
		fmt.Fprintf(e.stderr, "%s: note: Moldau's %s ignores these %s properties: %s\n", e.name, e.name, kind, strings.Join(sortedCopy(unused), ", "))
	}
}

// toolProps is one set of properties of a Kafka tool, as Kafka 4.4's tools take them: a file
// (--command-config, --reader-config, --formatter-config) and key=value flags (--command-property,
// --reader-property, --formatter-property) that win over it, each possibly with a deprecated older
// name (--producer-property, --producer.config, --consumer-property, --consumer.config,
// --property). Giving both names of one option is an error with Kafka's message; a deprecated
// name prints Kafka's deprecation warning (to stderr: Kafka prints it on stdout, where it would
// mix with a consumer's records).
type toolProps struct {
	propFlag, oldPropFlag     string // "command-property", "producer-property"
	configFlag, oldConfigFlag string // "command-config", "producer.config"; oldConfigFlag may be ""
	// deprecation is Kafka's warning with two %s (old, new): the tools word it differently.
	deprecation string
	// oldFirst: the conflict message names the deprecated flag first (the console consumer).
	oldFirst bool

	props, oldProps   listFlag
	config, oldConfig string
}

const (
	producerDeprecation = "Warning: --%s is deprecated and will be removed in a future version. Use --%s instead."
	consumerDeprecation = "Option --%s is deprecated and will be removed in a future version. Use --%s instead."
)

// register declares the flags on fs; what names the properties in the help ("producer").
func (p *toolProps) register(fs *flag.FlagSet, what string) {
	fs.Var(&p.props, p.propFlag, what+" property k=v (repeatable)")
	fs.Var(&p.oldProps, p.oldPropFlag, "DEPRECATED, use --"+p.propFlag)
	fs.StringVar(&p.config, p.configFlag, "", what+" properties file; --"+p.propFlag+" wins over it")
	if p.oldConfigFlag != "" {
		fs.StringVar(&p.oldConfig, p.oldConfigFlag, "", "DEPRECATED, use --"+p.configFlag)
	}
}

func (p *toolProps) conflict(e *env, newFlag, oldFlag string) error {
	if p.oldFirst {
		newFlag, oldFlag = oldFlag, newFlag
	}
	return e.argf("Options --%s and --%s cannot be specified together.", newFlag, oldFlag)
}

// resolve returns the merged properties: the file's, then the flags', which win.
func (p *toolProps) resolve(e *env) (map[string]string, error) {
	if len(p.props) > 0 && len(p.oldProps) > 0 {
		return nil, p.conflict(e, p.propFlag, p.oldPropFlag)
	}
	if p.config != "" && p.oldConfig != "" {
		return nil, p.conflict(e, p.configFlag, p.oldConfigFlag)
	}
	props, propFlag, config, configFlag := p.props, p.propFlag, p.config, p.configFlag
	if len(p.oldProps) > 0 {
		props, propFlag = p.oldProps, p.oldPropFlag
		fmt.Fprintf(e.stderr, p.deprecation+"\n", p.oldPropFlag, p.propFlag)
	}
	if p.oldConfig != "" {
		config, configFlag = p.oldConfig, p.oldConfigFlag
		fmt.Fprintf(e.stderr, p.deprecation+"\n", p.oldConfigFlag, p.configFlag)
	}
	merged := map[string]string{}
	if config != "" {
		m, err := readProperties(config)
		if err != nil {
			return nil, e.argf("--%s: %v", configFlag, err)
		}
		maps.Copy(merged, m)
	}
	kv, _, err := e.parseKV(propFlag, props)
	if err != nil {
		return nil, err
	}
	maps.Copy(merged, kv)
	return merged, nil
}

// parseMs parses a non-negative millisecond property.
func (e *env) parseMsProp(kind, k, v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, e.argf("%s property %s must be a non-negative number of milliseconds, got %q", kind, k, v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// parseIntProp parses an integer property of at least minimum.
func (e *env) parseIntProp(kind, k, v string, minimum int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < minimum {
		return 0, e.argf("%s property %s must be an integer >= %d, got %q", kind, k, minimum, v)
	}
	return n, nil
}

// parseBoolProp parses a boolean property as Kafka does (true or false, any case).
func (e *env) parseBoolProp(kind, k, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, e.argf("%s property %s must be true or false, got %q", kind, k, v)
}

// producerPropertyOpts maps producer properties to client options. bootstrap.servers is the
// caller's; serializers are accepted silently (lines are bytes).
func (e *env) producerPropertyOpts(props map[string]string) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	var unknown, unused []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		v := strings.TrimSpace(props[k])
		var err error
		var d time.Duration
		var n int64
		var b bool
		switch k {
		case "acks":
			var o []kgo.Opt
			o, err = e.acksOpts("producer-property acks", v)
			opts = append(opts, o...)
		case "compression.type":
			var o kgo.Opt
			if o, err = e.compressionOpt("producer-property compression.type", v); err == nil {
				opts = append(opts, o)
			}
		case "linger.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.ProducerLinger(d))
			}
		case "delivery.timeout.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.RecordDeliveryTimeout(d))
			}
		case "request.timeout.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.ProduceRequestTimeout(d))
			}
		case "retry.backoff.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.RetryBackoffFn(func(int) time.Duration { return d }))
			}
		case "metadata.max.age.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.MetadataMaxAge(max(d, time.Second)))
			}
		case "socket.connection.setup.timeout.ms":
			if d, err = e.parseMsProp("producer", k, v); err == nil {
				opts = append(opts, kgo.DialTimeout(d))
			}
		case "batch.size":
			if n, err = e.parseIntProp("producer", k, v, 0); err == nil {
				opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(max(n, 1), 1<<30))))
			}
		case "max.request.size":
			if n, err = e.parseIntProp("producer", k, v, 1); err == nil {
				opts = append(opts, kgo.BrokerMaxWriteBytes(int32(min(max(n, 1<<20), 1<<30))))
			}
		case "buffer.memory":
			if n, err = e.parseIntProp("producer", k, v, 1); err == nil {
				opts = append(opts, kgo.MaxBufferedBytes(int(n)))
			}
		case "retries":
			if n, err = e.parseIntProp("producer", k, v, 0); err == nil {
				opts = append(opts, kgo.RecordRetries(int(min(n, 1<<31-1))))
			}
		case "max.in.flight.requests.per.connection":
			if n, err = e.parseIntProp("producer", k, v, 1); err == nil {
				opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(int(min(n, 1<<20))))
			}
		case "client.id":
			opts = append(opts, kgo.ClientID(v))
		case "client.rack":
			opts = append(opts, kgo.Rack(v))
		case "enable.idempotence":
			if b, err = e.parseBoolProp("producer", k, v); err == nil && !b {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
		case "bootstrap.servers", "key.serializer", "value.serializer":
		default:
			if isKnownClientConfig(k, producerConfigs) {
				unused = append(unused, k)
			} else {
				unknown = append(unknown, k)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	e.reportProps("producer", unknown, unused)
	return opts, nil
}

// consumerSettings are the consumer properties a console consumer applies itself.
type consumerSettings struct {
	opts       []kgo.Opt
	group      string // group.id
	reset      string // auto.offset.reset: earliest, latest, none or ""
	autoCreate bool   // allow.auto.create.topics (default true)
}

// consumerPropertyOpts maps consumer properties to client options and settings.
func (e *env) consumerPropertyOpts(props map[string]string) (consumerSettings, error) {
	s := consumerSettings{autoCreate: true}
	var unknown, unused []string
	for _, k := range slices.Sorted(maps.Keys(props)) {
		v := strings.TrimSpace(props[k])
		var err error
		var d time.Duration
		var n int64
		switch k {
		case "group.id":
			s.group = v
		case "auto.offset.reset":
			switch v {
			case "earliest", "latest", "none":
				s.reset = v
			default:
				err = e.argf("consumer property auto.offset.reset must be earliest, latest or none, got %q", v)
			}
		case "allow.auto.create.topics":
			s.autoCreate, err = e.parseBoolProp("consumer", k, v)
		case "client.id":
			s.opts = append(s.opts, kgo.ClientID(v))
		case "client.rack":
			s.opts = append(s.opts, kgo.Rack(v))
		case "group.instance.id":
			s.opts = append(s.opts, kgo.InstanceID(v))
		case "isolation.level":
			var o kgo.Opt
			if o, err = e.isolationOpt(v); err == nil {
				s.opts = append(s.opts, o)
			}
		case "fetch.max.bytes", "max.partition.fetch.bytes", "fetch.min.bytes":
			if n, err = e.parseIntProp("consumer", k, v, 1); err == nil {
				n = min(n, 1<<31-1)
				switch k {
				case "fetch.max.bytes":
					s.opts = append(s.opts, kgo.FetchMaxBytes(int32(n)))
				case "max.partition.fetch.bytes":
					s.opts = append(s.opts, kgo.FetchMaxPartitionBytes(int32(n)))
				case "fetch.min.bytes":
					s.opts = append(s.opts, kgo.FetchMinBytes(int32(n)))
				}
			}
		case "fetch.max.wait.ms", "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
			"auto.commit.interval.ms", "metadata.max.age.ms", "socket.connection.setup.timeout.ms", "retry.backoff.ms":
			if d, err = e.parseMsProp("consumer", k, v); err == nil {
				switch k {
				case "fetch.max.wait.ms":
					s.opts = append(s.opts, kgo.FetchMaxWait(max(d, time.Millisecond)))
				case "session.timeout.ms":
					s.opts = append(s.opts, kgo.SessionTimeout(d))
				case "heartbeat.interval.ms":
					s.opts = append(s.opts, kgo.HeartbeatInterval(d))
				case "max.poll.interval.ms":
					s.opts = append(s.opts, kgo.RebalanceTimeout(d))
				case "auto.commit.interval.ms":
					s.opts = append(s.opts, kgo.AutoCommitInterval(max(d, time.Millisecond)))
				case "metadata.max.age.ms":
					s.opts = append(s.opts, kgo.MetadataMaxAge(max(d, time.Second)))
				case "socket.connection.setup.timeout.ms":
					s.opts = append(s.opts, kgo.DialTimeout(d))
				case "retry.backoff.ms":
					s.opts = append(s.opts, kgo.RetryBackoffFn(func(int) time.Duration { return d }))
				}
			}
		case "partition.assignment.strategy":
			var o kgo.Opt
			if o, err = e.balancersOpt(v); err == nil {
				s.opts = append(s.opts, o)
			}
		case "bootstrap.servers", "key.deserializer", "value.deserializer", "enable.auto.commit":
			// The console consumer commits what it printed (enable.auto.commit is how Kafka's does it).
		default:
			if isKnownClientConfig(k, consumerConfigs) {
				unused = append(unused, k)
			} else {
				unknown = append(unknown, k)
			}
		}
		if err != nil {
			return consumerSettings{}, err
		}
	}
	e.reportProps("consumer", unknown, unused)
	return s, nil
}

// balancersOpt maps partition.assignment.strategy (Kafka's assignor class names or their short
// names, comma-separated, in preference order) to kgo's balancers.
func (e *env) balancersOpt(v string) (kgo.Opt, error) {
	var bs []kgo.GroupBalancer
	for name := range strings.SplitSeq(v, ",") {
		name = strings.TrimSpace(name)
		short := name[strings.LastIndex(name, ".")+1:]
		switch short {
		case "RangeAssignor", "range":
			bs = append(bs, kgo.RangeBalancer())
		case "RoundRobinAssignor", "roundrobin":
			bs = append(bs, kgo.RoundRobinBalancer())
		case "StickyAssignor", "sticky":
			bs = append(bs, kgo.StickyBalancer())
		case "CooperativeStickyAssignor", "cooperative-sticky":
			bs = append(bs, kgo.CooperativeStickyBalancer())
		case "":
		default:
			return nil, e.argf("consumer property partition.assignment.strategy: unknown assignor %q (want RangeAssignor, RoundRobinAssignor, StickyAssignor or CooperativeStickyAssignor)", name)
		}
	}
	if len(bs) == 0 {
		return nil, e.argf("consumer property partition.assignment.strategy is empty")
	}
	return kgo.Balancers(bs...), nil
}
