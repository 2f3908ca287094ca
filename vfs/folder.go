package vfs

import (
	"io/fs"
	"syscall"
)

// NoBytes gives a folder opened as an afero.File the byte methods it must
// refuse: reading, writing and truncating fail with EISDIR under the
// folder's virtual path. Both backends' folders embed it.
type NoBytes struct {
	Path string // the folder's virtual path
}

// Sync does nothing: a folder opened for reading has nothing to flush.
func (NoBytes) Sync() error { return nil }

// Read fails: a folder has no bytes to download.
func (n NoBytes) Read([]byte) (int, error) { return 0, n.isDir("read") }

// ReadAt fails: a folder has no bytes to download.
func (n NoBytes) ReadAt([]byte, int64) (int, error) { return 0, n.isDir("read") }

// Write fails: a folder cannot be written.
func (n NoBytes) Write([]byte) (int, error) { return 0, n.isDir("write") }

// WriteAt fails: a folder cannot be written.
func (n NoBytes) WriteAt([]byte, int64) (int, error) { return 0, n.isDir("write") }

// WriteString fails: a folder cannot be written.
func (n NoBytes) WriteString(string) (int, error) { return 0, n.isDir("write") }

// Truncate fails: a folder cannot be truncated.
func (n NoBytes) Truncate(int64) error { return n.isDir("truncate") }

func (n NoBytes) isDir(op string) error {
	return &fs.PathError{Op: op, Path: n.Path, Err: syscall.EISDIR}
}
