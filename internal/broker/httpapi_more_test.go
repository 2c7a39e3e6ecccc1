package broker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/moldau/moldau/internal/httpapi"
)

// lockedBuffer is a bytes.Buffer for a logger written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAPILogLevel: PUT /api/v1/log/level changes the level of the broker's own logger while it
// runs (a topic created at WARN logs no INFO "became leader", one created after going back to
// INFO does); GET reads it; a bad level is a 400 that changes nothing.
func TestAPILogLevel(t *testing.T) {
	var logs lockedBuffer
	lv := new(slog.LevelVar)
	b, err := Start(context.Background(), testConfig(t, t.TempDir(), "offsets.topic.num.partitions", "1"),
		slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: lv})), WithLogLevel(lv))
	if err != nil {
		t.Fatal(err)
	}
	defer stopBroker(t, b)
	base := "http://" + b.HTTPAddr().String()
	var got struct {
		Level string `json:"level"`
	}
	mustCall(t, 200, "GET", base+"/api/v1/log/level", nil, &got)
	if got.Level != "INFO" {
		t.Fatalf("level %q, want INFO", got.Level)
	}
	mustCall(t, 200, "PUT", base+"/api/v1/log/level", map[string]string{"level": "warn"}, &got)
	if got.Level != "WARN" || lv.Level() != slog.LevelWarn {
		t.Fatalf("after PUT warn: answer %q, logger at %v", got.Level, lv.Level())
	}
	e := wantError(t, 400, "BAD_REQUEST", 0, "PUT", base+"/api/v1/log/level", map[string]string{"level": "loud"})
	if !strings.Contains(e.Error.Message, "loud") || lv.Level() != slog.LevelWarn {
		t.Errorf("bad level: %q, logger at %v", e.Error.Message, lv.Level())
	}
	adm := kadm.NewClient(client(t, b))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "quiet"); err != nil {
		t.Fatal(err)
	}
	mustCall(t, 200, "PUT", base+"/api/v1/log/level", map[string]string{"level": "INFO"}, &got)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "loud"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the INFO line of topic loud's leadership", func() bool {
		return strings.Contains(logs.String(), `"topic":"loud"`)
	}, logs.String)
	if strings.Contains(logs.String(), `"topic":"quiet"`) {
		t.Errorf("topic quiet, created at WARN, logged at INFO:\n%s", logs.String())
	}
	mustCall(t, 200, "GET", base+"/api/v1/log/level", nil, &got)
	if got.Level != "INFO" {
		t.Errorf("level %q, want INFO", got.Level)
	}
}

// gatedBackend counts ReadBatches calls; with gateAfter > 0, every call after the first
// gateAfter waits until its request's context ends, as a read of a very large topic that is
// still going would.
type gatedBackend struct {
	httpapi.Backend
	calls, afterGate, gateAfter atomic.Int64
}

