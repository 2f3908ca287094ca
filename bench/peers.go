package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"wharf/internal/procstat"
)

// wharf's peers: vsftpd, pure-ftpd and ProFTPD, Debian's packages, each
// serving the same tree anonymously (uploads into incoming/, owned by the ftp
// user), with explicit TLS allowed, on loopback ports of its own. A peer that
// can't be set up is skipped with a line in the notes that says why.

// peer is how to find and start one peer.
type peer struct {
	name     string   // as the table shows it
	sbin     string   // its program, /usr/sbin/NAME when installed
	packages []string // Debian packages: the program's first, then modules it loads
	span     int      // passive ports
	start    func(ctx context.Context, p peerBinary, fx *fixtures, pin pinning, passive [2]int) (*target, error)
}

// The peers' passive ranges. wharf keeps 101 ports (passiveSpan), which it
// shares among client addresses; vsftpd gives each session a port of its
// own and fails (500 OOPS) when 128 downloads start at once on 101, so the
// peers get 1,001. pure-ftpd takes at most half its passive ports as
// sessions, and the idle curve's 1,000 point (with its warm-up sessions)
// needs 1,050.
const (
	peerSpan     = 1001
	pureFTPdSpan = 2201
)

var peers = []peer{
	{name: "vsftpd", sbin: "vsftpd", packages: []string{"vsftpd"}, span: peerSpan, start: startVsftpd},
	{name: "pure-ftpd", sbin: "pure-ftpd", packages: []string{"pure-ftpd"}, span: pureFTPdSpan, start: startPureFTPd},
	{name: "ProFTPD", sbin: "proftpd", packages: []string{"proftpd-core", "proftpd-mod-crypto"}, span: peerSpan,
		start: startProFTPD},
}

// startPeers starts every peer it can, each on its range of passive ports,
// and returns notes for the ones it skipped.
func startPeers(ctx context.Context, fx *fixtures, pin pinning, ranges [][2]int) ([]*target, []string) {
	var (
		targets []*target
		notes   []string
	)

	for i, p := range peers {
		if fx.ftpUID < 0 {
			notes = append(notes, p.name+" skipped: there is no \"ftp\" system user for its anonymous sessions")

			continue
		}

		bin, err := findPeer(ctx, p.sbin, p.packages...)
		if err != nil {
			notes = append(notes, p.name+" skipped: "+oneLine(err))

			continue
		}

		soleComm := ""
		if len(procstat.Named(comm(bin.path))) == 0 {
			soleComm = comm(bin.path)
		}

		t, err := p.start(ctx, bin, fx, pin, ranges[i])
		if err != nil {
			notes = append(notes, p.name+" skipped: "+oneLine(err))

			continue
		}

		t.comm, t.soleComm = comm(bin.path), soleComm

		if err := t.probeTLS(ctx, fx); err != nil {
			t.notes = append(t.notes, p.name+": FTPS row skipped, explicit TLS failed: "+oneLine(err))
		} else {
			t.tls = true
		}

		if !t.password {
			t.notes = append(t.notes, p.name+": no password row: the benchmark creates no account for it")
		}

		targets = append(targets, t)
		notes = append(notes, t.notes...)
	}

	return targets, notes
}

// newPeer is a target for a peer on a free control port, with its output in
// the fixtures' folder.
func newPeer(name string, fx *fixtures, p peerBinary) (*target, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}

	slug := strings.ToLower(name)

	return &target{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), dir: fx.dir, now: setup{root: fx.root, tls: true}, env: p.env,
		outPath: filepath.Join(fx.dir, slug+".out"), maxSessions: maxClients}, port, nil
}

// startAndProbe starts t and logs in anonymously.
func startAndProbe(ctx context.Context, t *target) error {
	if err := t.start(ctx); err != nil {
		return err
	}

	if err := t.probe(ctx, "anonymous", "bench@example.com"); err != nil {
		t.stop()

		return fmt.Errorf("%s does not serve: %w%s", t.name, err, t.outTail())
	}

	return nil
}

// vsftpdConfig is vsftpd's configuration: the tree at root anonymously with
// uploads into incoming/, no local users, TLS allowed for anonymous
// sessions, transfers and logins logged to a file. sandboxed=false turns off
// the seccomp sandbox and the namespace isolation, which some containers
// refuse.
func vsftpdConfig(fx *fixtures, root string, port int, passive [2]int, sandboxed bool) string {
	var b strings.Builder

	fmt.Fprintf(&b, `listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
anon_root=%s
no_anon_password=NO
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=NO
anon_other_write_enable=NO
anon_umask=022
pasv_enable=YES
pasv_min_port=%d
pasv_max_port=%d
max_clients=%d
max_per_ip=%d
ftpd_banner=vsftpd bench
dirmessage_enable=NO
secure_chroot_dir=%s
xferlog_enable=YES
vsftpd_log_file=%s
ssl_enable=YES
rsa_cert_file=%s
rsa_private_key_file=%s
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
ssl_ciphers=HIGH
`, port, root, passive[0], passive[1], maxClients, maxPerAddress, fx.empty, filepath.Join(fx.dir, "vsftpd.log"),
		fx.certFile, fx.keyFile)

	if !sandboxed {
		b.WriteString("seccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n")
	}

	return b.String()
}

