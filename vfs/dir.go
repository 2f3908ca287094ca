package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// dir is a directory opened for reading (LIST, NLST, MLSD, STAT). Its
// listings hide in-progress uploads and show a symbolic link that stays inside
// the root as its target, under the link's name, so clients can enter or
// download through it. Every error names the virtual path.
type dir struct {
	f    *os.File // named with the disk path: never let its errors through
	fs   *Fs
	name string // virtual path
	rel  string // name for os.Root
}

// Name returns the virtual path of the directory.
func (d *dir) Name() string { return d.name }

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

	return rename(info, path.Base(d.name)), nil
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

// Sync does nothing: a directory opened for reading has nothing to flush.
func (d *dir) Sync() error { return nil }

// Read fails: a directory has no bytes to download.
func (d *dir) Read([]byte) (int, error) { return 0, d.isDir("read") }

// ReadAt fails: a directory has no bytes to download.
func (d *dir) ReadAt([]byte, int64) (int, error) { return 0, d.isDir("read") }

// Write fails: a directory cannot be written.
func (d *dir) Write([]byte) (int, error) { return 0, d.isDir("write") }

// WriteAt fails: a directory cannot be written.
func (d *dir) WriteAt([]byte, int64) (int, error) { return 0, d.isDir("write") }

// WriteString fails: a directory cannot be written.
func (d *dir) WriteString(string) (int, error) { return 0, d.isDir("write") }

// Truncate fails: a directory cannot be truncated.
func (d *dir) Truncate(int64) error { return d.isDir("truncate") }

func (d *dir) isDir(op string) error {
	return &fs.PathError{Op: op, Path: d.name, Err: syscall.EISDIR}
}

// err returns err with the virtual path; nil and io.EOF pass unchanged.
func (d *dir) err(op string, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}

	return pathError(op, d.name, err)
}
