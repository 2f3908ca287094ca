package server

import (
	"crypto/tls"
	"strings"
	"testing"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// connMode is how a conformance case reaches wharf.
type connMode string

const (
	modeClear    connMode = "clear"    // a server with TLS off
	modePreAuth  connMode = "preauth"  // an explicit-TLS server, before AUTH TLS
	modeExplicit connMode = "explicit" // an explicit-TLS server, after AUTH TLS
	modeImplicit connMode = "implicit" // an implicit-TLS server
)

// allModes are the ways every rule must hold: in clear, explicit and implicit TLS.
var allModes = []connMode{modeClear, modeExplicit, modeImplicit}

// exchange is one command and what its reply must be. Commands starting with @
// are the harness's: @anon and @alice log in, @tls sends AUTH TLS and makes
// the handshake, @long sends a 5,000-byte line.
type exchange struct {
	cmd   string
	code  int
	has   string // the reply must contain this
	lacks string // and must not contain this
}

// conformanceCase is a sequence of commands and the replies RFC 959, 2228,
// 2389, 2428, 3659 and 4217 call for.
type conformanceCase struct {
	row   string // the correction it pins (corrections.go); "" for none
	name  string
	modes []connMode // nil: allModes
	steps []exchange
}

var conformanceCases = []conformanceCase{
	{row: "auth-mechanism", name: "AUTH with another mechanism is 504", modes: []connMode{modePreAuth}, steps: []exchange{
		{cmd: "AUTH GSSAPI", code: 504}, {cmd: "AUTH", code: 501}, {cmd: "AUTH tls-c", code: 234},
	}},
	{row: "auth-mechanism", name: "AUTH SSL is TLS", modes: []connMode{modePreAuth}, steps: []exchange{
		{cmd: "AUTH SSL", code: 234},
	}},
	{row: "auth-twice", name: "AUTH on a protected connection is 503", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "AUTH TLS", code: 503}, {cmd: "NOOP", code: 200},
	}},
	{row: "auth-off", name: "AUTH with TLS off is 502 and FEAT does not offer it", modes: []connMode{modeClear}, steps: []exchange{
		{cmd: "AUTH TLS", code: 502}, {cmd: "FEAT", code: 211, lacks: "AUTH"},
	}},
	{row: "pbsz-prot-before-auth", name: "PBSZ and PROT before AUTH are 503", modes: []connMode{modeClear, modePreAuth}, steps: []exchange{
		{cmd: "PBSZ 0", code: 503}, {cmd: "PROT P", code: 503}, {cmd: "@anon"}, {cmd: "PROT P", code: 503},
	}},
	{row: "pbsz-value", name: "PBSZ answers PBSZ=0", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "PBSZ 1024", code: 200, has: "PBSZ=0"}, {cmd: "PBSZ x", code: 501},
	}},
	{row: "prot-levels", name: "PROT C and P are 200, S and E 536, others 504", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "PBSZ 0", code: 200}, {cmd: "PROT S", code: 536}, {cmd: "PROT E", code: 536}, {cmd: "PROT X", code: 504},
		{cmd: "PROT c", code: 200}, {cmd: "PROT P", code: 200},
	}},
	{row: "prot-after-pasv", name: "PROT P after PASV refuses that transfer", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "@anon"}, {cmd: "PROT C", code: 200}, {cmd: "PASV", code: 227}, {cmd: "PROT P", code: 200},
		{cmd: "LIST", code: 503, has: "PASV"}, {cmd: "RETR /README.txt", code: 503},
	}},
	{row: "prot-after-pasv", name: "PROT C after EPSV refuses that transfer", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "@anon"}, {cmd: "PROT P", code: 200}, {cmd: "EPSV", code: 229}, {cmd: "PROT C", code: 200},
		{cmd: "NLST", code: 503},
	}},
	{row: "tls-required-data", name: "a TLS-only account's clear transfer is 522", modes: []connMode{modeExplicit, modeImplicit}, steps: []exchange{
		{cmd: "@alice"}, {cmd: "PROT C", code: 200}, {cmd: "PASV", code: 227}, {cmd: "RETR /README.txt", code: 522},
		{cmd: "LIST", code: 522}, {cmd: "STOR /x", code: 522}, {cmd: "STOU", code: 522}, {cmd: "NOOP", code: 200},
	}},
	{row: "tls-required-user", name: "a TLS-only account is refused at USER, in words, until AUTH TLS", modes: []connMode{modePreAuth}, steps: []exchange{
		{cmd: "USER alice", code: 530, has: "TLS"}, {cmd: "PASS " + testPassword, code: 503}, {cmd: "@tls"},
		{cmd: "@alice"}, {cmd: "PWD", code: 257},
	}},
	{row: "", name: "anonymous may log in in clear on an explicit-TLS server", modes: []connMode{modePreAuth}, steps: []exchange{
		{cmd: "@anon"}, {cmd: "PWD", code: 257},
	}},
	{row: "port-malformed", name: "a malformed PORT or EPRT says so", steps: []exchange{
		{cmd: "@anon"}, {cmd: "PORT 1,2,3", code: 501, has: "Malformed"}, {cmd: "PORT 127,0,0,1,300,1", code: 501, has: "Malformed"},
		{cmd: "EPRT |1|nowhere|5000|", code: 501, has: "Malformed"}, {cmd: "EPRT", code: 501},
	}},
	{row: "family", name: "EPSV and EPRT of the other family are 522 with the one to use", steps: []exchange{
		{cmd: "@anon"}, {cmd: "EPSV 2", code: 522, has: "(1)"}, {cmd: "EPRT |2|::1|5000|", code: 522, has: "(1)"},
		{cmd: "EPSV 1", code: 229}, {cmd: "EPSV x", code: 501},
	}},
	{row: "epsv-all", name: "after EPSV ALL only EPSV is accepted", steps: []exchange{
		{cmd: "@anon"}, {cmd: "EPSV ALL", code: 200}, {cmd: "PASV", code: 503}, {cmd: "PORT 127,0,0,1,200,10", code: 503},
		{cmd: "EPRT |1|127.0.0.1|51200|", code: 503}, {cmd: "EPSV", code: 229},
	}},
	{row: "no-data-connection", name: "a transfer with no data connection is 425", steps: []exchange{
		{cmd: "@anon"}, {cmd: "RETR /README.txt", code: 425}, {cmd: "LIST", code: 425}, {cmd: "MLSD", code: 425},
	}},
	{row: "pass-without-user", name: "PASS without USER is 503", steps: []exchange{
		{cmd: "PASS x", code: 503}, {cmd: "@anon"},
	}},
	{row: "", name: "a command before login is 530", steps: []exchange{
		{cmd: "PWD", code: 530}, {cmd: "RETR /README.txt", code: 530},
	}},
	{row: "stru", name: "STRU F is 200, R and P 504", steps: []exchange{
		{cmd: "@anon"}, {cmd: "STRU F", code: 200}, {cmd: "STRU R", code: 504}, {cmd: "STRU P", code: 504}, {cmd: "STRU", code: 501},
	}},
	{row: "case", name: "arguments are case-insensitive", steps: []exchange{
		{cmd: "@anon"}, {cmd: "MODE s", code: 200}, {cmd: "TYPE i", code: 200}, {cmd: "stru f", code: 200},
		{cmd: "type a", code: 200}, {cmd: "MODE b", code: 504},
	}},
	{row: "help", name: "HELP lists the commands, HELP <command> its syntax", steps: []exchange{
		{cmd: "HELP", code: 214, has: "STOU"}, {cmd: "help retr", code: 214, has: "RETR <path>"}, {cmd: "HELP FROB", code: 501},
	}},
	{row: "allo", name: "ALLO, with or without a record size, is 202", steps: []exchange{
		{cmd: "@anon"}, {cmd: "ALLO 100", code: 202}, {cmd: "ALLO 100 R 10", code: 202}, {cmd: "ALLO lots", code: 501},
	}},
	{row: "rest-syntax", name: "REST takes a byte offset of 0 or more", steps: []exchange{
		{cmd: "@anon"}, {cmd: "REST abc", code: 501}, {cmd: "REST -5", code: 501}, {cmd: "REST 0", code: 350},
	}},
	{row: "", name: "a listing after REST is refused in words", steps: []exchange{
		{cmd: "@anon"}, {cmd: "REST 100", code: 350}, {cmd: "LIST", code: 450, has: "A listing cannot be resumed."},
		{cmd: "LIST", code: 425},
	}},
	{row: "acct", name: "ACCT is not needed", steps: []exchange{{cmd: "ACCT x", code: 202}}},
	{row: "xcup", name: "XCUP is CDUP", steps: []exchange{
		{cmd: "@anon"}, {cmd: "CWD pub", code: 250}, {cmd: "XCUP", code: 250}, {cmd: "PWD", code: 257, has: `"/"`},
	}},
	{row: "opts-mlst", name: "OPTS MLST chooses the facts MLST and MLSD send", steps: []exchange{
		{cmd: "@anon"}, {cmd: "OPTS MLST type;size;", code: 200, has: "MLST OPTS type;size;"},
		{cmd: "MLST /README.txt", code: 250, has: "Type=file;Size=17; /README.txt", lacks: "Modify"},
		{cmd: "OPTS MLST nonsense;", code: 200}, {cmd: "MLST /README.txt", code: 250, lacks: "Type"},
		{cmd: "OPTS FROB", code: 501}, {cmd: "OPTS UTF8 ON", code: 200},
	}},
	{row: "feat", name: "FEAT lists the MLST facts and TVFS", steps: []exchange{
		{cmd: "FEAT", code: 211, has: " MLST type*;size*;modify*;"}, {cmd: "FEAT", code: 211, has: " TVFS"},
		{cmd: "FEAT", code: 211, has: " EPSV"}, {cmd: "FEAT", code: 211, has: " UTF8"},
	}},
	{row: "verb-whole", name: "a verb is matched whole", steps: []exchange{
		{cmd: "@anon"}, {cmd: "XQUIT", code: 500}, {cmd: "XABOR", code: 500}, {cmd: "XSTAT", code: 500},
		{cmd: " NOOP", code: 500}, {cmd: "NOOP", code: 200},
	}},
	{row: "not-implemented", name: "a command not implemented is 502 in words", steps: []exchange{
		{cmd: "ADAT x", code: 502, has: "ADAT is not implemented."}, {cmd: "REIN", code: 502},
		{cmd: "@anon"}, {cmd: "XCRC /README.txt", code: 502, lacks: "!"},
	}},
	{row: "line-length", name: "an over-long line is 500 and the session goes on", steps: []exchange{
		{cmd: "@long", code: 500}, {cmd: "NOOP", code: 200},
	}},
	{row: "rnfr", name: "RNFR is refused at once for an account that may not rename", steps: []exchange{
		{cmd: "@anon"}, {cmd: "RNFR /README.txt", code: 550, has: "read-only"}, {cmd: "RNTO /x", code: 503},
	}},
	{row: "stat-path", name: "STAT of a folder lists it in ls -l lines", steps: []exchange{
		{cmd: "@anon"}, {cmd: "STAT /pub", code: 212, has: "-rw-r--r-- 1 ftp ftp", lacks: "%s"},
		{cmd: "STAT /README.txt", code: 213, has: "README.txt"}, {cmd: "STAT /nowhere", code: 450},
	}},
	{row: "stat-options", name: "STAT -la lists the current folder", steps: []exchange{
		{cmd: "@anon"}, {cmd: "STAT -la", code: 212, has: "README.txt"},
	}},
	{row: "stat-address", name: "STAT shows the client's address, not the server's", steps: []exchange{
		{cmd: "@anon"}, {cmd: "STAT", code: 211, has: "Connected from 127.0.0.1", lacks: "Connected to"},
	}},
	{row: "internals", name: "refusals name the path and the cause, never the engine's words", steps: []exchange{
		{cmd: "@anon"}, {cmd: "RETR /nowhere.txt", code: 550, has: "/nowhere.txt: No such file or folder.", lacks: "driver"},
		{cmd: "SIZE /nowhere.txt", code: 550, has: "/nowhere.txt: No such file or folder."},
		{cmd: "CWD /nowhere", code: 550, has: "/nowhere: No such file or folder."},
		{cmd: "MKD /new", code: 550, has: "/new: Permission denied", lacks: "mkdir"},
		{cmd: "DELE /README.txt", code: 550, lacks: "remove"},
	}},
	{row: "mlst-path", name: "MLST names the entry as asked", steps: []exchange{
		{cmd: "@anon"}, {cmd: "MLST /pub/lf.txt", code: 250, has: " /pub/lf.txt"}, {cmd: "CWD /pub", code: 250},
		{cmd: "MLST lf.txt", code: 250, has: "; lf.txt"},
	}},
	{row: "", name: "a session logs in once", steps: []exchange{
		{cmd: "@anon"}, {cmd: "USER anonymous", code: 530}, {cmd: "PASS x", code: 503}, {cmd: "PWD", code: 257},
	}},
}

