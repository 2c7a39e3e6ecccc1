package log

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestKill9 runs a child process that appends as fast as it can and reports
// each acknowledged offset on stdout, kills it with SIGKILL and checks that
// every acknowledged batch survived.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("MOLDAU_KILL9_DIR"); dir != "" {
		cfg := testConfig()
		cfg.SegmentBytes = 64 << 10
		cfg.IndexIntervalBytes = 512
		l, err := Open(dir, cfg, nil)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		for i := 0; ; i++ {
			r, err := l.Append(batch(fmt.Sprint(i), 3, int64(i)), 0, -1)
			if err != nil {
				fmt.Println("append:", err)
				os.Exit(1)
			}
			fmt.Println(r.LastOffset)
		}
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "MOLDAU_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := int64(-1)
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(300 * time.Millisecond)
	for sc.Scan() {
		v, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		acked = v
		if time.Now().After(deadline) && acked > 1000 {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if acked < 0 {
		t.Fatal("child acknowledged nothing")
	}
	l := mustOpen(t, dir, testConfig(), newClock())
	defer l.Close()
	if l.LogEndOffset() <= acked {
		t.Fatalf("acknowledged up to %d, recovered end offset %d", acked, l.LogEndOffset())
	}
	if hs := readAllBatches(t, l, 0); hs[len(hs)-1].LastOffset() < acked {
		t.Fatal("lost acknowledged batches")
	}
	t.Logf("acknowledged %d offsets, recovered %d", acked+1, l.LogEndOffset())
}
