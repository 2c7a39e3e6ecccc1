// Package config turns server.properties, environment variables and flags into one typed,
// validated Config, and holds the catalogue of broker and topic config keys that DescribeConfigs,
// AlterConfigs and CreateTopics validate against.
//
// Keys are Kafka's. Moldau-only keys (no Kafka equivalent):
//
//	controller.listener  host:port the raft transport listens on (default: see BrokerKeys)
//	http.listener        host:port of the HTTP listener: console, admin API, /metrics, /healthz, /readyz
//	                     (default 127.0.0.1:8080; empty: off); metrics.listener is an alias
//	http.pprof.enable    serve /debug/pprof/ on it (default false)
//	log.format           text (default) or json
//	log.level            DEBUG, INFO (default), WARN or ERROR
//
// Well-known Kafka keys that mean nothing to Moldau (zookeeper.connect, num.network.threads,
// ssl.*, ...) are accepted and listed in Config.Ignored, so that files copied from Kafka start
// (Kafka 4's shipped config/server.properties, broker.properties and controller.properties
// among them). Any other unknown key is an error.
//
// The cluster keys (process.roles, controller.listener.names, listener.security.protocol.map,
// inter.broker.listener.name, controller.quorum.voters, controller.quorum.bootstrap.servers) are
// validated as KafkaConfig does; see cluster.go.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Source says where the effective value of a key came from.
type Source int8

const (
	SourceDefault       Source = iota // the key's default
	SourceFile                        // server.properties (--config)
	SourceEnv                         // KAFKA_* / MOLDAU_* environment variables
	SourceFlag                        // command-line flags and --override
	SourceStatic                      // a layer passed to Build (static, origin unknown)
	SourceDynamic                     // a cluster-wide dynamic broker config (WithDynamicBroker)
	SourceDynamicBroker               // a dynamic config of this broker alone (WithDynamicBroker)
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
	case SourceDynamicBroker:
		return "dynamic broker"
	}
	return "unknown"
}

// KafkaConfigSource is the DescribeConfigs ConfigSource code: DEFAULT_CONFIG (5),
// STATIC_BROKER_CONFIG (4), DYNAMIC_DEFAULT_BROKER_CONFIG (3) or DYNAMIC_BROKER_CONFIG (2).
func (s Source) KafkaConfigSource() int8 {
	switch s {
	case SourceDefault:
		return 5
	case SourceDynamic:
		return 3
	case SourceDynamicBroker:
		return 2
	}
	return 4
}

