//go:build !linux

package cli

import "io"

// interactive reports false where Moldau has no terminal check: no prompt is printed.
func interactive(io.Reader, io.Writer) bool { return false }
