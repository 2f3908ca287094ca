package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// replyTimeout bounds every command's round trip unless a caller sets its own deadline.
const replyTimeout = 10 * time.Second

// dialTimeout bounds every TCP connect.
const dialTimeout = 5 * time.Second

// reply is one FTP reply (RFC 959 §4.2); a multi-line reply's lines are joined by "\n".
type reply struct {
	code int
	msg  string
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, firstLine(r.msg)) }

// replyError is a reply other than the one expected.
type replyError struct {
	cmd string
	got reply
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: unexpected reply %v", e.cmd, e.got) }

// ftpConn is a minimal FTP control connection: one command, one reply, with a
// deadline on each. Data connections are opened with EPSV (RFC 2428) from the
// same source address, as wharf accepts them only from the control
// connection's address.
type ftpConn struct {
	nc    net.Conn
	r     *textproto.Reader
	local net.IP // source address; nil = the kernel's choice
	host  string // server host, for data connections
}

// dialerFrom returns a dialer that connects from local (127.0.0.N), or from
// the kernel's choice when local is nil.
func dialerFrom(local net.IP) *net.Dialer {
	d := &net.Dialer{Timeout: dialTimeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}

	return d
}

// dialTCP opens a TCP connection from local to addr.
func dialTCP(ctx context.Context, local net.IP, addr string) (*net.TCPConn, error) {
	nc, err := dialerFrom(local).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}

	tc, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()

		return nil, fmt.Errorf("dial %s: not a TCP connection", addr)
	}

	return tc, nil
}

// newFTPConn wraps an open connection (plain or TLS) to the server at addr.
func newFTPConn(nc net.Conn, local net.IP, addr string) *ftpConn {
	host, _, _ := net.SplitHostPort(addr)

	return &ftpConn{nc: nc, r: textproto.NewReader(bufio.NewReader(nc)), local: local, host: host}
}

// dialFTP connects from local to addr and reads the greeting (220, or 421 when refused).
func dialFTP(ctx context.Context, local net.IP, addr string) (*ftpConn, reply, error) {
	nc, err := dialTCP(ctx, local, addr)
	if err != nil {
		return nil, reply{}, err
	}

	c := newFTPConn(nc, local, addr)

	rep, err := c.read(replyTimeout)
	if err != nil {
		_ = nc.Close()

		return nil, reply{}, fmt.Errorf("greeting: %w", err)
	}

	return c, rep, nil
}

// login dials and logs in, retrying a few times on 421: when wharf's bcrypt
// slots are all taken (it fails fast rather than queueing), or when the
// address's previous sessions are not yet released.
func login(ctx context.Context, local net.IP, addr, user, pass string) (*ftpConn, error) {
	var last error

	for attempt := range 8 {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(50+50*attempt)*time.Millisecond); err != nil {
				return nil, err
			}
		}

		c, rep, err := dialFTP(ctx, local, addr)
		if err != nil {
			return nil, err
		}

		if rep.code == 220 {
			err = c.login(user, pass)
			if err == nil {
				return c, nil
			}
		} else {
			err = &replyError{cmd: "connect", got: rep}
		}

		_ = c.Close()
		last = err

		if re, ok := errors.AsType[*replyError](err); !ok || re.got.code != 421 {
			return nil, err
		}
	}

	return nil, last
}

// login sends USER and PASS and expects 230.
func (c *ftpConn) login(user, pass string) error {
	rep, err := c.cmd("USER " + user)
	if err != nil {
		return err
	}

	if rep.code == 230 {
		return nil
	}

	if rep.code != 331 {
		return &replyError{cmd: "USER", got: rep}
	}

	return c.expect(230, "PASS "+pass)
}

// read reads one reply, waiting at most timeout.
func (c *ftpConn) read(timeout time.Duration) (reply, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))

	code, msg, err := c.r.ReadResponse(0)
	if err != nil {
		return reply{}, err
	}

	return reply{code: code, msg: msg}, nil
}

// send writes one command line without reading the reply.
func (c *ftpConn) send(line string) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, err := io.WriteString(c.nc, line+"\r\n")

	return err
}

// cmd sends a command and reads its reply.
func (c *ftpConn) cmd(line string) (reply, error) {
	return c.cmdWithin(replyTimeout, line)
}

// cmdWithin sends a command and waits at most timeout for its reply.
func (c *ftpConn) cmdWithin(timeout time.Duration, line string) (reply, error) {
	if err := c.send(line); err != nil {
		return reply{}, err
	}

	return c.read(timeout)
}

// expect sends a command and fails unless the reply has the code want.
func (c *ftpConn) expect(want int, line string) error {
	rep, err := c.cmd(line)
	if err != nil {
		return err
	}

	if rep.code != want {
		verb, _, _ := strings.Cut(line, " ")

		return &replyError{cmd: verb, got: rep}
	}

	return nil
}

// epsv asks for a passive data port (229 "(|||port|)").
func (c *ftpConn) epsv() (int, error) {
	rep, err := c.cmd("EPSV")
	if err != nil {
		return 0, err
	}

	if rep.code != 229 {
		return 0, &replyError{cmd: "EPSV", got: rep}
	}

	start := strings.Index(rep.msg, "(|||")
	end := strings.LastIndex(rep.msg, "|)")
	if start < 0 || end < start+4 {
		return 0, fmt.Errorf("EPSV: cannot parse %q", rep.msg)
	}

	return strconv.Atoi(rep.msg[start+4 : end])
}

// dataAddr is the address of the server's data port.
func (c *ftpConn) dataAddr(port int) string {
	return net.JoinHostPort(c.host, strconv.Itoa(port))
}

// openData sends EPSV and connects to the data port from the control
// connection's source address.
func (c *ftpConn) openData(ctx context.Context) (*net.TCPConn, error) {
	port, err := c.epsv()
	if err != nil {
		return nil, err
	}

	return dialTCP(ctx, c.local, c.dataAddr(port))
}

// startTransfer opens a data connection, sends line (RETR, STOR, LIST...)
// and waits at most timeout for its 150. The caller reads or writes the data
// connection, closes it, and reads the final reply.
func (c *ftpConn) startTransfer(ctx context.Context, line string, timeout time.Duration) (*net.TCPConn, error) {
	data, err := c.openData(ctx)
	if err != nil {
		return nil, err
	}

	rep, err := c.cmdWithin(timeout, line)
	if err == nil && rep.code != 150 && rep.code != 125 {
		verb, _, _ := strings.Cut(line, " ")
		err = &replyError{cmd: verb, got: rep}
	}

	if err != nil {
		_ = data.Close()

		return nil, err
	}

	return data, nil
}

// Close closes the control connection without QUIT.
func (c *ftpConn) Close() error {
	return c.nc.Close()
}

// quit sends QUIT, reads the reply and closes.
func (c *ftpConn) quit() {
	_, _ = c.cmdWithin(time.Second, "QUIT")
	_ = c.Close()
}

// waitClosed reads (and discards) everything the server sends until it closes
// the connection, and returns when that happened; ok is false if the
// connection was still open at deadline.
func waitClosed(nc net.Conn, deadline time.Time) (time.Time, bool) {
	_ = nc.SetReadDeadline(deadline)
	buf := make([]byte, 512)

	for {
		if _, err := nc.Read(buf); err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return time.Now(), false
			}

			return time.Now(), true
		}
	}
}

// rst closes a TCP connection with a reset instead of a FIN (SO_LINGER 0).
func rst(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")

	return line
}
