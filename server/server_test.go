package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func anonFixture(t *testing.T) (fixture, string) {
	t.Helper()

	root := makeTree(t)
	f := fixture{opts: defaultOptions(), anon: root}

	return f, root
}

func TestAnonymousListAndDownload(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	ts := startServer(t, f)
	want, err := os.ReadFile(filepath.Join(root, "pub", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		opts []ftp.DialOption
	}{
		{"over EPSV", nil},
		{"over PASV", []ftp.DialOption{ftp.DialWithDisabledEPSV(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			for _, user := range []string{"anonymous", "ftp"} {
				c := ts.dial(t, user, "guest@example.com", tc.opts...)

				entries, err := c.List("/pub")
				if err != nil {
					t.Fatalf("LIST: %v", err)
				}

				names := map[string]bool{}
				for _, e := range entries {
					names[e.Name] = true
				}

				for _, n := range []string{"big.bin", "crlf.txt", "été ünïcode.txt"} {
					if !names[n] {
						t.Errorf("LIST /pub lacks %q: %v", n, names)
					}
				}

				if got := ftptest.Retr(t, c, "/pub/big.bin"); ftptest.Sum(got) != ftptest.Sum(want) {
					t.Fatalf("downloaded %d bytes with a different checksum", len(got))
				}

				if got := ftptest.Retr(t, c, "/pub/été ünïcode.txt"); string(got) != "utf-8 name\n" {
					t.Fatalf("UTF-8 name: got %q", got)
				}
			}
		})
	}
}

func TestActiveMode(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)

	for _, tc := range []struct {
		name string
		port func(p int) string
	}{
		{"PORT", func(p int) string { return "PORT 127,0,0,1," + strconv.Itoa(p/256) + "," + strconv.Itoa(p%256) }},
		{"EPRT", func(p int) string { return "EPRT |1|127.0.0.1|" + strconv.Itoa(p) + "|" }},
	} {
		t.Run(tc.name+" downloads the file", func(t *testing.T) {
			t.Parallel()

			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			c := ts.raw(t)
			c.Login("anonymous", "x")
			c.Must(200, "%s", tc.port(l.Addr().(*net.TCPAddr).Port))
			c.Must(150, "RETR /README.txt")

			conn, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}

			if got := readAllFrom(t, conn); string(got) != "hello from wharf\n" {
				t.Fatalf("got %q", got)
			}

			c.Expect(226)
		})
	}

	t.Run("PORT to another address is refused", func(t *testing.T) {
		t.Parallel()

		c := ts.raw(t)
		c.Login("anonymous", "x")
		if code, msg := c.Cmd("PORT 127,0,0,2,200,10"); code != 501 {
			t.Fatalf("got %d %q, want 501 (FTP bounce)", code, msg)
		}
	})

	t.Run("PORT is refused when active mode is off", func(t *testing.T) {
		t.Parallel()

		f2, _ := anonFixture(t)
		f2.opts.ActiveMode = false
		ts2 := startServer(t, f2)
		c := ts2.raw(t)
		c.Login("anonymous", "x")
		if code, _ := c.Cmd("EPRT |1|127.0.0.1|40000|"); code != 502 {
			t.Fatalf("got %d, want 502", code)
		}
	})
}

func userFixture(t *testing.T, access auth.Access) (fixture, string) {
	t.Helper()

	home := makeTree(t)
	f := fixture{
		opts:  defaultOptions(),
		users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: access}},
	}

	return f, home
}

