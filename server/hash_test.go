package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// sumOf runs a real checksum tool (sha256sum, sha1sum...) with args in
// folder dir and returns what it printed.
func sumOf(t *testing.T, dir, tool string, args ...string) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, needTool(t, tool), args...)
	cmd.Dir = dir

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}

	return string(out)
}

// digestOf is the hex digest tool prints for file.
func digestOf(t *testing.T, tool, file string) string {
	t.Helper()

	out := runTool(t, needTool(t, tool), file)

	return strings.Fields(string(out))[0]
}

// setOlder makes file's modification time an hour before now.
func setOlder(t *testing.T, file string) {
	t.Helper()

	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(file, old, old); err != nil {
		t.Fatal(err)
	}
}

// hashTree is a mirror's tree, with the checksum files real tools write.
func hashTree(t *testing.T) string {
	t.Helper()

	root := t.TempDir()
	for _, name := range []string{
		"gnu/a.iso", "gnu/b.iso", "bsd/c.iso", "signed/d.iso", "stale/e.iso", "beside/f.iso", "fedora/g.iso",
		"deep/sub/h.iso", "none/small.bin", "none/big.bin", "deny/x.iso", "private/p.iso", "huge/i.iso",
	} {
		writeFile(t, filepath.Join(root, name), ftptest.RandomBytes(64<<10+len(name)))
		setOlder(t, filepath.Join(root, name))
	}

	dir := func(name string) string { return filepath.Join(root, name) }
	writeFile(t, dir("gnu/SHA256SUMS"), []byte(sumOf(t, dir("gnu"), "sha256sum", "a.iso", "b.iso")))
	writeFile(t, dir("gnu/SHA512SUMS"), []byte(sumOf(t, dir("gnu"), "sha512sum", "--binary", "a.iso")))
	writeFile(t, dir("gnu/SHA1SUMS"), []byte(sumOf(t, dir("gnu"), "sha1sum", "a.iso")))
	writeFile(t, dir("gnu/MD5SUMS"), []byte(sumOf(t, dir("gnu"), "md5sum", "a.iso")))
	writeFile(t, dir("bsd/CHECKSUMS"), []byte(sumOf(t, dir("bsd"), "sha256sum", "--tag", "c.iso")))
	writeFile(t, dir("signed/SHA256SUMS"), []byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"+
		sumOf(t, dir("signed"), "sha256sum", "d.iso")+
		"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n"))
	writeFile(t, dir("stale/SHA256SUMS"), []byte(sumOf(t, dir("stale"), "sha256sum", "e.iso")))
	setOlder(t, dir("stale/SHA256SUMS"))
	writeFile(t, dir("stale/e.iso"), []byte("rewritten after its checksum was published\n"))
	writeFile(t, dir("beside/f.iso.sha256"), []byte(strings.Fields(sumOf(t, dir("beside"), "sha256sum", "f.iso"))[0]+"\n"))
	writeFile(t, dir("fedora/Fedora-Everything-42-x86_64-CHECKSUM"),
		[]byte("# g.iso: 65544 bytes\n"+sumOf(t, dir("fedora"), "sha256sum", "--tag", "g.iso")))
	writeFile(t, dir("SHA256SUMS"), []byte(sumOf(t, root, "sha256sum", "deep/sub/h.iso")))
	writeFile(t, dir("deny/SHA256SUMS"), []byte(sumOf(t, dir("deny"), "sha256sum", "x.iso")))
	writeFile(t, dir("private/SHA256SUMS"), []byte(sumOf(t, dir("private"), "sha256sum", "p.iso")))
	if err := os.Chmod(dir("private/p.iso"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A "SHA256SUMS" over the size read: sparse, its first line right.
	huge := sumOf(t, dir("huge"), "sha256sum", "i.iso")
	writeFile(t, dir("huge/SHA256SUMS"), []byte(huge))
	if err := os.Truncate(dir("huge/SHA256SUMS"), maxSumsFile+1); err != nil {
		t.Fatal(err)
	}

	return root
}

func hashServer(t *testing.T, root string, h Hash) *testServer {
	t.Helper()

	f := fixture{opts: defaultOptions(), anon: root}
	f.opts.Listing.Deny = []string{"x.iso"}
	f.opts.Hash = h

	return startServerWith(t, f, auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousWorldReadableOnly: true})
}

