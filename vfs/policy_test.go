package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"testing"
	"time"

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
		allowed []string // every other op is refused
	}{
		{"read-only", ReadOnly, ErrReadOnly, []string{"open a file", "list a folder", "openfile read-only", "stat"}},
		{"write-only", WriteOnly, ErrWriteOnly, []string{
			"create", "mkdir", "mkdirall", "openfile to store", "openfile to append",
			"openfile to resume", "openfile read-write", "stat", "chtimes",
		}},
	}
	for _, tt := range tests {
		for op, fn := range policyOps() {
			allowed := false
			for _, a := range tt.allowed {
				allowed = allowed || a == op
			}
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
				if !errors.Is(err, tt.refusal) || !errors.Is(err, fs.ErrPermission) {
					t.Fatalf("got %v, want %v", err, tt.refusal)
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

func TestWriteOnlyNeverHandsOutAReadableFile(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := WriteOnly(sb.open(t, Options{}))
	for _, open := range []func() (afero.File, error){
		func() (afero.File, error) { return fsys.OpenFile("/pub/a.txt", os.O_RDWR, 0) },
		func() (afero.File, error) { return fsys.Create("/pub/new.txt") },
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
}
