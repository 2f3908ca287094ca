package ftpraw

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds each reply, write and connect when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options choose where a session comes from and how long it waits.
type Options struct {
	// Local is the source address, such as 127.0.0.7 (the whole of 127/8 is loopback), for the control
	// connection and every data connection; nil lets the kernel choose.
	Local net.IP
	// Timeout bounds each reply, each write and each connect; zero means DefaultTimeout.
	Timeout time.Duration
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}

	return o.Timeout
}

// Reply is one FTP reply; a multi-line reply's lines are joined by "\n".
type Reply struct {
	Code int
	Msg  string
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Code, FirstLine(r.Msg)) }

// ReplyError is a reply other than the one expected.
type ReplyError struct {
	Cmd  string // the command's verb (never its argument: PASS stays out of messages), or "connect"
	Got  Reply
	Want int // a full code (226) or a class (2 for any 2xx); 0 when the caller had no single answer in mind
}

func (e *ReplyError) Error() string {
	if e.Want == 0 {
		return fmt.Sprintf("%s: unexpected reply %v", e.Cmd, e.Got)
	}

	return fmt.Sprintf("%s: reply %v, want %d", e.Cmd, e.Got, e.Want)
}

// Check returns a *ReplyError unless got answers want: a full code (226) or a class (1 for any 1xx).
func Check(verb string, got Reply, want int) error {
	if (want < 10 && got.Code/100 != want) || (want >= 100 && got.Code != want) {
		return &ReplyError{Cmd: verb, Got: got, Want: want}
	}

	return nil
}

// Verb is a command line's first word, so that arguments (a password) never reach an error message.
func Verb(line string) string {
	v, _, _ := strings.Cut(line, " ")

	return v
}

// FirstLine is the first line of a reply's text.
func FirstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")

	return l
}

// Conn is one control connection.
type Conn struct {
	nc       net.Conn // a *tls.Conn after StartTLS
	r        *textproto.Reader
	local    net.IP
	host     string // the server's address, for data connections
	timeout  time.Duration
	ctx      context.Context //nolint:containedctx // the session's context, given to Dial: see the package doc
	deadline time.Time       // ctx's deadline; zero when it has none
	stop     func() bool     // undoes the cancellation hook

	tlsConf     *tls.Config // the control connection's TLS, after StartTLS
	dataTLS     *tls.Config // set by ProtectData: data connections are TLS too
	dataResumed bool
}

// DialTCP opens a TCP connection from local (nil: the kernel's choice) to addr, within timeout and ctx.
func DialTCP(ctx context.Context, local net.IP, addr string, timeout time.Duration) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: timeout}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}

	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}

	tc, ok := nc.(*net.TCPConn)
	if !ok {
		_ = nc.Close()

		return nil, fmt.Errorf("dial %s: not a TCP connection", addr)
	}

	return tc, nil
}

// Dial connects to addr and reads the greeting, whatever its code: 220, or 421 from a server that turns
// the connection away. Callers that want a session check it (Check("connect", greeting, 220)).
func Dial(ctx context.Context, addr string, o Options) (*Conn, Reply, error) {
	nc, err := DialTCP(ctx, o.Local, addr, o.timeout())
	if err != nil {
		return nil, Reply{}, err
	}

	c := New(ctx, nc, addr, o)

	greeting, err := c.Read()
	if err != nil {
		c.Close()

		return nil, Reply{}, fmt.Errorf("greeting: %w", err)
	}

	return c, greeting, nil
}

// New wraps an open connection to the server at addr (a TLS connection for implicit FTPS, say) without
// reading from it; ctx bounds the session as in Dial.
func New(ctx context.Context, nc net.Conn, addr string, o Options) *Conn {
	host, _, _ := net.SplitHostPort(addr)
	dl, _ := ctx.Deadline()

	return &Conn{
		nc: nc, r: textproto.NewReader(bufio.NewReader(nc)), local: o.Local, host: host, timeout: o.timeout(),
		ctx: ctx, deadline: dl,
		stop: context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) }),
	}
}

// NetConn is the control connection, a *tls.Conn after StartTLS.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Local is the source address the session was opened from; nil when the kernel chose it.
func (c *Conn) Local() net.IP { return c.local }

