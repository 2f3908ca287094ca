package server

import (
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"wharf/auth"
)

func TestPrivatePASVAddressWarning(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name              string
		announced, client string
		warn              bool
	}{
		{"a private address announced to a public client", "10.0.0.5", "203.0.113.9", true},
		{"loopback announced to a public client", "127.0.0.1", "198.51.100.1", true},
		{"carrier-grade NAT announced to a public client", "100.64.1.1", "198.51.100.1", true},
		{"a public address", "203.0.113.10", "198.51.100.1", false},
		{"a private address to a private client", "10.0.0.5", "10.0.0.9", false},
		{"loopback to loopback", "127.0.0.1", "127.0.0.1", false},
		{"a mapped private address to a public client", "10.0.0.5", "::ffff:203.0.113.9", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			core, logs := observer.New(zap.WarnLevel)
			p := newPasvAddress("", zap.New(core))
			p.check(tc.announced, tc.client)

			if got := logs.Len() == 1; got != tc.warn {
				t.Fatalf("warned: %v, want %v", got, tc.warn)
			}
		})
	}

	t.Run("the warning is rate-limited per client address", func(t *testing.T) {
		t.Parallel()

		core, logs := observer.New(zap.WarnLevel)
		p := newPasvAddress("10.0.0.5", zap.New(core))
		now := time.Now()
		p.now = func() time.Time { return now }

		for range 5 {
			p.check("10.0.0.5", "203.0.113.9")
		}

		p.check("10.0.0.5", "203.0.113.10")
		if logs.Len() != 2 {
			t.Fatalf("got %d warnings, want one per client", logs.Len())
		}

		now = now.Add(natWarnEvery + time.Second)
		p.check("10.0.0.5", "203.0.113.9")
		if logs.Len() != 3 {
			t.Fatalf("got %d warnings, want a new one after an hour", logs.Len())
		}
	})
}

func TestPASVAnnouncesPublicHost(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.PublicHost = "127.0.0.9"
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	addr := c.Pasv()
	host, port, _ := net.SplitHostPort(addr)
	if host != "127.0.0.9" {
		t.Fatalf("PASV announced %s, want public_host 127.0.0.9", addr)
	}

	// As through a NAT that forwards public_host to the listen address: the
	// passive port listens on 127.0.0.1 only.
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}

	c.Must(150, "RETR /README.txt")
	if got := readAllFrom(t, conn); string(got) != "hello from wharf\n" {
		t.Fatalf("got %q", got)
	}

	c.Expect(226)
}

func TestReloadChangesPASVAddress(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.PublicHost = "127.0.0.9"
	ts := startServer(t, f)

	accounts, err := auth.New(auth.Options{Anonymous: true, AnonymousRoot: root})
	if err != nil {
		t.Fatal(err)
	}

	if err := ts.srv.Reload(Reload{Accounts: accounts, PublicHost: "127.0.0.7"}); err != nil {
		t.Fatal(err)
	}

	c := ts.raw(t)
	c.Login("anonymous", "x")
	if host, _, _ := net.SplitHostPort(c.Pasv()); host != "127.0.0.7" {
		t.Fatalf("PASV announced %s after the reload, want 127.0.0.7", host)
	}
}
