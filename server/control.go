package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxCommandLine is the longest command line wharf accepts, line end
// included: the engine reads lines with a buffer of this size and drops a
// client whose line is longer.
const maxCommandLine = 4096

// holdCap bounds the reply bytes held back to go out in one write; a longer
// reply (STAT of a big folder) goes out in pieces of this size.
const holdCap = 64 << 10

// handshakeTimeout bounds the TLS handshake that follows AUTH TLS. It runs
// inside the engine's read, whose idle deadline is restored afterwards.
const handshakeTimeout = 10 * time.Second

// closeDeadline bounds the last flush and TLS close_notify of a closing connection.
const closeDeadline = time.Second

// control is one control connection as the engine sees it: wharf's layer
// between the socket and the engine. It owns the connection's TLS (AUTH TLS is
// answered and the handshake made here; implicit TLS is wrapped at accept), so
// the engine reads and writes plain text in every mode. It sees every command
// line before the engine: it forwards it (possibly rewritten), answers it
// itself, or acts on it (see commands.go). It sees every reply after the
// engine: it corrects the engine's wrong codes and texts and passes the rest
// through (see replies.go). Every correction is a row of the table in
// corrections.go.
//
// The engine gets one command line per Read, so by the time it reads again it
// has answered every command before, except a transfer still running (RETR,
// STOR, APPE, a listing), which the engine runs in a goroutine of its own. A
// command wharf answers itself, or forwards, waits for that transfer's reply
// first, as the engine itself makes commands wait; only ABOR, QUIT and STAT
// go through while a transfer runs. So every reply can be told which command
// it answers, and replies keep the order of the commands.
//
// Replies go out in one write each; the replies to pipelined commands go out
// together, when wharf needs more input from the client. A preliminary reply
// (1xx) and a passive-mode reply (227, 229) go out at once, since the client
// acts on them while the engine goes on.
type control struct {
	gc  *gatedConn
	srv *Server
	si  *sessionInfo // set by ClientConnected, before the engine's first Read

	// Read side: only the engine's command goroutine calls Read, and runs the handlers.
	in       []byte       // client bytes not handled yet; nil when none
	fwd      *command     // the command the engine reads next
	ready    []byte       // the rest of a command line too long for the engine's buffer
	feed     []*command   // wharf's own lines, handed to the engine before the client's next one
	skipping bool         // discarding the rest of an over-long line
	readErr  error        // the error Read returns once the input is used up
	idle     atomic.Int64 // the length of the engine's idle deadline; 0 = none
	proto    protoState   // the session's protocol state (commands.go)

	pipelined atomic.Bool // complete lines wait in in or feed: replies can wait to go out together

	mu      sync.Mutex
	changed sync.Cond    // a transfer ended, or the connection closed
	tr      net.Conn     // where bytes go: gc, or a TLS connection over it
	secure  bool         // tr is TLS
	out     []byte       // replies held for one write; nil when none
	outBox  *replyBuffer // the pooled buffer out came from
	part    []byte       // the engine's incomplete line
	reply   replyState
	cur     *command // the command the engine works on
	xfer    *command // the transfer the engine runs, if any
	own     []byte   // wharf's replies waiting for an engine reply in progress to end
	closed  bool
	werr    error // the first write error; later writes fail with it

	logs *transferLogs // the log lines of transfers (afterReply); nil until the first
}

// transferLogs are a session's transfer log lines, which are written once
// the transfer's reply went out (afterReply): the client does not wait for
// them. Made at the first transfer: an idle session holds none.
type transferLogs struct {
	waiting []func()   // under control.mu: for the running transfer's reply
	due     []func()   // under control.mu: the reply went out, to write outside mu
	writing sync.Mutex // one writer at a time, so lines keep their order
}

