package s3

import (
	"bytes"
	"context"
	"errors"
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

// Upload sizes. Parts go from minPart (5 MiB, S3's smallest but the last)
// to partSize (16 MiB) as the memory budget allows (memory.partSize), for
// the first partsPerStep parts; both double for each further partsPerStep,
// up to maxPartShift times, so that S3's limit of maxParts parts still
// holds a large file: about 303 GiB when every part is as small as it may
// be, 969 GiB when none is (see Options.UploadMemory).
const (
	partSize     = 16 << 20
	partsPerStep = 2000
	maxPartShift = 4
	maxParts     = 10_000
	// minPart is S3's smallest part but the last: a kept prefix smaller than
	// this is downloaded and sent again, a larger one copied on the server.
	minPart = 5 << 20
)

// sendWindow is how many parts of one upload are sent at once while the
// next one fills: the client keeps sending while the store takes a part.
const sendWindow = 2

// upload is a file opened for writing (STOR, APPE, REST then STOR). Write
// fills a part buffer; each full part goes to a multipart upload, sent in
// the background (up to sendWindow parts at once) while the next one fills,
// and a clean Close completes it, so the object appears whole or not at
// all, replacing any old one at once. An upload that fits in one part is
// sent with a single PUT at Close instead. After TransferError (ABOR, a
// lost data connection, a write error), Close aborts the multipart upload
// and the old object, if any, stays as it was.
//
// Part buffers come from the Store's memory budget (memory.go): an upload
// holds one chunk from the start, and reserves a whole part when its data
// goes beyond it.
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
	ctx    context.Context // cancelled by TransferError, Close and a failed part
	cancel context.CancelFunc

	failed atomic.Pointer[error] // TransferError's error: Close discards the upload

	mu       sync.Mutex
	old      minio.ObjectInfo // the object to keep a prefix of (Key empty: none)
	keep     int64            // bytes of old to keep
	started  bool             // the prefix is in place and data may follow
	cur      *part            // the part being filled; nil after the last was sent
	grown    bool             // past its first chunk: counted in the budget's fair share
	uploadID string           // the multipart upload, once a part was sent
	nparts   int              // parts sent or being sent
	written  int64            // bytes written by the client
	ioErr    error            // the first error of a Write: the upload is discarded
	closed   bool
	closeErr error

	// The parts being sent: a slot each, and what they left.
	sends   sync.WaitGroup
	slots   chan struct{}
	smu     sync.Mutex
	parts   []minio.CompletePart // every part, in order; ETag set once sent
	sendErr error                // the first part that failed
}

var (
	_ afero.File                  = (*upload)(nil)
	_ ftpserver.FileTransferError = (*upload)(nil)
)

// newUpload starts an upload to v that keeps all of old if appending, and
// else as much as Seek asks for (nothing by default). It waits for the
// upload's first chunk of part memory, and fails with ErrBusy when the
// budget stays spent.
func newUpload(f *Fs, v string, old minio.ObjectInfo, appending bool) (*upload, error) {
	ctx, cancel := context.WithCancel(context.Background())
	u := &upload{fs: f, name: v, key: f.key(v), ctx: ctx, cancel: cancel, old: old,
		slots: make(chan struct{}, sendWindow)}
	if appending {
		u.keep = old.Size
	}
	if err := u.room(); err != nil {
		cancel()
		if errors.Is(err, ErrBusy) {
			f.s.log.Warn("upload refused: part memory spent", zap.String("path", v), zap.String("root", f.root),
				zap.Int64("upload_memory", f.s.mem.limit), zap.Duration("waited", f.s.mem.wait))
		}

		return nil, pathError("open", v, err)
	}

	return u, nil
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
	n, err := u.write(p)
	u.written += int64(n)
	if err != nil {
		if failed := u.sendFailed(); failed != nil {
			err = failed // the part that failed, rather than the cancellation it caused
		}
		u.ioErr = u.fs.fail("write", u.name, err)

		return n, u.ioErr
	}

	return n, nil
}

// write adds b to the parts: a full part is sent when more data comes (so
// that Close sends the last one itself).
func (u *upload) write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if err := u.room(); err != nil {
			return n, err
		}
		k, err := u.cur.write(u.fs.s.mem, b)
		n += k
		b = b[k:]
		if err != nil {
			return n, err
		}
	}

	return n, nil
}

// room makes sure that the part being filled has room for more: it starts
// a part, grows the first one past its first chunk, or sends a full one
// and starts the next. Memory comes from the budget, which may wait.
func (u *upload) room() error {
	mem := u.fs.s.mem
	switch {
	case u.cur != nil && !u.cur.full():
		return nil
	case u.cur == nil && !u.grown:
		// The first chunk, granted only while a minimum part still fits
		// beside it (see memory).
		n, err := mem.reserve(u.ctx, chunkSize, chunkSize, minPart)
		if err != nil {
			return err
		}
		u.cur = &part{size: n, reserved: n, sum: u.fs.s.payloadHash()}
	case !u.grown:
		// More than a chunk: reserve the rest of a part.
		u.grown = true
		mem.grow(1)
		lo, hi := mem.partSize(u.nparts)
		n, err := mem.reserve(u.ctx, lo-u.cur.size, hi-u.cur.size, 0)
		if err != nil {
			return err
		}
		u.cur.size += n
		u.cur.reserved += n
	default:
		if u.cur != nil {
			if err := u.dispatch(); err != nil {
				return err
			}
		}
		lo, hi := mem.partSize(u.nparts)
		n, err := mem.reserve(u.ctx, lo, hi, 0)
		if err != nil {
			return err
		}
		u.cur = &part{size: n, reserved: n, sum: u.fs.s.payloadHash()}
	}

	return nil
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

// start puts the kept prefix of the old object in place, once: copied into
// the multipart upload when it is a valid part on its own, else read into
// the parts.
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
		n, err := io.Copy(writerFunc(u.write), body)
		if err == nil && n != u.keep {
			err = io.ErrUnexpectedEOF
		}

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
		number := u.nparts + 1
		cp, err := u.fs.s.core.CopyObjectPart(u.ctx, u.fs.s.bucket, u.key, u.fs.s.bucket, u.key, u.uploadID,
			number, off, min(size, u.keep-off), map[string]string{"x-amz-copy-source-if-match": quote(u.old.ETag)})
		if err != nil {
			return err
		}
		cp.PartNumber = number
		u.nparts++
		u.smu.Lock()
		u.parts = append(u.parts, cp)
		u.smu.Unlock()
	}

	return nil
}