func TestHashFromPublishedChecksums(t *testing.T) {
	t.Parallel()

	root := hashTree(t)
	ts := hashServer(t, root, Hash{SearchUp: 2})
	file := func(name string) string { return filepath.Join(root, name) }

	c := ts.raw(t)
	c.Login("anonymous", "guest@example.com")

	for _, tc := range []struct {
		name, cmd, file string
	}{
		{"GNU text mode (sha256sum)", "HASH /gnu/a.iso", "gnu/a.iso"},
		{"a relative path", "HASH gnu/b.iso", "gnu/b.iso"},
		{"BSD tags (sha256sum --tag) in CHECKSUMS", "HASH /bsd/c.iso", "bsd/c.iso"},
		{"a clear-signed SHA256SUMS", "HASH /signed/d.iso", "signed/d.iso"},
		{"a lone digest in f.iso.sha256", "HASH /beside/f.iso", "beside/f.iso"},
		{"Fedora's *-CHECKSUM, found in the listing", "HASH /fedora/g.iso", "fedora/g.iso"},
		{"a SHA256SUMS two folders up (search_up)", "HASH /deep/sub/h.iso", "deep/sub/h.iso"},
	} {
		want := digestOf(t, "sha256sum", file(tc.file))
		size := fileSize(t, file(tc.file))
		arg := strings.TrimPrefix(tc.cmd, "HASH ")
		if got := c.Must(213, "%s", tc.cmd); got != "SHA-256 0-"+size+" "+want+" "+arg {
			t.Errorf("%s: %s = %q, want SHA-256 0-%s %s %s", tc.name, tc.cmd, got, size, want, arg)
		}
	}

	for _, tc := range []struct {
		name, cmd, tool, file string
	}{
		{"XSHA256 from SHA256SUMS", "XSHA256 /gnu/a.iso", "sha256sum", "gnu/a.iso"},
		{"XSHA512 from SHA512SUMS (binary mode)", "XSHA512 /gnu/a.iso", "sha512sum", "gnu/a.iso"},
		{"XSHA1 from SHA1SUMS", "XSHA1 /gnu/a.iso", "sha1sum", "gnu/a.iso"},
		{"XMD5 from MD5SUMS", "XMD5 /gnu/a.iso", "md5sum", "gnu/a.iso"},
	} {
		if got, want := c.Must(250, "%s", tc.cmd), digestOf(t, tc.tool, file(tc.file)); got != want {
			t.Errorf("%s: %s = %q, want %s's %s", tc.name, tc.cmd, got, tc.tool, want)
		}
	}

	t.Run("OPTS HASH chooses the session's algorithm, which FEAT marks", func(t *testing.T) {
		c := ts.raw(t)
		c.Must(200, "OPTS UTF8 ON")
		if got := c.Must(211, "FEAT"); !strings.Contains(got, "\n HASH SHA-256*;SHA-512;SHA-1;MD5\n") ||
			!strings.Contains(got, "\n XSHA256\n") || !strings.Contains(got, "\n XMD5\n") {
			t.Errorf("FEAT = %q, want HASH SHA-256*;SHA-512;SHA-1;MD5 and the X commands", got)
		}

		c.Login("anonymous", "guest@example.com")
		if got := c.Must(200, "OPTS HASH"); got != "SHA-256" {
			t.Errorf("OPTS HASH = %q, want SHA-256", got)
		}

		if got := c.Must(200, "OPTS HASH sha-512"); got != "SHA-512" {
			t.Errorf("OPTS HASH sha-512 = %q, want SHA-512", got)
		}

		if got := c.Must(211, "FEAT"); !strings.Contains(got, " HASH SHA-256;SHA-512*;SHA-1;MD5") {
			t.Errorf("FEAT after OPTS HASH SHA-512 = %q", got)
		}

		want := "SHA-512 0-" + fileSize(t, file("gnu/a.iso")) + " " + digestOf(t, "sha512sum", file("gnu/a.iso")) + " /gnu/a.iso"
		if got := c.Must(213, "HASH /gnu/a.iso"); got != want {
			t.Errorf("HASH in SHA-512 = %q, want %q", got, want)
		}

		c.Must(550, "HASH /gnu/b.iso") // SHA512SUMS does not name it
		c.Must(504, "OPTS HASH CRC32")
		if got := c.Must(200, "OPTS HASH"); got != "SHA-512" {
			t.Errorf("OPTS HASH after a refused choice = %q, want SHA-512 still", got)
		}

		c.Must(200, "OPTS HASH MD5")
		if got := c.Must(213, "HASH /gnu/a.iso"); !strings.HasPrefix(got, "MD5 ") || !strings.Contains(got, digestOf(t, "md5sum", file("gnu/a.iso"))) {
			t.Errorf("HASH in MD5 = %q", got)
		}
	})

	t.Run("refusals are RETR's, or no published checksum", func(t *testing.T) {
		c := ts.raw(t)
		c.Login("anonymous", "guest@example.com")

		for _, tc := range []struct {
			cmd, retr string
			code      int
			has       string
		}{
			{"HASH /stale/e.iso", "", 550, "no published checksum (SHA-256) for /stale/e.iso"},
			{"HASH /huge/i.iso", "", 550, "no published checksum"},
			{"HASH /none/small.bin", "", 550, "no published checksum"},
			{"XSHA1 /gnu/b.iso", "", 550, "no published checksum (SHA-1)"},
			{"HASH /gnu", "RETR /gnu", 550, "/gnu: Is a folder."},
			{"HASH /gnu/missing.iso", "RETR /gnu/missing.iso", 550, "/gnu/missing.iso: No such file or folder."},
			{"HASH /deny/x.iso", "RETR /deny/x.iso", 550, "/deny/x.iso: No such file or folder."},
			{"HASH /private/p.iso", "RETR /private/p.iso", 550, "/private/p.iso: No such file or folder."},
			{"HASH /../../etc/passwd", "RETR /../../etc/passwd", 550, "/etc/passwd: No such file or folder."},
			{"HASH", "", 501, "Syntax: HASH <path>"},
		} {
			code, got := c.Cmd("%s", tc.cmd)
			if code != tc.code || !strings.HasPrefix(got, tc.has) {
				t.Errorf("%s = %d %q, want %d %q", tc.cmd, code, got, tc.code, tc.has)
			}

			if strings.Contains(got, root) {
				t.Errorf("%s shows the disk path: %q", tc.cmd, got)
			}

			if tc.retr != "" {
				c.Pasv()
				if rcode, rgot := c.Cmd("%s", tc.retr); rcode != code || rgot != got {
					t.Errorf("%s = %d %q, but %s = %d %q: want the same", tc.cmd, code, got, tc.retr, rcode, rgot)
				}
			}
		}

		c.Must(350, "REST 100")
		if got := c.Must(550, "HASH /gnu/a.iso"); !strings.Contains(got, "whole files") {
			t.Errorf("HASH after REST 100 = %q, want a refusal saying checksums cover whole files", got)
		}

		c.Must(350, "REST 0")
		c.Must(213, "HASH /gnu/a.iso")
	})

	t.Run("python's ftplib reads the reply", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "hash.py")
		writeFile(t, script, []byte(`
import ftplib, json, sys
host, port = sys.argv[1].rsplit(":", 1)
ftp = ftplib.FTP()
ftp.connect(host, int(port), timeout=20)
ftp.login()
print(json.dumps({"replies": [ftp.sendcmd("HASH /gnu/a.iso"), ftp.sendcmd("XSHA256 /signed/d.iso")]}))
ftp.quit()
`))

		var r struct{ Replies []string }
		if out := runTool(t, needTool(t, "python3"), script, ts.addr); json.Unmarshal(out, &r) != nil {
			t.Fatalf("python printed %q", out)
		}

		want := []string{
			"213 SHA-256 0-" + fileSize(t, file("gnu/a.iso")) + " " + digestOf(t, "sha256sum", file("gnu/a.iso")) + " /gnu/a.iso",
			"250 " + digestOf(t, "sha256sum", file("signed/d.iso")),
		}
		if strings.Join(r.Replies, "\n") != strings.Join(want, "\n") {
			t.Errorf("ftplib read %q, want %q", r.Replies, want)
		}
	})

	t.Run("the digest is that of the bytes RETR sends", func(t *testing.T) {
		c := ts.raw(t)
		c.Login("anonymous", "guest@example.com")
		cl := ts.dial(t, "anonymous", "x")
		data := ftptest.Retr(t, cl, "/gnu/b.iso")
		if got := strings.Fields(c.Must(213, "HASH /gnu/b.iso"))[2]; got != ftptest.Sum(data) {
			t.Errorf("HASH = %s, the downloaded bytes' SHA-256 is %s", got, ftptest.Sum(data))
		}
	})
}

