package sums

import (
	"container/list"
	"sync"
	"time"
)

// Key names one version of a checksum file: its identity on the storage
// (device and inode on disk) with its modification time and size, so that a
// file rewritten in place or replaced is parsed again.
type Key struct {
	ID      string
	ModTime time.Time
	Size    int64
}

// Cache keeps parsed checksum files, the most recently used first, within
// a bound on the memory they hold (File.Cost). A file that alone costs more
// than the bound is not kept. Sessions asking for one file at once parse it
// once.
type Cache struct {
	max int64

	mu      sync.Mutex
	cost    int64
	order   *list.List // of *cached, most recent first
	files   map[Key]*list.Element
	loading map[Key]*load
}

type cached struct {
	key  Key
	file *File
}

type load struct {
	done chan struct{}
	file *File
	err  error
}

// NewCache makes a cache holding at most maxCost (File.Cost) of parsed files.
func NewCache(maxCost int64) *Cache {
	return &Cache{max: maxCost, order: list.New(), files: make(map[Key]*list.Element), loading: make(map[Key]*load)}
}

// Get returns the parsed file of key, from the cache or by calling parse
// (once, however many ask at the same time).
func (c *Cache) Get(key Key, parse func() (*File, error)) (*File, error) {
	c.mu.Lock()
	if e, ok := c.files[key]; ok {
		c.order.MoveToFront(e)
		f := e.Value.(*cached).file
		c.mu.Unlock()

		return f, nil
	}

	if l, ok := c.loading[key]; ok {
		c.mu.Unlock()
		<-l.done

		return l.file, l.err
	}

	l := &load{done: make(chan struct{})}
	c.loading[key] = l
	c.mu.Unlock()

	l.file, l.err = parse()

	c.mu.Lock()
	delete(c.loading, key)
	if l.err == nil && l.file.cost <= c.max {
		c.files[key] = c.order.PushFront(&cached{key: key, file: l.file})
		c.cost += l.file.cost
		for c.cost > c.max {
			last := c.order.Back()
			old := last.Value.(*cached)
			c.order.Remove(last)
			delete(c.files, old.key)
			c.cost -= old.file.cost
		}
	}
	c.mu.Unlock()
	close(l.done)

	return l.file, l.err
}

// Len is how many parsed files the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()

	return len(c.files)
}
