package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/httpapi"
)

// apiServer serves the admin API of b on a test HTTP server.
func apiServer(t testing.TB, b *Broker, level *slog.LevelVar) string {
	t.Helper()
	srv := httptest.NewServer(httpapi.NewAPI(b.apiBackend(), httpapi.APIOptions{Level: level, Version: "test"}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// apiBroker starts a broker (stopped when t ends) and its API server.
func apiBroker(t testing.TB, overrides ...string) (*Broker, string) {
	t.Helper()
	b := testBroker(t, t.TempDir(), overrides...)
	t.Cleanup(func() { stopBroker(t, b) })
	return b, apiServer(t, b, nil)
}

// call sends method path with body (JSON-encoded unless nil) and decodes the answer into out
// (unless nil); it returns the status.
func call(t testing.TB, method, u string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, u, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// mustCall is call expecting status want.
func mustCall(t testing.TB, want int, method, u string, body, out any) {
	t.Helper()
	var raw json.RawMessage
	got := call(t, method, u, body, &raw)
	if got != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, u, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, u, raw, err)
		}
	}
}

type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		KafkaCode int16  `json:"kafka_code"`
		Message   string `json:"message"`
	} `json:"error"`
}

// wantError checks that method u answers status with the error code (and Kafka code).
func wantError(t testing.TB, status int, code string, kafkaCode int16, method, u string, body any) apiErr {
	t.Helper()
	var e apiErr
	got := call(t, method, u, body, &e)
	if got != status || e.Error.Code != code || e.Error.KafkaCode != kafkaCode {
		t.Fatalf("%s %s: %d %+v, want %d %s (kafka %d)", method, u, got, e.Error, status, code, kafkaCode)
	}
	return e
}

