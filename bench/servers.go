package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wharf/internal/procstat"
)

// Starting, probing and stopping the two servers, and reading what they cost
// from /proc.

const vsftpdPath = "/usr/sbin/vsftpd"

// passiveSpan is how many passive ports each server gets: 101, like
// wharf's default 50000-50100, since the engine's port picking cost grows
// with the range.
const passiveSpan = 101

// target is one running server under test.
type target struct {
	name     string // "wharf" or "vsftpd"
	addr     string // control address, 127.0.0.1:port
	admin    string // wharf's admin listener (pprof), "" when off
	pid      int
	argv     []string // the command line, for restarts
	dir      string   // its working directory
	cmd      *exec.Cmd
	done     chan struct{}   // closed when the process has exited
	outPath  string          // the process's stdout and stderr
	tls      bool            // explicit FTPS works
	password bool            // a password account exists
	notes    []string        // how this server was set up, for the report
	exits    *procstat.Exits // exit reports of its processes; nil without taskstats

	// soleComm, when set, is a command name only this server's processes
	// had when it started: every exit report with that name is its own,
	// even of a session process whose parent had already gone.
	soleComm string
}

// pinning says how processes are placed on cores.
type pinning struct {
	taskset string // path of taskset; "" runs unpinned
	note    string
}

// serverCommand returns the command line that starts argv on the server's core.
func (p pinning) serverCommand(argv ...string) []string {
	if p.taskset == "" {
		return argv
	}

	return append([]string{p.taskset, "-c", "0"}, argv...)
}

// setUpPinning pins this process, all its threads, to core 1 and limits Go
// to one P there; servers get core 0. Without taskset or a second core,
// everything runs unpinned.
func setUpPinning(ctx context.Context, ncpu int) pinning {
	path, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{note: "unpinned: taskset (util-linux) is not installed"}
	}

	if ncpu < 2 {
		return pinning{note: "unpinned: only one CPU"}
	}

	out, err := exec.CommandContext(ctx, path, "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return pinning{note: fmt.Sprintf("unpinned: taskset failed: %v: %s", err, bytes.TrimSpace(out))}
	}

	return pinning{taskset: path, note: "server on core 0, client (this program, GOMAXPROCS=1) on core 1, with taskset"}
}

// portRanges picks a free control port and a free range of passiveSpan
// passive ports for each of n servers, below the kernel's ephemeral range so
// that client sockets never hold one of them.
func portRanges(n int) ([][2]int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}

	const floor = 10000
	if lo-floor < (n+2)*passiveSpan {
		return nil, fmt.Errorf("no room for passive ports below the ephemeral range (starts at %d)", lo)
	}

	var out [][2]int

	base := floor + rand.IntN(lo-floor-(n+1)*passiveSpan) //nolint:gosec // a starting point, not a secret
	for attempt := 0; attempt < 200 && len(out) < n; attempt++ {
		if base+passiveSpan > lo {
			base = floor
		}

		if rangeFree(base, base+passiveSpan-1) {
			out = append(out, [2]int{base, base + passiveSpan - 1})
		}

		base += passiveSpan
	}

	if len(out) < n {
		return nil, errors.New("no free range of passive ports found")
	}

	return out, nil
}

func rangeFree(lo, hi int) bool {
	for p := lo; p <= hi; p++ {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}

		_ = l.Close()
	}

	return true
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port, nil
}

