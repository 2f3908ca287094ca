package server

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"wharf/auth"
	"wharf/sums"
	"wharf/vfs"
)

// protoState is what the control connection knows of its session's
// protocol: set by the commands (read side only, unless noted).
type protoState struct {
	user      string // the name USER gave; "" before USER or after a refusal
	failures  int    // failed passwords on this connection
	junk      int    // unknown, malformed or premature commands before login
	pbsz      bool   // PBSZ sent after AUTH (RFC 4217, 9)
	prot      byte   // the data protection level: 'C' or 'P' (set under control.mu: /sessions reads it)
	epsvAll   bool   // EPSV ALL: only EPSV from now on (RFC 2428, 4)
	ascii     bool   // TYPE A
	facts     factSet
	needTLS   bool // the account logged in must use TLS for its data (auth.Account.NeedsTLS)
	listing   *listRequest
	shown     map[string]bool // folders whose message this session was shown
	unique    string          // STOU's name while it is stored
	dataReady bool            // a PASV, EPSV, PORT or EPRT the engine accepted and no transfer used (under control.mu)
	dataProt  byte            // prot when that data connection was prepared (under control.mu)
	account   string          // the account logged in, for the log (under control.mu)
	refusals  *logLimiter     // bounds the session's "command refused" lines; nil until one (under control.mu)
	hashAlgo  sums.Algo       // HASH's algorithm (OPTS HASH); SHA-256 by default
	rest      int64           // the REST offset the engine holds for the next transfer (under control.mu)
}

// verbSpec is how wharf handles one command verb.
type verbSpec struct {
	open   bool // allowed before login (RFC 959, 4.1.1; RFC 4217 for AUTH, PBSZ, PROT)
	handle func(c *control, verb, arg string)
}

