package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

// policyOps returns every afero.Fs operation, each on a name that exists in
// the sandbox (or may be created there).
func policyOps() map[string]func(afero.Fs) error {
	return map[string]func(afero.Fs) error{
		"create": func(fsys afero.Fs) error { return closeFile(fsys.Create("/pub/new.txt")) },
		"mkdir":  func(fsys afero.Fs) error { return fsys.Mkdir("/pub/d", 0o755) },
		"mkdirall": func(fsys afero.Fs) error {
			return fsys.MkdirAll("/pub/d/e", 0o755)
		},
		"open a file": func(fsys afero.Fs) error { return closeFile(fsys.Open("/pub/a.txt")) },
		"list a folder": func(fsys afero.Fs) error {
			d, err := fsys.Open("/pub")
			if err != nil {
				return err
			}
			defer d.Close()
			_, err = d.Readdir(-1)

			return err
		},
		"openfile read-only": func(fsys afero.Fs) error {
			return closeFile(fsys.OpenFile("/pub/a.txt", os.O_RDONLY, 0))
		},
		"openfile to store": func(fsys afero.Fs) error {
			return closeFile(fsys.OpenFile("/pub/new.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644))
		},
		"openfile to append": func(fsys afero.Fs) error {
			return closeFile(fsys.OpenFile("/pub/a.txt", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644))
		},
		"openfile to resume": func(fsys afero.Fs) error {
			return closeFile(fsys.OpenFile("/pub/a.txt", os.O_WRONLY|os.O_CREATE, 0o644))
		},
		"openfile read-write": func(fsys afero.Fs) error {
			return closeFile(fsys.OpenFile("/pub/a.txt", os.O_RDWR, 0))
		},
		"remove":    func(fsys afero.Fs) error { return fsys.Remove("/pub/a.txt") },
		"removeall": func(fsys afero.Fs) error { return fsys.RemoveAll("/pub/2.4.1") },
		"rename":    func(fsys afero.Fs) error { return fsys.Rename("/pub/a.txt", "/pub/b.txt") },
		"stat":      func(fsys afero.Fs) error { _, err := fsys.Stat("/pub/a.txt"); return err },
		"chmod":     func(fsys afero.Fs) error { return fsys.Chmod("/pub/a.txt", 0o600) },
		"chown":     func(fsys afero.Fs) error { return fsys.Chown("/pub/a.txt", os.Getuid(), os.Getgid()) },
		"chtimes": func(fsys afero.Fs) error {
			return fsys.Chtimes("/pub/a.txt", time.Unix(1e9, 0), time.Unix(1e9, 0))
		},
	}
}

func closeFile(f afero.File, err error) error {
	if err != nil {
		return err
	}

	return f.Close()
}

func TestPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy  string
		wrap    func(afero.Fs) afero.Fs
		refusal error
		allowed []string         // every other op is refused
		other   map[string]error // ops refused with another error than refusal
	}{
		{"read-only", ReadOnly, ErrReadOnly, []string{"open a file", "list a folder", "openfile read-only", "stat"}, nil},
		{"write-only", WriteOnly, ErrWriteOnly, []string{"create", "mkdir", "mkdirall", "openfile to store"}, map[string]error{
			"openfile to append": ErrCreateOnly, "openfile to resume": ErrCreateOnly, "openfile read-write": ErrCreateOnly,
		}},
		{"write-only with overwrite", WriteOnlyOverwrite, ErrWriteOnly, []string{
			"create", "mkdir", "mkdirall", "openfile to store", "openfile to append",
			"openfile to resume", "openfile read-write", "stat", "chtimes",
		}, nil},
	}
	for _, tt := range tests {
		for op, fn := range policyOps() {
			allowed := slices.Contains(tt.allowed, op)
			verdict := " is refused"
			if allowed {
				verdict = " is allowed"
			}
			t.Run(tt.policy+" "+op+verdict, func(t *testing.T) {
				t.Parallel()
				sb := newSandbox(t)
				err := fn(tt.wrap(sb.open(t, Options{Atomic: true})))
				sb.checkErrText(t, err)
				if allowed {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}

					return
				}
				want, ok := tt.other[op]
				if !ok {
					want = tt.refusal
				}
				if !errors.Is(err, want) {
					t.Fatalf("got %v, want %v", err, want)
				}
				if errors.Is(want, tt.refusal) && !errors.Is(err, fs.ErrPermission) {
					t.Fatalf("got %v, want an fs.ErrPermission", err)
				}
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Path == "" {
					t.Fatalf("got %#v, want a *fs.PathError naming the path", err)
				}
				if got := diskFile(t, sb.root+"/pub/a.txt"); got != "hello" {
					t.Fatalf("a.txt changed to %q", got)
				}
			})
		}
	}
}

