package vfs

import (
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// Resolve returns fsys seen through a session's working directory: every name
// is checked and made absolute before fsys sees it. A name containing NUL, CR
// or LF fails with an error wrapping ftpserver.ErrFileNameNotAllowed (553); a
// relative name is joined to cwd() and "" means cwd(); the result is
// path.Clean'ed, so ".." can never climb above "/". The engine already makes
// most names absolute, but not all: LIST -la, for one, asks Stat("-la").
func Resolve(fsys afero.Fs, cwd func() string) afero.Fs {
	return resolver{fs: fsys, cwd: cwd}
}

type resolver struct {
	fs  afero.Fs
	cwd func() string
}

// abs returns name as a clean absolute virtual path.
func (r resolver) abs(op, name string) (string, error) {
	if strings.ContainsAny(name, "\x00\r\n") {
		// Quoted, so that the reply line stays one line.
		return "", &fs.PathError{Op: op, Path: strconv.Quote(name), Err: ftpserver.ErrFileNameNotAllowed}
	}
	if !path.IsAbs(name) {
		name = path.Join(r.cwd(), name)
	}

	return path.Clean("/" + name), nil
}

func (r resolver) Name() string { return r.fs.Name() }

func (r resolver) Create(name string) (afero.File, error) {
	p, err := r.abs("open", name)
	if err != nil {
		return nil, err
	}

	return r.fs.Create(p)
}

func (r resolver) Mkdir(name string, perm os.FileMode) error {
	p, err := r.abs("mkdir", name)
	if err != nil {
		return err
	}

	return r.fs.Mkdir(p, perm)
}

func (r resolver) MkdirAll(name string, perm os.FileMode) error {
	p, err := r.abs("mkdir", name)
	if err != nil {
		return err
	}

	return r.fs.MkdirAll(p, perm)
}

func (r resolver) Open(name string) (afero.File, error) {
	p, err := r.abs("open", name)
	if err != nil {
		return nil, err
	}

	return r.fs.Open(p)
}

func (r resolver) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	p, err := r.abs("open", name)
	if err != nil {
		return nil, err
	}

	return r.fs.OpenFile(p, flag, perm)
}

func (r resolver) Remove(name string) error {
	p, err := r.abs("remove", name)
	if err != nil {
		return err
	}

	return r.fs.Remove(p)
}

func (r resolver) RemoveAll(name string) error {
	p, err := r.abs("remove", name)
	if err != nil {
		return err
	}

	return r.fs.RemoveAll(p)
}

func (r resolver) Rename(oldname, newname string) error {
	oldPath, err := r.abs("rename", oldname)
	if err != nil {
		return err
	}
	newPath, err := r.abs("rename", newname)
	if err != nil {
		return err
	}

	return r.fs.Rename(oldPath, newPath)
}

func (r resolver) Stat(name string) (os.FileInfo, error) {
	p, err := r.abs("stat", name)
	if err != nil {
		return nil, err
	}

	return r.fs.Stat(p)
}

func (r resolver) Chmod(name string, mode os.FileMode) error {
	p, err := r.abs("chmod", name)
	if err != nil {
		return err
	}

	return r.fs.Chmod(p, mode)
}

func (r resolver) Chown(name string, uid, gid int) error {
	p, err := r.abs("chown", name)
	if err != nil {
		return err
	}

	return r.fs.Chown(p, uid, gid)
}

func (r resolver) Chtimes(name string, atime, mtime time.Time) error {
	p, err := r.abs("chtimes", name)
	if err != nil {
		return err
	}

	return r.fs.Chtimes(p, atime, mtime)
}
