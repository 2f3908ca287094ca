package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/afero"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"wharf/auth"
)

// errShortDownload is a download that ended before its last byte, without
// an error of the connection: the file shrank while it was sent.
var errShortDownload = errors.New("the file ended before its announced length")

// httpResponse is the response writer of one request: it keeps the status
// and counts the body's bytes. For a download (download set) it also draws
// from the bandwidth buckets, cuts a client that takes no byte for
// data_timeout, and keeps sendfile(2): http.ServeContent copies the file
// with io.CopyN, which reaches ReadFrom here with the bare *os.File that
// vfs gives, and ReadFrom hands it on to the connection a chunk at a time,
// each with its own deadline, as the FTP data connection does
// (transfer.writeTo).
type httpResponse struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	status int
	wrote  bool
	bytes  int64
	err    error // the first error of the body's writes

	download    bool
	ctx         context.Context
	limiters    []*rate.Limiter
	dataTimeout time.Duration
	plain       bool               // HTTP/1 without TLS: the connection takes sendfile and survives a deadline tick
	counted     prometheus.Counter // wharf_transfer_bytes_total{direction="download",protocol="http"}
	progress    time.Time          // when the last byte moved
}

var (
	_ http.ResponseWriter = (*httpResponse)(nil)
	_ io.ReaderFrom       = (*httpResponse)(nil)
)

func (w *httpResponse) Header() http.Header { return w.w.Header() }

func (w *httpResponse) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}

	w.w.WriteHeader(code)
}

func (w *httpResponse) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}

	n, err := w.w.Write(p)
	w.moved(int64(n), time.Now())

	return n, w.failed(err)
}

// ReadFrom sends a file, or a multipart body, to the client.
func (w *httpResponse) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}

	rf, zeroCopy := w.w.(io.ReaderFrom)
	if lr, ok := src.(*io.LimitedReader); ok && zeroCopy && w.plain && len(w.limiters) == 0 {
		if f, ok := lr.R.(*os.File); ok {
			n, err := w.sendFile(rf, f, lr)

			return n, w.failed(err)
		}
	}

	n, err := w.copyOut(src)

	return n, w.failed(err)
}

func (w *httpResponse) failed(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}

	return err
}

// moved counts n bytes of the body that moved at the latest at at.
func (w *httpResponse) moved(n int64, at time.Time) {
	if n <= 0 {
		return
	}

	w.bytes += n
	w.progress = at
	if w.counted != nil {
		w.counted.Add(float64(n))
	}
}

// chunkDeadline and ticked are transfer's (see there): a chunk's deadline
// is the next progressTick or data_timeout after the last byte, and a
// deadline that finds a byte moved within data_timeout is a tick.
func (w *httpResponse) chunkDeadline() time.Time {
	next := time.Now().Add(progressTick)
	if w.dataTimeout > 0 {
		if stall := w.progress.Add(w.dataTimeout); stall.Before(next) {
			return stall
		}
	}

	return next
}

func (w *httpResponse) ticked(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}

	return w.dataTimeout <= 0 || time.Since(w.progress) < w.dataTimeout
}

// sendFile sends lr (a part of the file f, from where f is) to the
// connection's ReadFrom, which is sendfile(2), in chunks.
func (w *httpResponse) sendFile(rf io.ReaderFrom, f *os.File, lr *io.LimitedReader) (int64, error) {
	start, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}

	var total int64
	chunk := int64(startChunk)

	for lr.N > 0 {
		want := min(chunk, lr.N)
		_ = w.rc.SetWriteDeadline(w.chunkDeadline())

		began := time.Now()
		n, err := rf.ReadFrom(&io.LimitedReader{R: f, N: want})
		total += n
		lr.N -= n

		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.moved(n, began)
		} else {
			w.moved(n, time.Now())
		}

		if w.ticked(err) {
			// Back to what was sent: the copy that starts a response (net/http
			// sniffs its first 512 bytes) may have read further than it wrote.
			if _, err := f.Seek(start+total, io.SeekStart); err != nil {
				return total, err
			}

			chunk = adapt(chunk, time.Since(began))

			continue
		}

		if err != nil {
			return total, err
		}

		if n < want {
			return total, errShortDownload
		}

		chunk = adapt(chunk, time.Since(began))
	}

	return total, nil
}

