package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/internal/testenv"
	"wharf/vfs"
)

// httpFixture is a served tree for the HTTP listener: files, a subfolder,
// names that need escaping, a hidden, a denied and a private name, links
// inside and out, and an upload folder.
func httpFixture(t *testing.T) (root, outside string) {
	t.Helper()

	root = makeTree(t)
	outside = t.TempDir()
	writeFile(t, filepath.Join(outside, "secret.txt"), []byte("outside the tree\n"))

	writeFile(t, filepath.Join(root, "<img src=x onerror=alert(1)>.txt"), []byte("a name to escape\n"))
	writeFile(t, filepath.Join(root, "a b&c.txt"), []byte("spaces and an ampersand\n"))
	writeFile(t, filepath.Join(root, ".dotfile"), []byte("not listed, served\n"))
	writeFile(t, filepath.Join(root, "notes.hidden"), []byte("hidden, still served by name\n"))
	writeFile(t, filepath.Join(root, "pub", ".big.bin.Ab12Cd"), []byte("rsync is writing this\n"))
	writeFile(t, filepath.Join(root, "private.txt"), []byte("only the owner may read this\n"))
	writeFile(t, filepath.Join(root, "index.html"), []byte("<p>an index.html is a file like any other</p>\n"))

	if err := os.Chmod(filepath.Join(root, "private.txt"), 0o600); err != nil {
		t.Fatal(err)
	}

	for link, target := range map[string]string{"latest": "pub", "readme-link": "README.txt", "escape": outside, "escape-file": filepath.Join(outside, "secret.txt")} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.Mkdir(filepath.Join(root, "incoming"), 0o733); err != nil {
		t.Fatal(err)
	}

	writeFile(t, filepath.Join(root, "incoming", "dropped.txt"), []byte("someone's upload\n"))

	return root, outside
}

// startHTTP starts a server with the HTTP listener on the anonymous tree
// root, and returns it with the listener's base URL.
func startHTTP(t *testing.T, root string, edit func(*Options, *auth.Options)) (*testServer, string) {
	t.Helper()

	opts := defaultOptions()
	opts.HTTP.Listen = "127.0.0.1:0"
	opts.Listing.Hide = []string{"*.hidden"}
	opts.Listing.Deny = vfs.DefaultDeny()
	opts.DataTimeout = 5 * time.Second

	ao := auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousWorldReadableOnly: true, AnonymousUploadDir: "incoming"}
	if edit != nil {
		edit(&opts, &ao)
	}

	ts := startServerWith(t, fixture{opts: opts}, ao)

	scheme := "http"
	if opts.HTTP.TLS {
		scheme = "https"
	}

	return ts, scheme + "://" + ts.srv.HTTPAddr().String()
}

// curlResult is what curl printed: the headers (-D -), the body, the status.
type curlResult struct {
	code    int
	headers string
	body    []byte
}

func (c curlResult) header(name string) string {
	for line := range strings.SplitSeq(c.headers, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}

	return ""
}

// headersOnly reports whether curl -I got no body: its output is the headers.
func (c curlResult) headersOnly() bool {
	return string(c.body) == c.headers
}

