package server

import (
	"sync"
	"time"
)

// rootReuse is how long a home folder, once opened, is handed to new
// sessions without opening it again. Opening it (os.OpenRoot: a path walk, a
// descriptor, a close later) was 7% of a short anonymous session's CPU, and
// every idle session held a descriptor for it. Past rootReuse the next
// session opens the folder afresh, so a home replaced on disk (a symlink
// flipped to a new release, a folder recreated) reaches new sessions within
// that time; sessions already open keep the folder they started with.
const rootReuse = time.Second

// rootCache shares the opened root of each home folder among the sessions
// that start within rootReuse of each other. A root is closed when it has
// been replaced (or the server has finished) and its last session let go.
type rootCache struct {
	mu     sync.Mutex
	homes  map[string]*sharedRoot
	closed bool
}

type sharedRoot struct {
	root   Root
	opened time.Time
	refs   int
	stale  bool // no longer handed out; closed when refs reaches zero
}

func newRootCache() *rootCache {
	return &rootCache{homes: make(map[string]*sharedRoot)}
}

// acquire returns the root of home, opening it with open when no fresh one
// is cached, and the function that lets go of it (call it exactly once).
func (c *rootCache) acquire(home string, open func(string) (Root, error)) (Root, func() error, error) {
	now := time.Now()

	c.mu.Lock()
	if sr := c.homes[home]; sr != nil && now.Sub(sr.opened) < rootReuse {
		sr.refs++
		c.mu.Unlock()

		return sr.root, c.releaser(sr), nil
	}
	c.mu.Unlock()

	// Opened without the lock: a slow home folder must not hold up the others.
	root, err := open(home)
	if err != nil {
		return nil, nil, err
	}

	sr := &sharedRoot{root: root, opened: now, refs: 1}

	c.mu.Lock()
	defer c.mu.Unlock()

	if c.closed {
		sr.stale = true

		return root, c.releaser(sr), nil
	}

	// Retire what is old, this home's previous root included: a handful of
	// entries, one per home folder in use.
	var toClose []Root
	for h, old := range c.homes {
		if h == home || now.Sub(old.opened) >= rootReuse {
			delete(c.homes, h)
			old.stale = true
			if old.refs == 0 {
				toClose = append(toClose, old.root)
			}
		}
	}
	c.homes[home] = sr

	for _, r := range toClose {
		_ = r.Close()
	}

	return root, c.releaser(sr), nil
}

// releaser returns the function that lets go of sr once.
func (c *rootCache) releaser(sr *sharedRoot) func() error {
	var once sync.Once

	return func() error {
		var err error

		once.Do(func() {
			c.mu.Lock()
			sr.refs--
			last := sr.refs == 0 && sr.stale
			c.mu.Unlock()

			if last {
				err = sr.root.Close()
			}
		})

		return err
	}
}

// close retires every root: those no session holds are closed now, the
// others when their last session lets go.
func (c *rootCache) close() {
	c.mu.Lock()
	c.closed = true

	var toClose []Root
	for h, sr := range c.homes {
		delete(c.homes, h)
		sr.stale = true
		if sr.refs == 0 {
			toClose = append(toClose, sr.root)
		}
	}
	c.mu.Unlock()

	for _, r := range toClose {
		_ = r.Close()
	}
}