func TestAPITopicsLifecycle(t *testing.T) {
	b, base := apiBroker(t)

	var created httpapi.TopicDetail
	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{
		"name": "orders", "partitions": 3, "replication_factor": 1, "configs": map[string]string{"retention.ms": "3600000"},
	}, &created)
	if created.Name != "orders" || created.Partitions != 3 || created.ReplicationFactor != 1 || created.ID == "" {
		t.Fatalf("created %+v", created.TopicSummary)
	}
	if c := findConfig(created.Configs, "retention.ms"); c == nil || *c.Value != "3600000" || c.Default || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("retention.ms of the new topic: %+v", c)
	}
	if c := findConfig(created.Configs, "cleanup.policy"); c == nil || *c.Value != "delete" || !c.Default {
		t.Fatalf("cleanup.policy: %+v", c)
	}
	// The topic is there for a Kafka client too.
	adm := kadm.NewClient(client(t, b))
	td, err := adm.ListTopics(context.Background(), "orders")
	if err != nil || len(td["orders"].Partitions) != 3 {
		t.Fatalf("kadm sees %v, %v", td, err)
	}

	wantError(t, 409, "TOPIC_ALREADY_EXISTS", 36, "POST", base+"/api/v1/topics", map[string]any{"name": "orders", "partitions": 1})
	wantError(t, 400, "INVALID_PARTITIONS", 37, "POST", base+"/api/v1/topics", map[string]any{"name": "bad", "partitions": -5})
	wantError(t, 400, "INVALID_CONFIG", 40, "POST", base+"/api/v1/topics", map[string]any{"name": "bad2", "configs": map[string]string{"retention.ms": "soon"}})
	wantError(t, 400, "BAD_REQUEST", 0, "POST", base+"/api/v1/topics", map[string]any{"nmae": "typo"})
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "GET", base+"/api/v1/topics/nope", nil)
	wantError(t, 404, "NOT_FOUND", 0, "GET", base+"/api/v1/nothing-here", nil)

	for _, name := range []string{"payments", "audit-log"} {
		mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": name, "partitions": 1}, nil)
	}
	var list struct {
		Total  int                    `json:"total"`
		Topics []httpapi.TopicSummary `json:"topics"`
	}
	mustCall(t, 200, "GET", base+"/api/v1/topics?internal=false", nil, &list)
	if list.Total != 3 || names(list.Topics) != "audit-log,orders,payments" {
		t.Fatalf("topics: %d %s", list.Total, names(list.Topics))
	}
	mustCall(t, 200, "GET", base+"/api/v1/topics?search=PAY", nil, &list)
	if list.Total != 1 || names(list.Topics) != "payments" {
		t.Fatalf("search: %d %s", list.Total, names(list.Topics))
	}
	mustCall(t, 200, "GET", base+"/api/v1/topics?internal=false&limit=2&offset=2", nil, &list)
	if list.Total != 3 || names(list.Topics) != "payments" {
		t.Fatalf("page 2: %d %s", list.Total, names(list.Topics))
	}
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/topics?limit=0", nil)

	// Configs: set one, delete another, as IncrementalAlterConfigs.
	var cfgs struct {
		Configs []httpapi.ConfigEntry `json:"configs"`
	}
	mustCall(t, 200, "PATCH", base+"/api/v1/topics/orders/configs", map[string]any{"set": map[string]string{"cleanup.policy": "compact"}, "delete": []string{"retention.ms"}}, &cfgs)
	if c := findConfig(cfgs.Configs, "cleanup.policy"); c == nil || *c.Value != "compact" || c.Default {
		t.Fatalf("cleanup.policy after set: %+v", c)
	}
	if c := findConfig(cfgs.Configs, "retention.ms"); c == nil || !c.Default || *c.Value == "3600000" {
		t.Fatalf("retention.ms after delete: %+v", c)
	}
	rc, err := adm.DescribeTopicConfigs(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("orders", nil); err != nil || configValue(v.Configs, "cleanup.policy") != "compact" {
		t.Fatalf("kadm sees cleanup.policy %q (%v)", configValue(v.Configs, "cleanup.policy"), err)
	}
	mustCall(t, 200, "GET", base+"/api/v1/topics/orders/configs", nil, &cfgs)
	if c := findConfig(cfgs.Configs, "cleanup.policy"); c == nil || *c.Value != "compact" {
		t.Fatalf("GET configs: %+v", c)
	}
	wantError(t, 400, "INVALID_CONFIG", 40, "PATCH", base+"/api/v1/topics/orders/configs", map[string]any{"set": map[string]string{"retention.ms": "x"}})
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "PATCH", base+"/api/v1/topics/nope/configs", map[string]any{"set": map[string]string{"retention.ms": "1"}})

	var parts struct {
		Total      int                     `json:"total"`
		Partitions []httpapi.PartitionInfo `json:"partitions"`
	}
	mustCall(t, 200, "GET", base+"/api/v1/topics/orders/partitions", nil, &parts)
	if parts.Total != 3 || len(parts.Partitions) != 3 {
		t.Fatalf("partitions: %+v", parts)
	}
	for i, p := range parts.Partitions {
		if p.Partition != int32(i) || p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.HighWatermark != 0 || p.LogStartOffset != 0 || p.SizeBytes != 0 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}

	mustCall(t, 204, "DELETE", base+"/api/v1/topics/payments", nil, nil)
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "DELETE", base+"/api/v1/topics/payments", nil)
	td, err = adm.ListTopics(context.Background())
	if err != nil || td.Has("payments") {
		t.Fatalf("after delete kadm lists %v (%v)", td.Names(), err)
	}

	var cl httpapi.Cluster
	mustCall(t, 200, "GET", base+"/api/v1/cluster", nil, &cl)
	if cl.NodeID != 1 || cl.ControllerID != 1 || cl.ClusterID == "" || cl.Version != "test" || len(cl.Nodes) != 1 ||
		!cl.Nodes[0].Controller || cl.Nodes[0].Fenced || cl.Nodes[0].LogDirBytes < 0 {
		t.Fatalf("cluster %+v", cl)
	}
	// orders (3) + audit-log (1) + __consumer_offsets (3)
	if cl.Health.Partitions != 7 || cl.Health.Topics != 3 || cl.Health.Offline != 0 || cl.Health.UnderReplicated != 0 {
		t.Fatalf("health %+v", cl.Health)
	}
}

