//go:build !unix

package verify

import (
	"errors"
	"os"
	"syscall"
)

var errNoSignals = errors.New("pausing and resuming a node needs SIGSTOP and SIGCONT (a Unix system)")

func procAttr() *syscall.SysProcAttr { return nil }

func signalKill(p *os.Process) error { return p.Kill() }
func signalTerm(p *os.Process) error { return p.Kill() }
func signalStop(*os.Process) error   { return errNoSignals }
func signalCont(*os.Process) error   { return errNoSignals }
