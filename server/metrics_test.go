package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// slowPiece and slowPace are a slow client's pace: 16 KiB every 100 ms.
const (
	slowPiece = 16 << 10
	slowPace  = 100 * time.Millisecond
)

// The byte counter moves while a transfer runs, at least every second, on
// the zero-copy paths too: splice from a client that writes slowly here,
// sendfile to one that reads slowly in TestSendfileCountsAsItGoes. Before,
// it moved when a transfer ended.
func TestTransferBytesCountedAsTheyFlow(t *testing.T) {
	t.Parallel()

	const size = 512 << 10 // about 3 s at the slow pace

	f, _ := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)
	counter := ts.srv.metrics.xfers[xferUpload].bytes

	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")
	data := c.DialPasv()
	c.Must(150, "STOR /up.bin")

	moved := make(chan error, 1)
	go func() { moved <- writeSlowly(data, size) }()

	longest, took := watchCounter(t, counter, size)

	if err := <-moved; err != nil {
		t.Fatal(err)
	}
	c.Expect(226)

	if longest > 1500*time.Millisecond {
		t.Errorf("the counter stood still for %v while the upload ran (%v in all)", longest, took)
	}
}

// sendfile to a client that reads slowly ends a chunk every tick, so the
// bytes it moved are counted while it runs. The socket buffers are small
// here, as they are in effect on a long, slow path; on loopback the kernel
// would take the whole file at once.
func TestSendfileCountsAsItGoes(t *testing.T) {
	t.Parallel()

	const size = 512 << 10

	file := filepath.Join(t.TempDir(), "slow.bin")
	writeFile(t, file, ftptest.RandomBytes(size))

	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	server, client := tcpPair(t)
	_ = server.SetWriteBuffer(slowPiece)
	_ = client.SetReadBuffer(slowPiece)

	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"})
	tr := &transfer{file: f, counted: counter, dataTimeout: time.Minute}
	tr.progress.Store(time.Now().UnixNano())

	sent := make(chan error, 1)
	go func() {
		_, err := tr.WriteTo(server)
		_ = server.Close()
		sent <- err
	}()

	read := make(chan error, 1)
	go func() { read <- readSlowly(client) }()

	longest, took := watchCounter(t, counter, size)

	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	if longest > 1500*time.Millisecond {
		t.Errorf("the counter stood still for %v while the download ran (%v in all)", longest, took)
	}
}

// watchCounter samples counter until it reaches size, and returns the
// longest time it stood still and the time it took.
func watchCounter(t *testing.T, counter prometheus.Counter, size float64) (longest, took time.Duration) {
	t.Helper()

	start := time.Now()
	changed, last := start, 0.0

	for v := 0.0; v < size; {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the counter is at %v after 30 s, want %v", v, size)
		}

		time.Sleep(20 * time.Millisecond)

		if v = testutil.ToFloat64(counter); v != last {
			longest = max(longest, time.Since(changed))
			changed, last = time.Now(), v
		}
	}

	took = time.Since(start)
	t.Logf("%v bytes in %v, the counter stood still for %v at most", size, took, longest)

	if v := testutil.ToFloat64(counter); v != size {
		t.Errorf("counted %v bytes, want %v", v, size)
	}

	return longest, took
}

// tcpPair returns the two ends of a TCP connection on loopback.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()

	d := net.Dialer{Timeout: 5 * time.Second}

	client, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}

	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })

	return server.(*net.TCPConn), client.(*net.TCPConn)
}

// readSlowly reads data to its end at the slow pace.
func readSlowly(data net.Conn) error {
	buf := make([]byte, slowPiece)

	for {
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))

		if _, err := io.ReadFull(data, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}

			return err
		}

		time.Sleep(slowPace)
	}
}

// writeSlowly sends size bytes at the slow pace, then closes data.
func writeSlowly(data net.Conn, size int) error {
	piece := ftptest.RandomBytes(slowPiece)

	for sent := 0; sent < size; sent += len(piece) {
		if _, err := data.Write(piece); err != nil {
			return err
		}

		time.Sleep(slowPace)
	}

	return data.Close()
}

