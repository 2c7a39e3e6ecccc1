//go:build !race

// Allocation counts are checked without the race detector only: its instrumentation moves stack
// buffers to the heap, so under -race these numbers say nothing about the real build.

package log

import (
	"fmt"
	"math"
	"testing"
)

// TestReadSectionsAllocations: reading sections of an OS-backed log allocates only the returned
// slice: the header buffers stay on the stack even though files are reached through vfs.File.
func TestReadSectionsAllocations(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testConfig(), newClock())
	defer l.Close()
	for i := range 50 {
		mustAppend(t, l, batch(fmt.Sprint(i), 2, 0))
	}
	allocs := testing.AllocsPerRun(100, func() {
		secs, err := l.ReadSections(40, 1<<20, math.MaxInt64, true)
		if err != nil || len(secs) != 1 {
			t.Fatal(err, len(secs))
		}
	})
	if allocs > 1 {
		t.Fatalf("%.1f allocations per ReadSections, want 1 (the section slice)", allocs)
	}
}
