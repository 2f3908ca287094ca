package server

import (
	"fmt"
	"hash/maphash"
	"net"
	"net/textproto"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func TestAccountThrottleTurns(t *testing.T) {
	t.Parallel()

	tick := time.Second
	th := newAccountThrottle(tick)
	now := time.Unix(1_000_000, 0)
	th.now = func() time.Time { return now }

	reserve := func(name, key string, maxWait time.Duration) (time.Duration, bool) {
		t.Helper()

		return th.reserve(name, key, maxWait)
	}

	t.Run("checks of one name from untrusted addresses are spaced", func(t *testing.T) {
		for i, key := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
			if wait, ok := reserve("alice", key, time.Minute); !ok || wait != time.Duration(i)*tick {
				t.Fatalf("login %d waits %v (ok %v), want %v", i+1, wait, ok, time.Duration(i)*tick)
			}
		}
	})

	t.Run("a login whose turn is too far is refused and takes no turn", func(t *testing.T) {
		if wait, ok := reserve("alice", "192.0.2.4", 2*tick); ok || wait != 3*tick {
			t.Fatalf("got wait %v ok %v, want refused with a wait of %v", wait, ok, 3*tick)
		}

		if wait, ok := reserve("alice", "192.0.2.4", time.Minute); !ok || wait != 3*tick {
			t.Fatalf("got wait %v ok %v, want the turn the refused login did not take, %v", wait, ok, 3*tick)
		}
	})

	t.Run("another name has its own turns, known or not", func(t *testing.T) {
		if wait, ok := reserve("no-such-user", "192.0.2.1", 0); !ok || wait != 0 {
			t.Fatalf("got %v %v, want no wait", wait, ok)
		}
	})

	t.Run("an address that logged in to the account skips the queue", func(t *testing.T) {
		th.succeeded("alice", "198.51.100.7")
		if wait, ok := reserve("alice", "198.51.100.7", 0); !ok || wait != 0 {
			t.Fatalf("trusted address: wait %v ok %v, want none", wait, ok)
		}

		if _, ok := reserve("bob", "198.51.100.7", 0); !ok {
			t.Fatal("first login of bob refused")
		}

		if wait, _ := reserve("bob", "198.51.100.7", time.Minute); wait == 0 {
			t.Fatal("trusted for alice, the address skips bob's queue too")
		}
	})

	t.Run("trust ends after trustFor", func(t *testing.T) {
		now = now.Add(trustFor + time.Hour)
		reserve("alice", "192.0.2.9", time.Minute) // takes the turn now
		if wait, _ := reserve("alice", "198.51.100.7", time.Minute); wait == 0 {
			t.Fatal("still trusted after trustFor")
		}
	})

	t.Run("turns passed are forgotten: the table is bounded", func(t *testing.T) {
		th.names = 100
		for i := range 1000 {
			reserve(fmt.Sprintf("guess-%d", i), "192.0.2.1", time.Minute)
			now = now.Add(tick / 10)
			if len(th.next) > th.names {
				t.Fatalf("%d names held, bound %d", len(th.next), th.names)
			}
		}
	})

	t.Run("a full table refuses untrusted logins of new names", func(t *testing.T) {
		for i := range th.names {
			reserve(fmt.Sprintf("flood-%d", i), "192.0.2.1", time.Minute)
		}

		if _, ok := reserve("one-more", "192.0.2.1", time.Minute); ok {
			t.Fatal("a login was let through a full table")
		}

	})

	t.Run("remembered addresses are bounded per account", func(t *testing.T) {
		for i := range 3 * trustedPerAccount {
			th.succeeded("carol", fmt.Sprintf("203.0.113.%d", i))
		}

		for _, addrs := range th.trusted {
			if len(addrs) > trustedPerAccount {
				t.Fatalf("%d addresses remembered for one account, bound %d", len(addrs), trustedPerAccount)
			}
		}
	})
}