func findConfig(cs []httpapi.ConfigEntry, name string) *httpapi.ConfigEntry {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}

func names(ts []httpapi.TopicSummary) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Name)
	}
	return strings.Join(s, ",")
}

// streamLine is any line of the records stream.
type streamLine struct {
	Type          string `json:"type"`
	Partition     int32  `json:"partition"`
	Offset        int64  `json:"offset"`
	Timestamp     int64  `json:"timestamp"`
	TimestampType string `json:"timestamp_type"`
	Key           *httpapi.Value
	Value         *httpapi.Value
	Headers       []struct {
		Key   string         `json:"key"`
		Value *httpapi.Value `json:"value"`
	} `json:"headers"`
	Size    int              `json:"size"`
	Scanned int64            `json:"scanned"`
	Matched int64            `json:"matched"`
	Next    map[string]int64 `json:"next"`
	Reason  string           `json:"reason"`
	Error   string           `json:"error"`
}

// readStream GETs the records endpoint with query q and returns the record lines, the progress
// lines and the done line (which must be last).
func readStream(t testing.TB, base, topic string, q url.Values) (recs, progress []streamLine, done streamLine) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/topics/" + topic + "/records?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("records %v: %d %s", q, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	var lines []streamLine
	for sc.Scan() {
		var l streamLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 || lines[len(lines)-1].Type != "done" {
		t.Fatalf("stream does not end with a done line: %+v", lines)
	}
	for _, l := range lines[:len(lines)-1] {
		switch l.Type {
		case "record":
			recs = append(recs, l)
		case "progress":
			progress = append(progress, l)
		default:
			t.Fatalf("line of type %q before the end", l.Type)
		}
	}
	return recs, progress, lines[len(lines)-1]
}

func TestAPIProduceAndReadRecords(t *testing.T) {
	b, base := apiBroker(t)
	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "events", "partitions": 2}, nil)

	// Produced through the API: utf8 and hex bodies, an explicit partition.
	var p0 httpapi.Produced
	mustCall(t, 200, "POST", base+"/api/v1/topics/events/records", map[string]any{
		"partition": 1, "key": "user-1", "value": `{"amount": 12}`, "headers": []map[string]string{{"key": "trace", "value": "abc"}},
	}, &p0)
	if p0.Partition != 1 || p0.Offset != 0 || p0.Timestamp <= 0 {
		t.Fatalf("produced %+v", p0)
	}
	var p1 httpapi.Produced
	mustCall(t, 200, "POST", base+"/api/v1/topics/events/records", map[string]any{
		"partition": 1, "value": "00ff10", "encoding": "hex", "headers": []map[string]string{{"key": "bin", "value": "c328"}},
	}, &p1)
	if p1.Partition != 1 || p1.Offset != 1 {
		t.Fatalf("produced %+v", p1)
	}
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "POST", base+"/api/v1/topics/events/records", map[string]any{"partition": 7, "value": "x"})
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "POST", base+"/api/v1/topics/nope/records", map[string]any{"value": "x"})
	wantError(t, 400, "BAD_REQUEST", 0, "POST", base+"/api/v1/topics/events/records", map[string]any{"value": "zz", "encoding": "hex"})

	// And by a Kafka client, with explicit timestamps, to partition 0.
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 10 {
		r := &kgo.Record{Topic: "events", Partition: 0, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("plain %d", i)), Timestamp: base0.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Partition 1 from offset 0: decoded as auto says.
	recs, _, done := readStream(t, base, "events", url.Values{"partition": {"1"}, "offset": {"0"}})
	if len(recs) != 2 || done.Scanned != 2 || done.Matched != 2 || done.Reason != "end" || done.Next["1"] != 2 {
		t.Fatalf("partition 1: %d records, done %+v", len(recs), done)
	}
	r := recs[0]
	if r.Offset != 0 || r.Key.Encoding != "utf8" || r.Key.Text != "user-1" || r.Value.Encoding != "json" || r.Value.Text != `{"amount": 12}` ||
		len(r.Headers) != 1 || r.Headers[0].Key != "trace" || r.Headers[0].Value.Text != "abc" || r.TimestampType != "create_time" || r.Timestamp != p0.Timestamp {
		t.Fatalf("record 0: %+v", r)
	}
	r = recs[1]
	if r.Key != nil || r.Value.Encoding != "hex" || r.Value.Text != "00ff10" || r.Headers[0].Value.Encoding != "hex" || r.Headers[0].Value.Text != "c328" {
		t.Fatalf("record 1: %+v", r)
	}
	// decode=hex and decode=utf8 override auto.
	recs, _, _ = readStream(t, base, "events", url.Values{"partition": {"1"}, "offset": {"0"}, "limit": {"1"}, "decode": {"hex"}})
	if len(recs) != 1 || recs[0].Key.Encoding != "hex" || recs[0].Key.Text != "757365722d31" {
		t.Fatalf("decode=hex: %+v", recs)
	}
	recs, _, _ = readStream(t, base, "events", url.Values{"partition": {"1"}, "offset": {"0"}, "limit": {"1"}, "decode": {"utf8"}})
	if len(recs) != 1 || recs[0].Value.Encoding != "utf8" {
		t.Fatalf("decode=utf8: %+v", recs)
	}

	// By offset, with a limit: next says where to continue.
	recs, _, done = readStream(t, base, "events", url.Values{"partition": {"0"}, "offset": {"4"}, "limit": {"3"}})
	if len(recs) != 3 || recs[0].Offset != 4 || recs[2].Offset != 6 || done.Reason != "limit" || done.Next["0"] != 7 {
		t.Fatalf("offset 4 limit 3: %+v, done %+v", recs, done)
	}
	// By timestamp: the first record at or after it.
	ts := base0.Add(6*time.Minute + time.Second).UnixMilli()
	recs, _, _ = readStream(t, base, "events", url.Values{"partition": {"0"}, "timestamp": {fmt.Sprint(ts)}})
	if len(recs) != 3 || recs[0].Offset != 7 || recs[0].Timestamp != base0.Add(7*time.Minute).UnixMilli() || recs[0].Value.Text != "plain 7" {
		t.Fatalf("timestamp: %+v", recs)
	}
	// A timestamp after every record: nothing.
	recs, _, done = readStream(t, base, "events", url.Values{"timestamp": {fmt.Sprint(time.Now().Add(time.Hour).UnixMilli())}})
	if len(recs) != 0 || done.Scanned != 0 {
		t.Fatalf("future timestamp: %+v %+v", recs, done)
	}
	// from=latest: the last limit records of each partition.
	recs, _, _ = readStream(t, base, "events", url.Values{"partition": {"0"}, "from": {"latest"}, "limit": {"2"}})
	if len(recs) != 2 || recs[0].Offset != 8 || recs[1].Offset != 9 {
		t.Fatalf("latest: %+v", recs)
	}
	// All partitions, a filter on the key only.
	recs, _, done = readStream(t, base, "events", url.Values{"filter": {"k3"}, "filter_in": {"key"}})
	if len(recs) != 1 || recs[0].Partition != 0 || recs[0].Offset != 3 || done.Scanned != 12 || done.Next["0"] != 10 || done.Next["1"] != 2 {
		t.Fatalf("filter k3: %+v, done %+v", recs, done)
	}
	// A header filter finds the header, not the value.
	recs, _, _ = readStream(t, base, "events", url.Values{"filter": {"trace"}, "filter_in": {"header"}})
	if len(recs) != 1 || recs[0].Partition != 1 {
		t.Fatalf("header filter: %+v", recs)
	}
	recs, _, _ = readStream(t, base, "events", url.Values{"filter": {"trace"}, "filter_in": {"value"}})
	if len(recs) != 0 {
		t.Fatalf("value filter matched a header: %+v", recs)
	}
	// max_scan bounds the scan.
	_, _, done = readStream(t, base, "events", url.Values{"partition": {"0"}, "filter": {"nothing"}, "max_scan": {"4"}})
	if done.Reason != "max_scan" || done.Scanned != 4 || done.Next["0"] != 4 {
		t.Fatalf("max_scan: %+v", done)
	}

	wantError(t, 404, "NOT_FOUND", 0, "GET", base+"/api/v1/topics/events/records?partition=9", nil)
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/topics/events/records?offset=1&from=latest", nil)
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "GET", base+"/api/v1/topics/nope/records", nil)
}

