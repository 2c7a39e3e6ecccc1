package cli

// kafka-leader-election: Apache Kafka's LeaderElectionCommand, with its flags, checks and output
// lines. One ElectLeaders request (sent to the controller; any Moldau node forwards it there):
//
//	Successfully completed leader election (PREFERRED) for partitions t-0, t-1
//	Valid replica already elected for partitions t-2
//	Error completing leader election (PREFERRED) for partition: t-3: org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: The preferred leader was not available.
//
// then "N replica(s) could not be elected" on stderr and exit 1 when any failed. Kafka prints the
// partitions of each line in hash-set order; Moldau sorts them (topic, then partition).

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const kafkaLeaderElectionUsage = `Usage: kafka-leader-election --bootstrap-server HOST:PORT --election-type PREFERRED|UNCLEAN (--topic TOPIC --partition N | --all-topic-partitions | --path-to-json-file FILE)

This tool attempts to elect a new leader for a set of topic partitions. The type of elections supported are preferred replicas and unclean replicas.`

// electionPartition is one partition of a kafka-leader-election run.
type electionPartition struct {
	Topic     string
	Partition int32
}

func (p electionPartition) String() string { return p.Topic + "-" + strconv.Itoa(int(p.Partition)) }

func compareElectionPartitions(a, b electionPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// electionResult is one partition's answer: code 0 elected, ELECTION_NOT_NEEDED already led by a
// valid replica, anything else failed (message: the broker's, "" for Kafka's default).
type electionResult struct {
	electionPartition
	code    int16
	message string
}

func runKafkaLeaderElection(e *env, args []string) error {
	fs := newFlagSet("kafka-leader-election")
	var bootstrap, electionType, topic, partitionS, jsonFile, adminConfig string
	var all, version bool
	fs.StringVar(&bootstrap, "bootstrap-server", "", "A hostname and port for the broker to connect to, in the form host:port. Multiple comma separated URLs can be given. REQUIRED.")
	fs.StringVar(&electionType, "election-type", "", "Type of election to attempt: \"preferred\" (only where the current leader is not the preferred replica) or \"unclean\" (only where there is no leader). REQUIRED.")
	fs.StringVar(&topic, "topic", "", "Name of topic for which to perform an election. Not allowed if --path-to-json-file or --all-topic-partitions is specified.")
	fs.StringVar(&partitionS, "partition", "", "Partition id for which to perform an election. REQUIRED if --topic is specified.")
	fs.BoolVar(&all, "all-topic-partitions", false, "Perform election on all of the eligible topic partitions based on the type of election (see the --election-type flag). Not allowed if --topic or --path-to-json-file is specified.")
	fs.StringVar(&jsonFile, "path-to-json-file", "", `The JSON file with the list of partitions for which leader elections should be performed, e.g. {"partitions": [{"topic": "foo", "partition": 1}, {"topic": "foobar", "partition": 2}]}. Not allowed if --all-topic-partitions or --topic flags are specified.`)
	stringVars(fs, &adminConfig, "", "Configuration properties file to pass to the admin client (bootstrap.servers is used when --bootstrap-server is not given; other settings are ignored)", "admin.config", "command-config")
	fs.BoolVar(&version, "version", false, "Display Kafka version.")
	pos, err := e.parseArgs(fs, args, kafkaLeaderElectionUsage)
	if err != nil {
		return err
	}
	if version {
		fmt.Fprintln(e.stdout, "4.0.0 (Moldau)")
		return nil
	}
	// Kafka's AdminCommandFailedException: the message on stderr, exit 1.
	fail := func(format string, a ...any) error { return &exitError{code: 1, msg: fmt.Sprintf(format, a...)} }
	if len(pos) > 0 {
		return fail("Found non-option arguments: %s", strings.Join(pos, " "))
	}
	fileBootstrap, _, err := e.commandConfigBootstrap(adminConfig, "admin.config", nil)
	if err != nil {
		return err
	}
	var missing []string
	if bootstrap == "" && fileBootstrap == "" && e.getenv(BootstrapEnv) == "" {
		missing = append(missing, "bootstrap-server")
	}
	if !isFlagSet(fs, "election-type") {
		missing = append(missing, "election-type")
	}
	if len(missing) > 0 {
		return fail("Missing required option(s): %s", strings.Join(missing, ", "))
	}
	exclusive := 0
	for _, set := range []bool{isFlagSet(fs, "topic"), all, isFlagSet(fs, "path-to-json-file")} {
		if set {
			exclusive++
		}
	}
	if exclusive != 1 {
		return fail("One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file")
	}
	if isFlagSet(fs, "topic") && !isFlagSet(fs, "partition") {
		return fail("Missing required option(s): partition")
	}
	if !isFlagSet(fs, "topic") && isFlagSet(fs, "partition") {
		return fail("Option partition is only allowed if topic is used")
	}
	var typ int8
	var typName string
	switch strings.ToUpper(strings.TrimSpace(electionType)) {
	case "PREFERRED":
		typ, typName = 0, "PREFERRED"
	case "UNCLEAN":
		typ, typName = 1, "UNCLEAN"
	default:
		return fail("Cannot parse argument '%s' of option election-type: value must be one of [PREFERRED, UNCLEAN]", electionType)
	}
	var parts []electionPartition // nil: every partition
	switch {
	case isFlagSet(fs, "topic"):
		p, err := strconv.ParseInt(strings.TrimSpace(partitionS), 10, 32)
		if err != nil {
			return fail("Cannot parse argument '%s' of option partition", partitionS)
		}
		parts = []electionPartition{{Topic: topic, Partition: int32(p)}}
	case isFlagSet(fs, "path-to-json-file"):
		data, err := os.ReadFile(jsonFile)
		if err != nil {
			return fail("%s (No such file or directory)", jsonFile)
		}
		if parts, err = parseElectionJSON(data); err != nil {
			return fail("%v", err)
		}
	}

	results, err := e.electLeaders(e.bootstrap(cmp.Or(bootstrap, fileBootstrap)), typ, parts)
	if err != nil {
		return electionRequestFailed(e.stdout, err)
	}
	if failed := writeElectionResults(e.stdout, typName, results); failed > 0 {
		return fail("%d replica(s) could not be elected", failed)
	}
	return nil
}

// electLeaders sends one ElectLeaders request (parts nil: every partition) and returns each
// partition's answer; the error is the whole request's (a kerr error for a top-level code or a
// cluster authorization failure).
func (e *env) electLeaders(seeds []string, typ int8, parts []electionPartition) ([]electionResult, error) {
	cl, err := newClient(seeds)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := e.adminCtx()
	defer cancel()
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType = typ
	req.TimeoutMillis = int32(e.adminTimeout.Milliseconds() / 2)
	if parts != nil {
		req.Topics = []kmsg.ElectLeadersRequestTopic{}
		for _, p := range parts {
			if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.Topic {
				rt := kmsg.NewElectLeadersRequestTopic()
				rt.Topic = p.Topic
				req.Topics = append(req.Topics, rt)
			}
			rt := &req.Topics[len(req.Topics)-1]
			rt.Partitions = append(rt.Partitions, p.Partition)
		}
	}
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return nil, err
	}
	var results []electionResult
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode == kerr.ClusterAuthorizationFailed.Code {
				return nil, kerr.ClusterAuthorizationFailed
			}
			res := electionResult{electionPartition: electionPartition{Topic: rt.Topic, Partition: rp.Partition}, code: rp.ErrorCode}
			if rp.ErrorMessage != nil {
				res.message = *rp.ErrorMessage
			}
			results = append(results, res)
		}
	}
	return results, nil
}

