package config

import (
	"errors"
	"flag"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	env := []string{
		"KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://broker:9092",
		"KAFKA_LOG_RETENTION_MS=1000",
		"KAFKA_CONFLUENT_SUPPORT__METRICS___ENABLE=false", // __ -> _, ___ -> -
		"MOLDAU_METRICS_LISTENER=:9100",
		"KAFKA_NUM_PARTITIONS=2",
		"MOLDAU_NUM_PARTITIONS=4", // MOLDAU_ wins over KAFKA_
		"CLUSTER_ID=MkU3OEVBNTcwNTJENDM2Qk",
		"KAFKA_HEAP_OPTS=-Xmx1G", "KAFKA_OPTS=-Dx", "KAFKA_JVM_PERFORMANCE_OPTS=-server",
		"KAFKA_LOG4J_OPTS=x", "KAFKA_JMX_OPTS=x", "KAFKA_JMX_PORT=9999",
		"PATH=/usr/bin", "KAFKA_=x", "MOLDAU_=y", "NOEQUALS",
		"KAFKA_EMPTY=",
	}
	want := map[string]string{
		"advertised.listeners":             "PLAINTEXT://broker:9092",
		"log.retention.ms":                 "1000",
		"confluent.support_metrics-enable": "false",
		"metrics.listener":                 ":9100",
		"num.partitions":                   "4",
		"cluster.id":                       "MkU3OEVBNTcwNTJENDM2Qk",
		"empty":                            "",
	}
	if got := FromEnv(env); !maps.Equal(got, want) {
		t.Errorf("FromEnv = %q\nwant %q", got, want)
	}
}

