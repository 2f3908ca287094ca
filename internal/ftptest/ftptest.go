// Package ftptest is the client side of wharf's FTP tests, shared by the disk (server), S3 (vfs/s3) and
// command (cmd/wharf) suites: a raw control connection for what github.com/jlaffaye/ftp cannot say, a
// logged-in library client, download and checksum helpers, and a self-signed certificate for TLS tests.
//
// The tools (bench, stress) use internal/ftpraw instead. Its calls return errors, which a tool counts and
// reports, and it sets a deadline on every read; Ctl fails the test at the call site and leaves deadlines
// to the test, which sets short ones to prove that wharf stays silent.
package ftptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// Ctl is a raw control connection, for what the library client cannot say.
type Ctl struct {
	Conn net.Conn        // the connection under Text, for deadlines, resets and TLS
	Text *textproto.Conn // lines and replies
	// TLS is the configuration of the control connection's TLS, when it has
	// one: data connections made with it resume the control session.
	TLS *tls.Config
	t   testing.TB
}

// Dial opens a control connection to addr, from local address from when
// non-nil, and reads the greeting.
func Dial(tb testing.TB, addr string, from net.Addr) *Ctl {
	tb.Helper()

	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: from}

	conn, err := d.DialContext(tb.Context(), "tcp", addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}

	c := NewCtl(tb, conn)
	c.Expect(220)

	return c
}

// NewCtl wraps conn, closed when the test ends. Every read and write on it
// must be done within 30 s, so a server that stops answering fails the test
// instead of hanging it.
func NewCtl(tb testing.TB, conn net.Conn) *Ctl {
	tb.Helper()

	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &Ctl{Conn: conn, Text: textproto.NewConn(conn), t: tb}
	tb.Cleanup(func() { _ = c.Text.Close() })

	return c
}

// Cmd sends a command and returns the reply code and text.
func (c *Ctl) Cmd(format string, args ...any) (int, string) {
	c.t.Helper()

	if err := c.Text.PrintfLine(format, args...); err != nil {
		c.t.Fatalf("send %q: %v", fmt.Sprintf(format, args...), err)
	}

	return c.Read()
}

// Read reads a reply and returns its code and text.
func (c *Ctl) Read() (int, string) {
	c.t.Helper()

	code, msg, err := c.Text.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("read reply: %v", err)
	}

	return code, msg
}

// Expect reads a reply and fails unless it has the code.
func (c *Ctl) Expect(code int) string {
	c.t.Helper()

	got, msg := c.Read()
	if got != code {
		c.t.Fatalf("got %d %q, want %d", got, msg, code)
	}

	return msg
}

// Must sends a command and fails unless the reply has the code.
func (c *Ctl) Must(code int, format string, args ...any) string {
	c.t.Helper()

	got, msg := c.Cmd(format, args...)
	if got != code {
		c.t.Fatalf("%s: got %d %q, want %d", fmt.Sprintf(format, args...), got, msg, code)
	}

	return msg
}

// Login sends USER and PASS and fails unless they are accepted.
func (c *Ctl) Login(user, pass string) {
	c.t.Helper()
	c.Must(331, "USER %s", user)
	c.Must(230, "PASS %s", pass)
}

// Pasv sends PASV and returns the data address it announces (RFC 959, 4.1.2).
func (c *Ctl) Pasv() string {
	c.t.Helper()

	msg := c.Must(227, "PASV")
	open, end := strings.Index(msg, "("), strings.Index(msg, ")")
	if open < 0 || end < open {
		c.t.Fatalf("bad PASV reply %q", msg)
	}

	parts := strings.Split(msg[open+1:end], ",")
	if len(parts) != 6 {
		c.t.Fatalf("bad PASV reply %q", msg)
	}

	hi, _ := strconv.Atoi(parts[4])
	lo, _ := strconv.Atoi(parts[5])

	return net.JoinHostPort(strings.Join(parts[:4], "."), strconv.Itoa(hi*256+lo))
}