// electionRequestFailed prints what Kafka's tool prints when the whole request fails and returns
// the exit error (the message again on stderr, exit 1).
func electionRequestFailed(stdout io.Writer, err error) error {
	var msg string
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kerr.RequestTimedOut):
		msg = "Timeout waiting for election results"
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		msg = "Not authorized to perform leader election"
	default:
		var ke *kerr.Error
		if errors.As(err, &ke) {
			return &exitError{code: 1, msg: "java.util.concurrent.ExecutionException: " + javaException(ke.Code, "")}
		}
		return &exitError{code: 1, msg: fmt.Sprintf("Error while making request: %v", err)}
	}
	fmt.Fprintln(stdout, msg)
	return &exitError{code: 1, msg: msg}
}

// sortElectionResults sorts results by partition and splits them into the partitions elected,
// those that needed no election and the failures.
func sortElectionResults(results []electionResult) (elected, notNeeded []string, failed []electionResult) {
	slices.SortFunc(results, func(a, b electionResult) int {
		return compareElectionPartitions(a.electionPartition, b.electionPartition)
	})
	for _, r := range results {
		switch r.code {
		case 0:
			elected = append(elected, r.String())
		case kerr.ElectionNotNeeded.Code:
			notNeeded = append(notNeeded, r.String())
		default:
			failed = append(failed, r)
		}
	}
	return elected, notNeeded, failed
}

