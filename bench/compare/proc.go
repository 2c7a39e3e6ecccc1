package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every long-running child (a broker) that is still running, so that an error path or
// a signal can stop them all. Each child runs in a process group of its own (so a Ctrl-C at the
// terminal reaches only this program, which then stops them in order) and gets SIGKILL from the
// kernel if this program dies first (Pdeathsig).
var procs struct {
	sync.Mutex
	running map[*proc]struct{}
}

// proc is a started child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited
	err     error         // Wait's result; read after exited is closed
	log     *os.File
}

func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startProc starts a long-running child with stdout and stderr appended to logPath.
func startProc(name, logPath, dir string, env []string, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttrs()
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), log: logf}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	procs.Lock()
	if procs.running == nil {
		procs.running = map[*proc]struct{}{}
	}
	procs.running[p] = struct{}{}
	procs.Unlock()
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM to the child's process group, waits up to grace for it to exit, then
// SIGKILLs the group. It is safe to call more than once.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.exited:
	default:
		_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(grace):
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.exited
		}
	}
	// Anything the child left in its group.
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	procs.Lock()
	delete(procs.running, p)
	procs.Unlock()
}

// stopAll stops every child still running.
func stopAll() {
	procs.Lock()
	var ps []*proc
	for p := range procs.running {
		ps = append(ps, p)
	}
	procs.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { p.stop(20 * time.Second) })
	}
	wg.Wait()
}

// run runs a short-lived command to completion (cancelled with ctx: SIGINT to its group, then
// SIGKILL after 10 s) and returns its stdout. stderr goes to errw.
func run(ctx context.Context, dir string, errw io.Writer, argv ...string) ([]byte, error) {
	out, _, err := runTimed(ctx, dir, errw, argv...)
	return out, err
}

// runTimed is run that also returns the CPU time (user + system, in seconds) the command used.
func runTimed(ctx context.Context, dir string, errw io.Writer, argv ...string) ([]byte, float64, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = errw
	cmd.SysProcAttr = childAttrs()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var cpu float64
	if cmd.ProcessState != nil {
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		return out.Bytes(), cpu, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.Bytes(), cpu, nil
}

// procStatFields are the fields of /proc/PID/stat after the command name (field 3 on, so
// field N is at index N-3), at least min of them.
func procStatFields(pid, min int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < min {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// procCPUSeconds is the CPU time (user + system) process pid has used, from /proc/PID/stat.
func procCPUSeconds(pid int) (float64, error) {
	f, err := procStatFields(pid, 13)
	if err != nil {
		return 0, err
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// sumCPUSeconds is the CPU time the processes pids have used together.
func sumCPUSeconds(pids []int) (float64, error) {
	var sum float64
	for _, pid := range pids {
		s, err := procCPUSeconds(pid)
		if err != nil {
			return 0, err
		}
		sum += s
	}
	return sum, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every Linux port Go supports.
const clockTicks = 100

// procStatusKB reads a "Key:   123 kB" field of /proc/PID/status.
func procStatusKB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			break
		}
		return strconv.ParseInt(fields[0], 10, 64)
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}