// verbs are the commands wharf accepts, matched whole and in any case
// (RFC 959, 5.3.1): the engine matches some verbs by their end, so that
// "XQUIT" quits. Anything not here gets 500. The rows of corrections.go say
// where each handler departs from the engine.
var verbs = map[string]verbSpec{
	// Access control (RFC 959, 4.1.1) and security (RFC 2228, RFC 4217).
	"USER": {open: true, handle: (*control).user},
	"PASS": {open: true, handle: (*control).pass},
	"ACCT": {open: true, handle: answerWith(202, "ACCT is not needed on this server.")},
	"AUTH": {open: true, handle: (*control).auth},
	"PBSZ": {open: true, handle: (*control).pbsz},
	"PROT": {open: true, handle: (*control).prot},
	"CCC":  {open: true, handle: notImplemented},
	"ADAT": {open: true, handle: notImplemented},
	"CONF": {open: true, handle: notImplemented},
	"ENC":  {open: true, handle: notImplemented},
	"MIC":  {open: true, handle: notImplemented},
	"REIN": {open: true, handle: notImplemented},
	"QUIT": {open: true, handle: pass(cmdSpecial)},

	// Information and options.
	"FEAT": {open: true, handle: (*control).feat},
	"OPTS": {open: true, handle: (*control).opts},
	"HELP": {open: true, handle: (*control).help},
	"SYST": {open: true, handle: pass(cmdSync)},
	"NOOP": {open: true, handle: pass(cmdSync)},
	"CLNT": {open: true, handle: pass(cmdSync)},
	"STAT": {handle: (*control).stat},
	"HOST": {open: true, handle: notImplemented},
	"LANG": {open: true, handle: notImplemented},
	"CSID": {open: true, handle: notImplemented},

	// Transfer parameters (RFC 959, 4.1.2; RFC 2428).
	"TYPE": {handle: (*control).typ},
	"MODE": {handle: (*control).mode},
	"STRU": {handle: (*control).stru},
	"PASV": {handle: (*control).pasv},
	"EPSV": {handle: (*control).epsv},
	"PORT": {handle: (*control).port},
	"EPRT": {handle: (*control).port},
	"REST": {handle: (*control).rest},
	"ALLO": {handle: (*control).allo},
	"LPSV": {handle: notImplemented},
	"SPSV": {handle: notImplemented},
	"LPRT": {handle: notImplemented},

	// Transfers and listings (RFC 959, 4.1.3; RFC 3659).
	"RETR": {handle: (*control).transfer},
	"STOR": {handle: (*control).transfer},
	"APPE": {handle: (*control).transfer},
	"STOU": {handle: (*control).stou},
	"LIST": {handle: (*control).list},
	"NLST": {handle: (*control).list},
	"MLSD": {handle: (*control).list},
	"MLST": {handle: (*control).mlst},
	"ABOR": {handle: pass(cmdSpecial)},

	// Files and folders.
	"CWD":  {handle: (*control).cwd},
	"XCWD": {handle: (*control).cwd},
	"CDUP": {handle: (*control).cwd},
	"XCUP": {handle: (*control).cwd},
	"PWD":  {handle: pass(cmdSync)},
	"XPWD": {handle: pass(cmdSync)},
	"MKD":  {handle: pass(cmdSync)},
	"XMKD": {handle: pass(cmdSync)},
	"RMD":  {handle: pass(cmdSync)},
	"XRMD": {handle: pass(cmdSync)},
	"DELE": {handle: pass(cmdSync)},
	"RNFR": {handle: (*control).rnfr},
	"RNTO": {handle: pass(cmdSync)},
	"SIZE": {handle: (*control).size},
	"MDTM": {handle: pass(cmdSync)},
	"MFMT": {handle: pass(cmdSync)},
	"SITE": {handle: pass(cmdSync)},
	"SMNT": {handle: notImplemented},
	"RMDA": {handle: notImplemented},
	"DSIZ": {handle: notImplemented},
	"MFF":  {handle: notImplemented},
	"MFCT": {handle: notImplemented},
	"AVBL": {handle: notImplemented},
	"THMB": {handle: notImplemented},
	"XRCP": {handle: notImplemented},
	"XRSQ": {handle: notImplemented},
	"XSEM": {handle: notImplemented},
	"XSEN": {handle: notImplemented},

	// Checksums, from the files the mirror publishes (hash.go); those
	// that would read whole files on demand are off, as in the engine.
	"HASH":    {handle: (*control).hash},
	"XMD5":    {handle: (*control).hash},
	"XSHA1":   {handle: (*control).hash},
	"XSHA256": {handle: (*control).hash},
	"XSHA512": {handle: (*control).hash},
	"XCRC":    {handle: notImplemented},
	"MD5":     {handle: notImplemented},
	"XSHA":    {handle: notImplemented},
	"COMB":    {handle: notImplemented},
}

// pass forwards the command unchanged.
func pass(kind cmdKind) func(c *control, verb, arg string) {
	return func(c *control, verb, arg string) {
		c.forward(&command{verb: verb, arg: arg, kind: kind})
	}
}

// answerWith answers the command with a fixed reply.
func answerWith(code int, text string) func(c *control, verb, arg string) {
	return func(c *control, _, _ string) { c.answer(code, text) }
}

func notImplemented(c *control, verb, _ string) {
	c.answer(502, verb+" is not implemented.")
}

// handle runs one client line.
func (c *control) handle(line []byte) {
	if c.proxyLine(line) {
		return
	}

	if len(line) > maxCommandLine {
		if c.junkBeforeLogin("command line too long before login", "") {
			return
		}

		c.answer(500, "Command line too long.")

		return
	}

	text := strings.TrimRight(string(telnet(line)), "\r\n")
	verb, arg, _ := strings.Cut(text, " ")
	verb = strings.ToUpper(verb)

	spec, ok := verbs[verb]
	if !ok {
		if c.junkBeforeLogin("unknown command before login", verb) {
			return
		}

		if c.srv.log.Core().Enabled(zap.DebugLevel) {
			c.si.logger().Debug("unknown command", zap.String("verb", truncate(verb, junkLogBytes)))
		}
		c.answer(500, "Unknown command.")

		return
	}

	if !spec.open && !c.si.loggedIn() {
		if c.junkBeforeLogin("command before login", verb) {
			return
		}

		c.refuse(refusedNotLoggedIn, 530, "Please log in with USER and PASS first.")

		return
	}

	spec.handle(c, verb, arg)
}

