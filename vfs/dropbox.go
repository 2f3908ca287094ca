package vfs

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// DropBox returns fsys read-only everywhere except below dir (a virtual path
// like "/incoming"), where only new files and new folders may be created: an
// anonymous upload folder in which nobody can download, list, overwrite,
// rename or delete what others uploaded.
//
// Below dir, dir itself included:
//   - OpenFile for a fresh upload (STOR: O_CREATE|O_TRUNC) creates a new file,
//     write-only, with mode 0600 at most (vsftpd's anon_umask = 077): it
//     stays unreadable to others until an operator moves it. If the name is
//     taken it fails with fs.ErrExist at open, or, for an atomic upload whose
//     name was taken meanwhile, at Close, which then discards the data: of two
//     concurrent uploads to one new name exactly one lands. Appends (APPE) and
//     resumed uploads (REST then STOR, no O_TRUNC) are refused.
//   - Mkdir and MkdirAll create folders, mode 0700 at most, but none above dir.
//   - Stat shows folders, so that clients can enter them (CWD), and says
//     fs.ErrNotExist for everything else, so uploads stay private.
//   - Open and OpenFile for reading are refused: no download, no listing.
//   - Remove, RemoveAll, Rename (with either name below dir), Chmod, Chown and
//     Chtimes are refused.
//   - Nothing is created, and no folder shown, through an existing symbolic
//     link below dir: os.Root follows links that stay inside the root, so
//     "/incoming/pub-link/x" could otherwise land outside the box.
//   - Mode bits do not hide anything (WorldReadable): the rules above already
//     decide what the session sees, and the 0700 folders uploads make must
//     stay usable by the next upload.
//
// The box is where dir really is on disk, not a name: a path elsewhere that
// really leads into it ("/link-to-incoming/x" with link-to-incoming ->
// incoming, an absolute link, "/pub/up/incoming" with up -> ..), or only
// gets as far as somewhere inside it before it fails, is as if missing
// (fs.ErrNotExist) to Stat, Open and OpenFile for reading, and listings leave
// out such links, and the box's folder under any name other than dir.
//
// Refusals below dir are *fs.PathError values whose Err is ErrDropBox.
// Elsewhere DropBox behaves exactly like ReadOnly(fsys). Names are cleaned
// again, so "/incoming/../pub" is outside and "/incoming-old" is not below
// "/incoming". The result is a view of fsys: it shares fsys's os.Root.
func DropBox(fsys *Fs, dir string) afero.Fs {
	dir, _ = clean(dir)
	v := *fsys
	v.box, v.view = dir, true
	in := v
	in.worldReadable = false

	return dropBox{fs: &v, inner: &in, ro: readOnly{fs: &v}, dir: dir}
}

// Modes of what the drop box creates: nothing others may read.
const (
	boxFilePerm fs.FileMode = 0o600
	boxDirPerm  fs.FileMode = 0o700
)

type dropBox struct {
	fs    *Fs      // fsys, knowing the box: what the session sees outside dir
	inner *Fs      // fs without WorldReadable: what happens below dir
	ro    readOnly // what happens outside dir
	dir   string   // clean virtual path
}

// in returns the clean virtual path of name and whether it is dir or below it.
func (db dropBox) in(name string) (string, bool) {
	p, _ := clean(name)

	return p, db.dir == "/" || p == db.dir || strings.HasPrefix(p, db.dir+"/")
}

// throughLink reports whether an existing element of p below dir, p's last
// element included, is a symbolic link. The walk stops at the first element
// that cannot be looked up; the operation itself then fails on it.
func (db dropBox) throughLink(p string) bool {
	cur := db.dir
	for elem := range strings.SplitSeq(strings.TrimPrefix(p, db.dir), "/") {
		if elem == "" {
			continue
		}
		cur = path.Join(cur, elem)
		_, rel := clean(cur)
		info, err := db.fs.root.Lstat(rel)
		if err != nil {
			return false
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return true
		}
	}

	return false
}

// boxPath returns the drop box's real path (a path of Fs.root with no
// symbolic link in it), or "" if f is no drop box or its folder is missing.
// It is looked up on every call: an operator may move the folder.
func (f *Fs) boxPath() string {
	if f.box == "" {
		return ""
	}
	all := *f
	all.worldReadable = false
	pl, err := all.lookup(f.box, follow)
	if err != nil {
		return ""
	}
	pl.close()
	if !pl.info.IsDir() {
		return ""
	}

	return pl.rel
}

// within reports whether the real path rel is the real path box or below it.
func within(rel, box string) bool {
	return box == "." || rel == box || strings.HasPrefix(rel, box+"/")
}

