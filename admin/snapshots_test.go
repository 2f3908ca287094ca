package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestSnapshotsJSON(t *testing.T) {
	t.Parallel()

	t.Run("no snapshots is an empty array", func(t *testing.T) {
		t.Parallel()

		res, body := get(t, New(Options{}, zap.NewNop()).Handler(), http.MethodGet, "/snapshots")
		if res.StatusCode != http.StatusOK || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET /snapshots = %d %q, want 200 []", res.StatusCode, body)
		}
	})

	t.Run("each path with its copies and sync health", func(t *testing.T) {
		t.Parallel()

		last := time.Date(2026, 12, 5, 18, 3, 2, 0, time.UTC)
		opts := Options{Snapshots: func() []Snapshot {
			return []Snapshot{
				{
					Path: "/debian", Current: "debian.2",
					Copies: []SnapshotCopy{{Copy: "debian.1", Sessions: 3}, {Copy: "debian.2", Sessions: 0, Current: true}},
					Sync: &SyncHealth{
						Module: "debian", Trace: "/srv/ftp/debian/project/trace/m", LastSync: &last, Source: "date",
						AgeSeconds: 3600, MaxAgeSeconds: 21600,
					},
				},
				{Path: "/ubuntu", Error: "read link /ubuntu: no such file or directory"},
			}
		}}

		res, body := get(t, New(opts, zap.NewNop()).Handler(), http.MethodGet, "/snapshots")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /snapshots = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}

		var got []map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}

		for _, want := range []string{
			`"path":"/debian","current":"debian.2"`,
			`{"copy":"debian.1","sessions":3,"current":false}`,
			`"last_sync":"2026-12-05T18:03:02Z","source":"date","age_seconds":3600,"max_age_seconds":21600,"syncing":false}`,
			`{"path":"/ubuntu","current":"","error":"read link /ubuntu: no such file or directory","copies":[]}`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/snapshots lacks %s:\n%s", want, body)
			}
		}
	})

	t.Run("it needs the token like /sessions", func(t *testing.T) {
		t.Parallel()

		res, _ := get(t, New(Options{Token: "0123456789abcdef0123"}, zap.NewNop()).Handler(), http.MethodGet, "/snapshots")
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /snapshots without the token = %d, want 401", res.StatusCode)
		}
	})
}

// A stale mirror is ready but degraded: 200, so that a load balancer keeps
// it, with a body that says why; not being ready still wins.
func TestReadyzDegraded(t *testing.T) {
	t.Parallel()

	stale := func() []string {
		return []string{"module debian: no trace file", "module ubuntu: last sync 7h0m0s ago"}
	}
	tests := []struct {
		name     string
		ready    func() (bool, string)
		degraded func() []string
		code     int
		body     string
	}{
		{"stale modules", nil, stale, http.StatusOK, "degraded: module debian: no trace file; module ubuntu: last sync 7h0m0s ago"},
		{"nothing stale", nil, func() []string { return nil }, http.StatusOK, "ready"},
		{"not ready wins", func() (bool, string) { return false, "shutting down" }, stale, http.StatusServiceUnavailable, "shutting down"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			h := New(Options{Ready: tt.ready, Degraded: tt.degraded}, zap.NewNop()).Handler()
			res, body := get(t, h, http.MethodGet, "/readyz")
			if res.StatusCode != tt.code || body != tt.body {
				t.Errorf("GET /readyz = %d %q, want %d %q", res.StatusCode, body, tt.code, tt.body)
			}
		})
	}
}

func TestStatusPageShowsMirrors(t *testing.T) {
	t.Parallel()

	_, page := get(t, New(Options{}, zap.NewNop()).Handler(), http.MethodGet, "/")
	for _, want := range []string{`fetch("/snapshots"`, `id="mirror-rows"`, "last_sync", "syncing"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

// dumpDOM loads url in a headless browser and returns the DOM once its
// scripts have run.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url)
	cmd.WaitDelay = 5 * time.Second

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", browser, err, stderr.String())
	}

	return string(out)
}

// The status page shows each mirror's copies and sync health, a stale one
// marked, and its text as text.
func TestStatusPageShowsMirrorsInBrowser(t *testing.T) {
	t.Parallel()

	browser := findBrowser(t)
	last := time.Now().Add(-7 * time.Hour).UTC()
	base := startServer(t, Options{Snapshots: func() []Snapshot {
		return []Snapshot{{
			Path: "/debian", Current: "debian.2",
			Copies: []SnapshotCopy{{Copy: "debian.1", Sessions: 2}, {Copy: "debian.2", Sessions: 5, Current: true}},
			Sync: &SyncHealth{
				Module: "<i>debian</i>", LastSync: &last, Source: "date", AgeSeconds: 7 * 3600, MaxAgeSeconds: 6 * 3600,
				Syncing: true, Degraded: "module debian: last sync 7h0m0s ago, more than max_age 6h0m0s",
			},
		}}
	}}, zap.NewNop())

	dom := dumpDOM(t, browser, base+"/")
	for _, want := range []string{
		`<section id="mirrors">`, "debian.1: 2, debian.2 (current): 5", "&lt;i&gt;debian&lt;/i&gt;",
		`class="stale" title="module debian: last sync 7h0m0s ago, more than max_age 6h0m0s">7h 0m</td>`, "<td>yes</td>",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}

	if t.Failed() {
		t.Logf("dumped DOM:\n%s", dom)
	}
}
