package raftstore

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a bytes.Buffer safe for raft's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLines parses every line of out as a JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestSlogLogger: hclog calls come out as slog records with the level mapped, the component
// named (Named appends, ResetNamed replaces), With's args kept, the floor (SetLevel) and the
// slog handler's own level both applied, and the standard writer's lines logged.
func TestSlogLogger(t *testing.T) {
	var buf syncBuffer
	lv := new(slog.LevelVar)
	l := newSlogLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: lv})), "raft", hclog.Info)
	l.Debug("hidden by the floor")
	l.Info("hello", "peer", "n2")
	w := l.Named("wal").With("segment", 3)
	w.Warn("slow fsync", "ms", 12)
	w.ResetNamed("snapshot").Error("failed", "error", "disk full")
	l.StandardWriter(nil).Write([]byte("from a std logger\n"))
	lv.Set(slog.LevelError)
	l.Warn("hidden by the handler")
	if l.IsWarn() || !l.IsError() {
		t.Errorf("IsWarn %v IsError %v with the handler at ERROR", l.IsWarn(), l.IsError())
	}
	lv.Set(slog.LevelDebug)
	if l.IsDebug() {
		t.Error("IsDebug under an INFO floor")
	}
	l.SetLevel(hclog.Debug)
	l.Debug("shown now")

	got := jsonLines(t, buf.String())
	want := []map[string]any{
		{"level": "INFO", "msg": "hello", "component": "raft", "peer": "n2"},
		{"level": "WARN", "msg": "slow fsync", "component": "raft.wal", "segment": float64(3), "ms": float64(12)},
		{"level": "ERROR", "msg": "failed", "component": "snapshot", "segment": float64(3), "error": "disk full"},
		{"level": "INFO", "msg": "from a std logger", "component": "raft"},
		{"level": "DEBUG", "msg": "shown now", "component": "raft"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
			}
		}
	}
	if strings.Count(buf.String(), `"component"`) != len(want) {
		t.Errorf("a line carries component twice:\n%s", buf.String())
	}
}

// TestRaftLogsThroughSlog: with Config.Logger set, what hashicorp/raft logs while two of three
// voters elect a leader and the leader cannot reach the third comes out through it: JSON lines
// with component raft…, at WARN and above.
func TestRaftLogsThroughSlog(t *testing.T) {
	voters := map[int32]string{}
	for id := int32(1); id <= 3; id++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		voters[id] = l.Addr().String()
		l.Close()
	}
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for id := int32(1); id <= 2; id++ { // voter 3 never starts
		n, err := Open(Config{NodeID: id, Dir: t.TempDir(), BindAddr: voters[id], Voters: voters, Logger: logger}, &counter{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), voters[3]) { // the leader failing to reach voter 3
		if time.Now().After(deadline) {
			t.Fatalf("raft logged nothing about the missing voter in 20 s:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range jsonLines(t, buf.String()) {
		if c, _ := l["component"].(string); !strings.HasPrefix(c, "raft") {
			t.Errorf("line without component raft…: %v", l)
		}
		if lv := l["level"]; lv != "WARN" && lv != "ERROR" {
			t.Errorf("line at %v, below raft's WARN floor: %v", lv, l)
		}
	}
}
