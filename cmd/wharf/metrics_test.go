package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// adminGet fetches path from the admin listener at addr and returns the body.
func adminGet(t *testing.T, addr, path string) string {
	t.Helper()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}

	return string(body)
}

// metricValue finds the sample of series (its name and labels, as
// Prometheus writes them) in a /metrics page; ok is false when it is absent.
func metricValue(page, series string) (float64, bool) {
	lines := bufio.NewScanner(strings.NewReader(page))
	for lines.Scan() {
		if rest, found := strings.CutPrefix(lines.Text(), series+" "); found {
			v, err := strconv.ParseFloat(rest, 64)

			return v, err == nil
		}
	}

	return 0, false
}

// With [bandwidth] slowing a download, /metrics shows its bytes while it
// runs, and again and again, not only at its end; the build, the session's
// TLS and the totals are there too.
func TestMetricsMoveDuringAThrottledTransfer(t *testing.T) {
	t.Parallel()

	const size = 3 << 19 // 1.5 MiB: three seconds at the limit

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	if err := os.WriteFile(filepath.Join(pub, "big.bin"), ftptest.RandomBytes(size), 0o644); err != nil {
		t.Fatal(err)
	}

	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27500, 27509]

[log]
format = "json"

[admin]
listen = "127.0.0.1:0"

[bandwidth]
session_download = "512KiB"

[anonymous]
root = %q
`, pub))

	wharf := startRun(t, []string{"-config", cfgPath}, nil)
	const series = `wharf_transfer_bytes_total{direction="download",protocol="ftp"}`

	c := ftptest.Login(t, wharf.addr, "anonymous", "x")
	done := make(chan []byte, 1)
	go func() {
		r, err := c.Retr("/big.bin")
		if err != nil {
			done <- nil

			return
		}
		defer r.Close()

		got, _ := io.ReadAll(r)
		done <- got
	}()

	// The values seen while the download ran, below its size.
	seen := map[float64]bool{}
	sessions := ""

	for running := true; running; {
		select {
		case got := <-done:
			if len(got) != size {
				t.Fatalf("downloaded %d bytes, want %d", len(got), size)
			}

			running = false
		case <-time.After(200 * time.Millisecond):
			if v, ok := metricValue(adminGet(t, wharf.admin, "/metrics"), series); ok && v > 0 && v < size {
				seen[v] = true
				sessions = adminGet(t, wharf.admin, "/sessions")
			}
		}
	}

	if len(seen) < 3 {
		t.Errorf("%s took %d values below %d during the download, want 3 or more: %v", series, len(seen), size, seen)
	}

	page := adminGet(t, wharf.admin, "/metrics")
	ftptest.WaitFor(t, 5*time.Second, func() bool {
		page = adminGet(t, wharf.admin, "/metrics")
		v, _ := metricValue(page, series)

		return v == size
	})

	info := fmt.Sprintf(`wharf_build_info{goversion=%q,version=%q}`, runtime.Version(), buildVersion())
	if v, ok := metricValue(page, info); !ok || v != 1 {
		t.Errorf("no %s 1 in /metrics", info)
	}

	for _, name := range []string{
		"wharf_bans_active", "wharf_bans", `wharf_passive_ports_exhausted_total`,
		`wharf_tls_handshake_failures_total{connection="control"}`, `wharf_commands_refused_total{reason="syntax"}`,
	} {
		if _, ok := metricValue(page, name); !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}

	var live []map[string]any
	if err := json.Unmarshal([]byte(sessions), &live); err != nil || len(live) != 1 {
		t.Fatalf("/sessions during the download: %s (%v)", sessions, err)
	}
	if live[0]["tls"] != false || live[0]["data_tls"] != false {
		t.Errorf("a clear session shows TLS: %s", sessions)
	}

	var st struct {
		Version string  `json:"version"`
		Uptime  float64 `json:"uptime_seconds"`
		Totals  struct {
			Downloads       int64 `json:"downloads"`
			BytesDownloaded int64 `json:"bytes_downloaded"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(adminGet(t, wharf.admin, "/status")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != buildVersion() || st.Uptime <= 0 || st.Totals.Downloads != 1 || st.Totals.BytesDownloaded != size {
		t.Errorf("/status = %+v", st)
	}
}
