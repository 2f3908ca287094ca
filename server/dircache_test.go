package server

import (
	"os"
	"testing"
	"time"
)

// read has c read folder k as a session would: it must be the reader, and
// its list is cached (or not) when done is called.
func read(t *testing.T, c *dirCache, k dirKey, mtime time.Time, list *dirList) {
	t.Helper()

	if got, wait, done := c.lookup(k, mtime); done == nil {
		t.Fatalf("lookup of %v: cached %v, waiting %v, want a read", k, got != nil, wait != nil)
	} else {
		done(list)
	}
}

func TestDirCache(t *testing.T) {
	t.Parallel()

	c := newDirCache(DefaultListingCacheTTL)
	now := time.Now()
	c.now = func() time.Time { return now }
	mtime := now.Add(-time.Hour)
	k := dirKey{home: "/srv/pub", dir: "/iso"}
	list := &dirList{entries: make([]os.FileInfo, 2)}
	cached := func(mtime time.Time) bool {
		t.Helper()

		got, _, done := c.lookup(k, mtime)
		if done != nil {
			done(nil)
		}

		return got != nil
	}

	read(t, c, k, mtime, list)
	if !cached(mtime) {
		t.Fatal("a fresh listing was not served")
	}

	if cached(mtime.Add(time.Nanosecond)) {
		t.Fatal("a listing was served for a folder that changed")
	}

	read(t, c, k, mtime, list)
	now = now.Add(DefaultListingCacheTTL + time.Millisecond)
	if cached(mtime) {
		t.Fatal("an expired listing was served")
	}

	read(t, c, k, mtime, list)
	c.forget(dirKey{home: "/srv/pub", dir: "/iso", worldReadable: true})
	if cached(mtime) {
		t.Fatal("a forgotten listing was served")
	}

	if c.entries != 0 {
		t.Fatalf("%d entries counted in an empty cache", c.entries)
	}

	big := &dirList{entries: make([]os.FileInfo, dirCacheEntries/2+1)}
	read(t, c, dirKey{dir: "/one"}, mtime, big)
	read(t, c, dirKey{dir: "/two"}, mtime, big)
	if c.entries > dirCacheEntries {
		t.Fatalf("the cache holds %d entries, over its bound", c.entries)
	}

	if got, _, _ := c.lookup(dirKey{dir: "/two"}, mtime); got == nil {
		t.Fatal("the newest listing was evicted")
	}
}

// A listing is as old as its read's start: a slow read does not make it
// live longer.
func TestDirCacheAgeCountsFromTheRead(t *testing.T) {
	t.Parallel()

	c := newDirCache(2 * time.Second)
	now := time.Now()
	c.now = func() time.Time { return now }
	k := dirKey{home: "/srv", dir: "/pub"}

	_, _, done := c.lookup(k, time.Time{})
	now = now.Add(1500 * time.Millisecond) // the read takes 1.5 s
	done(&dirList{})

	now = now.Add(600 * time.Millisecond)
	if got, _, _ := c.lookup(k, time.Time{}); got != nil {
		t.Fatal("a listing read 2.1 s ago was served with a TTL of 2 s")
	}
}

// Those who ask while a folder is read get that read's list, cached or not;
// a change made during the read keeps it out of the cache, and those who ask
// after the change start a read of their own.
func TestDirCacheSharesAReadInProgress(t *testing.T) {
	t.Parallel()

	for _, ttl := range []time.Duration{0, time.Minute} {
		c := newDirCache(ttl)
		k := dirKey{home: "/srv", dir: "/pub"}
		list := &dirList{}

		_, _, done := c.lookup(k, time.Time{})
		_, wait, again := c.lookup(k, time.Time{})
		if wait == nil || again != nil {
			t.Fatalf("ttl %v: a second lookup during a read does not wait for it", ttl)
		}

		done(list)
		<-wait.done
		if wait.list != list {
			t.Fatalf("ttl %v: the waiter did not get the list read", ttl)
		}

		got, _, done := c.lookup(k, time.Time{})
		if cached := got != nil; cached != (ttl > 0) {
			t.Errorf("ttl %v: cached = %v", ttl, cached)
		}

		if done != nil {
			done(nil)
		}
	}

	c := newDirCache(time.Minute)
	k := dirKey{home: "/srv", dir: "/pub"}

	_, _, done := c.lookup(k, time.Time{})
	_, before, _ := c.lookup(k, time.Time{})
	c.forget(k) // an upload into the folder ended
	if _, wait, after := c.lookup(k, time.Time{}); wait != nil || after == nil {
		t.Fatal("a lookup after a change waits for a read that started before it")
	} else {
		after(&dirList{entries: make([]os.FileInfo, 1)})
	}

	done(&dirList{})
	<-before.done
	if before.list == nil {
		t.Error("a waiter that came before the change got nothing")
	}

	if got, _, _ := c.lookup(k, time.Time{}); got == nil || len(got.entries) != 1 {
		t.Error("the read that the change overtook replaced the newer one in the cache")
	}
}
