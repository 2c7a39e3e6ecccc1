package partition

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// Manager owns the partitions hosted on this broker, across its log directories.
//
// A partition lives in `<log.dir>/<topic>-<partition>`. New partitions go to the log directory
// holding the fewest partitions, as Kafka places them.
//
// Lock order: mu is never held while a partition is opened, closed or deleted, nor while any
// Partition or log lock is taken: opening a partition (recovery, fsyncs) happens between two
// critical sections of mu (reserve the slot, publish it), so Get, and with it every produce and
// fetch, never waits for another partition's disk work.
type Manager struct {
	dirs    []string
	clock   log.Clock
	fs      vfs.FS
	logger  *slog.Logger
	logDirs map[string]*LogDir // by path
	// syncObserver, when set, is told of every group-committed sync of a log dir.
	syncObserver func(dir string, callers int, took time.Duration)
	// open opens one partition (Open); tests substitute a slow or failing one.
	open func(dir, topic string, index int32, s Settings, leaderEpoch int32, clock log.Clock, ld *LogDir) (*Partition, error)

	mu      sync.RWMutex
	topics  map[string][]*Partition // index == partition id; nil entries are not hosted here
	opening map[string]*opening     // "<topic>-<p>" -> an open in progress (not in topics yet)
	onDisk  map[string]string       // "<topic>-<p>" -> log dir, found at start or created
	perDir  map[string]int          // log dir -> entries of onDisk in it
	moving  map[string]*Move        // "<topic>-<p>" -> its move to another log dir (move.go)
	closed  bool                    // Close began: no more opens

	checkpointMu sync.Mutex
	checkpointed map[string]string // log dir -> content of its last written high-watermark checkpoint

	checkpointErrs []error // high-watermark checkpoints that could not be read at start
}

// CheckpointErrors lists the high-watermark checkpoints that were unreadable or corrupt at start
// (ignored: their partitions started from their log start offsets); the broker logs them.
func (m *Manager) CheckpointErrors() []error { return append([]error(nil), m.checkpointErrs...) }

// Option configures NewManager.
type Option func(*Manager)

// WithFS puts every file of the manager's log dirs on fsys (default vfs.Default).
func WithFS(fsys vfs.FS) Option { return func(m *Manager) { m.fs = fsys } }

// WithSyncObserver sets who is told of every sync a log dir's Syncer runs: the dir, how many
// Sync calls the group commit covered, how long the filesystem sync took (log.SyncObserver).
func WithSyncObserver(fn func(dir string, callers int, took time.Duration)) Option {
	return func(m *Manager) { m.syncObserver = fn }
}

// WithLogger sets where log dir failures are reported (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.logger = l } }

// NewManager scans the log directories for existing partition directories; they are opened when
// the metadata says they belong here (Ensure).
func NewManager(dirs []string, clock log.Clock, opts ...Option) (*Manager, error) {
	m := &Manager{dirs: dirs, clock: clock, fs: vfs.Default, logger: slog.Default(), logDirs: make(map[string]*LogDir), open: Open,
		topics: make(map[string][]*Partition), opening: make(map[string]*opening),
		onDisk: make(map[string]string), perDir: make(map[string]int), moving: make(map[string]*Move),
		checkpointed: make(map[string]string)}
	for _, o := range opts {
		o(m)
	}
	for _, d := range dirs {
		if err := m.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create log dir %s: %w", d, err)
		}
	}
	if err := recoverMoves(m.fs, dirs); err != nil {
		return nil, fmt.Errorf("moves between log dirs interrupted by a crash: %w", err)
	}
	for _, d := range dirs {
		if err := m.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create log dir %s: %w", d, err)
		}
		clean, err := takeCleanShutdownMarker(m.fs, d)
		if err != nil {
			return nil, err
		}
		ld := &LogDir{Path: d, FS: m.fs, CleanShutdown: clean, Logger: m.logger}
		var syncOpts []log.SyncerOption
		if fn := m.syncObserver; fn != nil {
			syncOpts = append(syncOpts, log.WithSyncObserver(func(callers int, took time.Duration) { fn(d, callers, took) }))
		}
		if ld.Syncer, err = log.NewSyncer(m.fs, d, ld.Fail, syncOpts...); err != nil {
			return nil, err
		}
		hws, err := ReadHighWatermarks(m.fs, d)
		if err != nil {
			// The checkpoint is a cache of what was committed: without it every partition of
			// the dir starts from its log start offset (StartHighWatermark), which exposes
			// nothing uncommitted, and the next checkpoint rewrites it. Reported, not fatal.
			m.checkpointErrs = append(m.checkpointErrs, err)
			hws = nil
		}
		ld.HighWatermarks = hws
		m.logDirs[d] = ld
		entries, err := m.fs.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("read log dir %s: %w", d, err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			if _, _, ok := ParseDirName(e.Name()); ok {
				m.onDisk[e.Name()] = d
				m.perDir[d]++
			}
		}
	}
	return m, nil
}

