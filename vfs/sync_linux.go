package vfs

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writebackWorks: Linux has sync_file_range(2).
const writebackWorks = true

// push starts writing f's step since the last push and waits for the
// steps before the previous one. It returns an I/O error the kernel met on
// that data: the kernel reports such an error to one waiter only, so the
// final sync would not see it again. A file system that refuses sync_file_range turns the
// write-back off, and the final sync writes everything.
func (w *writeback) push(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil //nolint:nilerr // a closed file: its next write reports it
	}

	var pushErr error
	if err := rc.Control(func(fd uintptr) { pushErr = w.pushFD(int(fd)) }); err != nil {
		return nil //nolint:nilerr // as above
	}

	return pushErr
}

func (w *writeback) pushFD(fd int) error {
	end, err := unix.Seek(fd, 0, io.SeekCurrent)
	if err != nil { // not a regular file: nothing to push
		w.off = true

		return nil //nolint:nilerr // the final sync still runs
	}
	last, before := w.ends[0], w.ends[1]
	if end < last { // the file was rewound (Seek): start over
		last, before, w.waited = 0, 0, 0
	}
	if end > last {
		if err := unix.SyncFileRange(fd, last, end-last, unix.SYNC_FILE_RANGE_WRITE); err != nil {
			return w.refused(err)
		}
	}
	if before > w.waited {
		const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
		if err := unix.SyncFileRange(fd, w.waited, before-w.waited, wait); err != nil {
			return w.refused(err)
		}
		w.waited = before
	}
	w.ends = [2]int64{end, last}

	return nil
}

// refused turns the write-back off for the errors of a file system or a
// sandbox that does not do sync_file_range, and returns any other error.
func (w *writeback) refused(err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.ESPIPE) || errors.Is(err, unix.EPERM) {
		w.off = true

		return nil
	}

	return os.NewSyscallError("sync_file_range", err)
}

// syncData writes f's data, and the metadata needed to read it back (its
// size), to the disk: fdatasync(2), which skips the timestamps fsync(2)
// would also write.
func syncData(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}

	var syncErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if syncErr = unix.Fdatasync(int(fd)); !errors.Is(syncErr, unix.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}

	if syncErr != nil {
		return os.NewSyscallError("fdatasync", syncErr)
	}

	return nil
}
