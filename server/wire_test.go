package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// lowPort is the port below 1024 the PORT tests aim at: nothing may ever connect to it.
const lowPort = 1000

// TestPortRulesHoldWholeSession tries every way the port floor used to be
// switched off: a refused AUTH, AUTH with a leading blank, and a real AUTH
// (the old filter could not read inside TLS). PORT and EPRT to port 1000
// are refused in all of them, and nothing connects there.
func TestPortRulesHoldWholeSession(t *testing.T) {
	t.Parallel()

	// As root (CI), listen on the low port to prove no connection is made.
	low, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(lowPort)))
	if err == nil {
		t.Cleanup(func() { _ = low.Close() })
	}

	plain := startServer(t, fixtureWith(t, TLSOff))
	explicit := startServer(t, fixtureWith(t, TLSExplicit))
	implicit := startServer(t, fixtureWith(t, TLSImplicit))

	for _, tc := range []struct {
		name string
		open func(t *testing.T) *ftptest.Ctl
	}{
		{"after AUTH refused with TLS off", func(t *testing.T) *ftptest.Ctl {
			t.Helper()
			c := plain.raw(t)
			c.Must(502, "AUTH TLS")

			return c
		}},
		{"after AUTH with a leading blank", func(t *testing.T) *ftptest.Ctl {
			t.Helper()
			c := explicit.raw(t)
			c.Must(500, " AUTH TLS")

			return c
		}},
		{"after a real AUTH TLS", func(t *testing.T) *ftptest.Ctl {
			t.Helper()

			return startTLS(t, explicit.raw(t))
		}},
		{"in implicit TLS", func(t *testing.T) *ftptest.Ctl {
			t.Helper()

			return implicitCtl(t, implicit)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.open(t)
			c.Login("anonymous", "x")

			for _, cmd := range []string{
				fmt.Sprintf("PORT 127,0,0,1,%d,%d", lowPort>>8, lowPort&0xff),
				fmt.Sprintf("EPRT |1|127.0.0.1|%d|", lowPort),
				"EPRT |1|127.0.0.1|22|",
			} {
				if code, msg := c.Cmd("%s", cmd); code != 501 {
					t.Fatalf("%s: got %d %q, want 501", cmd, code, msg)
				}
			}

			// Nothing was prepared: a transfer has no data connection.
			c.Must(425, "LIST")
		})
	}

	if low != nil {
		_ = low.(*net.TCPListener).SetDeadline(time.Now().Add(300 * time.Millisecond))
		if conn, err := low.Accept(); err == nil {
			_ = conn.Close()
			t.Fatalf("wharf connected to port %d", lowPort)
		}
	}
}

// fixtureWith is anonFixture with a TLS mode.
func fixtureWith(t *testing.T, mode TLSMode) fixture {
	t.Helper()

	if mode == TLSOff {
		f, _ := anonFixture(t)

		return f
	}

	return tlsFixture(t, mode)
}

// implicitCtl opens a control connection to an implicit-TLS server.
func implicitCtl(t *testing.T, ts *testServer) *ftptest.Ctl {
	t.Helper()

	cfg := clientTLS()
	conn, err := tls.Dial("tcp", ts.addr, cfg)
	if err != nil {
		t.Fatalf("dial implicit TLS: %v", err)
	}

	c := ftptest.NewCtl(t, conn)
	c.TLS = cfg
	c.Expect(220)

	return c
}

// TestRequiredModeSendsNothingInClear: with mode = "required", no byte of
// data crosses in clear, whatever the order of PROT and PASV.
func TestRequiredModeSendsNothingInClear(t *testing.T) {
	t.Parallel()

	ts := startServer(t, tlsFixture(t, TLSRequired))
	c := startTLS(t, ts.raw(t))
	c.Login("anonymous", "x")

	for _, tc := range []struct {
		name     string
		sequence []string // before the data connection is dialled and LIST sent
		want     int
	}{
		{"PROT C, PASV, PROT P, LIST", []string{"PROT C", "PASV", "PROT P"}, 503},
		{"PROT C, PASV, LIST", []string{"PROT C", "PASV"}, 522},
		{"PROT P, PASV, PROT C, LIST", []string{"PROT P", "PASV", "PROT C"}, 522},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data net.Conn
			for _, cmd := range tc.sequence {
				if cmd == "PASV" {
					data = c.DialPasv()

					continue
				}

				c.Must(200, "%s", cmd)
			}

			c.Must(tc.want, "LIST")

			_ = data.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _ := data.Read(make([]byte, 64)); n > 0 {
				t.Fatalf("%d bytes crossed on the data connection", n)
			}
		})
	}

	t.Run("PROT P, PASV, LIST lists over TLS", func(t *testing.T) {
		c.Must(200, "PROT P")
		raw := c.DialPasv()
		c.Must(150, "LIST /")

		data := tls.Client(raw, c.TLS)
		if got := readAllFrom(t, data); !strings.Contains(string(got), "README.txt") {
			t.Fatalf("listing over TLS: %q", got)
		}

		c.Expect(226)
	})
}

