package server

import (
	"sync"
	"time"
)

// Bounds of the lines one kind of event logs under a flood (see logLimiter).
const (
	logBurst  = 5
	logWindow = 10 * time.Second
)

// logLimiter bounds the log lines of events a client can repeat at will
// (connections refused before the greeting, logins refused by the account
// throttle): of each kind, the first burst of a window are logged one by one;
// the rest are only counted, and one summary line at the end of the window
// says how many were left out. Under a flood a kind thus logs at most
// burst+1 lines per window. Kinds are a few fixed strings, never client text.
type logLimiter struct {
	burst  int
	window time.Duration

	mu     sync.Mutex
	kinds  map[string]*logCount
	closed bool
}

type logCount struct {
	start   time.Time
	logged  int
	left    int // events not logged since start
	timer   *time.Timer
	summary func(left int, since time.Time)
}

func newLogLimiter(burst int, window time.Duration) *logLimiter {
	return &logLimiter{burst: burst, window: window, kinds: make(map[string]*logCount)}
}

// allow reports whether an event of kind may be logged now. When it may
// not, the event is counted, and summary runs at the end of the window with
// the count of the events left out (the first summary given in the window
// is the one that runs).
func (l *logLimiter) allow(kind string, summary func(left int, since time.Time)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()

	now := time.Now()
	c := l.kinds[kind]
	if c == nil || c.timer == nil && now.Sub(c.start) >= l.window {
		c = &logCount{start: now}
		l.kinds[kind] = c
	}

	if c.logged < l.burst {
		c.logged++

		return true
	}

	c.left++
	if c.timer == nil && !l.closed {
		c.summary = summary
		c.timer = time.AfterFunc(time.Until(c.start.Add(l.window)), func() { l.flush(kind, c) })
	}

	return false
}

// flush writes c's summary and starts a new window for its kind.
func (l *logLimiter) flush(kind string, c *logCount) {
	l.mu.Lock()
	if l.kinds[kind] != c {
		l.mu.Unlock()

		return
	}

	delete(l.kinds, kind)
	left, since, summary := c.left, c.start, c.summary
	l.mu.Unlock()

	if left > 0 && summary != nil {
		summary(left, since)
	}
}

// stop writes the summaries pending now and ends the timers (Shutdown).
func (l *logLimiter) stop() {
	l.mu.Lock()
	l.closed = true
	pending := make(map[string]*logCount, len(l.kinds))
	for kind, c := range l.kinds {
		if c.timer != nil && c.timer.Stop() {
			pending[kind] = c
		}
	}
	l.mu.Unlock()

	for kind, c := range pending {
		l.flush(kind, c)
	}
}
