package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const kafkaTopicsUsage = `Usage: kafka-topics --bootstrap-server HOST:PORT (--create | --list | --describe | --delete | --alter) [options]

Create, delete, describe, or change a topic (Apache Kafka compatible).`

// readProperties parses a Java .properties file (key=value or key:value, # and ! comments).
func readProperties(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProperties(f)
}

func parseProperties(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			m[line] = ""
			continue
		}
		m[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return m, sc.Err()
}

// commandConfigBootstrap reads a --command-config / --producer.config file: bootstrap.servers is
// used when no --bootstrap-server was given; anything else is noted and ignored.
func (e *env) commandConfigBootstrap(path, flagName string, known map[string]bool) (string, map[string]string, error) {
	if path == "" {
		return "", nil, nil
	}
	props, err := readProperties(path)
	if err != nil {
		return "", nil, e.argf("--%s: %v", flagName, err)
	}
	var ignored []string
	for k := range props {
		if k != "bootstrap.servers" && !known[k] {
			ignored = append(ignored, k)
		}
	}
	if len(ignored) > 0 {
		fmt.Fprintf(e.stderr, "%s: note: ignoring unsupported properties from %s: %s\n", e.name, path, strings.Join(sortedCopy(ignored), ", "))
	}
	return props["bootstrap.servers"], props, nil
}

// kafkaBootstrap applies Kafka's rule that --bootstrap-server is required, falling back to
// MOLDAU_BOOTSTRAP (a Moldau convenience) before failing.
func (e *env) kafkaBootstrap(values ...string) ([]string, error) {
	for _, v := range values {
		if v != "" {
			return e.bootstrap(v), nil
		}
	}
	if v := e.getenv(BootstrapEnv); v != "" {
		return e.bootstrap(v), nil
	}
	return nil, e.usagef("Missing required argument \"[bootstrap-server]\"")
}

