package vfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// partPrefix starts the names of the parts kept for resuming: TempPrefix,
// so they are hidden and refused like any temporary upload, then "part-".
const partPrefix = TempPrefix + "part-"

var (
	// ErrUploadBusy refuses to continue a part (REST then STOR, APPE) that
	// another upload of the same account is writing (450: the client may try
	// again later).
	ErrUploadBusy = errors.New("an upload to this name is in progress in another session; try again later")

	errNoPart = errors.New("no part to resume")
	errLocked = errors.New("locked by another open file")
)

// Resume returns a view of f for the account owner in which an interrupted
// fresh upload is kept, hidden, to be continued for window after its last
// write. It changes only atomic uploads (Options.Atomic) of a non-empty
// owner with a positive window; otherwise the view behaves as f.
//
// A fresh upload (STOR: O_CREATE|O_TRUNC) writes to the owner's part of the
// target instead of a one-off temporary file: a hidden file in the target's
// folder named partPrefix plus a hash of owner and the target's path, so
// that the same account finds it again after a reconnect or a restart, and
// nobody else can: another account's hash differs, and TempPrefix names are
// never listed nor served. A clean Close renames the part over the target,
// as for any atomic upload. An upload that ends otherwise (TransferError:
// ABOR, a reset or stalled data connection, a lost control connection) keeps
// the part, unless its failure wraps ftpserver.ErrStorageExceeded (a full
// disk, a quota, a size limit: resuming would only fail again), which
// removes it.
//
// While a part is kept, OpenFile without O_TRUNC continues it: with O_APPEND
// (APPE) at its end, without (REST n then STOR) wherever the caller Seeks to;
// the caller cuts a part that is longer than the REST offset with Truncate
// (see Resumed). Part reports it, for SIZE. A new fresh upload replaces it.
// A part not written to for longer than window is expired: it is removed
// when found (Part, OpenFile, Reclaim, Uploads.Expire) and never continued.
//
// One part exists per owner and target. While an upload writes it, another
// fresh upload of the owner to the target goes to a one-off temporary file,
// as without Resume, and is not kept if interrupted; when that one lands, the
// part is dropped, or, while still written, kept only if its own upload
// completes (the last upload to close wins, as for any atomic upload). A
// resume of a part that another upload is writing fails with ErrUploadBusy.
// The view shares f's os.Root; closing it does nothing.
func (f *Fs) Resume(owner string, window time.Duration) *Fs {
	v := *f
	v.owner, v.window, v.view = owner, window, true

	return &v
}

// resumable reports whether f keeps interrupted uploads (see Resume).
func (f *Fs) resumable() bool {
	return f.atomic && f.owner != "" && f.window > 0
}

// partPath is the os.Root name of owner's part of the upload to rel.
func partPath(owner, rel string) string {
	sum := sha256.Sum256([]byte(owner + "\x00" + rel))

	return path.Join(path.Dir(rel), partPrefix+hex.EncodeToString(sum[:16]))
}

// expired reports whether a part last written at mtime is past its window.
func expired(mtime time.Time, window time.Duration) bool {
	return time.Since(mtime) > window
}

// Part returns the FileInfo of the owner's kept part of the upload to name,
// under name's base name: its size is where a resumed upload continues
// (SIZE). It fails with fs.ErrNotExist when there is none, when it has
// expired (it is removed then), and in a view that does not resume. A file
// of that name, if any, does not matter.
func (f *Fs) Part(name string) (fs.FileInfo, error) {
	virtual, _ := clean(name)
	if !f.resumable() || virtual == "/" || f.deniedPath(virtual) {
		return nil, pathError("stat", virtual, fs.ErrNotExist)
	}
	pl, err := f.lookup(virtual, follow|create)
	if err != nil {
		return nil, pathError("stat", virtual, err)
	}
	pl.close()
	temp := partPath(f.owner, pl.rel)
	info, err := f.root.Lstat(temp)
	switch {
	case err != nil || !info.Mode().IsRegular():
		return nil, pathError("stat", virtual, fs.ErrNotExist)
	case expired(info.ModTime(), f.window):
		f.dropExpired(temp)

		return nil, pathError("stat", virtual, fs.ErrNotExist)
	}

	return rename(info, path.Base(virtual)), nil
}

// Resumed reports whether f, a file that OpenFile returned, continues a kept
// part (see Resume), and the part's size when it was opened. After REST n
// with n below that size, the caller Truncates f to n.
func Resumed(f afero.File) (int64, bool) {
	u, ok := f.(*upload)
	if !ok || !u.resumed {
		return 0, false
	}

	return u.from, true
}

// dropExpired removes the expired part temp, unless an upload holds it.
func (f *Fs) dropExpired(temp string) {
	key := f.diskKey(temp)
	if !f.uploads.claim(key) {
		return
	}
	defer f.uploads.release(key)
	if removeIdle(f.root, temp) {
		f.uploads.forget(key)
	}
}

