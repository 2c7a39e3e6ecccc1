//go:build unix

package verify

import (
	"os"
	"syscall"
)

// procAttr puts a node in a process group of its own, so a Ctrl-C meant for moldau verify (or a
// test) does not reach the nodes before it can stop them in order.
func procAttr() *syscall.SysProcAttr { return sysProcAttr() }

func signalKill(p *os.Process) error { return p.Signal(syscall.SIGKILL) }
func signalTerm(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
func signalStop(p *os.Process) error { return p.Signal(syscall.SIGSTOP) }
func signalCont(p *os.Process) error { return p.Signal(syscall.SIGCONT) }
