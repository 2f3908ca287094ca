package server

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// from is a local source address for test clients: 127.0.0.2 to 127.0.0.40
// are other clients on loopback.
func from(ip string) net.Addr {
	return &net.TCPAddr{IP: net.ParseIP(ip)}
}

// TestIPv6ClientsCountByPrefix: the gate counts max_clients_per_ip by key,
// so two addresses of one IPv6 /64 are one client; IPv4 addresses, another
// /64, and any address with ipv6_prefix 128 are clients of their own.
func TestIPv6ClientsCountByPrefix(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name   string
		prefix int
		want   string // the refusal of a second address of the same /64
	}{
		{"with ipv6_prefix 64, a second address of the /64 is refused", 64, "max_clients_per_ip"},
		{"with ipv6_prefix 128, each address counts alone", 128, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			g := newGate(nil, 0, 1, nil, zap.NewNop())
			g.ipv6 = tc.prefix

			for _, step := range []struct{ ip, want string }{
				{"2001:db8:1:2::1", ""},
				{"2001:db8:1:2:ffff::9", tc.want},
				{"2001:db8:1:3::1", ""},
				{"192.0.2.1", ""},
				{"192.0.2.2", ""},
				{"::ffff:192.0.2.1", "max_clients_per_ip"},
			} {
				if _, reason, _ := g.admit(step.ip); reason != step.want {
					t.Errorf("admit(%s) refused for %q, want %q", step.ip, reason, step.want)
				}
			}
		})
	}
}

// TestIPv6PrefixEndToEnd runs over ::1, the one IPv6 address the tests
// have: what ::1 does (failed logins, connections, a login in progress) is
// counted under ::/64 with ipv6_prefix 64, so it reaches ::2, another
// address of that /64, and under ::1 alone with ipv6_prefix 128.
func TestIPv6PrefixEndToEnd(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name    string
		prefix  int
		network string // the key of ::1, logged when it differs from the address
	}{
		{"ipv6_prefix 64 counts ::1 as ::/64", 64, "::/64"},
		{"ipv6_prefix 128 counts ::1 alone", 128, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			shared := tc.network != ""

			t.Run("failed logins ban the whole prefix", func(t *testing.T) {
				f, _ := userFixture(t, auth.ReadWrite)
				f.opts.Listen = "[::1]:0"
				f.opts.IPv6Prefix = tc.prefix
				f.opts.Ban = BanOptions{MaxFailures: 2, Window: time.Minute, Duration: time.Hour}
				ts := startServer(t, f)

				c := ts.raw(t)
				for range 2 {
					c.Must(331, "USER alice")
					c.Must(530, "PASS wrong")
				}

				banned := ts.logs.FilterMessage("address banned").All()
				if len(banned) != 1 || banned[0].ContextMap()["ip"] != "::1" {
					t.Fatalf("ban log lines %v, want one for ip ::1", banned)
				}

				if got, _ := banned[0].ContextMap()["network"].(string); got != tc.network {
					t.Errorf("ban logged network %q, want %q", got, tc.network)
				}

				if _, reason, _ := ts.srv.gate.admit("::2"); (reason == "banned") != shared {
					t.Errorf("::2 after ::1 was banned: refused for %q, banned = %v wanted", reason, shared)
				}
			})

			t.Run("max_clients_per_ip counts the prefix", func(t *testing.T) {
				f, _ := anonFixture(t)
				f.opts.Listen = "[::1]:0"
				f.opts.IPv6Prefix = tc.prefix
				f.opts.MaxClientsPerIP = 1
				ts := startServer(t, f)

				ts.raw(t)

				if _, reason, _ := ts.srv.gate.admit("::2"); (reason == "max_clients_per_ip") != shared {
					t.Errorf("::2 while ::1 is connected: refused for %q, refused wanted = %v", reason, shared)
				}

				conn, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}

				if code, msg := ftptest.NewCtl(t, conn).Read(); code != 421 || !strings.Contains(msg, "too many connections from your address") {
					t.Fatalf("second connection from ::1: %d %q, want 421", code, msg)
				}

				refused := ts.logs.FilterMessage("connection refused").All()
				if len(refused) != 1 {
					t.Fatalf("%d refusals logged, want 1", len(refused))
				}

				if got, _ := refused[0].ContextMap()["network"].(string); got != tc.network ||
					!strings.HasPrefix(refused[0].ContextMap()["remote"].(string), "[::1]:") {
					t.Errorf("refusal logged remote %v network %q, want the real address and network %q",
						refused[0].ContextMap()["remote"], got, tc.network)
				}
			})

			t.Run("a login of the prefix waits for the one in progress", func(t *testing.T) {
				f, _ := userFixture(t, auth.ReadWrite)
				f.opts.Listen = "[::1]:0"
				f.opts.IPv6Prefix = tc.prefix
				ts := startServer(t, f)

				ts.srv.logins.mu.Lock()
				ts.srv.logins.wait = 200 * time.Millisecond
				ts.srv.logins.mu.Unlock()

				// A login of ::/64 (from ::2, say) holds the prefix's turn.
				release, ok := ts.srv.logins.acquire("::/64")
				if !ok {
					t.Fatal("no login slot")
				}
				defer release()

				c := ts.raw(t)
				c.Must(331, "USER alice")

				start := time.Now()
				code, _ := c.Cmd("PASS %s", testPassword)
				if want := map[bool]int{true: 421, false: 230}[shared]; code != want {
					t.Fatalf("login of ::1 while ::/64 logs in: %d after %v, want %d", code, time.Since(start), want)
				}
			})
		})
	}
}

