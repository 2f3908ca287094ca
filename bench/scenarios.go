package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"wharf/internal/ftpraw"
	"wharf/internal/procstat"
)

// The scenarios: each is one row of the table, run once per server per
// round. A run logs in outside its timed window where it can, times only
// the work the row names, then checks every byte it moved against the
// SHA-256 computed when the fixture was written.

// window times a measurement's timed windows, and reads the server core's
// counters across them: other work on that core during the windows is the
// noise that matters.
type window struct {
	elapsed time.Duration
	core    procstat.CoreTime // core 0's time, summed over the windows
	ok      bool              // /proc/stat was readable at every start and stop

	t0 time.Time
	c0 procstat.CoreTime
}

func (w *window) start() {
	c, err := procstat.ReadCore(0)
	w.c0, w.ok = c, err == nil && (w.ok || w.elapsed == 0)
	w.t0 = time.Now()
}

// stop ends the window and returns its length.
func (w *window) stop() time.Duration {
	d := time.Since(w.t0)
	w.elapsed += d

	c, err := procstat.ReadCore(0)
	w.ok = w.ok && err == nil
	spent := c.Sub(w.c0)
	w.core.Tasks += spent.Tasks
	w.core.IRQ += spent.IRQ
	w.core.Steal += spent.Steal

	return d
}

// plan sizes the scenarios: the full run or -quick.
type plan struct {
	bigSize     int64 // RETR, STOR and FTPS file
	smallN      int   // 4 KiB files in one session
	parN        int   // parallel sessions
	parSize     int64 // file per parallel session
	idleN       int   // idle sessions for the memory row
	listN       int   // LIST entries
	sessionsFor time.Duration
	listFor     time.Duration
	// repeat is how many times a transfer row does its work per run, with
	// the timed windows summed: one 1 GiB download lasts a third of a
	// second here, short enough for one burst of noise on the core to
	// decide it.
	repeat int

	// The curves' points (curves.go). -quick keeps the points marked quick
	// in curveScenarios.
	idleCurve  []int // idle sessions
	listCurve  []int // entries in one folder
	parCurve   []int // sessions downloading at once
	loginCurve []int // idle sessions open while logins are timed
	cparN      int   // files the parallel curve moves per repetition
	cparSize   int64 // each of them
}

var (
	fullPlan = plan{bigSize: 1 << 30, smallN: 2000, parN: 32, parSize: 64 << 20, idleN: 200, listN: 10000,
		sessionsFor: 3 * time.Second, listFor: time.Second, repeat: 3,
		idleCurve: []int{100, 1000, 10000}, listCurve: []int{1000, 10000, 100000}, parCurve: []int{1, 8, 32, 128},
		loginCurve: []int{0, 1000, 10000}, cparN: 128, cparSize: 8 << 20}
	quickPlan = plan{bigSize: 256 << 20, smallN: 500, parN: 32, parSize: 64 << 20, idleN: 200, listN: 10000,
		sessionsFor: 2 * time.Second, listFor: 500 * time.Millisecond, repeat: 1,
		idleCurve: []int{100, 1000, 10000}, listCurve: []int{1000, 10000, 100000}, parCurve: []int{1, 8, 32, 128},
		loginCurve: []int{0, 1000, 10000}, cparN: 128, cparSize: 2 << 20}
)

// need says which fixtures a scenario reads.
type need int

const (
	needBig need = 1 << iota
	needSmall
	needPar
	needCurvePar
	needDisk
)

// Sessions at once in the sessions rows: 4, so that the server's core, not
// the client's reply latency, is the limit. wharf allows one password check
// per address at once (more get 421), a protection that stays on, so the
// password row's 4 come from 4 addresses (passwordFrom), as logins to a
// real server do; each has logged in once before the row is timed, as the
// account throttle lets an address that logged in before skip its queue.
const (
	anonWorkers     = 4
	passwordWorkers = 4
)

// passwordFrom are the password row's client addresses, one per worker.
var passwordFrom = []net.IP{{127, 0, 0, 1}, {127, 0, 0, 2}, {127, 0, 0, 3}, {127, 0, 0, 4}}

