// Package config turns server.properties, environment variables and flags into one typed,
// validated Config, and holds the catalogue of broker and topic config keys that DescribeConfigs,
// AlterConfigs and CreateTopics validate against.
//
// Keys are Kafka's. Moldau-only keys (no Kafka equivalent):
//
//	controller.listener  host:port the raft transport listens on (default: see BrokerKeys)
//	metrics.listener     host:port serving Prometheus /metrics and the web console (default: off)
//
// Well-known Kafka keys that mean nothing to Moldau (zookeeper.connect, num.network.threads,
// ssl.*, transaction.state.log.*, ...) are accepted and listed in Config.Ignored, so that files
// copied from Kafka start. Any other unknown key is an error.
package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Source says where the effective value of a key came from.
type Source int8

const (
	SourceDefault Source = iota // the key's default
	SourceFile                  // server.properties (--config)
	SourceEnv                   // KAFKA_* / MOLDAU_* environment variables
	SourceFlag                  // command-line flags and --override
	SourceStatic                // a layer passed to Build (static, origin unknown)
	SourceDynamic               // a cluster-wide dynamic broker config (WithDynamic)
)

func (s Source) String() string {
	switch s {
	case SourceDefault:
		return "default"
	case SourceFile:
		return "file"
	case SourceEnv:
		return "env"
	case SourceFlag:
		return "flag"
	case SourceStatic:
		return "static"
	case SourceDynamic:
		return "dynamic"
	}
	return "unknown"
}

// KafkaConfigSource is the DescribeConfigs ConfigSource code: DEFAULT_CONFIG (5),
// STATIC_BROKER_CONFIG (4) or DYNAMIC_DEFAULT_BROKER_CONFIG (3).
func (s Source) KafkaConfigSource() int8 {
	switch s {
	case SourceDefault:
		return 5
	case SourceDynamic:
		return 3
	}
	return 4
}

