package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// sampleSessions is one session that has not logged in and one downloading.
func sampleSessions() []Session {
	since := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

	return []Session{
		{ID: 1, ClientIP: "192.0.2.10", Since: since, Command: "USER"},
		{
			ID: 2, User: "alice", ClientIP: "192.0.2.11", Since: since, Command: "RETR",
			Transfer: &Transfer{
				Path: "/pub/big.iso", Direction: "download", Bytes: 1 << 20, Size: 4 << 20,
				Started: since.Add(time.Minute), Rate: 65536,
			},
		},
	}
}

// testOptions are fully wired options with a registry holding one counter.
func testOptions() Options {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "wharf_test_logins_total", Help: "Test logins."})
	reg.MustRegister(c)
	c.Add(3)

	return Options{
		Listen:   "127.0.0.1:0",
		Gatherer: reg,
		Sessions: sampleSessions,
		Healthy:  func() bool { return true },
		Ready:    func() (bool, string) { return true, "" },
	}
}

// testHost is the Host header of the requests that get sends: an address,
// as a client that dials the listener by its address sends (httptest's
// default, example.com, is a name the Host check refuses).
const testHost = "127.0.0.1:9121"

// get sends one request through the handler and returns the response.
func get(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()

	req := httptest.NewRequest(method, target, nil)
	req.Host = testHost

	return send(t, h, req)
}

// send sends req through the handler and returns the response.
func send(t *testing.T, h http.Handler, req *http.Request) (*http.Response, string) {
	t.Helper()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	t.Cleanup(func() { _ = res.Body.Close() })

	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}

	return res, string(body)
}

func TestRoutes(t *testing.T) {
	t.Parallel()

	h := New(testOptions(), zap.NewNop()).Handler()

	tests := []struct {
		name     string
		method   string
		path     string
		code     int
		ctype    string // prefix
		contains string
	}{
		{"the status page is HTML", http.MethodGet, "/", http.StatusOK, "text/html; charset=utf-8", "session-count"},
		{"metrics are Prometheus text", http.MethodGet, "/metrics", http.StatusOK, "text/plain", "wharf_test_logins_total 3"},
		{"healthz says ok", http.MethodGet, "/healthz", http.StatusOK, "text/plain", "ok"},
		{"readyz says ready", http.MethodGet, "/readyz", http.StatusOK, "text/plain", "ready"},
		{"sessions are JSON", http.MethodGet, "/sessions", http.StatusOK, "application/json", `"user":"alice"`},
		{"status is JSON", http.MethodGet, "/status", http.StatusOK, "application/json", `"totals":`},
		{"HEAD works like GET", http.MethodHead, "/healthz", http.StatusOK, "text/plain", ""},
		{"HEAD on the page works", http.MethodHead, "/", http.StatusOK, "text/html", ""},
		{"an unknown path is 404", http.MethodGet, "/nope", http.StatusNotFound, "", ""},
		{"a path below the page is 404", http.MethodGet, "/index.html", http.StatusNotFound, "", ""},
		{"a path below sessions is 404", http.MethodGet, "/sessions/1", http.StatusNotFound, "", ""},
		{"pprof is 404 when off", http.MethodGet, "/debug/pprof/", http.StatusNotFound, "", ""},
		{"pprof cmdline is 404 when off", http.MethodGet, "/debug/pprof/cmdline", http.StatusNotFound, "", ""},
		{"POST on healthz is 405", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "", ""},
		{"DELETE on sessions is 405", http.MethodDelete, "/sessions", http.StatusMethodNotAllowed, "", ""},
		{"PUT on the page is 405", http.MethodPut, "/", http.StatusMethodNotAllowed, "", ""},
		{"POST on metrics is 405", http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "", ""},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			res, body := get(t, h, tt.method, tt.path)
			if res.StatusCode != tt.code {
				t.Fatalf("%s %s: status %d, want %d (body %q)", tt.method, tt.path, res.StatusCode, tt.code, body)
			}

			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want prefix %q", ct, tt.ctype)
			}

			if !strings.Contains(body, tt.contains) {
				t.Errorf("body %q lacks %q", body, tt.contains)
			}

			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}

			if tt.code == http.StatusMethodNotAllowed {
				if allow := res.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
					t.Errorf("Allow %q, want GET and HEAD", allow)
				}
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		healthy func() bool
		ready   func() (bool, string)
		path    string
		code    int
		body    string
	}{
		{"a listener that accepts is healthy", func() bool { return true }, nil, "/healthz", http.StatusOK, "ok"},
		{"a listener that stopped is unhealthy", func() bool { return false }, nil, "/healthz", http.StatusServiceUnavailable, "not accepting connections"},
		{"a ready server says ready", nil, func() (bool, string) { return true, "" }, "/readyz", http.StatusOK, "ready"},
		{"a draining server gives its reason", nil, func() (bool, string) { return false, "shutting down" }, "/readyz", http.StatusServiceUnavailable, "shutting down"},
		{"a reasonless refusal still says why", nil, func() (bool, string) { return false, "" }, "/readyz", http.StatusServiceUnavailable, "not ready"},
		{"no health func means healthy", nil, nil, "/healthz", http.StatusOK, "ok"},
		{"no readiness func means ready", nil, nil, "/readyz", http.StatusOK, "ready"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			h := New(Options{Healthy: tt.healthy, Ready: tt.ready}, zap.NewNop()).Handler()

			res, body := get(t, h, http.MethodGet, tt.path)
			if res.StatusCode != tt.code || body != tt.body {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, res.StatusCode, body, tt.code, tt.body)
			}
		})
	}
}

