package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"wharf/internal/testenv"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

const store = os.O_WRONLY | os.O_CREATE | os.O_TRUNC // a fresh STOR

// startUpload opens name for a fresh STOR and writes content.
func startUpload(t *testing.T, fsys afero.Fs, name, content string) afero.File {
	t.Helper()
	f, err := fsys.OpenFile(name, store, os.ModePerm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}

	return f
}

func TestAtomicUpload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		target      string
		abort       bool
		wantContent string
	}{
		{"a clean close replaces the file", "/pub/a.txt", false, "new content"},
		{"a clean close creates a new file", "/pub/new.txt", false, "new content"},
		{"an aborted upload leaves the old file", "/pub/a.txt", true, "hello"},
		{"an aborted upload creates nothing", "/pub/new.txt", true, "<absent>"},
		{"an upload through an in-root link lands in its target", "/latest/up.iso", false, "new content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			fsys := sb.open(t, Options{Atomic: true})
			disk := filepath.Join(sb.root, filepath.FromSlash(tt.target))
			before := diskFile(t, disk)
			f := startUpload(t, fsys, tt.target, "new content")
			if _, ok := f.(ftpserver.FileTransferError); !ok {
				t.Fatalf("%T does not implement FileTransferError", f)
			}
			if _, ok := f.(io.ReaderFrom); !ok {
				t.Fatalf("%T does not implement io.ReaderFrom", f)
			}
			if f.Name() != tt.target {
				t.Errorf("Name() = %q, want %q", f.Name(), tt.target)
			}
			if got := diskFile(t, disk); got != before {
				t.Errorf("during the upload the target holds %q, want %q", got, before)
			}
			if len(tempFiles(t, filepath.Dir(disk))) != 1 {
				t.Errorf("want one temporary file during the upload")
			}
			if tt.abort {
				f.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if got := diskFile(t, disk); got != tt.wantContent {
				t.Errorf("target holds %q, want %q", got, tt.wantContent)
			}
			if temps := tempFiles(t, filepath.Dir(disk)); len(temps) != 0 {
				t.Errorf("temporary files left: %q", temps)
			}
		})
	}
}

func TestTemporaryFilesAreHidden(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{Atomic: true})
	f := startUpload(t, fsys, "/pub/a.txt", "new")
	defer f.Close()
	temps := tempFiles(t, filepath.Join(sb.root, "pub"))
	if len(temps) != 1 {
		t.Fatalf("temporary files: %q", temps)
	}
	temp := "/pub/" + temps[0]

	d, err := fsys.Open("/pub")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	infos, err := d.Readdir(-1)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if strings.HasPrefix(info.Name(), TempPrefix) {
			t.Errorf("Readdir shows %s", info.Name())
		}
	}
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	// Readdir(1) must skip the hidden entry, not stop at it.
	var names []string
	for {
		batch, err := d.Readdirnames(1)
		names = append(names, batch...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			t.Fatal("Readdirnames(1) returned nothing before the end")
		}
	}
	if len(names) != len(infos) {
		t.Errorf("Readdirnames(1) found %q, Readdir(-1) %d entries", names, len(infos))
	}
	for _, name := range names {
		if strings.HasPrefix(name, TempPrefix) {
			t.Errorf("Readdirnames shows %s", name)
		}
	}

	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"stat does not find it", func() error { _, err := fsys.Stat(temp); return err }, fs.ErrNotExist},
		{"open does not find it", func() error { return closeFile(fsys.Open(temp)) }, fs.ErrNotExist},
		{"openfile to append does not find it", func() error {
			return closeFile(fsys.OpenFile(temp, os.O_WRONLY|os.O_APPEND, 0))
		}, fs.ErrNotExist},
		{"openfile to create is not allowed", func() error { return closeFile(fsys.OpenFile(temp, store, 0o644)) }, ftpserver.ErrFileNameNotAllowed},
		{"create is not allowed", func() error { return closeFile(fsys.Create("/pub/" + TempPrefix + "x")) }, ftpserver.ErrFileNameNotAllowed},
		{"remove does not find it", func() error { return fsys.Remove(temp) }, fs.ErrNotExist},
		{"rename from it does not find it", func() error { return fsys.Rename(temp, "/pub/stolen") }, fs.ErrNotExist},
		{"rename to such a name is not allowed", func() error { return fsys.Rename("/pub/a.txt", "/pub/"+TempPrefix+"x") }, ftpserver.ErrFileNameNotAllowed},
		{"chmod does not find it", func() error { return fsys.Chmod(temp, 0o600) }, fs.ErrNotExist},
		{"chtimes does not find it", func() error { return fsys.Chtimes(temp, time.Unix(0, 0), time.Unix(0, 0)) }, fs.ErrNotExist},
		{"mkdir of such a name is not allowed", func() error { return fsys.Mkdir("/pub/"+TempPrefix+"d", 0o755) }, ftpserver.ErrFileNameNotAllowed},
		{"mkdirall through such a name is not allowed", func() error { return fsys.MkdirAll("/"+TempPrefix+"d/e", 0o755) }, ftpserver.ErrFileNameNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if err := fsys.RemoveAll(temp); err != nil {
		t.Errorf("RemoveAll: %v", err)
	}
	if len(tempFiles(t, filepath.Join(sb.root, "pub"))) != 1 {
		t.Errorf("the temporary file is gone")
	}
}

