package server

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// keepAlive reads SO_KEEPALIVE of conn's socket.
func keepAlive(t *testing.T, conn net.Conn) bool {
	t.Helper()

	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("%T is not a TCP connection", conn)
	}

	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	var on int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		on, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("getsockopt SO_KEEPALIVE: %v", serr)
	}

	return on != 0
}

// TestNoKeepAliveOnControlConnections: an accepted control connection has
// no TCP keep-alive (Go's listeners turn it on, four setsockopt(2) calls per
// connection): idle_timeout closes a silent session already.
func TestNoKeepAliveOnControlConnections(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	local := c.Conn.LocalAddr().String()

	var server net.Conn
	ts.srv.gate.mu.Lock()
	for _, ctl := range ts.srv.gate.conns {
		if ctl.RemoteAddr().String() == local {
			server = ctl.gc.Conn
		}
	}
	ts.srv.gate.mu.Unlock()

	if server == nil {
		t.Fatal("the gate does not hold the connection")
	}

	if keepAlive(t, server) {
		t.Fatal("the control connection has SO_KEEPALIVE set")
	}
}

// TestKeepAliveOnDataConnections: a passive data connection has no TCP
// keep-alive while data_timeout cuts one that moves nothing, and keeps Go's
// keep-alive when nothing else would notice a peer that vanished.
func TestKeepAliveOnDataConnections(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name        string
		dataTimeout time.Duration
		want        bool
	}{
		{"with a data timeout, no keep-alive", time.Minute, false},
		{"without a data timeout, keep-alive", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, _ := anonFixture(t)
			f.opts.DataTimeout = tc.dataTimeout
			ts := startServer(t, f)

			engine, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}

			l, err := ts.srv.pasv.open(engine)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			addr := l.Addr().(*net.TCPAddr)
			ts.srv.pasv.claim(fmt.Appendf(nil, "Entering Extended Passive Mode (|||%d|)", addr.Port), "127.0.0.1")

			client, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()

			conn, err := l.Accept()
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			defer conn.Close()

			bc, ok := conn.(*bufferedConn)
			if !ok {
				t.Fatalf("accepted a %T", conn)
			}

			if got := keepAlive(t, bc.Conn); got != tc.want {
				t.Fatalf("SO_KEEPALIVE on the data connection: %v, want %v", got, tc.want)
			}
		})
	}
}