// command is one line the engine is given.
type command struct {
	verb, arg string
	kind      cmdKind
	swallow   bool // wharf's own line: its reply goes nowhere
	// fix, when set, rewrites the engine's reply of this code to this command
	// into another (code, text); code 0 keeps the engine's reply.
	fix      func(code int) (int, string)
	after    func(code int) // runs once the final reply is known (under control.mu)
	prepares int            // PASV, EPSV, PORT, EPRT: the reply code that prepared a data connection
	prot     byte           // and the protection level it was prepared with
	listing  string         // for a listing carried as a RETR: LIST, NLST or MLSD
	err      error          // the driver's error while the engine ran it (noteErr)
	answered bool
}

type cmdKind int

const (
	cmdSync     cmdKind = iota // answered before the engine reads again
	cmdTransfer                // answered by the engine's transfer goroutine
	cmdSpecial                 // ABOR and QUIT: run while a transfer runs
)

// line is the command as the engine reads it.
func (c *command) line() []byte {
	if c.arg == "" {
		return []byte(c.verb + "\r\n")
	}

	return []byte(c.verb + " " + c.arg + "\r\n")
}

// replyState follows the engine's reply being written.
type replyState struct {
	open     bool     // inside a multi-line reply
	code     [3]byte  // its code, as the engine wrote it
	num      int      // and as a number
	sent     int      // the code the client reads: num, or wharf's correction
	to       *command // the command it answers (nil: none, e.g. the greeting)
	dropping bool     // the rest of the reply is replaced or swallowed
}

func newControl(gc *gatedConn, srv *Server, implicit *tls.Config) *control {
	c := &control{gc: gc, srv: srv, tr: gc}
	c.changed.L = &c.mu
	c.proto.prot, c.proto.facts = 'C', defaultFacts

	if implicit != nil {
		c.tr = tls.Server(gc, implicit)
		c.secure = true
		// Implicit FTPS protects data connections from the start, as
		// before any PROT: the engine is told with a PROT P of wharf's.
		c.proto.prot = 'P'
		c.feed = append(c.feed, &command{verb: "PROT", arg: "P", swallow: true})
	}

	return c
}

// Read hands the engine its next command line, reading from the client and
// answering or acting on lines as needed. The client's bytes are read into
// the engine's own buffer b, and the line for the engine written back into
// it: an idle session holds no buffer of wharf's.
func (c *control) Read(b []byte) (int, error) {
	handled := false // a line was handled in this call: the idle time starts again

	for {
		if len(c.ready) > 0 {
			n := copy(b, c.ready)
			if c.ready = c.ready[n:]; len(c.ready) == 0 {
				c.ready = nil
			}

			return n, nil
		}

		if c.fwd != nil {
			cmd := c.fwd
			c.fwd = nil

			return c.put(b, cmd), nil
		}

		if c.next() {
			handled = true

			continue
		}

		if c.readErr != nil {
			return 0, c.readErr
		}

		c.flush()

		if handled {
			c.renewDeadline()
		}

		n, err := c.transport().Read(b)
		if n > 0 && c.take(b[:n]) {
			handled = true
		}

		if err != nil && c.fwd == nil && bytes.IndexByte(c.in, '\n') < 0 {
			return 0, err
		}
	}
}

// put writes cmd's line into b for the engine.
func (c *control) put(b []byte, cmd *command) int {
	size := len(cmd.verb) + 2
	if cmd.arg != "" {
		size += 1 + len(cmd.arg)
	}

	if size > len(b) {
		c.ready = cmd.line()
		n := copy(b, c.ready)
		c.ready = c.ready[n:]

		return n
	}

	n := copy(b, cmd.verb)
	if cmd.arg != "" {
		b[n] = ' '
		n++
		n += copy(b[n:], cmd.arg)
	}

	return n + copy(b[n:], "\r\n")
}

// take handles client bytes just read: the first line at once when nothing
// waits before it (the usual case, with no copy), the rest kept in in. It
// reports whether it handled a line: bytes that end no line (a client
// trickling a byte at a time) do not start the idle time again.
func (c *control) take(p []byte) bool {
	if c.skipping {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return false
		}

		c.skipping = false
		p = p[i+1:]
	}

	if len(c.in) == 0 {
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			if i+1 < len(p) {
				c.in = append(c.in, p[i+1:]...)
			}

			c.pipelined.Store(bytes.IndexByte(c.in, '\n') >= 0)
			c.handle(p[:i+1])

			return true
		}
	}

	c.in = append(c.in, p...)

	if len(c.in) > maxCommandLine && bytes.IndexByte(c.in, '\n') < 0 {
		c.in = nil
		c.skipping = true

		if !c.junkBeforeLogin("command line too long before login", "") {
			c.answer(500, "Command line too long.")
		}

		return true
	}

	return false
}

