package config

import (
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Type is the type of a config key. The values are Kafka's DescribeConfigs ConfigType codes, so a
// handler can send int8(k.Type) as is.
type Type int8

// Kafka's DescribeConfigs config types.
const (
	TypeBoolean Type = 1
	TypeString  Type = 2
	TypeInt     Type = 3
	TypeShort   Type = 4
	TypeLong    Type = 5
	TypeDouble  Type = 6
	TypeList    Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "BOOLEAN"
	case TypeString:
		return "STRING"
	case TypeInt:
		return "INT"
	case TypeShort:
		return "SHORT"
	case TypeLong:
		return "LONG"
	case TypeDouble:
		return "DOUBLE"
	case TypeList:
		return "LIST"
	}
	return "UNKNOWN"
}

// Key describes one broker or topic config key.
type Key struct {
	Name string
	Type Type
	// Default is Kafka's (or Moldau's) default as text. When Nullable is true and Default is "",
	// the key has no default value (DescribeConfigs reports null) and an empty value unsets it.
	Default  string
	Nullable bool
	// Dynamic reports whether the key may be changed at runtime with AlterConfigs
	// (cluster-wide broker default). Always true for topic keys.
	Dynamic   bool
	Sensitive bool
	// BrokerKey, for a topic key, is the broker key its default comes from ("" if none).
	BrokerKey string
	Doc       string

	check func(v string) string // returns "" if v is valid, else the reason
}

// Validate checks value against the key's type and range. The error names the key and the value.
func (k Key) Validate(value string) error {
	value = strings.TrimSpace(value)
	if k.Nullable && value == "" {
		return nil
	}
	if reason := k.check(value); reason != "" {
		return &Error{Key: k.Name, Value: value, Reason: reason, kind: ErrInvalidValue}
	}
	return nil
}

const maxLong = math.MaxInt64

var maxLongStr = strconv.FormatInt(maxLong, 10)

// DefaultFlushMessages is Moldau's default of log.flush.interval.messages and flush.messages: fsync
// before acknowledging (Kafka's default is never, 9223372036854775807). See FlushPolicy.
const DefaultFlushMessages = "1"

// ---- value checks. Each returns "" when the value is valid, else a phrase that completes
// `config: KEY: "VALUE" ...`.

func checkInt(bits int, lo, hi int64) func(string) string {
	return func(v string) string {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return "is out of range: " + rangeText(lo, hi)
			}
			return "is not an integer"
		}
		if bits == 16 && (n < math.MinInt16 || n > math.MaxInt16) ||
			bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
			return "is out of range: " + rangeText(lo, hi)
		}
		if n < lo || n > hi {
			return "is out of range: " + rangeText(lo, hi)
		}
		return ""
	}
}

func rangeText(lo, hi int64) string {
	switch {
	case lo == -1 && (hi == maxLong || hi == math.MaxInt32):
		return "must be -1 (no limit) or at least 0"
	case hi == maxLong || hi == math.MaxInt32:
		return "must be at least " + strconv.FormatInt(lo, 10)
	}
	return "must be between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(hi, 10)
}

func intAtLeast(lo int64) func(string) string   { return checkInt(32, lo, math.MaxInt32) }
func shortAtLeast(lo int64) func(string) string { return checkInt(16, lo, math.MaxInt16) }
func longAtLeast(lo int64) func(string) string  { return checkInt(64, lo, maxLong) }

func checkBool(v string) string {
	if _, ok := parseBool(v); !ok {
		return "is not a boolean: expected true or false"
	}
	return ""
}

// parseBool follows Kafka: "true"/"false", case-insensitive.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func checkRatio(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		return "is not a number"
	}
	if f < 0 || f > 1 {
		return "is out of range: must be between 0 and 1"
	}
	return ""
}

func checkOneOf(values ...string) func(string) string {
	return func(v string) string {
		for _, x := range values {
			if v == x {
				return ""
			}
		}
		return "is not valid: expected one of " + strings.Join(values, ", ")
	}
}

// checkListOf accepts a non-empty comma-separated list whose items are all in values.
func checkListOf(values ...string) func(string) string {
	one := checkOneOf(values...)
	return func(v string) string {
		items := splitList(v)
		if len(items) == 0 {
			return "is not valid: expected a comma-separated list of " + strings.Join(values, ", ")
		}
		for _, it := range items {
			if one(it) != "" {
				return "is not valid: " + strconv.Quote(it) + " is not one of " + strings.Join(values, ", ")
			}
		}
		return ""
	}
}

func checkAny(string) string { return "" }

func checkListeners(v string) string {
	if _, err := ParseListeners(v); err != nil {
		return "is not valid: " + err.Error()
	}
	return ""
}

