package server

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/vfs"
)

// manifestFs is the view of a session whose home is the anonymous root,
// with each manifest root's ls-lR.gz and manifest.json (see manifest.go):
// Stat and reading opens give them (RETR, SIZE, MDTM, REST, MLST), and the
// root's folder lists them after its own entries (LIST, NLST, MLSD), with
// the size and time of the last complete pair. A real file of the same name
// wins. Everything else goes to the session's own view unchanged; writes to
// the names too (the anonymous view refuses them).
type manifestFs struct {
	afero.Fs
	m   *manifests
	cwd func() string
	// pinned is the session's view with its snapshot pins, to learn which
	// copy of a snapshot it holds; nil without snapshots.
	pinned *vfs.Fs
}

// wrap gives fsys the manifests, for a session whose home is the anonymous
// root's (anonymous, or an account sharing that home). pinned, when not nil,
// is the session's view holding its snapshot copies (vfs.Fs.WithPins).
func (m *manifests) wrap(fsys afero.Fs, acct auth.Account, cwd func() string, pinned *vfs.Fs) afero.Fs {
	if m == nil {
		return fsys
	}

	anon, err := m.srv.accounts.Load().Authenticate("anonymous", "manifest@wharf")
	if err != nil || path.Clean(acct.Home) != path.Clean(anon.Home) {
		return fsys
	}

	return &manifestFs{Fs: fsys, m: m, cwd: cwd, pinned: pinned}
}

// pair is the pair the session is served at r: for a snapshot, the one of
// the copy the session holds, which reading the manifest makes it hold (a
// crawler then fetches what the manifest lists from the same copy).
func (f *manifestFs) pair(r *manifestRoot) (*manifestFiles, error) {
	f.m.mu.Lock()
	snapshot := r.snapshot
	f.m.mu.Unlock()

	if !snapshot || f.pinned == nil {
		return r.current.Load(), nil
	}

	_, _ = f.Fs.Stat(r.path) // goes through the link: the session holds its copy

	copyName, _, err := f.pinned.SnapshotCopy(r.path)
	if err != nil {
		return r.current.Load(), nil //nolint:nilerr // a broken link: the last manifest made stands
	}

	files := f.m.pick(r, copyName)
	if files == nil && r.current.Load() != nil {
		return nil, errManifestGone
	}

	return files, nil
}

// root is the manifest root whose files live in folder dir, if any.
func (m *manifests) root(dir string) *manifestRoot {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.roots[dir]
}

// abs is name as a clean absolute path, as the session's view will read it.
func (f *manifestFs) abs(name string) string {
	if !path.IsAbs(name) {
		name = path.Join(f.cwd(), name)
	}

	return path.Clean("/" + name)
}

// virtual is the pair name belongs to and the file's name in it, when name
// is one of the virtual files.
func (f *manifestFs) virtual(name string) (*manifestRoot, string, bool) {
	p := f.abs(name)
	base := path.Base(p)
	if base != lsLRName && base != manifestName {
		return nil, "", false
	}

	r := f.m.root(path.Dir(p))

	return r, p, r != nil
}

// pick is the pair's file on disk and its info for the virtual path p, or
// errManifestNotReady (errManifestGone) when there is no pair.
func (f *manifestFs) pick(r *manifestRoot, p string) (string, os.FileInfo, error) {
	cur, err := f.pair(r)
	switch {
	case err != nil:
		return "", nil, &fs.PathError{Op: "open", Path: p, Err: err}
	case cur == nil:
		return "", nil, &fs.PathError{Op: "open", Path: p, Err: errManifestNotReady}
	case path.Base(p) == lsLRName:
		return cur.ls, cur.lsFI, nil
	default:
		return cur.json, cur.jsonFI, nil
	}
}

// Stat gives a virtual file's info, unless a real file has its name.
func (f *manifestFs) Stat(name string) (os.FileInfo, error) {
	fi, err := f.Fs.Stat(name)
	r, p, ok := f.virtual(name)
	if !ok || !errors.Is(err, fs.ErrNotExist) {
		return fi, err //nolint:wrapcheck // the client reads the vfs error (see describe)
	}

	_, vfi, verr := f.pick(r, p)
	if verr != nil {
		return nil, verr
	}

	return vfi, nil
}

func (f *manifestFs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens a virtual file for reading as the bare *os.File (so that
// downloads keep sendfile), and a manifest root's folder with the virtual
// files listed at its end.
func (f *manifestFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	file, err := f.Fs.OpenFile(name, flag, perm)
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return file, err //nolint:wrapcheck // as Stat
	}

	if err == nil {
		if r := f.m.root(f.abs(name)); r != nil {
			if st, serr := file.Stat(); serr == nil && st.IsDir() {
				files, _ := f.pair(r)

				return &manifestDir{File: file, files: files}, nil
			}
		}

		return file, nil
	}

	r, p, ok := f.virtual(name)
	if !ok || !errors.Is(err, fs.ErrNotExist) {
		return nil, err //nolint:wrapcheck // as Stat
	}

	// A new pair may replace the one picked (and remove its files) just
	// before the open: the next pick has the new one.
	for range 3 {
		disk, _, verr := f.pick(r, p)
		if verr != nil {
			return nil, verr
		}

		if made, oerr := os.Open(disk); oerr == nil {
			return made, nil
		}
	}

	return nil, &fs.PathError{Op: "open", Path: p, Err: errManifestNotReady}
}

// manifestDir is a manifest root's folder: its entries, then the virtual
// files that no entry shadows. Its time is the later of the folder's and the
// pair's, so that a cached listing of it is read again once a new pair is in.
type manifestDir struct {
	afero.File
	files *manifestFiles  // the pair listed; nil before the first
	names map[string]bool // the entries given so far
	done  bool            // the virtual files were given
}

func (d *manifestDir) Stat() (os.FileInfo, error) {
	st, err := d.File.Stat()
	if err != nil {
		return st, err //nolint:wrapcheck // as Stat
	}

	if cur := d.files; cur != nil && cur.lsFI.ModTime().After(st.ModTime()) {
		return dirTime{FileInfo: st, mod: cur.lsFI.ModTime()}, nil
	}

	return st, nil
}

// dirTime is a folder's info with another modification time.
type dirTime struct {
	os.FileInfo
	mod time.Time
}

func (d dirTime) ModTime() time.Time { return d.mod }

func (d *manifestDir) Readdir(n int) ([]os.FileInfo, error) {
	entries, err := d.File.Readdir(n)
	if d.names == nil {
		d.names = map[string]bool{}
	}

	for _, e := range entries {
		d.names[e.Name()] = true
	}

	end := errors.Is(err, io.EOF) || (err == nil && (n <= 0 || len(entries) == 0))
	if !end || d.done {
		return entries, err //nolint:wrapcheck // as Stat
	}

	d.done = true
	if cur := d.files; cur != nil {
		for _, v := range []os.FileInfo{cur.lsFI, cur.jsonFI} {
			if !d.names[v.Name()] {
				entries = append(entries, v)
			}
		}
	}

	if len(entries) > 0 && n > 0 {
		return entries, nil
	}

	return entries, err //nolint:wrapcheck // as Stat
}

func (d *manifestDir) Readdirnames(n int) ([]string, error) {
	entries, err := d.Readdir(n)

	return slices.Collect(func(yield func(string) bool) {
		for _, e := range entries {
			if !yield(e.Name()) {
				return
			}
		}
	}), err
}
