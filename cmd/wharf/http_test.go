package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// [http] listen serves the anonymous tree beside FTP, from start to a
// clean stop.
func TestRunServesHTTP(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := filepath.Join(dir, "pub")
	if err := os.Mkdir(pub, 0o755); err != nil {
		t.Fatal(err)
	}

	// world_readable_only is on: the file must be readable by others.
	if err := os.WriteFile(filepath.Join(pub, "hello.txt"), []byte("hello over http\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cfgPath := writeFile(t, dir, "wharf.toml", `listen = "127.0.0.1:0"
passive_ports = [27900, 27909]

[log]
format = "json"

[anonymous]
root = "`+pub+`"

[http]
listen = "127.0.0.1:0"
`)

	wharf := startRun(t, []string{"-config", cfgPath}, nil)

	addr := ""
	for _, entry := range wharf.logs {
		if entry["msg"] == "http listening" {
			addr, _ = entry["address"].(string)
		}
	}

	if addr == "" {
		t.Fatal(`no "http listening" line`)
	}

	client := &http.Client{Timeout: 10 * time.Second}

	resp, err := client.Get("http://" + addr + "/hello.txt")
	if err != nil {
		t.Fatal(err)
	}

	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()

	if resp.StatusCode != http.StatusOK || string(body) != "hello over http\n" {
		t.Errorf("GET /hello.txt: %d %q", resp.StatusCode, body)
	}

	resp, err = client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}

	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()

	if !strings.Contains(string(body), `<a href="./hello.txt">hello.txt</a>`) {
		t.Errorf("index page:\n%s", body)
	}

	wharf.stop()
}