// writeElectionResults prints Kafka's three kinds of lines and returns how many partitions failed.
func writeElectionResults(w io.Writer, electionType string, results []electionResult) int {
	succeeded, noop, failed := sortElectionResults(results)
	if len(succeeded) > 0 {
		fmt.Fprintf(w, "Successfully completed leader election (%s) for partitions %s\n", electionType, strings.Join(succeeded, ", "))
	}
	if len(noop) > 0 {
		fmt.Fprintf(w, "Valid replica already elected for partitions %s\n", strings.Join(noop, ", "))
	}
	for _, r := range failed {
		fmt.Fprintf(w, "Error completing leader election (%s) for partition: %s: %s\n", electionType, r, javaException(r.code, r.message))
	}
	return len(failed)
}

// parseElectionJSON reads Kafka's election file: {"partitions": [{"topic": "t", "partition": 0}]}.
// The partitions come back sorted.
func parseElectionJSON(data []byte) ([]electionPartition, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil || doc == nil {
		return nil, errors.New("Replica election data is empty")
	}
	raw, ok := doc["partitions"]
	if !ok {
		return nil, errors.New(`Replica election data is missing "partitions" field`)
	}
	var entries []struct {
		Topic     *string `json:"topic"`
		Partition *int32  `json:"partition"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("Replica election data: \"partitions\" must be an array of {\"topic\": string, \"partition\": int}: %v", err)
	}
	seen := map[electionPartition]int{}
	var out []electionPartition
	for i, en := range entries {
		switch {
		case en.Topic == nil:
			return nil, fmt.Errorf("Replica election data: partitions[%d]: No such field exists: `topic`", i)
		case en.Partition == nil:
			return nil, fmt.Errorf("Replica election data: partitions[%d]: No such field exists: `partition`", i)
		}
		p := electionPartition{Topic: *en.Topic, Partition: *en.Partition}
		if seen[p]++; seen[p] == 1 {
			out = append(out, p)
		}
	}
	var dups []string
	for _, p := range out {
		if seen[p] > 1 {
			dups = append(dups, p.String())
		}
	}
	if len(dups) > 0 {
		return nil, fmt.Errorf("Replica election data contains duplicate partitions: [%s]", strings.Join(dups, ", "))
	}
	slices.SortFunc(out, compareElectionPartitions)
	if out == nil {
		out = []electionPartition{}
	}
	return out, nil
}

// javaDefaultMessages are Kafka's Errors messages for the codes an election answers without a
// message of its own.
var javaDefaultMessages = map[int16]string{
	kerr.PreferredLeaderNotAvailable.Code: "The preferred leader was not available.",
	kerr.EligibleLeadersNotAvailable.Code: "Eligible topic partition leaders are not available.",
	kerr.ElectionNotNeeded.Code:           "Leader election not needed for topic partition.",
	kerr.UnknownTopicOrPartition.Code:     "This server does not host this topic-partition.",
	kerr.NotController.Code:               "This is not the correct controller for this cluster.",
	kerr.RequestTimedOut.Code:             "The request timed out.",
	kerr.ClusterAuthorizationFailed.Code:  "Cluster authorization failed.",
	kerr.UnknownServerError.Code:          "The server experienced an unexpected error when processing the request.",
}

// javaExceptionNames are the Kafka exception classes not named after their error code.
var javaExceptionNames = map[int16]string{
	kerr.UnknownServerError.Code:    "UnknownServerException",
	kerr.RequestTimedOut.Code:       "TimeoutException",
	kerr.InvalidTopicException.Code: "InvalidTopicException",
}

// javaException is how Kafka's tool prints an error: the exception class and its message (the
// broker's, else Kafka's default for the code).
func javaException(code int16, message string) string {
	ke := kerr.ErrorForCode(code)
	var kerrErr *kerr.Error
	if !errors.As(ke, &kerrErr) {
		return fmt.Sprintf("org.apache.kafka.common.errors.UnknownServerException: error code %d", code)
	}
	name, ok := javaExceptionNames[code]
	if !ok {
		var b strings.Builder
		for w := range strings.SplitSeq(strings.ToLower(kerrErr.Message), "_") {
			if w != "" {
				b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
		name = b.String() + "Exception"
	}
	if message == "" {
		message = javaDefaultMessages[code]
	}
	if message == "" {
		message = kerrErr.Description + "."
	}
	return "org.apache.kafka.common.errors." + name + ": " + message
}
