package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	core    coreTime // core 0's time, summed over the windows
	ok      bool     // /proc/stat was readable at every start and stop

	t0 time.Time
	c0 coreTime
}

func (w *window) start() {
	c, err := coreTimes(0)
	w.c0, w.ok = c, err == nil && (w.ok || w.elapsed == 0)
	w.t0 = time.Now()
}

// stop ends the window and returns its length.
func (w *window) stop() time.Duration {
	d := time.Since(w.t0)
	w.elapsed += d

	c, err := coreTimes(0)
	w.ok = w.ok && err == nil
	w.core.tasks += c.tasks - w.c0.tasks
	w.core.irq += c.irq - w.c0.irq
	w.core.steal += c.steal - w.c0.steal

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
}

var (
	fullPlan = plan{bigSize: 1 << 30, smallN: 2000, parN: 32, parSize: 64 << 20, idleN: 200, listN: 10000,
		sessionsFor: 3 * time.Second, listFor: time.Second, repeat: 3}
	quickPlan = plan{bigSize: 256 << 20, smallN: 500, parN: 32, parSize: 64 << 20, idleN: 200, listN: 10000,
		sessionsFor: 2 * time.Second, listFor: 500 * time.Millisecond, repeat: 1}
)

// need says which fixtures a scenario reads.
type need int

const (
	needBig need = 1 << iota
	needSmall
	needPar
	needList
)

// Sessions at once in the sessions rows. Anonymous logins run 4 at a time, so
// the server's core, not the client's reply latency, is the limit. Password
// logins run one at a time: wharf allows one password check per address at
// once (more get 421), a protection that stays on.
const (
	anonWorkers     = 4
	passwordWorkers = 1
)

// maxSessions bounds one sessions/s measurement.
const maxSessions = 50000

// result is what one run measured.
type result struct {
	value   float64 // in the scenario's unit
	seconds float64 // the timed window
	bytes   int64   // payload moved
	ops     int64   // files, sessions or entries
	work    float64 // amount of work in the CPU unit's denominator (GB, thousands of files, ...)
	detail  string
}

type scenario struct {
	id      string // for -only and raw.jsonl
	title   string // the table row
	unit    string
	lower   bool   // lower is better (memory)
	cpuUnit string // server CPU seconds per this; "" for none
	quick   bool   // part of -quick
	// fresh restarts the server before each run: a Go heap keeps the
	// memory earlier rows used and would hide what new sessions cost.
	fresh bool
	// s3 puts the row in the S3 group: it runs on wharf-s3 and direct
	// (bench/s3.go) instead of wharf and vsftpd, in a table of its own.
	s3    bool
	needs need
	// applies says whether the server can run this row, and why not.
	applies func(t *target) (bool, string)
	run     func(ctx context.Context, b *bench, t *target) (result, error)
}

func always(*target) (bool, string) { return true, "" }

