package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// slowRead reads a data connection in small steps, so a transfer stays running.
func slowRead(conn net.Conn, step time.Duration) ([]byte, error) {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))

	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := conn.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		time.Sleep(step)
	}
}

func TestGracefulShutdownDuringDownload(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	big := ftptest.RandomBytes(32 << 20)
	writeFile(t, filepath.Join(root, "huge.bin"), big)
	ts := startServer(t, f)

	idle := ts.raw(t)
	idle.Login("anonymous", "x")

	c := ts.raw(t)
	c.Login("anonymous", "x")
	conn := c.DialPasv()

	c.Must(150, "RETR /huge.bin")

	type result struct {
		data []byte
		err  error
	}
	downloaded := make(chan result, 1)
	go func() {
		data, err := slowRead(conn, 2*time.Millisecond)
		downloaded <- result{data, err}
	}()

	time.Sleep(100 * time.Millisecond)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- ts.srv.Shutdown(ctx)
	}()

	// The idle session is closed at once: its connection ends (or says 421)
	// long before the read deadline.
	code, err := readCode(idle)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatal("the idle session was still open during shutdown")
	}

	if err == nil && code != 421 {
		t.Fatalf("idle session got %d", code)
	}

	// New connections are refused.
	time.Sleep(50 * time.Millisecond)
	if nc, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		_ = nc.SetDeadline(time.Now().Add(time.Second))
		if n, _ := nc.Read(make([]byte, 1)); n > 0 {
			t.Error("a new connection was served during shutdown")
		}
		_ = nc.Close()
	}

	r := <-downloaded
	if r.err != nil || ftptest.Sum(r.data) != ftptest.Sum(big) {
		t.Fatalf("download during shutdown: %d bytes, %v", len(r.data), r.err)
	}

	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestShutdownCutsTransfersAfterGrace(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	writeFile(t, filepath.Join(root, "huge.bin"), ftptest.RandomBytes(64<<20))
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")
	conn := c.DialPasv()
	defer conn.Close()

	c.Must(150, "RETR /huge.bin")
	// Read nothing: the transfer stalls until shutdown cuts it.

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	start := time.Now()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown returned %v, want deadline exceeded", err)
	}

	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %v", took)
	}

	if n, _ := io.Copy(io.Discard, conn); n >= 64<<20 {
		t.Fatal("the transfer completed although it was cut")
	}

	lines := ts.logs.FilterMessage("transfer incomplete").All()
	if len(lines) != 1 {
		t.Fatalf("want one 'transfer incomplete' log line, got %d", len(lines))
	}
}

func readCode(c *ftptest.Ctl) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(3 * time.Second))

	code, _, err := c.Text.ReadResponse(0)

	return code, err
}

func TestTransferLog(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.opts.TransferLog = filepath.Join(t.TempDir(), "xferlog")
	ts := startServer(t, f)

	c := ts.dial(t, "alice", testPassword)
	if err := c.Stor("/with space.txt", strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}

	if got := ftptest.Retr(t, c, "/README.txt"); len(got) == 0 {
		t.Fatal("empty download")
	}

	// A transfer's lines follow its 226 (TestTransferReplyBeforeLogLine).
	var data []byte
	waitFor(t, func() bool {
		data, _ = os.ReadFile(f.opts.TransferLog)

		return bytes.Count(data, []byte("\n")) >= 2 && len(ts.logs.FilterMessage("transfer done").All()) >= 2
	})

	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 xferlog lines, got %q", data)
	}

	// current-time (5 fields) transfer-time remote-host file-size filename transfer-type
	// special-action-flag direction access-mode username service-name auth-method auth-user-id status
	for i, want := range [][]string{
		{"127.0.0.1", "5", "/with_space.txt", "b", "_", "i", "r", "alice", "ftp", "0", "*", "c"},
		{"127.0.0.1", "17", "/README.txt", "b", "_", "o", "r", "alice", "ftp", "0", "*", "c"},
	} {
		fields := strings.Fields(lines[i])
		if len(fields) != 18 {
			t.Fatalf("line %d has %d fields: %q", i, len(fields), lines[i])
		}

		if got := fields[6:]; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("line %d: got %v, want %v", i, got, want)
		}
	}

	done := ts.logs.FilterMessage("transfer done").All()
	if len(done) != 2 {
		t.Fatalf("want 2 'transfer done' log lines, got %d", len(done))
	}

	for _, key := range []string{"user", "remote", "path", "direction", "bytes", "duration", "result"} {
		if _, ok := done[0].ContextMap()[key]; !ok {
			t.Errorf("transfer log line lacks %q: %v", key, done[0].ContextMap())
		}
	}
}

// slowLog is a log core that takes a line with the message msg only once
// release is closed (or after a while).
type slowLog struct {
	zapcore.Core
	msg     string
	release <-chan struct{}
}

func (s slowLog) With(fields []zapcore.Field) zapcore.Core {
	return slowLog{Core: s.Core.With(fields), msg: s.msg, release: s.release}
}

func (s slowLog) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if s.Enabled(e.Level) {
		return ce.AddCore(e, s)
	}

	return ce
}

func (s slowLog) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if e.Message == s.msg {
		select {
		case <-s.release:
		case <-time.After(10 * time.Second):
		}
	}

	return s.Core.Write(e, fields) //nolint:wrapcheck // a core passes its inner core's error on
}

// TestTransferReplyBeforeLogLine: the 226 of a download goes out before
// its log lines are written, so a log that is slow to take a line does not
// hold the client; the lines follow.
func TestTransferReplyBeforeLogLine(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.TransferLog = filepath.Join(t.TempDir(), "xferlog")
	release := make(chan struct{})
	f.core = func(core zapcore.Core) zapcore.Core {
		return slowLog{Core: core, msg: "transfer done", release: release}
	}
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")
	data := c.DialPasv()
	c.Must(150, "RETR /README.txt")

	// The end of the data and the 226 come after the engine closed the
	// file, where the transfer's log lines used to be written.
	type reply struct {
		data []byte
		code int
		err  error
	}
	replies := make(chan reply, 1)
	go func() {
		_ = data.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(data)
		code := 0
		if err == nil {
			code, err = readCode(c)
		}
		replies <- reply{got, code, err}
	}()

	select {
	case r := <-replies:
		close(release)
		if r.err != nil || r.code != 226 || string(r.data) != "hello from wharf\n" {
			t.Fatalf("while the log line was being written, the client got %q and %d (%v), want the file and 226",
				r.data, r.code, r.err)
		}
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("the download did not end while its log line was being written")
	}

	waitFor(t, func() bool {
		b, _ := os.ReadFile(f.opts.TransferLog)

		return len(ts.logs.FilterMessage("transfer done").All()) == 1 && bytes.Count(b, []byte("\n")) == 1
	})
}