func TestInPlaceWrites(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		atomic bool
		flag   int
		seek   int64
		want   string
	}{
		{"direct mode stores in place", false, store, 0, "XY"},
		{"a resume seeks and writes in place", true, os.O_WRONLY | os.O_CREATE, 3, "helXY"},
		{"a resume past the end writes in place", true, os.O_WRONLY | os.O_CREATE, 5, "helloXY"},
		{"an append writes in place", true, os.O_WRONLY | os.O_CREATE | os.O_APPEND, 0, "helloXY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			fsys := sb.open(t, Options{Atomic: tt.atomic})
			f, err := fsys.OpenFile("/pub/a.txt", tt.flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := f.(ftpserver.FileTransferError); ok {
				t.Errorf("%T is an atomic upload", f)
			}
			if _, err := f.Seek(tt.seek, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, strings.NewReader("XY")); err != nil {
				t.Fatal(err)
			}
			// In place: the bytes are there before Close.
			if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != tt.want {
				t.Errorf("before Close the file holds %q, want %q", got, tt.want)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
				t.Errorf("temporary files: %q", temps)
			}
		})
	}
}

func TestConcurrentUploadsOfOneNameDoNotMix(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{Atomic: true})
	const size = 1 << 20
	chunk := 4096
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, c := range []byte{'a', 'b'} {
		wg.Go(func() {
			f, err := fsys.OpenFile("/pub/a.txt", store, 0o644)
			if err != nil {
				errs <- err
				return
			}
			block := bytes.Repeat([]byte{c}, chunk)
			for range size / chunk {
				if _, err := f.Write(block); err != nil {
					errs <- err
				}
			}
			errs <- f.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt"))
	if got != strings.Repeat("a", size) && got != strings.Repeat("b", size) {
		t.Errorf("the file mixes both uploads (%d bytes)", len(got))
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("temporary files: %q", temps)
	}
}

func TestUploadPermissions(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		sb := newSandbox(t)
		fsys := sb.open(t, Options{Atomic: atomic})
		for name, want := range map[string]fs.FileMode{"/pub/a.txt": 0o600, "/pub/new.txt": 0o644} {
			if err := startUpload(t, fsys, name, "x").Close(); err != nil {
				t.Fatal(err)
			}
			info, err := os.Stat(filepath.Join(sb.root, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode() != want {
				t.Errorf("atomic %t: %s has mode %v, want %v", atomic, name, info.Mode(), want)
			}
		}
	}
}

func TestAFailedRenameRemovesTheTemporaryFile(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	fsys := sb.open(t, Options{Atomic: true})
	f := startUpload(t, fsys, "/pub/new", "x")
	// Someone makes a non-empty directory of the target meanwhile.
	if err := fsys.MkdirAll("/pub/new/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	err := f.Close()
	if err == nil {
		t.Fatal("Close succeeded")
	}
	sb.checkErrText(t, err)
	if got := pathOf(t, err); got != "/pub/new" {
		t.Errorf("error names %q, want /pub/new", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("temporary files: %q", temps)
	}
}

// TestAFullDiskReportsStorageExceeded writes to /dev/full, which fails every
// write with ENOSPC, in place of the file's own descriptor.
func TestAFullDiskReportsStorageExceeded(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{false, true} {
		sb := newSandbox(t)
		fsys := sb.open(t, Options{Atomic: atomic})
		f, err := fsys.OpenFile("/pub/a.txt", store, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			_ = f.Close()
			testenv.Missing(t, "/dev/full cannot be opened here, so a full disk cannot be simulated: %v", err)
		}
		var plain *file
		if u, ok := f.(*upload); ok {
			plain = &u.file
		} else {
			plain = f.(*file)
		}
		_ = plain.File.Close()
		plain.File = full

		// Hide WriteTo, so that io.Copy goes through the file's ReadFrom as
		// with a data connection.
		_, err = io.Copy(f, struct{ io.Reader }{strings.NewReader("data")})
		sb.checkErrText(t, err)
		if !errors.Is(err, ftpserver.ErrStorageExceeded) {
			t.Errorf("atomic %t: write error %v does not wrap ErrStorageExceeded", atomic, err)
		}
		if got := pathOf(t, err); got != "/pub/a.txt" {
			t.Errorf("atomic %t: write error names %q", atomic, got)
		}
		err = f.Close()
		if atomic && !errors.Is(err, ftpserver.ErrStorageExceeded) {
			t.Errorf("Close = %v, want ErrStorageExceeded", err)
		}
		if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
			t.Errorf("atomic %t: temporary files: %q", atomic, temps)
		}
		if atomic {
			if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != "hello" {
				t.Errorf("a.txt = %q, want hello", got)
			}
		}
	}
}

func TestAFileThatCannotBeWrittenCannotBeReplaced(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		// Root may write any file, so the test runs again as nobody.
		runAsNobody(t)

		return
	}
	for _, atomic := range []bool{false, true} {
		sb := newSandbox(t)
		fsys := sb.open(t, Options{Atomic: atomic})
		if err := os.Chmod(filepath.Join(sb.root, "pub", "a.txt"), 0o400); err != nil {
			t.Fatal(err)
		}
		_, err := fsys.OpenFile("/pub/a.txt", store, 0o644)
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("atomic %t: got %v, want fs.ErrPermission", atomic, err)
		}
		if got := diskFile(t, filepath.Join(sb.root, "pub", "a.txt")); got != "hello" {
			t.Errorf("atomic %t: a.txt = %q", atomic, got)
		}
	}
}

// runAsNobody runs the current test again in a copy of the test binary, as
// the user nobody (65534), and fails if it fails there. Tests that need a
// file their process cannot write use it when they run as root.
func runAsNobody(t *testing.T) {
	t.Helper()

	if os.Getenv("WHARF_TEST_AS_NOBODY") != "" {
		t.Fatal("still root after switching to nobody")
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	// The go tool's build folder is private to root: nobody gets a copy of
	// the binary, and a temporary folder of its own, in a folder it can reach
	// (the test's temporary folders are private too, so their parent is
	// opened for passing through).
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}

	bin, tmp := filepath.Join(dir, "vfs.test"), filepath.Join(dir, "tmp")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tmp, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, tmp} {
		if err := os.Chmod(d, 0o777); err != nil { // past the umask
			t.Fatal(err)
		}
	}

	cmd := exec.CommandContext(t.Context(), bin, "-test.run", "^"+t.Name()+"$", "-test.count", "1", "-test.v")
	cmd.Dir = tmp
	cmd.Env = []string{"WHARF_TEST_AS_NOBODY=1", "TMPDIR=" + tmp, "HOME=" + tmp, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}

	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as nobody: %v\n%s", t.Name(), err, out)
	}
}

