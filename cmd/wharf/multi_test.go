package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"wharf/internal/ftptest"
)

// asWharf makes the test binary act as wharf itself when re-executed by a
// test, so several real wharf processes can run without building anything.
const asWharf = "WHARF_TEST_RUN_AS_WHARF"

func TestMain(m *testing.M) {
	if os.Getenv(asWharf) == "1" {
		main()

		return
	}

	m.Run()
}

// startProcess starts the test binary as a wharf process with env and
// returns its control address, read from its "listening" log line.
func startProcess(t *testing.T, env []string) string {
	t.Helper()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(append(os.Environ(), asWharf+"=1", "WHARF_LOG_FORMAT=json", "WHARF_LISTEN=127.0.0.1:0"), env...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second

	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	lines := bufio.NewScanner(out)
	for lines.Scan() {
		var entry map[string]any
		if json.Unmarshal(lines.Bytes(), &entry) == nil && entry["msg"] == "listening" {
			go func() { _, _ = io.Copy(io.Discard, out) }()

			return entry["address"].(string)
		}
	}

	t.Fatalf("wharf did not start: %s", stderr.String())

	return ""
}

// Two wharf processes on one bucket: what one stores, the other serves.
func TestTwoProcessesShareABucket(t *testing.T) {
	s3, bucket := s3Bucket(t, "wharf-multi-")
	endpoint, access, secret := s3.Endpoint, s3.AccessKey, s3.SecretKey

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	hash, _ := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	users := filepath.Join(dir, "users.toml")
	if err := os.WriteFile(users, fmt.Appendf(nil, "[[users]]\nname = \"alice\"\npassword = %q\nhome = \"/alice\"\naccess = \"read-write\"\n", hash), 0o600); err != nil {
		t.Fatal(err)
	}

	common := []string{
		"WHARF_STORAGE_BACKEND=s3",
		"WHARF_STORAGE_ENDPOINT=" + endpoint,
		"WHARF_STORAGE_BUCKET=" + bucket,
		"WHARF_STORAGE_PATH_STYLE=true",
		"WHARF_STORAGE_ACCESS_KEY=" + access,
		"WHARF_STORAGE_SECRET_KEY_FILE=" + secretFile,
		"WHARF_ANONYMOUS_ROOT=/pub",
		"WHARF_USERS_FILE=" + users,
		"WHARF_SHUTDOWN_TIMEOUT=2s",
	}

	one := startProcess(t, append(common, "WHARF_PASSIVE_PORTS=27300-27319"))
	two := startProcess(t, append(common, "WHARF_PASSIVE_PORTS=27320-27339"))

	payload := make([]byte, 5<<20)
	_, _ = rand.Read(payload)

	up := ftptest.Login(t, one, "alice", "alice-pw")
	if err := up.Stor("/shared.bin", bytes.NewReader(payload)); err != nil {
		t.Fatalf("upload through the first process: %v", err)
	}

	down := ftptest.Login(t, two, "alice", "alice-pw")
	entries := ftptest.List(t, down, "/")
	if len(entries) != 1 || entries[0].Name != "shared.bin" || entries[0].Size != uint64(len(payload)) {
		t.Fatalf("the second process lists %v", entries)
	}

	got := ftptest.Retr(t, down, "/shared.bin")

	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("the second process served %d bytes with a different checksum", len(got))
	}
}