func TestHashOnDemandWithinComputeMaxSize(t *testing.T) {
	t.Parallel()

	root := hashTree(t)
	small := filepath.Join(root, "none/small.bin")
	writeFile(t, small, []byte("small enough to hash\n"))

	ts := hashServer(t, root, Hash{ComputeMaxSize: 1024})
	c := ts.raw(t)
	c.Login("anonymous", "guest@example.com")

	if got := c.Must(213, "HASH /none/small.bin"); got != "SHA-256 0-21 "+digestOf(t, "sha256sum", small)+" /none/small.bin" {
		t.Errorf("HASH of a file within compute_max_size = %q", got)
	}

	if got := c.Must(250, "XMD5 /none/small.bin"); got != digestOf(t, "md5sum", small) {
		t.Errorf("XMD5 = %q", got)
	}

	if got := c.Must(550, "HASH /none/big.bin"); !strings.HasPrefix(got, "no published checksum") {
		t.Errorf("HASH of a file over compute_max_size = %q", got)
	}

	// What the session may not download is refused, hashing or not.
	c.Must(550, "HASH /private/p.iso")
}

func TestHashNeedsLoginAndRespectsAccess(t *testing.T) {
	t.Parallel()

	root := hashTree(t)
	f := fixture{opts: defaultOptions(), users: []auth.User{
		{Name: "drop", PasswordHash: testHash, Home: root, Access: auth.WriteOnly},
	}}
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Must(530, "HASH /gnu/a.iso")
	c.Login("drop", testPassword)
	c.Pasv()
	_, retr := c.Cmd("RETR /gnu/a.iso")
	if got := c.Must(550, "HASH /gnu/a.iso"); got != retr {
		t.Errorf("HASH for a write-only account = %q, RETR = %q: want the same", got, retr)
	}
}