func TestSessionsJSON(t *testing.T) {
	t.Parallel()

	t.Run("field names are the documented ones", func(t *testing.T) {
		t.Parallel()

		h := New(testOptions(), zap.NewNop()).Handler()
		_, body := get(t, h, http.MethodGet, "/sessions")

		var raw []map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatalf("decode %q: %v", body, err)
		}

		if len(raw) != 2 {
			t.Fatalf("got %d sessions, want 2: %s", len(raw), body)
		}

		wantSession := []string{"client_ip", "command", "connected_since", "data_tls", "id", "tls", "transfer", "user"}
		if got := slices.Sorted(maps.Keys(raw[1])); !slices.Equal(got, wantSession) {
			t.Errorf("session keys %v, want %v", got, wantSession)
		}

		if _, ok := raw[0]["transfer"]; ok {
			t.Errorf("idle session has a transfer key: %s", body)
		}

		transfer, ok := raw[1]["transfer"].(map[string]any)
		if !ok {
			t.Fatalf("transfer is %T, want an object", raw[1]["transfer"])
		}

		wantTransfer := []string{"bytes", "direction", "path", "rate", "size", "started"}
		if got := slices.Sorted(maps.Keys(transfer)); !slices.Equal(got, wantTransfer) {
			t.Errorf("transfer keys %v, want %v", got, wantTransfer)
		}

		if raw[1]["connected_since"] != "2025-05-01T12:00:00Z" || raw[0]["user"] != "" || transfer["bytes"] != float64(1<<20) {
			t.Errorf("values are off: %s", body)
		}
	})

	t.Run("no sessions is an empty array, not null", func(t *testing.T) {
		t.Parallel()

		for _, fn := range []func() []Session{nil, func() []Session { return nil }} {
			_, body := get(t, New(Options{Sessions: fn}, zap.NewNop()).Handler(), http.MethodGet, "/sessions")
			if strings.TrimSpace(body) != "[]" {
				t.Errorf("body %q, want []", body)
			}
		}
	})

	t.Run("command arguments never leave the server", func(t *testing.T) {
		t.Parallel()

		sessions := func() []Session {
			return []Session{{ID: 7, Command: "PASS hunter2"}, {ID: 8, Command: "  STOR\tsecret.txt"}}
		}
		_, body := get(t, New(Options{Sessions: sessions}, zap.NewNop()).Handler(), http.MethodGet, "/sessions")

		if strings.Contains(body, "hunter2") || strings.Contains(body, "secret") {
			t.Fatalf("an argument leaked: %s", body)
		}

		var got []Session
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}

		if got[0].Command != "PASS" || got[1].Command != "STOR" {
			t.Errorf("commands %q %q, want PASS STOR", got[0].Command, got[1].Command)
		}
	})
}

