//go:build linux

package verify

import "syscall"

// sysProcAttr: on Linux a node is also killed when the process that started it dies, so a
// moldau verify or test killed with SIGKILL leaves no nodes behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
