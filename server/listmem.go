package server

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"time"
)

// entryBytes estimates the memory one listed entry holds besides its name:
// the FileInfo (an os.fileStat with its syscall.Stat_t, about 200 bytes), the
// wrappers vfs puts around it, and its slot in the slice.
const entryBytes = 240

// The listing janitor looks every janitorTick: it drops expired cached
// listings, and when the listings' memory fell by freeAfter since it last
// looked at its highest, it has the Go runtime collect and return the memory
// at once. Without it, a crowd of cut listings leaves the heap at its peak
// until something else allocates enough to start a collection.
const (
	janitorTick = 500 * time.Millisecond
	freeAfter   = 16 << 20
)

var (
	errListingMemory = errors.New("listings in progress hold all the memory allowed for them, try again")
	errListingHuge   = errors.New("this folder is too large to list within max_listing_memory")
)

// dirList is a folder's entries as read once: shared, never changed, by the
// listing cache and by every listing that sends it. Its memory counts against
// max_listing_memory while at least one listing holds it (refs > 0); once
// none does, only the cache keeps it, within the cache's own bound.
type dirList struct {
	entries []os.FileInfo
	bytes   int64
	refs    int // under listingMemory.mu
}

// listingMemory is the budget of max_listing_memory: the memory held by the
// listings in flight, all sessions together. A listing holds its part until
// it is closed (sent, cut or refused), not only while its folder is read.
type listingMemory struct {
	mu    sync.Mutex
	limit int64         // 0 = no bound
	used  int64         // bytes held
	freed chan struct{} // closed (and replaced) when bytes are given back
}

func newListingMemory(limit int64) *listingMemory {
	return &listingMemory{limit: limit, freed: make(chan struct{})}
}

// acquire takes n bytes of the budget, waiting for other listings to give
// some back until ctx ends. A request larger than the whole budget fails at
// once.
func (m *listingMemory) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	return m.acquireLocked(ctx, n)
}

func (m *listingMemory) acquireLocked(ctx context.Context, n int64) error {
	if m.limit > 0 && n > m.limit {
		return errListingHuge
	}

	for m.limit > 0 && m.used+n > m.limit {
		freed := m.freed
		m.mu.Unlock()

		select {
		case <-freed:
		case <-ctx.Done():
		}

		m.mu.Lock()

		if ctx.Err() != nil {
			return errListingMemory
		}
	}

	m.used += n

	return nil
}

// grow takes n more bytes for a list that holds already bytes, without
// waiting: a reader that waited while holding memory could wait for another
// that waits for it.
func (m *listingMemory) grow(already, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	switch {
	case m.limit > 0 && already+n > m.limit:
		return errListingHuge
	case m.limit > 0 && m.used+n > m.limit:
		return errListingMemory
	}

	m.used += n

	return nil
}

// release gives n bytes back.
func (m *listingMemory) release(n int64) {
	if n <= 0 {
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	m.releaseLocked(n)
}

func (m *listingMemory) releaseLocked(n int64) {
	m.used -= n
	close(m.freed)
	m.freed = make(chan struct{})
}

// hold makes a listing a holder of list: the first holder pays for its
// memory (waiting as acquire does), later ones share it.
func (m *listingMemory) hold(ctx context.Context, list *dirList) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if list.refs == 0 {
		if err := m.acquireLocked(ctx, list.bytes); err != nil {
			return err
		}
	}

	list.refs++

	return nil
}

// drop ends a listing's hold on list; the last holder gives its memory back.
func (m *listingMemory) drop(list *dirList) {
	if list == nil {
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	if list.refs--; list.refs == 0 {
		m.releaseLocked(list.bytes)
	}
}

// inUse is the memory held now, for tests and metrics.
func (m *listingMemory) inUse() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.used
}

// startListingJanitor runs the janitor until the returned function is called
// (it waits for the janitor to stop).
func (s *Server) startListingJanitor() func() {
	stop := make(chan struct{})

	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(janitorTick)
		defer ticker.Stop()

		var high int64
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
			}

			// Cached and held lists overlap: the sum is an estimate, enough
			// to see memory fall.
			live := s.dirs.sweep() + s.listMem.inUse()
			high = max(high, live)

			if high-live >= freeAfter {
				debug.FreeOSMemory()
				high = live
			}
		}
	})

	return func() {
		close(stop)
		wg.Wait()
	}
}
