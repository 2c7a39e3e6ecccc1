package cli

import (
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/brokertest"
)

// A group consumer's --timeout counts from when it joined the group: the join itself waits
// group.initial.rebalance.delay.ms (3 s by default), longer than a short --timeout.
func TestGroupConsumeTimeoutCountsFromJoin(t *testing.T) {
	addr := brokertest.Addr(t, map[string]string{"group.initial.rebalance.delay.ms": "1500"}) // kfake has no such delay
	mustRun(t, "", "topic", "create", "events", "-b", addr, "--partitions", "2")
	mustRun(t, "a:1\nb:2\nc:3\n", "produce", "events", "-b", addr, "--key-separator", ":")
	out := mustRun(t, "", "consume", "events", "-b", addr, "--group", "g", "--from-beginning", "--timeout", "500ms")
	if got := strings.Fields(out); len(got) != 3 {
		t.Fatalf("consume --group --timeout 500ms printed %q, want the 3 records", out)
	}
}
