package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"wharf/auth"
)

// Behind a balancer that sends the PROXY protocol, the HTTP listener takes
// the client's address from the header, as FTP does: [access] and bans
// apply to it; a balancer's connection without a header is closed unanswered,
// and a client the server does not trust is served by its own address.
func TestHTTPBehindBalancer(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
		o.ProxyTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		o.AccessDeny = []netip.Prefix{netip.PrefixFrom(clientA.Addr(), 32)}
	})
	addr := strings.TrimPrefix(base, "http://")

	get := func(t *testing.T, local *net.TCPAddr, first []byte) (int, error) {
		t.Helper()

		conn := dialWith(t, addr, local, first)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return 0, err
		}

		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}

		_ = resp.Body.Close()

		return resp.StatusCode, nil
	}

	for _, v := range []int{1, 2} {
		if code, err := get(t, balancer, header(v, clientA)); err != nil || code != http.StatusForbidden {
			t.Errorf("v%d header naming a denied client: %d, %v; want 403", v, code, err)
		}

		if code, err := get(t, balancer, header(v, clientB)); err != nil || code != http.StatusOK {
			t.Errorf("v%d header naming another client: %d, %v; want 200", v, code, err)
		}
	}

	if code, err := get(t, balancer, nil); err == nil {
		t.Errorf("the balancer without a header was answered %d; want the connection closed", code)
	}

	if code, err := get(t, untrusted, nil); err != nil || code != http.StatusOK {
		t.Errorf("an untrusted client without a header: %d, %v; want 200", code, err)
	}

	waitFor(t, func() bool {
		return ts.logs.FilterMessage("connection refused").FilterFieldKey("reason").Len() >= 1
	})
}
