package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/metaprops"
	"github.com/moldau/moldau/internal/vfs"
)

// writeServerProperties writes Kafka 4's shipped config/server.properties (config/testdata) with
// its log dir replaced by dirs, and returns its path.
func writeServerProperties(t *testing.T, dirs string) string {
	t.Helper()
	raw, err := os.ReadFile("../config/testdata/kafka4-server.properties")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "log.dirs=/tmp/kraft-combined-logs", "log.dirs="+dirs, 1)
	if text == string(raw) {
		t.Fatal("Kafka's server.properties has no log.dirs=/tmp/kraft-combined-logs")
	}
	p := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKafkaStorageRandomUUID(t *testing.T) {
	out := mustRun(t, "", "kafka-storage", "random-uuid")
	if !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{21}\n$`).MatchString(out) {
		t.Errorf("random-uuid printed %q, want one Kafka uuid", out)
	}
	if again := mustRun(t, "", "storage", "random-uuid"); again == out {
		t.Errorf("two random-uuid runs printed the same %q", out)
	}
}

// TestKafkaStorageFormatAndInfo: the Kafka quickstart's steps (random-uuid, format --standalone
// -t ID -c config/server.properties) against Kafka's own file, then info, with Kafka's output.
func TestKafkaStorageFormatAndInfo(t *testing.T) {
	root := t.TempDir()
	meta, data := filepath.Join(root, "a-meta"), filepath.Join(root, "b-data")
	props := writeServerProperties(t, meta+","+data)
	const id = "4L6g3nShT-eMCtK--X86sw"

	_, stderr, code := runCmd(t, "", "kafka-storage", "format", "-t", id, "-c", props)
	if code != 1 || strings.TrimSpace(stderr) != "Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers." {
		t.Errorf("format without --standalone: exit %d, stderr %q", code, stderr)
	}
	out := mustRun(t, "", "kafka-storage", "format", "--standalone", "-t", id, "-c", props)
	want := "Formatting dynamic metadata voter directory " + meta + " with metadata.version 4.1-IV1.\n" +
		"Formatting data directory " + data + " with metadata.version 4.1-IV1.\n"
	if out != want {
		t.Errorf("format printed\n%s\nwant\n%s", out, want)
	}
	ens, err := metaprops.Load(vfs.Default, []string{meta, data})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{meta, data} {
		if p, ok := ens.Props(d); !ok || p.ClusterID != id || p.NodeID != 1 || p.Version != 1 || p.DirectoryID == "" {
			t.Errorf("%s: %+v", d, p)
		}
	}

	_, stderr, code = runCmd(t, "", "kafka-storage", "format", "--standalone", "-t", id, "-c", props)
	if code != 1 || strings.TrimSpace(stderr) != "Log directory "+meta+" is already formatted. Use --ignore-formatted to ignore this directory and format the others." {
		t.Errorf("format again: exit %d, stderr %q", code, stderr)
	}
	if out := mustRun(t, "", "kafka-storage", "format", "-g", "--standalone", "-t", id, "-c", props); out != "All of the log directories are already formatted.\n" {
		t.Errorf("format --ignore-formatted: %q", out)
	}
	_, stderr, code = runCmd(t, "", "kafka-storage", "format", "-g", "--standalone", "-t", "otherClusterIdAAAAAAAAA", "-c", props)
	if code != 1 || strings.TrimSpace(stderr) != "Invalid cluster.id in: "+metaprops.Path(meta)+". Expected otherClusterIdAAAAAAAAA, but read "+id {
		t.Errorf("format with another cluster id: exit %d, stderr %q", code, stderr)
	}

	p, _ := ens.Props(meta)
	out = mustRun(t, "", "kafka-storage", "info", "-c", props)
	want = "Found log directories:\n  " + meta + "\n  " + data + "\n\n" +
		"Found metadata: {cluster.id=" + id + ", directory.id=" + p.DirectoryID + ", node.id=1, version=1}\n\n"
	if out != want {
		t.Errorf("info printed\n%s\nwant\n%s", out, want)
	}

	// A dir of another node, one that is missing and one not formatted are problems (exit 1).
	if err := metaprops.Write(vfs.Default, data, metaprops.Props{NodeID: 2, ClusterID: id}); err != nil {
		t.Fatal(err)
	}
	empty, missing := filepath.Join(root, "c-empty"), filepath.Join(root, "d-missing")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	props = writeServerProperties(t, strings.Join([]string{meta, data, empty, missing}, ","))
	out, _, code = runCmd(t, "", "kafka-storage", "info", "-c", props)
	want = "Found log directories:\n  " + meta + "\n  " + data + "\n  " + empty + "\n\n" +
		"Found metadata: {cluster.id=" + id + ", directory.id=" + p.DirectoryID + ", node.id=1, version=1}\n\n" +
		"Found problems:\n  Mismatched node IDs between storage directories.\n  " + empty + " is not formatted.\n  " + missing + " does not exist\n\n"
	if code != 1 || out != want {
		t.Errorf("info with problems: exit %d, printed\n%s\nwant\n%s", code, out, want)
	}
}

func TestKafkaStorageErrors(t *testing.T) {
	props := writeServerProperties(t, filepath.Join(t.TempDir(), "d"))
	voters := filepath.Join(t.TempDir(), "voters.properties")
	if err := os.WriteFile(voters, []byte("node.id=1\ncontroller.quorum.voters=1@127.0.0.1:9093\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\nlog.dirs="+t.TempDir()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.properties")
	if err := os.WriteFile(bad, []byte("process.roles=worker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "kafka-storage: a command is required: info, format or random-uuid"},
		{[]string{"wipe"}, 2, "kafka-storage: invalid choice: 'wipe' (choose from 'info', 'format', 'random-uuid')"},
		{[]string{"format", "-c", props}, 2, "kafka-storage: argument --cluster-id/-t is required"},
		{[]string{"format", "-t", "x"}, 2, "kafka-storage: argument --config/-c is required"},
		{[]string{"format", "-t", "x", "-c", bad}, 1, `config: process.roles: "worker" is not valid`},
		{[]string{"format", "-t", "x", "-c", props, "--standalone", "--no-initial-controllers"}, 2, "mutually exclusive"},
		{[]string{"format", "-t", "x", "-c", props, "--initial-controllers", "1@h:9093:AAAAAAAAAAAAAAAAAAAAAA"}, 1, "--initial-controllers is not supported"},
		{[]string{"format", "-t", "x", "-c", voters, "--standalone"}, 1, "You cannot specify controller.quorum.voters and format the node with --initial-controllers or --standalone."},
		{[]string{"format", "-t", "x", "-c", props, "-S", "SCRAM-SHA-256=[name=alice,password=alice-secret]"}, 1, "--add-scram is not supported"},
		{[]string{"version-mapping", "--release-version", "bogus"}, 1, "Unknown metadata.version 'bogus'. Supported metadata.version are: 3.3-IV3, "},
		{[]string{"format", "-t", "x", "-c", voters, "--release-version", "3.1"}, 1, "Unknown metadata.version '3.1'."},
		{[]string{"format", "-t", "x", "-c", voters, "--release-version", "4.4-IV2"}, 1, "metadata.version 4.4-IV2 is not supported by this Moldau build: the latest is 4.1-IV1."},
		{[]string{"info"}, 2, "kafka-storage: argument --config/-c is required"},
	} {
		_, stderr, code := runCmd(t, "", "kafka-storage", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("kafka-storage %q: exit %d, stderr %q; want exit %d with %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	if out := mustRun(t, "", "kafka-storage", "version-mapping", "--release-version", "4.0-IV3"); out != "metadata.version=25 (4.0-IV3)\nkraft.version=0\ntransaction.version=2\ngroup.version=0\n" {
		t.Errorf("version-mapping: %q", out)
	}
	// A config with static voters formats without --standalone, as in Kafka.
	if out := mustRun(t, "", "kafka-storage", "format", "-t", "x", "-c", voters); !strings.HasPrefix(out, "Formatting metadata directory ") {
		t.Errorf("format with voters: %q", out)
	}
}
