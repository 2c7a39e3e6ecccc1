package cli

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicIDString renders a topic id as Kafka's Uuid.toString does: URL-safe base64, no padding.
func topicIDString(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func joinInt32s(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ",")
}

// topicDescription is what kafka-topics --describe prints for one topic.
type topicDescription struct {
	Name              string
	ID                [16]byte
	ReplicationFactor int
	Configs           []string // "k=v", non-default only, in broker order
	Partitions        []kadm.PartitionDetail
}

// partitionFilter selects partitions for --under-replicated-partitions and friends; nil keeps all.
type partitionFilter func(p kadm.PartitionDetail) bool

// writeTopicDescription prints Kafka 4.x's TopicCommand describe output. With a partition filter
// (--under-replicated-partitions, --unavailable-partitions) the topic line is omitted, as Kafka does.
func writeTopicDescription(w io.Writer, d topicDescription, filter partitionFilter) {
	if filter == nil {
		fmt.Fprintf(w, "Topic: %s", d.Name)
		if d.ID != ([16]byte{}) {
			fmt.Fprintf(w, "\tTopicId: %s", topicIDString(d.ID))
		}
		fmt.Fprintf(w, "\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
			len(d.Partitions), d.ReplicationFactor, strings.Join(d.Configs, ","))
	}
	for _, p := range d.Partitions {
		if filter != nil && !filter(p) {
			continue
		}
		leader := "none"
		if p.Leader >= 0 {
			leader = strconv.Itoa(int(p.Leader))
		}
		fmt.Fprintf(w, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s\tElr: \tLastKnownElr: \n",
			d.Name, p.Partition, leader, joinInt32s(p.Replicas), joinInt32s(p.ISR))
	}
}

// describeTopics loads metadata and non-default configs for the named topics (all when empty).
func describeTopics(e *env, adm *kadm.Client, names []string) ([]topicDescription, error) {
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var out []topicDescription
	var found []string
	for _, td := range md.Topics.Sorted() {
		if td.Err != nil {
			if errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("topic %s: %w", td.Topic, td.Err)
		}
		d := topicDescription{Name: td.Topic, ID: td.ID, Partitions: td.Partitions.Sorted()}
		if len(d.Partitions) > 0 {
			d.ReplicationFactor = len(d.Partitions[0].Replicas)
		}
		out = append(out, d)
		found = append(found, td.Topic)
	}
	if len(found) == 0 {
		return out, nil
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, found...)
	if err != nil {
		// Configs are decoration; a broker without DescribeConfigs still gets its partitions shown.
		fmt.Fprintf(e.stderr, "%s: warning: could not describe topic configs: %v\n", e.name, err)
		return out, nil
	}
	byName := make(map[string]kadm.ResourceConfig, len(rcs))
	for _, rc := range rcs {
		byName[rc.Name] = rc
	}
	for i := range out {
		for _, c := range byName[out[i].Name].Configs {
			if c.Source == kmsg.ConfigSourceDefaultConfig || c.Source == kmsg.ConfigSourceUnknown {
				continue
			}
			v := ""
			if c.Value != nil {
				v = *c.Value
			}
			if c.Sensitive {
				v = "(sensitive)"
			}
			out[i].Configs = append(out[i].Configs, c.Key+"="+v)
		}
	}
	return out, nil
}

// listTopicNames returns topic names sorted; internal topics only when withInternal.
func listTopicNames(e *env, adm *kadm.Client, withInternal bool) ([]string, error) {
	ctx, cancel := e.adminCtx()
	defer cancel()
	var tds kadm.TopicDetails
	var err error
	if withInternal {
		tds, err = adm.ListTopicsWithInternal(ctx)
	} else {
		tds, err = adm.ListTopics(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	names := tds.Names()
	sort.Strings(names)
	return names, nil
}

// topicMatcher compiles Kafka's --topic filter: a regular expression matched against the whole
// name, with ',' meaning '|' (Kafka's IncludeList).
func topicMatcher(expr string) (*regexp.Regexp, error) {
	expr = strings.TrimSpace(expr)
	expr = strings.Trim(expr, `"'`)
	expr = strings.ReplaceAll(expr, " ", "")
	expr = strings.ReplaceAll(expr, ",", "|")
	return regexp.Compile("^(?:" + expr + ")$")
}

// kerrMessage renders a broker error with its message, preferring the broker's text.
func kerrMessage(err error, msg string) string {
	if msg != "" {
		return msg
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message + " (" + ke.Description + ")"
	}
	return err.Error()
}

// createTopicError turns a CreateTopics failure into Kafka's wording.
func createTopicError(r kadm.CreateTopicResponse) string {
	if errors.Is(r.Err, kerr.TopicAlreadyExists) {
		return fmt.Sprintf("Topic '%s' already exists.", r.Topic)
	}
	return kerrMessage(r.Err, r.ErrMessage)
}

// alterConfigOps builds incremental config changes: set for each k=v, delete for each key.
func alterConfigOps(set map[string]string, order []string, del []string) []kadm.AlterConfig {
	var ops []kadm.AlterConfig
	for _, k := range order {
		v := set[k]
		ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range del {
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	return ops
}

func configPtrs(m map[string]string) map[string]*string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]*string, len(m))
	for k, v := range m {
		out[k] = &v
	}
	return out
}
