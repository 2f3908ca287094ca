package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"wharf/internal/ftptest"
)

// logWatcher follows a JSON log file and waits for messages.
type logWatcher struct {
	t    *testing.T
	path string
}

func (w logWatcher) waitFor(msg string) map[string]any {
	w.t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if entry := w.find(msg); entry != nil {
			return entry
		}

		time.Sleep(20 * time.Millisecond)
	}

	w.t.Fatalf("no %q line in %s", msg, w.path)

	return nil
}

func (w logWatcher) find(msg string) map[string]any {
	f, err := os.Open(w.path)
	if err != nil {
		return nil
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry["msg"] == msg {
			return entry
		}
	}

	return nil
}

// SIGHUP reloads the accounts and reopens the logs; SIGUSR1 reopens the logs.
// Signals reach the whole test binary, so this test is not parallel.
func TestSignalsReloadAndReopen(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "bob")
	pub := filepath.Join(dir, "pub")
	for _, d := range []string{home, pub} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	logPath := filepath.Join(dir, "wharf.log")
	base := fmt.Sprintf("listen = \"127.0.0.1:0\"\npassive_ports = [27100, 27149]\n\n[log]\nformat = \"json\"\nfile = %q\n\n[anonymous]\nroot = %q\n", logPath, pub)
	cfgPath := filepath.Join(dir, "wharf.toml")
	if err := os.WriteFile(cfgPath, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", cfgPath}, nil, strings.NewReader(""), io.Discard, io.Discard)
	}()

	logs := logWatcher{t: t, path: logPath}
	addr, _ := logs.waitFor("listening")["address"].(string)

	// A broken file is refused and changes nothing.
	if err := os.WriteFile(cfgPath, []byte(base+"bogus_key = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	logs.waitFor("reload refused, keeping the running configuration")

	hash, _ := bcrypt.GenerateFromPassword([]byte("bobpw"), bcrypt.MinCost)
	withBob := base + fmt.Sprintf("\n[[users]]\nname = \"bob\"\npassword = %q\nhome = %q\naccess = \"read-write\"\n", hash, home)
	if err := os.WriteFile(cfgPath, []byte(withBob), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	logs.waitFor("configuration reloaded")

	c := ftptest.Login(t, addr, "bob", "bobpw")

	_ = c.Quit()

	// logrotate: move the file away, then SIGUSR1.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}

	logs.waitFor("log files reopened")

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if rotated, _ := os.ReadFile(logPath + ".1"); !strings.Contains(string(rotated), "configuration reloaded") {
		t.Error("the rotated file lost its lines")
	}

	if fresh := logs.find("stopped"); fresh == nil {
		t.Error("lines after SIGUSR1 did not go to the reopened file")
	}
}