func TestReadWriteUser(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)
	c := ts.dial(t, "alice", testPassword)
	payload := ftptest.RandomBytes(300_000)

	t.Run("upload", func(t *testing.T) {
		if err := c.Stor("/up.bin", bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}

		got, err := os.ReadFile(filepath.Join(home, "up.bin"))
		if err != nil || ftptest.Sum(got) != ftptest.Sum(payload) {
			t.Fatalf("uploaded file differs (%d bytes, %v)", len(got), err)
		}
	})

	t.Run("resume an upload with REST", func(t *testing.T) {
		writeFile(t, filepath.Join(home, "part.bin"), payload[:100_000])
		if err := c.StorFrom("/part.bin", bytes.NewReader(payload[100_000:]), 100_000); err != nil {
			t.Fatal(err)
		}

		got, _ := os.ReadFile(filepath.Join(home, "part.bin"))
		if ftptest.Sum(got) != ftptest.Sum(payload) {
			t.Fatalf("resumed file differs: %d bytes", len(got))
		}
	})

	t.Run("resume a download with REST", func(t *testing.T) {
		r, err := c.RetrFrom("/up.bin", 250_000)
		if err != nil {
			t.Fatal(err)
		}

		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r)
		_ = r.Close()
		if !bytes.Equal(buf.Bytes(), payload[250_000:]) {
			t.Fatalf("got %d bytes from offset 250000, want %d", buf.Len(), len(payload)-250_000)
		}
	})

	t.Run("append", func(t *testing.T) {
		if err := c.Append("/README.txt", strings.NewReader("more\n")); err != nil {
			t.Fatal(err)
		}

		got, _ := os.ReadFile(filepath.Join(home, "README.txt"))
		if string(got) != "hello from wharf\nmore\n" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("rename", func(t *testing.T) {
		if err := c.Rename("/up.bin", "/pub/moved.bin"); err != nil {
			t.Fatal(err)
		}

		if _, err := os.Stat(filepath.Join(home, "pub", "moved.bin")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("mkdir, cwd and rmdir", func(t *testing.T) {
		if err := c.MakeDir("/newdir"); err != nil {
			t.Fatal(err)
		}

		if err := c.ChangeDir("newdir"); err != nil {
			t.Fatal(err)
		}

		if err := c.Stor("rel.txt", strings.NewReader("relative")); err != nil {
			t.Fatal(err)
		}

		if got, _ := os.ReadFile(filepath.Join(home, "newdir", "rel.txt")); string(got) != "relative" {
			t.Fatalf("relative STOR landed elsewhere: %q", got)
		}

		if err := c.RemoveDir("/newdir"); err == nil {
			t.Fatal("RMD of a non-empty folder succeeded")
		}

		if err := c.Delete("rel.txt"); err != nil {
			t.Fatal(err)
		}

		if err := c.ChangeDirToParent(); err != nil {
			t.Fatal(err)
		}

		if err := c.RemoveDir("/newdir"); err != nil {
			t.Fatal(err)
		}

		if _, err := os.Stat(filepath.Join(home, "newdir")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("folder still there: %v", err)
		}
	})

	t.Run("DELE refuses a folder", func(t *testing.T) {
		if err := c.Delete("/pub"); err == nil {
			t.Fatal("DELE removed a folder")
		}
	})

	t.Run("SITE CHMOD changes the mode", func(t *testing.T) {
		raw := ts.raw(t)
		raw.Login("alice", testPassword)
		raw.Must(200, "SITE CHMOD 600 /README.txt")

		st, err := os.Stat(filepath.Join(home, "README.txt"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, %v", st.Mode(), err)
		}

		raw.Must(501, "SITE CHMOD 755")
		raw.Must(502, "SITE CHOWN 0 /README.txt")
	})

	t.Run("MFMT sets the modification time", func(t *testing.T) {
		raw := ts.raw(t)
		raw.Login("alice", testPassword)
		raw.Must(213, "MFMT 20200102030405 /README.txt")

		st, _ := os.Stat(filepath.Join(home, "README.txt"))
		if want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC); !st.ModTime().Equal(want) {
			t.Fatalf("mtime %v, want %v", st.ModTime(), want)
		}
	})

	t.Run("REST beyond the end of the file is refused", func(t *testing.T) {
		raw := ts.raw(t)
		raw.Login("alice", testPassword)
		raw.Must(200, "TYPE I")
		raw.Must(350, "REST 1000000000000")
		raw.Pasv()
		code, msg := raw.Cmd("STOR /pub/lf.txt")
		if code != 550 || !strings.Contains(msg, "beyond the end") {
			t.Fatalf("got %d %q, want 550 beyond the end", code, msg)
		}

		if st, _ := os.Stat(filepath.Join(home, "pub", "lf.txt")); st.Size() != int64(len("line one\nline two\n")) {
			t.Fatalf("file changed size to %d", st.Size())
		}
	})
}

// refusals lists commands a restricted session must refuse with 550.
var writeCommands = []string{
	"STOR /new.txt",
	"APPE /README.txt",
	"DELE /README.txt",
	"RMD /pub",
	"MKD /made",
	"RNFR /README.txt",
	"SITE CHMOD 777 /README.txt",
	"MFMT 20200102030405 /README.txt",
}

func TestReadOnlyRefusals(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name string
		user string
	}{
		{"anonymous", "anonymous"},
		{"a read-only user", "alice"},
	} {
		t.Run(tc.name+" refuses every change with 550", func(t *testing.T) {
			t.Parallel()

			f, home := userFixture(t, auth.ReadOnly)
			f.anon = home
			ts := startServer(t, f)
			c := ts.raw(t)
			c.Login(tc.user, testPassword)

			for _, command := range writeCommands {
				if strings.HasPrefix(command, "STOR") || strings.HasPrefix(command, "APPE") {
					c.Pasv()
				}

				code, msg := c.Cmd("%s", command)
				if code != 550 || !strings.Contains(msg, "read-only") {
					t.Errorf("%s: got %d %q, want 550 saying read-only", command, code, msg)
				}
			}

			if _, err := os.Stat(filepath.Join(home, "new.txt")); err == nil {
				t.Error("STOR created a file")
			}

			if got, _ := os.ReadFile(filepath.Join(home, "README.txt")); string(got) != "hello from wharf\n" {
				t.Errorf("README changed: %q", got)
			}
		})
	}
}

func TestWriteOnlyUser(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.WriteOnly)
	ts := startServer(t, f)
	c := ts.dial(t, "alice", testPassword)

	if err := c.Stor("/drop.txt", strings.NewReader("dropped")); err != nil {
		t.Fatalf("upload: %v", err)
	}

	if got, _ := os.ReadFile(filepath.Join(home, "drop.txt")); string(got) != "dropped" {
		t.Fatalf("got %q", got)
	}

	if err := c.MakeDir("/box"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}

	raw := ts.raw(t)
	raw.Login("alice", testPassword)

	for _, command := range []string{"RETR /README.txt", "LIST /", "NLST /", "MLSD /"} {
		raw.Pasv()

		code, msg := raw.Cmd("%s", command)
		if code < 450 || code > 550 || !strings.Contains(msg, "write-only") {
			t.Errorf("%s: got %d %q, want a refusal saying write-only", command, code, msg)
		}
	}

	for _, command := range []string{"DELE /README.txt", "RNFR /README.txt"} {
		if code, msg := raw.Cmd("%s", command); code != 550 || !strings.Contains(msg, "write-only") {
			t.Errorf("%s: got %d %q, want 550 saying write-only", command, code, msg)
		}
	}
}

func TestConfinement(t *testing.T) {
	t.Parallel()

	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), []byte("secret"))

	f, home := userFixture(t, auth.ReadWrite)
	if err := os.Symlink(outside, filepath.Join(home, "escape")); err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(home, "secret-link")); err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink("pub", filepath.Join(home, "latest")); err != nil {
		t.Fatal(err)
	}

	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("alice", testPassword)

	for _, command := range []string{
		"RETR ../../../../../../etc/passwd",
		"RETR /../../../../etc/passwd",
		"RETR " + filepath.Join(outside, "secret.txt"),
		"RETR /escape/secret.txt",
		"RETR /secret-link",
		"STOR /escape/planted.txt",
	} {
		c.Pasv()

		code, msg := c.Cmd("%s", command)
		if code != 550 {
			t.Errorf("%s: got %d %q, want 550", command, code, msg)
		}

		if strings.Contains(msg, home) || (strings.Contains(msg, outside) && !strings.Contains(command, outside)) {
			t.Errorf("%s: reply shows a disk path: %q", command, msg)
		}
	}

	if code, _ := c.Cmd("CWD /escape"); code != 550 {
		t.Errorf("CWD through an outward link: got %d, want 550", code)
	}

	c.Must(250, "CWD ../../..")
	if msg := c.Must(257, "PWD"); !strings.Contains(msg, `"/"`) {
		t.Errorf("CWD .. climbed above the root: %q", msg)
	}

	if _, err := os.Stat(filepath.Join(outside, "planted.txt")); err == nil {
		t.Fatal("a file was written outside the root")
	}

	t.Run("a link inside the root works", func(t *testing.T) {
		lc := ts.dial(t, "alice", testPassword)
		if got := ftptest.Retr(t, lc, "/latest/lf.txt"); string(got) != "line one\nline two\n" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("names with NUL are refused with 553", func(*testing.T) {
		c.Pasv()
		c.Must(553, "STOR /a\x00b")
	})
}

func TestTransferType(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)

	t.Run("a session that never sends TYPE gets binary", func(t *testing.T) {
		t.Parallel()

		c := ts.raw(t)
		c.Login("anonymous", "x")
		conn := c.DialPasv()

		c.Must(150, "RETR /pub/crlf.txt")

		if got := readAllFrom(t, conn); string(got) != "line one\r\nline two\r\n" {
			t.Fatalf("got %q", got)
		}

		c.Expect(226)
	})

	t.Run("TYPE A sends CRLF line endings", func(t *testing.T) {
		t.Parallel()

		c := ts.raw(t)
		c.Login("anonymous", "x")
		c.Must(200, "TYPE A")
		conn := c.DialPasv()

		c.Must(150, "RETR /pub/lf.txt")
		if got := readAllFrom(t, conn); string(got) != "line one\r\nline two\r\n" {
			t.Fatalf("got %q", got)
		}

		c.Expect(226)
	})
}

