package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

func TestOpenRefusesAMissingDirectoryOrAFile(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	for _, dir := range []string{filepath.Join(sb.root, "missing"), filepath.Join(sb.root, "pub", "a.txt")} {
		if fsys, err := Open(dir, Options{}); err == nil {
			_ = fsys.Close()
			t.Errorf("Open(%q) succeeded", dir)
		}
	}
}

func TestConfinement(t *testing.T) {
	t.Parallel()
	write := os.O_WRONLY | os.O_CREATE
	stat := func(name string) func(afero.Fs) error {
		return func(fsys afero.Fs) error { _, err := fsys.Stat(name); return err }
	}
	open := func(name string, flag int) func(afero.Fs) error {
		return func(fsys afero.Fs) error {
			f, err := fsys.OpenFile(name, flag, 0o644)
			if err == nil {
				_, _ = f.Write([]byte("x"))
				err = f.Close()
			}

			return err
		}
	}
	tests := []struct {
		name string
		cwd  string
		op   func(afero.Fs) error
		want error // nil: the operation succeeds
	}{
		// A link that leaves the root is as missing as a dangling one: nothing
		// tells the client what is behind it.
		{"dot-dot above the root stays at the root", "/", stat("../../.."), nil},
		{"dot-dot at depth stays inside", "/pub/2.4.1", stat("../../../../pub/a.txt"), nil},
		{"dot-dot cannot reach a sibling of the root", "/pub", open("../../outside/secret.txt", os.O_RDONLY), fs.ErrNotExist},
		{"an absolute path names a path inside the root", "/pub", open("/../../etc/passwd", os.O_RDONLY), fs.ErrNotExist},
		{"an absolute escaping link cannot be stat'ed", "/", stat("/evil"), fs.ErrNotExist},
		{"an absolute escaping link cannot be entered", "/", stat("evil/"), fs.ErrNotExist},
		{"a relative escaping link cannot be stat'ed", "/", stat("evilrel"), fs.ErrNotExist},
		{"a file behind an escaping link cannot be read", "/", open("/evil/secret.txt", os.O_RDONLY), fs.ErrNotExist},
		{"an escaping file link cannot be read", "/", open("/evilfile", os.O_RDONLY), fs.ErrNotExist},
		{"an escaping file link cannot be overwritten in place", "/", open("/evilfile", write), fs.ErrNotExist},
		{"an escaping file link cannot be truncated atomically", "/", open("/evilfile", write|os.O_TRUNC), fs.ErrNotExist},
		{"a file cannot be created behind an escaping link", "/", open("/evil/new.txt", write), fs.ErrNotExist},
		{"a file cannot be uploaded behind an escaping link", "/", open("/evilrel/new.txt", write|os.O_TRUNC), fs.ErrNotExist},
		{"an escaping chain cannot be followed", "/", open("/chainout1/secret.txt", os.O_RDONLY), fs.ErrNotExist},
		{"an absolute link into the root's own disk path leads inside the root", "/", stat("/abs/a.txt"), nil},
		{"a dangling link does not exist", "/", stat("/dangling"), fs.ErrNotExist},
		{"an in-root directory link can be entered", "/", stat("/latest/file.iso"), nil},
		{"an in-root file link can be read", "/", open("/readme", os.O_RDONLY), nil},
		{"an in-root chain can be followed", "/", open("/chain1/a.txt", os.O_RDONLY), nil},
		{"mkdir behind an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.Mkdir("/evil/d", 0o755) }, fs.ErrNotExist},
		{"mkdirall behind an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.MkdirAll("/evilrel/d/e", 0o755) }, fs.ErrNotExist},
		{"remove behind an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.Remove("/evil/secret.txt") }, fs.ErrNotExist},
		{"removeall behind an escaping link removes nothing", "/", func(fsys afero.Fs) error { return fsys.RemoveAll("/evilrel/secret.txt") }, nil},
		{"rename out through an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.Rename("/pub/a.txt", "/evil/a.txt") }, fs.ErrNotExist},
		{"rename in through an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.Rename("/evil/secret.txt", "/stolen.txt") }, fs.ErrNotExist},
		{"chmod behind an escaping link is refused", "/", func(fsys afero.Fs) error { return fsys.Chmod("/evil/secret.txt", 0o777) }, fs.ErrNotExist},
		{"chtimes behind an escaping link is refused", "/", func(fsys afero.Fs) error {
			return fsys.Chtimes("/evilfile", time.Unix(0, 0), time.Unix(0, 0))
		}, fs.ErrNotExist},
		{"chown is refused everywhere", "/", func(fsys afero.Fs) error { return fsys.Chown("/pub/a.txt", 0, 0) }, fs.ErrPermission},
		{"the root itself cannot be removed", "/", func(fsys afero.Fs) error { return fsys.RemoveAll("..") }, fs.ErrPermission},
		{"the root itself cannot be renamed", "/pub", func(fsys afero.Fs) error { return fsys.Rename("..", "/x") }, fs.ErrPermission},
	}
	for _, atomic := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				sb := newSandbox(t)
				fsys := Resolve(sb.open(t, Options{Atomic: atomic}), func() string { return tt.cwd })
				err := tt.op(fsys)
				sb.checkErrText(t, err)
				switch {
				case tt.want == nil && err != nil:
					t.Fatalf("got %v, want success", err)
				case tt.want != nil && !errors.Is(err, tt.want):
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				sb.checkOutside(t)
			})
		}
	}
}

func TestListingShowsLinksByWhereTheyLead(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{})
	d, err := fsys.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	infos, err := d.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]fs.FileMode{}
	for _, info := range infos {
		got[info.Name()] = info.Mode().Type()
		if _, ok := info.(Link); ok {
			t.Errorf("%s is listed as a link without ShowLinks", info.Name())
		}
	}
	// Links that leave the root or dangle are not listed at all.
	want := map[string]fs.FileMode{
		"pub":    fs.ModeDir,
		"latest": fs.ModeDir, // followed: clients can CWD into it
		"chain1": fs.ModeDir,
		"chain2": fs.ModeDir,
		"abs":    fs.ModeDir, // absolute, but inside the root's folder on disk
		"readme": 0,          // followed: a regular file
	}
	if !maps.Equal(got, want) {
		t.Errorf("listing = %v, want %v", got, want)
	}
	for _, info := range infos {
		if info.Name() == "readme" && info.Size() != int64(len("hello")) {
			t.Errorf("readme size = %d, want the target's %d", info.Size(), len("hello"))
		}
	}
}

