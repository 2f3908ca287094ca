package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/internal/ftptest"
)

// A stranger who connects to a victim's passive port first must never get
// the victim's data: not on the transfer it raced, nor on the next one.
func TestPassiveStrangerGetsNothing(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")
	c.Must(200, "TYPE I")
	addr := c.Pasv()

	stranger, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("stranger dial: %v", err)
	}
	defer stranger.Close()

	received := make(chan int64, 1)
	go func() {
		_ = stranger.SetDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, stranger)
		received <- n
	}()

	// First attempt: the victim's own data connection, after the stranger's.
	victim, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("victim dial: %v", err)
	}

	c.Must(150, "RETR /README.txt")
	if got := readAllFrom(t, victim); string(got) != "hello from wharf\n" {
		t.Fatalf("victim got %q", got)
	}
	c.Expect(226)

	// Second attempt on a fresh PASV: the stranger's socket must not be handed this one either.
	addr = c.Pasv()
	victim, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}

	c.Must(150, "RETR /pub/big.bin")
	if got := readAllFrom(t, victim); len(got) != 1<<20 {
		t.Fatalf("victim got %d bytes", len(got))
	}
	c.Expect(226)

	if n := <-received; n != 0 {
		t.Fatalf("the stranger received %d bytes", n)
	}
}

// After RETR of a missing file with the data socket already connected, the
// next PASV + LIST must answer at once, not after the data connection timeout.
func TestPassiveAfterRefusedTransfer(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.PassivePortEnd = f.opts.PassivePortStart // one port: the next PASV lands on the same one
	f.opts.DataConnectionTimeout = 10 * time.Second
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	for range 3 {
		conn := c.DialPasv()
		defer conn.Close()

		// Let the engine deliver the connection to the reservation.
		time.Sleep(50 * time.Millisecond)
		c.Must(550, "RETR /missing.iso")
	}

	start := time.Now()
	conn := c.DialPasv()

	c.Must(150, "LIST /")
	if got := readAllFrom(t, conn); len(got) == 0 {
		t.Fatal("empty listing")
	}
	c.Expect(226)

	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("PASV + LIST took %v after a refused RETR", took)
	}
}

// TestPassiveListensOnListenAddress: a passive port listens on the address
// wharf listens on, not on another address of the machine, and not for long
// once it is no longer used.
func TestPassiveListensOnListenAddress(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	ts.srv.pasv.mu.Lock()
	ts.srv.pasv.idle = 100 * time.Millisecond
	ts.srv.pasv.mu.Unlock()

	c := ts.raw(t)
	c.Login("anonymous", "x")

	for _, verb := range []string{"PASV", "EPSV"} {
		t.Run(verb, func(t *testing.T) {
			var port string
			if verb == "PASV" {
				_, port, _ = net.SplitHostPort(c.Pasv())
			} else {
				msg := c.Must(229, "EPSV")
				port = msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
			}

			if conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", port), 2*time.Second); err == nil {
				_ = conn.Close()
				t.Fatalf("the passive port %s answers on 127.0.0.2; wharf listens on 127.0.0.1 only", port)
			}

			data, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 2*time.Second)
			if err != nil {
				t.Fatalf("the passive port on the listen address: %v", err)
			}

			c.Must(150, "RETR /README.txt")
			if got := readAllFrom(t, data); string(got) != "hello from wharf\n" {
				t.Fatalf("got %q", got)
			}
			c.Expect(226)

			ftptest.WaitFor(t, 2*time.Second, func() bool {
				conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
				if err == nil {
					_ = conn.Close()
				}

				return err != nil // the port stopped listening once unused
			})
		})
	}
}