// Config is the validated server configuration. Field comments name the key(s) behind each field.
// Build, ParseServerArgs and WithDynamic return a Config that is never modified afterwards.
type Config struct {
	NodeID       int32    // node.id (broker.id is an alias)
	ProcessRoles []string // process.roles: always [broker controller]
	ClusterID    string   // cluster.id; "" = unset
	Rack         string   // broker.rack; "" = unset

	// Listeners are the client listeners (listeners minus those named in
	// controller.listener.names). A port of 0 means any free port.
	Listeners []Listener
	// AdvertisedListeners has one entry per client listener, same order and names: the
	// advertised.listeners entry of that name, or the listener itself with an empty or wildcard
	// host replaced by this machine's host name (os.Hostname; 127.0.0.1 if that fails), as Kafka
	// advertises its canonical host name. A port of 0 must be replaced by the bound port.
	AdvertisedListeners []Listener
	// ControllerListener is the raft transport bind address (host:port); "" together with empty
	// ControllerQuorumVoters means a single voter with an in-memory transport. Other voters dial
	// this node at its entry in ControllerQuorumVoters.
	ControllerListener     string
	ControllerQuorumVoters []Voter // controller.quorum.voters; empty = single voter (this node)
	MetricsListener        string  // metrics.listener host:port; "" = off

	LogDirs []string // log.dirs, else log.dir

	NumPartitions            int32 // num.partitions
	DefaultReplicationFactor int16 // default.replication.factor
	AutoCreateTopicsEnable   bool  // auto.create.topics.enable
	MinInsyncReplicas        int32 // min.insync.replicas

	LogRetentionMs               int64    // log.retention.ms|minutes|hours; -1 = forever
	LogRetentionBytes            int64    // log.retention.bytes; -1 = no limit
	LogSegmentBytes              int64    // log.segment.bytes
	LogRollMs                    int64    // log.roll.ms|hours
	LogIndexIntervalBytes        int32    // log.index.interval.bytes
	LogIndexSizeMaxBytes         int32    // log.index.size.max.bytes
	LogFlushIntervalMessages     int64    // log.flush.interval.messages; 1 (fsync before ack) unless it or log.flush.interval.ms is set
	LogFlushIntervalMs           int64    // log.flush.interval.ms; math.MaxInt64 when unset
	LogSegmentDeleteDelayMs      int64    // log.segment.delete.delay.ms
	LogRetentionCheckIntervalMs  int64    // log.retention.check.interval.ms
	LogCleanerEnable             bool     // log.cleaner.enable
	LogCleanerBackoffMs          int64    // log.cleaner.backoff.ms
	LogCleanupPolicy             []string // log.cleanup.policy: delete and/or compact
	LogMessageTimestampType      string   // log.message.timestamp.type: CreateTime | LogAppendTime
	LogMessageTimestampBeforeMax int64    // log.message.timestamp.before.max.ms
	LogMessageTimestampAfterMax  int64    // log.message.timestamp.after.max.ms
	CompressionType              string   // compression.type
	UncleanLeaderElectionEnable  bool     // unclean.leader.election.enable
	MessageMaxBytes              int32    // message.max.bytes
	SocketRequestMaxBytes        int32    // socket.request.max.bytes
	FetchSessionCacheSlots       int32    // max.incremental.fetch.session.cache.slots

	QueuedMaxRequestBytes        int64            // queued.max.request.bytes; -1 = unbounded
	ConnectionsMaxIdleMs         int64            // connections.max.idle.ms; -1 = never
	MaxConnections               int32            // max.connections
	MaxConnectionsPerIP          int32            // max.connections.per.ip
	MaxConnectionsPerIPOverrides map[string]int32 // max.connections.per.ip.overrides: host -> cap

	OffsetsTopicNumPartitions     int32 // offsets.topic.num.partitions
	OffsetsTopicReplicationFactor int16 // offsets.topic.replication.factor
	OffsetsRetentionMinutes       int32 // offsets.retention.minutes
	GroupInitialRebalanceDelayMs  int32 // group.initial.rebalance.delay.ms
	GroupMinSessionTimeoutMs      int32 // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs      int32 // group.max.session.timeout.ms
	TransactionalIDExpirationMs   int32 // transactional.id.expiration.ms
	ProducerIDExpirationMs        int32 // producer.id.expiration.ms

	// Raw holds the effective value of every key in BrokerKeys as text, for DescribeConfigs. A
	// key with no value (nullable and unset, e.g. cluster.id) is absent. Derived keys hold the
	// derived value: log.retention.ms, log.roll.ms, log.flush.interval.ms, log.dirs,
	// advertised.listeners, controller.listener, node.id/broker.id.
	Raw map[string]string
	// Sources says where each Raw value came from.
	Sources map[string]Source
	// Ignored lists, sorted, the keys that were set but mean nothing to Moldau (log a warning).
	Ignored []string
	// EnvWarnings lists, by variable name, the environment variables ParseServerArgs ignored (log
	// each once).
	EnvWarnings []EnvWarning

	layers []layer // kept for WithDynamic
}

// Lookup returns the effective value and source of a broker key; ok is false when the key has no
// value.
func (c *Config) Lookup(key string) (value string, src Source, ok bool) {
	value, ok = c.Raw[key]
	return value, c.Sources[key], ok
}

// layer is one set of key=value settings with their source.
type layer struct {
	source Source
	values map[string]string
	origin map[string]string // key -> "file x", "environment variable X", "flag --y"; may be nil
	where  string            // origin for keys missing from origin
}

func (l layer) originOf(key string) string {
	if o, ok := l.origin[key]; ok {
		return o
	}
	return l.where
}

// Build applies the defaults, then each layer in order (a later layer wins), validates the result
// and returns it. All problems are reported at once (errors.Join), each as an *Error.
func Build(layers ...map[string]string) (*Config, error) {
	ls := make([]layer, len(layers))
	for i, m := range layers {
		ls[i] = layer{source: SourceStatic, values: m}
	}
	return build(ls)
}

