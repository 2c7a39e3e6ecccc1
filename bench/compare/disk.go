package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// diskResult is the disk's own sequential write limit for W1's byte count.
type diskResult struct {
	Bytes           int64   `json:"bytes"`
	DirectMBps      float64 `json:"direct_mb_per_sec"`    // dd oflag=direct
	FdatasyncMBps   float64 `json:"fdatasync_mb_per_sec"` // dd conv=fdatasync (buffered, then one fdatasync)
	DirectCommand   string  `json:"direct_command"`
	BufferedCommand string  `json:"fdatasync_command"`
	Error           string  `json:"error,omitempty"`
}

// ddCopied matches dd's summary: "2147483648 bytes (2.1 GB, 2.0 GiB) copied, 3.2 s, 671 MB/s".
var ddCopied = regexp.MustCompile(`(\d+) bytes .*copied, ([0-9.eE+-]+) s`)

// runDisk writes W1's byte count (1 MiB blocks) into the temporary directory, the filesystem the
// brokers' data directories live on, once with O_DIRECT and once buffered with a final
// fdatasync. MB is 2^20 bytes, as in `moldau bench`.
func (h *harness) runDisk(ctx context.Context) *diskResult {
	blocks := int64(math.Ceil(float64(h.records(2_000_000)*1024) / (1 << 20)))
	res := &diskResult{Bytes: blocks << 20}
	dir := filepath.Join(h.tmp, "disk")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "ddtest")
	dd := func(extra string) (float64, string, error) {
		argv := []string{"dd", "if=/dev/zero", "of=" + file, "bs=1M", fmt.Sprintf("count=%d", blocks), extra}
		var stderr strings.Builder
		_, err := run(ctx, dir, &stderr, append([]string{"env", "LC_ALL=C"}, argv...)...)
		os.Remove(file)
		cmd := strings.Join(argv, " ")
		if err != nil {
			return 0, cmd, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		m := ddCopied.FindStringSubmatch(stderr.String())
		if m == nil {
			return 0, cmd, fmt.Errorf("cannot read dd's summary: %q", stderr.String())
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		secs, _ := strconv.ParseFloat(m[2], 64)
		if secs <= 0 {
			return 0, cmd, fmt.Errorf("dd took %v s", secs)
		}
		return n / (1 << 20) / secs, cmd, nil
	}
	var err error
	h.logf("disk: dd %d MiB with oflag=direct", blocks)
	if res.DirectMBps, res.DirectCommand, err = dd("oflag=direct"); err != nil {
		res.Error = err.Error()
		return res
	}
	h.logf("disk: dd %d MiB buffered with conv=fdatasync", blocks)
	if res.FdatasyncMBps, res.BufferedCommand, err = dd("conv=fdatasync"); err != nil {
		res.Error = err.Error()
		return res
	}
	h.logf("disk: direct %.0f MB/s, buffered+fdatasync %.0f MB/s", res.DirectMBps, res.FdatasyncMBps)
	return res
}