func scenarios(p plan) []scenario {
	return []scenario{
		{id: "retr", title: fmt.Sprintf("RETR %s, one session", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			quick: true, needs: needBig, applies: always, run: runRetr},
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
			quick: true, fresh: true, applies: always, run: runIdle},
		{id: "list", title: fmt.Sprintf("LIST of %s entries", thousands(float64(p.listN))), unit: "entries/s",
			cpuUnit: "1M entries", quick: true, needs: needList, applies: always, run: runList},
		{id: "ftps", title: fmt.Sprintf("RETR %s over explicit FTPS", human(p.bigSize)), unit: "MB/s",
			cpuUnit: "GB", needs: needBig, applies: func(t *target) (bool, string) {
				return t.tls, "explicit TLS failed at start (see notes)"
			}, run: runFTPS},
		{id: "s3stor", title: fmt.Sprintf("STOR %s to S3", human(p.bigSize)), unit: "MB/s", cpuUnit: "GB",
			quick: true, s3: true, needs: needBig, applies: s3Only, run: runS3Stor},
		{id: "s3par", title: fmt.Sprintf("%d sessions x %s to S3 in parallel", s3ParN, human(p.parSize)),
			unit: "MB/s", cpuUnit: "GB", fresh: true, s3: true, needs: needPar, applies: s3Only, run: runS3Parallel},
	}
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

// anonLogin dials and logs in anonymously.
func anonLogin(ctx context.Context, t *target) (*ftpConn, error) {
	c, err := dialFTP(ctx, t.addr)
	if err != nil {
		return nil, err
	}

	if err := c.login("anonymous", "bench@example.com"); err != nil {
		c.close()

		return nil, err
	}

	return c, nil
}

func throughput(bytes int64, d time.Duration) result {
	s := d.Seconds()

	return result{value: float64(bytes) / 1e6 / s, seconds: s, bytes: bytes, work: float64(bytes) / 1e9}
}

// downloads fetches f plan.repeat times on c, each in a timed window and
// checked after it, and returns the bytes and the summed windows.
func downloads(b *bench, c *ftpConn, f file) (int64, time.Duration, error) {
	buf := b.arena[:f.size]

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		clear(buf) // what a download leaves must not pass the next one's check

		b.win.start()
		n, err := c.retr(f.path, buf)
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
	defer c.close()

	total, el, err := downloads(b, c, f)
	if err != nil {
		return result{}, err
	}

	if err := c.quit(); err != nil {
		return result{}, err
	}

	return throughput(total, el), nil
}

func runFTPS(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	c, err := dialFTP(ctx, t.addr)
	if err != nil {
		return result{}, err
	}
	defer c.close()

	if err := c.startTLS(ctx, b.fx.clientTLS()); err != nil {
		return result{}, err
	}

	if err := c.login("anonymous", "bench@example.com"); err != nil {
		return result{}, err
	}

	if err := c.protectData(); err != nil {
		return result{}, err
	}

	total, el, err := downloads(b, c, f)
	if err != nil {
		return result{}, err
	}

	detail := c.tlsState()
	if c.dataResumed {
		detail += ", data connection resumed the session"
	}

	if err := c.quit(); err != nil {
		return result{}, err
	}

	r := throughput(total, el)
	r.detail = detail

	return r, nil
}

// runStor uploads the big fixture into incoming/ under a new name each time
// (anonymous uploads may not overwrite), checks the file on disk and removes it.
func runStor(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	src, err := os.Open(b.fx.disk(f.path))
	if err != nil {
		return result{}, fmt.Errorf("upload source: %w", err)
	}
	defer src.Close()

	c, err := anonLogin(ctx, t)
	if err != nil {
		return result{}, err
	}
	defer c.close()

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		path := fmt.Sprintf("/incoming/up-%s-%d.bin", t.name, b.seq.Add(1))

		n, took, err := storOnce(c, b, path, src, f)
		total += n
		el += took

		if err != nil {
			return result{}, err
		}
	}

	if err := c.quit(); err != nil {
		return result{}, err
	}

	return throughput(total, el), nil
}

