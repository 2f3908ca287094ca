package vfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// alnum6 matches the six letters or digits that mkstemp(3) puts in a name.
const alnum6 = "[A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9][A-Za-z0-9]"

// DefaultDeny returns the patterns of rsync's temporary names, which a mirror
// must neither list nor serve while rsync is writing them:
//
//   - ".~tmp~": the folder where rsync --delay-updates (and so Debian's
//     ftpsync) keeps new files until the whole transfer is done;
//   - ".?*." plus six letters or digits: the file rsync writes before renaming
//     it over the real one, "." + name + "." + mkstemp's six characters
//     (".file.tar.gz.a1B2c3").
//
// Ordinary dotfiles (".message", ".htaccess", ".well-known") do not match. A
// dotfile whose name ends in a dot and exactly six letters or digits
// (".config.backup") looks like a partial and does. Each call returns a new
// slice.
func DefaultDeny() []string {
	return []string{".~tmp~", ".?*." + alnum6}
}

// checkPatterns returns an error naming the first malformed pattern.
func checkPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("deny pattern %q: %w", p, err)
		}
	}

	return nil
}

// matcher is a list of path.Match patterns, each matched against one element
// of a path. It is the one implementation of Options.Deny and Deny.
type matcher []pattern

// pattern is one path.Match pattern and the literal text that starts every
// name it matches: a name without it is not given to path.Match, which is
// most names (rsync's patterns start with "."), on every lookup and for
// every listed entry. A malformed pattern has no prefix, so it is always
// tried, and matches (fails closed).
type pattern struct {
	glob   string
	prefix string
}