func TestStat(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{})
	tests := []struct {
		name, wantName string
		wantDir        bool
	}{
		{"/", "/", true},
		{"", "/", true},
		{"/latest", "latest", true},
		{"/latest/", "latest", true},
		{"/readme", "readme", false},
		{"/pub/a.txt", "a.txt", false},
	}
	for _, tt := range tests {
		t.Run("stat of "+tt.name+" reports "+tt.wantName, func(t *testing.T) {
			t.Parallel()
			info, err := fsys.Stat(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if info.Name() != tt.wantName || info.IsDir() != tt.wantDir {
				t.Errorf("got name %q dir %t, want %q dir %t", info.Name(), info.IsDir(), tt.wantName, tt.wantDir)
			}
		})
	}
}

func TestDownloadsAreBareFiles(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{Atomic: true})
	for _, open := range []struct {
		how string
		fn  func(string) (afero.File, error)
	}{
		{"open", fsys.Open},
		{"openfile read-only", func(name string) (afero.File, error) { return fsys.OpenFile(name, os.O_RDONLY, 0) }},
	} {
		t.Run(open.how+" returns an *os.File named with the virtual path", func(t *testing.T) {
			t.Parallel()
			f, err := open.fn("/readme")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, ok := f.(*os.File); !ok {
				t.Fatalf("got %T, want *os.File", f)
			}
			if f.Name() != "/readme" {
				t.Errorf("Name() = %q, want /readme", f.Name())
			}
			info, err := f.Stat()
			if err != nil || info.Name() != "readme" {
				t.Errorf("Stat() = %v, %v", info, err)
			}
			// REST -1 then RETR: the engine sends this error to the client.
			_, err = f.Seek(-1, io.SeekStart)
			sb.checkErrText(t, err)
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != "/readme" {
				t.Errorf("seek error = %v, want a PathError on /readme", err)
			}
			if b, err := io.ReadAll(f); err != nil || string(b) != "hello" {
				t.Errorf("read %q, %v", b, err)
			}
		})
	}
}