// maxRunSessions bounds one sessions/s measurement.
const maxRunSessions = 50000

// result is what one run measured.
type result struct {
	value   float64 // in the scenario's unit
	seconds float64 // the timed window
	bytes   int64   // payload moved
	ops     int64   // files, sessions or entries
	work    float64 // amount of work in the CPU unit's denominator (GB, thousands of files, ...)
	detail  string
	// cpu, when cpuOwn, is the server's CPU seconds over the part of the
	// run the row means (logins with idle sessions open: not the opening
	// and closing of those), instead of the whole run's.
	cpu    float64
	cpuOwn bool
	// peakKiB is how far the peak RSS of the server's processes rose over
	// one piece of work (one listing), when peakOK.
	peakKiB float64
	peakOK  bool
	// dd is dd's MB/s for the same bytes written durably into the same
	// folder (stor-disk), when ddOK.
	dd   float64
	ddOK bool
}

type scenario struct {
	id      string // for -only and raw.jsonl
	title   string // the table row; a curve's title, the same for all its points
	unit    string
	lower   bool   // lower is better (memory)
	cpuUnit string // server CPU seconds per this; "" for none
	quick   bool   // part of -quick
	// fresh restarts the server before each run: a Go heap keeps the
	// memory earlier rows used and would hide what new sessions cost.
	fresh bool
	// disk runs the row with the server serving the tree on disk
	// (fixtures.diskRoot) instead of the one on tmpfs.
	disk bool
	// tls: the row uses FTPS (a server that loads TLS on demand restarts
	// with it).
	tls bool
	// s3 puts the row in the S3 group: it runs on wharf-s3 and direct
	// (bench/s3.go) instead of wharf and its peers, in a table of its own.
	s3    bool
	needs need
	list  int // entries of the folder the row lists; 0 for none
	// curve, when set, puts the row in the curves table: rows with the same
	// curve are its points, in order; point labels the column and ref marks
	// the point the later ones are compared with.
	curve, point string
	ref          bool
	// applies says whether the server can run this row, and why not; it is
	// asked again before each run, as what fits the machine changes. An
	// empty why means the server has no part in the row at all: no line
	// for it in the table.
	applies func(t *target) (bool, string)
	run     func(ctx context.Context, b *bench, t *target) (result, error)
}

func always(*target) (bool, string) { return true, "" }

