package vfs

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// recorder is an afero.Fs that records the names Stat is called with.
type recorder struct {
	afero.Fs // nil: other methods are not called
	names    chan string
}

func (r recorder) Stat(name string) (os.FileInfo, error) {
	r.names <- name

	return nil, nil
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cwd, in, want string
	}{
		{"a relative name is joined to the working directory", "/pub", "a.txt", "/pub/a.txt"},
		{"an empty name means the working directory", "/pub/2.4.1", "", "/pub/2.4.1"},
		{"an absolute name ignores the working directory", "/pub", "/x/a.txt", "/x/a.txt"},
		{"an absolute name is cleaned", "/pub", "/x/./y//../a.txt/", "/x/a.txt"},
		{"dot-dot goes up one folder", "/pub/2.4.1", "../a.txt", "/pub/a.txt"},
		{"dot-dot never climbs above the root", "/pub", "../../../../a.txt", "/a.txt"},
		{"absolute dot-dot never climbs above the root", "/pub", "/../../etc/passwd", "/etc/passwd"},
		{"a list option is just a name", "/pub", "-la", "/pub/-la"},
		{"a very long name stays one path", "/", strings.Repeat("a", 300), "/" + strings.Repeat("a", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := recorder{names: make(chan string, 1)}
			if _, err := Resolve(rec, func() string { return tt.cwd }).Stat(tt.in); err != nil {
				t.Fatal(err)
			}
			if got := <-rec.names; got != tt.want {
				t.Errorf("Stat(%q) in %s reached %q, want %q", tt.in, tt.cwd, got, tt.want)
			}
		})
	}
}

func TestResolveAppliesToBothNamesOfRename(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := Resolve(sb.open(t, Options{}), func() string { return "/pub" })
	if err := fsys.Rename("a.txt", "../../b.txt"); err != nil {
		t.Fatal(err)
	}
	if got := diskFile(t, sb.root+"/b.txt"); got != "hello" {
		t.Errorf("b.txt = %q, want hello", got)
	}
	err := fsys.Rename("a.txt", "c.txt")
	var le *os.LinkError
	if !errors.As(err, &le) || le.Old != "/pub/a.txt" || le.New != "/pub/c.txt" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got %#v, want a LinkError /pub/a.txt -> /pub/c.txt", err)
	}
}

func TestResolveRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := Resolve(sb.open(t, Options{}), func() string { return "/pub" })
	ops := map[string]func(afero.Fs, string) error{
		"stat": func(fsys afero.Fs, n string) error { _, err := fsys.Stat(n); return err },
		"open": func(fsys afero.Fs, n string) error { return closeFile(fsys.Open(n)) },
		"openfile": func(fsys afero.Fs, n string) error {
			return closeFile(fsys.OpenFile(n, os.O_WRONLY|os.O_CREATE, 0o644))
		},
		"create":   func(fsys afero.Fs, n string) error { return closeFile(fsys.Create(n)) },
		"mkdir":    func(fsys afero.Fs, n string) error { return fsys.Mkdir(n, 0o755) },
		"mkdirall": func(fsys afero.Fs, n string) error { return fsys.MkdirAll(n, 0o755) },
		"remove":   func(fsys afero.Fs, n string) error { return fsys.Remove(n) },
		"removeall": func(fsys afero.Fs, n string) error {
			return fsys.RemoveAll(n)
		},
		"rename from": func(fsys afero.Fs, n string) error { return fsys.Rename(n, "x") },
		"rename to":   func(fsys afero.Fs, n string) error { return fsys.Rename("a.txt", n) },
		"chmod":       func(fsys afero.Fs, n string) error { return fsys.Chmod(n, 0o644) },
		"chown":       func(fsys afero.Fs, n string) error { return fsys.Chown(n, 0, 0) },
		"chtimes":     func(fsys afero.Fs, n string) error { return fsys.Chtimes(n, time.Unix(0, 0), time.Unix(0, 0)) },
	}
	for _, bad := range []string{"a\x00b", "a\rb", "a\nb", "a.txt\r\n"} {
		for opName, op := range ops {
			t.Run(opName+" of "+strconv.Quote(bad)+" is not allowed", func(t *testing.T) {
				err := op(fsys, bad)
				if !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
					t.Fatalf("got %v, want ErrFileNameNotAllowed", err)
				}
				if strings.ContainsAny(err.Error(), "\x00\r\n") {
					t.Fatalf("error text %q would break the reply line", err.Error())
				}
			})
		}
	}
	if got := diskFile(t, sb.root+"/pub/a.txt"); got != "hello" {
		t.Errorf("a.txt = %q", got)
	}
}
