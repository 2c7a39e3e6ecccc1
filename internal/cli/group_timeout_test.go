package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/broker"
	"github.com/moldau/moldau/internal/config"
)

// startMoldau starts an in-process Moldau broker (kfake has no group.initial.rebalance.delay.ms)
// with the given broker config overrides and returns its address.
func startMoldau(t *testing.T, overrides map[string]string) string {
	t.Helper()
	layer := map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": t.TempDir(), "offsets.topic.num.partitions": "1"}
	for k, v := range overrides {
		layer[k] = v
	}
	cfg, err := config.Build(layer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return b.Addr().String()
}

// A group consumer's --timeout counts from when it joined the group: the join itself waits
// group.initial.rebalance.delay.ms (3 s by default), longer than a short --timeout.
func TestGroupConsumeTimeoutCountsFromJoin(t *testing.T) {
	addr := startMoldau(t, map[string]string{"group.initial.rebalance.delay.ms": "1500"})
	mustRun(t, "", "topic", "create", "events", "-b", addr, "--partitions", "2")
	mustRun(t, "a:1\nb:2\nc:3\n", "produce", "events", "-b", addr, "--key-separator", ":")
	out := mustRun(t, "", "consume", "events", "-b", addr, "--group", "g", "--from-beginning", "--timeout", "500ms")
	if got := strings.Fields(out); len(got) != 3 {
		t.Fatalf("consume --group --timeout 500ms printed %q, want the 3 records", out)
	}
}
