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
	// Allow are networks never banned ([ban] allow): their failures are not
	// counted, and a ban of their key (an IPv6 prefix they share) does not
	// refuse them.
	Allow []netip.Prefix
}

// maxBanEntries bounds each of the ban list's tables, so an attacker with
// many addresses cannot exhaust memory: when a table is full, expired
// entries go first, then the oldest.
const maxBanEntries = 100_000

// banList counts failed logins per address and bans addresses that fail too
// often. Addresses are counted by their key (addrKey: an IPv6 address by its
// prefix), and checked against the allow list by the address itself. It is
// safe for concurrent use.
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

// setOptions applies new settings (reload); existing bans keep their end,
// but refuse no address the new allow list holds.
func (b *banList) setOptions(opts BanOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()

	b.opts = opts
	if opts.MaxFailures == 0 {
		clear(b.failures)
		clear(b.banned)
	}

	// Forget what the allow list now covers whole, so wharf_bans counts
	// only bans that refuse someone.
	for key := range b.banned {
		if keyAllowed(key, opts.Allow) {
			delete(b.banned, key)
		}
	}

	for key := range b.failures {
		if keyAllowed(key, opts.Allow) {
			delete(b.failures, key)
		}
	}
}

// keyAllowed reports whether every address counted as key (an address, or
// an IPv6 prefix) is in one of the networks allow.
func keyAllowed(key string, allow []netip.Prefix) bool {
	p, err := netip.ParsePrefix(key)
	if err != nil {
		a, err := netip.ParseAddr(key)
		if err != nil {
			return false
		}

		p = netip.PrefixFrom(a, a.BitLen())
	}

	for _, n := range allow {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return true
		}
	}

	return false
}

// isBanned reports whether the client at ip, counted as key, is banned now.
func (b *banList) isBanned(ip, key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()

	until, ok := b.banned[key]
	if !ok || b.allowedLocked(ip) {
		return false
	}

	if b.now().After(until) {
		delete(b.banned, key)

		return false
	}

	return true
}

func (b *banList) allowedLocked(ip string) bool {
	return len(b.opts.Allow) > 0 && inNetworks(parseIP(ip), b.opts.Allow)
}

// fail counts a failed login from the client at ip, counted as key, and
// reports whether that banned key, with the settings that applied. A failure
// from an allowed address is not counted.
func (b *banList) fail(ip, key string) (bool, BanOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if b.opts.MaxFailures <= 0 || b.allowedLocked(ip) {
		return false, b.opts
	}

	now := b.now()
	f := b.failures[key]
	if f == nil || now.Sub(f.first) > b.opts.Window {
		if f == nil && len(b.failures) >= b.max {
			b.evictFailures(now)
		}

		f = &failures{first: now}
		b.failures[key] = f
	}

	f.count++
	if f.count < b.opts.MaxFailures {
		return false, b.opts
	}

	delete(b.failures, key)

	if _, ok := b.banned[key]; !ok && len(b.banned) >= b.max {
		b.evictBans(now)
	}

	b.banned[key] = now.Add(b.opts.Duration)

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
