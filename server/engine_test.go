package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"wharf/internal/ftptest"
)

// This file pins every row of corrections (corrections.go) to the engine's
// own behaviour: each probe runs a bare ftpserverlib v0.32.3, without wharf's
// control layer, and asserts the flaw the row's engine column describes. When
// an engine upgrade fixes a flaw, its probe fails: remove the row and the
// correction it names.

// TestEngineStillNeedsCorrections runs the probe of every row of corrections,
// and fails for a row with no probe or a probe with no row.
func TestEngineStillNeedsCorrections(t *testing.T) {
	t.Parallel()

	rows := make(map[string]bool, len(corrections))

	for _, row := range corrections {
		if rows[row.id] {
			t.Errorf("corrections has two rows %q", row.id)
		}

		rows[row.id] = true
		probe := engineProbes[row.id]

		t.Run(row.id, func(t *testing.T) {
			t.Parallel()

			if probe == nil {
				t.Fatalf("correction %q has no probe in engineProbes: pin what the engine does before correcting it", row.id)
			}

			probe(t)
		})
	}

	for id := range engineProbes {
		if !rows[id] {
			t.Errorf("engineProbes[%q] pins no row of corrections: remove the probe, or add the row", id)
		}
	}
}

// engineProbes holds, by row id, a probe of what the bare engine does. Each
// one runs as the subtest named by its id (see engineNow), in the order of
// corrections.
//
//nolint:thelper // each probe is a subtest body, run by TestEngineStillNeedsCorrections, not a helper
var engineProbes = map[string]func(t *testing.T){
	// Control connection and TLS (RFC 2228, RFC 4217).
	"auth-mechanism": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		wantEngine(t, c, 234, "AUTH GSSAPI")
		c = engineHandshake(t, c) // the engine speaks TLS, whatever mechanism was asked for
		wantEngine(t, c, 200, "NOOP")
	},
	"auth-twice": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		c.Must(234, "AUTH TLS")
		c = engineHandshake(t, c)
		wantEngine(t, c, 234, "AUTH TLS")
		c = engineHandshake(t, c) // TLS inside TLS
		wantEngine(t, c, 200, "NOOP")
	},
	"auth-off": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{tlsOff: true}), nil)
		wantText(t, c, 550, errEngineTLSOff.Error(), "AUTH TLS")
	},
	"pbsz-prot-before-auth": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}}), nil)
		wantEngine(t, c, 200, "PBSZ 0")
		wantEngine(t, c, 200, "PROT P")

		// The next transfer waits for a TLS handshake the client never
		// started, since no AUTH came.
		c.Login("test", "test")
		data := c.DialPasv()
		wantEngine(t, c, 150, "RETR a.txt")

		if line, ok := silent(data, 300*time.Millisecond); !ok {
			engineNow(t, "sends %q on a data connection after PROT P without AUTH", line)
		}

		_ = data.Close()
		c.Read() // the end of the transfer, whatever it says
	},
	"pbsz-value": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		c.Must(234, "AUTH TLS")
		c = engineHandshake(t, c)
		wantText(t, c, 200, "Whatever", "PBSZ 1024")
	},
	"prot-levels": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		c.Must(234, "AUTH TLS")
		c = engineHandshake(t, c)
		c.Must(200, "PBSZ 0")

		for _, level := range []string{"S", "E", "X"} {
			wantEngine(t, c, 200, "PROT "+level)
		}
	},
	"prot-after-pasv": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}}), nil)
		c.Must(234, "AUTH TLS")
		c = engineHandshake(t, c)
		c.Login("test", "test")
		c.Must(200, "PBSZ 0")
		c.Must(200, "PROT C")
		data := c.DialPasv()
		c.Must(200, "PROT P")
		wantEngine(t, c, 150, "LIST")

		listing, err := readData(data, 2*time.Second)
		if err != nil || !strings.Contains(string(listing), "a.txt") {
			engineNow(t, "sends %q (%v) on a PASV data connection made before PROT P", listing, err)
		}

		c.Expect(226)
	},
	"tls-required-data": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{
			tlsRequired: true,
			files:       map[string][]byte{"/a.txt": []byte("a\n")},
		}), nil)
		c.Must(234, "AUTH TLS")
		c = engineHandshake(t, c)
		c.Login("test", "test")
		c.Must(200, "PBSZ 0")
		c.Must(200, "PROT C")
		c.Pasv()
		wantEngine(t, c, 421, "RETR a.txt")
		wantEngine(t, c, 200, "NOOP") // 421 means closing, yet the session goes on
	},
	"tls-required-user": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{tlsRequired: true}), nil)

		if code, text := c.Cmd("USER test"); code != 421 && code != 530 {
			engineNow(t, "answers %d %q to USER in clear where TLS is required", code, text)
		}

		if line, closed := closedByEngine(c); !closed {
			engineNow(t, "keeps the connection open after refusing USER in clear (next: %q)", line)
		}
	},

	// Data connections (RFC 959, RFC 2428, RFC 2577).
	"port-floor": func(t *testing.T) {
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("bounced\n")}})
		wantEngine(t, c, 200, "EPRT |1|127.0.0.1|1000|")
		wantEngine(t, c, 200, "PORT 127,0,0,1,3,232") // port 3*256+232 = 1000

		// Listening on a port below 1024 takes root; without it, the 200
		// above is the probe.
		ln, err := net.Listen("tcp", "127.0.0.1:1000")
		if err != nil {
			t.Logf("cannot listen on 127.0.0.1:1000, so not showing that the engine connects there: %v", err)

			return
		}
		t.Cleanup(func() { _ = ln.Close() })

		if err := c.Text.PrintfLine("RETR a.txt"); err != nil {
			t.Fatalf("send RETR: %v", err)
		}

		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))

		conn, err := ln.Accept()
		if err != nil {
			engineNow(t, "does not connect to port 1000 after PORT to it (%v)", err)
		}
		t.Cleanup(func() { _ = conn.Close() })

		if got := readAllFrom(t, conn); string(got) != "bounced\n" {
			t.Fatalf("port 1000 got %q, want the file", got)
		}

		c.Expect(150)
		c.Expect(226)
	},
	"port-malformed": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantText(t, c, 501, "remote address has a bad format", "PORT 1,2,3")
		wantText(t, c, 501, "remote address has a bad format", "EPRT |1|x|")
	},
	"active-off": func(t *testing.T) {
		c := engineLogin(t, engineOptions{activeOff: true})
		wantEngine(t, c, 421, "PORT 127,0,0,1,200,10")
		wantEngine(t, c, 421, "EPRT |1|127.0.0.1|51210|")
		wantEngine(t, c, 200, "NOOP") // 421 means closing, yet the session goes on
	},
	"family": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantEngine(t, c, 229, "EPSV 2")
		wantEngine(t, c, 501, "EPRT |2|::1|51210|")
	},
	"pasv-ipv6": func(t *testing.T) {
		c := engineLogin(t, engineOptions{ipv6: true})
		wantEngine(t, c, 421, "PASV")
		wantEngine(t, c, 200, "NOOP") // 421, yet the connection stays open
	},
	"epsv-all": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		c.Must(229, "EPSV ALL")
		wantEngine(t, c, 227, "PASV")
		wantEngine(t, c, 200, "PORT 127,0,0,1,200,10")
		wantEngine(t, c, 200, "EPRT |1|127.0.0.1|51210|")
	},
	"no-data-connection": func(t *testing.T) {
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}})
		wantEngine(t, c, 550, "RETR a.txt")
		wantEngine(t, c, 550, "LIST")
	},
	"data-broken": func(t *testing.T) {
		// Far more than the loopback socket buffers hold, so the engine is
		// still writing when the data connection is reset.
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/big.bin": bytes.Repeat([]byte("x"), 16<<20)}})
		data := c.DialPasv()
		c.Must(150, "RETR big.bin")

		if _, err := io.ReadFull(data, make([]byte, 1024)); err != nil {
			t.Fatalf("read the start of big.bin: %v", err)
		}

		_ = data.(*net.TCPConn).SetLinger(0)
		_ = data.Close()

		if code, text := c.Read(); code != 550 || !strings.HasPrefix(text, "Issue during transfer") {
			engineNow(t, "answers %d %q to a data connection reset during RETR", code, text)
		}
	},
	"local-error": func(t *testing.T) {
		c := engineLogin(t, engineOptions{
			files:         map[string][]byte{"/a.bin": bytes.Repeat([]byte("x"), 64<<10)},
			failReadAfter: 10000,
		})
		data := c.DialPasv()
		c.Must(150, "RETR a.bin")

		if got := readAllFrom(t, data); len(got) != 10000 {
			t.Fatalf("got %d bytes before the read error, want 10000", len(got))
		}

		if code, text := c.Read(); code != 550 || !strings.HasPrefix(text, "Issue during transfer") {
			engineNow(t, "answers %d %q to a file read error during RETR", code, text)
		}
	},

	// Login (RFC 959, 4.1.1).
	"pass-retry": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		c.Must(331, "USER test")
		wantEngine(t, c, 530, "PASS wrong")

		if line, closed := closedByEngine(c); !closed {
			engineNow(t, "keeps the connection open after a wrong password (next: %q)", line)
		}
	},
	"home-unavailable": func(t *testing.T) {
		// The driver's AuthUser fails for the right password, as wharf's
		// would when the home can't be opened: the engine says 530.
		c := ftptest.Dial(t, startEngine(t, engineOptions{authErr: errEngineHome}), nil)
		c.Must(331, "USER test")
		wantEngine(t, c, 530, "PASS test")
	},
	"pass-without-user": func(t *testing.T) {
		// The right password: only the missing USER can make it fail. The
		// engine then closes the connection, as after any wrong password.
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)
		wantEngine(t, c, 530, "PASS test")
	},

	// Commands the engine refuses or gets wrong.
	"stru": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 502, "STRU F")
	},
	"case": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 504, "MODE s")
	},
	"help": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantEngine(t, c, 502, "HELP")
		wantEngine(t, c, 502, "HELP RETR")
	},
	"stou": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 502, "STOU")
	},
	"allo": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 501, "ALLO 100 R 10")
	},
	"rest-syntax": func(t *testing.T) {
		// In TYPE I, as wharf's default type; in TYPE A the engine answers
		// 501 to any valid REST.
		c := engineLogin(t, engineOptions{})
		wantEngine(t, c, 550, "REST abc")
		wantEngine(t, c, 350, "REST -5")
	},
	"acct": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 502, "ACCT x")
	},
	"xcup": func(t *testing.T) {
		wantEngine(t, engineLogin(t, engineOptions{}), 502, "XCUP")
	},
	"opts-mlst": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantEngine(t, c, 500, "OPTS MLST type;size;")

		if features := featLines(t, c); !slices.Contains(features, "MLST") {
			engineNow(t, "lists features %q, without a bare MLST", features)
		}
	},
	"feat": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})

		features := featLines(t, c)
		if !slices.Contains(features, "MLST") || slices.Contains(features, "TVFS") {
			engineNow(t, "lists features %q: MLST with its facts, or TVFS", features)
		}
	},
	"verb-whole": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantEngine(t, c, 226, "XABOR")
		wantEngine(t, c, 211, "XSTAT")
		wantEngine(t, c, 221, "XQUIT")

		if line, closed := closedByEngine(c); !closed {
			engineNow(t, "keeps the connection open after XQUIT (next: %q)", line)
		}
	},
	"not-implemented": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})

		for _, verb := range []string{"ADAT", "CCC", "REIN"} {
			wantText(t, c, 502, "This command hasn't been implemented !", verb)
		}
	},
	"telnet": func(t *testing.T) {
		// Python's ftplib sends "ABOR\r\n" as urgent data: Linux takes its
		// last byte out of the stream, so the engine reads "ABOR\r" and
		// waits for the end of the line.
		c := engineLogin(t, engineOptions{})
		sendUrgent(t, c.Conn, []byte("ABOR\r\n"))

		if line, ok := silent(c.Conn, 300*time.Millisecond); !ok {
			engineNow(t, "answers %q to ABOR sent as urgent data", line)
		}

		// The next command ends the line: "ABOR\rNOOP" is an unknown command.
		wantEngine(t, c, 500, "NOOP")
	},
	"line-length": func(t *testing.T) {
		c := ftptest.Dial(t, startEngine(t, engineOptions{}), nil)

		if _, err := c.Conn.Write([]byte("NOOP " + strings.Repeat("x", 5000) + "\r\n")); err != nil {
			t.Fatalf("send a long line: %v", err)
		}

		if line, closed := closedByEngine(c); !closed {
			engineNow(t, "answers %q to a 5,005-byte line", line)
		}
	},
	"rnfr": func(t *testing.T) {
		c := engineLogin(t, engineOptions{readOnly: true, files: map[string][]byte{"/a.txt": []byte("a\n")}})
		wantEngine(t, c, 350, "RNFR a.txt")
		wantEngine(t, c, 550, "RNTO b.txt")
	},

	// Replies.
	"stat-path": func(t *testing.T) {
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}})
		wantText(t, c, 212, "\n %s-rw-r--r-- 1 ftp ftp", "STAT /")
	},
	"stat-options": func(t *testing.T) {
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}})
		wantEngine(t, c, 450, "STAT -la")
	},
	"stat-address": func(t *testing.T) {
		addr := startEngine(t, engineOptions{})
		c := ftptest.Dial(t, addr, nil)
		c.Login("test", "test")
		wantText(t, c, 211, "Connected to "+addr+" from ", "STAT")
	},
	"drop-box-limits": func(t *testing.T) {
		// A storage limit: STOR gets 552, MKD 550 all the same.
		c := engineLogin(t, engineOptions{refuseCreate: ftpserver.ErrStorageExceeded})
		wantEngine(t, c, 550, "MKD full")
		c.DialPasv()
		wantEngine(t, c, 552, "STOR full.txt")

		// Any other refusal, a rate for one, is 550: never 450.
		c = engineLogin(t, engineOptions{refuseCreate: errEngineRate})
		wantEngine(t, c, 550, "MKD slow")
		c.DialPasv()
		wantEngine(t, c, 550, "STOR slow.txt")
	},
	"upload-busy": func(t *testing.T) {
		// A file busy with another upload is a refusal like any other: 550.
		c := engineLogin(t, engineOptions{refuseCreate: errEngineBusy})
		c.DialPasv()
		wantEngine(t, c, 550, "APPE busy.txt")
	},
	"storage-unavailable": func(t *testing.T) {
		// A storage that may answer again later is refused like a missing file.
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a.txt": []byte("a\n")}, failStat: errEngineStore})
		for _, cmd := range []string{"SIZE a.txt", "MDTM a.txt", "CWD /"} {
			wantEngine(t, c, 550, cmd)
		}

		c.DialPasv()
		wantText(t, c, 550, "Could not access file", "RETR a.txt")
	},
	"internals": func(t *testing.T) {
		c := engineLogin(t, engineOptions{})
		wantText(t, c, 550, "Could not access file: driver error: calling GetHandle: open /missing.txt:", "RETR missing.txt")
	},
	"list-format": func(t *testing.T) {
		now := time.Now()
		future := now.AddDate(1, 0, 0)
		c := engineLogin(t, engineOptions{entries: []os.FileInfo{
			engineEntry{"sticky", fs.ModeDir | fs.ModeSticky | 0o777, now},
			engineEntry{"setuid", fs.ModeSetuid | 0o755, now},
			engineEntry{"link", fs.ModeSymlink | 0o777, now},
			engineEntry{"future", 0o644, future},
		}})
		data := c.DialPasv()
		c.Must(150, "LIST")
		listing := string(readAllFrom(t, data))
		c.Expect(226)

		for _, want := range []string{
			"dtrwxrwxrwx 1 ftp ftp", "urwxr-xr-x 1 ftp ftp", "Lrwxrwxrwx 1 ftp ftp",
			future.Format("Jan _2 15:04") + " future", // a time, not the year
		} {
			if !strings.Contains(listing, want) {
				engineNow(t, "lists %q, without %q", listing, want)
			}
		}
	},
	"mlst-path": func(t *testing.T) {
		c := engineLogin(t, engineOptions{files: map[string][]byte{"/a/b": []byte("b\n")}})

		text := wantEngine(t, c, 250, "MLST /a/b")
		if !strings.Contains(text, "; b\n") {
			engineNow(t, "answers %q to MLST /a/b, not naming the entry b", text)
		}
	},
	"greeting-refused": func(t *testing.T) {
		addr := startEngine(t, engineOptions{refuse: "shutting down"})

		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}

		if code, text := ftptest.NewCtl(t, conn).Read(); code != 500 {
			engineNow(t, "greets %d %q when ClientConnected refuses", code, text)
		}
	},
	"pasv-bind": func(t *testing.T) {
		// Multiplexed or not, the engine's passive port listens on every
		// interface; multiplexed, it still listens after the transfer.
		for _, multiplex := range []bool{false, true} {
			c := engineLogin(t, engineOptions{multiplex: multiplex, files: map[string][]byte{"/a.txt": []byte("a\n")}})
			_, port, _ := net.SplitHostPort(c.Pasv())

			other, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.2", port), 2*time.Second)
			if err != nil {
				engineNow(t, "listens for PASV on the control address only (multiplexing %v): %v", multiplex, err)
			}
			_ = other.Close()

			if !multiplex {
				continue
			}

			data, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}

			c.Must(150, "RETR a.txt")
			_, _ = readData(data, 2*time.Second)
			c.Expect(226)

			again, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 2*time.Second)
			if err != nil {
				engineNow(t, "closes a multiplexed passive port after its transfer: %v", err)
			}
			_ = again.Close()
		}
	},
	"one-write": func(t *testing.T) {
		var writes atomic.Int64

		c := ftptest.Dial(t, startEngine(t, engineOptions{writes: &writes}), nil)
		before := writes.Load()
		c.Must(211, "FEAT")

		if n := writes.Load() - before; n <= 1 {
			engineNow(t, "sends FEAT's reply in %d write", n)
		}
	},
}

