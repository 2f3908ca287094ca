package vfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// TempPrefix starts the names of in-progress atomic uploads. Such names never
// appear in Readdir / Readdirnames results, and Stat/Open/OpenFile/Rename/
// Remove/Chmod/Chtimes/Mkdir of a name with an element that starts with it fail
// (fs.ErrNotExist for lookups; ftpserver.ErrFileNameNotAllowed when creating).
const TempPrefix = ".wharf-upload-"

// Options configure Open.
type Options struct {
	// Atomic makes new uploads atomic: OpenFile with O_WRONLY|O_CREATE|O_TRUNC (a fresh STOR) writes
	// to a hidden temporary file in the target's folder, which a clean Close syncs, closes and renames
	// over the target. If TransferError was called first (the engine calls it on ABOR, dropped data
	// connection or I/O error), Close removes the temporary file instead and the target is untouched.
	// Opening without O_TRUNC (REST+STOR resume, APPE with O_APPEND) writes in place, as clients expect.
	Atomic bool
}

// Fs is an afero.Fs confined to one directory with os.Root: "/" is that
// directory, and neither "..", absolute paths nor symbolic links can reach
// anything outside it. Names are virtual paths; a relative name is taken
// relative to "/". Fs is safe for concurrent use.
type Fs struct {
	root   *os.Root
	atomic bool
}

var _ afero.Fs = (*Fs)(nil)

// writeFlags are the OpenFile flags that change something on disk.
const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREATE | os.O_TRUNC

// Open returns the Fs rooted at the directory dir.
func Open(dir string, opts Options) (*Fs, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root directory: %w", err)
	}

	return &Fs{root: root, atomic: opts.Atomic}, nil
}

// Close closes the os.Root; call it when no session uses it any more. Files already
// open stay usable, but an atomic upload closed after Fs can no longer be
// renamed into place or cleaned up.
func (f *Fs) Close() error {
	return f.root.Close()
}

// Name returns the name of this afero.Fs implementation.
func (f *Fs) Name() string {
	return "vfs"
}

// clean returns the virtual path of name and the name os.Root expects for it.
func clean(name string) (virtual, rel string) {
	virtual = path.Clean("/" + name)
	if virtual == "/" {
		return virtual, "."
	}

	return virtual, virtual[1:]
}

// hidden reports whether an element of the cleaned virtual path p names an
// in-progress upload.
func hidden(p string) bool {
	return strings.Contains(p, "/"+TempPrefix)
}

// Create creates or truncates the named file for reading and writing, as
// OpenFile(name, O_RDWR|O_CREATE|O_TRUNC, 0o666) does.
func (f *Fs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens the named file or directory for reading.
func (f *Fs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens the named file. Reading a regular file returns the bare
// *os.File (with the virtual path as its name), so downloads keep the
// sendfile(2) path; reading a directory returns a file whose Readdir hides
// in-progress uploads and follows symbolic links that stay inside the root.
// Writing creates new files with at most the permissions 0o644 (never
// executable) and, with Options.Atomic and O_CREATE|O_TRUNC, goes through a
// temporary file (see Options). O_CREATE|O_EXCL creates a new file only, and
// never replaces one, atomic uploads included (createNew: STOU).
func (f *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	virtual, rel := clean(name)
	writing := flag&writeFlags != 0
	if hidden(virtual) {
		return nil, hiddenError("open", virtual, flag&os.O_CREATE != 0)
	}
	if !writing {
		return f.openRead(virtual, rel)
	}
	if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		return f.createNew(name, flag, perm)
	}
	if f.atomic && flag&(os.O_CREATE|os.O_TRUNC) == os.O_CREATE|os.O_TRUNC && flag&(os.O_APPEND|os.O_EXCL) == 0 {
		return f.openUpload(virtual, rel, flag, perm, false)
	}

	return f.openWrite(virtual, rel, flag, perm)
}

// createNew opens name for an upload that may only create a new file, never
// replace one (DropBox). It fails with fs.ErrExist if anything, even a
// dangling symbolic link, has the name. In direct mode the file is opened with
// O_CREATE|O_EXCL; with Options.Atomic the data goes to a temporary file as
// for any fresh upload, but Close commits it with a hard link that fails if
// the name was taken meanwhile, so of two concurrent uploads to one new name
// exactly one lands and the other's Close returns fs.ErrExist.
func (f *Fs) createNew(name string, flag int, perm os.FileMode) (afero.File, error) {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return nil, hiddenError("open", virtual, true)
	}
	flag = flag&(os.O_WRONLY|os.O_RDWR) | os.O_CREATE | os.O_EXCL
	if f.atomic {
		return f.openUpload(virtual, rel, flag, perm, true)
	}

	return f.openWrite(virtual, rel, flag, perm)
}

// openRead opens a regular file or a directory for reading.
func (f *Fs) openRead(virtual, rel string) (afero.File, error) {
	// O_NONBLOCK keeps a fifo from blocking the open; it is refused below.
	osf, err := f.root.OpenFile(rel, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	info, err := osf.Stat()
	if err == nil && info.IsDir() {
		return &dir{NoBytes: NoBytes{Path: virtual}, f: osf, fs: f, rel: rel}, nil
	}
	if err == nil && !info.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		_ = osf.Close()

		return nil, pathError("open", virtual, err)
	}
	// reopen closes osf in every case.
	if osf, err = reopen(osf, virtual); err != nil {
		return nil, pathError("open", virtual, err)
	}

	return osf, nil
}

