package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"wharf/auth"
)

// publicTree is what anonymous users may read, for the check that no
// writable account keeps its files there (see exposes): anonymous.root and
// its upload_dir, as real paths (absolute, symbolic links resolved), or as
// key prefixes with s3.
type publicTree struct {
	root     string // anonymous.root as written
	real     string // its real path, or its clean key prefix with s3
	info     fs.FileInfo
	box      string // upload_dir's real path; "" for none
	prefixes bool   // s3: compare key prefixes, not folders
}

// publicTree returns the anonymous tree that writable homes must stay out
// of, or nil when nothing is to be checked: anonymous logins are off,
// anonymous.shares_homes says the sharing is meant, or the root is broken
// (which Validate reports against anonymous.root).
func (c *Config) publicTree() *publicTree {
	a := c.Anonymous
	if !a.Enabled || a.SharesHomes || a.Root == "" {
		return nil
	}

	if c.Storage.S3() {
		return &publicTree{root: a.Root, real: cleanPrefix(a.Root), prefixes: true}
	}

	resolved, err := realPath(a.Root)
	if err != nil {
		return nil
	}

	t := &publicTree{root: a.Root, real: resolved}
	t.info, _ = os.Stat(resolved) // nil while the root does not exist

	if a.UploadDir != "" && !filepath.IsAbs(a.UploadDir) {
		if box, err := realPath(filepath.Join(resolved, a.UploadDir)); err == nil && within(box, resolved) {
			t.box = box
		}
	}

	return t
}

// exposes reports, as a problem of key, that u's home lies inside the tree
// when u may write: anonymous users could then read what the account
// uploads (or, below upload_dir, strangers' uploads would land in its home).
// A read-only account keeps nothing private there; a home that contains the
// anonymous root (an account that publishes) is no exposure either.
func (t *publicTree) exposes(p *problems, key string, u User) {
	access := u.AccessLevel()
	if access == auth.ReadOnly || u.Home == "" {
		return
	}

	home := cleanPrefix(u.Home)
	if !t.prefixes {
		resolved, err := realPath(u.Home)
		if err != nil {
			return
		}
		home = resolved
	}

	if !t.contains(home) {
		return
	}

	// A home reached through a link is named as it is really.
	is := "is"
	if abs, _ := filepath.Abs(u.Home); !t.prefixes && home != abs {
		is = fmt.Sprintf("really %s, which is", home)
	}

	fix := "keep homes in a tree of their own (such as /srv/ftp/home/<user> beside /srv/ftp/pub), " +
		"or set anonymous.shares_homes = true if that is meant"

	switch {
	case t.box != "" && within(home, t.box):
		p.addf(key, "%s inside anonymous.upload_dir %q of anonymous.root %q: strangers' uploads would land "+
			"in this %s account's home; %s", is, t.boxName(), t.root, access, fix)
	case home == t.real:
		p.addf(key, "%s anonymous.root %q itself: anonymous users could read everything this %s account "+
			"uploads; %s", is, t.root, access, fix)
	default:
		p.addf(key, "%s inside anonymous.root %q: anonymous users could read what this %s account uploads; %s",
			is, t.root, access, fix)
	}
}

// boxName is upload_dir as the message names it: relative to the root.
func (t *publicTree) boxName() string {
	rel, err := filepath.Rel(t.real, t.box)
	if err != nil {
		return t.box
	}

	return rel
}

// contains reports whether home (a real path, or a clean prefix with s3) is
// the tree's root or below it. On disk a home below a bind mount of the root,
// which shares no path with it, is found by comparing each folder above the
// home with the root itself.
func (t *publicTree) contains(home string) bool {
	if t.prefixes {
		return t.real == "/" || home == t.real || strings.HasPrefix(home, t.real+"/")
	}

	if within(home, t.real) {
		return true
	}

	if t.info == nil {
		return false
	}

	for dir := home; ; dir = filepath.Dir(dir) {
		if info, err := os.Stat(dir); err == nil && os.SameFile(info, t.info) {
			return true
		}

		if filepath.Dir(dir) == dir {
			return false
		}
	}
}

// within reports whether the clean absolute path p is dir or below it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)

	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// realPath returns p made absolute with its symbolic links resolved. The
// part of p that does not exist yet (a folder create_missing will make) is
// appended as written.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}

	rest := ""
	for dir := abs; ; {
		resolved, err := filepath.EvalSymlinks(dir)
		switch {
		case err == nil:
			return filepath.Join(resolved, rest), nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", err
		}

		parent := filepath.Dir(dir)
		if parent == dir {
			return abs, nil
		}

		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// cleanPrefix is a key prefix as the s3 backend reads it: "/pub/" and
// "pub" are both "/pub".
func cleanPrefix(prefix string) string {
	return path.Clean("/" + strings.ReplaceAll(prefix, `\`, "/"))
}
