package s3

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// download is a file opened for reading (RETR). The first Read sends one
// GET for the rest of the object from the current offset, so the engine's
// Seek right after the open (REST) becomes a ranged GET, and its body is
// streamed; a Seek to another offset drops the body and the next Read asks
// again. Every GET is conditional on the ETag seen at open, so a download,
// or a resumed one, never mixes two versions of a file: a replaced object
// fails with ErrChanged.
//
// When the store cuts the stream, or fails to start it, transiently, the
// download goes on with a new ranged GET from where it stopped, tried again
// with retry's backoff until retryBudget has passed without a byte: a store
// that restarts within that time costs the client a pause, not the
// transfer. After it, Read fails with ErrUnavailable (the client reads 451).
type download struct {
	fs     *Fs
	name   string // virtual path
	key    string
	info   fileInfo
	etag   string
	ctx    context.Context // cancelled by Close, which ends a blocked Read
	cancel context.CancelFunc

	mu     sync.Mutex
	offset int64
	body   io.ReadCloser // the GET in progress, or nil
	broken time.Time     // when the stream failed, if no byte came since
	closed bool
}

func newDownload(f *Fs, v string, info fileInfo, etag string) *download {
	ctx, cancel := context.WithCancel(context.Background())

	return &download{fs: f, name: v, key: f.key(v), info: info, etag: etag, ctx: ctx, cancel: cancel}
}

// Name returns the virtual path.
func (d *download) Name() string { return d.name }

// Stat returns the info the file had when it was opened.
func (d *download) Stat() (fs.FileInfo, error) { return d.info, nil }

// get sends a GET for the bytes from off to end (inclusive; -1 for the
// end of the object).
func (d *download) get(off, end int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if d.etag != "" {
		if err := opts.SetMatchETag(d.etag); err != nil {
			return nil, err
		}
	}
	switch {
	case end >= 0:
		if err := opts.SetRange(off, end); err != nil {
			return nil, err
		}
	case off > 0:
		if err := opts.SetRange(off, 0); err != nil {
			return nil, err
		}
	}
	body, _, _, err := d.fs.s.core.GetObject(d.ctx, d.fs.s.bucket, d.key, opts)

	return body, err
}

// Read reads from the current offset, starting a GET if none is running,
// and another one if the store cut the last (see download).
func (d *download) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, pathError("read", d.name, fs.ErrClosed)
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if d.offset >= d.info.size {
			return 0, io.EOF
		}
		if d.body == nil {
			if err := d.open(); err != nil {
				return 0, d.fs.fail("read", d.name, err)
			}
		}
		n, err := d.body.Read(p)
		d.offset += int64(n)
		if n > 0 {
			d.broken = time.Time{}
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && d.offset >= d.info.size:
			d.drop()

			return n, io.EOF
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF // the store ended the body early: a cut like any other
		}
		d.drop()
		if !transient(err) || d.ctx.Err() != nil {
			return n, d.fs.fail("read", d.name, err)
		}
		if d.broken.IsZero() {
			d.broken = time.Now()
		}
		if n > 0 {
			return n, nil // the next Read goes on from here
		}
	}
}

// open starts the GET from the offset. While the store fails transiently
// it tries again, with retry's backoff, until retryBudget has passed since
// the stream failed (d.broken) or, for a first GET, since this call.
func (d *download) open() error {
	since := d.broken
	if since.IsZero() {
		since = time.Now()
	}
	for wait := retryFirst; ; wait = min(2*wait, retryMax) {
		body, err := d.get(d.offset, -1)
		switch {
		case err == nil:
			d.body = body

			return nil
		case !transient(err) || time.Since(since)+wait > retryBudget || sleep(d.ctx, wait) != nil:
			return err
		}
	}
}

// drop closes the GET in progress, if any.
func (d *download) drop() {
	if d.body != nil {
		_ = d.body.Close()
		d.body = nil
	}
}

// ReadAt reads len(p) bytes at off with a GET of just that range.
func (d *download) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case off < 0:
		return 0, pathError("read", d.name, syscall.EINVAL)
	case off >= d.info.size:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	end := min(off+int64(len(p)), d.info.size) - 1
	body, err := d.get(off, end)
	if err != nil {
		return 0, d.fs.fail("read", d.name, err)
	}
	defer body.Close()
	n, err := io.ReadFull(body, p[:end-off+1])
	if err != nil {
		return n, d.fs.fail("read", d.name, err)
	}
	if n < len(p) {
		return n, io.EOF
	}

	return n, nil
}

// Seek sets the offset of the next Read, like os.File.Seek. Seeking before
// the first Read costs nothing; seeking elsewhere later ends the running GET.
func (d *download) Seek(offset int64, whence int) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, pathError("seek", d.name, fs.ErrClosed)
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += d.offset
	case io.SeekEnd:
		offset += d.info.size
	default:
		return 0, pathError("seek", d.name, syscall.EINVAL)
	}
	if offset < 0 {
		return 0, pathError("seek", d.name, syscall.EINVAL)
	}
	if offset != d.offset && d.body != nil {
		_ = d.body.Close()
		d.body = nil
	}
	d.offset = offset

	return offset, nil
}

// Close ends the GET in progress, even one that a Read is blocked in.
func (d *download) Close() error {
	d.cancel()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return pathError("close", d.name, fs.ErrClosed)
	}
	d.closed = true
	if d.body != nil {
		_ = d.body.Close()
		d.body = nil
	}

	return nil
}

// Sync does nothing: there is nothing to flush.
func (d *download) Sync() error { return nil }

// Readdir fails: a file is not a folder.
func (d *download) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathError("readdir", d.name, syscall.ENOTDIR)
}

// Readdirnames fails: a file is not a folder.
func (d *download) Readdirnames(int) ([]string, error) {
	return nil, pathError("readdir", d.name, syscall.ENOTDIR)
}

// Write fails: the file was opened for reading.
func (d *download) Write([]byte) (int, error) { return 0, d.readOnly("write") }

// WriteAt fails: the file was opened for reading.
func (d *download) WriteAt([]byte, int64) (int, error) { return 0, d.readOnly("write") }

// WriteString fails: the file was opened for reading.
func (d *download) WriteString(string) (int, error) { return 0, d.readOnly("write") }

// Truncate fails: the file was opened for reading.
func (d *download) Truncate(int64) error { return d.readOnly("truncate") }

func (d *download) readOnly(op string) error { return pathError(op, d.name, syscall.EBADF) }