// next handles one line, wharf's own or a client's kept in in; it reports
// false when more input is needed.
func (c *control) next() bool {
	if len(c.feed) > 0 {
		cmd := c.feed[0]
		c.feed = c.feed[1:]
		c.forward(cmd)
		c.pipelined.Store(len(c.feed) > 0 || bytes.IndexByte(c.in, '\n') >= 0)

		return true
	}

	i := bytes.IndexByte(c.in, '\n')
	if i < 0 {
		return false
	}

	line := c.in[:i+1]
	if c.in = c.in[i+1:]; len(c.in) == 0 {
		c.in = nil
	}

	c.pipelined.Store(bytes.IndexByte(c.in, '\n') >= 0)
	c.handle(line)

	return true
}

// transport is where bytes go now.
func (c *control) transport() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.tr
}

// forward hands cmd to the engine. Every command but ABOR and QUIT waits for
// a running transfer first, so a reply is always known to answer the
// transfer or the command.
func (c *control) forward(cmd *command) {
	if cmd.kind != cmdSpecial {
		c.waitTransfer()
	}

	c.mu.Lock()
	c.cur = cmd
	if cmd.kind == cmdTransfer {
		c.xfer = cmd
	}
	c.mu.Unlock()

	c.fwd = cmd
}

// waitTransfer waits until the engine has answered a running transfer.
func (c *control) waitTransfer() {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.xfer != nil {
		c.flushLocked()
	}

	for c.xfer != nil && !c.closed {
		c.changed.Wait()
	}
}

// answer is wharf's own reply to a command, after the running transfer's.
func (c *control) answer(code int, text string) {
	c.waitTransfer()
	c.answerNow(code, text)
}

// answerNow replies at once: for STAT while a transfer runs (RFC 959, 4.1.3).
// A syntax error (500-504) counts as a refused command.
func (c *control) answerNow(code int, text string) {
	c.refuseNow(refusal(code, nil), code, text)
}

// refuse is wharf's own reply refusing a command for reason (see refusal;
// "" counts nothing), after the running transfer's.
func (c *control) refuse(reason string, code int, text string) {
	c.waitTransfer()
	c.refuseNow(reason, code, text)
}

// answerErr refuses a command with the client's words for err, counted by
// what err is.
func (c *control) answerErr(code int, err error) {
	c.refuse(refusal(code, err), code, describe(err))
}

func (c *control) refuseNow(reason string, code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.srv.metrics.countRefusal(reason)
	c.writeOwn(code, text)
}

// writeOwn puts one of wharf's replies out, after any engine reply being written.
func (c *control) writeOwn(code int, text string) {
	if c.reply.open || len(c.part) > 0 {
		c.own = appendReply(c.own, code, text)

		return
	}

	c.hold()
	c.out = appendReply(c.out, code, text)
	c.flushMaybe(false)
}

// appendReply lays text out as a reply after dst: one line, or several
// lines with the code on the first and the last (RFC 959, 4.2).
func appendReply(dst []byte, code int, text string) []byte {
	text = strings.TrimRight(text, "\n")
	first := true

	for {
		line, rest, more := strings.Cut(text, "\n")
		switch {
		case first && !more:
			dst = strconv.AppendInt(dst, int64(code), 10)
			dst = append(dst, ' ')
		case first:
			dst = strconv.AppendInt(dst, int64(code), 10)
			dst = append(dst, '-')
		case !more:
			dst = strconv.AppendInt(dst, int64(code), 10)
			dst = append(dst, ' ')
		}

		dst = append(dst, line...)
		dst = append(dst, '\r', '\n')

		if !more {
			return dst
		}

		text, first = rest, false
	}
}