// WithDynamic returns a copy of c with cluster-wide dynamic broker configs applied on top (later
// than every static layer). Every key must be dynamic (ValidateBrokerConfig). An empty value means
// no dynamic override for that key (the static value stays).
func (c *Config) WithDynamic(dynamic map[string]string) (*Config, error) {
	var errs []error
	set := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(dynamic)) {
		if err := ValidateBrokerConfig(k, dynamic[k]); err != nil {
			errs = append(errs, err)
		} else if strings.TrimSpace(dynamic[k]) != "" {
			set[k] = dynamic[k]
		}
	}
	dynamic = set
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ls := append(slices.Clip(c.layers), layer{source: SourceDynamic, values: dynamic, where: "dynamic broker config"})
	return build(ls)
}

type setting struct {
	value  string
	source Source
	origin string
}

func build(layers []layer) (*Config, error) { return buildWith(layers, os.Hostname) }

// buildWith is build with the function that names this machine (os.Hostname but in tests).
func buildWith(layers []layer, hostname func() (string, error)) (*Config, error) {
	var errs []error
	set := map[string]setting{}
	ignored := map[string]bool{}
	for _, l := range layers {
		for _, rawKey := range slices.Sorted(maps.Keys(l.values)) {
			key, value := strings.TrimSpace(rawKey), strings.TrimSpace(l.values[rawKey])
			k, ok := brokerIndex[key]
			if !ok {
				if isIgnored(key) {
					ignored[key] = true
				} else {
					errs = append(errs, unknownKeyError(key, l.originOf(rawKey), false))
				}
				continue
			}
			if k.Nullable && value == "" {
				delete(set, key) // an empty value unsets a key that has no default
				continue
			}
			set[key] = setting{value: value, source: l.source, origin: l.originOf(rawKey)}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(set)) {
		s := set[key]
		if reason := brokerIndex[key].check(s.value); reason != "" {
			errs = append(errs, &Error{Key: key, Value: s.value, Reason: reason, Origin: s.origin, kind: ErrInvalidValue})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	b := &builder{set: set, hostname: hostname, c: &Config{
		Raw:     map[string]string{},
		Sources: map[string]Source{},
		layers:  layers,
	}}
	b.fill()
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	b.c.Ignored = slices.Sorted(maps.Keys(ignored))
	return b.c, nil
}

// builder turns validated settings into a Config; it collects cross-key errors.
type builder struct {
	set      map[string]setting
	c        *Config
	errs     []error
	hostname func() (string, error) // names this machine for wildcard listeners
}

// get returns the effective text of key and records it in Raw/Sources.
func (b *builder) get(key string) string {
	if s, ok := b.set[key]; ok {
		b.c.Raw[key], b.c.Sources[key] = s.value, s.source
		return s.value
	}
	k := brokerIndex[key]
	if k.Nullable && k.Default == "" {
		return ""
	}
	b.c.Raw[key], b.c.Sources[key] = k.Default, SourceDefault
	return k.Default
}

func (b *builder) isSet(key string) bool { _, ok := b.set[key]; return ok }

func (b *builder) source(key string) Source {
	if s, ok := b.set[key]; ok {
		return s.source
	}
	return SourceDefault
}

// derive records a derived effective value for key, attributed to the key it came from.
func (b *builder) derive(key, value, from string) {
	b.c.Raw[key], b.c.Sources[key] = value, b.source(from)
}

func (b *builder) fail(key, reason string) {
	s := b.set[key]
	v := s.value
	if !b.isSet(key) {
		v = b.get(key)
	}
	b.errs = append(b.errs, &Error{Key: key, Value: v, Reason: reason, Origin: s.origin, kind: ErrInvalidValue})
}

// Parsed getters; values were validated, so parse errors cannot happen.
func (b *builder) int64(key string) int64 { n, _ := strconv.ParseInt(b.get(key), 10, 64); return n }
func (b *builder) int32(key string) int32 { return int32(b.int64(key)) }
func (b *builder) int16(key string) int16 { return int16(b.int64(key)) }
func (b *builder) bool(key string) bool   { v, _ := parseBool(b.get(key)); return v }

func (b *builder) fill() {
	c := b.c
	// Read every key once so Raw and Sources cover the whole catalogue.
	for _, k := range brokerKeys {
		b.get(k.Name)
	}

	c.NodeID = b.int32("node.id")
	if b.isSet("broker.id") {
		bid := b.int32("broker.id")
		switch {
		case !b.isSet("node.id"):
			c.NodeID = bid
			b.derive("node.id", b.get("broker.id"), "broker.id")
		case bid != c.NodeID:
			b.fail("broker.id", fmt.Sprintf("does not match node.id (%d): set only one of them", c.NodeID))
		}
	} else {
		b.derive("broker.id", b.get("node.id"), "node.id")
	}
	c.ProcessRoles = splitList(b.get("process.roles"))
	c.ClusterID = b.get("cluster.id")
	c.Rack = b.get("broker.rack")

	b.fillListeners()

	if b.isSet("log.dirs") {
		c.LogDirs = splitList(b.get("log.dirs"))
	} else {
		c.LogDirs = splitList(b.get("log.dir"))
		b.derive("log.dirs", strings.Join(c.LogDirs, ","), "log.dir")
	}

	c.NumPartitions = b.int32("num.partitions")
	c.DefaultReplicationFactor = b.int16("default.replication.factor")
	c.AutoCreateTopicsEnable = b.bool("auto.create.topics.enable")
	c.MinInsyncReplicas = b.int32("min.insync.replicas")

	// Retention: ms wins over minutes over hours; any negative value means forever.
	switch {
	case b.isSet("log.retention.ms"):
		c.LogRetentionMs = b.int64("log.retention.ms")
	case b.isSet("log.retention.minutes"):
		c.LogRetentionMs = b.int64("log.retention.minutes") * 60_000
		b.derive("log.retention.ms", "", "log.retention.minutes")
	default:
		c.LogRetentionMs = b.int64("log.retention.hours") * 3_600_000
		b.derive("log.retention.ms", "", "log.retention.hours")
	}
	if c.LogRetentionMs < 0 {
		c.LogRetentionMs = -1
	}
	c.Raw["log.retention.ms"] = strconv.FormatInt(c.LogRetentionMs, 10)

	if b.isSet("log.roll.ms") {
		c.LogRollMs = b.int64("log.roll.ms")
	} else {
		c.LogRollMs = b.int64("log.roll.hours") * 3_600_000
		b.derive("log.roll.ms", strconv.FormatInt(c.LogRollMs, 10), "log.roll.hours")
	}

	c.LogRetentionBytes = b.int64("log.retention.bytes")
	c.LogSegmentBytes = b.int64("log.segment.bytes")
	c.LogIndexIntervalBytes = b.int32("log.index.interval.bytes")
	c.LogIndexSizeMaxBytes = b.int32("log.index.size.max.bytes")
	c.LogFlushIntervalMessages = b.int64("log.flush.interval.messages")
	if !b.isSet("log.flush.interval.messages") && b.isSet("log.flush.interval.ms") {
		// A flush policy was asked for: the unset key means what it means in Kafka, never.
		c.LogFlushIntervalMessages = maxLong
		b.derive("log.flush.interval.messages", maxLongStr, "log.flush.interval.messages")
	}
	if b.isSet("log.flush.interval.ms") {
		c.LogFlushIntervalMs = b.int64("log.flush.interval.ms")
	} else {
		c.LogFlushIntervalMs = maxLong
		b.derive("log.flush.interval.ms", maxLongStr, "log.flush.interval.ms")
	}
	c.LogSegmentDeleteDelayMs = b.int64("log.segment.delete.delay.ms")
	c.LogRetentionCheckIntervalMs = b.int64("log.retention.check.interval.ms")
	c.LogCleanerEnable = b.bool("log.cleaner.enable")
	c.LogCleanerBackoffMs = b.int64("log.cleaner.backoff.ms")
	c.LogCleanupPolicy = splitList(b.get("log.cleanup.policy"))
	c.LogMessageTimestampType = b.get("log.message.timestamp.type")
	c.LogMessageTimestampBeforeMax = b.int64("log.message.timestamp.before.max.ms")
	c.LogMessageTimestampAfterMax = b.int64("log.message.timestamp.after.max.ms")
	c.CompressionType = b.get("compression.type")
	c.UncleanLeaderElectionEnable = b.bool("unclean.leader.election.enable")
	c.MessageMaxBytes = b.int32("message.max.bytes")
	c.SocketRequestMaxBytes = b.int32("socket.request.max.bytes")
	c.QueuedMaxRequestBytes = b.int64("queued.max.request.bytes")
	c.ConnectionsMaxIdleMs = b.int64("connections.max.idle.ms")
	c.MaxConnections = b.int32("max.connections")
	c.MaxConnectionsPerIP = b.int32("max.connections.per.ip")
	c.MaxConnectionsPerIPOverrides, _ = ParseConnectionOverrides(b.get("max.connections.per.ip.overrides"))
	if c.MaxConnectionsPerIP == 0 && len(c.MaxConnectionsPerIPOverrides) == 0 {
		b.fail("max.connections.per.ip", "can be 0 only if max.connections.per.ip.overrides is set (as in Kafka)")
	}
	c.FetchSessionCacheSlots = b.int32("max.incremental.fetch.session.cache.slots")
	if b.int64("log.cleaner.min.compaction.lag.ms") > b.int64("log.cleaner.max.compaction.lag.ms") {
		b.fail("log.cleaner.min.compaction.lag.ms", fmt.Sprintf("must not exceed log.cleaner.max.compaction.lag.ms (%s)", b.get("log.cleaner.max.compaction.lag.ms")))
	}

	c.OffsetsTopicNumPartitions = b.int32("offsets.topic.num.partitions")
	c.OffsetsTopicReplicationFactor = b.int16("offsets.topic.replication.factor")
	c.OffsetsRetentionMinutes = b.int32("offsets.retention.minutes")
	c.GroupInitialRebalanceDelayMs = b.int32("group.initial.rebalance.delay.ms")
	c.GroupMinSessionTimeoutMs = b.int32("group.min.session.timeout.ms")
	c.GroupMaxSessionTimeoutMs = b.int32("group.max.session.timeout.ms")
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		b.fail("group.min.session.timeout.ms", fmt.Sprintf("must not exceed group.max.session.timeout.ms (%d)", c.GroupMaxSessionTimeoutMs))
	}
	c.TransactionalIDExpirationMs = b.int32("transactional.id.expiration.ms")
	c.ProducerIDExpirationMs = b.int32("producer.id.expiration.ms")
}

// localHostName is the name a listener bound to all interfaces is advertised with: this machine's
// host name, as Kafka advertises InetAddress.getLocalHost().getCanonicalHostName(); 127.0.0.1
// when the host name cannot be read.
func (b *builder) localHostName() string {
	if b.hostname != nil {
		if h, err := b.hostname(); err == nil && h != "" {
			return h
		}
	}
	return "127.0.0.1"
}

func (b *builder) fillListeners() {
	c := b.c
	protocols, _ := parseProtocolMap(b.get("listener.security.protocol.map"))
	controllerNames := map[string]bool{}
	for _, n := range splitList(b.get("controller.listener.names")) {
		controllerNames[strings.ToUpper(n)] = true
	}
	all, _ := ParseListeners(b.get("listeners"))
	var controllerFromListeners string
	unsupported := false
	for _, l := range all {
		proto, ok := protocols[l.Name]
		if !ok {
			if !controllerNames[l.Name] {
				// Kafka refuses a client listener whose name the map does not define.
				b.fail("listeners", fmt.Sprintf("has listener %s, which listener.security.protocol.map does not define: add %s:PLAINTEXT to listener.security.protocol.map", l.Name, l.Name))
				unsupported = true
				continue
			}
			proto = "PLAINTEXT" // a controller listener missing from the map is plaintext, as in KRaft
		}
		if proto != "PLAINTEXT" {
			b.fail("listeners", fmt.Sprintf("is not supported yet: listener %s uses security protocol %s (listener.security.protocol.map), Moldau serves PLAINTEXT only", l.Name, proto))
			unsupported = true
			continue
		}
		if controllerNames[l.Name] {
			if controllerFromListeners == "" {
				controllerFromListeners = l.Addr()
			}
			continue
		}
		c.Listeners = append(c.Listeners, l)
	}
	if len(c.Listeners) == 0 && len(all) > 0 && !unsupported {
		b.fail("listeners", "has no client listener: every listener is named in controller.listener.names")
	}

	// Advertised listeners: one per client listener.
	advertised := map[string]Listener{}
	if b.isSet("advertised.listeners") {
		adv, _ := ParseListeners(b.get("advertised.listeners"))
		names := map[string]bool{}
		for _, l := range c.Listeners {
			names[l.Name] = true
		}
		for _, a := range adv {
			switch {
			case !names[a.Name]:
				b.fail("advertised.listeners", fmt.Sprintf("names listener %s, which is not a client listener in listeners", a.Name))
			case a.Host == "0.0.0.0" || a.Host == "::":
				b.fail("advertised.listeners", fmt.Sprintf("advertises %s, a wildcard address clients cannot connect to: use a host name or IP", a))
			}
			advertised[a.Name] = a
		}
	}
	var advText []string
	for _, l := range c.Listeners {
		a, ok := advertised[l.Name]
		if !ok {
			a = l // Kafka: a listener without an advertised entry is advertised as bound
		}
		if wildcardHost(a.Host) {
			a.Host = b.localHostName()
		}
		a.SecurityProtocol = l.SecurityProtocol
		c.AdvertisedListeners = append(c.AdvertisedListeners, a)
		advText = append(advText, a.String())
	}
	from := "listeners"
	if b.isSet("advertised.listeners") {
		from = "advertised.listeners"
	}
	b.derive("advertised.listeners", strings.Join(advText, ","), from)

	// Raft.
	c.ControllerQuorumVoters, _ = ParseVoters(b.get("controller.quorum.voters"))
	var self *Voter
	for i, v := range c.ControllerQuorumVoters {
		if v.ID == c.NodeID {
			self = &c.ControllerQuorumVoters[i]
		}
	}
	if len(c.ControllerQuorumVoters) > 0 && self == nil {
		ids := make([]string, len(c.ControllerQuorumVoters))
		for i, v := range c.ControllerQuorumVoters {
			ids[i] = strconv.Itoa(int(v.ID))
		}
		b.fail("controller.quorum.voters", fmt.Sprintf("does not list this node: node.id %d is not among voters %s", c.NodeID, strings.Join(ids, ", ")))
	}
	switch {
	case b.isSet("controller.listener"):
		c.ControllerListener = b.get("controller.listener")
	case controllerFromListeners != "":
		c.ControllerListener = controllerFromListeners
		b.derive("controller.listener", c.ControllerListener, "listeners")
	case self != nil:
		c.ControllerListener = self.Addr()
		b.derive("controller.listener", c.ControllerListener, "controller.quorum.voters")
	}
	c.MetricsListener = b.get("metrics.listener")

	// Two things bound to the same non-zero port cannot both start.
	ports := map[int]string{}
	claim := func(addr, what string) {
		_, port, err := splitHostPort(addr)
		if err != nil || port == 0 {
			return
		}
		if prev, ok := ports[port]; ok {
			b.fail(what, fmt.Sprintf("uses port %d, already used by %s", port, prev))
			return
		}
		ports[port] = what
	}
	for _, l := range c.Listeners {
		claim(l.Addr(), "listeners")
	}
	if c.ControllerListener != "" {
		claim(c.ControllerListener, "controller.listener")
	}
	if c.MetricsListener != "" {
		claim(c.MetricsListener, "metrics.listener")
	}
}