// engineOptions shape a bare engine for one probe.
type engineOptions struct {
	files         map[string][]byte // the client's files, by absolute path
	entries       []os.FileInfo     // when set, what ReadDir returns for every folder
	readOnly      bool              // the client may read, not rename or write
	failReadAfter int               // when > 0, downloads fail after this many bytes
	tlsRequired   bool              // Settings.TLSRequired = MandatoryEncryption
	tlsOff        bool              // GetTLSConfig fails
	activeOff     bool              // Settings.DisableActiveMode
	refuse        string            // when set, ClientConnected refuses every session with it
	writes        *atomic.Int64     // when set, counts Write calls on control connections
	ipv6          bool              // listen on [::1] rather than 127.0.0.1
	refuseCreate  error             // when set, MKD and every upload fail with it
	failStat      error             // when set, Stat and every transfer fail with it
	multiplex     bool              // Settings.PassiveTransferPortMultiplexing, as wharf once set it
	authErr       error             // when set, AuthUser fails with it even for the right password
}

var (
	errEngineLogin   = errors.New("login incorrect")
	errEngineTLSOff  = errors.New("TLS is off in this probe")
	errEngineRefused = errors.New("session refused")
	errEngineHome    = errors.New("home folder unavailable")
	errEngineDisk    = errors.New("disk read failed")
	errEngineRate    = errors.New("too many uploads")
	errEngineBusy    = errors.New("an upload to this name is in progress")
	errEngineStore   = errors.New("storage unavailable, try again later")
)

