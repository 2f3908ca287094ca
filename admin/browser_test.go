package admin

import (
	"bytes"
	"context"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"wharf/internal/testenv"
)

// findBrowser returns the headless Chromium to drive.
func findBrowser(t *testing.T) string {
	t.Helper()

	return testenv.Tool(t, "chromium", "chromium-browser")
}

// progressTag finds each <progress> element in serialized HTML.
var progressTag = regexp.MustCompile(`<progress\b[^>]*>`)

// attr reads one attribute from a serialized start tag, "" when it is absent.
func attr(tag, name string) string {
	if m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag); m != nil {
		return m[1]
	}

	return ""
}

// The page works in a browser on a listener without a token, and on one
// with a token through a proxy that adds the Authorization header, which is
// how README says to show it in a browser.
func TestStatusPageInBrowser(t *testing.T) {
	t.Parallel()

	browser := findBrowser(t)

	t.Run("without a token", func(t *testing.T) {
		t.Parallel()

		polls, sessions := pollingSessions()
		base := startServer(t, Options{Sessions: sessions, Gatherer: statusRegistry(time.Now().Add(-2 * time.Hour))}, zap.NewNop())
		checkStatusPage(t, browser, base, polls)
	})

	t.Run("with a token, through a proxy that adds it", func(t *testing.T) {
		t.Parallel()

		polls, sessions := pollingSessions()
		base := startServer(t, Options{Sessions: sessions, Token: testToken, Gatherer: statusRegistry(time.Now().Add(-2 * time.Hour))},
			zap.NewNop())

		target, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}

		proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Set("Authorization", "Bearer "+testToken)
		}})
		t.Cleanup(proxy.Close)

		checkStatusPage(t, browser, proxy.URL, polls)
	})
}

// pollingSessions returns sessions for Options.Sessions, and the count of
// its calls.
func pollingSessions() (*atomic.Int64, func() []Session) {
	// Each poll of /sessions sees the download 256 KiB further along.
	var polls atomic.Int64

	since := time.Now().Add(-3 * time.Minute)

	return &polls, func() []Session {
		n := polls.Add(1)

		return []Session{
			{ID: 41, ClientIP: "192.0.2.7", Since: since, Command: "USER"},
			{ID: 42, User: "alice", ClientIP: "192.0.2.8", Since: since, Command: "RETR", Transfer: &Transfer{
				Path: "/pub/release.tar.gz", Direction: "download", Bytes: n * 256 << 10, Size: 64 << 20,
				Started: since.Add(time.Minute), Rate: 1.5 * (1 << 20),
			}},
			{ID: 43, User: "<b>mallory</b>", ClientIP: "192.0.2.9", Since: since, Command: "NOOP"},
		}
	}
}

// checkStatusPage loads the page at base in a headless browser and checks
// what it shows, and that it kept polling /sessions (polls counts the calls).
func checkStatusPage(t *testing.T, browser, base string, polls *atomic.Int64) {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", base+"/")
	cmd.WaitDelay = 5 * time.Second // chromium's helpers may hold stdout open

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", browser, err, stderr.String())
	}

	dom := string(out)

	for _, want := range []string{
		`data-session-id="41"`, `data-session-id="42"`, `data-session-id="43"`,
		">alice<", "/pub/release.tar.gz", "192.0.2.7", "↓ download", "3m ago", "MiB/s",
		`<span id="session-count">3</span>`,
		// The overview, from /status.
		`<dd id="version" title="built with go1.26.8">1.2.3-test</dd>`, `<dd id="uptime">2h 0m</dd>`,
		`<dd id="downloads">7 · 5.0 MiB</dd>`, `<dd id="logins">9 (2 failed)</dd>`, `<dd id="bans">2</dd>`,
		"&lt;b&gt;mallory&lt;/b&gt;", // a user name is text, never markup
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}

	if strings.Contains(dom, "<b>mallory</b>") {
		t.Errorf("a user name was inserted as HTML")
	}

	var value float64

	for _, tag := range progressTag.FindAllString(dom, -1) {
		if attr(tag, "data-path") != "/pub/release.tar.gz" || attr(tag, "class") != "progress" {
			continue
		}

		value, _ = strconv.ParseFloat(attr(tag, "value"), 64)
	}

	if value <= 0 {
		t.Errorf("no progress bar with a value > 0 for /pub/release.tar.gz in:\n%s", dom)
	}

	if polls.Load() < 2 {
		t.Errorf("the page polled /sessions %d times, want it to keep polling", polls.Load())
	}

	if t.Failed() {
		t.Logf("dumped DOM:\n%s\nstderr:\n%s", dom, stderr.String())
	}
}
