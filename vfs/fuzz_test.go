package vfs

import (
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// FuzzResolve runs every operation on arbitrary names, resolved against the
// working directory /pub of a sandbox with in-root and escaping links, and
// checks that nothing outside the root was read into an error, changed or
// created. First it looks the name up as an anonymous session of a mirror
// would (checkMirror), and checks that no lookup or listing reaches a denied
// or private name, then as an anonymous session of a drop box with aliases
// (checkDropBox), and checks that nothing shows what is in the box.
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{
		"", "/", ".", "..", "../..", "../../..", "pub/", "pub//a.txt/", "-la", "a.txt",
		"/../../outside/secret.txt", "../outside/secret.txt", "../../etc/passwd",
		"evil", "evil/", "/evil/secret.txt", "evilrel/x", "evilfile", "chainout1/secret.txt",
		"abs/a.txt", "latest/../../outside", "/latest/file.iso", "readme", "dangling",
		"a\x00b", "a\rb", "a\nb", "x\r\nDELE a.txt", TempPrefix + "0123456789abcdef",
		strings.Repeat("a/", 100), strings.Repeat("x", 5000), strings.Repeat("../", 100) + "outside",
		"/peek", "../peekdir/secret.iso", "/self/private/secret.iso", "up/private.txt", "latest/../../privlink",
		"/tmplink", "../tmpdir/x", ".~tmp~", "/.big.iso.Ab12Cd", ".file.tar.gz.a1B2c3", "up/self/up/escape",
		"loop1", "/abs", strings.Repeat("../self/", 50) + "private.txt",
		"../link-to-incoming/old.txt", "/abs-incoming/old.txt", "upload-link", "sublink/", "up/incoming/old.txt",
		"dotdot/old.txt", "/viabox/a.txt", "/incoming/topub/a.txt", "../incoming/old.txt", "up/up/link-to-incoming",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, name string, atomic bool) {
		checkMirror(t, name, atomic)
		checkDropBox(t, name, atomic)
		sb := newSandbox(t)
		fsys := Resolve(sb.open(t, Options{Atomic: atomic}), func() string { return "/pub" })
		check := func(err error) {
			t.Helper()
			if !strings.Contains(name, sb.base) {
				sb.checkErrText(t, err)
			}
		}
		use := func(file afero.File, err error) {
			t.Helper()
			check(err)
			if err != nil {
				return
			}
			_, err = file.Readdir(-1)
			check(err)
			_, err = io.Copy(io.Discard, file)
			check(err)
			_, err = file.Write([]byte("fuzz"))
			check(err)
			check(file.Close())
		}
		epoch := time.Unix(0, 0)

		_, err := fsys.Stat(name)
		check(err)
		use(fsys.Open(name))
		use(fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644))
		use(fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644))
		use(fsys.Create(name))
		check(fsys.Mkdir(name, 0o755))
		check(fsys.MkdirAll(name+"/sub", 0o755))
		check(fsys.Chmod(name, 0o777))
		check(fsys.Chtimes(name, epoch, epoch))
		check(fsys.Chown(name, 0, 0))
		check(fsys.Rename(name, "/moved"))
		check(fsys.Rename("/pub/a.txt", name))
		check(fsys.Remove(name))
		check(fsys.RemoveAll(name))
		sb.checkOutside(t)
	})
}