// Each refused command counts once, under its reason; a failure that
// refuses nothing (a missing file) does not count.
func TestRefusedCommandsCounted(t *testing.T) {
	t.Parallel()

	anonymous := func(t *testing.T) *testServer {
		t.Helper()

		f, _ := anonFixture(t)

		return startServer(t, f)
	}

	tests := []struct {
		name   string
		server func(t *testing.T) *testServer
		run    func(t *testing.T, ts *testServer)
		reason string // "" for none
	}{
		{"an unknown command is a syntax error", anonymous, func(t *testing.T, ts *testServer) {
			t.Helper()

			ts.raw(t).Must(500, "FROB")
		}, refusedSyntax},
		{"a listing before login needs a login", anonymous, func(t *testing.T, ts *testServer) {
			t.Helper()

			ts.raw(t).Must(530, "LIST")
		}, refusedNotLoggedIn},
		{"a folder made by a read-only account is not permitted", anonymous, func(t *testing.T, ts *testServer) {
			t.Helper()

			c := ts.raw(t)
			c.Login("anonymous", "x")
			c.Must(550, "MKD /new")
		}, refusedPermission},
		{"an upload over max_upload_size hits a limit", func(t *testing.T) *testServer {
			t.Helper()

			ts, _ := dropBoxServer(t, true)

			return ts
		}, func(t *testing.T, ts *testServer) {
			t.Helper()

			c := ts.dial(t, "anonymous", "x")
			if err := c.Stor("/incoming/big.bin", bytes.NewReader(make([]byte, 1<<20+1))); err == nil {
				t.Fatal("an upload over the limit landed")
			}
		}, refusedLimit},
		{"a clear login where TLS is required needs TLS", func(t *testing.T) *testServer {
			t.Helper()

			return startServer(t, tlsFixture(t, TLSRequired))
		}, func(t *testing.T, ts *testServer) {
			t.Helper()

			ts.raw(t).Must(530, "USER anonymous")
		}, refusedTLSRequired},
		{"a missing file refuses nothing", anonymous, func(t *testing.T, ts *testServer) {
			t.Helper()

			c := ts.raw(t)
			c.Login("anonymous", "x")
			c.Must(550, "SIZE /no-such-file")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			ts := tt.server(t)
			tt.run(t, ts)

			total := 0.0
			for _, r := range commandRefusals {
				n := testutil.ToFloat64(ts.srv.metrics.refusedCommands.WithLabelValues(r))
				total += n

				if want := map[bool]float64{true: 1}[r == tt.reason]; n != want {
					t.Errorf("wharf_commands_refused_total{reason=%q} = %v, want %v", r, n, want)
				}
			}

			if tt.reason == "" && total != 0 {
				t.Errorf("%v refusals counted, want none", total)
			}
		})
	}
}

