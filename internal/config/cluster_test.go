package config

import (
	"errors"
	"strings"
	"testing"
)

// The testdata/kafka4-*.properties files are Apache Kafka's shipped config/server.properties,
// config/broker.properties and config/controller.properties of Kafka 4 (config/kraft/ on the
// 3.9 line: reconfig-server.properties, broker.properties, controller.properties), verbatim.

func loadKafkaFile(t *testing.T, name string) *Config {
	t.Helper()
	props, err := ReadProperties("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build(props)
	if err != nil {
		t.Fatalf("Kafka's %s must load: %v", name, err)
	}
	return c
}

// TestKafka4ServerProperties: Kafka 4's server.properties (combined mode, only
// controller.quorum.bootstrap.servers, CONTROLLER in advertised.listeners) makes this node the
// single voter of its quorum, reached at its advertised controller endpoint.
func TestKafka4ServerProperties(t *testing.T) {
	c := loadKafkaFile(t, "kafka4-server.properties")
	if !c.IsBroker || !c.IsController || strings.Join(c.ProcessRoles, ",") != "broker,controller" {
		t.Errorf("roles %v broker=%v controller=%v", c.ProcessRoles, c.IsBroker, c.IsController)
	}
	if c.NodeID != 1 || len(c.Listeners) != 1 || c.Listeners[0].String() != "PLAINTEXT://:9092" {
		t.Errorf("node %d, listeners %v", c.NodeID, c.Listeners)
	}
	if len(c.AdvertisedListeners) != 1 || c.AdvertisedListeners[0].String() != "PLAINTEXT://localhost:9092" {
		t.Errorf("advertised %v", c.AdvertisedListeners)
	}
	if got := c.Raw["advertised.listeners"]; got != "PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093" {
		t.Errorf("Raw advertised.listeners = %q", got)
	}
	if c.ControllerListener != ":9093" || c.ControllerAdvertisedListener != "localhost:9093" {
		t.Errorf("controller listener %q advertised %q, want :9093 and localhost:9093", c.ControllerListener, c.ControllerAdvertisedListener)
	}
	if len(c.ControllerQuorumVoters) != 1 || c.ControllerQuorumVoters[0].String() != "1@localhost:9093" {
		t.Errorf("voters %v, want this node alone at its bootstrap server", c.ControllerQuorumVoters)
	}
	if strings.Join(c.ControllerQuorumBootstrapServers, ",") != "localhost:9093" {
		t.Errorf("bootstrap servers %v", c.ControllerQuorumBootstrapServers)
	}
	if _, _, ok := c.Lookup("controller.quorum.voters"); ok {
		t.Errorf("controller.quorum.voters has a value in Raw: it was not set")
	}
	if strings.Join(c.ControllerListenerNames, ",") != "CONTROLLER" || c.ListenerSecurityProtocols["CONTROLLER"] != "PLAINTEXT" {
		t.Errorf("controller names %v, protocols %v", c.ControllerListenerNames, c.ListenerSecurityProtocols)
	}
	if c.InterBrokerListener != "PLAINTEXT" || c.InterBrokerEndpoint.String() != "PLAINTEXT://localhost:9092" {
		t.Errorf("inter-broker %q %s", c.InterBrokerListener, c.InterBrokerEndpoint)
	}
	if !c.Standalone() {
		t.Error("a single voter is Standalone")
	}
	if c.OffsetsTopicReplicationFactor != 1 || !c.OffsetsTopicReplicationFactorSet ||
		c.TransactionStateLogReplicationFactor != 1 || !c.TransactionStateLogReplicationFactorSet || c.TransactionStateLogMinISR != 1 {
		t.Errorf("internal topics: offsets rf %d (set %v), txn rf %d (set %v), txn min isr %d",
			c.OffsetsTopicReplicationFactor, c.OffsetsTopicReplicationFactorSet,
			c.TransactionStateLogReplicationFactor, c.TransactionStateLogReplicationFactorSet, c.TransactionStateLogMinISR)
	}
	if c.LogDirs[0] != "/tmp/kraft-combined-logs" {
		t.Errorf("log dirs %v", c.LogDirs)
	}
	want := "num.io.threads num.network.threads num.recovery.threads.per.data.dir socket.receive.buffer.bytes socket.send.buffer.bytes"
	if got := strings.Join(c.Ignored, " "); got != want {
		t.Errorf("Ignored = %s, want %s", got, want)
	}
}

// TestKafka4BrokerProperties: Kafka's broker-only file joins through the bootstrap servers.
func TestKafka4BrokerProperties(t *testing.T) {
	c := loadKafkaFile(t, "kafka4-broker.properties")
	if !c.IsBroker || c.IsController || c.NodeID != 2 {
		t.Errorf("node %d broker=%v controller=%v", c.NodeID, c.IsBroker, c.IsController)
	}
	if c.ControllerListener != "" || c.ControllerAdvertisedListener != "" || len(c.ControllerQuorumVoters) != 0 {
		t.Errorf("a broker-only node runs no raft: listener %q advertised %q voters %v", c.ControllerListener, c.ControllerAdvertisedListener, c.ControllerQuorumVoters)
	}
	if strings.Join(c.ControllerQuorumBootstrapServers, ",") != "localhost:9093" || c.Standalone() {
		t.Errorf("bootstrap %v standalone %v", c.ControllerQuorumBootstrapServers, c.Standalone())
	}
	if c.InterBrokerEndpoint.String() != "PLAINTEXT://localhost:9092" {
		t.Errorf("inter-broker endpoint %s", c.InterBrokerEndpoint)
	}
}

// TestKafka4ControllerProperties: a controller-only node has no client listener.
func TestKafka4ControllerProperties(t *testing.T) {
	c := loadKafkaFile(t, "kafka4-controller.properties")
	if c.IsBroker || !c.IsController {
		t.Errorf("broker=%v controller=%v", c.IsBroker, c.IsController)
	}
	if len(c.Listeners) != 0 || len(c.AdvertisedListeners) != 0 || c.InterBrokerListener != "" {
		t.Errorf("listeners %v advertised %v inter-broker %q", c.Listeners, c.AdvertisedListeners, c.InterBrokerListener)
	}
	if c.ControllerListener != ":9093" || c.ControllerAdvertisedListener != "localhost:9093" ||
		len(c.ControllerQuorumVoters) != 1 || c.ControllerQuorumVoters[0].String() != "1@localhost:9093" {
		t.Errorf("controller %q / %q voters %v", c.ControllerListener, c.ControllerAdvertisedListener, c.ControllerQuorumVoters)
	}
}

// TestClusterConfigs: the three-node example, a broker-only node joining it, and the
// bootstrap-server forms Moldau accepts.
func TestClusterConfigs(t *testing.T) {
	voters := "1@127.0.0.1:9093,2@127.0.0.1:19093,3@127.0.0.1:29093"
	c, err := Build(map[string]string{
		"node.id": "2", "process.roles": "broker,controller",
		"listeners":                 "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
		"advertised.listeners":      "PLAINTEXT://127.0.0.1:19092",
		"controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters, "broker.rack": "r2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ControllerListener != "127.0.0.1:19093" || c.ControllerAdvertisedListener != "127.0.0.1:19093" || c.Standalone() ||
		c.InterBrokerEndpoint.String() != "PLAINTEXT://127.0.0.1:19092" || c.Rack != "r2" {
		t.Errorf("node 2: controller %q/%q standalone %v inter-broker %s rack %q", c.ControllerListener, c.ControllerAdvertisedListener, c.Standalone(), c.InterBrokerEndpoint, c.Rack)
	}
	if c.OffsetsTopicReplicationFactor != 3 || c.OffsetsTopicReplicationFactorSet || c.TransactionStateLogReplicationFactor != 3 {
		t.Errorf("a node of a 3-voter quorum uses Kafka's default 3: offsets %d (set %v), txn %d", c.OffsetsTopicReplicationFactor, c.OffsetsTopicReplicationFactorSet, c.TransactionStateLogReplicationFactor)
	}
	if v, src, _ := c.Lookup("offsets.topic.replication.factor"); v != "3" || src != SourceDefault {
		t.Errorf("offsets.topic.replication.factor = %q from %v", v, src)
	}

	c, err = Build(map[string]string{
		"node.id": "4", "process.roles": "broker", "listeners": "INTERNAL://127.0.0.1:39092,EXTERNAL://127.0.0.1:39094",
		"listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name":     "internal", "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.IsController || c.ControllerListener != "" || len(c.ControllerQuorumVoters) != 3 ||
		c.InterBrokerListener != "INTERNAL" || c.InterBrokerEndpoint.Addr() != "127.0.0.1:39092" {
		t.Errorf("broker-only node: controller %v %q voters %v inter-broker %q %s", c.IsController, c.ControllerListener, c.ControllerQuorumVoters, c.InterBrokerListener, c.InterBrokerEndpoint)
	}
	if v, _, _ := c.Lookup("inter.broker.listener.name"); v != "INTERNAL" {
		t.Errorf("Raw inter.broker.listener.name = %q", v)
	}

	// Bootstrap servers naming this node's controller listener (bound to all interfaces).
	for _, bs := range []string{"localhost:9093", "127.0.0.1:9093", "ctl.example:9093"} {
		set := map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
			"controller.quorum.bootstrap.servers": bs}
		c, err := buildWith([]layer{{source: SourceStatic, values: set}}, func() (string, error) { return "ctl.example", nil })
		if err != nil {
			t.Errorf("bootstrap %s: %v", bs, err)
			continue
		}
		if len(c.ControllerQuorumVoters) != 1 || c.ControllerQuorumVoters[0].String() != "1@"+bs || c.ControllerAdvertisedListener != bs {
			t.Errorf("bootstrap %s: voters %v advertised %q", bs, c.ControllerQuorumVoters, c.ControllerAdvertisedListener)
		}
	}
}

func TestClusterConfigErrors(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"process.roles": "broker", "controller.listener.names": "CONTROLLER"},
			`config: process.roles: "broker" needs the metadata quorum when it is broker: either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers`},
		{map[string]string{"process.roles": "broker", "controller.quorum.voters": "1@h:9093", "controller.listener.names": "CONTROLLER"},
			`config: controller.quorum.voters: "1@h:9093" lists this node: process.roles=broker, so node.id 1 must not be among voters 1 (a broker-only node is not a voter)`},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": "1@h:9093"},
			`config: controller.listener.names: "" must contain at least one value when process.roles=broker: the name of the listener the controllers are reached on (e.g. CONTROLLER)`},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": "1@h:9093", "controller.listener.names": "CONTROLLER",
			"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"},
			`config: listeners: "PLAINTEXT://:9092,CONTROLLER://:9093" must not contain a controller listener when process.roles=broker: CONTROLLER is named in controller.listener.names`},
		{map[string]string{"process.roles": "broker", "node.id": "4", "controller.quorum.voters": "1@h:9093", "controller.listener.names": "CTL",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT"},
			`config: controller.listener.names: "CTL" names controller listener CTL, which listener.security.protocol.map does not define (an explicit security mapping for each controller listener is required when listener.security.protocol.map is set): add CTL:PLAINTEXT to it`},
		{map[string]string{"process.roles": "controller", "controller.quorum.voters": "1@h:9093", "controller.listener.names": "CONTROLLER",
			"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"},
			`config: listeners: "PLAINTEXT://:9092,CONTROLLER://:9093" must only contain controller listeners from controller.listener.names when process.roles=controller: PLAINTEXT is not one`},
		{map[string]string{"process.roles": "controller", "controller.quorum.voters": "1@h:9093", "listeners": "CONTROLLER://:9093"},
			`config: listeners: "CONTROLLER://:9093" has listener CONTROLLER, which listener.security.protocol.map does not define: add CONTROLLER:PLAINTEXT to listener.security.protocol.map`},
		{map[string]string{"controller.listener.names": "CTL", "controller.quorum.voters": "1@h:9093"},
			`config: controller.listener.names: "CTL" must only contain values appearing in listeners when process.roles contains controller: CTL is not a listener`},
		{map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
			"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"},
			`config: listeners: "PLAINTEXT://:9092,CONTROLLER://:9093" is not supported yet: listener CONTROLLER uses security protocol SSL (listener.security.protocol.map), Moldau serves PLAINTEXT only`},
		{map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
			"advertised.listeners": "PLAINTEXT://h:9092,CONTROLLER://0.0.0.0:9093"},
			`config: advertised.listeners: "PLAINTEXT://h:9092,CONTROLLER://0.0.0.0:9093" advertises CONTROLLER://0.0.0.0:9093, a wildcard address other nodes cannot connect to: use a host name or IP`},
		{map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
			"controller.quorum.bootstrap.servers": "a:9093,b:9093,c:9093"},
			`config: controller.quorum.bootstrap.servers: "a:9093,b:9093,c:9093" lists controllers whose node ids Moldau cannot know: Moldau runs a static voter set (dynamic quorums, KIP-853, are not supported yet), so list the voters in controller.quorum.voters=id@host:port,... on every node; bootstrap servers alone are accepted for a single controller that names its own controller endpoint (`},
		{map[string]string{"controller.quorum.bootstrap.servers": "a"},
			`config: controller.quorum.bootstrap.servers: "a" is not valid: "a": missing port in address (expected host:port,...)`},
		{map[string]string{"controller.quorum.bootstrap.servers": ":9093"},
			`config: controller.quorum.bootstrap.servers: ":9093" is not valid: ":9093": a controller needs a host and a non-zero port (expected host:port,...)`},
		{map[string]string{"inter.broker.listener.name": "INTERNAL"},
			`config: inter.broker.listener.name: "INTERNAL" names listener INTERNAL, which listener.security.protocol.map does not define`},
		{map[string]string{"inter.broker.listener.name": "SSL"},
			`config: inter.broker.listener.name: "SSL" must be a listener name defined in advertised.listeners: the valid options based on the configured listeners are PLAINTEXT`},
		{map[string]string{"inter.broker.listener.name": "PLAINTEXT", "security.inter.broker.protocol": "PLAINTEXT"},
			`config: inter.broker.listener.name: "PLAINTEXT" cannot be set together with security.inter.broker.protocol: only one of them should be set`},
		{map[string]string{"security.inter.broker.protocol": "SSL"},
			`config: security.inter.broker.protocol: "SSL" is not supported yet: Moldau serves PLAINTEXT only`},
		{map[string]string{"inter.broker.listener.name": "A,B"},
			`config: inter.broker.listener.name: "A,B" is not valid: expected one listener name (letters, digits, '_' and '-')`},
		// Without PLAINTEXT, a node in a cluster must name its inter-broker listener (Kafka's rule);
		// a node alone uses its first listener (TestInterBrokerListenerDefault).
		{map[string]string{"listeners": "INTERNAL://:9092,EXTERNAL://:9094", "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
			"controller.quorum.voters": "1@a:9093,2@b:9093"},
			`config: inter.broker.listener.name: "PLAINTEXT" (the default, from security.inter.broker.protocol) must be a listener name defined in advertised.listeners: the valid options based on the configured listeners are INTERNAL,EXTERNAL; set inter.broker.listener.name`},
		{map[string]string{"replica.fetch.wait.max.ms": "40000"},
			`config: replica.fetch.wait.max.ms: "40000" must not exceed replica.socket.timeout.ms (30000): replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts`},
		{map[string]string{"replica.fetch.wait.max.ms": "600", "replica.lag.time.max.ms": "500"},
			`config: replica.fetch.wait.max.ms: "600" must not exceed replica.lag.time.max.ms (500): replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent frequent changes in ISR`},
		{map[string]string{"broker.heartbeat.interval.ms": "9000"},
			`config: broker.heartbeat.interval.ms: "9000" must be less than broker.session.timeout.ms (9000), or every broker is fenced between two heartbeats`},
		{map[string]string{"broker.session.timeout.ms": "0"}, `config: broker.session.timeout.ms: "0" is out of range: must be at least 1`},
		{map[string]string{"replica.lag.time.max.ms": "x"}, `config: replica.lag.time.max.ms: "x" is not an integer`},
		{map[string]string{"controlled.shutdown.enable": "maybe"}, `config: controlled.shutdown.enable: "maybe" is not a boolean: expected true or false`},
		{map[string]string{"transaction.state.log.replication.factor": "0"}, `config: transaction.state.log.replication.factor: "0" is out of range: must be between 1 and 32767`},
	}
	for _, tt := range tests {
		_, err := Build(tt.set)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Build(%v):\n got %v\nwant %s", tt.set, err, tt.want)
		}
	}
}

