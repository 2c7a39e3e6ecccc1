package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair: the master the test drives, the slave the command uses.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func TestInteractive(t *testing.T) {
	_, slave := openPty(t)
	file, err := os.CreateTemp(t.TempDir(), "input")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	pipeR, pipeW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeR.Close()
	defer pipeW.Close()
	for _, tc := range []struct {
		name   string
		stdin  io.Reader
		stdout io.Writer
		want   bool
	}{
		{"terminal in and out", slave, slave, true},
		{"stdin from a pipe", pipeR, slave, false},
		{"stdout to a pipe", slave, pipeW, false},
		{"stdin from a file", file, slave, false},
		{"in-memory streams", strings.NewReader(""), &bytes.Buffer{}, false},
	} {
		if got := interactive(tc.stdin, tc.stdout); got != tc.want {
			t.Errorf("%s: interactive = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestConsoleProducerPrompt: on a terminal, kafka-console-producer prints Kafka's ">" before
// every line it reads (and before the read that meets end of input); with piped input it prints
// nothing (TestConsoleProduceConsumeRoundTrip checks stdout stays empty there).
func TestConsoleProducerPrompt(t *testing.T) {
	addr := startCluster(t, "tty")
	master, slave := openPty(t)
	// Raw mode on the slave: no echo, so the master reads only what the producer writes.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errb syncBuffer
	e := &env{ctx: ctx, stdin: slave, stdout: slave, stderr: &errb,
		getenv: func(string) string { return "" }, adminTimeout: 15 * time.Second, now: time.Now}
	done := make(chan int, 1)
	go func() {
		done <- e.run("kafka-console-producer", []string{"--bootstrap-server", addr, "--topic", "tty"})
	}()

	out := make(chan byte, 64)
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := master.Read(b); err != nil {
				close(out)
				return
			}
			out <- b[0]
		}
	}()
	expectPrompt := func(step string) {
		t.Helper()
		select {
		case c, ok := <-out:
			if !ok || c != '>' {
				t.Fatalf("%s: read %q from the terminal, want '>'", step, c)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no prompt; stderr %q", step, errb.String())
		}
	}
	expectPrompt("first line")
	if _, err := master.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	expectPrompt("second line")
	if _, err := master.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	expectPrompt("end of input")
	if _, err := master.Write([]byte{4}); err != nil { // Ctrl-D: end of input
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-ctx.Done():
		t.Fatal("the producer did not end at Ctrl-D")
	}
	if _, n := lastCodec(t, addr, "tty"); n != 2 {
		t.Errorf("%d records produced, want 2", n)
	}
}
