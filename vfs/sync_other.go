//go:build !linux

package vfs

import "os"

// writebackWorks: only Linux has sync_file_range(2); elsewhere the final
// sync writes the whole upload.
const writebackWorks = false

func (w *writeback) push(*os.File) error { return nil }

// syncData writes f's data to the disk: fsync(2), or on macOS F_FULLFSYNC.
func syncData(f *os.File) error { return f.Sync() }