func runKafkaTopics(e *env, args []string) error {
	fs := newFlagSet("kafka-topics")
	var bootstrap, topic, partitionsS, rfS, commandConfig, replicaAssignment string
	var create, list, describe, del, alter, ifExists, ifNotExists, excludeInternal bool
	var underReplicated, unavailable, atMinISR, underMinISR, topicsWithOverrides, version bool
	var configs, deleteConfigs listFlag
	fs.StringVar(&bootstrap, "bootstrap-server", "", "REQUIRED: the Kafka server to connect to")
	fs.StringVar(&commandConfig, "command-config", "", "property file: bootstrap.servers is used, other settings are ignored")
	fs.BoolVar(&create, "create", false, "Create a new topic.")
	fs.BoolVar(&list, "list", false, "List all available topics.")
	fs.BoolVar(&describe, "describe", false, "List details for the given topics.")
	fs.BoolVar(&del, "delete", false, "Delete a topic.")
	fs.BoolVar(&alter, "alter", false, "Alter the number of partitions (and, in Moldau, topic configs).")
	fs.StringVar(&topic, "topic", "", "The topic to create, alter, describe or delete. A regular expression except with --create.")
	fs.StringVar(&partitionsS, "partitions", "", "The number of partitions for the topic being created or altered.")
	fs.StringVar(&rfS, "replication-factor", "", "The replication factor for each partition in the topic being created.")
	fs.StringVar(&replicaAssignment, "replica-assignment", "", "With --create: the replicas of each partition, broker_id_for_part1_replica1 : broker_id_for_part1_replica2 , broker_id_for_part2_replica1 : ... (no --partitions or --replication-factor then).")
	fs.Var(&configs, "config", "A topic configuration override k=v (repeatable).")
	fs.Var(&deleteConfigs, "delete-config", "A topic configuration override to be removed (with --alter).")
	fs.BoolVar(&ifExists, "if-exists", false, "Only execute if the topic exists (alter, delete, describe).")
	fs.BoolVar(&ifNotExists, "if-not-exists", false, "Only create the topic if it does not exist.")
	fs.BoolVar(&excludeInternal, "exclude-internal", false, "Exclude internal topics when listing or describing.")
	fs.BoolVar(&underReplicated, "under-replicated-partitions", false, "With --describe, only show under-replicated partitions.")
	fs.BoolVar(&unavailable, "unavailable-partitions", false, "With --describe, only show partitions whose leader is not available.")
	fs.BoolVar(&atMinISR, "at-min-isr-partitions", false, "With --describe, only show partitions whose ISR count equals the configured minimum (Moldau: ISR == 1).")
	fs.BoolVar(&underMinISR, "under-min-isr-partitions", false, "With --describe, only show partitions whose ISR count is below the configured minimum (Moldau: ISR empty).")
	fs.BoolVar(&topicsWithOverrides, "topics-with-overrides", false, "With --describe, only show topics that have configs overridden.")
	fs.BoolVar(&version, "version", false, "Display Kafka version.")
	var partitionLimitS string
	fs.StringVar(&partitionLimitS, "partition-size-limit-per-response", "", "Kafka 4.x: partitions per DescribeTopicPartitions response; accepted (Moldau's kafka-topics reads Metadata in one request)")
	pos, err := e.parseArgs(fs, args, kafkaTopicsUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("Found non-option arguments: %s", strings.Join(pos, " "))
	}
	if version {
		fmt.Fprintln(e.stdout, "4.0.0 (Moldau)")
		return nil
	}
	actions := 0
	for _, b := range []bool{create, list, describe, del, alter} {
		if b {
			actions++
		}
	}
	if actions != 1 {
		return e.usagef("Command must include exactly one action: --list, --describe, --create, --alter or --delete")
	}
	if partitionLimitS != "" {
		if _, err := e.parseInt("partition-size-limit-per-response", partitionLimitS, 1, "a positive integer"); err != nil {
			return err
		}
	}
	var assignment [][]int32
	if replicaAssignment != "" {
		if !create {
			return e.argf("--replica-assignment is supported by Moldau with --create only")
		}
		for _, other := range []struct{ name, value string }{{"partitions", partitionsS}, {"replication-factor", rfS}} {
			if other.value != "" {
				return e.usagef("Option \"[replica-assignment]\" can't be used with option \"[%s]\"", other.name)
			}
		}
		if assignment, err = parseReplicaAssignment(replicaAssignment); err != nil {
			fmt.Fprintf(e.stderr, "Error while executing topic command : %s\n", err)
			return &exitError{code: 1}
		}
	}
	cfgBootstrap, _, err := e.commandConfigBootstrap(commandConfig, "command-config", nil)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, cfgBootstrap)
	if err != nil {
		return err
	}
	if (create || alter || del) && topic == "" {
		return e.usagef("Missing required argument \"[topic]\"")
	}
	var partitions, rf int64 = -1, -1
	if partitionsS != "" {
		if partitions, err = e.parseInt("partitions", partitionsS, 1, "a positive integer"); err != nil {
			return err
		}
	}
	if rfS != "" {
		if rf, err = e.parseInt("replication-factor", rfS, 1, "a positive integer"); err != nil {
			return err
		}
		if rf > 32767 {
			return e.argf("--replication-factor must be at most 32767, got %q", rfS)
		}
	}
	cfg, cfgOrder, err := e.parseKV("config", configs)
	if err != nil {
		return err
	}
	if alter && partitionsS == "" && len(cfg) == 0 && len(deleteConfigs) == 0 {
		return e.usagef("--alter needs --partitions N (or, in Moldau, --config k=v / --delete-config k)")
	}

	adm, err := newAdmin(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	fail := func(msg string) error {
		fmt.Fprintf(e.stderr, "Error while executing topic command : %s\n", msg)
		return &exitError{code: 1}
	}

	if create {
		if hasCollisionChars(topic) {
			fmt.Fprintln(e.stdout, "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.")
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		var r kadm.CreateTopicResponse
		if assignment != nil {
			r, err = createAssigned(ctx, seeds, topic, assignment, cfg)
		} else {
			var resps kadm.CreateTopicResponses
			resps, err = adm.CreateTopics(ctx, int32(partitions), int16(rf), configPtrs(cfg), topic)
			r = resps[topic]
		}
		if err != nil {
			return fail(err.Error())
		}
		switch {
		case r.Err == nil:
			fmt.Fprintf(e.stdout, "Created topic %s.\n", topic)
		case ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists):
		default:
			return fail(createTopicError(r))
		}
		return nil
	}

	// Every other action works on the topics matching the --topic filter.
	all, err := listTopicNames(e, adm, !excludeInternal || topic != "")
	if err != nil {
		return fail(err.Error())
	}
	var matched []string
	if topic == "" {
		matched = all
	} else {
		re, err := topicMatcher(topic)
		if err != nil {
			return e.argf("--topic %q is not a valid regular expression: %v", topic, err)
		}
		for _, n := range all {
			if re.MatchString(n) && !(excludeInternal && strings.HasPrefix(n, "__")) {
				matched = append(matched, n)
			}
		}
		if len(matched) == 0 && !ifExists && !list {
			return fail(fmt.Sprintf("Topic '%s' does not exist as expected", topic))
		}
	}

	switch {
	case list:
		for _, n := range matched {
			fmt.Fprintln(e.stdout, n)
		}
	case describe:
		if len(matched) == 0 {
			return nil
		}
		ds, err := describeTopics(e, adm, matched)
		if err != nil {
			return fail(err.Error())
		}
		var filter partitionFilter
		switch {
		case underReplicated:
			filter = func(p kadm.PartitionDetail) bool { return len(p.ISR) < len(p.Replicas) }
		case unavailable:
			filter = func(p kadm.PartitionDetail) bool { return p.Leader < 0 }
		case atMinISR:
			filter = func(p kadm.PartitionDetail) bool { return len(p.ISR) == 1 && len(p.Replicas) > 1 }
		case underMinISR:
			filter = func(p kadm.PartitionDetail) bool { return len(p.ISR) == 0 }
		}
		for _, d := range ds {
			if topicsWithOverrides && len(d.Configs) == 0 {
				continue
			}
			writeTopicDescription(e.stdout, d, filter)
		}
	case del:
		for _, n := range matched {
			if strings.HasPrefix(n, "__") {
				return fail(fmt.Sprintf("Topic %s is a kafka internal topic and is not allowed to be marked for deletion.", n))
			}
		}
		if len(matched) == 0 {
			return nil
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		resps, err := adm.DeleteTopics(ctx, matched...)
		if err != nil {
			return fail(err.Error())
		}
		for _, n := range matched {
			if r := resps[n]; r.Err != nil && !(ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition)) {
				return fail(kerrMessage(r.Err, r.ErrMessage))
			}
		}
	case alter:
		if len(matched) == 0 {
			return nil
		}
		ctx, cancel := e.adminCtx()
		defer cancel()
		if partitionsS != "" {
			ds, err := describeTopics(e, adm, matched)
			if err != nil {
				return fail(err.Error())
			}
			for _, d := range ds {
				if int64(len(d.Partitions)) > partitions {
					return fail(fmt.Sprintf("The number of partitions for a topic can only be increased. Topic %s currently has %d partitions, %d would not be an increase.", d.Name, len(d.Partitions), partitions))
				}
			}
			resps, err := adm.UpdatePartitions(ctx, int(partitions), matched...)
			if err != nil {
				return fail(err.Error())
			}
			for _, n := range matched {
				if r := resps[n]; r.Err != nil {
					return fail(kerrMessage(r.Err, r.ErrMessage))
				}
			}
		}
		if len(cfg) > 0 || len(deleteConfigs) > 0 {
			resps, err := adm.AlterTopicConfigs(ctx, alterConfigOps(cfg, cfgOrder, deleteConfigs), matched...)
			if err != nil {
				return fail(err.Error())
			}
			for _, r := range resps {
				if r.Err != nil {
					return fail(kerrMessage(r.Err, r.ErrMessage))
				}
			}
		}
	}
	return nil
}

