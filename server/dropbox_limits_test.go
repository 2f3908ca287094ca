package server

import (
	"bytes"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// fakeClock is the drop-box limits' clock in tests: time moves only when
// the test says.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.t = c.t.Add(d)
}

// setClock replaces the clock of the rates and rescans.
func (d *dropBoxes) setClock(now func() time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()

	d.now = now
}

// limitedBox is a running wharf whose anonymous drop box /incoming is bounded
// by limits, its folder on disk, and the limits' clock.
type limitedBox struct {
	*testServer
	dir   string
	clock *fakeClock
}

// startLimitedBox starts a wharf with an anonymous drop box at /incoming
// bounded by limits. Before any upload the box holds someone-else.txt (7
// bytes), plus prefill (paths below the box; a path ending in "/" is a
// folder). max_upload_size is 4 MiB.
func startLimitedBox(t *testing.T, limits DropBoxLimits, atomic bool, prefill ...string) *limitedBox {
	t.Helper()

	root := t.TempDir()
	dir := filepath.Join(root, "incoming")
	writeFile(t, filepath.Join(dir, "someone-else.txt"), []byte("private"))

	for _, name := range prefill {
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}

			continue
		}

		writeFile(t, filepath.Join(dir, name), bytes.Repeat([]byte("o"), 60000))
	}

	opts := defaultOptions()
	opts.AtomicUploads = atomic
	opts.DropBox = limits
	ts := startServerWith(t, fixture{opts: opts, anon: root}, auth.Options{
		Anonymous:          true,
		AnonymousRoot:      root,
		AnonymousUploadDir: "incoming",
		AnonymousMaxUpload: 4 << 20,
	})

	clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	ts.srv.boxes.setClock(clock.now)

	return &limitedBox{testServer: ts, dir: dir, clock: clock}
}

// anon logs in anonymously from the address ip, on a raw control connection.
func (lb *limitedBox) anon(t *testing.T, ip string) *ftptest.Ctl {
	t.Helper()

	c := ftptest.Dial(t, lb.addr, &net.TCPAddr{IP: net.ParseIP(ip)})
	c.Login("anonymous", "guest@example.com")

	return c
}

// refused reads wharf_uploads_refused_total{reason}.
func (lb *limitedBox) refused(reason string) float64 {
	return testutil.ToFloat64(lb.srv.metrics.refusedUploads.WithLabelValues(reason))
}

// usage is what the box holds on disk: bytes of files, and entries.
func (lb *limitedBox) usage(t *testing.T) (int64, int) {
	t.Helper()

	var (
		size    int64
		entries int
	)

	err := filepath.WalkDir(lb.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == lb.dir {
			return err
		}

		entries++
		if info, err := d.Info(); err == nil && d.Type().IsRegular() {
			size += info.Size()
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	return size, entries
}

// dataConn opens a passive data connection from the control connection's own address.
func dataConn(t *testing.T, c *ftptest.Ctl) net.Conn {
	t.Helper()

	addr := c.Pasv()
	local, _ := c.Conn.LocalAddr().(*net.TCPAddr)
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: local.IP}}

	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatalf("dial data connection: %v", err)
	}

	t.Cleanup(func() { _ = conn.Close() })

	return conn
}

// stor uploads data as name and returns the final reply (or the refusal of STOR).
func stor(t *testing.T, c *ftptest.Ctl, name string, data []byte) (int, string) {
	t.Helper()

	conn := dataConn(t, c)
	if code, msg := c.Cmd("STOR %s", name); code != 150 {
		return code, msg
	}

	_, _ = conn.Write(data) // fails when the upload is cut: the reply says why
	_ = conn.Close()

	return c.Read()
}

// want fails unless a reply is exactly code and text.
func want(t *testing.T, what string, code int, text string, wantCode int, wantText string) {
	t.Helper()

	if code != wantCode || (wantText != "" && text != wantText) {
		t.Fatalf("%s: got %d %q, want %d %q", what, code, text, wantCode, wantText)
	}
}