// TestAccountThrottleUnderRotatingGuesses: 8 guessers at a time, each
// attempt from the next of 38 addresses, against a known account, and 8 more
// against an unknown name. Each name gets at most 3 password checks a second,
// while the account's owner, from the address she logged in from before,
// gets in within 2 s.
func TestAccountThrottleUnderRotatingGuesses(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.opts.MaxClientsPerIP = 50
	ts := startServer(t, f)

	owner := from("127.0.0.40")
	ftptest.Dial(t, ts.addr, owner).Login("alice", testPassword)

	// The turns the throttle gives, when each check may start: what it
	// promises. The checks' log lines are written when each ends, which
	// bcrypt slots and a loaded machine bunch together.
	var turnsMu sync.Mutex
	turns := map[string][]time.Time{}
	ts.srv.throttle.mu.Lock()
	ts.srv.throttle.turns = func(name string, at time.Time) {
		turnsMu.Lock()
		defer turnsMu.Unlock()

		turns[name] = append(turns[name], at)
	}
	ts.srv.throttle.mu.Unlock()

	const flood = 2 * time.Second
	start := time.Now()
	stop := start.Add(flood)

	var mu sync.Mutex
	replies := map[int]int{}
	var errs []error

	var wg sync.WaitGroup
	for g := range 16 {
		name := []string{"alice", "mallory"}[g%2]
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				ip := fmt.Sprintf("127.0.0.%d", 2+(g*7+i)%38) // .2 to .39
				code, err := guess(ts.addr, ip, name, stop)
				if time.Now().After(stop) {
					return // a guess still queued at the end gives up
				}

				mu.Lock()
				replies[code]++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}

	// The owner logs in again, from the address she used before, while the
	// guesses run.
	time.Sleep(time.Second)
	t0 := time.Now()
	ftptest.Dial(t, ts.addr, owner).Login("alice", testPassword)
	ownerTook := time.Since(t0)

	wg.Wait()

	if len(errs) > 0 {
		t.Fatalf("%d guesses failed, first: %v", len(errs), errs[0])
	}

	if ownerTook > 2*time.Second {
		t.Errorf("the owner's login took %v during the flood, want at most 2s", ownerTook)
	}

	for _, name := range []string{"alice", "mallory"} {
		var at []time.Time
		for _, e := range ts.logs.FilterMessage("login failed").All() {
			if e.ContextMap()["user"] == name && !e.Time.After(stop) {
				at = append(at, e.Time)
			}
		}

		// Checks start at least 1/3 s apart from the flood's start to its
		// end: at most 1 + 3 a second in all (counted until the end: checks
		// still queued then are left out).
		limit := 1 + int(3*flood.Seconds())

		turnsMu.Lock()
		given := slices.Clone(turns[name])
		turnsMu.Unlock()

		closest := time.Duration(-1)
		for i := 1; i < len(given); i++ {
			if gap := given[i].Sub(given[i-1]); closest < 0 || gap < closest {
				closest = gap
			}
		}

		t.Logf("%s: %d password checks in %v; %d turns given, the closest %v apart; replies %v; owner in %v",
			name, len(at), flood, len(given), closest, replies, ownerTook.Round(time.Millisecond))

		if len(at) > limit {
			t.Errorf("%s: %d checks in %v (bound %d); want at most 3 a second", name, len(at), flood, limit)
		}

		if closest >= 0 && closest < accountCheckInterval {
			t.Errorf("%s: two turns %v apart, want at least %v", name, closest, accountCheckInterval)
		}

		if len(at) < 3 {
			t.Errorf("%s: only %d checks: the guessers were not served at all", name, len(at))
		}
	}
}

