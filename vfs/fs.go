package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// TempPrefix starts the names of in-progress atomic uploads. Such names are
// always denied, as if Options.Deny held "TempPrefix*": they never appear in
// Readdir / Readdirnames results, and Stat/Open/OpenFile/Rename/Remove/Chmod/
// Chtimes/Mkdir of a name with an element that starts with it fail
// (fs.ErrNotExist for lookups; ftpserver.ErrFileNameNotAllowed when creating).
const TempPrefix = ".wharf-upload-"

// Options configure Open.
type Options struct {
	// Atomic makes new uploads atomic: OpenFile with O_WRONLY|O_CREATE|O_TRUNC (a fresh STOR) writes
	// to a hidden temporary file in the target's folder, which a clean Close syncs, closes and renames
	// over the target, then syncs the folder (see NoSync). If TransferError was called first (the
	// engine calls it on ABOR, dropped data connection or I/O error), Close removes the temporary file
	// instead and the target is untouched.
	// Opening without O_TRUNC (REST+STOR resume, APPE with O_APPEND) writes in place, as clients expect.
	Atomic bool
	// ShowLinks makes a folder's Readdir show a symbolic link as a link: a
	// Link whose Mode has fs.ModeSymlink and whose LinkTarget is the target as
	// the client sees it. The zero value, false, shows a link as what it
	// leads to, under the link's name (a link to a folder lists as a folder).
	// Either way, a link that dangles, leaves the root or leads to something
	// the session may not see is not listed, and Stat, Open and OpenFile
	// follow links that lead somewhere the session may see (RETR, SIZE, CWD
	// through "latest -> 1.2.3").
	ShowLinks bool
	// Deny are path.Match patterns matched against each element of a path; a
	// path one of whose elements matches is neither listed nor served (as if
	// missing, fs.ErrNotExist) and cannot be created
	// (ftpserver.ErrFileNameNotAllowed), nor reached through a symbolic link.
	// DefaultDeny returns rsync's temporary names. Names starting with
	// TempPrefix are always denied. Open refuses a malformed pattern.
	Deny []string
	// NoSync lets uploads end without waiting for the disk: Close neither
	// syncs an upload's data nor, after an atomic upload's rename, its
	// folder, and the data is not pushed to the disk as it arrives. The
	// zero value, false, makes Close return only once the data and the
	// file's name are durable, so that the 226 the engine sends next means
	// the file survives a crash (sync.go). An interrupted upload kept to
	// resume (Resume) is synced either way: SIZE must not report what a
	// crash could lose.
	NoSync bool
	// Uploads is the process's bookkeeping of atomic uploads, shared by every
	// Fs it opens, so that a reclaim (Reclaim) never removes an upload in
	// progress and a part (Resume) has one writer at a time; nil gives the
	// Fs its own.
	Uploads *Uploads
}

// Fs is an afero.Fs confined to one directory with os.Root: "/" is that
// directory, and neither "..", absolute paths nor symbolic links can reach
// anything outside it. Names are virtual paths; a relative name is taken
// relative to "/". Every name is looked up one element at a time under the
// rules of Options (and of WorldReadable), symbolic links included. Fs is safe
// for concurrent use.
type Fs struct {
	root          *os.Root
	atomic        bool
	showLinks     bool
	deny          matcher
	disk          [][]string // the root's folder on disk, as given and with links resolved, for absolute link targets
	worldReadable bool
	box           string            // made by DropBox: the drop box's virtual path, whose aliases listings leave out
	view          bool              // made by WorldReadable, DropBox or Resume: the os.Root belongs to another Fs
	dir           string            // the root's folder on disk, with links resolved: names files in uploads
	uploads       *Uploads          // the process's atomic uploads (Options.Uploads)
	owner         string            // with Resume: whose interrupted uploads are kept
	window        time.Duration     // with Resume: for how long
	noSync        bool              // Options.NoSync
	onSync        func(what string) // tests: told of each sync (Fs.synced)
	pins          *Pins             // made by WithPins: the snapshot links this session keeps
}

var _ afero.Fs = (*Fs)(nil)

