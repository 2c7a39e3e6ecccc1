package vfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes every dirty page and inode of the filesystem holding f.
func syncFS(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
