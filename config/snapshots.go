package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"wharf/server"
)

// Snapshot is one [[snapshots]] table: a folder of the anonymous tree that a
// mirror's sync flips between copies, a symbolic link to the current one
// ("debian -> debian.2"). Each anonymous session keeps the copy it first
// saw; wharf snapshot-wait tells a sync script when an old copy is free.
type Snapshot struct {
	// Path is the link, as an FTP client sees it from the anonymous root
	// ("/debian"). The folders above it must be real folders.
	Path string `toml:"path"` // required
	// Module names the mirror in the sync-health metrics.
	Module string `toml:"module"` // "": path without its leading "/" ("debian", "pub/debian")
	// Trace is the file a complete sync writes (ftpsync:
	// "project/trace/<host>"): relative to the copy, or an absolute path on
	// disk. "" reports no sync health.
	Trace string `toml:"trace"` // ""
	// MaxAge is how old the trace's last sync may be before /readyz reports
	// the module degraded; "0s" never by age (a missing trace still is).
	MaxAge Duration `toml:"max_age"` // "0s"; > 0 only with trace
}

// ModuleName is the module label of s: Module, else Path without its
// leading "/".
func (s Snapshot) ModuleName() string {
	if s.Module != "" {
		return s.Module
	}

	return strings.TrimPrefix(path.Clean("/"+s.Path), "/")
}

// SnapshotOptions are [[snapshots]] as the server takes them.
func (c *Config) SnapshotOptions() server.Snapshots {
	if !c.Anonymous.Enabled || len(c.Snapshots) == 0 {
		return server.Snapshots{}
	}

	out := server.Snapshots{Root: c.Anonymous.Root}
	for _, s := range c.Snapshots {
		out.List = append(out.List, server.Snapshot{
			Path: path.Clean(s.Path), Module: s.ModuleName(), Trace: s.Trace, MaxAge: s.MaxAge.Duration,
		})
	}

	return out
}

// checkSnapshots validates [[snapshots]]. They belong to the anonymous
// tree: with anonymous logins off nothing in them is used, so nothing is
// checked.
func (c *Config) checkSnapshots(p *problems) {
	if !c.Anonymous.Enabled || len(c.Snapshots) == 0 {
		return
	}

	if c.Storage.S3() {
		p.addf("snapshots", "need storage.backend = \"disk\": an object store has no symbolic links to flip")

		return
	}

	paths, modules := map[string]int{}, map[string]int{}
	for i, s := range c.Snapshots {
		key := fmt.Sprintf("snapshots[%d]", i)

		pathErr := checkSnapshotPath(s.Path)
		if pathErr != nil {
			p.add(key+".path", pathErr)
		} else {
			if j, dup := paths[s.Path]; dup {
				p.addf(key+".path", "%q is also snapshots[%d].path", s.Path, j)
			}

			paths[s.Path] = i
			c.checkSnapshotOnDisk(p, key+".path", s.Path)
		}

		if strings.ContainsFunc(s.Module, func(r rune) bool { return r < ' ' || r == '"' || r == '\\' }) {
			p.addf(key+".module", "%q holds a control character, a quote or a backslash", s.Module)
		} else if m := s.ModuleName(); pathErr == nil || s.Module != "" {
			if j, dup := modules[m]; dup {
				p.addf(key+".module", "%q is also the module of snapshots[%d]: give each a module of its own", m, j)
			}

			modules[m] = i
		}

		if s.Trace != "" && path.Clean(filepath.ToSlash(s.Trace)) == "." {
			p.addf(key+".trace", "%q names the copy itself: give the trace file (ftpsync: \"project/trace/<host>\")", s.Trace)
		}

		switch {
		case s.MaxAge.Duration < 0:
			p.addf(key+".max_age", "must be 0 or more, got %s", s.MaxAge)
		case s.MaxAge.Duration > 0 && s.Trace == "":
			p.addf(key+".max_age", "is set without trace: the age of the last sync is read from the trace file")
		}
	}
}

var errSnapshotRoot = errors.New(`is the anonymous root: give the link to the current copy, such as "/debian"`)

// checkSnapshotPath accepts a clean absolute virtual path other than "/".
func checkSnapshotPath(p string) error {
	switch {
	case p == "":
		return errors.New(`is required: the link to the current copy, as a client sees it, such as "/debian"`)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q must start with \"/\": write it from the anonymous root, as a client sees it (\"/%s\")", p,
			strings.TrimPrefix(p, "./"))
	case p == "/":
		return errSnapshotRoot
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path: write %q", p, path.Clean(p))
	case strings.ContainsAny(p, "\x00\r\n"):
		return fmt.Errorf("%q holds a NUL, CR or LF", p)
	}

	return nil
}

// checkSnapshotOnDisk checks, when the anonymous root exists, that the
// folders above p are real folders (a session's link is matched by its real
// path) and that p, if it exists yet, is a symbolic link.
func (c *Config) checkSnapshotOnDisk(p *problems, key, virtual string) {
	root, err := filepath.EvalSymlinks(c.Anonymous.Root)
	if err != nil {
		return // anonymous.root reports it
	}

	parent := filepath.Join(root, filepath.FromSlash(path.Dir(virtual)))
	if resolved, err := filepath.EvalSymlinks(parent); err == nil && resolved != parent {
		p.addf(key, "%q: %s is a symbolic link (to %s): give the path through real folders", virtual, path.Dir(virtual), resolved)

		return
	}

	info, err := os.Lstat(filepath.Join(parent, path.Base(virtual)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Not synced yet: the first sync makes it.
	case err != nil:
		p.add(key, err)
	case info.Mode()&fs.ModeSymlink == 0:
		p.addf(key, "%q is not a symbolic link: make it a link to the current copy (ln -s debian.1 debian)", virtual)
	}
}