// DialPasv sends PASV and dials the data address it announces. The data
// connection is closed when the test ends, if the test has not closed it.
func (c *Ctl) DialPasv() net.Conn {
	c.t.Helper()

	d := net.Dialer{Timeout: 5 * time.Second}

	data, err := d.DialContext(c.t.Context(), "tcp", c.Pasv())
	if err != nil {
		c.t.Fatalf("dial data connection: %v", err)
	}

	c.t.Cleanup(func() { _ = data.Close() })

	return data
}

// Cut is one way a client breaks off an upload while data is flowing.
type Cut struct {
	Name string
	Kill func(c *Ctl, data net.Conn)
}

// Cuts are the ways an upload can end early: a reset data connection, ABOR
// (RFC 959, 4.1.3), and a control connection that goes away.
func Cuts() []Cut {
	return []Cut{
		{"data connection reset", func(_ *Ctl, data net.Conn) {
			_ = data.(*net.TCPConn).SetLinger(0)
			_ = data.Close()
		}},
		{"ABOR", func(c *Ctl, data net.Conn) {
			_ = c.Text.PrintfLine("ABOR")
			time.Sleep(100 * time.Millisecond)
			_ = data.Close()
		}},
		{"control connection closed", func(c *Ctl, data net.Conn) {
			_ = c.Conn.(*net.TCPConn).SetLinger(0)
			_ = c.Conn.Close()
			time.Sleep(200 * time.Millisecond)
			_ = data.Close()
		}},
	}
}

// Retr downloads a whole file with the library client.
func Retr(t *testing.T, c *ftp.ServerConn, name string) []byte {
	t.Helper()

	r, err := c.Retr(name)
	if err != nil {
		t.Fatalf("RETR %s: %v", name, err)
	}

	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}

	if err := r.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}

	return data
}

// RandomBytes returns n random bytes, content that no compression or
// deduplication can shortcut.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: since Go 1.24 it crashes the program instead

	return b
}

// Sum is the hex SHA-256 of b, short enough to print when two files differ.
func Sum(b []byte) string {
	h := sha256.Sum256(b)

	return hex.EncodeToString(h[:])
}

// WaitFor polls cond every 10 ms and fails the test if it is still false after within.
func WaitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()

	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
	}
}

// Client dials addr with the library client (10 s timeout unless opts
// say otherwise); the session is quit when the test ends.
func Client(t *testing.T, addr string, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()

	c, err := ftp.Dial(addr, append([]ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}

	t.Cleanup(func() { _ = c.Quit() })

	return c
}

// Login is Client, logged in as user.
func Login(t *testing.T, addr, user, pass string, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()

	c := Client(t, addr, opts...)
	if err := c.Login(user, pass); err != nil {
		t.Fatalf("login %s at %s: %v", user, addr, err)
	}

	return c
}

// SelfSigned returns a fresh self-signed ECDSA certificate for 127.0.0.1
// and localhost, valid for a day, and its key, in PEM.
func SelfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wharf test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}

	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// CertFiles writes a SelfSigned certificate and key into a temporary
// folder and returns their paths.
func CertFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()

	certPEM, keyPEM := SelfSigned(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")

	for name, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	return certFile, keyFile
}

// List lists folder with the library client (MLSD where the server offers
// it), without MLSD's title entries ("." of type cdir, ".." of type pdir,
// RFC 3659 7.5.1), as a script that copies a folder leaves them out.
func List(tb testing.TB, c *ftp.ServerConn, folder string) []*ftp.Entry {
	tb.Helper()

	entries, err := c.List(folder)
	if err != nil {
		tb.Fatalf("LIST %s: %v", folder, err)
	}

	return slices.DeleteFunc(entries, func(e *ftp.Entry) bool { return e.Name == "." || e.Name == ".." })
}
