package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/brokertest"
)

func featureLine(name, lo, hi, level string, epoch any) string {
	return fmt.Sprintf("Feature: %-40s  SupportedMinVersion: %-15s  SupportedMaxVersion: %-15s  FinalizedVersionLevel: %-15s  Epoch: %v\n", name, lo, hi, level, epoch)
}

// TestKafkaFeatures runs kafka-features against a Moldau node: describe, upgrade, downgrade and
// disable with Kafka's lines and exit codes, each change visible in the next describe.
func TestKafkaFeatures(t *testing.T) {
	b := brokertest.Start(t, nil)
	addr := b.Addr().String()
	bs := []string{"--bootstrap-server", addr}
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runCmd(t, "", "kafka-features", append(bs, args...)...)
		if code != wantCode {
			t.Fatalf("kafka-features %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
		}
		return out, errOut
	}
	describe := func(mv string) {
		t.Helper()
		out, _ := run(0, "describe")
		epoch := b.Controller().Image().Index()
		want := featureLine("group.version", "0", "0", "0", epoch) +
			featureLine("kraft.version", "0", "0", "0", epoch) +
			featureLine("metadata.version", "3.3-IV3", "4.1-IV1", mv, epoch) +
			featureLine("transaction.version", "0", "2", "2", epoch)
		if out != want {
			t.Fatalf("describe:\n%s\nwant:\n%s", out, want)
		}
	}
	describe("4.1-IV1")

	if out, _ := run(0, "downgrade", "--release-version", "4.0", "--dry-run"); out != "group.version can be downgraded to 0.\nkraft.version can be downgraded to 0.\nmetadata.version can be downgraded to 25.\ntransaction.version can be downgraded to 2.\n" {
		t.Fatalf("dry run: %q", out)
	}
	describe("4.1-IV1")
	if out, _ := run(0, "downgrade", "--metadata", "4.0-IV3"); out != " `metadata` flag is deprecated and may be removed in a future release.\nmetadata.version was downgraded to 25.\n" {
		t.Fatalf("downgrade: %q", out)
	}
	describe("4.0-IV3")
	out, errOut := run(1, "downgrade", "--feature", "metadata.version=21")
	if out != "Could not downgrade metadata.version to 21. Invalid metadata.version 21. Refusing to perform the requested downgrade because it might delete metadata information.\n" || errOut != "1 out of 1 operation(s) failed.\n" {
		t.Fatalf("refused downgrade: %q %q", out, errOut)
	}
	out, errOut = run(1, "upgrade", "--release-version", "4.4")
	if out != "Could not upgrade metadata.version to 33. Invalid update version 33 for feature metadata.version. Local controller 1 only supports versions 7-27\n"+
		"Could not upgrade transaction.version to 2. Invalid update version 33 for feature metadata.version. Local controller 1 only supports versions 7-27\n" || errOut != "2 out of 2 operation(s) failed.\n" {
		t.Fatalf("upgrade past the range: %q %q", out, errOut)
	}
	out, _ = run(1, "upgrade", "--feature", "group.version=1", "--feature", "metadata.version=27")
	if out != "Could not upgrade group.version to 1. Invalid update version 1 for feature group.version. Local controller 1 does not support this feature.\n"+
		"Could not upgrade metadata.version to 27. Invalid update version 1 for feature group.version. Local controller 1 does not support this feature.\n" {
		t.Fatalf("one refusal fails all: %q", out)
	}
	describe("4.0-IV3")
	if out, _ := run(0, "upgrade", "--release-version", "4.1"); out != "metadata.version was upgraded to 27.\ntransaction.version was upgraded to 2.\n" {
		t.Fatalf("upgrade: %q", out)
	}
	describe("4.1-IV1")
	if out, _ := run(0, "disable", "--feature", "group.version"); out != "group.version was disabled.\n" {
		t.Fatalf("disable: %q", out)
	}
	describe("4.1-IV1")
	// transaction.version: a cluster at 0 (as one created before it) upgrades to 2.
	if out, _ := run(0, "downgrade", "--feature", "transaction.version=0"); out != "transaction.version was downgraded to 0.\n" {
		t.Fatalf("downgrade transaction.version: %q", out)
	}
	if got := b.Controller().Image().FeatureLevel("transaction.version"); got != 0 {
		t.Fatalf("transaction.version %d after the downgrade", got)
	}
	if out, _ := run(0, "upgrade", "--feature", "transaction.version=2"); out != "transaction.version was upgraded to 2.\n" {
		t.Fatalf("upgrade transaction.version: %q", out)
	}
	describe("4.1-IV1")
}

func TestKafkaFeaturesLocal(t *testing.T) {
	bs := []string{"--bootstrap-server", "127.0.0.1:1"} // never dialled
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"version-mapping"}, 0, "metadata.version=27 (4.1-IV1)\nkraft.version=0\ntransaction.version=2\ngroup.version=0\n", ""},
		{[]string{"version-mapping", "--release-version", "4.0"}, 0, "metadata.version=25 (4.0)\nkraft.version=0\ntransaction.version=2\ngroup.version=0\n", ""},
		{[]string{"version-mapping", "--release-version", "3.2"}, 1, "", "Unknown metadata.version '3.2'. Supported metadata.version are: 3.3-IV3, 3.4-IV0, 3.5-IV0, 3.5-IV1, 3.5-IV2, 3.6-IV0, 3.6-IV1, 3.6-IV2, 3.7-IV0, 3.7-IV1, 3.7-IV2, 3.7-IV3, 3.7-IV4, 3.8-IV0, 3.9-IV0, 4.0-IV0, 4.0-IV1, 4.0-IV2, 4.0-IV3, 4.1-IV0, 4.1-IV1, 4.2-IV0, 4.2-IV1, 4.3-IV0, 4.4-IV0, 4.4-IV1, 4.4-IV2\n"},
		{[]string{"feature-dependencies", "--feature", "metadata.version=27", "--feature", "group.version=0"}, 0, "metadata.version=27 (4.1-IV1) has no dependencies.\ngroup.version=0 has no dependencies.\n", ""},
		{append(bs, "upgrade"), 1, "", "You must specify at least one feature to upgrade\n"},
		{append(bs, "disable"), 1, "", "You must specify at least one feature to disable\n"},
		{append(bs, "upgrade", "--feature", "x"), 1, "", "Can't parse feature=level string x: equals sign not found.\n"},
		{append(bs, "upgrade", "--feature", "x=y"), 1, "", "Can't parse feature=level string x=y: unable to parse y as a short.\n"},
		{append(bs, "upgrade", "--feature", "x=-1"), 1, "", "Cannot specify a negative version level.\n"},
		{append(bs, "upgrade", "--feature", "a=1", "--feature", "a=2"), 1, "", "Feature a was specified more than once.\n"},
		{append(bs, "upgrade", "--release-version", "4.1", "--feature", "a=1"), 1, "", "Can not specify `release-version` with other feature flags.\n"},
		{append(bs, "upgrade", "--release-version", "bogus"), 1, "", "Unknown metadata.version 'bogus'. Supported metadata.version are: 3.3-IV3"},
	} {
		out, errOut, code := runCmd(t, "", "kafka-features", tc.args...)
		if code != tc.code || out != tc.stdout || !strings.HasPrefix(errOut, tc.stderr) {
			t.Errorf("kafka-features %v: exit %d\nstdout %q\nstderr %q\nwant exit %d, %q, %q", tc.args, code, out, errOut, tc.code, tc.stdout, tc.stderr)
		}
	}
}