// absent fails if name exists in the box on disk, or a hidden part is left.
func (lb *limitedBox) absent(t *testing.T, name string) {
	t.Helper()

	if _, err := os.Lstat(filepath.Join(lb.dir, name)); err == nil {
		t.Errorf("%s exists after its upload was refused", name)
	}

	noTempFiles(t, lb.dir)
}

const fullReply = "The drop box is full (1 MiB): try again after the operator empties it."

func TestDropBoxQuota(t *testing.T) {
	t.Parallel()

	const quota = 1 << 20
	room := quota - len("private")

	for _, mode := range []struct {
		name   string
		atomic bool
	}{{"atomic", true}, {"direct", false}} {
		t.Run(mode.name+" uploads: the quota holds to the byte and a cut upload gives its bytes back", func(t *testing.T) {
			t.Parallel()

			lb := startLimitedBox(t, DropBoxLimits{Quota: quota}, mode.atomic)
			c := lb.anon(t, "127.0.0.1")

			// One byte too many: cut while it is written, after many writes.
			code, text := stor(t, c, "/incoming/over.bin", ftptest.RandomBytes(room+1))
			want(t, "an upload one byte over the quota", code, text, 552, fullReply)
			lb.absent(t, "over.bin")

			// Its bytes were given back: exactly the room left lands.
			exact := ftptest.RandomBytes(room)
			code, text = stor(t, c, "/incoming/exact.bin", exact)
			want(t, "an upload of exactly the room left", code, text, 226, "")

			if got, _ := os.ReadFile(filepath.Join(lb.dir, "exact.bin")); !bytes.Equal(got, exact) {
				t.Fatalf("exact.bin holds %d bytes, want the %d uploaded", len(got), len(exact))
			}

			// Full to the byte: even an empty file is refused now, at STOR.
			code, text = stor(t, c, "/incoming/empty.bin", nil)
			want(t, "an upload into a full box", code, text, 552, fullReply)
			lb.absent(t, "empty.bin")

			if size, _ := lb.usage(t); size != quota {
				t.Errorf("the box holds %d bytes, want exactly the quota, %d", size, quota)
			}

			if got := lb.refused(reasonQuota); got != 2 {
				t.Errorf("wharf_uploads_refused_total{reason=quota} = %v, want 2", got)
			}
		})

		t.Run(mode.name+" uploads: two uploads racing for the last bytes, exactly one lands", func(t *testing.T) {
			t.Parallel()

			lb := startLimitedBox(t, DropBoxLimits{Quota: quota}, mode.atomic)
			const each = 700 << 10 // one fits, two do not

			a, b := lb.anon(t, "127.0.0.1"), lb.anon(t, "127.0.0.1")
			da, db := dataConn(t, a), dataConn(t, b)
			a.Must(150, "STOR /incoming/a.bin")
			b.Must(150, "STOR /incoming/b.bin")

			// Both are under way before either could be the one that crosses.
			parts := [][]byte{ftptest.RandomBytes(400 << 10), ftptest.RandomBytes(each - 400<<10)}
			for _, part := range parts {
				_, _ = da.Write(part)
				_, _ = db.Write(part)
			}

			_ = da.Close()
			_ = db.Close()
			codeA, textA := a.Read()
			codeB, textB := b.Read()

			landed, cut := "a.bin", "b.bin"
			switch {
			case codeA == 226 && codeB == 552 && textB == fullReply:
			case codeB == 226 && codeA == 552 && textA == fullReply:
				landed, cut = cut, landed
			default:
				t.Fatalf("got %d %q and %d %q, want one 226 and one 552 %q", codeA, textA, codeB, textB, fullReply)
			}

			if info, err := os.Stat(filepath.Join(lb.dir, landed)); err != nil || info.Size() != each {
				t.Fatalf("the upload that landed: %v, %v", info, err)
			}

			lb.absent(t, cut)

			// The cut one gave its bytes back: what is left is exactly the room.
			left := room - each
			code, text := stor(t, a, "/incoming/rest.bin", ftptest.RandomBytes(left+1))
			want(t, "one byte more than the room left", code, text, 552, fullReply)

			code, text = stor(t, a, "/incoming/rest.bin", ftptest.RandomBytes(left))
			want(t, "the room left", code, text, 226, "")

			if size, _ := lb.usage(t); size != quota {
				t.Errorf("the box holds %d bytes, want exactly the quota, %d", size, quota)
			}
		})
	}
}

