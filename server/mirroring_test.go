package server

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/vfs"
)

// mirrorTree lays out what real mirror trees hold (issue 11): a link to a
// file and one to a folder, relative and absolute, a dangling link, a link
// leaving the root, self -> ., a setuid file, a sticky folder, a private file
// and a private folder (and a link into it), a file dated next year, rsync's
// temporary names, a dotfile and a folder message. It returns the root and
// what an anonymous mirror of it must hold: regular files by content, links by
// target, folders. The root served is base/pub; base/outside is not served.
func mirrorTree(t *testing.T) (string, map[string]string) {
	t.Helper()

	base := t.TempDir()
	root := filepath.Join(base, "pub")

	files := map[string]string{
		"pub/README.txt":          "read me\n",
		"pub/1.2.3/pkg.tar.gz":    "release 1.2.3\n",
		"pub/setuid.bin":          "setuid\n",
		"pub/future.txt":          "later\n",
		"pub/.message":            "This mirror syncs at :00.\n",
		"pub/private.txt":         "not yet\n",
		"pub/secret/draft.txt":    "embargoed\n",
		"pub/.pkg.tar.gz.Ab12Cd":  "half synced\n",
		"pub/.~tmp~/pkg.tar.gz":   "delayed update\n",
		"pub/sticky/drop.txt":     "dropped\n",
		"outside/elsewhere.txt":   "outside\n",
		"pub/1.2.3/CHECKSUMS.txt": "sums\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(base, name), []byte(content))
	}

	for name, mode := range map[string]fs.FileMode{
		"pub/setuid.bin": 0o755 | fs.ModeSetuid, "pub/sticky": 0o777 | fs.ModeSticky,
		"pub/private.txt": 0o600, "pub/secret": 0o700,
	} {
		if err := os.Chmod(filepath.Join(base, name), mode); err != nil {
			t.Fatal(err)
		}
	}

	next := time.Now().AddDate(1, 0, 0)
	if err := os.Chtimes(filepath.Join(base, "pub/future.txt"), next, next); err != nil {
		t.Fatal(err)
	}

	pub := root
	for link, target := range map[string]string{
		"latest":        "1.2.3",
		"readme-link":   "README.txt",
		"absolute-link": filepath.Join(pub, "README.txt"),
		"dangling":      "nowhere",
		"escape":        "../outside/elsewhere.txt",
		"self":          ".",
		"into-secret":   "secret/draft.txt",
	} {
		if err := os.Symlink(target, filepath.Join(pub, link)); err != nil {
			t.Fatal(err)
		}
	}

	// What an anonymous copy of the served root holds: no dangling or escaping link,
	// nothing private, nothing rsync is still writing; the secret folder is
	// listed, empty.
	want := map[string]string{
		"README.txt":          "file:read me\n",
		"1.2.3/":              "dir",
		"1.2.3/pkg.tar.gz":    "file:release 1.2.3\n",
		"1.2.3/CHECKSUMS.txt": "file:sums\n",
		"setuid.bin":          "file:setuid\n",
		"future.txt":          "file:later\n",
		".message":            "file:This mirror syncs at :00.\n",
		"sticky/":             "dir",
		"sticky/drop.txt":     "file:dropped\n",
		"secret/":             "dir",
		"latest":              "link:1.2.3",
		"readme-link":         "link:README.txt",
		"absolute-link":       "link:/README.txt",
		"self":                "link:.",
	}

	return root, want
}

// mirrorServer serves root anonymously, world-readable only, links as links
// (or as targets).
func mirrorServer(t *testing.T, root string, symlinks SymlinkMode) *testServer {
	t.Helper()

	f := fixture{opts: defaultOptions()}
	f.opts.Listing = Listing{Symlinks: symlinks, Deny: vfs.DefaultDeny(), MessageFile: ".message"}

	return startServerWith(t, f, auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousWorldReadableOnly: true})
}

