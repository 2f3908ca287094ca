package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// newDropSandbox returns a sandbox (see newSandbox) with an upload folder:
//
//	base/root/incoming/old.txt         "old", someone else's upload
//	base/root/incoming/sub/
//	base/root/incoming/topub -> ../pub in-root link out of the box
//	base/root/incoming-evil/           not the box
func newDropSandbox(t *testing.T) sandbox {
	t.Helper()
	sb := newSandbox(t)
	for _, d := range []string{"incoming/sub", "incoming-evil"} {
		if err := os.MkdirAll(filepath.Join(sb.root, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sb.root, "incoming", "old.txt"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../pub", filepath.Join(sb.root, "incoming", "topub")); err != nil {
		t.Fatal(err)
	}

	return sb
}

// dropBox returns DropBox on the sandbox's root with the box at /incoming.
func (sb sandbox) dropBox(t *testing.T, opts Options) afero.Fs {
	t.Helper()

	return DropBox(sb.open(t, opts), "/incoming")
}

// checkUntouched fails the test if an existing file in or out of the box
// changed, or anything outside the root did.
func (sb sandbox) checkUntouched(t *testing.T) {
	t.Helper()
	for name, want := range map[string]string{"incoming/old.txt": "old", "pub/a.txt": "hello"} {
		if got := diskFile(t, filepath.Join(sb.root, filepath.FromSlash(name))); got != want {
			t.Fatalf("%s holds %q, want %q", name, got, want)
		}
	}
	sb.checkOutside(t)
}

// storeAll stores content at name in one go, as a clean STOR does.
func storeAll(fsys afero.Fs, name, content string) error {
	f, err := fsys.OpenFile(name, store, os.ModePerm)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		_ = f.Close()

		return err
	}

	return f.Close()
}

func TestDropBoxUploads(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target string
		disk   string // relative to the root
	}{
		{"a new upload in the box lands", "/incoming/new.txt", "incoming/new.txt"},
		{"a new upload in a subfolder of the box lands", "/incoming/sub/new.txt", "incoming/sub/new.txt"},
		{"a relative name is taken from the root", "incoming/new.txt", "incoming/new.txt"},
	}
	for _, mode := range []struct {
		name string
		opts Options
	}{{"atomic", Options{Atomic: true}}, {"direct", Options{}}} {
		for _, tt := range tests {
			t.Run(mode.name+": "+tt.name, func(t *testing.T) {
				t.Parallel()
				sb := newDropSandbox(t)
				fsys := sb.dropBox(t, mode.opts)
				disk := filepath.Join(sb.root, filepath.FromSlash(tt.disk))
				if err := storeAll(fsys, tt.target, "first"); err != nil {
					t.Fatal(err)
				}
				if got := diskFile(t, disk); got != "first" {
					t.Fatalf("the upload holds %q, want %q", got, "first")
				}
				info, err := os.Stat(disk)
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode().Perm()&^filePerm != 0 {
					t.Errorf("the upload has mode %v, want at most %v", info.Mode(), filePerm)
				}

				// Refused at open, before the client sends any data.
				f, err := fsys.OpenFile(tt.target, store, os.ModePerm)
				sb.checkErrText(t, err)
				if !errors.Is(err, fs.ErrExist) {
					_ = closeFile(f, err)
					t.Fatalf("opening a second upload to the same name: got %v, want %v", err, fs.ErrExist)
				}
				if got := diskFile(t, disk); got != "first" {
					t.Fatalf("the second upload changed the file to %q", got)
				}
				if temps := tempFiles(t, filepath.Dir(disk)); len(temps) != 0 {
					t.Errorf("temporary files left: %q", temps)
				}
				sb.checkUntouched(t)
			})
		}
	}
}

