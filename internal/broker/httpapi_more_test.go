package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/httpapi"
)

// TestAPILogLevel: PUT /api/v1/log/level changes the process's slog level (the LevelVar the
// broker's logger reads) and GET shows it; a level that is not one of slog's, a body that is not
// JSON and an unknown field answer 400 with the documented error body, and leave the level as
// it was.
func TestAPILogLevel(t *testing.T) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) })
	level := new(slog.LevelVar)
	base := apiServer(t, b, level)
	u := base + "/api/v1/log/level"

	var got struct {
		Level string `json:"level"`
	}
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "INFO" {
		t.Fatalf("level %q, want INFO", got.Level)
	}
	mustCall(t, 200, "PUT", u, map[string]string{"level": "debug"}, &got)
	if got.Level != "DEBUG" || level.Level() != slog.LevelDebug {
		t.Fatalf("after PUT debug: answer %q, level %v", got.Level, level.Level())
	}
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "DEBUG" {
		t.Fatalf("GET after PUT debug: %q", got.Level)
	}
	e := wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, map[string]string{"level": "chatty"})
	if e.Error.Message == "" {
		t.Fatal("error without a message")
	}
	wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, "not an object")
	wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, map[string]string{"levle": "info"})
	if level.Level() != slog.LevelDebug {
		t.Fatalf("a refused PUT changed the level to %v", level.Level())
	}
	mustCall(t, 200, "PUT", u, map[string]string{"level": "INFO"}, &got)
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "INFO" || level.Level() != slog.LevelInfo {
		t.Fatalf("back to info: answer %q, level %v", got.Level, level.Level())
	}
}

// TestAPIErrorAnswersMore: the documented error body ({"error": {code, kafka_code, message}})
// on the paths TestAPIErrorAnswers leaves out: an unknown group (404, GROUP_ID_NOT_FOUND, 69),
// altering the configs of an unknown topic (404, 3), an empty config change, a name missing
// from a create, a limit that is not a number (400 BAD_REQUEST, 0) and a path the API does not
// have (404 NOT_FOUND, 0).
func TestAPIErrorAnswersMore(t *testing.T) {
	_, base := apiBroker(t)
	v1 := base + "/api/v1"
	mustCall(t, 201, "POST", v1+"/topics", map[string]any{"name": "here", "partitions": 1}, nil)
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "PATCH", v1+"/topics/nope/configs", map[string]any{"set": map[string]string{"retention.ms": "1000"}})
	wantError(t, 404, "GROUP_ID_NOT_FOUND", 69, "GET", v1+"/groups/nobody", nil)
	wantError(t, 400, "BAD_REQUEST", 0, "POST", v1+"/topics", map[string]any{"partitions": 1})
	wantError(t, 400, "BAD_REQUEST", 0, "PATCH", v1+"/topics/here/configs", map[string]any{})
	wantError(t, 400, "BAD_REQUEST", 0, "GET", v1+"/topics?limit=x", nil)
	e := wantError(t, 404, "NOT_FOUND", 0, "GET", v1+"/nothing/here", nil)
	if e.Error.Message == "" {
		t.Fatal("NOT_FOUND without a message")
	}
}

// blockingBackend is the broker's Backend whose ReadBatches, after the first after calls,
// reports on blocked and waits for its context to end (or release, closed when the test ends
// so that a failing test does not hang in the server's Close): a records stream can then only
// end if the client's going away cancels the handler's context.
type blockingBackend struct {
	httpapi.Backend
	mu      sync.Mutex
	calls   int
	after   int
	blocked chan struct{}
	release chan struct{}
}

func (bb *blockingBackend) ReadBatches(ctx context.Context, topic string, p int32, offset int64, maxBytes int32) ([]byte, error) {
	bb.mu.Lock()
	bb.calls++
	n := bb.calls
	bb.mu.Unlock()
	if n <= bb.after {
		return bb.Backend.ReadBatches(ctx, topic, p, offset, maxBytes)
	}
	if n == bb.after+1 {
		close(bb.blocked)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-bb.release:
		return nil, fmt.Errorf("released by the test's end")
	}
}

// TestAPIRecordsFilterLargeTopic: on a topic of 12 000 records in 3 partitions, a server-side
// filter whose matches are near the end of two partitions returns exactly those records (none
// missed, none extra), the stream carries progress lines while it scans (one per 10 000
// records scanned at least) and ends with a done line whose reason is end and counts are the
// topic's. A client that goes away mid-scan ends the server's scan: with a backend whose reads
// block until the request's context ends, the handler returns once the client disconnects.
func TestAPIRecordsFilterLargeTopic(t *testing.T) {
	b, base := apiBroker(t)
	mustCall(t, 201, "POST", base+"/api/v1/topics", map[string]any{"name": "big", "partitions": 3}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	const perPartition = 4000
	needles := map[[2]int64]bool{{0, 3990}: true, {2, 3995}: true, {2, 3999}: true}
	var rs []*kgo.Record
	for p := range int64(3) {
		for o := range int64(perPartition) {
			v := fmt.Sprintf("hay %d-%d", p, o)
			if needles[[2]int64{p, o}] {
				v = fmt.Sprintf("the needle %d-%d", p, o)
			}
			rs = append(rs, &kgo.Record{Topic: "big", Partition: int32(p), Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	recs, progress, done := readStream(t, base, "big", url.Values{"filter": {"needle"}, "limit": {"100"}})
	got := map[[2]int64]bool{}
	for _, r := range recs {
		want := fmt.Sprintf("the needle %d-%d", r.Partition, r.Offset)
		if r.Value == nil || r.Value.Text != want {
			t.Errorf("record %d-%d: value %+v, want %q", r.Partition, r.Offset, r.Value, want)
		}
		got[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	if len(recs) != len(needles) || len(got) != len(needles) {
		t.Fatalf("matched %v, want %v", got, needles)
	}
	for k := range needles {
		if !got[k] {
			t.Fatalf("missed %v; matched %v", k, got)
		}
	}
	if len(progress) == 0 {
		t.Fatal("no progress line while scanning 12 000 records")
	}
	for _, p := range progress {
		if p.Scanned <= 0 || p.Scanned > 3*perPartition || p.Matched > int64(len(needles)) {
			t.Fatalf("progress line %+v", p)
		}
	}
	if done.Reason != "end" || done.Scanned != 3*perPartition || done.Matched != int64(len(needles)) {
		t.Fatalf("done %+v", done)
	}
	for p := range 3 {
		if done.Next[fmt.Sprint(p)] != perPartition {
			t.Fatalf("done next %v, want %d for each partition", done.Next, perPartition)
		}
	}

	// The client goes away mid-scan.
	bb := &blockingBackend{Backend: b.apiBackend(), after: 2, blocked: make(chan struct{}), release: make(chan struct{})}
	returned := make(chan struct{})
	api := httpapi.NewAPI(bb, httpapi.APIOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(bb.release) }) // runs before srv.Close
	reqCtx, reqCancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(reqCtx, "GET", srv.URL+"/api/v1/topics/big/records?filter=nothing", nil)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-bb.blocked:
	case <-ctx.Done():
		t.Fatal("the scan never reached its blocking read")
	}
	select {
	case <-returned:
		t.Fatal("the handler returned before the client went away")
	default:
	}
	reqCancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler still scans 10 s after its client went away")
	}
	<-errc
}
