package broker

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkAPIPartitions10k times the admin API's answers on a topic of 10 000 partitions led
// here, and on a group with a committed offset on each of them:
//
//	go test -run '^$' -bench BenchmarkAPIPartitions10k -benchtime 20x ./internal/broker/
//
// Each sub-benchmark reports the answer's size (bytes/op as B/answer).
func BenchmarkAPIPartitions10k(b *testing.B) {
	_, base := apiBroker(b)
	mustCall(b, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "big", "partitions": 10000}, nil)
	mustCall(b, 200, "POST", base+"/api/v1/groups/g/offsets/reset", map[string]any{"to": "earliest", "topics": []string{"big"}}, nil)
	for _, c := range []struct{ name, path string }{
		{"topics", "/api/v1/topics"},
		{"topic", "/api/v1/topics/big"},
		{"partitions-first-page", "/api/v1/topics/big/partitions?limit=100"},
		{"partitions-late-page", "/api/v1/topics/big/partitions?limit=100&offset=9900"},
		{"partitions-default-page", "/api/v1/topics/big/partitions"},
		{"cluster", "/api/v1/cluster"},
		{"group-page-of-100", "/api/v1/groups/g?limit=100"},
		{"group-late-page", "/api/v1/groups/g?limit=100&offset=9900"},
		{"group-all-10k-offsets", "/api/v1/groups/g?limit=10000"},
		{"groups", "/api/v1/groups"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var size int64
			for b.Loop() {
				resp, err := http.Get(base + c.path)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %d %v", c.path, resp.StatusCode, err)
				}
				size = n
			}
			b.ReportMetric(float64(size), "B/answer")
		})
	}
}
