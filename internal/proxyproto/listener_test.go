package proxyproto

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// listen starts a Listener on loopback; refused receives what Refused gets.
func listen(t *testing.T, trusted bool, timeout time.Duration) (*Listener, chan error) {
	t.Helper()

	inner, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	refused := make(chan error, 4)
	l := Listen(inner, Options{
		Trusted: func(netip.Addr) bool { return trusted },
		Timeout: timeout,
		Refused: func(conn net.Conn, err error) {
			_ = conn.Close()
			refused <- err
		},
	})
	t.Cleanup(func() { _ = l.Close() })

	return l, refused
}

func dial(t *testing.T, addr net.Addr, send string) net.Conn {
	t.Helper()

	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(context.Background(), "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}

	return c
}

func accept(t *testing.T, l *Listener) net.Conn {
	t.Helper()

	type result struct {
		c   net.Conn
		err error
	}

	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		got <- result{c, err}
	}()

	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })

		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("Accept returned nothing within 5s")

		return nil
	}
}

func TestATrustedConnectionGetsTheHeadersAddresses(t *testing.T) {
	t.Parallel()

	for _, h := range []Header{v4, v6, v2Of(v4), v2Of(v6)} {
		l, _ := listen(t, true, time.Second)
		dial(t, l.Addr(), string(Append(nil, h))+"USER anonymous\r\n")

		c := accept(t, l)
		if got := c.RemoteAddr().String(); got != h.Source.String() {
			t.Errorf("v%d: RemoteAddr = %s, want %s", h.Version, got, h.Source)
		}

		if c.RemoteAddr() != c.RemoteAddr() {
			t.Errorf("v%d: RemoteAddr is a new value at each call", h.Version)
		}

		if got := c.LocalAddr().String(); got != h.Destination.String() {
			t.Errorf("v%d: LocalAddr = %s, want %s", h.Version, got, h.Destination)
		}

		buf := make([]byte, 16)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "USER anonymous\r\n" {
			t.Errorf("v%d: after the header, read %q, %v", h.Version, buf, err)
		}

		// sendfile and splice still reach the socket.
		if _, ok := c.(io.ReaderFrom); !ok {
			t.Errorf("v%d: the connection has no ReadFrom", h.Version)
		}

		if _, ok := c.(syscall.Conn); !ok {
			t.Errorf("v%d: the connection has no SyscallConn", h.Version)
		}
	}
}

func TestALocalHeaderKeepsTheConnectionsOwnAddress(t *testing.T) {
	t.Parallel()

	for _, h := range []string{"PROXY UNKNOWN\r\n", string(Append(nil, Header{Version: 2, Local: true}))} {
		l, _ := listen(t, true, time.Second)
		client := dial(t, l.Addr(), h)

		if got, want := accept(t, l).RemoteAddr().String(), client.LocalAddr().String(); got != want {
			t.Errorf("%q: RemoteAddr = %s, want the connection's own %s", h, got, want)
		}
	}
}

func TestAnUntrustedConnectionPassesAsItIs(t *testing.T) {
	t.Parallel()

	l, _ := listen(t, false, time.Second)
	client := dial(t, l.Addr(), string(Append(nil, v4)))

	c := accept(t, l)
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr = %s, want the connection's own %s", got, want)
	}

	// The header is left for the server to refuse.
	buf := make([]byte, 6)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "PROXY " {
		t.Errorf("read %q, %v; want the header's first bytes", buf, err)
	}
}

func TestATrustedConnectionWithoutAHeaderIsRefused(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		send string
	}{
		{"an FTP command", "USER anonymous\r\n"},
		{"a malformed header", "PROXY TCP4 203.0.113.7\r\n"},
		{"nothing", ""},
		{"half a header", "PROXY TCP4 203.0.113.7 "},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			l, refused := listen(t, true, 200*time.Millisecond)
			dial(t, l.Addr(), tt.send)

			select {
			case err := <-refused:
				if !errors.Is(err, ErrMissing) {
					t.Errorf("Refused got %v, want ErrMissing", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("not refused within 5s")
			}
		})
	}
}

func TestASilentBalancerConnectionHoldsUpNoOther(t *testing.T) {
	t.Parallel()

	l, _ := listen(t, true, time.Minute)
	dial(t, l.Addr(), "") // sends nothing for a minute
	dial(t, l.Addr(), string(Append(nil, v4)))

	if got := accept(t, l).RemoteAddr().String(); got != v4.Source.String() {
		t.Errorf("RemoteAddr = %s, want %s", got, v4.Source)
	}
}

func TestCloseEndsHeadersBeingRead(t *testing.T) {
	t.Parallel()

	l, _ := listen(t, true, time.Minute)
	client := dial(t, l.Addr(), "PROXY ")

	// Wait until the header is being read.
	for range 500 {
		l.mu.Lock()
		n := len(l.pend)
		l.mu.Unlock()

		if n == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	closed := make(chan struct{})
	go func() {
		_ = l.Close()
		close(closed)
	}()

	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}

	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the pending connection reads %v, want it closed", err)
	}

	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
	}
}