func TestDropBoxConcurrentUploadsOfOneNameLandOnce(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	fsys := sb.dropBox(t, Options{Atomic: true})
	contents := []string{"from the first client", "from the second client"}
	// Both open before either commits: neither name exists yet.
	files := make([]afero.File, len(contents))
	for i, content := range contents {
		files[i] = startUpload(t, fsys, "/incoming/race.txt", content)
	}
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { errs[i] = f.Close() })
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		sb.checkErrText(t, err)
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatal("both uploads succeeded")
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("the losing Close: got %v, want %v", err, fs.ErrExist)
		}
	}
	if winner < 0 {
		t.Fatalf("no upload succeeded: %v", errs)
	}
	if got := diskFile(t, filepath.Join(sb.root, "incoming", "race.txt")); got != contents[winner] {
		t.Errorf("the file holds %q, want the winner's %q", got, contents[winner])
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "incoming")); len(temps) != 0 {
		t.Errorf("temporary files left: %q", temps)
	}
	sb.checkUntouched(t)
}

func TestDropBoxDirectUploadIsRefusedWhileAnotherIsRunning(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	fsys := sb.dropBox(t, Options{})
	f := startUpload(t, fsys, "/incoming/race.txt", "first")
	_, err := fsys.OpenFile("/incoming/race.txt", store, os.ModePerm)
	sb.checkErrText(t, err)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("got %v, want %v", err, fs.ErrExist)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := diskFile(t, filepath.Join(sb.root, "incoming", "race.txt")); got != "first" {
		t.Errorf("the file holds %q", got)
	}
}

func TestDropBoxAbortedUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	fsys := sb.dropBox(t, Options{Atomic: true})
	f := startUpload(t, fsys, "/incoming/new.txt", "partial")
	f.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := diskFile(t, filepath.Join(sb.root, "incoming", "new.txt")); got != "<absent>" {
		t.Errorf("an aborted upload left %q", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "incoming")); len(temps) != 0 {
		t.Errorf("temporary files left: %q", temps)
	}
	// The name is still free.
	if err := storeAll(fsys, "/incoming/new.txt", "whole"); err != nil {
		t.Fatal(err)
	}
}

