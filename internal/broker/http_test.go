package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// readyz is the answer of a node's /readyz.
type readyz struct {
	code    int
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons"`
}

func getReadyz(t *testing.T, addr net.Addr) readyz {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readyz
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	r.code = resp.StatusCode
	return r
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls /readyz until cond holds on its answer (15 s at most).
func waitReadyz(t *testing.T, addr net.Addr, what string, cond func(readyz) bool) readyz {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := getReadyz(t, addr)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for /readyz: %s; last answer %d %+v", what, r.code, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasReason(r readyz, substr string) bool {
	for _, s := range r.Reasons {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

// TestHTTPListenerServes: the one HTTP listener of a broker serves /healthz, /readyz, /metrics
// (counting the broker's requests: metrics are always on), the console at / and the API under
// /api/v1/; /readyz turns 503 while a partition led here is under its min.insync.replicas and
// back to 200 when it is not.
func TestHTTPListenerServes(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	addr := b.HTTPAddr()
	if addr == nil || b.MetricsAddr() == nil || addr.String() != b.MetricsAddr().String() {
		t.Fatalf("HTTPAddr %v, MetricsAddr %v", addr, b.MetricsAddr())
	}
	base := "http://" + addr.String()
	if code, body := httpGet(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if r := getReadyz(t, addr); r.code != 200 || !r.Ready || len(r.Reasons) != 0 {
		t.Errorf("/readyz of a fresh broker: %d %+v", r.code, r)
	}
	if code, body := httpGet(t, base+"/"); code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("console /: %d %.200q", code, body)
	}
	if code, body := httpGet(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without http.pprof.enable: %d %.100q", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, b))
	two := "2"
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"min.insync.replicas": &two}, "needs-two"); err != nil {
		t.Fatal(err)
	}
	// /metrics counts requests without metrics.listener being set: the registry is always on.
	if code, body := httpGet(t, base+"/metrics"); code != 200 || !strings.Contains(body, `moldau_requests_total{api="CreateTopics"} 1`) {
		t.Errorf("/metrics: %d, lacks the CreateTopics request:\n%.2000s", code, body)
	}
	// One replica, min.insync.replicas=2: acks=all produces fail, the node is not ready.
	r := waitReadyz(t, addr, "not ready, needs-two under min ISR", func(r readyz) bool { return r.code == 503 })
	if r.Ready || len(r.Reasons) != 2 || !hasReason(r, "partition needs-two-0 under min ISR") || !hasReason(r, "partition needs-two-1 under min ISR") ||
		!hasReason(r, "min.insync.replicas is 2") {
		t.Errorf("/readyz: %+v, want the two partitions of needs-two under min ISR", r)
	}
	one := "1"
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: &one}}, "needs-two"); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, addr, "ready again", func(r readyz) bool { return r.code == 200 && r.Ready && len(r.Reasons) == 0 })
}

