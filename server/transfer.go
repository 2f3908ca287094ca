package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/afero"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"wharf/vfs"
)

// Chunk sizes of the zero-copy loops. Each chunk is one sendfile or splice
// run in the kernel; between chunks the data connection's deadline moves on,
// so a peer that stops reading or sending is cut off after DataTimeout. The
// chunk grows while chunks finish fast and shrinks when they are slow, so a
// slow but live client always completes a chunk well within the timeout.
//
// Downloads stay on Go's non-blocking sendfile at every size. Measured on
// loopback on the 2-core VM (a 1 GiB file and 32 x 64 MiB from tmpfs, sender
// and reader on their own cores, 5 to 10 interleaved rounds, medians), the
// sender's CPU per GB was 0.12-0.14 s for these chunks, for one sendfile of
// the whole file and for splice through a pipe alike, 0.33 s for a copy
// through a 256 KiB buffer and 0.37 s through 32 KiB ones; the copies were
// not faster either (2,412 against 2,620-3,046 MB/s for one download,
// 2,043-2,111 against 2,658-3,247 for 32). A blocking sendfile of the whole
// file, as vsftpd makes, was the slowest (1,080 MB/s), and it would ignore
// the deadlines that cut a stalled peer.
const (
	minChunk   = 64 << 10
	startChunk = 512 << 10
	maxChunk   = 16 << 20
	copyBuffer = 256 << 10
	// copyPiece is the most the buffered download loop hands the data
	// connection in one write, so that a slow client's transfer is counted
	// every second or so (a TLS write returns only once all of it is out).
	copyPiece = 64 << 10
)

// progressTick is the longest a zero-copy chunk runs before the transfer
// counts what it moved (wharf_transfer_bytes_total, /sessions, the
// watchdog): sendfile and splice tell their bytes only when they return, so
// the data connection's deadline comes this often, and a deadline that finds
// bytes moved within the data timeout is a tick, not a stall.
const progressTick = 500 * time.Millisecond

// ErrTooLarge is the error of an upload cut off at its size limit; clients get 552.
var ErrTooLarge = fmt.Errorf("upload exceeds the size limit: %w", ftpserver.ErrStorageExceeded)

var errSessionGone = errors.New("the control connection closed during the upload")

// dataConnError is a data connection failure as the client reads it: what
// happened, without the socket addresses of the underlying error (which the
// engine would send verbatim). The cause stays reachable for errors.Is and
// for the log.
type dataConnError struct{ cause error }

func (e *dataConnError) Error() string {
	switch {
	case errors.Is(e.cause, os.ErrDeadlineExceeded):
		return "the data connection stalled"
	case errors.Is(e.cause, syscall.ECONNRESET), errors.Is(e.cause, syscall.EPIPE):
		return "the data connection was reset"
	default:
		return "the data connection failed"
	}
}

func (e *dataConnError) Unwrap() error { return e.cause }

// localError is the file's error during a download, which netErr leaves alone.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// netErr wraps an error of the data connection; other errors (the file's,
// the size limit) pass unchanged.
func netErr(err error) error {
	if err == nil {
		return nil
	}

	if le, ok := errors.AsType[localError](err); ok {
		return le.err
	}

	// sendfile(2) reports the file's read error (EIO) as the connection's.
	if errors.Is(err, syscall.EIO) {
		return err
	}

	// A splice into the file reports a reset socket as the file's write error.
	if _, isOp := errors.AsType[*net.OpError](err); isOp || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, os.ErrDeadlineExceeded) {
		return &dataConnError{cause: err}
	}

	return err
}

// transfer wraps the file of one RETR, STOR or APPE to count its bytes as
// they move, apply bandwidth limits, size limits and the stall timeout, and
// log its outcome on Close. With no bandwidth limit it keeps the kernel's
// fast paths: WriteTo hands a file on disk (a bare *os.File) to the
// connection's ReadFrom (sendfile), and ReadFrom hands the connection to the
// file's ReadFrom (splice), a chunk at a time, each chunk ending at least
// every progressTick.
type transfer struct {
	file      afero.File
	sess      *session
	path      string
	direction string
	start     time.Time
	offset    int64
	size      int64 // file size at open, for downloads
	pos       int64 // where the file is, as far as Seek moved it (a file opens at 0)
	fresh     bool  // an upload that created or truncated its target

	limiters    []*rate.Limiter    // bandwidth buckets this transfer draws from; empty = unlimited
	dataTimeout time.Duration      // 0 = none
	maxBytes    int64              // upload size limit; 0 = none
	counted     prometheus.Counter // wharf_transfer_bytes_total for the direction: moved adds to it

	bytes    atomic.Int64
	progress atomic.Int64 // unix nanoseconds of the last byte moved
	failed   atomic.Pointer[error]
	closed   atomic.Bool
	stalled  atomic.Bool // the session was closed for it
	fileErr  error       // the file's read error in the engine's own copy loop (TYPE A)
}

