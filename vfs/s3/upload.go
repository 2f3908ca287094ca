package s3

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"
	"github.com/spf13/afero"
	"go.uber.org/zap"
)

// Upload sizes. Parts are partSize (16 MiB) for the first partsPerStep
// parts, then twice as large for each further partsPerStep, up to 256 MiB:
// memory stays at one 16 MiB buffer for any upload under 31 GiB, and S3's
// limit of maxParts parts still allows uploads of about 969 GiB.
const (
	partSize     = 16 << 20
	partsPerStep = 2000
	maxPartShift = 4
	maxParts     = 10_000
	// minPart is S3's smallest part but the last: a kept prefix smaller than
	// this is downloaded and sent again, a larger one copied on the server.
	minPart = 5 << 20
)

// upload is a file opened for writing (STOR, APPE, REST then STOR). Write
// fills a part buffer; each full part goes to a multipart upload, and a
// clean Close completes it, so the object appears whole or not at all,
// replacing any old one at once. An upload that fits in one part is sent
// with a single PUT at Close instead. After TransferError (ABOR, a lost
// data connection, a write error), Close aborts the multipart upload and
// the old object, if any, stays as it was.
//
// An upload that keeps the start of the existing object (APPE: all of it;
// REST n then STOR: its first n bytes) begins with that prefix, copied on
// the server (UploadPartCopy) when it is at least minPart long and read
// back otherwise, so an append is just as atomic. Both are conditional on
// the ETag seen at open (ErrChanged otherwise).
type upload struct {
	fs     *Fs
	name   string // virtual path
	key    string
	ctx    context.Context // cancelled by TransferError and Close
	cancel context.CancelFunc

	failed atomic.Pointer[error] // TransferError's error: Close discards the upload

	mu       sync.Mutex
	old      minio.ObjectInfo // the object to keep a prefix of (Key empty: none)
	keep     int64            // bytes of old to keep
	started  bool             // the prefix is in place and data may follow
	buf      []byte           // the part being filled
	uploadID string           // the multipart upload, once a part was sent
	parts    []minio.CompletePart
	written  int64 // bytes written by the client
	ioErr    error // the first error of a Write: the upload is discarded
	closed   bool
	closeErr error
}

var (
	_ afero.File                  = (*upload)(nil)
	_ ftpserver.FileTransferError = (*upload)(nil)
)

// newUpload starts an upload to v that keeps all of old if appending, and
// else as much as Seek asks for (nothing by default).
func newUpload(f *Fs, v string, old minio.ObjectInfo, appending bool) *upload {
	ctx, cancel := context.WithCancel(context.Background())
	u := &upload{fs: f, name: v, key: f.key(v), ctx: ctx, cancel: cancel, old: old}
	if appending {
		u.keep = old.Size
	}

	return u
}

// Name returns the virtual path.
func (u *upload) Name() string { return u.name }

// Stat returns the size written so far, the kept prefix included.
func (u *upload) Stat() (fs.FileInfo, error) {
	u.mu.Lock()
	defer u.mu.Unlock()

	return fileInfo{name: path.Base(u.name), size: u.keep + u.written, mtime: time.Now()}, nil
}

// TransferError records that the transfer did not end cleanly: Close then
// aborts the upload. It interrupts a part being sent.
func (u *upload) TransferError(err error) {
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	u.failed.CompareAndSwap(nil, &err)
	u.cancel()
}

// Seek sets where the data goes, before the first Write: Seek(n,
// io.SeekStart) keeps the first n bytes of the existing file (REST n, then
// STOR). Afterwards only the current position can be asked for; anything
// else fails with ErrSeek.
func (u *upload) Seek(offset int64, whence int) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	pos := u.keep + u.written
	switch {
	case u.closed:
		return 0, pathError("seek", u.name, fs.ErrClosed)
	case whence == io.SeekCurrent && offset == 0, whence == io.SeekStart && offset == pos:
		return pos, nil
	case u.started || whence != io.SeekStart:
		return 0, pathError("seek", u.name, ErrSeek)
	case offset < 0 || offset > u.old.Size:
		return 0, pathError("seek", u.name, syscall.EINVAL)
	}
	u.keep = offset

	return offset, nil
}