func scenarios(p plan) []scenario {
	rows := []scenario{
		{id: "retr", title: fmt.Sprintf("RETR %s, one session", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			quick: true, needs: needBig, applies: always, run: runRetr},
		{id: "http", title: fmt.Sprintf("RETR %s over HTTP (GET), one connection", human(p.bigSize)), unit: "MB/s",
			cpuUnit: "GB", quick: true, needs: needBig, applies: httpOnly, run: runHTTP},
		{id: "stor", title: fmt.Sprintf("STOR %s", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			needs: needBig, applies: always, run: runStor},
		{id: "small", title: fmt.Sprintf("%s files of 4 KiB, one session, data connection per file", thousands(float64(p.smallN))),
			unit: "files/s", cpuUnit: "1k files", quick: true, needs: needSmall, applies: always, run: runSmall},
		{id: "parallel", title: fmt.Sprintf("%d sessions x %s in parallel", p.parN, human(p.parSize)),
			unit: "MB/s", cpuUnit: "GB", needs: needPar, applies: always, run: runParallel},
		{id: "anon", title: "connect + anonymous login + QUIT", unit: "sessions/s", cpuUnit: "1k sessions",
			quick: true, applies: always, run: runAnonSessions},
		{id: "password", title: "connect + password login + QUIT", unit: "sessions/s", cpuUnit: "1k sessions",
			applies: func(t *target) (bool, string) {
				return t.password, "no password account (see notes)"
			}, run: runPasswordSessions},
		{id: "idle", title: "memory per idle logged-in session", unit: "KiB, PSS", lower: true,
			quick: true, fresh: true, applies: sessionsFit(idleWarm + p.idleN), run: idleRunner(p.idleN)},
		{id: "list", title: fmt.Sprintf("LIST of %s entries", thousands(float64(p.listN))), unit: "entries/s",
			cpuUnit: "1M entries", quick: true, list: p.listN, applies: always, run: listRunner(p.listN)},
		{id: "ftps", title: fmt.Sprintf("RETR %s over explicit FTPS", human(p.bigSize)), unit: "MB/s",
			cpuUnit: "GB", needs: needBig, tls: true, applies: func(t *target) (bool, string) {
				return t.tls, "explicit TLS failed at start (see notes)"
			}, run: runFTPS},
		// The disk rows come after the tmpfs rows, so that each server
		// switches trees twice a round at most.
		{id: "stor-disk", title: fmt.Sprintf("STOR %s to disk", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			quick: true, disk: true, needs: needBig | needDisk, applies: always, run: runStor},
		{id: "s3stor", title: fmt.Sprintf("STOR %s to S3", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			quick: true, s3: true, needs: needBig, applies: s3Only, run: runS3Stor},
		{id: "s3par", title: fmt.Sprintf("%d sessions x %s to S3 in parallel", s3ParN, human(p.parSize)),
			unit: "MB/s", cpuUnit: "GB", fresh: true, s3: true, needs: needPar, applies: s3Only, run: runS3Parallel},
	}

	return append(rows, curveScenarios(p)...)
}

// verify compares a downloaded buffer with the fixture.
func verify(got []byte, f file) error {
	if int64(len(got)) != f.size {
		return fmt.Errorf("%s: got %d bytes, want %d", f.path, len(got), f.size)
	}

	if sha256.Sum256(got) != f.sum {
		return fmt.Errorf("%s: SHA-256 mismatch", f.path)
	}

	return nil
}

// clientTimeout bounds each reply the benchmark waits for: a 226 after a
// 1 GiB upload may come after the server has written it all back to disk.
// Each measurement's context (3 minutes) bounds the rest.
const clientTimeout = 2 * time.Minute

// dial connects to addr and wants the 220 greeting.
func dial(ctx context.Context, addr string) (*ftpraw.Conn, error) {
	c, greeting, err := ftpraw.Dial(ctx, addr, ftpraw.Options{Timeout: clientTimeout})
	if err != nil {
		return nil, err
	}

	if err := ftpraw.Check("connect", greeting, 220); err != nil {
		c.Close()

		return nil, err
	}

	return c, nil
}

// login logs in and switches to binary transfers (TYPE I).
func login(c *ftpraw.Conn, user, pass string) error {
	if err := c.Login(user, pass); err != nil {
		return err
	}

	_, err := c.Expect(200, "TYPE I")

	return err
}

// anonLogin dials and logs in anonymously.
func anonLogin(ctx context.Context, t *target) (*ftpraw.Conn, error) {
	return anonLoginFrom(ctx, t, nil)
}

func throughput(bytes int64, d time.Duration) result {
	s := d.Seconds()

	return result{value: float64(bytes) / 1e6 / s, seconds: s, bytes: bytes, work: float64(bytes) / 1e9}
}

// downloads fetches f plan.repeat times on c, each in a timed window and
// checked after it, and returns the bytes and the summed windows.
func downloads(b *bench, c *ftpraw.Conn, f file) (int64, time.Duration, error) {
	buf := b.arena[:f.size]

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		clear(buf) // what a download leaves must not pass the next one's check

		b.win.start()
		n, err := c.Retr(f.path, buf)
		el += b.win.stop()

		if err != nil {
			return total, el, err
		}

		if err := verify(buf[:n], f); err != nil {
			return total, el, err
		}

		total += int64(n)
	}

	return total, el, nil
}

func runRetr(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	c, err := anonLogin(ctx, t)
	if err != nil {
		return result{}, err
	}
	defer c.Close()

	total, el, err := downloads(b, c, f)
	if err != nil {
		return result{}, err
	}

	if err := c.Quit(); err != nil {
		return result{}, err
	}

	return throughput(total, el), nil
}

func runFTPS(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	c, err := dial(ctx, t.addr)
	if err != nil {
		return result{}, err
	}
	defer c.Close()

	if err := c.StartTLS(b.fx.clientTLS()); err != nil {
		return result{}, err
	}

	if err := login(c, "anonymous", "bench@example.com"); err != nil {
		return result{}, err
	}

	if err := c.ProtectData(); err != nil {
		return result{}, err
	}

	total, el, err := downloads(b, c, f)
	if err != nil {
		return result{}, err
	}

	detail := c.TLSState()
	if c.DataResumed() {
		detail += ", data connection resumed the session"
	}

	if err := c.Quit(); err != nil {
		return result{}, err
	}

	r := throughput(total, el)
	r.detail = detail

	return r, nil
}

// runStor uploads the big fixture into incoming/ under a new name each time
// (anonymous uploads may not overwrite), checks the file in the tree the
// server serves (on tmpfs, or on disk for a disk row) and removes it.
func runStor(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	src, err := os.Open(b.fx.disk(b.fx.root, f.path))
	if err != nil {
		return result{}, fmt.Errorf("upload source: %w", err)
	}
	defer src.Close()

	c, err := anonLogin(ctx, t)
	if err != nil {
		return result{}, err
	}
	defer c.Close()

	var (
		total, ddBytes int64
		el, ddTook     time.Duration
	)

	onDisk := b.fx.diskRoot != "" && t.now.root == b.fx.diskRoot

	for range b.plan.repeat {
		path := fmt.Sprintf("/incoming/up-%s-%d.bin", t.name, b.seq.Add(1))

		if onDisk {
			n, took, err := ddOnce(ctx, b, filepath.Join(b.fx.diskRoot, "incoming"), f.size)
			if err != nil {
				return result{}, err
			}

			ddBytes += n
			ddTook += took
		}

		n, took, err := storOnce(c, b, t.now.root, path, src, f)
		total += n
		el += took

		if err != nil {
			return result{}, err
		}
	}

	if err := c.Quit(); err != nil {
		return result{}, err
	}

	r := throughput(total, el)
	if ddTook > 0 {
		r.dd, r.ddOK = float64(ddBytes)/1e6/ddTook.Seconds(), true
	}

	return r, nil
}

// storOnce uploads src as path in a timed window, checks the file under
// root against f and removes it.
func storOnce(c *ftpraw.Conn, b *bench, root, path string, src *os.File, f file) (int64, time.Duration, error) {
	defer removeSynced(b.fx.disk(root, path))

	if _, err := src.Seek(0, 0); err != nil {
		return 0, 0, fmt.Errorf("upload source: %w", err)
	}

	b.win.start()
	n, err := c.Stor(path, src)
	el := b.win.stop()

	if err != nil {
		return n, el, err
	}

	got, err := os.ReadFile(b.fx.disk(root, path))
	if err != nil {
		return n, el, fmt.Errorf("uploaded file: %w", err)
	}

	return n, el, verify(got, file{path: path, size: f.size, sum: f.sum})
}

func runSmall(ctx context.Context, b *bench, t *target) (result, error) {
	files := b.fx.small

	c, err := anonLogin(ctx, t)
	if err != nil {
		return result{}, err
	}
	defer c.Close()

	var el time.Duration

	for range b.plan.repeat {
		clear(b.arena[:len(files)*smallSize])

		b.win.start()

		for i, f := range files {
			if _, err := c.Retr(f.path, b.arena[i*smallSize:(i+1)*smallSize]); err != nil {
				return result{}, err
			}
		}

		el += b.win.stop()

		for i, f := range files {
			if err := verify(b.arena[i*smallSize:(i+1)*smallSize], f); err != nil {
				return result{}, err
			}
		}
	}

	if err := c.Quit(); err != nil {
		return result{}, err
	}

	n := int64(len(files) * b.plan.repeat)

	return result{value: float64(n) / el.Seconds(), seconds: el.Seconds(), bytes: n * smallSize, ops: n,
		work: float64(n) / 1000}, nil
}

// runParallel logs every session in first, then starts all downloads at
// once; the window ends when the last 226 arrives.
func runParallel(ctx context.Context, b *bench, t *target) (result, error) {
	files := b.fx.par
	conns := make([]*ftpraw.Conn, len(files))

	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()

	for i := range files {
		c, err := anonLogin(ctx, t)
		if err != nil {
			return result{}, fmt.Errorf("session %d: %w", i, err)
		}

		conns[i] = c
	}

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		n, took, err := parallelOnce(b, conns)
		total += n
		el += took

		if err != nil {
			return result{}, err
		}
	}

	for _, c := range conns {
		if err := c.Quit(); err != nil {
			return result{}, err
		}
	}

	return throughput(total, el), nil
}

// parallelOnce starts one download on every session at once, times them
// until the last 226 and checks every byte.
func parallelOnce(b *bench, conns []*ftpraw.Conn) (int64, time.Duration, error) {
	files := b.fx.par
	clear(b.arena[:int64(len(files))*b.plan.parSize])

	var (
		wg   sync.WaitGroup
		errs = make([]error, len(files))
		ns   = make([]int, len(files))
	)

	b.win.start()

	for i, f := range files {
		wg.Go(func() {
			ns[i], errs[i] = conns[i].Retr(f.path, b.arena[int64(i)*f.size:int64(i+1)*f.size])
		})
	}

	wg.Wait()

	el := b.win.stop()

	if err := firstError(errs); err != nil {
		return 0, el, err
	}

	var total int64

	for i, f := range files {
		if err := verify(b.arena[int64(i)*f.size:int64(i)*f.size+int64(ns[i])], f); err != nil {
			return total, el, err
		}

		total += int64(ns[i])
	}

	return total, el, nil
}

func runAnonSessions(ctx context.Context, b *bench, t *target) (result, error) {
	return runSessions(ctx, &b.win, b.plan.sessionsFor, t, "anonymous", "bench@example.com", anonWorkers, nil)
}

func runPasswordSessions(ctx context.Context, b *bench, t *target) (result, error) {
	for _, ip := range passwordFrom {
		if err := oneSession(ctx, t.addr, ip, b.fx.user, b.fx.pass); err != nil {
			return result{}, fmt.Errorf("first login from %s: %w", ip, err)
		}
	}

	return runSessions(ctx, &b.win, b.plan.sessionsFor, t, b.fx.user, b.fx.pass, passwordWorkers, passwordFrom)
}

// errRefused is a 421 reply to PASS: the server turned the login away for
// now. Such sessions are counted apart, not as failures.
var errRefused = errors.New("login refused with 421")

// runSessions runs connect + login + QUIT sessions, workers at a time, for
// about d (and at most maxRunSessions), and counts the completed ones. With
// from, worker w connects from address from[w % len(from)].
func runSessions(ctx context.Context, win *window, d time.Duration, t *target, user, pass string, workers int,
	from []net.IP,
) (result, error) {
	var (
		count, refused atomic.Int64
		wg             sync.WaitGroup
		errs           = make([]error, workers)
	)

	win.start()
	start := time.Now()

	for w := range workers {
		wg.Go(func() {
			for time.Since(start) < d && count.Load()+refused.Load() < maxRunSessions {
				var local net.IP
				if len(from) > 0 {
					local = from[w%len(from)]
				}

				err := oneSession(ctx, t.addr, local, user, pass)
				if errors.Is(err, errRefused) {
					refused.Add(1)

					continue
				}

				if err != nil {
					errs[w] = err

					return
				}

				count.Add(1)
			}
		})
	}

	wg.Wait()

	el := win.stop()
	n := count.Load()

	if err := errors.Join(errs...); err != nil {
		return result{}, fmt.Errorf("after %d sessions: %w", n, err)
	}

	if n == 0 {
		return result{}, fmt.Errorf("every login was refused (%d)", refused.Load())
	}

	detail := fmt.Sprintf("%d at a time", workers)
	if len(from) > 0 {
		detail += fmt.Sprintf(" from %d addresses", len(from))
	}

	if r := refused.Load(); r > 0 {
		detail += fmt.Sprintf(", %d refused with 421 and not counted", r)
	}

	return result{value: float64(n) / el.Seconds(), seconds: el.Seconds(), ops: n, work: float64(n) / 1000,
		detail: detail}, nil
}

// oneSession sends USER, PASS and QUIT in one write after the greeting and
// waits for the server to close.
func oneSession(ctx context.Context, addr string, local net.IP, user, pass string) error {
	c, greeting, err := ftpraw.Dial(ctx, addr, ftpraw.Options{Local: local, Timeout: clientTimeout})
	if err != nil {
		return err
	}
	defer c.Close()

	if err := ftpraw.Check("connect", greeting, 220); err != nil {
		return err
	}

	if err := c.Send("USER "+user, "PASS "+pass, "QUIT"); err != nil {
		return err
	}

	userReply, err := c.ReadExpect(2, "USER")
	if err != nil && userReply.Code != 331 {
		return err
	}

	// pure-ftpd logs anonymous users in at USER (230): its answer to the
	// PASS that follows does not matter.
	passReply, err := c.Read()
	if err == nil && userReply.Code == 331 {
		err = ftpraw.Check("PASS", passReply, 230)
	}

	if err != nil {
		if passReply.Code == 421 {
			return errRefused
		}

		return err
	}

	if _, err := c.ReadExpect(221, "QUIT"); err != nil {
		return err
	}

	return c.WaitClose()
}

// listRunner lists the folder of n entries repeatedly, in one session, for
// about listFor; only the listings themselves are timed, and each is
// checked to name every entry exactly once. Around the first listing it
// also reads how far the peak RSS of the server's processes rose.
func listRunner(n int) func(ctx context.Context, b *bench, t *target) (result, error) {
	return func(ctx context.Context, b *bench, t *target) (result, error) {
		c, err := anonLogin(ctx, t)
		if err != nil {
			return result{}, err
		}
		defer c.Close()

		buf := b.arena[:min(len(b.arena), listBuffer(n))]
		dir := listDir(n)

		var (
			timed  time.Duration
			reps   int64
			peak   float64
			peakOK bool
		)

		for reps < 2 || (timed < b.plan.listFor && reps < 500) {
			var rise peakRise
			if reps == 0 {
				rise = t.startPeak()
			}

			b.win.start()
			got, err := c.List(dir, buf)
			timed += b.win.stop()

			if err != nil {
				return result{}, err
			}

			if reps == 0 {
				peak, peakOK = rise.end()
			}

			if err := checkListing(buf[:got], n); err != nil {
				return result{}, err
			}

			reps++
		}

		if err := c.Quit(); err != nil {
			return result{}, err
		}

		entries := reps * int64(n)

		return result{value: float64(entries) / timed.Seconds(), seconds: timed.Seconds(), ops: entries,
			work: float64(entries) / 1e6, peakKiB: peak, peakOK: peakOK, detail: fmt.Sprintf("%d listings", reps)}, nil
	}
}

// listBuffer is room for a listing of n entries: about 70 bytes a line in
// the servers' ls -l formats, and a margin.
func listBuffer(n int) int {
	return 1<<20 + n*200
}

// checkListing wants every name of listName(0..n-1) exactly once, as the
// last field of a line; other lines (".", "..", a total) are ignored.
func checkListing(listing []byte, n int) error {
	seen := make([]bool, n)
	count := 0

	for line := range bytes.Lines(listing) {
		line = bytes.TrimRight(line, "\r\n")

		i := bytes.LastIndexByte(line, ' ')
		name := line[i+1:]

		if len(name) < 2 || name[0] != 'e' {
			continue
		}

		k, err := strconv.Atoi(string(name[1:]))
		if err != nil || k >= n || seen[k] {
			return fmt.Errorf("LIST: unexpected or repeated entry %q", name)
		}

		seen[k] = true
		count++
	}

	if count != n {
		return fmt.Errorf("LIST: %d entries, want %d", count, n)
	}

	return nil
}
