package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/brokertest"
)

// TestLeaderElectionArguments: Kafka's LeaderElectionCommand checks and messages, exit 1; none
// reaches a broker (127.0.0.1:1 would fail if one did).
func TestLeaderElectionArguments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := []string{"--bootstrap-server", "127.0.0.1:1"}
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"--election-type", "preferred", "--all-topic-partitions"}, "Missing required option(s): bootstrap-server\n"},
		{[]string{"--all-topic-partitions"}, "Missing required option(s): bootstrap-server, election-type\n"},
		{append([]string{"--topic", "t", "--partition", "0"}, b...), "Missing required option(s): election-type\n"},
		{append([]string{"--election-type", "unclean", "--topic", "t"}, b...), "Missing required option(s): partition\n"},
		{append([]string{"--election-type", "unclean", "--all-topic-partitions", "--partition", "0"}, b...), "Option partition is only allowed if topic is used\n"},
		{append([]string{"--election-type", "preferred"}, b...), "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file\n"},
		{append([]string{"--election-type", "preferred", "--all-topic-partitions", "--topic", "t", "--partition", "0"}, b...),
			"One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file\n"},
		{append([]string{"--election-type", "sideways", "--all-topic-partitions"}, b...),
			"Cannot parse argument 'sideways' of option election-type: value must be one of [PREFERRED, UNCLEAN]\n"},
		{append([]string{"--election-type", "preferred", "--topic", "t", "--partition", "x"}, b...), "Cannot parse argument 'x' of option partition\n"},
		{append([]string{"--election-type", "preferred", "--path-to-json-file", write("empty.json", "")}, b...), "Replica election data is empty\n"},
		{append([]string{"--election-type", "preferred", "--path-to-json-file", write("nopart.json", `{"x": 1}`)}, b...),
			"Replica election data is missing \"partitions\" field\n"},
		{append([]string{"--election-type", "preferred", "--path-to-json-file",
			write("dup.json", `{"partitions": [{"topic": "a", "partition": 1}, {"topic": "a", "partition": 1}, {"topic": "b", "partition": 0}]}`)}, b...),
			"Replica election data contains duplicate partitions: [a-1]\n"},
	}
	for _, tt := range tests {
		out, errOut, code := runCmd(t, "", "kafka-leader-election", tt.args...)
		if code != 1 || errOut != tt.stderr || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.args, code, out, errOut, tt.stderr)
		}
	}
	// --help prints the usage and exits 0; --admin.config and --command-config are one flag.
	if out, _, code := runCmd(t, "", "kafka-leader-election", "--help"); code != 0 || !strings.Contains(out, "-election-type") || !strings.Contains(out, "-command-config") {
		t.Errorf("help: exit %d %q", code, out)
	}
}

func TestLeaderElectionOutput(t *testing.T) {
	var w bytes.Buffer
	failed := writeElectionResults(&w, "PREFERRED", []electionResult{
		{electionPartition{"t", 10}, 0, ""},
		{electionPartition{"t", 2}, 0, ""},
		{electionPartition{"a", 0}, kerr.ElectionNotNeeded.Code, ""},
		{electionPartition{"t", 3}, kerr.PreferredLeaderNotAvailable.Code, ""},
		{electionPartition{"nosuch", 0}, kerr.UnknownTopicOrPartition.Code, "No such topic as nosuch"},
		{electionPartition{"a", 1}, kerr.ElectionNotNeeded.Code, ""},
	})
	want := "Successfully completed leader election (PREFERRED) for partitions t-2, t-10\n" +
		"Valid replica already elected for partitions a-0, a-1\n" +
		"Error completing leader election (PREFERRED) for partition: nosuch-0: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such topic as nosuch\n" +
		"Error completing leader election (PREFERRED) for partition: t-3: org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: The preferred leader was not available.\n"
	if failed != 2 || w.String() != want {
		t.Errorf("failed %d, output\n%s\nwant\n%s", failed, w.String(), want)
	}
	w.Reset()
	if failed := writeElectionResults(&w, "UNCLEAN", []electionResult{{electionPartition{"t", 0}, kerr.EligibleLeadersNotAvailable.Code, ""}}); failed != 1 ||
		w.String() != "Error completing leader election (UNCLEAN) for partition: t-0: org.apache.kafka.common.errors.EligibleLeadersNotAvailableException: Eligible topic partition leaders are not available.\n" {
		t.Errorf("unclean: %d %q", failed, w.String())
	}
	if got := javaException(kerr.RequestTimedOut.Code, ""); got != "org.apache.kafka.common.errors.TimeoutException: The request timed out." {
		t.Errorf("timeout: %q", got)
	}
}

