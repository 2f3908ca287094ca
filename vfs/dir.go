package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Link is how a folder's Readdir shows a symbolic link with
// Options.ShowLinks: its Mode has fs.ModeSymlink and the link's own
// permission bits (0777 on Linux, as ls -l shows), its Size is the length of
// LinkTarget, and its ModTime is the link's own. Only links that lead
// somewhere the session may see are listed, so the server can show
// "name -> target" (LIST) and "type=OS.unix=slink:target" (MLSD) for every
// Link it gets.
type Link interface {
	fs.FileInfo
	// LinkTarget returns the target as the client sees it: the link's own
	// text when it is relative ("1.2.3", "../pub/x"), or the virtual path
	// ("/pub/x") of an absolute link into the root's folder on disk. Never a
	// disk path.
	LinkTarget() string
	// TargetIsDir reports whether the link leads to a folder.
	TargetIsDir() bool
}

// linkInfo is a Link: the link's lstat(2) info, where it leads, and what that is.
type linkInfo struct {
	fs.FileInfo
	target string
	dir    bool
}

var _ Link = linkInfo{}

// Size returns the length of the target as the client sees it.
func (l linkInfo) Size() int64 { return int64(len(l.target)) }

// LinkTarget returns the target as the client sees it.
func (l linkInfo) LinkTarget() string { return l.target }

// TargetIsDir reports whether the link leads to a folder.
func (l linkInfo) TargetIsDir() bool { return l.dir }

// dir is a directory opened for reading (LIST, NLST, MLSD, STAT). Its
// listings leave out denied names (in-progress uploads, Options.Deny), links
// that lead nowhere the session may see, with WorldReadable private files,
// and with DropBox links into the drop box and the box's folder under any
// name but its own; a folder that others may not list lists as empty. A link
// is shown as a Link (Options.ShowLinks) or as its target under its own name.
// Every error names the virtual path.
type dir struct {
	NoBytes
	f    *os.File // named with the disk path: never let its errors through
	fs   *Fs
	rel  string // real path for os.Root, with no symbolic link in it
	shut bool   // WorldReadable and others may not list it: it lists as empty
	box  string // with DropBox, the box's real path (Fs.boxPath); "" if none
}

// Name returns the virtual path of the directory.
func (d *dir) Name() string { return d.Path }

// Readdir returns up to n entries (all if n <= 0), like os.File.Readdir.
func (d *dir) Readdir(n int) ([]fs.FileInfo, error) {
	if d.shut {
		return nil, nothingLeft(n)
	}
	out, err := readKept(n, d.f.Readdir, d.entry)

	return out, d.err("readdir", err)
}

// entry returns how the listing shows info, or false to leave it out.
func (d *dir) entry(info fs.FileInfo) (fs.FileInfo, bool) {
	name := info.Name()
	switch {
	case d.fs.denied(name):
		return nil, false
	case info.Mode()&fs.ModeSymlink != 0:
		return d.link(info)
	case d.fs.private(info):
		return nil, false
	case info.IsDir() && d.intoBox(name, path.Join(d.rel, name)):
		return nil, false
	}

	return info, true
}

// intoBox reports whether the entry name, whose real path is rel, is the drop
// box or inside it, listed under a name other than the box's own: an alias
// that would show what the box hides.
func (d *dir) intoBox(name, rel string) bool {
	return d.box != "" && within(rel, d.box) && path.Join(d.Path, name) != d.fs.box
}

// link returns how the listing shows the symbolic link of lstat(2) info
// info, or false if it does not lead somewhere the session may see.
func (d *dir) link(info fs.FileInfo) (fs.FileInfo, bool) {
	rel := path.Join(d.rel, info.Name())
	text, err := d.fs.readlink(d.fs.root, ".", rel, true)
	if err != nil {
		return nil, false
	}
	shown, inside := d.fs.linkTarget(text)
	if !inside {
		return nil, false
	}
	pl, err := d.fs.lookup(rel, follow|peek)
	if err != nil {
		return nil, false
	}
	pl.close()
	if d.intoBox(info.Name(), pl.rel) {
		return nil, false
	}
	if !d.fs.showLinks {
		// Shown as its target, a link to this folder or one above it would
		// be an endless tree to a client that walks it (self -> .): left out.
		if pl.info.IsDir() && d.under(pl.rel) {
			return nil, false
		}

		return rename(pl.info, info.Name()), true
	}
	if path.IsAbs(shown) {
		shown = path.Clean(shown)
	}

	return linkInfo{FileInfo: info, target: shown, dir: pl.info.IsDir()}, true
}

// under reports whether this folder is the folder at real path target (a
// path of Fs.root with no link in it), or below it.
func (d *dir) under(target string) bool {
	here, err := d.fs.lookup(d.rel, follow)
	if err != nil {
		return false
	}
	defer here.close()

	return target == "." || here.rel == target || strings.HasPrefix(here.rel, target+"/")
}

// Readdirnames returns up to n names (all if n <= 0), like
// os.File.Readdirnames. It reads the entry types the folder stores, so it
// looks at an entry only for a link, or with WorldReadable for a file.
func (d *dir) Readdirnames(n int) ([]string, error) {
	if d.shut {
		return nil, nothingLeft(n)
	}
	entries, err := readKept(n, d.f.ReadDir, func(e fs.DirEntry) (fs.DirEntry, bool) {
		return e, d.listed(e)
	})
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}

	return names, d.err("readdir", err)
}

// listed reports whether Readdir would show the entry e.
func (d *dir) listed(e fs.DirEntry) bool {
	switch {
	case d.fs.denied(e.Name()):
		return false
	case e.IsDir():
		return !d.intoBox(e.Name(), path.Join(d.rel, e.Name()))
	case e.Type()&fs.ModeSymlink == 0 && !d.fs.worldReadable:
		return true
	}
	info, err := e.Info()
	if err != nil {
		return false
	}
	_, ok := d.entry(info)

	return ok
}

// nothingLeft is what reading an exhausted folder returns: io.EOF when asked
// for n > 0 entries, as os.File does.
func nothingLeft(n int) error {
	if n > 0 {
		return io.EOF
	}

	return nil
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