func TestDropBoxPolicy(t *testing.T) {
	t.Parallel()
	list := func(name string) func(afero.Fs) error {
		return func(fsys afero.Fs) error {
			d, err := fsys.Open(name)
			if err != nil {
				return err
			}
			defer d.Close()
			_, err = d.Readdir(-1)

			return err
		}
	}
	openFile := func(name string, flag int) func(afero.Fs) error {
		return func(fsys afero.Fs) error { return closeFile(fsys.OpenFile(name, flag, 0o644)) }
	}
	stat := func(name string) func(afero.Fs) error {
		return func(fsys afero.Fs) error { _, err := fsys.Stat(name); return err }
	}
	mkdir := func(name string) func(afero.Fs) error {
		return func(fsys afero.Fs) error { return fsys.Mkdir(name, 0o755) }
	}
	mkdirAll := func(name string) func(afero.Fs) error {
		return func(fsys afero.Fs) error { return fsys.MkdirAll(name, 0o755) }
	}
	rename := func(oldname, newname string) func(afero.Fs) error {
		return func(fsys afero.Fs) error { return fsys.Rename(oldname, newname) }
	}
	when := time.Unix(1e9, 0)
	const appe, resume = os.O_WRONLY | os.O_CREATE | os.O_APPEND, os.O_WRONLY | os.O_CREATE

	tests := []struct {
		name string
		op   func(afero.Fs) error
		want error // nil: the operation succeeds
	}{
		// In the box: new files and folders only.
		{"appending to a file in the box is refused", openFile("/incoming/old.txt", appe), ErrDropBox},
		{"appending to a new name in the box is refused", openFile("/incoming/new.txt", appe), ErrDropBox},
		{"resuming an upload in the box is refused", openFile("/incoming/old.txt", resume), ErrDropBox},
		{"overwriting a file in the box says it exists", openFile("/incoming/old.txt", store), fs.ErrExist},
		{"uploading over a folder in the box says it exists", openFile("/incoming/sub", store), fs.ErrExist},
		{"creating a file in the box works", func(fsys afero.Fs) error { return closeFile(fsys.Create("/incoming/c.txt")) }, nil},
		{"creating over a file in the box says it exists", func(fsys afero.Fs) error { return closeFile(fsys.Create("/incoming/old.txt")) }, fs.ErrExist},
		{"uploading under a temporary name is not allowed", openFile("/incoming/"+TempPrefix+"x", store), ftpserver.ErrFileNameNotAllowed},
		{"downloading a file in the box is refused", func(fsys afero.Fs) error { return closeFile(fsys.Open("/incoming/old.txt")) }, ErrDropBox},
		{"opening a file in the box read-only is refused", openFile("/incoming/old.txt", os.O_RDONLY), ErrDropBox},
		{"opening a file in the box read-write is refused", openFile("/incoming/old.txt", os.O_RDWR), ErrDropBox},
		{"listing the box is refused", list("/incoming"), ErrDropBox},
		{"listing a subfolder of the box is refused", list("/incoming/sub"), ErrDropBox},
		{"listing the box with a trailing slash is refused", list("/incoming/"), ErrDropBox},
		{"stat of a file in the box says it does not exist", stat("/incoming/old.txt"), fs.ErrNotExist},
		{"stat below a file in the box says it does not exist", stat("/incoming/old.txt/x"), fs.ErrNotExist},
		{"stat of a missing name in the box says it does not exist", stat("/incoming/missing"), fs.ErrNotExist},
		{"stat of the box works", stat("/incoming"), nil},
		{"stat of a subfolder of the box works", stat("/incoming/sub"), nil},
		{"making a folder in the box works", mkdir("/incoming/new"), nil},
		{"making a folder in a subfolder of the box works", mkdir("/incoming/sub/new"), nil},
		{"making nested folders in the box works", mkdirAll("/incoming/a/b/c"), nil},
		{"making all of an existing folder in the box works", mkdirAll("/incoming/sub"), nil},
		{"making an existing folder in the box says it exists", mkdir("/incoming/sub"), fs.ErrExist},
		{"renaming in the box is refused", rename("/incoming/old.txt", "/incoming/mine.txt"), ErrDropBox},
		{"renaming out of the box is refused", rename("/incoming/old.txt", "/pub/old.txt"), ErrDropBox},
		{"renaming into the box is refused", rename("/pub/a.txt", "/incoming/a.txt"), ErrDropBox},
		{"deleting a file in the box is refused", func(fsys afero.Fs) error { return fsys.Remove("/incoming/old.txt") }, ErrDropBox},
		{"deleting a folder in the box is refused", func(fsys afero.Fs) error { return fsys.Remove("/incoming/sub") }, ErrDropBox},
		{"deleting the box is refused", func(fsys afero.Fs) error { return fsys.RemoveAll("/incoming") }, ErrDropBox},
		{"chmod in the box is refused", func(fsys afero.Fs) error { return fsys.Chmod("/incoming/old.txt", 0o666) }, ErrDropBox},
		{"chown in the box is refused", func(fsys afero.Fs) error { return fsys.Chown("/incoming/old.txt", os.Getuid(), os.Getgid()) }, ErrDropBox},
		{"chtimes in the box is refused", func(fsys afero.Fs) error { return fsys.Chtimes("/incoming/old.txt", when, when) }, ErrDropBox},

		// Symbolic links in the box lead nowhere writable.
		{"uploading through a link in the box is refused", openFile("/incoming/topub/x.txt", store), ErrDropBox},
		{"making a folder through a link in the box is refused", mkdir("/incoming/topub/d"), ErrDropBox},
		{"making nested folders through a link in the box is refused", mkdirAll("/incoming/topub/d/e"), ErrDropBox},
		{"stat of a link in the box says it does not exist", stat("/incoming/topub"), fs.ErrNotExist},
		{"stat through a link in the box says it does not exist", stat("/incoming/topub/2.4.1"), fs.ErrNotExist},
		{"downloading through a link in the box is refused", func(fsys afero.Fs) error { return closeFile(fsys.Open("/incoming/topub/a.txt")) }, ErrDropBox},

		// Everywhere else: read-only.
		{"downloading outside the box works", func(fsys afero.Fs) error { return closeFile(fsys.Open("/pub/a.txt")) }, nil},
		{"listing outside the box works", list("/pub"), nil},
		{"listing the box's parent works", list("/"), nil},
		{"stat outside the box works", stat("/pub/a.txt"), nil},
		{"uploading outside the box is refused", openFile("/pub/new.txt", store), ErrReadOnly},
		{"uploading at the root is refused", openFile("/new.txt", store), ErrReadOnly},
		{"creating outside the box is refused", func(fsys afero.Fs) error { return closeFile(fsys.Create("/pub/new.txt")) }, ErrReadOnly},
		{"appending outside the box is refused", openFile("/pub/a.txt", appe), ErrReadOnly},
		{"making a folder outside the box is refused", mkdir("/pub/d"), ErrReadOnly},
		{"making nested folders outside the box is refused", mkdirAll("/pub/d/e"), ErrReadOnly},
		{"renaming outside the box is refused", rename("/pub/a.txt", "/pub/b.txt"), ErrReadOnly},
		{"deleting outside the box is refused", func(fsys afero.Fs) error { return fsys.Remove("/pub/a.txt") }, ErrReadOnly},
		{"deleting all outside the box is refused", func(fsys afero.Fs) error { return fsys.RemoveAll("/pub") }, ErrReadOnly},
		{"chmod outside the box is refused", func(fsys afero.Fs) error { return fsys.Chmod("/pub/a.txt", 0o666) }, ErrReadOnly},
		{"chown outside the box is refused", func(fsys afero.Fs) error { return fsys.Chown("/pub/a.txt", os.Getuid(), os.Getgid()) }, ErrReadOnly},
		{"chtimes outside the box is refused", func(fsys afero.Fs) error { return fsys.Chtimes("/pub/a.txt", when, when) }, ErrReadOnly},

		// Names are matched on clean paths.
		{"a folder that merely starts with the box's name is not the box", openFile("/incoming-evil/x.txt", store), ErrReadOnly},
		{"making a folder in a look-alike folder is refused", mkdir("/incoming-evil/d"), ErrReadOnly},
		{"a look-alike folder can be listed like any other", list("/incoming-evil"), nil},
		{"dot-dot out of the box is outside", openFile("/incoming/../pub/x.txt", store), ErrReadOnly},
		{"dot-dot into the box is inside", list("/pub/../incoming"), ErrDropBox},
		{"doubled slashes into the box are inside", list("//incoming//sub"), ErrDropBox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newDropSandbox(t)
			err := tt.op(sb.dropBox(t, Options{Atomic: true}))
			sb.checkErrText(t, err)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				if p := pathOf(t, err); !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
					t.Errorf("the error names %q, want a clean virtual path", p)
				}
			}
			sb.checkUntouched(t)
			for _, dir := range []string{"pub", "incoming-evil", "."} {
				for _, name := range []string{"new.txt", "x.txt", "d", "a.txt"} {
					if dir == "pub" && name == "a.txt" {
						continue
					}
					if _, err := os.Lstat(filepath.Join(sb.root, dir, name)); err == nil {
						t.Errorf("%s/%s was created outside the box", dir, name)
					}
				}
			}
		})
	}
}

