package vfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"
)

// Reclaimed counts what a reclaim removed and how far it looked.
type Reclaimed struct {
	Files    int   // temporary upload files removed
	Bytes    int64 // their total size
	Entries  int   // directory entries the walk visited (Reclaim)
	Complete bool  // the walk saw the whole tree: it was not stopped by its cap or its context (Reclaim)
}

// add counts one removed file.
func (r *Reclaimed) add(info fs.FileInfo) {
	r.Files++
	r.Bytes += info.Size()
}

// Reclaim removes the temporary upload files (TempPrefix) below the root
// that no upload can be using any more: those a process killed during an
// upload left behind (kill -9, a crash, a power cut), and parts kept for
// resuming (Resume) that were not written to for longer than window, or any
// part when window is 0. It leaves alone the files of uploads in progress in
// this process (Options.Uploads) and, where flock(2) works, in any other
// process (see tryLock), and parts still inside their window, which it
// hands to Uploads so that Expire removes them on time.
//
// The walk stops after maxEntries directory entries or when ctx ends, so a
// huge tree costs a bounded time; Reclaimed.Complete says whether it saw
// everything. It does not follow symbolic links and removes only regular
// files. Reclaim does not need Options.Atomic: a root served in direct mode
// may hold what atomic uploads left before.
func (f *Fs) Reclaim(ctx context.Context, window time.Duration, maxEntries int) Reclaimed {
	var r Reclaimed
	now := time.Now()
	folders := []string{"."}
	for len(folders) > 0 {
		if ctx.Err() != nil {
			return r
		}
		dir := folders[len(folders)-1]
		folders = folders[:len(folders)-1]
		sub, full := f.reclaimFolder(dir, window, now, maxEntries, &r)
		folders = append(folders, sub...)
		if full {
			return r
		}
	}
	r.Complete = true

	return r
}

// reclaimFolder reclaims the leftovers in the folder dir and returns its
// subfolders, and whether the walk reached maxEntries.
func (f *Fs) reclaimFolder(dir string, window time.Duration, now time.Time, maxEntries int, r *Reclaimed) ([]string, bool) {
	d, err := f.root.Open(dir)
	if err != nil {
		return nil, false // gone, or not ours to read: nothing to reclaim there
	}
	defer d.Close()
	var sub []string
	for {
		entries, err := d.ReadDir(256)
		for _, e := range entries {
			if r.Entries >= maxEntries {
				return sub, true
			}
			r.Entries++
			rel := path.Join(dir, e.Name())
			switch {
			case e.IsDir():
				sub = append(sub, rel)
			case e.Type().IsRegular() && strings.HasPrefix(e.Name(), TempPrefix):
				f.reclaimFile(rel, window, now, r)
			}
		}
		if err != nil {
			return sub, false
		}
	}
}

// reclaimFile removes the leftover rel unless an upload holds it or it is a
// part inside its window.
func (f *Fs) reclaimFile(rel string, window time.Duration, now time.Time, r *Reclaimed) {
	key := f.diskKey(rel)
	if !f.uploads.claim(key) {
		return // an upload of this process is writing it
	}
	defer f.uploads.release(key)
	info, err := f.root.Lstat(rel)
	if err != nil || !info.Mode().IsRegular() {
		return
	}
	if strings.HasPrefix(path.Base(rel), partPrefix) && window > 0 && now.Sub(info.ModTime()) <= window {
		f.uploads.keep(key, keptPart{dir: f.dir, rel: rel, window: window, mtime: info.ModTime()})

		return
	}
	if removeIdle(f.root, rel) {
		r.add(info)
		f.uploads.forget(key)
	}
}

// Expire removes the kept parts whose window has passed at now: those not
// written to for longer than the resume window, that no upload is writing.
// It returns what it removed.
func (u *Uploads) Expire(now time.Time) Reclaimed {
	u.mu.Lock()
	due := make(map[string]keptPart)
	for key, p := range u.parts {
		if _, busy := u.open[key]; !busy && now.Sub(p.mtime) > p.window {
			due[key] = p
		}
	}
	u.mu.Unlock()

	var r Reclaimed
	roots := make(map[string]*os.Root)
	defer func() {
		for _, root := range roots {
			_ = root.Close()
		}
	}()
	for key, p := range due {
		root, ok := roots[p.dir]
		if !ok {
			var err error
			if root, err = os.OpenRoot(p.dir); err != nil {
				u.forget(key) // the folder is gone, and the part with it

				continue
			}
			roots[p.dir] = root
		}
		u.expireOne(root, key, p, now, &r)
	}

	return r
}

// expireOne removes the kept part p if it is still expired at now.
func (u *Uploads) expireOne(root *os.Root, key string, p keptPart, now time.Time, r *Reclaimed) {
	if !u.claim(key) {
		return // an upload has just taken it up again
	}
	defer u.release(key)
	info, err := root.Lstat(p.rel)
	switch {
	case err != nil || !info.Mode().IsRegular():
		u.forget(key)
	case now.Sub(info.ModTime()) <= p.window:
		// Written to since: resumed and interrupted again.
		p.mtime = info.ModTime()
		u.keep(key, p)
	default:
		if removeIdle(root, p.rel) {
			r.add(info)
		}
		u.forget(key)
	}
}

// maxClear bounds the entries clearLeftovers reads: a folder holding more is
// not one that only leftovers keep from being empty.
const maxClear = 64

// clearLeftovers removes the temporary upload files in the folder rel that
// no upload is writing, and reports whether the folder held nothing else:
// it is then empty, as every client already saw it, and can be removed
// (RMD), though an interrupted upload's part was kept there (Resume).
func (f *Fs) clearLeftovers(rel string) bool {
	d, err := f.root.Open(rel)
	if err != nil {
		return false
	}
	defer d.Close()
	entries, _ := d.ReadDir(maxClear + 1)
	if len(entries) == 0 || len(entries) > maxClear {
		return false
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), TempPrefix) {
			return false
		}
	}
	// Take every file first, so that one in use leaves all of them in place.
	names := make([]string, 0, len(entries))
	defer func() {
		for _, name := range names {
			f.uploads.release(f.diskKey(name))
		}
	}()
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		if !f.uploads.claim(f.diskKey(name)) {
			return false // an upload of this process is landing here
		}
		names = append(names, name)
		if osf, err := f.root.OpenFile(name, os.O_RDONLY|nonblock, 0); err == nil {
			defer osf.Close() // holds the lock until the files are gone
			if errors.Is(tryLock(osf), errLocked) {
				return false // an upload of another process
			}
		}
	}
	for _, name := range names {
		if err := f.root.Remove(name); err != nil {
			return false
		}
		f.uploads.forget(f.diskKey(name))
	}

	return true
}
