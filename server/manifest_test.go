package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// manifestTree is a mirror's tree with what anonymous users must not see in
// a manifest: a dotfile, a hidden name, a denied name, a private file, a
// private folder and the drop box (upload_dir); and a SHA256SUMS for some files.
func manifestTree(t *testing.T) string {
	t.Helper()

	root := t.TempDir()
	for _, name := range []string{
		"README.txt", "pub/a.iso", "pub/b.iso", "pub/unsummed.bin", "pub/deep/c.txt", "pub/.hidden-dot",
		"pub/notes.tmp", "pub/x.denied", "pub/private.bin", "secret/inside.txt", "empty/.keep", "incoming/upload.bin",
	} {
		writeFile(t, filepath.Join(root, name), ftptest.RandomBytes(1000+len(name)))
	}

	writeFile(t, filepath.Join(root, "pub/SHA256SUMS"), []byte(sumOf(t, filepath.Join(root, "pub"), "sha256sum", "a.iso", "b.iso")))

	if err := os.Chmod(filepath.Join(root, "pub/private.bin"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := os.Chmod(filepath.Join(root, "secret"), 0o700); err != nil {
		t.Fatal(err)
	}

	if err := os.Symlink("pub/a.iso", filepath.Join(root, "latest.iso")); err != nil {
		t.Fatal(err)
	}

	return root
}

func manifestServer(t *testing.T, root string, m Manifest) *testServer {
	t.Helper()

	f := fixture{opts: defaultOptions(), anon: root}
	f.opts.Listing.Hide = []string{"*.tmp"}
	f.opts.Listing.Deny = []string{"*.denied"}
	f.opts.Manifest = m

	users := []auth.User{{Name: "alice", PasswordHash: testHash, Home: t.TempDir(), Access: auth.ReadOnly}}

	return startServerWith(t, f, auth.Options{
		Anonymous: true, AnonymousRoot: root, AnonymousWorldReadableOnly: true, AnonymousUploadDir: "incoming", Users: users,
	})
}

// fetch downloads name, waiting (bounded) for the first manifest to exist.
func fetch(t *testing.T, c *ftp.ServerConn, name string) []byte {
	t.Helper()

	var data []byte
	ftptest.WaitFor(t, 20*time.Second, func() bool {
		r, err := c.Retr(name)
		if err != nil {
			return false
		}
		defer r.Close()

		data, err = io.ReadAll(r)

		return err == nil
	})

	return data
}

func gunzip(t *testing.T, data []byte) string {
	t.Helper()

	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}

	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}

	return string(out)
}

// parseLsLR reads ls -lR output: the names listed in each folder ("." for the root).
func parseLsLR(t *testing.T, text string) map[string][]string {
	t.Helper()

	folders := map[string][]string{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasSuffix(line, ":") && !strings.Contains(line, " "):
			cur = strings.TrimSuffix(line, ":")
			folders[cur] = []string{}
		case strings.HasPrefix(line, "total "):
		default:
			fields := strings.Fields(line)
			if len(fields) < 9 || cur == "" {
				t.Fatalf("ls-lR line %q is not ls -l's", line)
			}

			name := strings.Join(fields[8:], " ")
			name, _, _ = strings.Cut(name, " -> ")
			folders[cur] = append(folders[cur], name)
		}
	}

	return folders
}

type manifestDoc struct {
	Root      string         `json:"root"`
	Generated string         `json:"generated"`
	Entries   int            `json:"entries"`
	Truncated bool           `json:"truncated"`
	Because   string         `json:"truncated_because"`
	Files     []manifestFile `json:"files"`
}

type manifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	MTime  string `json:"mtime"`
	SHA256 string `json:"sha256"`
}

func parseManifest(t *testing.T, data []byte) manifestDoc {
	t.Helper()

	var doc manifestDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("manifest.json does not parse: %v\n%s", err, data)
	}

	return doc
}