// Config is the validated server configuration. Field comments name the key(s) behind each field.
// Build, ParseServerArgs and WithDynamicBroker return a Config that is never modified afterwards.
type Config struct {
	NodeID int32 // node.id (broker.id is an alias)
	// ProcessRoles is process.roles: [broker], [controller] or [broker controller], in that order.
	ProcessRoles []string
	IsBroker     bool   // process.roles has broker: serve clients, host partitions, register with the controllers
	IsController bool   // process.roles has controller: a raft voter of the metadata quorum
	ClusterID    string // cluster.id; "" = unset
	Rack         string // broker.rack; "" = unset

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
	// this node at its entry in ControllerQuorumVoters. Always "" when !IsController.
	ControllerListener string
	// ControllerAdvertisedListener is the host:port other nodes dial to reach this controller:
	// its entry in ControllerQuorumVoters, else the controller entry of advertised.listeners,
	// else ControllerListener with a wildcard host replaced by this machine's name. "" when
	// !IsController or when there is no controller listener (in-memory single voter).
	ControllerAdvertisedListener string
	// ControllerQuorumVoters is controller.quorum.voters; empty = single voter (this node) with
	// an in-memory transport. When only controller.quorum.bootstrap.servers is set and it names
	// this controller's own endpoint, it is that one voter (this node at that address).
	ControllerQuorumVoters []Voter
	// ControllerQuorumBootstrapServers is controller.quorum.bootstrap.servers (host:port): the
	// controllers a broker-only node contacts when ControllerQuorumVoters is empty.
	ControllerQuorumBootstrapServers []string
	// ControllerListenerNames is controller.listener.names, upper case, without duplicates.
	ControllerListenerNames []string
	// ListenerSecurityProtocols is the effective listener.security.protocol.map (listener name
	// -> protocol), with controller listener names mapped to PLAINTEXT when the key is unset.
	ListenerSecurityProtocols map[string]string
	// InterBrokerListener is the name of the listener other brokers (followers fetching,
	// forwarding) use to reach this one: inter.broker.listener.name, else the listener named
	// after security.inter.broker.protocol (PLAINTEXT); a Standalone node without one uses its
	// first listener. InterBrokerEndpoint is that listener as advertised (a port of 0 must be
	// replaced by the bound port). Both empty when !IsBroker.
	InterBrokerListener string
	InterBrokerEndpoint Listener
	// HTTPListener is http.listener (or its alias metrics.listener): host:port of the console,
	// admin API, /metrics, /healthz and /readyz; "" = off.
	HTTPListener         string
	HTTPPprof            bool       // http.pprof.enable: serve /debug/pprof/ on HTTPListener
	LagHistoryIntervalMs int32      // lag.history.interval.ms: consumer lag history sampling
	LogFormat            string     // log.format: "text" or "json"
	LogLevel             slog.Level // log.level

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

	// Broker lifecycle and replication (Kafka's KRaft and replica fetcher keys).
	BrokerSessionTimeoutMs       int32 // broker.session.timeout.ms: the controller fences a broker it has not heard from for this long
	BrokerHeartbeatIntervalMs    int32 // broker.heartbeat.interval.ms: how often a broker heartbeats to the controller
	ControlledShutdownEnable     bool  // controlled.shutdown.enable: move leaderships away before stopping
	ReplicaLagTimeMaxMs          int64 // replica.lag.time.max.ms: a follower not caught up for this long leaves the ISR
	ReplicaFetchWaitMaxMs        int32 // replica.fetch.wait.max.ms: MaxWaitMs of follower fetches
	ReplicaFetchMinBytes         int32 // replica.fetch.min.bytes: MinBytes of follower fetches
	ReplicaFetchMaxBytes         int32 // replica.fetch.max.bytes: per-partition MaxBytes of follower fetches
	ReplicaFetchResponseMaxBytes int32 // replica.fetch.response.max.bytes: MaxBytes of a follower fetch
	ReplicaFetchBackoffMs        int32 // replica.fetch.backoff.ms: pause after a failed follower fetch
	ReplicaSocketTimeoutMs       int32 // replica.socket.timeout.ms: timeout of a follower's requests to the leader
	// Replication quotas (KIP-73): bytes/s; math.MaxInt64 is no throttle.
	LeaderReplicationThrottledRate    int64 // leader.replication.throttled.rate
	FollowerReplicationThrottledRate  int64 // follower.replication.throttled.rate
	ReplicationQuotaWindowNum         int32 // replication.quota.window.num: samples of the quotas' rate
	ReplicationQuotaWindowSizeSeconds int32 // replication.quota.window.size.seconds: length of one sample

	// Leader balance (Kafka's auto leader rebalance keys): the active controller's preferred
	// elections for brokers that lead too few of the partitions they are preferred for.
	AutoLeaderRebalanceEnable           bool  // auto.leader.rebalance.enable
	LeaderImbalancePerBrokerPercentage  int32 // leader.imbalance.per.broker.percentage
	LeaderImbalanceCheckIntervalSeconds int64 // leader.imbalance.check.interval.seconds

	OffsetsTopicNumPartitions int32 // offsets.topic.num.partitions
	// OffsetsTopicReplicationFactor is the replication factor __consumer_offsets is created
	// with: offsets.topic.replication.factor (Kafka's default 3), except that a Standalone node
	// on which the key is not set uses 1 so that a single node just works. Raw and
	// DescribeConfigs show the key's own value. OffsetsTopicReplicationFactorSet says whether the
	// key was set (file, environment, flag or dynamic config).
	OffsetsTopicReplicationFactor    int16
	OffsetsTopicReplicationFactorSet bool
	// TransactionStateLogReplicationFactor is transaction.state.log.replication.factor, with
	// the same Standalone rule as OffsetsTopicReplicationFactor.
	TransactionStateLogReplicationFactor    int16
	TransactionStateLogReplicationFactorSet bool
	TransactionStateLogMinISR               int32 // transaction.state.log.min.isr
	TransactionStateLogNumPartitions        int32 // transaction.state.log.num.partitions
	TransactionStateLogSegmentBytes         int32 // transaction.state.log.segment.bytes
	// The transaction coordinator's timers and limits (Kafka's keys and defaults).
	TransactionMaxTimeoutMs                              int32 // transaction.max.timeout.ms
	TransactionAbortTimedOutTransactionCleanupIntervalMs int32 // transaction.abort.timed.out.transaction.cleanup.interval.ms
	TransactionRemoveExpiredTransactionCleanupIntervalMs int32 // transaction.remove.expired.transaction.cleanup.interval.ms
	TransactionPartitionVerificationEnable               bool  // transaction.partition.verification.enable
	OffsetsRetentionMinutes                              int32 // offsets.retention.minutes
	GroupInitialRebalanceDelayMs                         int32 // group.initial.rebalance.delay.ms
	GroupMinSessionTimeoutMs                             int32 // group.min.session.timeout.ms
	GroupMaxSessionTimeoutMs                             int32 // group.max.session.timeout.ms
	TransactionalIDExpirationMs                          int32 // transactional.id.expiration.ms
	ProducerIDExpirationMs                               int32 // producer.id.expiration.ms

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

	layers []layer // kept for WithDynamicBroker
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

// WithDynamicBroker returns the config with the dynamic broker configs applied: the cluster-wide
// ones (AlterConfigs of the default broker resource) and this broker's own (broker resource
// "N") over them, as Kafka's DynamicBrokerConfig orders them: per-broker, then cluster default,
// then static. Every key must be dynamic (ValidateBrokerConfig); an empty value means no dynamic
// override for that key. c itself is not changed.
func (c *Config) WithDynamicBroker(defaults, broker map[string]string) (*Config, error) {
	var errs []error
	valid := func(dynamic map[string]string) map[string]string {
		set := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(dynamic)) {
			if err := ValidateBrokerConfig(k, dynamic[k]); err != nil {
				errs = append(errs, err)
			} else if strings.TrimSpace(dynamic[k]) != "" {
				set[k] = dynamic[k]
			}
		}
		return set
	}
	defaults, broker = valid(defaults), valid(broker)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	ls := append(slices.Clip(c.layers), layer{source: SourceDynamic, values: defaults, where: "dynamic broker config"})
	if len(broker) > 0 {
		ls = append(ls, layer{source: SourceDynamicBroker, values: broker, where: "dynamic config of this broker"})
	}
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
	c.ClusterID = b.get("cluster.id")
	c.Rack = b.get("broker.rack")

	b.fillCluster()

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

	c.BrokerSessionTimeoutMs = b.int32("broker.session.timeout.ms")
	c.BrokerHeartbeatIntervalMs = b.int32("broker.heartbeat.interval.ms")
	c.ControlledShutdownEnable = b.bool("controlled.shutdown.enable")
	c.AutoLeaderRebalanceEnable = b.bool("auto.leader.rebalance.enable")
	c.LeaderImbalancePerBrokerPercentage = b.int32("leader.imbalance.per.broker.percentage")
	c.LeaderImbalanceCheckIntervalSeconds = b.int64("leader.imbalance.check.interval.seconds")
	c.ReplicaLagTimeMaxMs = b.int64("replica.lag.time.max.ms")
	c.ReplicaFetchWaitMaxMs = b.int32("replica.fetch.wait.max.ms")
	c.ReplicaFetchMinBytes = b.int32("replica.fetch.min.bytes")
	c.ReplicaFetchMaxBytes = b.int32("replica.fetch.max.bytes")
	c.ReplicaFetchResponseMaxBytes = b.int32("replica.fetch.response.max.bytes")
	c.ReplicaFetchBackoffMs = b.int32("replica.fetch.backoff.ms")
	c.ReplicaSocketTimeoutMs = b.int32("replica.socket.timeout.ms")
	c.LeaderReplicationThrottledRate = b.int64(LeaderReplicationThrottledRate)
	c.FollowerReplicationThrottledRate = b.int64(FollowerReplicationThrottledRate)
	c.ReplicationQuotaWindowNum = b.int32("replication.quota.window.num")
	c.ReplicationQuotaWindowSizeSeconds = b.int32("replication.quota.window.size.seconds")
	// As in KafkaConfig.validateValues.
	if int64(c.ReplicaFetchWaitMaxMs) > int64(c.ReplicaSocketTimeoutMs) {
		b.fail("replica.fetch.wait.max.ms", fmt.Sprintf("must not exceed replica.socket.timeout.ms (%d): replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts", c.ReplicaSocketTimeoutMs))
	}
	if int64(c.ReplicaFetchWaitMaxMs) > c.ReplicaLagTimeMaxMs {
		b.fail("replica.fetch.wait.max.ms", fmt.Sprintf("must not exceed replica.lag.time.max.ms (%d): replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent frequent changes in ISR", c.ReplicaLagTimeMaxMs))
	}
	if c.BrokerHeartbeatIntervalMs >= c.BrokerSessionTimeoutMs {
		b.fail("broker.heartbeat.interval.ms", fmt.Sprintf("must be less than broker.session.timeout.ms (%d), or every broker is fenced between two heartbeats", c.BrokerSessionTimeoutMs))
	}

	c.OffsetsTopicNumPartitions = b.int32("offsets.topic.num.partitions")
	c.OffsetsTopicReplicationFactor, c.OffsetsTopicReplicationFactorSet = b.internalTopicRF("offsets.topic.replication.factor")
	c.TransactionStateLogReplicationFactor, c.TransactionStateLogReplicationFactorSet = b.internalTopicRF("transaction.state.log.replication.factor")
	c.TransactionStateLogMinISR = b.int32("transaction.state.log.min.isr")
	c.TransactionStateLogNumPartitions = b.int32("transaction.state.log.num.partitions")
	c.TransactionStateLogSegmentBytes = b.int32("transaction.state.log.segment.bytes")
	c.TransactionMaxTimeoutMs = b.int32("transaction.max.timeout.ms")
	c.TransactionAbortTimedOutTransactionCleanupIntervalMs = b.int32("transaction.abort.timed.out.transaction.cleanup.interval.ms")
	c.TransactionRemoveExpiredTransactionCleanupIntervalMs = b.int32("transaction.remove.expired.transaction.cleanup.interval.ms")
	c.TransactionPartitionVerificationEnable = b.bool("transaction.partition.verification.enable")
	c.OffsetsRetentionMinutes = b.int32("offsets.retention.minutes")
	c.GroupInitialRebalanceDelayMs = b.int32("group.initial.rebalance.delay.ms")
	c.GroupMinSessionTimeoutMs = b.int32("group.min.session.timeout.ms")
	c.GroupMaxSessionTimeoutMs = b.int32("group.max.session.timeout.ms")
	if c.GroupMinSessionTimeoutMs > c.GroupMaxSessionTimeoutMs {
		b.fail("group.min.session.timeout.ms", fmt.Sprintf("must not exceed group.max.session.timeout.ms (%d)", c.GroupMaxSessionTimeoutMs))
	}
	c.TransactionalIDExpirationMs = b.int32("transactional.id.expiration.ms")
	c.ProducerIDExpirationMs = b.int32("producer.id.expiration.ms")

	c.HTTPPprof = b.bool("http.pprof.enable")
	c.LagHistoryIntervalMs = b.int32("lag.history.interval.ms")
	c.LogFormat = b.get("log.format")
	c.LogLevel, _ = ParseLogLevel(b.get("log.level"))
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

// internalTopicRF is the replication factor an internal topic is created with (see
// Config.OffsetsTopicReplicationFactor) and whether key was set.
func (b *builder) internalTopicRF(key string) (int16, bool) {
	rf := b.int16(key)
	if !b.isSet(key) && b.c.Standalone() {
		return 1, false
	}
	return rf, b.isSet(key)
}
