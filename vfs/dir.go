package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// dir is a directory opened for reading (LIST, NLST, MLSD, STAT). Its
// listings hide in-progress uploads and show a symbolic link that stays inside
// the root as its target, under the link's name, so clients can enter or
// download through it. Every error names the virtual path.
type dir struct {
	NoBytes
	f   *os.File // named with the disk path: never let its errors through
	fs  *Fs
	rel string // name for os.Root
}

// Name returns the virtual path of the directory.
func (d *dir) Name() string { return d.Path }

// Readdir returns up to n entries (all if n <= 0), like os.File.Readdir.
func (d *dir) Readdir(n int) ([]fs.FileInfo, error) {
	var out []fs.FileInfo
	for {
		infos, err := d.f.Readdir(n)
		for _, info := range infos {
			if strings.HasPrefix(info.Name(), TempPrefix) {
				continue
			}
			out = append(out, d.follow(info))
		}
		// With n > 0, a batch made only of hidden entries must not look like the end.
		if err != nil || n <= 0 || len(out) > 0 {
			return out, d.err("readdir", err)
		}
	}
}

// follow returns info, or for a symbolic link whose target is inside the root
// the target's info under the link's name. A link that escapes or dangles is
// returned as the link itself.
func (d *dir) follow(info fs.FileInfo) fs.FileInfo {
	if info.Mode()&fs.ModeSymlink == 0 {
		return info
	}
	target, err := d.fs.root.Stat(path.Join(d.rel, info.Name()))
	if err != nil {
		return info
	}

	return rename(target, info.Name())
}

// Readdirnames returns up to n names (all if n <= 0), like os.File.Readdirnames.
func (d *dir) Readdirnames(n int) ([]string, error) {
	var out []string
	for {
		names, err := d.f.Readdirnames(n)
		for _, name := range names {
			if !strings.HasPrefix(name, TempPrefix) {
				out = append(out, name)
			}
		}
		if err != nil || n <= 0 || len(out) > 0 {
			return out, d.err("readdir", err)
		}
	}
}

// Stat returns the directory's info under its virtual base name.
func (d *dir) Stat() (fs.FileInfo, error) {
	info, err := d.f.Stat()
	if err != nil {
		return nil, d.err("stat", err)
	}

	return rename(info, path.Base(d.Path)), nil
}

// Seek rewinds or moves the listing, like os.File.Seek on a directory.
func (d *dir) Seek(offset int64, whence int) (int64, error) {
	n, err := d.f.Seek(offset, whence)

	return n, d.err("seek", err)
}

// Close closes the directory.
func (d *dir) Close() error {
	return d.err("close", d.f.Close())
}

// err returns err with the virtual path; nil and io.EOF pass unchanged.
func (d *dir) err(op string, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}

	return pathError(op, d.Path, err)
}