// TestAccountTLSRules: in explicit mode password accounts log in over TLS
// only by default; clear_text_accounts and a user's own rule change that.
func TestAccountTLSRules(t *testing.T) {
	t.Parallel()

	users := []auth.User{
		{Name: "alice", PasswordHash: testHash, Home: makeTree(t), Access: auth.ReadWrite},
		{Name: "bob", PasswordHash: testHash, Home: makeTree(t), Access: auth.ReadWrite, TLS: auth.TLSOptional},
		{Name: "carol", PasswordHash: testHash, Home: makeTree(t), Access: auth.ReadWrite, TLS: auth.TLSRequired},
	}

	for _, tc := range []struct {
		name      string
		clearText bool
		clear     map[string]bool // who may log in in clear
	}{
		{"by default", false, map[string]bool{"alice": false, "bob": true, "carol": false, "mallory": false}},
		{"with clear_text_accounts", true, map[string]bool{"alice": true, "bob": true, "carol": false, "mallory": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f := tlsFixture(t, TLSExplicit)
			ts := startServerWith(t, f, auth.Options{Users: users, Anonymous: true, AnonymousRoot: f.anon, ClearTextAccounts: tc.clearText})

			for user, allowed := range tc.clear {
				c := ts.raw(t)
				code, msg := c.Cmd("USER %s", user)

				switch {
				case allowed && code != 331:
					t.Errorf("%s in clear: got %d %q, want 331", user, code, msg)
				case !allowed && (code != 530 || !strings.Contains(msg, "TLS")):
					t.Errorf("%s in clear: got %d %q, want 530 saying to use TLS", user, code, msg)
				}
			}

			// Over TLS everyone logs in; an account that must use TLS
			// transfers only with PROT P.
			c := startTLS(t, ts.raw(t))
			c.Login("carol", testPassword)
			c.Must(200, "PROT C")
			c.Must(227, "PASV")
			c.Must(522, "LIST")

			// One that may use clear text transfers in clear.
			b := ts.raw(t)
			b.Login("bob", testPassword)
			data := b.DialPasv()
			b.Must(150, "NLST /")
			if got := readAllFrom(t, data); !strings.Contains(string(got), "README.txt") {
				t.Fatalf("bob's clear listing: %q", got)
			}
			b.Expect(226)
		})
	}
}

// breakMode is how a data-connection test reaches wharf.
type breakMode struct {
	name   string
	tls    TLSMode
	secure bool // data over TLS (PROT P)
}

var breakModes = []breakMode{{"clear", TLSOff, false}, {"explicit TLS", TLSExplicit, true}, {"implicit TLS", TLSImplicit, true}}

// loginForData opens a control connection in m as alice (read-write), with
// PROT P where the connection is TLS.
func loginForData(t *testing.T, ts *testServer, m breakMode) *ftptest.Ctl {
	t.Helper()

	var c *ftptest.Ctl
	switch m.tls {
	case TLSImplicit:
		c = implicitCtl(t, ts)
	case TLSExplicit, TLSRequired:
		c = startTLS(t, ts.raw(t))
	case TLSOff:
		c = ts.raw(t)
	}

	c.Login("alice", testPassword)
	if m.secure {
		c.Must(200, "PBSZ 0")
		c.Must(200, "PROT P")
	}

	return c
}

// dialSmall sends PASV and dials the data address with a small receive
// buffer, so that a server that keeps writing blocks at once.
func dialSmall(t *testing.T, c *ftptest.Ctl) *net.TCPConn {
	t.Helper()

	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}

	conn, err := d.DialContext(t.Context(), "tcp", c.Pasv())
	if err != nil {
		t.Fatalf("dial data connection: %v", err)
	}

	t.Cleanup(func() { _ = conn.Close() })

	return conn.(*net.TCPConn)
}