// curl runs the real curl with args and the URL; it never follows redirects.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()

	bin := testenv.Tool(t, "curl")
	dir := t.TempDir()
	headers, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	full := append([]string{"-sS", "--max-time", "20", "-D", headers, "-o", body, "-w", "%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, bin, full...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}

	var res curlResult
	if _, err := fmt.Sscan(string(out), &res.code); err != nil {
		t.Fatalf("curl %s: status %q", strings.Join(args, " "), out)
	}

	h, _ := os.ReadFile(headers)
	res.headers = string(h)
	res.body, _ = os.ReadFile(body)

	return res
}

func TestHTTPIndexPage(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	_, base := startHTTP(t, root, nil)

	res := curl(t, base+"/")
	if res.code != http.StatusOK || !strings.HasPrefix(res.header("Content-Type"), "text/html") {
		t.Fatalf("index: %d %q", res.code, res.header("Content-Type"))
	}

	page := string(res.body)

	// Listed, in order of name, escaped in the text and in the link.
	want := []string{
		`<a href="./%3Cimg%20src=x%20onerror=alert%281%29%3E.txt">&lt;img src=x onerror=alert(1)&gt;.txt</a>`,
		`<a href="./README.txt">README.txt</a>`,
		`<a href="./a%20b&amp;c.txt">a b&amp;c.txt</a>`,
		`<a href="./incoming/">incoming/</a>`,
		`<a href="./index.html">index.html</a>`,
		`<a href="./latest/">latest/</a>`,
		`<a href="./pub/">pub/</a>`,
		`<a href="./readme-link">readme-link</a>`,
	}
	at := 0
	for _, w := range want {
		i := strings.Index(page[at:], w)
		if i < 0 {
			t.Fatalf("index page lacks %s after position %d:\n%s", w, at, page)
		}
		at += i + len(w)
	}

	if !strings.Contains(page, `<td class="size">17</td>`) {
		t.Errorf("README.txt's size missing:\n%s", page)
	}

	if !strings.Contains(page, "&rarr; pub") {
		t.Errorf("the link's target missing:\n%s", page)
	}

	for _, absent := range []string{"<img", ".dotfile", "notes.hidden", "private.txt", "escape", "../"} {
		if strings.Contains(page, absent) {
			t.Errorf("index page shows %q:\n%s", absent, page)
		}
	}

	if csp := res.header("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}

	sub := curl(t, base+"/pub/")
	if sub.code != http.StatusOK || !strings.Contains(string(sub.body), `<a href="../">../</a>`) ||
		!strings.Contains(string(sub.body), `<a href="./%C3%A9t%C3%A9%20%C3%BCn%C3%AFcode.txt">été ünïcode.txt</a>`) ||
		strings.Contains(string(sub.body), ".big.bin.") {
		t.Errorf("/pub/: %d\n%s", sub.code, sub.body)
	}

	head := curl(t, "-I", base+"/pub/")
	if head.code != http.StatusOK || !head.headersOnly() || head.header("Content-Length") != fmt.Sprint(len(sub.body)) {
		t.Errorf("HEAD /pub/: %d, %d bytes, Content-Length %q", head.code, len(head.body), head.header("Content-Length"))
	}
}

func TestHTTPFolderRedirects(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	_, base := startHTTP(t, root, nil)

	for from, to := range map[string]string{"/pub": "/pub/", "/latest": "/latest/", "/a%20dir": "/a%20dir/"} {
		if from == "/a%20dir" {
			if err := os.Mkdir(filepath.Join(root, "a dir"), 0o755); err != nil {
				t.Fatal(err)
			}
		}

		res := curl(t, base+from)
		if res.code != http.StatusMovedPermanently || res.header("Location") != to {
			t.Errorf("%s: %d, Location %q, want 301 to %s", from, res.code, res.header("Location"), to)
		}
	}

	if res := curl(t, base+"/README.txt/"); res.code != http.StatusNotFound {
		t.Errorf("a file with a trailing slash: %d, want 404", res.code)
	}

	// index.html is not served in place of the index.
	if res := curl(t, base+"/"); !strings.Contains(string(res.body), "Index of /") {
		t.Errorf("/ is not the index page:\n%s", res.body)
	}
}

func TestHTTPFileRequests(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	_, base := startHTTP(t, root, nil)
	big, err := os.ReadFile(filepath.Join(root, "pub", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}

	full := curl(t, base+"/pub/big.bin")
	if full.code != http.StatusOK || !bytes.Equal(full.body, big) || full.header("Content-Type") != "application/octet-stream" ||
		full.header("Accept-Ranges") != "bytes" {
		t.Fatalf("GET: %d, %d bytes, %q, %q", full.code, len(full.body), full.header("Content-Type"), full.header("Accept-Ranges"))
	}

	etag, modified := full.header("ETag"), full.header("Last-Modified")
	if !strings.HasPrefix(etag, `"100000-`) || modified == "" {
		t.Fatalf("ETag %q, Last-Modified %q", etag, modified)
	}

	t.Run("a range is the bytes asked for", func(t *testing.T) {
		res := curl(t, "-r", "0-99", base+"/pub/big.bin")
		if res.code != http.StatusPartialContent || !bytes.Equal(res.body, big[:100]) ||
			res.header("Content-Range") != fmt.Sprintf("bytes 0-99/%d", len(big)) {
			t.Errorf("-r 0-99: %d, %d bytes, %q", res.code, len(res.body), res.header("Content-Range"))
		}

		tail := curl(t, "-r", "1048000-", base+"/pub/big.bin")
		if tail.code != http.StatusPartialContent || !bytes.Equal(tail.body, big[1048000:]) {
			t.Errorf("-r 1048000-: %d, %d bytes", tail.code, len(tail.body))
		}
	})

	t.Run("several ranges are a multipart body", func(t *testing.T) {
		res := curl(t, "-r", "0-9,100-109", base+"/pub/big.bin")
		if res.code != http.StatusPartialContent || !strings.HasPrefix(res.header("Content-Type"), "multipart/byteranges") ||
			!bytes.Contains(res.body, big[:10]) || !bytes.Contains(res.body, big[100:110]) {
			t.Errorf("-r 0-9,100-109: %d, %q, %d bytes", res.code, res.header("Content-Type"), len(res.body))
		}
	})

	t.Run("HEAD sends the headers only", func(t *testing.T) {
		res := curl(t, "-I", base+"/pub/big.bin")
		if res.code != http.StatusOK || !res.headersOnly() || res.header("Content-Length") != fmt.Sprint(len(big)) ||
			res.header("ETag") != etag {
			t.Errorf("-I: %d, %d bytes, Content-Length %q, ETag %q", res.code, len(res.body), res.header("Content-Length"), res.header("ETag"))
		}
	})

	t.Run("a client with the current version gets 304", func(t *testing.T) {
		for _, h := range []string{"If-None-Match: " + etag, "If-Modified-Since: " + modified} {
			res := curl(t, "-H", h, base+"/pub/big.bin")
			if res.code != http.StatusNotModified || len(res.body) != 0 {
				t.Errorf("%s: %d, %d bytes", h, res.code, len(res.body))
			}
		}

		res := curl(t, "-H", `If-None-Match: "1-2-3"`, base+"/pub/big.bin")
		if res.code != http.StatusOK {
			t.Errorf("another ETag: %d, want 200", res.code)
		}
	})

	t.Run("a file replaced has another ETag", func(t *testing.T) {
		next := filepath.Join(root, "pub", "big.bin.new")
		writeFile(t, next, big)
		st, _ := os.Stat(filepath.Join(root, "pub", "big.bin"))
		if err := os.Chtimes(next, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}

		if err := os.Rename(next, filepath.Join(root, "pub", "big.bin")); err != nil {
			t.Fatal(err)
		}

		res := curl(t, "-H", "If-None-Match: "+etag, base+"/pub/big.bin")
		if res.code != http.StatusOK || res.header("ETag") == etag {
			t.Errorf("after a rename: %d, ETag %q (was %q)", res.code, res.header("ETag"), etag)
		}
	})

	t.Run("types come from the extension", func(t *testing.T) {
		for name, want := range map[string]string{"/README.txt": "text/plain; charset=utf-8", "/index.html": "text/html; charset=utf-8"} {
			if res := curl(t, base+name); res.code != http.StatusOK || res.header("Content-Type") != want {
				t.Errorf("%s: %d, %q, want %q", name, res.code, res.header("Content-Type"), want)
			}
		}
	})

	t.Run("links inside the tree are followed", func(t *testing.T) {
		for name, want := range map[string]string{"/readme-link": "hello from wharf\n", "/latest/lf.txt": "line one\nline two\n"} {
			if res := curl(t, base+name); res.code != http.StatusOK || string(res.body) != want {
				t.Errorf("%s: %d %q", name, res.code, res.body)
			}
		}
	})

	t.Run("hidden names and dotfiles are served by name", func(t *testing.T) {
		for _, name := range []string{"/notes.hidden", "/.dotfile"} {
			if res := curl(t, base+name); res.code != http.StatusOK {
				t.Errorf("%s: %d", name, res.code)
			}
		}
	})

	t.Run("other methods get 405", func(t *testing.T) {
		for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
			res := curl(t, "-X", m, base+"/README.txt")
			if res.code != http.StatusMethodNotAllowed || res.header("Allow") != "GET, HEAD" {
				t.Errorf("%s: %d, Allow %q", m, res.code, res.header("Allow"))
			}
		}
	})
}

// Whatever the request, nothing outside the tree, nothing denied, private
// or in the drop box is served, and refusals do not tell a name exists.
func TestHTTPConfinement(t *testing.T) {
	t.Parallel()

	root, outside := httpFixture(t)
	_, base := startHTTP(t, root, nil)
	secret := filepath.Base(outside) + "/secret.txt"

	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{"dot-dot", "/../../../../etc/passwd", http.StatusNotFound},
		{"dot-dot to the outside folder", "/../" + secret, http.StatusNotFound},
		{"dot-dot inside the tree", "/pub/../README.txt", http.StatusNotFound},
		{"encoded dot-dot", "/%2e%2e/%2e%2e/etc/passwd", http.StatusNotFound},
		{"encoded dot-dot inside", "/pub/%2E%2E/README.txt", http.StatusNotFound},
		{"encoded slash", "/pub%2fbig.bin", http.StatusNotFound},
		{"encoded slash, upper case", "/pub%2Fbig.bin", http.StatusNotFound},
		{"NUL", "/README.txt%00.png", http.StatusNotFound},
		{"dot", "/./README.txt", http.StatusNotFound},
		{"double slash", "//README.txt", http.StatusNotFound},
		{"backslash dot-dot", "/..%5c..%5cetc/passwd", http.StatusNotFound},
		{"a link out of the tree", "/escape/secret.txt", http.StatusNotFound},
		{"a link to a file out of the tree", "/escape-file", http.StatusNotFound},
		{"a denied name", "/pub/.big.bin.Ab12Cd", http.StatusNotFound},
		{"a file others may not read", "/private.txt", http.StatusNotFound},
		{"the drop box", "/incoming/", http.StatusForbidden},
		{"a file in the drop box", "/incoming/dropped.txt", http.StatusForbidden},
		{"a missing name", "/nothing-here", http.StatusNotFound},
	} {
		res := curl(t, "--path-as-is", base+tc.path)
		if res.code != tc.code {
			t.Errorf("%s (%s): %d, want %d\n%s", tc.name, tc.path, res.code, tc.code, res.body)
		}

		for _, leak := range []string{"outside the tree", "rsync is writing", "only the owner", "someone's upload", root} {
			if bytes.Contains(res.body, []byte(leak)) {
				t.Errorf("%s (%s) shows %q:\n%s", tc.name, tc.path, leak, res.body)
			}
		}
	}
}

func TestHTTPRefusesBannedAndDeniedAddresses(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)

	t.Run("banned", func(t *testing.T) {
		t.Parallel()

		ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
			o.Ban = BanOptions{MaxFailures: 1, Window: time.Minute, Duration: time.Hour}
		})

		if res := curl(t, base+"/README.txt"); res.code != http.StatusOK {
			t.Fatalf("before the ban: %d", res.code)
		}

		ts.srv.bans.fail("127.0.0.1", "127.0.0.1")

		res := curl(t, base+"/README.txt")
		if res.code != http.StatusForbidden || !strings.Contains(string(res.body), "banned") ||
			res.header("Connection") != "close" || bytes.Contains(res.body, []byte("hello from wharf")) {
			t.Errorf("banned: %d, Connection %q\n%s", res.code, res.header("Connection"), res.body)
		}
	})

	t.Run("denied by [access]", func(t *testing.T) {
		t.Parallel()

		_, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
			o.AccessDeny = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		})

		if res := curl(t, base+"/"); res.code != http.StatusForbidden || bytes.Contains(res.body, []byte("README")) {
			t.Errorf("denied: %d\n%s", res.code, res.body)
		}
	})
}

