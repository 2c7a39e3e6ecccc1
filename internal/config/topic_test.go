package config

import (
	"errors"
	"testing"
)

func TestTopicKeysCatalogue(t *testing.T) {
	for _, k := range TopicKeys() {
		if err := ValidateTopicConfig(k.Name, k.Default); err != nil {
			t.Errorf("default of %s invalid: %v", k.Name, err)
		}
		if k.BrokerKey != "" {
			bk, ok := BrokerKey(k.BrokerKey)
			if !ok {
				t.Errorf("%s: broker key %s not in catalogue", k.Name, k.BrokerKey)
				continue
			}
			if !bk.Dynamic {
				t.Errorf("%s: broker key %s should be dynamic", k.Name, k.BrokerKey)
			}
		}
		if !k.Dynamic || k.Doc == "" {
			t.Errorf("%s: dynamic=%v doc=%q", k.Name, k.Dynamic, k.Doc)
		}
	}
	for _, k := range BrokerKeys() {
		if k.Nullable && k.Default == "" {
			continue
		}
		if err := k.Validate(k.Default); err != nil {
			t.Errorf("default of %s invalid: %v", k.Name, err)
		}
		if k.Doc == "" {
			t.Errorf("%s: no doc", k.Name)
		}
	}
}

func TestTopicDefaults(t *testing.T) {
	c, err := Build(map[string]string{
		"log.retention.minutes": "10", "log.roll.hours": "1", "message.max.bytes": "5000",
		"log.cleanup.policy": "compact", "compression.type": "zstd", "log.flush.interval.ms": "100",
	})
	if err != nil {
		t.Fatal(err)
	}
	d := c.TopicDefaults()
	want := map[string]string{
		"retention.ms": "600000", "segment.ms": "3600000", "max.message.bytes": "5000",
		"cleanup.policy": "compact", "compression.type": "zstd", "flush.ms": "100",
		"flush.messages": maxLongStr, "segment.bytes": "1073741824", "message.downconversion.enable": "true",
		"delete.retention.ms": "86400000", "segment.index.bytes": "10485760", "retention.bytes": "-1",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %q, want %q", k, d[k], v)
		}
	}
	if len(d) != len(TopicKeys()) {
		t.Errorf("%d defaults for %d keys", len(d), len(TopicKeys()))
	}
	s, err := ParseTopicSettings(d, map[string]string{"retention.ms": "-1", "message.timestamp.type": "LogAppendTime", "cleanup.policy": "compact,delete"})
	if err != nil {
		t.Fatal(err)
	}
	if s.RetentionMs != -1 || s.SegmentMs != 3_600_000 || s.MaxMessageBytes != 5000 || !s.LogAppendTime ||
		!s.Compact || !s.Delete || s.CompressionType != "zstd" || s.FlushIntervalMs != 100 || s.FlushIntervalMessages != maxLong ||
		s.MinCleanableDirtyRatio != 0.5 || s.SegmentIndexBytes != 10485760 || s.MessageTimestampType != "LogAppendTime" {
		t.Errorf("%+v", s)
	}
}