// startVsftpd starts vsftpd, sandboxed as Debian ships it, or without the
// sandbox when that start fails (some containers refuse it).
func startVsftpd(ctx context.Context, p peerBinary, fx *fixtures, pin pinning, passive [2]int) (*target, error) {
	var lastErr error

	for _, sandboxed := range []bool{true, false} {
		t, port, err := newPeer("vsftpd", fx, p)
		if err != nil {
			return nil, err
		}

		t.procsPerSession, t.sessionKiB = 2, 1024
		t.launch = func(s setup) ([]string, error) {
			conf := filepath.Join(fx.dir, "vsftpd.conf")
			if err := os.WriteFile(conf, []byte(vsftpdConfig(fx, s.root, port, passive, sandboxed)), 0o600); err != nil {
				return nil, err
			}

			return pin.serverCommand(p.path, conf), nil
		}

		if err := startAndProbe(ctx, t); err != nil {
			lastErr = err

			continue
		}

		sandbox := "Debian's defaults for seccomp_sandbox and isolate"
		if !sandboxed {
			sandbox = "seccomp_sandbox=NO, isolate=NO, isolate_network=NO (the sandboxed start failed here: " +
				oneLine(lastErr) + ")"
		}

		t.notes = append(t.notes, fmt.Sprintf("vsftpd %s (%s): anonymous with anon_upload_enable into incoming/, "+
			"ssl_enable with allow_anon_ssl (data TLS not forced), require_ssl_reuse, use_sendfile (default), "+
			"passive %d-%d, max_clients %d, max_per_ip %d, log to a file; %s",
			vsftpdVersion(ctx, p.path), p.from, passive[0], passive[1], maxClients, maxPerAddress, sandbox))

		return t, nil
	}

	return nil, fmt.Errorf("it did not serve: %w", lastErr)
}

// vsftpdVersion asks vsftpd -v, which writes its version to file
// descriptor 0, so standard input is a pipe here.
func vsftpdVersion(ctx context.Context, path string) string {
	r, w, err := os.Pipe()
	if err != nil {
		return "(version unknown)"
	}
	defer r.Close()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, path, "-v")
	cmd.Stdin = w

	runErr := cmd.Run()
	_ = w.Close()

	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	if v := strings.TrimSpace(string(b)); v != "" {
		return strings.TrimPrefix(v, "vsftpd: ")
	}

	if runErr != nil {
		return "(version unknown: " + runErr.Error() + ")"
	}

	return "(version unknown)"
}

