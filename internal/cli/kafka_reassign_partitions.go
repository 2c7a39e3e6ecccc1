package cli

// kafka-reassign-partitions: Apache Kafka's tool (tools/.../reassign/ReassignPartitionsCommand.java)
// with its flags, JSON files and output text: --generate, --execute (with --throttle and
// --replica-alter-log-dirs-throttle setting the KIP-73 throttle configs), --verify (removing the
// throttles once nothing moves), --cancel and --list.
//
// Differences from Kafka: errors that Kafka prints as "Error: <exception>" followed by a Java
// stack trace are printed as "Error: <message>" alone; --bootstrap-controller is refused.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moldau/moldau/internal/rebalance"
)

const kafkaReassignUsage = `Usage: kafka-reassign-partitions --bootstrap-server HOST:PORT (--generate | --execute | --verify | --cancel | --list) [options]

This tool helps to move topic partitions between replicas.`

// Kafka's throttle configs (KIP-73), which --execute sets and --verify / --cancel remove.
const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	alterLogDirsThrottledRate = "replica.alter.log.dirs.io.max.bytes.per.second"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

var (
	brokerLevelThrottles = []string{leaderThrottledRate, followerThrottledRate, alterLogDirsThrottledRate}
	topicLevelThrottles  = []string{leaderThrottledReplicas, followerThrottledReplicas}
)

const (
	cannotExecuteBecauseOfExisting = "Cannot execute because there is an existing partition assignment.  Use --additional to override this and create a new partition assignment in addition to the existing one. The --additional flag can also be used to change the throttle by resubmitting the current reassignment."
	mustRunVerifyPeriodically      = "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed."
	anyLogDir                      = "any"
)

// moveDeps are the move commands' seams: how a cluster is opened, randomness, and waiting.
type moveDeps struct {
	open  func(seeds []string) (moveAdmin, error)
	intn  func(n int) int
	sleep func(ctx context.Context, d time.Duration) error
	poll  time.Duration // progress poll interval of the waiting commands
}

