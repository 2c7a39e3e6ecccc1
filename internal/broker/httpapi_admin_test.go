package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/moldau/moldau/internal/httpapi"
)

// rawCall sends body as is (not JSON-encoded) and decodes the answer into an apiErr.
func rawCall(t *testing.T, method, u, body string) (int, apiErr) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiErr
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%s %s: %d: body is not an Error: %v", method, u, resp.StatusCode, err)
	}
	return resp.StatusCode, e
}

// TestAPIErrorAnswers holds the error answers to openapi.yaml's description: an unknown topic
// is 404 UNKNOWN_TOPIC_OR_PARTITION (kafka_code 3) on every topic path; a body that is not
// JSON, or has an unknown field, is 400 BAD_REQUEST (kafka_code 0); an existing topic is 409
// TOPIC_ALREADY_EXISTS (36); and each body has code, kafka_code and message.
func TestAPIErrorAnswers(t *testing.T) {
	b, base := apiBroker(t)
	unknown := kerr.UnknownTopicOrPartition
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/topics/nope"},
		{"GET", "/api/v1/topics/nope/partitions"},
		{"GET", "/api/v1/topics/nope/configs"},
		{"GET", "/api/v1/topics/nope/records"},
		{"DELETE", "/api/v1/topics/nope"},
	} {
		e := wantError(t, 404, unknown.Message, unknown.Code, c.method, base+c.path, nil)
		if e.Error.Message == "" {
			t.Fatalf("%s %s: empty message", c.method, c.path)
		}
	}
	if unknown.Code != 3 {
		t.Fatalf("UNKNOWN_TOPIC_OR_PARTITION is %d", unknown.Code)
	}
	wantError(t, 404, unknown.Message, unknown.Code, "POST", base+"/api/v1/topics/nope/records", map[string]any{"value": "x"})

	for _, body := range []string{`{"name":`, `not json`, `{"name":"t","partitions":"many"}`, `{"name":"t","bogus":1}`} {
		st, e := rawCall(t, "POST", base+"/api/v1/topics", body)
		if st != 400 || e.Error.Code != "BAD_REQUEST" || e.Error.KafkaCode != 0 || e.Error.Message == "" {
			t.Fatalf("POST topics %q: %d %+v, want 400 BAD_REQUEST", body, st, e.Error)
		}
	}
	// None of the refused bodies created a topic.
	adm := kadm.NewClient(client(t, b))
	tds, err := adm.ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tds.Has("t") {
		t.Fatal("a refused body created topic t")
	}

	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "dup", "partitions": 1}, nil)
	exists := kerr.TopicAlreadyExists
	wantError(t, 409, exists.Message, exists.Code, "POST", base+"/api/v1/topics", map[string]any{"name": "dup", "partitions": 1})
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/topics/dup/partitions?limit=0", nil)
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/topics/dup/partitions?offset=-1", nil)
}

// TestAPIPartitionsPages: the partitions of a topic with many partitions come in pages (the
// console asks for 100 at a time, never for all): total is the topic's partition count, a
// page holds exactly partitions offset..offset+limit-1 in order with the leader and replicas
// kadm's metadata gives, the last page is short, a page past the end is empty, and the
// default page is bounded (1000) below the partition count.
func TestAPIPartitionsPages(t *testing.T) {
	b, base := apiBroker(t)
	const n = 1500
	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "wide", "partitions": n}, nil)
	meta, err := kadm.NewClient(client(t, b)).Metadata(context.Background(), "wide")
	if err != nil {
		t.Fatal(err)
	}
	want := meta.Topics["wide"].Partitions
	if len(want) != n {
		t.Fatalf("kadm sees %d partitions", len(want))
	}
	type pageJSON struct {
		Total      int                     `json:"total"`
		Partitions []httpapi.PartitionInfo `json:"partitions"`
	}
	check := func(offset, limit, wantLen int) {
		t.Helper()
		var p pageJSON
		u := base + "/api/v1/topics/wide/partitions"
		if limit > 0 {
			u += "?limit=" + strconv.Itoa(limit) + "&offset=" + strconv.Itoa(offset)
		}
		mustCall(t, 200, "GET", u, nil, &p)
		if p.Total != n || len(p.Partitions) != wantLen {
			t.Fatalf("offset %d limit %d: total %d, %d partitions; want %d, %d", offset, limit, p.Total, len(p.Partitions), n, wantLen)
		}
		for i, pi := range p.Partitions {
			w := want[int32(offset+i)]
			if pi.Partition != int32(offset+i) || pi.Leader != w.Leader || !slices.Equal(pi.Replicas, w.Replicas) {
				t.Fatalf("offset %d row %d: %+v, want partition %d leader %d replicas %v", offset, i, pi, offset+i, w.Leader, w.Replicas)
			}
			if pi.HighWatermark != 0 || pi.LogStartOffset != 0 {
				t.Fatalf("partition %d: offsets %d..%d of an empty log", pi.Partition, pi.LogStartOffset, pi.HighWatermark)
			}
		}
	}
	check(0, 100, 100)
	check(1400, 100, 100)
	check(1450, 100, 50)
	check(n, 100, 0)
	check(0, 0, 1000) // no limit: the default page, not every partition
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/topics/wide/partitions?limit=10001", nil)
}
