package vfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// filePerm caps the permissions of new files: uploads are never executable.
const filePerm fs.FileMode = 0o644

// file is a regular file opened for writing in place (direct mode, APPE, REST
// then STOR). It embeds the *os.File so that io.Copy(file, conn) still reaches
// (*os.File).ReadFrom and its splice(2) path, and it rewrites write errors so
// that a full disk or quota wraps ftpserver.ErrStorageExceeded (reply 552).
// What is written reaches the disk before Close returns (sync.go).
type file struct {
	*os.File
	name   string // virtual path
	fs     *Fs    // whose options say whether to sync
	folder string // the os.Root name of the folder synced on Close: the file was created by this open
	dirty  bool   // written to since it was opened
	wb     writeback
}

var (
	_ afero.File    = (*file)(nil)
	_ io.ReaderFrom = (*file)(nil)
)

// Name returns the virtual path.
func (f *file) Name() string { return f.name }

// Stat returns the file's info under its virtual base name.
func (f *file) Stat() (fs.FileInfo, error) {
	info, err := f.File.Stat()
	if err != nil {
		return nil, f.err(err)
	}

	return rename(info, path.Base(f.name)), nil
}

// Write writes p at the current offset.
func (f *file) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	if wbErr := f.wrote(n); err == nil {
		err = wbErr
	}

	return n, f.err(err)
}

// WriteAt writes p at offset off. The write-back follows the file's offset,
// which WriteAt leaves alone: the final sync writes what it misses.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if wbErr := f.wrote(n); err == nil {
		err = wbErr
	}

	return n, f.err(err)
}

// WriteString writes s at the current offset.
func (f *file) WriteString(s string) (int, error) {
	n, err := f.File.WriteString(s)
	if wbErr := f.wrote(n); err == nil {
		err = wbErr
	}

	return n, f.err(err)
}

// ReadFrom copies r into the file through (*os.File).ReadFrom, which splices
// from a TCP connection without copying through user space, in steps of the
// write-back where there is one.
func (f *file) ReadFrom(r io.Reader) (int64, error) {
	if f.progressive() {
		n, err := f.readFromInSteps(r)

		return n, f.err(err)
	}

	n, err := f.File.ReadFrom(r)
	f.dirty = f.dirty || n > 0

	return n, f.err(err)
}

// Truncate changes the size of the file.
func (f *file) Truncate(size int64) error {
	f.dirty = true

	return f.err(f.File.Truncate(size))
}

// Close syncs what was written (and the folder of a file this open created)
// and closes the file. The file is closed even if the sync fails.
func (f *file) Close() error {
	err := f.sync()
	if closeErr := f.err(f.File.Close()); err == nil {
		err = closeErr
	}
	if err == nil && f.folder != "" {
		if syncErr := f.fs.syncFolder(f.folder); syncErr != nil {
			err = pathError("close", f.name, syncErr)
		}
	}

	return err
}

// err returns a file error with the virtual path and a path-free cause. Other
// errors, such as a network error while ReadFrom reads the data connection,
// pass unchanged.
func (f *file) err(err error) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}

	return &fs.PathError{Op: pe.Op, Path: f.name, Err: cause(pe.Err)}
}

// upload is a fresh upload in atomic mode: the data goes to a hidden temporary
// file in the target's folder, and Close renames it over the target only if the
// transfer ended cleanly. The engine calls TransferError and Close from the
// goroutine that runs the transfer; the mutex makes them safe from any other.
type upload struct {
	file
	fs         *Fs
	temp       string // os.Root name of the temporary file
	target     string // os.Root name of the target
	noReplace  bool   // commit with a hard link that fails if the target exists (Fs.createNew)
	key        string // the temporary file's name in Fs.uploads, claimed until Close
	part       bool   // the temporary file is its owner's part, kept if the transfer is interrupted (Fs.Resume)
	resumed    bool   // the part was kept from an earlier upload, and this one continues it
	from       int64  // with resumed, the part's size when it was opened
	supersedes string // a one-off upload while another wrote the owner's part: that part, dropped when this one lands
	kept       *keptPart

	mu       sync.Mutex
	failed   error // the first I/O error on the file, or else the transfer error
	writeErr bool  // failed came from I/O on the file, and Close returns it
	closed   bool
	closeErr error
}

var (
	_ afero.File                  = (*upload)(nil)
	_ io.ReaderFrom               = (*upload)(nil)
	_ ftpserver.FileTransferError = (*upload)(nil)
)

