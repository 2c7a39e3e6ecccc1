package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/config"
)

// startErr runs Start and returns its error, failing the test if Start succeeds or does not
// return within d (a start on a data dir in use used to wait forever).
func startErr(t *testing.T, d time.Duration, layer map[string]string) error {
	t.Helper()
	if _, ok := layer["http.listener"]; !ok && layer["metrics.listener"] == "" {
		layer["http.listener"] = "127.0.0.1:0" // never the default 8080
	}
	cfg, err := config.Build(layer)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		b   *Broker
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			stopBroker(t, r.b)
			t.Fatal("Start succeeded, want an error")
		}
		return r.err
	case <-time.After(d):
		t.Fatalf("Start did not return within %s", d)
		return nil
	}
}

// dirEntries lists the names under dir, recursively ("" when dir is empty), or "missing"; a
// long list is cut after its first names, with the count.
func dirEntries(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return "missing"
	}
	var names []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if len(names) > 8 {
		return fmt.Sprintf("%s ... (%d entries)", strings.Join(names[:8], " "), len(names))
	}
	return strings.Join(names, " ")
}

// TestLogDirInUse: a second broker on a log dir a running broker holds fails at once, naming the
// dir and the holder's pid, without touching the dir; once the first stops, the dir starts again.
func TestLogDirInUse(t *testing.T) {
	dir := t.TempDir()
	b := testBroker(t, dir)
	lock, err := os.ReadFile(filepath.Join(dir, ".lock"))
	if err != nil || strings.TrimSpace(string(lock)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf(".lock holds %q (%v), want this process's pid %d", lock, err, os.Getpid())
	}
	before := dirEntries(t, dir)

	// Also a second log dir that is free: its lock is taken, then given back.
	other := filepath.Join(t.TempDir(), "second")
	err = startErr(t, 5*time.Second, map[string]string{
		"listeners": "PLAINTEXT://127.0.0.1:0",
		"log.dirs":  other + "," + dir,
	})
	want := fmt.Sprintf("log dir %s is in use by another process (pid %d); stop it or choose another --data-dir", dir, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("second broker: %v\nwant it to contain %q", err, want)
	}
	if after := dirEntries(t, dir); after != before {
		t.Errorf("the failed start changed the dir in use:\nbefore %s\nafter  %s", before, after)
	}
	if got := dirEntries(t, other); got != "missing" {
		t.Errorf("the failed start left the free log dir it created behind: %s", got)
	}

	stopBroker(t, b)
	b = testBroker(t, dir) // the lock was released at shutdown
	stopBroker(t, b)
}

// TestFailedStartLeavesFreshDirAsItWas: a start that fails, on a port in use or later (the
// metrics port in use, after raft and the partitions were created), leaves a data dir that was
// missing or empty as it was; a data dir with data keeps its data and can start again.
func TestFailedStartLeavesFreshDirAsItWas(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenAddr := taken.Addr().String()

	for _, tt := range []struct {
		name  string
		layer map[string]string
		want  string
	}{
		{"client port", map[string]string{"listeners": "PLAINTEXT://" + takenAddr},
			fmt.Sprintf("listener PLAINTEXT://%s: address %s is already in use", takenAddr, takenAddr)},
		{"second client port", map[string]string{"listeners": "A://127.0.0.1:0,B://" + takenAddr, "listener.security.protocol.map": "A:PLAINTEXT,B:PLAINTEXT"},
			fmt.Sprintf("listener B://%s: address %s is already in use", takenAddr, takenAddr)},
		{"http port", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "http.listener": takenAddr},
			fmt.Sprintf("http.listener: address %s is already in use; stop what listens there, choose another port (http.listener=host:port) or turn it off (http.listener=)", takenAddr)},
		{"metrics port", map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "metrics.listener": takenAddr},
			fmt.Sprintf("http.listener: address %s is already in use", takenAddr)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "parent", "data")
			empty := t.TempDir()
			for _, dir := range []string{missing, empty} {
				layer := map[string]string{"log.dirs": dir}
				for k, v := range tt.layer {
					layer[k] = v
				}
				before := dirEntries(t, dir)
				err := startErr(t, 10*time.Second, layer)
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("start on %s: %v\nwant it to contain %q", dir, err, tt.want)
				}
				if after := dirEntries(t, dir); after != before {
					t.Errorf("the failed start left %s as %q, it was %q", dir, after, before)
				}
			}
			if got := dirEntries(t, filepath.Dir(missing)); got != "missing" {
				t.Errorf("the failed start left the parent dir it created: %q", got)
			}
		})
	}

	// A dir with data: a failed start keeps everything.
	dir := t.TempDir()
	stopBroker(t, testBroker(t, dir))
	before := dirEntries(t, dir)
	err = startErr(t, 10*time.Second, map[string]string{"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": dir, "http.listener": takenAddr})
	if !strings.Contains(err.Error(), "http.listener: address "+takenAddr+" is already in use") {
		t.Errorf("start with the http port in use: %v", err)
	}
	if after := dirEntries(t, dir); after != before {
		t.Errorf("a failed start on a dir with data changed it:\nbefore %s\nafter  %s", before, after)
	}
	stopBroker(t, testBroker(t, dir))
}