func TestFeatures(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	msg := c.Must(211, "FEAT")

	for _, feat := range []string{"UTF8", "EPSV", "EPRT", "MLST", "MLSD", "SIZE", "MDTM", "REST STREAM", "MFMT"} {
		if !strings.Contains(msg, "\n "+feat) {
			t.Errorf("FEAT lacks %s:\n%s", feat, msg)
		}
	}

	if strings.Contains(msg, "AUTH TLS") {
		t.Errorf("FEAT offers AUTH TLS with TLS off")
	}

	c.Must(200, "OPTS UTF8 ON")
	c.Login("anonymous", "x")
	c.Must(213, "SIZE /README.txt")
	if msg := c.Must(213, "MDTM /README.txt"); len(strings.TrimSpace(msg)) != 14 {
		t.Errorf("MDTM: %q", msg)
	}

	c.Must(250, "MLST /README.txt")
	c.Must(550, "HASH /README.txt")
}

func TestLogin(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)

	t.Run("a wrong password is refused with 530 and logged without the password", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(331, "USER alice")
		c.Must(530, "PASS wrong-password-xyz")

		entries := ts.logs.FilterMessage("login failed").FilterField(zap.String("user", "alice")).All()
		if len(entries) == 0 {
			t.Fatal("no 'login failed' log line for alice")
		}

		for _, e := range ts.logs.All() {
			for _, field := range e.Context {
				if strings.Contains(field.String, "wrong-password-xyz") {
					t.Fatalf("the password was logged: %v", e)
				}
			}
		}

		if e := entries[0]; e.ContextMap()["remote"] == nil {
			t.Errorf("login failure logged without the client address: %v", e.ContextMap())
		}
	})

	t.Run("PASS without USER is refused", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(503, "PASS %s", testPassword)
	})

	t.Run("an unknown user is refused", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(331, "USER mallory")
		c.Must(530, "PASS %s", testPassword)
	})

	t.Run("anonymous is refused when disabled", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(331, "USER anonymous")
		c.Must(530, "PASS x")
	})
}

