//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A file another process holds locked (an upload of another wharf on the
// same folder) is not reclaimed, however old; once the lock goes, it is.
func TestReclaimLeavesAFileLockedByAnotherProcess(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	name := leftover(t, sb.root, TempPrefix+"0123456789abcdef", 10, time.Now().Add(-48*time.Hour))
	held, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(held.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fsys := sb.open(t, Options{}) // its own Uploads: it knows nothing of the holder

	if r := fsys.Reclaim(t.Context(), 0, 1000); r.Files != 0 || !exists(name) {
		t.Fatalf("a locked file was reclaimed: %+v", r)
	}
	_ = held.Close()
	if r := fsys.Reclaim(t.Context(), 0, 1000); r.Files != 1 || exists(name) {
		t.Errorf("after the lock went: %+v, exists %v", r, exists(name))
	}
	if _, err := os.Stat(filepath.Join(sb.root, "pub", "a.txt")); err != nil {
		t.Error(err)
	}
}
