package vfs

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// These tests put Fs under the real engine and talk raw FTP to it, to see
// what a client sees: reply codes and texts, listings, and files on disk.

// engineDriver is the smallest ftpserver.MainDriver: everyone logs in and gets
// fsys through their working directory, as server does.
type engineDriver struct {
	fsys afero.Fs
}

func (d engineDriver) GetSettings() (*ftpserver.Settings, error) {
	return &ftpserver.Settings{ListenAddr: "127.0.0.1:0", DefaultTransferType: ftpserver.TransferTypeBinary}, nil
}

func (d engineDriver) ClientConnected(ftpserver.ClientContext) (string, error) {
	return "vfs test", nil
}

func (d engineDriver) ClientDisconnected(ftpserver.ClientContext) {}

func (d engineDriver) AuthUser(cc ftpserver.ClientContext, _, _ string) (ftpserver.ClientDriver, error) {
	return Resolve(d.fsys, cc.Path), nil
}

func (d engineDriver) GetTLSConfig() (*tls.Config, error) { return nil, errors.New("no TLS here") }

// startEngine serves fsys on loopback until the test ends and returns the address.
func startEngine(t *testing.T, fsys afero.Fs) string {
	t.Helper()
	srv := ftpserver.NewFtpServer(engineDriver{fsys: fsys})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		_ = srv.Stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	return srv.Addr()
}

// ftpClient is a raw FTP control connection that checks every reply for the
// sandbox's disk path.
type ftpClient struct {
	t    *testing.T
	sb   sandbox
	addr string
	conn *textproto.Conn
}

// login connects to addr and logs in.
func login(t *testing.T, sb sandbox, addr string) *ftpClient {
	t.Helper()
	nc, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := textproto.NewConn(nc)
	c := &ftpClient{t: t, sb: sb, addr: addr, conn: conn}
	t.Cleanup(func() {
		c.cmd("QUIT")
		_ = conn.Close()
	})
	if code, msg := c.reply(); code != 220 {
		t.Fatalf("greeting %d %s", code, msg)
	}
	c.expect(331, "USER test")
	c.expect(230, "PASS test")

	return c
}

func (c *ftpClient) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.conn.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	if strings.Contains(msg, c.sb.base) {
		c.t.Fatalf("reply shows the disk path: %d %s", code, msg)
	}

	return code, msg
}

func (c *ftpClient) cmd(format string, args ...any) (int, string) {
	c.t.Helper()
	if err := c.conn.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("send: %v", err)
	}

	return c.reply()
}

func (c *ftpClient) expect(code int, format string, args ...any) string {
	c.t.Helper()
	got, msg := c.cmd(format, args...)
	if got != code {
		c.t.Fatalf("%s: got %d %s, want %d", fmt.Sprintf(format, args...), got, msg, code)
	}

	return msg
}

// data opens a passive data connection (EPSV, RFC 2428).
func (c *ftpClient) data() *net.TCPConn {
	c.t.Helper()
	msg := c.expect(229, "EPSV")
	_, port, _ := strings.Cut(msg, "(|||")
	port, _, _ = strings.Cut(port, "|)")
	if _, err := strconv.Atoi(port); err != nil {
		c.t.Fatalf("EPSV reply %q", msg)
	}
	host, _, _ := net.SplitHostPort(c.addr)
	conn, err := new(net.Dialer).DialContext(c.t.Context(), "tcp", net.JoinHostPort(host, port))
	if err != nil {
		c.t.Fatal(err)
	}

	return conn.(*net.TCPConn)
}

// list returns the lines of LIST name.
func (c *ftpClient) list(name string) []string {
	c.t.Helper()
	conn := c.data()
	defer conn.Close()
	c.expect(150, "LIST %s", name)
	var lines []string
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	c.expect226()

	return lines
}

func (c *ftpClient) expect226() {
	c.t.Helper()
	if code, msg := c.reply(); code != 226 {
		c.t.Fatalf("end of transfer: %d %s", code, msg)
	}
}

func TestEngineRepliesNeverShowTheDiskPath(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	c := login(t, sb, startEngine(t, sb.open(t, Options{Atomic: true})))
	steps := []struct {
		cmd  string
		code int
	}{
		{"REST -1", 350},
		{"RETR /pub/a.txt", 550}, // seek fails: the reply names the file
		{"CWD /evil", 550},
		{"CWD /latest", 250},
		{"CWD ../abs", 250}, // absolute, into the root's own folder on disk
		{"CWD /evilrel", 550},
		{"CWD /", 250},
		{"SIZE readme", 213},
		{"SIZE evilfile", 550},
		{"MDTM /evil/secret.txt", 550},
		{"MKD /evil/x", 550},
		{"RMD /pub", 550},
		{"DELE /evil/secret.txt", 550},
		{"RNFR /pub/a.txt", 350},
		{"RNTO /evil/a.txt", 550},
		{"RNFR /pub/a.txt", 350},
		{"RNTO /pub/" + TempPrefix + "x", 553},
		{"MLST /evil", 550},
		{"MFMT 20000101000000 /evil/secret.txt", 550},
		{"SITE CHMOD 777 /evil/secret.txt", 550},
		{"RETR /evil/secret.txt", 550},
		{"RETR /dangling", 550},
		{"STOR /evil/x", 550},
		{"STOR /pub/" + TempPrefix + "x", 553},
		{"LIST /evil", 450},
	}
	for _, s := range steps {
		c.expect(s.code, "%s", s.cmd)
	}
	// Downloading a directory fails during the transfer, naming it.
	conn := c.data()
	defer conn.Close()
	c.expect(150, "RETR /pub")
	_, _ = io.Copy(io.Discard, conn)
	if code, msg := c.reply(); code != 550 || !strings.Contains(msg, "/pub") {
		t.Errorf("RETR of a directory: %d %s", code, msg)
	}
	sb.checkOutside(t)
}

