package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// newMirror returns a sandbox holding what real mirror trees hold (files
// 0644 and folders 0755 unless said otherwise):
//
//	base/outside/secret.txt              "secret" (0600)
//	base/root/pub/a.txt                  "hello"
//	base/root/pub/1.2.3/file.iso         "iso"
//	base/root/pub/latest  -> 1.2.3       relative link to a folder
//	base/root/pub/up      -> ..          link to an ancestor
//	base/root/pub/.file.tar.gz.a1B2c3    rsync partial
//	base/root/readme      -> pub/a.txt   link to a file
//	base/root/pubdir      -> pub         link to a folder
//	base/root/abs         -> base/root/pub/a.txt   absolute, inside the root
//	base/root/dangling    -> nowhere
//	base/root/escape      -> ../outside  leaves the root
//	base/root/loop1 -> loop2 -> loop1    a loop
//	base/root/self        -> .
//	base/root/private.txt                0600
//	base/root/private/                   0700
//	base/root/private/secret.iso         "private"
//	base/root/peek        -> private/secret.iso   into the 0700 folder
//	base/root/peekdir     -> private              to the 0700 folder
//	base/root/privlink    -> private.txt          to the 0600 file
//	base/root/.~tmp~/x                   rsync --delay-updates
//	base/root/.big.iso.Ab12Cd            rsync partial
//	base/root/tmplink     -> .~tmp~/x    into a denied name
//	base/root/tmpdir      -> .~tmp~      to a denied folder
//	base/root/.message, .htaccess, .well-known/x   ordinary dotfiles
//
// Every private or denied file holds "private" or "partial".
func newMirror(t *testing.T) sandbox {
	t.Helper()
	base := t.TempDir()
	sb := sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	dirs := map[string]fs.FileMode{
		sb.outside: 0o755, sb.root: 0o755,
		"pub": 0o755, "pub/1.2.3": 0o755, "private": 0o700, ".~tmp~": 0o755, ".well-known": 0o755,
	}
	files := map[string]struct {
		content string
		mode    fs.FileMode
	}{
		"pub/a.txt":               {"hello", 0o644},
		"pub/1.2.3/file.iso":      {"iso", 0o644},
		"pub/.file.tar.gz.a1B2c3": {"partial", 0o644},
		"private.txt":             {"private", 0o600},
		"private/secret.iso":      {"private", 0o644},
		".~tmp~/x":                {"partial", 0o644},
		".big.iso.Ab12Cd":         {"partial", 0o644},
		".message":                {"welcome", 0o644},
		".htaccess":               {"deny from none", 0o644},
		".well-known/x":           {"known", 0o644},
		"../outside/secret.txt":   {"secret", 0o600},
	}
	links := map[string]string{
		"pub/latest": "1.2.3",
		"pub/up":     "..",
		"readme":     "pub/a.txt",
		"pubdir":     "pub",
		"abs":        filepath.Join(sb.root, "pub", "a.txt"),
		"dangling":   "nowhere",
		"escape":     "../outside",
		"loop1":      "loop2",
		"loop2":      "loop1",
		"self":       ".",
		"peek":       "private/secret.iso",
		"peekdir":    "private",
		"privlink":   "private.txt",
		"tmplink":    ".~tmp~/x",
		"tmpdir":     ".~tmp~",
	}
	disk := func(name string) string {
		if filepath.IsAbs(name) {
			return name
		}

		return filepath.Join(sb.root, filepath.FromSlash(name))
	}
	for _, name := range slices.Sorted(maps.Keys(dirs)) { // parents first
		if err := os.MkdirAll(disk(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range files {
		if err := os.WriteFile(disk(name), []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(disk(name), f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := os.Symlink(target, disk(name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range dirs {
		if err := os.Chmod(disk(name), mode); err != nil {
			t.Fatal(err)
		}
	}

	return sb
}

// mirrorOpts are the options of a mirror: rsync's temporary names denied.
func mirrorOpts(showLinks bool) Options {
	return Options{Atomic: true, ShowLinks: showLinks, Deny: DefaultDeny()}
}

// view returns the Fs on the sandbox's root, or its world-readable view.
func (sb sandbox) view(t *testing.T, opts Options, worldReadable bool) *Fs {
	t.Helper()
	fsys := sb.open(t, opts)
	if worldReadable {
		return fsys.WorldReadable()
	}

	return fsys
}

// listing returns what Readdir shows in dir, each entry described as "d"
// (folder), "-" (file) or "l <target> d|-" (a Link), and checks that
// Readdirnames shows the same names and that every Link is what a listing
// needs.
func listing(t *testing.T, fsys afero.Fs, dir string) map[string]string {
	t.Helper()
	f, err := fsys.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	infos, err := f.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, info := range infos {
		kind := map[bool]string{true: "d", false: "-"}
		switch l, ok := info.(Link); {
		case ok:
			got[info.Name()] = "l " + l.LinkTarget() + " " + kind[l.TargetIsDir()]
			if l.Mode()&fs.ModeSymlink == 0 || l.Mode().Perm() != 0o777 || l.Size() != int64(len(l.LinkTarget())) {
				t.Errorf("%s: mode %v size %d, want a link 0777 of size %d", l.Name(), l.Mode(), l.Size(), len(l.LinkTarget()))
			}
		case info.Mode()&fs.ModeSymlink != 0:
			t.Errorf("%s: a symbolic link that is not a Link", info.Name())
		default:
			got[info.Name()] = kind[info.IsDir()]
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	if want := slices.Sorted(maps.Keys(got)); !slices.Equal(names, want) {
		t.Errorf("Readdirnames(%s) = %q, Readdir shows %q", dir, names, want)
	}

	return got
}

func TestMirrorListings(t *testing.T) {
	t.Parallel()
	// What every mode lists the same way: rsync's temporary names, links
	// that dangle, leave the root, loop or lead to a denied name are never
	// listed; ordinary dotfiles and the 0700 folder itself always are.
	common := map[string]string{
		"pub": "d", "private": "d", ".message": "-", ".htaccess": "-", ".well-known": "d",
	}
	tests := []struct {
		name          string
		showLinks     bool
		worldReadable bool
		want          map[string]string // besides common
	}{
		// As targets, a link to its own folder (self -> .) would be an
		// endless tree: it is left out.
		{"links shown as their targets", false, false, map[string]string{
			"readme": "-", "pubdir": "d", "abs": "-", "private.txt": "-",
			"peek": "-", "peekdir": "d", "privlink": "-",
		}},
		{"links shown as links", true, false, map[string]string{
			"readme": "l pub/a.txt -", "pubdir": "l pub d", "abs": "l /pub/a.txt -", "self": "l . d",
			"private.txt": "-", "peek": "l private/secret.iso -", "peekdir": "l private d", "privlink": "l private.txt -",
		}},
		{"world-readable, links shown as their targets", false, true, map[string]string{
			"readme": "-", "pubdir": "d", "abs": "-", "peekdir": "d",
		}},
		{"world-readable, links shown as links", true, true, map[string]string{
			"readme": "l pub/a.txt -", "pubdir": "l pub d", "abs": "l /pub/a.txt -", "self": "l . d", "peekdir": "l private d",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newMirror(t)
			fsys := sb.view(t, mirrorOpts(tt.showLinks), tt.worldReadable)
			want := maps.Clone(common)
			maps.Copy(want, tt.want)
			if got := listing(t, fsys, "/"); !maps.Equal(got, want) {
				t.Errorf("/ lists\n%v\nwant\n%v", got, want)
			}
			// up -> .. leads above its folder: as a target it is left out.
			wantPub := map[string]string{"a.txt": "-", "1.2.3": "d", "latest": "d"}
			if tt.showLinks {
				wantPub["latest"], wantPub["up"] = "l 1.2.3 d", "l .. d"
			}
			for _, dir := range []string{"/pub", "/pubdir", "/self/pub"} {
				if got := listing(t, fsys, dir); !maps.Equal(got, wantPub) {
					t.Errorf("%s lists %v, want %v", dir, got, wantPub)
				}
			}
			// The 0700 folder is listed, but shows nothing inside to a world-readable view.
			wantPrivate := map[string]string{"secret.iso": "-"}
			if tt.worldReadable {
				wantPrivate = map[string]string{}
			}
			for _, dir := range []string{"/private", "/peekdir"} {
				if got := listing(t, fsys, dir); !maps.Equal(got, wantPrivate) {
					t.Errorf("%s lists %v, want %v", dir, got, wantPrivate)
				}
			}
		})
	}
}

func TestMirrorLookups(t *testing.T) {
	t.Parallel()
	const hidden = "<missing>" // Stat and Open fail with fs.ErrNotExist
	const folder = "<folder>"
	tests := []struct {
		name, path string
		want       string // the content read, folder, or hidden
		wantPublic string // the same for a world-readable view ("": as want)
	}{
		{"a link to a file is read through", "/readme", "hello", ""},
		{"a relative link to a folder is entered", "/pub/latest/file.iso", "iso", ""},
		{"a link to a folder is entered", "/pubdir/1.2.3/file.iso", "iso", ""},
		{"an absolute link inside the root is followed", "/abs", "hello", ""},
		{"a link to the root leads to the root", "/self/self/pub/a.txt", "hello", ""},
		{"a link to an ancestor leads to it", "/pub/up/pub/up/readme", "hello", ""},
		{"a link to an ancestor is a folder", "/pub/up", folder, ""},
		{"a dangling link is missing", "/dangling", hidden, ""},
		{"a link leaving the root is missing", "/escape", hidden, ""},
		{"a file behind a link leaving the root is missing", "/escape/secret.txt", hidden, ""},
		{"a loop of links is missing", "/loop1", hidden, ""},
		{"rsync's delay-updates folder is missing", "/.~tmp~", hidden, ""},
		{"a file in rsync's delay-updates folder is missing", "/.~tmp~/x", hidden, ""},
		{"an rsync partial is missing", "/.big.iso.Ab12Cd", hidden, ""},
		{"an rsync partial in a folder is missing", "/pub/.file.tar.gz.a1B2c3", hidden, ""},
		{"a link to a denied file is missing", "/tmplink", hidden, ""},
		{"a file through a link to a denied folder is missing", "/tmpdir/x", hidden, ""},
		{"an ordinary dotfile is served", "/.message", "welcome", ""},
		{"a file in an ordinary dot-folder is served", "/.well-known/x", "known", ""},
		{"a 0600 file is private", "/private.txt", "private", hidden},
		{"a link to a 0600 file is private", "/privlink", "private", hidden},
		{"a 0700 folder itself is there", "/private", folder, ""},
		{"a link to a 0700 folder is there", "/peekdir", folder, ""},
		{"a file in a 0700 folder is private", "/private/secret.iso", "private", hidden},
		{"a link into a 0700 folder is private", "/peek", "private", hidden},
		{"a file through a link to a 0700 folder is private", "/peekdir/secret.iso", "private", hidden},
		{"a file through the root's alias is private", "/self/private/secret.iso", "private", hidden},
	}
	for _, showLinks := range []bool{false, true} {
		for _, worldReadable := range []bool{false, true} {
			sb := newMirror(t)
			fsys := sb.view(t, mirrorOpts(showLinks), worldReadable)
			for _, tt := range tests {
				want := tt.want
				if worldReadable && tt.wantPublic != "" {
					want = tt.wantPublic
				}
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					info, statErr := fsys.Stat(tt.path)
					got, openErr := readAll(fsys, tt.path)
					for _, err := range []error{statErr, openErr} {
						sb.checkErrText(t, err)
						switch {
						case want == hidden && !errors.Is(err, fs.ErrNotExist):
							t.Fatalf("got %v, want fs.ErrNotExist", err)
						case want == hidden && pathOf(t, err) != tt.path:
							t.Errorf("error %v does not name %s", err, tt.path)
						case want != hidden && err != nil:
							t.Fatalf("got %v, want success", err)
						}
					}
					if want == hidden {
						return
					}
					if got != want || info.IsDir() != (want == folder) {
						t.Errorf("read %q (folder %t), want %q", got, info.IsDir(), want)
					}
				})
			}
		}
	}
}

// readAll returns the content of the file name, or "<folder>" if it is one.
func readAll(fsys afero.Fs, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return "<folder>", nil
	}
	b, err := io.ReadAll(f)

	return string(b), err
}

func TestWorldReadableHoldsWhoeverRunsWharf(t *testing.T) {
	t.Parallel()
	sb := newMirror(t)
	// wharf itself can read the private file (as its owner, or as root, which
	// CI runs as), and the view hides it all the same: it reads mode bits.
	if got := diskFile(t, filepath.Join(sb.root, "private.txt")); got != "private" {
		t.Fatalf("cannot read private.txt on disk: %q", got)
	}
	fsys := sb.open(t, mirrorOpts(true))
	public := fsys.WorldReadable()
	if _, err := public.Stat("/private.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat as %d: %v, want fs.ErrNotExist", os.Geteuid(), err)
	}
	if os.Geteuid() == 0 {
		// Owned by someone else and unreadable to others: root reads it, the view does not.
		name := filepath.Join(sb.root, "pub", "theirs.txt")
		if err := os.WriteFile(name, []byte("theirs"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(name, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := public.Stat("/pub/theirs.txt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("root: stat of another user's 0640 file: %v, want fs.ErrNotExist", err)
		}
	}
	// The view shares the root: closing it leaves the Fs working.
	if err := public.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat("/private.txt"); err != nil {
		t.Errorf("the Fs after its view was closed: %v", err)
	}
}

func TestWorldReadableFolderListsEmpty(t *testing.T) {
	t.Parallel()
	sb := newMirror(t)
	fsys := sb.open(t, mirrorOpts(false)).WorldReadable()
	d, err := fsys.Open("/private")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if infos, err := d.Readdir(10); len(infos) != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("Readdir(10) = %v, %v, want nothing and io.EOF", infos, err)
	}
	if names, err := d.Readdirnames(10); len(names) != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("Readdirnames(10) = %q, %v, want nothing and io.EOF", names, err)
	}
}

func TestDeniedNamesCannotBeUsed(t *testing.T) {
	t.Parallel()
	store := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	epoch := time.Unix(0, 0)
	tests := []struct {
		name string
		op   func(afero.Fs) error
		want error
		path string // the virtual path the error names
	}{
		{"stat", func(fsys afero.Fs) error { _, err := fsys.Stat("/.~tmp~/x"); return err }, fs.ErrNotExist, "/.~tmp~/x"},
		{"remove", func(fsys afero.Fs) error { return fsys.Remove("/.big.iso.Ab12Cd") }, fs.ErrNotExist, "/.big.iso.Ab12Cd"},
		{"chmod", func(fsys afero.Fs) error { return fsys.Chmod("/.~tmp~", 0o777) }, fs.ErrNotExist, "/.~tmp~"},
		{"chtimes", func(fsys afero.Fs) error { return fsys.Chtimes("/pub/.file.tar.gz.a1B2c3", epoch, epoch) }, fs.ErrNotExist, "/pub/.file.tar.gz.a1B2c3"},
		{"chmod through a link", func(fsys afero.Fs) error { return fsys.Chmod("/tmplink", 0o777) }, fs.ErrNotExist, "/tmplink"},
		{"remove through a link", func(fsys afero.Fs) error { return fsys.Remove("/tmpdir/x") }, fs.ErrNotExist, "/tmpdir/x"},
		{"upload", func(fsys afero.Fs) error { return closeFile(fsys.OpenFile("/pub/.a.iso.Zz9Zz9", store, 0o644)) }, ftpserver.ErrFileNameNotAllowed, "/pub/.a.iso.Zz9Zz9"},
		{"overwrite", func(fsys afero.Fs) error { return closeFile(fsys.OpenFile("/.big.iso.Ab12Cd", store, 0o644)) }, ftpserver.ErrFileNameNotAllowed, "/.big.iso.Ab12Cd"},
		{"upload into a denied folder", func(fsys afero.Fs) error { return closeFile(fsys.Create("/.~tmp~/new")) }, ftpserver.ErrFileNameNotAllowed, "/.~tmp~/new"},
		{"upload through a link to a denied folder", func(fsys afero.Fs) error { return closeFile(fsys.OpenFile("/tmpdir/new", store, 0o644)) }, fs.ErrNotExist, "/tmpdir/new"},
		{"mkdir", func(fsys afero.Fs) error { return fsys.Mkdir("/pub/.~tmp~", 0o755) }, ftpserver.ErrFileNameNotAllowed, "/pub/.~tmp~"},
		{"mkdirall", func(fsys afero.Fs) error { return fsys.MkdirAll("/pub/.~tmp~/a", 0o755) }, ftpserver.ErrFileNameNotAllowed, "/pub/.~tmp~/a"},
		{"mkdir through a link to a denied folder", func(fsys afero.Fs) error { return fsys.Mkdir("/tmpdir/d", 0o755) }, fs.ErrNotExist, "/tmpdir/d"},
	}
	for _, atomic := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				sb := newMirror(t)
				opts := mirrorOpts(true)
				opts.Atomic = atomic
				err := tt.op(sb.open(t, opts))
				sb.checkErrText(t, err)
				if !errors.Is(err, tt.want) || pathOf(t, err) != tt.path {
					t.Fatalf("got %v, want %v naming %s", err, tt.want, tt.path)
				}
				for _, name := range []string{".~tmp~/x", ".big.iso.Ab12Cd", "pub/.file.tar.gz.a1B2c3"} {
					if got := diskFile(t, filepath.Join(sb.root, filepath.FromSlash(name))); got != "partial" {
						t.Errorf("%s holds %q", name, got)
					}
				}
				for _, name := range []string{".~tmp~/new", "pub/.a.iso.Zz9Zz9", ".~tmp~/d", "pub/.~tmp~"} {
					if got := diskFile(t, filepath.Join(sb.root, filepath.FromSlash(name))); got != "<absent>" {
						t.Errorf("%s was created", name)
					}
				}
			})
		}
	}
	t.Run("renames", func(t *testing.T) {
		t.Parallel()
		sb := newMirror(t)
		fsys := sb.open(t, mirrorOpts(true))
		var le *os.LinkError
		if err := fsys.Rename("/.big.iso.Ab12Cd", "/big.iso"); !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &le) {
			t.Errorf("rename from a denied name: %v", err)
		}
		if err := fsys.Rename("/pub/a.txt", "/pub/.a.txt.Ab12Cd"); !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
			t.Errorf("rename to a denied name: %v", err)
		}
		if err := fsys.Rename("/pub/a.txt", "/tmpdir/a.txt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("rename through a link to a denied folder: %v", err)
		}
		if err := fsys.RemoveAll("/.~tmp~"); err != nil {
			t.Errorf("removeall of a denied folder: %v, want nil as for a missing one", err)
		}
		if got := diskFile(t, filepath.Join(sb.root, ".~tmp~", "x")); got != "partial" {
			t.Errorf(".~tmp~/x holds %q", got)
		}
	})
}

func TestOpenRefusesABadDenyPattern(t *testing.T) {
	t.Parallel()
	sb := newMirror(t)
	if fsys, err := Open(sb.root, Options{Deny: []string{".~tmp~", "[a-"}}); err == nil {
		_ = fsys.Close()
		t.Fatal("Open accepted the pattern [a-")
	}
}

func TestAbsoluteLinksNameTheRootByEitherPath(t *testing.T) {
	t.Parallel()
	sb := newMirror(t)
	alias := filepath.Join(sb.base, "alias") // base/alias -> base/root
	if err := os.Symlink(sb.root, alias); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(alias) })
	for name, target := range map[string]string{
		"viaalias": filepath.Join(alias, "pub", "a.txt"),
		"viaroot":  filepath.Join(sb.root, "pub", "a.txt"),
		"climbs":   filepath.Join(sb.root, "..", "outside", "secret.txt"),
		"rootonly": sb.root,
	} {
		if err := os.Symlink(target, filepath.Join(sb.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := Open(alias, mirrorOpts(true))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	got := listing(t, fsys, "/")
	for name, want := range map[string]string{
		"viaalias": "l /pub/a.txt -", "viaroot": "l /pub/a.txt -", "rootonly": "l / d", "climbs": "",
	} {
		if got[name] != want {
			t.Errorf("%s lists as %q, want %q", name, got[name], want)
		}
	}
	if b, err := afero.ReadFile(fsys, "/viaalias"); err != nil || string(b) != "hello" {
		t.Errorf("read through an absolute link: %q, %v", b, err)
	}
	if _, err := fsys.Stat("/climbs"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an absolute link climbing out: %v, want fs.ErrNotExist", err)
	}
}

func TestDropBoxInAWorldReadableView(t *testing.T) {
	t.Parallel()
	sb := newMirror(t)
	incoming := filepath.Join(sb.root, "incoming")
	if err := os.Mkdir(incoming, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(incoming, 0o733); err != nil { // others may write, not list
		t.Fatal(err)
	}
	for _, atomic := range []bool{false, true} {
		opts := mirrorOpts(false)
		opts.Atomic = atomic
		fsys := DropBox(sb.open(t, opts).WorldReadable(), "/incoming")
		name := "/incoming/up" + map[bool]string{false: "-direct", true: "-atomic"}[atomic]
		if err := storeAll(fsys, name, "uploaded"); err != nil {
			t.Fatalf("upload into a 0733 folder: %v", err)
		}
		if err := storeAll(fsys, name, "again"); !errors.Is(err, fs.ErrExist) {
			t.Errorf("a second upload to the name: %v, want fs.ErrExist", err)
		}
		if err := fsys.Mkdir(name+".d", 0o755); err != nil {
			t.Errorf("mkdir in a 0733 folder: %v", err)
		}
		if _, err := fsys.Stat("/private.txt"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("outside the box, the view still hides: %v", err)
		}
		if got := diskFile(t, filepath.Join(sb.root, filepath.FromSlash(name))); got != "uploaded" {
			t.Errorf("%s holds %q", name, got)
		}
	}
}