// startEngine runs ftpserverlib on 127.0.0.1 (or ::1) with only the drivers
// below, and returns its address. Its sessions end when the test does.
func startEngine(t *testing.T, opts engineOptions) string {
	t.Helper()

	host := "127.0.0.1:0"
	if opts.ipv6 {
		host = "[::1]:0"
	}

	raw, err := net.Listen("tcp", host)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}

	ln := &engineListener{Listener: raw, writes: opts.writes}

	mem := afero.NewMemMapFs()
	for name, data := range opts.files {
		if err := mem.MkdirAll(path.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}

		if err := afero.WriteFile(mem, name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	certPEM, keyPEM := ftptest.SelfSigned(t)

	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}

	lo, hi := enginePassiveRange()
	settings := &ftpserver.Settings{
		Listener:                 ln,
		ListenAddr:               raw.Addr().String(), // what STAT shows, as wharf sets it
		PassiveTransferPortRange: ftpserver.PortRange{Start: lo, End: hi},
		IdleTimeout:              30,
		ConnectionTimeout:        5,
		// As wharf sets them: no privileged source port, binary by default.
		ActiveTransferPortNon20: true,
		DefaultTransferType:     ftpserver.TransferTypeBinary,
		DisableActiveMode:       opts.activeOff,
		// With a port range, as wharf had it before it opened passive ports itself.
		PassiveTransferPortMultiplexing: opts.multiplex,
	}

	if opts.tlsRequired {
		settings.TLSRequired = ftpserver.MandatoryEncryption
	}

	driver := &engineDriver{
		opts:     opts,
		settings: settings,
		fs:       mem,
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		sessions: &ln.sessions,
	}

	if opts.readOnly {
		driver.fs = afero.NewReadOnlyFs(mem)
	}

	srv := ftpserver.NewFtpServer(driver)
	srv.Logger = slog.New(slog.DiscardHandler)

	if err := srv.Listen(); err != nil {
		t.Fatalf("engine listen: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	t.Cleanup(func() {
		// Stop closes the listener only: the sessions end when their
		// connections do.
		if err := srv.Stop(); err != nil {
			t.Errorf("engine stop: %v", err)
		}

		if err := <-served; err != nil {
			t.Errorf("engine serve: %v", err)
		}

		ln.closeAll()

		ended := make(chan struct{})
		go func() { ln.sessions.Wait(); close(ended) }()

		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Errorf("engine sessions still running 5 s after their connections closed")
		}
	})

	return raw.Addr().String()
}