func TestClientLimits(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.MaxClientsPerIP = 2
	f.opts.MaxClients = 3
	ts := startServer(t, f)

	ts.raw(t)
	ts.raw(t)

	t.Run("a third connection from one address gets 421", func(t *testing.T) {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}

		c := ftptest.NewCtl(t, conn)
		if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "your address") {
			t.Fatalf("got %d %q, want 421", code, msg)
		}
	})

	t.Run("another address still gets in, up to max_clients", func(t *testing.T) {
		ftptest.Dial(t, ts.addr, &net.TCPAddr{IP: net.ParseIP("127.0.0.2")})

		conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}

		c := ftptest.NewCtl(t, conn)
		if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "too many connections to this server") {
			t.Fatalf("got %d %q, want 421", code, msg)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.IdleTimeout = time.Second
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	start := time.Now()
	code, _ := c.Read()
	if code != 421 {
		t.Fatalf("got %d, want 421 after the idle timeout", code)
	}

	if waited := time.Since(start); waited < 900*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("closed after %v, want about 1s", waited)
	}
}

func TestIdleTimeoutSparesRunningTransfers(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	f.opts.IdleTimeout = time.Second
	big := ftptest.RandomBytes(16 << 20)
	writeFile(t, filepath.Join(root, "slow.bin"), big)
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")
	conn := c.DialPasv()

	c.Must(150, "RETR /slow.bin")

	// Read for about three idle timeouts; the session must not be closed meanwhile.
	start := time.Now()
	var got []byte
	buf := make([]byte, 64<<10)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}

		if time.Since(start) < 3*time.Second {
			time.Sleep(10 * time.Millisecond)
		}
	}

	if time.Since(start) < 2*time.Second {
		t.Fatalf("the transfer ended after %v: too fast to test the idle timeout", time.Since(start))
	}

	if ftptest.Sum(got) != ftptest.Sum(big) {
		t.Fatalf("got %d of %d bytes", len(got), len(big))
	}

	c.Expect(226)
}

