package vfs

import (
	"errors"
	"io/fs"
	"os"
	"sync"
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

// WriteOnly allows creating new files and folders, and nothing that would
// read, list, change or reveal what is already there: the policy of an
// account that may drop files off but not see them.
//
//   - OpenFile for writing (STOR, APPE) and Create only create a new file: the
//     open is made with O_EXCL, so with Options.Atomic an upload is committed
//     with a link that fails if the name was taken meanwhile (Fs.createNew).
//     On a name that exists, file or folder, it fails with an error wrapping
//     ErrCreateOnly (so ftpserver.ErrFileNameNotAllowed, reply 553) and
//     fs.ErrExist. Opening without O_CREATE, or without any of O_TRUNC,
//     O_APPEND and O_EXCL (a resume: REST then STOR), writes into a file that
//     exists and fails with ErrCreateOnly whatever the name. A caller's own
//     O_EXCL (STOU) gets the underlying error unchanged.
//   - Stat shows folders, so that clients can enter them (CWD) and make them
//     (MKD), and the files this session created (SIZE, MDTM or MLST after
//     STOR; the last maxOwnUploads of them). For every other name, a file or
//     nothing at all, it fails alike with ErrWriteOnly, so that SIZE, MDTM,
//     MLST, STAT and LIST of a name do not tell whether it exists.
//   - Chtimes (MFMT) is allowed on what Stat shows, and refused with
//     ErrWriteOnly elsewhere.
//   - Mkdir and MkdirAll pass through.
//   - Open, OpenFile for reading (downloads and listings), Remove, RemoveAll,
//     Rename, Chmod and Chown are refused with ErrWriteOnly.
//
// OpenFile with O_RDWR, and Create, open the file write-only, so no file it
// returns can be read. WriteOnlyOverwrite is the policy of an account that
// may replace files.
func WriteOnly(fsys afero.Fs) afero.Fs {
	return &writeOnly{fs: fsys, own: &ownUploads{names: map[string]struct{}{}}}
}

// WriteOnlyOverwrite is WriteOnly for an account that may replace files
// ([[users]] overwrite = true): uploads may also replace, append to and
// resume existing files (no O_EXCL is added), Stat shows every name (clients
// ask SIZE to resume) and Chtimes works on any name. Reads, listings and
// other changes are refused as by WriteOnly.
func WriteOnlyOverwrite(fsys afero.Fs) afero.Fs {
	return &writeOnly{fs: fsys}
}

// writeOnly is WriteOnly, or WriteOnlyOverwrite when own is nil.
type writeOnly struct {
	fs  afero.Fs
	own *ownUploads // nil: overwrite allowed, every name may be seen
}

// maxOwnUploads bounds the names a WriteOnly session remembers having
// created; older names are forgotten, and Stat no longer shows them.
const maxOwnUploads = 1024

// ownUploads are the virtual paths a WriteOnly session created, oldest first.
type ownUploads struct {
	mu    sync.Mutex
	names map[string]struct{}
	order []string
}

func (o *ownUploads) add(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.names[name]; ok {
		return
	}
	if len(o.order) == maxOwnUploads {
		delete(o.names, o.order[0])
		o.order = o.order[1:]
	}
	o.names[name] = struct{}{}
	o.order = append(o.order, name)
}

func (o *ownUploads) has(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.names[name]

	return ok
}

func (wo *writeOnly) Name() string { return wo.fs.Name() }

func (wo *writeOnly) Stat(name string) (os.FileInfo, error) {
	info, err := wo.fs.Stat(name)
	if wo.own == nil {
		return info, err
	}
	if err != nil || !wo.visible(name, info) {
		return nil, refuse("stat", virtualPath(name), ErrWriteOnly)
	}

	return info, nil
}

// visible reports whether Stat shows the entry name whose info is info: a
// folder, or a file this session created.
func (wo *writeOnly) visible(name string, info os.FileInfo) bool {
	return info.IsDir() || wo.own.has(virtualPath(name))
}

func (wo *writeOnly) Open(name string) (afero.File, error) {
	return nil, refuse("open", name, ErrWriteOnly)
}

func (wo *writeOnly) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_WRONLY:
	case os.O_RDWR:
		flag = flag&^os.O_RDWR | os.O_WRONLY
	default:
		return nil, refuse("open", name, ErrWriteOnly)
	}
	if wo.own == nil {
		return wo.fs.OpenFile(name, flag, perm)
	}

	return wo.create(name, flag, perm)
}

// create opens name for an upload that may only create a new file.
func (wo *writeOnly) create(name string, flag int, perm os.FileMode) (afero.File, error) {
	p := virtualPath(name)
	if flag&os.O_CREATE == 0 || flag&(os.O_TRUNC|os.O_APPEND|os.O_EXCL) == 0 {
		// Only an existing file can be opened without O_CREATE, and a resume
		// writes into one: refused whether or not the name exists.
		return nil, refuse("open", p, ErrCreateOnly)
	}
	f, err := wo.fs.OpenFile(name, flag&^(os.O_TRUNC|os.O_APPEND)|os.O_CREATE|os.O_EXCL, perm)
	switch {
	case err == nil:
		wo.own.add(p)

		return f, nil
	case flag&os.O_EXCL == 0 && errors.Is(err, fs.ErrExist):
		return nil, refuse("open", p, errCreateOnlyExists)
	}

	return nil, err
}

func (wo *writeOnly) Create(name string) (afero.File, error) {
	return wo.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (wo *writeOnly) Mkdir(name string, perm os.FileMode) error { return wo.fs.Mkdir(name, perm) }

func (wo *writeOnly) MkdirAll(name string, perm os.FileMode) error {
	return wo.fs.MkdirAll(name, perm)
}

func (wo *writeOnly) Chtimes(name string, atime, mtime time.Time) error {
	if wo.own != nil && !wo.own.has(virtualPath(name)) {
		if info, err := wo.fs.Stat(name); err != nil || !info.IsDir() {
			return refuse("chtimes", virtualPath(name), ErrWriteOnly)
		}
	}

	return wo.fs.Chtimes(name, atime, mtime)
}

func (wo *writeOnly) Remove(name string) error { return refuse("remove", name, ErrWriteOnly) }

func (wo *writeOnly) RemoveAll(name string) error { return refuse("remove", name, ErrWriteOnly) }

func (wo *writeOnly) Rename(oldname, _ string) error {
	return refuse("rename", oldname, ErrWriteOnly)
}

func (wo *writeOnly) Chmod(name string, _ os.FileMode) error {
	return refuse("chmod", name, ErrWriteOnly)
}

func (wo *writeOnly) Chown(name string, _, _ int) error { return refuse("chown", name, ErrWriteOnly) }

// virtualPath returns name as a clean absolute virtual path, as errors name it.
func virtualPath(name string) string {
	p, _ := clean(name)

	return p
}