var (
	_ ftpserver.FileTransfer      = (*transfer)(nil)
	_ ftpserver.FileTransferError = (*transfer)(nil)
	_ io.WriterTo                 = (*transfer)(nil)
	_ io.ReaderFrom               = (*transfer)(nil)
)

type readDeadliner interface{ SetReadDeadline(t time.Time) error }

type writeDeadliner interface{ SetWriteDeadline(t time.Time) error }

// moved records n bytes moved: the transfer's count, its progress, and the
// server's byte counter, which therefore moves while transfers run.
func (t *transfer) moved(n int64) {
	t.movedAt(n, time.Now())
}

// movedAt counts n bytes that moved at the latest at at.
func (t *transfer) movedAt(n int64, at time.Time) {
	if n > 0 {
		t.bytes.Add(n)
		t.progress.Store(at.UnixNano())
		t.counted.Add(float64(n))
	}
}

// chunkDeadline is the data connection's deadline for the next zero-copy
// chunk: the next tick (progressTick), or data_timeout after the last byte
// moved, whichever comes first.
func (t *transfer) chunkDeadline() time.Time {
	next := time.Now().Add(progressTick)
	if t.dataTimeout > 0 {
		if stall := time.Unix(0, t.progress.Load()).Add(t.dataTimeout); stall.Before(next) {
			return stall
		}
	}

	return next
}

// ticked reports whether err is the deadline of chunkDeadline at a tick: a
// byte moved within data_timeout, so the transfer goes on.
func (t *transfer) ticked(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}

	return t.dataTimeout <= 0 || time.Since(time.Unix(0, t.progress.Load())) < t.dataTimeout
}

// Read serves the engine's own copy loop (ASCII mode): limits apply, the
// stall timeout does not reach the connection from here.
func (t *transfer) Read(p []byte) (int, error) {
	if len(t.limiters) > 0 && len(p) > t.burst() {
		p = p[:t.burst()]
	}

	n, err := t.file.Read(p)
	t.moved(int64(n))

	if err != nil && !errors.Is(err, io.EOF) {
		t.fileErr = err
	}

	if werr := t.wait(n); werr != nil && err == nil {
		err = werr
	}

	return n, err
}

func (t *transfer) Write(p []byte) (int, error) {
	if err := t.checkSize(int64(len(p))); err != nil {
		return 0, err
	}

	var written int
	for len(p) > 0 {
		chunk := p
		if len(t.limiters) > 0 && len(chunk) > t.burst() {
			chunk = chunk[:t.burst()]
		}

		if err := t.wait(len(chunk)); err != nil {
			return written, err
		}

		n, err := t.file.Write(chunk)
		written += n
		t.moved(int64(n))

		if err != nil {
			return written, err
		}

		p = p[n:]
	}

	return written, nil
}

// Seek moves the file, and keeps where it is for WriteTo: the engine
// seeks to the REST offset before a download.
func (t *transfer) Seek(offset int64, whence int) (int64, error) {
	pos, err := t.file.Seek(offset, whence)
	if err == nil {
		t.pos = pos
	}

	return pos, err
}

// WriteTo sends the file to the data connection w.
func (t *transfer) WriteTo(w io.Writer) (int64, error) {
	if err := handshake(w); err != nil {
		t.sess.srv.metrics.handshakeFailed(tlsData, err)

		return 0, netErr(err)
	}

	n, err := t.writeTo(w)

	return n, netErr(err)
}