// max_clients_per_ip bounds the HTTP connections of one address, counted
// apart from FTP sessions: past it a request gets 503 and the connection
// closes.
func TestHTTPConnectionsPerAddress(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) { o.MaxClientsPerIP = 2 })

	// FTP sessions do not count against the HTTP connections.
	_ = ts.dial(t, "anonymous", "x")
	_ = ts.dial(t, "anonymous", "x")

	if res := curl(t, base+"/README.txt"); res.code != http.StatusOK {
		t.Fatalf("with two FTP sessions: %d", res.code)
	}

	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })

		held = append(held, c)
	}

	waitFor(t, func() bool { _, n := ts.srv.web.conns.count("127.0.0.1"); return n == 2 })

	res := curl(t, base+"/README.txt")
	if res.code != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "too many connections from your address") {
		t.Errorf("a third connection: %d\n%s", res.code, res.body)
	}

	_ = held[0].Close()
	waitFor(t, func() bool { _, n := ts.srv.web.conns.count("127.0.0.1"); return n == 1 })

	if res := curl(t, base+"/README.txt"); res.code != http.StatusOK {
		t.Errorf("after one closed: %d", res.code)
	}
}

func TestHTTPDownloadIsLoggedAndCounted(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	xferlog := filepath.Join(t.TempDir(), "xferlog")
	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) { o.TransferLog = xferlog })

	if res := curl(t, base+"/pub/big.bin"); res.code != http.StatusOK || len(res.body) != 1<<20 {
		t.Fatalf("GET: %d, %d bytes", res.code, len(res.body))
	}

	_ = curl(t, "-r", "0-99", base+"/README.txt")
	_ = curl(t, "-I", base+"/README.txt") // no transfer
	_ = curl(t, base+"/")                 // neither

	data, err := os.ReadFile(xferlog)
	if err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " 127.0.0.1 1048576 /pub/big.bin b _ o a * http 0 * c") ||
		!strings.Contains(lines[1], " 127.0.0.1 17 /README.txt b _ o a * http 0 * c") {
		t.Errorf("xferlog:\n%s", data)
	}

	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(`
# HELP wharf_transfer_bytes_total Bytes moved by file transfers, by direction and protocol.
# TYPE wharf_transfer_bytes_total counter
wharf_transfer_bytes_total{direction="download",protocol="ftp"} 0
wharf_transfer_bytes_total{direction="download",protocol="http"} 1048593
wharf_transfer_bytes_total{direction="upload",protocol="ftp"} 0
`), "wharf_transfer_bytes_total"); err != nil {
		t.Error(err)
	}

	if got := testutil.ToFloat64(ts.srv.metrics.httpXfer.complete); got != 2 {
		t.Errorf("complete HTTP transfers: %v, want 2", got)
	}

	if got := testutil.ToFloat64(ts.srv.metrics.httpRequests.WithLabelValues("206")); got != 1 {
		t.Errorf(`wharf_http_requests_total{code="206"}: %v, want 1`, got)
	}

	logged := ts.logs.FilterMessage("transfer done").FilterField(zap.String("protocol", "http")).Len()
	if logged != 2 {
		t.Errorf("%d transfer lines with protocol http, want 2", logged)
	}
}