func checkHostPort(v string) string {
	if _, _, err := splitHostPort(v); err != nil {
		return "is not valid: " + err.Error() + " (expected host:port)"
	}
	return ""
}

func checkHostPortOrEmpty(v string) string {
	if v == "" {
		return ""
	}
	return checkHostPort(v)
}

func checkLogLevel(v string) string {
	if _, ok := ParseLogLevel(v); !ok {
		return "is not valid: expected one of DEBUG, INFO, WARN, ERROR"
	}
	return ""
}

// ParseLogLevel parses a log.level value: DEBUG, INFO, WARN (or WARNING) or ERROR, in any case.
func ParseLogLevel(v string) (slog.Level, bool) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "DEBUG":
		return slog.LevelDebug, true
	case "INFO":
		return slog.LevelInfo, true
	case "WARN", "WARNING":
		return slog.LevelWarn, true
	case "ERROR":
		return slog.LevelError, true
	}
	return 0, false
}

// DefaultHTTPListener is the default of http.listener: loopback only, as the listener has no TLS
// or authentication yet.
const DefaultHTTPListener = "127.0.0.1:8080"

func checkListenerNames(v string) string {
	for _, n := range splitList(v) {
		if r := checkListenerName(n); r != "" {
			return r
		}
	}
	return ""
}

func checkVoters(v string) string {
	if _, err := ParseVoters(v); err != nil {
		return "is not valid: " + err.Error()
	}
	return ""
}

func checkProtocolMap(v string) string {
	if _, err := parseProtocolMap(v); err != nil {
		return "is not valid: " + err.Error()
	}
	return ""
}

func checkNoSpace(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\r\n") {
		return "is not valid: expected a non-empty string without spaces"
	}
	return ""
}

func checkDirs(v string) string {
	if len(splitList(v)) == 0 {
		return "is not valid: expected a comma-separated list of directories"
	}
	return ""
}

// splitList splits a Kafka LIST value on commas, trimming items and dropping empty ones.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

var (
	timestampTypes   = []string{"CreateTime", "LogAppendTime"}
	cleanupPolicies  = []string{"delete", "compact"}
	compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}
)