// Before login, a client that sends what no login needs (unknown verbs,
// over-long lines, commands that need a login) is answered and counted; the
// maxJunk-th such line closes the connection, so a flood costs the sender a
// reconnect every few lines rather than the server's log a line each. Only
// the first junkLogLines are logged, each with at most junkLogBytes of the
// client's bytes, and the close with one summary line.
const (
	maxJunk      = 10
	junkLogLines = 3
	junkLogBytes = 16
)

// junkBeforeLogin counts a line refused before login, logging it within the
// bounds above; it reports true when it closed the connection (the caller
// answers nothing more). After login it counts nothing.
func (c *control) junkBeforeLogin(what, verb string) bool {
	if c.si.loggedIn() {
		return false
	}

	c.proto.junk++
	if c.proto.junk <= junkLogLines {
		if verb == "" {
			c.si.logger().Info(what)
		} else {
			c.si.logger().Info(what, zap.String("verb", truncate(verb, junkLogBytes)))
		}
	}

	if c.proto.junk < maxJunk {
		return false
	}

	c.si.logger().Warn("too many unknown or premature commands before login, closing", zap.Int("commands", c.proto.junk))
	c.closeAfter(421, "Too many unknown commands before login: closing the connection.")

	return true
}

// telnet removes Telnet commands from a line (RFC 959, 4.1.3: clients send
// IAC IP and IAC DM before ABOR): IAC IAC is a literal 255.
func telnet(line []byte) []byte {
	if bytes.IndexByte(line, 0xff) < 0 {
		return line
	}

	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		if line[i] != 0xff || i+1 >= len(line) {
			out = append(out, line[i])

			continue
		}

		switch next := line[i+1]; {
		case next == 0xff:
			out = append(out, 0xff)
			i++
		case next >= 251 && next <= 254: // WILL, WONT, DO, DONT and an option
			i += 2
		default:
			i++
		}
	}

	return bytes.TrimLeft(out, "\xf2") // a Data Mark sent as urgent data
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}

	return s
}

// --- TLS (RFC 4217, RFC 2228) ---------------------------------------------

// auth starts TLS on the control connection.
func (c *control) auth(_, arg string) {
	mech := strings.ToUpper(strings.TrimSpace(arg))

	switch {
	case c.srv.tls == nil:
		c.answer(502, "TLS is not enabled on this server.")
	case c.isSecure():
		c.answer(503, "The connection is already protected by TLS.")
	case c.si.loggedIn():
		c.answer(503, "AUTH must come before login.")
	case mech == "":
		c.answer(501, "Syntax: AUTH TLS")
	case mech != "TLS" && mech != "TLS-C" && mech != "SSL":
		c.answer(504, "AUTH "+truncate(mech, 16)+" is not supported: use AUTH TLS.")
	default:
		c.answer(234, "Proceed with TLS negotiation.")

		if err := c.startTLS(c.srv.tls); err != nil {
			c.si.logger().Warn("TLS handshake failed", zap.Error(err))
			c.srv.metrics.handshakeFailed(tlsControl, err)
			c.readErr = io.EOF // the engine ends the session quietly

			return
		}

		c.si.setState(stateTLS)
		// A new protection context: PBSZ and PROT start over, and so does a login in progress.
		c.proto.pbsz, c.proto.user = false, ""
		c.setProt('C')
	}
}

func (c *control) pbsz(_, arg string) {
	switch n, err := strconv.ParseUint(strings.TrimSpace(arg), 10, 32); {
	case !c.isSecure():
		c.answer(503, "PBSZ needs a TLS connection: send AUTH TLS first.")
	case err != nil:
		c.answer(501, "Syntax: PBSZ 0")
	default:
		_ = n // any size is answered 0: TLS needs no buffer (RFC 4217, 9)
		c.proto.pbsz = true
		c.answer(200, "PBSZ=0")
	}
}