func (t *transfer) writeTo(w io.Writer) (int64, error) {
	defer clearDeadline(w)

	// sendfile(2) needs the bare *os.File, which vfs gives for files on
	// disk; any other file (an object store's) goes through the buffered
	// loop, which tells its read errors from the connection's.
	rf, zeroCopy := w.(io.ReaderFrom)
	f, bare := t.file.(*os.File)
	if !zeroCopy || !bare || len(t.limiters) > 0 {
		return t.copyOut(w)
	}

	// Where the file starts, to put it back after a tick (see below): where
	// the engine's Seek to the REST offset left it.
	start := t.pos

	// A file on disk is sent up to its size when RETR opened it, as vsftpd
	// does: the last chunk ends there, with no sendfile(2) that finds the
	// end of the file. A file that shrank meanwhile ends early, one that
	// grew is sent as it was. An unknown size (0) is sent to its end.
	left := int64(-1)
	if t.size > 0 {
		left = max(t.size-start, 0)
	}

	var total int64
	chunk := int64(startChunk)

	for {
		want := chunk
		if left >= 0 {
			if want = min(chunk, left-total); want == 0 {
				return total, nil
			}
		}

		if d, ok := w.(writeDeadliner); ok {
			_ = d.SetWriteDeadline(t.chunkDeadline())
		}

		began := time.Now()
		// The file's read errors come back as the connection's; netErr
		// tells them apart by their errno.
		n, err := rf.ReadFrom(&io.LimitedReader{R: f, N: want})
		total += n
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A chunk cut short at its deadline moved its bytes some time
			// after it began, most often at once (until a peer that stopped
			// reading had its buffers full): count them from then, so that
			// such a peer is cut data_timeout after its last byte, not after
			// the tick that found it.
			t.movedAt(n, began)
		} else {
			t.moved(n)
		}

		if t.ticked(err) {
			// sendfile leaves the file where the connection stopped taking
			// it. The connection's fallback for a file sendfile can't send
			// copies through a buffer, and may have read further than it
			// wrote: the file goes back to what was sent.
			if _, err := f.Seek(start+total, io.SeekStart); err != nil {
				return total, localError{err}
			}

			chunk = adapt(chunk, time.Since(began))

			continue
		}

		if err != nil || n < want {
			return total, err
		}

		chunk = adapt(chunk, time.Since(began))
	}
}

// copyOut is the buffered download loop, for TLS data connections,
// bandwidth limits and files that are not on disk. It hands the connection
// at most copyPiece at a time, counting each piece as it goes.
func (t *transfer) copyOut(w io.Writer) (int64, error) {
	size := t.bufferSize()
	if _, onDisk := t.file.(*os.File); !onDisk {
		// An object store's body: bigger reads save no system call, and
		// each running download would hold the difference.
		size = min(size, copyPiece)
	}

	buf := make([]byte, size)

	var total int64
	for {
		n, rerr := t.file.Read(buf)
		if n > 0 {
			if err := t.wait(n); err != nil {
				return total, err
			}

			for data := buf[:n]; len(data) > 0; {
				if d, ok := w.(writeDeadliner); ok && t.dataTimeout > 0 {
					_ = d.SetWriteDeadline(time.Now().Add(t.dataTimeout))
				}

				m, werr := w.Write(data[:min(len(data), copyPiece)])
				total += int64(m)
				t.moved(int64(m))
				data = data[m:]

				if werr != nil {
					return total, werr
				}
			}
		}

		if errors.Is(rerr, io.EOF) {
			return total, nil
		}

		if rerr != nil {
			// The file's error, even one that looks like a network error
			// (an object store's): netErr leaves it alone.
			return total, localError{rerr}
		}
	}
}

// ReadFrom receives an upload from the data connection r into the file.
func (t *transfer) ReadFrom(r io.Reader) (int64, error) {
	if err := handshake(r); err != nil {
		t.sess.srv.metrics.handshakeFailed(tlsData, err)

		return 0, netErr(err)
	}

	n, err := t.readFrom(r)

	return n, netErr(err)
}

func (t *transfer) readFrom(r io.Reader) (int64, error) {
	defer clearDeadline(r)

	rf, zeroCopy := t.file.(io.ReaderFrom)
	if !zeroCopy || len(t.limiters) > 0 {
		return t.copyIn(r)
	}

	var total int64
	chunk := int64(startChunk)

	for {
		want := chunk
		if t.maxBytes > 0 {
			// Ask for one byte more than allowed, to tell "exactly the limit" from "over it".
			want = min(want, t.maxBytes-t.bytes.Load()+1)
		}

		if d, ok := r.(readDeadliner); ok {
			_ = d.SetReadDeadline(t.chunkDeadline())
		}

		began := time.Now()
		n, err := rf.ReadFrom(&io.LimitedReader{R: r, N: want})
		total += n
		t.moved(n)

		if sizeErr := t.checkSize(0); sizeErr != nil {
			return total, sizeErr
		}

		if t.ticked(err) {
			// A read deadline loses nothing: what was not read stays in
			// the socket for the next chunk (vfs does not take this
			// deadline for a failed upload).
			chunk = adapt(chunk, time.Since(began))

			continue
		}

		if err != nil || n < want {
			return total, err
		}

		chunk = adapt(chunk, time.Since(began))
	}
}

// copyIn is the buffered upload loop, for TLS data connections and bandwidth limits.
func (t *transfer) copyIn(r io.Reader) (int64, error) {
	buf := make([]byte, t.bufferSize())

	var total int64
	for {
		if d, ok := r.(readDeadliner); ok && t.dataTimeout > 0 {
			_ = d.SetReadDeadline(time.Now().Add(t.dataTimeout))
		}

		n, rerr := r.Read(buf)
		if n > 0 {
			if err := t.checkSize(int64(n)); err != nil {
				return total, err
			}

			if err := t.wait(n); err != nil {
				return total, err
			}

			m, werr := t.file.Write(buf[:n])
			total += int64(m)
			t.moved(int64(m))

			if werr != nil {
				return total, werr
			}
		}

		if errors.Is(rerr, io.EOF) {
			return total, nil
		}

		if rerr != nil {
			return total, rerr
		}
	}
}