// startPureFTPd starts pure-ftpd. It serves anonymous sessions from the ftp
// user's home folder, nowhere else, so it runs in a private mount namespace
// (unshare -m) in which the tree is bind-mounted over that folder; the rest
// of the machine sees no change.
func startPureFTPd(ctx context.Context, p peerBinary, fx *fixtures, pin pinning, passive [2]int) (*target, error) {
	ftp, err := user.Lookup("ftp")
	if err != nil {
		return nil, fmt.Errorf("ftp user: %w", err)
	}

	if st, err := os.Stat(ftp.HomeDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("it serves the ftp user's home, %s, which is not a folder here", ftp.HomeDir)
	}

	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, errors.New("unshare (util-linux) is not installed; pure-ftpd needs a private mount namespace here")
	}

	t, port, err := newPeer("pure-ftpd", fx, p)
	if err != nil {
		return nil, err
	}

	// pure-ftpd takes at most half its passive ports as sessions (so that
	// each may hold two), whatever -c says.
	sessions := min((passive[1]-passive[0]+1)/2, maxClients)
	t.maxSessions, t.procsPerSession, t.sessionKiB = sessions, 2, 1024
	t.launch = func(s setup) ([]string, error) {
		return pin.serverCommand(unshare, "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$1" "$2" && shift 2 && exec "$@"`, "sh", s.root, ftp.HomeDir,
			p.path,
			"--bind", "127.0.0.1,"+strconv.Itoa(port),
			"--anonymousonly",
			"--chrooteveryone",
			"--passiveportrange", fmt.Sprintf("%d:%d", passive[0], passive[1]),
			"--maxclientsnumber", strconv.Itoa(sessions),
			"--maxclientsperip", strconv.Itoa(maxPerAddress),
			"--dontresolve",
			"--limitrecursion", "200000:8",
			"--tls", "1",
			"--certfile", fx.certFile+","+fx.keyFile,
			"--syslogfacility", "none",
			"--altlog", "clf:"+filepath.Join(fx.dir, "pure-ftpd.log"),
		), nil
	}

	if err := startAndProbe(ctx, t); err != nil {
		return nil, err
	}

	t.notes = append(t.notes, fmt.Sprintf("pure-ftpd %s (%s): anonymous only, uploads into incoming/, chroot, "+
		"TLS allowed (--tls 1), --limitrecursion 200000:8 (its default of 10,000 files would cut the LIST rows short), "+
		"passive %d-%d (it takes at most half its passive ports as sessions: %d), --maxclientsperip %d, no DNS, "+
		"transfer log to a file; its anonymous root is the ftp user's home (%s), so it runs in a private mount "+
		"namespace where the tree is bind-mounted there",
		p.version, p.from, passive[0], passive[1], sessions, maxPerAddress, ftp.HomeDir))

	return t, nil
}

// proftpdConfig is ProFTPD's configuration: standalone on 127.0.0.1, the
// tree at root as an <Anonymous> block with uploads into incoming/ only, TLS
// allowed when mod_tls loads (ProFTPD's default requires data connections to
// resume the control connection's TLS session, as vsftpd's
// require_ssl_reuse), logs in the fixtures' folder. Everything else keeps
// ProFTPD's defaults, mod_delay included.
func proftpdConfig(fx *fixtures, root string, port int, passive [2]int, modules string, tlsModule bool) string {
	var b strings.Builder

	fmt.Fprintf(&b, `# written by wharf's benchmark (bench/peers.go)
ServerType standalone
ServerName "ProFTPD bench"
ServerIdent on "ProFTPD bench"
DefaultAddress 127.0.0.1
SocketBindTight on
Port %d
UseIPv6 off
User nobody
Group nogroup
Umask 022
UseReverseDNS off
UseFtpUsers off
WtmpLog off
PidFile %s
ScoreboardFile %s
DelayTable %s
PassivePorts %d %d
MaxInstances %d
MaxClientsPerHost %d
SystemLog %s
TransferLog %s
`, port, filepath.Join(fx.dir, "proftpd.pid"), filepath.Join(fx.dir, "proftpd.scoreboard"),
		filepath.Join(fx.dir, "proftpd.delay"), passive[0], passive[1], maxClients, maxPerAddress,
		filepath.Join(fx.dir, "proftpd.system.log"), filepath.Join(fx.dir, "proftpd.log"))

	if tlsModule {
		fmt.Fprintf(&b, `ModulePath %s
LoadModule mod_tls.c
TLSEngine on
TLSProtocol TLSv1.2 TLSv1.3
TLSRequired off
TLSECCertificateFile %s
TLSECCertificateKeyFile %s
`, modules, fx.certFile, fx.keyFile)
	}

	fmt.Fprintf(&b, `<Anonymous %s>
  User ftp
  Group nogroup
  UserAlias anonymous ftp
  RequireValidShell off
  MaxClients none
  <Limit WRITE>
    DenyAll
  </Limit>
  <Directory incoming>
    <Limit STOR>
      AllowAll
    </Limit>
  </Directory>
</Anonymous>
`, root)

	return b.String()
}

// startProFTPD starts ProFTPD in the foreground (-n).
func startProFTPD(ctx context.Context, p peerBinary, fx *fixtures, pin pinning, passive [2]int) (*target, error) {
	t, port, err := newPeer("ProFTPD", fx, p)
	if err != nil {
		return nil, err
	}

	modules := "/usr/lib/proftpd"
	if p.root != "" {
		modules = filepath.Join(p.root, "usr", "lib", "proftpd")
	}

	_, err = os.Stat(filepath.Join(modules, "mod_tls.so"))
	tlsModule := err == nil

	t.procsPerSession, t.sessionKiB, t.tlsOnDemand = 1, 1024, true
	t.launch = func(s setup) ([]string, error) {
		conf := filepath.Join(fx.dir, "proftpd.conf")
		if err := os.WriteFile(conf, []byte(proftpdConfig(fx, s.root, port, passive, modules, tlsModule && s.tls)), 0o600); err != nil {
			return nil, err
		}

		return pin.serverCommand(p.path, "-n", "-c", conf), nil
	}

	if err := startAndProbe(ctx, t); err != nil {
		return nil, err
	}

	tlsNote := "mod_tls loaded for the FTPS row only (TLS allowed, data connections must resume the control " +
		"connection's session): loaded, it costs each session about 40 ms of CPU and a 0.2 s pause before the " +
		"greeting here, TLS or not, which would decide every other row"
	if !tlsModule {
		tlsNote = "no mod_tls in " + modules + " (proftpd-mod-crypto), so no FTPS"
	}

	t.notes = append(t.notes, fmt.Sprintf("ProFTPD %s (%s): standalone, anonymous <Anonymous> block with STOR allowed "+
		"in incoming/ only, %s, passive %d-%d, MaxInstances %d, MaxClientsPerHost %d, no reverse DNS, "+
		"transfer log to a file, mod_delay on (its default: it pads logins against timing attacks)",
		p.version, p.from, tlsNote, passive[0], passive[1], maxClients, maxPerAddress))

	return t, nil
}