// TestDataConnectionBreaks: a data connection reset during RETR, STOR, APPE,
// LIST, NLST or MLSD gets 426 within a second, and the session goes on, in
// clear and in TLS alike.
func TestDataConnectionBreaks(t *testing.T) {
	t.Parallel()

	// Listings bigger than what the kernel buffers on loopback (up to 4 MiB
	// of send buffer), so the server is still writing when the reset comes.
	home := makeTree(t)
	writeFile(t, filepath.Join(home, "big.bin"), ftptest.RandomBytes(16<<20))
	many := filepath.Join(home, "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}

	for i := range 30_000 {
		name := filepath.Join(many, fmt.Sprintf("%s-%05d.txt", strings.Repeat("long-name-", 18), i))
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	for _, m := range breakModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()

			f := fixtureWith(t, m.tls)
			f.users = []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}
			ts := startServer(t, f)

			for _, tc := range []struct {
				cmd    string
				upload bool
			}{
				{"RETR /big.bin", false}, {"LIST /many", false}, {"NLST /many", false}, {"MLSD /many", false},
				{"STOR /cut.bin", true}, {"APPE /README.txt", true},
			} {
				t.Run(tc.cmd, func(t *testing.T) {
					c := loginForData(t, ts, m)
					upload := tc.upload
					raw := dialSmall(t, c)
					c.Must(150, "%s", tc.cmd)

					var data net.Conn = raw
					if m.secure {
						tc := tls.Client(raw, c.TLS)
						if err := tc.Handshake(); err != nil {
							t.Fatalf("data TLS handshake: %v", err)
						}

						data = tc
					}

					if upload {
						_, _ = data.Write(ftptest.RandomBytes(64 << 10))
					} else if _, err := io.ReadFull(data, make([]byte, 1000)); err != nil {
						t.Fatalf("read the start of the data: %v", err)
					}

					_ = raw.SetLinger(0)
					_ = raw.Close()
					start := time.Now()

					code, msg := c.Read()
					if code != 426 {
						t.Fatalf("after the reset: got %d %q, want 426", code, msg)
					}

					if took := time.Since(start); took > time.Second {
						t.Fatalf("426 came after %v", took)
					}

					c.Must(200, "NOOP")
				})
			}

		})
	}

	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(home, "cut.bin")); !os.IsNotExist(err) {
			t.Errorf("a cut upload left cut.bin behind (%v)", err)
		}
	})
}

// failingRoot serves files whose reads fail after failAfter bytes, as a
// disk with a bad sector would.
type failingRoot struct{ afero.Fs }

const failAfter = 256 << 10

func (failingRoot) Close() error { return nil }

func (r failingRoot) Open(name string) (afero.File, error) {
	return r.OpenFile(name, os.O_RDONLY, 0)
}

func (r failingRoot) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := r.Fs.OpenFile(name, flag, perm)
	if err != nil || flag != os.O_RDONLY {
		return f, err
	}

	return &failingFile{File: f}, nil
}

type failingFile struct {
	afero.File
	read int
}

func (f *failingFile) Read(p []byte) (int, error) {
	if f.read >= failAfter {
		return 0, &fs.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}

	n, err := f.File.Read(p[:min(len(p), failAfter-f.read)])
	f.read += n

	return n, err
}

// TestLocalErrorIs451: a file that cannot be read to its end gets 451, in
// clear and in TLS, in TYPE I and in TYPE A (the engine's own copy loop).
func TestLocalErrorIs451(t *testing.T) {
	t.Parallel()

	mem := afero.NewMemMapFs()
	if err := afero.WriteFile(mem, "/big.bin", ftptest.RandomBytes(1<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, m := range breakModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()

			f := fixtureWith(t, m.tls)
			f.users = []auth.User{{Name: "alice", PasswordHash: testHash, Home: "/", Access: auth.ReadWrite}}
			f.opts.Storage = func(string, bool) (Root, error) { return failingRoot{Fs: mem}, nil }
			ts := startServer(t, f)

			for _, typ := range []string{"I", "A"} {
				c := loginForData(t, ts, m)
				c.Must(200, "TYPE %s", typ)
				data, _ := openData(t, c, m, "RETR /big.bin")

				got, _ := io.ReadAll(data)
				code, msg := c.Read()
				if code != 451 || !strings.Contains(strings.ToLower(msg), "input/output error") {
					t.Fatalf("TYPE %s: got %d %q after %d bytes, want 451 naming the error", typ, code, msg, len(got))
				}

				c.Must(200, "NOOP")
			}
		})
	}
}

// openData sends PASV, then cmd, and returns the data connection (in TLS
// where m protects data) once the 150 came, and the 150's text.
func openData(t *testing.T, c *ftptest.Ctl, m breakMode, cmd string) (net.Conn, string) {
	t.Helper()

	raw := c.DialPasv()
	msg := c.Must(150, "%s", cmd)
	if !m.secure {
		return raw, msg
	}

	tc := tls.Client(raw, c.TLS)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("data TLS handshake: %v", err)
	}

	return tc, msg
}