func fileSize(t *testing.T, name string) string {
	t.Helper()

	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}

	return strconv.FormatInt(st.Size(), 10)
}

// checksumRoot is an object store's root that keeps SHA-256 digests of
// some objects (as S3 keeps x-amz-checksum-sha256).
type checksumRoot struct {
	storeRoot
	kept map[string][]byte
}

var _ StoredChecksums = checksumRoot{}

func (r checksumRoot) SHA256(name string) ([]byte, bool, error) {
	sum, ok := r.kept[name]

	return sum, ok, nil
}

func TestHashFromStoredChecksums(t *testing.T) {
	t.Parallel()

	st := &memStore{mem: afero.NewMemMapFs()}
	data := []byte("an object uploaded whole with its checksum\n")
	for _, name := range []string{"/pub/kept.bin", "/pub/plain.bin"} {
		if err := afero.WriteFile(st.mem, name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	sum := sha256.Sum256(data)
	f := fixture{opts: defaultOptions(), anon: "/pub"}
	f.opts.Storage = func(home string, atomic bool) (Root, error) {
		root, err := st.open(home, atomic)

		return checksumRoot{storeRoot: root.(storeRoot), kept: map[string][]byte{"/kept.bin": sum[:]}}, err
	}
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("anonymous", "x")
	if got := c.Must(213, "HASH /kept.bin"); got != "SHA-256 0-"+strconv.Itoa(len(data))+" "+hex.EncodeToString(sum[:])+" /kept.bin" {
		t.Errorf("HASH of an object with a stored SHA-256 = %q", got)
	}

	c.Must(550, "HASH /plain.bin")
	c.Must(550, "XSHA1 /kept.bin") // only SHA-256 is stored
}