// Write takes the engine's output: whole reply lines, or pieces of them.
// The log lines of a transfer that this write answered are written after it.
func (c *control) Write(p []byte) (int, error) {
	n, logs, err := c.write(p)
	if logs {
		c.writeLogs()
	}

	return n, err
}

// write is Write under mu; logs reports log lines due.
func (c *control) write(p []byte) (int, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.werr != nil {
		return 0, c.logsDue(), c.werr
	}

	c.hold()

	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.part = append(c.part, p...)

			break
		}

		line := p[:i+1]
		if len(c.part) > 0 {
			line = append(c.part, line...)
		}

		c.engineLine(line)
		c.part = nil
		p = p[i+1:]
	}

	if c.werr != nil {
		return 0, c.logsDue(), c.werr
	}

	return n, c.logsDue(), nil
}

// logsDue reports whether transfer log lines wait to be written. Under mu.
func (c *control) logsDue() bool {
	return c.logs != nil && len(c.logs.due) > 0
}

// engineLine follows the engine's replies line by line (RFC 959, 4.2: a
// multi-line reply starts "ddd-" and ends with a line starting "ddd "). A
// reply passed on unchanged is copied as bytes, never made a string.
func (c *control) engineLine(line []byte) {
	text := bytes.TrimRight(line, "\r\n")

	if c.reply.open {
		last := len(text) >= 4 && [3]byte(text[:3]) == c.reply.code && text[3] == ' '
		if !c.reply.dropping {
			c.out = append(c.out, line...)
		}

		if last {
			c.reply.open = false
			c.replyEnd(c.reply.to, c.reply.num)
		}

		return
	}

	code, sep, ok := replyCode(text)
	if !ok {
		// Not a reply line: the engine never writes one, so pass it on.
		c.out = append(c.out, line...)

		return
	}

	to := c.attribute(code, text)
	c.reply = replyState{open: sep == '-', code: [3]byte(text[:3]), num: code, sent: code, to: to}

	sent := code
	if fixed, ok := c.fixReply(to, code, text[4:]); ok {
		c.reply.dropping = true
		c.reply.sent = fixed.code
		if sent = fixed.code; sent != 0 {
			c.out = appendReply(c.out, fixed.code, fixed.text)
		}
	} else {
		c.out = append(c.out, line...)
	}

	if to != nil && sent != 0 {
		c.srv.metrics.countRefusal(refusal(sent, to.err))
	}

	if sep == ' ' {
		c.replyEnd(to, code)
	}
}

// replyCode parses "ddd-" or "ddd ".
func replyCode(text []byte) (int, byte, bool) {
	if len(text) < 4 || (text[3] != ' ' && text[3] != '-') {
		return 0, 0, false
	}

	code := 0
	for _, d := range text[:3] {
		if d < '0' || d > '9' {
			return 0, 0, false
		}

		code = code*10 + int(d-'0')
	}

	if code < 100 || code > 599 {
		return 0, 0, false
	}

	return code, text[3], true
}

// attribute tells which command a reply answers: while a transfer runs,
// every reply is the transfer's but ABOR's own "226 ABOR successful"
// (the engine answers an aborted transfer 426, then ABOR 226).
func (c *control) attribute(code int, text []byte) *command {
	abortDone := c.cur != nil && c.cur.verb == "ABOR" && code == 226 && bytes.HasPrefix(text[4:], []byte("ABOR"))
	if c.xfer != nil && !abortDone {
		return c.xfer
	}

	return c.cur
}

