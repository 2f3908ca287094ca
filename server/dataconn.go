package server

import (
	"bufio"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// dataBuffer is the write buffer of a passive data connection.
const dataBuffer = 64 << 10

// bufferedConn coalesces the small writes of a listing (the engine writes
// LIST, NLST and MLSD one line per write, a system call each) into large
// ones. Everything else passes through: ReadFrom flushes and hands over to
// the TCP connection's own ReadFrom (sendfile), and SyscallConn exposes the
// socket so uploads still splice into the file.
type bufferedConn struct {
	net.Conn
	mu sync.Mutex
	w  *bufio.Writer
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c}
}

func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	if b.w == nil {
		if len(p) >= dataBuffer {
			return b.Conn.Write(p)
		}

		b.w = bufio.NewWriterSize(b.Conn, dataBuffer)
	}

	return b.w.Write(p)
}

// Read flushes first: a peer may wait for what we wrote before it sends
// (a TLS handshake on the data connection does).
func (b *bufferedConn) Read(p []byte) (int, error) {
	if err := b.Flush(); err != nil {
		return 0, err
	}

	return b.Conn.Read(p)
}

// SetDeadline and SetWriteDeadline flush first, under the old deadline: a
// TLS layer sets the write deadline to now right after its close_notify
// alert, which would otherwise strand the buffered tail of the transfer.
func (b *bufferedConn) SetDeadline(t time.Time) error {
	if err := b.Flush(); err != nil {
		return err
	}

	return b.Conn.SetDeadline(t)
}

// SetWriteDeadline flushes, then sets the write deadline (see SetDeadline).
func (b *bufferedConn) SetWriteDeadline(t time.Time) error {
	if err := b.Flush(); err != nil {
		return err
	}

	return b.Conn.SetWriteDeadline(t)
}

// Flush sends what is buffered. The engine calls it when a transfer ends.
func (b *bufferedConn) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.flush()
}

func (b *bufferedConn) flush() error {
	if b.w == nil {
		return nil
	}

	return b.w.Flush()
}

// ReadFrom flushes, then lets the connection read from r itself (sendfile
// when r is a file).
func (b *bufferedConn) ReadFrom(r io.Reader) (int64, error) {
	if err := b.Flush(); err != nil {
		return 0, err
	}

	if rf, ok := b.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}

	return io.Copy(onlyWriter{b.Conn}, r)
}

// SyscallConn exposes the socket, for splice.
func (b *bufferedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := b.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}

	return nil, syscall.EINVAL
}

// Close flushes and closes. While a write is blocked on a peer that reads
// nothing (ABOR during a download, a session closed under it), it closes at
// once: that write holds the lock, and only closing the socket ends it. TLS's
// own Close does the same when a write is in flight.
func (b *bufferedConn) Close() error {
	if !b.mu.TryLock() {
		return b.Conn.Close()
	}

	err := b.flush()
	b.mu.Unlock()

	if cerr := b.Conn.Close(); err == nil {
		err = cerr
	}

	return err
}

// onlyWriter hides every method but Write, so io.Copy cannot loop back into ReadFrom.
type onlyWriter struct{ io.Writer }
