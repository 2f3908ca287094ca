//go:build unix

package vfs

import (
	"os"
	"syscall"
)

// nonblock is added to the flags of every open: opening a fifo then fails or
// returns at once instead of blocking the session until a peer shows up. It
// changes nothing for regular files and directories, and reopen clears it.
const nonblock = syscall.O_NONBLOCK

// folderSync: a folder opened for reading can be synced (fsync(2)), which
// makes the names in it durable.
const folderSync = true

// reopen returns an *os.File for the descriptor of f whose name is the virtual
// path name, and closes f. A file opened through os.Root is named with the disk
// path, which every error from Read, Write or Seek would then show to the
// client (REST -1 then RETR replies with the Seek error). The new file is
// still a plain *os.File, so io.Copy keeps using sendfile(2) and splice(2).
func reopen(f *os.File, name string) (*os.File, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		dup    int
		dupErr error
	)
	err = rc.Control(func(fd uintptr) {
		// Hold ForkLock so that no child started by os/exec inherits the copy
		// before it is marked close-on-exec.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		if dup, dupErr = syscall.Dup(int(fd)); dupErr == nil {
			syscall.CloseOnExec(dup)
		}
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	// The flag lives in the open file description, which both descriptors share.
	if err := syscall.SetNonblock(dup, false); err != nil {
		_ = syscall.Close(dup)

		return nil, os.NewSyscallError("fcntl", err)
	}

	return os.NewFile(uintptr(dup), name), nil
}
