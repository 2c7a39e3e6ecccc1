package server

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// TestShutdownRightAfterServe: Shutdown called while the goroutine running Serve may not have
// started yet. Serve's accept loop used to join the wait group Shutdown waits on from inside
// Serve, with nothing ordering that Add before Shutdown's Wait (a data race the race detector
// reports, and a Shutdown that could return before the accept loop was done). Serve must return
// nil, and every Shutdown return once the loop is gone.
func TestShutdownRightAfterServe(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := 0; i < 200; i++ {
		s := New(Config{Addr: "127.0.0.1:0", Logger: logger}, echoHandler{})
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve() }()
		if i%2 == 1 {
			runtime.Gosched() // on one P too: Serve's loop may be waiting in Accept
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("iteration %d: Shutdown: %v", i, err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("iteration %d: Serve after Shutdown: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("iteration %d: Serve did not return within 10 s of Shutdown", i)
		}
	}
}