// DirName is the directory name of a partition.
func DirName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// ParseDirName splits "<topic>-<partition>".
func ParseDirName(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

// Get returns a hosted partition or nil.
func (m *Manager) Get(topic string, p int32) *Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ps := m.topics[topic]
	if p < 0 || int(p) >= len(ps) {
		return nil
	}
	return ps[p]
}

// Topic returns the hosted partitions of a topic (nil entries are not hosted here).
func (m *Manager) Topic(topic string) []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*Partition(nil), m.topics[topic]...)
}

// All returns every hosted partition.
func (m *Manager) All() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Partition
	for _, ps := range m.topics {
		for _, p := range ps {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// opening is a partition being opened by one Ensure; concurrent Ensures of it wait for done.
type opening struct {
	topic string
	done  chan struct{} // closed when the open finished, published or not
	// Set before done is closed.
	part *Partition
	err  error
	// Guarded by Manager.mu: the topic was removed (RemoveTopic) or the manager closed while
	// the partition was being opened; the opener deletes or closes it instead of publishing it.
	removed, closed bool
}

// ErrRemovedWhileOpening is returned by Ensure when RemoveTopic (or Close) ran while it was
// opening the partition: the partition was deleted (closed) again and is not hosted.
var ErrRemovedWhileOpening = errors.New("partition removed while it was being opened")

// Ensure opens the partition if it is not open yet, creating its directory if needed. Concurrent
// calls for one partition open it once; the others wait for that open and share its outcome.
// The manager's lock is not held while the partition is opened (see Manager).
//
// leaderEpoch >= 0 makes it the sole leader of that epoch (a single-node partition), and raises
// the epoch of an open single-replica one; leaderEpoch < 0 opens it with no role. A partition
// with a multi-replica role (BecomeLeader with followers, BecomeFollower) keeps it: the replica
// manager alone changes those.
func (m *Manager) Ensure(topic string, p int32, s Settings, leaderEpoch int32) (*Partition, error) {
	for {
		if part := m.Get(topic, p); part != nil {
			if part.LeaderEpoch() < leaderEpoch && !part.replicated() {
				if err := part.BecomeSoleLeader(leaderEpoch); err != nil {
					return nil, err
				}
			}
			return part, nil
		}
		name := DirName(topic, p)
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, fmt.Errorf("open partition %s: partition manager closed: %w", name, ErrRemovedWhileOpening)
		}
		if ps := m.topics[topic]; int(p) < len(ps) && ps[p] != nil {
			m.mu.Unlock()
			continue // published since Get: apply the leader epoch above
		}
		if op := m.opening[name]; op != nil {
			m.mu.Unlock()
			<-op.done
			if op.err != nil {
				return nil, op.err
			}
			continue
		}
		dir, ok := m.onDisk[name]
		if !ok {
			if dir, ok = m.leastLoadedDirLocked(); !ok {
				m.mu.Unlock()
				return nil, fmt.Errorf("create partition %s-%d: every log dir is offline: %w", topic, p, m.logDirs[m.dirs[0]].Err())
			}
			m.onDisk[name] = dir
			m.perDir[dir]++
		}
		op := &opening{topic: topic, done: make(chan struct{})}
		m.opening[name] = op
		m.mu.Unlock()

		return m.openReserved(op, name, dir, p, s, leaderEpoch)
	}
}

// openReserved opens the partition reserved by op, without the manager's lock, then publishes it,
// unless RemoveTopic or Close ran meanwhile.
func (m *Manager) openReserved(op *opening, name, dir string, p int32, s Settings, leaderEpoch int32) (*Partition, error) {
	part, err := m.open(filepath.Join(dir, name), op.topic, p, s, leaderEpoch, m.clock, m.logDirs[dir])

	m.mu.Lock()
	delete(m.opening, name)
	removed, closed := op.removed, op.closed
	if err == nil && !removed && !closed {
		ps := m.topics[op.topic]
		for int(p) >= len(ps) {
			ps = append(ps, nil)
		}
		ps[p] = part
		m.topics[op.topic] = ps
	}
	m.mu.Unlock()

	switch {
	case err != nil:
	case removed:
		err = fmt.Errorf("open partition %s: %w", name, ErrRemovedWhileOpening)
		if derr := part.Delete(); derr != nil {
			err = fmt.Errorf("%w; delete it: %v", err, derr)
		}
	case closed:
		err = fmt.Errorf("open partition %s: partition manager closed: %w", name, ErrRemovedWhileOpening)
		if cerr := part.Close(); cerr != nil {
			err = fmt.Errorf("%w; close it: %v", err, cerr)
		}
	}
	if err != nil {
		part = nil
	}
	op.part, op.err = part, err
	close(op.done)
	return part, err
}

// leastLoadedDirLocked picks the online log dir with the fewest partitions; ok is false when
// every dir is offline. REQUIRES: m.mu held.
func (m *Manager) leastLoadedDirLocked() (best string, ok bool) {
	for _, d := range m.dirs {
		if m.logDirs[d].Err() != nil {
			continue
		}
		if !ok || m.perDir[d] < m.perDir[best] {
			best, ok = d, true
		}
	}
	return best, ok
}

// LogDir returns the state of the log dir at path (nil if it is not one of the manager's).
func (m *Manager) LogDir(path string) *LogDir { return m.logDirs[path] }

// RemoveTopic closes and deletes every hosted partition of a topic and any leftover directory.
// Partitions of the topic being opened (Ensure) are deleted by their opener, which RemoveTopic
// waits for before it removes the directories.
func (m *Manager) RemoveTopic(topic string) error {
	m.mu.Lock()
	ps := m.topics[topic]
	delete(m.topics, topic)
	var dirs []string
	for name, d := range m.onDisk {
		if t, _, ok := ParseDirName(name); ok && t == topic {
			dirs = append(dirs, filepath.Join(d, name))
			delete(m.onDisk, name)
			m.perDir[d]--
		}
	}
	var inFlight []*opening
	for _, op := range m.opening {
		if op.topic == topic {
			op.removed = true
			inFlight = append(inFlight, op)
		}
	}
	m.mu.Unlock()
	for _, op := range inFlight {
		<-op.done
	}
	var errs []error
	for _, p := range ps {
		if p != nil {
			if err := p.Delete(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, d := range dirs {
		if err := m.fs.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemovePartition closes and deletes one hosted partition and its directory (a replica moved
// off this broker while its topic stays). A partition being opened (Ensure) is deleted by its
// opener, which RemovePartition waits for before it removes the directory.
func (m *Manager) RemovePartition(topic string, p int32) error {
	name := DirName(topic, p)
	m.mu.Lock()
	var part *Partition
	if ps := m.topics[topic]; p >= 0 && int(p) < len(ps) {
		part = ps[p]
		ps = slices.Clone(ps)
		ps[p] = nil
		if slices.IndexFunc(ps, func(x *Partition) bool { return x != nil }) < 0 {
			delete(m.topics, topic)
		} else {
			m.topics[topic] = ps
		}
	}
	dir, onDisk := m.onDisk[name]
	if onDisk {
		delete(m.onDisk, name)
		m.perDir[dir]--
	}
	op := m.opening[name]
	if op != nil {
		op.removed = true
	}
	m.mu.Unlock()
	if op != nil {
		<-op.done
	}
	var errs []error
	if part != nil {
		if err := part.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	if onDisk {
		if err := m.fs.RemoveAll(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete partition %s: %w", name, err)
	}
	return nil
}

// OrphanPartitions lists the partition directories on disk ("<topic>-<p>", ParseDirName) that
// keep rejects, sorted: e.g. replicas moved off this broker while it was down.
func (m *Manager) OrphanPartitions(keep func(topic string, p int32) bool) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var names []string
	for name := range m.onDisk {
		if t, p, ok := ParseDirName(name); ok && !keep(t, p) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Orphans lists, once each, the topics with a partition directory on disk that keep rejects
// (e.g. topics deleted while the broker was down).
func (m *Manager) Orphans(keep func(topic string, p int32) bool) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	seen := make(map[string]bool)
	var out []string
	for name := range m.onDisk {
		t, p, _ := ParseDirName(name)
		if !keep(t, p) && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// LogDirs lists the log directories.
func (m *Manager) LogDirs() []string { return append([]string(nil), m.dirs...) }

// DirOf returns the log dir holding a partition.
func (m *Manager) DirOf(topic string, p int32) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.onDisk[DirName(topic, p)]
}

// closeWorkers is how many partitions Close closes at once.
const closeWorkers = 32

// Close closes every partition, then marks each log dir whose partitions all closed cleanly
// with log.DirCleanShutdownFile.
// Opens in progress are waited for, and close their partition instead of publishing it.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	var inFlight []*opening
	for _, op := range m.opening {
		op.closed = true
		inFlight = append(inFlight, op)
	}
	var all []*Partition
	for _, ps := range m.topics {
		for _, p := range ps {
			if p != nil {
				all = append(all, p)
			}
		}
	}
	m.topics = make(map[string][]*Partition)
	dirOf := make([]string, len(all))
	for i, p := range all {
		dirOf[i] = m.onDisk[DirName(p.Topic, p.Index)]
	}
	m.mu.Unlock()
	for _, op := range inFlight {
		<-op.done
	}
	// Closing a partition that took writes costs a few fsyncs; with thousands of partitions
	// they run in parallel, which the disk's queue absorbs.
	closeErrs := make([]error, len(all))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(closeWorkers, len(all)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(all)); i = next.Add(1) - 1 {
				closeErrs[i] = all[i].Close()
			}
		}()
	}
	wg.Wait()
	var errs []error
	failed := map[string]bool{}
	for i, err := range closeErrs {
		if err != nil {
			errs = append(errs, err)
			failed[dirOf[i]] = true
		}
	}
	for d, ld := range m.logDirs {
		if !failed[d] && ld.Err() == nil {
			if err := log.WriteFileAtomic(m.fs, d, log.DirCleanShutdownFile, nil); err != nil {
				errs = append(errs, err)
			}
		}
		errs = append(errs, ld.Syncer.Close())
	}
	return errors.Join(errs...)
}

// takeCleanShutdownMarker reports whether dir holds log.DirCleanShutdownFile and removes it,
// durably, before any log of the dir is opened: from then on a crash is an unclean shutdown.
func takeCleanShutdownMarker(fsys vfs.FS, dir string) (bool, error) {
	path := filepath.Join(dir, log.DirCleanShutdownFile)
	if _, err := fsys.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err := fsys.Remove(path); err != nil {
		return false, fmt.Errorf("remove %s: %w", path, err)
	}
	if err := log.SyncDir(fsys, dir); err != nil {
		return false, err
	}
	return true, nil
}

// CheckpointFile is the per-log-dir file holding each hosted partition's high watermark, in
// Kafka's replication-offset-checkpoint format.
const CheckpointFile = "replication-offset-checkpoint"

// WriteHighWatermarks writes every log dir's high-watermark checkpoint: a version line (0), a
// count line, then "topic partition offset" lines. The file is replaced atomically (temp file,
// fsync, rename, directory fsync).
func (m *Manager) WriteHighWatermarks() error {
	byDir := make(map[string][]string)
	for _, p := range m.All() {
		d := m.DirOf(p.Topic, p.Index)
		byDir[d] = append(byDir[d], fmt.Sprintf("%s %d %d", p.Topic, p.Index, p.HighWatermark()))
	}
	var errs []error
	for _, d := range m.dirs {
		if m.logDirs[d].Err() != nil {
			continue // offline: nothing is written there any more
		}
		lines := byDir[d]
		sort.Strings(lines)
		var body strings.Builder
		fmt.Fprintf(&body, "0\n%d\n", len(lines))
		for _, l := range lines {
			body.WriteString(l)
			body.WriteByte('\n')
		}
		m.checkpointMu.Lock()
		unchanged := m.checkpointed[d] == body.String()
		m.checkpointMu.Unlock()
		if unchanged {
			continue // nothing moved: no rewrite, no fsync
		}
		if err := log.WriteFileAtomic(m.fs, d, CheckpointFile, []byte(body.String())); err != nil {
			errs = append(errs, err)
			continue
		}
		m.checkpointMu.Lock()
		m.checkpointed[d] = body.String()
		m.checkpointMu.Unlock()
	}
	return errors.Join(errs...)
}

// ReadHighWatermarks reads a log dir's CheckpointFile (Kafka's format, version 0), by DirName.
// A missing file is no error (nil map); a malformed one is, naming the file and the line, and
// nothing of it is used.
func ReadHighWatermarks(fsys vfs.FS, dir string) (map[string]int64, error) {
	path := filepath.Join(dir, CheckpointFile)
	b, err := vfs.ReadFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read high-watermark checkpoint: %w", err)
	}
	return parseHighWatermarks(path, b)
}

// parseHighWatermarks parses the content b of the checkpoint file path (ReadHighWatermarks).
func parseHighWatermarks(path string, b []byte) (map[string]int64, error) {
	bad := func(line int, format string, a ...any) error {
		return fmt.Errorf("high-watermark checkpoint %s: line %d: %s", path, line, fmt.Sprintf(format, a...))
	}
	lines := strings.Split(string(b), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	if len(lines) < 2 {
		return nil, bad(len(lines)+1, "truncated: want a version and a count line")
	}
	if lines[0] != "0" {
		return nil, bad(1, "version %q, want 0", lines[0])
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count < 0 {
		return nil, bad(2, "count %q is not a number of entries", lines[1])
	}
	if count != len(lines)-2 {
		return nil, bad(2, "count %d, but %d entries follow", count, len(lines)-2)
	}
	out := make(map[string]int64, count)
	for i, l := range lines[2:] {
		f := strings.Split(l, " ")
		if len(f) != 3 || f[0] == "" {
			return nil, bad(i+3, "%q is not \"topic partition offset\"", l)
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		off, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, bad(i+3, "%q: partition or offset is not a non-negative number", l)
		}
		out[DirName(f[0], int32(p))] = off
	}
	return out, nil
}
