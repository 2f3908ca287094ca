package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// A write-only account creates files and nothing else: STOR, APPE and
// REST + STOR onto a name that exists are refused with 553 (its own uploads
// included), and nothing tells which names exist: SIZE, MDTM, MLST, STAT and
// LIST answer a file that exists exactly as a name that does not.
func TestWriteOnlyCreatesOnly(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.WriteOnly)
	ts := startServer(t, f)

	c := ts.dial(t, "alice", testPassword)
	if err := c.Stor("/new.txt", strings.NewReader("mine")); err != nil {
		t.Fatalf("a new upload was refused: %v", err)
	}

	raw := ts.raw(t)
	raw.Login("alice", testPassword)
	raw.Must(200, "TYPE I")

	for _, name := range []string{"/README.txt", "/new.txt"} {
		for _, command := range []string{"STOR", "APPE", "REST 3|STOR", "REST 3|APPE"} {
			verb := command
			if rest, v, ok := strings.Cut(command, "|"); ok {
				raw.Must(350, "%s", rest)
				verb = v
			}

			raw.Pasv()
			if code, msg := raw.Cmd("%s %s", verb, name); code != 553 {
				t.Errorf("%s %s: got %d %q, want 553", command, name, code, msg)
			}
		}
	}

	raw.Must(350, "REST 3")
	raw.Pasv()
	if code, msg := raw.Cmd("STOR /missing.txt"); code != 553 {
		t.Errorf("REST 3, STOR of a new name: got %d %q, want 553 (a resume needs an existing file)", code, msg)
	}

	for name, want := range map[string]string{"README.txt": "hello from wharf\n", "new.txt": "mine"} {
		if got, _ := os.ReadFile(filepath.Join(home, name)); string(got) != want {
			t.Errorf("%s changed: %q", name, got)
		}
	}

	// Probes: the same answer, the name aside, for a file that exists and
	// for one that does not.
	ask := func(command, name string) string {
		var code int
		var msg string

		if command == "LIST" {
			raw.Pasv()
		}

		code, msg = raw.Cmd("%s %s", command, name)
		if code >= 100 && code < 200 {
			code, msg = raw.Read()
		}

		return strings.ReplaceAll(strconv.Itoa(code)+" "+msg, name, "NAME")
	}

	for _, command := range []string{"SIZE", "MDTM", "MLST", "STAT", "LIST"} {
		there, missing := ask(command, "/README.txt"), ask(command, "/not-there.txt")
		if there != missing {
			t.Errorf("%s tells a file from a missing name: %q vs %q", command, there, missing)
		}

		if strings.HasPrefix(there, "2") {
			t.Errorf("%s of a file answered %q, want a refusal", command, there)
		}
	}
}

// overwrite = true lets a write-only account replace and append to files.
func TestWriteOnlyOverwrite(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.WriteOnly)
	f.users[0].Overwrite = true
	ts := startServer(t, f)
	c := ts.dial(t, "alice", testPassword)

	if err := c.Stor("/README.txt", strings.NewReader("replaced")); err != nil {
		t.Fatalf("STOR over a file: %v", err)
	}

	if err := c.Append("/README.txt", strings.NewReader("+more")); err != nil {
		t.Fatalf("APPE: %v", err)
	}

	if got, _ := os.ReadFile(filepath.Join(home, "README.txt")); string(got) != "replaced+more" {
		t.Errorf("got %q", got)
	}

	// Still write-only: no reading.
	raw := ts.raw(t)
	raw.Login("alice", testPassword)
	raw.Pasv()
	if code, msg := raw.Cmd("RETR /README.txt"); code < 450 || code > 550 {
		t.Errorf("RETR: got %d %q, want a refusal", code, msg)
	}
}

// Drop-box privacy goes by where a file is on disk: a link elsewhere in the
// tree that leads into upload_dir lists and serves nothing, and uploads land
// readable by their owner only.
func TestDropBoxAliases(t *testing.T) {
	t.Parallel()

	ts, root := dropBoxServer(t, true)
	for link, target := range map[string]string{
		"link-to-incoming": "incoming",
		"pub/up":           "..",
		"alias.txt":        "incoming/someone-else.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}

	raw := ts.raw(t)
	raw.Login("anonymous", "x")
	raw.Must(200, "TYPE I")

	for _, command := range []string{
		"RETR /link-to-incoming/someone-else.txt",
		"RETR /pub/up/incoming/someone-else.txt",
		"RETR /alias.txt",
		"LIST /link-to-incoming",
		"NLST /link-to-incoming",
		"MLSD /pub/up/incoming",
		"LIST /link-to-incoming/someone-else.txt",
	} {
		raw.Pasv()
		code, msg := raw.Cmd("%s", command)
		if code == 150 {
			_, end := raw.Read()
			t.Errorf("%s was served (%s)", command, end)

			continue
		}

		if code < 450 || code > 550 {
			t.Errorf("%s: got %d %q, want a refusal", command, code, msg)
		}
	}

	for _, command := range []string{"SIZE /alias.txt", "MLST /link-to-incoming/someone-else.txt", "CWD /link-to-incoming"} {
		if code, msg := raw.Cmd("%s", command); code != 550 {
			t.Errorf("%s: got %d %q, want 550", command, code, msg)
		}
	}

	c := ts.dial(t, "anonymous", "x")
	for _, e := range ftptest.List(t, c, "/") {
		if e.Name == "link-to-incoming" || e.Name == "alias.txt" {
			t.Errorf("the root listing shows %s, an alias into the drop box", e.Name)
		}
	}

	if err := c.Stor("/incoming/mine.txt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}

	if err := c.MakeDir("/incoming/folder"); err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]os.FileMode{"mine.txt": 0o600, "folder": 0o700} {
		st, err := os.Stat(filepath.Join(root, "incoming", name))
		if err != nil {
			t.Fatal(err)
		}

		if st.Mode().Perm() != want {
			t.Errorf("%s landed %v, want %v", name, st.Mode().Perm(), want)
		}
	}

	// The box under another name is left out of listings.
	for _, e := range ftptest.List(t, c, "/pub/up") {
		if e.Name == "incoming" || e.Name == "link-to-incoming" {
			t.Errorf("the listing of /pub/up shows %s", e.Name)
		}
	}
}