func TestDropBoxListingOfTheParentShowsTheBoxAsAFolder(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	d, err := sb.dropBox(t, Options{}).Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	infos, err := d.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Name() == "incoming" {
			if !info.IsDir() {
				t.Errorf("incoming lists as %v", info.Mode())
			}

			return
		}
	}
	t.Error("the listing of / does not show incoming")
}

func TestDropBoxAtTheRootCoversEverything(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	fsys := DropBox(sb.open(t, Options{Atomic: true}), "/")
	if err := storeAll(fsys, "/pub/new.txt", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Open("/pub/a.txt"); !errors.Is(err, ErrDropBox) {
		t.Errorf("download: got %v, want %v", err, ErrDropBox)
	}
	if err := storeAll(fsys, "/latest/x.iso", "x"); !errors.Is(err, ErrDropBox) {
		t.Errorf("upload through a link: got %v, want %v", err, ErrDropBox)
	}
}

func TestDropBoxCleansTheFolderName(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"incoming", "/incoming/", "//incoming/./sub/.."} {
		t.Run(dir+" names the box /incoming", func(t *testing.T) {
			t.Parallel()
			sb := newDropSandbox(t)
			fsys := DropBox(sb.open(t, Options{Atomic: true}), dir)
			if err := storeAll(fsys, "/incoming/new.txt", "new"); err != nil {
				t.Fatal(err)
			}
			if _, err := fsys.Open("/incoming"); !errors.Is(err, ErrDropBox) {
				t.Errorf("listing the box: got %v, want %v", err, ErrDropBox)
			}
			if err := storeAll(fsys, "/incoming-evil/new.txt", "new"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("uploading to a look-alike: got %v, want %v", err, ErrReadOnly)
			}
		})
	}
}

