package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// The benchmark's own FTP client: just the commands the scenarios need, on the
// wire, with commands pipelined where the protocol allows (USER, PASS and
// TYPE go out in one write), so the client costs the server's neighbour core
// as little as possible.

// errTooLarge means a download brought more bytes than the file should have.
var errTooLarge = errors.New("server sent more bytes than the file holds")

// ftpConn is one control connection.
type ftpConn struct {
	conn net.Conn // the control connection, a *tls.Conn after AUTH TLS
	text *textproto.Reader
	host string      // the server's IP address, for passive connections
	tls  *tls.Config // set after AUTH TLS: data connections are wrapped too (PROT P)
	dl   time.Time   // deadline of every connection of this session
	ctx  context.Context
	stop func() bool // stops the cancellation hook

	dataResumed bool // the last TLS data connection resumed the control connection's session
}

// dialFTP connects and reads the 220 greeting. Every read and write of the
// session, data connections included, must finish before ctx's deadline (or
// within two minutes when ctx has none), and fails at once when ctx is
// cancelled.
func dialFTP(ctx context.Context, addr string) (*ftpConn, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(2 * time.Minute)
	}

	d := net.Dialer{Deadline: dl}

	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}

	if err := c.SetDeadline(dl); err != nil {
		_ = c.Close()

		return nil, fmt.Errorf("set deadline: %w", err)
	}

	host, _, _ := net.SplitHostPort(addr)
	f := &ftpConn{conn: c, text: textproto.NewReader(bufio.NewReader(c)), host: host, dl: dl, ctx: ctx,
		stop: cancelOnDone(ctx, c)}

	if _, err := f.expect(220); err != nil {
		f.close()

		return nil, fmt.Errorf("greeting: %w", err)
	}

	return f, nil
}

// cancelOnDone makes c's pending and future reads and writes fail when ctx
// ends. The returned func undoes that.
func cancelOnDone(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}

// send writes the commands in one write: pipelining.
func (f *ftpConn) send(cmds ...string) error {
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString(c)
		b.WriteString("\r\n")
	}

	if _, err := io.WriteString(f.conn, b.String()); err != nil {
		return fmt.Errorf("send %s: %w", verb(cmds[0]), err)
	}

	return nil
}

// verb is a command's first word, so PASS arguments never reach an error message.
func verb(cmd string) string {
	v, _, _ := strings.Cut(cmd, " ")

	return v
}

// expect reads one reply, multi-line ones included. want is a full code
// (226) or a class (1 for any 1xx, 2 for any 2xx).
func (f *ftpConn) expect(want int) (string, error) {
	code, msg, err := f.text.ReadResponse(0)
	if err != nil {
		return "", fmt.Errorf("read reply: %w", err)
	}

	if (want < 10 && code/100 != want) || (want >= 100 && code != want) {
		return msg, &replyError{code: code, text: firstLine(msg), want: want}
	}

	return msg, nil
}

// replyError is a reply with another code than the one expected.
type replyError struct {
	code int
	text string
	want int
}

func (e *replyError) Error() string {
	return fmt.Sprintf("reply %d %q, want %d", e.code, e.text, e.want)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")

	return l
}

// cmd sends one command and reads its reply.
func (f *ftpConn) cmd(want int, c string) (string, error) {
	if err := f.send(c); err != nil {
		return "", err
	}

	msg, err := f.expect(want)
	if err != nil {
		return msg, fmt.Errorf("%s: %w", verb(c), err)
	}

	return msg, nil
}

// login sends USER, PASS and TYPE I in one write and reads the three replies.
func (f *ftpConn) login(user, pass string) error {
	if err := f.send("USER "+user, "PASS "+pass, "TYPE I"); err != nil {
		return err
	}

	if _, err := f.expect(331); err != nil {
		return fmt.Errorf("USER: %w", err)
	}

	if _, err := f.expect(230); err != nil {
		return fmt.Errorf("PASS: %w", err)
	}

	if _, err := f.expect(200); err != nil {
		return fmt.Errorf("TYPE I: %w", err)
	}

	return nil
}

// startTLS switches the control connection to TLS (AUTH TLS, RFC 4217). The
// config should carry a ClientSessionCache and a fixed ServerName, the cache
// key, so that data connections resume this session: vsftpd requires that
// (require_ssl_reuse).
func (f *ftpConn) startTLS(ctx context.Context, conf *tls.Config) error {
	if _, err := f.cmd(234, "AUTH TLS"); err != nil {
		return err
	}

	tc := tls.Client(f.conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}

	f.conn = tc
	f.text = textproto.NewReader(bufio.NewReader(tc))
	f.tls = conf

	return nil
}

// protectData sends PBSZ 0 and PROT P: data connections are encrypted too.
func (f *ftpConn) protectData() error {
	if err := f.send("PBSZ 0", "PROT P"); err != nil {
		return err
	}

	if _, err := f.expect(200); err != nil {
		return fmt.Errorf("PBSZ: %w", err)
	}

	if _, err := f.expect(200); err != nil {
		return fmt.Errorf("PROT: %w", err)
	}

	return nil
}

// tlsState describes the control connection's TLS, for the raw records.
func (f *ftpConn) tlsState() string {
	tc, ok := f.conn.(*tls.Conn)
	if !ok {
		return ""
	}

	st := tc.ConnectionState()

	return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
}