// brokerKeys is the catalogue of broker keys Moldau uses, sorted by name at init.
var brokerKeys = []Key{
	{Name: "node.id", Type: TypeInt, Default: "1", check: intAtLeast(0), Doc: "The id of this node in the cluster."},
	{Name: "broker.id", Type: TypeInt, Nullable: true, check: intAtLeast(0), Doc: "Alias of node.id (older server.properties files); must equal node.id when both are set."},
	{Name: "process.roles", Type: TypeList, Default: "broker,controller", check: checkProcessRoles, Doc: "Roles of this node: broker (serves clients and hosts partitions), controller (a voter of the metadata quorum) or broker,controller (combined). Default combined (Kafka requires the key)."},
	{Name: "cluster.id", Type: TypeString, Nullable: true, check: checkNoSpace, Doc: "Cluster id; generated when the cluster is first started if unset."},
	{Name: "broker.rack", Type: TypeString, Nullable: true, check: checkAny, Doc: "Rack of this broker, reported in Metadata and used to spread replicas over racks."},
	{Name: "listeners", Type: TypeString, Default: "PLAINTEXT://127.0.0.1:9092", check: checkListeners, Doc: "Comma-separated NAME://host:port listeners. Empty host or 0.0.0.0 binds all interfaces."},
	{Name: "advertised.listeners", Type: TypeString, Nullable: true, check: checkListeners, Doc: "Listeners given to clients. Default: listeners, with an empty or wildcard host replaced by this machine's host name."},
	{Name: "listener.security.protocol.map", Type: TypeString, Default: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", check: checkProtocolMap, Doc: "NAME:PROTOCOL pairs; every listener name must be in it (while the key is unset, controller listener names are PLAINTEXT, as in KRaft). Moldau serves PLAINTEXT only: an SSL or SASL listener stops the start."},
	{Name: "controller.listener.names", Type: TypeList, Nullable: true, check: checkListenerNames, Doc: "Names of the listeners the controllers use (e.g. CONTROLLER). On a controller the first one in listeners is the raft listener unless controller.listener is set, and may appear in advertised.listeners as the address other nodes dial; a broker-only node must not list it in listeners and reaches the controllers through it."},
	{Name: "inter.broker.listener.name", Type: TypeString, Nullable: true, check: checkListenerName, Doc: "Listener the brokers use between themselves (followers fetch from leaders over it); it must be in advertised.listeners. Default: the listener named after security.inter.broker.protocol (PLAINTEXT); a node alone in its quorum without one uses its first listener."},
	{Name: "security.inter.broker.protocol", Type: TypeString, Default: "PLAINTEXT", check: checkSecurityProtocol, Doc: "Security protocol between brokers, used when inter.broker.listener.name is unset (set only one of them). Moldau serves PLAINTEXT only."},
	{Name: "controller.quorum.bootstrap.servers", Type: TypeList, Nullable: true, check: checkHostPorts, Doc: "host:port,... of controllers to contact when controller.quorum.voters is empty (Kafka 3.9+). Moldau's quorum is a static voter set: on a controller this is accepted when it names only this node's own controller endpoint (a single-voter quorum, as Kafka's shipped server.properties); a broker-only node dials these controllers."},
	{Name: "controller.listener", Type: TypeString, Nullable: true, check: checkHostPort, Doc: "Moldau: host:port the raft transport listens on. Default: the listener named in controller.listener.names, else this node's entry in controller.quorum.voters, else none (single-node in-memory raft)."},
	{Name: "controller.quorum.voters", Type: TypeList, Nullable: true, check: checkVoters, Doc: "id@host:port,... of the raft voters. A node with the controller role must be among them, a broker-only node must not. Empty (and no controller.quorum.bootstrap.servers): a single voter with an in-memory transport."},
	{Name: "broker.session.timeout.ms", Type: TypeInt, Default: "9000", check: intAtLeast(1), Doc: "The controller fences a broker that has not heartbeated for this long: its replicas leave the ISR and it leads no partition."},
	{Name: "broker.heartbeat.interval.ms", Type: TypeInt, Default: "2000", check: intAtLeast(1), Doc: "Time between a broker's heartbeats to the controller; less than broker.session.timeout.ms."},
	{Name: "controlled.shutdown.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "On SIGTERM, ask the controller to move this broker's leaderships away before stopping."},
	{Name: "auto.leader.rebalance.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "The active controller moves leadership back to each partition's preferred (first) replica, every leader.imbalance.check.interval.seconds, for the brokers whose share of partitions led by another replica is above leader.imbalance.per.broker.percentage."},
	{Name: "leader.imbalance.per.broker.percentage", Type: TypeInt, Default: "10", check: intAtLeast(0), Doc: "Percentage of a broker's preferred partitions that may be led by another replica before the controller runs preferred elections for them (auto.leader.rebalance.enable)."},
	{Name: "leader.imbalance.check.interval.seconds", Type: TypeLong, Default: "300", check: longAtLeast(1), Doc: "How often the active controller checks the leader balance (auto.leader.rebalance.enable)."},
	{Name: "replica.lag.time.max.ms", Type: TypeLong, Default: "30000", check: longAtLeast(0), Doc: "A follower that has not caught up with the leader's log end for this long is removed from the ISR."},
	{Name: "replica.fetch.wait.max.ms", Type: TypeInt, Default: "500", check: intAtLeast(0), Doc: "Longest wait of a follower's fetch for data; at most replica.lag.time.max.ms and replica.socket.timeout.ms."},
	{Name: "replica.fetch.min.bytes", Type: TypeInt, Default: "1", check: intAtLeast(0), Doc: "Bytes a follower's fetch waits for (up to replica.fetch.wait.max.ms)."},
	{Name: "replica.fetch.max.bytes", Type: TypeInt, Default: "1048576", check: intAtLeast(0), Doc: "Bytes per partition a follower fetches at once (a larger first batch is still returned)."},
	{Name: "replica.fetch.response.max.bytes", Type: TypeInt, Default: "10485760", check: intAtLeast(0), Doc: "Bytes of a whole follower fetch response."},
	{Name: "replica.fetch.backoff.ms", Type: TypeInt, Default: "1000", check: intAtLeast(0), Doc: "Pause of a follower after a fetch from the leader failed."},
	{Name: LeaderReplicationThrottledRate, Type: TypeLong, Default: maxLongStr, Dynamic: true, check: longAtLeast(0), Doc: "Bytes per second this broker, as a leader, serves to followers of the replicas listed in leader.replication.throttled.replicas that are not in the ISR (Kafka's KIP-73). Set per broker or as the cluster default with AlterConfigs; " + maxLongStr + ": no throttle."},
	{Name: FollowerReplicationThrottledRate, Type: TypeLong, Default: maxLongStr, Dynamic: true, check: longAtLeast(0), Doc: "Bytes per second this broker, as a follower, fetches for the replicas listed in follower.replication.throttled.replicas while they are not in sync (Kafka's KIP-73); " + maxLongStr + ": no throttle."},
	{Name: "replication.quota.window.num", Type: TypeInt, Default: "11", check: intAtLeast(1), Doc: "Samples the replication quotas' rate is measured over."},
	{Name: "replication.quota.window.size.seconds", Type: TypeInt, Default: "1", check: intAtLeast(1), Doc: "Length of one sample of the replication quotas' rate, in seconds."},
	{Name: "replica.socket.timeout.ms", Type: TypeInt, Default: "30000", check: intAtLeast(1), Doc: "Timeout of a follower's requests to the leader; at least replica.fetch.wait.max.ms."},
	{Name: "http.listener", Type: TypeString, Default: DefaultHTTPListener, check: checkHostPortOrEmpty, Doc: "Moldau: host:port of the HTTP listener: the web console (/), the admin API (/api/v1/), Prometheus /metrics, /healthz, /readyz. No TLS or authentication yet: keep it on loopback or behind a proxy. Empty: off."},
	{Name: "http.pprof.enable", Type: TypeBoolean, Default: "false", check: checkBool, Doc: "Moldau: serve Go's profiles at /debug/pprof/ on http.listener."},
	{Name: "metrics.listener", Type: TypeString, check: checkHostPortOrEmpty, Doc: "Moldau: alias of http.listener (the older name); set only one of them, or both to the same value."},
	{Name: "lag.history.interval.ms", Type: TypeInt, Default: "10000", check: intAtLeast(100), Doc: "Moldau: how often the consumer lag of each group coordinated here is sampled into its history (kept in memory, 360 samples: an hour at the default), shown by the console and GET /api/v1/groups/{id}/lag."},
	{Name: "log.format", Type: TypeString, Default: "text", check: checkOneOf("text", "json"), Doc: "Moldau: format of the server's log lines on stderr: text (key=value) or json (one object per line)."},
	{Name: "log.level", Type: TypeString, Default: "INFO", check: checkLogLevel, Doc: "Moldau: lowest level logged: DEBUG, INFO, WARN or ERROR (any case). Changeable at runtime with PUT /api/v1/log/level."},
	{Name: "log.dir", Type: TypeString, Default: "./moldau-data", check: checkDirs, Doc: "Data directory, used when log.dirs is unset."},
	{Name: "log.dirs", Type: TypeString, Nullable: true, check: checkDirs, Doc: "Comma-separated data directories. Default: log.dir."},
	{Name: "num.partitions", Type: TypeInt, Default: "1", check: intAtLeast(1), Doc: "Default partition count of new topics."},
	{Name: "default.replication.factor", Type: TypeInt, Default: "1", check: checkInt(32, 1, math.MaxInt16), Doc: "Default replication factor of new topics."},
	{Name: "auto.create.topics.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "Create a topic when a client asks Metadata for it."},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", Dynamic: true, check: intAtLeast(1), Doc: "Default min.insync.replicas of topics."},
	{Name: "log.retention.ms", Type: TypeLong, Nullable: true, Dynamic: true, check: longAtLeast(-1), Doc: "Retention time in ms; -1 keeps forever. Wins over log.retention.minutes and log.retention.hours."},
	{Name: "log.retention.minutes", Type: TypeInt, Nullable: true, check: intAtLeast(-1), Doc: "Retention time in minutes, used when log.retention.ms is unset."},
	{Name: "log.retention.hours", Type: TypeInt, Default: "168", check: intAtLeast(-1), Doc: "Retention time in hours, used when log.retention.ms and log.retention.minutes are unset."},
	{Name: "log.retention.bytes", Type: TypeLong, Default: "-1", Dynamic: true, check: longAtLeast(-1), Doc: "Retention size per partition; -1: no limit."},
	{Name: "log.segment.bytes", Type: TypeInt, Default: "1073741824", Dynamic: true, check: intAtLeast(14), Doc: "Segment size at which the active segment is rolled."},
	{Name: "log.roll.ms", Type: TypeLong, Nullable: true, Dynamic: true, check: longAtLeast(1), Doc: "Age at which the active segment is rolled. Wins over log.roll.hours."},
	{Name: "log.roll.hours", Type: TypeInt, Default: "168", check: intAtLeast(1), Doc: "Age in hours at which the active segment is rolled, used when log.roll.ms is unset."},
	{Name: "log.index.interval.bytes", Type: TypeInt, Default: "4096", Dynamic: true, check: intAtLeast(0), Doc: "Bytes between offset index entries."},
	{Name: "log.index.size.max.bytes", Type: TypeInt, Default: "10485760", Dynamic: true, check: intAtLeast(4), Doc: "Maximum size of an offset index file."},
	{Name: "log.flush.interval.messages", Type: TypeLong, Default: DefaultFlushMessages, Dynamic: true, check: longAtLeast(1), Doc: "Fsync after this many messages; 1: each write is on disk before it is acknowledged (group commit). The default 1 applies while no flush key (log.flush.interval.*, topic flush.*) is set; once one is, an unset one means never (" + maxLongStr + "), as in Kafka."},
	{Name: "log.flush.interval.ms", Type: TypeLong, Nullable: true, Dynamic: true, check: longAtLeast(0), Doc: "Fsync when unflushed data is this old, without waiting before the acknowledgement. Unset: never (" + maxLongStr + ")."},
	{Name: "log.segment.delete.delay.ms", Type: TypeLong, Default: "60000", Dynamic: true, check: longAtLeast(0), Doc: "Delay before a removed segment's files are deleted."},
	{Name: "log.retention.check.interval.ms", Type: TypeLong, Default: "300000", check: longAtLeast(1), Doc: "How often retention is enforced."},
	{Name: "log.cleanup.policy", Type: TypeList, Default: "delete", Dynamic: true, check: checkListOf(cleanupPolicies...), Doc: "Default cleanup.policy of topics: delete, compact, or both."},
	{Name: "log.message.timestamp.type", Type: TypeString, Default: "CreateTime", Dynamic: true, check: checkOneOf(timestampTypes...), Doc: "Default message.timestamp.type of topics."},
	{Name: "log.message.timestamp.before.max.ms", Type: TypeLong, Default: maxLongStr, Dynamic: true, check: longAtLeast(0), Doc: "Largest allowed age of a record timestamp (CreateTime topics)."},
	{Name: "log.message.timestamp.after.max.ms", Type: TypeLong, Default: maxLongStr, Dynamic: true, check: longAtLeast(0), Doc: "Largest allowed distance of a record timestamp into the future (CreateTime topics)."},
	{Name: "log.cleaner.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "Run the log cleaner, which compacts topics with cleanup.policy=compact (__consumer_offsets among them)."},
	{Name: "log.cleaner.backoff.ms", Type: TypeLong, Default: "15000", check: longAtLeast(0), Doc: "How often the log cleaner looks for logs to compact."},
	{Name: "log.cleaner.delete.retention.ms", Type: TypeLong, Default: "86400000", Dynamic: true, check: longAtLeast(0), Doc: "Default delete.retention.ms of topics."},
	{Name: "log.cleaner.min.compaction.lag.ms", Type: TypeLong, Default: "0", Dynamic: true, check: longAtLeast(0), Doc: "Default min.compaction.lag.ms of topics."},
	{Name: "log.cleaner.max.compaction.lag.ms", Type: TypeLong, Default: maxLongStr, Dynamic: true, check: longAtLeast(1), Doc: "Default max.compaction.lag.ms of topics."},
	{Name: "log.cleaner.min.cleanable.ratio", Type: TypeDouble, Default: "0.5", Dynamic: true, check: checkRatio, Doc: "Default min.cleanable.dirty.ratio of topics."},
	{Name: "log.preallocate", Type: TypeBoolean, Default: "false", Dynamic: true, check: checkBool, Doc: "Default preallocate of topics."},
	{Name: "compression.type", Type: TypeString, Default: "producer", Dynamic: true, check: checkOneOf(compressionTypes...), Doc: "Default compression.type of topics."},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", Dynamic: true, check: checkBool, Doc: "Default unclean.leader.election.enable of topics."},
	{Name: "message.max.bytes", Type: TypeInt, Default: "1048588", Dynamic: true, check: intAtLeast(0), Doc: "Largest record batch accepted; default max.message.bytes of topics."},
	{Name: "max.incremental.fetch.session.cache.slots", Type: TypeInt, Default: "1000", check: intAtLeast(0), Doc: "Fetch sessions (KIP-227) this broker keeps; 0: none, every fetch is a full fetch."},
	{Name: "socket.request.max.bytes", Type: TypeInt, Default: "104857600", check: intAtLeast(1), Doc: "Largest request frame accepted."},
	{Name: "queued.max.request.bytes", Type: TypeLong, Default: "268435456", check: minusOneOrAtLeast(1), Doc: "Memory budget of requests partially received or not yet handled, on all connections together; when it is full the broker stops reading from sockets. -1: unbounded (Kafka's default; Moldau's is 256 MiB)."},
	{Name: "connections.max.idle.ms", Type: TypeLong, Default: "600000", check: minusOneOrAtLeast(1), Doc: "Close a connection on which nothing arrives and nothing is sent for this long, and one whose request, once begun, is not received in full within it. -1: never."},
	{Name: "max.connections", Type: TypeInt, Default: "2147483647", check: intAtLeast(0), Doc: "Client connections on all listeners together; at the cap the broker accepts no more until one closes (as Kafka)."},
	{Name: "max.connections.per.ip", Type: TypeInt, Default: "2147483647", check: intAtLeast(0), Doc: "Connections per client address; a connection over it is closed at once. 0 (only with max.connections.per.ip.overrides): only the hosts named there may connect."},
	{Name: "max.connections.per.ip.overrides", Type: TypeString, Nullable: true, check: checkConnectionOverrides, Doc: "Per-host exceptions to max.connections.per.ip: host:count,host:count (host name or IP address)."},
	{Name: "offsets.topic.num.partitions", Type: TypeInt, Default: "50", check: intAtLeast(1), Doc: "Partitions of __consumer_offsets."},
	{Name: "offsets.topic.replication.factor", Type: TypeShort, Default: "3", check: shortAtLeast(1), Doc: "Replication factor of __consumer_offsets; until that many brokers are up it is not created (as in Kafka). A node alone in its quorum uses 1 while the key is unset."},
	{Name: "transaction.state.log.replication.factor", Type: TypeShort, Default: "3", check: shortAtLeast(1), Doc: "Replication factor of __transaction_state, with the same single-node rule as offsets.topic.replication.factor."},
	{Name: "transaction.state.log.min.isr", Type: TypeInt, Default: "2", check: intAtLeast(1), Doc: "min.insync.replicas of __transaction_state."},
	{Name: "transaction.state.log.num.partitions", Type: TypeInt, Default: "50", check: intAtLeast(1), Doc: "Partitions of __transaction_state."},
	{Name: "transaction.state.log.segment.bytes", Type: TypeInt, Default: "104857600", check: intAtLeast(1), Doc: "segment.bytes of __transaction_state."},
	{Name: "transaction.max.timeout.ms", Type: TypeInt, Default: "900000", check: intAtLeast(1), Doc: "Largest transaction.timeout.ms a producer may ask for (InitProducerId answers INVALID_TRANSACTION_TIMEOUT above it)."},
	{Name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", Type: TypeInt, Default: "10000", check: intAtLeast(1), Doc: "How often the transaction coordinator aborts the transactions that ran past their timeout."},
	{Name: "transaction.remove.expired.transaction.cleanup.interval.ms", Type: TypeInt, Default: "3600000", check: intAtLeast(1), Doc: "How often the transaction coordinator removes the transactional ids idle for transactional.id.expiration.ms."},
	{Name: "transaction.partition.verification.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "A partition leader asks the transaction coordinator whether a transactional producer added the partition before accepting its first write (KIP-890 part 1)."},
	{Name: "offsets.retention.minutes", Type: TypeInt, Default: "10080", check: intAtLeast(1), Doc: "How long committed offsets of an empty group are kept."},
	{Name: "group.initial.rebalance.delay.ms", Type: TypeInt, Default: "3000", check: intAtLeast(0), Doc: "Delay of the first rebalance of a new group."},
	{Name: "group.min.session.timeout.ms", Type: TypeInt, Default: "6000", check: intAtLeast(0), Doc: "Smallest session timeout a consumer may ask for."},
	{Name: "group.max.session.timeout.ms", Type: TypeInt, Default: "1800000", check: intAtLeast(0), Doc: "Largest session timeout a consumer may ask for."},
	{Name: "transactional.id.expiration.ms", Type: TypeInt, Default: "604800000", check: intAtLeast(1), Doc: "How long an idle transactional id is kept."},
	{Name: "producer.id.expiration.ms", Type: TypeInt, Default: "86400000", check: intAtLeast(1), Doc: "How long the state of an idle producer id is kept."},
}

// topicKeys is the catalogue of topic-level keys, sorted by name at init.
var topicKeys = []Key{
	{Name: "cleanup.policy", Type: TypeList, Default: "delete", BrokerKey: "log.cleanup.policy", check: checkListOf(cleanupPolicies...)},
	{Name: "compression.type", Type: TypeString, Default: "producer", BrokerKey: "compression.type", check: checkOneOf(compressionTypes...)},
	{Name: "delete.retention.ms", Type: TypeLong, Default: "86400000", BrokerKey: "log.cleaner.delete.retention.ms", check: longAtLeast(0)},
	{Name: "file.delete.delay.ms", Type: TypeLong, Default: "60000", BrokerKey: "log.segment.delete.delay.ms", check: longAtLeast(0)},
	{Name: "flush.messages", Type: TypeLong, Default: DefaultFlushMessages, BrokerKey: "log.flush.interval.messages", check: longAtLeast(1), Doc: "Fsync after this many messages; 1: on disk before acknowledged. Default: broker log.flush.interval.messages; 1 (Moldau's durable default) unless flush.ms or a broker log.flush.interval.* key is set."},
	{Name: "flush.ms", Type: TypeLong, Default: maxLongStr, BrokerKey: "log.flush.interval.ms", check: longAtLeast(0)},
	{Name: "index.interval.bytes", Type: TypeInt, Default: "4096", BrokerKey: "log.index.interval.bytes", check: intAtLeast(0)},
	{Name: LeaderReplicationThrottledReplicas, Type: TypeList, Default: "", check: checkThrottledReplicas, Doc: "Replicas whose leader throttles their followers (leader.replication.throttled.rate) while those are not in the ISR: '*' or partitionId:brokerId,... naming the leader's broker."},
	{Name: FollowerReplicationThrottledReplicas, Type: TypeList, Default: "", check: checkThrottledReplicas, Doc: "Follower replicas whose fetching is throttled (follower.replication.throttled.rate) while they are not in sync: '*' or partitionId:brokerId,... naming the follower's broker."},
	{Name: "max.compaction.lag.ms", Type: TypeLong, Default: maxLongStr, BrokerKey: "log.cleaner.max.compaction.lag.ms", check: longAtLeast(1)},
	{Name: "max.message.bytes", Type: TypeInt, Default: "1048588", BrokerKey: "message.max.bytes", check: intAtLeast(0)},
	{Name: "message.downconversion.enable", Type: TypeBoolean, Default: "true", check: checkBool, Doc: "Accepted for compatibility; Moldau never down-converts."},
	{Name: "message.timestamp.after.max.ms", Type: TypeLong, Default: maxLongStr, BrokerKey: "log.message.timestamp.after.max.ms", check: longAtLeast(0)},
	{Name: "message.timestamp.before.max.ms", Type: TypeLong, Default: maxLongStr, BrokerKey: "log.message.timestamp.before.max.ms", check: longAtLeast(0)},
	{Name: "message.timestamp.type", Type: TypeString, Default: "CreateTime", BrokerKey: "log.message.timestamp.type", check: checkOneOf(timestampTypes...)},
	{Name: "min.cleanable.dirty.ratio", Type: TypeDouble, Default: "0.5", BrokerKey: "log.cleaner.min.cleanable.ratio", check: checkRatio},
	{Name: "min.compaction.lag.ms", Type: TypeLong, Default: "0", BrokerKey: "log.cleaner.min.compaction.lag.ms", check: longAtLeast(0)},
	{Name: "min.insync.replicas", Type: TypeInt, Default: "1", BrokerKey: "min.insync.replicas", check: intAtLeast(1)},
	{Name: "preallocate", Type: TypeBoolean, Default: "false", BrokerKey: "log.preallocate", check: checkBool},
	{Name: "retention.bytes", Type: TypeLong, Default: "-1", BrokerKey: "log.retention.bytes", check: longAtLeast(-1)},
	{Name: "retention.ms", Type: TypeLong, Default: "604800000", BrokerKey: "log.retention.ms", check: longAtLeast(-1)},
	{Name: "segment.bytes", Type: TypeInt, Default: "1073741824", BrokerKey: "log.segment.bytes", check: intAtLeast(14)},
	{Name: "segment.index.bytes", Type: TypeInt, Default: "10485760", BrokerKey: "log.index.size.max.bytes", check: intAtLeast(4)},
	{Name: "segment.ms", Type: TypeLong, Default: "604800000", BrokerKey: "log.roll.ms", check: longAtLeast(1)},
	{Name: "unclean.leader.election.enable", Type: TypeBoolean, Default: "false", BrokerKey: "unclean.leader.election.enable", check: checkBool},
}

// ignoredKeys are well-known Kafka broker keys with no meaning for Moldau: accepted so that
// server.properties files copied from Kafka start, and reported in Config.Ignored.
var ignoredKeys = map[string]bool{
	"advertised.host.name": true, "advertised.port": true, "host.name": true, "port": true,
	"alter.config.policy.class.name": true, "create.topic.policy.class.name": true,
	"authorizer.class.name": true, "super.users": true, "allow.everyone.if.no.acl.found": true,
	"background.threads": true, "client.quota.callback.class": true, "connections.max.reauth.ms": true,
	"delete.topic.enable": true, "early.start.listeners": true, "eligible.leader.replicas.enable": true,
	"fetch.max.bytes": true, "fetch.purgatory.purge.interval.requests": true,
	"producer.purgatory.purge.interval.requests": true,
	"initial.broker.registration.timeout.ms":     true,
	"inter.broker.protocol.version":              true,
	"log.flush.offset.checkpoint.interval.ms":    true, "log.flush.scheduler.interval.ms": true,
	"log.flush.start.offset.checkpoint.interval.ms": true, "log.message.downconversion.enable": true,
	"log.message.format.version": true, "log.message.timestamp.difference.max.ms": true,
	"log.roll.jitter.ms": true, "log.roll.jitter.hours": true, "log.dir.failure.timeout.ms": true,
	"log.initial.task.delay.ms": true, "metric.reporters": true,
	"num.io.threads": true, "num.network.threads": true, "num.recovery.threads.per.data.dir": true,
	"num.replica.alter.log.dirs.threads": true, "num.replica.fetchers": true,
	"offset.metadata.max.bytes": true, "offsets.commit.timeout.ms": true, "offsets.load.buffer.size": true,
	"offsets.retention.check.interval.ms": true, "offsets.topic.compression.codec": true,
	"offsets.topic.segment.bytes": true, "principal.builder.class": true, "queued.max.requests": true,
	"request.timeout.ms": true, "reserved.broker.max.id": true,
	"socket.listen.backlog.size": true, "socket.receive.buffer.bytes": true, "socket.send.buffer.bytes": true,
	"socket.connection.setup.timeout.ms": true, "socket.connection.setup.timeout.max.ms": true,
	"group.max.size": true, "group.coordinator.rebalance.protocols": true,
}

// ignoredPrefixes extend ignoredKeys to whole families of Kafka keys.
var ignoredPrefixes = []string{
	"compression.gzip.", "compression.lz4.", "compression.zstd.", "confluent.", "controlled.shutdown.",
	"controller.quorum.", "delegation.token.", "group.consumer.", "group.coordinator.", "group.share.",
	"kafka.metrics.", "leader.imbalance.", "listener.name.", "log.cleaner.", "log.local.", "max.connection",
	"metadata.", "metrics.", "password.encoder.", "quota.", "remote.log.", "replica.", "sasl.", "share.",
	"ssl.", "transaction.", "unstable.", "zookeeper.",
}

var (
	brokerIndex = map[string]*Key{}
	topicIndex  = map[string]*Key{}
)

func init() {
	sort.Slice(brokerKeys, func(i, j int) bool { return brokerKeys[i].Name < brokerKeys[j].Name })
	sort.Slice(topicKeys, func(i, j int) bool { return topicKeys[i].Name < topicKeys[j].Name })
	for i := range brokerKeys {
		brokerIndex[brokerKeys[i].Name] = &brokerKeys[i]
	}
	for i := range topicKeys {
		k := &topicKeys[i]
		k.Dynamic = true
		if k.Doc == "" && k.BrokerKey != "" {
			k.Doc = "Default: broker " + k.BrokerKey + "."
		}
		topicIndex[k.Name] = k
	}
}

// isIgnored reports whether key is a known Kafka broker key that Moldau accepts and ignores.
// Keys in the catalogue are never ignored, even when a prefix matches.
func isIgnored(key string) bool {
	if _, ok := brokerIndex[key]; ok {
		return false
	}
	if ignoredKeys[key] {
		return true
	}
	for _, p := range ignoredPrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// IsIgnoredBrokerKey reports whether key is a Kafka broker key that Moldau accepts and ignores,
// as the config file does (Config.Ignored); AlterConfigs accepts it with a warning.
func IsIgnoredBrokerKey(key string) bool { return isIgnored(key) }

// BrokerKeys returns the catalogue of broker keys, sorted by name (a copy).
func BrokerKeys() []Key { return append([]Key(nil), brokerKeys...) }

// TopicKeys returns the catalogue of topic keys, sorted by name (a copy).
func TopicKeys() []Key { return append([]Key(nil), topicKeys...) }

// BrokerKey looks up a broker key by name.
func BrokerKey(name string) (Key, bool) {
	k, ok := brokerIndex[name]
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// TopicKey looks up a topic key by name.
func TopicKey(name string) (Key, bool) {
	k, ok := topicIndex[name]
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// ValidateBrokerConfig validates a dynamic (AlterConfigs, cluster-wide) change of a broker key.
// The error wraps ErrUnknownKey, ErrInvalidValue, or ErrReadOnly for keys that exist but cannot be
// changed at runtime.
func ValidateBrokerConfig(key, value string) error {
	k, ok := brokerIndex[key]
	if !ok {
		return unknownKeyError(key, "", false)
	}
	if !k.Dynamic {
		return &Error{Key: key, Value: strings.TrimSpace(value), Reason: "cannot be changed at runtime: set it in server.properties and restart", kind: ErrReadOnly}
	}
	return k.Validate(value)
}

// ValidateTopicConfig validates one topic-level key and value. The error wraps ErrUnknownKey or
// ErrInvalidValue.
func ValidateTopicConfig(key, value string) error {
	k, ok := topicIndex[key]
	if !ok {
		return unknownKeyError(key, "", true)
	}
	return k.Validate(value)
}
