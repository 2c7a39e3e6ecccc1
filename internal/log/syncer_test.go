package log

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moldau/moldau/internal/vfs"
)

// TestSyncerGroupsWaiters holds the first sync, queues callers behind it and checks that one more
// sync serves them all, and that a caller never returns before a sync that began after its call.
func TestSyncerGroupsWaiters(t *testing.T) {
	s, err := NewSyncer(vfs.Default, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entered := make(chan int, 10)
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	s.syncFS = func(vfs.File) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		entered <- n
		<-release
		return nil
	}
	first := make(chan error)
	go func() { first <- s.Sync() }()
	if n := <-entered; n != 1 {
		t.Fatalf("sync %d first", n)
	}
	const waiters = 10
	var wg sync.WaitGroup
	returned := make(chan struct{}, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Sync(); err != nil {
				t.Error(err)
			}
			returned <- struct{}{}
		}()
	}
	// Let the waiters queue behind the running sync (the check below does not depend on it).
	time.Sleep(50 * time.Millisecond)
	select {
	case <-returned:
		t.Fatal("a caller returned while the only sync running began before its call")
	default:
	}
	release <- struct{}{} // the first sync finishes
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := <-entered; n != 2 {
		t.Fatalf("sync %d second", n)
	}
	close(release) // the second, and any later, finish at once
	wg.Wait()
	// Every waiter that queued during sync 1 is covered by sync 2. A waiter that arrived after
	// sync 2 began (not before the 50 ms pause, on a loaded machine) may need a third.
	if got := s.Syncs(); got < 2 || got > 3 {
		t.Fatalf("%d syncs for 1 + %d callers", got, waiters)
	}
}

func TestSyncerFailureSticks(t *testing.T) {
	s, err := NewSyncer(vfs.Default, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boom := errors.New("EIO")
	s.syncFS = func(vfs.File) error { return boom }
	if err := s.Sync(); !errors.Is(err, boom) {
		t.Fatalf("sync: %v", err)
	}
	s.syncFS = func(vfs.File) error { return nil }
	if err := s.Sync(); !errors.Is(err, boom) {
		t.Fatalf("sync after a failure: %v", err)
	}
}

func TestSyncerRealSyncfs(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSyncer(vfs.Default, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.WriteFile(dir+"/x", []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil || s.Syncs() != 1 {
		t.Fatalf("sync: %v, %d syncs", err, s.Syncs())
	}
}

// TestSyncerObserverCountsBatch: the observer hears of each sync with the number of Sync calls
// it covered: one for a lone caller, all of the callers that queued behind a running sync for
// the next.
func TestSyncerObserverCountsBatch(t *testing.T) {
	type observed struct{ callers int }
	seen := make(chan observed, 10)
	s, err := NewSyncer(vfs.Default, t.TempDir(), nil, WithSyncObserver(func(callers int, took time.Duration) {
		if took < 0 {
			t.Errorf("a sync took %v", took)
		}
		seen <- observed{callers}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	s.syncFS = func(vfs.File) error {
		entered <- struct{}{}
		<-release
		return nil
	}
	first := make(chan error)
	go func() { first <- s.Sync() }()
	<-entered
	const waiters = 7
	var wg sync.WaitGroup
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Sync(); err != nil {
				t.Error(err)
			}
		}()
	}
	// Wait until every waiter has called Sync (counted for the next sync).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		n := s.next
		s.mu.Unlock()
		if n == waiters {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d callers queued", n, waiters)
		}
	}
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-entered
	release <- struct{}{}
	wg.Wait()
	if got := []observed{<-seen, <-seen}; got[0].callers != 1 || got[1].callers != waiters {
		t.Fatalf("observed batches %v, want [{1} {%d}]", got, waiters)
	}
	select {
	case o := <-seen:
		t.Fatalf("a third sync %v", o)
	default:
	}
}