// within is the deadline of an operation that may take d: now + d, or the session's deadline if sooner.
func (c *Conn) within(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if !c.deadline.IsZero() && c.deadline.Before(t) {
		return c.deadline
	}

	return t
}

// Send writes the command lines in one write, without reading any reply: several lines pipeline them.
func (c *Conn) Send(lines ...string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}

	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}

	_ = c.nc.SetWriteDeadline(c.within(c.timeout))

	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return fmt.Errorf("send %s: %w", Verb(lines[0]), err)
	}

	return nil
}

// Read reads one reply.
func (c *Conn) Read() (Reply, error) {
	return c.ReadWithin(c.timeout)
}

// ReadWithin reads one reply, waiting at most d.
func (c *Conn) ReadWithin(d time.Duration) (Reply, error) {
	if err := c.ctx.Err(); err != nil {
		return Reply{}, err
	}

	_ = c.nc.SetReadDeadline(c.within(d))

	code, msg, err := c.r.ReadResponse(0)
	if err != nil {
		return Reply{}, fmt.Errorf("read reply: %w", err)
	}

	return Reply{Code: code, Msg: msg}, nil
}

// ReadExpect reads the reply to a command already sent (verb names it in errors) and checks it against
// want, a code or a class.
func (c *Conn) ReadExpect(want int, verb string) (Reply, error) {
	r, err := c.Read()
	if err != nil {
		return r, fmt.Errorf("%s: %w", verb, err)
	}

	return r, Check(verb, r, want)
}

// Cmd sends one command and reads its reply, whatever its code.
func (c *Conn) Cmd(line string) (Reply, error) {
	return c.CmdWithin(c.timeout, line)
}

// CmdWithin sends one command and waits at most d for its reply.
func (c *Conn) CmdWithin(d time.Duration, line string) (Reply, error) {
	if err := c.Send(line); err != nil {
		return Reply{}, err
	}

	return c.ReadWithin(d)
}

// Expect sends one command and checks its reply against want, a code or a class.
func (c *Conn) Expect(want int, line string) (Reply, error) {
	r, err := c.Cmd(line)
	if err != nil {
		return r, fmt.Errorf("%s: %w", Verb(line), err)
	}

	return r, Check(Verb(line), r, want)
}

// Login sends USER, then PASS unless USER was enough (230), and wants 230.
func (c *Conn) Login(user, pass string) error {
	r, err := c.Cmd("USER " + user)
	if err != nil {
		return fmt.Errorf("USER: %w", err)
	}

	if r.Code == 230 {
		return nil
	}

	if err := Check("USER", r, 331); err != nil {
		return err
	}

	_, err = c.Expect(230, "PASS "+pass)

	return err
}

// StartTLS turns the control connection into TLS (AUTH TLS). conf should carry a ClientSessionCache and
// a fixed ServerName, its key, so that data connections resume this session, as vsftpd's
// require_ssl_reuse and ProFTPD's default want.
func (c *Conn) StartTLS(conf *tls.Config) error {
	if _, err := c.Expect(234, "AUTH TLS"); err != nil {
		return err
	}

	tc := tls.Client(c.nc, conf)

	ctx, cancel := context.WithDeadline(c.ctx, c.within(c.timeout))
	defer cancel()

	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}

	c.nc = tc
	c.tlsConf = conf
	c.r = textproto.NewReader(bufio.NewReader(tc))
	c.stop()
	c.stop = context.AfterFunc(c.ctx, func() { _ = tc.NetConn().SetDeadline(time.Unix(1, 0)) })

	return nil
}

// ProtectData sends PBSZ 0 and PROT P in one write: from then on the data connections of Retr, List and
// Stor are TLS too, with the control connection's configuration (and so its session cache).
func (c *Conn) ProtectData() error {
	if c.tlsConf == nil {
		return errors.New("PROT P: the control connection is not TLS")
	}

	if err := c.Send("PBSZ 0", "PROT P"); err != nil {
		return err
	}

	if _, err := c.ReadExpect(200, "PBSZ"); err != nil {
		return err
	}

	if _, err := c.ReadExpect(200, "PROT"); err != nil {
		return err
	}

	c.dataTLS = c.tlsConf

	return nil
}

