package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

func get(t *testing.T, s *Server, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func text(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
}

// TestRoutes: each path reaches its handler; the console gets everything else; /healthz answers
// JSON whatever Ready says.
func TestRoutes(t *testing.T) {
	s := listen(t, Config{Metrics: text("metrics"), API: text("api"), Console: text("console"),
		Ready: func() (bool, []string) { return false, []string{"x"} }})
	for path, want := range map[string]string{
		"/metrics": "metrics", "/api/v1/": "api", "/api/v1/topics": "api", "/": "console", "/app.js": "console",
	} {
		if code, _, body := get(t, s, path); code != 200 || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	code, h, body := get(t, s, "/healthz")
	var hz struct{ Status string }
	if err := json.Unmarshal([]byte(body), &hz); code != 200 || err != nil || hz.Status != "ok" || h.Get("Content-Type") != "application/json" {
		t.Errorf("/healthz: %d %s %q (%v)", code, h.Get("Content-Type"), body, err)
	}
}

// TestReadyz: 200 {"ready":true} when ready, 503 with the reasons when not, as Ready changes.
func TestReadyz(t *testing.T) {
	var reasons atomic.Pointer[[]string]
	s := listen(t, Config{Ready: func() (bool, []string) {
		if r := reasons.Load(); r != nil {
			return false, *r
		}
		return true, nil
	}})
	check := func(wantCode int, wantReady bool, wantReasons ...string) {
		t.Helper()
		code, h, body := get(t, s, "/readyz")
		var r struct {
			Ready   *bool    `json:"ready"`
			Reasons []string `json:"reasons"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.Ready == nil {
			t.Fatalf("/readyz: %q is not {\"ready\":...}: %v", body, err)
		}
		if code != wantCode || *r.Ready != wantReady || strings.Join(r.Reasons, "|") != strings.Join(wantReasons, "|") ||
			h.Get("Content-Type") != "application/json" {
			t.Errorf("/readyz: %d %s, want %d ready=%v reasons %q", code, body, wantCode, wantReady, wantReasons)
		}
	}
	check(200, true)
	reasons.Store(&[]string{"fenced by the controller", "partition t-0 under min ISR"})
	check(503, false, "fenced by the controller", "partition t-0 under min ISR")
	reasons.Store(nil)
	check(200, true)

	// No Ready func: always ready.
	s = listen(t, Config{})
	if code, _, body := get(t, s, "/readyz"); code != 200 || strings.TrimSpace(body) != `{"ready":true}` {
		t.Errorf("/readyz without Ready: %d %q", code, body)
	}
}

// TestPprof: /debug/pprof/ is a 404 (not the console) unless Pprof is set.
func TestPprof(t *testing.T) {
	off := listen(t, Config{Console: text("console")})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if code, _, body := get(t, off, path); code != http.StatusNotFound || !strings.Contains(body, "http.pprof.enable=true") {
			t.Errorf("GET %s without pprof: %d %q, want 404 naming http.pprof.enable", path, code, body)
		}
	}
	on := listen(t, Config{Pprof: true, Console: text("console")})
	if code, _, body := get(t, on, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d %.200q", code, body)
	}
	if code, _, body := get(t, on, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	if code, _, body := get(t, on, "/debug/pprof/cmdline"); code != 200 || body == "" {
		t.Errorf("cmdline: %d %q", code, body)
	}
}

// TestListenInUse: a taken port fails Listen at once with what to do.
func TestListenInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	_, err = Listen(Config{Addr: addr})
	want := "http.listener: address " + addr + " is already in use; stop what listens there, choose another port (http.listener=host:port) or turn it off (http.listener=)"
	if err == nil || err.Error() != want {
		t.Errorf("Listen on a taken port: %v\nwant %s", err, want)
	}
}

// TestShutdownAndClose: Shutdown waits for the request being served; Close does not.
func TestShutdownAndClose(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s, err := Listen(Config{Addr: "127.0.0.1:0", Console: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a request was being served", err)
	case <-time.After(100 * time.Millisecond): // a bound on what must not happen
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if body := <-got; body != "done" {
		t.Errorf("the request in flight got %q", body)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}

	s2, err := Listen(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", s2.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Close")
	}
}