// writeFlags are the OpenFile flags that change something on disk.
const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREATE | os.O_TRUNC

// Open returns the Fs rooted at the directory dir.
func Open(dir string, opts Options) (*Fs, error) {
	if err := checkPatterns(opts.Deny); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open root directory: %w", err)
	}

	uploads := opts.Uploads
	if uploads == nil {
		uploads = NewUploads()
	}

	return &Fs{
		root:      root,
		atomic:    opts.Atomic,
		showLinks: opts.ShowLinks,
		deny:      newMatcher(opts.Deny),
		disk:      diskPaths(dir),
		dir:       resolvedDir(dir),
		uploads:   uploads,
		noSync:    opts.NoSync,
	}, nil
}

// diskPaths returns the elements of the absolute paths that name dir: as
// given and with its symbolic links resolved ("/srv/ftp" and "/data/ftp").
func diskPaths(dir string) [][]string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	paths := [][]string{elements(filepath.ToSlash(abs))}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil && resolved != abs {
		paths = append(paths, elements(filepath.ToSlash(resolved)))
	}

	return paths
}

// WorldReadable returns a view of f that shows only what others may read on
// disk, for anonymous sessions (vsftpd's anon_world_readable_only): a file
// without the other-read bit (mode&0o004), and anything below a folder
// without both other-read and other-execute (mode&0o005), is neither listed
// nor served, as if missing (fs.ErrNotExist). Such a folder itself is listed
// and can be entered, but lists as empty. The rule reads mode bits, not
// access(2), so it holds whatever user wharf runs as, root included, and it
// holds through every alias: lookups resolve symbolic links themselves and
// check every folder really passed through, so a link into a private folder
// neither lists nor serves what is inside. The root's own bits are not
// checked. A new name may still be created in a folder others may not list
// (an upload folder of mode 0733, with DropBox). The view shares f's os.Root
// and options; closing it does nothing, f still owns the root. Policies
// compose as usual: DropBox(f.WorldReadable(), "/incoming").
func (f *Fs) WorldReadable() *Fs {
	v := *f
	v.worldReadable, v.view = true, true

	return &v
}

// Close closes the os.Root; call it when no session uses it any more. Files already
// open stay usable, but an atomic upload closed after Fs can no longer be
// renamed into place or cleaned up. Closing a view (WorldReadable) does nothing.
func (f *Fs) Close() error {
	if f.view {
		return nil
	}

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
// sendfile(2) path; reading a directory returns a file whose Readdir shows
// what the session may see (see Options.ShowLinks, Options.Deny and
// WorldReadable). Writing creates new files with at most the permissions
// 0o644 (never executable) and, with Options.Atomic and O_CREATE|O_TRUNC,
// goes through a temporary file (see Options). O_CREATE|O_EXCL creates a new
// file only, and never replaces one, atomic uploads included (createNew:
// STOU). Writing through a symbolic link writes its target, in place or
// atomically.
func (f *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	virtual, _ := clean(name)
	switch {
	case f.deniedPath(virtual):
		return nil, hiddenError("open", virtual, flag&os.O_CREATE != 0)
	case flag&writeFlags == 0:
		return f.openRead(virtual)
	case flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL:
		return f.createNew(virtual, flag, perm)
	}
	how := follow
	if flag&os.O_CREATE != 0 {
		how |= create
	}
	pl, err := f.lookup(virtual, how)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	defer pl.close()
	if f.atomic && flag&(os.O_CREATE|os.O_TRUNC) == os.O_CREATE|os.O_TRUNC && flag&os.O_APPEND == 0 {
		return f.openUpload(virtual, pl.rel, flag, perm, false)
	}
	if f.resumable() && flag&os.O_TRUNC == 0 {
		if part, err := f.resumePart(virtual, pl, flag); !errors.Is(err, errNoPart) {
			return part, err
		}
	}

	return f.openWrite(virtual, pl, flag, perm)
}

// createNew opens name for an upload that may only create a new file, never
// replace one (DropBox). It fails with fs.ErrExist if anything, even a
// dangling symbolic link, has the name. In direct mode the file is opened with
// O_CREATE|O_EXCL; with Options.Atomic the data goes to a temporary file as
// for any fresh upload, but Close commits it with a hard link that fails if
// the name was taken meanwhile, so of two concurrent uploads to one new name
// exactly one lands and the other's Close returns fs.ErrExist.
func (f *Fs) createNew(name string, flag int, perm os.FileMode) (afero.File, error) {
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return nil, hiddenError("open", virtual, true)
	}
	pl, err := f.lookup(virtual, create)
	if err == nil && pl.info != nil {
		pl.close()
		err = fs.ErrExist
	}
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	defer pl.close()
	flag = flag&(os.O_WRONLY|os.O_RDWR) | os.O_CREATE | os.O_EXCL
	if f.atomic {
		return f.openUpload(virtual, pl.rel, flag, perm, true)
	}

	return f.openWrite(virtual, pl, flag, perm)
}