func TestDropBoxMakesNoFolderAboveTheBox(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	fsys := DropBox(sb.open(t, Options{}), "/up/incoming")
	if err := fsys.MkdirAll("/up/incoming/x", 0o755); !errors.Is(err, ErrDropBox) {
		t.Errorf("got %v, want %v", err, ErrDropBox)
	}
	if _, err := os.Lstat(filepath.Join(sb.root, "up")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/up was created: %v", err)
	}
}

func TestDropBoxErrorIsAPermissionError(t *testing.T) {
	t.Parallel()
	if !errors.Is(ErrDropBox, fs.ErrPermission) {
		t.Errorf("%v does not wrap fs.ErrPermission", ErrDropBox)
	}
}

func TestEngineDropBox(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	c := login(t, sb, startEngine(t, sb.dropBox(t, Options{Atomic: true})))

	conn := c.data()
	c.expect(150, "STOR /incoming/drop.txt")
	_, _ = io.WriteString(conn, "dropped")
	_ = conn.Close()
	c.expect226()
	if got := diskFile(t, filepath.Join(sb.root, "incoming", "drop.txt")); got != "dropped" {
		t.Fatalf("drop.txt = %q", got)
	}

	if msg := c.expect(550, "STOR /incoming/drop.txt"); !strings.Contains(msg, "exists") {
		t.Errorf("a second STOR replies %q, want it to say the file exists", msg)
	}
	steps := []struct {
		cmd  string
		code int
	}{
		{"APPE /incoming/drop.txt", 550},
		{"REST 3", 350},
		{"STOR /incoming/drop.txt", 550},
		{"RETR /incoming/drop.txt", 550},
		{"SIZE /incoming/drop.txt", 550},
		{"MDTM /incoming/drop.txt", 550},
		{"DELE /incoming/drop.txt", 550},
		{"RNFR /incoming/drop.txt", 550},
		{"MFMT 20000101000000 /incoming/drop.txt", 550},
		{"SITE CHMOD 777 /incoming/drop.txt", 550},
		{"LIST /incoming", 450},
		{"MKD /incoming/mine", 257},
		{"RMD /incoming/mine", 550},
		{"CWD /incoming", 250},
		{"CWD mine", 250},
		{"CWD /", 250},
		{"STOR /pub/x.txt", 550},
		{"MKD /pub/d", 550},
		{"DELE /pub/a.txt", 550},
		{"STOR /incoming/topub/x.txt", 550},
	}
	for _, s := range steps {
		c.expect(s.code, "%s", s.cmd)
	}
	if got := diskFile(t, filepath.Join(sb.root, "incoming", "drop.txt")); got != "dropped" {
		t.Errorf("drop.txt changed to %q", got)
	}
	if lines := c.list("/"); !strings.Contains(strings.Join(lines, "\n"), " incoming") {
		t.Errorf("LIST / does not show the box: %q", lines)
	}
	sb.checkUntouched(t)
}