// openUpload creates the temporary file for an atomic upload to virtual. With
// noReplace the target must not exist, now (fs.ErrExist) or when Close commits
// the upload.
func (f *Fs) openUpload(virtual, rel string, flag int, perm os.FileMode, noReplace bool) (afero.File, error) {
	if virtual == "/" {
		return nil, pathError("open", virtual, fs.ErrExist)
	}
	if noReplace {
		// Lstat, so that even a dangling link takes the name, as it will for Link.
		_, err := f.root.Lstat(rel)
		switch {
		case err == nil:
			return nil, pathError("open", virtual, fs.ErrExist)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, pathError("open", virtual, err)
		}

		return f.createTemp(virtual, rel, flag, perm&filePerm, nil, true)
	}
	// The target must be absent or a regular file that could be overwritten
	// in place: atomic mode replaces nothing that direct mode could not (an
	// operator's chmod a-w still protects a file), and renaming over a
	// directory would only fail after the whole transfer. Opening it without
	// O_TRUNC changes nothing. An existing file passes on its permission bits.
	var old fs.FileInfo
	osf, err := f.root.OpenFile(rel, os.O_WRONLY|nonblock, 0)
	if err == nil {
		old, err = osf.Stat()
		_ = osf.Close()
		if err == nil && !old.Mode().IsRegular() {
			err = errNotRegular
		}
	}
	switch {
	case err == nil:
		perm = old.Mode().Perm()
	case errors.Is(err, fs.ErrNotExist):
		old, perm = nil, perm&filePerm
	default:
		return nil, pathError("open", virtual, err)
	}

	return f.createTemp(virtual, rel, flag, perm, old, false)
}

// createTemp creates the hidden temporary file of an atomic upload to virtual
// with the permissions perm, exactly those of old if it replaces a file; see
// upload.commit for noReplace. In a view that resumes uploads (Fs.Resume), a
// fresh upload that may replace its target writes its owner's part instead.
func (f *Fs) createTemp(virtual, rel string, flag int, perm os.FileMode, old fs.FileInfo, noReplace bool) (afero.File, error) {
	flag = flag&(os.O_WRONLY|os.O_RDWR) | os.O_CREATE | os.O_EXCL
	wantPart := f.resumable() && !noReplace
	temp, key, osf, part, err := f.openTemp(rel, flag, perm, wantPart)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	if old != nil {
		// The umask applied at creation; give back the old file's exact bits.
		if err := osf.Chmod(perm); err != nil {
			_ = osf.Close()
			_ = f.root.Remove(temp)
			f.uploads.release(key)

			return nil, pathError("open", virtual, err)
		}
	}
	// reopen closes osf in every case.
	if osf, err = reopen(osf, virtual); err != nil {
		_ = f.root.Remove(temp)
		f.uploads.release(key)

		return nil, pathError("open", virtual, err)
	}

	// dirty: a new file, whose inode the sync writes even if it stays empty.
	u := &upload{file: file{File: osf, name: virtual, fs: f, dirty: true}, fs: f, temp: temp, target: rel, noReplace: noReplace, key: key, part: part}
	if wantPart && !part {
		u.supersedes = partPath(f.owner, rel)
	}

	return u, nil
}

// openTemp creates the temporary file of an atomic upload to rel: with
// part, the owner's part of rel (Resume), replacing a kept one; else, or if
// another upload is writing that part, a new name (TempPrefix and random
// hex), and isPart is false. It claims the file's name in f.uploads first,
// so that a reclaim never takes it, and holds its lock (tryLock) while the
// file is open.
func (f *Fs) openTemp(rel string, flag int, perm os.FileMode, part bool) (temp, key string, osf *os.File, isPart bool, err error) {
	if part {
		temp = partPath(f.owner, rel)
		key = f.diskKey(temp)
		if f.uploads.claim(key) {
			osf, err = f.openPartFresh(temp, flag, perm)
			if err == nil {
				_ = tryLock(osf) // a new file: nobody else holds it

				return temp, key, osf, true, nil
			}
			f.uploads.release(key)
			if !errors.Is(err, ErrUploadBusy) {
				return "", "", nil, false, err
			}
		}
	}
	for range 3 { // a name collision is all but impossible; retry a little anyway
		temp = path.Join(path.Dir(rel), TempPrefix+randomHex())
		key = f.diskKey(temp)
		if f.uploads.claim(key) {
			osf, err = f.root.OpenFile(temp, flag, perm)
			if !errors.Is(err, fs.ErrExist) {
				break
			}
			f.uploads.release(key)
		}
	}
	if err != nil {
		f.uploads.release(key)

		return "", "", nil, false, err
	}
	_ = tryLock(osf) // a new file: nobody else holds it

	return temp, key, osf, false, nil
}

