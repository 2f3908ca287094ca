package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sandbox is a root directory next to a directory that must stay out of reach:
//
//	base/outside/secret.txt        "secret" (all files 0600)
//	base/root/pub/a.txt            "hello"
//	base/root/pub/2.4.1/file.iso   "iso"
//	base/root/pub/empty/
//	base/root/latest    -> pub/2.4.1       in-root directory link
//	base/root/readme    -> pub/a.txt       in-root file link
//	base/root/chain1    -> chain2 -> pub   in-root chain
//	base/root/evil      -> base/outside    absolute, escapes
//	base/root/evilrel   -> ../outside      relative, escapes
//	base/root/evilfile  -> ../outside/secret.txt
//	base/root/chainout1 -> chainout2 -> ../outside
//	base/root/abs       -> base/root/pub   absolute, inside the root's disk path
//	base/root/dangling  -> nowhere
type sandbox struct {
	base, root, outside string
}

func newSandbox(t *testing.T) sandbox {
	t.Helper()
	base := t.TempDir()
	sb := sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{sb.outside, filepath.Join(sb.root, "pub", "2.4.1"), filepath.Join(sb.root, "pub", "empty")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(sb.outside, "secret.txt"):            "secret",
		filepath.Join(sb.root, "pub", "a.txt"):             "hello",
		filepath.Join(sb.root, "pub", "2.4.1", "file.iso"): "iso",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"latest":    "pub/2.4.1",
		"readme":    "pub/a.txt",
		"chain1":    "chain2",
		"chain2":    "pub",
		"evil":      sb.outside,
		"evilrel":   "../outside",
		"evilfile":  "../outside/secret.txt",
		"chainout1": "chainout2",
		"chainout2": "../outside",
		"abs":       filepath.Join(sb.root, "pub"),
		"dangling":  "nowhere",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(sb.root, name)); err != nil {
			t.Fatal(err)
		}
	}

	return sb
}

// open returns an Fs on the sandbox's root, closed when the test ends.
func (sb sandbox) open(t *testing.T, opts Options) *Fs {
	t.Helper()
	fsys, err := Open(sb.root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Close() })

	return fsys
}

// checkOutside fails the test if anything outside the root changed: the
// outside folder holds exactly secret.txt with its content, and base holds
// nothing but root and outside.
func (sb sandbox) checkOutside(t *testing.T) {
	t.Helper()
	for dir, want := range map[string][]string{sb.base: {"outside", "root"}, sb.outside: {"secret.txt"}} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s holds %q, want %q", dir, got, want)
		}
	}
	info, err := os.Lstat(filepath.Join(sb.outside, "secret.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode() != 0o600 {
		t.Fatalf("secret.txt mode = %v, want 0600", info.Mode())
	}
	if b, err := os.ReadFile(filepath.Join(sb.outside, "secret.txt")); err != nil || string(b) != "secret" {
		t.Fatalf("secret.txt = %q, %v", b, err)
	}
}

// checkErrText fails the test if the text of err, which the client would read,
// shows the sandbox's disk path.
func (sb sandbox) checkErrText(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), sb.base) {
		t.Fatalf("error shows the disk path: %v", err)
	}
}

// diskFile returns the content of a file on disk, or "<absent>".
func diskFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}

	return string(b)
}

// tempFiles returns the in-progress uploads on disk in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var temps []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			temps = append(temps, e.Name())
		}
	}

	return temps
}

// pathOf returns the virtual path an error names.
func pathOf(t *testing.T, err error) string {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("got %#v, want a *fs.PathError", err)
	}

	return pe.Path
}