// snapshot describes a copied tree as mirrorTree's want does.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()

	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}

		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)

		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = "link:" + target

			return err
		case d.IsDir():
			got[rel+"/"] = "dir"
		default:
			data, err := os.ReadFile(p)
			got[rel] = "file:" + string(data)

			return err
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	return got
}

// sameTree fails with the differences between a copy and what it must hold.
func sameTree(t *testing.T, client string, got, want map[string]string) {
	t.Helper()

	var diffs []string
	for name, w := range want {
		if g, ok := got[name]; !ok {
			diffs = append(diffs, "missing "+name+" ("+w+")")
		} else if g != w {
			diffs = append(diffs, name+": "+g+", want "+w)
		}
	}

	for name, g := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, "extra "+name+" ("+g+")")
		}
	}

	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("%s's copy differs:\n  %s", client, strings.Join(diffs, "\n  "))
	}
}

// TestMirrorWithLftp: lftp mirror copies the tree as it is meant to be
// seen: links recreated as links, nothing dangling, private or half-synced.
func TestMirrorWithLftp(t *testing.T) {
	t.Parallel()

	lftp := needTool(t, "lftp")
	root, want := mirrorTree(t)
	ts := mirrorServer(t, root, SymlinksAsLinks)

	for _, mlsd := range []string{"yes", "no"} {
		t.Run("use-mlsd "+mlsd, func(t *testing.T) {
			out := t.TempDir()
			runTool(t, lftp, "-c", "set ftp:use-mlsd "+mlsd+"; set net:max-retries 1; set ftp:list-options -a; "+
				"open -u anonymous,guest ftp://"+ts.addr+"; mirror / "+out)

			sameTree(t, "lftp (use-mlsd "+mlsd+")", snapshot(t, out), want)
		})
	}
}

// TestMirrorWithWget: wget -m --retr-symlinks=no (wget's way of keeping
// links) gets every regular file and recreates the links.
func TestMirrorWithWget(t *testing.T) {
	t.Parallel()

	wget := needTool(t, "wget")
	root, want := mirrorTree(t)
	ts := mirrorServer(t, root, SymlinksAsLinks)

	out := t.TempDir()
	runTool(t, wget, "-q", "-m", "-nH", "--retr-symlinks=no", "-P", out, "ftp://anonymous:guest@"+ts.addr+"/")

	got := snapshot(t, out)
	// wget keeps its own record of each listing; it is not part of the tree.
	for name := range got {
		if strings.HasSuffix(name, ".listing") {
			delete(got, name)
		}
	}

	// wget lists with LIST, which shows dotfiles; it does not follow a link to
	// a folder (self), and keeps an absolute link as written.
	sameTree(t, "wget", got, want)
}

// TestMirrorWithRclone: rclone, which cannot keep links, copies the tree
// with symlinks = "targets": every link as what it points to, and a link to
// its own folder (self -> .) left out, so the copy ends.
func TestMirrorWithRclone(t *testing.T) {
	t.Parallel()

	rclone := needTool(t, "rclone")
	root, want := mirrorTree(t)
	ts := mirrorServer(t, root, SymlinksAsTargets)

	host, port, _ := strings.Cut(ts.addr, ":")
	pass := strings.TrimSpace(string(runTool(t, rclone, "obscure", "guest")))
	out := t.TempDir()
	runTool(t, rclone, "--config", filepath.Join(t.TempDir(), "rclone.conf"), "copy",
		"--ftp-host", host, "--ftp-port", port, "--ftp-user", "anonymous", "--ftp-pass", pass,
		":ftp:/", out)

	// As targets: each link is its target's content; self -> . is left out
	// (an endless tree). rclone makes no empty folder (secret/ lists empty).
	delete(want, "self")
	delete(want, "latest")
	delete(want, "secret/")
	want["latest/"] = "dir"
	want["latest/pkg.tar.gz"] = want["1.2.3/pkg.tar.gz"]
	want["latest/CHECKSUMS.txt"] = want["1.2.3/CHECKSUMS.txt"]
	want["readme-link"] = want["README.txt"]
	want["absolute-link"] = want["README.txt"]

	sameTree(t, "rclone", snapshot(t, out), want)
}