// openRead opens a regular file or a directory for reading.
func (f *Fs) openRead(virtual string) (afero.File, error) {
	return f.openReadOutside(virtual, "")
}

// openReadOutside is openRead, except that a path whose walk gets into the
// real path box (see reachesBox), "" for none, is missing (aliasError). The
// walk that opens the file is the one that tells, so a download from a drop
// box's Fs looks the path up once.
func (f *Fs) openReadOutside(virtual, box string) (afero.File, error) {
	var at func(rel string)
	reached := false
	if box != "" {
		at = func(rel string) { reached = reached || within(rel, box) }
	}
	pl, err := f.walk(virtual, follow, at)
	if err == nil && box != "" && within(pl.rel, box) {
		reached = true
		pl.close()
	}
	switch {
	case reached:
		return nil, aliasError("open", virtual)
	case err != nil:
		return nil, pathError("open", virtual, err)
	}
	defer pl.close()
	// O_NONBLOCK keeps a fifo from blocking the open; it is refused below.
	osf, err := pl.parent.OpenFile(pl.name, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	info, err := osf.Stat()
	switch {
	case err != nil:
	case info.IsDir():
		shut := f.worldReadable && pl.rel != "." && info.Mode().Perm()&0o005 != 0o005
		return &dir{NoBytes: NoBytes{Path: virtual}, f: osf, fs: f, rel: pl.rel, shut: shut, box: f.boxPath()}, nil
	case f.private(info): // changed since the lookup
		err = fs.ErrNotExist
	case !info.Mode().IsRegular():
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

// openWrite opens the regular file at pl for writing in place.
func (f *Fs) openWrite(virtual string, pl *place, flag int, perm os.FileMode) (afero.File, error) {
	osf, err := pl.parent.OpenFile(pl.name, flag|nonblock, perm&filePerm)
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

	wf := &file{File: osf, name: virtual, fs: f}
	if pl.info == nil { // created: its inode and its name are synced too
		wf.folder, wf.dirty = path.Dir(pl.rel), true
	}

	return wf, nil
}

// Mkdir creates the named directory.
func (f *Fs) Mkdir(name string, perm os.FileMode) error {
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return hiddenError("mkdir", virtual, true)
	}
	pl, err := f.lookup(virtual, create)
	if err == nil {
		defer pl.close()
		err = pl.parent.Mkdir(pl.name, perm.Perm())
	}
	if err != nil {
		return pathError("mkdir", virtual, err)
	}

	return nil
}

// MkdirAll creates the named directory and any missing parents. It looks up
// each parent in turn, so it costs O(depth²), where other calls cost O(depth).
func (f *Fs) MkdirAll(name string, perm os.FileMode) error {
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return hiddenError("mkdir", virtual, true)
	}
	elems := elements(virtual)
	for i := range elems {
		if err := f.mkdirOne("/"+strings.Join(elems[:i+1], "/"), perm); err != nil {
			return pathError("mkdir", virtual, err)
		}
	}

	return nil
}

// mkdirOne makes the folder virtual unless it is one already (MkdirAll).
func (f *Fs) mkdirOne(virtual string, perm os.FileMode) error {
	pl, err := f.lookup(virtual, follow|create)
	if err != nil {
		return err
	}
	defer pl.close()
	switch {
	case pl.info == nil:
		if err := pl.parent.Mkdir(pl.name, perm.Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case !pl.info.IsDir():
		return syscall.ENOTDIR
	}

	return nil
}

// Remove removes the named file or empty directory. A symbolic link is removed
// itself, not its target. "/" cannot be removed. A folder that holds only
// temporary upload files no upload is writing (an interrupted upload's part,
// see Resume) looks empty to every client, and is removed with them.
func (f *Fs) Remove(name string) error {
	virtual, _ := clean(name)
	switch {
	case virtual == "/":
		return pathError("remove", virtual, fs.ErrPermission)
	case f.deniedPath(virtual):
		return hiddenError("remove", virtual, false)
	}
	pl, err := f.lookup(virtual, 0)
	if err == nil {
		defer pl.close()
		err = pl.parent.Remove(pl.name)
		if (errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)) && f.clearLeftovers(pl.rel) {
			err = pl.parent.Remove(pl.name) // a folder that only hidden leftovers kept from being empty
		}
	}
	if err != nil {
		return pathError("remove", virtual, err)
	}

	return nil
}

// RemoveAll removes the named path and everything below it, staying inside the
// root. Like os.RemoveAll it returns nil if the path does not exist, which
// includes denied names and everything the session may not see.
func (f *Fs) RemoveAll(name string) error {
	virtual, _ := clean(name)
	switch {
	case virtual == "/":
		return pathError("remove", virtual, fs.ErrPermission)
	case f.deniedPath(virtual):
		return nil
	}
	pl, err := f.lookup(virtual, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err == nil:
		defer pl.close()
		err = pl.parent.RemoveAll(pl.name)
	}
	if err != nil {
		return pathError("remove", virtual, err)
	}

	return nil
}

// Rename renames oldname to newname inside the root. A symbolic link is
// renamed itself, and one at newname is replaced. The error, an
// *os.LinkError, names both virtual paths.
func (f *Fs) Rename(oldname, newname string) error {
	oldVirtual, _ := clean(oldname)
	newVirtual, _ := clean(newname)
	var err error
	switch {
	case oldVirtual == "/" || newVirtual == "/":
		err = fs.ErrPermission
	case f.deniedPath(oldVirtual):
		err = fs.ErrNotExist
	case f.deniedPath(newVirtual):
		err = ftpserver.ErrFileNameNotAllowed
	default:
		err = f.rename(oldVirtual, newVirtual)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldVirtual, New: newVirtual, Err: cause(err)}
	}

	return nil
}