func TestParseTopicSettingsDefaults(t *testing.T) {
	s, err := ParseTopicSettings(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.RetentionMs != 604800000 || s.RetentionBytes != -1 || s.SegmentBytes != 1073741824 || s.SegmentMs != 604800000 ||
		s.IndexIntervalBytes != 4096 || s.MaxMessageBytes != 1048588 || s.MinInsyncReplicas != 1 ||
		s.FlushIntervalMessages != 1 || s.FlushIntervalMs != maxLong || s.DeleteRetentionMs != 86400000 ||
		s.FileDeleteDelayMs != 60000 || s.MinCompactionLagMs != 0 || s.MaxCompactionLagMs != maxLong ||
		!s.Delete || s.Compact || s.LogAppendTime || s.CompressionType != "producer" || s.UncleanLeaderElection ||
		s.MessageTimestampBeforeMaxMs != maxLong || s.MessageTimestampAfterMaxMs != maxLong || !s.MessageDownconversion {
		t.Errorf("%+v", s)
	}
}

func TestTopicConfigErrors(t *testing.T) {
	tests := []struct {
		key, value, want string
		kind             error
	}{
		{"retention.ms", "abc", `config: retention.ms: "abc" is not an integer`, ErrInvalidValue},
		{"retention.ms", "-2", `config: retention.ms: "-2" is out of range: must be -1 (no limit) or at least 0`, ErrInvalidValue},
		{"segment.bytes", "13", `config: segment.bytes: "13" is out of range: must be at least 14`, ErrInvalidValue},
		{"segment.index.bytes", "3", `config: segment.index.bytes: "3" is out of range: must be at least 4`, ErrInvalidValue},
		{"segment.ms", "0", `config: segment.ms: "0" is out of range: must be at least 1`, ErrInvalidValue},
		{"min.insync.replicas", "0", `config: min.insync.replicas: "0" is out of range: must be at least 1`, ErrInvalidValue},
		{"flush.messages", "0", `config: flush.messages: "0" is out of range: must be at least 1`, ErrInvalidValue},
		{"max.message.bytes", "-1", `config: max.message.bytes: "-1" is out of range: must be at least 0`, ErrInvalidValue},
		{"cleanup.policy", "remove", `config: cleanup.policy: "remove" is not valid: "remove" is not one of delete, compact`, ErrInvalidValue},
		{"message.timestamp.type", "Now", `config: message.timestamp.type: "Now" is not valid: expected one of CreateTime, LogAppendTime`, ErrInvalidValue},
		{"min.cleanable.dirty.ratio", "2", `config: min.cleanable.dirty.ratio: "2" is out of range: must be between 0 and 1`, ErrInvalidValue},
		{"unclean.leader.election.enable", "1", `config: unclean.leader.election.enable: "1" is not a boolean: expected true or false`, ErrInvalidValue},
		{"compression.type", "none", `config: compression.type: "none" is not valid: expected one of uncompressed, zstd, lz4, snappy, gzip, producer`, ErrInvalidValue},
		{"retention.msx", "1", `config: unknown topic config "retention.msx" (did you mean "retention.ms"?)`, ErrUnknownKey},
		{"log.retention.ms", "1", `config: unknown topic config "log.retention.ms" (it is a broker config; the topic config is "retention.ms")`, ErrUnknownKey},
		{"message.max.bytes", "1", `config: unknown topic config "message.max.bytes" (it is a broker config; the topic config is "max.message.bytes")`, ErrUnknownKey},
		{"foo", "1", `config: unknown topic config "foo"`, ErrUnknownKey},
	}
	for _, tt := range tests {
		err := ValidateTopicConfig(tt.key, tt.value)
		if errText(err) != tt.want || !errors.Is(err, tt.kind) {
			t.Errorf("ValidateTopicConfig(%s, %s):\n got %v\nwant %s", tt.key, tt.value, err, tt.want)
		}
	}
	for _, ok := range [][2]string{{"retention.ms", "-1"}, {"cleanup.policy", "compact, delete"}, {"unclean.leader.election.enable", "TRUE"}, {"min.cleanable.dirty.ratio", "0.01"}} {
		if err := ValidateTopicConfig(ok[0], ok[1]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}

	_, err := ParseTopicSettings(nil, map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"})
	if want := `config: min.compaction.lag.ms: "10" must not exceed max.compaction.lag.ms (5)`; errText(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
	_, err = ParseTopicSettings(map[string]string{"segment.bytes": "x"}, map[string]string{"nope": "1"})
	if want := "config: segment.bytes: \"x\" is not an integer\nconfig: unknown topic config \"nope\""; errText(err) != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestValidateBrokerConfig(t *testing.T) {
	tests := []struct {
		key, value, want string
		kind             error
	}{
		{"log.retention.ms", "100", "", nil},
		{"log.retention.ms", "", "", nil}, // nullable: an empty value deletes the override
		{"message.max.bytes", "x", `config: message.max.bytes: "x" is not an integer`, ErrInvalidValue},
		{"listeners", "PLAINTEXT://:1", `config: listeners: "PLAINTEXT://:1" cannot be changed at runtime: set it in server.properties and restart`, ErrReadOnly},
		{"log.retention.hours", "1", `config: log.retention.hours: "1" cannot be changed at runtime: set it in server.properties and restart`, ErrReadOnly},
		{"log.retention.mss", "1", `config: unknown key "log.retention.mss" (did you mean "log.retention.ms"?)`, ErrUnknownKey},
	}
	for _, tt := range tests {
		err := ValidateBrokerConfig(tt.key, tt.value)
		if errText(err) != tt.want || tt.kind != nil && !errors.Is(err, tt.kind) {
			t.Errorf("ValidateBrokerConfig(%s, %s):\n got %v\nwant %s", tt.key, tt.value, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	if editDistance("kitten", "sitting") != 3 || editDistance("", "abc") != 3 || editDistance("a", "a") != 0 {
		t.Error("editDistance")
	}
	if s := suggest("completely.different", []string{"node.id"}); s != "" {
		t.Errorf("suggested %q", s)
	}
}

// TestFlushPolicy: fsync before ack (flush.messages 1) is the default only while no flush key is
// set at any level; a user who sets one gets Kafka's meaning, the unset one being never.
func TestFlushPolicy(t *testing.T) {
	for _, tc := range []struct {
		name          string
		broker, topic map[string]string
		wantMsgs      int64
		wantMs        int64
		wantBrokerRaw string // Raw log.flush.interval.messages (DescribeConfigs of the broker)
	}{
		{"nothing set: durable default", nil, nil, 1, maxLong, "1"},
		{"broker messages", map[string]string{"log.flush.interval.messages": "10000"}, nil, 10000, maxLong, "10000"},
		{"broker Kafka default spelled out", map[string]string{"log.flush.interval.messages": maxLongStr}, nil, maxLong, maxLong, maxLongStr},
		{"broker ms only: messages never", map[string]string{"log.flush.interval.ms": "1000"}, nil, maxLong, 1000, maxLongStr},
		{"broker messages 1 and ms", map[string]string{"log.flush.interval.messages": "1", "log.flush.interval.ms": "1000"}, nil, 1, 1000, "1"},
		{"topic ms only: messages never", nil, map[string]string{"flush.ms": "500"}, maxLong, 500, "1"},
		{"topic messages", nil, map[string]string{"flush.messages": "7"}, 7, maxLong, "1"},
		{"topic messages 1 over broker ms", map[string]string{"log.flush.interval.ms": "1000"}, map[string]string{"flush.messages": "1"}, 1, 1000, maxLongStr},
		{"topic ms over broker messages", map[string]string{"log.flush.interval.messages": "50"}, map[string]string{"flush.ms": "20"}, 50, 20, "50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Build(tc.broker)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Raw["log.flush.interval.messages"]; got != tc.wantBrokerRaw {
				t.Errorf("broker log.flush.interval.messages = %q, want %q", got, tc.wantBrokerRaw)
			}
			s, err := ParseTopicSettings(c.TopicDefaults(), tc.topic)
			if err != nil {
				t.Fatal(err)
			}
			if s.FlushIntervalMessages != tc.wantMsgs || s.FlushIntervalMs != tc.wantMs {
				t.Errorf("flush.messages %d flush.ms %d, want %d %d", s.FlushIntervalMessages, s.FlushIntervalMs, tc.wantMsgs, tc.wantMs)
			}
		})
	}
	// A dynamic broker override is as explicit as a static one.
	c, err := Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := c.WithDynamicBroker(map[string]string{"log.flush.interval.ms": "250"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseTopicSettings(dyn.TopicDefaults(), nil)
	if err != nil || s.FlushIntervalMessages != maxLong || s.FlushIntervalMs != 250 {
		t.Fatalf("dynamic log.flush.interval.ms=250: %+v, %v", s, err)
	}
}
