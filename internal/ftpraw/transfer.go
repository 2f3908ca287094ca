package ftpraw

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// ErrTooLarge means a download brought more bytes than the buffer given for it.
var ErrTooLarge = errors.New("server sent more bytes than the buffer holds")

// transfer is one data connection of Retr, List or Stor: TLS after ProtectData, interrupted when the
// session's context ends.
type transfer struct {
	tcp  *net.TCPConn
	conn net.Conn // tcp, or a TLS client over it
	stop func() bool
}

func (c *Conn) openTransfer() (*transfer, error) {
	tcp, err := c.OpenData()
	if err != nil {
		return nil, err
	}

	t := &transfer{tcp: tcp, conn: tcp,
		stop: context.AfterFunc(c.ctx, func() { _ = tcp.SetDeadline(time.Unix(1, 0)) })}

	if c.dataTLS != nil {
		// The handshake starts with the first read or write, after the server's 150.
		t.conn = tls.Client(tcp, c.dataTLS)
	}

	return t, nil
}

func (t *transfer) close() error {
	t.stop()

	return t.conn.Close()
}

// Retr downloads path into buf, which must hold the whole file, and returns how many bytes came. A file
// longer than buf is ErrTooLarge.
func (c *Conn) Retr(path string, buf []byte) (int, error) {
	return c.receive("RETR "+path, buf)
}

// List runs LIST path and reads the listing into buf, returning its length.
func (c *Conn) List(path string, buf []byte) (int, error) {
	return c.receive("LIST "+path, buf)
}

func (c *Conn) receive(line string, buf []byte) (int, error) {
	t, err := c.openTransfer()
	if err != nil {
		return 0, err
	}
	defer t.close()

	if _, err := c.Expect(1, line); err != nil {
		return 0, err
	}

	n, err := readFull(t.conn, buf)
	if err != nil {
		return n, fmt.Errorf("%s: %w", line, err)
	}

	if tc, ok := t.conn.(*tls.Conn); ok {
		c.dataResumed = tc.ConnectionState().DidResume
	}

	_ = t.close()

	if _, err := c.ReadExpect(2, Verb(line)); err != nil {
		return n, fmt.Errorf("%s: %w", line, err)
	}

	return n, nil
}

// readFull reads r to its end into buf. The end of a TLS data connection without close_notify counts as
// the end too: a checksum finds a short file.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m

		if isEOF(err) {
			return n, nil
		}

		if err != nil {
			return n, err
		}
	}

	var one [1]byte
	for range 1000 { // a few empty reads at most before the end
		m, err := r.Read(one[:])
		if m > 0 {
			return n, ErrTooLarge
		}

		if isEOF(err) {
			return n, nil
		}

		if err != nil {
			return n, err
		}
	}

	return n, ErrTooLarge
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Stor uploads src, from its current offset to its end, as path. On a plain data connection the file goes
// out with sendfile(2), so the client barely touches the bytes.
func (c *Conn) Stor(path string, src *os.File) (int64, error) {
	t, err := c.openTransfer()
	if err != nil {
		return 0, err
	}
	defer t.close()

	if _, err := c.Expect(1, "STOR "+path); err != nil {
		return 0, err
	}

	var n int64

	if t.conn == net.Conn(t.tcp) {
		n, err = t.tcp.ReadFrom(src) // not io.Copy: it would wrap src and lose sendfile
	} else {
		n, err = io.Copy(t.conn, src)
	}

	if err != nil {
		return n, fmt.Errorf("STOR %s: %w", path, err)
	}

	if err := t.close(); err != nil {
		return n, fmt.Errorf("STOR %s: close data connection: %w", path, err)
	}

	if _, err := c.ReadExpect(2, "STOR"); err != nil {
		return n, fmt.Errorf("STOR %s: %w", path, err)
	}

	return n, nil
}