// prot sets the data protection level, and tells the engine, whose PASV and
// PORT wrap data connections in TLS after "PROT P".
func (c *control) prot(_, arg string) {
	level := strings.ToUpper(strings.TrimSpace(arg))

	switch {
	case !c.isSecure():
		c.answer(503, "PROT needs a TLS connection: send AUTH TLS first.")
	case level == "C" || level == "P":
		c.setProt(level[0])
		text := map[string]string{"C": "Protection level set to Clear.", "P": "Protection level set to Private."}[level]
		c.forward(&command{verb: "PROT", arg: level, fix: func(code int) (int, string) {
			if code == 200 {
				return 200, text
			}

			return 0, ""
		}})
	case level == "S" || level == "E":
		c.refuse(refusedSyntax, 536, "PROT "+level+" is not supported: use C or P.")
	case level == "":
		c.answer(501, "Syntax: PROT C or PROT P")
	default:
		c.answer(504, "Unknown protection level: use C or P.")
	}
}

// setProt sets the data protection level.
func (c *control) setProt(level byte) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.proto.prot = level
}

// dataProtected reports whether data connections are protected (PROT P),
// for /sessions.
func (c *control) dataProtected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.proto.prot == 'P'
}

// dataMustBeProtected reports whether this session's data connections must be TLS.
func (c *control) dataMustBeProtected() bool {
	return c.srv.opts.TLSMode == TLSRequired || c.proto.needTLS
}

// dataGuard refuses a transfer whose data connection would not carry the
// protection asked for: never a byte in clear where TLS is required, and
// never a connection prepared before PROT changed (the engine decides TLS at
// PASV and PORT, not at the transfer).
func (c *control) dataGuard() bool {
	if c.dataMustBeProtected() && c.proto.prot != 'P' {
		c.refuse(refusedTLSRequired, 522, "Data connections must be protected: send PROT P, then PASV or EPSV.")

		return false
	}

	c.mu.Lock()
	ready, prot := c.proto.dataReady, c.proto.dataProt
	c.mu.Unlock()

	if ready && prot != c.proto.prot {
		c.answer(503, "PROT changed after the data connection was prepared: send PASV, EPSV, PORT or EPRT again.")

		return false
	}

	return true
}

// --- Transfer parameters ----------------------------------------------------

// typ forwards TYPE and remembers it, for STAT.
func (c *control) typ(verb, arg string) {
	ascii := strings.HasPrefix(strings.ToUpper(strings.TrimSpace(arg)), "A")
	c.forward(&command{verb: verb, arg: arg, after: func(code int) {
		if code == 200 {
			c.proto.ascii = ascii
		}
	}})
}

// mode forwards MODE with its argument in capitals: the engine compares it case-sensitively.
func (c *control) mode(verb, arg string) {
	c.forward(&command{verb: verb, arg: strings.ToUpper(strings.TrimSpace(arg))})
}

// stru answers STRU, which RFC 959 (5.1) requires for F.
func (c *control) stru(_, arg string) {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "F":
		c.answer(200, "Structure set to File.")
	case "R", "P":
		c.answer(504, "Only file structure (STRU F) is supported.")
	default:
		c.answer(501, "Syntax: STRU F")
	}
}

func (c *control) rest(verb, arg string) {
	arg = strings.TrimSpace(arg)
	if n, err := strconv.ParseInt(arg, 10, 64); err != nil || n < 0 || arg[0] == '+' {
		c.answer(501, "REST needs a byte offset: a whole number, 0 or more.")

		return
	}

	offset, _ := strconv.ParseInt(arg, 10, 64)
	c.forward(&command{verb: verb, arg: arg, after: func(code int) {
		if code == 350 {
			c.proto.rest = offset
		}
	}})
}

// allo answers ALLO n [R m]: no space needs reserving here (RFC 959, 4.1.3).
func (c *control) allo(_, arg string) {
	fields := strings.Fields(arg)
	ok := len(fields) == 1 || (len(fields) == 3 && strings.EqualFold(fields[1], "R"))
	for i, f := range fields {
		if i == 1 {
			continue
		}

		if _, err := strconv.ParseUint(f, 10, 64); err != nil {
			ok = false
		}
	}

	if !ok {
		c.answer(501, "Syntax: ALLO <bytes> [R <record size>]")

		return
	}

	c.answer(202, "No storage allocation necessary.")
}