// TestWrongPasswordsOnOneConnection: a wrong password gets 530 and the
// client may try again; the third failure closes the connection, and each
// failure counts toward the address's ban.
func TestWrongPasswordsOnOneConnection(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.opts.Ban = BanOptions{MaxFailures: 5, Window: time.Minute, Duration: time.Minute}
	ts := startServer(t, f)

	t.Run("two wrong passwords, then the right one", func(t *testing.T) {
		c := ts.raw(t)
		for range 2 {
			c.Must(331, "USER alice")
			c.Must(530, "PASS wrong")
		}

		c.Login("alice", testPassword)
		c.Must(257, "PWD")
	})

	t.Run("the third wrong password closes the connection", func(t *testing.T) {
		c := ts.raw(t)
		for range 2 {
			c.Must(331, "USER alice")
			c.Must(530, "PASS wrong")
		}

		c.Must(331, "USER alice")
		c.Must(530, "PASS wrong")

		_ = c.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := c.Text.ReadResponse(0); err == nil {
			t.Fatal("the connection stayed open after the third failure")
		}
	})

	// Five failures so far from 127.0.0.1: it is banned.
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.HasPrefix(line, "421") {
		t.Fatalf("after five failures a new connection got %q, want 421 (banned)", line)
	}
}

// TestStoreUnique: STOU stores under a new name in the current folder and
// says which (150 FILE: name), never over an existing file.
func TestStoreUnique(t *testing.T) {
	t.Parallel()

	for _, m := range breakModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()

			f := fixtureWith(t, m.tls)
			home := makeTree(t)
			f.users = []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}
			c := loginForData(t, startServer(t, f), m)

			stou := func(arg string, payload []byte) string {
				t.Helper()

				data, msg := openData(t, c, m, "STOU"+arg)
				if _, err := data.Write(payload); err != nil {
					t.Fatal(err)
				}
				_ = data.Close()
				c.Expect(226)

				name, ok := strings.CutPrefix(msg, "FILE: ")
				if !ok {
					t.Fatalf("STOU's 150 says %q, want FILE: <name>", msg)
				}

				got, err := os.ReadFile(filepath.Join(home, "pub", name))
				if err != nil || string(got) != string(payload) {
					t.Fatalf("STOU stored %q as %q: %v", payload, got, err)
				}

				return name
			}

			c.Must(250, "CWD /pub")
			if a, b := stou("", []byte("one")), stou("", []byte("two")); a == b {
				t.Fatalf("two STOU chose the same name %q", a)
			}

			if name := stou(" lf.txt", []byte("three")); name != "lf.txt.1" {
				t.Fatalf("STOU lf.txt stored as %q, want lf.txt.1 (lf.txt exists)", name)
			}

			if got, _ := os.ReadFile(filepath.Join(home, "pub", "lf.txt")); string(got) != "line one\nline two\n" {
				t.Fatalf("STOU changed the existing lf.txt: %q", got)
			}
		})
	}

	f, home := userFixture(t, auth.ReadWrite)
	f.anon = makeTree(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("alice", testPassword)

	t.Run("refused where STOR is", func(t *testing.T) {
		a := ts.raw(t)
		a.Login("anonymous", "x")
		a.DialPasv()
		a.Must(550, "STOU")
	})

	t.Run("a cut STOU leaves nothing", func(t *testing.T) {
		data := dialSmall(t, c)
		msg := c.Must(150, "STOU cut.bin")
		_, _ = data.Write(ftptest.RandomBytes(64 << 10))
		_ = data.SetLinger(0)
		_ = data.Close()
		c.Expect(426)

		name, _ := strings.CutPrefix(msg, "FILE: ")
		if _, err := os.Stat(filepath.Join(home, "pub", name)); !os.IsNotExist(err) {
			t.Fatalf("the cut STOU left %s (%v)", name, err)
		}
	})

	t.Run("into an anonymous drop box", func(t *testing.T) {
		box, root := dropBoxServer(t, true)
		a := box.raw(t)
		a.Login("anonymous", "x")
		a.Must(250, "CWD /incoming")

		data := a.DialPasv()
		msg := a.Must(150, "STOU someone-else.txt")
		_, _ = data.Write([]byte("mine"))
		_ = data.Close()
		a.Expect(226)

		if got, _ := os.ReadFile(filepath.Join(root, "incoming", "someone-else.txt")); string(got) != "private" {
			t.Fatalf("STOU replaced a file in the drop box: %q", got)
		}

		name, _ := strings.CutPrefix(msg, "FILE: ")
		if got, _ := os.ReadFile(filepath.Join(root, "incoming", name)); string(got) != "mine" {
			t.Fatalf("STOU stored %q as %q", name, got)
		}
	})
}