// rename moves the entry at oldVirtual to newVirtual.
func (f *Fs) rename(oldVirtual, newVirtual string) error {
	from, err := f.lookup(oldVirtual, 0)
	if err != nil {
		return err
	}
	defer from.close()
	to, err := f.lookup(newVirtual, create)
	if err != nil {
		return err
	}
	defer to.close()

	return f.root.Rename(from.rel, to.rel)
}

// Stat returns the FileInfo of the named file, following symbolic links that
// lead somewhere the session may see; the info carries the name asked for
// ("latest", not its target's name, and "/" for the root).
func (f *Fs) Stat(name string) (os.FileInfo, error) {
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return nil, hiddenError("stat", virtual, false)
	}
	pl, err := f.lookup(virtual, follow)
	if err != nil {
		return nil, pathError("stat", virtual, err)
	}
	pl.close()

	return rename(pl.info, path.Base(virtual)), nil
}

// Chmod changes the permission bits (mode & 0o777) of the named file.
func (f *Fs) Chmod(name string, mode os.FileMode) error {
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return hiddenError("chmod", virtual, false)
	}
	pl, err := f.lookup(virtual, follow)
	if err == nil {
		defer pl.close()
		err = pl.parent.Chmod(pl.name, mode.Perm())
	}
	if err != nil {
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
	virtual, _ := clean(name)
	if f.deniedPath(virtual) {
		return hiddenError("chtimes", virtual, false)
	}
	pl, err := f.lookup(virtual, follow)
	if err == nil {
		defer pl.close()
		err = pl.parent.Chtimes(pl.name, atime, mtime)
	}
	if err != nil {
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