// nextEnginePassive hands each bare engine its own 20 passive ports in
// 25000-25999, apart from passiveRange's (20000-24999) and from cmd/wharf's
// test servers (27000 and up), which run at the same time.
var nextEnginePassive atomic.Int32

func enginePassiveRange() (int, int) {
	start := 25000 + int(nextEnginePassive.Add(1)%50)*20

	return start, start + 19
}

// engineLogin starts a bare engine and logs in to it.
func engineLogin(t *testing.T, opts engineOptions) *ftptest.Ctl {
	t.Helper()

	c := ftptest.Dial(t, startEngine(t, opts), nil)
	c.Login("test", "test")

	return c
}

// engineListener is the engine's Settings.Listener: it keeps every control
// connection, to close them when the test ends, and counts their writes when
// asked to.
type engineListener struct {
	net.Listener
	writes   *atomic.Int64
	sessions sync.WaitGroup // one per accepted connection, done in ClientDisconnected

	mu    sync.Mutex
	conns []net.Conn
}

func (l *engineListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err // as is: the engine's Serve recognises a closed listener
	}

	l.mu.Lock()
	l.conns = append(l.conns, conn)
	l.mu.Unlock()
	l.sessions.Add(1)

	if l.writes != nil {
		return &tallyConn{Conn: conn, writes: l.writes}, nil
	}

	return conn, nil
}