// replyEnd records a complete reply and sends what is held when it should go.
func (c *control) replyEnd(to *command, code int) {
	switch {
	case to == nil:
	case to.prepares != 0 && code == to.prepares:
		// The engine chose the data connection's TLS now (RFC 4217, 9: see dataGuard).
		c.proto.dataReady, c.proto.dataProt = true, to.prot
	case code == 150 && to.kind == cmdTransfer:
		// The transfer took the prepared data connection.
		c.proto.dataReady = false
	}

	if code >= 200 && to != nil && !to.answered {
		to.answered = true
		if to.after != nil {
			to.after(code)
		}

		if c.reply.sent >= 400 {
			c.refusedReply(to, c.reply.sent)
		}
	}

	ended := false
	if code >= 200 && (to == c.xfer || (to != nil && to.verb == "ABOR")) && c.xfer != nil {
		c.xfer = nil
		c.changed.Broadcast()
		ended = c.logs != nil && len(c.logs.waiting) > 0
	}

	if len(c.own) > 0 {
		c.out = append(c.out, c.own...)
		c.own = nil
	}

	// A transfer whose log lines wait goes out now, even among pipelined
	// replies: the lines follow its reply.
	c.flushMaybe(ended || code < 200 || code == 227 || code == 229)

	if ended {
		c.logs.due = append(c.logs.due, c.logs.waiting...)
		c.logs.waiting = nil
	}
}

// afterReply runs log, one transfer's log lines, once the reply that ends
// the running transfer went out, so that the client has its 226 before the
// server formats and writes them; at once if no transfer's reply is to come
// (none runs, or the connection closed). Lines of successive transfers keep
// their order.
func (c *control) afterReply(log func()) {
	c.mu.Lock()
	if c.logs == nil {
		c.logs = &transferLogs{}
	}

	if c.xfer != nil && !c.closed {
		c.logs.waiting = append(c.logs.waiting, log)
		c.mu.Unlock()

		return
	}

	c.logs.due = append(c.logs.due, log)
	c.mu.Unlock()

	c.writeLogs()
}

// writeLogs writes the log lines that are due, in order, outside mu.
func (c *control) writeLogs() {
	c.mu.Lock()
	logs := c.logs
	c.mu.Unlock()

	if logs == nil {
		return
	}

	logs.writing.Lock()
	defer logs.writing.Unlock()

	for {
		c.mu.Lock()
		due := logs.due
		logs.due = nil
		c.mu.Unlock()

		if len(due) == 0 {
			return
		}

		for _, log := range due {
			log()
		}
	}
}

// flushMaybe sends what is held, unless more pipelined commands are about to
// be answered (they go out together) and it is not urgent.
func (c *control) flushMaybe(urgent bool) {
	if urgent || !c.pipelined.Load() || len(c.out) >= holdCap {
		c.flushLocked()
	}
}

// flush sends what is held.
func (c *control) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.flushLocked()
}

func (c *control) flushLocked() {
	if len(c.out) > 0 && c.werr == nil {
		if !c.closed {
			_ = c.gc.SetWriteDeadline(time.Now().Add(c.writeTimeout()))
		}

		if _, err := c.tr.Write(c.out); err != nil {
			c.werr = err
			// With implicit TLS, the first reply (the greeting) makes the handshake.
			if tc, ok := c.tr.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete && !c.proxyBeforeTLS(err) {
				c.srv.metrics.handshakeFailed(tlsControl, err)
			}
		}
	}

	if c.outBox != nil {
		c.outBox.put(c.out)
		c.out, c.outBox = nil, nil
	}
}

// replyBuffer is a pooled buffer for held replies. The pool holds pointers,
// so that putting one back costs no allocation.
type replyBuffer struct{ b []byte }

// replyBuffers hold replies between the engine's writes and the socket: a
// session takes one only while it has replies held, so an idle session holds none.
var replyBuffers = sync.Pool{New: func() any { return new(replyBuffer) }}

// hold makes sure out has a pooled buffer to append to.
func (c *control) hold() {
	if c.outBox == nil {
		c.outBox = replyBuffers.Get().(*replyBuffer)
		c.out = c.outBox.b[:0]
	}
}

// put gives the buffer back, as b grew it, unless it grew too big to keep.
func (r *replyBuffer) put(b []byte) {
	if cap(b) > holdCap {
		return
	}

	r.b = b[:0]
	replyBuffers.Put(r)
}