func TestHTTPBandwidthLimit(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	_, base := startHTTP(t, root, func(_ *Options, a *auth.Options) { a.AnonymousDownloadLimit = 512 << 10 })

	start := time.Now()
	res := curl(t, base+"/pub/big.bin")
	took := time.Since(start)

	// 1 MiB at 512 KiB/s, less the bucket's burst.
	if res.code != http.StatusOK || len(res.body) != 1<<20 || took < 1500*time.Millisecond {
		t.Errorf("limited download: %d, %d bytes in %v, want at least 1.5s", res.code, len(res.body), took)
	}
}

// A client that stops reading is cut data_timeout after its last byte, as
// an FTP data connection is, and the download is logged incomplete.
func TestHTTPStalledDownloadIsCut(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	writeFile(t, filepath.Join(root, "huge.bin"), make([]byte, 64<<20))
	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) { o.DataTimeout = time.Second })

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}

	if _, err := io.WriteString(conn, "GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	waitFor(t, func() bool { return ts.logs.FilterMessage("transfer incomplete").Len() == 1 })

	if got := testutil.ToFloat64(ts.srv.metrics.httpXfer.incomplete); got != 1 {
		t.Errorf("incomplete HTTP transfers: %v", got)
	}
}

func TestHTTPS(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	certFile, keyFile := ftptest.CertFiles(t)
	_, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
		o.HTTP.TLS = true
		o.TLSCertFile, o.TLSKeyFile = certFile, keyFile
	})

	for _, proto := range []string{"--http1.1", "--http2"} {
		res := curl(t, proto, "--cacert", certFile, base+"/pub/big.bin")
		big, _ := os.ReadFile(filepath.Join(root, "pub", "big.bin"))
		if res.code != http.StatusOK || sha256.Sum256(res.body) != sha256.Sum256(big) {
			t.Errorf("%s: %d, %d bytes", proto, res.code, len(res.body))
		}

		if r := curl(t, proto, "--cacert", certFile, "-r", "0-99", base+"/README.txt"); r.code != http.StatusPartialContent ||
			string(r.body) != "hello from wharf\n" {
			t.Errorf("%s range: %d %q", proto, r.code, r.body)
		}
	}

	// Plain HTTP on the HTTPS port gets nothing served.
	if res := curl(t, strings.Replace(base, "https://", "http://", 1)+"/README.txt"); res.code != http.StatusBadRequest {
		t.Errorf("plain HTTP to the HTTPS port: %d", res.code)
	}
}

