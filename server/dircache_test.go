package server

import (
	"os"
	"testing"
	"time"
)

func TestDirCache(t *testing.T) {
	t.Parallel()

	c := newDirCache()
	now := time.Now()
	c.now = func() time.Time { return now }
	mtime := now.Add(-time.Hour)
	k := dirKey{home: "/srv/pub", dir: "/iso"}
	list := &dirList{entries: make([]os.FileInfo, 2)}

	c.put(k, mtime, list)
	if got, ok := c.get(k, mtime); !ok || len(got.entries) != 2 {
		t.Fatal("a fresh listing was not served")
	}

	if _, ok := c.get(k, mtime.Add(time.Nanosecond)); ok {
		t.Fatal("a listing was served for a folder that changed")
	}

	c.put(k, mtime, list)
	now = now.Add(dirCacheTTL + time.Millisecond)
	if _, ok := c.get(k, mtime); ok {
		t.Fatal("an expired listing was served")
	}

	c.put(k, mtime, list)
	c.forget("/srv/pub", "/iso/new.iso")
	if _, ok := c.get(k, mtime); ok {
		t.Fatal("a forgotten listing was served")
	}

	if c.entries != 0 {
		t.Fatalf("%d entries counted in an empty cache", c.entries)
	}

	big := &dirList{entries: make([]os.FileInfo, dirCacheEntries/2+1)}
	c.put(dirKey{dir: "/one"}, mtime, big)
	c.put(dirKey{dir: "/two"}, mtime, big)
	if c.entries > dirCacheEntries {
		t.Fatalf("the cache holds %d entries, over its bound", c.entries)
	}

	if _, ok := c.get(dirKey{dir: "/two"}, mtime); !ok {
		t.Fatal("the newest listing was evicted")
	}
}
