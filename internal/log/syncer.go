package log

import (
	"fmt"
	"sync"
	"time"

	"github.com/moldau/moldau/internal/vfs"
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
// rather than acknowledge what may not be on disk; onFailure (the log dir's
// owner) hears of it once.
type Syncer struct {
	dir       vfs.File
	syncFS    func(vfs.File) error // the FS's SyncFS; tests substitute it
	onFailure func(error)
	observe   SyncObserver // nil: none

	mu   sync.Mutex
	cond *sync.Cond
	// Guarded by mu. INVARIANT: completed <= started <= completed+1.
	started   uint64 // syncs begun
	completed uint64 // syncs finished
	failed    error
	// next is the Sync calls waiting for sync started+1 (the group commit it will cover).
	next int
}

// SyncObserver is told of every sync a Syncer ran: how many Sync calls it covered (the group
// commit's batch, at least 1) and how long the filesystem sync took. It runs outside the
// Syncer's lock, on the goroutine that ran the sync.
type SyncObserver func(callers int, took time.Duration)

// SyncerOption configures a Syncer.
type SyncerOption func(*Syncer)

// WithSyncObserver sets the Syncer's SyncObserver.
func WithSyncObserver(o SyncObserver) SyncerOption { return func(s *Syncer) { s.observe = o } }

// NewSyncer opens dir of fsys for syncing (the sync goes through fsys.SyncFS:
// syncfs(2) for vfs.Default). onFailure, if not nil, is called once, when a
// sync fails, with the Syncer's lock held: it must not call the Syncer.
func NewSyncer(fsys vfs.FS, dir string, onFailure func(error), opts ...SyncerOption) (*Syncer, error) {
	f, err := fsys.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("syncer: %w", err)
	}
	s := &Syncer{dir: f, syncFS: fsys.SyncFS, onFailure: onFailure}
	for _, o := range opts {
		o(s)
	}
	s.cond = sync.NewCond(&s.mu)
	return s, nil
}

// Sync waits until everything written to the dir before the call is durable.
func (s *Syncer) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A sync already running may have started before our write: we need the next one.
	target := s.started + 1
	s.next++ // this call waits for sync target, which covers every call counted in next
	for s.completed < target && s.failed == nil {
		if s.started > s.completed {
			s.cond.Wait()
			continue
		}
		s.started++
		callers := s.next
		s.next = 0
		s.mu.Unlock()
		start := time.Now()
		err := s.syncFS(s.dir)
		if s.observe != nil {
			s.observe(callers, time.Since(start))
		}
		s.mu.Lock()
		s.completed = s.started
		if err != nil && s.failed == nil {
			s.failed = fmt.Errorf("sync log dir %s: %w", s.dir.Name(), err)
			if s.onFailure != nil {
				s.onFailure(s.failed)
			}
		}
		s.cond.Broadcast()
	}
	return s.failed
}

// Syncs returns the number of completed syncs (for tests and metrics).
func (s *Syncer) Syncs() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.completed
}

// Close releases the dir handle.
func (s *Syncer) Close() error { return s.dir.Close() }
