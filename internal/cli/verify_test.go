package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/brokertest"
)

func TestVerifyArgumentErrors(t *testing.T) {
	// None of these reach a broker or start a node.
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--faults", "kill"}, 1, "moldau verify: --faults needs --nodes: faults are injected only into nodes moldau verify started itself\nTry 'moldau verify --help' for more information.\n"},
		{[]string{"--nodes", "3", "--faults", "kill,explode"}, 1, `--faults: unknown fault "explode" (expected a comma-separated list of kill, pause, restart, partition)`},
		{[]string{"--nodes", "1", "--faults", "kill,partition"}, 1, "--faults partition needs --nodes 2 or more"},
		{[]string{"--nodes", "3", "--bootstrap-server", "127.0.0.1:1"}, 1, "--nodes and --bootstrap-server exclude each other"},
		{[]string{"--nodes", "-1"}, 1, `--nodes must be a number of nodes >= 0, got "-1"`},
		{[]string{"--binary", "/bin/true"}, 1, "--binary needs --nodes"},
		{[]string{"--nodes", "1", "--binary", "/nonexistent/moldau"}, 1, "--binary /nonexistent/moldau is not a moldau binary"},
		{[]string{"--duration", "soon"}, 1, `--duration must be a positive duration like 10s, got "soon"`},
		{[]string{"--fault-interval", "0s"}, 1, `--fault-interval must be a positive duration like 10s, got "0s"`},
		{[]string{"--rate", "0"}, 1, `--rate must be a number of records per second > 0, got "0"`},
		{[]string{"--partitions", "0"}, 1, `--partitions must be a number of partitions >= 1, got "0"`},
		{[]string{"--record-size", "10"}, 1, `--record-size must be a size in bytes >= 64, got "10"`},
		{[]string{"--fault-target", "random"}, 1, `--fault-target must be any or leader, got "random"`},
		{[]string{"--seed", "x"}, 1, `--seed must be a non-negative integer, got "x"`},
		{[]string{"--nodes", "1", "--node-config", "nokey"}, 1, `--node-config must be key=value, got "nokey"`},
		{[]string{"--nodes", "1", "--node-config", "broker.session.timeout.ms=soon"}, 1, "--node-config broker.session.timeout.ms must be a number of milliseconds > 0"},
		{[]string{"extra"}, 2, "moldau verify: unexpected arguments: [extra]\n"},
		{[]string{"--nope"}, 2, "moldau verify: flag provided but not defined: --nope\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", "verify", tt.args...)
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

func TestVerifyHelp(t *testing.T) {
	stdout, _, code := runCmd(t, "", "verify", "--help")
	for _, want := range []string{"Usage: moldau verify [options]", "--nodes", "--faults", "kill -9 a node", "SIGSTOP", "-json"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
	if code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func TestVerifyAgainstOneBroker(t *testing.T) {
	addr := brokertest.Addr(t, nil)
	stdout, stderr, code := runCmd(t, "", "verify", "-b", addr, "--duration", "500ms", "--rate", "400", "--partitions", "2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"replication factor 1, min.insync.replicas 1", "\nlost                     0\n",
		"\nduplicated               0\n", "\nlongest produce stall    ", "\nOK: every acknowledged record was read back once"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	stdout, stderr, code = runCmd(t, "", "verify", "-b", addr, "--duration", "300ms", "--rate", "200", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var r struct {
		Acknowledged, Lost, Read int64
		OK                       bool
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
	}
	if !r.OK || r.Lost != 0 || r.Acknowledged == 0 || r.Read != r.Acknowledged {
		t.Errorf("--json report %+v", r)
	}
}

// TestVerifyFailedCheckExits1: a run in which nothing can be acknowledged (every record is larger
// than the broker accepts) prints FAILED with the reason and exits 1.
func TestVerifyFailedCheckExits1(t *testing.T) {
	addr := brokertest.Addr(t, map[string]string{"message.max.bytes": "1000"})
	stdout, stderr, code := runCmd(t, "", "verify", "-b", addr, "--duration", "200ms", "--rate", "50", "--record-size", "4000")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"\nacknowledged             0\n", "Produce errors (unacknowledged records):", "MESSAGE_TOO_LARGE", "\nFAILED:\n  nothing was acknowledged\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// TestVerifyTransactionFlags: the --transactions knobs are checked before anything runs.
func TestVerifyTransactionFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--abort-ratio", "0.5"}, "--abort-ratio needs --transactions"},
		{[]string{"--transactions", "--abort-ratio", "2"}, "--abort-ratio must be a number from 0 to 1"},
		{[]string{"--transactions", "--txn-records", "0"}, "--txn-records must be a number of records >= 1"},
		{[]string{"--transactions", "--transaction-timeout", "soon"}, "--transaction-timeout must be a positive duration"},
	} {
		_, stderr, code := runCmd(t, "", "verify", c.args...)
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", c.args, code, stderr, c.want)
		}
	}
}