// TestMirrorFacts: Python's ftplib.mlsd() sees unique and perm, and every
// LIST line, links included, is an ls -l line.
func TestMirrorFacts(t *testing.T) {
	t.Parallel()

	python := needTool(t, "python3")
	root, _ := mirrorTree(t)
	ts := mirrorServer(t, root, SymlinksAsLinks)
	host, port, _ := strings.Cut(ts.addr, ":")

	script := `
import ftplib, json, sys
ftp = ftplib.FTP()
ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
ftp.login()
facts = {name: f for name, f in ftp.mlsd("/", facts=["type", "size", "perm", "unique", "UNIX.mode"])}
lines = []
ftp.retrlines("LIST -a /", lines.append)
ftp.quit()
print(json.dumps({"facts": facts, "lines": lines}))
`
	var got struct {
		Facts map[string]map[string]string
		Lines []string
	}
	if err := json.Unmarshal(runTool(t, python, "-c", script, host, port), &got); err != nil {
		t.Fatal(err)
	}

	for name, facts := range got.Facts {
		if facts["type"] == "cdir" || facts["type"] == "pdir" {
			continue
		}

		if facts["unique"] == "" || facts["perm"] == "" {
			t.Errorf("mlsd %s: no unique or perm: %v", name, facts)
		}

		if strings.ContainsAny(facts["perm"], "wadfm") {
			t.Errorf("mlsd %s: perm %q lets an anonymous session change the tree", name, facts["perm"])
		}
	}

	if got.Facts["latest"]["type"] != "OS.unix=slink:1.2.3" {
		t.Errorf("mlsd latest: %v, want type=OS.unix=slink:1.2.3", got.Facts["latest"])
	}

	if u1, u2 := got.Facts["README.txt"]["unique"], got.Facts["setuid.bin"]["unique"]; u1 == u2 {
		t.Errorf("two files share unique %q", u1)
	}

	for _, hidden := range []string{"dangling", "escape", "private.txt", ".pkg.tar.gz.Ab12Cd", ".~tmp~", "into-secret"} {
		if _, ok := got.Facts[hidden]; ok {
			t.Errorf("mlsd lists %s", hidden)
		}
	}

	names := map[string]string{}
	for _, line := range got.Lines {
		m := lsPattern.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("LIST line %q is not an ls -l line", line)
		}

		names[m[7]] = m[1] + m[2]
	}

	for entry, mode := range map[string]string{
		"latest -> 1.2.3": "lrwxrwxrwx", "setuid.bin": "-rwsr-xr-x", "sticky": "drwxrwxrwt",
		"self -> .": "lrwxrwxrwx", "absolute-link -> /README.txt": "lrwxrwxrwx",
	} {
		if names[entry] != mode {
			t.Errorf("LIST %q: mode %q, want %q (lines %q)", entry, names[entry], mode, got.Lines)
		}
	}

	if len(names) != len(got.Lines) {
		t.Errorf("LIST: %d lines, %d names", len(got.Lines), len(names))
	}

}