// storOnce uploads src as path in a timed window, checks the file on disk
// against f and removes it.
func storOnce(c *ftpConn, b *bench, path string, src *os.File, f file) (int64, time.Duration, error) {
	defer os.Remove(b.fx.disk(path))

	if _, err := src.Seek(0, 0); err != nil {
		return 0, 0, fmt.Errorf("upload source: %w", err)
	}

	b.win.start()
	n, err := c.stor(path, src)
	el := b.win.stop()

	if err != nil {
		return n, el, err
	}

	got, err := os.ReadFile(b.fx.disk(path))
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
	defer c.close()

	var el time.Duration

	for range b.plan.repeat {
		clear(b.arena[:len(files)*smallSize])

		b.win.start()

		for i, f := range files {
			if _, err := c.retr(f.path, b.arena[i*smallSize:(i+1)*smallSize]); err != nil {
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

	if err := c.quit(); err != nil {
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
	conns := make([]*ftpConn, len(files))

	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
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
		if err := c.quit(); err != nil {
			return result{}, err
		}
	}

	return throughput(total, el), nil
}

// parallelOnce starts one download on every session at once, times them
// until the last 226 and checks every byte.
func parallelOnce(b *bench, conns []*ftpConn) (int64, time.Duration, error) {
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
			ns[i], errs[i] = conns[i].retr(f.path, b.arena[int64(i)*f.size:int64(i+1)*f.size])
		})
	}

	wg.Wait()

	el := b.win.stop()

	if err := errors.Join(errs...); err != nil {
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
	return runSessions(ctx, &b.win, b.plan.sessionsFor, t, "anonymous", "bench@example.com", anonWorkers)
}

func runPasswordSessions(ctx context.Context, b *bench, t *target) (result, error) {
	return runSessions(ctx, &b.win, b.plan.sessionsFor, t, b.fx.user, b.fx.pass, passwordWorkers)
}

// errRefused is a 421 reply to PASS: the server turned the login away for
// now. Such sessions are counted apart, not as failures.
var errRefused = errors.New("login refused with 421")

// runSessions runs connect + login + QUIT sessions, workers at a time, for
// about d (and at most maxSessions), and counts the completed ones.
func runSessions(ctx context.Context, win *window, d time.Duration, t *target, user, pass string, workers int,
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
			for time.Since(start) < d && count.Load()+refused.Load() < maxSessions {
				err := oneSession(ctx, t.addr, user, pass)
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
	if r := refused.Load(); r > 0 {
		detail += fmt.Sprintf(", %d refused with 421 and not counted", r)
	}

	return result{value: float64(n) / el.Seconds(), seconds: el.Seconds(), ops: n, work: float64(n) / 1000,
		detail: detail}, nil
}

// oneSession sends USER, PASS and QUIT in one write after the greeting and
// waits for the server to close.
func oneSession(ctx context.Context, addr, user, pass string) error {
	c, err := dialFTP(ctx, addr)
	if err != nil {
		return err
	}
	defer c.close()

	if err := c.send("USER "+user, "PASS "+pass, "QUIT"); err != nil {
		return err
	}

	if _, err := c.expect(331); err != nil {
		return err
	}

	if _, err := c.expect(230); err != nil {
		if re, ok := errors.AsType[*replyError](err); ok && re.code == 421 {
			return errRefused
		}

		return err
	}

	if _, err := c.expect(221); err != nil {
		return err
	}

	return c.waitClose()
}

// idleWarm is how many sessions are opened, and kept, before the memory
// row's baseline: the first sessions of a fresh server page in code and
// runtime structures once, which is not a cost of each session.
const idleWarm = 50

// runIdle opens idleWarm sessions, then idleN more logged-in sessions, and
// divides the growth of the server's PSS (all its processes) over the
// second batch by idleN. The server has just been restarted (scenario.fresh).
func runIdle(ctx context.Context, b *bench, t *target) (result, error) {
	conns := make([]*ftpConn, 0, idleWarm+b.plan.idleN)

	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()

	for range idleWarm {
		c, err := anonLogin(ctx, t)
		if err != nil {
			return result{}, fmt.Errorf("warm-up session %d: %w", len(conns)+1, err)
		}

		conns = append(conns, c)
	}

	time.Sleep(500 * time.Millisecond)

	before, procsBefore, err := t.pss()
	if err != nil {
		return result{}, err
	}

	for range b.plan.idleN {
		c, err := anonLogin(ctx, t)
		if err != nil {
			return result{}, fmt.Errorf("session %d: %w", len(conns)+1, err)
		}

		conns = append(conns, c)
	}

	// Let forked session processes finish starting up.
	time.Sleep(500 * time.Millisecond)

	after, procsAfter, err := t.pss()
	if err != nil {
		return result{}, err
	}

	for _, c := range conns {
		if err := c.quit(); err != nil {
			return result{}, err
		}
	}

	conns = nil
	n := int64(b.plan.idleN)

	return result{value: float64(after-before) / float64(n), ops: n,
		detail: fmt.Sprintf("PSS %d KiB in %d processes after %d warm-up sessions, %d KiB in %d with %d more",
			before, procsBefore, idleWarm, after, procsAfter, n)}, nil
}

// runList lists the LIST folder repeatedly, in one session, for about
// listFor; only the listings themselves are timed, and each is checked to
// name every entry exactly once.
func runList(ctx context.Context, b *bench, t *target) (result, error) {
	c, err := anonLogin(ctx, t)
	if err != nil {
		return result{}, err
	}
	defer c.close()

	buf := b.arena[:min(len(b.arena), 64<<20)]

	var (
		timed time.Duration
		reps  int64
	)

	for reps < 2 || (timed < b.plan.listFor && reps < 500) {
		b.win.start()
		n, err := c.list("/list", buf)
		timed += b.win.stop()

		if err != nil {
			return result{}, err
		}

		if err := checkListing(buf[:n], b.fx.listN); err != nil {
			return result{}, err
		}

		reps++
	}

	if err := c.quit(); err != nil {
		return result{}, err
	}

	entries := reps * int64(b.fx.listN)

	return result{value: float64(entries) / timed.Seconds(), seconds: timed.Seconds(), ops: entries,
		work: float64(entries) / 1e6, detail: fmt.Sprintf("%d listings", reps)}, nil
}

// checkListing wants every name e00000..e{n-1} exactly once, as the last
// field of a line; other lines are ignored.
func checkListing(listing []byte, n int) error {
	seen := make([]bool, n)
	count := 0

	for line := range bytes.Lines(listing) {
		line = bytes.TrimRight(line, "\r\n")

		i := bytes.LastIndexByte(line, ' ')
		name := line[i+1:]

		if len(name) != 6 || name[0] != 'e' {
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
