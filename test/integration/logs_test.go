package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestServerJSONLogs: with log.format=json every line `moldau server` writes, from the start
// line to "stopped cleanly", its own logs and raft's, is one JSON object with time, level and
// msg, so a log shipper can parse the whole stream.
func TestServerJSONLogs(t *testing.T) {
	b := startBroker(t, "--override", "log.format=json", "--override", "log.level=debug")
	createTopic(t, b.Addr, "logged", 2, nil)
	b.stop()
	lines := 0
	for _, l := range strings.Split(b.log.Since(b.runLog), "\n") {
		if l == "" || strings.HasPrefix(l, "---- ") { // the test's own markers
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not a JSON line: %q", l)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line without %q: %q", k, l)
			}
		}
		lines++
	}
	out := b.log.Since(b.runLog)
	for _, want := range []string{"listening on", "became leader", "stopped cleanly"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if lines < 3 {
		t.Errorf("%d JSON lines", lines)
	}
}