// TestMirrorVisibility: every command agrees on what the session may see.
// A denied name, a private file, a file in a private folder, and links that
// dangle or leave the root are missing for LIST, NLST, MLSD, MLST, STAT, SIZE,
// MDTM, RETR, CWD and patterns alike; a hidden name is missing from listings
// only; MLST names a link as a link.
func TestMirrorVisibility(t *testing.T) {
	t.Parallel()

	root, _ := mirrorTree(t)
	ts := mirrorServer(t, root, SymlinksAsLinks)
	c := ts.raw(t)
	c.Login("anonymous", "guest")

	for _, name := range []string{"/.pkg.tar.gz.Ab12Cd", "/.~tmp~/pkg.tar.gz", "/private.txt", "/secret/draft.txt",
		"/into-secret", "/dangling", "/escape"} {
		for _, cmd := range []string{"SIZE", "MDTM", "MLST", "RETR"} {
			if code, msg := c.Cmd("%s %s", cmd, name); code != 550 || !strings.Contains(msg, "No such file or folder") {
				t.Errorf("%s %s: %d %q, want 550 as if missing", cmd, name, code, msg)
			}
		}

		if code, _ := c.Cmd("STAT %s", name); code != 450 {
			t.Errorf("STAT %s: %d, want 450", name, code)
		}
	}

	c.Must(550, "CWD /.~tmp~")
	c.Must(250, "CWD /secret") // the private folder itself is there, empty
	if msg := c.Must(212, "STAT -a /secret"); strings.Contains(msg, "draft") {
		t.Errorf("STAT of the private folder shows %q", msg)
	}
	c.Must(250, "CWD /")

	for _, cmd := range []string{"NLST -a /", "NLST -a /*", "LIST -a /", "MLSD /"} {
		data := c.DialPasv()
		c.Must(150, "%s", cmd)
		listing := string(readAllFrom(t, data))
		c.Expect(226)

		for _, unseen := range []string{".pkg.tar.gz", ".~tmp~", "private.txt", "draft.txt", "into-secret", "dangling", "escape"} {
			if strings.Contains(listing, unseen) {
				t.Errorf("%s shows %s:\n%s", cmd, unseen, listing)
			}
		}
	}

	if msg := c.Must(250, "MLST /latest"); !strings.Contains(msg, "Type=OS.unix=slink:1.2.3;") {
		t.Errorf("MLST /latest: %q, want the link", msg)
	}

	// Through the link, the folder is served.
	if got := retrRaw(t, c, "/latest/pkg.tar.gz"); string(got) != "release 1.2.3\n" {
		t.Errorf("RETR through a link: %q", got)
	}
}

// TestMessagesReachClients: a multi-line greeting (banner_file), login
// message and folder message are read by Python's ftplib, curl and lftp,
// which go on as usual.
func TestMessagesReachClients(t *testing.T) {
	t.Parallel()

	python, curl, lftp := needTool(t, "python3"), needTool(t, "curl"), needTool(t, "lftp")

	f, root := anonFixture(t)
	f.opts.Banner = "Welcome to the mirror.\nIt syncs at :00."
	f.opts.LoginMessage = "Be nice.\nUse a mirror near you."
	f.opts.Listing.MessageFile = ".message"
	writeFile(t, filepath.Join(root, "pub", ".message"), []byte("Releases live here.\n250 still the message\n"))
	ts := startServer(t, f)
	host, port, _ := strings.Cut(ts.addr, ":")

	script := `
import ftplib, json, sys
ftp = ftplib.FTP()
welcome = ftp.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
login = ftp.login()
cwd = ftp.cwd("/pub")
names = ftp.nlst()
ftp.quit()
print(json.dumps({"welcome": welcome, "login": login, "cwd": cwd, "names": names}))
`
	var got map[string]any
	if err := json.Unmarshal(runTool(t, python, "-c", script, host, port), &got); err != nil {
		t.Fatal(err)
	}

	for key, want := range map[string]string{"welcome": "It syncs at :00.", "login": "Use a mirror near you.", "cwd": "Releases live here."} {
		if text, _ := got[key].(string); !strings.Contains(text, want) {
			t.Errorf("ftplib's %s reply %q lacks %q", key, text, want)
		}
	}

	if names, _ := got["names"].([]any); len(names) != 4 {
		t.Errorf("ftplib's NLST after the message: %v", got["names"])
	}

	if out := string(runTool(t, curl, "-s", "ftp://"+ts.addr+"/pub/")); !strings.Contains(out, "big.bin") {
		t.Errorf("curl's listing after the messages: %q", out)
	}

	if out := string(runTool(t, lftp, "-c", "set net:max-retries 1; open -u anonymous,guest ftp://"+ts.addr+"; cd /pub; cls")); !strings.Contains(out, "big.bin") {
		t.Errorf("lftp's listing after the messages: %q", out)
	}
}