func TestDropBoxEntries(t *testing.T) {
	t.Parallel()

	lb := startLimitedBox(t, DropBoxLimits{MaxFiles: 4}, true)
	c := lb.anon(t, "127.0.0.1")

	c.Must(257, "MKD /incoming/a")

	// A refused upload makes nothing, and takes no entry.
	if code, text := stor(t, c, "/incoming/someone-else.txt", []byte("x")); code < 450 || code == 552 {
		t.Fatalf("STOR over someone else's file: got %d %q, want a refusal that is not the limit's", code, text)
	}

	if code, text := stor(t, c, "/incoming/a/f.txt", []byte("x")); code != 226 {
		t.Fatalf("STOR a/f.txt: got %d %q", code, text)
	}

	c.Must(257, "MKD /incoming/b") // the fourth entry, with someone-else.txt

	const full = "The drop box holds too many files and folders (4): try again after the operator empties it."
	code, text := c.Cmd("MKD /incoming/c")
	want(t, "MKD past the entries", code, text, 552, full)

	code, text = stor(t, c, "/incoming/g.txt", []byte("x"))
	want(t, "STOR past the entries", code, text, 552, full)
	lb.absent(t, "g.txt")

	c.Must(250, "CWD /incoming")
	dataConn(t, c)
	code, text = c.Cmd("STOU")
	want(t, "STOU past the entries", code, text, 552, full)

	if _, entries := lb.usage(t); entries != 4 {
		t.Errorf("the box holds %d entries, want 4", entries)
	}

	if got := lb.refused(reasonFiles); got != 3 {
		t.Errorf("wharf_uploads_refused_total{reason=files} = %v, want 3", got)
	}
}

func TestDropBoxDepth(t *testing.T) {
	t.Parallel()

	lb := startLimitedBox(t, DropBoxLimits{MaxDepth: 2}, true)
	c := lb.anon(t, "127.0.0.1")

	const deep = "Too deep: folders in the drop box nest at most 2 levels below /incoming."

	c.Must(257, "MKD /incoming/a")
	c.Must(257, "MKD /incoming/a/b")
	code, text := c.Cmd("MKD /incoming/a/b/c")
	want(t, "MKD three levels deep", code, text, 552, deep)

	// Relative to the working folder too.
	c.Must(250, "CWD /incoming/a/b")
	code, text = c.Cmd("MKD c")
	want(t, "MKD c in /incoming/a/b", code, text, 552, deep)

	if code, text := stor(t, c, "f.txt", []byte("x")); code != 226 {
		t.Fatalf("STOR two levels deep: got %d %q", code, text)
	}

	// A folder made too deep by hand takes no upload.
	if err := os.Mkdir(filepath.Join(lb.dir, "a", "b", "c"), 0o755); err != nil {
		t.Fatal(err)
	}

	code, text = stor(t, c, "/incoming/a/b/c/f.txt", []byte("x"))
	want(t, "STOR into a folder three levels deep", code, text, 552, deep)
	lb.absent(t, "a/b/c/f.txt")

	if got := lb.refused(reasonDepth); got != 3 {
		t.Errorf("wharf_uploads_refused_total{reason=depth} = %v, want 3", got)
	}
}

