package server

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestBanList(t *testing.T) {
	t.Parallel()

	b := newBanList(BanOptions{MaxFailures: 3, Window: time.Minute, Duration: time.Hour})
	now := time.Now()
	b.now = func() time.Time { return now }

	t.Run("failures spread over more than the window do not ban", func(t *testing.T) {
		b.fail("192.0.2.1", "192.0.2.1")
		b.fail("192.0.2.1", "192.0.2.1")
		now = now.Add(2 * time.Minute)
		if banned, _ := b.fail("192.0.2.1", "192.0.2.1"); banned || b.isBanned("192.0.2.1", "192.0.2.1") {
			t.Fatal("banned for failures outside one window")
		}
	})

	t.Run("max_failures within the window ban, for the duration", func(t *testing.T) {
		b.fail("192.0.2.2", "192.0.2.2")
		b.fail("192.0.2.2", "192.0.2.2")
		if banned, _ := b.fail("192.0.2.2", "192.0.2.2"); !banned || !b.isBanned("192.0.2.2", "192.0.2.2") || b.count() != 1 {
			t.Fatal("not banned after max_failures")
		}

		if b.isBanned("192.0.2.3", "192.0.2.3") {
			t.Fatal("another address is banned too")
		}

		now = now.Add(time.Hour + time.Second)
		if b.isBanned("192.0.2.2", "192.0.2.2") || b.count() != 0 {
			t.Fatal("still banned after the duration")
		}
	})

	t.Run("the tables stay bounded whatever the number of addresses", func(t *testing.T) {
		b.max = 100
		for i := range 1000 {
			ip := fmt.Sprintf("198.51.%d.%d", i/256, i%256)
			for range 3 {
				b.fail(ip, ip)
			}
			b.fail("203.0.113."+fmt.Sprint(i%256), "203.0.113."+fmt.Sprint(i%256))
		}

		if len(b.failures) > b.max || len(b.banned) > b.max {
			t.Fatalf("tables grew to %d failures and %d bans, bound %d", len(b.failures), len(b.banned), b.max)
		}
	})

	t.Run("max_failures 0 turns bans off", func(t *testing.T) {
		b.setOptions(BanOptions{})
		for range 10 {
			if banned, _ := b.fail("192.0.2.9", "192.0.2.9"); banned {
				t.Fatal("banned with bans off")
			}
		}

		if b.count() != 0 {
			t.Fatal("bans kept after turning them off")
		}
	})
}

// TestBanListAllowAndPrefix: the ban list counts by key (an IPv6 client by
// its prefix) and never bans an allowed address, not even through the key it
// shares with others.
func TestBanListAllowAndPrefix(t *testing.T) {
	t.Parallel()

	allow := []netip.Prefix{netip.MustParsePrefix("2001:db8::7/128"), netip.MustParsePrefix("192.0.2.0/24")}
	b := newBanList(BanOptions{MaxFailures: 3, Window: time.Minute, Duration: time.Hour, Allow: allow})

	key := addrKey("2001:db8::1", 64)
	for _, ip := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"} {
		b.fail(ip, key)
	}

	if !b.isBanned("2001:db8::99", key) {
		t.Error("another address of the /64 is not banned after 3 failures of the /64")
	}

	if b.isBanned("2001:db8::7", key) {
		t.Error("an allowed address is refused through the ban of its /64")
	}

	for range 10 {
		if banned, _ := b.fail("192.0.2.5", "192.0.2.5"); banned {
			t.Fatal("an allowed address was banned")
		}
	}

	if len(b.failures) != 0 {
		t.Errorf("failures of an allowed address were counted: %v", b.failures)
	}

	t.Run("a reload allowing a banned network forgets its ban", func(t *testing.T) {
		b.setOptions(BanOptions{MaxFailures: 3, Window: time.Minute, Duration: time.Hour,
			Allow: []netip.Prefix{netip.MustParsePrefix("2001:db8::/48")}})
		if b.count() != 0 || b.isBanned("2001:db8::99", key) {
			t.Error("the ban of a now-allowed /64 still counts")
		}
	})
}

func TestKeyAllowed(t *testing.T) {
	t.Parallel()

	allow := []netip.Prefix{netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("192.0.2.7/32")}
	for key, want := range map[string]bool{
		"2001:db8:0:1::/64": true,
		"2001:db8:1::/48":   false,
		"2001::/16":         false, // only partly allowed
		"192.0.2.7":         true,
		"192.0.2.8":         false,
		"pipe":              false,
	} {
		if got := keyAllowed(key, allow); got != want {
			t.Errorf("keyAllowed(%q) = %v, want %v", key, got, want)
		}
	}
}
