package server

import (
	"sync"
	"time"
)

// rootReuse is how long a home folder, once opened, is handed to new
// sessions without opening it again. Opening it (os.OpenRoot: a path walk, a
// descriptor, a close later) was 7% of a short anonymous session's CPU, and
// every idle session held a descriptor for it. Past rootReuse the root is
// retired: the next session opens the folder afresh, so a home replaced on
// disk (a symlink flipped to a new release, a folder recreated) reaches new
// sessions within that time, and a root no session holds is closed then, so
// an idle server keeps no folder open (nothing stops an unmount). Sessions
// already open keep the folder they started with.
const rootReuse = time.Second

// rootCache shares the opened root of each home folder among the sessions
// that start within rootReuse of its opening. A root is closed once it is
// retired and its last session has let go.
type rootCache struct {
	reuse  time.Duration // rootReuse, shorter in tests
	mu     sync.Mutex
	homes  map[string]*sharedRoot
	closed bool
}

type sharedRoot struct {
	home  string
	root  Root
	refs  int
	stale bool // retired: no longer handed out, closed when refs reaches zero
}

func newRootCache(reuse time.Duration) *rootCache {
	return &rootCache{reuse: reuse, homes: make(map[string]*sharedRoot)}
}

// acquire returns the root of home, opening it with open when no fresh one
// is cached, and the function that lets go of it (call it exactly once).
func (c *rootCache) acquire(home string, open func(string) (Root, error)) (Root, func() error, error) {
	c.mu.Lock()
	if sr := c.homes[home]; sr != nil {
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

	sr := &sharedRoot{home: home, root: root, refs: 1}

	c.mu.Lock()
	defer c.mu.Unlock()

	if c.closed {
		sr.stale = true

		return root, c.releaser(sr), nil
	}

	// Another session may have opened the same home meanwhile: the newer
	// root replaces it.
	if old := c.homes[home]; old != nil {
		c.retireLocked(old)
	}

	c.homes[home] = sr
	time.AfterFunc(c.reuse, func() {
		c.mu.Lock()
		defer c.mu.Unlock()

		c.retireLocked(sr)
	})

	return root, c.releaser(sr), nil
}

// retireLocked stops handing sr out and closes it if no session holds it.
// c.mu is held.
func (c *rootCache) retireLocked(sr *sharedRoot) {
	if sr.stale {
		return
	}

	sr.stale = true
	if c.homes[sr.home] == sr {
		delete(c.homes, sr.home)
	}

	if sr.refs == 0 {
		_ = sr.root.Close()
	}
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
	defer c.mu.Unlock()

	c.closed = true
	for _, sr := range c.homes {
		c.retireLocked(sr)
	}
}
