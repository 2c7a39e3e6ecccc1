package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// failFast bounds how long a `moldau server` that cannot start may take to say so and exit.
const failFast = 5 * time.Second

// serverMustFail runs `moldau server args...` and expects it to exit with a non-zero status
// within failFast. It returns the combined output.
func serverMustFail(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*failFast)
	defer cancel()
	cmd := exec.CommandContext(ctx, moldauBin, append([]string{"server"}, args...)...)
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("moldau server %s did not exit within %s (killed); output:\n%s", strings.Join(args, " "), 4*failFast, out.String())
	case !errors.As(err, &exit) || exit.ExitCode() == 0:
		t.Fatalf("moldau server %s: %v, want a non-zero exit; output:\n%s", strings.Join(args, " "), err, out.String())
	case took > failFast:
		t.Errorf("moldau server %s took %s to fail, want under %s", strings.Join(args, " "), took.Round(time.Millisecond), failFast)
	}
	if strings.Contains(out.String(), "moldau server: moldau server:") {
		t.Errorf("doubled prefix in:\n%s", out.String())
	}
	return out.String()
}

// listDir lists the names in dir ("missing" when it does not exist).
func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// TestServerDataDirInUse: a second `moldau server` on a data dir a running one holds exits at
// once, naming the dir and the pid that holds it (it used to hang before binding, deaf to Ctrl-C),
// whether it asks for the same port (the same command run twice) or another; the first one keeps
// serving.
func TestServerDataDirInUse(t *testing.T) {
	b := startBroker(t)
	pid := b.cmd.Process.Pid
	before := listDir(t, b.DataDir)
	want := fmt.Sprintf("moldau server: log dir %s is in use by another process (pid %d); stop it or choose another --data-dir", b.DataDir, pid)
	for _, listener := range []string{"PLAINTEXT://" + b.Addr, fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", freePort(t))} {
		out := serverMustFail(t, "--listeners", listener, "--data-dir", b.DataDir)
		if !strings.Contains(out, want) {
			t.Errorf("second server on %s: output\n%s\nwant it to contain %q", listener, out, want)
		}
	}
	if after := listDir(t, b.DataDir); after != before {
		t.Errorf("the failed starts changed the data dir in use:\nbefore %s\nafter  %s", before, after)
	}
	createTopic(t, b.Addr, "still-serving", 1, nil)
	b.stop()
	b.start() // the lock was released at shutdown
}

// TestServerPortInUse: a port already in use makes `moldau server` exit at once naming the
// listener and the address, and leaves a fresh data dir as it was: missing stays missing, empty
// stays empty.
func TestServerPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	missing := filepath.Join(t.TempDir(), "data")
	empty := t.TempDir()
	for _, dir := range []string{missing, empty} {
		before := listDir(t, dir)
		out := serverMustFail(t, "--listeners", "PLAINTEXT://"+addr, "--data-dir", dir)
		want := fmt.Sprintf("moldau server: listener PLAINTEXT://%s: address %s is already in use", addr, addr)
		if !strings.Contains(out, want) {
			t.Errorf("output\n%s\nwant it to contain %q", out, want)
		}
		if after := listDir(t, dir); after != before {
			t.Errorf("the failed start left %s as %q, it was %q", dir, after, before)
		}
	}
	// The second of two listeners taken: the same, nothing left behind.
	out := serverMustFail(t, "--listeners", fmt.Sprintf("INTERNAL://127.0.0.1:%d,EXTERNAL://%s", freePort(t), addr), "--data-dir", missing,
		"--override", "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT")
	if want := fmt.Sprintf("listener EXTERNAL://%s: address %s is already in use", addr, addr); !strings.Contains(out, want) {
		t.Errorf("output\n%s\nwant it to contain %q", out, want)
	}
	if got := listDir(t, missing); got != "missing" {
		t.Errorf("the failed start left %s as %q", missing, got)
	}
	// The HTTP listener's port taken: the same, with how to move it or turn it off.
	out = serverMustFail(t, "--listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", freePort(t)), "--data-dir", missing,
		"--http-listener", addr)
	if want := fmt.Sprintf("moldau server: http.listener: address %s is already in use; stop what listens there, choose another port (http.listener=host:port) or turn it off (http.listener=)", addr); !strings.Contains(out, want) {
		t.Errorf("output\n%s\nwant it to contain %q", out, want)
	}
	if got := listDir(t, missing); got != "missing" {
		t.Errorf("the failed start left %s as %q", missing, got)
	}
}