// Shutdown lets a download finish within its grace, and cuts it after.
func TestHTTPShutdownDrainsDownloads(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	ts, base := startHTTP(t, root, func(_ *Options, a *auth.Options) { a.AnonymousDownloadLimit = 256 << 10 })

	got := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/pub/big.bin")
		if err != nil {
			got <- -1

			return
		}
		defer resp.Body.Close()

		n, _ := io.Copy(io.Discard, resp.Body)
		got <- int(n)
	}()

	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.metrics.httpXfer.bytes) > 0 })

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	if err := ts.srv.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil with a download of 4 s running and a grace of 0.5 s")
	}

	if n := <-got; n >= 1<<20 {
		t.Errorf("the download was not cut: %d bytes", n)
	}

	if ts.logs.FilterMessage("transfer incomplete").Len() != 1 {
		t.Error("the cut download was not logged")
	}

	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		t.Error("the HTTP listener still accepts after Shutdown")
	}
}

// A reload that reads a new certificate applies to HTTPS too, with FTP's
// TLS off.
func TestHTTPSReloadChangesCertificate(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	oldCert, oldKey := ftptest.CertFiles(t)
	srv, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
		o.HTTP.TLS = true
		o.TLSCertFile, o.TLSKeyFile = oldCert, oldKey
	})

	if res := curl(t, "--cacert", oldCert, base+"/README.txt"); res.code != http.StatusOK {
		t.Fatalf("before the reload: %d", res.code)
	}

	newCert, newKey := ftptest.CertFiles(t)
	accounts, err := auth.New(auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousWorldReadableOnly: true})
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.srv.Reload(Reload{Accounts: accounts, TLSCertFile: newCert, TLSKeyFile: newKey}); err != nil {
		t.Fatal(err)
	}

	if res := curl(t, "--cacert", newCert, base+"/README.txt"); res.code != http.StatusOK || string(res.body) != "hello from wharf\n" {
		t.Errorf("with the new certificate: %d %q", res.code, res.body)
	}

	bin := testenv.Tool(t, "curl")
	if err := exec.CommandContext(t.Context(), bin, "-sS", "--max-time", "10", "-o", "/dev/null", "--cacert", oldCert, base+"/README.txt").Run(); err == nil {
		t.Error("the old certificate is still served after the reload")
	}
}

