package server

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/vfs"
)

// noTempFiles fails if an atomic upload left a temporary file in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	for _, e := range entries {
		if strings.HasPrefix(e.Name(), vfs.TempPrefix) {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestInterruptedUploadLeavesNothing(t *testing.T) {
	t.Parallel()

	for _, tc := range ftptest.Cuts() {
		t.Run(tc.Name+" leaves no file and no temporary file", func(t *testing.T) {
			t.Parallel()

			f, home := userFixture(t, auth.ReadWrite)
			ts := startServer(t, f)
			c := ts.raw(t)
			c.Login("alice", testPassword)
			data := c.DialPasv()

			c.Must(150, "STOR /half.bin")
			if _, err := data.Write(ftptest.RandomBytes(1 << 20)); err != nil {
				t.Fatal(err)
			}

			time.Sleep(100 * time.Millisecond)
			tc.Kill(c, data)

			waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

			if _, err := os.Stat(filepath.Join(home, "half.bin")); err == nil {
				t.Fatal("a partial file exists under the final name")
			}

			noTempFiles(t, home)
		})
	}

	t.Run("a resumed upload that is cut keeps what was there", func(t *testing.T) {
		t.Parallel()

		f, home := userFixture(t, auth.ReadWrite)
		ts := startServer(t, f)
		writeFile(t, filepath.Join(home, "resume.bin"), []byte("0123456789"))

		c := ts.raw(t)
		c.Login("alice", testPassword)
		c.Must(200, "TYPE I")
		c.Must(350, "REST 10")
		data := c.DialPasv()

		c.Must(150, "STOR /resume.bin")
		_, _ = data.Write([]byte("abc"))
		time.Sleep(100 * time.Millisecond)
		_ = data.(*net.TCPConn).SetLinger(0)
		_ = data.Close()
		waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

		got, _ := os.ReadFile(filepath.Join(home, "resume.bin"))
		if !bytes.HasPrefix(got, []byte("0123456789")) {
			t.Fatalf("resumed file lost its start: %q", got)
		}
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ftptest.WaitFor(t, 5*time.Second, cond)
}

func TestConcurrentUploadsToOneName(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)

	const uploaders = 8
	contents := make([][]byte, uploaders)
	var wg sync.WaitGroup
	for i := range uploaders {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 2<<20)
		c := ts.dial(t, "alice", testPassword)
		wg.Go(func() {
			if err := c.Stor("/same.bin", bytes.NewReader(contents[i])); err != nil {
				t.Errorf("upload %d: %v", i, err)
			}
		})
	}
	wg.Wait()

	got, err := os.ReadFile(filepath.Join(home, "same.bin"))
	if err != nil {
		t.Fatal(err)
	}

	matched := false
	for _, want := range contents {
		matched = matched || bytes.Equal(got, want)
	}

	if !matched {
		t.Fatalf("the file is not exactly one upload (%d bytes, starts %q)", len(got), got[:8])
	}

	noTempFiles(t, home)
}

func TestSessionBandwidthLimit(t *testing.T) {
	t.Parallel()

	const limit = 1 << 20 // 1 MiB/s
	const seconds = 5

	for _, direction := range []string{"download", "upload"} {
		t.Run(direction+" holds within 10% over 5 s", func(t *testing.T) {
			t.Parallel()

			home := makeTree(t)
			payload := ftptest.RandomBytes(limit * seconds)
			writeFile(t, filepath.Join(home, "five.bin"), payload)
			f := fixture{opts: defaultOptions(), users: []auth.User{{
				Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite,
				DownloadLimit: limit, UploadLimit: limit,
			}}}
			ts := startServer(t, f)
			c := ts.dial(t, "alice", testPassword)

			start := time.Now()
			if direction == "download" {
				if got := ftptest.Retr(t, c, "/five.bin"); ftptest.Sum(got) != ftptest.Sum(payload) {
					t.Fatal("download differs")
				}
			} else if err := c.Stor("/up.bin", bytes.NewReader(payload)); err != nil {
				t.Fatal(err)
			}

			took := time.Since(start)
			rate := float64(len(payload)) / took.Seconds()
			if rate > limit*1.1 || rate < limit*0.9 {
				t.Fatalf("%s at %.0f B/s over %v, want %d B/s within 10%%", direction, rate, took, limit)
			}
		})
	}

	t.Run("the server total is shared by sessions", func(t *testing.T) {
		t.Parallel()

		f, root := anonFixture(t)
		payload := ftptest.RandomBytes(3 << 20)
		writeFile(t, filepath.Join(root, "three.bin"), payload)
		f.opts.Bandwidth.TotalDownload = 2 << 20
		ts := startServer(t, f)

		start := time.Now()
		var wg sync.WaitGroup
		for range 2 {
			c := ts.dial(t, "anonymous", "x")
			wg.Go(func() {
				if got := ftptest.Retr(t, c, "/three.bin"); len(got) != len(payload) {
					t.Errorf("got %d bytes", len(got))
				}
			})
		}
		wg.Wait()

		rate := float64(2*len(payload)) / time.Since(start).Seconds()
		if rate > 2<<20*1.15 {
			t.Fatalf("two sessions together moved %.0f B/s, over the %d B/s total", rate, 2<<20)
		}
	})
}

func TestBanAfterFailedLogins(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	f.anon = t.TempDir()
	f.opts.Ban = BanOptions{MaxFailures: 5, Window: time.Minute, Duration: time.Hour}
	ts := startServer(t, f)

	// Anonymous logins never count, even with odd passwords.
	for range 6 {
		c := ts.raw(t)
		c.Login("anonymous", "")
	}

	for i := range 5 {
		c := ts.raw(t)
		c.Must(331, "USER alice")
		if code, _ := c.Cmd("PASS wrong-%d", i); code != 530 {
			t.Fatalf("failure %d: got %d", i+1, code)
		}
	}

	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}

	c := ftptest.NewCtl(t, conn)
	if code, msg := c.Read(); code != 421 || !strings.Contains(msg, "banned") {
		t.Fatalf("sixth connection from a banned address: got %d %q, want 421", code, msg)
	}

	other := ftptest.Dial(t, ts.addr, &net.TCPAddr{IP: net.ParseIP("127.0.0.2")})
	other.Login("alice", testPassword)

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_bans Client addresses banned now for failed logins.
# TYPE wharf_bans gauge
wharf_bans 1
`), "wharf_bans"); err != nil {
		t.Error(err)
	}

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_refused_connections_total Connections refused before a session started, by reason (access, banned, max_clients, max_clients_per_ip, proxy_header, proxy_untrusted).
# TYPE wharf_refused_connections_total counter
wharf_refused_connections_total{reason="access"} 0
wharf_refused_connections_total{reason="banned"} 1
wharf_refused_connections_total{reason="max_clients"} 0
wharf_refused_connections_total{reason="max_clients_per_ip"} 0
`), "wharf_refused_connections_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsMoveAfterTransfer(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.dial(t, "anonymous", "x")
	_ = ftptest.Retr(t, c, "/README.txt")

	want := `
# HELP wharf_transfers_total File transfers, by direction (download, upload), result (complete, incomplete) and protocol (ftp, http).
# TYPE wharf_transfers_total counter
wharf_transfers_total{direction="download",protocol="ftp",result="complete"} 1
wharf_transfers_total{direction="download",protocol="ftp",result="incomplete"} 0
wharf_transfers_total{direction="download",protocol="http",result="complete"} 0
wharf_transfers_total{direction="download",protocol="http",result="incomplete"} 0
wharf_transfers_total{direction="upload",protocol="ftp",result="complete"} 0
wharf_transfers_total{direction="upload",protocol="ftp",result="incomplete"} 0
`
	waitFor(t, func() bool {
		return testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(want), "wharf_transfers_total") == nil
	})

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_transfer_bytes_total Bytes moved by file transfers, by direction and protocol.
# TYPE wharf_transfer_bytes_total counter
wharf_transfer_bytes_total{direction="download",protocol="ftp"} 17
wharf_transfer_bytes_total{direction="download",protocol="http"} 0
wharf_transfer_bytes_total{direction="upload",protocol="ftp"} 0
`), "wharf_transfer_bytes_total"); err != nil {
		t.Fatal(err)
	}

	if n, err := testutil.GatherAndCount(ts.srv.Registry(), "wharf_sessions", "wharf_logins_total",
		"wharf_transfer_duration_seconds", "wharf_refused_connections_total", "wharf_bans"); err != nil || n < 5 {
		t.Fatalf("series: %d, %v", n, err)
	}
}

func TestReloadAddsUserDuringDownload(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	big := ftptest.RandomBytes(16 << 20)
	writeFile(t, filepath.Join(root, "big16.bin"), big)
	f.opts.Bandwidth.SessionDownload = 8 << 20 // about two seconds
	ts := startServer(t, f)

	c := ts.dial(t, "anonymous", "x")
	r, err := c.Retr("/big16.bin")
	if err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	accounts, err := auth.New(auth.Options{
		Anonymous: true, AnonymousRoot: root,
		Users: []auth.User{{Name: "bob", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}},
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := ts.srv.Reload(Reload{Accounts: accounts}); err != nil {
		t.Fatal(err)
	}

	bob := ts.dial(t, "bob", testPassword)
	if err := bob.Stor("/hello.txt", strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}

	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()

	if ftptest.Sum(got) != ftptest.Sum(big) {
		t.Fatalf("the download that started before the reload got %d bytes with a different checksum", len(got))
	}
}

func TestTransferLogReopens(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	logPath := filepath.Join(t.TempDir(), "xferlog")
	f.opts.TransferLog = logPath
	ts := startServer(t, f)
	c := ts.dial(t, "anonymous", "me@example.com")

	_ = ftptest.Retr(t, c, "/README.txt")
	waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return bytes.Count(b, []byte("\n")) == 1 })

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}

	if err := ts.srv.ReopenLogs(); err != nil {
		t.Fatal(err)
	}

	_ = ftptest.Retr(t, c, "/README.txt")
	waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return bytes.Count(b, []byte("\n")) == 1 })

	if old, _ := os.ReadFile(logPath + ".1"); bytes.Count(old, []byte("\n")) != 1 {
		t.Fatalf("the rotated file got more lines: %q", old)
	}

	line, _ := os.ReadFile(logPath)
	if fields := strings.Fields(string(line)); len(fields) != 18 || fields[12] != "a" || fields[13] != "me@example.com" {
		t.Fatalf("anonymous xferlog line: %q", line)
	}
}

// An incomplete transfer is marked "i" in the xferlog, with its reason in the structured log.
func TestIncompleteTransferIsMarked(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	writeFile(t, filepath.Join(root, "huge.bin"), ftptest.RandomBytes(32<<20))
	logPath := filepath.Join(t.TempDir(), "xferlog")
	f.opts.TransferLog = logPath
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")
	data := c.DialPasv()

	c.Must(150, "RETR /huge.bin")
	_, _ = io.CopyN(io.Discard, data, 1<<20)
	_ = data.(*net.TCPConn).SetLinger(0)
	_ = data.Close()

	waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return bytes.Count(b, []byte("\n")) == 1 })

	line, _ := os.ReadFile(logPath)
	if fields := strings.Fields(string(line)); fields[len(fields)-1] != "i" {
		t.Fatalf("xferlog line not marked incomplete: %q", line)
	}

	// The transfer's log lines are written once its reply went out.
	waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) > 0 })
	entry := ts.logs.FilterMessage("transfer incomplete").All()
	if len(entry) != 1 || entry[0].ContextMap()["error"] == nil {
		t.Fatalf("structured log lacks the reason: %v", entry)
	}
}

// A reset data connection gets a reply that says so, without socket addresses.
func TestResetUploadReply(t *testing.T) {
	t.Parallel()

	f, _ := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("alice", testPassword)
	data := c.DialPasv()

	c.Must(150, "STOR /reset.bin")
	_, _ = data.Write(ftptest.RandomBytes(256 << 10))
	time.Sleep(50 * time.Millisecond)
	_ = data.(*net.TCPConn).SetLinger(0)
	_ = data.Close()

	code, msg := c.Read()
	if code < 400 || strings.Contains(msg, "127.0.0.1") || !strings.Contains(msg, "data connection") {
		t.Fatalf("got %d %q, want a failure naming the data connection and no address", code, msg)
	}

	// The transfer's log lines are written once its reply went out.
	waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) > 0 })
	entry := ts.logs.FilterMessage("transfer incomplete").All()
	if len(entry) != 1 || entry[0].ContextMap()["cause"] == nil {
		t.Fatalf("the log lacks the cause: %v", entry)
	}
}