// ipv6 reports whether the control connection is over IPv6.
func (c *control) ipv6() bool {
	tcp, ok := c.gc.RemoteAddr().(*net.TCPAddr)

	return ok && tcp.IP.To4() == nil
}

// family is the RFC 2428 network protocol number of the control connection.
func (c *control) family() string {
	if c.ipv6() {
		return "2"
	}

	return "1"
}

// prepares forwards a command that prepares a data connection when the
// engine answers it ok, with the protection level of now.
func (c *control) prepares(verb, arg string, ok int) {
	c.forward(&command{verb: verb, arg: arg, prepares: ok, prot: c.proto.prot})
}

func (c *control) pasv(verb, _ string) {
	if c.proto.epsvAll {
		c.answer(503, "EPSV ALL was sent: only EPSV is accepted now.")

		return
	}

	// PASV can only announce an IPv4 address (RFC 959, 4.1.2; RFC 2428, 3).
	if c.ipv6() {
		c.answer(502, "PASV works over IPv4 only: use EPSV.")

		return
	}

	c.prepares(verb, "", 227)
}

// epsv checks the network protocol asked for (RFC 2428, 3) and remembers EPSV ALL.
func (c *control) epsv(verb, arg string) {
	arg = strings.TrimSpace(arg)

	switch {
	case strings.EqualFold(arg, "ALL"):
		c.proto.epsvAll = true
		c.answer(200, "EPSV ALL accepted: only EPSV from now on.")
	case arg == "" || arg == c.family():
		c.prepares(verb, "", 229)
	case isDigits(arg):
		c.refuse(refusedSyntax, 522, "Network protocol not supported, use ("+c.family()+")")
	default:
		c.answer(501, "Syntax: EPSV, EPSV "+c.family()+" or EPSV ALL")
	}
}

// port checks PORT and EPRT before the engine connects anywhere: the
// address must be the client's own, the port 1024 or above (the engine has
// no port floor: a client could make it connect to port 22 or 25), and the
// argument well formed. The rules hold for the whole session, in clear and
// in TLS.
func (c *control) port(verb, arg string) {
	if !c.srv.opts.ActiveMode {
		c.answer(502, "Active mode (PORT, EPRT) is disabled on this server: use PASV or EPSV.")

		return
	}

	if c.proto.epsvAll {
		c.answer(503, "EPSV ALL was sent: only EPSV is accepted now.")

		return
	}

	var addr *net.TCPAddr
	var family string
	if verb == "PORT" {
		addr, family = parsePORT(arg), "1"
	} else {
		addr, family = parseEPRT(arg)
	}

	switch {
	case addr == nil:
		c.answer(501, "Malformed "+verb+": expected "+map[string]string{
			"PORT": "h1,h2,h3,h4,p1,p2", "EPRT": "|1|address|port| or |2|address|port|",
		}[verb]+".")
	case family != c.family():
		c.refuse(refusedSyntax, 522, "Network protocol not supported, use ("+c.family()+")")
	case addr.Port < 1024:
		c.refused(verb, 501, "data port below 1024", zap.String("address", truncate(strings.TrimSpace(arg), 64)))
		c.answer(501, verb+" refused: data ports below 1024 are not allowed.")
	case !addr.IP.Equal(remoteIP(c.gc.RemoteAddr())):
		c.refused(verb, 501, "data address not the client's", zap.String("address", truncate(strings.TrimSpace(arg), 64)))
		c.answer(501, verb+" refused: the data address must be your own.")
	default:
		c.prepares(verb, strings.TrimSpace(arg), 200)
	}
}

func remoteIP(a net.Addr) net.IP {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP
	}

	return nil
}

// parsePORT parses "h1,h2,h3,h4,p1,p2" (RFC 959, 4.1.2).
func parsePORT(arg string) *net.TCPAddr {
	parts := strings.Split(strings.TrimSpace(arg), ",")
	if len(parts) != 6 {
		return nil
	}

	var b [6]byte
	for i, s := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
		if err != nil {
			return nil
		}

		b[i] = byte(n)
	}

	return &net.TCPAddr{IP: net.IPv4(b[0], b[1], b[2], b[3]), Port: int(b[4])<<8 | int(b[5])}
}