func (l *engineListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()

	for _, conn := range l.conns {
		_ = conn.Close()
	}
}

// tallyConn adds every Write call that reaches the socket to a shared count.
type tallyConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *tallyConn) Write(b []byte) (int, error) {
	c.writes.Add(1)

	return c.Conn.Write(b)
}

// engineDriver is the least a MainDriver can be: one user, test/test.
type engineDriver struct {
	opts     engineOptions
	settings *ftpserver.Settings
	fs       afero.Fs
	tls      *tls.Config
	sessions *sync.WaitGroup
}

var _ ftpserver.MainDriver = (*engineDriver)(nil)

func (d *engineDriver) GetSettings() (*ftpserver.Settings, error) { return d.settings, nil }

func (d *engineDriver) ClientConnected(ftpserver.ClientContext) (string, error) {
	if d.opts.refuse != "" {
		return d.opts.refuse, errEngineRefused
	}

	return "bare engine ready", nil
}

func (d *engineDriver) ClientDisconnected(ftpserver.ClientContext) { d.sessions.Done() }

func (d *engineDriver) AuthUser(_ ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	if user != "test" || pass != "test" {
		return nil, errEngineLogin
	}

	if d.opts.authErr != nil {
		return nil, d.opts.authErr
	}

	return &engineClient{Fs: d.fs, opts: &d.opts}, nil
}