// checkSize fails once an upload has gone, or would go with n more bytes, over its limit.
func (t *transfer) checkSize(n int64) error {
	if t.maxBytes > 0 && t.bytes.Load()+n > t.maxBytes {
		return ErrTooLarge
	}

	return nil
}

// wait takes n bytes' worth of tokens from every bucket.
func (t *transfer) wait(n int) error {
	for _, l := range t.limiters {
		if err := l.WaitN(t.sess.srv.cut, n); err != nil {
			return fmt.Errorf("bandwidth limit: %w", err)
		}
	}

	return nil
}

// burst is the largest amount one wait may ask for: the smallest bucket.
func (t *transfer) burst() int {
	b := copyBuffer
	for _, l := range t.limiters {
		b = min(b, l.Burst())
	}

	return max(b, 1)
}

func (t *transfer) bufferSize() int {
	if len(t.limiters) > 0 {
		return t.burst()
	}

	return copyBuffer
}

// adapt grows a chunk that went fast and shrinks one that went slow.
func adapt(chunk int64, took time.Duration) int64 {
	switch {
	case took < 100*time.Millisecond && chunk < maxChunk:
		return chunk * 2
	case took > time.Second && chunk > minChunk:
		return chunk / 2
	default:
		return chunk
	}
}

func clearDeadline(c any) {
	if d, ok := c.(interface{ SetDeadline(t time.Time) error }); ok {
		_ = d.SetDeadline(time.Time{})
	}
}

// TransferError records why the transfer did not complete and tells the file
// (an atomic upload then discards its temporary file, or keeps it as a part
// to resume: resume.go).
//
// In TYPE A the engine copies through its own converter, so the error it
// reports is the data connection's, even for the file's own read error (the
// connection's ReadFrom wraps it): the file's error, kept by Read, wins, and
// a connection's error loses its socket addresses (netErr).
func (t *transfer) TransferError(err error) {
	if t.fileErr != nil {
		err = t.fileErr
	} else {
		err = netErr(err)
	}

	t.failed.CompareAndSwap(nil, &err)
	_ = t.sess.note(err)

	if te, ok := t.file.(ftpserver.FileTransferError); ok {
		te.TransferError(err)
	}
}

func (t *transfer) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}

	// An upload whose control connection is already gone did not end the way
	// the client meant it to (its 226 could not even be sent): discard it, or
	// keep it to resume where the account's uploads resume (resume.go).
	if t.direction == "upload" && t.failure() == nil && t.sess.info.stateNow() >= stateClosing {
		t.TransferError(errSessionGone)
	}

	err := t.file.Close()
	if err != nil {
		t.failed.CompareAndSwap(nil, &err)
		_ = t.sess.note(err)
	}

	// An upload written in place on disk (upload_mode = "direct") that was
	// cut off at its size limit is removed: nothing of it may stay behind.
	// (Through the root itself: a drop box refuses deletes by design.) Object
	// stores never publish a cut upload, and removing there would delete the
	// object the upload was meant to replace.
	if f := t.failure(); f != nil && errors.Is(f, ErrTooLarge) && t.fresh && !t.sess.srv.opts.AtomicUploads {
		t.sess.info.mu.Lock()
		disk, onDisk := t.sess.info.root.(*vfs.Fs)
		t.sess.info.mu.Unlock()

		if onDisk {
			_ = disk.Remove(t.path)
		}
	}

	// A data connection that hit its deadline stalled: the session goes too.
	if f := t.failure(); f != nil && errors.Is(f, os.ErrDeadlineExceeded) && t.stalled.CompareAndSwap(false, true) {
		t.sess.logger().Warn("transfer stalled, closing session", zap.String("path", t.path),
			zap.Duration("data_timeout", t.dataTimeout), zap.Int64("bytes", t.bytes.Load()))
		defer t.sess.srv.closeSession(t.sess.info, "transfer stalled")
	}

	if t.direction == "upload" {
		t.sess.changed(t.path)
	}

	log := t.sess.srv.transferDone(t)
	t.sess.info.transferEnded(t)
	t.sess.info.ctl.afterReply(log)

	return err
}

// failure returns why the transfer failed, or nil if it completed.
func (t *transfer) failure() error {
	if p := t.failed.Load(); p != nil {
		return *p
	}

	return nil
}