// parseEPRT parses "|proto|address|port|" (RFC 2428, 2), any delimiter, and
// returns the address and its network protocol number.
func parseEPRT(arg string) (*net.TCPAddr, string) {
	arg = strings.TrimSpace(arg)
	if len(arg) < 7 {
		return nil, ""
	}

	fields := strings.Split(arg, arg[:1])
	if len(fields) != 5 || fields[0] != "" || fields[4] != "" {
		return nil, ""
	}

	proto, ip := fields[1], net.ParseIP(fields[2])
	port, err := strconv.ParseUint(fields[3], 10, 16)
	if ip == nil || err != nil || port == 0 {
		return nil, ""
	}

	// An address of another family than the one named is malformed.
	if (proto == "1" && ip.To4() == nil) || (proto == "2" && ip.To4() != nil) {
		return nil, ""
	}

	return &net.TCPAddr{IP: ip, Port: int(port)}, proto
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}

	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}

	return true
}

// --- Transfers ----------------------------------------------------------------

// transfer forwards RETR, STOR and APPE once the data protection is right.
func (c *control) transfer(verb, arg string) {
	if !c.dataGuard() {
		return
	}

	c.clearRest()
	c.forward(&command{verb: verb, arg: arg, kind: cmdTransfer})
}

// stou stores under a new name in the current folder (RFC 959, 4.1.3;
// RFC 1123, 4.1.2.9: "150 FILE: name"), atomically and never over an existing file.
func (c *control) stou(_, arg string) {
	if !c.dataGuard() {
		return
	}

	c.waitTransfer()
	c.clearRest()

	name, err := c.si.drv().uniqueName(c.si.cc.Path(), strings.TrimSpace(arg))
	if err != nil {
		if reason := refusalReason(err); reason != "" {
			c.refused("STOU", 550, reason, zap.String("path", truncate(c.abs(arg), maxLoggedPath)))
		}

		c.answerErr(550, err)

		return
	}

	target := path.Join(c.si.cc.Path(), name)
	c.setUnique(target)
	c.forward(&command{verb: "STOR", arg: target, kind: cmdTransfer,
		// Under control.mu, after GetHandle chose the final name.
		fix: func(code int) (int, string) {
			if code == 150 {
				return 150, "FILE: " + path.Base(c.proto.unique)
			}

			return 0, ""
		},
		after: func(int) { c.proto.unique = "" },
	})
}

// maxMessage bounds a folder's message file: what is read of it, and its lines.
const (
	maxMessage      = 4 << 10
	maxMessageLines = 64
)

// cwd forwards CWD and CDUP (XCWD, XCUP: RFC 775), and shows the new
// folder's message file ([listing] message_file, ".message") before the 250
// reply, as vsftpd and ProFTPD do: once per folder and session.
func (c *control) cwd(verb, arg string) {
	target := c.abs(arg)
	if verb == "CDUP" || verb == "XCUP" {
		verb, arg, target = "CDUP", "", path.Dir(c.si.cc.Path())
	}

	cmd := &command{verb: verb, arg: arg}
	if lines := c.message(target); lines != "" {
		cmd.fix = func(code int) (int, string) {
			if code != 250 {
				return 0, ""
			}

			c.proto.shown[target] = true

			return 250, lines + "\n" + "Directory changed to " + target + "."
		}
	}

	c.forward(cmd)
}

