package server

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"go.uber.org/zap"
)

// listingWait is how long a listing waits for a free slot before giving up;
// clients wait longer than this for a reply.
const listingWait = 30 * time.Second

// listingSlots bounds the directory reads running at once. The engine holds
// a whole listing in memory (about 400 bytes an entry: 40 MiB for 100,000),
// so the bound is on memory, the same on every machine, not on cores.
const listingSlots = 4

// readBatch is how many entries one Readdir call reads.
const readBatch = 1024

// maxPattern bounds a listing pattern's length.
const maxPattern = 255

var (
	errListingsBusy = errors.New("too many listings in progress, try again")
)

var _ ftpserver.ClientDriverExtensionFileList = (*session)(nil)

// ReadDir lists a directory for LIST, NLST, MLSD and STAT. It reads at most
// max_list_entries entries, a bounded number of listings run at once, and the
// last path element may be a pattern of * and ? (so that "mget *.iso" works):
// one level, no recursion, no brace expansion.
func (s *session) ReadDir(name string) ([]os.FileInfo, error) {
	dir, pattern := name, ""
	if base := path.Base(name); isPattern(base) && s.isListing() {
		if _, err := s.Fs.Stat(name); err != nil { // a real file named "*" lists as itself
			dir, pattern = path.Dir(name), base
			s.info.cc.SetListPath(dir)
		}
	}

	// Opening the folder checks the session may list it, cache or not.
	f, err := s.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	key := dirKey{home: s.account.Home, dir: path.Clean(path.Join("/", dir))}
	var modTime time.Time
	if st, err := f.Stat(); err == nil {
		modTime = st.ModTime()
	}

	if list, ok := s.srv.dirs.get(key, modTime); ok {
		return filterList(list, pattern), nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), listingWait)
	defer cancel()

	select {
	case s.srv.listings <- struct{}{}:
		defer func() { <-s.srv.listings }()
	case <-ctx.Done():
		return nil, &fs.PathError{Op: "list", Path: name, Err: errListingsBusy}
	}

	limit := s.srv.opts.MaxListEntries
	// NLST shows names only: read names, with no stat per entry.
	namesOnly := s.info.cc.GetLastCommand() == "NLST"
	var out []os.FileInfo
	read := 0 // entries read, matching or not: a pattern bounds the work too

	for limit <= 0 || (len(out) < limit && read < limit) {
		var batch []os.FileInfo
		var err error

		if namesOnly {
			var names []string
			names, err = f.Readdirnames(readBatch)
			for _, n := range names {
				batch = append(batch, nameOnly(n))
			}
		} else {
			batch, err = f.Readdir(readBatch)
		}

		read += len(batch)

		for _, fi := range batch {
			if pattern == "" || match(pattern, fi.Name()) {
				out = append(out, fi)
			}
		}

		if errors.Is(err, io.EOF) || len(batch) == 0 {
			break
		}

		if err != nil {
			return nil, err
		}
	}

	if limit > 0 && (len(out) >= limit || read >= limit) {
		out = out[:min(len(out), limit)]
		s.logger().Warn("listing truncated", zap.String("path", name), zap.Int("max_list_entries", limit))
	}

	slices.SortFunc(out, func(a, b os.FileInfo) int { return cmp.Compare(a.Name(), b.Name()) })

	if pattern == "" && !namesOnly {
		s.srv.dirs.put(key, modTime, out)
	}

	return out, nil
}

// filterList returns the entries of a cached listing that match pattern.
func filterList(list []os.FileInfo, pattern string) []os.FileInfo {
	if pattern == "" {
		return list
	}

	var out []os.FileInfo
	for _, fi := range list {
		if match(pattern, fi.Name()) {
			out = append(out, fi)
		}
	}

	return out
}

// isListing reports whether the command in progress lists a directory.
func (s *session) isListing() bool {
	switch s.info.cc.GetLastCommand() {
	case "LIST", "NLST", "MLSD", "STAT":
		return true
	default:
		return false
	}
}

func isPattern(s string) bool {
	return strings.ContainsAny(s, "*?")
}

// globStat makes Stat of a pattern succeed for listing commands, so the
// engine goes on to ReadDir, which expands it.
func (s *session) globStat(name string) (os.FileInfo, bool) {
	base := path.Base(name)
	if !isPattern(base) || !s.isListing() || isPattern(path.Dir(name)) || len(base) > maxPattern {
		return nil, false
	}

	st, err := s.Fs.Stat(path.Dir(name))
	if err != nil || !st.IsDir() {
		return nil, false
	}

	return namedDir{FileInfo: st, name: base}, true
}

// nameOnly is a directory entry known by its name alone, for NLST.
type nameOnly string

func (n nameOnly) Name() string     { return string(n) }
func (nameOnly) Size() int64        { return 0 }
func (nameOnly) Mode() fs.FileMode  { return 0 }
func (nameOnly) ModTime() time.Time { return time.Time{} }
func (nameOnly) IsDir() bool        { return false }
func (nameOnly) Sys() any           { return nil }

type namedDir struct {
	os.FileInfo
	name string
}

func (d namedDir) Name() string { return d.name }

// match reports whether name matches pattern, where * is any run of
// characters and ? any one. Segments between stars are matched greedily
// left to right, which is exact for this grammar and never backtracks, so
// even a pattern of many stars costs at most len(name) × len(pattern).
func match(pattern, name string) bool {
	segments := strings.Split(pattern, "*")
	if len(segments) == 1 {
		return len(name) == len(pattern) && matchHere(pattern, name)
	}

	first, last := segments[0], segments[len(segments)-1]
	if len(name) < len(first)+len(last) || !matchHere(first, name) || !matchHere(last, name[len(name)-len(last):]) {
		return false
	}

	rest := name[len(first) : len(name)-len(last)]
	for _, seg := range segments[1 : len(segments)-1] {
		i := find(seg, rest)
		if i < 0 {
			return false
		}

		rest = rest[i+len(seg):]
	}

	return true
}

// matchHere reports whether s starts with seg, where ? matches any byte.
func matchHere(seg, s string) bool {
	if len(s) < len(seg) {
		return false
	}

	for i := range len(seg) {
		if seg[i] != '?' && seg[i] != s[i] {
			return false
		}
	}

	return true
}

// find returns the first index where seg matches in s, or -1.
func find(seg, s string) int {
	for i := 0; i+len(seg) <= len(s); i++ {
		if matchHere(seg, s[i:]) {
			return i
		}
	}

	return -1
}
