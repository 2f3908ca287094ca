package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// maxKeptParts bounds how many kept parts Uploads remembers for Expire.
// Beyond it a part is still kept and resumable, and the reclaim of the next
// start (Fs.Reclaim) removes it once its window has passed.
const maxKeptParts = 100_000

// Uploads is the bookkeeping of one process's atomic uploads, shared by every
// Fs the process opens (Options.Uploads). It holds the disk paths of the
// temporary files being written now, so that Reclaim never removes one and
// two sessions of one account never write one part at once, and the parts
// kept for resuming (Fs.Resume), so that Expire removes each when its window
// has passed even if nobody looks at its folder again. It is safe for
// concurrent use. Files are named by their disk path, the root's folder with
// its symbolic links resolved, so that two Fs on one folder agree.
type Uploads struct {
	mu    sync.Mutex
	open  map[string]bool     // temporary files being written, or being removed by a reclaim: superseded (see supersede)
	parts map[string]keptPart // parts kept for resuming that this process knows of
}

// keptPart is a part kept for resuming, as Expire needs it.
type keptPart struct {
	dir    string        // the root's folder on disk
	rel    string        // the part's name in it
	window time.Duration // how long after its last write it is kept
	mtime  time.Time     // its last write, when last seen
}

// NewUploads returns an empty Uploads.
func NewUploads() *Uploads {
	return &Uploads{open: make(map[string]bool), parts: make(map[string]keptPart)}
}

// claim marks the file at key as in use, and reports false if it already was.
func (u *Uploads) claim(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, busy := u.open[key]; busy {
		return false
	}
	u.open[key] = false

	return true
}

// supersede records that an upload of the part at key's owner and target
// has landed: if an upload is writing the part, the part is not to be kept
// when that upload is interrupted (superseded), and supersede reports false;
// else it claims key, for the caller to remove the part and release it.
func (u *Uploads) supersede(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, busy := u.open[key]; busy {
		u.open[key] = true

		return false
	}
	u.open[key] = false

	return true
}

// superseded reports whether the claimed part at key was superseded.
func (u *Uploads) superseded(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()

	return u.open[key]
}

// release ends a claim.
func (u *Uploads) release(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.open, key)
}

// keep remembers a kept part, for Expire.
func (u *Uploads) keep(key string, p keptPart) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, known := u.parts[key]; known || len(u.parts) < maxKeptParts {
		u.parts[key] = p
	}
}

// forget drops a part that was committed, replaced or removed.
func (u *Uploads) forget(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.parts, key)
}

// diskKey is the key of the file rel of the root in Uploads.
func (f *Fs) diskKey(rel string) string {
	return filepath.Join(f.dir, filepath.FromSlash(rel))
}

// resolvedDir is dir as an absolute path with its symbolic links resolved,
// or as near to that as can be found.
func resolvedDir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Clean(dir)
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		return resolved
	}

	return abs
}

// removeIdle removes the file rel of root unless another open file holds
// its lock (an upload of another process: see tryLock), and reports whether
// it did. A file that cannot be opened to test its lock is removed all the
// same: this process's own uploads are known by Uploads.
func removeIdle(root *os.Root, rel string) bool {
	if osf, err := root.OpenFile(rel, os.O_RDONLY|nonblock, 0); err == nil {
		defer osf.Close()
		if errors.Is(tryLock(osf), errLocked) {
			return false
		}
	}

	return root.Remove(rel) == nil
}
