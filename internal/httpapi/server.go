// Package httpapi is the broker's one HTTP listener (http.listener, default 127.0.0.1:8080):
//
//	/               the web console (internal/console), embedded in the binary
//	/api/v1/        the admin JSON API (api.go; described by openapi.yaml, served at /api/v1/openapi.yaml)
//	/metrics        Prometheus text format
//	/healthz        200 {"status":"ok"} while the process is up
//	/readyz         200 {"ready":true} when caught up with metadata and serving its partitions,
//	                503 {"ready":false,"reasons":[...]} otherwise (Config.Ready says why)
//	/debug/pprof/   Go's profiles, only with http.pprof.enable=true (404 otherwise)
//
// The listener has no TLS or authentication yet: it binds loopback by default.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"syscall"
	"time"
)

// Config is what the listener serves.
type Config struct {
	Addr    string       // host:port to bind
	Pprof   bool         // serve /debug/pprof/ (http.pprof.enable)
	Metrics http.Handler // /metrics
	API     http.Handler // /api/v1/ (NewAPI)
	Console http.Handler // / (console.Handler)
	// Ready reports whether the node is ready to serve (/readyz), and if not, why.
	Ready  func() (ready bool, reasons []string)
	Logger *slog.Logger
}

// Server is the running listener.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	served chan struct{} // closed when the serving goroutine has returned
}

// Listen binds cfg.Addr and serves in the background until Shutdown.
func Listen(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("http.listener: address %s is already in use; stop what listens there, choose another port (http.listener=host:port) or turn it off (http.listener=)", cfg.Addr)
		}
		return nil, fmt.Errorf("http.listener %s: %w", cfg.Addr, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{srv: &http.Server{Handler: routes(cfg), ReadHeaderTimeout: 10 * time.Second}, ln: ln, served: make(chan struct{})}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http listener stopped", "err", err)
		}
	}()
	return s, nil
}

func routes(cfg Config) http.Handler {
	mux := http.NewServeMux()
	if cfg.Metrics != nil {
		mux.Handle("/metrics", cfg.Metrics)
	}
	if cfg.API != nil {
		mux.Handle("/api/v1/", cfg.API)
	}
	if cfg.Console != nil {
		mux.Handle("/", cfg.Console)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ready, reasons := true, []string(nil)
		if cfg.Ready != nil {
			ready, reasons = cfg.Ready()
		}
		if ready {
			writeJSON(w, http.StatusOK, readiness{Ready: true})
			return
		}
		if reasons == nil {
			reasons = []string{}
		}
		writeJSON(w, http.StatusServiceUnavailable, readiness{Ready: false, Reasons: reasons})
	})
	if cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // also the named profiles: heap, goroutine, ...
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	} else {
		// Not the console's: a 404 that says how to turn the profiles on.
		mux.HandleFunc("/debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "404 page not found: /debug/pprof/ is off; start the broker with http.pprof.enable=true", http.StatusNotFound)
		})
	}
	return mux
}

// readiness is the body of /readyz.
type readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the listener, waits for the requests being served and for the serving
// goroutine, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return err
	}
	select {
	case <-s.served:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the listener at once, closing the connections being served (a failed start).
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.served
	return err
}
