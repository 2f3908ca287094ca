package vfs

import (
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
)

// Pinner counts the sessions that hold each copy of a snapshot: the
// process's registry, which the admin listener reports so that a sync tool
// deletes an old copy only once no session holds it. path is the snapshot's
// virtual path ("/debian"), copyName the link's target as the link says it,
// cleaned ("debian.1", ".snapshots/debian.2").
type Pinner interface {
	Pin(path, copyName string)
	Unpin(path, copyName string)
}

// Pins is one session's table of snapshot links (a mirror's "debian ->
// debian.2", flipped to a new copy after each sync): each is read once, the
// first time a lookup of the session passes through it, and the session then
// keeps the copy it read for its whole life, whatever the link says later,
// so that its listings, downloads and resumes all come from one consistent
// tree. A link is matched by its real path in the root (no symbolic link
// before it), whatever alias the session used to reach it. Release ends the
// session's hold; a Pins is safe for concurrent use.
type Pins struct {
	links map[string]string // real path in the root ("debian") → the snapshot's virtual path ("/debian")
	reg   Pinner

	mu       sync.Mutex
	held     map[string]string // real path → the link's text when the session first read it
	released bool
}

// NewPins returns an empty table for the snapshot links at the virtual paths
// paths ("/debian"), whose holds are counted by reg (nil counts nothing).
func NewPins(paths []string, reg Pinner) *Pins {
	links := make(map[string]string, len(paths))
	for _, p := range paths {
		virtual, rel := clean(p)
		links[rel] = virtual
	}

	return &Pins{links: links, reg: reg, held: make(map[string]string)}
}

// WithPins returns a view of f whose lookups resolve the snapshot links of
// pins once and keep what they read (see Pins). The view shares f's os.Root
// and options; closing it does nothing. Views made from it (WorldReadable,
// Resume, DropBox) keep the pins.
func (f *Fs) WithPins(pins *Pins) *Fs {
	v := *f
	v.pins, v.view = pins, true

	return &v
}

// CopyName is how a snapshot copy is named in reports, from the text of its
// link: cleaned, so that "./debian.1" and "debian.1" are one copy.
func CopyName(text string) string {
	return path.Clean(text)
}

// target returns the text of the link at real path rel: the one the session
// keeps if rel is a snapshot link, read with readlink (and then kept, unless
// peek, or keep refuses it: a link that leaves the tree is not kept, so the
// session sees the link fixed) the first time. After Release, a snapshot
// link is read afresh and nothing more is kept.
func (p *Pins) target(rel string, peek bool, readlink func() (string, error), keep func(text string) bool) (string, error) {
	virtual, ok := p.links[rel]
	if !ok {
		return readlink()
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	if text, ok := p.held[rel]; ok {
		return text, nil
	}

	text, err := readlink()
	if err != nil || peek || p.released || !keep(text) {
		return text, err
	}

	p.held[rel] = text
	if p.reg != nil {
		p.reg.Pin(virtual, CopyName(text))
	}

	return text, nil
}

// Release lets go of every copy the session holds (the registry's counts
// drop); it is called once the session and its last transfer have ended.
// Calling it again does nothing.
func (p *Pins) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.released {
		return
	}

	p.released = true
	for rel, text := range p.held {
		if p.reg != nil {
			p.reg.Unpin(p.links[rel], CopyName(text))
		}
	}

	clear(p.held)
}

// Held returns the copies the session holds, by snapshot virtual path.
func (p *Pins) Held() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()

	out := make(map[string]string, len(p.held))
	for rel, text := range p.held {
		out[p.links[rel]] = CopyName(text)
	}

	return out
}

// Key names the copies the session holds in one string ("" for none), for
// caches of what the session sees: two sessions with the same key see the
// same tree.
func (p *Pins) Key() string {
	p.mu.Lock()
	defer p.mu.Unlock()

	if len(p.held) == 0 {
		return ""
	}

	parts := make([]string, 0, len(p.held))
	for rel, text := range p.held {
		parts = append(parts, rel+"\x00"+text)
	}

	slices.Sort(parts)

	return strings.Join(parts, "\x00\x00")
}

// readlink reads the symbolic link elem of folder dir, at real path rel in
// the root (elem itself in the root, "" for the folder's real path there),
// through the session's pins: a snapshot link gives the copy the session
// keeps (see Pins). peek reads without making the session hold the copy.
func (f *Fs) readlink(dir *os.Root, at, elem string, peek bool) (string, error) {
	if f.pins == nil {
		return dir.Readlink(elem)
	}

	rel := elem
	if at != "." && at != "" {
		rel = at + "/" + elem
	}

	return f.pins.target(rel, peek, func() (string, error) { return dir.Readlink(elem) }, func(text string) bool {
		_, inside := f.linkTarget(text)

		return inside
	})
}

// SnapshotCopy returns the copy the snapshot link at virtual path p leads
// to now, for a request that starts afresh (a new session, an HTTP request,
// a manifest of the current tree): the link's text, cleaned (CopyName), and
// the copy's virtual path ("/debian.2"). It reads the link under f's rules,
// so a link that dangles, leaves the root or is denied is fs.ErrNotExist; a
// name that is not a symbolic link fails with fs.ErrInvalid. It never pins:
// with pins, the copy the session keeps is returned if it holds one.
func (f *Fs) SnapshotCopy(p string) (copyName, copyPath string, err error) {
	virtual, _ := clean(p)
	if virtual == "/" {
		return "", "", pathError("readlink", virtual, fs.ErrInvalid)
	}

	parent, err := f.lookup(path.Dir(virtual), follow)
	if err != nil {
		return "", "", pathError("readlink", virtual, err)
	}
	defer parent.close()

	name := path.Base(virtual)
	dir := parent.parent
	if parent.rel != "." {
		if dir, err = parent.parent.OpenRoot(parent.name); err != nil {
			return "", "", pathError("readlink", virtual, err)
		}
		defer dir.Close()
	}

	info, err := dir.Lstat(name)
	switch {
	case err != nil:
		return "", "", pathError("readlink", virtual, err)
	case info.Mode()&fs.ModeSymlink == 0:
		return "", "", pathError("readlink", virtual, fs.ErrInvalid)
	}

	text, err := f.readlink(dir, parent.rel, name, true)
	if err != nil {
		return "", "", pathError("readlink", virtual, err)
	}

	target, inside := f.linkTarget(text)
	if !inside {
		return "", "", pathError("readlink", virtual, fs.ErrNotExist)
	}

	if !path.IsAbs(target) {
		target = path.Join(path.Dir(virtual), target)
	}

	return CopyName(text), path.Clean(target), nil
}
