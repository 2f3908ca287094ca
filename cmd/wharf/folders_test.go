package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// A fresh volume: with create_missing, wharf makes the anonymous root (0755),
// its upload_dir and the homes (0700), and the folders above them (0755),
// logs each one, and serves them at once; a reload makes a new account's home.
func TestCreateMissingMakesAFreshVolume(t *testing.T) {
	t.Parallel()

	vol := filepath.Join(t.TempDir(), "ftp") // does not exist yet
	pub, incoming := filepath.Join(vol, "pub"), filepath.Join(vol, "pub", "incoming")
	alice, bob := filepath.Join(vol, "home", "alice"), filepath.Join(vol, "home", "bob")

	dir := t.TempDir()
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", alice))
	file := writeFile(t, dir, "wharf.toml", fmt.Sprintf("create_missing = true\nusers_file = %q\n\n"+
		"[anonymous]\nroot = %q\nupload_dir = \"incoming\"\n", users, pub))

	if out, errOut, code := runWharf(t, nil, "check-config", "-config", file); code != 0 {
		t.Fatalf("check-config of a fresh volume: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(vol); err == nil {
		t.Fatal("check-config made folders")
	}

	p := startKillable(t, []string{"WHARF_CONFIG=" + file})

	for _, tc := range []struct {
		path string
		mode fs.FileMode
	}{{vol, 0o755}, {pub, 0o755}, {incoming, 0o700}, {filepath.Join(vol, "home"), 0o755}, {alice, 0o700}} {
		info, err := os.Stat(tc.path)
		if err != nil {
			t.Errorf("%s was not made: %v", tc.path, err)

			continue
		}

		// The umask may take bits away, never add them.
		if got := info.Mode().Perm(); got&^tc.mode != 0 || got&0o700 != 0o700 {
			t.Errorf("%s has mode %04o, want %04o (less the umask)", tc.path, got, tc.mode)
		}
		if uid := info.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
			t.Errorf("%s belongs to uid %d, not wharf's %d", tc.path, uid, os.Geteuid())
		}
	}

	made := map[string]bool{}
	for _, e := range p.logged("folder created") {
		made[e["path"].(string)] = true
	}
	for _, d := range []string{vol, pub, incoming, filepath.Join(vol, "home"), alice} {
		if !made[d] {
			t.Errorf("no \"folder created\" line for %s: %v", d, p.logged("folder created"))
		}
	}

	a := ftptest.Login(t, p.addr, "anonymous", "me@example.com")
	if err := a.Stor("/incoming/drop.txt", strings.NewReader("dropped")); err != nil {
		t.Errorf("anonymous upload into the new upload_dir: %v", err)
	}
	_ = a.Quit()

	u := ftptest.Login(t, p.addr, "alice", "pw")
	if err := u.Stor("/mine.txt", strings.NewReader("mine")); err != nil {
		t.Errorf("alice's upload into her new home: %v", err)
	}
	_ = u.Quit()

	// A new account, by a reload: its home is made too.
	writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", alice)+userTOML(t, "bob", "pw", bob))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	ftptest.WaitFor(t, 10*time.Second, func() bool {
		info, err := os.Stat(bob)

		return err == nil && info.IsDir() && len(p.logged("log files reopened")) > 0
	})

	b := ftptest.Login(t, p.addr, "bob", "pw")
	_ = b.Quit()
}
