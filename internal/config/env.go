package config

import (
	"sort"
	"strings"
)

// IgnoredEnvVars are KAFKA_/MOLDAU_ environment variables that configure the JVM, logging or
// tooling rather than the broker (set by Kafka's scripts and Docker images). FromEnv skips them.
var IgnoredEnvVars = []string{
	"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS",
	"KAFKA_LOG4J_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS", "KAFKA_TOOLS_LOG4J_LOGLEVEL",
	"KAFKA_JMX_OPTS", "KAFKA_JMX_PORT", "KAFKA_JMX_HOSTNAME", "KAFKA_DEBUG", "KAFKA_DEBUG_SUSPEND_FLAG",
	"KAFKA_HOME", "KAFKA_VERSION", "KAFKA_CLASSPATH", "KAFKA_LOG_DIR_PATH", "KAFKA_MODE",
	"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BROKERS",
	"MOLDAU_BROKERS", "MOLDAU_BOOTSTRAP_SERVERS", "MOLDAU_LOG_LEVEL",
}

// FromEnv maps environment variables ("NAME=value") to config keys, following the Confluent and
// Apache Kafka Docker images: KAFKA_ADVERTISED_LISTENERS -> advertised.listeners. The prefix
// KAFKA_ or MOLDAU_ is stripped, the rest lower-cased, "___" becomes '-', "__" becomes '_' and '_'
// becomes '.'. CLUSTER_ID (Kafka's image) sets cluster.id. Variables in IgnoredEnvVars are skipped.
// When both KAFKA_X and MOLDAU_X are set, MOLDAU_X wins.
func FromEnv(environ []string) map[string]string {
	m, _ := fromEnv(environ)
	return m
}

// fromEnv is FromEnv plus, for each key, the variable that set it.
func fromEnv(environ []string) (map[string]string, map[string]string) {
	skip := map[string]bool{}
	for _, v := range IgnoredEnvVars {
		skip[v] = true
	}
	type entry struct{ name, value string }
	var kafka, moldau []entry
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || skip[name] {
			continue
		}
		switch {
		case name == "CLUSTER_ID":
			kafka = append(kafka, entry{name, value})
		case strings.HasPrefix(name, "KAFKA_") && len(name) > len("KAFKA_"):
			kafka = append(kafka, entry{name, value})
		case strings.HasPrefix(name, "MOLDAU_") && len(name) > len("MOLDAU_"):
			moldau = append(moldau, entry{name, value})
		}
	}
	keys, origins := map[string]string{}, map[string]string{}
	for _, list := range [][]entry{kafka, moldau} {
		sort.SliceStable(list, func(i, j int) bool { return list[i].name < list[j].name })
		for _, e := range list {
			k := EnvToKey(e.name)
			keys[k] = e.value
			origins[k] = "environment variable " + e.name
		}
	}
	return keys, origins
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
