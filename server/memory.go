package server

import (
	"runtime/debug"
	"sync"
	"time"
)

// returnEvery is the shortest time between two returns of idle memory: a
// return is a whole garbage collection, which a trickle of connections with
// gaps just above the quiet time must not run each time.
const returnEvery = time.Second

// memoryReturn gives the heap's free memory back to the system once
// connections stop arriving (Options.ReturnMemoryAfter). cmd/wharf runs the
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
	last    time.Time // the last return
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

// fire returns the memory, or waits until returnEvery has passed since the
// last return.
func (m *memoryReturn) fire() {
	m.mu.Lock()
	defer m.mu.Unlock()

	if m.stopped {
		return
	}

	if wait := returnEvery - time.Since(m.last); wait > 0 {
		m.timer.Reset(wait)

		return
	}

	m.last = time.Now()
	m.free()
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