func defaultMoveDeps() moveDeps {
	return moveDeps{open: openKadmMoveAdmin, intn: rand.IntN, sleep: sleepCtx, poll: time.Second}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func runKafkaReassignPartitions(e *env, args []string) error {
	return kafkaReassign(e, args, defaultMoveDeps())
}

// toolError is a failure Kafka's tool prints to stdout and exits 1 with: a TerseException's
// message verbatim, anything else as "Error: message".
type toolError struct {
	msg   string
	terse bool
}

func (t *toolError) Error() string { return t.msg }

func terse(format string, a ...any) error {
	return &toolError{msg: fmt.Sprintf(format, a...), terse: true}
}
func failf(format string, a ...any) error { return &toolError{msg: fmt.Sprintf(format, a...)} }

func kafkaReassign(e *env, args []string, deps moveDeps) error {
	fs := newFlagSet("kafka-reassign-partitions")
	var generate, execute, verify, cancel, list, disableRack, additional, preserve, version bool
	var bootstrap, bootstrapController, commandConfig, reassignFile, topicsFile, brokerList string
	var throttleS, logDirThrottleS, timeoutS string
	fs.BoolVar(&verify, "verify", false, "Verify if the reassignment completed as specified by the --reassignment-json-file option. If there is a throttle engaged for the replicas specified, and the rebalance has completed, the throttle will be removed")
	fs.BoolVar(&generate, "generate", false, "Generate a candidate partition reassignment configuration. Note that this only generates a candidate assignment, it does not execute it.")
	fs.BoolVar(&execute, "execute", false, "Kick off the reassignment as specified by the --reassignment-json-file option.")
	fs.BoolVar(&cancel, "cancel", false, "Cancel an active reassignment.")
	fs.BoolVar(&list, "list", false, "List all active partition reassignments.")
	fs.StringVar(&bootstrap, "bootstrap-server", "", "REQUIRED: the server(s) to use for bootstrapping.")
	fs.StringVar(&bootstrapController, "bootstrap-controller", "", "not supported by Moldau: use --bootstrap-server")
	fs.StringVar(&commandConfig, "command-config", "", "Property file containing configs to be passed to Admin Client (bootstrap.servers is used, other settings are ignored).")
	fs.StringVar(&reassignFile, "reassignment-json-file", "", `The JSON file with the partition reassignment configuration. The format to use is - {"partitions": [{"topic": "foo", "partition": 1, "replicas": [1,2,3], "log_dirs": ["dir1","dir2","dir3"] }], "version":1}. "log_dirs" is optional; when given, its length must equal the length of the replicas list, each "any" or an absolute log dir path on the broker.`)
	fs.StringVar(&topicsFile, "topics-to-move-json-file", "", `Generate a reassignment configuration to move the partitions of the specified topics to the list of brokers specified by the --broker-list option. The format to use is - {"topics": [{"topic": "foo"},{"topic": "foo1"}], "version":1}`)
	fs.StringVar(&brokerList, "broker-list", "", `The list of brokers to which the partitions need to be reassigned in the form "0,1,2". This is required if --topics-to-move-json-file is used to generate reassignment configuration`)
	fs.BoolVar(&disableRack, "disable-rack-aware", false, "Disable rack aware replica assignment")
	fs.StringVar(&throttleS, "throttle", "-1", "The movement of partitions between brokers will be throttled to this value (bytes/sec). This option can be included with --execute when a reassignment is started, and it can be altered by resubmitting the current reassignment along with the --additional flag. The throttle rate should be at least 1 KB/s.")
	fs.StringVar(&logDirThrottleS, "replica-alter-log-dirs-throttle", "-1", "The movement of replicas between log directories on the same broker will be throttled to this value (bytes/sec). This option can be included with --execute when a reassignment is started, and it can be altered by resubmitting the current reassignment along with the --additional flag. The throttle rate should be at least 1 KB/s.")
	fs.StringVar(&timeoutS, "timeout", "10000", "The maximum time in ms to wait for log directory replica assignment to begin.")
	fs.BoolVar(&additional, "additional", false, "Execute this reassignment in addition to any other ongoing ones. This option can also be used to change the throttle of an ongoing reassignment.")
	fs.BoolVar(&preserve, "preserve-throttles", false, "Do not modify broker or topic throttles.")
	fs.BoolVar(&version, "version", false, "Display Kafka version.")
	pos, err := e.parseArgs(fs, args, kafkaReassignUsage)
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
	actions := map[string]bool{"generate": generate, "execute": execute, "verify": verify, "cancel": cancel, "list": list}
	var action string
	n := 0
	for _, a := range []string{"generate", "execute", "verify", "cancel", "list"} {
		if actions[a] {
			action, n = a, n+1
		}
	}
	if n != 1 {
		return e.usagef("Command must include exactly one action: --generate, --execute, --verify, --cancel, --list")
	}
	if bootstrapController != "" {
		return e.argf("--bootstrap-controller is not supported by Moldau; use --bootstrap-server")
	}
	required := map[string][]string{
		"verify":   {"reassignment-json-file"},
		"generate": {"topics-to-move-json-file", "broker-list"},
		"execute":  {"reassignment-json-file"},
		"cancel":   {"reassignment-json-file"},
	}
	permitted := map[string][]string{
		"verify":   {"bootstrap-server", "command-config", "preserve-throttles"},
		"generate": {"bootstrap-server", "broker-list", "command-config", "disable-rack-aware"},
		"execute":  {"additional", "bootstrap-server", "command-config", "throttle", "replica-alter-log-dirs-throttle", "timeout"},
		"cancel":   {"bootstrap-server", "command-config", "preserve-throttles", "timeout"},
		"list":     {"bootstrap-server", "command-config"},
	}
	for _, r := range required[action] {
		if !isFlagSet(fs, r) {
			return e.usagef("Missing required argument \"[%s]\"", r)
		}
	}
	var bad string
	fs.Visit(func(f *flag.Flag) {
		if bad == "" && f.Name != action && f.Name != "version" && !slices.Contains(required[action], f.Name) && !slices.Contains(permitted[action], f.Name) {
			bad = f.Name
		}
	})
	if bad != "" {
		return e.usagef("Option \"[%s]\" can't be used with action \"[%s]\"", bad, action)
	}
	throttle, err := parseLong(e, "throttle", throttleS)
	if err != nil {
		return err
	}
	logDirThrottle, err := parseLong(e, "replica-alter-log-dirs-throttle", logDirThrottleS)
	if err != nil {
		return err
	}
	timeoutMs, err := parseLong(e, "timeout", timeoutS)
	if err != nil {
		return err
	}
	cfgBootstrap, _, err := e.commandConfigBootstrap(commandConfig, "command-config", nil)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, cfgBootstrap)
	if err != nil {
		return err
	}
	readFile := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", failf("%s (No such file or directory)", path)
		}
		return string(b), nil
	}
	adm, err := deps.open(seeds)
	if err != nil {
		return err
	}
	defer adm.Close()
	r := &reassignTool{e: e, adm: adm, deps: deps}
	ctx, cancelCtx := e.adminCtx()
	defer cancelCtx()
	switch action {
	case "verify":
		var js string
		if js, err = readFile(reassignFile); err == nil {
			_, err = r.verify(ctx, js, preserve)
		}
	case "generate":
		var js string
		if js, err = readFile(topicsFile); err == nil {
			err = r.generate(ctx, js, brokerList, !disableRack)
		}
	case "execute":
		var js string
		if js, err = readFile(reassignFile); err == nil {
			err = r.execute(ctx, additional, js, throttle, logDirThrottle, time.Duration(timeoutMs)*time.Millisecond)
		}
	case "cancel":
		var js string
		if js, err = readFile(reassignFile); err == nil {
			err = r.cancel(ctx, js, preserve, time.Duration(timeoutMs)*time.Millisecond)
		}
	case "list":
		err = r.list(ctx)
	}
	return toolExit(e, err)
}

