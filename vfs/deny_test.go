package vfs

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"sort"
	"testing"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

func TestDefaultDeny(t *testing.T) {
	t.Parallel()
	m := newMatcher(DefaultDeny())
	for name, want := range map[string]bool{
		".~tmp~":                true,  // rsync --delay-updates
		".big.iso.Ab12Cd":       true,  // rsync's partial of big.iso
		".file.tar.gz.a1B2c3":   true,  // ... of file.tar.gz
		".R-latest.pkg.000000":  true,  // digits only
		"..bashrc.XyZ123":       true,  // ... of .bashrc
		".message":              false, // shown by CWD on vsftpd and ProFTPD
		".htaccess":             false,
		".well-known":           false,
		".mirror.tar":           false, // three letters after the dot
		".big.iso.Ab12C":        false, // five
		".big.iso.Ab12Cde":      false, // seven
		".big.iso.Ab-2_d":       false, // not mkstemp's letters
		"big.iso.Ab12Cd":        false, // no leading dot
		"..abcdef":              false, // no name
		".~tmp~x":               false,
		TempPrefix + "0123abcd": false, // wharf's own are hidden apart
	} {
		if got := m.match(name); got != want {
			t.Errorf("%q: denied %t, want %t", name, got, want)
		}
	}
}

// TestDenyPatterns: a pattern is tried only on names that start with its
// literal text, with the same answers as path.Match; a malformed pattern
// still matches every name, whatever its literal text (a deny list fails
// closed).
func TestDenyPatterns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		glob, name string
		want       bool
	}{
		{"core", "core", true},
		{"core", "core2", false},
		{"*.part", "a.part", true},
		{"*.part", "a.parts", false},
		{"tmp-?", "tmp-1", true},
		{"tmp-?", "tm", false},
		{`\*x`, "*x", true},
		{`\*x`, "ax", false},
		{"[ab]c", "bc", true},
		{"[ab]c", "cc", false},
		{"x[", "x", true},    // malformed
		{"x[", "abc", true},  // malformed, and abc lacks its literal x
		{"ab\\", "zz", true}, // malformed: a trailing backslash
	} {
		if got := newMatcher([]string{tc.glob}).match(tc.name); got != tc.want {
			t.Errorf("pattern %q, name %q: denied %t, want %t", tc.glob, tc.name, got, tc.want)
		}
	}
}

func TestDenyDecorator(t *testing.T) {
	t.Parallel()
	mem := afero.NewMemMapFs()
	for _, name := range []string{"/.big.iso.Ab12Cd", "/.c.txt.Ab12Cd", "/.message", "/a.txt", "/.~tmp~/x", "/pub/z.txt"} {
		if err := afero.WriteFile(mem, name, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fsys := Deny(mem, DefaultDeny())

	// Read one entry at a time: a batch of denied names is not the end.
	d, err := fsys.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		infos, err := d.Readdir(1)
		for _, info := range infos {
			names = append(names, info.Name())
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Close()
	sort.Strings(names)
	if want := []string{".message", "a.txt", "pub"}; !slices.Equal(names, want) {
		t.Errorf("Readdir(1) showed %q, want %q", names, want)
	}
	d, err = fsys.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	all, err := d.Readdirnames(-1)
	_ = d.Close()
	sort.Strings(all)
	if err != nil || !slices.Equal(all, names) {
		t.Errorf("Readdirnames(-1) = %q, %v, want %q", all, err, names)
	}

	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"stat", func() error { _, err := fsys.Stat("/.~tmp~/x"); return err }(), fs.ErrNotExist},
		{"open", closeFile(fsys.Open("/.big.iso.Ab12Cd")), fs.ErrNotExist},
		{"remove", fsys.Remove("/.~tmp~"), fs.ErrNotExist},
		{"chmod", fsys.Chmod("/.~tmp~/x", 0o600), fs.ErrNotExist},
		{"create", closeFile(fsys.Create("/pub/.z.txt.Ab12Cd")), ftpserver.ErrFileNameNotAllowed},
		{"mkdir", fsys.Mkdir("/.~tmp~", 0o755), ftpserver.ErrFileNameNotAllowed},
		{"rename to", fsys.Rename("/a.txt", "/.~tmp~/a.txt"), ftpserver.ErrFileNameNotAllowed},
		{"rename from", fsys.Rename("/.big.iso.Ab12Cd", "/big.iso"), fs.ErrNotExist},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if err := fsys.RemoveAll("/.~tmp~"); err != nil {
		t.Errorf("removeall: %v", err)
	}
	if ok, _ := afero.Exists(mem, "/.~tmp~/x"); !ok {
		t.Error("removeall removed a denied folder")
	}
	if got, err := afero.ReadFile(fsys, "/pub/z.txt"); err != nil || string(got) != "x" {
		t.Errorf("an allowed file: %q, %v", got, err)
	}
}
