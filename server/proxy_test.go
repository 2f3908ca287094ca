package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/internal/proxyproto"
)

// The tests behind a load balancer play the balancer on 127.0.0.1 (trusted)
// and write the headers themselves; the client addresses they name, from the
// documentation ranges, are only text in the headers. An untrusted client
// connects from 127.0.0.2. Their passive ports are 31000-31499.
var nextProxyPassive atomic.Int32

var (
	clientA = netip.MustParseAddrPort("203.0.113.7:51000")
	clientB = netip.MustParseAddrPort("203.0.113.8:51000")
	client6 = netip.MustParseAddrPort("[2001:db8::7]:51000")
	front   = netip.MustParseAddrPort("198.51.100.1:21")
)

var (
	balancer  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	untrusted = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
)

// proxyOptions trust 127.0.0.1 to send PROXY headers.
func proxyOptions(f *fixture) {
	n := int(nextProxyPassive.Add(1)) % 25
	f.opts.PassivePortStart, f.opts.PassivePortEnd = 31000+n*20, 31000+n*20+19
	f.opts.ProxyTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// header is the PROXY header of version v naming src as the client.
func header(v int, src netip.AddrPort) []byte {
	dst := front
	if src.Addr().Is6() {
		dst = netip.MustParseAddrPort("[2001:db8::1]:21")
	}

	return proxyproto.Append(nil, proxyproto.Header{Version: v, Source: src, Destination: dst})
}

// dialWith connects from local, sends first (a header, or anything) and
// returns the connection.
func dialWith(t *testing.T, addr string, local *net.TCPAddr, first []byte) net.Conn {
	t.Helper()

	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: local}

	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	if len(first) > 0 {
		if _, err := conn.Write(first); err != nil {
			t.Fatalf("write the header: %v", err)
		}
	}

	return conn
}

// viaBalancer opens a control connection through the balancer for the
// client at src, and reads the greeting.
func viaBalancer(t *testing.T, addr string, v int, src netip.AddrPort) *ftptest.Ctl {
	t.Helper()

	c := ftptest.NewCtl(t, dialWith(t, addr, balancer, header(v, src)))
	c.Expect(220)

	return c
}

// balancerDial is a dial function for github.com/jlaffaye/ftp that goes
// through the balancer: every connection, control and data, starts with a
// header naming src.
func balancerDial(t *testing.T, v int, src netip.AddrPort) ftp.DialOption {
	t.Helper()

	return ftp.DialWithDialFunc(func(_, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: balancer}

		conn, err := d.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			return nil, err
		}

		if _, err := conn.Write(header(v, src)); err != nil {
			_ = conn.Close()

			return nil, err
		}

		return conn, nil
	})
}

// closedWith reads the last reply of a connection the server closes.
func closedWith(t *testing.T, c *ftptest.Ctl, code int, text string) {
	t.Helper()

	_ = c.Conn.SetDeadline(time.Now().Add(10 * time.Second))

	if got, msg := c.Read(); got != code || !strings.Contains(msg, text) {
		t.Fatalf("got %d %q, want %d %q", got, msg, code, text)
	}

	// Closed: the end of the stream, or a reset when the server closed with
	// client bytes unread (the rest of a header).
	if _, err := io.ReadAll(c.Text.R); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the refusal: %v, want the connection closed", err)
	}
}

// refusedAt dials from local, sends first, and expects the refusal.
func refusedAt(t *testing.T, addr string, local *net.TCPAddr, first []byte, text string) {
	t.Helper()

	closedWith(t, ftptest.NewCtl(t, dialWith(t, addr, local, first)), 421, text)
}