// guess connects from ip, sends USER name and a wrong password, and returns
// the reply to PASS (530 checked, 421 refused), waiting for it until deadline.
func guess(addr, ip, name string, deadline time.Time) (int, error) {
	conn, err := (&net.Dialer{LocalAddr: from(ip), Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()

	_ = conn.SetDeadline(deadline)
	tc := textproto.NewConn(conn)

	if _, _, err := tc.ReadResponse(220); err != nil {
		return 0, fmt.Errorf("greeting from %s: %w", ip, err)
	}

	if err := tc.PrintfLine("USER %s", name); err != nil {
		return 0, err
	}

	if _, _, err := tc.ReadResponse(331); err != nil {
		return 0, err
	}

	if err := tc.PrintfLine("PASS wrong"); err != nil {
		return 0, err
	}

	code, msg, err := tc.ReadResponse(0)
	if err != nil {
		return 0, err
	}

	if code != 530 && code != 421 {
		return code, fmt.Errorf("PASS from %s: %d %s", ip, code, msg)
	}

	return code, nil
}

// TestAccountThrottleRefusesLongWaits: a login whose turn is further away
// than it may wait is refused at once with 421, the same for a known and an
// unknown name; the owner's known address and anonymous logins are not held.
func TestAccountThrottleRefusesLongWaits(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.anon = t.TempDir()
	ts := startServer(t, f)

	owner := from("127.0.0.40")
	ftptest.Dial(t, ts.addr, owner).Login("alice", testPassword)

	// The turns the throttle gives, when each check may start: what it
	// promises. The checks' log lines are written when each ends, which
	// bcrypt slots and a loaded machine bunch together.
	var turnsMu sync.Mutex
	turns := map[string][]time.Time{}
	ts.srv.throttle.mu.Lock()
	ts.srv.throttle.turns = func(name string, at time.Time) {
		turnsMu.Lock()
		defer turnsMu.Unlock()

		turns[name] = append(turns[name], at)
	}
	ts.srv.throttle.mu.Unlock()

	// Fill the queues of three names 40 s deep: more than a login may wait.
	for _, name := range []string{"alice", "mallory", "anonymous"} {
		for range 120 {
			ts.srv.throttle.reserve(name, "192.0.2.1", time.Hour)
		}
	}

	for _, name := range []string{"alice", "mallory"} {
		t.Run("a login as "+name+" from a new address is refused", func(t *testing.T) {
			c := ftptest.Dial(t, ts.addr, from("127.0.0.2"))
			c.Must(331, "USER %s", name)

			start := time.Now()
			if msg := c.Must(421, "PASS wrong"); msg != "Too many logins in progress, try again later." {
				t.Errorf("refusal says %q", msg)
			}

			if took := time.Since(start); took > time.Second {
				t.Errorf("the refusal took %v: it should not wait", took)
			}
		})
	}

	t.Run("the owner from her address gets in", func(t *testing.T) {
		ftptest.Dial(t, ts.addr, owner).Login("alice", testPassword)
	})

	t.Run("anonymous logins are not throttled", func(t *testing.T) {
		ftptest.Dial(t, ts.addr, from("127.0.0.3")).Login("anonymous", "guest@")
	})

	if n := ts.logs.FilterMessage("login refused").FilterField(zap.String("reason", "account throttled")).Len(); n != 2 {
		t.Errorf("%d throttled logins logged, want 2", n)
	}
}

// TestAccountThrottleLeavesTheCheckItsTime: a login is given a turn only if
// its password can still be checked before login_timeout closes the session.
// A turn at the very end of the login's time would make it wait all that
// time for nothing: login_timeout closes the session before the check ends.
func TestAccountThrottleLeavesTheCheckItsTime(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.opts.LoginTimeout = 2 * time.Second
	ts := startServer(t, f)

	// queueUntil makes alice's next turn from an untrusted address come at at.
	queueUntil := func(at time.Time) {
		th := ts.srv.throttle
		th.mu.Lock()
		defer th.mu.Unlock()

		th.next[maphash.String(th.seed, "alice")] = at
	}

	t.Run("a turn at the end of the login's time is refused at once", func(t *testing.T) {
		connected := time.Now()
		c := ftptest.Dial(t, ts.addr, from("127.0.0.2"))
		c.Must(331, "USER alice")
		queueUntil(connected.Add(f.opts.LoginTimeout - 50*time.Millisecond))

		start := time.Now()
		code, msg := c.Cmd("PASS %s", testPassword)
		took := time.Since(start)

		if code != 421 || msg != "Too many logins in progress, try again later." || took > 500*time.Millisecond {
			t.Errorf("got %d %q after %v, want the throttle's 421 at once", code, msg, took.Round(time.Millisecond))
		}
	})

	t.Run("a turn that leaves the check its time waits and gets in", func(t *testing.T) {
		connected := time.Now()
		c := ftptest.Dial(t, ts.addr, from("127.0.0.3"))
		c.Must(331, "USER alice")
		turn := connected.Add(f.opts.LoginTimeout - checkRoom - 300*time.Millisecond)
		queueUntil(turn)

		c.Must(230, "PASS %s", testPassword)
		if early := time.Until(turn); early > 0 {
			t.Errorf("got in %v before its turn", early)
		}
	})

	t.Run("a login with less than that left is checked when its turn is now", func(t *testing.T) {
		connected := time.Now()
		c := ftptest.Dial(t, ts.addr, from("127.0.0.4"))
		time.Sleep(time.Until(connected.Add(f.opts.LoginTimeout - checkRoom/2)))
		queueUntil(time.Now().Add(-time.Second))

		c.Must(331, "USER alice")
		c.Must(230, "PASS %s", testPassword)
	})

	if n := ts.logs.FilterMessage("login failed").Len(); n != 0 {
		t.Errorf("%d failed logins logged, want none", n)
	}
}
