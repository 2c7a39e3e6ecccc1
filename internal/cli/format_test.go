package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecord() *kgo.Record {
	return &kgo.Record{
		Topic:     "t",
		Partition: 2,
		Offset:    5,
		Timestamp: time.UnixMilli(1700000000000),
		Key:       []byte("k1"),
		Value:     []byte("v1"),
		Headers:   []kgo.RecordHeader{{Key: "h1", Value: []byte("x")}, {Key: "h2", Value: []byte("y")}},
	}
}

func TestMessageFormatter(t *testing.T) {
	noKey := testRecord()
	noKey.Key, noKey.Headers = nil, nil
	nullValue := testRecord()
	nullValue.Value = nil
	nullValue.Headers = []kgo.RecordHeader{{Key: "h", Value: nil}}
	tests := []struct {
		name  string
		props map[string]string
		rec   *kgo.Record
		want  string
	}{
		{"default value only", nil, testRecord(), "v1\n"},
		{"key", map[string]string{"print.key": "true"}, testRecord(), "k1\tv1\n"},
		{"null key", map[string]string{"print.key": "true"}, noKey, "null\tv1\n"},
		{"timestamp key", map[string]string{"print.timestamp": "true", "print.key": "true"}, testRecord(), "CreateTime:1700000000000\tk1\tv1\n"},
		{"partition offset", map[string]string{"print.partition": "true", "print.offset": "true"}, testRecord(), "Partition:2\tOffset:5\tv1\n"},
		{"headers", map[string]string{"print.headers": "true"}, testRecord(), "h1:x,h2:y\tv1\n"},
		{"no headers", map[string]string{"print.headers": "true"}, noKey, "NO_HEADERS\tv1\n"},
		{"null header value and null value", map[string]string{"print.headers": "true"}, nullValue, "h:null\tnull\n"},
		{"everything", map[string]string{"print.timestamp": "true", "print.partition": "true", "print.offset": "true", "print.headers": "true", "print.key": "true"}, testRecord(),
			"CreateTime:1700000000000\tPartition:2\tOffset:5\th1:x,h2:y\tk1\tv1\n"},
		{"custom separators", map[string]string{"print.key": "true", "key.separator": ":", "line.separator": "|", "headers.separator": ";", "print.headers": "true"}, testRecord(), "h1:x;h2:y:k1:v1|"},
		{"no value", map[string]string{"print.key": "true", "print.value": "false"}, testRecord(), "k1\n"},
		{"TRUE is true, yes is false", map[string]string{"print.key": "TRUE", "print.offset": "yes"}, testRecord(), "k1\tv1\n"},
		{"null literal", map[string]string{"print.key": "true", "null.literal": "<nil>"}, noKey, "<nil>\tv1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, err := messageFormatterFrom(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := f.write(&b, tt.rec); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestRecordTemplate(t *testing.T) {
	tests := []struct{ tmpl, want string }{
		{"%v", "v1\n"},
		{"%k\t%v", "k1\tv1\n"},
		{`%T/%p@%o %t %k=%v [%h] 100%%\n`, "t/2@5 1700000000000 k1=v1 [h1:x,h2:y] 100%\n"},
		{"%x", "%x\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := recordTemplate(tt.tmpl).write(&b, testRecord()); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.tmpl, b.String(), tt.want)
		}
	}
}

func TestJSONRecord(t *testing.T) {
	r := testRecord()
	r.Key = nil
	r.Value = []byte{0xff, 0x00}
	var b bytes.Buffer
	if err := writeJSONRecord(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"t","partition":2,"offset":5,"timestamp":1700000000000,"key":null,"value":null,"value_b64":"/wA=","headers":{"h1":"x","h2":"y"}}` + "\n"
	if b.String() != want {
		t.Errorf("got  %s\nwant %s", b.String(), want)
	}
}

func TestLineReader(t *testing.T) {
	tests := []struct {
		name    string
		props   map[string]string
		line    string
		key     *string
		value   *string
		headers string // k=v;k2=v2, "<nil>" for nil values
		err     string
	}{
		{name: "plain", line: "a\tb", value: ptr("a\tb")},
		{name: "key", props: map[string]string{"parse.key": "true"}, line: "k\tv\tw", key: ptr("k"), value: ptr("v\tw")},
		{name: "key colon", props: map[string]string{"parse.key": "true", "key.separator": ":"}, line: "k:v", key: ptr("k"), value: ptr("v")},
		{name: "missing key sep", props: map[string]string{"parse.key": "true", "key.separator": ":"}, line: "kv", err: "No key separator found on line number 1: 'kv'"},
		{name: "ignore error", props: map[string]string{"parse.key": "true", "key.separator": ":", "ignore.error": "true"}, line: "kv", value: ptr("kv")},
		{name: "headers and key", props: map[string]string{"parse.key": "true", "parse.headers": "true"}, line: "h1:a,h2:b\tk\tv", key: ptr("k"), value: ptr("v"), headers: "h1=a;h2=b"},
		{name: "null marker", props: map[string]string{"parse.key": "true", "null.marker": "NULL", "parse.headers": "true"}, line: "h:NULL\tNULL\tNULL", headers: "h=<nil>"},
		{name: "bad header pair", props: map[string]string{"parse.headers": "true"}, line: "nope\tv", err: "No header key separator found in pair 'nope' on line number 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := lineReaderConfigFrom(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := c.parseLine([]byte(tt.line), 1)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := bstr(rec.Key); !eqp(got, tt.key) {
				t.Errorf("key = %v, want %v", deref(got), deref(tt.key))
			}
			if got := bstr(rec.Value); !eqp(got, tt.value) {
				t.Errorf("value = %v, want %v", deref(got), deref(tt.value))
			}
			var hs []string
			for _, h := range rec.Headers {
				v := "<nil>"
				if h.Value != nil {
					v = string(h.Value)
				}
				hs = append(hs, h.Key+"="+v)
			}
			if got := strings.Join(hs, ";"); got != tt.headers {
				t.Errorf("headers = %q, want %q", got, tt.headers)
			}
		})
	}
}

func ptr(s string) *string { return &s }
func bstr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}
func eqp(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func TestWriteTopicDescription(t *testing.T) {
	id := [16]byte{0xfb, 0xef, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	d := topicDescription{
		Name: "topic1", ID: id, ReplicationFactor: 1, Configs: []string{"cleanup.policy=compact", "retention.ms=1000"},
		Partitions: []kadm.PartitionDetail{
			{Partition: 0, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}},
			{Partition: 1, Leader: -1, Replicas: []int32{1, 2}, ISR: []int32{2}},
		},
	}
	var b bytes.Buffer
	writeTopicDescription(&b, d, nil)
	want := "Topic: topic1\tTopicId: --__AQIDBAUGBwgJCgsMDQ\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,retention.ms=1000\n" +
		"\tTopic: topic1\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: \n" +
		"\tTopic: topic1\tPartition: 1\tLeader: none\tReplicas: 1,2\tIsr: 2\tElr: \tLastKnownElr: \n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	writeTopicDescription(&b, d, func(p kadm.PartitionDetail) bool { return len(p.ISR) < len(p.Replicas) })
	if want := "\tTopic: topic1\tPartition: 1\tLeader: none\tReplicas: 1,2\tIsr: 2\tElr: \tLastKnownElr: \n"; b.String() != want {
		t.Errorf("under-replicated: got %q, want %q", b.String(), want)
	}
}

func TestWriteGroupOffsets(t *testing.T) {
	rows := []groupOffsetRow{
		{Group: "g", Topic: "orders", Partition: 0, Current: 3, LogEnd: 5, Lag: 2, ConsumerID: "c-1", Host: "/127.0.0.1", ClientID: "cl"},
		{Group: "g", Topic: "orders", Partition: 1, Current: -1, LogEnd: 7, Lag: -1},
	}
	var b bytes.Buffer
	writeGroupOffsets(&b, rows, false)
	want := "\n" +
		"GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID\n" +
		"g               orders          0          3               5               2               c-1             /127.0.0.1      cl\n" +
		"g               orders          1          -               7               -               -               -               -\n\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestWriteResetPlan(t *testing.T) {
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 10})
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 0})
	var b bytes.Buffer
	writeResetPlan(&b, "g", offs)
	want := "\nGROUP                          TOPIC                          PARTITION  NEW-OFFSET     \n" +
		"g                              orders                         0          0              \n" +
		"g                              orders                         1          10             \n\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestParsers(t *testing.T) {
	durs := map[string]time.Duration{"PT1H30M": 90 * time.Minute, "P1DT2H": 26 * time.Hour, "PT0.5S": 500 * time.Millisecond, "-PT1M": -time.Minute, "90m": 90 * time.Minute}
	for s, want := range durs {
		if got, ok := parseISODuration(s); !ok || got != want {
			t.Errorf("parseISODuration(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, bad := range []string{"P", "PT", "1 hour", "PXD"} {
		if _, ok := parseISODuration(bad); ok {
			t.Errorf("parseISODuration(%q) accepted", bad)
		}
	}
	ts := map[string]int64{
		"1700000000000":                 1700000000000,
		"2023-11-14T22:13:20Z":          1700000000000,
		"2023-11-14T22:13:20.000Z":      1700000000000,
		"2023-11-14T23:13:20.000+01:00": 1700000000000,
		"2023-11-14T22:13:20.5":         1700000000500, // no zone: loc (UTC here)
	}
	for s, want := range ts {
		if got, ok := parseTimestamp(s, time.UTC); !ok || got != want {
			t.Errorf("parseTimestamp(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	tps, err := parseTopicPartitions([]string{"a", "b:0,2"})
	if err != nil || tps["a"] != nil || len(tps["b"]) != 2 || tps["b"][1] != 2 {
		t.Errorf("parseTopicPartitions = %v, %v", tps, err)
	}
	if _, err := parseTopicPartitions([]string{"b:x"}); err == nil {
		t.Error("parseTopicPartitions accepted b:x")
	}
	re, _ := topicMatcher("foo.*,bar")
	for name, want := range map[string]bool{"foo1": true, "bar": true, "xbar": false, "barx": false} {
		if re.MatchString(name) != want {
			t.Errorf("topicMatcher match %q = %v", name, !want)
		}
	}
}

func TestToolName(t *testing.T) {
	tests := map[string]string{
		"/opt/kafka/bin/kafka-topics.sh": "kafka-topics",
		"kafka-console-consumer":         "kafka-console-consumer",
		"kafka-consumer-groups.sh":       "kafka-consumer-groups",
		"/usr/bin/kafka-storage.sh":      "kafka-storage",
		"kafka-leader-election.sh":       "kafka-leader-election",
		"moldau":                         "",
		"kafka-nonsense.sh":              "",
	}
	for argv0, want := range tests {
		got, ok := ToolName(argv0)
		if got != want || ok != (want != "") {
			t.Errorf("ToolName(%q) = %q, %v; want %q", argv0, got, ok, want)
		}
	}
	if cmds := Commands(); !slices.IsSorted(cmds) || !slices.Contains(cmds, "cluster") || !slices.Contains(cmds, "kafka-reassign-partitions") || !slices.Contains(cmds, "kafka-leader-election") || !slices.Contains(cmds, "kafka-features") || cmds[len(cmds)-1] != "verify" {
		t.Errorf("Commands() = %v", cmds)
	}
}

// runCmd runs a command in-process with no environment.
func runCmd(t *testing.T, stdin string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{ctx: context.Background(), stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }, adminTimeout: 15 * time.Second, now: time.Now}
	code = e.run(name, args)
	return out.String(), errb.String(), code
}

func TestArgumentErrors(t *testing.T) {
	// None of these reach a broker: 127.0.0.1:1 would fail if they did.
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"kafka-topics", []string{"--bootstrap-server", "127.0.0.1:1", "--create", "--topic", "t", "--partitions", "x"}, 1,
			"kafka-topics: --partitions must be a positive integer, got \"x\"\nTry 'kafka-topics --help' for more information.\n"},
		{"kafka-topics", []string{"--bootstrap-server", "127.0.0.1:1", "--create", "--list"}, 2,
			"kafka-topics: Command must include exactly one action: --list, --describe, --create, --alter or --delete\n"},
		{"kafka-topics", []string{"--create", "--topic", "t"}, 2, "kafka-topics: Missing required argument \"[bootstrap-server]\"\n"},
		{"kafka-topics", []string{"--bootstrap-server", "127.0.0.1:1", "--nope"}, 2, "kafka-topics: flag provided but not defined: --nope\n"},
		{"kafka-topics", []string{"--bootstrap-server", "127.0.0.1:1", "--describe", "--partition-size-limit-per-response", "0"}, 1,
			"kafka-topics: --partition-size-limit-per-response must be a positive integer, got \"0\"\nTry 'kafka-topics --help' for more information.\n"},
		{"kafka-topics.sh", []string{"--bootstrap-server", "127.0.0.1:1", "--create"}, 2, "kafka-topics: Missing required argument \"[topic]\"\n"},
		{"topic", []string{"create", "t", "--partitions", "0"}, 1, "moldau topic create: --partitions must be a positive integer (or -1 for the broker default), got \"0\"\n"},
		{"topic", []string{"create"}, 2, "moldau topic create: missing topic name"},
		{"topic", []string{"frobnicate"}, 2, "unknown subcommand \"frobnicate\""},
		{"produce", []string{"t", "--acks", "2"}, 1, "moldau produce: --acks must be one of all, -1, 1, 0, got \"2\"\n"},
		{"produce", []string{"t", "--compression", "brotli"}, 1, "--compression must be one of none, gzip, snappy, lz4, zstd"},
		{"produce", nil, 2, "want exactly one topic"},
		{"consume", []string{"t", "--offset", "soon"}, 1, "--offset must be earliest, latest or a non-negative offset"},
		{"consume", []string{"t", "--timestamp", "yesterday"}, 1, "--timestamp must be milliseconds since the epoch or an RFC 3339 time"},
		{"consume", []string{"t", "--from-beginning", "--offset", "3"}, 2, "give at most one of"},
		{"consume", []string{"t", "--group", "g", "--partition", "0"}, 2, "--group starts at the group's committed offsets"},
		{"kafka-console-consumer", []string{"--bootstrap-server", "127.0.0.1:1"}, 2, "Exactly one of --include/--topic is required."},
		{"kafka-console-consumer", []string{"--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--offset", "3"}, 2, "The partition is required when offset is specified."},
		{"kafka-console-consumer", []string{"--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--max-messages", "-1"}, 1, "--max-messages must be a positive integer"},
		{"kafka-console-producer", []string{"--bootstrap-server", "127.0.0.1:1"}, 2, "Missing required argument \"[topic]\""},
		{"kafka-console-producer", []string{"--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--compression-codec", "rar"}, 1, "--compression-codec must be one of"},
		{"kafka-consumer-groups", []string{"--bootstrap-server", "127.0.0.1:1", "--describe"}, 2, "Option --describe takes one of these options: --all-groups, --group"},
		{"kafka-consumer-groups", []string{"--bootstrap-server", "127.0.0.1:1", "--reset-offsets", "--group", "g", "--topic", "t"}, 2, "needs exactly one of: --to-earliest"},
		{"kafka-consumer-groups", []string{"--bootstrap-server", "127.0.0.1:1", "--reset-offsets", "--group", "g", "--to-earliest"}, 2, "takes one of these options: --all-topics, --topic"},
		{"kafka-consumer-groups", []string{"--bootstrap-server", "127.0.0.1:1", "--reset-offsets", "--group", "g", "--all-topics", "--by-duration", "soon"}, 1, "--by-duration must be an ISO-8601 duration"},
		{"group", []string{"reset-offsets", "g", "--all-topics", "--to-offset", "-3"}, 1, "--to-offset must be a non-negative offset"},
		{"nosuch", nil, 2, "unknown command \"nosuch\""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", tt.name, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, c := range [][]string{{"kafka-topics", "--help"}, {"topic", "--help"}, {"consume", "-h"}, {"kafka-console-consumer", "--help"}, {"group", "help"}} {
		stdout, _, code := runCmd(t, "", c[0], c[1:]...)
		if code != 0 || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: code %d, stdout %q", c, code, stdout)
		}
	}
}