func TestReadingADirectoryFailsWithItsVirtualPath(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{})
	d, err := fsys.Open("/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, err := range []error{
		func() error { _, err := d.Read(make([]byte, 8)); return err }(),
		func() error { _, err := d.Write([]byte("x")); return err }(),
	} {
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != "/latest" || !errors.Is(err, syscall.EISDIR) {
			t.Errorf("got %v, want a PathError on /latest with EISDIR", err)
		}
	}
	if info, err := d.Stat(); err != nil || info.Name() != "latest" || !info.IsDir() {
		t.Errorf("Stat() = %v, %v", info, err)
	}
	names, err := d.Readdirnames(-1)
	if err != nil || len(names) != 1 || names[0] != "file.iso" {
		t.Errorf("Readdirnames = %q, %v", names, err)
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		op   func(afero.Fs) error
		want error
		path string
	}{
		{"removing a missing file says it does not exist", func(fsys afero.Fs) error { return fsys.Remove("/nope") }, fs.ErrNotExist, "/nope"},
		{"removing a full directory says it is not empty", func(fsys afero.Fs) error { return fsys.Remove("/pub") }, syscall.ENOTEMPTY, "/pub"},
		{"making an existing directory says it exists", func(fsys afero.Fs) error { return fsys.Mkdir("/pub/", 0o755) }, fs.ErrExist, "/pub"},
		{"making a directory in a missing one says it does not exist", func(fsys afero.Fs) error { return fsys.Mkdir("/no/d", 0o755) }, fs.ErrNotExist, "/no/d"},
		{"a file used as a folder is not a directory", func(fsys afero.Fs) error { _, err := fsys.Stat("/pub/a.txt/x"); return err }, syscall.ENOTDIR, "/pub/a.txt/x"},
		{"an upload onto a directory says it is one", func(fsys afero.Fs) error {
			_, err := fsys.OpenFile("/pub/empty", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			return err
		}, syscall.EISDIR, "/pub/empty"},
		{"an upload into a missing folder says it does not exist", func(fsys afero.Fs) error {
			_, err := fsys.OpenFile("/no/a.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			return err
		}, fs.ErrNotExist, "/no/a.txt"},
		{"chown is a permission error", func(fsys afero.Fs) error { return fsys.Chown("pub", 1, 1) }, fs.ErrPermission, "/pub"},
	}
	for _, atomic := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				sb := newSandbox(t)
				err := tt.op(sb.open(t, Options{Atomic: atomic}))
				sb.checkErrText(t, err)
				var pe *fs.PathError
				if !errors.Is(err, tt.want) || !errors.As(err, &pe) || pe.Path != tt.path {
					t.Fatalf("got %#v, want a PathError on %s wrapping %v", err, tt.path, tt.want)
				}
			})
		}
	}
}

func TestStorageErrorsWrapErrStorageExceeded(t *testing.T) {
	t.Parallel()
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := pathError("write", "/a", &fs.PathError{Op: "write", Path: "/disk/a", Err: errno})
		if !errors.Is(err, ftpserver.ErrStorageExceeded) || !errors.Is(err, errno) {
			t.Errorf("%v: got %v, want both ErrStorageExceeded and the errno", errno, err)
		}
	}
}

func TestChangesInsideTheRoot(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{})
	steps := []struct {
		name string
		op   func() error
	}{
		{"mkdirall makes nested folders", func() error { return fsys.MkdirAll("/a/b/c", 0o755) }},
		{"rename moves a file", func() error { return fsys.Rename("/pub/a.txt", "/a/b/c/a.txt") }},
		{"rename through an in-root link works", func() error { return fsys.Rename("/latest/file.iso", "/a/file.iso") }},
		{"chmod keeps only permission bits", func() error { return fsys.Chmod("/a/file.iso", 0o600|fs.ModeSetuid) }},
		{"chtimes sets the mtime", func() error { return fsys.Chtimes("/a/file.iso", time.Unix(1e9, 0), time.Unix(1e9, 0)) }},
		{"remove deletes an empty folder", func() error { return fsys.Remove("/pub/empty") }},
		{"removing a link removes the link only", func() error { return fsys.Remove("/evil") }},
		{"removeall deletes a tree", func() error { return fsys.RemoveAll("/a/b") }},
		{"removeall of a missing path is fine", func() error { return fsys.RemoveAll("/a/b") }},
	}
	for _, s := range steps {
		if err := s.op(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	info, err := os.Stat(filepath.Join(sb.root, "a", "file.iso"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode() != 0o600 || !info.ModTime().Equal(time.Unix(1e9, 0)) {
		t.Errorf("file.iso: mode %v mtime %v", info.Mode(), info.ModTime())
	}
	if _, err := os.Lstat(filepath.Join(sb.root, "a", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a/b still there: %v", err)
	}
	sb.checkOutside(t)
}