// conformanceServers are one wharf per kind of connection, with the
// anonymous tree of makeTree and alice, a read-write account.
type conformanceServers struct {
	clear, explicit, implicit *testServer
}

func startConformanceServers(t *testing.T) conformanceServers {
	t.Helper()

	start := func(mode TLSMode) *testServer {
		f, _ := anonFixture(t)
		f.users = []auth.User{{Name: "alice", PasswordHash: testHash, Home: makeTree(t), Access: auth.ReadWrite}}
		if mode != TLSOff {
			f.opts.TLSMode = mode
			f.opts.RequireSessionReuse = true // the default of [tls] require_session_reuse
			f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
		}

		return startServer(t, f)
	}

	return conformanceServers{clear: start(TLSOff), explicit: start(TLSExplicit), implicit: start(TLSImplicit)}
}

// dial opens a control connection in mode.
func (cs conformanceServers) dial(t *testing.T, mode connMode) *ftptest.Ctl {
	t.Helper()

	switch mode {
	case modeClear:
		return cs.clear.raw(t)
	case modePreAuth:
		return cs.explicit.raw(t)
	case modeExplicit:
		return startTLS(t, cs.explicit.raw(t))
	case modeImplicit:
		return implicitCtl(t, cs.implicit)
	}

	t.Fatalf("unknown mode %q", mode)

	return nil
}