// TestAbortAsUrgentData sends ABOR as Python's ftplib and RFC 959 (4.1.3)
// do: as TCP urgent data, with or without Telnet IP and Synch before it.
func TestAbortAsUrgentData(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	writeFile(t, filepath.Join(root, "big.bin"), ftptest.RandomBytes(16<<20))
	ts := startServer(t, f)

	for _, tc := range []struct {
		name   string
		normal string // sent first, in the stream
		urgent string // sent with MSG_OOB: its last byte is the urgent byte
		after  string
	}{
		{"ABOR as urgent data (Python ftplib)", "", "ABOR\r\n", ""},
		{"IAC IP, IAC DM as urgent data, then ABOR", "\xff\xf4\xff", "\xf2", "ABOR\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			c := ts.raw(t)
			c.Login("anonymous", "x")
			data := dialSmall(t, c)
			c.Must(150, "RETR /big.bin")
			if _, err := io.ReadFull(data, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}

			sendRaw(t, c.Conn, tc.normal, 0)
			sendRaw(t, c.Conn, tc.urgent, syscall.MSG_OOB)
			sendRaw(t, c.Conn, tc.after, 0)

			code, msg := c.Read()
			if code == 426 {
				code, msg = c.Read()
			}

			if code != 226 {
				t.Fatalf("ABOR: got %d %q, want 426 and 226, or 226", code, msg)
			}

			c.Must(200, "NOOP")
		})
	}
}

func sendRaw(t *testing.T, conn net.Conn, s string, flags int) {
	t.Helper()

	if s == "" {
		return
	}

	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), []byte(s), flags, nil)

		return true
	}); err != nil || serr != nil {
		t.Fatalf("send %q: %v %v", s, err, serr)
	}
}

// writeCounter records the writes made on a connection.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()

	return c.Conn.Write(p)
}

func (c *writeCounter) taken() []string {
	c.mu.Lock()
	defer c.mu.Unlock()

	w := c.writes
	c.writes = nil

	return w
}

// TestRepliesGoOutInOneWrite counts the writes on a real session's control
// connection: each reply is one write (the engine writes a line at a time),
// pipelined commands' replies go out together, and 1xx and 227 at once.
func TestRepliesGoOutInOneWrite(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	live, _ := ts.srv.live()
	if len(live) != 1 {
		t.Fatalf("%d sessions, want 1", len(live))
	}

	ctl := live[0].ctl
	counter := &writeCounter{}
	ctl.mu.Lock()
	counter.Conn = ctl.tr
	ctl.tr = counter
	ctl.mu.Unlock()

	t.Run("a multi-line reply is one write", func(t *testing.T) {
		c.Must(211, "FEAT")
		if w := counter.taken(); len(w) != 1 || !strings.HasPrefix(w[0], "211-") || !strings.HasSuffix(w[0], "211 End\r\n") {
			t.Fatalf("FEAT went out in %d writes: %q", len(w), w)
		}

		c.Must(212, "STAT /pub")
		if w := counter.taken(); len(w) != 1 {
			t.Fatalf("STAT /pub went out in %d writes: %q", len(w), w)
		}
	})

	t.Run("pipelined replies go out together, in order", func(t *testing.T) {
		if _, err := c.Conn.Write([]byte("NOOP\r\nPWD\r\nTYPE I\r\nSYST\r\n")); err != nil {
			t.Fatal(err)
		}

		for _, want := range []int{200, 257, 200, 215} {
			c.Expect(want)
		}

		if w := counter.taken(); len(w) > 2 {
			t.Fatalf("four pipelined replies went out in %d writes: %q", len(w), w)
		}
	})

	t.Run("227 and 150 go out at once", func(t *testing.T) {
		data := c.DialPasv()
		c.Must(150, "RETR /README.txt")
		readAllFrom(t, data)
		c.Expect(226)

		if w := counter.taken(); len(w) != 3 {
			t.Fatalf("PASV, RETR: %d writes, want 3 (227, 150, 226): %q", len(w), w)
		}
	})
}

// TestGreetingWhileShuttingDown: a connection that arrives while the server
// shuts down is told 421, not the engine's 500.
func TestGreetingWhileShuttingDown(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	ts.srv.draining.Store(true)
	t.Cleanup(func() { ts.srv.draining.Store(false) })

	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := bufio.NewReader(conn).ReadString('\n'); !strings.HasPrefix(line, "421 ") {
		t.Fatalf("greeting while shutting down: %q, want 421", line)
	}
}

// lsPattern is one "ls -l" line as clients parse it.
var lsPattern = regexp.MustCompile(`^([-dlpscb])([-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) +1 ftp +ftp +(\d+) ([A-Z][a-z]{2}) ([ \d]\d) ( \d{4}|\d\d:\d\d) (.+)$`)