// TestPassiveOpen: wharf's listener replaces the engine's, which stops
// listening at once but still takes deadlines; the port takes the
// connection of the session the reply named, and no one's before; a free
// port is taken again without a new bind, then closes once idle.
func TestPassiveOpen(t *testing.T) {
	t.Parallel()

	lo := freePort(t)
	exhausted := prometheus.NewCounter(prometheus.CounterOpts{Name: "exhausted"})
	p := newPassivePorts(lo, lo, 2*time.Second, exhausted) // one port
	p.idle = 300 * time.Millisecond
	p.listenOn(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})

	engineListener := func() *net.TCPListener {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}

		return l
	}

	engine := engineListener()
	l, err := p.open(engine)
	if err != nil {
		t.Fatal(err)
	}

	if conn, err := net.DialTimeout("tcp", engine.Addr().String(), time.Second); err == nil {
		_ = conn.Close()
		t.Fatal("the engine's own listener still listens")
	}

	if err := engine.SetDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatalf("the engine can no longer set its deadline: %v", err)
	}

	addr := l.Addr().(*net.TCPAddr)
	if !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) || addr.Port != lo {
		t.Fatalf("listens on %v, want 127.0.0.1:%d", addr, lo)
	}

	p.wait = 50 * time.Millisecond
	if _, err := p.open(engineListener()); !errors.Is(err, errNoPassivePort) {
		t.Fatalf("a second PASV took the port held by the first: %v", err)
	}
	if n := testutil.ToFloat64(exhausted); n != 1 {
		t.Errorf("wharf_passive_ports_exhausted_total = %v, want 1", n)
	}

	early, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	if !closedByServer(early) {
		t.Fatal("a connection before the port was announced was kept")
	}

	p.claim(fmt.Appendf(nil, "Entering Extended Passive Mode (|||%d|)", addr.Port), "127.0.0.1")

	data, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()

	got, err := l.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	_ = got.Close()

	// The connection came: the port is free for the next PASV, before the
	// first one's listener is closed, and without a new bind.
	p.mu.Lock()
	first := p.byPort[lo]
	p.mu.Unlock()

	next, err := p.open(engineListener())
	if err != nil {
		t.Fatalf("the port stayed held after its connection came: %v", err)
	}

	p.mu.Lock()
	same := p.byPort[lo] == first
	p.mu.Unlock()

	if !same {
		t.Error("the free port was bound again rather than reused")
	}

	_ = l.Close()
	_ = next.Close()

	if _, err := engine.Accept(); err == nil {
		t.Fatal("the engine's listener was not closed with wharf's")
	}

	ftptest.WaitFor(t, 2*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()

		return len(p.byPort) == 0 && len(p.held) == 0
	})

	if conn, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		_ = conn.Close()
		t.Fatal("the port still listens after it was idle")
	}
}

// TestPassiveWaitsForAFreePort: with every port held by a PASV whose data
// connection has not come yet, the next PASV waits for one to be freed
// rather than being refused (a burst of sessions larger than the range).
func TestPassiveWaitsForAFreePort(t *testing.T) {
	t.Parallel()

	port := freePort(t)
	p := newPassivePorts(port, port, 2*time.Second, prometheus.NewCounter(prometheus.CounterOpts{Name: "exhausted"})) // one port
	p.listenOn(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	t.Cleanup(p.close)

	engineListener := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}

		return l
	}

	first, err := p.open(engineListener())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()

	p.claim(fmt.Appendf(nil, "Entering Extended Passive Mode (|||%d|)", port), "127.0.0.1")

	type opened struct {
		l   net.Listener
		err error
	}
	second := make(chan opened, 1)
	go func() {
		l, err := p.open(engineListener())
		second <- opened{l, err}
	}()

	select {
	case o := <-second:
		t.Fatalf("the second PASV did not wait for the held port: %v, %v", o.l, o.err)
	case <-time.After(200 * time.Millisecond):
	}

	// The first session's data connection arrives: its port is free, and
	// the waiting PASV gets it.
	data, err := net.Dial("tcp", first.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()

	select {
	case o := <-second:
		if o.err != nil {
			t.Fatalf("the waiting PASV was refused once the port was free: %v", o.err)
		}
		defer o.l.Close()

		if got := o.l.Addr().(*net.TCPAddr).Port; got != port {
			t.Fatalf("the waiting PASV got port %d, want %d", got, port)
		}
	case <-time.After(time.Second):
		t.Fatal("the waiting PASV was not woken when the port was freed")
	}
}

// freePort returns a port of 127.0.0.1 that nothing listens on now, from
// the kernel's ephemeral range: a fixed range could be taken by another
// test binary running on the same machine.
func freePort(t *testing.T) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port
}

// closedByServer reports whether the server closed conn within a second.
func closedByServer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err := conn.Read(make([]byte, 1))

	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestAnnouncedPort(t *testing.T) {
	t.Parallel()

	for text, want := range map[string]int{
		"Entering Passive Mode (127,0,0,1,156,64)":   40000,
		"Entering Extended Passive Mode (|||40001|)": 40001,
		"Entering Passive Mode (127,0,0,1,156)":      0,
		"Entering Extended Passive Mode (|||x|)":     0,
		"Entering Extended Passive Mode":             0,
	} {
		if got, ok := announcedPort(text); got != want && ok || !ok && want != 0 {
			t.Errorf("announcedPort(%q) = %d, %v; want %d", text, got, ok, want)
		}
	}
}