func TestEngineTransfers(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	c := login(t, sb, startEngine(t, sb.open(t, Options{Atomic: true})))

	conn := c.data()
	c.expect(150, "STOR /pub/a.txt")
	_, _ = io.WriteString(conn, "uploaded")
	_ = conn.Close()
	c.expect226()
	if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != "uploaded" {
		t.Errorf("a.txt = %q after a clean STOR", got)
	}

	conn = c.data()
	c.expect(150, "RETR /readme")
	b, err := io.ReadAll(conn)
	_ = conn.Close()
	c.expect226()
	if err != nil || string(b) != "uploaded" {
		t.Errorf("RETR through a link: %q, %v", b, err)
	}

	types := map[string]byte{}
	for _, line := range c.list("/") {
		fields := strings.Fields(line)
		types[fields[len(fields)-1]] = line[0]
	}
	for name, want := range map[string]byte{"latest": 'd', "readme": '-', "evil": 0, "pub": 'd'} { // evil leaves the root: not listed
		if types[name] != want {
			t.Errorf("LIST shows %s as %q, want %q", name, types[name], want)
		}
	}
	c.expect(250, "CWD latest")
	if lines := c.list(""); len(lines) != 1 || !strings.HasSuffix(lines[0], " file.iso") {
		t.Errorf("LIST in /latest: %q", lines)
	}
}

func TestEngineDroppedUploadLeavesNoPartialFile(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"/pub/a.txt", "/pub/new.txt"} {
		sb := newSandbox(t)
		c := login(t, sb, startEngine(t, sb.open(t, Options{Atomic: true})))
		disk := filepath.Join(sb.root, filepath.FromSlash(target))
		before := diskFile(t, disk)

		conn := c.data()
		c.expect(150, "STOR %s", target)
		_, _ = io.WriteString(conn, strings.Repeat("partial ", 1000))
		_ = conn.SetLinger(0) // Close sends RST: the upload did not end cleanly
		_ = conn.Close()
		if code, _ := c.reply(); code < 400 {
			t.Errorf("%s: dropped STOR replied %d", target, code)
		}
		if got := diskFile(t, disk); got != before {
			t.Errorf("%s holds %.20q, want %q", target, got, before)
		}
		if temps := tempFiles(t, filepath.Dir(disk)); len(temps) != 0 {
			t.Errorf("temporary files: %q", temps)
		}
	}
}

func TestEngineWriteOnlyStoresButNeitherListsNorReads(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	c := login(t, sb, startEngine(t, WriteOnly(sb.open(t, Options{Atomic: true}))))
	conn := c.data()
	c.expect(150, "STOR /pub/drop.txt")
	_, _ = io.WriteString(conn, "dropped")
	_ = conn.Close()
	c.expect226()
	c.expect(450, "LIST /pub")
	c.expect(550, "RETR /pub/drop.txt")
	c.expect(550, "DELE /pub/drop.txt")
	c.expect(213, "SIZE /pub/drop.txt") // the session's own upload
	for _, cmd := range []string{"STOR /pub/drop.txt", "APPE /pub/drop.txt", "STOR /pub/a.txt", "APPE /pub/a.txt"} {
		c.data().Close()
		if msg := c.expect(553, "%s", cmd); !strings.Contains(msg, "exists") {
			t.Errorf("%s replies %q, want it to say the file exists", cmd, msg)
		}
	}
	c.expect(350, "REST 3")
	c.data().Close()
	c.expect(553, "STOR /pub/a.txt")
	for _, cmd := range []string{"SIZE", "MDTM", "MLST", "STAT", "LIST"} {
		var replies []string
		for _, name := range []string{"/pub/a.txt", "/pub/missing.txt"} {
			if cmd == "LIST" {
				c.data().Close()
			}
			code, msg := c.cmd("%s %s", cmd, name)
			replies = append(replies, fmt.Sprintf("%d %s", code, strings.ReplaceAll(msg, name, "NAME")))
		}
		if replies[0] != replies[1] || replies[0][0] == '2' {
			t.Errorf("%s of a file and of a missing name: %q, want one refusal", cmd, replies)
		}
	}
	if got := diskFile(t, filepath.Join(sb.root, "pub", "drop.txt")); got != "dropped" {
		t.Errorf("drop.txt = %q", got)
	}
	if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != "hello" {
		t.Errorf("a.txt = %q", got)
	}
}

func TestEngineWriteOnlyOverwriteReplacesAndAppends(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	c := login(t, sb, startEngine(t, WriteOnlyOverwrite(sb.open(t, Options{Atomic: true}))))
	for _, step := range []struct{ cmd, data string }{{"STOR /pub/a.txt", "replaced"}, {"APPE /pub/a.txt", "+more"}} {
		conn := c.data()
		c.expect(150, "%s", step.cmd)
		_, _ = io.WriteString(conn, step.data)
		_ = conn.Close()
		c.expect226()
	}
	c.expect(213, "SIZE /pub/a.txt")
	c.expect(450, "LIST /pub")
	if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != "replaced+more" {
		t.Errorf("a.txt = %q", got)
	}
}
