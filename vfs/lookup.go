package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
)

// maxLinks bounds the symbolic links one lookup follows, as Linux's 40 does.
const maxLinks = 40

// lookupFlags say how a lookup treats the last element of a path.
type lookupFlags uint8

const (
	// follow makes a symbolic link in the last element lead to its target,
	// as stat(2) does; without it the result is the link itself, as lstat(2).
	follow lookupFlags = 1 << iota
	// create allows the last element not to exist: it is about to be made.
	create
	// peek reads snapshot links without making the session keep the copy
	// (see Pins): a listing of the folder that holds one only shows it.
	peek
)

// place is where a virtual path leads on disk.
type place struct {
	parent *os.Root    // the open folder that holds it; the root itself for "/"
	name   string      // its name in parent; "." for the root
	rel    string      // its path for Fs.root, with no symbolic link in it; "." for the root
	info   fs.FileInfo // its lstat(2) info; nil if it does not exist (create)
	opened []*os.Root  // the folders the lookup opened, closed by close
}

// close closes the folders the lookup opened. Files opened in them stay open.
func (p *place) close() {
	for _, r := range p.opened {
		_ = r.Close()
	}
}

// level is one folder of a lookup in progress.
type level struct {
	dir  *os.Root
	name string // its name in the folder above; "" for the root
	shut bool   // with WorldReadable: others may not list it, so what is inside is private
}

// lookup walks p from the root one element at a time, the way the kernel's
// namei does, but inside the root and under the session's rules, and returns
// where it leads. Each element costs one lstat(2), each folder passed through
// an open(2), fstat(2) and close(2), and each link a readlink(2): a lookup
// is O(depth), about twice the system calls of os.Root's own.
//
//   - Symbolic links are followed (the last element's only with follow), by
//     their text: a relative one from the folder holding it, an absolute one
//     that names a path inside the root's folder on disk from the root (see
//     linkTarget). A link that leaves the root, another absolute link, or
//     more than maxLinks links make the path missing (fs.ErrNotExist), as
//     does a denied element (Options.Deny, TempPrefix), wherever the walk
//     meets it: in the name asked for or in a link's target.
//   - With WorldReadable, every element the walk looks up inside a folder
//     that others may not list (mode&0o005 != 0o005) is missing, and so is a
//     last element, other than a folder or a symbolic link, that others may
//     not read (mode&0o004 == 0). The root's own bits are not checked: the
//     operator chose it. With create, a new name may be made in a folder
//     others may not list (an upload folder is often 0733); a name that is
//     taken but private is fs.ErrExist.
//
// The path is not cleaned first: ".." after a link climbs from where the link
// led, as on disk. The caller must close the place. os.Root still confines
// every access the lookup and its caller make; the lookup decides what the
// session sees. Something renamed between the lookup and its use is outside
// what it can promise, which only matters to whoever can write the tree.
func (f *Fs) lookup(p string, how lookupFlags) (*place, error) {
	return f.walk(p, how, nil)
}

// walk is lookup. If at is not nil, walk also tells it where the path really
// leads as it goes: it calls at with the real path (as in place.rel) of the
// folder that the elements of p taken so far lead to, links in them
// followed, before it takes each next element of p, and, if it fails, with
// the real path of the folder where it stopped. DropBox uses it to know
// whether a path gets into the drop box on disk (Fs.reachesBox).
func (f *Fs) walk(p string, how lookupFlags, at func(rel string)) (*place, error) {
	stack := []level{{dir: f.root}}
	// The failure path is a function of its own (walkFailed): inlined at each
	// of the dozen places that fail, it made the walk's frame 1,264 bytes,
	// and a download's walk grew the stack of the goroutine the engine starts
	// for it (a copy of the whole stack).
	fail := func(err error) (*place, error) { return walkFailed(stack, at, err) }
	todo := elements(p)
	ofPath := len(todo) // the elements of p not taken yet, at the end of todo
	links := 0
	for len(todo) > 0 {
		if at != nil && len(todo) == ofPath {
			at(realPath(stack)) // no link's target is left to walk
		}
		elem := todo[0]
		todo = todo[1:]
		ofPath = min(ofPath, len(todo))
		last := len(todo) == 0
		top := stack[len(stack)-1]
		if elem == ".." {
			if len(stack) == 1 || top.shut {
				return fail(fs.ErrNotExist) // leaves the root, or looks inside a private folder
			}
			_ = top.dir.Close()
			stack = stack[:len(stack)-1]

			continue
		}
		if f.denied(elem) {
			return fail(fs.ErrNotExist)
		}
		info, err := top.dir.Lstat(elem)
		newName := last && how&create != 0
		switch {
		case newName && errors.Is(err, fs.ErrNotExist):
			return f.found(stack, elem, nil), nil
		case top.shut && err == nil && newName:
			return fail(fs.ErrExist)
		case top.shut:
			return fail(fs.ErrNotExist)
		case err != nil:
			return fail(err)
		}
		if info.Mode()&fs.ModeSymlink != 0 && (!last || how&follow != 0) {
			links++
			text, err := f.readlink(top.dir, realPathIf(f.pins != nil, stack), elem, how&peek != 0)
			target, inside := f.linkTarget(text)
			if err != nil || !inside || links > maxLinks {
				return fail(fs.ErrNotExist)
			}
			if path.IsAbs(target) {
				for _, l := range stack[1:] {
					_ = l.dir.Close()
				}
				stack = stack[:1]
			}
			todo = append(elements(target), todo...)

			continue
		}
		if f.private(info) {
			if newName {
				return fail(fs.ErrExist)
			}

			return fail(fs.ErrNotExist)
		}
		if last {
			return f.found(stack, elem, info), nil
		}
		if !info.IsDir() {
			return fail(syscall.ENOTDIR)
		}
		sub, err := top.dir.OpenRoot(elem)
		if err != nil {
			return fail(err)
		}
		stack = append(stack, level{dir: sub, name: elem, shut: f.worldReadable && info.Mode().Perm()&0o005 != 0o005})
	}

	// The path ends on a folder already open: the root, or one reached by "..".
	info, err := stack[len(stack)-1].dir.Stat(".")
	if err != nil {
		return fail(err)
	}
	if len(stack) == 1 {
		return &place{parent: f.root, name: ".", rel: ".", info: info}, nil
	}
	end := stack[len(stack)-1]

	return f.found(stack[:len(stack)-1], end.name, info, end.dir), nil
}