// TestLeaderElectionAgainstBroker: one node, where every partition is led by its only (preferred)
// replica: the tool's answers for named, unknown and all partitions, both election types.
func TestLeaderElectionAgainstBroker(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	mustRun(t, "", "kafka-topics", "--bootstrap-server", addr, "--create", "--topic", "t", "--partitions", "2")
	b := []string{"--bootstrap-server", addr}

	if out := mustRun(t, "", "kafka-leader-election", append([]string{"--election-type", "PREFERRED", "--all-topic-partitions"}, b...)...); out != "" {
		t.Errorf("all balanced: %q", out)
	}
	if out := mustRun(t, "", "kafka-leader-election", append([]string{"--election-type", "preferred", "--topic", "t", "--partition", "1"}, b...)...); out != "Valid replica already elected for partitions t-1\n" {
		t.Errorf("t-1: %q", out)
	}
	if out := mustRun(t, "", "kafka-leader-election", append([]string{"--election-type", "unclean", "--topic", "t", "--partition", "0"}, b...)...); out != "Valid replica already elected for partitions t-0\n" {
		t.Errorf("unclean t-0: %q", out)
	}
	file := filepath.Join(t.TempDir(), "e.json")
	if err := os.WriteFile(file, []byte(`{"partitions": [{"topic": "t", "partition": 1}, {"topic": "nosuch", "partition": 0}, {"topic": "t", "partition": 9}, {"topic": "t", "partition": 0}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	props := filepath.Join(t.TempDir(), "admin.properties")
	if err := os.WriteFile(props, []byte("bootstrap.servers="+addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, "", "kafka-leader-election", "--election-type", "preferred", "--path-to-json-file", file, "--command-config", props)
	want := "Valid replica already elected for partitions t-0, t-1\n" +
		"Error completing leader election (PREFERRED) for partition: nosuch-0: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such topic as nosuch\n" +
		"Error completing leader election (PREFERRED) for partition: t-9: org.apache.kafka.common.errors.UnknownTopicOrPartitionException: No such partition as t-9\n"
	if code != 1 || out != want || errOut != "2 replica(s) could not be elected\n" {
		t.Errorf("json file: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errOut)
	}
	// moldau cluster elect-leaders: all, a topic, partitions, unclean, failures (exit 1).
	if out := mustRun(t, "", "cluster", "elect-leaders", "-b", addr); out != "Every partition is led by its preferred replica: no election needed.\n" {
		t.Errorf("cluster elect-leaders: %q", out)
	}
	if out := mustRun(t, "", "cluster", "elect-leaders", "t", "t:1", "-b", addr); out != "Already led by the preferred replica: t-0, t-1.\n" {
		t.Errorf("cluster elect-leaders t: %q", out)
	}
	if out := mustRun(t, "", "cluster", "elect-leaders", "--unclean", "-b", addr); out != "Every partition has a leader: no election needed.\n" {
		t.Errorf("cluster elect-leaders --unclean: %q", out)
	}
	if out := mustRun(t, "", "cluster", "elect-leaders", "--unclean", "t:0", "-b", addr); out != "Already led, no election needed: t-0.\n" {
		t.Errorf("cluster elect-leaders --unclean t:0: %q", out)
	}
	out, errOut, code = runCmd(t, "", "cluster", "elect-leaders", "t:0", "nosuch:0", "t:5", "-b", addr)
	want = "Already led by the preferred replica: t-0.\n" +
		"Could not elect a leader for nosuch-0: No such topic as nosuch (UNKNOWN_TOPIC_OR_PARTITION).\n" +
		"Could not elect a leader for t-5: No such partition as t-5 (UNKNOWN_TOPIC_OR_PARTITION).\n"
	if code != 1 || out != want || errOut != "moldau cluster elect-leaders: 2 partition(s) could not be elected\n" {
		t.Errorf("cluster elect-leaders failures: exit %d\nstdout %q\nwant   %q\nstderr %q", code, out, want, errOut)
	}
	if _, errOut, code := runCmd(t, "", "cluster", "elect-leaders", "nosuch", "-b", addr); code != 1 || !strings.Contains(errOut, `topic "nosuch" does not exist`) {
		t.Errorf("cluster elect-leaders unknown topic: exit %d %q", code, errOut)
	}
	if _, errOut, code := runCmd(t, "", "cluster", "elect-leaders", "t:x", "-b", addr); code != 1 || !strings.Contains(errOut, `bad partition "t:x"`) {
		t.Errorf("cluster elect-leaders t:x: exit %d %q", code, errOut)
	}

	// The tool is reachable under its Kafka name with .sh.
	if name, ok := ToolName("/opt/kafka/bin/kafka-leader-election.sh"); !ok || name != "kafka-leader-election" {
		t.Errorf("ToolName: %q %v", name, ok)
	}
}