func TestDropBoxFilesPerMinute(t *testing.T) {
	t.Parallel()

	t.Run("each address gets its own rate, which refills with time", func(t *testing.T) {
		t.Parallel()

		lb := startLimitedBox(t, DropBoxLimits{FilesPerMinute: 3}, true)
		c := lb.anon(t, "127.0.0.1")

		c.Must(257, "MKD /incoming/m1")
		if code, text := stor(t, c, "/incoming/f1.txt", []byte("x")); code != 226 {
			t.Fatalf("STOR f1: got %d %q", code, text)
		}
		c.Must(257, "MKD /incoming/m2")

		const slow = "Too many uploads from your address: try again in 20 s."
		code, text := c.Cmd("MKD /incoming/m3")
		want(t, "the fourth MKD in a minute", code, text, 450, slow)

		code, text = stor(t, c, "/incoming/f2.txt", []byte("x"))
		want(t, "the fourth STOR in a minute", code, text, 450, slow)
		lb.absent(t, "f2.txt")

		// Another address is not slowed by the first.
		other := lb.anon(t, "127.0.0.2")
		other.Must(257, "MKD /incoming/n1")

		lb.clock.advance(20 * time.Second)
		c.Must(257, "MKD /incoming/m3")
		code, text = c.Cmd("MKD /incoming/m4")
		want(t, "MKD as soon as the one entry of 20 s is used", code, text, 450, slow)

		if got := lb.refused(reasonRate); got != 3 {
			t.Errorf("wharf_uploads_refused_total{reason=rate} = %v, want 3", got)
		}
	})

	t.Run("a client that keeps going is closed with 421", func(t *testing.T) {
		t.Parallel()

		lb := startLimitedBox(t, DropBoxLimits{FilesPerMinute: 1}, true)
		c := lb.anon(t, "127.0.0.1")
		c.Must(257, "MKD /incoming/first")

		for i := range maxRateRefusals - 1 {
			c.Must(450, "MKD /incoming/again%d", i)
		}

		code, text := c.Cmd("MKD /incoming/last")
		want(t, "MKD after many refusals", code, text, 421, "Too many uploads from your address: closing the connection.")

		_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := c.Text.ReadLine(); err == nil {
			t.Fatalf("the session went on after 421: %q", line)
		}

		if _, entries := lb.usage(t); entries != 2 {
			t.Errorf("the box holds %d entries, want 2", entries)
		}
	})
}

func TestDropBoxBytesPerHour(t *testing.T) {
	t.Parallel()

	lb := startLimitedBox(t, DropBoxLimits{BytesPerHour: 100 << 10}, true)
	c := lb.anon(t, "127.0.0.1")

	if code, text := stor(t, c, "/incoming/a.bin", ftptest.RandomBytes(60000)); code != 226 {
		t.Fatalf("the first 60,000 bytes: got %d %q", code, text)
	}

	// 42,400 bytes are left of the hour's 102,400: the second 60,000 are cut,
	// and the whole allowance is back 35.2 minutes later.
	code, text := stor(t, c, "/incoming/b.bin", ftptest.RandomBytes(60000))
	want(t, "60,000 bytes past the hour's allowance", code, text, 450,
		"Too much uploaded from your address this hour (100 KiB): try again in 36 min.")
	lb.absent(t, "b.bin")

	// Another address has its own allowance.
	other := lb.anon(t, "127.0.0.2")
	if code, text := stor(t, other, "/incoming/c.bin", ftptest.RandomBytes(60000)); code != 226 {
		t.Fatalf("60,000 bytes from another address: got %d %q", code, text)
	}

	// The cut upload gave its bytes back: exactly what is left still lands.
	if code, text := stor(t, c, "/incoming/d.bin", ftptest.RandomBytes(42400)); code != 226 {
		t.Fatalf("the 42,400 bytes left: got %d %q", code, text)
	}

	code, text = stor(t, c, "/incoming/e.bin", []byte("x"))
	want(t, "a byte more", code, text, 450, "Too much uploaded from your address this hour (100 KiB): try again in 60 min.")

	lb.clock.advance(time.Hour)
	if code, text := stor(t, c, "/incoming/e.bin", ftptest.RandomBytes(60000)); code != 226 {
		t.Fatalf("an hour later: got %d %q", code, text)
	}

	if got := lb.refused(reasonBytes); got != 2 {
		t.Errorf("wharf_uploads_refused_total{reason=bytes} = %v, want 2", got)
	}
}