// newAliasSandbox returns a drop sandbox (see newDropSandbox) in which
// everything may be read by others, so that only the drop box's own rules
// can hide what is in it, with aliases of the box elsewhere:
//
//	base/root/link-to-incoming -> incoming             the box under another name
//	base/root/abs-incoming     -> base/root/incoming   absolute
//	base/root/pub/upload-link  -> ../incoming/old.txt  an upload under another name
//	base/root/pub/sublink      -> ../incoming/sub      a folder in the box
//	base/root/pub/up           -> ..                   the root, so /pub/up/incoming
//	base/root/pub/dotdot       -> 2.4.1/../../incoming climbs into the box
//	base/root/viabox           -> incoming/../pub      through the box and out again
func newAliasSandbox(t *testing.T) sandbox {
	t.Helper()
	sb := newDropSandbox(t)
	for name, mode := range map[string]fs.FileMode{
		"pub": 0o755, "pub/a.txt": 0o644, "incoming": 0o755, "incoming/sub": 0o755, "incoming/old.txt": 0o644,
	} {
		if err := os.Chmod(filepath.Join(sb.root, filepath.FromSlash(name)), mode); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"link-to-incoming": "incoming",
		"abs-incoming":     filepath.Join(sb.root, "incoming"),
		"pub/upload-link":  "../incoming/old.txt",
		"pub/sublink":      "../incoming/sub",
		"pub/up":           "..",
		"pub/dotdot":       "2.4.1/../../incoming",
		"viabox":           "incoming/../pub",
	} {
		if err := os.Symlink(target, filepath.Join(sb.root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}

	return sb
}

// aliasViews are the file systems a drop box is tried on: the disk as it is,
// the view of anonymous sessions, and either with links shown as links.
func aliasViews() []struct {
	name string
	open func(*testing.T, sandbox) afero.Fs
} {
	var views []struct {
		name string
		open func(*testing.T, sandbox) afero.Fs
	}
	for _, showLinks := range []bool{false, true} {
		for _, worldReadable := range []bool{false, true} {
			name := fmt.Sprintf("links shown %t, world-readable view %t", showLinks, worldReadable)
			views = append(views, struct {
				name string
				open func(*testing.T, sandbox) afero.Fs
			}{name, func(t *testing.T, sb sandbox) afero.Fs {
				t.Helper()

				return DropBox(sb.view(t, Options{Atomic: true, ShowLinks: showLinks}, worldReadable), "/incoming")
			}})
		}
	}

	return views
}

func TestDropBoxAliasesShowNothing(t *testing.T) {
	t.Parallel()
	hidden := []string{
		"/link-to-incoming", "/link-to-incoming/", "/link-to-incoming/old.txt", "/link-to-incoming/sub",
		"/link-to-incoming/missing", "/link-to-incoming/old.txt/x", "/link-to-incoming/missing/x",
		"/link-to-incoming/topub", "/link-to-incoming/topub/a.txt", "/link-to-incoming/sub/../old.txt",
		"/abs-incoming", "/abs-incoming/old.txt", "/abs-incoming/sub",
		"/pub/upload-link", "/pub/upload-link/x", "/pub/sublink", "/pub/sublink/missing",
		"/pub/up/incoming", "/pub/up/incoming/old.txt", "/pub/up/link-to-incoming/old.txt",
		"/pub/up/pub/up/abs-incoming/old.txt", "/pub/dotdot", "/pub/dotdot/old.txt", "/pub/dotdot/sub/x",
	}
	for _, view := range aliasViews() {
		for _, name := range hidden {
			t.Run(view.name+": "+name+" is as if missing", func(t *testing.T) {
				t.Parallel()
				sb := newAliasSandbox(t)
				fsys := view.open(t, sb)
				for op, err := range map[string]error{
					"stat":               func() error { _, err := fsys.Stat(name); return err }(),
					"open":               closeFile(fsys.Open(name)),
					"openfile read-only": closeFile(fsys.OpenFile(name, os.O_RDONLY, 0)),
				} {
					sb.checkErrText(t, err)
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%s: got %v, want %v", op, err, fs.ErrNotExist)
					}
				}
				for op, err := range map[string]error{
					"upload": storeAll(fsys, name+"-new", "x"),
					"mkdir":  fsys.Mkdir(name+"-dir", 0o755),
					"remove": fsys.Remove(name),
				} {
					if err == nil {
						t.Errorf("%s: allowed", op)
					}
				}
				sb.checkUntouched(t)
			})
		}
	}
}

func TestReachesBox(t *testing.T) {
	t.Parallel()
	sb := newAliasSandbox(t)
	if err := os.Symlink("../incoming/old.txt/x", filepath.Join(sb.root, "pub", "broken")); err != nil {
		t.Fatal(err)
	}
	box := DropBox(sb.open(t, Options{}).WorldReadable(), "/incoming").(dropBox).fs
	for name, want := range map[string]bool{
		"/": false, "/pub": false, "/pub/a.txt": false, "/pub/missing": false, "/pub/a.txt/x": false,
		"/incoming-evil/x": false, "/viabox": false, "/viabox/a.txt": false, "/pub/up/pub/a.txt": false,
		"/incoming": true, "/incoming/old.txt": true, // reached by name too: DropBox asks only for other names
		"/link-to-incoming": true, "/link-to-incoming/topub/a.txt": true, "/pub/upload-link": true,
		"/pub/sublink/missing/x": true, "/pub/up/incoming": true, "/pub/dotdot/sub": true, "/abs-incoming/x": true,
		"/pub/broken": true, // stops inside the box
	} {
		if got := box.reachesBox(name); got != want {
			t.Errorf("reachesBox(%s) = %t, want %t", name, got, want)
		}
	}
	if (&Fs{}).reachesBox("/incoming") {
		t.Error("an Fs that is no drop box has one")
	}
}

func TestDropBoxAliasesOutOfTheBoxStillWork(t *testing.T) {
	t.Parallel()
	for _, view := range aliasViews() {
		t.Run(view.name, func(t *testing.T) {
			t.Parallel()
			sb := newAliasSandbox(t)
			fsys := view.open(t, sb)
			// Where a path really is decides: through the box and out is outside.
			for _, name := range []string{"/pub/a.txt", "/viabox/a.txt", "/pub/up/pub/a.txt", "/abs/a.txt"} {
				if got, err := readAll(fsys, name); err != nil || got != "hello" {
					t.Errorf("%s: %q, %v", name, got, err)
				}
			}
			for _, name := range []string{"/incoming", "/incoming/sub"} {
				if info, err := fsys.Stat(name); err != nil || !info.IsDir() {
					t.Errorf("stat %s: %v, %v; want the folder", name, info, err)
				}
			}
		})
	}
}

func TestDropBoxListingsLeaveOutAliases(t *testing.T) {
	t.Parallel()
	for _, view := range aliasViews() {
		t.Run(view.name, func(t *testing.T) {
			t.Parallel()
			sb := newAliasSandbox(t)
			fsys := view.open(t, sb)
			for dir, want := range map[string]map[string]bool{
				"/":       {"incoming": true, "pub": true, "viabox": true, "link-to-incoming": false, "abs-incoming": false},
				"/pub":    {"a.txt": true, "upload-link": false, "sublink": false},
				"/pub/up": {"pub": true, "incoming": false, "link-to-incoming": false, "abs-incoming": false},
			} {
				got := listing(t, fsys, dir)
				for name, shown := range want {
					if _, ok := got[name]; ok != shown {
						t.Errorf("the listing of %s shows %s %t, want %t: %v", dir, name, ok, shown, got)
					}
				}
			}
			if got := listing(t, fsys, "/"); got["incoming"] != "d" {
				t.Errorf("the box lists as %q, want a folder", got["incoming"])
			}
		})
	}
}

func TestDropBoxUnderALinkStaysListedUnderItsName(t *testing.T) {
	t.Parallel()
	sb := newDropSandbox(t)
	// The box is /incoming, a link to where the uploads really are.
	if err := os.Rename(filepath.Join(sb.root, "incoming"), filepath.Join(sb.root, "pub", "uploads")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pub/uploads", filepath.Join(sb.root, "incoming")); err != nil {
		t.Fatal(err)
	}
	fsys := sb.dropBox(t, Options{ShowLinks: true})
	if got := listing(t, fsys, "/"); got["incoming"] != "l pub/uploads d" {
		t.Errorf("the box lists as %q, want the link", got["incoming"])
	}
	if got := listing(t, fsys, "/pub"); got["uploads"] != "" {
		t.Errorf("the box's folder lists under another name as %q", got["uploads"])
	}
	for _, name := range []string{"/pub/uploads", "/pub/uploads/old.txt"} {
		if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat %s: %v, want %v", name, err, fs.ErrNotExist)
		}
	}
	if err := storeAll(fsys, "/incoming/new.txt", "new"); err != nil {
		t.Fatal(err)
	}
	if got := diskFile(t, filepath.Join(sb.root, "pub", "uploads", "new.txt")); got != "new" {
		t.Errorf("the upload holds %q", got)
	}
}

