package config

import (
	"maps"
	"math"
	"testing"
)

// The resource-limit keys: Kafka's names and defaults (Moldau's 256 MiB budget where Kafka has
// -1), -1 for "no limit", and Kafka's rule for max.connections.per.ip=0.
func TestConnectionLimitKeys(t *testing.T) {
	c, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if c.QueuedMaxRequestBytes != 256<<20 || c.ConnectionsMaxIdleMs != 600000 ||
		c.MaxConnections != math.MaxInt32 || c.MaxConnectionsPerIP != math.MaxInt32 ||
		c.MaxConnectionsPerIPOverrides != nil || len(c.Ignored) != 0 {
		t.Fatalf("defaults: budget %d idle %d max %d per ip %d overrides %v ignored %v", c.QueuedMaxRequestBytes,
			c.ConnectionsMaxIdleMs, c.MaxConnections, c.MaxConnectionsPerIP, c.MaxConnectionsPerIPOverrides, c.Ignored)
	}
	c, err = Build(map[string]string{"queued.max.request.bytes": "-1", "connections.max.idle.ms": "-1",
		"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "127.0.0.1:5, broker-2:10,::1:3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{"127.0.0.1": 5, "broker-2": 10, "::1": 3}
	if c.QueuedMaxRequestBytes != -1 || c.ConnectionsMaxIdleMs != -1 || c.MaxConnectionsPerIP != 0 ||
		!maps.Equal(c.MaxConnectionsPerIPOverrides, want) {
		t.Fatalf("set: budget %d idle %d per ip %d overrides %v", c.QueuedMaxRequestBytes,
			c.ConnectionsMaxIdleMs, c.MaxConnectionsPerIP, c.MaxConnectionsPerIPOverrides)
	}
	for _, tt := range []struct{ set map[string]string }{
		{map[string]string{"queued.max.request.bytes": "0"}},
		{map[string]string{"connections.max.idle.ms": "-2"}},
		{map[string]string{"max.connections": "-1"}},
		{map[string]string{"max.connections.per.ip": "0"}},
		{map[string]string{"max.connections.per.ip.overrides": "host"}},
		{map[string]string{"max.connections.per.ip.overrides": "host:x"}},
		{map[string]string{"max.connections.per.ip.overrides": "host:-1"}},
	} {
		if _, err := Build(tt.set); err == nil {
			t.Errorf("Build(%v) accepted", tt.set)
		}
	}
}
