package server

import (
	"io"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/vfs"
)

// outageRoot is a storage that can fail as an object store does when it is
// down (vfs.ErrUnavailable) or refuses for good (vfs.ErrStorageFault): every
// call fails with down's error while it is set, and so do the reads and
// writes of files opened before.
type outageRoot struct {
	afero.Fs
	down *atomic.Pointer[error]
}

func (outageRoot) Close() error { return nil }

// fail returns the error of op on name while the storage is down.
func (r outageRoot) fail(op, name string) error {
	if err := r.down.Load(); err != nil {
		return &fs.PathError{Op: op, Path: name, Err: *err}
	}

	return nil
}

func (r outageRoot) Stat(name string) (os.FileInfo, error) {
	if err := r.fail("stat", name); err != nil {
		return nil, err
	}

	return r.Fs.Stat(name) //nolint:wrapcheck // the test's own errors
}

func (r outageRoot) Open(name string) (afero.File, error) {
	return r.OpenFile(name, os.O_RDONLY, 0)
}

func (r outageRoot) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if err := r.fail("open", name); err != nil {
		return nil, err
	}

	f, err := r.Fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err //nolint:wrapcheck // the test's own errors
	}

	return outageFile{File: f, root: r}, nil
}

func (r outageRoot) Mkdir(name string, perm os.FileMode) error {
	if err := r.fail("mkdir", name); err != nil {
		return err
	}

	return r.Fs.Mkdir(name, perm) //nolint:wrapcheck // the test's own errors
}

func (r outageRoot) Remove(name string) error {
	if err := r.fail("remove", name); err != nil {
		return err
	}

	return r.Fs.Remove(name) //nolint:wrapcheck // the test's own errors
}

func (r outageRoot) Rename(oldname, newname string) error {
	if err := r.fail("rename", oldname); err != nil {
		return err
	}

	return r.Fs.Rename(oldname, newname) //nolint:wrapcheck // the test's own errors
}

// outageFile is a file of an outageRoot: its reads and writes fail while the
// storage is down.
type outageFile struct {
	afero.File
	root outageRoot
}

func (f outageFile) Read(p []byte) (int, error) {
	if err := f.root.fail("read", f.Name()); err != nil {
		return 0, err
	}

	return f.File.Read(p) //nolint:wrapcheck // the test's own errors
}

func (f outageFile) Write(p []byte) (int, error) {
	if err := f.root.fail("write", f.Name()); err != nil {
		return 0, err
	}

	return f.File.Write(p) //nolint:wrapcheck // the test's own errors
}

// TestStorageUnavailableIs4xx: while the storage is unavailable, every
// command that needs it is refused with 450 and a plain text, transfers cut
// by it get 451, a storage fault gets 451, and a file that does not exist is
// still 550. The session goes on, and works again once the storage is back.
func TestStorageUnavailableIs4xx(t *testing.T) {
	t.Parallel()

	mem := afero.NewMemMapFs()
	big := ftptest.RandomBytes(8 << 20)
	for name, data := range map[string][]byte{"/a.txt": []byte("a\n"), "/big.bin": big} {
		if err := afero.WriteFile(mem, name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := mem.Mkdir("/sub", 0o755); err != nil {
		t.Fatal(err)
	}

	var down atomic.Pointer[error]
	setDown := func(err error) {
		if err == nil {
			down.Store(nil)
		} else {
			down.Store(&err)
		}
	}

	f, _ := anonFixture(t)
	f.users = []auth.User{{Name: "alice", PasswordHash: testHash, Home: "/", Access: auth.ReadWrite}}
	f.opts.Storage = func(string, bool) (Root, error) { return outageRoot{Fs: mem, down: &down}, nil }
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")

	t.Run("commands are refused with 450 while the storage is unavailable", func(t *testing.T) {
		setDown(vfs.ErrUnavailable)
		defer setDown(nil)

		for _, cmd := range []string{
			"SIZE /a.txt", "MDTM /a.txt", "MLST /a.txt", "CWD /sub", "DELE /a.txt", "MKD /new", "RNFR /a.txt",
			"STAT /sub",
		} {
			if code, msg := c.Cmd("%s", cmd); code != 450 || !strings.Contains(msg, "Storage unavailable, try again later.") {
				t.Errorf("%s: got %d %q, want 450 saying the storage is unavailable", cmd, code, msg)
			}
		}

		for _, cmd := range []string{"LIST /sub", "NLST /sub", "MLSD /sub", "RETR /a.txt", "STOR /up.txt"} {
			data := c.DialPasv()
			if code, msg := c.Cmd("%s", cmd); code != 450 || !strings.Contains(msg, "Storage unavailable") {
				t.Errorf("%s: got %d %q, want 450 saying the storage is unavailable", cmd, code, msg)
			}

			_ = data.Close()
		}
	})

	t.Run("a fault of the storage is 451", func(t *testing.T) {
		setDown(vfs.ErrStorageFault)
		defer setDown(nil)

		if code, msg := c.Cmd("SIZE /a.txt"); code != 451 || !strings.Contains(msg, "Storage error on the server.") {
			t.Errorf("SIZE: got %d %q, want 451", code, msg)
		}
	})

	t.Run("a missing file is still 550", func(t *testing.T) {
		if code, msg := c.Cmd("SIZE /missing.txt"); code != 550 {
			t.Errorf("SIZE: got %d %q, want 550", code, msg)
		}
	})

	t.Run("a download cut by the storage gets 451", func(t *testing.T) {
		data := c.DialPasv()
		c.Must(150, "RETR /big.bin")

		head := make([]byte, 64<<10)
		if _, err := io.ReadFull(data, head); err != nil {
			t.Fatal(err)
		}

		setDown(vfs.ErrUnavailable)
		defer setDown(nil)

		_, _ = io.Copy(io.Discard, data)
		if code, msg := c.Read(); code != 451 || !strings.Contains(msg, "Storage unavailable") {
			t.Fatalf("got %d %q, want 451 saying the storage is unavailable", code, msg)
		}
	})

	t.Run("an upload cut by the storage gets 451", func(t *testing.T) {
		data := c.DialPasv()
		c.Must(150, "STOR /up.bin")

		if _, err := data.Write(big[:1<<20]); err != nil {
			t.Fatal(err)
		}

		setDown(vfs.ErrUnavailable)
		defer setDown(nil)

		_ = data.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = data.Write(big[1<<20:])
		_ = data.Close()

		if code, msg := c.Read(); code != 451 || !strings.Contains(msg, "Storage unavailable") {
			t.Fatalf("got %d %q, want 451 saying the storage is unavailable", code, msg)
		}
	})

	t.Run("the session works again once the storage is back", func(t *testing.T) {
		c.Must(213, "SIZE /a.txt")
		c.Must(250, "CWD /sub")
		data := c.DialPasv()
		c.Must(150, "RETR /a.txt")

		if got, _ := io.ReadAll(data); string(got) != "a\n" {
			t.Fatalf("got %q", got)
		}

		c.Expect(226)
	})
}
