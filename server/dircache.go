package server

import (
	"sync"
	"time"
)

// Listing cache bounds: a cached listing is served for at most
// DefaultListingCacheTTL unless [listing] cache_ttl says otherwise, and all
// cached listings together hold at most dirCacheEntries entries.
const (
	DefaultListingCacheTTL = 2 * time.Second
	dirCacheEntries        = 200_000
)

// dirCache keeps recent directory listings, and makes a crowd asking for one
// folder at once read it once. A public mirror serves the same few folders to
// every client, and each LIST of a folder otherwise costs a stat per entry on
// disk, or a request per 1,000 entries on an object store.
//
// A cached listing is used only while the folder's own modification time is
// unchanged (creating, renaming or deleting an entry changes it on disk) and
// for at most ttl from the moment its read started: that bounds what the
// folder's time does not show, such as a file growing, or any change made
// on a shared object store by another wharf (a prefix has no time). The
// server also forgets a folder's listing whenever a session changes something
// in it, and a read that such a change overtook is not cached.
type dirCache struct {
	ttl     time.Duration // 0: listings are shared by the readers of one read, never kept
	mu      sync.Mutex
	dirs    map[dirKey]*cachedDir
	reading map[dirKey]*dirRead // folders being read now
	entries int
	bytes   int64 // the memory the cached lists hold (dirList.bytes)
	reads   int   // folders read so far (lookup made a reader), for tests
	now     func() time.Time
}

// dirKey names a folder's listing. On disk it is a folder as a session sees
// it: its root (home), its virtual path, whether the session sees only what
// is world-readable (anonymous), and whether it is a drop-box session
// (anonymous with upload_dir, which never sees the box or a link into it).
// On a root that names its listings itself (ListingKeyer), store is that name
// and the other fields are empty: every home and view that reaches the
// folder shares one listing.
type dirKey struct {
	store         string
	home, dir     string
	worldReadable bool
	dropBox       bool
	pins          string // the snapshot copies the session keeps (vfs.Pins.Key), "" for none
}

type cachedDir struct {
	list    *dirList // sorted, never changed once cached
	modTime time.Time
	at      time.Time // when its read started
}

// dirRead is a folder being read by one session while others wait for it.
type dirRead struct {
	started time.Time
	done    chan struct{} // closed when the read ended
	list    *dirList      // what it read, set before done closes; nil if it failed
	stale   bool          // a change to the folder was made during the read: not cached
	waiters int           // sessions that waited for it, for tests
}

func newDirCache(ttl time.Duration) *dirCache {
	return &dirCache{ttl: ttl, dirs: make(map[dirKey]*cachedDir), reading: make(map[dirKey]*dirRead), now: time.Now}
}

// getLocked returns the cached listing of k if it is still valid for a
// folder whose modification time is now modTime.
func (c *dirCache) getLocked(k dirKey, modTime time.Time) (*dirList, bool) {
	d := c.dirs[k]
	if d == nil {
		return nil, false
	}

	if !d.modTime.Equal(modTime) || c.now().Sub(d.at) > c.ttl {
		c.dropLocked(k, d)

		return nil, false
	}

	return d.list, true
}

// putLocked caches list for k, read from at on, making room by dropping the
// oldest listings.
func (c *dirCache) putLocked(k dirKey, modTime, at time.Time, list *dirList) {
	if c.ttl <= 0 || len(list.entries) > dirCacheEntries {
		return
	}

	if old := c.dirs[k]; old != nil {
		c.dropLocked(k, old)
	}

	for c.entries+len(list.entries) > dirCacheEntries {
		var oldestKey dirKey
		var oldest *cachedDir
		for key, d := range c.dirs {
			if oldest == nil || d.at.Before(oldest.at) {
				oldestKey, oldest = key, d
			}
		}

		c.dropLocked(oldestKey, oldest)
	}

	c.dirs[k] = &cachedDir{list: list, modTime: modTime, at: at}
	c.entries += len(list.entries)
	c.bytes += list.bytes
}

// forget drops the listing of folder k in every view, after a change made
// in it. A read of it in progress may have passed the change: its list is
// not cached, and later listings start a read of their own instead of
// waiting for it.
func (c *dirCache) forget(k dirKey) {
	c.mu.Lock()
	defer c.mu.Unlock()

	for _, world := range []bool{false, true} {
		for _, box := range []bool{false, true} {
			k.worldReadable, k.dropBox = world, box
			if d := c.dirs[k]; d != nil {
				c.dropLocked(k, d)
			}

			if r := c.reading[k]; r != nil {
				r.stale = true
				delete(c.reading, k)
			}
		}
	}
}

func (c *dirCache) dropLocked(k dirKey, d *cachedDir) {
	delete(c.dirs, k)
	c.entries -= len(d.list.entries)
	c.bytes -= d.list.bytes
}

// lookup finds the listing of folder k, whose modification time is now
// modTime: the cached list if it is still valid (the caller holds it, see
// listingMemory.hold); else the read of k in progress to wait for (then
// take its list, or look again if it failed); else done, when the caller is
// to read k: it must call done once, with the list it read (held for
// itself), or nil if the read failed.
func (c *dirCache) lookup(k dirKey, modTime time.Time) (list *dirList, wait *dirRead, done func(*dirList)) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if list, ok := c.getLocked(k, modTime); ok {
		return list, nil, nil
	}

	if r, ok := c.reading[k]; ok {
		r.waiters++

		return nil, r, nil
	}

	r := &dirRead{started: c.now(), done: make(chan struct{})}
	c.reading[k] = r
	c.reads++

	return nil, nil, func(list *dirList) {
		c.mu.Lock()
		defer c.mu.Unlock()

		if c.reading[k] == r {
			delete(c.reading, k)
		}

		if list != nil && !r.stale {
			c.putLocked(k, modTime, r.started, list)
		}

		r.list = list
		close(r.done)
	}
}

// sweep drops the listings that expired, so that memory goes back when no
// one lists their folders again; it returns the bytes the cache still holds.
func (c *dirCache) sweep() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()

	now := c.now()
	for k, d := range c.dirs {
		if now.Sub(d.at) > c.ttl {
			c.dropLocked(k, d)
		}
	}

	return c.bytes
}
