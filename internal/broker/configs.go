package broker

import (
	"time"

	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/partition"
)

// effectiveConfig is the static broker config with the dynamic overrides applied: the
// cluster-wide ones, then this broker's own.
func (b *Broker) effectiveConfig() *config.Config { return b.effectiveConfigOf(b.meta.Image()) }

func (b *Broker) effectiveConfigOf(im *metadata.Image) *config.Config {
	dyn, own := im.BrokerConfigs(), im.NodeConfigs(b.cfg.NodeID)
	if len(dyn) == 0 && len(own) == 0 {
		return b.cfg
	}
	c, err := b.cfg.WithDynamicBroker(dyn, own)
	if err != nil {
		b.log.Warn("dynamic broker config ignored", "err", err)
		return b.cfg
	}
	return c
}

// settingsFor resolves a topic's partition settings: broker defaults, then topic overrides.
func (b *Broker) settingsFor(t *metadata.Topic) (partition.Settings, error) {
	ts, err := config.ParseTopicSettings(b.effectiveConfig().TopicDefaults(), t.Configs)
	if err != nil {
		return partition.Settings{}, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	settings := partition.Settings{
		Log: log.Config{
			SegmentBytes:          ts.SegmentBytes,
			SegmentMs:             ts.SegmentMs,
			RetentionMs:           ts.RetentionMs,
			RetentionBytes:        ts.RetentionBytes,
			IndexIntervalBytes:    ts.IndexIntervalBytes,
			SegmentIndexBytes:     ts.SegmentIndexBytes,
			FlushIntervalMessages: ts.FlushIntervalMessages,
			FlushIntervalMs:       ts.FlushIntervalMs,
			FileDeleteDelayMs:     ts.FileDeleteDelayMs,

			Compact:                ts.Compact,
			NoDelete:               !ts.Delete,
			DeleteRetentionMs:      ts.DeleteRetentionMs,
			MinCompactionLagMs:     ts.MinCompactionLagMs,
			MaxCompactionLagMs:     ts.MaxCompactionLagMs,
			MinCleanableDirtyRatio: ts.MinCleanableDirtyRatio,
		},
		MaxMessageBytes:   ts.MaxMessageBytes,
		LogAppendTime:     ts.LogAppendTime,
		MinInsyncReplicas: int(ts.MinInsyncReplicas),
		ReplicaLagTimeMax: time.Duration(b.cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
	}
	if ts.FlushIntervalMessages == 1 {
		// Every message flushed (Moldau's default, config.FlushPolicy): group-commit before the
		// ack instead of an fsync per batch.
		settings.SyncBeforeAck = true
		settings.Log.FlushIntervalMessages = math.MaxInt64
	}
	return settings, nil
}

// PartitionSettings implements handler.Cluster.
func (b *Broker) PartitionSettings(topic string) (partition.Settings, error) {
	t, ok := b.meta.Image().Topic(topic)
	if !ok {
		return partition.Settings{}, fmt.Errorf("topic %s: %w", topic, metadata.ErrUnknownTopic)
	}
	return b.settingsFor(t)
}

// ValidateTopicConfig implements handler.Cluster.
func (b *Broker) ValidateTopicConfig(key, value string) error {
	return config.ValidateTopicConfig(key, value)
}

// ValidateBrokerConfig implements handler.Cluster.
func (b *Broker) ValidateBrokerConfig(key, value string) error {
	return config.ValidateBrokerConfig(key, value)
}

// wanted reports whether a config key was asked for (nil: all keys).
func wanted(keys []string) func(string) bool {
	if keys == nil {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	return func(k string) bool { return set[k] }
}

func describeEntry(k config.Key, value *string, source int8, readOnly, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = k.Name
	c.Value = value
	c.ReadOnly = readOnly
	c.Source = kmsg.ConfigSource(source)
	c.IsSensitive = k.Sensitive
	c.ConfigType = kmsg.ConfigType(k.Type)
	if docs {
		doc := k.Doc
		c.Documentation = &doc
	}
	return c
}

// DescribeTopicConfigs implements handler.Cluster: every topic key with its effective value and
// source (DYNAMIC_TOPIC_CONFIG for overrides, else where the broker default came from), with
// synonyms (the topic override, then the broker key) when asked.
func (b *Broker) DescribeTopicConfigs(topic string, keys []string, synonyms, docs bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	t, ok := b.meta.Image().Topic(topic)
	if !ok {
		return nil, fmt.Errorf("topic %s: %w", topic, metadata.ErrUnknownTopic)
	}
	eff := b.effectiveConfig()
	defaults := eff.TopicDefaults()
	// The resolved flush policy: flush.messages at its default is 1 (fsync before ack) unless a
	// flush.ms makes it Kafka's never (config.FlushPolicy).
	resolved, resolvedErr := config.ParseTopicSettings(defaults, t.Configs)
	want := wanted(keys)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range config.TopicKeys() {
		if !want(k.Name) {
			continue
		}
		var syns []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		addSyn := func(name string, v *string, src int8) {
			s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			s.Name, s.Value, s.Source = name, v, kmsg.ConfigSource(src)
			syns = append(syns, s)
		}
		var value *string
		var source int8
		if v, ok := t.Configs[k.Name]; ok {
			v := v
			value, source = &v, int8(kmsg.ConfigSourceDynamicTopicConfig)
			addSyn(k.Name, &v, source)
		}
		if k.BrokerKey != "" {
			if bv, src, ok := eff.Lookup(k.BrokerKey); ok {
				bv := bv
				if value == nil {
					value, source = &bv, src.KafkaConfigSource()
				}
				addSyn(k.BrokerKey, &bv, src.KafkaConfigSource())
			}
		}
		if value == nil {
			if dv, ok := defaults[k.Name]; ok {
				value = &dv
			} else if !k.Nullable || k.Default != "" {
				dv := k.Default
				value = &dv
			}
			source = int8(kmsg.ConfigSourceDefaultConfig)
			addSyn(k.Name, value, source)
		}
		if k.Name == "flush.messages" && source == int8(kmsg.ConfigSourceDefaultConfig) && resolvedErr == nil {
			v := strconv.FormatInt(resolved.FlushIntervalMessages, 10)
			value = &v
			for i := range syns {
				if syns[i].Source == kmsg.ConfigSourceDefaultConfig {
					syns[i].Value = &v
				}
			}
		}
		c := describeEntry(k, value, source, false, docs)
		if synonyms {
			c.ConfigSynonyms = syns
		}
		out = append(out, c)
	}
	return out, nil
}

// DescribeBrokerConfigs implements handler.Cluster. Synonyms list, as Kafka's do, every layer
// that sets the key, the one in effect first: this broker's dynamic value
// (DYNAMIC_BROKER_CONFIG), the cluster-wide one (DYNAMIC_DEFAULT_BROKER_CONFIG), the static one
// (STATIC_BROKER_CONFIG) and the key's default (DEFAULT_CONFIG).
func (b *Broker) DescribeBrokerConfigs(keys []string, synonyms, docs bool) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	im := b.meta.Image()
	eff := b.effectiveConfigOf(im)
	own, dyn := im.NodeConfigs(b.cfg.NodeID), im.BrokerConfigs()
	want := wanted(keys)
	bks := config.BrokerKeys()
	sort.Slice(bks, func(i, j int) bool { return bks[i].Name < bks[j].Name })
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range bks {
		if !want(k.Name) {
			continue
		}
		var value *string
		source := int8(kmsg.ConfigSourceDefaultConfig)
		if v, src, ok := eff.Lookup(k.Name); ok {
			v := v
			value, source = &v, src.KafkaConfigSource()
		}
		c := describeEntry(k, value, source, !k.Dynamic, docs)
		if synonyms {
			c.ConfigSynonyms = b.brokerSynonyms(k, own, dyn)
		}
		out = append(out, c)
	}
	return out, nil
}

// brokerSynonyms are the layers that set broker key k, in order of precedence.
func (b *Broker) brokerSynonyms(k config.Key, own, dyn map[string]string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(v string, src kmsg.ConfigSource) {
		s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		s.Name, s.Value, s.Source = k.Name, &v, src
		out = append(out, s)
	}
	if k.Dynamic {
		if v := own[k.Name]; strings.TrimSpace(v) != "" {
			add(v, kmsg.ConfigSourceDynamicBrokerConfig)
		}
		if v := dyn[k.Name]; strings.TrimSpace(v) != "" {
			add(v, kmsg.ConfigSourceDynamicDefaultBrokerConfig)
		}
	}
	if v, src, ok := b.cfg.Lookup(k.Name); ok && src != config.SourceDefault {
		add(v, kmsg.ConfigSourceStaticBrokerConfig)
	}
	if !k.Nullable || k.Default != "" {
		add(k.Default, kmsg.ConfigSourceDefaultConfig)
	}
	return out
}
