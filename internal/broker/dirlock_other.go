//go:build !unix

package broker

import "os"

// tryLock: no flock(2) here, so log dirs are not locked on this platform.
func tryLock(*os.File) error { return nil }