// startTLS turns the connection into TLS after "234" went out (RFC 4217,
// 4): bytes the client sent after AUTH belong to the handshake.
func (c *control) startTLS(cfg *tls.Config) error {
	c.flush()

	var under net.Conn = c.gc
	if len(c.in) > 0 {
		under = &prefixConn{Conn: c.gc, prefix: c.in}
		c.in = nil
	}

	tc := tls.Server(under, cfg)

	_ = c.gc.SetDeadline(time.Now().Add(handshakeTimeout))
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	c.renewDeadline()

	if err != nil {
		return err
	}

	c.mu.Lock()
	c.tr, c.secure = tc, true
	c.mu.Unlock()

	return nil
}

// unique is the name STOU is storing, if any.
func (c *control) unique() string {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.proto.unique
}

// setUnique records the name STOU stores under, once the upload has it.
func (c *control) setUnique(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.proto.unique = name
}

// verb is the command the engine works on, for /sessions: never its argument.
func (c *control) verb() string {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.cur == nil {
		return ""
	}

	return c.cur.verb
}

// isSecure reports whether the control connection is TLS.
func (c *control) isSecure() bool {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.secure
}

// closeWith sends one last reply, out of turn (421, RFC 959, 4.2), and closes.
func (c *control) closeWith(code int, text string) {
	_ = c.gc.SetWriteDeadline(time.Now().Add(closeDeadline))

	c.mu.Lock()
	if !c.closed {
		c.hold()
		c.out = appendReply(c.out, code, text)
	}
	c.mu.Unlock()

	_ = c.Close()
}

// Close sends what is held and closes the connection; the engine's read ends.
func (c *control) Close() error {
	// Before the lock: a write blocked on a client that reads nothing holds it.
	_ = c.gc.SetWriteDeadline(time.Now().Add(closeDeadline))

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()

		return nil
	}

	c.closed = true // first: the last flush keeps the short deadline
	c.flushLocked()
	c.changed.Broadcast()
	tr := c.tr
	if c.logs != nil { // no reply is to come
		c.logs.due = append(c.logs.due, c.logs.waiting...)
		c.logs.waiting = nil
	}
	c.mu.Unlock()

	c.writeLogs()

	if tc, ok := tr.(*tls.Conn); ok {
		_ = tc.Close() // sends close_notify, bounded by the write deadline; closes gc
	}

	return c.gc.Close()
}

func (c *control) LocalAddr() net.Addr  { return c.gc.LocalAddr() }
func (c *control) RemoteAddr() net.Addr { return c.gc.RemoteAddr() }

// SetDeadline is the engine's idle deadline, set before each of its reads.
// It bounds reads only: replies get their own deadline when they go out
// (the engine's would also cut the reply of a transfer that outlasted it,
// while the engine's read loop waits in wharf). wharf keeps its length to
// start it again after its own work (a reply it answers itself, a password
// check, a wait for a running transfer, a TLS handshake): that time is not
// the client being idle.
func (c *control) SetDeadline(t time.Time) error {
	var idle time.Duration
	if !t.IsZero() {
		idle = time.Until(t)
	}

	c.idle.Store(int64(idle))

	return c.gc.SetReadDeadline(t)
}

// writeTimeout bounds one write of replies: a client that reads nothing for
// the idle timeout (one minute at least) is given up.
func (c *control) writeTimeout() time.Duration {
	return max(time.Duration(c.idle.Load()), time.Minute)
}

func (c *control) SetReadDeadline(t time.Time) error  { return c.gc.SetReadDeadline(t) }
func (c *control) SetWriteDeadline(t time.Time) error { return c.gc.SetWriteDeadline(t) }

// renewDeadline starts the engine's idle deadline again.
func (c *control) renewDeadline() {
	var t time.Time
	if idle := time.Duration(c.idle.Load()); idle > 0 {
		t = time.Now().Add(idle)
	}

	_ = c.gc.SetReadDeadline(t)
}

// prefixConn reads prefix before the connection: the bytes a client
// pipelined after AUTH TLS, which start its TLS handshake.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]

		return n, nil
	}

	return p.Conn.Read(b)
}