// Write adds p to the upload, sending each part as it fills.
func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.writable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		k := min(u.partSize()-len(u.buf), len(p))
		u.grow(k)
		u.buf = append(u.buf, p[:k]...)
		p = p[k:]
		n += k
		u.written += int64(k)
		if len(u.buf) == u.partSize() {
			if err := u.sendPart(); err != nil {
				u.ioErr = u.fs.fail("write", u.name, err)

				return n, u.ioErr
			}
		}
	}

	return n, nil
}

// writable checks that Write may go on, and puts the kept prefix in place
// before the first byte.
func (u *upload) writable() error {
	switch {
	case u.closed:
		return pathError("write", u.name, fs.ErrClosed)
	case u.ioErr != nil:
		return u.ioErr
	case u.failed.Load() != nil:
		return pathError("write", u.name, context.Canceled)
	}
	if err := u.start(); err != nil {
		u.ioErr = u.fs.fail("write", u.name, err)

		return u.ioErr
	}

	return nil
}

// WriteString adds s to the upload.
func (u *upload) WriteString(s string) (int, error) { return u.Write([]byte(s)) }

// WriteAt writes at the current end only: uploads are sequential.
func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	u.mu.Lock()
	pos := u.keep + u.written
	u.mu.Unlock()
	if off != pos {
		return 0, pathError("write", u.name, ErrSeek)
	}

	return u.Write(p)
}

// Truncate fails unless it changes nothing: uploads are sequential.
func (u *upload) Truncate(size int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if size != u.keep+u.written {
		return pathError("truncate", u.name, ErrSeek)
	}

	return nil
}

// grow makes room for n more bytes in the part buffer, doubling it up to the
// part size: a small upload takes little memory, a large one exactly one part.
func (u *upload) grow(n int) {
	if len(u.buf)+n <= cap(u.buf) {
		return
	}
	size := min(max(2*cap(u.buf), len(u.buf)+n, 64<<10), u.partSize())
	buf := make([]byte, len(u.buf), size)
	copy(buf, u.buf)
	u.buf = buf
}

// partSize returns the size of the next part to send.
func (u *upload) partSize() int {
	return partSize << min(len(u.parts)/partsPerStep, maxPartShift)
}

// start puts the kept prefix of the old object in place, once: copied into
// the multipart upload when it is a valid part on its own, else read into
// the part buffer.
func (u *upload) start() error {
	if u.started {
		return nil
	}
	u.started = true
	switch {
	case u.keep == 0:
		return nil
	case u.keep < minPart:
		opts := minio.GetObjectOptions{}
		if err := opts.SetMatchETag(u.old.ETag); err != nil {
			return err
		}
		if err := opts.SetRange(0, u.keep-1); err != nil {
			return err
		}
		body, _, _, err := u.fs.s.core.GetObject(u.ctx, u.fs.s.bucket, u.key, opts)
		if err != nil {
			return err
		}
		defer body.Close()
		u.buf = make([]byte, u.keep, max(u.keep, 1<<20))
		_, err = io.ReadFull(body, u.buf)

		return err
	}
	if err := u.begin(); err != nil {
		return err
	}
	// Copy parts are at most 5 GiB; split the prefix evenly, so that each
	// is also at least minPart.
	n := (u.keep + maxCopy - 1) / maxCopy
	size := (u.keep + n - 1) / n
	for off := int64(0); off < u.keep; off += size {
		part := len(u.parts) + 1
		cp, err := u.fs.s.core.CopyObjectPart(u.ctx, u.fs.s.bucket, u.key, u.fs.s.bucket, u.key, u.uploadID,
			part, off, min(size, u.keep-off), map[string]string{"x-amz-copy-source-if-match": quote(u.old.ETag)})
		if err != nil {
			return err
		}
		cp.PartNumber = part
		u.parts = append(u.parts, cp)
	}

	return nil
}

