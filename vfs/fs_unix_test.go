//go:build unix

package vfs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFifosAreRefusedWithoutBlocking(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	if err := syscall.Mkfifo(filepath.Join(sb.root, "pub", "fifo"), 0o644); err != nil {
		t.Fatal("make a fifo:", err)
	}
	fsys := sb.open(t, Options{})
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY} {
		f, err := fsys.OpenFile("/pub/fifo", flag, 0)
		if err == nil {
			_ = f.Close()
			t.Errorf("flag %#x: opened a fifo", flag)
		}
		sb.checkErrText(t, err)
	}
}