// TestListingsParse: LIST lines are "ls -l" lines (mode letters, dates as
// ls writes them), NLST expands patterns, MLSD sends the facts asked for.
func TestListingsParse(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	dir := filepath.Join(root, "special")
	writeFile(t, filepath.Join(dir, "setuid.bin"), []byte("x"))
	writeFile(t, filepath.Join(dir, "future.txt"), []byte("later"))
	writeFile(t, filepath.Join(dir, "old.txt"), []byte("before"))
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	for name, mode := range map[string]fs.FileMode{"setuid.bin": 0o755 | fs.ModeSetuid, "tmp": 0o777 | fs.ModeSticky} {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}

	future, past := time.Now().AddDate(1, 0, 0), time.Now().AddDate(-2, 0, 0)
	_ = os.Chtimes(filepath.Join(dir, "future.txt"), future, future)
	_ = os.Chtimes(filepath.Join(dir, "old.txt"), past, past)

	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	list := func(cmd string) []string {
		t.Helper()

		data := c.DialPasv()
		c.Must(150, "%s", cmd)
		lines := strings.Split(strings.TrimSuffix(string(readAllFrom(t, data)), "\r\n"), "\r\n")
		c.Expect(226)

		return lines
	}

	want := map[string]struct {
		mode, size, year string
	}{
		"setuid.bin": {"-rwsr-xr-x", "1", ""},
		"tmp":        {"drwxrwxrwt", "", ""},
		"future.txt": {"-rw-r--r--", "5", strconv.Itoa(future.Year())},
		"old.txt":    {"-rw-r--r--", "6", strconv.Itoa(past.Year())},
	}

	lines := list("LIST /special")
	if len(lines) != len(want) {
		t.Fatalf("LIST: %d lines, want %d: %q", len(lines), len(want), lines)
	}

	for _, line := range lines {
		m := lsPattern.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("LIST line %q is not an ls -l line", line)
		}

		w, ok := want[m[7]]
		switch {
		case !ok:
			t.Errorf("LIST listed %q", m[7])
		case m[1]+m[2] != w.mode:
			t.Errorf("%s: mode %s, want %s", m[7], m[1]+m[2], w.mode)
		case w.size != "" && m[3] != w.size:
			t.Errorf("%s: size %s, want %s", m[7], m[3], w.size)
		case w.year != "" && strings.TrimSpace(m[6]) != w.year:
			t.Errorf("%s: date field %q, want the year %s", m[7], m[6], w.year)
		}
	}

	if got := list("NLST /special/*.txt"); strings.Join(got, ",") != "/special/future.txt,/special/old.txt" {
		t.Errorf("NLST /special/*.txt: %q", got)
	}

	c.Must(250, "CWD /special")
	if got := list("NLST *.txt"); strings.Join(got, ",") != "future.txt,old.txt" {
		t.Errorf("NLST *.txt: %q", got)
	}

	c.Must(200, "OPTS MLST type;size;UNIX.mode;")
	for _, line := range list("MLSD") {
		facts, name, _ := strings.Cut(line, " ")
		if name == "setuid.bin" && facts != "Type=file;Size=1;UNIX.mode=04755;" {
			t.Errorf("MLSD setuid.bin: %q", facts)
		}

		if name == "tmp" && !strings.HasPrefix(facts, "Type=dir;") {
			t.Errorf("MLSD tmp: %q", facts)
		}
	}
}

// TestIPv6: on an IPv6 control connection EPSV and EPRT carry the data
// (RFC 2428), PASV is refused in words, and the other family is 522 (2).
func TestIPv6(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.Listen = "[::1]:0"
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	c.Must(502, "PASV")
	c.Must(522, "EPSV 1")
	if msg := c.Must(522, "EPRT |1|127.0.0.1|50000|"); !strings.Contains(msg, "(2)") {
		t.Fatalf("EPRT of IPv4 on IPv6: %q, want the protocol to use, (2)", msg)
	}

	want, err := os.ReadFile(filepath.Join(root, "README.txt"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("EPSV", func(t *testing.T) {
		msg := c.Must(229, "EPSV 2")
		port := msg[strings.Index(msg, "|||")+3 : strings.LastIndex(msg, "|")]
		data, err := net.Dial("tcp", net.JoinHostPort("::1", port))
		if err != nil {
			t.Fatal(err)
		}

		c.Must(150, "RETR /README.txt")
		if got := readAllFrom(t, data); string(got) != string(want) {
			t.Fatalf("got %q", got)
		}
		c.Expect(226)
	})

	t.Run("EPRT", func(t *testing.T) {
		l, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()

		c.Must(200, "EPRT |2|::1|%d|", l.Addr().(*net.TCPAddr).Port)
		c.Must(150, "RETR /README.txt")

		_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		data, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}

		if got := readAllFrom(t, data); string(got) != string(want) {
			t.Fatalf("got %q", got)
		}
		c.Expect(226)
	})
}

// TestWaitingIsNotIdle: a command wharf answers itself waits for the running
// transfer (RFC 959 order); that wait, longer than idle_timeout, does not
// count as the client being idle.
func TestWaitingIsNotIdle(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.IdleTimeout = time.Second
	writeFile(t, filepath.Join(root, "slow.bin"), ftptest.RandomBytes(5<<19))
	// 1 MiB/s: the 2.5 MiB take 2.5 s.
	ts := startServerWith(t, f, auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousDownloadLimit: 1 << 20})

	c := ts.raw(t)
	c.Login("anonymous", "x")
	data := c.DialPasv()
	c.Must(150, "RETR /slow.bin")

	// STAT with a path waits for the transfer's 226.
	if err := c.Text.PrintfLine("STAT /pub"); err != nil {
		t.Fatal(err)
	}

	if got := readAllFrom(t, data); len(got) != 5<<19 {
		t.Fatalf("downloaded %d bytes", len(got))
	}

	c.Expect(226)
	c.Expect(212)
	c.Must(200, "NOOP")
}