// message is folder dir's message file, as the middle of a 250 reply: every
// line after the first starts "250-" (so none can end the reply early),
// control characters taken out, at most maxMessageLines lines of
// maxMessage bytes. It is "" when there is none, it was shown already, or
// the session may not read it.
func (c *control) message(dir string) string {
	name := c.srv.opts.Listing.MessageFile
	if name == "" || c.proto.shown[dir] {
		return ""
	}

	if c.proto.shown == nil {
		c.proto.shown = map[string]bool{}
	}

	if len(c.proto.shown) >= 256 {
		return "" // a session that walks thousands of folders sees the first ones'
	}

	f, err := c.si.drv().Open(path.Join(dir, name))
	if err != nil {
		return ""
	}
	defer f.Close()

	data, _ := io.ReadAll(io.LimitReader(f, maxMessage))
	text := strings.TrimRight(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if strings.TrimSpace(text) == "" {
		return ""
	}

	var lines []string
	for i, line := range strings.Split(text, "\n") {
		if i == maxMessageLines {
			break
		}

		line = strings.Map(func(r rune) rune {
			switch {
			case r == '\t':
				return ' '
			case r < 0x20 || r == 0x7f:
				return -1
			}

			return r
		}, line)

		if i > 0 {
			line = "250-" + line
		}

		lines = append(lines, line)
	}

	return strings.Join(lines, "\n")
}

// rnfr refuses a rename at RNFR for accounts that may not rename: the
// engine answers RNFR with a Stat alone and would only refuse at RNTO.
func (c *control) rnfr(verb, arg string) {
	if acct := c.si.acct(); acct.Access != auth.ReadWrite {
		why := vfs.ErrReadOnly
		if acct.Access == auth.WriteOnly {
			why = vfs.ErrWriteOnly
		}

		c.refused(verb, 550, refusalReason(why), zap.String("path", truncate(c.abs(arg), maxLoggedPath)))
		c.answerErr(550, &fs.PathError{Op: "rename", Path: c.abs(arg), Err: why})

		return
	}

	c.forward(&command{verb: verb, arg: arg})
}

// abs is a path argument made absolute against the current folder, as the engine does.
func (c *control) abs(arg string) string {
	if path.IsAbs(arg) {
		return path.Clean(arg)
	}

	return path.Join(c.si.cc.Path(), arg)
}

// --- Features and help (RFC 2389) ---------------------------------------------

// feat lists the extensions wharf supports, with the MLST facts it can give.
func (c *control) feat(_, _ string) {
	lines := []string{"Extensions supported:"}
	if c.srv.tls != nil {
		lines = append(lines, " AUTH TLS", " PBSZ", " PROT")
	}

	if c.srv.opts.ActiveMode {
		lines = append(lines, " EPRT")
	}

	// MLSD is not a FEAT line of RFC 3659 (MLST covers both), but clients look for it.
	lines = append(lines, " EPSV", c.hashFeat(), " MDTM", " MFMT", " MLSD", " MLST "+c.proto.facts.feat(), " REST STREAM", " SIZE",
		" TVFS", " UTF8", " XMD5", " XSHA1", " XSHA256", " XSHA512", "End")
	c.answer(211, strings.Join(lines, "\n"))
}

func (c *control) opts(_, arg string) {
	name, value, _ := strings.Cut(strings.TrimSpace(arg), " ")

	switch strings.ToUpper(name) {
	case "UTF8", "UTF-8":
		c.answer(200, "Always in UTF8 mode.")
	case "HASH":
		c.optsHash(value)
	case "MLST":
		c.proto.facts = parseFacts(value)
		c.answer(200, "MLST OPTS "+c.proto.facts.opts())
	case "":
		c.answer(501, "Syntax: OPTS <command> [options]")
	default:
		c.answer(501, "OPTS "+truncate(name, 16)+" is not supported.")
	}
}

// helpOrder is HELP's list, in the order clients show it.
var helpOrder = []string{
	"USER", "PASS", "ACCT", "AUTH", "PBSZ", "PROT", "QUIT", "FEAT", "OPTS", "HELP", "SYST", "NOOP", "CLNT", "STAT",
	"TYPE", "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "REST", "ALLO", "RETR", "STOR", "APPE", "STOU", "LIST",
	"NLST", "MLSD", "MLST", "ABOR", "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "MKD", "XMKD", "RMD", "XRMD", "DELE",
	"RNFR", "RNTO", "SIZE", "MDTM", "MFMT", "SITE", "HASH", "XSHA256", "XSHA512", "XSHA1", "XMD5",
}

// helpSyntax is HELP <command>'s answer.
var helpSyntax = map[string]string{
	"USER": "USER <name>", "PASS": "PASS <password>", "ACCT": "ACCT <account>", "AUTH": "AUTH TLS",
	"PBSZ": "PBSZ 0", "PROT": "PROT C|P", "QUIT": "QUIT", "FEAT": "FEAT", "OPTS": "OPTS UTF8 ON | OPTS MLST <facts> | OPTS HASH [<algorithm>]",
	"HELP": "HELP [<command>]", "SYST": "SYST", "NOOP": "NOOP", "CLNT": "CLNT <client name>", "STAT": "STAT [<path>]",
	"TYPE": "TYPE A|I", "MODE": "MODE S", "STRU": "STRU F", "PASV": "PASV", "EPSV": "EPSV [1|2|ALL]",
	"PORT": "PORT h1,h2,h3,h4,p1,p2", "EPRT": "EPRT |proto|address|port|", "REST": "REST <offset>",
	"ALLO": "ALLO <bytes> [R <record size>]", "RETR": "RETR <path>", "STOR": "STOR <path>", "APPE": "APPE <path>",
	"STOU": "STOU [<name>]", "LIST": "LIST [<path>]", "NLST": "NLST [<path>]", "MLSD": "MLSD [<folder>]",
	"MLST": "MLST [<path>]", "ABOR": "ABOR", "CWD": "CWD <folder>", "XCWD": "XCWD <folder>", "CDUP": "CDUP",
	"XCUP": "XCUP", "PWD": "PWD", "XPWD": "XPWD", "MKD": "MKD <folder>", "XMKD": "XMKD <folder>",
	"RMD": "RMD <folder>", "XRMD": "XRMD <folder>", "DELE": "DELE <path>", "RNFR": "RNFR <path>",
	"RNTO": "RNTO <path>", "SIZE": "SIZE <path>", "MDTM": "MDTM <path>", "MFMT": "MFMT <YYYYMMDDhhmmss> <path>",
	"SITE": "SITE CHMOD <mode> <path> | SITE HELP", "HASH": "HASH <path> (OPTS HASH <algorithm> chooses)",
	"XSHA256": "XSHA256 <path>", "XSHA512": "XSHA512 <path>", "XSHA1": "XSHA1 <path>", "XMD5": "XMD5 <path>",
}

// help answers HELP (RFC 959, 4.1.3): the commands wharf accepts, or one command's syntax.
func (c *control) help(_, arg string) {
	if name := strings.ToUpper(strings.TrimSpace(arg)); name != "" {
		if syntax, ok := helpSyntax[name]; ok {
			c.answer(214, "Syntax: "+syntax)
		} else {
			c.answer(501, "Unknown command: "+truncate(name, 16))
		}

		return
	}

	lines := []string{"The following commands are recognized:"}
	for i := 0; i < len(helpOrder); i += 10 {
		lines = append(lines, " "+strings.Join(helpOrder[i:min(i+10, len(helpOrder))], " "))
	}

	c.answer(214, strings.Join(append(lines, "Help OK."), "\n"))
}

// stat answers STAT: the session's status (at once, even while a transfer
// runs) or, with a path, a listing on the control connection (RFC 959, 4.1.3).
func (c *control) stat(_, arg string) {
	if strings.TrimSpace(arg) == "" {
		c.answerNow(211, c.status())

		return
	}

	c.waitTransfer()
	c.statPath(arg)
}

// status is STAT's report. It shows the client's address, never the server's.
func (c *control) status() string {
	lines := []string{"wharf status:", " Connected from " + c.si.ip()}

	if user := c.si.acct().Name; user != "" {
		lines = append(lines, " Logged in as "+user)
	} else {
		lines = append(lines, " Not logged in")
	}

	typ := "BINARY"
	if c.proto.ascii {
		typ = "ASCII"
	}

	lines = append(lines, " TYPE: "+typ+", STRU: File, MODE: Stream")

	if c.isSecure() {
		lines = append(lines, fmt.Sprintf(" Control connection: TLS; data protection: %c", c.proto.prot))
	} else {
		lines = append(lines, " Control connection: clear text")
	}

	if t := c.si.current.Load(); t != nil {
		lines = append(lines, fmt.Sprintf(" Transferring %s: %d bytes so far", t.path, t.bytes.Load()))
	}

	return strings.Join(append(lines, "End of status."), "\n")
}