func TestAPIGroupsLagAndReset(t *testing.T) {
	b, base := apiBroker(t)
	ctx := context.Background()
	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "jobs", "partitions": 2}, nil)
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	for p := range int32(2) {
		for i := range 10 {
			r := &kgo.Record{Topic: "jobs", Partition: p, Value: []byte("job"), Timestamp: start.Add(time.Duration(i) * time.Minute)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	// An empty group with commits: 4 of partition 0 (lag 6, the record at 4 is 6 minutes old),
	// 10 of partition 1 (no lag).
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "jobs", Partition: 0, At: 4, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "jobs", Partition: 1, At: 10, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "billing", os); err != nil {
		t.Fatal(err)
	}

	var g httpapi.GroupDetail
	mustCall(t, 200, "GET", base+"/api/v1/groups/billing", nil, &g)
	if g.GroupID != "billing" || g.State != "Empty" || len(g.Members) != 0 || len(g.Offsets) != 2 || g.TotalLag != 6 || g.Coordinator != 1 {
		t.Fatalf("group %+v", g)
	}
	o := g.Offsets[0]
	wantSecs := time.Since(start.Add(4 * time.Minute)).Seconds()
	if o.Partition != 0 || o.CommittedOffset != 4 || o.HighWatermark != 10 || o.Lag != 6 || o.LagSeconds < wantSecs-5 || o.LagSeconds > wantSecs+5 {
		t.Fatalf("partition 0: %+v (lag seconds want about %.0f)", o, wantSecs)
	}
	if o := g.Offsets[1]; o.Lag != 0 || o.LagSeconds != 0 {
		t.Fatalf("partition 1: %+v", o)
	}
	if g.MaxLagSeconds != o.LagSeconds && g.MaxLagSeconds < wantSecs-5 {
		t.Fatalf("max lag seconds %v", g.MaxLagSeconds)
	}
	if g.OffsetsTotal != 2 || !slices.Equal(g.Topics, []string{"jobs"}) {
		t.Fatalf("offsets_total %d, topics %q: want 2, [jobs]", g.OffsetsTotal, g.Topics)
	}
	// A page of the offsets; the totals stay those of the whole group.
	var pg httpapi.GroupDetail
	mustCall(t, 200, "GET", base+"/api/v1/groups/billing?limit=1&offset=1", nil, &pg)
	if len(pg.Offsets) != 1 || pg.Offsets[0].Partition != 1 || pg.OffsetsTotal != 2 || pg.TotalLag != 6 || pg.MaxLagSeconds != g.MaxLagSeconds && pg.MaxLagSeconds < wantSecs-5 {
		t.Fatalf("page 2 of 1: %+v", pg)
	}
	mustCall(t, 200, "GET", base+"/api/v1/groups/billing?offset=5", nil, &pg)
	if len(pg.Offsets) != 0 || pg.Offsets == nil || pg.OffsetsTotal != 2 {
		t.Fatalf("past the end: %+v, want an empty page of 2", pg)
	}
	wantError(t, 400, "BAD_REQUEST", 0, "GET", base+"/api/v1/groups/billing?limit=0", nil)
	var gl struct {
		Groups []httpapi.GroupSummary `json:"groups"`
	}
	mustCall(t, 200, "GET", base+"/api/v1/groups", nil, &gl)
	if len(gl.Groups) != 1 || gl.Groups[0].GroupID != "billing" || gl.Groups[0].TotalLag != 6 || gl.Groups[0].Members != 0 {
		t.Fatalf("groups %+v", gl.Groups)
	}
	var hist httpapi.LagHistory
	mustCall(t, 200, "GET", base+"/api/v1/groups/billing/lag", nil, &hist)
	if hist.IntervalMs <= 0 || hist.Coordinator != 1 || hist.Samples == nil {
		t.Fatalf("lag history %+v", hist)
	}
	wantError(t, 404, "GROUP_ID_NOT_FOUND", 69, "GET", base+"/api/v1/groups/nobody", nil)

	// Reset, dry run: nothing committed.
	var res struct {
		DryRun  bool                  `json:"dry_run"`
		Offsets []httpapi.OffsetReset `json:"offsets"`
	}
	mustCall(t, 200, "POST", base+"/api/v1/groups/billing/offsets/reset", map[string]any{"to": "earliest", "dry_run": true}, &res)
	if !res.DryRun || len(res.Offsets) != 2 || res.Offsets[0] != (httpapi.OffsetReset{Topic: "jobs", Partition: 0, Current: 4, New: 0}) ||
		res.Offsets[1] != (httpapi.OffsetReset{Topic: "jobs", Partition: 1, Current: 10, New: 0}) {
		t.Fatalf("dry run %+v", res)
	}
	committed := func() (int64, int64) {
		t.Helper()
		fo, err := adm.FetchOffsets(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := fo.Lookup("jobs", 0)
		b, _ := fo.Lookup("jobs", 1)
		return a.At, b.At
	}
	if a, b := committed(); a != 4 || b != 10 {
		t.Fatalf("dry run committed %d %d", a, b)
	}
	// By timestamp, for real: the first record at or after start+7m30s is 8.
	ts := start.Add(7*time.Minute + 30*time.Second).UnixMilli()
	mustCall(t, 200, "POST", base+"/api/v1/groups/billing/offsets/reset", map[string]any{"to": "timestamp", "timestamp": ts, "partitions": map[string][]int32{"jobs": {0}}}, &res)
	if res.DryRun || len(res.Offsets) != 1 || res.Offsets[0].New != 8 {
		t.Fatalf("reset by timestamp %+v", res)
	}
	if a, b := committed(); a != 8 || b != 10 {
		t.Fatalf("after reset committed %d %d", a, b)
	}
	mustCall(t, 200, "POST", base+"/api/v1/groups/billing/offsets/reset", map[string]any{"to": "offset", "offset": 2, "topics": []string{"jobs"}}, &res)
	if a, b := committed(); a != 2 || b != 2 {
		t.Fatalf("after reset to offset 2: %d %d", a, b)
	}
	wantError(t, 400, "BAD_REQUEST", 0, "POST", base+"/api/v1/groups/billing/offsets/reset", map[string]any{"to": "timestamp"})
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "POST", base+"/api/v1/groups/billing/offsets/reset", map[string]any{"to": "latest", "topics": []string{"nope"}})

	// A group with a live member: described with its assignment, and a reset is refused.
	consumer := client(t, b, kgo.ConsumerGroup("live"), kgo.ConsumeTopics("jobs"), kgo.ClientID("live-consumer"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		consumer.PollFetches(pctx)
		cancel()
		var live httpapi.GroupDetail
		if call(t, "GET", base+"/api/v1/groups/live", nil, &live) == 200 && live.State == "Stable" && len(live.Members) == 1 &&
			len(live.Members[0].Assignments) == 1 && len(live.Members[0].Assignments[0].Partitions) == 2 {
			if live.Members[0].ClientID != "live-consumer" || live.Protocol == "" || live.ProtocolType != "consumer" {
				t.Fatalf("live group %+v", live)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group live not stable with one member: %+v", live)
		}
	}
	wantError(t, 409, "NON_EMPTY_GROUP", 68, "POST", base+"/api/v1/groups/live/offsets/reset", map[string]any{"to": "earliest", "dry_run": true})
	wantError(t, 409, "NON_EMPTY_GROUP", 68, "DELETE", base+"/api/v1/groups/live", nil)
	mustCall(t, 204, "DELETE", base+"/api/v1/groups/billing", nil, nil)
	wantError(t, 404, "GROUP_ID_NOT_FOUND", 69, "GET", base+"/api/v1/groups/billing", nil)
}