func newMatcher(globs []string) matcher {
	m := make(matcher, 0, len(globs))
	for _, g := range globs {
		p := pattern{glob: g}
		if _, err := path.Match(g, ""); err == nil {
			p.prefix = g
			if i := strings.IndexAny(g, `*?[\`); i >= 0 {
				p.prefix = g[:i]
			}
		}
		m = append(m, p)
	}

	return m
}

// match reports whether name, one path element, matches a pattern. A
// malformed pattern matches every name: a deny list fails closed.
func (m matcher) match(name string) bool {
	for _, p := range m {
		if !strings.HasPrefix(name, p.prefix) {
			continue // path.Match cannot match
		}
		if ok, err := path.Match(p.glob, name); ok || err != nil {
			return true
		}
	}

	return false
}

// matchPath reports whether an element of the clean virtual path p matches.
func (m matcher) matchPath(p string) bool {
	if len(m) == 0 {
		return false
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem != "" && m.match(elem) {
			return true
		}
	}

	return false
}

// Deny returns fsys without the names that patterns match (path.Match, on
// each element of a path): such a path is not listed (its folder's Readdir and
// Readdirnames leave it out), every lookup or change of it (Stat, Open,
// OpenFile, Remove, Rename, Chmod, Chown, Chtimes) fails with fs.ErrNotExist,
// as if it were missing, and creating it (OpenFile with O_CREATE, Create,
// Mkdir, MkdirAll, Rename to it) fails with ftpserver.ErrFileNameNotAllowed
// (553), as for the names of in-progress uploads. RemoveAll of it does
// nothing, as of a missing path. Errors name the cleaned virtual path.
//
// Deny is for backends other than the disk (the S3 store, where no name is an
// alias of another); the disk Fs takes the same patterns in Options.Deny and
// also applies them to where symbolic links lead. A malformed pattern matches
// every name; Open checks them.
func Deny(fsys afero.Fs, patterns []string) afero.Fs {
	return deny{fs: fsys, m: newMatcher(patterns)}
}

type deny struct {
	fs afero.Fs
	m  matcher
}

// check returns the clean virtual path of name, and the error for op on it
// if it is denied.
func (d deny) check(op, name string, creating bool) (string, error) {
	p, _ := clean(name)
	if d.m.matchPath(p) {
		return p, hiddenError(op, p, creating)
	}

	return p, nil
}

func (d deny) Name() string { return d.fs.Name() }

func (d deny) Create(name string) (afero.File, error) {
	p, err := d.check("open", name, true)
	if err != nil {
		return nil, err
	}

	return d.fs.Create(p)
}

func (d deny) Open(name string) (afero.File, error) {
	return d.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens the named file; a folder opened for reading comes back with
// its listings filtered.
func (d deny) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	p, err := d.check("open", name, flag&os.O_CREATE != 0)
	if err != nil {
		return nil, err
	}
	f, err := d.fs.OpenFile(p, flag, perm)
	if err != nil || flag&writeFlags != 0 {
		return f, err
	}
	// Only folders are wrapped: a download keeps its own type (a bare *os.File
	// keeps sendfile(2)).
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return deniedDir{File: f, m: d.m}, nil
	}

	return f, nil
}

func (d deny) Stat(name string) (os.FileInfo, error) {
	p, err := d.check("stat", name, false)
	if err != nil {
		return nil, err
	}

	return d.fs.Stat(p)
}

func (d deny) Mkdir(name string, perm os.FileMode) error {
	p, err := d.check("mkdir", name, true)
	if err != nil {
		return err
	}

	return d.fs.Mkdir(p, perm)
}

func (d deny) MkdirAll(name string, perm os.FileMode) error {
	p, err := d.check("mkdir", name, true)
	if err != nil {
		return err
	}

	return d.fs.MkdirAll(p, perm)
}

func (d deny) Remove(name string) error {
	p, err := d.check("remove", name, false)
	if err != nil {
		return err
	}

	return d.fs.Remove(p)
}

func (d deny) RemoveAll(name string) error {
	p, err := d.check("remove", name, false)
	if err != nil {
		return nil //nolint:nilerr // a denied path is missing, and removing a missing path succeeds
	}

	return d.fs.RemoveAll(p)
}

func (d deny) Rename(oldname, newname string) error {
	oldPath, _ := clean(oldname)
	newPath, _ := clean(newname)
	var why error
	switch {
	case d.m.matchPath(oldPath):
		why = fs.ErrNotExist
	case d.m.matchPath(newPath):
		why = ftpserver.ErrFileNameNotAllowed
	default:
		return d.fs.Rename(oldPath, newPath)
	}

	return &os.LinkError{Op: "rename", Old: oldPath, New: newPath, Err: why}
}

func (d deny) Chmod(name string, mode os.FileMode) error {
	p, err := d.check("chmod", name, false)
	if err != nil {
		return err
	}

	return d.fs.Chmod(p, mode)
}

func (d deny) Chown(name string, uid, gid int) error {
	p, err := d.check("chown", name, false)
	if err != nil {
		return err
	}

	return d.fs.Chown(p, uid, gid)
}

func (d deny) Chtimes(name string, atime, mtime time.Time) error {
	p, err := d.check("chtimes", name, false)
	if err != nil {
		return err
	}

	return d.fs.Chtimes(p, atime, mtime)
}

// deniedDir is a folder of a Deny file system: its listings leave out the
// names the patterns match.
type deniedDir struct {
	afero.File
	m matcher
}

// Readdir returns up to n entries (all if n <= 0) whose names are not denied.
func (d deniedDir) Readdir(n int) ([]fs.FileInfo, error) {
	return readKept(n, d.File.Readdir, func(info fs.FileInfo) (fs.FileInfo, bool) {
		return info, !d.m.match(info.Name())
	})
}

// Readdirnames returns up to n names (all if n <= 0) that are not denied.
func (d deniedDir) Readdirnames(n int) ([]string, error) {
	return readKept(n, d.File.Readdirnames, func(name string) (string, bool) {
		return name, !d.m.match(name)
	})
}

// readKept reads a folder in batches of n (all at once if n <= 0) through
// read, and returns the entries keep shows, as keep shows them. With n > 0, a
// batch in which keep kept nothing is not the end of the folder: reading goes
// on until one entry is kept, the folder ends (io.EOF) or an error occurs.
func readKept[T any](n int, read func(int) ([]T, error), keep func(T) (T, bool)) ([]T, error) {
	var out []T
	for {
		batch, err := read(n)
		for _, e := range batch {
			if shown, ok := keep(e); ok {
				out = append(out, shown)
			}
		}
		if err != nil || n <= 0 || len(out) > 0 || len(batch) == 0 {
			if len(out) == 0 && n > 0 && err == nil {
				err = io.EOF
			}

			return out, err
		}
	}
}