// TestHTTPReadyzFollowerDown: in a three-node cluster, when the follower of a partition with
// min.insync.replicas=2 stops, the leader's /readyz turns 503 naming the partition while the
// third node stays ready; when the follower is back in the ISR the leader is ready again.
func TestHTTPReadyzFollowerDown(t *testing.T) {
	dirs := map[int]string{1: t.TempDir(), 2: t.TempDir(), 3: t.TempDir()}
	brokers := testClusterOn(t, 3, func(id int) string { return dirs[id] }, "replica.lag.time.max.ms", "1000")
	waitCluster(t, brokers, "three live brokers", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createAssigned(ctx, t, brokers[0], "pair", minISR2, 1, 2)
	waitCluster(t, brokers, "pair led by 1 with ISR {1,2}", func(b *Broker) bool {
		p, ok := partitionOn(b, "pair")
		return ok && p.Leader == 1 && len(p.ISR) == 2
	})
	for _, b := range brokers {
		waitReadyz(t, b.HTTPAddr(), fmt.Sprintf("node %d ready", b.cfg.NodeID), func(r readyz) bool { return r.code == 200 && r.Ready })
	}

	stopBroker(t, brokers[1])
	r := waitReadyz(t, brokers[0].HTTPAddr(), "node 1 not ready: pair-0 under min ISR", func(r readyz) bool { return r.code == 503 })
	if !hasReason(r, "partition pair-0 under min ISR: ISR [1] has 1 replicas, min.insync.replicas is 2") {
		t.Errorf("node 1 /readyz: %+v", r)
	}
	if r := getReadyz(t, brokers[2].HTTPAddr()); r.code != 200 || !r.Ready {
		t.Errorf("node 3, which hosts no replica of pair, is not ready: %+v", r)
	}

	// Node 2 again on its data: it catches up, rejoins the ISR, and node 1 is ready again.
	cfg := brokers[1].cfg
	b2, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	brokers[1] = b2 // testClusterOn's cleanup stops it
	waitReadyz(t, brokers[0].HTTPAddr(), "node 1 ready again", func(r readyz) bool { return r.code == 200 && r.Ready })
	waitReadyz(t, b2.HTTPAddr(), "node 2 ready after its restart", func(r readyz) bool { return r.code == 200 && r.Ready })
}

// TestHTTPWhileStarting: http.listener serves from the start of Start: while the node waits for
// its metadata quorum (the other voter is not running), /healthz answers 200, /readyz 503 saying
// what it waits for, and /api/v1/ 503; a start given up releases the port.
func TestHTTPWhileStarting(t *testing.T) {
	ctrl := freeAddrs(t, 2)
	httpAddr := freeAddrs(t, 1)[0]
	cfg := testConfig(t, t.TempDir(),
		"node.id", "1",
		"listeners", "PLAINTEXT://127.0.0.1:0,CONTROLLER://"+ctrl[0],
		"controller.listener.names", "CONTROLLER",
		"controller.quorum.voters", fmt.Sprintf("1@%s,2@%s", ctrl[0], ctrl[1]),
		"http.listener", httpAddr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		b, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil {
			stopBroker(t, b)
		}
		done <- err
	}()
	base := "http://" + httpAddr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer while starting: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	addr, _ := net.ResolveTCPAddr("tcp", httpAddr)
	r := waitReadyz(t, addr, "waiting for the quorum", func(r readyz) bool { return hasReason(r, "metadata quorum") })
	if r.code != 503 || r.Ready || len(r.Reasons) != 1 || !strings.HasPrefix(r.Reasons[0], "starting: ") {
		t.Errorf("/readyz while starting: %d %+v", r.code, r)
	}
	if code, body := httpGet(t, base+"/api/v1/cluster"); code != 503 || !strings.Contains(body, "starting") {
		t.Errorf("/api/v1/ while starting: %d %q", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded without a quorum")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		c.Close()
		t.Error("the HTTP listener still accepts after the failed start")
	}
}

// TestHTTPOff: http.listener empty binds nothing; the broker still counts its metrics.
func TestHTTPOff(t *testing.T) {
	b := testBroker(t, t.TempDir(), "http.listener", "")
	defer stopBroker(t, b)
	if b.HTTPAddr() != nil {
		t.Fatalf("HTTPAddr %v with http.listener empty", b.HTTPAddr())
	}
	if ok, reasons := b.Ready(); !ok {
		t.Errorf("Ready: %v", reasons)
	}
}

// TestWithLogLevel: the level given to Start is the one the admin API reads and sets; without
// one, the API's level starts at log.level.
func TestWithLogLevel(t *testing.T) {
	lv := new(slog.LevelVar)
	b, err := Start(context.Background(), testConfig(t, t.TempDir()), slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: lv})), WithLogLevel(lv))
	if err != nil {
		t.Fatal(err)
	}
	defer stopBroker(t, b)
	if b.httpLevel != lv {
		t.Error("the API does not get the logger's LevelVar")
	}
	b2 := testBroker(t, t.TempDir(), "log.level", "warn")
	defer stopBroker(t, b2)
	if b2.httpLevel == nil || b2.httpLevel.Level() != slog.LevelWarn {
		t.Errorf("level without WithLogLevel: %v, want WARN from log.level", b2.httpLevel)
	}
}

// TestWithVersion: the release given to Start is the version GET /api/v1/cluster reports.
func TestWithVersion(t *testing.T) {
	b, err := Start(context.Background(), testConfig(t, t.TempDir()), slog.New(slog.DiscardHandler), WithVersion("1.2.3-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer stopBroker(t, b)
	resp, err := http.Get("http://" + b.HTTPAddr().String() + "/api/v1/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/cluster: %d, %v", resp.StatusCode, err)
	}
	if c.Version != "1.2.3-test" {
		t.Errorf("version %q, want 1.2.3-test", c.Version)
	}
}
