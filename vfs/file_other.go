//go:build !unix

package vfs

import "os"

// nonblock is zero where O_NONBLOCK does not exist.
const nonblock = 0

// folderSync: a folder can't be synced here; the file system keeps its
// names as it does.
const folderSync = false

// reopen returns f itself: without dup(2) its name stays the disk path, which
// errors from Read, Write and Seek on it may show to the client.
func reopen(f *os.File, _ string) (*os.File, error) {
	return f, nil
}