// randomHex returns 16 random hex digits.
func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)

	return hex.EncodeToString(b[:])
}

// TransferError records that the transfer did not end cleanly (ABOR, a
// dropped data connection, an I/O error): Close then discards the upload.
func (u *upload) TransferError(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.failed == nil {
		u.failed = err
		if u.failed == nil {
			u.failed = errors.New("transfer failed")
		}
	}
}

// fail records an error from I/O on the file (a write, or ReadFrom reading
// the data connection), which also discards the upload.
func (u *upload) fail(err error) error {
	if err != nil {
		u.mu.Lock()
		if u.failed == nil || !u.writeErr {
			u.failed, u.writeErr = err, true
		}
		u.mu.Unlock()
	}

	return err
}

// Write writes p to the temporary file.
func (u *upload) Write(p []byte) (int, error) {
	n, err := u.file.Write(p)

	return n, u.fail(err)
}

// WriteAt writes p to the temporary file at offset off.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	n, err := u.file.WriteAt(p, off)

	return n, u.fail(err)
}

// WriteString writes s to the temporary file.
func (u *upload) WriteString(s string) (int, error) {
	n, err := u.file.WriteString(s)

	return n, u.fail(err)
}

// ReadFrom copies r into the temporary file through (*os.File).ReadFrom.
// A deadline of the data connection r does not fail the upload: the bytes
// not read stay in the socket, and the caller may read on (wharf's server
// moves the deadline on every half second while bytes flow); a caller that
// gives up calls TransferError.
func (u *upload) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.file.ReadFrom(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}

	return n, u.fail(err)
}

// Truncate changes the size of the temporary file.
func (u *upload) Truncate(size int64) error {
	return u.fail(u.file.Truncate(size))
}

// Close ends the upload. After a clean transfer it syncs and closes the
// temporary file and renames it over the target; if that fails, or after
// TransferError or a write error, it removes the temporary file and the target
// keeps its old content (an interrupted part is kept instead: see
// Fs.Resume). It returns the write error, if any (so a full disk
// reports ftpserver.ErrStorageExceeded), and nil for a discarded transfer.
// Later calls return the first call's result.
func (u *upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return u.closeErr
	}
	u.closed = true
	u.closeErr = u.finish()
	u.fs.uploads.release(u.key)
	switch {
	case u.kept != nil:
		u.fs.uploads.keep(u.key, *u.kept)
	case u.part:
		u.fs.uploads.forget(u.key) // committed or removed
	case u.supersedes != "" && u.failed == nil && u.closeErr == nil:
		u.fs.dropPart(u.supersedes)
	}

	return u.closeErr
}

func (u *upload) finish() error {
	if u.failed != nil && u.keepable() {
		return u.keep()
	}
	if u.failed != nil {
		_ = u.File.Close()
		if err := u.fs.root.Remove(u.temp); err != nil {
			return pathError("close", u.name, err)
		}
		if u.writeErr {
			return u.failed
		}

		return nil
	}
	// The temporary file's data, then the name it gets: see sync.go.
	err := u.file.Close()
	if err == nil {
		err = u.commit()
	}
	if err != nil {
		_ = u.fs.root.Remove(u.temp)
	}

	return err
}

// commit moves the closed temporary file to the target: a rename that
// replaces the target, or with noReplace a hard link that fails with
// fs.ErrExist if the target appeared since the upload began, after which the
// temporary name is removed. rename(2) has no portable no-replace mode.
func (u *upload) commit() error {
	if !u.noReplace {
		if err := u.fs.root.Rename(u.temp, u.target); err != nil {
			return pathError("rename", u.name, err)
		}
	} else {
		if err := u.fs.root.Link(u.temp, u.target); err != nil {
			return pathError("close", u.name, err)
		}
		// The upload is in place; a temporary name that could not be removed
		// stays hidden and does not make the transfer fail.
		_ = u.fs.root.Remove(u.temp)
	}
	// Without this, a crash could lose the new name after the 226.
	if err := u.fs.syncFolder(path.Dir(u.target)); err != nil {
		return pathError("close", u.name, err)
	}

	return nil
}