func TestEnvToKey(t *testing.T) {
	for in, want := range map[string]string{
		"KAFKA_NODE_ID":                              "node.id",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":       "listener.security.protocol.map",
		"MOLDAU_CONTROLLER_LISTENER":                 "controller.listener",
		"KAFKA_LISTENER_NAME_INTERNAL_SSL__KEY_PASS": "listener.name.internal.ssl_key.pass",
		"KAFKA_A___B":                                "a-b",
		"CLUSTER_ID":                                 "cluster.id",
	} {
		if got := EnvToKey(in); got != want {
			t.Errorf("EnvToKey(%s) = %q, want %q", in, got, want)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "num.partitions=2\nlog.segment.bytes=1000\nmessage.max.bytes=100\nnode.id=7\n")
	env := []string{"KAFKA_LOG_SEGMENT_BYTES=2000", "KAFKA_MESSAGE_MAX_BYTES=200"}
	args := []string{"--config", file, "--override", "message.max.bytes=300"}
	c, err := ParseServerArgs(args, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key  string
		got  int64
		want int64
		src  Source
	}{
		{"num.partitions", int64(c.NumPartitions), 2, SourceFile},
		{"log.segment.bytes", c.LogSegmentBytes, 2000, SourceEnv},
		{"message.max.bytes", int64(c.MessageMaxBytes), 300, SourceFlag},
		{"node.id", int64(c.NodeID), 7, SourceFile},
		{"default.replication.factor", int64(c.DefaultReplicationFactor), 1, SourceDefault},
	}
	for _, ch := range checks {
		if ch.got != ch.want || c.Sources[ch.key] != ch.src {
			t.Errorf("%s = %d from %v, want %d from %v", ch.key, ch.got, c.Sources[ch.key], ch.want, ch.src)
		}
	}

	// Flags apply in command-line order, whatever their form.
	c, err = ParseServerArgs([]string{"--node-id", "2", "--override", "node.id=3"}, nil)
	if err != nil || c.NodeID != 3 {
		t.Errorf("override after flag: node %v, %v", c, err)
	}
	c, err = ParseServerArgs([]string{"--override", "node.id=3", "--node-id=4"}, nil)
	if err != nil || c.NodeID != 4 {
		t.Errorf("flag after override: %v", err)
	}

	// Build: later layers win; an empty value unsets a nullable key.
	c, err = Build(map[string]string{"log.retention.ms": "5", "num.partitions": "3"}, map[string]string{"log.retention.ms": "", "num.partitions": "4"})
	if err != nil || c.LogRetentionMs != 168*3_600_000 || c.NumPartitions != 4 {
		t.Errorf("Build layers: %+v, %v", c, err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 1 || c.Listeners[0].String() != "PLAINTEXT://127.0.0.1:9092" ||
		c.AdvertisedListeners[0].String() != "PLAINTEXT://127.0.0.1:9092" ||
		c.LogDirs[0] != "./moldau-data" || c.NumPartitions != 1 || c.DefaultReplicationFactor != 1 ||
		!c.AutoCreateTopicsEnable || c.LogRetentionMs != 604800000 || c.LogRetentionBytes != -1 ||
		c.LogSegmentBytes != 1073741824 || c.LogRollMs != 604800000 || c.MessageMaxBytes != 1048588 ||
		c.LogFlushIntervalMessages != 1 || c.LogFlushIntervalMs != maxLong ||
		c.LogIndexIntervalBytes != 4096 || c.LogSegmentDeleteDelayMs != 60000 ||
		c.SocketRequestMaxBytes != 104857600 || c.MinInsyncReplicas != 1 ||
		c.OffsetsTopicNumPartitions != 50 || c.OffsetsTopicReplicationFactor != 1 ||
		c.OffsetsRetentionMinutes != 10080 || c.GroupInitialRebalanceDelayMs != 3000 ||
		c.GroupMinSessionTimeoutMs != 6000 || c.GroupMaxSessionTimeoutMs != 1800000 ||
		c.LogMessageTimestampType != "CreateTime" || c.LogCleanupPolicy[0] != "delete" ||
		c.LogRetentionCheckIntervalMs != 300000 || c.ProducerIDExpirationMs != 86400000 ||
		c.TransactionalIDExpirationMs != 604800000 || c.ControllerListener != "" ||
		len(c.ControllerQuorumVoters) != 0 || c.HTTPListener != "127.0.0.1:8080" || c.HTTPPprof ||
		c.LogFormat != "text" || c.LogLevel != slog.LevelInfo || c.ClusterID != "" ||
		len(c.Ignored) != 0 {
		t.Errorf("defaults: %+v", c)
	}
	// Every catalogue key with a value is in Raw with a source.
	for _, k := range BrokerKeys() {
		_, ok := c.Raw[k.Name]
		wantOK := !k.Nullable || k.Default != "" ||
			map[string]bool{"log.retention.ms": true, "log.roll.ms": true, "log.flush.interval.ms": true,
				"log.dirs": true, "advertised.listeners": true, "broker.id": true, "inter.broker.listener.name": true}[k.Name]
		if ok != wantOK {
			t.Errorf("Raw[%s] present=%v, want %v", k.Name, ok, wantOK)
		}
		if v, src, ok := c.Lookup(k.Name); ok && src != SourceDefault {
			t.Errorf("%s = %q from %v, want default", k.Name, v, src)
		}
	}
}

func TestRetentionPrecedence(t *testing.T) {
	tests := []struct {
		set     map[string]string
		want    int64
		wantRaw string
	}{
		{map[string]string{}, 168 * 3_600_000, "604800000"},
		{map[string]string{"log.retention.hours": "1"}, 3_600_000, "3600000"},
		{map[string]string{"log.retention.hours": "1", "log.retention.minutes": "2"}, 120_000, "120000"},
		{map[string]string{"log.retention.hours": "1", "log.retention.minutes": "2", "log.retention.ms": "3"}, 3, "3"},
		{map[string]string{"log.retention.minutes": "2", "log.retention.ms": "-1"}, -1, "-1"},
		{map[string]string{"log.retention.hours": "-1"}, -1, "-1"},
		{map[string]string{"log.retention.minutes": "-1"}, -1, "-1"},
		{map[string]string{"log.retention.ms": "0"}, 0, "0"},
	}
	for _, tt := range tests {
		c, err := Build(tt.set)
		if err != nil {
			t.Fatalf("%v: %v", tt.set, err)
		}
		if c.LogRetentionMs != tt.want || c.Raw["log.retention.ms"] != tt.wantRaw {
			t.Errorf("%v: retention %d (raw %q), want %d", tt.set, c.LogRetentionMs, c.Raw["log.retention.ms"], tt.want)
		}
	}
	for set, want := range map[[2]string]int64{
		{"log.roll.hours", "2"}: 7_200_000,
		{"log.roll.ms", "500"}:  500,
	} {
		c, err := Build(map[string]string{set[0]: set[1], "log.roll.hours": map[bool]string{true: "2", false: "3"}[set[0] == "log.roll.hours"]})
		if err != nil || c.LogRollMs != want {
			t.Errorf("%v: roll %v, %v; want %d", set, c, err, want)
		}
	}
}

func TestListeners(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("os.Hostname() = %q, %v: the wildcard rule below needs a host name", host, err)
	}
	tests := []struct {
		set                  map[string]string
		listeners, adv, ctrl string
	}{
		{map[string]string{"listeners": "PLAINTEXT://0.0.0.0:9092"}, "PLAINTEXT://0.0.0.0:9092", "PLAINTEXT://" + host + ":9092", ""},
		{map[string]string{"listeners": "plaintext://:9092"}, "PLAINTEXT://:9092", "PLAINTEXT://" + host + ":9092", ""},
		{map[string]string{"listeners": "PLAINTEXT://[::]:9092"}, "PLAINTEXT://[::]:9092", "PLAINTEXT://" + host + ":9092", ""},
		{map[string]string{"listeners": "PLAINTEXT://[::1]:9092"}, "PLAINTEXT://[::1]:9092", "PLAINTEXT://[::1]:9092", ""},
		{map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0"}, "PLAINTEXT://127.0.0.1:0", "PLAINTEXT://127.0.0.1:0", ""},
		{map[string]string{"listeners": "INTERNAL://:9092, EXTERNAL://:9094", "advertised.listeners": "EXTERNAL://kafka.example:9094",
			"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"},
			"INTERNAL://:9092,EXTERNAL://:9094", "INTERNAL://" + host + ":9092,EXTERNAL://kafka.example:9094", ""},
		{map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"},
			"PLAINTEXT://:9092", "PLAINTEXT://" + host + ":9092", ":9093"},
		{map[string]string{"controller.quorum.voters": "1@node1:9093,2@node2:9093,3@node3:9093"},
			"PLAINTEXT://127.0.0.1:9092", "PLAINTEXT://127.0.0.1:9092", "node1:9093"},
		{map[string]string{"controller.quorum.voters": "1@node1:9093", "controller.listener": "0.0.0.0:9093"},
			"PLAINTEXT://127.0.0.1:9092", "PLAINTEXT://127.0.0.1:9092", "0.0.0.0:9093"},
	}
	join := func(ls []Listener) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.String())
		}
		return strings.Join(s, ",")
	}
	for _, tt := range tests {
		c, err := Build(tt.set)
		if err != nil {
			t.Errorf("%v: %v", tt.set, err)
			continue
		}
		if join(c.Listeners) != tt.listeners || join(c.AdvertisedListeners) != tt.adv || c.ControllerListener != tt.ctrl {
			t.Errorf("%v:\n got %s | %s | %q\nwant %s | %s | %q", tt.set, join(c.Listeners), join(c.AdvertisedListeners), c.ControllerListener, tt.listeners, tt.adv, tt.ctrl)
		}
		if c.Raw["advertised.listeners"] != tt.adv {
			t.Errorf("Raw advertised.listeners = %q", c.Raw["advertised.listeners"])
		}
	}
}