// toolExit prints err the way Kafka's tool does (stdout, exit 1).
func toolExit(e *env, err error) error {
	if err == nil {
		return nil
	}
	var te *toolError
	switch {
	case errors.As(err, &te) && te.terse:
		fmt.Fprintln(e.stdout, te.msg)
	case errors.As(err, &te):
		fmt.Fprintln(e.stdout, "Error: "+te.msg)
	default:
		fmt.Fprintln(e.stdout, "Error: "+err.Error())
	}
	return &exitError{code: 1}
}

func parseLong(e *env, name, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, e.argf("--%s must be a number, got %q", name, s)
	}
	return n, nil
}

// reassignTool runs the actions against one cluster.
type reassignTool struct {
	e    *env
	adm  moveAdmin
	deps moveDeps
}

func (r *reassignTool) printf(format string, a ...any) { fmt.Fprintf(r.e.stdout, format, a...) }

// reassignEntry is one partition of a reassignment JSON file, in file order.
type reassignEntry struct {
	tp
	Replicas []int32
}

// reassignmentJSON is Kafka's reassignment file (version 1).
type reassignmentJSON struct {
	Version    *int `json:"version"`
	Partitions []struct {
		Topic     *string   `json:"topic"`
		Partition *int32    `json:"partition"`
		Replicas  *[]int32  `json:"replicas"`
		LogDirs   *[]string `json:"log_dirs"`
	} `json:"partitions"`
}

// parseReassignment parses a reassignment JSON: the partitions in file order (duplicates kept
// for the caller to check) and the replicas with an explicit log dir.
func parseReassignment(js string) ([]reassignEntry, map[replicaKey]string, error) {
	var doc reassignmentJSON
	dec := json.NewDecoder(strings.NewReader(js))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, failf("The input string is not a valid JSON: %v", err)
	}
	if doc.Version != nil && *doc.Version != 1 {
		return nil, nil, failf("Not supported version field value %d", *doc.Version)
	}
	var parts []reassignEntry
	dirs := map[replicaKey]string{}
	for _, p := range doc.Partitions {
		switch {
		case p.Topic == nil:
			return nil, nil, failf("No such field exists: `topic`")
		case p.Partition == nil:
			return nil, nil, failf("No such field exists: `partition`")
		case p.Replicas == nil:
			return nil, nil, failf("No such field exists: `replicas`")
		}
		part := tp{Topic: *p.Topic, Partition: *p.Partition}
		replicas := *p.Replicas
		logDirs := make([]string, len(replicas))
		for i := range logDirs {
			logDirs[i] = anyLogDir
		}
		if p.LogDirs != nil {
			logDirs = *p.LogDirs
		}
		if len(logDirs) != len(replicas) {
			return nil, nil, failf("Size of replicas list %s is different from size of log dirs list %s for partition %s",
				javaList(replicas), javaStrings(logDirs), part)
		}
		parts = append(parts, reassignEntry{tp: part, Replicas: replicas})
		for i, d := range logDirs {
			if d != anyLogDir {
				dirs[replicaKey{tp: part, Broker: replicas[i]}] = d
			}
		}
	}
	return parts, dirs, nil
}

// javaList formats ints as Java's List.toString: [1, 2, 3].
func javaList[T int32 | int](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func javaStrings(xs []string) string { return "[" + strings.Join(xs, ", ") + "]" }

func joinIDs(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ",")
}

func joinTPs(ps []tp) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func sortedTPs[V any](m map[tp]V) []tp {
	out := make([]tp, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b tp) int { return a.Compare(b) })
	return out
}