// Failed TLS handshakes count, on the control connection (after AUTH TLS,
// and on the implicit port) and on data connections; a client that
// connects and closes without a byte does not.
func TestTLSHandshakeFailuresCounted(t *testing.T) {
	t.Parallel()

	failures := func(ts *testServer, conn int) func() float64 {
		return func() float64 { return testutil.ToFloat64(ts.srv.metrics.tlsFailures[conn]) }
	}

	t.Run("plain text after AUTH TLS", func(t *testing.T) {
		t.Parallel()

		ts := startServer(t, tlsFixture(t, TLSExplicit))
		c := ts.raw(t)
		c.Must(234, "AUTH TLS")
		_, _ = io.WriteString(c.Conn, "USER anonymous\r\n")

		control := failures(ts, tlsControl)
		ftptest.WaitFor(t, 5*time.Second, func() bool { return control() == 1 })
	})

	t.Run("plain text on the implicit port, after a probe that only connects", func(t *testing.T) {
		t.Parallel()

		ts := startServer(t, tlsFixture(t, TLSImplicit))

		probe, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = probe.Close()
		ftptest.WaitFor(t, 5*time.Second, func() bool { return ts.logs.FilterMessage("session closed").Len() == 1 })

		control := failures(ts, tlsControl)
		if n := control(); n != 0 {
			t.Fatalf("a connection that sent nothing counted %v failed handshakes", n)
		}

		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "USER anonymous\r\n")

		ftptest.WaitFor(t, 5*time.Second, func() bool { return control() == 1 })
	})

	t.Run("a data connection that does not resume the session", func(t *testing.T) {
		t.Parallel()

		ts := startServer(t, tlsFixture(t, TLSExplicit))
		c := ts.raw(t)
		c.Must(234, "AUTH TLS")
		c = ftptest.NewCtl(t, tls.Client(c.Conn, clientTLS()))
		c.Must(200, "PBSZ 0")
		c.Must(200, "PROT P")
		c.Login("anonymous", "x")

		raw := c.DialPasv()
		c.Must(150, "RETR /README.txt")

		fresh := clientTLS()
		fresh.ClientSessionCache = nil
		_ = tls.Client(raw, fresh).Handshake()
		c.Expect(522)

		if n := failures(ts, tlsData)(); n != 1 {
			t.Errorf("data handshake failures = %v, want 1", n)
		}
		if n := testutil.ToFloat64(ts.srv.metrics.refusedCommands.WithLabelValues(refusedTLSRequired)); n != 1 {
			t.Errorf("refused for TLS = %v, want 1", n)
		}
		if n := failures(ts, tlsControl)(); n != 0 {
			t.Errorf("control handshake failures = %v, want 0", n)
		}
	})
}

// A PASV that finds every passive port held counts, and is refused.
func TestPassivePortsExhaustedCounted(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.PassivePortEnd = f.opts.PassivePortStart // one port
	ts := startServer(t, f)

	first := ts.raw(t)
	first.Login("anonymous", "x")
	first.Pasv() // holds the port

	second := ts.raw(t)
	second.Login("anonymous", "x")
	if code, msg := second.Cmd("PASV"); code == 227 {
		t.Fatalf("a second PASV got the only port: %s", msg)
	}

	if n := testutil.ToFloat64(ts.srv.metrics.passiveExhausted); n != 1 {
		t.Errorf("wharf_passive_ports_exhausted_total = %v, want 1", n)
	}
}

// wharf_bans_active counts banned addresses, as wharf_bans (its first name) does.
func TestBansActive(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadOnly)
	f.opts.Ban = BanOptions{MaxFailures: 1, Window: time.Minute, Duration: time.Minute}
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Must(331, "USER alice")
	c.Must(530, "PASS wrong")

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_bans Client addresses banned now for failed logins.
# TYPE wharf_bans gauge
wharf_bans 1
# HELP wharf_bans_active Client addresses banned now for failed logins.
# TYPE wharf_bans_active gauge
wharf_bans_active 1
`), "wharf_bans", "wharf_bans_active"); err != nil {
		t.Error(err)
	}
}

// /sessions says, per session, whether the control connection is TLS and
// whether data connections are (PROT P).
func TestSessionsShowTLS(t *testing.T) {
	t.Parallel()

	ts := startServer(t, tlsFixture(t, TLSExplicit))

	plain := ts.raw(t)
	plain.Login("anonymous", "x")

	c := ts.raw(t)
	c.Must(234, "AUTH TLS")
	c = ftptest.NewCtl(t, tls.Client(c.Conn, clientTLS()))
	c.Must(200, "PBSZ 0")
	c.Login("anonymous", "x")

	tlsOf := func() [][2]bool {
		var got [][2]bool
		for _, s := range ts.srv.Sessions() {
			got = append(got, [2]bool{s.TLS, s.DataTLS})
		}

		return got
	}

	if got := tlsOf(); len(got) != 2 || got[0] != [2]bool{false, false} || got[1] != [2]bool{true, false} {
		t.Errorf("before PROT P: sessions' (TLS, data TLS) = %v, want [clear, TLS control only]", got)
	}

	c.Must(200, "PROT P")
	if got := tlsOf(); len(got) != 2 || got[1] != [2]bool{true, true} {
		t.Errorf("after PROT P: sessions' (TLS, data TLS) = %v", got)
	}
}