// Every connection ends with one "session closed" line at info, naming the
// client's address and the user (empty if it never logged in); the opening
// line is debug only.
func TestEveryConnectionIsLoggedOnceWhenItCloses(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)

	stranger := ts.raw(t)
	stranger.Must(221, "QUIT")

	guest := ts.raw(t)
	guest.Login("anonymous", "guest@example.com")
	guest.Must(221, "QUIT")

	waitFor(t, func() bool { return len(ts.logs.FilterMessage("session closed").All()) == 2 })

	users := map[string]bool{}
	for _, e := range ts.logs.FilterMessage("session closed").All() {
		fields := e.ContextMap()
		if e.Level != zap.InfoLevel || !strings.HasPrefix(fmt.Sprint(fields["remote"]), "127.0.0.1:") {
			t.Errorf("session closed logged at %v with remote %v, want info and the client's address", e.Level, fields["remote"])
		}
		users[fmt.Sprint(fields["user"])] = true
	}

	if !users[""] || !users["anonymous"] {
		t.Errorf("users in the session closed lines: %v, want the stranger's empty one and anonymous", users)
	}

	for _, e := range ts.logs.FilterMessage("session opened").All() {
		if e.Level != zap.DebugLevel {
			t.Errorf("session opened logged at %v, want debug", e.Level)
		}
	}
}
