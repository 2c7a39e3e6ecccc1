package metadata

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// FSM is the metadata state machine (a raft.FSM). Each applied batch publishes a new Image
// through an atomic pointer, so readers never lock.
//
// raft calls Apply, Snapshot and Restore from one goroutine; Image and Subscribe may be
// called from any goroutine.
type FSM struct {
	image atomic.Pointer[Image]
	// log hears of entries this build cannot apply (set before raft starts; never nil).
	log *slog.Logger

	mu struct {
		sync.Mutex
		subs map[chan struct{}]struct{}
	}
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns a state machine holding an empty image.
func NewFSM() *FSM {
	f := &FSM{log: slog.New(slog.DiscardHandler)}
	f.image.Store(emptyImage())
	f.mu.subs = map[chan struct{}]struct{}{}
	return f
}

// Image returns the current image.
func (f *FSM) Image() *Image { return f.image.Load() }

// Apply applies one committed batch. It returns nil on success or an error (wrapping
// ErrBadRecord) when the batch does not decode or apply; the image is then unchanged.
//
// On the leader the error reaches the writer; every other node only logs it, since raft drops
// what Apply returns there (a record of a newer build, which metadata.version should have held
// back, is the expected cause).
func (f *FSM) Apply(l *raft.Log) any {
	records, err := DecodeBatch(l.Data)
	if err == nil {
		var next *Image
		if next, err = f.image.Load().applyBatch(l.Index, records); err == nil {
			f.publish(next)
			return nil
		}
	}
	err = fmt.Errorf("entry %d: %w", l.Index, err)
	f.log.Error("metadata log entry skipped: this build cannot apply it", "index", l.Index, "err", err)
	return err
}

func (f *FSM) publish(im *Image) {
	f.image.Store(im)
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.mu.subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled; the subscriber will read the latest image
		}
	}
}

// Subscribe returns a channel signalled (non-blocking, coalescing) after each applied batch
// or restored snapshot.
func (f *FSM) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.mu.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch
}

// Unsubscribe stops signalling ch.
func (f *FSM) Unsubscribe(ch <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.mu.subs {
		if (<-chan struct{})(c) == ch {
			delete(f.mu.subs, c)
		}
	}
}

// Snapshot captures the current image; Persist serialises it (JSON) off the apply path.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return fsmSnapshot{image: f.image.Load()}, nil
}

// Restore replaces the state with a snapshot written by Persist.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	im, err := readImageJSON(rc)
	if err != nil {
		return err
	}
	f.publish(im)
	return nil
}

type fsmSnapshot struct{ image *Image }

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.image.writeJSON(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("metadata: write snapshot: %w", err)
	}
	return sink.Close()
}

func (fsmSnapshot) Release() {}
