package server

import (
	"bytes"
	"errors"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"wharf/auth"
	"wharf/internal/testenv"
)

// smallDisk mounts a 2 MiB tmpfs for the test, or skips where mounting is
// not allowed (it needs root; CI runs as root).
func smallDisk(t *testing.T) string {
	t.Helper()

	dir := t.TempDir()
	out, err := exec.CommandContext(t.Context(), "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testenv.Missing(t, "cannot mount a small tmpfs (%v: %s): the disk-full test needs root", err, strings.TrimSpace(string(out)))
	}

	t.Cleanup(func() {
		_ = exec.Command("umount", dir).Run()
	})

	return dir
}

func TestDiskFull(t *testing.T) {
	t.Parallel()

	home := smallDisk(t)
	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
	ts := startServer(t, f)
	c := ts.dial(t, "alice", testPassword)

	err := c.Stor("/too-big.bin", bytes.NewReader(make([]byte, 8<<20)))
	var reply *textproto.Error
	if !errors.As(err, &reply) || reply.Code != 552 {
		t.Fatalf("an upload bigger than the disk: got %v, want a 552 reply", err)
	}

	if _, err := os.Stat(filepath.Join(home, "too-big.bin")); err == nil {
		t.Error("a partial file is under the final name")
	}

	noTempFiles(t, home)

	// The server keeps serving, and the space is back.
	c2 := ts.dial(t, "alice", testPassword)
	if err := c2.Stor("/small.txt", strings.NewReader("fits")); err != nil {
		t.Fatalf("after a full disk: %v", err)
	}
}