// writerFunc turns a write method into an io.Writer.
type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// begin starts the multipart upload, once, and has the Store journal it
// (janitor.go) before any part is sent.
func (u *upload) begin() error {
	if u.uploadID != "" {
		return nil
	}
	id, err := u.fs.s.core.NewMultipartUpload(u.ctx, u.fs.s.bucket, u.key, minio.PutObjectOptions{})
	if err != nil {
		return err
	}
	u.uploadID = id
	u.fs.s.started(u.ctx, u.key, id)

	return nil
}

// dispatch sends the full part in the background, once a slot is free. It
// fails when an earlier part failed, or when the upload would need more
// parts than S3 allows.
func (u *upload) dispatch() error {
	if err := u.sendFailed(); err != nil {
		return err
	}
	if u.nparts == maxParts {
		return ErrTooLarge
	}
	if err := u.begin(); err != nil {
		return err
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		if err := u.sendFailed(); err != nil {
			return err
		}

		return u.ctx.Err()
	}
	p := u.cur
	u.cur = nil
	u.nparts++
	p.number = u.nparts
	u.smu.Lock()
	i := len(u.parts)
	u.parts = append(u.parts, minio.CompletePart{PartNumber: p.number})
	u.smu.Unlock()
	u.sends.Add(1)
	go u.send(p, i, u.uploadID)

	return nil
}

// send sends part p, the i-th of the upload, gives its memory back and
// records its ETag, or the first failure (which stops the other parts).
func (u *upload) send(p *part, i int, id string) {
	defer u.sends.Done()
	defer func() { <-u.slots }()
	r := p.reader()
	res, err := u.fs.s.core.PutObjectPart(u.ctx, u.fs.s.bucket, u.key, id, p.number, r, p.n,
		minio.PutObjectPartOptions{Sha256Hex: p.sha256(), DisableContentSha256: true})
	r.detach()
	p.free(u.fs.s.mem)
	u.smu.Lock()
	defer u.smu.Unlock()
	if err != nil {
		if u.sendErr == nil {
			u.sendErr = err
			u.cancel()
		}

		return
	}
	u.parts[i].ETag = res.ETag
}

// sendFailed returns the error of the first part that failed, if any.
func (u *upload) sendFailed() error {
	u.smu.Lock()
	defer u.smu.Unlock()

	return u.sendErr
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
	u.sends.Wait()
	if u.cur != nil {
		u.cur.free(u.fs.s.mem)
		u.cur = nil
	}
	if u.grown {
		u.fs.s.mem.grow(-1)
	}

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
		err = u.putObject()
	default:
		if u.cur != nil && u.cur.n > 0 {
			err = u.dispatch()
		}
		u.sends.Wait()
		if err == nil {
			err = u.sendFailed()
		}
		if err == nil {
			_, err = u.fs.s.core.CompleteMultipartUpload(u.ctx, u.fs.s.bucket, u.key, u.uploadID, u.parts,
				minio.PutObjectOptions{})
		}
		if err == nil {
			u.fs.s.ended(u.key, u.uploadID)
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

// putObject sends an upload that fits in one part with a single PUT.
func (u *upload) putObject() error {
	var (
		body io.Reader = bytes.NewReader(nil)
		size int64
		sum  string
	)
	if p := u.cur; p != nil && p.n > 0 {
		r := p.reader()
		defer r.detach()
		body, size, sum = r, p.n, p.sha256()
	}
	// The object keeps its SHA-256 (see SHA256): the store checks it too.
	_, err := u.fs.s.core.PutObject(u.ctx, u.fs.s.bucket, u.key, body, size, "", sum,
		minio.PutObjectOptions{DisableContentSha256: true, UserMetadata: checksumHeader(sum)})

	return err
}

// abort stops the parts being sent and aborts the multipart upload, if one
// was started, with a context of its own: u.ctx may be cancelled already.
// An upload that cannot be aborted stays invisible but takes space: the
// Store tries again later (janitor.go).
func (u *upload) abort() {
	u.cancel()
	u.sends.Wait()
	if u.uploadID == "" {
		return
	}
	ctx, cancel := opContext()
	defer cancel()
	err := u.fs.s.core.AbortMultipartUpload(ctx, u.fs.s.bucket, u.key, u.uploadID)
	if err != nil && !notFound(err) {
		u.fs.s.log.Warn("cannot abort upload", zap.String("path", u.name), zap.String("root", u.fs.root),
			zap.String("upload_id", u.uploadID), zap.Error(err))
		u.fs.s.abortFailed(u.key, u.uploadID)

		return
	}
	u.fs.s.ended(u.key, u.uploadID)
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
