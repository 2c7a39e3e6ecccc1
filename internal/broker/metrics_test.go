package broker

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsListener: metrics.listener (the alias of http.listener) serves Prometheus metrics
// that count real requests, and Go's pprof index with http.pprof.enable=true.
func TestMetricsListener(t *testing.T) {
	b := testBroker(t, t.TempDir(), "metrics.listener", "127.0.0.1:0", "http.pprof.enable", "true")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(client(t, b)).CreateTopic(ctx, 2, 1, nil, "m"); err != nil {
		t.Fatal(err)
	}
	cl := client(t, b, kgo.DefaultProduceTopic("m"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + b.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(body)
	}
	m := get("/metrics")
	for _, want := range []string{`moldau_requests_total{api="Produce"} 1`, `moldau_requests_total{api="CreateTopics"} 1`,
		"moldau_partitions ", "moldau_produce_bytes_total ", `moldau_request_duration_seconds_bucket{api="Produce"`,
		"go_goroutines ", "process_resident_memory_bytes ",
		"moldau_leader_replication_throttled_bytes_total 0\n", "moldau_follower_replication_throttled_rate 9.223372036854776e+18\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, "moldau_produce_bytes_total 0\n") {
		t.Error("produced bytes not counted")
	}
	if p := get("/debug/pprof/"); !strings.Contains(p, "goroutine") {
		t.Errorf("pprof index: %.200s", p)
	}
	// With http.listener empty nothing listens.
	b2 := testBroker(t, t.TempDir(), "http.listener", "")
	defer stopBroker(t, b2)
	if b2.MetricsAddr() != nil || b2.HTTPAddr() != nil {
		t.Fatal("an HTTP listener with http.listener empty")
	}
}