// startTLS sends AUTH TLS and makes the handshake.
func startTLS(t *testing.T, c *ftptest.Ctl) *ftptest.Ctl {
	t.Helper()

	c.Must(234, "AUTH TLS")
	cfg := clientTLS()
	tc := tls.Client(c.Conn, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}

	c = ftptest.NewCtl(t, tc)
	c.TLS = cfg

	return c
}

// TestConformance drives every case through a raw client against a real
// wharf, in clear, explicit TLS and implicit TLS.
func TestConformance(t *testing.T) {
	t.Parallel()

	cs := startConformanceServers(t)

	for _, tc := range conformanceCases {
		modes := tc.modes
		if modes == nil {
			modes = allModes
		}

		for _, mode := range modes {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				t.Parallel()

				c := cs.dial(t, mode)
				for _, s := range tc.steps {
					c = runStep(t, c, s)
				}
			})
		}
	}
}

func runStep(t *testing.T, c *ftptest.Ctl, s exchange) *ftptest.Ctl {
	t.Helper()

	var code int
	var msg string

	switch s.cmd {
	case "@anon":
		c.Login("anonymous", "guest@example.com")

		return c
	case "@alice":
		c.Login("alice", testPassword)

		return c
	case "@tls":
		return startTLS(t, c)
	case "@long":
		code, msg = c.Cmd("%s", "NOOP "+strings.Repeat("x", 5000))
	default:
		code, msg = c.Cmd("%s", s.cmd)
	}

	switch {
	case code != s.code:
		t.Fatalf("%s: got %d %q, want %d", truncate(s.cmd, 40), code, msg, s.code)
	case s.has != "" && !strings.Contains(msg, s.has):
		t.Fatalf("%s: got %d %q, want it to contain %q", s.cmd, code, msg, s.has)
	case s.lacks != "" && strings.Contains(msg, s.lacks):
		t.Fatalf("%s: got %d %q, which contains %q", s.cmd, code, msg, s.lacks)
	}

	return c
}
