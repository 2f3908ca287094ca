package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The layout of the issue that found it: the anonymous root /srv/ftp and
// alice's home /srv/ftp/alice from a users file. check-config and start-up
// refuse it, naming the key, both paths and the file, unless
// anonymous.shares_homes says it is meant.
func TestWritableHomeInsideTheAnonymousRootIsRefused(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	root := filepath.Join(dir, "ftp")
	home := filepath.Join(root, "alice")
	mkdirs(t, dir, "ftp/alice")

	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", home))
	file := writeFile(t, dir, "wharf.toml", fmt.Sprintf("listen = \"127.0.0.1:0\"\nusers_file = %q\n\n[anonymous]\nroot = %q\n", users, root))

	want := fmt.Sprintf(`%s: users[0] "alice": home %q: is inside anonymous.root %q: anonymous users could read `+
		"what this read-write account uploads; keep homes in a tree of their own (such as /srv/ftp/home/<user> "+
		"beside /srv/ftp/pub), or set anonymous.shares_homes = true if that is meant\n", users, home, root)

	out, _, code := runWharf(t, nil, "check-config", "-config", file)
	if code != 1 || out != want {
		t.Errorf("check-config: exit %d, output\n%s\nwant exit 1 and\n%s", code, out, want)
	}

	// The server does not start.
	_, errOut, code := runWharf(t, nil, "-config", file)
	if code != 1 || !strings.Contains(errOut, strings.TrimSuffix(want, "\n")) {
		t.Errorf("start-up: exit %d, stderr\n%s\nwant exit 1 and the same problem", code, errOut)
	}

	// Meant: shares_homes = true, here from the environment.
	if out, errOut, code := runWharf(t, []string{"WHARF_ANONYMOUS_SHARES_HOMES=true"}, "check-config", "-config", file); code != 0 {
		t.Errorf("check-config with shares_homes: exit %d\n%s%s", code, out, errOut)
	}

	// Separate trees are fine.
	mkdirs(t, dir, "home/alice")
	writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", filepath.Join(dir, "home", "alice")))
	if out, errOut, code := runWharf(t, nil, "check-config", "-config", file); code != 0 {
		t.Errorf("check-config with separate trees: exit %d\n%s%s", code, out, errOut)
	}
}
