package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"syscall"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
)

var (
	// ErrStorage is the cause clients read when the store failed in a way
	// they cannot fix (unreachable, refusing our credentials, an internal
	// error). Options.Log gets the details.
	ErrStorage = errors.New("storage unavailable, try again later")
	// ErrChanged is the cause of a read, resume or rename whose source object
	// was replaced while it ran.
	ErrChanged = errors.New("file changed on the server during the transfer")
	// ErrNoTimes refuses Chtimes (MFMT): S3 sets an object's modification
	// time itself, when the upload completes.
	ErrNoTimes = fmt.Errorf("%w: s3 storage keeps its own modification times", errors.ErrUnsupported)
	// ErrNoModes refuses Chmod and Chown: objects have no permission bits or owners.
	ErrNoModes = fmt.Errorf("%w: s3 storage has no permission bits or owners", fs.ErrPermission)
	// ErrTooManyKeys refuses to rename a folder that holds more than
	// maxRenameKeys objects: S3 has no rename, every object is copied.
	ErrTooManyKeys = fmt.Errorf("folder too large to rename on s3 storage (more than %d objects)", maxRenameKeys)
	// ErrSeek refuses moving the offset of an upload once data was written:
	// an upload streams to the store and cannot go back.
	ErrSeek = errors.New("uploads to s3 storage are sequential")
	// ErrTooLarge ends an upload that would need more parts than S3 allows.
	ErrTooLarge = fmt.Errorf("%w: file too large for s3 storage", ftpserver.ErrStorageExceeded)
)

// Error codes that S3 and MinIO send and minio-go has no constant for.
const (
	codeKeyTooLong     = "KeyTooLongError"
	codeParentIsObject = "XMinioParentIsObject"
	codeStorageFull    = "XMinioStorageFull"
	codeQuotaExceeded  = "XMinioAdminBucketQuotaExceeded"
)

// pathError returns the client-facing error for op on the virtual path name.
func pathError(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// fail maps an error of the store to the client-facing error for op on the
// virtual path name.
func (f *Fs) fail(op, name string, err error) error {
	return pathError(op, name, f.kind(op, name, err))
}

// kind maps an error of the store to its client-facing kind (see kind), and
// logs what clients do not see.
func (f *Fs) kind(op, name string, err error) error {
	k := kind(err)
	if errors.Is(k, ErrStorage) && !ours(err) {
		f.s.log.Warn("storage request failed", zap.String("op", op), zap.String("path", name),
			zap.String("bucket", f.s.bucket), zap.String("root", f.root), zap.Error(err))
	}

	return k
}

// kind maps an error of the store to one that shows nothing of the store:
// the fs errors for missing objects and refused access, ErrChanged,
// ftpserver's storage and name errors, and ErrStorage for everything else
// (network errors name the endpoint, S3 errors the bucket).
func kind(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err // ours already
	}
	if ours(err) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return context.Canceled // the transfer ended (TransferError, Close)
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return ErrStorage
	}
	switch resp.Code {
	case minio.NoSuchKey, minio.NoSuchUpload, "NotFound":
		return fs.ErrNotExist
	case minio.AccessDenied, minio.AllAccessDisabled:
		return fs.ErrPermission
	case minio.PreconditionFailed:
		return ErrChanged
	case minio.EntityTooLarge, codeStorageFull, codeQuotaExceeded:
		return ftpserver.ErrStorageExceeded
	case codeKeyTooLong, minio.XMinioInvalidObjectName:
		return ftpserver.ErrFileNameNotAllowed
	case codeParentIsObject:
		return syscall.ENOTDIR
	default:
		return ErrStorage
	}
}

// ours reports whether err is one of the path-free kinds this package hands
// to clients itself, rather than an error of the store (which may wrap an
// errno, inside a network error that names the endpoint).
func ours(err error) bool {
	if _, ok := err.(syscall.Errno); ok { //nolint:errorlint // a bare errno, not one inside another error
		return true
	}

	return slices.Contains([]error{
		fs.ErrNotExist, fs.ErrExist, fs.ErrPermission, fs.ErrClosed, context.Canceled,
		ErrStorage, ErrChanged, ErrNoTimes, ErrNoModes, ErrTooManyKeys, ErrSeek, ErrTooLarge,
		ftpserver.ErrStorageExceeded, ftpserver.ErrFileNameNotAllowed,
	}, err)
}

// notFound reports whether err says that the object does not exist.
func notFound(err error) bool {
	return errors.Is(kind(err), fs.ErrNotExist)
}