// TestWildcardListenerHostname: a listener bound to all interfaces (0.0.0.0, ::, empty host) and
// not in advertised.listeners is advertised with this machine's host name, as Kafka advertises
// its canonical host name; an explicit host is advertised as is; 127.0.0.1 only when the host
// name cannot be read.
func TestWildcardListenerHostname(t *testing.T) {
	named := func() (string, error) { return "broker-7.example", nil }
	broken := func() (string, error) { return "", errors.New("uname failed") }
	tests := []struct {
		listeners, advertised string
		hostname              func() (string, error)
		want                  string
	}{
		{"PLAINTEXT://0.0.0.0:9092", "", named, "PLAINTEXT://broker-7.example:9092"},
		{"PLAINTEXT://:9092", "", named, "PLAINTEXT://broker-7.example:9092"},
		{"PLAINTEXT://[::]:9092", "", named, "PLAINTEXT://broker-7.example:9092"},
		{"PLAINTEXT://127.0.0.1:9092", "", named, "PLAINTEXT://127.0.0.1:9092"},
		{"PLAINTEXT://0.0.0.0:9092", "", broken, "PLAINTEXT://127.0.0.1:9092"},
		{"INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094", "EXTERNAL://public.example:19094", named,
			"INTERNAL://broker-7.example:9092,EXTERNAL://public.example:19094"},
	}
	for _, tt := range tests {
		set := map[string]string{"listeners": tt.listeners, "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT"}
		if tt.advertised != "" {
			set["advertised.listeners"] = tt.advertised
		}
		c, err := buildWith([]layer{{source: SourceStatic, values: set}}, tt.hostname)
		if err != nil {
			t.Errorf("%v: %v", set, err)
			continue
		}
		var got []string
		for _, a := range c.AdvertisedListeners {
			got = append(got, a.String())
		}
		if strings.Join(got, ",") != tt.want || c.Raw["advertised.listeners"] != tt.want {
			t.Errorf("%v: advertised %v (Raw %q), want %s", set, got, c.Raw["advertised.listeners"], tt.want)
		}
	}
}

func TestParseVoters(t *testing.T) {
	v, err := ParseVoters(" 1@a:1 , 2@[::1]:2 ")
	if err != nil || len(v) != 2 || v[1].Addr() != "[::1]:2" || v[0].ID != 1 {
		t.Errorf("ParseVoters = %v, %v", v, err)
	}
	if v, err := ParseVoters(""); err != nil || len(v) != 0 {
		t.Errorf("empty: %v, %v", v, err)
	}
}

