package server

// correction is one place where wharf's control connection departs from
// what the engine (github.com/fclairamb/ftpserverlib v0.32.3) does on the
// wire. The engine may not be modified, forked or replaced, and no newer
// release exists, so wharf corrects it in control (commands.go answers or
// rewrites commands, replies.go rewrites replies).
//
// Every row is pinned twice: test names the test of wharf's behaviour, and
// engine_test.go holds a probe of the engine's own behaviour (engineProbes,
// by id), run against a bare engine. When an engine upgrade fixes a row, its
// probe fails: remove the row and the correction.
type correction struct {
	id      string // short name; the probe and the conformance cases use it
	command string // the command or reply corrected
	engine  string // what the engine does (v0.32.3)
	wharf   string // what wharf does instead
	rfc     string // the rule that decides
	test    string // the test that pins wharf's behaviour
}

// corrections is the table of every correction wharf makes to the engine.
var corrections = []correction{
	// Control connection and TLS (RFC 2228, RFC 4217).
	{"auth-mechanism", "AUTH GSSAPI (any word)", "234, then starts TLS", "504; AUTH TLS, TLS-C and SSL get 234",
		"RFC 2228, 3: 504 for an unsupported mechanism", "TestConformance"},
	{"auth-twice", "AUTH TLS on a TLS connection", "234, then nests a second TLS inside the first", "503",
		"RFC 4217, 4: AUTH once per connection", "TestConformance"},
	{"auth-off", "AUTH TLS with TLS off", "550 with the driver's error text", "502, and FEAT lists no AUTH",
		"RFC 2228, 3: 502 when the server offers no security", "TestConformance"},
	{"pbsz-prot-before-auth", "PBSZ or PROT before AUTH", "200; after PROT P the next transfer hangs", "503",
		"RFC 4217, 9; RFC 2228, 3: 503 without a security exchange", "TestConformance"},
	{"pbsz-value", "PBSZ 1024", "200 Whatever", "200 PBSZ=0", "RFC 4217, 9: TLS needs no buffer: PBSZ=0", "TestConformance"},
	{"prot-levels", "PROT S, E or X", "200 for any argument", "536 for S and E, 504 for anything else",
		"RFC 2228, 3; RFC 4217, 9", "TestConformance"},
	{"prot-after-pasv", "PROT P between PASV and a transfer", "sends that transfer in clear: TLS is chosen at PASV or PORT",
		"the transfer is refused with 503 until PASV, EPSV, PORT or EPRT is sent again", "RFC 4217, 9", "TestConformance"},
	{"tls-required-data", "a transfer with PROT C where TLS is required", "421 (which means closing) without closing",
		"522, and nothing crosses in clear", "RFC 4217, 9; RFC 959, 4.2 for 421", "TestConformance"},
	{"tls-required-user", "USER on a clear connection where TLS is required", "421 TLS is required, then closes the connection",
		"530 saying to use AUTH TLS; the client may send AUTH TLS and log in", "RFC 4217, 4", "TestConformance"},

	// Data connections (RFC 959, RFC 2428, RFC 2577).
	{"port-floor", "PORT or EPRT to a port below 1024", "connects to it (an FTP bounce to port 22 or 25)",
		"501; the rule holds for the whole session, in clear and in TLS", "RFC 2577, 3", "TestPortRulesHoldWholeSession"},
	{"port-malformed", "a malformed PORT or EPRT", "501 with a Go error text", "501 saying the argument is malformed",
		"RFC 959, 4.2", "TestConformance"},
	{"active-off", "PORT or EPRT with active mode off", "421 (which means closing) without closing", "502",
		"RFC 959, 4.2", "TestActiveMode"},
	{"family", "EPSV 2 or EPRT |2| on an IPv4 connection", "229 for EPSV 2; EPRT |2| gets 501 for its address, not its family",
		"522 with the protocol to use: (1)",
		"RFC 2428, 2 and 3", "TestConformance"},
	{"pasv-ipv6", "PASV on an IPv6 control connection", "421 (which means closing) with an address error, without closing",
		"502: use EPSV", "RFC 2428, 3; RFC 959, 4.2 for 421", "TestIPv6"},
	{"pasv-bind", "PASV or EPSV", "listens on every interface (0.0.0.0:port, or :0); with multiplexing, each port " +
		"used once listens until the server stops",
		"the port listens on the listen address only (every interface only when that is 0.0.0.0 or ::), for one data " +
			"connection from the session's address, and stops listening once it arrived",
		"RFC 2577, 7 (port stealing): expose no more than the session needs", "TestPassiveListensOnListenAddress"},
	{"epsv-all", "PASV, PORT or EPRT after EPSV ALL", "accepted: EPSV ALL is not remembered", "503",
		"RFC 2428, 4", "TestConformance"},
	{"no-data-connection", "RETR, STOR or LIST with no PASV or PORT", "550", "425", "RFC 959, 4.2 and 5.4",
		"TestConformance"},
	{"data-broken", "a data connection reset or closed early during RETR, STOR, APPE or a listing",
		"550 Issue during transfer: network error: ... with the sockets' addresses",
		"426 within a second, and the session goes on", "RFC 959, 4.2 and 5.4", "TestDataConnectionBreaks"},
	{"local-error", "a local file error during a transfer", "550 Issue during transfer: ...", "451",
		"RFC 959, 4.2 and 5.4", "TestLocalErrorIs451"},

	// Login (RFC 959, 4.1.1).
	{"pass-retry", "a wrong password", "530, then closes the connection",
		"530, and the client may try again on the same connection; the third failure closes it", "RFC 959, 4.1.1",
		"TestWrongPasswordsOnOneConnection"},
	{"pass-without-user", "PASS without USER", "530, then closes the connection", "503", "RFC 959, 5.4: PASS follows USER",
		"TestConformance"},
	{"home-unavailable", "PASS with the right password, when the account's home folder can't be opened",
		"530 (AuthUser's error), as for a wrong password, then closes the connection",
		"421 Service not available: home folder unavailable, then closes; the log says why, with the folder and the uid",
		"RFC 959, 4.2: 421 service not available; 530 is not logged in (a wrong password)", "TestHomeUnavailableIs421"},

	// Commands the engine refuses or gets wrong.
	{"stru", "STRU F", "502", "200; R and P get 504", "RFC 959, 5.1: STRU F is in the minimum implementation",
		"TestConformance"},
	{"case", "MODE s (any argument in lower case)", "504", "as MODE S", "RFC 959, 5.3: arguments are case-insensitive",
		"TestConformance"},
	{"help", "HELP and HELP <command>", "502", "214 with the commands wharf accepts, or one command's syntax",
		"RFC 959, 4.1.3", "TestConformance"},
	{"stou", "STOU", "502", "150 FILE: <name>, a new name in the current folder, stored atomically",
		"RFC 959, 4.1.3; RFC 1123, 4.1.2.9", "TestStoreUnique"},
	{"allo", "ALLO n R m", "501", "202: no allocation needed", "RFC 959, 4.1.3", "TestConformance"},
	{"rest-syntax", "REST abc, REST -5", "in TYPE I, 550 for abc and 350 for -5", "501", "RFC 3659, 5.2", "TestConformance"},
	{"acct", "ACCT", "502", "202: not needed", "RFC 959, 4.1.1", "TestConformance"},
	{"xcup", "XCUP", "502", "as CDUP", "RFC 775", "TestConformance"},
	{"opts-mlst", "OPTS MLST type;size;", "500, though FEAT lists MLST",
		"200 MLST OPTS with the facts to be sent; MLSD and MLST then send those facts", "RFC 3659, 7.9",
		"TestConformance"},
	{"feat", "FEAT", "MLST without its facts, no TVFS", "MLST type*;size*;...; with the facts wharf gives, and TVFS",
		"RFC 3659, 6 and 7.8", "TestConformance"},
	{"verb-whole", "XQUIT, XABOR (a verb ending in QUIT, ABOR or STAT)", "runs QUIT, ABOR or STAT",
		"500: a verb is matched whole", "RFC 959, 5.3", "TestConformance"},
	{"not-implemented", "an unimplemented command (ADAT, CCC, REIN...)", "502 This command hasn't been implemented !",
		"502 <verb> is not implemented.", "RFC 959, 4.2", "TestConformance"},
	{"telnet", "ABOR sent as TCP urgent data (Python's ftplib), with or without Telnet IP and Synch",
		"the urgent byte (the line's end) is taken out of the stream: no reply, then ABOR and the next command are one unknown command",
		"the Telnet bytes are dropped and ABOR runs (SO_OOBINLINE)", "RFC 959, 4.1.3", "TestAbortAsUrgentData"},
	{"line-length", "a command line over 4,096 bytes", "closes the connection", "500, and the session goes on",
		"RFC 959, 4.2", "TestConformance"},
	{"rnfr", "RNFR for an account that may not rename", "350, then refuses at RNTO", "550 at RNFR",
		"RFC 959, 4.1.3", "TestConformance"},

	// Replies.
	{"stat-path", "STAT <folder>", "every line starts with a literal %s", "ls -l lines, 212 for a folder, 213 for a file",
		"RFC 959, 4.1.3", "TestConformance"},
	{"stat-options", "STAT -la", "450: -la is taken for a file name", "the listing of the current folder",
		"RFC 959, 4.1.3", "TestConformance"},
	{"stat-address", "STAT", "shows the server's listen address as configured", "shows the client's address only",
		"RFC 959, 4.1.3", "TestConformance"},
	{"drop-box-limits", "MKD, STOR or STOU refused at a drop-box limit, or an upload cut at one",
		"MKD: 550 whatever the error; STOR: 552 for ftpserver.ErrStorageExceeded, else 550, never 450",
		"552 for the box's space, entries and depth, 450 for an address's rate, each with the limit's own words",
		"RFC 959, 4.2: 552 exceeded storage allocation, 450 not taken (try again later)", "TestDropBoxFilesPerMinute"},
	{"upload-busy", "REST + STOR or APPE of a part another session of the account is writing (resume.go)",
		"550 for any refusal of the driver but a storage one, never 450", "450 saying an upload to the name is in progress",
		"RFC 959, 4.2: 450 not taken, file busy (try again later)", "TestResumeOnePartPerAccountAndName"},
	{"storage-unavailable", "a command or transfer that fails because the storage (an object store) did not answer, " +
		"timed out or said it was busy or failing (vfs.ErrUnavailable; vfs.ErrStorageFault for a fault the operator must fix)",
		"550 for SIZE, MDTM, CWD and the rest, and for RETR or STOR refused before any data: a permanent refusal, so clients give up",
		"450 (vfs.ErrUnavailable) or 451 (vfs.ErrStorageFault) before any data, also for LIST, NLST, MLSD and MLST; " +
			"a transfer cut mid-way by either is 451 (the local-error row)",
		"RFC 959, 4.2: 4yz transient negative completion, 450 not taken, 451 local error in processing",
		"TestStorageUnavailableIs4xx"},
	{"internals", "a refused command (550 and others)",
		"the driver's error with engine prefixes: Could not access file: driver error: calling GetHandle: open /x: ...",
		"the virtual path and the cause in words: /x: No such file or folder.", "RFC 959, 4.2: text for people",
		"TestConformance"},
	{"list-format", "LIST", "Go's mode letters (dtrwxrwxrwx, Lrwxrwxrwx, urwxr-xr-x), no year for future dates",
		"ls -l's mode letters and dates", "RFC 959, 4.1.3 (clients parse ls -l)", "TestListingsParse"},
	{"mlst-path", "MLST /a/b", "names the entry b", "names it /a/b, as asked", "RFC 3659, 7.2.1", "TestConformance"},
	{"greeting-refused", "the greeting of a session refused (shutting down)", "500", "421", "RFC 959, 4.2",
		"TestGreetingWhileShuttingDown"},
	{"one-write", "every reply", "a write per line, and a new 4 KiB scanner per reply",
		"one write per reply, multi-line too; pipelined replies together; 1xx, 227 and 229 at once",
		"RFC 959, 4.2 (efficiency, not the wire)", "TestRepliesGoOutInOneWrite"},
}