func TestProxyHeaderSetsTheClientAddress(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name    string
		version int
		src     netip.AddrPort
	}{
		{"v1 over IPv4", 1, clientA},
		{"v1 over IPv6", 1, client6},
		{"v2 over IPv4", 2, clientA},
		{"v2 over IPv6", 2, client6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, root := anonFixture(t)
			proxyOptions(&f)
			xferlog := filepath.Join(t.TempDir(), "xferlog")
			f.opts.TransferLog = xferlog
			ts := startServer(t, f)

			// STAT names the client.
			c := viaBalancer(t, ts.addr, tc.version, tc.src)
			c.Login("anonymous", "me@example.com")
			if stat := c.Must(211, "STAT"); !strings.Contains(stat, "Connected from "+tc.src.Addr().String()+"\n") {
				t.Errorf("STAT = %q, want it to name %s", stat, tc.src)
			}

			// A download, its data connection through the balancer too.
			cl := ts.dial(t, "anonymous", "me@example.com", balancerDial(t, tc.version, tc.src))
			want, _ := os.ReadFile(filepath.Join(root, "pub", "big.bin"))
			if got := ftptest.Retr(t, cl, "/pub/big.bin"); string(got) != string(want) {
				t.Fatalf("downloaded %d bytes, want %d", len(got), len(want))
			}

			var line []byte
			waitFor(t, func() bool { line, _ = os.ReadFile(xferlog); return len(line) > 0 })
			if fields := strings.Fields(string(line)); len(fields) < 7 || fields[6] != tc.src.Addr().String() {
				t.Errorf("xferlog line %q, want the host %s", line, tc.src.Addr())
			}

			logins := ts.logs.FilterMessage("login").All()
			for _, e := range logins {
				if remote := e.ContextMap()["remote"]; remote != tc.src.String() {
					t.Errorf("%q logged remote %v, want %s", e.Message, remote, tc.src)
				}
			}

			if len(logins) == 0 {
				t.Error("no login logged")
			}
		})
	}
}

func TestProxyLocalHeaderKeepsTheBalancersAddress(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	ts := startServer(t, f)

	for _, h := range [][]byte{[]byte("PROXY UNKNOWN\r\n"), proxyproto.Append(nil, proxyproto.Header{Version: 2, Local: true})} {
		c := ftptest.NewCtl(t, dialWith(t, ts.addr, balancer, h))
		c.Expect(220)
		c.Login("anonymous", "me@example.com")

		if stat := c.Must(211, "STAT"); !strings.Contains(stat, "Connected from 127.0.0.1\n") {
			t.Errorf("after %q, STAT = %q, want the balancer's own address", h, stat)
		}
	}
}

func TestProxyHeaderFromAnUntrustedAddressIsRefused(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	ts := startServer(t, f)

	for _, v := range []int{1, 2} {
		// The header goes out at once, as a balancer sends it: the greeting
		// comes first, then the refusal of the header.
		c := ftptest.NewCtl(t, dialWith(t, ts.addr, untrusted, header(v, clientA)))
		c.Expect(220)
		closedWith(t, c, 421, "PROXY protocol header from an untrusted address")
	}

	refused := ts.logs.FilterMessage("connection refused").All()
	if len(refused) != 2 || refused[0].ContextMap()["reason"] != "proxy_untrusted" ||
		!strings.HasPrefix(refused[0].ContextMap()["remote"].(string), "127.0.0.2:") {
		t.Errorf("refusals logged: %v, want two from 127.0.0.2, reason proxy_untrusted", refused)
	}

	if n := testutil.ToFloat64(ts.srv.metrics.refusedConnection.WithLabelValues("proxy_untrusted")); n != 2 {
		t.Errorf("wharf_refused_connections_total{reason=\"proxy_untrusted\"} = %v, want 2", n)
	}

	// Without [proxy_protocol], a header is refused the same way.
	plain, _ := anonFixture(t)
	ts = startServer(t, plain)
	c := ftptest.NewCtl(t, dialWith(t, ts.addr, balancer, header(1, clientA)))
	c.Expect(220)
	closedWith(t, c, 421, "PROXY protocol header from an untrusted address")
}