func TestDropBoxRescan(t *testing.T) {
	t.Parallel()

	// Files the operator put there count from the first upload on.
	lb := startLimitedBox(t, DropBoxLimits{Quota: 64 << 10, MaxFiles: 3}, true, "old.bin", "old/")
	c := lb.anon(t, "127.0.0.1")

	const full = "The drop box holds too many files and folders (3): try again after the operator empties it."
	code, text := c.Cmd("MKD /incoming/new")
	want(t, "MKD in a box the operator filled", code, text, 552, full)

	scans := lb.logs.FilterMessage("drop box scanned").All()
	if len(scans) != 1 {
		t.Fatalf("logged %d scans, want 1", len(scans))
	}

	if f := scans[0].ContextMap(); f["files"] != int64(2) || f["folders"] != int64(1) || f["bytes"] != int64(60007) {
		t.Errorf("the first scan logged %v, want 2 files, 1 folder, 60007 bytes", f)
	}

	// The operator empties the box by hand: seen once a refusal finds the
	// last scan old enough.
	for _, name := range []string{"old.bin", "old"} {
		if err := os.Remove(filepath.Join(lb.dir, name)); err != nil {
			t.Fatal(err)
		}
	}

	code, text = c.Cmd("MKD /incoming/new")
	want(t, "MKD right after the last scan", code, text, 552, full)

	lb.clock.advance(rescanAfter)
	c.Must(257, "MKD /incoming/new")

	if code, text := stor(t, c, "/incoming/f.bin", ftptest.RandomBytes(60000)); code != 226 {
		t.Fatalf("STOR after the rescan: got %d %q", code, text)
	}

	if len(lb.logs.FilterMessage("drop box rescanned: changed by others").All()) != 1 {
		t.Error("the rescan that found the box emptied was not logged")
	}
}

func TestDropBoxLegitimateUploadAfterFlood(t *testing.T) {
	t.Parallel()

	lb := startLimitedBox(t, DropBoxLimits{Quota: 1 << 20, MaxFiles: 100, MaxDepth: 4, FilesPerMinute: 5, BytesPerHour: 1 << 20}, true)

	// A flood of folders from one address: five are made, the rest refused,
	// and the client that keeps going is closed.
	flood := lb.anon(t, "127.0.0.1")
	made, refused := 0, 0

	for i := range 40 {
		code, _ := flood.Cmd("MKD /incoming/flood%d", i)
		if code == 421 {
			break
		}

		switch code {
		case 257:
			made++
		case 450:
			refused++
		default:
			t.Fatalf("flood MKD %d: got %d", i, code)
		}
	}

	if made != 5 || refused != maxRateRefusals-1 {
		t.Fatalf("the flood made %d folders and had %d refusals before 421, want 5 and %d", made, refused, maxRateRefusals-1)
	}

	// Someone else, with an ordinary client, uploads as usual.
	c := ftptest.Login(t, lb.addr, "anonymous", "me@example.com", ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}

		return d.DialContext(t.Context(), network, address)
	}))

	report := ftptest.RandomBytes(200 << 10)
	if err := c.Stor("/incoming/report.pdf", bytes.NewReader(report)); err != nil {
		t.Fatalf("a legitimate upload after the flood: %v", err)
	}

	if got, _ := os.ReadFile(filepath.Join(lb.dir, "report.pdf")); !bytes.Equal(got, report) {
		t.Fatalf("report.pdf holds %d bytes, want the %d uploaded", len(got), len(report))
	}
}

func TestDropBoxRefusalMetric(t *testing.T) {
	t.Parallel()

	lb := startLimitedBox(t, DropBoxLimits{}, false)

	// Every reason is exported from the start.
	n, err := testutil.GatherAndCount(lb.srv.Registry(), "wharf_uploads_refused_total")
	if err != nil || n != len(refusalReasons) {
		t.Fatalf("wharf_uploads_refused_total has %d series (%v), want %d", n, err, len(refusalReasons))
	}

	// max_upload_size counts as "size".
	c := lb.anon(t, "127.0.0.1")
	if code, _ := stor(t, c, "/incoming/huge.bin", make([]byte, 5<<20)); code != 552 {
		t.Fatalf("an upload over max_upload_size: got %d, want 552", code)
	}

	lb.absent(t, "huge.bin")

	if got := lb.refused(reasonSize); got != 1 {
		t.Errorf("wharf_uploads_refused_total{reason=size} = %v, want 1", got)
	}
}