func (d *engineDriver) GetTLSConfig() (*tls.Config, error) {
	if d.opts.tlsOff {
		return nil, errEngineTLSOff
	}

	return d.tls, nil
}

// engineClient is an afero.Fs with the two extensions wharf's driver has:
// GetHandle for transfers and ReadDir for listings.
type engineClient struct {
	afero.Fs
	opts *engineOptions
}

var (
	_ ftpserver.ClientDriverExtentionFileTransfer = (*engineClient)(nil)
	_ ftpserver.ClientDriverExtensionFileList     = (*engineClient)(nil)
)

func (c *engineClient) GetHandle(name string, flags int, _ int64) (ftpserver.FileTransfer, error) {
	if c.opts.refuseCreate != nil && flags&os.O_CREATE != 0 {
		return nil, c.opts.refuseCreate
	}

	if c.opts.failStat != nil {
		return nil, c.opts.failStat
	}

	f, err := c.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, err // as is: the engine wraps it
	}

	if c.opts.failReadAfter > 0 && flags == os.O_RDONLY {
		return &brokenFile{FileTransfer: f, left: c.opts.failReadAfter}, nil
	}

	return f, nil
}

func (c *engineClient) Stat(name string) (os.FileInfo, error) {
	if c.opts.failStat != nil {
		return nil, c.opts.failStat
	}

	return c.Fs.Stat(name) //nolint:wrapcheck // as is: the engine wraps it
}

