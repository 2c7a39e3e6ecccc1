package partition

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// Manager owns the partitions hosted on this broker, across its log directories.
//
// A partition lives in `<log.dir>/<topic>-<partition>`. New partitions go to the log directory
// holding the fewest partitions, as Kafka places them.
type Manager struct {
	dirs    []string
	clock   log.Clock
	fs      vfs.FS
	logger  *slog.Logger
	logDirs map[string]*LogDir // by path

	mu     sync.RWMutex
	topics map[string][]*Partition // index == partition id; nil entries are not hosted here
	onDisk map[string]string       // "<topic>-<p>" -> log dir, found at start or created
	perDir map[string]int          // log dir -> entries of onDisk in it

	checkpointMu sync.Mutex
	checkpointed map[string]string // log dir -> content of its last written high-watermark checkpoint
}

// Option configures NewManager.
type Option func(*Manager)

// WithFS puts every file of the manager's log dirs on fsys (default vfs.Default).
func WithFS(fsys vfs.FS) Option { return func(m *Manager) { m.fs = fsys } }

// WithLogger sets where log dir failures are reported (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.logger = l } }

// NewManager scans the log directories for existing partition directories; they are opened when
// the metadata says they belong here (Ensure).
func NewManager(dirs []string, clock log.Clock, opts ...Option) (*Manager, error) {
	m := &Manager{dirs: dirs, clock: clock, fs: vfs.Default, logger: slog.Default(), logDirs: make(map[string]*LogDir),
		topics: make(map[string][]*Partition), onDisk: make(map[string]string), perDir: make(map[string]int),
		checkpointed: make(map[string]string)}
	for _, o := range opts {
		o(m)
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
		if ld.Syncer, err = log.NewSyncer(m.fs, d, ld.Fail); err != nil {
			return nil, err
		}
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

// Ensure opens the partition if it is not open yet, creating its directory if needed.
func (m *Manager) Ensure(topic string, p int32, s Settings, leaderEpoch int32) (*Partition, error) {
	if part := m.Get(topic, p); part != nil {
		if part.LeaderEpoch() < leaderEpoch {
			if err := part.BecomeLeader(leaderEpoch); err != nil {
				return nil, err
			}
		}
		return part, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.topics[topic]; int(p) < len(ps) && ps[p] != nil {
		return ps[p], nil
	}
	name := DirName(topic, p)
	dir, ok := m.onDisk[name]
	if !ok {
		if dir, ok = m.leastLoadedDirLocked(); !ok {
			return nil, fmt.Errorf("create partition %s-%d: every log dir is offline: %w", topic, p, m.logDirs[m.dirs[0]].Err())
		}
		m.onDisk[name] = dir
		m.perDir[dir]++
	}
	part, err := Open(filepath.Join(dir, name), topic, p, s, leaderEpoch, m.clock, m.logDirs[dir])
	if err != nil {
		return nil, err
	}
	ps := m.topics[topic]
	for int(p) >= len(ps) {
		ps = append(ps, nil)
	}
	ps[p] = part
	m.topics[topic] = ps
	return part, nil
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
	m.mu.Unlock()
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
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Closing a partition that took writes costs a few fsyncs; with thousands of partitions
	// they run in parallel, which the disk's queue absorbs.
	var all []*Partition
	for _, ps := range m.topics {
		for _, p := range ps {
			if p != nil {
				all = append(all, p)
			}
		}
	}
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
			failed[m.onDisk[DirName(all[i].Topic, all[i].Index)]] = true
		}
	}
	m.topics = make(map[string][]*Partition)
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
