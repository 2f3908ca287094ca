package server

import (
	"fmt"
	"testing"
	"time"
)

func TestBanList(t *testing.T) {
	t.Parallel()

	b := newBanList(BanOptions{MaxFailures: 3, Window: time.Minute, Duration: time.Hour})
	now := time.Now()
	b.now = func() time.Time { return now }

	t.Run("failures spread over more than the window do not ban", func(t *testing.T) {
		b.fail("192.0.2.1")
		b.fail("192.0.2.1")
		now = now.Add(2 * time.Minute)
		if banned, _ := b.fail("192.0.2.1"); banned || b.isBanned("192.0.2.1") {
			t.Fatal("banned for failures outside one window")
		}
	})

	t.Run("max_failures within the window ban, for the duration", func(t *testing.T) {
		b.fail("192.0.2.2")
		b.fail("192.0.2.2")
		if banned, _ := b.fail("192.0.2.2"); !banned || !b.isBanned("192.0.2.2") || b.count() != 1 {
			t.Fatal("not banned after max_failures")
		}

		if b.isBanned("192.0.2.3") {
			t.Fatal("another address is banned too")
		}

		now = now.Add(time.Hour + time.Second)
		if b.isBanned("192.0.2.2") || b.count() != 0 {
			t.Fatal("still banned after the duration")
		}
	})

	t.Run("the tables stay bounded whatever the number of addresses", func(t *testing.T) {
		b.max = 100
		for i := range 1000 {
			ip := fmt.Sprintf("198.51.%d.%d", i/256, i%256)
			for range 3 {
				b.fail(ip)
			}
			b.fail("203.0.113." + fmt.Sprint(i%256))
		}

		if len(b.failures) > b.max || len(b.banned) > b.max {
			t.Fatalf("tables grew to %d failures and %d bans, bound %d", len(b.failures), len(b.banned), b.max)
		}
	})

	t.Run("max_failures 0 turns bans off", func(t *testing.T) {
		b.setOptions(BanOptions{})
		for range 10 {
			if banned, _ := b.fail("192.0.2.9"); banned {
				t.Fatal("banned with bans off")
			}
		}

		if b.count() != 0 {
			t.Fatal("bans kept after turning them off")
		}
	})
}