func TestProxyBalancerConnectionWithoutAHeaderIsRefused(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	f.opts.LoginTimeout = 300 * time.Millisecond // bounds the wait for the header too
	ts := startServer(t, f)

	// A command instead of a header.
	refusedAt(t, ts.addr, balancer, []byte("USER anonymous\r\n"), "expected a PROXY protocol header")

	// Nothing at all: refused once the wait is over.
	start := time.Now()
	refusedAt(t, ts.addr, balancer, nil, "expected a PROXY protocol header")
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("a silent balancer connection was refused after %s, want about login_timeout", waited)
	}

	if n := testutil.ToFloat64(ts.srv.metrics.refusedConnection.WithLabelValues("proxy_header")); n != 2 {
		t.Errorf("wharf_refused_connections_total{reason=\"proxy_header\"} = %v, want 2", n)
	}

	refused := ts.logs.FilterMessage("connection refused").All()
	if len(refused) != 2 || refused[0].ContextMap()["reason"] != "proxy_header" {
		t.Errorf("refusals logged: %v, want two, reason proxy_header", refused)
	}

	// An untrusted client still connects without one.
	ftptest.Dial(t, ts.addr, untrusted).Login("anonymous", "me@example.com")
}

func TestProxyBansTheAddressInTheHeader(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadOnly)
	proxyOptions(&f)
	f.opts.Ban = BanOptions{MaxFailures: 2, Window: time.Minute, Duration: time.Hour}
	ts := startServer(t, f)

	c := viaBalancer(t, ts.addr, 2, clientA)
	c.Must(331, "USER alice")
	c.Must(530, "PASS wrong")
	c.Must(331, "USER alice")
	c.Cmd("PASS wrong") // the second failure bans, and closes

	banned := ts.logs.FilterMessage("address banned").All()
	if len(banned) != 1 || banned[0].ContextMap()["ip"] != clientA.Addr().String() {
		t.Fatalf("ban log lines %v, want one for ip %s", banned, clientA.Addr())
	}

	// Client A is refused before the greeting, through the balancer.
	refusedAt(t, ts.addr, balancer, header(1, clientA), "banned")

	// Client B, through the same balancer, logs in.
	viaBalancer(t, ts.addr, 1, clientB).Login("alice", testPassword)

	// So does a client connecting directly from the balancer's machine.
	local := ftptest.NewCtl(t, dialWith(t, ts.addr, balancer, []byte("PROXY UNKNOWN\r\n")))
	local.Expect(220)
	local.Login("alice", testPassword)
}

func TestProxyMaxClientsPerIPCountsTheHeadersAddress(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	f.opts.MaxClientsPerIP = 1
	ts := startServer(t, f)

	viaBalancer(t, ts.addr, 2, clientA)
	refusedAt(t, ts.addr, balancer, header(2, clientA), "too many connections from your address")
	viaBalancer(t, ts.addr, 2, clientB).Login("anonymous", "me@example.com")
}

