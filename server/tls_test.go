package server

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func tlsFixture(t *testing.T, mode TLSMode) fixture {
	t.Helper()

	f, _ := anonFixture(t)
	f.opts.TLSMode = mode
	f.opts.RequireSessionReuse = true // the default of [tls] require_session_reuse
	f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)

	return f
}

func TestExplicitTLS(t *testing.T) {
	t.Parallel()

	f := tlsFixture(t, TLSExplicit)
	ts := startServer(t, f)

	t.Run("FEAT offers AUTH TLS", func(t *testing.T) {
		c := ts.raw(t)
		if msg := c.Must(211, "FEAT"); !strings.Contains(msg, "AUTH TLS") {
			t.Fatalf("FEAT: %s", msg)
		}
	})

	t.Run("a client lists and downloads over TLS", func(t *testing.T) {
		c := ts.dial(t, "anonymous", "x", ftp.DialWithExplicitTLS(clientTLS()))
		if _, err := c.List("/"); err != nil {
			t.Fatal(err)
		}

		if got := ftptest.Retr(t, c, "/README.txt"); string(got) != "hello from wharf\n" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("a plain login still works", func(t *testing.T) {
		c := ts.dial(t, "anonymous", "x")
		if got := ftptest.Retr(t, c, "/README.txt"); string(got) != "hello from wharf\n" {
			t.Fatalf("got %q", got)
		}
	})
}

// FileZilla refuses a data connection that does not resume the control
// connection's TLS session.
func TestDataConnectionResumesTLSSession(t *testing.T) {
	t.Parallel()

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			t.Parallel()

			f := tlsFixture(t, TLSExplicit)
			ts := startServer(t, f)
			cfg := clientTLS()
			cfg.MaxVersion = version

			c := ts.raw(t)
			c.Must(234, "AUTH TLS")
			tc := tls.Client(c.Conn, cfg)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			if tc.ConnectionState().Version != version {
				t.Fatalf("negotiated %x", tc.ConnectionState().Version)
			}

			c = ftptest.NewCtl(t, tc)
			c.Must(200, "PBSZ 0")
			c.Must(200, "PROT P")
			c.Login("anonymous", "x")

			for i := range 2 {
				raw := c.DialPasv()

				c.Must(150, "RETR /README.txt")
				data := tls.Client(raw, cfg)
				if err := data.Handshake(); err != nil {
					t.Fatal(err)
				}

				if !data.ConnectionState().DidResume {
					t.Fatalf("data connection %d did not resume the TLS session", i)
				}

				if got := readAllFrom(t, data); string(got) != "hello from wharf\n" {
					t.Fatalf("got %q", got)
				}

				c.Expect(226)
			}
		})
	}
}

func TestRequiredTLS(t *testing.T) {
	t.Parallel()

	f := tlsFixture(t, TLSRequired)
	ts := startServer(t, f)

	t.Run("a plain login is refused, anonymous included", func(t *testing.T) {
		c := ts.raw(t)
		if code, _ := c.Cmd("USER anonymous"); code != 421 && code != 530 {
			t.Fatalf("USER without TLS: got %d", code)
		}
	})

	t.Run("PASS without USER on a plain connection is refused", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(503, "PASS x")
	})

	t.Run("a TLS login works, and a clear data connection is refused", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(234, "AUTH TLS")
		tc := tls.Client(c.Conn, clientTLS())
		c = ftptest.NewCtl(t, tc)
		c.Login("anonymous", "x")
		c.Must(200, "PROT C")
		conn := c.DialPasv()
		defer conn.Close()

		if code, _ := c.Cmd("RETR /README.txt"); code != 522 {
			t.Fatalf("clear data connection: got %d, want 522", code)
		}
	})

	t.Run("the library client works with TLS", func(t *testing.T) {
		c := ts.dial(t, "anonymous", "x", ftp.DialWithExplicitTLS(clientTLS()))
		if got := ftptest.Retr(t, c, "/README.txt"); string(got) != "hello from wharf\n" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()

	f := tlsFixture(t, TLSImplicit)
	ts := startServer(t, f)

	c := ts.dial(t, "anonymous", "x", ftp.DialWithTLS(clientTLS()))
	if got := ftptest.Retr(t, c, "/pub/big.bin"); len(got) != 1<<20 {
		t.Fatalf("got %d bytes", len(got))
	}

	t.Run("a plain-text client gets no greeting", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		_ = conn.SetDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 3)
		if n, _ := conn.Read(buf); n == 3 && string(buf) == "220" {
			t.Fatal("implicit TLS port spoke plain text")
		}
	})
}

// A reload with a new certificate applies to the next TLS handshake.
func TestReloadChangesCertificate(t *testing.T) {
	t.Parallel()

	f := tlsFixture(t, TLSExplicit)
	ts := startServer(t, f)

	serial := func() string {
		t.Helper()

		c := ts.raw(t)
		c.Must(234, "AUTH TLS")
		tc := tls.Client(c.Conn, clientTLS())
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}

		return string(tc.ConnectionState().PeerCertificates[0].Signature)
	}

	before := serial()

	cert, key := ftptest.CertFiles(t)
	accounts, err := auth.New(auth.Options{Anonymous: true, AnonymousRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	if err := ts.srv.Reload(Reload{Accounts: accounts, TLSCertFile: cert, TLSKeyFile: key}); err != nil {
		t.Fatal(err)
	}

	if serial() == before {
		t.Fatal("the handshake after the reload still shows the old certificate")
	}

	if err := ts.srv.Reload(Reload{Accounts: accounts, TLSCertFile: "/nonexistent.pem", TLSKeyFile: key}); err == nil {
		t.Fatal("a reload with a missing certificate was accepted")
	}
}
