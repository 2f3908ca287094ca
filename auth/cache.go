package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// Cache sizes: a verified login is remembered this long, for at most this
// many distinct user/password pairs.
const (
	cacheTTL     = 10 * time.Minute
	cacheEntries = 4096
)

// credCache remembers logins that bcrypt verified, so a client that logs in
// again and again (a mirror script, a load balancer's health check, FileZilla
// opening parallel connections) does not pay ~80 ms of CPU each time.
//
// It never holds a password: its keys are HMAC-SHA256 of the user name, the
// password and the user's stored hash, under a secret drawn once per process,
// so a memory dump reveals nothing usable and a changed password (a new
// hash) never matches an old entry. Failures are never cached. Each Accounts
// has its own cache, so a reload, which builds new Accounts, clears it.
type credCache struct {
	secret [32]byte
	mu     sync.Mutex
	ok     map[[32]byte]time.Time // key → expiry
	now    func() time.Time
}

func newCredCache() *credCache {
	c := &credCache{ok: make(map[[32]byte]time.Time), now: time.Now}
	_, _ = rand.Read(c.secret[:]) // never fails (crypto/rand, Go 1.24+)

	return c
}

func (c *credCache) key(user, password, hash string) [32]byte {
	m := hmac.New(sha256.New, c.secret[:])
	for _, part := range []string{user, password, hash} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}

	var k [32]byte
	copy(k[:], m.Sum(nil))

	return k
}

// has reports whether this login was verified within the TTL.
func (c *credCache) has(user, password, hash string) bool {
	k := c.key(user, password, hash)

	c.mu.Lock()
	defer c.mu.Unlock()

	exp, ok := c.ok[k]
	if ok && c.now().After(exp) {
		delete(c.ok, k)

		return false
	}

	return ok
}

// add remembers a verified login, evicting expired entries (or, if none, the
// one expiring soonest) when full.
func (c *credCache) add(user, password, hash string) {
	k := c.key(user, password, hash)

	c.mu.Lock()
	defer c.mu.Unlock()

	now := c.now()
	if _, ok := c.ok[k]; !ok && len(c.ok) >= cacheEntries {
		var soonest [32]byte
		var soonestAt time.Time
		for key, exp := range c.ok {
			if now.After(exp) {
				delete(c.ok, key)

				continue
			}

			if soonestAt.IsZero() || exp.Before(soonestAt) {
				soonest, soonestAt = key, exp
			}
		}

		if len(c.ok) >= cacheEntries {
			delete(c.ok, soonest)
		}
	}

	c.ok[k] = now.Add(cacheTTL)
}