func hasCollisionChars(topic string) bool {
	return strings.ContainsAny(topic, "._")
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// parseReplicaAssignment parses --replica-assignment as Kafka's TopicCommand does: partitions
// separated by ',', each partition's brokers by ':', every partition with as many replicas as
// the first and no broker twice in one partition.
func parseReplicaAssignment(s string) ([][]int32, error) {
	var out [][]int32
	for i, part := range strings.Split(s, ",") {
		var brokers []int32
		seen, dup := map[int32]bool{}, []string{}
		for _, b := range strings.Split(part, ":") {
			b = strings.TrimSpace(b)
			id, err := strconv.ParseInt(b, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("For input string: \"%s\"", b)
			}
			if seen[int32(id)] {
				dup = append(dup, b)
			}
			seen[int32(id)] = true
			brokers = append(brokers, int32(id))
		}
		if len(dup) > 0 {
			return nil, fmt.Errorf("Partition replica lists may not contain duplicate entries: %s", strings.Join(dup, ","))
		}
		if len(out) > 0 && len(brokers) != len(out[0]) {
			ids := make([]string, len(brokers))
			for j, b := range brokers {
				ids[j] = strconv.Itoa(int(b))
			}
			return nil, fmt.Errorf("Partition %d has different replication factor: [%s]", i, strings.Join(ids, ", "))
		}
		out = append(out, brokers)
	}
	return out, nil
}

// createAssigned creates topic with the given replicas for each partition (CreateTopics with a
// manual assignment; kadm only sends counts).
func createAssigned(ctx context.Context, seeds []string, topic string, assignment [][]int32, configs map[string]string) (kadm.CreateTopicResponse, error) {
	cl, err := newClient(seeds)
	if err != nil {
		return kadm.CreateTopicResponse{}, err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p, replicas := range assignment {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(p), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(configs[k])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kadm.CreateTopicResponse{}, err
	}
	if len(resp.Topics) != 1 {
		return kadm.CreateTopicResponse{}, fmt.Errorf("CreateTopics answered %d topics for one", len(resp.Topics))
	}
	t := resp.Topics[0]
	r := kadm.CreateTopicResponse{Topic: topic, Err: kerr.ErrorForCode(t.ErrorCode)}
	if t.ErrorMessage != nil {
		r.ErrMessage = *t.ErrorMessage
	}
	return r, nil
}