func TestProxyPassiveDataConnections(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	f.opts.DataConnectionTimeout = 2 * time.Second
	ts := startServer(t, f)

	// retr sends RETR over c after PASV, and connects the data connection
	// with dial; it returns what arrived and the final reply code.
	retr := func(c *ftptest.Ctl, dial func(addr string) net.Conn) (string, int) {
		data := dial(pasv(t, c, ts))
		c.Must(150, "RETR /README.txt")
		got, _ := io.ReadAll(data)
		code, _ := c.Read()

		return string(got), code
	}

	t.Run("through the balancer with the session's address is accepted", func(t *testing.T) {
		c := viaBalancer(t, ts.addr, 2, clientA)
		c.Login("anonymous", "me@example.com")

		got, code := retr(c, func(addr string) net.Conn { return dialWith(t, addr, balancer, header(2, clientA)) })
		if got != "hello from wharf\n" || code != 226 {
			t.Errorf("got %q and %d, want README and 226", got, code)
		}
	})

	t.Run("directly from the client's own address is accepted", func(t *testing.T) {
		// The header names 127.0.0.2, which then connects itself.
		c := viaBalancer(t, ts.addr, 1, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 40000))
		c.Login("anonymous", "me@example.com")

		got, code := retr(c, func(addr string) net.Conn { return dialWith(t, addr, untrusted, nil) })
		if got != "hello from wharf\n" || code != 226 {
			t.Errorf("got %q and %d, want README and 226", got, code)
		}
	})

	refused := func(name string, dial func(addr string) net.Conn) {
		t.Run(name, func(t *testing.T) {
			c := viaBalancer(t, ts.addr, 2, clientA)
			c.Login("anonymous", "me@example.com")

			data := dial(pasv(t, c, ts))
			_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := data.Read(make([]byte, 1)); n > 0 || err == nil {
				t.Fatalf("the data connection reads %d bytes, %v; want it closed", n, err)
			}

			if code, msg := c.Cmd("RETR /README.txt"); code != 425 {
				t.Errorf("RETR: %d %q, want 425", code, msg)
			}
		})
	}

	refused("through the balancer naming another address is refused", func(addr string) net.Conn {
		return dialWith(t, addr, balancer, header(2, clientB))
	})
	refused("through the balancer without a header is refused", func(addr string) net.Conn {
		return dialWith(t, addr, balancer, []byte("garbage, not a header\r\n"))
	})
}

// pasv sends PASV through the balancer: the reply announces the address
// the client connected to (the balancer's, from the header), and the test
// reaches the port on the server's own address, as the balancer would.
func pasv(t *testing.T, c *ftptest.Ctl, ts *testServer) string {
	t.Helper()

	host, port, _ := net.SplitHostPort(c.Pasv())
	if host != front.Addr().String() {
		t.Errorf("PASV announces %s, want the balancer's %s", host, front.Addr())
	}

	server, _, _ := net.SplitHostPort(ts.addr)

	return net.JoinHostPort(server, port)
}

func TestProxyHeaderBeforeImplicitTLS(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	proxyOptions(&f)
	f.opts.TLSMode = TLSImplicit
	f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
	ts := startServer(t, f)

	// The header, then the TLS handshake, in the same first write as a
	// balancer that relays a fast client would send them.
	conn := dialWith(t, ts.addr, balancer, header(2, clientA))
	tc := tls.Client(conn, clientTLS())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS handshake after the header: %v", err)
	}

	c := ftptest.NewCtl(t, tc)
	c.Expect(220)
	c.Login("anonymous", "me@example.com")
	if stat := c.Must(211, "STAT"); !strings.Contains(stat, "Connected from "+clientA.Addr().String()+"\n") {
		t.Errorf("STAT = %q, want it to name %s", stat, clientA)
	}

	// A header from an untrusted client arrives where the handshake should:
	// it is answered in clear text.
	for _, v := range []int{1, 2} {
		refusedAt(t, ts.addr, untrusted, header(v, clientA), "PROXY protocol header from an untrusted address")
	}

	if n := testutil.ToFloat64(ts.srv.metrics.refusedConnection.WithLabelValues("proxy_untrusted")); n != 2 {
		t.Errorf("wharf_refused_connections_total{reason=\"proxy_untrusted\"} = %v, want 2", n)
	}

	// A balancer connection that starts its TLS handshake without a header
	// is refused: its first byte went to the header, so no handshake can
	// follow, and it is closed.
	bare := tls.Client(dialWith(t, ts.addr, balancer, nil), clientTLS())
	_ = bare.SetDeadline(time.Now().Add(10 * time.Second))
	if err := bare.Handshake(); err == nil {
		t.Fatal("a TLS handshake without a header succeeded")
	}

	if n := testutil.ToFloat64(ts.srv.metrics.refusedConnection.WithLabelValues("proxy_header")); n != 1 {
		t.Errorf("wharf_refused_connections_total{reason=\"proxy_header\"} = %v, want 1", n)
	}
}
