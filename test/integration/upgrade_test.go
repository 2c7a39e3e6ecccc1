package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/verify"
)

// git runs git in the repository and returns its trimmed output.
func git(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// previousCommit is the newest commit whose tree is not the one under test: HEAD when the work
// tree has uncommitted changes, else the first ancestor (first parents: the previous main for a
// merge) with a different tree. It fails the test, saying why, when there is no such history.
func previousCommit(ctx context.Context, t *testing.T, root string) string {
	t.Helper()
	if _, err := git(ctx, root, "rev-parse", "--git-dir"); err != nil {
		t.Fatalf("the rolling-upgrade test builds the previous commit's moldau from git history, and %s is not a git checkout: %v", root, err)
	}
	dirty, err := git(ctx, root, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		t.Fatal(err)
	}
	if dirty != "" {
		head, err := git(ctx, root, "rev-parse", "HEAD")
		if err != nil {
			t.Fatal(err)
		}
		return head
	}
	tree, err := git(ctx, root, "rev-parse", "HEAD^{tree}")
	if err != nil {
		t.Fatal(err)
	}
	list, err := git(ctx, root, "rev-list", "--first-parent", "--max-count=50", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	revs := strings.Fields(list)
	for _, rev := range revs[1:] {
		tr, err := git(ctx, root, "rev-parse", rev+"^{tree}")
		if err != nil {
			t.Fatal(err)
		}
		if tr != tree {
			return rev
		}
	}
	shallow, _ := git(ctx, root, "rev-parse", "--is-shallow-repository")
	t.Fatalf("the rolling-upgrade test builds the previous commit's moldau from git history, and this clone has no "+
		"commit before HEAD with another tree (%d commits found; shallow clone: %s). Fetch the history "+
		"(git fetch --unshallow) or run in a full clone.", len(revs), shallow)
	return ""
}

// previousBinary builds moldau from the previous commit (previousCommit), or the commit
// MOLDAU_UPGRADE_FROM names (a tag, a branch), from `git archive` in a temporary directory, and
// keeps it under the system's temp dir by commit for later runs.
func previousBinary(t *testing.T) (bin, rev string) {
	t.Helper()
	ctx := testContext(t, 10*time.Minute)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if from := os.Getenv("MOLDAU_UPGRADE_FROM"); from != "" {
		if rev, err = git(ctx, root, "rev-parse", "--verify", from+"^{commit}"); err != nil {
			t.Fatalf("MOLDAU_UPGRADE_FROM=%s: %v", from, err)
		}
	} else {
		rev = previousCommit(ctx, t, root)
	}
	bin = filepath.Join(os.TempDir(), "moldau-previous-"+rev, "moldau")
	if _, err := os.Stat(bin); err == nil {
		return bin, rev
	}
	src := t.TempDir()
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", rev)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var aerr, uerr bytes.Buffer
	archive.Stderr, untar.Stderr = &aerr, &uerr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", rev, err, aerr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar git archive %s: %v: %s", rev, err, uerr.String())
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := bin + fmt.Sprintf(".%d.tmp", os.Getpid())
	build := exec.CommandContext(ctx, "go", "build", "-o", tmp, "./cmd/moldau")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build moldau of commit %s: %v\n%s", rev, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin, rev
}

// TestRollingUpgradeFromPreviousCommit: a three-node cluster of the previous commit's moldau,
// started by cluster-local.sh, is upgraded node by node to this build with `cluster-local.sh
// restart N` (SIGTERM: a controlled shutdown; the next node only once every partition is fully
// in sync again) while moldau verify's producers write with acks=all. Every acknowledged record
// is read back exactly once, in order, where it was acknowledged, and acknowledgements never stop
// for long. Then the upgraded cluster has a metadata.version and moves a partition
// (MOLDAU_UPGRADE_FROM=cab8af5, issue 8's build without feature versions, checks the path where
// the last registration writes it).
func TestRollingUpgradeFromPreviousCommit(t *testing.T) {
	oldBin, rev := previousBinary(t)
	t.Logf("upgrading from commit %s (%s) to %s", rev, oldBin, moldauBin)
	lc := startLocalCluster(t, 3, oldBin,
		"KAFKA_BROKER_SESSION_TIMEOUT_MS=4000", "KAFKA_BROKER_HEARTBEAT_INTERVAL_MS=1000", "KAFKA_REPLICA_LAG_TIME_MAX_MS=4000")
	ctx := testContext(t, 4*time.Minute)
	cl := lc.client()
	for id := int32(1); id <= 3; id++ {
		if got, err := lc.binaryOf(id); err != nil || got != oldBin {
			t.Fatalf("node %d runs %q (%v), want the previous commit's %s", id, got, err, oldBin)
		}
	}

	upgrade := func(ctx context.Context) error {
		// The topic exists once the producers run; every partition is in sync before the first stop.
		if err := lc.waitFullyReplicated(ctx, cl, 60*time.Second); err != nil {
			return fmt.Errorf("before the upgrade: %w", err)
		}
		for id := int32(1); id <= 3; id++ {
			out, err := lc.run(moldauBin, "restart", fmt.Sprint(id))
			if err != nil {
				return fmt.Errorf("cluster-local.sh restart %d: %v\n%s", id, err, out)
			}
			if got, err := lc.binaryOf(id); err != nil || got != moldauBin {
				return fmt.Errorf("node %d runs %q after its restart (%v), want this build %s", id, got, err, moldauBin)
			}
			if err := lc.waitFullyReplicated(ctx, cl, 60*time.Second); err != nil {
				return fmt.Errorf("after node %d was upgraded: %w", id, err)
			}
			t.Logf("node %d upgraded and every partition in sync again", id)
		}
		return nil
	}
	r, err := verify.Run(ctx, verify.Options{
		Bootstrap:         lc.bootstrap(),
		Topic:             "upgrade",
		Partitions:        3,
		ReplicationFactor: 3,
		MinInsync:         2,
		Producers:         2,
		Rate:              400,
		Duration:          2 * time.Second,
		During:            upgrade,
		Logf:              t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: attempted %d, acknowledged %d, read %d, lost %d, duplicated %d, reordered %d, longest stall %d ms, produce errors %v",
		r.Attempted, r.Acknowledged, r.Read, r.Lost, r.Duplicated, r.Reordered, r.LongestStallMs, r.ProduceErrors)
	if !r.OK || r.Lost != 0 || r.Duplicated != 0 || r.Reordered != 0 || r.Moved != 0 || r.OffsetChanged != 0 {
		t.Fatalf("the upgrade lost or mangled acknowledged records: %+v", r)
	}
	if r.Acknowledged < 1000 {
		t.Errorf("only %d records acknowledged during the upgrade", r.Acknowledged)
	}
	// A controlled shutdown moves the leaders away first: producers wait at most for the
	// metadata refresh and a retry, never for a session timeout.
	if r.LongestStallMs > 10000 {
		t.Errorf("acknowledgements stopped for %d ms (at %d ms) during the upgrade", r.LongestStallMs, r.LongestStallAtMs)
	}

	// Once every node runs this build the cluster has a metadata.version (from a build before
	// feature versions it is written at the last node's registration) and moves replicas.
	bootstrap := strings.Join(lc.bootstrap(), ",")
	var info []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err = exec.CommandContext(ctx, moldauBin, "cluster", "info", "--bootstrap-server", bootstrap).CombinedOutput()
		if err == nil && bytes.Contains(info, []byte("Metadata version: ")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metadata.version after the upgrade (%v):\n%s", err, info)
		}
		time.Sleep(200 * time.Millisecond)
	}
	move := exec.CommandContext(ctx, moldauBin, "partition", "move", "upgrade:0", "--to", "3,2,1", "--wait", "--bootstrap-server", bootstrap)
	if out, err := move.CombinedOutput(); err != nil {
		t.Fatalf("moldau partition move after the upgrade: %v\n%s", err, out)
	}
}
