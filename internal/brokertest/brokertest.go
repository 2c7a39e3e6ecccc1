// Package brokertest starts an in-process Moldau broker for the tests of other packages (cli,
// bench, the client suites in test/): one free loopback port, a fresh data dir, and a shutdown
// when the test ends. internal/broker's own tests keep their helper, since they cannot import
// this package.
package brokertest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/broker"
	"github.com/moldau/moldau/internal/config"
)

// Defaults are the settings every test broker starts with: no initial rebalance delay and three
// __consumer_offsets partitions, so groups settle at once and start-up is quick, and the HTTP
// listener on a free loopback port (never the default 8080; the broker's HTTPAddr).
var Defaults = map[string]string{
	"group.initial.rebalance.delay.ms": "0",
	"offsets.topic.num.partitions":     "3",
	"http.listener":                    "127.0.0.1:0",
}

// Start starts a broker with Defaults, then overrides (config keys), on 127.0.0.1:0 and a data
// dir of its own (log.dirs in overrides replaces it); it is shut down when t ends.
// http.listener="" in overrides turns the HTTP listener off.
func Start(t testing.TB, overrides map[string]string) *broker.Broker {
	t.Helper()
	layer := map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": t.TempDir()}
	for k, v := range Defaults {
		layer[k] = v
	}
	if _, ok := overrides["metrics.listener"]; ok {
		delete(layer, "http.listener") // the alias given alone wins
	}
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
	return b
}

// Addr starts a broker as Start does and returns its client address.
func Addr(t testing.TB, overrides map[string]string) string {
	t.Helper()
	return Start(t, overrides).Addr().String()
}
