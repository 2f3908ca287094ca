package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"syscall"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"

	"wharf/vfs"
)

var (
	// ErrUnavailable is the cause clients read when the store did not
	// answer, timed out, or said it was busy or failing (HTTP 5xx, 429,
	// SlowDown): vfs.ErrUnavailable, which the server answers 450 or 451, so
	// that clients try again. Idempotent requests are tried again first
	// (see retry). Options.Log gets the details.
	ErrUnavailable = vfs.ErrUnavailable
	// ErrStorage is the cause clients read when the store refused in a way
	// that neither they nor time can fix (our credentials, a missing bucket,
	// an error code this package does not know): vfs.ErrStorageFault, which
	// the server answers 451. Options.Log gets the details.
	ErrStorage = vfs.ErrStorageFault
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
// logs what clients do not see: a fault as a warning, a transient failure
// at debug level (the store's health logs the outage once, see health).
func (f *Fs) kind(op, name string, err error) error {
	k := kind(err)
	if ours(err) {
		return k
	}
	switch {
	case errors.Is(k, ErrStorage):
		f.s.log.Warn("storage request failed", zap.String("op", op), zap.String("path", name),
			zap.String("bucket", f.s.bucket), zap.String("root", f.root), zap.Error(err))
	case errors.Is(k, ErrUnavailable):
		f.s.log.Debug("storage request failed", zap.String("op", op), zap.String("path", name),
			zap.String("bucket", f.s.bucket), zap.String("root", f.root), zap.Error(err))
	}

	return k
}

// kind maps an error of the store to one that shows nothing of the store:
// the fs errors for missing objects and refused access, ErrChanged,
// ftpserver's storage and name errors, ErrUnavailable for a store that did
// not answer or answered that it is busy or failing, and ErrStorage for
// every other answer (network errors name the endpoint, S3 errors the
// bucket).
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
		// No answer: refused, reset, timed out, a host name that did not
		// resolve, credentials that could not be fetched.
		return ErrUnavailable
	}
	if transientAnswer(resp) {
		return ErrUnavailable
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

// transientCodes are the error codes with which S3, MinIO and their
// gateways say "not now": throttling, timeouts, a server starting or short
// of disks, credentials that expired (and are fetched again).
var transientCodes = []string{
	"SlowDown", "SlowDownRead", "SlowDownWrite", "ServiceUnavailable", "InternalError", "RequestTimeout",
	"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled", "ExpiredToken",
	"ExpiredTokenException", "XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum",
}

// transientAnswer reports whether the store answered that it failed for
// now: a 5xx status, 408 or 429, or one of transientCodes.
func transientAnswer(resp minio.ErrorResponse) bool {
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooManyRequests:
		return true
	}

	return slices.Contains(transientCodes, resp.Code)
}

// transient reports whether err is a failure of the store that may pass,
// so that an idempotent request is worth trying again.
func transient(err error) bool {
	return errors.Is(kind(err), ErrUnavailable)
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
		ErrUnavailable, ErrStorage, ErrChanged, ErrNoTimes, ErrNoModes, ErrTooManyKeys, ErrSeek, ErrTooLarge, ErrBusy,
		ftpserver.ErrStorageExceeded, ftpserver.ErrFileNameNotAllowed,
	}, err)
}

// notFound reports whether err says that the object does not exist.
func notFound(err error) bool {
	return errors.Is(kind(err), fs.ErrNotExist)
}