// Index pages are bounded as FTP listings are: max_list_entries cuts the
// page (saying so), max_listing_memory refuses a folder too large for it
// with 503, and a page sent gives its memory back.
func TestHTTPIndexPageBounds(t *testing.T) {
	t.Parallel()

	root, _ := httpFixture(t)
	for i := range 50 {
		writeFile(t, filepath.Join(root, "many", fmt.Sprintf("file-%02d", i)), nil)
	}

	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
		o.MaxListEntries = 3
		o.MaxListingMemory = 4 << 10 // room for the root's 12 entries, not for 50
	})

	res := curl(t, base+"/")
	if res.code != http.StatusOK || !strings.Contains(string(res.body), "Only the first 3 entries are shown.") ||
		strings.Count(string(res.body), `<a href="./`) != 3 {
		t.Errorf("a page cut at max_list_entries: %d\n%s", res.code, res.body)
	}

	res = curl(t, base+"/many/")
	if res.code != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "too large to list") {
		t.Errorf("a folder over max_listing_memory: %d\n%s", res.code, res.body)
	}

	if n := ts.srv.listMem.inUse(); n != 0 {
		t.Errorf("%d bytes of listing memory still held after the pages", n)
	}
}

// A server stopped before it served (start-up failed later on) closes its
// HTTP listener too.
func TestHTTPShutdownBeforeServe(t *testing.T) {
	t.Parallel()

	opts := defaultOptions()
	opts.HTTP.Listen = "127.0.0.1:0"

	accounts, err := auth.New(auth.Options{Anonymous: true, AnonymousRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	srv, err := New(opts, accounts, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}

	addr := srv.HTTPAddr().String()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Error("the HTTP listener still accepts after Shutdown")
	}
}