// TLSState describes the control connection's TLS ("TLS 1.3 TLS_AES_128_GCM_SHA256"), "" without TLS.
func (c *Conn) TLSState() string {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return ""
	}

	st := tc.ConnectionState()

	return tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
}

// DataResumed reports whether the last TLS data connection resumed the control connection's session.
func (c *Conn) DataResumed() bool { return c.dataResumed }

// EPSV asks for a passive data port (229 "... (|||port|)", RFC 2428).
func (c *Conn) EPSV() (int, error) {
	r, err := c.Expect(229, "EPSV")
	if err != nil {
		return 0, err
	}

	open := strings.Index(r.Msg, "(|||")
	end := strings.LastIndex(r.Msg, "|)")

	if open < 0 || end <= open+4 {
		return 0, fmt.Errorf("EPSV: cannot parse %q", r.Msg)
	}

	port, err := strconv.Atoi(r.Msg[open+4 : end])
	if err != nil {
		return 0, fmt.Errorf("EPSV: cannot parse %q: %w", r.Msg, err)
	}

	return port, nil
}

// DataAddr is the address of the server's data port.
func (c *Conn) DataAddr(port int) string {
	return net.JoinHostPort(c.host, strconv.Itoa(port))
}

// DialData connects to the server's data port from the control connection's source address (wharf
// accepts data connections only from there). The connection has the session's deadline, if any, and is
// plain TCP even after PROT P.
func (c *Conn) DialData(port int) (*net.TCPConn, error) {
	tc, err := DialTCP(c.ctx, c.local, c.DataAddr(port), c.timeout)
	if err != nil {
		return nil, fmt.Errorf("data connection: %w", err)
	}

	if !c.deadline.IsZero() {
		_ = tc.SetDeadline(c.deadline)
	}

	return tc, nil
}

// OpenData sends EPSV and connects to the port it names.
func (c *Conn) OpenData() (*net.TCPConn, error) {
	port, err := c.EPSV()
	if err != nil {
		return nil, err
	}

	return c.DialData(port)
}

// StartTransfer opens a data connection, sends line (RETR, STOR, LIST...) and waits at most within (0:
// Options.Timeout) for its 150 or 125. The caller reads or writes the data connection, closes it, and
// reads the final reply.
func (c *Conn) StartTransfer(line string, within time.Duration) (*net.TCPConn, error) {
	if within <= 0 {
		within = c.timeout
	}

	data, err := c.OpenData()
	if err != nil {
		return nil, err
	}

	r, err := c.CmdWithin(within, line)
	if err == nil {
		err = Check(Verb(line), r, 1)
	}

	if err != nil {
		_ = data.Close()

		return nil, err
	}

	return data, nil
}

// Quit sends QUIT, wants 221 and waits for the server to close the connection first, so that TIME_WAIT
// stays on the server's side and thousands of short sessions don't use up the client's ports. It closes
// the connection in every case.
func (c *Conn) Quit() error {
	defer c.Close()

	if _, err := c.Expect(221, "QUIT"); err != nil {
		return err
	}

	return c.WaitClose()
}

// WaitClose waits, within Options.Timeout, for the server to close the connection (after a 221, say).
func (c *Conn) WaitClose() error {
	if _, closed := WaitClosed(c.nc, c.within(c.timeout)); !closed {
		return errors.New("the server kept the connection open")
	}

	return nil
}

// Close drops the connection without QUIT.
func (c *Conn) Close() {
	c.stop()
	_ = c.nc.Close()
}

// WaitClosed reads (and discards) what the peer sends until it closes the connection, and says when that
// was; closed is false when the connection was still open at deadline. A reset or a TLS alert counts as
// closed: only a timeout means it is not.
func WaitClosed(nc net.Conn, deadline time.Time) (at time.Time, closed bool) {
	_ = nc.SetReadDeadline(deadline)

	var buf [512]byte

	for {
		if _, err := nc.Read(buf[:]); err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return time.Now(), false
			}

			return time.Now(), true
		}
	}
}

// Reset closes a TCP connection with a reset instead of a FIN (SO_LINGER 0).
func Reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}