func TestWriteOnlyCreatesOnly(t *testing.T) {
	t.Parallel()
	const (
		appe   = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		resume = os.O_WRONLY | os.O_CREATE // REST then STOR
		stou   = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	)
	tests := []struct {
		name   string
		target string
		flag   int
		want   error // nil: the upload lands
		exists bool  // the error also says the name exists
	}{
		{"a new file is stored", "/pub/new.txt", store, nil, false},
		{"a new file is appended to", "/pub/new.txt", appe, nil, false},
		{"a new file is created with O_EXCL", "/pub/new.txt", stou, nil, false},
		{"a new file is created read-write, write-only", "/pub/new.txt", os.O_RDWR | os.O_CREATE | os.O_TRUNC, nil, false},
		{"storing over a file is not allowed", "/pub/a.txt", store, ErrCreateOnly, true},
		{"appending to a file is not allowed", "/pub/a.txt", appe, ErrCreateOnly, true},
		{"resuming a file is not allowed", "/pub/a.txt", resume, ErrCreateOnly, false},
		{"resuming a new name is not allowed either", "/pub/new.txt", resume, ErrCreateOnly, false},
		{"opening a file without O_CREATE is not allowed", "/pub/a.txt", os.O_WRONLY, ErrCreateOnly, false},
		{"opening a new name without O_CREATE is not allowed", "/pub/new.txt", os.O_WRONLY | os.O_TRUNC, ErrCreateOnly, false},
		{"storing over a folder is not allowed", "/pub/empty", store, ErrCreateOnly, true},
		{"storing over a link to a file is not allowed", "/readme", store, ErrCreateOnly, true},
		{"storing over a link to a folder is not allowed", "/latest", store, ErrCreateOnly, true},
		{"storing over a dangling link is not allowed", "/dangling", store, ErrCreateOnly, true},
		{"a caller's own O_EXCL gets fs.ErrExist (STOU tries another name)", "/pub/a.txt", stou, fs.ErrExist, true},
	}
	for _, mode := range []struct {
		name string
		opts Options
	}{{"atomic", Options{Atomic: true}}, {"direct", Options{}}} {
		for _, tt := range tests {
			t.Run(mode.name+": "+tt.name, func(t *testing.T) {
				t.Parallel()
				sb := newSandbox(t)
				fsys := WriteOnly(sb.open(t, mode.opts))
				disk := filepath.Join(sb.root, filepath.FromSlash(tt.target))
				before := diskEntry(t, disk)
				err := func() error {
					f, err := fsys.OpenFile(tt.target, tt.flag, 0o644)
					if err != nil {
						return err
					}
					if _, err := io.WriteString(f, "uploaded"); err != nil {
						_ = f.Close()

						return err
					}

					return f.Close()
				}()
				sb.checkErrText(t, err)
				if tt.want == nil {
					if err != nil {
						t.Fatalf("got %v, want success", err)
					}
					if got := diskFile(t, disk); got != "uploaded" {
						t.Fatalf("the upload holds %q", got)
					}

					return
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				if errors.Is(tt.want, ErrCreateOnly) && !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
					t.Errorf("got %v, want it to wrap ftpserver.ErrFileNameNotAllowed (553)", err)
				}
				if errors.Is(err, fs.ErrExist) != tt.exists {
					t.Errorf("got %v: says the name exists %v, want %v", err, !tt.exists, tt.exists)
				}
				if p := pathOf(t, err); p != tt.target {
					t.Errorf("the error names %q, want %q", p, tt.target)
				}
				if got := diskEntry(t, disk); got != before {
					t.Errorf("%s changed from %q to %q", tt.target, before, got)
				}
				if temps := tempFiles(t, filepath.Dir(disk)); len(temps) != 0 {
					t.Errorf("temporary files left: %q", temps)
				}
				sb.checkOutside(t)
			})
		}
	}
}

// diskEntry describes what is at name on disk: a file's content, "<folder>",
// "-> target" for a symbolic link, or "<absent>".
func diskEntry(t *testing.T, name string) string {
	t.Helper()
	info, err := os.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "<absent>"
	case err != nil:
		t.Fatal(err)
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(name)
		if err != nil {
			t.Fatal(err)
		}

		return "-> " + target
	case info.IsDir():
		return "<folder>"
	}

	return diskFile(t, name)
}