// formatReassignmentJSON is Kafka's formatAsReassignmentJson: compact, partitions sorted,
// log_dirs "any" unless a dir is given.
func formatReassignmentJSON(parts map[tp][]int32, dirs map[replicaKey]string) string {
	type entry struct {
		Topic     string   `json:"topic"`
		Partition int32    `json:"partition"`
		Replicas  []int32  `json:"replicas"`
		LogDirs   []string `json:"log_dirs"`
	}
	doc := struct {
		Version    int     `json:"version"`
		Partitions []entry `json:"partitions"`
	}{Version: 1, Partitions: []entry{}}
	for _, p := range sortedTPs(parts) {
		rs := parts[p]
		ld := make([]string, len(rs))
		for i, b := range rs {
			ld[i] = anyLogDir
			if d, ok := dirs[replicaKey{tp: p, Broker: b}]; ok {
				ld[i] = d
			}
		}
		doc.Partitions = append(doc.Partitions, entry{Topic: p.Topic, Partition: p.Partition, Replicas: append([]int32{}, rs...), LogDirs: ld})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(doc) // a struct of strings and ints cannot fail to encode
	return strings.TrimSuffix(buf.String(), "\n")
}

// ---- --generate

func (r *reassignTool) generate(ctx context.Context, topicsJSON, brokerListS string, rackAware bool) error {
	var brokers []int32
	for s := range strings.SplitSeq(brokerListS, ",") {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return failf("For input string: \"%s\"", s)
		}
		brokers = append(brokers, int32(n))
	}
	if d := duplicates(brokers); len(d) > 0 {
		return failf("Broker list contains duplicate entries: %s", javaList(d))
	}
	topics, err := parseTopicsJSON(topicsJSON)
	if err != nil {
		return err
	}
	if d := duplicates(topics); len(d) > 0 {
		return failf("List of topics to reassign contains duplicate entries: %s", javaStrings(d))
	}
	view, err := r.adm.Describe(ctx, topics)
	if err != nil {
		return failf("%v", err)
	}
	// Kafka's getBrokerMetadata: the listed brokers that exist, with their racks.
	withRack, listed := 0, 0
	for _, b := range view.Brokers {
		if slices.Contains(brokers, b.ID) {
			listed++
			if b.Rack != "" {
				withRack++
			}
		}
	}
	if rackAware && withRack != 0 && withRack != listed {
		return failf("Not all brokers have rack information. Add --disable-rack-aware in command line to make replica assignment without rack information.")
	}
	model := modelOf(view, nil)
	plan, err := rebalance.Generate(model, topics, brokers, rackAware, r.deps.intn)
	if err != nil {
		return failf("%v", err)
	}
	current := map[tp][]int32{}
	proposed := map[tp][]int32{}
	for _, m := range plan.Moves {
		current[m.TopicPartition] = m.From
		proposed[m.TopicPartition] = m.To
	}
	r.printf("Current partition replica assignment\n%s\n\n", formatReassignmentJSON(current, nil))
	r.printf("Proposed partition reassignment configuration\n%s\n", formatReassignmentJSON(proposed, nil))
	return nil
}

func duplicates[T comparable](xs []T) []T {
	seen := map[T]int{}
	var out []T
	for _, x := range xs {
		seen[x]++
		if seen[x] == 2 {
			out = append(out, x)
		}
	}
	return out
}

