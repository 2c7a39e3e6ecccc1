package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// TopicSettings are the typed, validated settings of one topic. Field names follow
// internal/log.Config where they overlap.
type TopicSettings struct {
	CleanupPolicy               []string // cleanup.policy: delete and/or compact
	Compact, Delete             bool     // cleanup.policy contains compact / delete
	CompressionType             string   // compression.type
	DeleteRetentionMs           int64    // delete.retention.ms
	FileDeleteDelayMs           int64    // file.delete.delay.ms
	FlushIntervalMessages       int64    // flush.messages, resolved by FlushPolicy: 1 = fsync before ack
	FlushIntervalMs             int64    // flush.ms, resolved by FlushPolicy
	IndexIntervalBytes          int32    // index.interval.bytes
	MaxCompactionLagMs          int64    // max.compaction.lag.ms
	MaxMessageBytes             int32    // max.message.bytes
	MessageDownconversion       bool     // message.downconversion.enable (no effect)
	MessageTimestampAfterMaxMs  int64    // message.timestamp.after.max.ms
	MessageTimestampBeforeMaxMs int64    // message.timestamp.before.max.ms
	MessageTimestampType        string   // message.timestamp.type: CreateTime | LogAppendTime
	LogAppendTime               bool     // message.timestamp.type == LogAppendTime
	MinCleanableDirtyRatio      float64  // min.cleanable.dirty.ratio
	MinCompactionLagMs          int64    // min.compaction.lag.ms
	MinInsyncReplicas           int32    // min.insync.replicas
	Preallocate                 bool     // preallocate
	RetentionBytes              int64    // retention.bytes; -1 = no limit
	RetentionMs                 int64    // retention.ms; -1 = forever
	SegmentBytes                int64    // segment.bytes
	SegmentIndexBytes           int32    // segment.index.bytes
	SegmentMs                   int64    // segment.ms
	UncleanLeaderElection       bool     // unclean.leader.election.enable
}

// TopicDefaults returns the effective default of every topic key under this broker config: the
// value of its broker key (BrokerKey) or, for keys without one, Kafka's default. flush.messages and
// flush.ms are there only when the broker sets log.flush.interval.messages or
// log.flush.interval.ms (then both are, the unset one as Kafka's default): their absence is what
// lets ParseTopicSettings apply Moldau's durable default (see FlushPolicy).
func (c *Config) TopicDefaults() map[string]string {
	out := make(map[string]string, len(topicKeys))
	brokerFlush := c.Sources["log.flush.interval.messages"] != SourceDefault || c.Sources["log.flush.interval.ms"] != SourceDefault
	for _, k := range topicKeys {
		v, ok := c.Raw[k.BrokerKey]
		if k.BrokerKey == "" || !ok {
			v = k.Default
		}
		if isFlushKey(k.Name) && !brokerFlush {
			continue
		}
		out[k.Name] = v
	}
	return out
}

func isFlushKey(topicKey string) bool { return topicKey == "flush.messages" || topicKey == "flush.ms" }

// FlushPolicy resolves flush.messages and flush.ms (log.flush.interval.messages/.ms at the broker).
// While none of the four is set, the policy is Moldau's durable default: every message flushed,
// which the broker implements as a group-committed fsync before the acknowledgement
// (DefaultFlushMessages, 1). Once any is set, the user gets Kafka's meaning exactly: the value set
// at the most specific level (topic, then broker), and for a key set nowhere Kafka's default,
// never (9223372036854775807). messagesSet and msSet say whether each key is set at any level.
func FlushPolicy(messages, ms int64, messagesSet, msSet bool) (flushMessages, flushMs int64) {
	switch {
	case !messagesSet && !msSet:
		return 1, maxLong
	case !messagesSet:
		return maxLong, ms
	case !msSet:
		return messages, maxLong
	}
	return messages, ms
}

// ParseTopicSettings merges overrides (a topic's own configs) over defaults (usually
// Config.TopicDefaults) over the catalogue defaults, validates every key and returns the typed
// settings. A flush key present in either map counts as set (FlushPolicy). Unknown keys and bad
// values, in either map, are errors (*Error, joined).
func ParseTopicSettings(defaults, overrides map[string]string) (TopicSettings, error) {
	eff := map[string]string{}
	for _, k := range topicKeys {
		eff[k.Name] = k.Default
	}
	var errs []error
	for _, m := range []map[string]string{defaults, overrides} {
		for _, key := range slices.Sorted(maps.Keys(m)) {
			if err := ValidateTopicConfig(key, m[key]); err != nil {
				errs = append(errs, err)
				continue
			}
			eff[key] = strings.TrimSpace(m[key])
		}
	}
	if len(errs) > 0 {
		return TopicSettings{}, errors.Join(errs...)
	}
	i64 := func(k string) int64 { n, _ := strconv.ParseInt(eff[k], 10, 64); return n }
	i32 := func(k string) int32 { return int32(i64(k)) }
	bl := func(k string) bool { v, _ := parseBool(eff[k]); return v }

	var t TopicSettings
	t.CleanupPolicy = splitList(eff["cleanup.policy"])
	t.Compact = slices.Contains(t.CleanupPolicy, "compact")
	t.Delete = slices.Contains(t.CleanupPolicy, "delete")
	t.CompressionType = eff["compression.type"]
	t.DeleteRetentionMs = i64("delete.retention.ms")
	t.FileDeleteDelayMs = i64("file.delete.delay.ms")
	set := func(k string) bool { _, d := defaults[k]; _, o := overrides[k]; return d || o }
	t.FlushIntervalMessages, t.FlushIntervalMs = FlushPolicy(i64("flush.messages"), i64("flush.ms"), set("flush.messages"), set("flush.ms"))
	t.IndexIntervalBytes = i32("index.interval.bytes")
	t.MaxCompactionLagMs = i64("max.compaction.lag.ms")
	t.MaxMessageBytes = i32("max.message.bytes")
	t.MessageDownconversion = bl("message.downconversion.enable")
	t.MessageTimestampAfterMaxMs = i64("message.timestamp.after.max.ms")
	t.MessageTimestampBeforeMaxMs = i64("message.timestamp.before.max.ms")
	t.MessageTimestampType = eff["message.timestamp.type"]
	t.LogAppendTime = t.MessageTimestampType == "LogAppendTime"
	t.MinCleanableDirtyRatio, _ = strconv.ParseFloat(eff["min.cleanable.dirty.ratio"], 64)
	t.MinCompactionLagMs = i64("min.compaction.lag.ms")
	t.MinInsyncReplicas = i32("min.insync.replicas")
	t.Preallocate = bl("preallocate")
	t.RetentionBytes = i64("retention.bytes")
	t.RetentionMs = i64("retention.ms")
	t.SegmentBytes = i64("segment.bytes")
	t.SegmentIndexBytes = i32("segment.index.bytes")
	t.SegmentMs = i64("segment.ms")
	t.UncleanLeaderElection = bl("unclean.leader.election.enable")

	if t.MinCompactionLagMs > t.MaxCompactionLagMs {
		return TopicSettings{}, &Error{Key: "min.compaction.lag.ms", Value: eff["min.compaction.lag.ms"], Topic: true, kind: ErrInvalidValue,
			Reason: fmt.Sprintf("must not exceed max.compaction.lag.ms (%d)", t.MaxCompactionLagMs)}
	}
	return t, nil
}