// reachesBox reports whether the clean virtual path p gets into the drop
// box on disk: whether the real path that some first elements of p lead to,
// links in them followed, is the box or below it (so "/link-to-incoming/x" and
// "/link-to-incoming/topub/a.txt" do, "/viabox/a.txt" with viabox ->
// incoming/../pub does not), or p's walk stops there. Mode bits are not
// looked at: this is about places, not about what the session sees. The
// cost is one lookup of the box and one of p.
func (f *Fs) reachesBox(p string) bool {
	box := f.boxPath()
	if box == "" {
		return false
	}
	all := *f
	all.worldReadable = false
	reached := false
	pl, err := all.walk(p, follow|create, func(rel string) {
		reached = reached || within(rel, box)
	})
	if err == nil {
		pl.close()
		reached = reached || within(pl.rel, box)
	}

	return reached
}

// aliasError is the error of op on p, which leads into the box from outside
// dir: as if missing.
func aliasError(op, p string) error {
	return &fs.PathError{Op: op, Path: p, Err: fs.ErrNotExist}
}

func (db dropBox) Name() string { return db.fs.Name() }

func (db dropBox) Create(name string) (afero.File, error) {
	return db.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (db dropBox) Open(name string) (afero.File, error) {
	p, in := db.in(name)
	switch {
	case in:
		return nil, refuse("open", p, ErrDropBox)
	case db.fs.reachesBox(p):
		return nil, aliasError("open", p)
	}

	return db.ro.Open(p)
}

func (db dropBox) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	p, in := db.in(name)
	switch {
	case in:
	case flag&writeFlags != 0:
		return db.ro.OpenFile(p, flag, perm) // refused
	case db.fs.deniedPath(p):
		return nil, hiddenError("open", p, false)
	default:
		// As reachesBox, then ReadOnly's OpenFile, in one walk.
		return db.fs.openReadOutside(p, db.fs.boxPath())
	}
	const fresh = os.O_CREATE | os.O_TRUNC
	if flag&fresh != fresh || flag&os.O_APPEND != 0 || db.throughLink(p) {
		return nil, refuse("open", p, ErrDropBox)
	}

	return db.inner.createNew(p, flag&^os.O_RDWR|os.O_WRONLY, perm&boxFilePerm)
}

func (db dropBox) Stat(name string) (os.FileInfo, error) {
	p, in := db.in(name)
	switch {
	case !in && db.fs.reachesBox(p):
		return nil, aliasError("stat", p)
	case !in:
		return db.ro.Stat(p)
	case db.throughLink(p):
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	info, err := db.inner.Stat(p)
	if err != nil || !info.IsDir() {
		// Neither "is a file" nor "not a directory" may show what others uploaded.
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}

	return info, nil
}

func (db dropBox) Mkdir(name string, perm os.FileMode) error {
	p, in := db.in(name)
	switch {
	case !in:
		return db.ro.Mkdir(p, perm)
	case db.throughLink(p):
		return refuse("mkdir", p, ErrDropBox)
	}

	return db.inner.Mkdir(p, perm&boxDirPerm)
}

func (db dropBox) MkdirAll(name string, perm os.FileMode) error {
	p, in := db.in(name)
	switch {
	case !in:
		return db.ro.MkdirAll(p, perm)
	case db.throughLink(p):
		return refuse("mkdir", p, ErrDropBox)
	}
	// os.Root.MkdirAll would also create missing folders above dir, outside the box.
	if db.dir != "/" {
		if info, err := db.fs.Stat(path.Dir(db.dir)); err != nil || !info.IsDir() {
			return refuse("mkdir", p, ErrDropBox)
		}
	}

	return db.inner.MkdirAll(p, perm&boxDirPerm)
}

func (db dropBox) Remove(name string) error {
	p, in := db.in(name)
	if in {
		return refuse("remove", p, ErrDropBox)
	}

	return db.ro.Remove(p)
}

func (db dropBox) RemoveAll(name string) error {
	p, in := db.in(name)
	if in {
		return refuse("remove", p, ErrDropBox)
	}

	return db.ro.RemoveAll(p)
}

func (db dropBox) Rename(oldname, newname string) error {
	oldPath, oldIn := db.in(oldname)
	newPath, newIn := db.in(newname)
	if oldIn || newIn {
		return refuse("rename", oldPath, ErrDropBox)
	}

	return db.ro.Rename(oldPath, newPath)
}

func (db dropBox) Chmod(name string, mode os.FileMode) error {
	p, in := db.in(name)
	if in {
		return refuse("chmod", p, ErrDropBox)
	}

	return db.ro.Chmod(p, mode)
}

func (db dropBox) Chown(name string, uid, gid int) error {
	p, in := db.in(name)
	if in {
		return refuse("chown", p, ErrDropBox)
	}

	return db.ro.Chown(p, uid, gid)
}

func (db dropBox) Chtimes(name string, atime, mtime time.Time) error {
	p, in := db.in(name)
	if in {
		return refuse("chtimes", p, ErrDropBox)
	}

	return db.ro.Chtimes(p, atime, mtime)
}