func TestDropBoxUploadsAreUnreadableToOthers(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		t.Run(fmt.Sprintf("atomic %t", atomic), func(t *testing.T) {
			t.Parallel()
			sb := newDropSandbox(t)
			fsys := sb.dropBox(t, Options{Atomic: atomic})
			if err := fsys.Mkdir("/incoming/d", 0o777); err != nil {
				t.Fatal(err)
			}
			if err := fsys.MkdirAll("/incoming/e/f", 0o777); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.OpenFile("/incoming/d/new.txt", store, 0o777)
			if err := closeFile(f, err); err != nil {
				t.Fatal(err)
			}
			// Mode bits, not access(2): the test means the same as root.
			for name, want := range map[string]fs.FileMode{
				"incoming/d": fs.ModeDir | 0o700, "incoming/e": fs.ModeDir | 0o700, "incoming/e/f": fs.ModeDir | 0o700,
				"incoming/d/new.txt": 0o600,
			} {
				info, err := os.Lstat(filepath.Join(sb.root, filepath.FromSlash(name)))
				if err != nil {
					t.Fatal(err)
				}
				if info.Mode() != want {
					t.Errorf("%s has mode %v, want %v", name, info.Mode(), want)
				}
			}
		})
	}
}

func TestDropBoxFoldersItMadeStayUsableInAWorldReadableView(t *testing.T) {
	t.Parallel()
	for _, boxMode := range []fs.FileMode{0o755, 0o733} {
		t.Run(fmt.Sprintf("box %#o", boxMode), func(t *testing.T) {
			t.Parallel()
			sb := newDropSandbox(t)
			if err := os.Chmod(filepath.Join(sb.root, "incoming"), boxMode); err != nil {
				t.Fatal(err)
			}
			fsys := DropBox(sb.open(t, Options{Atomic: true}).WorldReadable(), "/incoming")
			steps := []struct {
				name string
				err  error
			}{
				{"mkdir a", fsys.Mkdir("/incoming/a", 0o755)},
				{"mkdir a/b", fsys.Mkdir("/incoming/a/b", 0o755)},
				{"store a/b/x", storeAll(fsys, "/incoming/a/b/x", "x")},
				{"store a/b/x again", func() error {
					if err := storeAll(fsys, "/incoming/a/b/x", "y"); !errors.Is(err, fs.ErrExist) {
						return fmt.Errorf("got %w, want %w", err, fs.ErrExist)
					}

					return nil
				}()},
				{"stat a/b", func() error { _, err := fsys.Stat("/incoming/a/b"); return err }()},
				{"stat a/b/x is refused", func() error {
					if _, err := fsys.Stat("/incoming/a/b/x"); !errors.Is(err, fs.ErrNotExist) {
						return fmt.Errorf("got %w, want %w", err, fs.ErrNotExist)
					}

					return nil
				}()},
			}
			for _, s := range steps {
				if s.err != nil {
					t.Errorf("%s: %v", s.name, s.err)
				}
			}
			if got := diskFile(t, filepath.Join(sb.root, "incoming", "a", "b", "x")); got != "x" {
				t.Errorf("x holds %q", got)
			}
		})
	}
}

// TestDropBoxDownloadWalksOnce: a download from outside the box looks its
// path up once, in the walk that opens the file (which also tells whether the
// path leads into the box): it costs what ReadOnly's open costs, plus the
// lookup of the box's own folder, and not a second walk of the path.
// Not parallel: it counts allocations.
func TestDropBoxDownloadWalksOnce(t *testing.T) {
	sb := newDropSandbox(t)
	fsys := sb.open(t, Options{})
	open := func(f afero.Fs) func() {
		return func() {
			file, err := f.OpenFile("/pub/2.4.1/file.iso", os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_ = file.Close()
		}
	}

	viaBox := testing.AllocsPerRun(100, open(DropBox(fsys, "/incoming")))
	viaReadOnly := testing.AllocsPerRun(100, open(ReadOnly(fsys)))
	boxLookup := testing.AllocsPerRun(100, func() { _, _ = fsys.Stat("/incoming") })

	if viaBox > viaReadOnly+boxLookup {
		t.Errorf("a download through the drop box costs %v allocations, ReadOnly's %v plus %v for the box's "+
			"lookup: the path is walked twice", viaBox, viaReadOnly, boxLookup)
	}
}