func TestManifestForCrawlers(t *testing.T) {
	t.Parallel()

	root := manifestTree(t)
	ts := manifestServer(t, root, Manifest{Enabled: true, Interval: 100 * time.Millisecond})
	c := ts.dial(t, "anonymous", "x")

	lsGz := fetch(t, c, "/ls-lR.gz")
	folders := parseLsLR(t, gunzip(t, lsGz))
	want := map[string][]string{
		".":          {"README.txt", "empty", "latest.iso", "pub", "secret"},
		"./empty":    {},
		"./pub":      {"SHA256SUMS", "a.iso", "b.iso", "deep", "unsummed.bin"},
		"./pub/deep": {"c.txt"},
		"./secret":   {},
	}
	for dir, names := range want {
		if got := folders[dir]; !slices.Equal(got, names) {
			t.Errorf("ls-lR lists %s as %q, want %q", dir, got, names)
		}
	}

	if len(folders) != len(want) {
		t.Errorf("ls-lR lists folders %v, want those of %v", folders, want)
	}

	text := gunzip(t, lsGz)
	if !strings.HasPrefix(text, ".:\ntotal ") || !strings.Contains(text, "\n\n./pub:\ntotal ") ||
		!strings.Contains(text, " latest.iso -> pub/a.iso\n") {
		t.Errorf("ls-lR.gz is not ls -lR's format:\n%s", text)
	}

	doc := parseManifest(t, fetch(t, c, "/manifest.json"))
	var paths []string
	for _, f := range doc.Files {
		paths = append(paths, f.Path)

		st, err := os.Stat(filepath.Join(root, f.Path))
		if err != nil || st.Size() != f.Size || st.ModTime().UTC().Format(time.RFC3339) != f.MTime {
			t.Errorf("manifest.json has %s: %d bytes, %s; on disk: %v", f.Path, f.Size, f.MTime, st)
		}

		switch f.Path {
		case "/pub/a.iso", "/pub/b.iso":
			if want := digestOf(t, "sha256sum", filepath.Join(root, f.Path)); f.SHA256 != want {
				t.Errorf("manifest.json gives %s sha256 %q, sha256sum says %s", f.Path, f.SHA256, want)
			}
		default:
			if f.SHA256 != "" {
				t.Errorf("manifest.json gives %s a sha256 no checksum file publishes", f.Path)
			}
		}
	}

	wantPaths := []string{"/README.txt", "/pub/SHA256SUMS", "/pub/a.iso", "/pub/b.iso", "/pub/unsummed.bin", "/pub/deep/c.txt"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("manifest.json lists %q, want %q", paths, wantPaths)
	}

	if doc.Truncated || doc.Root != "/" || doc.Entries != 11 {
		t.Errorf("manifest.json: root %q, %d entries, truncated %t; want /, 11, false", doc.Root, doc.Entries, doc.Truncated)
	}

	t.Run("the root lists both with their size and time; SIZE, MDTM and REST work", func(t *testing.T) {
		entries := ftptest.List(t, c, "/")
		sizes := map[string]uint64{}
		for _, e := range entries {
			sizes[e.Name] = e.Size
		}

		if sizes["ls-lR.gz"] == 0 || sizes["manifest.json"] == 0 {
			t.Fatalf("LIST / = %v, want ls-lR.gz and manifest.json", sizes)
		}

		names, err := c.NameList("/")
		if err != nil || !slices.Contains(names, "/manifest.json") && !slices.Contains(names, "manifest.json") {
			t.Errorf("NLST / = %q, %v: want manifest.json", names, err)
		}

		size, err := c.FileSize("/ls-lR.gz")
		if err != nil || uint64(size) != sizes["ls-lR.gz"] {
			t.Errorf("SIZE /ls-lR.gz = %d, %v; LIST says %d", size, err, sizes["ls-lR.gz"])
		}

		if _, err := c.GetTime("/manifest.json"); err != nil {
			t.Errorf("MDTM /manifest.json: %v", err)
		}

		r, err := c.RetrFrom("/ls-lR.gz", 10)
		if err != nil {
			t.Fatalf("REST 10, RETR /ls-lR.gz: %v", err)
		}

		tail, _ := io.ReadAll(r)
		_ = r.Close()
		full := fetch(t, c, "/ls-lR.gz")
		if !bytes.Equal(tail, full[10:]) {
			t.Errorf("REST 10 + RETR gave %d bytes, want the last %d of %d", len(tail), len(full)-10, len(full))
		}

		raw := ts.raw(t)
		raw.Login("anonymous", "x")
		if got := raw.Must(250, "MLST /manifest.json"); !strings.Contains(got, "type=file") && !strings.Contains(got, "Type=file") {
			t.Errorf("MLST /manifest.json = %q", got)
		}
	})

	t.Run("curl downloads them", func(t *testing.T) {
		curl := needTool(t, "curl")
		out := runTool(t, curl, "-s", "--max-time", "20", "ftp://"+ts.addr+"/manifest.json")
		if doc := parseManifest(t, out); len(doc.Files) != len(wantPaths) {
			t.Errorf("curl's manifest.json lists %d files, want %d", len(doc.Files), len(wantPaths))
		}

		gz := runTool(t, curl, "-s", "--max-time", "20", "ftp://"+ts.addr+"/ls-lR.gz")
		if !strings.HasPrefix(gunzip(t, gz), ".:\n") {
			t.Errorf("curl's ls-lR.gz does not start with .:")
		}
	})

	t.Run("a change in the tree shows after the next look", func(t *testing.T) {
		writeFile(t, filepath.Join(root, "pub/deep/new.bin"), []byte("new\n"))
		ftptest.WaitFor(t, 20*time.Second, func() bool {
			doc := parseManifest(t, fetch(t, c, "/manifest.json"))
			for _, f := range doc.Files {
				if f.Path == "/pub/deep/new.bin" && f.Size == 4 {
					return true
				}
			}

			return false
		})

		if !slices.Contains(parseLsLR(t, gunzip(t, fetch(t, c, "/ls-lR.gz")))["./pub/deep"], "new.bin") {
			t.Errorf("ls-lR.gz lacks the new file once manifest.json has it")
		}
	})
}

