package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

func TestListingMemory(t *testing.T) {
	t.Parallel()

	m := newListingMemory(100)

	if err := m.acquire(t.Context(), 101); !errors.Is(err, errListingHuge) {
		t.Fatalf("a request over the whole budget: %v, want errListingHuge", err)
	}

	if err := m.acquire(t.Context(), 60); err != nil {
		t.Fatal(err)
	}

	// grow never waits.
	if err := m.grow(60, 50); !errors.Is(err, errListingHuge) {
		t.Errorf("grow past the budget on its own: %v", err)
	}

	if err := m.grow(0, 50); !errors.Is(err, errListingMemory) {
		t.Errorf("grow past what is left: %v", err)
	}

	// acquire waits for memory to come back, until its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := m.acquire(ctx, 50); !errors.Is(err, errListingMemory) {
		t.Errorf("acquire with no memory left: %v", err)
	}

	got := make(chan error)
	go func() { got <- m.acquire(t.Context(), 50) }()
	time.Sleep(20 * time.Millisecond)
	m.release(60)
	if err := <-got; err != nil {
		t.Errorf("acquire after a release: %v", err)
	}

	// A shared list is paid once, by its first holder, and given back by its last.
	list := &dirList{bytes: 40}
	for range 3 {
		if err := m.hold(t.Context(), list); err != nil {
			t.Fatal(err)
		}
	}

	if m.inUse() != 90 {
		t.Errorf("three holders of one list: %d bytes in use, want 90", m.inUse())
	}

	for range 3 {
		m.drop(list)
	}

	m.release(50)
	if m.inUse() != 0 {
		t.Errorf("%d bytes in use at the end", m.inUse())
	}
}

// A crowd listing one folder at once reads it once.
func TestListingCrowdReadsOnce(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	bigFolder(t, root, "big", 10_000)
	ts := startServer(t, f)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := ftptest.Login(t, ts.addr, "anonymous", "x")
			defer func() { _ = c.Quit() }()

			if n := len(ftptest.List(t, c, "/big")); n != 10_000 {
				t.Errorf("listed %d entries", n)
			}
		})
	}

	wg.Wait()

	ts.srv.dirs.mu.Lock()
	reads := ts.srv.dirs.reads
	ts.srv.dirs.mu.Unlock()

	if reads != 1 {
		t.Errorf("8 listings of one folder read it %d times, want once", reads)
	}

	// Expired listings leave the cache without anyone listing again.
	time.Sleep(DefaultListingCacheTTL + janitorTick + 100*time.Millisecond)
	if held := ts.srv.dirs.sweep(); held != 0 {
		t.Errorf("the cache still holds %d bytes after its listings expired", held)
	}
}

// Readers of different folders under a tight max_listing_memory never wait
// for each other: each is served or refused (450) at once, none waits until
// it gives up.
func TestListingReadersNeverDeadlock(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	for i := range 4 {
		bigFolder(t, root, fmt.Sprintf("d%d", i), 8_000)
	}

	// Room for one folder (about 3.6 MiB) at a time, and a little more.
	f.opts.MaxListingMemory = 5 << 20
	ts := startServer(t, f)
	ts.srv.listingWait = 20 * time.Second

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			c := ts.raw(t)
			c.Login("anonymous", "x")
			conn := c.DialPasv()
			defer conn.Close()

			start := time.Now()
			code, msg := c.Cmd("LIST /d%d", i)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("LIST /d%d answered after %v: readers waited for each other", i, took)
			}

			switch code {
			case 150:
				buf := make([]byte, 64<<10)
				for {
					if _, err := conn.Read(buf); err != nil {
						break
					}
				}

				c.Expect(226)
			case 450:
				if !strings.Contains(msg, "memory") {
					t.Errorf("LIST /d%d: 450 %q", i, msg)
				}
			default:
				t.Errorf("LIST /d%d: %d %q", i, code, msg)
			}
		})
	}

	wg.Wait()
	waitFor(t, func() bool { return ts.srv.listMem.inUse() == 0 })
}