// TestTricklingClientIsIdle: a client that sends a byte at a time and never
// ends a line is idle: it is closed at idle_timeout (slowloris).
func TestTricklingClientIsIdle(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.IdleTimeout = time.Second
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	start := time.Now()
	for i := 0; time.Since(start) < 5*time.Second; i++ {
		if _, err := c.Conn.Write([]byte{"NOOP"[i%4]}); err != nil {
			break
		}

		time.Sleep(100 * time.Millisecond)
	}

	_ = c.Conn.SetReadDeadline(time.Now().Add(time.Second))
	code, _, err := c.Text.ReadResponse(0)
	if took := time.Since(start); code != 421 && err == nil {
		t.Fatalf("after %v of trickling: %d, want 421 or the connection closed", took, code)
	}

	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the trickling client was closed after %v, want about idle_timeout (1s)", took)
	}
}

// TestFolderMessages: a folder's .message precedes the 250 reply to CWD into
// it, once per session, in lines no client can mistake for the reply's end.
func TestFolderMessages(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.Listing.MessageFile = ".message"
	writeFile(t, filepath.Join(root, "pub", ".message"), []byte("This mirror syncs at :00.\r\n250 not the end\n\x1b[31mred\x1b[0m\n"))
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")

	// textproto takes the "250-" off each line: the line "250 not the end"
	// went out as "250-250 not the end", so the reply did not end there.
	msg := c.Must(250, "CWD /pub")
	want := "This mirror syncs at :00.\n250 not the end\n[31mred[0m\nDirectory changed to /pub."
	if msg != want {
		t.Fatalf("CWD /pub: %q, want %q", msg, want)
	}

	c.Must(250, "CDUP")
	if msg := c.Must(250, "CWD pub"); strings.Contains(msg, "mirror") {
		t.Fatalf("the message was shown twice: %q", msg)
	}

	if msg := c.Must(250, "CWD /"); strings.Contains(msg, "\n") {
		t.Fatalf("a folder without a message: %q", msg)
	}
}

