package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// chromium returns the headless browser.
func chromium(t *testing.T) string {
	t.Helper()

	return testenv.Tool(t, "chromium", "chromium-browser")
}

// The status page, in a real browser, shows a real transfer while it runs.
func TestStatusPageShowsARunningTransfer(t *testing.T) {
	browser := chromium(t)

	dir := t.TempDir()
	pub := filepath.Join(dir, "pub")
	if err := os.MkdirAll(pub, 0o755); err != nil {
		t.Fatal(err)
	}

	payload := make([]byte, 8<<20)
	if err := os.WriteFile(filepath.Join(pub, "release.iso"), payload, 0o644); err != nil {
		t.Fatal(err)
	}

	cfgPath := filepath.Join(dir, "wharf.toml")
	cfg := fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27200, 27249]
shutdown_timeout = "1s"

[log]
format = "json"

[bandwidth]
session_download = "512KiB"   # sixteen seconds for the file: it is still running when the page loads

[admin]
listen = "127.0.0.1:0"

[anonymous]
root = %q
`, pub)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	wharf := startRun(t, []string{"-config", cfgPath}, nil)
	ftpAddr, adminAddr := wharf.addr, wharf.admin

	if adminAddr == "" {
		t.Fatal("no 'admin listening' line")
	}

	c := ftptest.Login(t, ftpAddr, "anonymous", "x")

	resp, err := c.Retr("/release.iso")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()

	// Read slowly in the background; the bandwidth limit paces the server.
	go func() { _, _ = io.Copy(io.Discard, resp) }()

	waitForTransfer(t, "http://"+adminAddr+"/sessions")

	for _, probe := range []string{"/healthz", "/readyz"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+probe, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()

		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s answered %d while the FTP listener accepts", probe, resp.StatusCode)
		}
	}

	bctx, bcancel := context.WithTimeout(ctx, 60*time.Second)
	defer bcancel()

	out, err := exec.CommandContext(bctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom",
		"http://"+adminAddr+"/").Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}

	dom := string(out)
	for _, want := range []string{"data-session-id=", "anonymous", "127.0.0.1", "/release.iso"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}

	m := regexp.MustCompile(`<progress\b[^>]*\bvalue="([0-9.]+)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no progress bar with a value in:\n%s", dom)
	}

	if v, _ := strconv.ParseFloat(m[1], 64); v <= 0 {
		t.Fatalf("progress bar at %v", v)
	}

	wharf.stop()
}

// waitForTransfer polls /sessions until a transfer is running.
func waitForTransfer(t *testing.T, url string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var sessions []struct {
				Transfer *struct {
					Bytes int64 `json:"bytes"`
				} `json:"transfer"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&sessions)
			_ = resp.Body.Close()

			for _, s := range sessions {
				if s.Transfer != nil && s.Transfer.Bytes > 0 {
					return
				}
			}
		}

		time.Sleep(50 * time.Millisecond)
	}

	t.Fatal("no running transfer in /sessions")
}