func (c *engineClient) Mkdir(name string, perm os.FileMode) error {
	if c.opts.refuseCreate != nil {
		return c.opts.refuseCreate
	}

	return c.Fs.Mkdir(name, perm) //nolint:wrapcheck // as is: the engine wraps it
}

func (c *engineClient) ReadDir(name string) ([]os.FileInfo, error) {
	if c.opts.entries != nil {
		return c.opts.entries, nil
	}

	return afero.ReadDir(c.Fs, name)
}

// brokenFile reads left bytes, then fails as a broken disk would.
type brokenFile struct {
	ftpserver.FileTransfer
	left int
}

func (f *brokenFile) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errEngineDisk
	}

	n, err := f.FileTransfer.Read(p[:min(len(p), f.left)])
	f.left -= n

	return n, err
}

// engineEntry is a folder entry with any mode and time, for ReadDir.
type engineEntry struct {
	name    string
	mode    fs.FileMode
	modTime time.Time
}

func (e engineEntry) Name() string       { return e.name }
func (e engineEntry) Size() int64        { return 0 }
func (e engineEntry) Mode() fs.FileMode  { return e.mode }
func (e engineEntry) ModTime() time.Time { return e.modTime }
func (e engineEntry) IsDir() bool        { return e.mode.IsDir() }
func (e engineEntry) Sys() any           { return nil }

