package config

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"equals", "a=b", map[string]string{"a": "b"}},
		{"colon", "a: b", map[string]string{"a": "b"}},
		{"space separator", "a b", map[string]string{"a": "b"}},
		{"tab separator", "a\t\tb", map[string]string{"a": "b"}},
		{"blanks around equals", "  a   =   b   ", map[string]string{"a": "b"}},
		{"second separator is part of the value", "a = = b", map[string]string{"a": "= b"}},
		{"colon in value", "listeners=PLAINTEXT://:9092", map[string]string{"listeners": "PLAINTEXT://:9092"}},
		{"equals in value", "a=b=c", map[string]string{"a": "b=c"}},
		{"empty value", "a=", map[string]string{"a": ""}},
		{"key only", "a", map[string]string{"a": ""}},
		{"hash comment", "# a=b\nc=d", map[string]string{"c": "d"}},
		{"bang comment", "! a=b\nc=d", map[string]string{"c": "d"}},
		{"indented comment", "   # a=b", map[string]string{}},
		{"hash inside value is not a comment", "a=b # c", map[string]string{"a": "b # c"}},
		{"blank lines", "\n\n  \na=b\n\n", map[string]string{"a": "b"}},
		{"CRLF", "a=b\r\nc=d\r\n", map[string]string{"a": "b", "c": "d"}},
		{"CR only", "a=b\rc=d", map[string]string{"a": "b", "c": "d"}},
		{"continuation", "a=one,\\\n    two,\\\n    three", map[string]string{"a": "one,two,three"}},
		{"continuation into a hash line is not a comment", "a=x\\\n#y", map[string]string{"a": "x#y"}},
		{"comment ending in backslash does not continue", "# c \\\na=b", map[string]string{"a": "b"}},
		{"even backslashes do not continue", "a=x\\\\\nb=y", map[string]string{"a": `x\`, "b": "y"}},
		{"trailing backslash on last line", "a=x\\", map[string]string{"a": "x"}},
		{"escapes", `a=t\tn\nr\rf\f\\q\q`, map[string]string{"a": "t\tn\nr\rf\f\\qq"}},
		{"unicode escape", `a=caf\u00e9`, map[string]string{"a": "café"}},
		{"surrogate pair", `a=\ud83d\ude00`, map[string]string{"a": "😀"}},
		{"escaped separator in key", `a\=b\:c\ d=e`, map[string]string{"a=b:c d": "e"}},
		{"escaped trailing space kept", `a=b\ `, map[string]string{"a": "b "}},
		{"duplicate: last wins", "a=1\na=2", map[string]string{"a": "2"}},
		{"BOM", "\ufeffa=b", map[string]string{"a": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProperties(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=b\nc=\\u12", `2: malformed \uxxxx escape in "\\u12"`},
		{"a=\\uzzzz", `1: malformed \uxxxx escape in "\\uzzzz"`},
	}
	for _, tt := range tests {
		_, err := parseProperties(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("parseProperties(%q) error = %v, want %s", tt.in, err, tt.want)
		}
	}
}

func TestReadProperties(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(path, []byte("node.id=3\nbad=\\u1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadProperties(path)
	if want := "config: " + path + `:2: malformed \uxxxx escape in "\\u1"`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	_, err = ReadProperties(filepath.Join(dir, "missing.properties"))
	if err == nil || !strings.Contains(err.Error(), "missing.properties") {
		t.Errorf("missing file: error = %v", err)
	}
}

func TestSeedKafkaServerProperties(t *testing.T) {
	props, err := ReadProperties("testdata/kafka-server.properties")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build(props)
	if err != nil {
		t.Fatalf("Kafka's server.properties must load: %v", err)
	}
	if c.NodeID != 1 || len(c.Listeners) != 1 || c.Listeners[0].String() != "PLAINTEXT://:9092" {
		t.Errorf("node %d, listeners %v", c.NodeID, c.Listeners)
	}
	if got := c.AdvertisedListeners[0].String(); got != "PLAINTEXT://localhost:9092" {
		t.Errorf("advertised %s", got)
	}
	if c.ControllerListener != ":9093" {
		t.Errorf("controller listener %q, want :9093 (the CONTROLLER listener)", c.ControllerListener)
	}
	if len(c.ControllerQuorumVoters) != 1 || c.ControllerQuorumVoters[0].String() != "1@localhost:9093" {
		t.Errorf("voters %v", c.ControllerQuorumVoters)
	}
	if c.LogDirs[0] != "/tmp/kraft-combined-logs" || c.LogRetentionMs != 168*3_600_000 || c.LogSegmentBytes != 1<<30 {
		t.Errorf("log settings %v %d %d", c.LogDirs, c.LogRetentionMs, c.LogSegmentBytes)
	}
	wantIgnored := []string{
		"num.io.threads", "num.network.threads",
		"num.recovery.threads.per.data.dir", "socket.receive.buffer.bytes", "socket.send.buffer.bytes",
	}
	if strings.Join(c.Ignored, " ") != strings.Join(wantIgnored, " ") {
		t.Errorf("Ignored = %v, want %v", c.Ignored, wantIgnored)
	}
	if c.Sources["log.retention.ms"] != SourceStatic || c.Raw["log.retention.ms"] != "604800000" {
		t.Errorf("derived log.retention.ms = %q from %v", c.Raw["log.retention.ms"], c.Sources["log.retention.ms"])
	}
}