// TestBanAllow: an address in [ban] allow may fail as often as it likes and
// is never banned, even when its network is; a reload changes the list.
func TestBanAllow(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.opts.Ban = BanOptions{MaxFailures: 2, Window: time.Minute, Duration: time.Hour,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	ts := startServer(t, f)

	fail := func(t *testing.T, ip string, n int) {
		t.Helper()

		c := ftptest.Dial(t, ts.addr, from(ip))
		for range n {
			c.Must(331, "USER alice")
			c.Must(530, "PASS wrong")
		}
		c.Must(221, "QUIT")
	}

	greeting := func(t *testing.T, ip string) int {
		t.Helper()

		conn, err := (&net.Dialer{LocalAddr: from(ip), Timeout: 5 * time.Second}).Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}

		code, _ := ftptest.NewCtl(t, conn).Read()

		return code
	}

	t.Run("an allowed address failing again and again is not banned", func(t *testing.T) {
		fail(t, "127.0.0.2", 2)
		fail(t, "127.0.0.2", 2)
		if code := greeting(t, "127.0.0.2"); code != 220 {
			t.Fatalf("allowed address after 4 failures got %d, want 220", code)
		}

		ftptest.Dial(t, ts.addr, from("127.0.0.2")).Login("alice", testPassword)
	})

	t.Run("another address is banned after max_failures", func(t *testing.T) {
		fail(t, "127.0.0.3", 2)
		if code := greeting(t, "127.0.0.3"); code != 421 {
			t.Fatalf("got %d, want 421 banned", code)
		}
	})

	t.Run("a reload that allows a banned address lets it in", func(t *testing.T) {
		accounts, err := auth.New(auth.Options{Users: f.users})
		if err != nil {
			t.Fatal(err)
		}

		opts := f.opts.Ban
		opts.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}
		if err := ts.srv.Reload(Reload{Accounts: accounts, Ban: opts}); err != nil {
			t.Fatal(err)
		}

		if code := greeting(t, "127.0.0.3"); code != 220 {
			t.Fatalf("127.0.0.3 newly allowed got %d, want 220", code)
		}

		fail(t, "127.0.0.2", 2)
		if code := greeting(t, "127.0.0.2"); code != 421 {
			t.Fatalf("127.0.0.2 no longer allowed, after 2 failures got %d, want 421 banned", code)
		}
	})

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_bans Client addresses banned now for failed logins.
# TYPE wharf_bans gauge
wharf_bans 1
`), "wharf_bans"); err != nil {
		t.Error(err)
	}
}

// TestAccessLists: [access] deny and allow refuse a client with 421 before
// any greeting; deny wins over allow. Each refusal is counted, but under a
// flood only the first few are logged one by one, then one line says how
// many more.
func TestAccessLists(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.AccessAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/29")} // .0 to .7
	f.opts.AccessDeny = []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32"), netip.MustParsePrefix("2001:db8::/32")}
	ts := startServer(t, f)

	first := func(ip string) string {
		t.Helper()

		conn, err := (&net.Dialer{LocalAddr: from(ip), Timeout: 5 * time.Second}).Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, _ := conn.Read(buf)

		return string(buf[:n])
	}

	for _, tc := range []struct {
		name, ip string
		refused  bool
	}{
		{"an allowed address is greeted", "127.0.0.2", false},
		{"a denied address inside allow is refused: deny wins", "127.0.0.3", true},
		{"an address outside allow is refused", "127.0.0.9", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := first(tc.ip)
			if tc.refused && got != "421 this server does not accept connections from your address\r\n" {
				t.Fatalf("from %s: first bytes %q, want the 421 refusal and nothing before it", tc.ip, got)
			}

			if !tc.refused && !strings.HasPrefix(got, "220 ") {
				t.Fatalf("from %s: %q, want 220", tc.ip, got)
			}
		})
	}

	t.Run("a flood of refused connections logs a few lines and a count", func(t *testing.T) {
		for range 30 {
			first("127.0.0.10")
		}

		ts.srv.floodLogs.stop() // writes the summary the window's end would

		lines := ts.logs.FilterMessage("connection refused").FilterField(zap.String("reason", "access")).Len()
		if lines != logBurst {
			t.Errorf("%d refusals logged one by one, want %d", lines, logBurst)
		}

		more := ts.logs.FilterMessage("more connections refused").All()
		if len(more) != 1 || more[0].ContextMap()["connections"] != int64(32-logBurst) {
			t.Errorf("summary lines %v, want one counting %d connections", more, 32-logBurst)
		}
	})

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_refused_connections_total Connections refused before a session started, by reason (access, banned, max_clients, max_clients_per_ip, proxy_header, proxy_untrusted).
# TYPE wharf_refused_connections_total counter
wharf_refused_connections_total{reason="access"} 32
wharf_refused_connections_total{reason="banned"} 0
wharf_refused_connections_total{reason="max_clients"} 0
wharf_refused_connections_total{reason="max_clients_per_ip"} 0
`), "wharf_refused_connections_total"); err != nil {
		t.Error(err)
	}
}

func TestAccessListsAdmit(t *testing.T) {
	t.Parallel()

	l := accessLists{
		allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		deny:  []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	}

	for ip, want := range map[string]bool{
		"10.1.2.3":          true,
		"::ffff:10.1.2.3":   true, // IPv4-mapped: counted as IPv4
		"10.9.1.1":          false,
		"::ffff:10.9.1.1":   false,
		"2001:db8::1":       true,
		"fe80::1%eth0":      false,
		"192.0.2.1":         false,
		"not an address":    false,
		"2001:db8:ffff::42": true,
	} {
		if got := l.admits(parseIP(ip)); got != want {
			t.Errorf("admits(%s) = %v, want %v", ip, got, want)
		}
	}

	if !(accessLists{}).admits(parseIP("192.0.2.1")) {
		t.Error("empty lists refuse an address")
	}
}