// TestListingOptions: dotfiles only with -a (MLSD lists them), hidden names
// left out of every listing yet served by name, LIST -R where allowed, and
// MLSD's title entries.
func TestListingOptions(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.Listing = Listing{Hide: []string{"*.key"}, Recursive: true}
	writeFile(t, filepath.Join(root, "d", ".dot"), []byte("dot"))
	writeFile(t, filepath.Join(root, "d", "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(root, "d", "secret.key"), []byte("key"))
	writeFile(t, filepath.Join(root, "d", "sub", "b.txt"), []byte("b"))
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")

	list := func(cmd string) []string {
		t.Helper()

		data := c.DialPasv()
		c.Must(150, "%s", cmd)
		got := strings.TrimSuffix(string(readAllFrom(t, data)), "\r\n")
		c.Expect(226)

		return strings.Split(got, "\r\n")
	}

	if got := list("NLST /d"); strings.Join(got, ",") != "/d/a.txt,/d/sub" {
		t.Errorf("NLST /d: %q, want a.txt and sub (no dotfile, no hidden name)", got)
	}

	if got := list("NLST -a /d"); strings.Join(got, ",") != "/d/.dot,/d/a.txt,/d/sub" {
		t.Errorf("NLST -a /d: %q", got)
	}

	var names []string
	for _, line := range list("MLSD /d") {
		facts, name, _ := strings.Cut(line, " ")
		names = append(names, name)
		if name == "." && !strings.Contains(facts, "Type=cdir;") || name == ".." && !strings.Contains(facts, "Type=pdir;") {
			t.Errorf("MLSD title %q: %q", name, facts)
		}
	}

	if strings.Join(names, ",") != ".,..,.dot,a.txt,sub" {
		t.Errorf("MLSD /d: %q, want the titles, the dotfile, no hidden name", names)
	}

	recursive := strings.Join(list("LIST -R /d"), "\n")
	for _, want := range []string{"/d:\n", "a.txt\n", "\n\n/d/sub:\n", "b.txt"} {
		if !strings.Contains(recursive, want) {
			t.Errorf("LIST -R /d lacks %q:\n%s", want, recursive)
		}
	}

	if got := ftptest.Sum(retrRaw(t, c, "/d/secret.key")); got != ftptest.Sum([]byte("key")) {
		t.Error("a hidden name is not served by its name")
	}

	c.DialPasv()
	c.Must(501, "MLSD /d/a.txt")
}

// retrRaw downloads name over PASV with the raw client.
func retrRaw(t *testing.T, c *ftptest.Ctl, name string) []byte {
	t.Helper()

	data := c.DialPasv()
	c.Must(150, "RETR %s", name)
	got := readAllFrom(t, data)
	c.Expect(226)

	return got
}

// TestRecursiveListingIsBoundedAndOptional: LIST -R lists nothing below the
// folder unless [listing] recursive allows it, and stops at max_list_entries.
func TestRecursiveListingIsBoundedAndOptional(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name      string
		recursive bool
		limit     int
		want      []string // substrings the listing must have
		not       []string // and must not
	}{
		{"off by default", false, 0, []string{"a.txt", "sub"}, []string{"/d:", "b.txt"}},
		{"bounded by max_list_entries", true, 3, []string{"/d:", "a.txt"}, []string{"/d/sub/deeper:", "c.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, root := anonFixture(t)
			f.opts.Listing.Recursive = tc.recursive
			f.opts.MaxListEntries = tc.limit
			writeFile(t, filepath.Join(root, "d", "a.txt"), []byte("a"))
			writeFile(t, filepath.Join(root, "d", "sub", "b.txt"), []byte("b"))
			writeFile(t, filepath.Join(root, "d", "sub", "deeper", "c.txt"), []byte("c"))
			ts := startServer(t, f)

			c := ts.raw(t)
			c.Login("anonymous", "x")
			data := c.DialPasv()
			c.Must(150, "LIST -R /d")
			listing := string(readAllFrom(t, data))
			c.Expect(226)

			for _, want := range tc.want {
				if !strings.Contains(listing, want) {
					t.Errorf("LIST -R lacks %q:\n%s", want, listing)
				}
			}

			for _, not := range tc.not {
				if strings.Contains(listing, not) {
					t.Errorf("LIST -R has %q:\n%s", not, listing)
				}
			}
		})
	}
}

// TestDataTLSMustResumeSession: with [tls] require_session_reuse (the
// default), a TLS data connection made with a fresh handshake is refused
// (522): a stranger behind the client's address cannot take the data. The
// control connection's own client, resuming its session, is served; Python's
// ftplib, which does not resume, is refused.
func TestDataTLSMustResumeSession(t *testing.T) {
	t.Parallel()

	for _, m := range breakModes[1:] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()

			f := tlsFixture(t, m.tls)
			ts := startServer(t, f)

			var c *ftptest.Ctl
			if m.tls == TLSImplicit {
				c = implicitCtl(t, ts)
			} else {
				c = startTLS(t, ts.raw(t))
			}
			c.Login("anonymous", "x")
			c.Must(200, "PROT P")

			// The client that made the control connection resumes its session.
			data, _ := openData(t, c, m, "RETR /README.txt")
			if got := readAllFrom(t, data); string(got) != "hello from wharf\n" {
				t.Fatalf("resumed: got %q", got)
			}
			c.Expect(226)

			// A fresh handshake: what a thief who connects first would do.
			raw := c.DialPasv()
			c.Must(150, "RETR /README.txt")
			thief := tls.Client(raw, clientTLS())
			_ = thief.SetDeadline(time.Now().Add(5 * time.Second))
			if got, err := io.ReadAll(thief); err == nil || len(got) > 0 {
				t.Fatalf("a fresh handshake got %d bytes (%v)", len(got), err)
			}

			if code, msg := c.Read(); code != 522 || !strings.Contains(msg, "resume") {
				t.Fatalf("a fresh handshake: got %d %q, want 522 saying why", code, msg)
			}

			c.Must(200, "NOOP")
		})
	}

	t.Run("Python's ftplib is refused", func(t *testing.T) {
		t.Parallel()

		python := needTool(t, "python3")
		ts := startServer(t, tlsFixture(t, TLSExplicit))
		host, port, _ := net.SplitHostPort(ts.addr)

		out := runTool(t, python, "-c", `
import ftplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=ctx)
ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
ftp.login()
ftp.prot_p()
try:
    ftp.retrbinary("RETR /README.txt", lambda b: None)
    print("served")
except ftplib.all_errors:
    # The data connection's handshake failed (a TLS alert); the reason
    # comes on the control connection.
    try:
        ftp.getresp()
    except ftplib.error_perm as reply:
        print("refused", reply)
`, host, port)
		if !strings.HasPrefix(string(out), "refused 522") {
			t.Fatalf("Python's ftplib: %q, want refused with 522", out)
		}
	})
}