// copyOut is the buffered loop, for HTTPS, HTTP/2, bandwidth limits,
// multipart ranges and files that are not on disk: each piece written has
// data_timeout to go out.
func (w *httpResponse) copyOut(src io.Reader) (int64, error) {
	size := copyBuffer
	for _, l := range w.limiters {
		size = min(size, max(l.Burst(), 1))
	}

	buf := make([]byte, size)

	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if err := w.wait(n); err != nil {
				return total, err
			}

			for data := buf[:n]; len(data) > 0; {
				if w.dataTimeout > 0 {
					_ = w.rc.SetWriteDeadline(time.Now().Add(w.dataTimeout))
				}

				m, werr := w.w.Write(data[:min(len(data), copyPiece)])
				total += int64(m)
				w.moved(int64(m), time.Now())
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
			return total, rerr
		}
	}
}

// wait takes n bytes' worth of tokens from every bucket.
func (w *httpResponse) wait(n int) error {
	for _, l := range w.limiters {
		if err := l.WaitN(w.ctx, n); err != nil {
			return fmt.Errorf("bandwidth limit: %w", err)
		}
	}

	return nil
}

// file answers GET or HEAD for a file: http.ServeContent does Range (one
// or several), If-Modified-Since, If-None-Match and If-Range with the ETag
// set here, and HEAD. A GET that sends the file (200, 206) is a transfer:
// counted, logged, and written to the xferlog.
func (q *httpRequest) file(acct auth.Account, f afero.File, info fs.FileInfo, name string) {
	w, s := q.w, q.h.srv

	h := w.Header()
	h.Set("Content-Type", contentType(name))
	h.Set("ETag", etag(info))
	h.Set("X-Content-Type-Options", "nosniff")

	if q.r.Method == http.MethodGet {
		w.download = true
		w.ctx = q.r.Context()
		w.limiters = buckets(newBucket(acct.DownloadLimit), s.buckets.download.Load())
		w.dataTimeout = s.opts.DataTimeout
		w.plain = q.r.TLS == nil && q.r.ProtoMajor == 1
		w.counted = s.metrics.httpXfer.bytes
		w.progress = time.Now()
	}

	http.ServeContent(w, q.r, name, info.ModTime(), f)

	if !w.download {
		return
	}

	// What is still buffered goes out after the handler returns: it has
	// data_timeout too, and the next request on the connection starts
	// without a deadline (ServeHTTP).
	if w.dataTimeout > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.dataTimeout))
	} else {
		_ = w.rc.SetWriteDeadline(time.Time{})
	}

	if w.status == http.StatusOK || w.status == http.StatusPartialContent {
		q.transferDone(name)
	}
}

// etag names one version of a file: its size, modification time and, where
// the file system has them, device and inode (a file replaced by a rename
// has a new one even with the same size and time).
func etag(info fs.FileInfo) string {
	tag := fmt.Sprintf("%x-%x", info.Size(), info.ModTime().UnixNano())
	if id, ok := fileID(info); ok {
		tag += "-" + id
	}

	return `"` + tag + `"`
}

// transferDone counts, logs and writes to the xferlog one download, as
// Server.transferDone does for FTP, with protocol http (the xferlog's
// service-name field).
func (q *httpRequest) transferDone(name string) {
	s, w := q.h.srv, q.w
	dur := time.Since(q.start)

	failure := w.err
	if want, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); failure == nil && err == nil && w.bytes < want {
		failure = errShortDownload
	}

	if failure == nil {
		s.metrics.httpXfer.complete.Inc()
	} else {
		s.metrics.httpXfer.incomplete.Inc()
	}

	s.metrics.httpXferTime.Observe(dur.Seconds())

	fields := []zap.Field{
		zap.String("remote", q.r.RemoteAddr),
		zap.String("protocol", "http"),
		zap.String("user", "anonymous"),
		zap.String("path", name),
		zap.String("direction", "download"),
		zap.Int64("bytes", w.bytes),
		zap.Duration("duration", dur.Round(time.Microsecond)),
	}
	if w.status == http.StatusPartialContent {
		fields = append(fields, zap.String("range", truncate(q.r.Header.Get("Range"), 64)))
	}

	if failure != nil {
		q.h.log.Warn("transfer incomplete", append(fields, zap.String("result", "incomplete"), zap.Error(netErr(failure)))...)
	} else {
		q.h.log.Info("transfer done", append(fields, zap.String("result", "ok"))...)
	}

	if s.xfer != nil {
		rec := xferRecord{
			when:      time.Now(),
			duration:  dur,
			remoteIP:  q.ip,
			bytes:     w.bytes,
			path:      name,
			anonymous: true,
			complete:  failure == nil,
			service:   "http",
		}
		if err := s.xfer.write(rec); err != nil {
			s.log.Error("write transfer log", zap.Error(err))
		}
	}
}