// realPath is the real path (as in place.rel) of the last folder of stack.
func realPath(stack []level) string {
	if len(stack) == 1 {
		return "."
	}
	names := make([]string, 0, len(stack)-1)
	for _, l := range stack[1:] {
		names = append(names, l.name)
	}

	return strings.Join(names, "/")
}

// realPathIf is realPath(stack) if want, else "": the real path costs an
// allocation that only a session with snapshot pins needs.
func realPathIf(want bool, stack []level) string {
	if !want {
		return ""
	}

	return realPath(stack)
}

// walkFailed ends a walk that failed with err: it tells at where the walk
// stopped and closes the folders the walk opened.
//
//go:noinline
func walkFailed(stack []level, at func(rel string), err error) (*place, error) {
	if at != nil {
		at(realPath(stack))
	}
	for _, l := range stack[1:] {
		_ = l.dir.Close()
	}

	return nil, err
}

// found returns the place of the entry name in the last folder of stack,
// which keeps every folder of stack below the root (and extra) to close.
func (f *Fs) found(stack []level, name string, info fs.FileInfo, extra ...*os.Root) *place {
	names := make([]string, 0, len(stack))
	opened := extra
	for _, l := range stack[1:] {
		names = append(names, l.name)
		opened = append(opened, l.dir)
	}
	names = append(names, name)

	return &place{parent: stack[len(stack)-1].dir, name: name, rel: strings.Join(names, "/"), info: info, opened: opened}
}

// private reports whether the session may not see the entry of lstat(2) info
// info, a file without the other-read bit (WorldReadable). Folders and
// symbolic links are not private themselves.
func (f *Fs) private(info fs.FileInfo) bool {
	mode := info.Mode()

	return f.worldReadable && !mode.IsDir() && mode&fs.ModeSymlink == 0 && mode.Perm()&0o004 == 0
}

// denied reports whether name, one path element, is neither listed nor
// served: an in-progress upload or a match of Options.Deny.
func (f *Fs) denied(name string) bool {
	return strings.HasPrefix(name, TempPrefix) || f.deny.match(name)
}

// deniedPath reports whether an element of the clean virtual path p is denied.
func (f *Fs) deniedPath(p string) bool {
	return strings.Contains(p, "/"+TempPrefix) || f.deny.matchPath(p)
}

// linkTarget returns where a symbolic link whose text is text leads, as the
// client sees it: the text itself when it is relative ("1.2.3", "../pub/x"),
// or, for an absolute text that names a path inside the root's folder on disk
// (as given to Open, or with its links resolved), that path as a virtual one
// ("/srv/ftp/pub/x" is "/pub/x"). inside is false for any other absolute text.
// The result is not cleaned: lookup walks its ".." as on disk.
func (f *Fs) linkTarget(text string) (target string, inside bool) {
	if !strings.HasPrefix(text, "/") {
		return text, true
	}
	elems := elements(text)
	for _, disk := range f.disk {
		if len(elems) >= len(disk) && slices.Equal(elems[:len(disk)], disk) {
			return "/" + strings.Join(elems[len(disk):], "/"), true
		}
	}

	return "", false
}

// elements splits p into its elements, leaving out empty ones and ".".
func elements(p string) []string {
	var out []string
	for elem := range strings.SplitSeq(p, "/") {
		if elem != "" && elem != "." {
			out = append(out, elem)
		}
	}

	return out
}