// O_CREATE|O_EXCL (STOU) creates a new file only: atomically, and never over
// a file that takes the name during the upload.
func TestExclusiveUploadNeverReplaces(t *testing.T) {
	t.Parallel()

	const excl = os.O_WRONLY | os.O_CREATE | os.O_EXCL

	for _, atomic := range []bool{true, false} {
		sb := newSandbox(t)
		fsys := sb.open(t, Options{Atomic: atomic})

		if _, err := fsys.OpenFile("/pub/a.txt", excl, 0o644); !errors.Is(err, fs.ErrExist) {
			t.Errorf("atomic %v: an exclusive upload over a.txt: %v, want fs.ErrExist", atomic, err)
		}

		f, err := fsys.OpenFile("/pub/new.txt", excl, 0o644)
		if err != nil {
			t.Fatalf("atomic %v: %v", atomic, err)
		}

		if _, err := f.Write([]byte("mine")); err != nil {
			t.Fatal(err)
		}

		disk := filepath.Join(sb.root, "pub", "new.txt")
		if !atomic {
			_ = f.Close()

			continue
		}

		if got := diskFile(t, disk); got != "<absent>" {
			t.Fatalf("during an atomic exclusive upload the target holds %q", got)
		}

		// Another upload takes the name meanwhile: this one must not replace it.
		if err := os.WriteFile(disk, []byte("theirs"), 0o644); err != nil {
			t.Fatal(err)
		}

		if err := f.Close(); !errors.Is(err, fs.ErrExist) {
			t.Errorf("closing over a name taken meanwhile: %v, want fs.ErrExist", err)
		}

		if got := diskFile(t, disk); got != "theirs" {
			t.Errorf("the file that took the name holds %q, want theirs", got)
		}
	}
}