// checkMirror looks name up in /pub of a mirror tree (newMirror) as an
// anonymous session sees it: read-only, world-readable only, rsync's names
// denied, links shown as links or not. Whatever Stat, Open, Readdir and
// Readdirnames return must not be, show or lead to a private or denied file,
// nor name a disk path.
func checkMirror(t *testing.T, name string, showLinks bool) {
	t.Helper()
	sb := newMirror(t)
	var secrets []fs.FileInfo // what the session must never reach
	for _, p := range []string{"private.txt", "private/secret.iso", ".~tmp~", ".~tmp~/x", ".big.iso.Ab12Cd", "pub/.file.tar.gz.a1B2c3", "../outside/secret.txt"} {
		info, err := os.Stat(filepath.Join(sb.root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, info)
	}
	secret := func(info fs.FileInfo) bool {
		return slices.ContainsFunc(secrets, func(s fs.FileInfo) bool { return sameFile(s, info) })
	}
	deny := newMatcher(DefaultDeny())
	fsys := Resolve(ReadOnly(sb.open(t, mirrorOpts(showLinks)).WorldReadable()), func() string { return "/pub" })
	check := func(err error) {
		t.Helper()
		if !strings.Contains(name, sb.base) {
			sb.checkErrText(t, err)
		}
	}

	info, err := fsys.Stat(name)
	check(err)
	if err == nil && secret(info) {
		t.Fatalf("Stat(%q) reached a private or denied file", name)
	}
	file, err := fsys.Open(name)
	check(err)
	if err != nil {
		return
	}
	defer file.Close()
	if b, err := io.ReadAll(file); err == nil && (string(b) == "private" || string(b) == "partial" || string(b) == "secret") {
		t.Fatalf("Open(%q) read %q", name, b)
	}
	infos, err := file.Readdir(-1)
	check(err)
	for _, info := range infos {
		if deny.match(info.Name()) || strings.HasPrefix(info.Name(), TempPrefix) {
			t.Fatalf("Readdir(%q) lists the denied %s", name, info.Name())
		}
		if l, ok := info.(Link); ok && strings.Contains(l.LinkTarget(), sb.base) {
			t.Fatalf("Readdir(%q) shows the disk path %s", name, l.LinkTarget())
		}
		if _, ok := info.(Link); !ok && secret(info) {
			t.Fatalf("Readdir(%q) lists the private or denied %s", name, info.Name())
		}
	}
	if _, err := file.Seek(0, io.SeekStart); err == nil {
		names, err := file.Readdirnames(-1)
		check(err)
		for _, n := range names {
			if deny.match(n) || n == "private.txt" || n == "peek" || n == "privlink" || n == "tmplink" {
				t.Fatalf("Readdirnames(%q) lists %s", name, n)
			}
		}
	}
}

// checkDropBox looks name up in /pub of a drop box whose uploads others may
// read on disk and which has aliases elsewhere (newAliasSandbox), as an
// anonymous session sees it. Stat must not reach an upload (folders in the
// box may be seen by their own names), Open must not read one, a listing
// must not show anything in the box nor the box under another name, and
// Readdirnames must show what Readdir does. Uploading to name and making it a
// folder must change nothing that exists, in the box or out of it.
func checkDropBox(t *testing.T, name string, showLinks bool) {
	t.Helper()
	sb := newAliasSandbox(t)
	var inside []fs.FileInfo
	for _, p := range []string{"incoming", "incoming/old.txt", "incoming/sub"} {
		info, err := os.Stat(filepath.Join(sb.root, filepath.FromSlash(p)))
		if err != nil {
			t.Fatal(err)
		}
		inside = append(inside, info)
	}
	is := func(info fs.FileInfo, i int) bool { return sameFile(info, inside[i]) }
	fsys := Resolve(DropBox(sb.view(t, Options{Atomic: true, ShowLinks: showLinks}, true), "/incoming"), func() string { return "/pub" })
	check := func(err error) {
		t.Helper()
		if !strings.Contains(name, sb.base) {
			sb.checkErrText(t, err)
		}
	}

	info, err := fsys.Stat(name)
	check(err)
	if err == nil && is(info, 1) {
		t.Fatalf("Stat(%q) reached an upload", name)
	}
	if file, err := fsys.Open(name); err == nil {
		defer file.Close()
		if b, err := io.ReadAll(file); err == nil && string(b) == "old" {
			t.Fatalf("Open(%q) read an upload", name)
		}
		infos, err := file.Readdir(-1)
		check(err)
		plain := sb.open(t, Options{}) // where each entry leads, links and all
		var shown []string
		for _, info := range infos {
			shown = append(shown, info.Name())
			entry := path.Join(file.Name(), info.Name())
			target, err := plain.Stat(entry)
			if err != nil {
				t.Fatalf("Readdir(%q) shows %s, which leads nowhere: %v", name, info.Name(), err)
			}
			if is(target, 1) || is(target, 2) || (is(target, 0) && entry != "/incoming") {
				t.Fatalf("Readdir(%q) shows %s, in the box", name, info.Name())
			}
		}
		if _, err := file.Seek(0, io.SeekStart); err == nil {
			names, err := file.Readdirnames(-1)
			check(err)
			slices.Sort(names)
			slices.Sort(shown)
			if err == nil && !slices.Equal(names, shown) {
				t.Fatalf("Readdirnames(%q) = %q, Readdir shows %q", name, names, shown)
			}
		}
	} else {
		check(err)
	}
	check(storeAll(fsys, name, "fuzz"))
	check(fsys.Mkdir(name, 0o755))
	check(fsys.MkdirAll(name+"/sub", 0o755))
	sb.checkUntouched(t)
}

// sameFile is os.SameFile for infos that Fs may show under another name
// (namedInfo: a link's name, or "/").
func sameFile(a, b fs.FileInfo) bool {
	if n, ok := a.(namedInfo); ok {
		a = n.FileInfo
	}
	if n, ok := b.(namedInfo); ok {
		b = n.FileInfo
	}

	return os.SameFile(a, b)
}
