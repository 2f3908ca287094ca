package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wharf/internal/procstat"
)

// Starting, probing and stopping the servers, and reading what they cost
// from /proc. wharf.go and peers.go write each server's configuration.

// passiveSpan is how many passive ports each server gets: 101, like
// wharf's default 50000-50100, since the engine's port picking cost grows
// with the range. pure-ftpd gets more (see peers.go).
const passiveSpan = 101

// target is one server under test.
type target struct {
	name  string // "wharf", "vsftpd", "pure-ftpd", "ProFTPD"
	addr  string // control address, 127.0.0.1:port
	admin string // wharf's admin listener (pprof), "" when off
	http  string // wharf's HTTP listener ([http]), 127.0.0.1:port; "" for the peers, which serve no HTTP
	// launch writes the server's configuration for a setup and returns the
	// command line that starts it (pinned).
	launch func(s setup) ([]string, error)
	env    []string // added to the environment (a peer unpacked in the cache finds its libraries)
	now    setup    // what it serves now
	// tlsOnDemand: the server loads TLS only for the rows that use it
	// (ProFTPD, whose mod_tls slows every session's start, TLS or not).
	tlsOnDemand bool
	dir         string // its working directory, for its configuration and logs
	pid         int
	cmd         *exec.Cmd
	done        chan struct{} // closed when the process has exited
	outPath     string        // the process's stdout and stderr

	tls      bool            // explicit FTPS works
	password bool            // a password account exists
	notes    []string        // how this server was set up, for the report
	exits    *procstat.Exits // exit reports of its processes; nil without taskstats
	comm     string          // its processes' command name, for the exit reports

	// soleComm, when set, is a command name only this server's processes
	// had when it started: every exit report with that name is its own,
	// even of a session process whose parent had already gone.
	soleComm string

	// What a curve point needs of it: how many sessions it takes at once as
	// configured, how many processes each session adds (0 for wharf, whose
	// sessions are goroutines), and a generous bound on an idle session's
	// memory, in KiB.
	maxSessions     int
	procsPerSession int
	sessionKiB      int
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

// portRanges picks a free range of passive ports for each span in spans,
// below the kernel's ephemeral range so that client sockets never hold one
// of them.
func portRanges(spans ...int) ([][2]int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				lo = v
			}
		}
	}

	const floor = 10000

	total := 0
	for _, n := range spans {
		total += n
	}

	if lo-floor < total+2*passiveSpan {
		return nil, fmt.Errorf("no room for %d passive ports below the ephemeral range (starts at %d)", total, lo)
	}

	var out [][2]int

	base := floor + rand.IntN(lo-floor-total) //nolint:gosec // a starting point, not a secret
	for attempt := 0; attempt < 400 && len(out) < len(spans); attempt++ {
		n := spans[len(out)]
		if base+n > lo {
			base = floor
		}

		if rangeFree(base, base+n-1) {
			out = append(out, [2]int{base, base + n - 1})
			base += n

			continue
		}

		base += passiveSpan
	}

	if len(out) < len(spans) {
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

// start launches the server for t.now in its own process group. The process
// gets SIGKILL if this program dies first, and start waits until the
// control port greets.
func (t *target) start(ctx context.Context) error {
	argv, err := t.launch(t.now)
	if err != nil {
		return fmt.Errorf("%s configuration: %w", t.name, err)
	}

	out, err := os.OpenFile(t.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s output: %w", t.name, err)
	}
	defer out.Close()

	// Not CommandContext: the process outlives start's context; stop ends it.
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec,noctx // the servers under test, stopped by stop()
	cmd.Dir = t.dir
	cmd.Env = append(os.Environ(), t.env...)
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

// restart stops the server and starts it again on the same tree, so that a
// measurement sees a fresh process.
func (t *target) restart(ctx context.Context) error {
	t.stop()

	if err := t.start(ctx); err != nil {
		return err
	}

	return t.probe(ctx, "anonymous", "bench@example.com")
}

// setup is what a server is started for: the tree it serves (the anonymous
// root on tmpfs, or the one on disk), and whether the row uses FTPS.
type setup struct {
	root string
	tls  bool
}

// serve makes the server serve s, restarting it when it serves another
// setup.
func (t *target) serve(ctx context.Context, s setup) error {
	if !t.tlsOnDemand {
		s.tls = t.now.tls
	}

	if t.now == s {
		return nil
	}

	t.now = s

	return t.restart(ctx)
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

// settleTo waits until the server has at most n processes below it.
func (t *target) settleTo(ctx context.Context, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for len(procstat.Descendants(t.pid)) > n && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// peakRise measures how far the peak RSS of the server's processes rises
// over some work: the sum of each process's peak (VmHWM, reset at the
// start) less the sum of their RSS at the start.
type peakRise struct {
	pids []int
	base int64
	ok   bool
}

// startPeak resets the peak RSS of the server's processes.
func (t *target) startPeak() peakRise {
	r := peakRise{pids: procstat.Tree(t.pid), ok: true}

	for _, pid := range r.pids {
		if err := procstat.ResetPeak(pid); err != nil {
			return peakRise{}
		}

		if m, err := procstat.ReadMemory(pid); err == nil {
			r.base += m.RSS
		}
	}

	return r
}

// end returns the rise in KiB, and false when the kernel can't reset peaks.
// The kernel counts RSS in per-thread batches, so the figure is good to a
// few hundred KiB; a rise lost in that is 0.
func (r peakRise) end() (float64, bool) {
	if !r.ok {
		return 0, false
	}

	var peak int64

	for _, pid := range r.pids {
		if m, err := procstat.ReadMemory(pid); err == nil {
			peak += m.Peak
		}
	}

	return float64(max(peak-r.base, 0)) / 1024, true
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
