package server

import (
	"runtime/debug"
	"sync"
	"time"
)

// returnSpacing bounds the share of the CPU that returning memory takes:
// a return is a whole garbage collection, and a trickle of connections with
// gaps just above the quiet time must not run one each time. After a return
// that took d, the next waits until returnSpacing times d has passed since
// it: a small heap is returned after every burst, a large one (whose
// collection takes longer) less often, and returns never take more than a
// tenth of a core.
const returnSpacing = 10

// memoryReturn gives the heap's free memory back to the system once
// connections stop arriving (Options.ReturnMemoryAfter), as often as
// returnSpacing allows. cmd/wharf runs the
// collector with a high target (GOGC=200), which keeps the collector's share
// of a burst of short sessions small but lets the heap grow to three times
// what is live; after the burst, one collection and a return of the free
// pages (debug.FreeOSMemory) bring an idle server back to what its sessions
// hold.
type memoryReturn struct {
	quiet time.Duration
	timer *time.Timer // fires quiet after the last arrival
	free  func()      // debug.FreeOSMemory; tests count the calls

	mu      sync.Mutex
	last    time.Time     // when the last return ended
	took    time.Duration // how long it took
	stopped bool
}

// newMemoryReturn returns memory after quiet with no arrival; nil for quiet 0.
func newMemoryReturn(quiet time.Duration) *memoryReturn {
	if quiet <= 0 {
		return nil
	}

	m := &memoryReturn{quiet: quiet, free: debug.FreeOSMemory}
	m.timer = time.AfterFunc(time.Hour, m.fire)
	m.timer.Stop()

	return m
}

// arrived notes a new connection: the quiet time starts again.
func (m *memoryReturn) arrived() {
	if m != nil {
		m.timer.Reset(m.quiet)
	}
}

// fire returns the memory, or waits until returnSpacing allows it.
func (m *memoryReturn) fire() {
	m.mu.Lock()
	defer m.mu.Unlock()

	if m.stopped {
		return
	}

	if wait := returnSpacing*m.took - time.Since(m.last); wait > 0 {
		m.timer.Reset(wait)

		return
	}

	start := time.Now()
	m.free()
	m.last = time.Now()
	m.took = m.last.Sub(start)
}

// stop ends the returns, waiting for one in progress.
func (m *memoryReturn) stop() {
	if m == nil {
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	m.stopped = true
	m.timer.Stop()
}