// engineNow fails a probe: the engine no longer does what the row, named by
// the probe's subtest, says.
func engineNow(t *testing.T, format string, args ...any) {
	t.Helper()

	row := path.Base(t.Name())
	t.Fatalf("engine now %s: wharf's correction %q may no longer be needed (see corrections.go)",
		fmt.Sprintf(format, args...), row)
}

// wantEngine sends cmd and fails the probe unless the engine answers code.
func wantEngine(t *testing.T, c *ftptest.Ctl, code int, cmd string) string {
	t.Helper()

	got, text := c.Cmd("%s", cmd)
	if got != code {
		engineNow(t, "answers %d %q to %s", got, text, cmd)
	}

	return text
}

// wantText is wantEngine, with a text the reply must contain.
func wantText(t *testing.T, c *ftptest.Ctl, code int, part, cmd string) {
	t.Helper()

	got, text := c.Cmd("%s", cmd)
	if got != code || !strings.Contains(text, part) {
		engineNow(t, "answers %d %q to %s", got, text, cmd)
	}
}

// engineHandshake makes the TLS handshake that follows a 234 and returns the
// control connection inside it.
func engineHandshake(t *testing.T, c *ftptest.Ctl) *ftptest.Ctl {
	t.Helper()

	conn := tls.Client(c.Conn, clientTLS())
	if err := conn.HandshakeContext(t.Context()); err != nil {
		engineNow(t, "makes no TLS handshake after 234 (%v)", err)
	}

	return ftptest.NewCtl(t, conn)
}

// featLines sends FEAT and returns the features it lists.
func featLines(t *testing.T, c *ftptest.Ctl) []string {
	t.Helper()

	text := c.Must(211, "FEAT")
	lines := strings.Split(text, "\n")
	features := make([]string, 0, len(lines))

	for _, line := range lines[1 : len(lines)-1] {
		features = append(features, strings.TrimSpace(line))
	}

	return features
}

// closedByEngine reports whether the server closes c within a second, or
// else the line it sent.
func closedByEngine(c *ftptest.Ctl) (string, bool) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(time.Second))
	defer func() { _ = c.Conn.SetReadDeadline(time.Now().Add(30 * time.Second)) }()

	line, err := c.Text.ReadLine()

	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return line, false
	}

	return "", true
}

// silent reports whether nothing arrives on conn for within, or else what
// arrived.
func silent(conn net.Conn, within time.Duration) (string, bool) {
	_ = conn.SetReadDeadline(time.Now().Add(within))
	defer func() { _ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) }()

	buf := make([]byte, 512)
	n, err := conn.Read(buf)

	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		return "", true
	}

	return string(buf[:n]), false
}

// readData reads a data connection to its end, for at most within.
func readData(conn net.Conn, within time.Duration) ([]byte, error) {
	_ = conn.SetReadDeadline(time.Now().Add(within))

	return io.ReadAll(conn)
}

// sendUrgent sends b as TCP urgent data (MSG_OOB), as Python's ftplib sends ABOR.
func sendUrgent(t *testing.T, conn net.Conn, b []byte) {
	t.Helper()

	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	var sendErr error

	if err := raw.Write(func(fd uintptr) bool {
		sendErr = syscall.Sendto(int(fd), b, syscall.MSG_OOB, nil)

		return !errors.Is(sendErr, syscall.EAGAIN)
	}); err != nil {
		t.Fatal(err)
	}

	if sendErr != nil {
		t.Fatalf("send %q as urgent data: %v", b, sendErr)
	}
}
