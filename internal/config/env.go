package config

import (
	"fmt"
	"sort"
	"strings"
)

// IgnoredEnvVars are KAFKA_/MOLDAU_ environment variables that configure the JVM, logging or
// tooling rather than the broker (set by Kafka's scripts and Docker images), or Moldau's client
// commands (MOLDAU_BOOTSTRAP). FromEnv skips them silently.
var IgnoredEnvVars = []string{
	"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
	"KAFKA_LOG4J_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL",
	"KAFKA_JMX_OPTS", "KAFKA_JMX_PORT", "KAFKA_JMX_HOSTNAME", "KAFKA_DEBUG", "KAFKA_DEBUG_SUSPEND_FLAG",
	"KAFKA_HOME", "KAFKA_VERSION", "KAFKA_CLASSPATH", "KAFKA_LOG_DIR_PATH", "KAFKA_MODE",
	"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BROKERS",
	"MOLDAU_BOOTSTRAP", "MOLDAU_BROKERS", "MOLDAU_BOOTSTRAP_SERVERS",
}

// EnvWarning is an environment variable that looked like configuration but was ignored. The
// server logs each one once at start; none of them stops it.
type EnvWarning struct {
	Var    string // the variable's name, e.g. MOLDAU_FOO
	Key    string // the config key it was taken for ("foo"); "" for other images' conventions
	Reason string // why it was ignored, and what to do instead when that is simple
}

func (w EnvWarning) String() string {
	if w.Key == "" {
		return fmt.Sprintf("environment variable %s ignored: %s", w.Var, w.Reason)
	}
	return fmt.Sprintf("environment variable %s (taken for config key %q) ignored: %s", w.Var, w.Key, w.Reason)
}

// otherImageVars are variables of other Kafka Docker images (wurstmeister/kafka, bitnami/kafka,
// confluentinc/cp-kafka, apache/kafka) that are not config keys there either, or that name keys
// Kafka removed; a compose file copied from one of them gets a hint rather than silence.
// Exact names; otherImagePrefixes covers families.
var otherImageVars = map[string]string{
	"KAFKA_CREATE_TOPICS":            "wurstmeister/kafka's topic list is not read by Moldau: create topics with 'moldau topic create' or 'kafka-topics --create', or let auto.create.topics.enable create them on first use",
	"KAFKA_CREATE_TOPICS_SEPARATOR":  "wurstmeister/kafka's topic list is not read by Moldau",
	"KAFKA_ADVERTISED_HOST_NAME":     "advertised.host.name was removed from Kafka: set KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://HOST:PORT",
	"KAFKA_ADVERTISED_PORT":          "advertised.port was removed from Kafka: set KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://HOST:PORT",
	"KAFKA_ADVERTISED_PROTOCOL_NAME": "a wurstmeister/kafka setting: name the listener in KAFKA_ADVERTISED_LISTENERS",
	"KAFKA_HOST_NAME":                "host.name was removed from Kafka: set KAFKA_LISTENERS=PLAINTEXT://HOST:PORT",
	"KAFKA_PORT":                     "port was removed from Kafka: set KAFKA_LISTENERS=PLAINTEXT://:PORT",
	"KAFKA_PROTOCOL_NAME":            "a wurstmeister/kafka setting: name the listener in KAFKA_LISTENERS",
	"KAFKA_ENABLE_KRAFT":             "a bitnami/kafka setting: Moldau always runs without ZooKeeper",
	"KAFKA_KRAFT_CLUSTER_ID":         "a bitnami/kafka setting: set CLUSTER_ID (or KAFKA_CLUSTER_ID) instead",
	"KAFKA_CONF_FILE":                "a bitnami/kafka setting: give the file with 'moldau server --config FILE'",
	"KAFKA_MOUNTED_CONF_DIR":         "a bitnami/kafka setting: give the file with 'moldau server --config FILE'",
	"KAFKA_SKIP_KRAFT_STORAGE_INIT":  "a bitnami/kafka setting: Moldau formats its data dir itself",
	"KAFKA_CLIENT_USERS":             "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_CLIENT_PASSWORDS":         "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_INTER_BROKER_USER":        "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_INTER_BROKER_PASSWORD":    "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_CONTROLLER_USER":          "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_CONTROLLER_PASSWORD":      "a bitnami/kafka SASL setting: Moldau has no SASL authentication yet",
	"KAFKA_CERTIFICATE_PASSWORD":     "a bitnami/kafka TLS setting: Moldau has no TLS listeners yet",
	"KAFKA_TLS_TYPE":                 "a bitnami/kafka TLS setting: Moldau has no TLS listeners yet",
	"KAFKA_TLS_CLIENT_AUTH":          "a bitnami/kafka TLS setting: Moldau has no TLS listeners yet",
}

// otherImagePrefixes are families of other images' variables, with their hint. KAFKA_CFG_X is
// bitnami's spelling of KAFKA_X; KAFKA_ZOOKEEPER_* configure a ZooKeeper Moldau does not need.
var otherImagePrefixes = []struct{ prefix, reason string }{
	{"KAFKA_CFG_", "bitnami/kafka's spelling; Moldau reads the Confluent/Apache image convention: rename it to %s"},
	{"KAFKA_ZOOKEEPER_", "Moldau needs no ZooKeeper (its metadata quorum is built in): remove it"},
}