// TestServerSignalDuringStartup: SIGINT or SIGTERM stops a `moldau server` whose start-up is
// stuck within a few seconds, instead of being ignored forever. Stuck here: the data dir still
// has raft-boltdb's __raft/raft.db, which start-up copies into raft-wal once, and another
// process holds that file's bolt lock but not the .lock, as a moldau from before both still
// running on the dir would; the migration waits for the lock (at most 5 s, then fails).
func TestServerSignalDuringStartup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "__raft"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := os.OpenFile(filepath.Join(dir, "__raft", "raft.db"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := unix.Flock(int(db.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock raft.db: %v", err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(moldauBin, "server", "--listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", freePort(t)), "--data-dir", dir)
			cmd.Env = childEnv()
			var out logBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var waitErr error // valid once exited is closed
			go func() {
				waitErr = cmd.Wait()
				close(exited)
			}()
			defer func() {
				select {
				case <-exited:
				default:
					_ = cmd.Process.Kill()
					<-exited
				}
			}()
			// Wait until it holds the .lock (it is then past the lock, binding or opening raft).
			pid := strconv.Itoa(cmd.Process.Pid)
			deadline := time.Now().Add(brokerTimeout)
			for {
				if b, _ := os.ReadFile(filepath.Join(dir, ".lock")); strings.TrimSpace(string(b)) == pid {
					break
				}
				select {
				case <-exited:
					t.Fatalf("the server exited before taking the .lock: %v\n%s", waitErr, out.Since(0))
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server did not write its pid to %s/.lock within %s\n%s", dir, brokerTimeout, out.Since(0))
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
				var exit *exec.ExitError
				if !errors.As(waitErr, &exit) || exit.ExitCode() == 0 {
					t.Errorf("after %s during start-up: %v, want a non-zero exit", sig, waitErr)
				}
			case <-time.After(failFast):
				t.Fatalf("the server did not exit within %s of %s during start-up\n%s", failFast, sig, out.Since(0))
			}
			if s := out.Since(0); !strings.Contains(s, "interrupted during start-up") {
				t.Errorf("output\n%s\nwant it to say it was interrupted during start-up", s)
			}
		})
	}
}

// TestServerListeners: every listener in listeners is served; a listener bound to all interfaces
// without an advertised.listeners entry is advertised with the host's name (Kafka's rule), and
// the start-up line says what each listener advertises; Metadata on each listener answers with
// that listener's endpoint. (Only 127.0.0.1 is dialed: the host name is compared, not used.)
func TestServerListeners(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := freePort(t), freePort(t)
	internal := fmt.Sprintf("127.0.0.1:%d", p1)
	dir := t.TempDir()
	b := startBrokerArgs(t, internal, dir, nil,
		"--listeners", fmt.Sprintf("INTERNAL://%s,EXTERNAL://:%d", internal, p2),
		"--override", "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT",
		"--data-dir", dir)
	line := b.log.Since(b.runLog)
	for _, want := range []string{
		fmt.Sprintf("listening on %s (advertised INTERNAL://%s)", internal, internal),
		fmt.Sprintf("(advertised EXTERNAL://%s)", net.JoinHostPort(host, strconv.Itoa(p2))),
	} {
		if !strings.Contains(line, want) {
			t.Errorf("start-up output\n%s\nwant it to contain %q", line, want)
		}
	}
	for _, tt := range []struct {
		dial, host string
		port       int
	}{{internal, "127.0.0.1", p1}, {fmt.Sprintf("127.0.0.1:%d", p2), host, p2}} {
		w := dialWire(t, tt.dial)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 9
		resp := w.request(req).(*kmsg.MetadataResponse)
		if len(resp.Brokers) != 1 || resp.Brokers[0].Host != tt.host || resp.Brokers[0].Port != int32(tt.port) {
			t.Errorf("Metadata on %s: brokers %+v, want %s:%d", tt.dial, resp.Brokers, tt.host, tt.port)
		}
	}
}

// TestServerUnsupportedListenerProtocol: a listener mapped to SSL or SASL_* fails at start,
// saying that it is not supported yet, before anything is written.
func TestServerUnsupportedListenerProtocol(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out := serverMustFail(t, "--listeners", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,SECURE://127.0.0.1:%d", freePort(t), freePort(t)),
		"--override", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECURE:SASL_SSL", "--data-dir", dir)
	if want := "is not supported yet: listener SECURE uses security protocol SASL_SSL"; !strings.Contains(out, want) {
		t.Errorf("output\n%s\nwant it to contain %q", out, want)
	}
	if got := listDir(t, dir); got != "missing" {
		t.Errorf("the failed start left %s as %q", dir, got)
	}
}