// TestInterBrokerListenerDefault: the listener named PLAINTEXT, as Kafka derives it from
// security.inter.broker.protocol; on a node alone, its first listener when none is PLAINTEXT.
func TestInterBrokerListenerDefault(t *testing.T) {
	tests := []struct {
		set  map[string]string
		want string
	}{
		{nil, "PLAINTEXT://127.0.0.1:9092"},
		{map[string]string{"listeners": "EXTERNAL://127.0.0.1:9094,PLAINTEXT://127.0.0.1:9092", "listener.security.protocol.map": "EXTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT"}, "PLAINTEXT://127.0.0.1:9092"},
		{map[string]string{"listeners": "EXTERNAL://127.0.0.1:9094,INTERNAL://127.0.0.1:9092", "listener.security.protocol.map": "EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT"}, "EXTERNAL://127.0.0.1:9094"},
		{map[string]string{"listeners": "PLAINTEXT://:9092", "advertised.listeners": "PLAINTEXT://broker1:9092"}, "PLAINTEXT://broker1:9092"},
		{map[string]string{"security.inter.broker.protocol": "plaintext"}, "PLAINTEXT://127.0.0.1:9092"},
	}
	for _, tt := range tests {
		c, err := Build(tt.set)
		if err != nil {
			t.Errorf("%v: %v", tt.set, err)
			continue
		}
		if c.InterBrokerEndpoint.String() != tt.want || c.InterBrokerListener != c.InterBrokerEndpoint.Name {
			t.Errorf("%v: inter-broker %q %s, want %s", tt.set, c.InterBrokerListener, c.InterBrokerEndpoint, tt.want)
		}
	}
}