// passive opens a data connection with EPSV (RFC 2428), TLS-wrapped after PROT P.
func (f *ftpConn) passive() (net.Conn, error) {
	msg, err := f.cmd(229, "EPSV")
	if err != nil {
		return nil, err
	}

	// 229 Entering Extended Passive Mode (|||port|)
	open := strings.Index(msg, "(|||")
	end := strings.LastIndex(msg, "|)")

	if open < 0 || end <= open+4 {
		return nil, fmt.Errorf("EPSV: cannot parse %q", msg)
	}

	port, err := strconv.Atoi(msg[open+4 : end])
	if err != nil {
		return nil, fmt.Errorf("EPSV: cannot parse %q: %w", msg, err)
	}

	d := net.Dialer{Deadline: f.dl}

	c, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort(f.host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("data connection: %w", err)
	}

	if err := c.SetDeadline(f.dl); err != nil {
		_ = c.Close()

		return nil, fmt.Errorf("data connection: %w", err)
	}

	dc := &dataConn{Conn: c, stop: cancelOnDone(f.ctx, c)}
	if f.tls != nil {
		return tls.Client(dc, f.tls), nil
	}

	return dc, nil
}

// dataConn is a data connection that ctx's end interrupts.
type dataConn struct {
	net.Conn
	stop func() bool
}

func (d *dataConn) Close() error {
	d.stop()

	return d.Conn.Close()
}

// ReadFrom hands r to the TCP connection's ReadFrom, which sends an *os.File
// with sendfile(2); the embedded net.Conn interface would hide it.
func (d *dataConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := d.Conn.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		if err != nil {
			return n, fmt.Errorf("send: %w", err)
		}

		return n, nil
	}

	n, err := io.Copy(d.Conn, r)
	if err != nil {
		return n, fmt.Errorf("send: %w", err)
	}

	return n, nil
}

// retr downloads path into buf, which must be exactly the file's size, and
// returns the number of bytes read. A longer file is errTooLarge.
func (f *ftpConn) retr(path string, buf []byte) (int, error) {
	dc, err := f.passive()
	if err != nil {
		return 0, err
	}
	defer dc.Close()

	if _, err := f.cmd(1, "RETR "+path); err != nil {
		return 0, err
	}

	n, err := readAll(dc, buf)
	if err != nil {
		return n, fmt.Errorf("RETR %s: %w", path, err)
	}

	if tc, ok := dc.(*tls.Conn); ok {
		f.dataResumed = tc.ConnectionState().DidResume
	}

	_ = dc.Close()

	if _, err := f.expect(2); err != nil {
		return n, fmt.Errorf("RETR %s: %w", path, err)
	}

	return n, nil
}

// readAll reads r to its end into buf. The end of a TLS data connection
// without close_notify counts as the end too: the SHA-256 check finds a
// short file.
func readAll(r io.Reader, buf []byte) (int, error) {
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
			return n, errTooLarge
		}

		if isEOF(err) {
			return n, nil
		}

		if err != nil {
			return n, err
		}
	}

	return n, errTooLarge
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// stor uploads src to path. On a plain data connection the file goes out
// with sendfile(2), so the client barely touches the bytes.
func (f *ftpConn) stor(path string, src *os.File) (int64, error) {
	dc, err := f.passive()
	if err != nil {
		return 0, err
	}
	defer dc.Close()

	if _, err := f.cmd(1, "STOR "+path); err != nil {
		return 0, err
	}

	var n int64

	if rf, ok := dc.(io.ReaderFrom); ok { // not io.Copy: it would wrap src and lose sendfile
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(dc, src)
	}

	if err != nil {
		return n, fmt.Errorf("STOR %s: %w", path, err)
	}

	if err := dc.Close(); err != nil {
		return n, fmt.Errorf("STOR %s: close data connection: %w", path, err)
	}

	if _, err := f.expect(2); err != nil {
		return n, fmt.Errorf("STOR %s: %w", path, err)
	}

	return n, nil
}

// list runs LIST path and reads the listing into buf, returning its length.
func (f *ftpConn) list(path string, buf []byte) (int, error) {
	dc, err := f.passive()
	if err != nil {
		return 0, err
	}
	defer dc.Close()

	if _, err := f.cmd(1, "LIST "+path); err != nil {
		return 0, err
	}

	n, err := readAll(dc, buf)
	if err != nil {
		return n, fmt.Errorf("LIST %s: %w", path, err)
	}

	_ = dc.Close()

	if _, err := f.expect(2); err != nil {
		return n, fmt.Errorf("LIST %s: %w", path, err)
	}

	return n, nil
}

// quit sends QUIT, reads 221 and waits for the server to close first, so the
// TIME_WAIT state stays on the server's side and the client's ports are not
// used up by thousands of short sessions.
func (f *ftpConn) quit() error {
	defer f.close()

	if _, err := f.cmd(221, "QUIT"); err != nil {
		return err
	}

	return f.waitClose()
}

// waitClose reads until the server closes the connection.
func (f *ftpConn) waitClose() error {
	var buf [256]byte
	for range 100 {
		if _, err := f.conn.Read(buf[:]); err != nil {
			// EOF, a reset or a TLS alert: the server has closed. Only a
			// timeout means it has not.
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return fmt.Errorf("wait for close: %w", err)
			}

			return nil
		}
	}

	return errors.New("wait for close: server kept talking after 221")
}

// close drops the connection without QUIT.
func (f *ftpConn) close() {
	f.stop()
	_ = f.conn.Close()
}