// statusRegistry holds the series /status reads, as a server started an
// hour ago would have them.
func statusRegistry(started time.Time) *prometheus.Registry {
	reg := prometheus.NewRegistry()

	gauge := func(name string, labels prometheus.Labels, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: name, ConstLabels: labels})
		g.Set(v)
		reg.MustRegister(g)
	}
	counter := func(name, label string, values map[string]float64) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, []string{label})
		for l, v := range values {
			c.WithLabelValues(l).Add(v)
		}
		reg.MustRegister(c)
	}

	gauge("wharf_build_info", prometheus.Labels{"version": "1.2.3-test", "goversion": "go1.26.8"}, 1)
	gauge("process_start_time_seconds", nil, float64(started.Unix()))
	gauge("wharf_sessions", nil, 4)
	gauge("wharf_bans_active", nil, 2)
	gauge("wharf_bans", nil, 2)
	counter("wharf_transfers_total", "direction", map[string]float64{"download": 7, "upload": 3})
	counter("wharf_transfer_bytes_total", "direction", map[string]float64{"download": 5 << 20, "upload": 1 << 10})
	counter("wharf_logins_total", "result", map[string]float64{"success": 9, "failure": 2, "refused": 1})
	counter("wharf_commands_refused_total", "reason", map[string]float64{"syntax": 5, "permission": 1})

	return reg
}

// /status sums up the metrics: what the status page shows.
func TestStatusJSON(t *testing.T) {
	t.Parallel()

	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	h := New(Options{Gatherer: statusRegistry(started)}, zap.NewNop()).Handler()
	_, body := get(t, h, http.MethodGet, "/status")

	var got Status
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}

	if got.Uptime < 3600 || got.Uptime > 3700 || !got.Started.Equal(started) {
		t.Errorf("started %v, up %v s; want %v, an hour", got.Started, got.Uptime, started)
	}

	got.Started, got.Uptime = time.Time{}, 0
	want := Status{Version: "1.2.3-test", GoVersion: "go1.26.8", Sessions: 4, Bans: 2, Totals: Totals{
		Downloads: 7, Uploads: 3, BytesDownloaded: 5 << 20, BytesUploaded: 1 << 10, Logins: 9, FailedLogins: 2,
		RefusedCommands: 6,
	}}
	if got != want {
		t.Errorf("status = %+v, want %+v", got, want)
	}

	t.Run("without metrics, every figure is zero", func(t *testing.T) {
		t.Parallel()

		_, body := get(t, New(Options{}, zap.NewNop()).Handler(), http.MethodGet, "/status")
		if strings.TrimSpace(body) != `{"version":"","go_version":"","started":"0001-01-01T00:00:00Z","uptime_seconds":0,`+
			`"sessions":0,"bans_active":0,"totals":{"downloads":0,"uploads":0,"bytes_downloaded":0,"bytes_uploaded":0,`+
			`"logins":0,"failed_logins":0,"refused_commands":0}}` {
			t.Errorf("body %s", body)
		}
	})
}