// TestClusterKeyDefaults: Kafka's defaults of the broker lifecycle and replication keys, and
// the replication factor of the internal topics on a node alone.
func TestClusterKeyDefaults(t *testing.T) {
	c, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsBroker || !c.IsController || !c.Standalone() ||
		c.BrokerSessionTimeoutMs != 9000 || c.BrokerHeartbeatIntervalMs != 2000 || !c.ControlledShutdownEnable ||
		c.ReplicaLagTimeMaxMs != 30000 || c.ReplicaFetchWaitMaxMs != 500 || c.ReplicaFetchMinBytes != 1 ||
		c.ReplicaFetchMaxBytes != 1048576 || c.ReplicaFetchResponseMaxBytes != 10485760 ||
		c.ReplicaFetchBackoffMs != 1000 || c.ReplicaSocketTimeoutMs != 30000 || c.UncleanLeaderElectionEnable ||
		c.OffsetsTopicReplicationFactor != 1 || c.OffsetsTopicReplicationFactorSet ||
		c.TransactionStateLogReplicationFactor != 1 || c.TransactionStateLogMinISR != 2 || c.TransactionStateLogNumPartitions != 50 ||
		c.InterBrokerListener != "PLAINTEXT" || c.ControllerAdvertisedListener != "" {
		t.Errorf("defaults: %+v", c)
	}
	for key, want := range map[string]string{
		"broker.session.timeout.ms": "9000", "broker.heartbeat.interval.ms": "2000", "replica.lag.time.max.ms": "30000",
		"replica.fetch.wait.max.ms": "500", "replica.fetch.max.bytes": "1048576", "replica.fetch.backoff.ms": "1000",
		"controlled.shutdown.enable": "true", "unclean.leader.election.enable": "false", "min.insync.replicas": "1",
		"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "3",
		"default.replication.factor": "1", "process.roles": "broker,controller", "security.inter.broker.protocol": "PLAINTEXT",
		"inter.broker.listener.name": "PLAINTEXT",
	} {
		if v, _, ok := c.Lookup(key); !ok || v != want {
			t.Errorf("%s = %q (present %v), want %q", key, v, ok, want)
		}
		if _, ok := BrokerKey(key); !ok {
			t.Errorf("%s is not in the catalogue (DescribeConfigs lists the catalogue)", key)
		}
	}
	// Set explicitly on a node alone, the internal topics' factor is what was asked for.
	c, err = Build(map[string]string{"offsets.topic.replication.factor": "3", "transaction.state.log.replication.factor": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.OffsetsTopicReplicationFactor != 3 || !c.OffsetsTopicReplicationFactorSet || c.TransactionStateLogReplicationFactor != 2 {
		t.Errorf("explicit: offsets %d (set %v), txn %d", c.OffsetsTopicReplicationFactor, c.OffsetsTopicReplicationFactorSet, c.TransactionStateLogReplicationFactor)
	}
}

// TestClusterKeysFromEnv: the Docker images' KAFKA_* variables of the cluster keys configure a
// server.
func TestClusterKeysFromEnv(t *testing.T) {
	c, err := ParseServerArgs(nil, []string{
		"KAFKA_NODE_ID=5", "KAFKA_PROCESS_ROLES=broker",
		"KAFKA_LISTENERS=PLAINTEXT://127.0.0.1:9092", "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT", "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS=ctl:9093",
		"KAFKA_BROKER_RACK=rack-a", "KAFKA_BROKER_SESSION_TIMEOUT_MS=12000", "KAFKA_BROKER_HEARTBEAT_INTERVAL_MS=3000",
		"KAFKA_REPLICA_LAG_TIME_MAX_MS=10000", "KAFKA_REPLICA_FETCH_WAIT_MAX_MS=250", "KAFKA_REPLICA_FETCH_MAX_BYTES=2097152",
		"KAFKA_REPLICA_FETCH_BACKOFF_MS=100", "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE=true", "KAFKA_CONTROLLED_SHUTDOWN_ENABLE=false",
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=2", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR=2", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR=1",
		"KAFKA_MIN_INSYNC_REPLICAS=2", "KAFKA_DEFAULT_REPLICATION_FACTOR=3",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 5 || !c.IsBroker || c.IsController || c.Rack != "rack-a" || strings.Join(c.ControllerQuorumBootstrapServers, ",") != "ctl:9093" ||
		c.BrokerSessionTimeoutMs != 12000 || c.BrokerHeartbeatIntervalMs != 3000 || c.ReplicaLagTimeMaxMs != 10000 ||
		c.ReplicaFetchWaitMaxMs != 250 || c.ReplicaFetchMaxBytes != 2097152 || c.ReplicaFetchBackoffMs != 100 ||
		!c.UncleanLeaderElectionEnable || c.ControlledShutdownEnable || c.OffsetsTopicReplicationFactor != 2 ||
		c.TransactionStateLogReplicationFactor != 2 || c.TransactionStateLogMinISR != 1 || c.MinInsyncReplicas != 2 ||
		c.DefaultReplicationFactor != 3 || c.InterBrokerListener != "PLAINTEXT" || len(c.EnvWarnings) != 0 {
		t.Errorf("from env: %+v", c)
	}
	if _, src, _ := c.Lookup("broker.session.timeout.ms"); src != SourceEnv {
		t.Errorf("broker.session.timeout.ms source %v", src)
	}
}

// TestOneErrorPerCause: an unmapped controller listener is reported once, with listeners.
func TestOneErrorPerCause(t *testing.T) {
	_, err := Build(map[string]string{"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093", "controller.listener.names": "CONTROLLER",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT"})
	want := `config: listeners: "PLAINTEXT://:9092,CONTROLLER://:9093" has listener CONTROLLER, which listener.security.protocol.map does not define: add CONTROLLER:PLAINTEXT to listener.security.protocol.map`
	if err == nil || err.Error() != want {
		t.Errorf("Build: %v\nwant only %s", err, want)
	}
}