// TestBuildErrors covers every validation error message.
func TestBuildErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
		kind error
	}{
		{map[string]string{"log.segment.bytes": "abc"}, `config: log.segment.bytes: "abc" is not an integer`, ErrInvalidValue},
		{map[string]string{"log.segment.bytes": "10"}, `config: log.segment.bytes: "10" is out of range: must be at least 14`, ErrInvalidValue},
		{map[string]string{"log.segment.bytes": "3000000000"}, `config: log.segment.bytes: "3000000000" is out of range: must be at least 14`, ErrInvalidValue},
		{map[string]string{"log.retention.bytes": "99999999999999999999"}, `config: log.retention.bytes: "99999999999999999999" is out of range: must be -1 (no limit) or at least 0`, ErrInvalidValue},
		{map[string]string{"log.retention.ms": "-2"}, `config: log.retention.ms: "-2" is out of range: must be -1 (no limit) or at least 0`, ErrInvalidValue},
		{map[string]string{"default.replication.factor": "40000"}, `config: default.replication.factor: "40000" is out of range: must be between 1 and 32767`, ErrInvalidValue},
		{map[string]string{"offsets.topic.replication.factor": "0"}, `config: offsets.topic.replication.factor: "0" is out of range: must be between 1 and 32767`, ErrInvalidValue},
		{map[string]string{"num.partitions": "0"}, `config: num.partitions: "0" is out of range: must be at least 1`, ErrInvalidValue},
		{map[string]string{"auto.create.topics.enable": "yes"}, `config: auto.create.topics.enable: "yes" is not a boolean: expected true or false`, ErrInvalidValue},
		{map[string]string{"log.cleaner.min.cleanable.ratio": "x"}, `config: log.cleaner.min.cleanable.ratio: "x" is not a number`, ErrInvalidValue},
		{map[string]string{"log.cleaner.min.cleanable.ratio": "1.5"}, `config: log.cleaner.min.cleanable.ratio: "1.5" is out of range: must be between 0 and 1`, ErrInvalidValue},
		{map[string]string{"log.message.timestamp.type": "createtime"}, `config: log.message.timestamp.type: "createtime" is not valid: expected one of CreateTime, LogAppendTime`, ErrInvalidValue},
		{map[string]string{"log.cleanup.policy": "delete,archive"}, `config: log.cleanup.policy: "delete,archive" is not valid: "archive" is not one of delete, compact`, ErrInvalidValue},
		{map[string]string{"log.cleanup.policy": ","}, `config: log.cleanup.policy: "," is not valid: expected a comma-separated list of delete, compact`, ErrInvalidValue},
		{map[string]string{"compression.type": "brotli"}, `config: compression.type: "brotli" is not valid: expected one of uncompressed, zstd, lz4, snappy, gzip, producer`, ErrInvalidValue},
		{map[string]string{"process.roles": "broker,worker"}, `config: process.roles: "broker,worker" is not valid: "worker" is not a role (expected broker, controller or broker,controller)`, ErrInvalidValue},
		{map[string]string{"process.roles": "broker,broker"}, `config: process.roles: "broker,broker" is not valid: duplicate role names found ("broker")`, ErrInvalidValue},
		{map[string]string{"process.roles": ","}, `config: process.roles: "," is not valid: expected broker, controller or broker,controller`, ErrInvalidValue},
		{map[string]string{"cluster.id": "a b"}, `config: cluster.id: "a b" is not valid: expected a non-empty string without spaces`, ErrInvalidValue},
		{map[string]string{"log.dirs": " , "}, `config: log.dirs: "," is not valid: expected a comma-separated list of directories`, ErrInvalidValue},
		{map[string]string{"listeners": "localhost:9092"}, `config: listeners: "localhost:9092" is not valid: "localhost:9092" is not NAME://host:port`, ErrInvalidValue},
		{map[string]string{"listeners": "PLAINTEXT://host"}, `config: listeners: "PLAINTEXT://host" is not valid: "PLAINTEXT://host": "host": missing port in address`, ErrInvalidValue},
		{map[string]string{"listeners": "PLAINTEXT://:99999"}, `config: listeners: "PLAINTEXT://:99999" is not valid: "PLAINTEXT://:99999": ":99999": port "99999" is not a number between 0 and 65535`, ErrInvalidValue},
		{map[string]string{"listeners": "A://:1,a://:2"}, `config: listeners: "A://:1,a://:2" is not valid: listener name A is used twice`, ErrInvalidValue},
		{map[string]string{"listeners": "A.B://:1"}, `config: listeners: "A.B://:1" is not valid: "A.B://:1": listener name "A.B" may only hold letters, digits, '_' and '-'`, ErrInvalidValue},
		{map[string]string{"listeners": ""}, `config: listeners: "" is not valid: no listener (expected NAME://host:port,...)`, ErrInvalidValue},
		{map[string]string{"listeners": "SSL://:9093"}, `config: listeners: "SSL://:9093" is not supported yet: listener SSL uses security protocol SSL (listener.security.protocol.map), Moldau serves PLAINTEXT only`, ErrInvalidValue},
		{map[string]string{"listeners": "EXT://:9093", "listener.security.protocol.map": "EXT:SASL_SSL"}, `config: listeners: "EXT://:9093" is not supported yet: listener EXT uses security protocol SASL_SSL (listener.security.protocol.map), Moldau serves PLAINTEXT only`, ErrInvalidValue},
		{map[string]string{"listener.security.protocol.map": "EXT:TLS"}, `config: listener.security.protocol.map: "EXT:TLS" is not valid: "EXT:TLS": unknown security protocol TLS (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)`, ErrInvalidValue},
		{map[string]string{"listener.security.protocol.map": "EXT"}, `config: listener.security.protocol.map: "EXT" is not valid: "EXT" is not NAME:PROTOCOL`, ErrInvalidValue},
		{map[string]string{"listeners": "CONTROLLER://:9093", "controller.listener.names": "CONTROLLER"}, `config: listeners: "CONTROLLER://:9093" has no client listener: every listener is named in controller.listener.names (there must be at least one broker listener)`, ErrInvalidValue},
		{map[string]string{"advertised.listeners": "OTHER://h:1"}, `config: advertised.listeners: "OTHER://h:1" names listener OTHER, which is not a client listener in listeners (the valid options are PLAINTEXT)`, ErrInvalidValue},
		{map[string]string{"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"}, `config: advertised.listeners: "PLAINTEXT://0.0.0.0:9092" advertises PLAINTEXT://0.0.0.0:9092, a wildcard address clients cannot connect to: use a host name or IP`, ErrInvalidValue},
		{map[string]string{"listeners": "A://:9092,B://:9092", "listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT"}, `config: listeners: "A://:9092,B://:9092" uses port 9092, already used by listeners`, ErrInvalidValue},
		{map[string]string{"metrics.listener": ":9092"}, `config: metrics.listener: ":9092" uses port 9092, already used by listeners`, ErrInvalidValue},
		{map[string]string{"metrics.listener": "9100"}, `config: metrics.listener: "9100" is not valid: "9100": missing port in address (expected host:port)`, ErrInvalidValue},
		{map[string]string{"http.listener": ":9092"}, `config: http.listener: ":9092" uses port 9092, already used by listeners`, ErrInvalidValue},
		{map[string]string{"http.listener": "127.0.0.1:9093", "controller.listener": ":9093"}, `config: http.listener: "127.0.0.1:9093" uses port 9093, already used by controller.listener`, ErrInvalidValue},
		{map[string]string{"http.listener": "localhost"}, `config: http.listener: "localhost" is not valid: "localhost": missing port in address (expected host:port)`, ErrInvalidValue},
		{map[string]string{"http.listener": "127.0.0.1:8080", "metrics.listener": "127.0.0.1:9100"}, `config: metrics.listener: "127.0.0.1:9100" differs from http.listener ("127.0.0.1:8080"): metrics.listener is an alias of http.listener, set only one of them`, ErrInvalidValue},
		{map[string]string{"listeners": "PLAINTEXT://127.0.0.1:8080"}, `config: http.listener: "127.0.0.1:8080" uses port 8080, already used by listeners`, ErrInvalidValue},
		{map[string]string{"http.pprof.enable": "yes"}, `config: http.pprof.enable: "yes" is not a boolean: expected true or false`, ErrInvalidValue},
		{map[string]string{"log.format": "logfmt"}, `config: log.format: "logfmt" is not valid: expected one of text, json`, ErrInvalidValue},
		{map[string]string{"log.level": "TRACE"}, `config: log.level: "TRACE" is not valid: expected one of DEBUG, INFO, WARN, ERROR`, ErrInvalidValue},
		{map[string]string{"controller.listener": "x:y"}, `config: controller.listener: "x:y" is not valid: "x:y": port "y" is not a number between 0 and 65535 (expected host:port)`, ErrInvalidValue},
		{map[string]string{"controller.quorum.voters": "1@a:1,2@b:2", "node.id": "3"}, `config: controller.quorum.voters: "1@a:1,2@b:2" does not list this node: process.roles contains the 'controller' role, so node.id 3 must be among voters 1, 2`, ErrInvalidValue},
		{map[string]string{"controller.quorum.voters": "a:1"}, `config: controller.quorum.voters: "a:1" is not valid: "a:1" is not id@host:port`, ErrInvalidValue},
		{map[string]string{"controller.quorum.voters": "x@a:1"}, `config: controller.quorum.voters: "x@a:1" is not valid: "x@a:1": node id "x" is not a non-negative integer`, ErrInvalidValue},
		{map[string]string{"controller.quorum.voters": "1@:1"}, `config: controller.quorum.voters: "1@:1" is not valid: "1@:1": a voter needs a host and a non-zero port`, ErrInvalidValue},
		{map[string]string{"controller.quorum.voters": "1@a:1,1@b:1"}, `config: controller.quorum.voters: "1@a:1,1@b:1" is not valid: node id 1 is listed twice`, ErrInvalidValue},
		{map[string]string{"broker.id": "2", "node.id": "1"}, `config: broker.id: "2" does not match node.id (1): set only one of them`, ErrInvalidValue},
		{map[string]string{"group.min.session.timeout.ms": "7000", "group.max.session.timeout.ms": "6000"}, `config: group.min.session.timeout.ms: "7000" must not exceed group.max.session.timeout.ms (6000)`, ErrInvalidValue},
		{map[string]string{"log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "5"}, `config: log.cleaner.min.compaction.lag.ms: "10" must not exceed log.cleaner.max.compaction.lag.ms (5)`, ErrInvalidValue},
		{map[string]string{"log.retension.ms": "1"}, `config: unknown key "log.retension.ms" (did you mean "log.retention.ms"?)`, ErrUnknownKey},
		{map[string]string{"num.partition": "1"}, `config: unknown key "num.partition" (did you mean "num.partitions"?)`, ErrUnknownKey},
		{map[string]string{"retention.ms": "1"}, `config: unknown key "retention.ms" (it is a topic config; the broker default is "log.retention.ms")`, ErrUnknownKey},
		{map[string]string{"foo.bar": "1"}, `config: unknown key "foo.bar"`, ErrUnknownKey},
	}
	for _, tt := range tests {
		_, err := Build(tt.set)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Build(%v):\n got %v\nwant %s", tt.set, err, tt.want)
			continue
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("Build(%v): error is not %v", tt.set, tt.kind)
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Build(%v): not an *Error", tt.set)
		}
	}
}