// srcOrHref finds every src= and href= value in a page.
var srcOrHref = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']?([^"'\s>]*)`)

func TestStatusPageIsSelfContained(t *testing.T) {
	t.Parallel()

	res, page := get(t, New(Options{}, zap.NewNop()).Handler(), http.MethodGet, "/")

	for _, m := range srcOrHref.FindAllStringSubmatch(page, -1) {
		if u := m[1]; strings.Contains(u, "://") || strings.HasPrefix(u, "//") {
			t.Errorf("page refers to an external URL: %s", m[0])
		}
	}

	for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}

	for _, want := range []string{`"/sessions"`, `"/status"`, "setInterval", `id="session-count"`, "textContent"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q does not confine the page", csp)
	}
}

func TestPprof(t *testing.T) {
	t.Parallel()

	opts := testOptions()
	opts.Pprof = true
	h := New(opts, zap.NewNop()).Handler()

	tests := []struct {
		path     string
		contains string
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/debug/pprof/cmdline", "admin.test"},
		{"/debug/pprof/symbol", "num_symbols"},
	}

	for _, tt := range tests {
		t.Run("GET "+tt.path+" answers when on", func(t *testing.T) {
			t.Parallel()

			res, body := get(t, h, http.MethodGet, tt.path)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, tt.contains) {
				t.Errorf("status %d, body %.200q; want 200 with %q", res.StatusCode, body, tt.contains)
			}
		})
	}

	t.Run("POST to symbol is refused", func(t *testing.T) {
		t.Parallel()

		if res, _ := get(t, h, http.MethodPost, "/debug/pprof/symbol"); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", res.StatusCode)
		}
	})
}

func TestMetricsUseTheGivenRegistryOnly(t *testing.T) {
	t.Parallel()

	_, body := get(t, New(testOptions(), zap.NewNop()).Handler(), http.MethodGet, "/metrics")

	// The default registry would add go_ and process_ collectors.
	if strings.Contains(body, "go_goroutines") || strings.Contains(body, "process_") {
		t.Errorf("metrics include the default registry's collectors:\n%s", body)
	}

	_, empty := get(t, New(Options{}, zap.NewNop()).Handler(), http.MethodGet, "/metrics")
	if strings.TrimSpace(empty) != "" {
		t.Errorf("no gatherer served %q, want nothing", empty)
	}
}

// startServer runs a real admin listener on 127.0.0.1:0 until the test ends
// and returns its base URL.
func startServer(t *testing.T, opts Options, log *zap.Logger) string {
	t.Helper()

	opts.Listen = "127.0.0.1:0"
	s := New(opts, log)

	if err := s.Listen(); err != nil {
		t.Fatalf("listen: %v", err)
	}

	served := make(chan error, 1)

	go func() { served <- s.Serve() }()

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()

		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}

		if err := <-served; err != nil {
			t.Errorf("serve returned %v, want nil", err)
		}
	})

	return "http://" + s.Addr().String()
}

func TestListenServeShutdown(t *testing.T) {
	t.Parallel()

	core, logs := observer.New(zapcore.InfoLevel)
	base := startServer(t, testOptions(), zap.New(core))

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}

	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()

	if res.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", res.StatusCode, body)
	}

	listening := logs.FilterMessage("admin listening").All()
	if len(listening) != 1 {
		t.Fatalf("got %d \"admin listening\" lines, want 1", len(listening))
	}

	if e := listening[0]; e.LoggerName != "admin" || "http://"+e.ContextMap()["address"].(string) != base {
		t.Errorf("logged %s %v, want logger admin and address of %s", e.LoggerName, e.ContextMap(), base)
	}

	if n := logs.FilterMessageSnippet("not on a loopback").Len(); n != 0 {
		t.Errorf("loopback listener logged a warning")
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	t.Parallel()

	s := New(Options{Listen: "127.0.0.1:0"}, zap.NewNop())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}

	addr := s.Addr().String()

	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	if err := s.Serve(); err != nil {
		t.Errorf("serve after shutdown: %v, want nil", err)
	}

	// The port is free again.
	again := New(Options{Listen: addr}, zap.NewNop())
	if err := again.Listen(); err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}

	if err := again.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestListenErrors(t *testing.T) {
	t.Parallel()

	if err := New(Options{}, zap.NewNop()).Listen(); !errors.Is(err, errNoListen) {
		t.Errorf("empty address: %v, want errNoListen", err)
	}

	if err := New(Options{}, zap.NewNop()).Serve(); err == nil {
		t.Errorf("serve without listen: nil, want an error")
	}

	s := New(Options{Listen: "127.0.0.1:0"}, zap.NewNop())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })

	if err := New(Options{Listen: s.Addr().String()}, zap.NewNop()).Listen(); err == nil {
		t.Errorf("second listen on %s: nil, want an error", s.Addr())
	}
}
