//go:build unix

package vfs

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock(2) on f without waiting. Every upload
// holds one on its temporary file until it ends, so that a reclaim run by
// another process on the same folder (a new wharf started while the old one
// drains its transfers) leaves it alone; the kernel drops the lock when the
// file is closed or the process dies, kill -9 included. It returns errLocked
// if another open file holds the lock. A file system without locks (some NFS
// mounts) counts as unlocked: within one process, Uploads knows better.
func tryLock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil //nolint:nilerr // no descriptor to lock: count it as unlocked
	}
	var lockErr error
	if err := rc.Control(func(fd uintptr) {
		lockErr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	}); err != nil {
		return nil //nolint:nilerr // as above
	}
	if errors.Is(lockErr, syscall.EWOULDBLOCK) {
		return errLocked
	}

	return nil
}
