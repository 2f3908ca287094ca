package server

import (
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// Bounds of the account throttle (see accountThrottle).
const (
	// accountCheckInterval spaces the password checks of one account name
	// from untrusted addresses: at most 3 a second.
	accountCheckInterval = time.Second / 3
	// maxAccountWait is the longest a login waits for its account's turn;
	// login_timeout shortens it to what is left of the login's time, less
	// checkRoom.
	maxAccountWait = 30 * time.Second
	// checkRoom is the time a login keeps, after its turn, for its password
	// check: a wait for a bcrypt slot (auth's busyWait, 100 ms) and the
	// comparison (some 60 ms at cost 10 on a current core, four times that
	// at cost 12).
	checkRoom = 500 * time.Millisecond
	// maxThrottledNames bounds the names with a turn in the future; past it,
	// logins from untrusted addresses are refused until turns pass.
	maxThrottledNames = 1 << 16
	// trustedPerAccount, trustFor and maxTrustedAccounts bound the addresses
	// remembered as having logged in to an account.
	trustedPerAccount  = 8
	trustFor           = 30 * 24 * time.Hour
	maxTrustedAccounts = 10_000
)

// accountThrottle slows password guessing spread over many addresses, which
// per-address bans cannot see: the password checks of one account name from
// addresses that have not logged in to it start at least interval apart,
// whichever addresses they come from. A login waits for its turn (a queue
// per name, in the order logins arrive); one whose turn is further away than
// it may wait is refused without a check. Known and unknown names are
// throttled alike, so the delays tell nothing about which names exist.
//
// A stranger must not lock the owner out: an address (its key, see addrKey)
// that logged in to the account within trustFor skips the queue. Per-address
// bans still apply to it.
//
// Memory is bounded: names are kept as 64-bit hashes, only while their next
// turn is in the future (at most maxThrottledNames at once), and at most
// trustedPerAccount addresses of at most maxTrustedAccounts accounts are
// remembered, the most recent ones. They live in memory only: a restart
// forgets them.
type accountThrottle struct {
	interval time.Duration
	seed     maphash.Seed
	now      func() time.Time

	mu      sync.Mutex
	next    map[uint64]time.Time            // name → when its next untrusted check may start
	trusted map[uint64][]trustedAddr        // name → addresses that logged in to it, most recent first
	names   int                             // maxThrottledNames; smaller in tests
	turns   func(name string, at time.Time) // tests: each turn given, when it starts (under mu)
}

type trustedAddr struct {
	key string
	at  time.Time
}

func newAccountThrottle(interval time.Duration) *accountThrottle {
	return &accountThrottle{
		interval: interval,
		seed:     maphash.MakeSeed(),
		now:      time.Now,
		next:     make(map[uint64]time.Time),
		trusted:  make(map[uint64][]trustedAddr),
		names:    maxThrottledNames,
	}
}

// reserve takes the next turn of name for a login from key, if it comes
// within maxWait. It returns how long to wait before checking the password
// (0 for a trusted address), or false, and how long the wait would have
// been, when the login must be refused.
func (t *accountThrottle) reserve(name, key string, maxWait time.Duration) (time.Duration, bool) {
	h := maphash.String(t.seed, name)

	t.mu.Lock()
	defer t.mu.Unlock()

	now := t.now()
	if t.isTrusted(h, key, now) {
		return 0, true
	}

	slot, queued := t.next[h]
	if !queued || slot.Before(now) {
		slot = now
	}

	wait := slot.Sub(now)
	if wait > maxWait {
		return wait, false
	}

	if !queued && len(t.next) >= t.names {
		t.sweep(now)
		if len(t.next) >= t.names {
			return wait, false
		}
	}

	t.next[h] = slot.Add(t.interval)
	if t.turns != nil {
		t.turns(name, slot)
	}

	return wait, true
}

// sweep forgets the names whose turn has come.
func (t *accountThrottle) sweep(now time.Time) {
	for h, next := range t.next {
		if !next.After(now) {
			delete(t.next, h)
		}
	}
}

// isTrusted reports whether key logged in to the name hashed h within trustFor.
func (t *accountThrottle) isTrusted(h uint64, key string, now time.Time) bool {
	for _, a := range t.trusted[h] {
		if a.key == key {
			return now.Sub(a.at) <= trustFor
		}
	}

	return false
}

// succeeded remembers that key logged in to name.
func (t *accountThrottle) succeeded(name, key string) {
	h := maphash.String(t.seed, name)

	t.mu.Lock()
	defer t.mu.Unlock()

	now := t.now()
	addrs, known := t.trusted[h]
	if !known && len(t.trusted) >= maxTrustedAccounts {
		t.forgetOldestAccount()
	}

	addrs = slices.DeleteFunc(addrs, func(a trustedAddr) bool { return a.key == key || now.Sub(a.at) > trustFor })
	addrs = slices.Insert(addrs, 0, trustedAddr{key: key, at: now})
	if len(addrs) > trustedPerAccount {
		addrs = addrs[:trustedPerAccount]
	}

	t.trusted[h] = addrs
}

// forgetOldestAccount forgets the account whose last login is the oldest.
func (t *accountThrottle) forgetOldestAccount() {
	var oldest uint64
	var oldestAt time.Time
	found := false

	for h, addrs := range t.trusted {
		if len(addrs) == 0 || !found || addrs[0].at.Before(oldestAt) {
			oldest, found = h, true
			if len(addrs) == 0 {
				break
			}

			oldestAt = addrs[0].at
		}
	}

	if found {
		delete(t.trusted, oldest)
	}
}