func (g *gatedBackend) ReadBatches(ctx context.Context, topic string, p int32, off int64, max int32) ([]byte, error) {
	n := g.calls.Add(1)
	if after := g.gateAfter.Load(); after > 0 && n > after {
		g.afterGate.Add(1)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return g.Backend.ReadBatches(ctx, topic, p, off, max)
}

// TestAPIRecordsLargeScan: a server-side filter over 30 000 records in 3 partitions returns
// exactly the matching records (in every partition, the last one at the very end), emits
// progress lines while it scans (at least one per 10 000 records), and ends with done/end having
// scanned every record; a client that goes away mid-scan ends the scan.
func TestAPIRecordsLargeScan(t *testing.T) {
	b := testBroker(t, t.TempDir(), "offsets.topic.num.partitions", "1")
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := client(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "haystack"); err != nil {
		t.Fatal(err)
	}
	const perPartition = 10000
	needles := map[[2]int64]bool{{0, 17}: true, {1, 5000}: true, {2, perPartition - 1}: true}
	var rs []*kgo.Record
	for p := range int64(3) {
		for i := range int64(perPartition) {
			v := fmt.Sprintf("hay %d-%d", p, i)
			if needles[[2]int64{p, i}] {
				v = fmt.Sprintf("a needle %d-%d", p, i)
			}
			rs = append(rs, &kgo.Record{Topic: "haystack", Partition: int32(p), Value: []byte(v)})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	gb := &gatedBackend{Backend: b.apiBackend()}
	var handlerDone atomic.Int64
	h := httpapi.NewAPI(gb, httpapi.APIOptions{Version: "test"})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		handlerDone.Add(1)
	}))
	defer srv.Close()

	recs, progress, done := readStream(t, srv.URL, "haystack", url.Values{"filter": {"needle"}, "limit": {"100"}})
	found := map[[2]int64]bool{}
	for _, r := range recs {
		found[[2]int64{int64(r.Partition), r.Offset}] = true
	}
	if len(recs) != len(needles) || len(found) != len(needles) {
		t.Errorf("matched %v, want exactly %v", found, needles)
	}
	for n := range needles {
		if !found[n] {
			t.Errorf("needle at partition %d offset %d not found", n[0], n[1])
		}
	}
	if done.Reason != "end" || done.Scanned != 3*perPartition || done.Matched != int64(len(needles)) {
		t.Errorf("done %+v, want end after scanning %d with %d matches", done, 3*perPartition, len(needles))
	}
	if len(progress) < 2 {
		t.Errorf("%d progress lines over %d records, want one per 10 000 at least", len(progress), 3*perPartition)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Scanned <= progress[i-1].Scanned {
			t.Errorf("progress goes back: %+v", progress)
		}
	}

	// A client that leaves once the first progress line arrived: the scan, held inside its
	// second read (the first read, partition 0's 10 000 records, made the progress line), ends
	// with the request.
	before := handlerDone.Load()
	gb.calls.Store(0)
	gb.gateAfter.Store(1)
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	req, _ := http.NewRequestWithContext(rctx, "GET", srv.URL+"/api/v1/topics/haystack/records?filter=nothing", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sawProgress := false
	for !sawProgress && sc.Scan() {
		sawProgress = strings.Contains(sc.Text(), `"progress"`)
	}
	if !sawProgress {
		t.Fatalf("no progress line before the gated read: %v", sc.Err())
	}
	rcancel()
	resp.Body.Close()
	waitFor(t, "the records handler to return after its client left", func() bool { return handlerDone.Load() > before },
		func() string { return fmt.Sprintf("%d reads after the gate", gb.afterGate.Load()) })
	if n := gb.afterGate.Load(); n > 1 {
		t.Errorf("%d reads after the client left, want at most the one in flight", n)
	}
}

// TestAPIReassignAndElect: through the admin API of a node that is not the controller, a move
// to a node that is down stays in progress and is listed with its adding and removing replicas,
// is cancelled (the original replicas come back; a second cancel is NO_REASSIGNMENT_IN_PROGRESS),
// a reorder is done at once, and a preferred election makes the new first replica the leader.
func TestAPIReassignAndElect(t *testing.T) {
	brokers := testClusterPlusBroker(t, "replica.lag.time.max.ms", "2000", "auto.leader.rebalance.enable", "false")
	waitCluster(t, brokers, "four brokers in every image", liveBrokers(4))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createAssigned(ctx, t, brokers[0], "moved", minISR2, 1, 2, 3)
	stopBroker(t, brokers[3])
	live := brokers[:3]
	via := follower(t, live)
	base := apiServer(t, via, nil)

	type results struct {
		Results []struct {
			Topic     string  `json:"topic"`
			Partition int32   `json:"partition"`
			Error     *string `json:"error"`
			Message   string  `json:"message"`
		} `json:"results"`
	}
	wantOK := func(what string, r results) {
		t.Helper()
		if len(r.Results) != 1 || r.Results[0].Topic != "moved" || r.Results[0].Partition != 0 || r.Results[0].Error != nil {
			t.Fatalf("%s: %+v", what, r)
		}
	}
	var r results
	mustCall(t, 200, "POST", base+"/api/v1/reassignments", map[string]any{"partitions": []map[string]any{{"topic": "moved", "partition": 0, "replicas": []int32{1, 2, 4}}}}, &r)
	wantOK("move to the stopped node 4", r)
	var listed struct {
		Reassignments []httpapi.Reassignment `json:"reassignments"`
	}
	mustCall(t, 200, "GET", base+"/api/v1/reassignments", nil, &listed)
	if len(listed.Reassignments) != 1 || fmt.Sprint(listed.Reassignments[0].Replicas) != "[1 2 4 3]" ||
		fmt.Sprint(listed.Reassignments[0].Adding) != "[4]" || fmt.Sprint(listed.Reassignments[0].Removing) != "[3]" {
		t.Fatalf("listed %+v, want replicas [1 2 4 3], adding [4], removing [3]", listed)
	}

	mustCall(t, 200, "DELETE", base+"/api/v1/reassignments", map[string]any{"partitions": []map[string]any{{"topic": "moved", "partition": 0}}}, &r)
	wantOK("cancel", r)
	waitCluster(t, live, "the original replicas back on every node", func(b *Broker) bool {
		p, ok := partitionOn(b, "moved")
		return ok && fmt.Sprint(p.Replicas) == "[1 2 3]" && !p.Reassigning()
	})
	mustCall(t, 200, "GET", base+"/api/v1/reassignments", nil, &listed)
	if len(listed.Reassignments) != 0 {
		t.Fatalf("listed after the cancel: %+v", listed)
	}
	mustCall(t, 200, "DELETE", base+"/api/v1/reassignments", map[string]any{"partitions": []map[string]any{{"topic": "moved", "partition": 0}}}, &r)
	if len(r.Results) != 1 || r.Results[0].Error == nil || *r.Results[0].Error != "NO_REASSIGNMENT_IN_PROGRESS" {
		t.Fatalf("second cancel: %+v", r)
	}

	// A reorder: node 3 first. The leader stays 1 until a preferred election.
	waitCluster(t, live, "node 3 in the ISR", func(b *Broker) bool {
		p, ok := partitionOn(b, "moved")
		return ok && len(p.ISR) == 3
	})
	mustCall(t, 200, "POST", base+"/api/v1/reassignments", map[string]any{"partitions": []map[string]any{{"topic": "moved", "partition": 0, "replicas": []int32{3, 2, 1}}}}, &r)
	wantOK("reorder", r)
	waitCluster(t, live, "replicas [3 2 1]", func(b *Broker) bool {
		p, ok := partitionOn(b, "moved")
		return ok && fmt.Sprint(p.Replicas) == "[3 2 1]"
	})
	if p, _ := partitionOn(via, "moved"); p.Leader == 3 {
		t.Fatalf("the reorder moved the leader already: %+v", p)
	}
	mustCall(t, 200, "POST", base+"/api/v1/leaders/elect", map[string]any{"type": "preferred", "partitions": []map[string]any{{"topic": "moved", "partition": 0}}}, &r)
	wantOK("preferred election", r)
	waitCluster(t, live, "node 3 leading", func(b *Broker) bool {
		p, ok := partitionOn(b, "moved")
		return ok && p.Leader == 3
	})
	meta, err := kadm.NewClient(clusterClient(t, live)).Metadata(ctx, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if p := meta.Topics["moved"].Partitions[0]; p.Leader != 3 || fmt.Sprint(p.Replicas) != "[3 2 1]" {
		t.Errorf("a client sees leader %d replicas %v, want 3 and [3 2 1]", p.Leader, p.Replicas)
	}
}
