//go:build !unix

package vfs

import "os"

// nonblock is zero where O_NONBLOCK does not exist.
const nonblock = 0

// reopen returns f itself: without dup(2) its name stays the disk path, which
// errors from Read, Write and Seek on it may show to the client.
func reopen(f *os.File, _ string) (*os.File, error) {
	return f, nil
}