func TestWriteOnlyStatTellsNoFileNames(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	disk := sb.open(t, Options{Atomic: true})
	fsys := WriteOnly(disk)
	if err := storeAll(fsys, "/pub/mine.txt", "mine"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		target  string
		visible bool
	}{
		{"a folder is seen", "/pub/2.4.1", true},
		{"the root is seen", "/", true},
		{"a link to a folder is seen", "/latest", true},
		{"a file this session stored is seen", "/pub/mine.txt", true},
		{"a file is not", "/pub/a.txt", false},
		{"a missing name is not", "/pub/missing.txt", false},
		{"a name below a file is not", "/pub/a.txt/x", false},
		{"a link to a file is not", "/readme", false},
		{"a dangling link is not", "/dangling", false},
		{"a link out of the root is not", "/evilfile", false},
		{"a missing folder is not", "/nowhere/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			info, err := fsys.Stat(tt.target)
			if tt.visible {
				if err != nil {
					t.Fatalf("got %v, want the entry", err)
				}

				return
			}
			// The same answer, whatever is there: only the path differs
			// (TestEngineWriteOnlyStoresButNeitherListsNorReads compares the replies).
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Op != "stat" || pe.Path != tt.target || !errors.Is(pe.Err, ErrWriteOnly) {
				t.Fatalf("got %v, %#v, want stat %s: %v", info, err, tt.target, ErrWriteOnly)
			}
			when := time.Unix(1e9, 0)
			err = fsys.Chtimes(tt.target, when, when)
			if !errors.As(err, &pe) || pe.Op != "chtimes" || pe.Path != tt.target || !errors.Is(pe.Err, ErrWriteOnly) {
				t.Fatalf("chtimes: got %#v, want chtimes %s: %v", err, tt.target, ErrWriteOnly)
			}
		})
	}

	t.Run("another session does not see the file", func(t *testing.T) {
		t.Parallel()
		if _, err := WriteOnly(disk).Stat("/pub/mine.txt"); !errors.Is(err, ErrWriteOnly) {
			t.Errorf("got %v, want %v", err, ErrWriteOnly)
		}
	})
	t.Run("the session sets the time of its own upload and of a folder", func(t *testing.T) {
		t.Parallel()
		when := time.Unix(1e9, 0)
		for _, name := range []string{"/pub/mine.txt", "/pub/empty"} {
			if err := fsys.Chtimes(name, when, when); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			info, err := os.Stat(filepath.Join(sb.root, filepath.FromSlash(name)))
			if err != nil || !info.ModTime().Equal(when) {
				t.Errorf("%s: mtime %v, %v, want %v", name, info.ModTime(), err, when)
			}
		}
	})
}

func TestWriteOnlyRemembersTheLastUploads(t *testing.T) {
	t.Parallel()
	own := &ownUploads{names: map[string]struct{}{}}
	for i := range maxOwnUploads + 1 {
		own.add(fmt.Sprintf("/f%d", i))
	}
	own.add("/f1") // already known: changes nothing
	if own.has("/f0") || !own.has("/f1") || !own.has(fmt.Sprintf("/f%d", maxOwnUploads)) {
		t.Errorf("remembers /f0 %v, /f1 %v, the last %v; want false, true, true",
			own.has("/f0"), own.has("/f1"), own.has(fmt.Sprintf("/f%d", maxOwnUploads)))
	}
	if len(own.names) != maxOwnUploads || len(own.order) != maxOwnUploads {
		t.Errorf("remembers %d names (%d in order), want %d", len(own.names), len(own.order), maxOwnUploads)
	}
}

func TestWriteOnlyNeverHandsOutAReadableFile(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	for _, open := range []func() (afero.File, error){
		func() (afero.File, error) {
			return WriteOnlyOverwrite(sb.open(t, Options{})).OpenFile("/pub/a.txt", os.O_RDWR, 0)
		},
		func() (afero.File, error) { return WriteOnly(sb.open(t, Options{})).Create("/pub/new.txt") },
		func() (afero.File, error) {
			return WriteOnly(sb.open(t, Options{})).OpenFile("/pub/new2.txt", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		},
	} {
		f, err := open()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(f)
		_ = f.Close()
		if err == nil {
			t.Errorf("%s could be read", f.Name())
		}
		sb.checkErrText(t, err)
	}
}

func TestPolicyErrorsArePermissionErrors(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrReadOnly, ErrWriteOnly} {
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%v does not wrap fs.ErrPermission", err)
		}
	}
	if !errors.Is(ErrCreateOnly, ftpserver.ErrFileNameNotAllowed) {
		t.Errorf("%v does not wrap ftpserver.ErrFileNameNotAllowed", ErrCreateOnly)
	}
}