func TestManifestBounds(t *testing.T) {
	t.Parallel()

	root := manifestTree(t)
	writeFile(t, filepath.Join(root, "pub/manifest.json"), []byte(`{"real": true}`))
	ts := manifestServer(t, root, Manifest{Enabled: true, Interval: time.Hour, MaxEntries: 3})
	ts.srv.RegisterManifest("/pub")
	ts.srv.RegisterManifest("/nowhere")
	c := ts.dial(t, "anonymous", "x")

	t.Run("a truncated manifest says so", func(t *testing.T) {
		doc := parseManifest(t, fetch(t, c, "/manifest.json"))
		if !doc.Truncated || doc.Entries != 3 {
			t.Errorf("manifest.json with max_entries 3: %d entries, truncated %t", doc.Entries, doc.Truncated)
		}

		text := gunzip(t, fetch(t, c, "/ls-lR.gz"))
		if lines := strings.Count(text, " ftp ftp "); lines != 3 || !strings.Contains(text, "\n# truncated by wharf: max_entries (3) reached\n") {
			t.Errorf("ls-lR.gz with max_entries 3 has %d entries:\n%s", lines, text)
		}
	})

	t.Run("a registered folder gets its own; a real file of the name wins", func(t *testing.T) {
		if got := fetch(t, c, "/pub/manifest.json"); string(got) != `{"real": true}` {
			t.Errorf("RETR /pub/manifest.json = %q, want the real file", got)
		}

		if text := gunzip(t, fetch(t, c, "/pub/ls-lR.gz")); !strings.HasPrefix(text, ".:\ntotal ") ||
			!strings.Contains(text, " SHA256SUMS\n") {
			t.Errorf("/pub/ls-lR.gz:\n%s", text)
		}

		names := map[string]int{}
		for _, e := range ftptest.List(t, c, "/pub") {
			names[e.Name]++
		}

		if names["manifest.json"] != 1 || names["ls-lR.gz"] != 1 {
			t.Errorf("LIST /pub = %v, want manifest.json and ls-lR.gz once each", names)
		}
	})

	t.Run("before a manifest exists, 550 in words", func(t *testing.T) {
		raw := ts.raw(t)
		raw.Login("anonymous", "x")
		raw.Pasv()
		if got := raw.Must(550, "RETR /nowhere/ls-lR.gz"); !strings.Contains(got, "try again") {
			t.Errorf("RETR of a manifest not made yet = %q", got)
		}
	})

	t.Run("an account with another home sees none", func(t *testing.T) {
		alice := ts.dial(t, "alice", testPassword)
		for _, e := range ftptest.List(t, alice, "/") {
			if e.Name == "manifest.json" || e.Name == "ls-lR.gz" {
				t.Errorf("alice's LIST / shows %s", e.Name)
			}
		}

		if _, err := alice.FileSize("/manifest.json"); err == nil {
			t.Errorf("alice's SIZE /manifest.json succeeded")
		}
	})
}

