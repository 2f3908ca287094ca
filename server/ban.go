package server

import (
	"net/netip"
	"sync"
	"time"
)

// BanOptions configure the brute-force defence: an address with MaxFailures
// failed logins within Window is refused at connect for Duration.
// MaxFailures 0 turns it off.
type BanOptions struct {
	MaxFailures      int
	Window, Duration time.Duration
	// Allow are networks never banned ([ban] allow).
	Allow []netip.Prefix
}

// maxBanEntries bounds each of the ban list's tables, so an attacker with
// many addresses cannot exhaust memory: when a table is full, expired
// entries go first, then the oldest.
const maxBanEntries = 100_000

// banList counts failed logins per address and bans addresses that fail too
// often. It is safe for concurrent use.
type banList struct {
	mu       sync.Mutex
	opts     BanOptions
	failures map[string]*failures
	banned   map[string]time.Time // address → end of its ban
	max      int
	now      func() time.Time
}

type failures struct {
	count int
	first time.Time
}

func newBanList(opts BanOptions) *banList {
	return &banList{
		opts:     opts,
		failures: make(map[string]*failures),
		banned:   make(map[string]time.Time),
		max:      maxBanEntries,
		now:      time.Now,
	}
}

// setOptions applies new settings (reload); existing bans keep their end.
func (b *banList) setOptions(opts BanOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()

	b.opts = opts
	if opts.MaxFailures == 0 {
		clear(b.failures)
		clear(b.banned)
	}
}

// isBanned reports whether ip is banned now.
func (b *banList) isBanned(ip string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()

	until, ok := b.banned[ip]
	if !ok {
		return false
	}

	if b.now().After(until) {
		delete(b.banned, ip)

		return false
	}

	return true
}

// fail counts a failed login from ip and reports whether that banned it,
// with the settings that applied.
func (b *banList) fail(ip string) (bool, BanOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if b.opts.MaxFailures <= 0 {
		return false, b.opts
	}

	now := b.now()
	f := b.failures[ip]
	if f == nil || now.Sub(f.first) > b.opts.Window {
		if f == nil && len(b.failures) >= b.max {
			b.evictFailures(now)
		}

		f = &failures{first: now}
		b.failures[ip] = f
	}

	f.count++
	if f.count < b.opts.MaxFailures {
		return false, b.opts
	}

	delete(b.failures, ip)

	if _, ok := b.banned[ip]; !ok && len(b.banned) >= b.max {
		b.evictBans(now)
	}

	b.banned[ip] = now.Add(b.opts.Duration)

	return true, b.opts
}

// count is the number of addresses banned now.
func (b *banList) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()

	now := b.now()
	n := 0
	for _, until := range b.banned {
		if now.Before(until) {
			n++
		}
	}

	return n
}

// evictFailures drops expired failure records, or the oldest one if none expired.
func (b *banList) evictFailures(now time.Time) {
	var oldest string
	var oldestAt time.Time

	for ip, f := range b.failures {
		if now.Sub(f.first) > b.opts.Window {
			delete(b.failures, ip)

			continue
		}

		if oldest == "" || f.first.Before(oldestAt) {
			oldest, oldestAt = ip, f.first
		}
	}

	if len(b.failures) >= b.max && oldest != "" {
		delete(b.failures, oldest)
	}
}

// evictBans drops expired bans, or the one ending soonest if none expired.
func (b *banList) evictBans(now time.Time) {
	var soonest string
	var soonestAt time.Time

	for ip, until := range b.banned {
		if now.After(until) {
			delete(b.banned, ip)

			continue
		}

		if soonest == "" || until.Before(soonestAt) {
			soonest, soonestAt = ip, until
		}
	}

	if len(b.banned) >= b.max && soonest != "" {
		delete(b.banned, soonest)
	}
}
