//go:build unix

package config

import (
	"fmt"
	"syscall"
)

// canWrite reports whether the user wharf runs as may make and remove
// entries in the folder dir: write and search permission, on a file system
// mounted read-write. access(2) answers for the real uid, which is wharf's
// own: it is never installed setuid.
func canWrite(dir string) error {
	const wOK, xOK = 0x2, 0x1
	if err := syscall.Access(dir, wOK|xOK); err != nil {
		return fmt.Errorf("access %s: %w", dir, err)
	}

	return nil
}
