package log

import (
	"fmt"
	"os"
	"sync"
)

// Syncer group-commits fsyncs for one log dir: Sync returns once a
// filesystem-wide sync (syncfs(2) on Linux) that began after the call has
// completed, so every byte any log of the dir wrote before calling Sync is
// durable. Concurrent callers share one sync: while one runs, later callers
// queue for the next, which then covers all of them, whatever partition they
// appended to. This is the fsync-before-ack durability mode
// (log.flush.interval.messages=1).
//
// A failed sync makes the Syncer fail every later call: the state of the
// dir's data is unknown, and the broker stops acknowledging writes to it
// rather than acknowledge what may not be on disk.
type Syncer struct {
	dir *os.File

	mu   sync.Mutex
	cond *sync.Cond
	// Guarded by mu.
	syncFS func(*os.File) error // syncFS; tests substitute it (SetSyncFunc)
	// Guarded by mu. INVARIANT: completed <= started <= completed+1.
	started   uint64 // syncs begun
	completed uint64 // syncs finished
	failed    error
}

// NewSyncer opens dir for syncing.
func NewSyncer(dir string) (*Syncer, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("syncer: %w", err)
	}
	s := &Syncer{dir: f, syncFS: syncFS}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// Sync waits until everything written to the dir before the call is durable.
func (s *Syncer) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A sync already running may have started before our write: we need the next one.
	target := s.started + 1
	for s.completed < target && s.failed == nil {
		if s.started > s.completed {
			s.cond.Wait()
			continue
		}
		s.started++
		syncFS := s.syncFS
		s.mu.Unlock()
		err := syncFS(s.dir)
		s.mu.Lock()
		s.completed = s.started
		if err != nil {
			s.failed = fmt.Errorf("sync log dir %s: %w", s.dir.Name(), err)
		}
		s.cond.Broadcast()
	}
	return s.failed
}

// SetSyncFunc replaces the filesystem sync (syncfs(2) of the dir, passed as fn's argument) by fn,
// for tests that hold a sync to see what waits for it, or fail one. A sync already running
// finishes with the function it started with.
func (s *Syncer) SetSyncFunc(fn func(dir *os.File) error) {
	s.mu.Lock()
	s.syncFS = fn
	s.mu.Unlock()
}

// Syncs returns the number of completed syncs (for tests and metrics).
func (s *Syncer) Syncs() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.completed
}

// Close releases the dir handle.
func (s *Syncer) Close() error { return s.dir.Close() }
