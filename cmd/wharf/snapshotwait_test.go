package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// syncBuffer is a bytes.Buffer safe to read while snapshot-wait writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.b.String()
}

// mirrorWharf runs wharf over an anonymous root holding debian.1 and
// debian.2, "debian -> debian.1", one [[snapshots]] with a trace, and an
// admin listener with a token, on a port of its own so that snapshot-wait
// finds it from the file. passive is its passive port range.
func mirrorWharf(t *testing.T, passive string) (wharf started, root, cfgPath string) {
	t.Helper()

	dir := t.TempDir()
	root = mkdirs(t, dir, "pub")[0]

	for _, c := range []string{"debian.1", "debian.2"} {
		if err := os.MkdirAll(filepath.Join(root, c, "project", "trace"), 0o755); err != nil {
			t.Fatal(err)
		}

		for name, text := range map[string]string{
			"README":                    "this is " + c + "\n",
			"project/trace/mirror.test": "Sat Dec  5 18:03:02 UTC 2026\nUsed ftpsync version: 20180513\n",
		} {
			if err := os.WriteFile(filepath.Join(root, c, name), []byte(text), 0o644); err != nil { // others may read: anonymous
				t.Fatal(err)
			}
		}
	}

	if err := os.Symlink("debian.1", filepath.Join(root, "debian")); err != nil {
		t.Fatal(err)
	}

	token := writeFile(t, dir, "admin.token", "0123456789abcdef0123456789abcdef\n")
	cfgPath = writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [%s]

[log]
format = "json"

[admin]
listen = "127.0.0.1:%d"
token_file = %q

[anonymous]
root = %q

[[snapshots]]
path = "/debian"
trace = "project/trace/mirror.test"
max_age = "87600h"
`, passive, freeTCPPort(t), token, root))

	wharf = startRun(t, []string{"-config", cfgPath}, nil)
	if wharf.admin == "" {
		t.Fatal("no 'admin listening' line")
	}

	return wharf, root, cfgPath
}

// adminGetToken fetches path from the admin listener with the test token.
func adminGetToken(t *testing.T, addr, path string) (int, string) {
	t.Helper()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}

	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123456789abcdef")

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)

	return res.StatusCode, body.String()
}

func flipTo(t *testing.T, root, target string) {
	t.Helper()

	tmp := filepath.Join(root, ".debian.flip")
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(tmp, filepath.Join(root, "debian")); err != nil {
		t.Fatal(err)
	}
}

// snapshot-wait blocks while a session holds the old copy and returns once
// it quits; /snapshots and /metrics count the session meanwhile.
func TestSnapshotWaitReturnsWhenTheOldCopysLastSessionQuits(t *testing.T) {
	t.Parallel()

	wharf, root, cfgPath := mirrorWharf(t, "30250, 30269")

	old := ftptest.Login(t, wharf.addr, "anonymous", "sync@example.org")
	if err := old.ChangeDir("/debian"); err != nil {
		t.Fatal(err)
	}

	flipTo(t, root, "debian.2")

	if got := string(ftptest.Retr(t, old, "README")); got != "this is debian.1\n" {
		t.Fatalf("the old session after the flip read %q", got)
	}

	code, body := adminGetToken(t, wharf.admin, "/snapshots")
	if code != http.StatusOK || !strings.Contains(body, `{"copy":"debian.1","sessions":1,"current":false}`) ||
		!strings.Contains(body, `"current":"debian.2"`) {
		t.Fatalf("/snapshots = %d %s", code, body)
	}

	_, page := adminGetToken(t, wharf.admin, "/metrics")
	if v, ok := metricValue(page, `wharf_snapshot_sessions{copy="debian.1",path="/debian"}`); !ok || v != 1 {
		t.Errorf("wharf_snapshot_sessions of debian.1 = %v, %v", v, ok)
	}

	var out syncBuffer
	done := make(chan error, 1)

	go func() {
		done <- run(t.Context(), []string{"snapshot-wait", "-config", cfgPath, "-path", "/debian", "-copy", "debian.1"},
			nil, strings.NewReader(""), &out, &out)
	}()

	select {
	case err := <-done:
		t.Fatalf("snapshot-wait returned %v while a session holds the copy; it said %q", err, out.String())
	case <-time.After(1500 * time.Millisecond):
	}

	if !strings.Contains(out.String(), "waiting: /debian debian.1: 1 session holds it") {
		t.Errorf("snapshot-wait said %q while waiting", out.String())
	}

	if err := old.Quit(); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("snapshot-wait after the QUIT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot-wait still waits after the session quit")
	}

	if !strings.Contains(out.String(), "free: /debian debian.1: no session holds it") {
		t.Errorf("snapshot-wait said %q", out.String())
	}

	_, page = adminGetToken(t, wharf.admin, "/metrics")
	if _, ok := metricValue(page, `wharf_snapshot_sessions{copy="debian.1",path="/debian"}`); ok {
		t.Errorf("debian.1 is still reported after its last session ended")
	}
}

// snapshot-wait refuses at once what it cannot wait for.
func TestSnapshotWaitRefusals(t *testing.T) {
	t.Parallel()

	wharf, root, cfgPath := mirrorWharf(t, "30270, 30279")

	held := ftptest.Login(t, wharf.addr, "anonymous", "sync@example.org")
	if _, err := held.FileSize("/debian/README"); err != nil {
		t.Fatal(err)
	}

	flipTo(t, root, "debian.2")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	gone := closed.Addr().String()
	_ = closed.Close()

	noAdmin := writeFile(t, t.TempDir(), "plain.toml", "listen = \"127.0.0.1:2121\"\n")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"the current copy", []string{"-config", cfgPath, "-path", "/debian", "-copy", "./debian.2"},
			"/debian debian.2 is the copy the link names now: flip the link first"},
		{"a path that is not a snapshot", []string{"-config", cfgPath, "-path", "/ubuntu", "-copy", "ubuntu.1"},
			"/ubuntu is not a snapshot of the server at " + wharf.admin + " (its [[snapshots]] paths: /debian)"},
		{"no admin listener configured", []string{"-config", noAdmin, "-path", "/debian", "-copy", "debian.1"},
			"no admin listener to ask: set [admin] listen"},
		{"an admin listener that does not answer", []string{"-config", cfgPath, "-addr", gone, "-path", "/debian", "-copy", "debian.1"},
			"snapshot-wait: admin listener " + gone + ":"},
		{"a copy still held when the timeout passes", []string{"-config", cfgPath, "-path", "/debian", "-copy", "debian.1", "-timeout", "300ms"},
			"/debian debian.1: still held by 1 session after -timeout 300ms"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			var out syncBuffer
			err := run(ctx, append([]string{"snapshot-wait"}, tt.args...), nil, strings.NewReader(""), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("snapshot-wait %v = %v, want an error with %q", tt.args, err, tt.want)
			}

			if exitCode(err) != 1 {
				t.Errorf("exit status %d, want 1", exitCode(err))
			}
		})
	}

	t.Run("a wrong token", func(t *testing.T) {
		bad := writeFile(t, t.TempDir(), "bad.token", "not-the-right-token-at-all\n")
		cfg := writeFile(t, t.TempDir(), "bad.toml", fmt.Sprintf("[admin]\nlisten = %q\ntoken_file = %q\n", wharf.admin, bad))

		err := run(t.Context(), []string{"snapshot-wait", "-config", cfg, "-path", "/debian", "-copy", "debian.1"}, nil,
			strings.NewReader(""), &syncBuffer{}, &syncBuffer{})
		if err == nil || !strings.Contains(err.Error(), "GET /snapshots: 401") {
			t.Errorf("with a wrong token: %v", err)
		}
	})

	t.Run("a missing -copy is a usage error", func(t *testing.T) {
		err := run(t.Context(), []string{"snapshot-wait", "-path", "/debian"}, nil, strings.NewReader(""), &syncBuffer{}, &syncBuffer{})
		if exitCode(err) != 2 {
			t.Errorf("exit status %d (%v), want 2", exitCode(err), err)
		}
	})

	t.Run("readyz is degraded, still 200, while the current copy has no trace", func(t *testing.T) {
		if code, body := adminGetToken(t, wharf.admin, "/readyz"); code != http.StatusOK || body != "ready" {
			t.Fatalf("/readyz with a fresh trace = %d %q", code, body)
		}

		if err := os.Remove(filepath.Join(root, "debian.2", "project", "trace", "mirror.test")); err != nil {
			t.Fatal(err)
		}

		if code, body := adminGetToken(t, wharf.admin, "/readyz"); code != http.StatusOK || body != "degraded: module debian: no trace file" {
			t.Errorf("/readyz without the trace = %d %q", code, body)
		}
	})

	_ = held.Quit()
}

// POST /reload applies a new [[snapshots]] table.
func TestReloadAddsASnapshot(t *testing.T) {
	t.Parallel()

	wharf, root, cfgPath := mirrorWharf(t, "30280, 30289")

	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink("debian.1", filepath.Join(root, "stable")); err != nil {
		t.Fatal(err)
	}

	writeFile(t, filepath.Dir(cfgPath), filepath.Base(cfgPath), string(text)+"\n[[snapshots]]\npath = \"/stable\"\n")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+wharf.admin+"/reload", nil)
	if err != nil {
		t.Fatal(err)
	}

	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123456789abcdef")

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	_ = res.Body.Close()

	if res.StatusCode != http.StatusOK || strings.Contains(body.String(), "snapshots") {
		t.Fatalf("POST /reload = %d %s, want reloaded with nothing waiting for a restart", res.StatusCode, body.String())
	}

	c := ftptest.Login(t, wharf.addr, "anonymous", "x@example.org")
	defer func() { _ = c.Quit() }()

	if got := string(ftptest.Retr(t, c, "/stable/README")); got != "this is debian.1\n" {
		t.Fatalf("/stable/README = %q", got)
	}

	if _, body := adminGetToken(t, wharf.admin, "/snapshots"); !strings.Contains(body,
		`{"path":"/stable","current":"debian.1","copies":[{"copy":"debian.1","sessions":1,"current":true}]}`) {
		t.Errorf("/snapshots after the reload: %s", body)
	}
}