// startWharf writes wharf's configuration and starts it: the shared tree
// anonymously (uploads into incoming/), one read-write account with a cost-10
// bcrypt hash, explicit TLS, atomic uploads. Limits stay on, sized for the
// scenarios (200 idle sessions from one address).
func startWharf(ctx context.Context, bin string, fx *fixtures, pin pinning, passive [2]int, profile bool) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}

	var admin string

	if profile {
		ap, err := freePort()
		if err != nil {
			return nil, err
		}

		admin = "127.0.0.1:" + strconv.Itoa(ap)
	}

	conf := filepath.Join(fx.dir, "wharf.toml")
	text := fmt.Sprintf(`# written by wharf's benchmark (bench/servers.go)
listen = "127.0.0.1:%d"
passive_ports = [%d, %d]
max_clients = 1000
max_clients_per_ip = 256
banner = "wharf bench"
upload_mode = "atomic"
shutdown_timeout = "2s"

[log]
level = "info"
file = %q

[tls]
mode = "explicit"
cert_file = %q
key_file = %q
# The password row logs in in clear, as it does with vsftpd (whose
# force_local_logins_ssl is off here): allow it for the account.
clear_text_accounts = true

[anonymous]
enabled = true
root = %q
upload_dir = "incoming"
max_upload_size = "4GiB"
# The drop box's byte limits suit a public box; the STOR row stores GiBs
# from one address (three 1 GiB uploads a round), each removed after its
# check. The other drop box limits keep their defaults.
upload_quota = "0"
upload_bytes_per_hour = "0"

[admin]
listen = %q
pprof = %t

[[users]]
name = %q
password = %q
home = %q
access = "read-write"
`, port, passive[0], passive[1], filepath.Join(fx.dir, "wharf.log"), fx.certFile, fx.keyFile,
		fx.root, admin, profile, fx.user, fx.hash, fx.home)

	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write wharf config: %w", err)
	}

	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("wharf binary: %w", err)
	}

	t := &target{name: "wharf", addr: "127.0.0.1:" + strconv.Itoa(port), admin: admin, password: true,
		outPath: filepath.Join(fx.dir, "wharf.out")}
	t.notes = append(t.notes, fmt.Sprintf("wharf: %s, anonymous root plus upload_dir, one read-write account (bcrypt "+
		"cost 10), tls explicit, upload_mode atomic, no upload_quota or upload_bytes_per_hour, passive %d-%d, "+
		"max_clients_per_ip 256, log level info to a file",
		bin, passive[0], passive[1]))

	if err := t.start(ctx, fx.dir, pin.serverCommand(abs, "-config", conf)); err != nil {
		return nil, err
	}

	if err := t.probe(ctx, "anonymous", "bench@example.com"); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf does not serve: %w%s", err, t.outTail())
	}

	if err := t.probe(ctx, fx.user, fx.pass); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf refuses the password account: %w%s", err, t.outTail())
	}

	if err := t.probeTLS(ctx, fx); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf does not serve FTPS: %w%s", err, t.outTail())
	}

	t.tls = true

	return t, nil
}