// resumePart opens the owner's kept part of the upload to virtual, at pl, to
// continue it, or fails with errNoPart when there is none to continue.
func (f *Fs) resumePart(virtual string, pl *place, flag int) (afero.File, error) {
	temp := partPath(f.owner, pl.rel)
	key := f.diskKey(temp)
	if !f.uploads.claim(key) {
		return nil, pathError("open", virtual, ErrUploadBusy)
	}
	file, err := f.openPart(virtual, pl, temp, key, flag)
	if err != nil {
		f.uploads.release(key)

		return nil, err
	}

	return file, nil
}

// openPart is resumePart once the part's name is claimed.
func (f *Fs) openPart(virtual string, pl *place, temp, key string, flag int) (afero.File, error) {
	info, err := f.root.Lstat(temp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errNoPart
	case err != nil:
		return nil, pathError("open", virtual, err)
	case !info.Mode().IsRegular():
		return nil, errNoPart
	case expired(info.ModTime(), f.window):
		if removeIdle(f.root, temp) {
			f.uploads.forget(key)
		}

		return nil, errNoPart
	}
	// As for a fresh atomic upload, the part replaces only a regular file
	// that could be overwritten in place.
	if pl.info != nil {
		if err := f.writable(pl.rel); err != nil {
			return nil, pathError("open", virtual, err)
		}
	}
	osf, err := f.root.OpenFile(temp, os.O_WRONLY|flag&os.O_APPEND|nonblock, 0)
	if err != nil {
		return nil, pathError("open", virtual, err)
	}
	if err := tryLock(osf); err != nil {
		_ = osf.Close()

		return nil, pathError("open", virtual, ErrUploadBusy) // another process writes it
	}
	st, err := osf.Stat()
	if err != nil {
		_ = osf.Close()

		return nil, pathError("open", virtual, err)
	}
	// reopen closes osf in every case.
	if osf, err = reopen(osf, virtual); err != nil {
		return nil, pathError("open", virtual, err)
	}

	return &upload{
		file: file{File: osf, name: virtual, fs: f}, fs: f, temp: temp, target: pl.rel, key: key,
		part: true, resumed: true, from: st.Size(),
	}, nil
}

// writable checks that the existing target rel is a regular file that
// could be opened for writing in place.
func (f *Fs) writable(rel string) error {
	osf, err := f.root.OpenFile(rel, os.O_WRONLY|nonblock, 0)
	if err != nil {
		return err
	}
	defer osf.Close()
	info, err := osf.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = errNotRegular
	}

	return err
}

// openPartFresh creates the owner's part of the upload to rel for a fresh
// upload, replacing a kept one: with O_EXCL once the old one is gone, so
// that nothing planted under the name is written through. Its name must be
// claimed.
func (f *Fs) openPartFresh(temp string, flag int, perm os.FileMode) (*os.File, error) {
	if old, err := f.root.OpenFile(temp, os.O_RDONLY|nonblock, 0); err == nil {
		locked := errors.Is(tryLock(old), errLocked)
		_ = old.Close()
		if locked {
			return nil, ErrUploadBusy // another process writes it
		}
	}
	if err := f.root.Remove(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	return f.root.OpenFile(temp, flag, perm)
}

// keepable reports whether the interrupted upload u keeps its part: not
// after a refusal that resuming would meet again (a full disk, a quota, a
// size limit), nor when another upload of the owner to the target has landed
// meanwhile (see dropPart).
func (u *upload) keepable() bool {
	return u.part && !errors.Is(u.failed, ftpserver.ErrStorageExceeded) && !u.fs.uploads.superseded(u.key)
}

// dropPart removes the owner's part temp after another upload of the owner
// to the same target has landed: what the part held is older than what the
// target now holds. If an upload is writing the part, that upload keeps it
// only if it completes (then it lands in turn, the last to close winning).
func (f *Fs) dropPart(temp string) {
	key := f.diskKey(temp)
	if !f.uploads.supersede(key) {
		return
	}
	defer f.uploads.release(key)
	removeIdle(f.root, temp)
	f.uploads.forget(key)
}

// keep closes the part of an interrupted upload and leaves it for its owner
// to resume. It returns the write error, if any, as a discarded upload does.
func (u *upload) keep() error {
	_ = u.Sync() // what SIZE reports survives a crash
	mtime := time.Now()
	if info, err := u.File.Stat(); err == nil {
		mtime = info.ModTime()
	}
	_ = u.File.Close()
	u.kept = &keptPart{dir: u.fs.dir, rel: u.temp, window: u.fs.window, mtime: mtime}
	if u.writeErr {
		return u.failed
	}

	return nil
}