// begin starts the multipart upload, once.
func (u *upload) begin() error {
	if u.uploadID != "" {
		return nil
	}
	id, err := u.fs.s.core.NewMultipartUpload(u.ctx, u.fs.s.bucket, u.key, minio.PutObjectOptions{})
	u.uploadID = id

	return err
}

// sendPart sends the part buffer as the next part.
func (u *upload) sendPart() error {
	if len(u.parts) == maxParts {
		return ErrTooLarge
	}
	if err := u.begin(); err != nil {
		return err
	}
	part := len(u.parts) + 1
	p, err := u.fs.s.core.PutObjectPart(u.ctx, u.fs.s.bucket, u.key, u.uploadID, part,
		bytes.NewReader(u.buf), int64(len(u.buf)), minio.PutObjectPartOptions{})
	if err != nil {
		return err
	}
	u.parts = append(u.parts, minio.CompletePart{PartNumber: part, ETag: p.ETag})
	u.buf = u.buf[:0]

	return nil
}

// Close ends the upload: after a clean transfer it sends what is left and
// completes the upload, else it aborts it. It returns the error of a Write
// or of the completion (the object then is as it was), and nil for an
// upload discarded after TransferError. Later calls return the first
// call's result.
func (u *upload) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return u.closeErr
	}
	u.closed = true
	u.closeErr = u.finish()
	u.cancel()
	u.buf = nil

	return u.closeErr
}

func (u *upload) finish() error {
	switch {
	case u.ioErr != nil:
		u.abort()

		return u.ioErr
	case u.failed.Load() != nil:
		u.abort()

		return nil
	}
	err := u.start()
	switch {
	case err != nil:
	case u.uploadID == "":
		_, err = u.fs.s.core.PutObject(u.ctx, u.fs.s.bucket, u.key, bytes.NewReader(u.buf), int64(len(u.buf)),
			"", "", minio.PutObjectOptions{})
	default:
		if len(u.buf) > 0 {
			err = u.sendPart()
		}
		if err == nil {
			_, err = u.fs.s.core.CompleteMultipartUpload(u.ctx, u.fs.s.bucket, u.key, u.uploadID, u.parts,
				minio.PutObjectOptions{})
		}
	}
	if err != nil {
		u.abort()
		if u.failed.Load() != nil {
			return nil // TransferError came while the upload was completing
		}

		return u.fs.fail("close", u.name, err)
	}

	return nil
}

// abort aborts the multipart upload, if one was started, with a context of
// its own: u.ctx may be cancelled already. An upload that cannot be aborted
// stays invisible but takes space until the bucket's lifecycle rule
// (AbortIncompleteMultipartUpload) removes it.
func (u *upload) abort() {
	if u.uploadID == "" {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	if err := u.fs.s.core.AbortMultipartUpload(ctx, u.fs.s.bucket, u.key, u.uploadID); err != nil {
		u.fs.s.log.Warn("cannot abort upload", zap.String("path", u.name), zap.String("root", u.fs.root),
			zap.String("upload_id", u.uploadID), zap.Error(err))
	}
}

// Sync does nothing: nothing is stored before Close.
func (u *upload) Sync() error { return nil }

// Read fails: uploads are write-only.
func (u *upload) Read([]byte) (int, error) { return 0, pathError("read", u.name, syscall.EBADF) }

// ReadAt fails: uploads are write-only.
func (u *upload) ReadAt([]byte, int64) (int, error) {
	return 0, pathError("read", u.name, syscall.EBADF)
}

// Readdir fails: a file is not a folder.
func (u *upload) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathError("readdir", u.name, syscall.ENOTDIR)
}

// Readdirnames fails: a file is not a folder.
func (u *upload) Readdirnames(int) ([]string, error) {
	return nil, pathError("readdir", u.name, syscall.ENOTDIR)
}
