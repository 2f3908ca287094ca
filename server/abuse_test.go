package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func TestLoginTimeout(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.LoginTimeout = 500 * time.Millisecond
	ts := startServer(t, f)

	t.Run("a session that only sends NOOP is closed", func(t *testing.T) {
		t.Parallel()

		c := ts.raw(t)
		start := time.Now()
		for time.Since(start) < 3*time.Second {
			if err := c.Text.PrintfLine("NOOP"); err != nil {
				break
			}

			code, _, err := c.Text.ReadResponse(0)
			if err != nil || code == 421 {
				break
			}

			time.Sleep(50 * time.Millisecond)
		}

		if took := time.Since(start); took < 400*time.Millisecond || took > 2*time.Second {
			t.Fatalf("closed after %v, want about 500ms", took)
		}
	})

	t.Run("a logged-in session stays", func(t *testing.T) {
		t.Parallel()

		c := ts.raw(t)
		c.Login("anonymous", "x")
		time.Sleep(time.Second)
		c.Must(200, "NOOP")
	})
}

func TestGreetingDeadline(t *testing.T) {
	t.Parallel()

	f := tlsFixture(t, TLSImplicit)
	f.opts.GreetingTimeout = 300 * time.Millisecond
	ts := startServer(t, f)

	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"a silent client", nil},
		{"half a TLS handshake", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}},
	} {
		t.Run(tc.name+" on the implicit-TLS port is dropped", func(t *testing.T) {
			t.Parallel()

			conn, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			if tc.send != nil {
				_, _ = conn.Write(tc.send)
			}

			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server kept the connection open")
			}

			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("dropped after %v", took)
			}
		})
	}

	t.Run("a real TLS client is still served", func(t *testing.T) {
		t.Parallel()

		conn, err := tls.Dial("tcp", ts.addr, clientTLS())
		if err != nil {
			t.Fatal(err)
		}

		c := ftptest.NewCtl(t, conn)
		c.Expect(220)
		c.Login("anonymous", "x")
	})
}

func TestActivePortFloor(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	// As root, listen on a low port to prove no connection is made.
	low, err := net.Listen("tcp", "127.0.0.1:1021")
	if err == nil {
		defer low.Close()
	}

	for _, command := range []string{
		"PORT 127,0,0,1,3,253",
		"EPRT |1|127.0.0.1|1021|",
		"EPRT |1|127.0.0.1|22|",
		"PORT 127,0,0,1,0",
		"EPRT |1|127.0.0.1|notaport|",
	} {
		code, msg := c.Cmd("%s", command)
		if code != 501 {
			t.Errorf("%s: got %d %q, want 501", command, code, msg)
		}
	}

	if low != nil {
		_ = low.(*net.TCPListener).SetDeadline(time.Now().Add(300 * time.Millisecond))
		c.Pasv() // any later transfer must not reach the low port
		if conn, err := low.Accept(); err == nil {
			_ = conn.Close()
			t.Fatal("the server connected to a port below 1024")
		}
	}

	t.Run("a port at or above 1024 still works", func(*testing.T) {
		c.Must(200, "EPRT |1|127.0.0.1|1024|")
	})
}

func TestStalledTransfersAreCut(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name    string
		command string
		ascii   bool
	}{
		{"a download whose peer never reads", "RETR /huge.bin", false},
		{"an ASCII download whose peer never reads", "RETR /huge.bin", true},
		{"an upload whose peer sends nothing", "STOR /silent.bin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, home := userFixture(t, auth.ReadWrite)
			writeFile(t, filepath.Join(home, "huge.bin"), ftptest.RandomBytes(64<<20))
			f.opts.DataTimeout = 500 * time.Millisecond
			ts := startServer(t, f)

			c := ts.raw(t)
			c.Login("alice", testPassword)
			if tc.ascii {
				c.Must(200, "TYPE A")
			}

			data := c.DialPasv()
			defer data.Close()

			start := time.Now()
			c.Must(150, "%s", tc.command)

			// The session is closed: the control connection ends.
			_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				if _, _, err := c.Text.ReadResponse(0); err != nil {
					break
				}
			}

			if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
				t.Fatalf("cut after %v, want about 500ms", took)
			}

			waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

			if _, err := os.Stat(filepath.Join(home, "silent.bin")); err == nil {
				t.Error("the stalled upload left a file")
			}

			noTempFiles(t, home)
			if !strings.Contains(ts.logs.FilterMessage("transfer stalled, closing session").All()[0].Message, "stalled") {
				t.Error("no stall log line")
			}
		})
	}
}

// Before login, unknown, premature and over-long command lines are answered
// and counted: the tenth closes the connection with 421, only the first three
// are logged (with a short prefix of what was sent), then one summary line.
// After login they close nothing.
func TestJunkBeforeLoginClosesTheConnection(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)

	c := ts.raw(t)
	long := strings.Repeat("X", 4000)
	for i := range maxJunk - 1 {
		switch i % 3 {
		case 0:
			c.Must(500, "%s garbage", long)
		case 1:
			c.Must(530, "RETR %s", long)
		default:
			c.Must(500, "%s", strings.Repeat("Y", maxCommandLine+10))
		}
	}

	c.Must(331, "USER anonymous") // known verbs are not junk
	c.Must(421, "BOGUS")

	if code, msg, err := c.Text.ReadResponse(0); err == nil {
		t.Errorf("after 421 the connection is still open: %d %s", code, msg)
	}

	logged := ts.logs.FilterMessageSnippet("before login")
	if n := logged.Len(); n != junkLogLines+1 {
		t.Errorf("%d log lines about junk, want %d: %v", n, junkLogLines+1, logged.All())
	}

	for _, e := range logged.All() {
		for _, f := range e.Context {
			if len(f.String) > junkLogBytes+3 {
				t.Errorf("a log line carries %d bytes of the client's: %q", len(f.String), f.String)
			}
		}
	}

	d := ts.raw(t)
	d.Login("anonymous", "x")
	for range maxJunk + 2 {
		d.Must(500, "BOGUS")
	}

	d.Must(200, "NOOP")
}
