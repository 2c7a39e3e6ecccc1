package broker

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// goroutines returns the stacks of every goroutine but the caller's, by goroutine id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // the first is the caller's
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(string(g), "goroutine "), " ")
		out[id] = string(g)
	}
	return out
}

// ownedByBroker reports whether a goroutine's stack runs code of the broker: Moldau's own
// packages or hashicorp/raft (the metadata quorum). Clients' goroutines (franz-go) are not.
func ownedByBroker(stack string) bool {
	return strings.Contains(stack, "github.com/moldau/moldau/internal/") ||
		strings.Contains(stack, "github.com/hashicorp/raft")
}

// TestShutdownLeavesNoGoroutines: once Shutdown returns, no goroutine of the broker is left
// (listeners and their connections, the metrics listener, the group coordinator's load, raft,
// the background loops): a goroutine left running could touch the closed logs, or race with
// whatever the process (a test) does next. A goroutine may still be returning from its last
// frames when Shutdown returns, so the check waits for them, with a deadline.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := goroutines()
	b := testBroker(t, t.TempDir(),
		"listeners", "A://127.0.0.1:0,B://127.0.0.1:0",
		"listener.security.protocol.map", "A:PLAINTEXT,B:PLAINTEXT",
		"http.listener", "127.0.0.1:0",
		"log.cleaner.enable", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Connections open on both listeners while the broker stops, one of them a group member.
	for _, l := range b.Listeners() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(l.Addr.String()), kgo.DefaultProduceTopic("leak-"+l.Name),
			kgo.AllowAutoTopicCreation(), kgo.ConsumerGroup("leak-"+l.Name), kgo.ConsumeTopics("leak-"+l.Name),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if fs := cl.PollFetches(ctx); fs.NumRecords() != 1 {
			t.Fatalf("listener %s: consumed %d records, want 1 (%v)", l.Name, fs.NumRecords(), fs.Errors())
		}
	}
	stopBroker(t, b)

	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		left = left[:0]
		for id, stack := range goroutines() {
			if _, ok := before[id]; !ok && ownedByBroker(stack) {
				left = append(left, stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines of the broker still running 5 s after Shutdown returned:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
}