// FromEnv maps environment variables ("NAME=value") to config keys, following the Confluent and
// Apache Kafka Docker images: KAFKA_ADVERTISED_LISTENERS -> advertised.listeners. The prefix
// KAFKA_ or MOLDAU_ is stripped, the rest lower-cased, "___" becomes '-', "__" becomes '_' and '_'
// becomes '.'. CLUSTER_ID (Kafka's image) sets cluster.id. Variables in IgnoredEnvVars are skipped.
// When both KAFKA_X and MOLDAU_X are set, MOLDAU_X wins.
//
// FromEnv maps every variable, broker key or not; a server start (ParseServerArgs) keeps only
// those that name a broker key and warns about the others (EnvWarning).
func FromEnv(environ []string) map[string]string {
	keys := map[string]string{}
	for _, v := range envVars(environ) {
		keys[v.key] = v.value
	}
	return keys
}

// envVar is one configuration-like environment variable.
type envVar struct{ name, key, value string }

// envVars returns the KAFKA_*, MOLDAU_* and CLUSTER_ID variables not in IgnoredEnvVars, in the
// order they apply: KAFKA_* and CLUSTER_ID by name, then MOLDAU_* by name (so MOLDAU_X wins).
func envVars(environ []string) []envVar {
	skip := map[string]bool{}
	for _, v := range IgnoredEnvVars {
		skip[v] = true
	}
	var kafka, moldau []envVar
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || skip[name] {
			continue
		}
		v := envVar{name: name, key: EnvToKey(name), value: value}
		switch {
		case name == "CLUSTER_ID":
			kafka = append(kafka, v)
		case strings.HasPrefix(name, "KAFKA_") && len(name) > len("KAFKA_"):
			kafka = append(kafka, v)
		case strings.HasPrefix(name, "MOLDAU_") && len(name) > len("MOLDAU_"):
			moldau = append(moldau, v)
		}
	}
	for _, list := range [][]envVar{kafka, moldau} {
		sort.SliceStable(list, func(i, j int) bool { return list[i].name < list[j].name })
	}
	return append(kafka, moldau...)
}

// serverEnv is the environment layer of a server start: the variables that name broker keys,
// with the variable behind each key, and one warning for every other variable. A variable of
// another image (otherImageVars, otherImagePrefixes) gets that image's hint; one naming a Kafka
// key Moldau ignores says so; anything else is not a config key (with a "did you mean" when one is
// close). Unknown keys in a file or on the command line stay errors: only the environment, which
// carries variables for other programs too, is lenient.
func serverEnv(environ []string) (keys, origins map[string]string, warnings []EnvWarning) {
	keys, origins = map[string]string{}, map[string]string{}
	for _, v := range envVars(environ) {
		if reason, ok := otherImageReason(v.name); ok {
			warnings = append(warnings, EnvWarning{Var: v.name, Reason: reason})
			continue
		}
		key := strings.TrimSpace(v.key)
		switch {
		case brokerIndex[key] != nil:
			keys[v.key], origins[v.key] = v.value, "environment variable "+v.name
		case isIgnored(key):
			warnings = append(warnings, EnvWarning{Var: v.name, Key: key, Reason: "a Kafka key that has no effect in Moldau"})
		default:
			reason := "not a Moldau config key"
			if u := unknownKeyError(key, "", false); u.Reason != "" {
				reason += u.Reason
			}
			warnings = append(warnings, EnvWarning{Var: v.name, Key: key, Reason: reason})
		}
	}
	sort.Slice(warnings, func(i, j int) bool { return warnings[i].Var < warnings[j].Var })
	return keys, origins, warnings
}

// otherImageReason says why a variable of another Kafka image is not used.
func otherImageReason(name string) (string, bool) {
	if r, ok := otherImageVars[name]; ok {
		return r, true
	}
	for _, p := range otherImagePrefixes {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok {
			if strings.Contains(p.reason, "%s") {
				return fmt.Sprintf(p.reason, "KAFKA_"+rest), true
			}
			return p.reason, true
		}
	}
	return "", false
}

// EnvToKey maps one variable name to a config key (see FromEnv).
func EnvToKey(name string) string {
	if name == "CLUSTER_ID" {
		return "cluster.id"
	}
	rest := strings.TrimPrefix(name, "KAFKA_")
	if rest == name {
		rest = strings.TrimPrefix(name, "MOLDAU_")
	}
	var b strings.Builder
	for i := 0; i < len(rest); {
		switch {
		case strings.HasPrefix(rest[i:], "___"):
			b.WriteByte('-')
			i += 3
		case strings.HasPrefix(rest[i:], "__"):
			b.WriteByte('_')
			i += 2
		case rest[i] == '_':
			b.WriteByte('.')
			i++
		default:
			b.WriteString(strings.ToLower(rest[i : i+1]))
			i++
		}
	}
	return b.String()
}
