package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// verifyReport is the part of moldau verify --json the tests read.
type verifyReport struct {
	Attempted, Acknowledged, Read, Lost, Duplicated, Reordered, Moved int64
	OffsetChanged                                                     int64 `json:"offset_changed"`
	OK                                                                bool
	Problems                                                          []string
	Faults                                                            []struct {
		Kind  string
		Node  int32
		Error string
	}
}

// runVerify runs `moldau verify args... --json` and decodes its report; exit status 1 is a failed
// check (the report says why), anything else a failure to run.
func runVerify(t *testing.T, timeout time.Duration, args ...string) (verifyReport, string) {
	t.Helper()
	stdout, stderr, err := runTimeout(t, timeout, moldauBin, append([]string{"verify", "--json"}, args...)...)
	var r verifyReport
	if jerr := json.Unmarshal([]byte(stdout), &r); jerr != nil {
		t.Fatalf("moldau verify %v: %v; no JSON report (%v)\nstdout:\n%s\nstderr:\n%s", args, err, jerr, stdout, stderr)
	}
	if err != nil && r.OK {
		t.Fatalf("moldau verify %v: %v with a passing report\nstderr:\n%s", args, err, stderr)
	}
	if err == nil && !r.OK {
		t.Fatalf("moldau verify %v exited 0 with a failing report %+v", args, r)
	}
	return r, stderr
}

// TestVerifyKillRestartOneNode: kill -9 and restart of the only node under acks=all load, with
// fsync before ack (the default), loses nothing acknowledged, duplicates and reorders nothing.
func TestVerifyKillRestartOneNode(t *testing.T) {
	r, stderr := runVerify(t, 3*time.Minute, "--nodes", "1", "--binary", moldauBin, "--faults", "kill,restart",
		"--duration", "10s", "--fault-interval", "2s", "--rate", "500", "--partitions", "3")
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Moved != 0 || r.OffsetChanged != 0 {
		t.Fatalf("report %+v\nstderr:\n%s", r, stderr)
	}
	if r.Acknowledged < 1000 || r.Read < r.Acknowledged {
		t.Errorf("acknowledged %d, read %d of %d attempted: want at least 1000 acknowledged and all read", r.Acknowledged, r.Read, r.Attempted)
	}
	kinds := map[string]int{}
	for _, f := range r.Faults {
		if f.Error != "" {
			t.Errorf("fault %s node %d: %s", f.Kind, f.Node, f.Error)
		}
		kinds[f.Kind]++
	}
	if kinds["kill"] == 0 || kinds["restart"] == 0 {
		t.Errorf("faults %v, want at least one kill and one restart\nstderr:\n%s", kinds, stderr)
	}
}

// TestVerifyPauseOneNode: SIGSTOP and SIGCONT of the only node: the producers wait, then carry
// on, and nothing is lost or duplicated.
func TestVerifyPauseOneNode(t *testing.T) {
	r, stderr := runVerify(t, 2*time.Minute, "--nodes", "1", "--binary", moldauBin, "--faults", "pause",
		"--duration", "4s", "--fault-interval", "1s", "--pause-time", "1500ms", "--rate", "300", "--partitions", "2")
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 {
		t.Fatalf("report %+v\nstderr:\n%s", r, stderr)
	}
	if len(r.Faults) == 0 || r.Faults[0].Kind != "pause" || r.Faults[0].Error != "" {
		t.Errorf("faults %+v, want a pause\nstderr:\n%s", r.Faults, stderr)
	}
}

// TestVerifySoak is the long run behind `make soak`: MOLDAU_SOAK=1, with MOLDAU_SOAK_NODES
// (default 3), MOLDAU_SOAK_DURATION (default 5m) and MOLDAU_SOAK_FAULTS (default kill,pause,restart).
func TestVerifySoak(t *testing.T) {
	if os.Getenv("MOLDAU_SOAK") != "1" {
		t.Skip("the soak runs with MOLDAU_SOAK=1 (make soak)")
	}
	nodes, duration, faults := envOr("MOLDAU_SOAK_NODES", "3"), envOr("MOLDAU_SOAK_DURATION", "5m"), envOr("MOLDAU_SOAK_FAULTS", "kill,pause,restart")
	d, err := time.ParseDuration(duration)
	if err != nil {
		t.Fatalf("MOLDAU_SOAK_DURATION: %v", err)
	}
	if _, err := strconv.Atoi(nodes); err != nil {
		t.Fatalf("MOLDAU_SOAK_NODES: %v", err)
	}
	r, stderr := runVerify(t, d+5*time.Minute, "--nodes", nodes, "--binary", moldauBin, "--faults", faults,
		"--duration", duration, "--fault-interval", "10s", "--rate", "2000")
	t.Logf("soak: %s nodes, %s, faults %s: %+v\n%s", nodes, duration, faults, r, stderr)
	if !r.OK {
		t.Fatalf("soak failed: %v", r.Problems)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// runTimeout is run with its own timeout instead of clientTimeout.
func runTimeout(t *testing.T, timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = childEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %s)", err, timeout)
	}
	return out.String(), errb.String(), err
}
