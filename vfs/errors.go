package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	ftpserver "github.com/fclairamb/ftpserverlib"
)

var (
	// ErrReadOnly is the cause of every change that ReadOnly refuses.
	ErrReadOnly = fmt.Errorf("%w: read-only access", fs.ErrPermission)
	// ErrWriteOnly is the cause of every read, listing or change that WriteOnly refuses.
	ErrWriteOnly = fmt.Errorf("%w: write-only access", fs.ErrPermission)
	// ErrCreateOnly is the cause of every write to an existing file that
	// WriteOnly refuses (STOR over a file, APPE to it, REST then STOR). It
	// wraps ftpserver.ErrFileNameNotAllowed, so the client reads 553; on a
	// name that exists the error also wraps fs.ErrExist.
	ErrCreateOnly = fmt.Errorf("%w: write-only access creates new files only", ftpserver.ErrFileNameNotAllowed)
	// ErrDropBox is the cause of every read, listing or change below a DropBox
	// folder other than creating a new file or folder.
	ErrDropBox = fmt.Errorf("%w: upload-only folder", fs.ErrPermission)

	// ErrUnavailable is the cause of a failure that may pass: the storage
	// (an object store) did not answer, timed out, or said it was busy or
	// failing (HTTP 5xx, SlowDown). The server answers 450 (the command was
	// not taken) or 451 (a transfer was cut): RFC 959's transient negative
	// replies, which clients retry.
	ErrUnavailable = errors.New("storage unavailable, try again later")
	// ErrStorageFault is the cause of a failure of the storage that neither
	// the client nor time will fix: a missing bucket, refused credentials,
	// an answer the backend does not understand. The operator must act; the
	// server answers 451 (local error in processing).
	ErrStorageFault = errors.New("storage error on the server")

	// errCreateOnlyExists is ErrCreateOnly for a name that exists.
	errCreateOnlyExists = fmt.Errorf("%w: %w", ErrCreateOnly, fs.ErrExist)

	// errNotRegular refuses to open fifos, sockets and devices: a fifo would block the session.
	errNotRegular = errors.New("not a regular file")
)

// pathError returns the client-facing error for op on the virtual path name.
func pathError(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: cause(err)}
}

// cause strips from err every wrapper that may carry a disk path (*fs.PathError,
// *os.LinkError, *os.SyscallError) and maps what is left to a path-free error of
// the same kind.
func cause(err error) error {
	for {
		var (
			pe *fs.PathError
			le *os.LinkError
			se *os.SyscallError
		)
		switch {
		case errors.As(err, &pe):
			err = pe.Err
		case errors.As(err, &le):
			err = le.Err
		case errors.As(err, &se):
			err = se.Err
		default:
			return kind(err)
		}
	}
}

// kind maps an error without a path to the one the client sees.
func kind(err error) error {
	if errno, ok := errors.AsType[syscall.Errno](err); ok {
		return errnoKind(errno)
	}
	// os.Root refuses "..", absolute symbolic links and links leading outside
	// with an unexported error; this text is all that identifies it.
	if err.Error() == "path escapes from parent" {
		return fs.ErrPermission
	}

	return err
}

// errnoKind maps the common errnos to the fs errors of the same kind, so the
// client reads "file does not exist" rather than "no such file or directory".
// Other errnos stay as they are: their text never holds a path.
func errnoKind(errno syscall.Errno) error {
	//exhaustive:ignore // every other errno keeps its own text
	switch errno {
	case syscall.ENOENT:
		return fs.ErrNotExist
	case syscall.EEXIST:
		return fs.ErrExist
	case syscall.EACCES, syscall.EPERM:
		return fs.ErrPermission
	case syscall.ENOSPC, syscall.EDQUOT:
		return fmt.Errorf("%w: %w", ftpserver.ErrStorageExceeded, errno)
	default:
		return errno
	}
}

// hiddenError is the error for a name that contains an in-progress upload:
// such names do not exist for lookups and are not allowed for creation.
func hiddenError(op, name string, creating bool) error {
	if creating {
		return &fs.PathError{Op: op, Path: name, Err: ftpserver.ErrFileNameNotAllowed}
	}

	return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}
