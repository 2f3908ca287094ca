package server

import (
	"path"
	"sync"
	"time"
)

// Listing cache bounds: a cached listing is served for at most dirCacheTTL,
// and all cached listings together hold at most dirCacheEntries entries.
const (
	dirCacheTTL     = 2 * time.Second
	dirCacheEntries = 200_000
)

// dirCache keeps recent directory listings. A public mirror serves the same
// few folders to every client, and each LIST of a folder otherwise costs a
// stat per entry. A cached listing is used only while the folder's own
// modification time is unchanged (creating, renaming or deleting an entry
// changes it) and for at most dirCacheTTL (what the folder's time does not
// show, such as a file growing, or a change on a shared object store); the
// server also forgets a folder's listing whenever a session changes
// something in it.
type dirCache struct {
	mu      sync.Mutex
	dirs    map[dirKey]*cachedDir
	reading map[dirKey]chan struct{} // folders being read now; closed when read
	entries int
	bytes   int64 // the memory the cached lists hold (dirList.bytes)
	reads   int   // folders read so far (startRead handed out), for tests
	now     func() time.Time
}

// dirKey names a folder as a session sees it: its root (home), its virtual
// path, whether the session sees only what is world-readable (anonymous),
// and whether it is a drop-box session (anonymous with upload_dir, which
// never sees the box or a link into it).
type dirKey struct {
	home, dir     string
	worldReadable bool
	dropBox       bool
}

type cachedDir struct {
	list    *dirList // sorted, never changed once cached
	modTime time.Time
	at      time.Time
}

func newDirCache() *dirCache {
	return &dirCache{dirs: make(map[dirKey]*cachedDir), reading: make(map[dirKey]chan struct{}), now: time.Now}
}

// get returns the cached listing of k if it is still valid for a folder
// whose modification time is now modTime.
func (c *dirCache) get(k dirKey, modTime time.Time) (*dirList, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	d := c.dirs[k]
	if d == nil {
		return nil, false
	}

	if !d.modTime.Equal(modTime) || c.now().Sub(d.at) > dirCacheTTL {
		c.dropLocked(k, d)

		return nil, false
	}

	return d.list, true
}

// put caches list for k, making room by dropping the oldest listings.
func (c *dirCache) put(k dirKey, modTime time.Time, list *dirList) {
	if len(list.entries) > dirCacheEntries {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()

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

	c.dirs[k] = &cachedDir{list: list, modTime: modTime, at: c.now()}
	c.entries += len(list.entries)
	c.bytes += list.bytes
}

// forget drops the listings of the folder that holds name, in every view.
func (c *dirCache) forget(home, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	for _, world := range []bool{false, true} {
		for _, box := range []bool{false, true} {
			k := dirKey{home: home, dir: path.Dir(name), worldReadable: world, dropBox: box}
			if d := c.dirs[k]; d != nil {
				c.dropLocked(k, d)
			}
		}
	}
}

func (c *dirCache) dropLocked(k dirKey, d *cachedDir) {
	delete(c.dirs, k)
	c.entries -= len(d.list.entries)
	c.bytes -= d.list.bytes
}

// startRead returns done when the caller is to read folder k (it must call
// done once it has), or else wait, closed when the session reading k now is
// done with it.
func (c *dirCache) startRead(k dirKey) (wait <-chan struct{}, done func()) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if ch, ok := c.reading[k]; ok {
		return ch, nil
	}

	ch := make(chan struct{})
	c.reading[k] = ch
	c.reads++

	return nil, func() {
		c.mu.Lock()
		delete(c.reading, k)
		c.mu.Unlock()
		close(ch)
	}
}

// sweep drops the listings that expired, so that memory goes back when no
// one lists their folders again; it returns the bytes the cache still holds.
func (c *dirCache) sweep() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()

	now := c.now()
	for k, d := range c.dirs {
		if now.Sub(d.at) > dirCacheTTL {
			c.dropLocked(k, d)
		}
	}

	return c.bytes
}