func parseTopicsJSON(js string) ([]string, error) {
	var doc struct {
		Version *int `json:"version"`
		Topics  []struct {
			Topic *string `json:"topic"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return nil, failf("The input string is not a valid JSON: %v", err)
	}
	if doc.Version != nil && *doc.Version != 1 {
		return nil, failf("Not supported version field value %d", *doc.Version)
	}
	var out []string
	for _, t := range doc.Topics {
		if t.Topic == nil {
			return nil, failf("No such field exists: `topic`")
		}
		out = append(out, *t.Topic)
	}
	return out, nil
}

// modelOf turns a cluster view (and replica sizes, if known) into the planner's model; a
// partition's size is its leader's replica size (else the largest replica's).
func modelOf(v clusterView, sizes map[int32]map[tp]replicaDir) rebalance.Cluster {
	c := rebalance.Cluster{Brokers: v.Brokers}
	for _, p := range v.Partitions {
		var size int64
		if s, ok := sizes[p.Leader][p.tp]; ok {
			size = s.Size
		} else {
			for _, b := range p.Replicas {
				size = max(size, sizes[b][p.tp].Size)
			}
		}
		c.Partitions = append(c.Partitions, rebalance.Partition{TopicPartition: p.tp, Replicas: p.Replicas, Leader: p.Leader, Size: size})
	}
	return c
}

// ---- --execute

// validateExecute is Kafka's parseExecuteAssignmentArgs checks.
func validateExecute(parts []reassignEntry) (map[tp][]int32, error) {
	if len(parts) == 0 {
		return nil, failf("Partition reassignment list cannot be empty")
	}
	for _, p := range parts {
		if len(p.Replicas) == 0 {
			return nil, failf("Partition replica list cannot be empty")
		}
	}
	var names []tp
	for _, p := range parts {
		names = append(names, p.tp)
	}
	if d := duplicates(names); len(d) > 0 {
		return nil, failf("Partition reassignment contains duplicate topic partitions: %s", joinTPs(d))
	}
	var msgs []string
	for _, p := range parts {
		if d := duplicates(p.Replicas); len(d) > 0 {
			msgs = append(msgs, fmt.Sprintf("%s contains multiple entries for %s", p.tp, joinIDs(d)))
		}
	}
	if len(msgs) > 0 {
		return nil, failf("Partition replica lists may not contain duplicate entries: %s", strings.Join(msgs, ". "))
	}
	out := make(map[tp][]int32, len(parts))
	for _, p := range parts {
		out[p.tp] = p.Replicas
	}
	return out, nil
}

// currentAssignment returns the current replicas of parts (Kafka's
// getReplicaAssignmentForPartitions) and the cluster view.
func (r *reassignTool) currentAssignment(ctx context.Context, parts []tp) (map[tp][]int32, clusterView, error) {
	var topics []string
	for _, p := range parts {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	view, err := r.adm.Describe(ctx, topics)
	if err != nil {
		return nil, clusterView{}, failf("%v", err)
	}
	out := map[tp][]int32{}
	var missing []string
	for _, p := range parts {
		pv, ok := view.partition(p)
		if !ok {
			missing = append(missing, p.String())
			continue
		}
		out[p] = pv.Replicas
	}
	if len(missing) > 0 {
		return nil, clusterView{}, failf("Unable to find partition: %s", strings.Join(missing, ", "))
	}
	return out, view, nil
}

func (r *reassignTool) execute(ctx context.Context, additional bool, js string, throttle, logDirThrottle int64, timeout time.Duration) error {
	entries, dirs, err := parseReassignment(js)
	if err != nil {
		return err
	}
	proposed, err := validateExecute(entries)
	if err != nil {
		return err
	}
	ongoing, err := r.adm.ListReassignments(ctx, nil)
	if err != nil {
		return failf("%v", err)
	}
	if !additional && len(ongoing) > 0 {
		return terse("%s", cannotExecuteBecauseOfExisting)
	}
	current, view, err := r.currentAssignment(ctx, sortedTPs(proposed))
	if err != nil {
		return err
	}
	for _, p := range sortedTPs(proposed) {
		for _, b := range proposed[p] {
			if !slices.Contains(view.brokerIDs(), b) {
				return failf("Unknown broker id %d", b)
			}
		}
	}
	r.printf("Current partition replica assignment\n\n%s\n\nSave this to use as the --reassignment-json-file option during rollback\n",
		formatReassignmentJSON(current, nil))
	if throttle >= 0 || logDirThrottle >= 0 {
		r.printf("%s\n", mustRunVerifyPeriodically)
		if throttle >= 0 {
			moves := proposedMoveMap(ongoing, proposed, current)
			if err := setReassignmentThrottle(ctx, r.adm, moves, throttle); err != nil {
				return failf("%v", err)
			}
			r.printf("The inter-broker throttle limit was set to %d B/s\n", throttle)
		}
		if logDirThrottle >= 0 {
			var brokers []int32
			for k := range dirs {
				if !slices.Contains(brokers, k.Broker) {
					brokers = append(brokers, k.Broker)
				}
			}
			slices.Sort(brokers)
			v := strconv.FormatInt(logDirThrottle, 10)
			var ch []configChange
			for _, b := range brokers {
				ch = append(ch, configChange{Broker: true, Name: strconv.Itoa(int(b)), Key: alterLogDirsThrottledRate, Value: &v})
			}
			if len(ch) > 0 {
				if err := r.adm.AlterConfigs(ctx, ch); err != nil {
					return failf("%v", err)
				}
			}
			r.printf("The replica-alter-dir throttle limit was set to %d B/s\n", logDirThrottle)
		}
	}
	errs, err := r.adm.AlterReassignments(ctx, proposed)
	if err != nil {
		return failf("%v", err)
	}
	if len(errs) > 0 {
		var lines []string
		for _, p := range sortedTPs(errs) {
			lines = append(lines, p.String()+": "+kafkaMessage(errs[p]))
		}
		return terse("Error reassigning partition(s):\n%s", strings.Join(lines, "\n"))
	}
	r.printf("Successfully started partition reassignment%s for %s\n", plural(len(proposed)), joinTPs(sortedTPs(proposed)))
	if len(dirs) > 0 {
		return r.executeMoves(ctx, dirs, timeout)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// executeMoves starts replica log dir moves, retrying those whose replica is not on its broker
// yet (it is being added) until timeout, as Kafka's executeMoves.
func (r *reassignTool) executeMoves(ctx context.Context, moves map[replicaKey]string, timeout time.Duration) error {
	pending := make(map[replicaKey]string, len(moves))
	for k, v := range moves {
		pending[k] = v
	}
	deadline := r.e.now().Add(timeout)
	for {
		notYet, err := r.adm.AlterReplicaLogDirs(ctx, pending)
		if err != nil {
			return failf("%v", err)
		}
		var started []replicaKey
		for k := range pending {
			if !slices.Contains(notYet, k) {
				started = append(started, k)
			}
		}
		slices.SortFunc(started, compareReplicaKeys)
		for _, k := range started {
			r.printf("Successfully started moving log directory to %s for replica %s-%d with broker %d \n", pending[k], k.Topic, k.Partition, k.Broker)
			delete(pending, k)
		}
		if len(pending) == 0 {
			return nil
		}
		if !r.e.now().Before(deadline) {
			keys := make([]replicaKey, 0, len(pending))
			for k := range pending {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, compareReplicaKeys)
			s := make([]string, len(keys))
			for i, k := range keys {
				s[i] = k.String()
			}
			return terse("Timed out before log directory move%s could be started for: %s", plural(len(keys)), strings.Join(s, ","))
		}
		if err := r.deps.sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// partitionMove is one partition's sources (its replicas before the move) and destinations
// (the replicas it gains), Kafka's PartitionMove.
type partitionMove struct {
	sources, destinations []int32
}

// proposedMoveMap is Kafka's calculateProposedMoveMap: the moves in progress plus the proposed
// ones, whose sources are the in-progress move's sources or else the current replicas.
func proposedMoveMap(ongoing map[tp]reassignment, proposed, current map[tp][]int32) map[tp]partitionMove {
	moves := map[tp]partitionMove{}
	for p, ra := range ongoing {
		var src []int32
		for _, b := range ra.Replicas {
			if !slices.Contains(ra.Adding, b) {
				src = append(src, b)
			}
		}
		moves[p] = partitionMove{sources: src, destinations: slices.Clone(ra.Adding)}
	}
	for p, target := range proposed {
		src := current[p]
		if m, ok := moves[p]; ok {
			src = m.sources
		}
		var dst []int32
		for _, b := range target {
			if !slices.Contains(src, b) {
				dst = append(dst, b)
			}
		}
		moves[p] = partitionMove{sources: slices.Clone(src), destinations: dst}
	}
	return moves
}

// throttleConfigs computes Kafka's topic throttle lists (leader: partition:source for every
// source; follower: partition:destination for destinations that are not sources), per topic,
// sorted as strings as Kafka's TreeSet does, and the brokers involved (sorted).
func throttleConfigs(moves map[tp]partitionMove) (leader, follower map[string]string, brokers []int32) {
	lset, fset := map[string][]string{}, map[string][]string{}
	for p, m := range moves {
		if _, ok := lset[p.Topic]; !ok {
			lset[p.Topic], fset[p.Topic] = []string{}, []string{}
		}
		for _, s := range m.sources {
			lset[p.Topic] = append(lset[p.Topic], fmt.Sprintf("%d:%d", p.Partition, s))
		}
		for _, d := range m.destinations {
			if !slices.Contains(m.sources, d) {
				fset[p.Topic] = append(fset[p.Topic], fmt.Sprintf("%d:%d", p.Partition, d))
			}
		}
		for _, b := range append(slices.Clone(m.sources), m.destinations...) {
			if !slices.Contains(brokers, b) {
				brokers = append(brokers, b)
			}
		}
	}
	leader, follower = map[string]string{}, map[string]string{}
	for t := range lset {
		l := slices.Compact(slices.Sorted(slices.Values(lset[t])))
		f := slices.Compact(slices.Sorted(slices.Values(fset[t])))
		leader[t], follower[t] = strings.Join(l, ","), strings.Join(f, ",")
	}
	slices.Sort(brokers)
	return leader, follower, brokers
}

// setReassignmentThrottle is Kafka's modifyReassignmentThrottle: the topic lists, then the rate
// on every broker involved.
func setReassignmentThrottle(ctx context.Context, adm moveAdmin, moves map[tp]partitionMove, rate int64) error {
	leader, follower, brokers := throttleConfigs(moves)
	var ch []configChange
	topics := make([]string, 0, len(leader))
	for t := range leader {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		l, f := leader[t], follower[t]
		ch = append(ch, configChange{Name: t, Key: leaderThrottledReplicas, Value: &l}, configChange{Name: t, Key: followerThrottledReplicas, Value: &f})
	}
	if len(ch) > 0 {
		if err := adm.AlterConfigs(ctx, ch); err != nil {
			return err
		}
	}
	v := strconv.FormatInt(rate, 10)
	ch = ch[:0]
	for _, b := range brokers {
		name := strconv.Itoa(int(b))
		ch = append(ch, configChange{Broker: true, Name: name, Key: leaderThrottledRate, Value: &v}, configChange{Broker: true, Name: name, Key: followerThrottledRate, Value: &v})
	}
	if len(ch) == 0 {
		return nil
	}
	return adm.AlterConfigs(ctx, ch)
}

// clearThrottles is Kafka's clearAllThrottles: the broker-level throttles of every broker of the
// cluster and of the targets, and the topic-level ones of the topics, each line printed first.
func clearThrottles(ctx context.Context, w func(string, ...any), adm moveAdmin, view clusterView, targets map[tp][]int32) error {
	brokers := view.brokerIDs()
	for _, rs := range targets {
		for _, b := range rs {
			if !slices.Contains(brokers, b) {
				brokers = append(brokers, b)
			}
		}
	}
	slices.Sort(brokers)
	w("Clearing broker-level throttles on broker%s %s\n", plural(len(brokers)), joinIDs(brokers))
	var ch []configChange
	for _, b := range brokers {
		for _, k := range brokerLevelThrottles {
			ch = append(ch, configChange{Broker: true, Name: strconv.Itoa(int(b)), Key: k})
		}
	}
	if err := adm.AlterConfigs(ctx, ch); err != nil {
		return err
	}
	var topics []string
	for p := range targets {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	slices.Sort(topics)
	w("Clearing topic-level throttles on topic%s %s\n", plural(len(topics)), strings.Join(topics, ","))
	ch = ch[:0]
	for _, t := range topics {
		for _, k := range topicLevelThrottles {
			ch = append(ch, configChange{Name: t, Key: k})
		}
	}
	if len(ch) == 0 {
		return nil
	}
	return adm.AlterConfigs(ctx, ch)
}

// ---- --verify

// partitionState is Kafka's PartitionReassignmentState.
type partitionState struct {
	current, target []int32
	done            bool
}

// partitionStates is Kafka's findPartitionReassignmentStates: each target's state, and whether
// any reassignment at all is in progress in the cluster.
func (r *reassignTool) partitionStates(ctx context.Context, targets []reassignEntry) (map[tp]partitionState, bool, clusterView, error) {
	ongoing, err := r.adm.ListReassignments(ctx, nil)
	if err != nil {
		return nil, false, clusterView{}, failf("%v", err)
	}
	// One Metadata request for all: a partition of a topic that does not exist has an empty
	// replica set, as in Kafka.
	all, err := r.adm.Describe(ctx, nil)
	if err != nil {
		return nil, false, clusterView{}, failf("%v", err)
	}
	states := map[tp]partitionState{}
	stale := false
	for _, t := range targets {
		if ra, ok := ongoing[t.tp]; ok {
			states[t.tp] = partitionState{current: ra.Replicas, target: t.Replicas}
			continue
		}
		var cur []int32
		if pv, ok := all.partition(t.tp); ok {
			cur = pv.Replicas
		}
		// Moldau answers the list from the answering node's metadata image and Metadata may
		// come from another node, a little behind: replicas that are the target followed by
		// others are a move that node still sees running.
		if isPrefix(t.Replicas, cur) {
			states[t.tp] = partitionState{current: cur, target: t.Replicas}
			stale = true
			continue
		}
		states[t.tp] = partitionState{current: cur, target: t.Replicas, done: true}
	}
	return states, len(ongoing) > 0 || stale, all, nil
}

func partitionStatesText(states map[tp]partitionState) string {
	lines := []string{"Status of partition reassignment:"}
	for _, p := range sortedTPs(states) {
		s := states[p]
		switch {
		case !s.done:
			lines = append(lines, fmt.Sprintf("Reassignment of partition %s is still in progress.", p))
		case slices.Equal(s.current, s.target):
			lines = append(lines, fmt.Sprintf("Reassignment of partition %s is completed.", p))
		default:
			lines = append(lines, fmt.Sprintf("There is no active reassignment of partition %s, but replica set is %s rather than %s.", p, joinIDs(s.current), joinIDs(s.target)))
		}
	}
	return strings.Join(lines, "\n")
}

// logDirState is one replica's log dir move, Kafka's LogDirMoveState.
type logDirState struct {
	kind                    string // missingReplica, missingLogDir, active, cancelled, completed
	current, target, future string
}

func (s logDirState) done() bool { return s.kind == "cancelled" || s.kind == "completed" }

func (r *reassignTool) logDirStates(ctx context.Context, targets map[replicaKey]string) (map[replicaKey]logDirState, error) {
	out := map[replicaKey]logDirState{}
	if len(targets) == 0 {
		return out, nil
	}
	var brokers []int32
	var tps []tp
	for k := range targets {
		if !slices.Contains(brokers, k.Broker) {
			brokers = append(brokers, k.Broker)
		}
		if !slices.Contains(tps, k.tp) {
			tps = append(tps, k.tp)
		}
	}
	sizes, err := r.adm.LogDirSizes(ctx, brokers, tps)
	if err != nil {
		return nil, failf("%v", err)
	}
	for k, target := range targets {
		d, ok := sizes[k.Broker][k.tp]
		switch {
		case !ok:
			out[k] = logDirState{kind: "missingReplica", target: target}
		case d.Dir == "" && d.FutureDir != "":
			// Only the future replica is listed (the broker is swapping it in): moving.
			out[k] = logDirState{kind: "active", target: target, future: d.FutureDir}
		case d.Dir == "":
			out[k] = logDirState{kind: "missingLogDir", target: target}
		case d.FutureDir == "" && d.Dir == target:
			out[k] = logDirState{kind: "completed", target: target}
		case d.FutureDir == "":
			out[k] = logDirState{kind: "cancelled", current: d.Dir, target: target}
		default:
			out[k] = logDirState{kind: "active", current: d.Dir, target: target, future: d.FutureDir}
		}
	}
	return out, nil
}

func logDirStatesText(states map[replicaKey]logDirState) string {
	keys := make([]replicaKey, 0, len(states))
	for k := range states {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareReplicaKeys)
	var lines []string
	for _, k := range keys {
		s := states[k]
		switch s.kind {
		case "missingLogDir":
			lines = append(lines, fmt.Sprintf("Partition %s is not found in any live log dir on broker %d. There is likely an offline log directory on the broker.", k.tp, k.Broker))
		case "missingReplica":
			lines = append(lines, fmt.Sprintf("Partition %s cannot be found in any live log directory on broker %d.", k.tp, k.Broker))
		case "active":
			if s.target == s.future {
				lines = append(lines, fmt.Sprintf("Reassignment of replica %s is still in progress.", k))
			} else {
				lines = append(lines, fmt.Sprintf("Partition %s on broker %d is being moved to log dir %s instead of %s.", k.tp, k.Broker, s.future, s.target))
			}
		case "cancelled":
			lines = append(lines, fmt.Sprintf("Partition %s on broker %d is not being moved from log dir %s to %s.", k.tp, k.Broker, s.current, s.target))
		case "completed":
			lines = append(lines, fmt.Sprintf("Reassignment of replica %s completed successfully.", k))
		}
	}
	return strings.Join(lines, "\n")
}

// verify is Kafka's verifyAssignment; it reports whether anything is still moving.
func (r *reassignTool) verify(ctx context.Context, js string, preserve bool) (bool, error) {
	entries, dirs, err := parseReassignment(js)
	if err != nil {
		return false, err
	}
	states, partsOngoing, view, err := r.partitionStates(ctx, entries)
	if err != nil {
		return false, err
	}
	r.printf("%s\n", partitionStatesText(states))
	moves, err := r.logDirStates(ctx, dirs)
	if err != nil {
		return false, err
	}
	r.printf("%s\n", logDirStatesText(moves))
	movesOngoing := false
	for _, s := range moves {
		if !s.done() {
			movesOngoing = true
		}
	}
	if !partsOngoing && !movesOngoing && !preserve {
		targets := map[tp][]int32{}
		for _, e := range entries {
			targets[e.tp] = e.Replicas
		}
		if err := clearThrottles(ctx, r.printf, r.adm, view, targets); err != nil {
			return false, failf("%v", err)
		}
	}
	return partsOngoing || movesOngoing, nil
}

// ---- --cancel

func (r *reassignTool) cancel(ctx context.Context, js string, preserve bool, timeout time.Duration) error {
	entries, dirs, err := parseReassignment(js)
	if err != nil {
		return err
	}
	var parts []tp
	for _, e := range entries {
		parts = append(parts, e.tp)
	}
	ongoing, err := r.adm.ListReassignments(ctx, parts)
	if err != nil {
		return failf("%v", err)
	}
	cancelling := map[tp][]int32{}
	for p, ra := range ongoing {
		if len(ra.Adding) > 0 || len(ra.Removing) > 0 {
			cancelling[p] = nil
		}
	}
	if len(cancelling) > 0 {
		errs, err := r.adm.AlterReassignments(ctx, cancelling)
		if err != nil {
			return failf("%v", err)
		}
		if len(errs) > 0 {
			var lines []string
			for _, p := range sortedTPs(errs) {
				lines = append(lines, p.String()+": "+kafkaMessage(errs[p]))
			}
			return terse("Error cancelling partition reassignment%s for:\n%s", plural(len(errs)), strings.Join(lines, "\n"))
		}
		r.printf("Successfully cancelled partition reassignment%s for: %s\n", plural(len(cancelling)), joinTPs(sortedTPs(cancelling)))
	} else {
		r.printf("None of the specified partition reassignments are active.\n")
	}
	states, err := r.logDirStates(ctx, dirs)
	if err != nil {
		return err
	}
	back := map[replicaKey]string{}
	for k, s := range states {
		if s.kind == "active" {
			back[k] = s.current
		}
	}
	if len(back) == 0 {
		// Kafka prints this without a line break (System.out.print).
		r.printf("None of the specified partition moves are active.")
	} else if err := r.executeMoves(ctx, back, timeout); err != nil {
		return err
	}
	if !preserve {
		view, err := r.adm.Describe(ctx, nil)
		if err != nil {
			return failf("%v", err)
		}
		targets := map[tp][]int32{}
		for _, e := range entries {
			targets[e.tp] = e.Replicas
		}
		if err := clearThrottles(ctx, r.printf, r.adm, view, targets); err != nil {
			return failf("%v", err)
		}
	}
	return nil
}

// ---- --list

func reassignmentsText(ongoing map[tp]reassignment) string {
	if len(ongoing) == 0 {
		return "No partition reassignments found."
	}
	lines := []string{"Current partition reassignments:"}
	for _, p := range sortedTPs(ongoing) {
		ra := ongoing[p]
		line := fmt.Sprintf("%s: replicas: %s.", p, joinIDs(ra.Replicas))
		if len(ra.Adding) > 0 {
			line += fmt.Sprintf(" adding: %s.", joinIDs(ra.Adding))
		}
		if len(ra.Removing) > 0 {
			line += fmt.Sprintf(" removing: %s.", joinIDs(ra.Removing))
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func (r *reassignTool) list(ctx context.Context) error {
	ongoing, err := r.adm.ListReassignments(ctx, nil)
	if err != nil {
		return failf("%v", err)
	}
	r.printf("%s\n", reassignmentsText(ongoing))
	return nil
}