// vsftpdConfig is vsftpd's configuration: the same tree anonymously with
// uploads into incoming/ (owned by the ftp user), no local users, TLS
// allowed for anonymous sessions, transfers and logins logged to a file.
// sandboxed=false turns off the seccomp sandbox and the namespace isolation,
// which some containers refuse.
func vsftpdConfig(fx *fixtures, port int, passive [2]int, sandboxed bool) string {
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
max_clients=1000
max_per_ip=256
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
`, port, fx.root, passive[0], passive[1], fx.empty, filepath.Join(fx.dir, "vsftpd.log"), fx.certFile, fx.keyFile)

	if !sandboxed {
		b.WriteString("seccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n")
	}

	return b.String()
}

// startVsftpd starts Debian's vsftpd on the shared tree. It returns nil and
// a note when vsftpd is not installed or does not serve.
func startVsftpd(ctx context.Context, fx *fixtures, pin pinning, passive [2]int) (*target, string) {
	if _, err := os.Stat(vsftpdPath); err != nil {
		return nil, "vsftpd is not installed (" + vsftpdPath + " missing; apt-get install vsftpd): its columns are empty"
	}

	if fx.ftpUID < 0 {
		return nil, "vsftpd skipped: there is no \"ftp\" system user for its anonymous sessions"
	}

	soleComm := ""
	if len(procstat.Named("vsftpd")) == 0 {
		soleComm = "vsftpd"
	}

	var lastErr error

	for _, sandboxed := range []bool{true, false} {
		port, err := freePort()
		if err != nil {
			return nil, "vsftpd skipped: " + err.Error()
		}

		conf := filepath.Join(fx.dir, "vsftpd.conf")
		if err := os.WriteFile(conf, []byte(vsftpdConfig(fx, port, passive, sandboxed)), 0o600); err != nil {
			return nil, "vsftpd skipped: " + err.Error()
		}

		t := &target{name: "vsftpd", addr: "127.0.0.1:" + strconv.Itoa(port), outPath: filepath.Join(fx.dir, "vsftpd.out"),
			soleComm: soleComm}
		if err := t.start(ctx, fx.dir, pin.serverCommand(vsftpdPath, conf)); err != nil {
			return nil, "vsftpd skipped: " + err.Error()
		}

		if err := t.probe(ctx, "anonymous", "bench@example.com"); err != nil {
			lastErr = fmt.Errorf("%w%s", err, t.outTail())
			t.stop()

			continue
		}

		sandbox := "Debian's defaults for seccomp_sandbox and isolate"
		if !sandboxed {
			sandbox = "seccomp_sandbox=NO, isolate=NO, isolate_network=NO (the sandboxed start failed here: " +
				oneLine(lastErr) + ")"
		}

		t.notes = append(t.notes, fmt.Sprintf("vsftpd %s: anonymous with anon_upload_enable into incoming/ "+
			"(owned by ftp), ssl_enable with allow_anon_ssl (data TLS not forced), require_ssl_reuse, "+
			"use_sendfile (default), passive %d-%d, max_per_ip 256, log to a file; %s",
			vsftpdVersion(ctx), passive[0], passive[1], sandbox))
		t.notes = append(t.notes, "vsftpd: no password row: its password logins need system accounts "+
			"through PAM, which this benchmark does not create")

		if err := t.probeTLS(ctx, fx); err != nil {
			t.notes = append(t.notes, "vsftpd: FTPS row skipped, explicit TLS failed: "+oneLine(err))
		} else {
			t.tls = true
		}

		return t, ""
	}

	return nil, "vsftpd skipped: it did not serve: " + oneLine(lastErr)
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}

	return strings.Join(strings.Fields(err.Error()), " ")
}

// start runs argv in its own process group. The process gets SIGKILL if
// this program dies first, and start waits until the control port greets.
func (t *target) start(ctx context.Context, dir string, argv []string) error {
	out, err := os.OpenFile(t.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s output: %w", t.name, err)
	}
	defer out.Close()

	t.argv, t.dir = argv, dir

	// Not CommandContext: the process outlives start's context; stop ends it.
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec,noctx // our own binaries, stopped by stop()
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", t.name, err)
	}

	t.cmd = cmd
	t.pid = cmd.Process.Pid
	t.done = make(chan struct{})

	go func() {
		_ = cmd.Wait()
		close(t.done)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dial(ctx, t.addr)
		if err == nil {
			c.Close()

			return nil
		}

		select {
		case <-t.done:
			return fmt.Errorf("%s exited at start%s", t.name, t.outTail())
		case <-ctx.Done():
			t.stop()

			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}

		if time.Now().After(deadline) {
			t.stop()

			return fmt.Errorf("%s does not greet on %s after 10s: %w%s", t.name, t.addr, err, t.outTail())
		}
	}
}

// restart stops the server and starts it again with the same command line,
// so that a measurement sees a fresh process.
func (t *target) restart(ctx context.Context) error {
	t.stop()

	if err := t.start(ctx, t.dir, t.argv); err != nil {
		return err
	}

	return t.probe(ctx, "anonymous", "bench@example.com")
}

// probe logs in and lists the root over a data connection.
func (t *target) probe(ctx context.Context, user, pass string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	c, err := dial(ctx, t.addr)
	if err != nil {
		return err
	}
	defer c.Close()

	if err := login(c, user, pass); err != nil {
		return err
	}

	buf := make([]byte, 1<<20)
	if _, err := c.List("/", buf); err != nil {
		return err
	}

	return c.Quit()
}

// probeTLS does the same over explicit FTPS with protected data.
func (t *target) probeTLS(ctx context.Context, fx *fixtures) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	c, err := dial(ctx, t.addr)
	if err != nil {
		return err
	}
	defer c.Close()

	if err := c.StartTLS(fx.clientTLS()); err != nil {
		return err
	}

	if err := login(c, "anonymous", "bench@example.com"); err != nil {
		return err
	}

	if err := c.ProtectData(); err != nil {
		return err
	}

	buf := make([]byte, 1<<20)
	if _, err := c.List("/", buf); err != nil {
		return err
	}

	return c.Quit()
}

// exited reports whether the server process has ended.
func (t *target) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to five seconds, then kills the process group
// it started.
func (t *target) stop() {
	if t.cmd == nil || t.exited() {
		return
	}

	_ = syscall.Kill(t.pid, syscall.SIGTERM)

	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-t.pid, syscall.SIGKILL)
		<-t.done
	}

	// Session processes left in the group (vsftpd forks them) go too.
	_ = syscall.Kill(-t.pid, syscall.SIGKILL)
}

// outTail is the end of the process's output, for error messages.
func (t *target) outTail() string {
	b, err := os.ReadFile(t.outPath) //nolint:gosec // our own file in the temp folder
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}

	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}

	return "\n" + t.name + " said: " + string(bytes.TrimSpace(b))
}

// settle waits until the server has no process below it, so every session
// process has exited and been reaped: its CPU time then sits in the master's
// cumulative children fields. wharf has no children and returns at once.
func (t *target) settle(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := procstat.Descendants(t.pid)
		if len(kids) == 0 {
			return nil
		}

		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has %d session processes after 10s", t.name, len(kids))
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// cpuSnapshot is the CPU time used so far by the server's process tree.
type cpuSnapshot struct {
	tasks  map[int]float64 // run time of each live task (thread) of the tree, by task ID, in seconds
	reaped float64         // cumulative children fields, used only without exit reports
}

func (s cpuSnapshot) sum() float64 {
	total := s.reaped
	for _, v := range s.tasks {
		total += v
	}

	return total
}

// snapshot reads the run time of every live task of the server and the
// processes below it. Without exit reports it adds the cumulative children
// fields of /proc/PID/stat, which miss vsftpd's namespaced session processes.
func (t *target) snapshot() (cpuSnapshot, error) {
	s := cpuSnapshot{tasks: map[int]float64{}}

	for i, pid := range procstat.Tree(t.pid) {
		tids, err := procstat.Threads(pid)
		if err != nil {
			if i == 0 {
				return s, fmt.Errorf("%s: %w", t.name, err)
			}

			continue // it has just exited
		}

		for _, tid := range tids {
			if v, err := procstat.ThreadRuntime(pid, tid); err == nil {
				s.tasks[tid] = v.Seconds()
			}
		}

		if t.exits == nil {
			if st, err := procstat.ReadStat(pid); err == nil {
				s.reaped += float64(st.CUTime+st.CSTime) / procstat.ClockTick
			}
		}
	}

	return s, nil
}

// cpuSpan measures the server's CPU time from begin to end.
type cpuSpan struct {
	t      *target
	before cpuSnapshot
	mark   int
}

// beginCPU starts a span. Call it when the server has settled.
func (t *target) beginCPU() (*cpuSpan, error) {
	sp := &cpuSpan{t: t}
	if t.exits != nil {
		sp.mark = t.exits.Mark()
	}

	var err error

	sp.before, err = t.snapshot()

	return sp, err
}

// end returns the CPU seconds the tree used during the span: the growth of
// its live tasks, plus each task of the tree that exited meanwhile (from the
// exit reports, less what it had used at the start). A report belongs to the
// tree when its task, or its parent, was seen in the tree or in an earlier
// report, or when it carries the server's sole command name (a session
// process orphaned before it exited reports init as its parent). Call end
// when the server has settled again.
func (sp *cpuSpan) end() (float64, string, error) {
	after, err := sp.t.snapshot()
	if err != nil {
		return 0, "", err
	}

	total := after.sum() - sp.before.sum()
	if sp.t.exits == nil {
		return total, "", nil
	}

	recs, lost := sp.t.exits.Since(sp.mark)

	known := map[int]bool{sp.t.pid: true}
	for tid := range sp.before.tasks {
		known[tid] = true
	}

	for tid := range after.tasks {
		known[tid] = true
	}

	taken := make([]bool, len(recs))

	for changed := true; changed; {
		changed = false

		for i, r := range recs {
			ours := known[r.PID] || known[r.PPID] || (sp.t.soleComm != "" && r.Comm == sp.t.soleComm)
			if taken[i] || !ours {
				continue
			}

			if _, live := after.tasks[r.PID]; live {
				continue // an earlier task with a reused ID
			}

			taken[i], changed = true, true
			known[r.PID] = true
			total += r.CPU.Seconds() - sp.before.tasks[r.PID]
		}
	}

	note := ""
	if lost {
		note = "some exit reports were lost: CPU may be undercounted"
	}

	return total, note, nil
}

// pss is the proportional set size, in KiB, of the server and every process
// below it (/proc/PID/smaps_rollup), and how many processes that is.
func (t *target) pss() (kib int64, procs int, err error) {
	for i, pid := range procstat.Tree(t.pid) {
		v, err := procstat.PSS(pid)
		if err != nil {
			if i == 0 {
				return 0, 0, fmt.Errorf("%s: %w", t.name, err)
			}

			continue
		}

		kib += v >> 10
		procs++
	}

	return kib, procs, nil
}

// vsftpdVersion asks vsftpd -v, which writes its version to file
// descriptor 0, so standard input is a pipe here.
func vsftpdVersion(ctx context.Context) string {
	r, w, err := os.Pipe()
	if err != nil {
		return "(version unknown)"
	}
	defer r.Close()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, vsftpdPath, "-v")
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

// wharfVersion asks bin/wharf -version.
func wharfVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		return "(version unknown: " + err.Error() + ")"
	}

	return strings.TrimSpace(string(out))
}
