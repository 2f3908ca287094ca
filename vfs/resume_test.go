package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
)

const (
	resumeAt = os.O_WRONLY | os.O_CREATE               // REST n then STOR
	appendTo = os.O_WRONLY | os.O_CREATE | os.O_APPEND // APPE
)

// interrupted starts a fresh upload of content to name and breaks it off
// as the engine does after a reset data connection.
func interrupted(t *testing.T, fsys afero.Fs, name, content string) {
	t.Helper()
	f := startUpload(t, fsys, name, content)
	if te, ok := f.(ftpserver.FileTransferError); ok { // not in direct mode
		te.TransferError(errors.New("connection reset"))
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close the interrupted upload: %v", err)
	}
}

// partSize is Part's size of name, or -1 when it reports none.
func partSize(t *testing.T, fsys *Fs, name string) int64 {
	t.Helper()
	info, err := fsys.Part(name)
	if errors.Is(err, fs.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}

	return info.Size()
}

// continueUpload opens name with flag (resumeAt or appendTo), checks it
// continues a part of size from, seeks to offset as the engine does after
// REST, cutting the part there as the server does, writes content and
// closes cleanly.
func continueUpload(t *testing.T, fsys afero.Fs, name string, flag int, from, offset int64, content string) {
	t.Helper()
	f, err := fsys.OpenFile(name, flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := Resumed(f)
	if !ok || got != from {
		t.Fatalf("Resumed = %d, %v; want %d, true", got, ok, from)
	}
	if flag&os.O_APPEND == 0 {
		if offset < from {
			if err := f.Truncate(offset); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(f, content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestResumeKeepsAnInterruptedUploadForItsOwnerOnly(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	disk := sb.open(t, Options{Atomic: true})
	alice := disk.Resume("alice", time.Hour)
	interrupted(t, alice, "/pub/new.bin", "first half")

	if got := diskFile(t, filepath.Join(sb.root, "pub", "new.bin")); got != "<absent>" {
		t.Fatalf("the final name holds %q during the interruption", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 1 {
		t.Fatalf("want the part on disk, got %q", temps)
	}
	if got := partSize(t, alice, "/pub/new.bin"); got != int64(len("first half")) {
		t.Errorf("the owner's Part is %d bytes, want %d", got, len("first half"))
	}
	for name, other := range map[string]*Fs{
		"another account":        disk.Resume("bob", time.Hour),
		"a view without resume":  disk,
		"an anonymous view":      disk.WorldReadable(),
		"the owner's other name": alice,
	} {
		target := "/pub/new.bin"
		if name == "the owner's other name" {
			target = "/pub/other.bin"
		}
		if got := partSize(t, other, target); got != -1 {
			t.Errorf("%s sees a part of %d bytes", name, got)
		}
	}
	if _, err := alice.Stat("/pub/new.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of the final name = %v, want fs.ErrNotExist: the part is not a file", err)
	}
	for _, view := range []afero.Fs{alice, disk} {
		names := readdirnames(t, view, "/pub")
		for _, n := range names {
			if n != "a.txt" && n != "2.4.1" && n != "empty" {
				t.Errorf("the listing shows %q", n)
			}
		}
	}
	// Another account's fresh upload or resume neither sees nor touches it.
	bob := disk.Resume("bob", time.Hour)
	if f, err := bob.OpenFile("/pub/new.bin", appendTo, 0o644); err != nil {
		t.Fatal(err)
	} else if _, ok := Resumed(f); ok {
		t.Error("bob's APPE continues alice's part")
		_ = f.Close()
	} else {
		_ = f.Close()
	}
	if got := partSize(t, alice, "/pub/new.bin"); got != int64(len("first half")) {
		t.Errorf("after bob's APPE, alice's part is %d bytes", got)
	}
}

// readdirnames lists dir through fsys.
func readdirnames(t *testing.T, fsys afero.Fs, dir string) []string {
	t.Helper()
	d, err := fsys.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}

	return names
}

func TestResumeContinuesAndCommitsAtomically(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		existing      string // the target's content before, "" for none
		flag          int
		offset        int64
		content, want string
	}{
		{"APPE continues at the part's end", "", appendTo, 0, " second", "first half second"},
		{"REST at the part's size continues it", "", resumeAt, 10, " second", "first half second"},
		{"REST below the part's size cuts it there", "", resumeAt, 5, "XYZ", "firstXYZ"},
		{"REST 0 without O_TRUNC restarts the part", "", resumeAt, 0, "new", "new"},
		{"the part replaces an existing file only when complete", "old content", appendTo, 0, "!", "first half!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			alice := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
			target := filepath.Join(sb.root, "pub", "file.bin")
			if tt.existing != "" {
				if err := os.WriteFile(target, []byte(tt.existing), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			interrupted(t, alice, "/pub/file.bin", "first half")
			if tt.existing != "" && diskFile(t, target) != tt.existing {
				t.Fatalf("the interrupted upload changed the existing file")
			}
			continueUpload(t, alice, "/pub/file.bin", tt.flag, 10, tt.offset, tt.content)
			if got := diskFile(t, target); got != tt.want {
				t.Errorf("the target holds %q, want %q", got, tt.want)
			}
			if temps := tempFiles(t, filepath.Dir(target)); len(temps) != 0 {
				t.Errorf("temporary files left: %q", temps)
			}
			if got := partSize(t, alice, "/pub/file.bin"); got != -1 {
				t.Errorf("a part of %d bytes is still reported", got)
			}
		})
	}
}

func TestResumeKeepsAPartInterruptedAgain(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	alice := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
	interrupted(t, alice, "/pub/f.bin", "one ")
	f, err := alice.OpenFile("/pub/f.bin", appendTo, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "two "); err != nil {
		t.Fatal(err)
	}
	f.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := partSize(t, alice, "/pub/f.bin"); got != int64(len("one two ")) {
		t.Fatalf("after a second interruption the part is %d bytes, want %d", got, len("one two "))
	}
	continueUpload(t, alice, "/pub/f.bin", appendTo, 8, 0, "three")
	if got := diskFile(t, filepath.Join(sb.root, "pub", "f.bin")); got != "one two three" {
		t.Errorf("the target holds %q", got)
	}
}

func TestResumeDiscardsWhatCannotBeResumed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   Options
		owner  string
		window time.Duration
		cause  error
	}{
		{"a full disk or a size limit", Options{Atomic: true}, "alice", time.Hour,
			fmt.Errorf("upload exceeds the size limit: %w", ftpserver.ErrStorageExceeded)},
		{"a window of 0", Options{Atomic: true}, "alice", 0, errors.New("connection reset")},
		{"no owner", Options{Atomic: true}, "", time.Hour, errors.New("connection reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			view := sb.open(t, tt.opts).Resume(tt.owner, tt.window)
			f := startUpload(t, view, "/pub/f.bin", "some data")
			f.(ftpserver.FileTransferError).TransferError(tt.cause)
			_ = f.Close()
			if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
				t.Errorf("temporary files left: %q", temps)
			}
			if got := diskFile(t, filepath.Join(sb.root, "pub", "f.bin")); got != "<absent>" {
				t.Errorf("the final name holds %q", got)
			}
		})
	}

	t.Run("direct mode writes in place, as before", func(t *testing.T) {
		t.Parallel()
		sb := newSandbox(t)
		view := sb.open(t, Options{}).Resume("alice", time.Hour)
		interrupted(t, view, "/pub/f.bin", "some data")
		if got := diskFile(t, filepath.Join(sb.root, "pub", "f.bin")); got != "some data" {
			t.Errorf("the file holds %q", got)
		}
		if got := partSize(t, view, "/pub/f.bin"); got != -1 {
			t.Errorf("Part reports %d bytes in direct mode", got)
		}
	})
}

func TestResumeFreshUploadReplacesThePart(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	alice := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
	interrupted(t, alice, "/pub/f.bin", "a long first attempt")
	interrupted(t, alice, "/pub/f.bin", "short")
	if got := partSize(t, alice, "/pub/f.bin"); got != int64(len("short")) {
		t.Fatalf("after a new interrupted upload the part is %d bytes, want %d", got, len("short"))
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 1 {
		t.Fatalf("want one part, got %q", temps)
	}
	f := startUpload(t, alice, "/pub/f.bin", "complete")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := diskFile(t, filepath.Join(sb.root, "pub", "f.bin")); got != "complete" {
		t.Errorf("the target holds %q", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("temporary files left: %q", temps)
	}
}

func TestResumeOneWriterPerPart(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	uploads := NewUploads()
	disk := sb.open(t, Options{Atomic: true, Uploads: uploads})
	target := filepath.Join(sb.root, "pub", "f.bin")
	running := startUpload(t, disk.Resume("alice", time.Hour), "/pub/f.bin", "the part")
	defer running.Close()

	// Another session of the same account, on another root of the same folder,
	// and another process (its own Uploads, which sees the part's lock).
	again := sb.open(t, Options{Atomic: true, Uploads: uploads}).Resume("alice", time.Hour)
	other := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
	for _, view := range []*Fs{again, other} {
		for name, flag := range map[string]int{"APPE": appendTo, "REST": resumeAt} {
			if f, err := view.OpenFile("/pub/f.bin", flag, 0o644); !errors.Is(err, ErrUploadBusy) {
				t.Errorf("%s while the part is written: %v, want ErrUploadBusy", name, err)
				if f != nil {
					_ = f.Close()
				}
			}
		}
	}

	t.Run("a fresh upload meanwhile is a one-off", func(t *testing.T) {
		interrupted(t, other, "/pub/f.bin", "lost")
		if temps := tempFiles(t, filepath.Dir(target)); len(temps) != 1 {
			t.Errorf("temporary files: %q, want the running part only", temps)
		}
		f := startUpload(t, again, "/pub/f.bin", "landed")
		if _, ok := Resumed(f); ok {
			t.Error("a fresh upload continues the part")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if got := diskFile(t, target); got != "landed" {
			t.Errorf("the target holds %q", got)
		}
	})

	t.Run("another account has its own part", func(t *testing.T) {
		bob := startUpload(t, disk.Resume("bob", time.Hour), "/pub/f.bin", "bob's")
		if _, err := io.WriteString(bob, " too"); err != nil {
			t.Fatal(err)
		}
		if err := bob.Close(); err != nil {
			t.Errorf("bob's upload: %v", err)
		}
	})

	t.Run("the part superseded meanwhile is not kept", func(t *testing.T) {
		running.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
		if err := running.Close(); err != nil {
			t.Fatal(err)
		}
		if got := diskFile(t, target); got != "bob's too" {
			t.Errorf("the target holds %q", got)
		}
		if temps := tempFiles(t, filepath.Dir(target)); len(temps) != 0 {
			t.Errorf("temporary files left: %q", temps)
		}
	})
}

func TestResumeOneOffUploadDropsAKeptPart(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	uploads := NewUploads()
	alice := sb.open(t, Options{Atomic: true, Uploads: uploads}).Resume("alice", time.Hour)
	first := startUpload(t, alice, "/pub/f.bin", "first")
	second := startUpload(t, alice, "/pub/f.bin", "second, a one-off")
	first.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := partSize(t, alice, "/pub/f.bin"); got != 5 {
		t.Fatalf("the part is %d bytes, want 5", got)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if got := partSize(t, alice, "/pub/f.bin"); got != -1 {
		t.Errorf("after the one-off landed, a part of %d bytes is kept", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("temporary files left: %q", temps)
	}
}

func TestResumeExpiredPartIsRemoved(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	alice := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
	old := time.Now().Add(-2 * time.Hour)
	age := func(t *testing.T) {
		t.Helper()
		interrupted(t, alice, "/pub/f.bin", "stale")
		temps := tempFiles(t, filepath.Join(sb.root, "pub"))
		if len(temps) != 1 {
			t.Fatalf("want one part, got %q", temps)
		}
		if err := os.Chtimes(filepath.Join(sb.root, "pub", temps[0]), old, old); err != nil {
			t.Fatal(err)
		}
	}

	age(t)
	if got := partSize(t, alice, "/pub/f.bin"); got != -1 {
		t.Errorf("SIZE of an expired part: %d", got)
	}
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("the expired part is still on disk: %q", temps)
	}

	age(t)
	f, err := alice.OpenFile("/pub/f.bin", appendTo, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Resumed(f); ok {
		t.Error("APPE continues an expired part")
	}
	_ = f.Close()
	if temps := tempFiles(t, filepath.Join(sb.root, "pub")); len(temps) != 0 {
		t.Errorf("the expired part is still on disk: %q", temps)
	}
}

func TestResumeSurvivesARestart(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	first, err := Open(sb.root, Options{Atomic: true})
	if err != nil {
		t.Fatal(err)
	}
	interrupted(t, first.Resume("alice", time.Hour), "/pub/f.bin", "before ")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	alice := sb.open(t, Options{Atomic: true}).Resume("alice", time.Hour)
	continueUpload(t, alice, "/pub/f.bin", appendTo, 7, 0, "after")
	if got := diskFile(t, filepath.Join(sb.root, "pub", "f.bin")); got != "before after" {
		t.Errorf("the target holds %q", got)
	}
}

func TestRemoveAFolderThatOnlyPartsKeepFromBeingEmpty(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	disk := sb.open(t, Options{Atomic: true})
	alice := disk.Resume("alice", time.Hour)
	interrupted(t, alice, "/pub/empty/a.bin", "part")
	interrupted(t, disk.Resume("bob", time.Hour), "/pub/empty/b.bin", "part")

	running := startUpload(t, alice, "/pub/empty/c.bin", "in flight")
	if err := alice.Remove("/pub/empty"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("RMD while an upload lands there: %v, want ENOTEMPTY", err)
	}
	running.(ftpserver.FileTransferError).TransferError(errors.New("connection reset"))
	_ = running.Close()
	if len(tempFiles(t, filepath.Join(sb.root, "pub", "empty"))) != 3 {
		t.Fatal("want three parts")
	}

	if err := disk.Remove("/pub/empty"); err != nil {
		t.Fatalf("RMD of a folder holding only parts: %v", err)
	}
	if exists(filepath.Join(sb.root, "pub", "empty")) {
		t.Error("the folder is still there")
	}

	// A folder with something else in it is not empty, and keeps its parts.
	interrupted(t, alice, "/pub/2.4.1/d.bin", "part")
	if err := alice.Remove("/pub/2.4.1"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("RMD of a folder with a file: %v, want ENOTEMPTY", err)
	}
	if got := partSize(t, alice, "/pub/2.4.1/d.bin"); got != 4 {
		t.Errorf("the part is %d bytes, want 4", got)
	}
}