func TestManifestTimeLimit(t *testing.T) {
	t.Parallel()

	root := manifestTree(t)
	ts := manifestServer(t, root, Manifest{Enabled: true, Interval: time.Hour, TimeLimit: time.Nanosecond})
	c := ts.dial(t, "anonymous", "x")

	doc := parseManifest(t, fetch(t, c, "/manifest.json"))
	if !doc.Truncated || doc.Because != "time_limit reached" || len(doc.Files) != 0 {
		t.Errorf("manifest.json of a walk past its time_limit: truncated %t because %q, %d files", doc.Truncated, doc.Because,
			len(doc.Files))
	}

	if text := gunzip(t, fetch(t, c, "/ls-lR.gz")); !strings.Contains(text, "# truncated by wharf: time_limit reached\n") {
		t.Errorf("ls-lR.gz of a walk past its time_limit:\n%s", text)
	}
}

func TestManifestReadsAFolderAsFarAsList(t *testing.T) {
	t.Parallel()

	root := manifestTree(t)
	f := fixture{opts: defaultOptions(), anon: root}
	f.opts.MaxListEntries = 6 // the root's six entries, not /pub's nine
	f.opts.Manifest = Manifest{Enabled: true, Interval: time.Hour}
	ts := startServer(t, f)
	c := ts.dial(t, "anonymous", "x")

	doc := parseManifest(t, fetch(t, c, "/manifest.json"))
	if !doc.Truncated || !strings.Contains(doc.Because, "max_list_entries (6): /pub") {
		t.Errorf("manifest.json of a tree with folders over max_list_entries: truncated %t because %q", doc.Truncated, doc.Because)
	}

	// The walk goes on past such a folder: /secret comes after /pub.
	if !slices.ContainsFunc(doc.Files, func(f manifestFile) bool { return f.Path == "/secret/inside.txt" }) {
		t.Errorf("manifest.json stops at the first folder over max_list_entries: %+v", doc.Files)
	}
}

func TestManifestOverHTTPAndForSnapshots(t *testing.T) {
	t.Parallel()

	root := manifestTree(t)
	if err := os.Mkdir(filepath.Join(root, "debian.1"), 0o755); err != nil {
		t.Fatal(err)
	}

	writeFile(t, filepath.Join(root, "debian.1", "Release"), []byte("Suite: stable\n"))
	if err := os.Symlink("debian.1", filepath.Join(root, "debian")); err != nil {
		t.Fatal(err)
	}

	ts, base := startHTTP(t, root, func(o *Options, _ *auth.Options) {
		o.Manifest = Manifest{Enabled: true, Interval: time.Hour}
		o.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian"}}}
	})
	c := ts.dial(t, "anonymous", "x")

	// Both exist once FTP serves them.
	fetch(t, c, "/manifest.json")
	fetch(t, c, "/debian/manifest.json")

	res := curl(t, base+"/manifest.json")
	if res.code != 200 {
		t.Fatalf("GET /manifest.json: %d", res.code)
	}

	if doc := parseManifest(t, res.body); doc.Root != "/" || len(doc.Files) == 0 {
		t.Errorf("GET /manifest.json: root %q, %d files", doc.Root, len(doc.Files))
	}

	if res := curl(t, base+"/ls-lR.gz"); res.code != 200 || !strings.HasPrefix(gunzip(t, res.body), ".:\n") {
		t.Errorf("GET /ls-lR.gz: %d", res.code)
	}

	if res := curl(t, base+"/"); !strings.Contains(string(res.body), "manifest.json") {
		t.Errorf("the index page of / does not list manifest.json:\n%s", res.body)
	}

	doc := parseManifest(t, fetch(t, c, "/debian/manifest.json"))
	if doc.Root != "/debian" || len(doc.Files) != 1 || doc.Files[0].Path != "/debian/Release" {
		t.Errorf("/debian/manifest.json: root %q, files %+v; want /debian/Release", doc.Root, doc.Files)
	}
}
