package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// testPassword is the password of every named test user.
const testPassword = "s3cret-pass"

// testHash is testPassword's bcrypt hash at the lowest cost, to keep tests fast.
var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}

	return string(h)
}()

// nextPassive hands each test server its own passive port range, so parallel
// tests never compete for a port: 20000-24999 here, 25000-25999 for the bare
// engine's probes (enginePassiveRange), 27000 and up for cmd/wharf's tests,
// which run at the same time. All lie below Linux's ephemeral ports (32768
// and up), so no client socket of the machine takes one meanwhile.
var nextPassive atomic.Int32

func passiveRange() (int, int) {
	n := int(nextPassive.Add(1))
	start := 20000 + (n%250)*20

	return start, start + 19
}

// testServer is a running wharf on 127.0.0.1 and what a test needs to reach it.
type testServer struct {
	srv  *Server
	addr string
	logs *observer.ObservedLogs
	opts Options
}

type fixture struct {
	opts  Options
	users []auth.User
	anon  string                          // anonymous root; "" disables anonymous
	core  func(zapcore.Core) zapcore.Core // wraps the server's log core; nil: the observer alone
}

// defaultOptions are the options every test starts from.
func defaultOptions() Options {
	lo, hi := passiveRange()

	return Options{
		Listen:           "127.0.0.1:0",
		PassivePortStart: lo,
		PassivePortEnd:   hi,
		ActiveMode:       true,
		IdleTimeout:      time.Minute,
		MaxClients:       100,
		MaxClientsPerIP:  50,
		Banner:           "wharf test ready",
		ASCIIConversion:  true,
		AtomicUploads:    true,
	}
}

// startServer starts a server for f, stopped when the test ends.
func startServer(tb testing.TB, f fixture) *testServer {
	tb.Helper()

	return startServerWith(tb, f, auth.Options{Users: f.users, Anonymous: f.anon != "", AnonymousRoot: f.anon})
}

// startServerWith starts a server with f's options and the given accounts.
func startServerWith(tb testing.TB, f fixture, ao auth.Options) *testServer {
	tb.Helper()

	accounts, err := auth.New(ao)
	if err != nil {
		tb.Fatalf("accounts: %v", err)
	}

	core, logs := observer.New(zap.DebugLevel)
	if f.core != nil {
		core = f.core(core)
	}

	srv, err := New(f.opts, accounts, zap.New(core))
	if err != nil {
		tb.Fatalf("new server: %v", err)
	}

	if err := srv.Listen(); err != nil {
		tb.Fatalf("listen: %v", err)
	}

	// The reclaim of upload leftovers at start walks each home in the
	// background: let it end, so that tests see a server at rest.
	srv.reclaim.wait()

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}

		if err := <-served; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})

	return &testServer{srv: srv, addr: srv.Addr().String(), logs: logs, opts: f.opts}
}

// tree is a served folder: a README, a 1 MiB binary, a subfolder and a UTF-8 name.
func makeTree(t *testing.T) string {
	t.Helper()

	root := t.TempDir()
	writeFile(t, filepath.Join(root, "README.txt"), []byte("hello from wharf\n"))
	writeFile(t, filepath.Join(root, "pub", "big.bin"), ftptest.RandomBytes(1<<20))
	writeFile(t, filepath.Join(root, "pub", "crlf.txt"), []byte("line one\r\nline two\r\n"))
	writeFile(t, filepath.Join(root, "pub", "lf.txt"), []byte("line one\nline two\n"))
	writeFile(t, filepath.Join(root, "pub", "été ünïcode.txt"), []byte("utf-8 name\n"))

	return root
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()

	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dial connects the jlaffaye/ftp client and logs in.
func (ts *testServer) dial(t *testing.T, user, pass string, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()

	return ftptest.Login(t, ts.addr, user, pass, opts...)
}

// raw opens a raw control connection to the server and reads the greeting.
func (ts *testServer) raw(t *testing.T) *ftptest.Ctl {
	t.Helper()

	return ftptest.Dial(t, ts.addr, nil)
}

// clientTLS trusts any certificate (the tests make their own) and caches sessions.
func clientTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // the tests make their own certificates
		// The session cache is keyed by server name (else by address and
		// port, which differ on every data connection), as in FileZilla.
		ServerName:         "localhost",
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
}

// readAllFrom reads a data connection to its end.
func readAllFrom(t *testing.T, conn net.Conn) []byte {
	t.Helper()

	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))

	data, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatalf("read data connection: %v", err)
	}

	return data
}
