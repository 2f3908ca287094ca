package server

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf/auth"
)

// entry is a listed entry made up for the formatting tests.
type entry struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
	sys   any
}

func (e entry) Name() string       { return e.name }
func (e entry) Size() int64        { return e.size }
func (e entry) Mode() fs.FileMode  { return e.mode }
func (e entry) ModTime() time.Time { return e.mtime }
func (e entry) IsDir() bool        { return e.mode.IsDir() }
func (e entry) Sys() any           { return e.sys }

type linkEntry struct {
	entry
	target string
}

func (l linkEntry) LinkTarget() string { return l.target }

// The lines a listing appends are the ones fmt made before: LIST's ls -l
// line, MLSD's facts, NLST's names.
func TestListingLinesAsBefore(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	entries := []os.FileInfo{
		entry{name: "a.iso", size: 4_700_000_000, mode: 0o644, mtime: now.Add(-time.Hour)},
		entry{name: "old", size: 0, mode: fs.ModeDir | 0o755, mtime: now.AddDate(-2, 0, 0)},
		entry{name: "future", size: 123_456_789_012_345, mode: 0o600, mtime: now.Add(48 * time.Hour)},
		entry{name: "zero time", size: 7, mode: fs.ModeSetuid | 0o755},
		entry{name: "disk", size: 1, mode: fs.ModeSticky | fs.ModeDir | 0o1777, mtime: now.Add(-time.Minute),
			sys: &syscall.Stat_t{Dev: 0x803, Ino: 0xbeef}},
		linkEntry{entry: entry{name: "latest", mode: fs.ModeSymlink | 0o777, mtime: now}, target: "2.4.1"},
		title{FileInfo: entry{name: "x", mode: fs.ModeDir | 0o755, mtime: now}, name: ".", kind: "cdir"},
	}

	// What lsLine and facts were, with fmt.
	lsLine := func(fi os.FileInfo) string {
		date := "Jan _2 15:04"
		if t := fi.ModTime(); t.After(now.Add(time.Hour)) || now.Sub(t) > 182*24*time.Hour {
			date = "Jan _2  2006"
		}

		name := fi.Name()
		if link, ok := fi.(linkInfo); ok {
			name += " -> " + link.LinkTarget()
		}

		return fmt.Sprintf("%s 1 ftp ftp %12d %s %s", lsMode(fi.Mode()), fi.Size(), fi.ModTime().Format(date), name)
	}
	facts := func(s *session, fi os.FileInfo, set factSet) string {
		var b strings.Builder
		if set&factType != 0 {
			b.WriteString("Type=" + typeFact(fi) + ";")
		}
		if set&factSize != 0 {
			b.WriteString("Size=" + strconv.FormatInt(fi.Size(), 10) + ";")
		}
		if set&factModify != 0 && !fi.ModTime().IsZero() {
			b.WriteString("Modify=" + fi.ModTime().UTC().Format("20060102150405") + ";")
		}
		if set&factPerm != 0 {
			b.WriteString("Perm=" + perm(s.account.Access, s.account.Overwrite, fi.IsDir()) + ";")
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && set&factUnique != 0 {
			fmt.Fprintf(&b, "Unique=%xg%x;", st.Dev, st.Ino)
		}
		if set&factUnixMode != 0 {
			fmt.Fprintf(&b, "UNIX.mode=0%o;", unixMode(fi.Mode()))
		}

		return b.String()
	}

	s := &session{account: auth.Account{Access: auth.ReadWrite}}
	for _, fi := range entries {
		if got, want := string(appendLsLine([]byte("x"), fi, now)), "x"+lsLine(fi); got != want {
			t.Errorf("LIST line of %q:\n got %q\nwant %q", fi.Name(), got, want)
		}

		for _, set := range []factSet{defaultFacts, defaultFacts | factUnixMode, factSize, 0} {
			if got, want := s.facts(fi, set), facts(s, fi, set); got != want {
				t.Errorf("facts %v of %q:\n got %q\nwant %q", set, fi.Name(), got, want)
			}
		}
	}

	for _, tc := range []struct {
		arg     string
		pattern bool
	}{
		{"", false}, {".", false}, {"./", false}, {"/", false}, {"/pub", false}, {"pub/", false}, {"a//b/", false},
		{"*.iso", true}, {"/pub/*.iso", true}, {"pub/*", true}, {"/*", true},
	} {
		prefix := tc.arg
		if tc.pattern {
			prefix = path.Dir(tc.arg)
		}

		want := path.Join(prefix, "a.iso")
		if prefix == "" || prefix == "." {
			want = "a.iso"
		}

		if got := string(nlstLine(tc.arg, tc.pattern, false)(nil, entries[0])); got != want {
			t.Errorf("NLST %q names a.iso %q, want %q", tc.arg, got, want)
		}
	}
}