func TestDropBoxRatesForgetTheLeastRecentAddress(t *testing.T) {
	t.Parallel()

	d := newDropBoxes(DropBoxLimits{FilesPerMinute: 1}, zap.NewNop(), newMetrics(func() float64 { return 0 }).refusedUploads)
	now := time.Now()

	d.mu.Lock()
	defer d.mu.Unlock()

	d.addrLocked("192.0.2.1", now).files.tokens = 0 // slowed down, then quiet
	for i := range maxRateAddrs {
		d.addrLocked(addrKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), 0), now)
	}

	if len(d.addrs) != maxRateAddrs || d.lru.Len() != maxRateAddrs {
		t.Fatalf("the table holds %d addresses (%d in its list), want at most %d", len(d.addrs), d.lru.Len(), maxRateAddrs)
	}

	if _, ok := d.addrs["192.0.2.1"]; ok {
		t.Error("the address seen least recently is still remembered")
	}
}

func TestDropBoxInterruptedUpload(t *testing.T) {
	t.Parallel()

	const quota = 1 << 20
	room := quota - len("private")

	for _, tc := range ftptest.Cuts() {
		t.Run("atomic: an upload ended by "+tc.Name+" gives its bytes and its entry back", func(t *testing.T) {
			t.Parallel()

			lb := startLimitedBox(t, DropBoxLimits{Quota: quota, MaxFiles: 2}, true)
			c := lb.anon(t, "127.0.0.1")
			data := dataConn(t, c)
			c.Must(150, "STOR /incoming/half.bin")

			if _, err := data.Write(ftptest.RandomBytes(600 << 10)); err != nil {
				t.Fatal(err)
			}

			time.Sleep(100 * time.Millisecond)
			tc.Kill(c, data)
			waitFor(t, func() bool { return len(lb.logs.FilterMessage("transfer incomplete").All()) == 1 })
			lb.absent(t, "half.bin")

			// The one entry left, and every byte of room, are there to take.
			again := lb.anon(t, "127.0.0.1")
			if code, text := stor(t, again, "/incoming/whole.bin", ftptest.RandomBytes(room)); code != 226 {
				t.Fatalf("the whole room in the one entry left: got %d %q", code, text)
			}
		})
	}

	t.Run("direct: what an interrupted upload left in place still counts", func(t *testing.T) {
		t.Parallel()

		lb := startLimitedBox(t, DropBoxLimits{Quota: quota}, false)
		c := lb.anon(t, "127.0.0.1")
		data := dataConn(t, c)
		c.Must(150, "STOR /incoming/half.bin")

		if _, err := data.Write(ftptest.RandomBytes(600 << 10)); err != nil {
			t.Fatal(err)
		}

		time.Sleep(100 * time.Millisecond)
		_ = data.(*net.TCPConn).SetLinger(0)
		_ = data.Close()
		c.Expect(426)
		waitFor(t, func() bool { return len(lb.logs.FilterMessage("transfer incomplete").All()) == 1 })

		info, err := os.Stat(filepath.Join(lb.dir, "half.bin"))
		if err != nil {
			t.Fatalf("direct mode keeps what arrived: %v", err)
		}

		left := room - int(info.Size())
		code, text := stor(t, c, "/incoming/rest.bin", ftptest.RandomBytes(left+1))
		want(t, "a byte more than the room the partial file left", code, text, 552, fullReply)

		if code, text := stor(t, c, "/incoming/rest.bin", ftptest.RandomBytes(left)); code != 226 {
			t.Fatalf("the room the partial file left: got %d %q", code, text)
		}
	})
}
