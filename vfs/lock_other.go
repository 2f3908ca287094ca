//go:build !unix

package vfs

import "os"

// tryLock does nothing where flock(2) does not exist: only this process's
// own uploads (Uploads) are protected from a reclaim.
func tryLock(*os.File) error {
	return nil
}
