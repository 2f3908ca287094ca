package vfs

import (
	"io/fs"
	"os"
	"time"

	"github.com/spf13/afero"
)

// ReadOnly refuses every change (Create, Mkdir, MkdirAll, OpenFile with any
// write flag, Remove, RemoveAll, Rename, Chmod, Chown, Chtimes) with a
// *fs.PathError whose Err is ErrReadOnly. Reads and listings pass through.
func ReadOnly(fsys afero.Fs) afero.Fs {
	return readOnly{fs: fsys}
}

type readOnly struct {
	fs afero.Fs
}

func refuse(op, name string, why error) error {
	return &fs.PathError{Op: op, Path: name, Err: why}
}

func (ro readOnly) Name() string { return ro.fs.Name() }

func (ro readOnly) Open(name string) (afero.File, error) { return ro.fs.Open(name) }

func (ro readOnly) Stat(name string) (os.FileInfo, error) { return ro.fs.Stat(name) }

func (ro readOnly) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&writeFlags != 0 {
		return nil, refuse("open", name, ErrReadOnly)
	}

	return ro.fs.OpenFile(name, flag, perm)
}

func (ro readOnly) Create(name string) (afero.File, error) {
	return nil, refuse("open", name, ErrReadOnly)
}

func (ro readOnly) Mkdir(name string, _ os.FileMode) error {
	return refuse("mkdir", name, ErrReadOnly)
}

func (ro readOnly) MkdirAll(name string, _ os.FileMode) error {
	return refuse("mkdir", name, ErrReadOnly)
}

func (ro readOnly) Remove(name string) error { return refuse("remove", name, ErrReadOnly) }

func (ro readOnly) RemoveAll(name string) error { return refuse("remove", name, ErrReadOnly) }

func (ro readOnly) Rename(oldname, _ string) error { return refuse("rename", oldname, ErrReadOnly) }

func (ro readOnly) Chmod(name string, _ os.FileMode) error {
	return refuse("chmod", name, ErrReadOnly)
}

func (ro readOnly) Chown(name string, _, _ int) error { return refuse("chown", name, ErrReadOnly) }

func (ro readOnly) Chtimes(name string, _, _ time.Time) error {
	return refuse("chtimes", name, ErrReadOnly)
}

// WriteOnly allows uploads (OpenFile for writing, Create), Mkdir/MkdirAll,
// Chtimes (clients set the mtime after an upload: MFMT) and Stat (clients ask
// SIZE to resume), but refuses reading a file and listing a directory (Open,
// OpenFile with O_RDONLY) with ErrWriteOnly, and Remove, RemoveAll, Rename,
// Chmod and Chown with ErrWriteOnly too. OpenFile with O_RDWR, and Create,
// open the file write-only, so no file it returns can be read.
func WriteOnly(fsys afero.Fs) afero.Fs {
	return writeOnly{fs: fsys}
}

type writeOnly struct {
	fs afero.Fs
}

func (wo writeOnly) Name() string { return wo.fs.Name() }

func (wo writeOnly) Stat(name string) (os.FileInfo, error) { return wo.fs.Stat(name) }

func (wo writeOnly) Open(name string) (afero.File, error) {
	return nil, refuse("open", name, ErrWriteOnly)
}

func (wo writeOnly) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_WRONLY:
	case os.O_RDWR:
		flag = flag&^os.O_RDWR | os.O_WRONLY
	default:
		return nil, refuse("open", name, ErrWriteOnly)
	}

	return wo.fs.OpenFile(name, flag, perm)
}

func (wo writeOnly) Create(name string) (afero.File, error) {
	return wo.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (wo writeOnly) Mkdir(name string, perm os.FileMode) error { return wo.fs.Mkdir(name, perm) }

func (wo writeOnly) MkdirAll(name string, perm os.FileMode) error {
	return wo.fs.MkdirAll(name, perm)
}

func (wo writeOnly) Chtimes(name string, atime, mtime time.Time) error {
	return wo.fs.Chtimes(name, atime, mtime)
}

func (wo writeOnly) Remove(name string) error { return refuse("remove", name, ErrWriteOnly) }

func (wo writeOnly) RemoveAll(name string) error { return refuse("remove", name, ErrWriteOnly) }

func (wo writeOnly) Rename(oldname, _ string) error { return refuse("rename", oldname, ErrWriteOnly) }

func (wo writeOnly) Chmod(name string, _ os.FileMode) error {
	return refuse("chmod", name, ErrWriteOnly)
}

func (wo writeOnly) Chown(name string, _, _ int) error { return refuse("chown", name, ErrWriteOnly) }