// openWrite opens a regular file for writing in place.
func (f *Fs) openWrite(virtual, rel string, flag int, perm os.FileMode) (afero.File, error) {
	osf, err := f.root.OpenFile(rel, flag|nonblock, perm&filePerm)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	info, err := osf.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		_ = osf.Close()

		return nil, pathError("open", virtual, err)
	}
	// reopen closes osf in every case.
	if osf, err = reopen(osf, virtual); err != nil {
		return nil, pathError("open", virtual, err)
	}

	return &file{File: osf, name: virtual}, nil
}

// Mkdir creates the named directory.
func (f *Fs) Mkdir(name string, perm os.FileMode) error {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return hiddenError("mkdir", virtual, true)
	}
	if err := f.root.Mkdir(rel, perm.Perm()); err != nil {
		return pathError("mkdir", virtual, err)
	}

	return nil
}

// MkdirAll creates the named directory and any missing parents.
func (f *Fs) MkdirAll(name string, perm os.FileMode) error {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return hiddenError("mkdir", virtual, true)
	}
	if err := f.root.MkdirAll(rel, perm.Perm()); err != nil {
		return pathError("mkdir", virtual, err)
	}

	return nil
}

// Remove removes the named file or empty directory. A symbolic link is removed
// itself, not its target. "/" cannot be removed.
func (f *Fs) Remove(name string) error {
	virtual, rel := clean(name)
	switch {
	case virtual == "/":
		return pathError("remove", virtual, fs.ErrPermission)
	case hidden(virtual):
		return hiddenError("remove", virtual, false)
	}
	if err := f.root.Remove(rel); err != nil {
		return pathError("remove", virtual, err)
	}

	return nil
}

// RemoveAll removes the named path and everything below it, staying inside the
// root. Like os.RemoveAll it returns nil if the path does not exist, which
// includes the names of in-progress uploads.
func (f *Fs) RemoveAll(name string) error {
	virtual, rel := clean(name)
	switch {
	case virtual == "/":
		return pathError("remove", virtual, fs.ErrPermission)
	case hidden(virtual):
		return nil
	}
	if err := f.root.RemoveAll(rel); err != nil {
		return pathError("remove", virtual, err)
	}

	return nil
}

// Rename renames oldname to newname inside the root. The error, an
// *os.LinkError, names both virtual paths.
func (f *Fs) Rename(oldname, newname string) error {
	oldVirtual, oldRel := clean(oldname)
	newVirtual, newRel := clean(newname)
	var err error
	switch {
	case oldVirtual == "/" || newVirtual == "/":
		err = fs.ErrPermission
	case hidden(oldVirtual):
		err = fs.ErrNotExist
	case hidden(newVirtual):
		err = ftpserver.ErrFileNameNotAllowed
	default:
		err = f.root.Rename(oldRel, newRel)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldVirtual, New: newVirtual, Err: cause(err)}
	}

	return nil
}

// Stat returns the FileInfo of the named file, following symbolic links that
// stay inside the root; the info carries the name asked for ("latest", not its
// target's name, and "/" for the root).
func (f *Fs) Stat(name string) (os.FileInfo, error) {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return nil, hiddenError("stat", virtual, false)
	}
	info, err := f.root.Stat(rel)
	if err != nil {
		return nil, pathError("stat", virtual, err)
	}

	return rename(info, path.Base(virtual)), nil
}

// Chmod changes the permission bits (mode & 0o777) of the named file.
func (f *Fs) Chmod(name string, mode os.FileMode) error {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return hiddenError("chmod", virtual, false)
	}
	if err := f.root.Chmod(rel, mode.Perm()); err != nil {
		return pathError("chmod", virtual, err)
	}

	return nil
}

// Chown is refused: FTP users have no business with disk owners.
func (f *Fs) Chown(name string, _, _ int) error {
	virtual, _ := clean(name)

	return pathError("chown", virtual, fs.ErrPermission)
}

// Chtimes changes the access and modification times of the named file (MFMT).
func (f *Fs) Chtimes(name string, atime, mtime time.Time) error {
	virtual, rel := clean(name)
	if hidden(virtual) {
		return hiddenError("chtimes", virtual, false)
	}
	if err := f.root.Chtimes(rel, atime, mtime); err != nil {
		return pathError("chtimes", virtual, err)
	}

	return nil
}

// namedInfo is a FileInfo under another name: a symbolic link's, or "/".
type namedInfo struct {
	fs.FileInfo
	name string
}

// Name returns the name the entry is shown under.
func (ni namedInfo) Name() string { return ni.name }

// rename returns info under name, or info itself when the name already fits.
func rename(info fs.FileInfo, name string) fs.FileInfo {
	if info.Name() == name {
		return info
	}

	return namedInfo{FileInfo: info, name: name}
}