func TestBuildReportsAllErrors(t *testing.T) {
	_, err := Build(map[string]string{"num.partitions": "x", "log.segment.bytes": "y", "nope": "1"})
	want := `config: unknown key "nope"` + "\n" +
		`config: log.segment.bytes: "y" is not an integer` + "\n" +
		`config: num.partitions: "x" is not an integer`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestIgnoredKeys(t *testing.T) {
	c, err := Build(map[string]string{
		"zookeeper.connect": "localhost:2181", "num.network.threads": "3", "ssl.keystore.location": "/x",
		"group.coordinator.rebalance.protocols": "classic,consumer", "controller.quorum.election.timeout.ms": "1000",
		"log.cleaner.threads": "2", "metrics.num.samples": "2", "confluent.balancer.enable": "false",
		"broker.id": "1",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "confluent.balancer.enable controller.quorum.election.timeout.ms group.coordinator.rebalance.protocols log.cleaner.threads metrics.num.samples num.network.threads ssl.keystore.location zookeeper.connect"
	if got := strings.Join(c.Ignored, " "); got != want {
		t.Errorf("Ignored = %s", got)
	}
	// Catalogue keys are never swallowed by an ignored prefix.
	for _, k := range []string{"metrics.listener", "http.listener", "log.level", "log.format", "controller.quorum.voters", "controller.quorum.bootstrap.servers", "log.cleaner.delete.retention.ms",
		"replica.lag.time.max.ms", "controlled.shutdown.enable", "transaction.state.log.replication.factor"} {
		if isIgnored(k) {
			t.Errorf("%s is ignored", k)
		}
	}
}

// TestHTTPListener: http.listener and its alias metrics.listener, off with an empty value, and
// the log and pprof keys.
func TestHTTPListener(t *testing.T) {
	tests := []struct {
		name    string
		layers  []map[string]string
		want    string
		wantRaw map[string]Source // sources of http.listener and metrics.listener
	}{
		{"default", nil, "127.0.0.1:8080", map[string]Source{"http.listener": SourceDefault, "metrics.listener": SourceDefault}},
		{"http.listener", []map[string]string{{"http.listener": "0.0.0.0:18080"}}, "0.0.0.0:18080", map[string]Source{"http.listener": SourceStatic, "metrics.listener": SourceStatic}},
		{"alias", []map[string]string{{"metrics.listener": "127.0.0.1:0"}}, "127.0.0.1:0", map[string]Source{"http.listener": SourceStatic, "metrics.listener": SourceStatic}},
		{"both the same", []map[string]string{{"metrics.listener": ":9100", "http.listener": ":9100"}}, ":9100", nil},
		{"off", []map[string]string{{"http.listener": ""}}, "", nil},
		{"off through the alias", []map[string]string{{"metrics.listener": " "}}, "", nil},
		{"later layer wins", []map[string]string{{"http.listener": ":1"}, {"http.listener": ":2"}}, ":2", nil},
		// The default port is not a clash: http.listener was not set.
		{"moved", []map[string]string{{"listeners": "PLAINTEXT://127.0.0.1:8080", "http.listener": "127.0.0.1:8081"}}, "127.0.0.1:8081", nil},
	}
	for _, tt := range tests {
		c, err := Build(tt.layers...)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.HTTPListener != tt.want || c.Raw["http.listener"] != tt.want || c.Raw["metrics.listener"] != tt.want {
			t.Errorf("%s: HTTPListener %q, Raw %q / %q, want %q", tt.name, c.HTTPListener, c.Raw["http.listener"], c.Raw["metrics.listener"], tt.want)
		}
		for k, src := range tt.wantRaw {
			if c.Sources[k] != src {
				t.Errorf("%s: source of %s = %v, want %v", tt.name, k, c.Sources[k], src)
			}
		}
	}

	c, err := ParseServerArgs([]string{"--http-listener", "", "--override", "http.pprof.enable=TRUE",
		"--override", "log.format=json"}, []string{"MOLDAU_LOG_LEVEL=debug"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPListener != "" || !c.HTTPPprof || c.LogFormat != "json" || c.LogLevel != slog.LevelDebug || len(c.EnvWarnings) != 0 {
		t.Errorf("flags: %q pprof %v format %q level %v warnings %v", c.HTTPListener, c.HTTPPprof, c.LogFormat, c.LogLevel, c.EnvWarnings)
	}
	// Both set: the higher precedence wins, whichever name it uses; at the same one they must agree.
	for _, tt := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--metrics-listener", "127.0.0.1:9100"}, []string{"MOLDAU_HTTP_LISTENER=127.0.0.1:9200"}, "127.0.0.1:9100"},
		{[]string{"--http-listener", "127.0.0.1:9100"}, []string{"MOLDAU_METRICS_LISTENER=127.0.0.1:9200"}, "127.0.0.1:9100"},
		{[]string{"--http-listener", "127.0.0.1:9100", "--metrics-listener", "127.0.0.1:9100"}, nil, "127.0.0.1:9100"},
	} {
		c, err := ParseServerArgs(tt.args, tt.env)
		if err != nil || c.HTTPListener != tt.want || c.Raw["metrics.listener"] != tt.want || c.Raw["http.listener"] != tt.want {
			t.Errorf("%v %v: %v, %v", tt.args, tt.env, c, err)
		}
	}
	_, err = ParseServerArgs([]string{"--metrics-listener", "127.0.0.1:9100", "--http-listener", "127.0.0.1:9200"}, nil)
	want := `config: metrics.listener: "127.0.0.1:9100" differs from http.listener ("127.0.0.1:9200"): metrics.listener is an alias of http.listener, set only one of them (from flag --metrics-listener)`
	if err == nil || err.Error() != want {
		t.Errorf("alias conflict: %v\nwant %s", err, want)
	}
	for in, want := range map[string]slog.Level{"DEBUG": slog.LevelDebug, "info": slog.LevelInfo, "Warn": slog.LevelWarn, "WARNING": slog.LevelWarn, "error": slog.LevelError} {
		c, err := Build(map[string]string{"log.level": in})
		if err != nil || c.LogLevel != want {
			t.Errorf("log.level=%s: %v %v", in, c.LogLevel, err)
		}
	}
}

func TestBrokerIDAlias(t *testing.T) {
	c, err := Build(map[string]string{"broker.id": "5"})
	if err != nil || c.NodeID != 5 || c.Raw["node.id"] != "5" {
		t.Errorf("broker.id alias: %v %v", c, err)
	}
	if _, err := Build(map[string]string{"broker.id": "5", "node.id": "5"}); err != nil {
		t.Error(err)
	}
}

func TestParseServerArgs(t *testing.T) {
	file := writeFile(t, "log.dirs=/from/file\n")
	c, err := ParseServerArgs([]string{file, "--override", "num.partitions=3", "--data-dir", "/a,/b",
		"--listeners", "PLAINTEXT://:19092", "--advertised-listeners", "PLAINTEXT://h:19092",
		"--replication-factor", "3", "--controller-quorum-voters", "1@h:9093", "--controller-listener", ":9093",
		"--metrics-listener", ":9100", "--num-partitions", "6", "--node-id", "1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.LogDirs, ",") != "/a,/b" || c.NumPartitions != 6 || c.DefaultReplicationFactor != 3 ||
		c.Listeners[0].Port != 19092 || c.AdvertisedListeners[0].Host != "h" || c.ControllerListener != ":9093" ||
		c.HTTPListener != ":9100" || c.ControllerQuorumVoters[0].ID != 1 {
		t.Errorf("%+v", c)
	}

	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--foo"}, nil, "flag provided but not defined: -foo\nRun 'moldau server -h' for the flags; any config key can be set with --override key=value"},
		{[]string{"--log.retention.ms=5"}, nil, "flag provided but not defined: -log.retention.ms\nlog.retention.ms is a config key, not a flag: use --override log.retention.ms=VALUE"},
		{[]string{"--override", "novalue"}, nil, "invalid value \"novalue\" for flag -override: \"novalue\" is not key=value\nRun 'moldau server -h' for the flags; any config key can be set with --override key=value"},
		{[]string{"a.properties", "b.properties"}, nil, `unexpected arguments ["b.properties"]: give one properties file, and set keys with --override key=value`},
		{[]string{"--config", "a.properties", "b.properties"}, nil, "properties file given twice (--config a.properties and b.properties): give one"},
		{[]string{"--node-id", "x"}, nil, `config: node.id: "x" is not an integer (from flag --node-id)`},
		{[]string{"--override", "log.segment.bytes=abc"}, nil, `config: log.segment.bytes: "abc" is not an integer (from flag --override log.segment.bytes=abc)`},
		{nil, []string{"KAFKA_LOG_SEGMENT_BYTES=abc"}, `config: log.segment.bytes: "abc" is not an integer (from environment variable KAFKA_LOG_SEGMENT_BYTES)`},
		{[]string{"--config", file, "--override", "log.dirs="}, nil, ""},
	}
	for _, tt := range tests {
		_, err := ParseServerArgs(tt.args, tt.env)
		if got := errText(err); got != tt.want {
			t.Errorf("ParseServerArgs(%q, %q):\n got %s\nwant %s", tt.args, tt.env, got, tt.want)
		}
	}

	bad := writeFile(t, "num.partitions=zero\n")
	_, err = ParseServerArgs([]string{"--config", bad}, nil)
	if want := `config: num.partitions: "zero" is not an integer (from ` + bad + `)`; errText(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = ParseServerArgs([]string{"--config", filepath.Join(t.TempDir(), "none")}, nil)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestServerEnvWarnings: environment variables that name no broker key never stop the server;
// each is reported once, naming the variable and the key it was taken for, and has no effect.
// MOLDAU_BOOTSTRAP (the client commands' variable) is skipped without a word. Keys in a file or on
// the command line stay strict (TestParseServerArgs).
func TestServerEnvWarnings(t *testing.T) {
	env := []string{
		"MOLDAU_BOOTSTRAP=127.0.0.1:9092",
		"MOLDAU_SOMETHING_ELSE=1",
		"KAFKA_LOG_RETENSION_MS=1",
		"KAFKA_CREATE_TOPICS=orders:3:1",
		"KAFKA_ZOOKEEPER_CONNECT=zookeeper:2181",
		"KAFKA_ADVERTISED_HOST_NAME=broker",
		"KAFKA_CFG_NODE_ID=7",
		"KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT", // a broker key now: used
		"KAFKA_NUM_IO_THREADS=8",                     // a Kafka key without effect
		"KAFKA_NUM_PARTITIONS=5",                     // a broker key: used
		"KAFKA_NODE_ID=3",                            // Confluent/Apache image convention: used
		"PATH=/usr/bin",
	}
	c, err := ParseServerArgs(nil, env)
	if err != nil {
		t.Fatalf("ParseServerArgs with unknown variables: %v", err)
	}
	if c.NumPartitions != 5 || c.NodeID != 3 {
		t.Errorf("NumPartitions, NodeID = %d, %d; want 5, 3 from KAFKA_NUM_PARTITIONS and KAFKA_NODE_ID", c.NumPartitions, c.NodeID)
	}
	if c.LogRetentionMs != 604800000 {
		t.Errorf("LogRetentionMs = %d: the misspelt variable had an effect", c.LogRetentionMs)
	}
	want := []string{
		`environment variable KAFKA_ADVERTISED_HOST_NAME ignored: advertised.host.name was removed from Kafka: set KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://HOST:PORT`,
		`environment variable KAFKA_CFG_NODE_ID ignored: bitnami/kafka's spelling; Moldau reads the Confluent/Apache image convention: rename it to KAFKA_NODE_ID`,
		`environment variable KAFKA_CREATE_TOPICS ignored: wurstmeister/kafka's topic list is not read by Moldau: create topics with 'moldau topic create' or 'kafka-topics --create', or let auto.create.topics.enable create them on first use`,
		`environment variable KAFKA_LOG_RETENSION_MS (taken for config key "log.retension.ms") ignored: not a Moldau config key (did you mean "log.retention.ms"?)`,
		`environment variable KAFKA_NUM_IO_THREADS (taken for config key "num.io.threads") ignored: a Kafka key that has no effect in Moldau`,
		`environment variable KAFKA_ZOOKEEPER_CONNECT ignored: Moldau needs no ZooKeeper (its metadata quorum is built in): remove it`,
		`environment variable MOLDAU_SOMETHING_ELSE (taken for config key "something.else") ignored: not a Moldau config key`,
	}
	var got []string
	for _, w := range c.EnvWarnings {
		got = append(got, w.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("EnvWarnings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.Ignored) != 0 {
		t.Errorf("Ignored = %v: variables are reported in EnvWarnings, by variable", c.Ignored)
	}

	// A known key with a bad value from the environment is still an error: the variable was meant
	// for the broker.
	if _, err := ParseServerArgs(nil, []string{"KAFKA_NUM_PARTITIONS=zero"}); err == nil {
		t.Error("KAFKA_NUM_PARTITIONS=zero: no error")
	}
	// The same unknown key in a file or an --override is an error.
	file := writeFile(t, "log.retension.ms=1\n")
	for _, args := range [][]string{{"--config", file}, {"--override", "log.retension.ms=1"}} {
		if _, err := ParseServerArgs(args, nil); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("ParseServerArgs(%q) = %v, want an unknown key error", args, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestServerHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		_, err := ParseServerArgs([]string{arg}, nil)
		var he *HelpError
		if !errors.Is(err, flag.ErrHelp) || !errors.As(err, &he) {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"-override key=value", "-data-dir", "-node-id", "log.retention.ms", "metrics.listener", "Config keys"} {
			if !strings.Contains(he.Usage, want) {
				t.Errorf("%s: usage lacks %q", arg, want)
			}
		}
	}
}

func TestWithDynamic(t *testing.T) {
	c, err := Build(map[string]string{"log.retention.hours": "1", "num.partitions": "3"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.WithDynamicBroker(map[string]string{"log.retention.ms": "1000", "message.max.bytes": "2000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.LogRetentionMs != 1000 || d.MessageMaxBytes != 2000 || d.NumPartitions != 3 ||
		d.Sources["log.retention.ms"] != SourceDynamic || d.Sources["num.partitions"] != SourceStatic {
		t.Errorf("%+v", d)
	}
	if c.LogRetentionMs != 3_600_000 {
		t.Errorf("WithDynamicBroker changed the original")
	}
	if d2, err := d.WithDynamicBroker(map[string]string{"log.retention.ms": ""}, nil); err != nil || d2.LogRetentionMs != 1000 {
		t.Errorf("empty dynamic value: %v %v", d2, err)
	}
	if d3, err := c.WithDynamicBroker(map[string]string{"log.retention.ms": ""}, nil); err != nil || d3.LogRetentionMs != 3_600_000 {
		t.Errorf("empty dynamic value over static: %v %v", d3, err)
	}
	if SourceDynamic.KafkaConfigSource() != 3 || SourceFile.KafkaConfigSource() != 4 || SourceDefault.KafkaConfigSource() != 5 {
		t.Error("KafkaConfigSource")
	}
	_, err = c.WithDynamicBroker(map[string]string{"num.partitions": "4"}, nil)
	want := `config: num.partitions: "4" cannot be changed at runtime: set it in server.properties and restart`
	if errText(err) != want || !errors.Is(err, ErrReadOnly) {
		t.Errorf("got %v", err)
	}
}

// TestListenerNameMustBeMapped: as in Kafka, a client listener whose name
// listener.security.protocol.map does not define stops the start, saying what to add; a
// controller listener missing from the map is PLAINTEXT.
func TestListenerNameMustBeMapped(t *testing.T) {
	_, err := Build(map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,DOCKER://127.0.0.1:29092"})
	if err == nil || !strings.Contains(err.Error(), "add DOCKER:PLAINTEXT to listener.security.protocol.map") {
		t.Errorf("unmapped listener DOCKER: err = %v, want it to say what to add", err)
	}
	c, err := Build(map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9092,CTRL://127.0.0.1:9093", "controller.listener.names": "CTRL"})
	if err != nil {
		t.Fatalf("unmapped controller listener: %v", err)
	}
	if c.ControllerListener != "127.0.0.1:9093" {
		t.Errorf("ControllerListener = %q", c.ControllerListener)
	}
}
