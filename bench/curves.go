package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"wharf/internal/ftpraw"
	"wharf/internal/procstat"
)

// How cost grows (issue 14): the same measurement at a few sizes, reported
// as one row of the curves table per server, a column per size.
//
//   - idle: KiB of PSS per idle logged-in session, with 100, 1,000 and 10,000 open
//   - list: entries/s, and the peak RSS rise of one listing, for 1,000, 10,000 and 100,000 entries (on
//     a freshly started server: a Go heap would reuse what earlier rows freed and hide the rise)
//   - par:  total MB/s with 1, 8, 32 and 128 sessions downloading at once
//   - logins: anonymous sessions/s with 0, 1,000 and 10,000 idle sessions open
//
// A point a server can't take on this machine (more sessions than it is
// configured for, more processes or memory than the machine has to spare) is
// skipped, and the table says why.

// idleWorkers open and close the idle sessions of a curve point: enough to
// keep the server busy, few enough not to crowd its core.
const idleWorkers = 8

func curveScenarios(p plan) []scenario {
	var rows []scenario

	for i, n := range p.idleCurve {
		rows = append(rows, scenario{id: "idle-" + short(n), title: "memory per idle logged-in session, by sessions open",
			unit: "KiB, PSS", lower: true, curve: "idle", point: thousands(float64(n)), ref: i == 0,
			quick: n <= 1000, fresh: true, applies: sessionsFit(idleWarm + n), run: idleRunner(n)})
	}

	for i, n := range p.listCurve {
		rows = append(rows, scenario{id: "list-" + short(n), title: "LIST of one folder, by the entries in it", unit: "entries/s",
			cpuUnit: "1M entries", curve: "list", point: thousands(float64(n)), ref: i == 0,
			quick: n <= 10000, list: n, fresh: true, applies: always, run: listRunner(n)})
	}

	for i, n := range p.parCurve {
		rows = append(rows, scenario{id: "par-" + short(n),
			title: fmt.Sprintf("downloads at once, by sessions: %d files of %s in all", p.cparN, human(p.cparSize)),
			unit:  "MB/s", cpuUnit: "GB", curve: "par", point: thousands(float64(n)), ref: i == 1 || len(p.parCurve) == 1,
			quick: n <= 8, needs: needCurvePar, applies: sessionsFit(n), run: parRunner(n)})
	}

	for i, n := range p.loginCurve {
		rows = append(rows, scenario{id: "logins-" + short(n), title: "connect + anonymous login + QUIT, by idle sessions open",
			unit: "sessions/s", cpuUnit: "1k sessions", curve: "logins", point: thousands(float64(n)), ref: i == 0,
			quick: n <= 1000, applies: sessionsFit(n + anonWorkers), run: loginsRunner(n)})
	}

	return rows
}

// short writes 1000 as 1k and 10000 as 10k, for row ids.
func short(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}

	return fmt.Sprint(n)
}

// sessionsFit says whether n sessions at once fit the server as configured
// and the machine: processes (a forking server's sessions against the
// cgroup's pids.max and threads-max, keeping half for everyone else),
// memory (a generous bound per session against half of MemAvailable) and
// this program's descriptors.
func sessionsFit(n int) func(t *target) (bool, string) {
	return func(t *target) (bool, string) {
		if n > t.maxSessions {
			return false, fmt.Sprintf("%s takes at most %s sessions as configured here", t.name,
				thousands(float64(t.maxSessions)))
		}

		if procs := n * t.procsPerSession; procs > 0 {
			if left, ok := procstat.PIDsLeft(); ok && procs > left/2 {
				return false, fmt.Sprintf("its %s session processes would take more than half of the %s "+
					"tasks this machine has left (pids.max, threads-max)", thousands(float64(procs)),
					thousands(float64(left)))
			}
		}

		if avail, need := procstat.MemAvailable(), int64(n)*int64(t.sessionKiB)<<10; avail > 0 && need > avail/2 {
			return false, fmt.Sprintf("up to %s of session memory would be more than half of what is available (%s)",
				human(need), human(avail))
		}

		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(n)+1024 > lim.Cur { //nolint:gosec // n is a few thousand
			return false, fmt.Sprintf("RLIMIT_NOFILE is %d, too few descriptors for %s sessions", lim.Cur,
				thousands(float64(n)))
		}

		return true, ""
	}
}

// clientAddress is where session i of a crowd comes from: 127.0.0.2 for the
// first perAddress sessions, then 127.0.0.3, and so on (127.0.0.1 is left to
// the clients that measure), so no address comes near the servers' per-address
// limits.
func clientAddress(i int) net.IP {
	return net.IPv4(127, 0, 0, byte(2+i/perAddress)) //nolint:gosec // at most 12,000 sessions: 62 addresses
}

// anonLoginFrom dials from local and logs in anonymously.
func anonLoginFrom(ctx context.Context, t *target, local net.IP) (*ftpraw.Conn, error) {
	c, greeting, err := ftpraw.Dial(ctx, t.addr, ftpraw.Options{Local: local, Timeout: clientTimeout})
	if err != nil {
		return nil, err
	}

	err = ftpraw.Check("connect", greeting, 220)
	if err == nil {
		err = login(c, "anonymous", "bench@example.com")
	}

	if err != nil {
		c.Close()

		return nil, err
	}

	return c, nil
}

// openSessions logs in n anonymous sessions, idleWorkers at a time, from
// clientAddress(first), clientAddress(first+1)... On an error it closes the
// ones it opened.
func openSessions(ctx context.Context, t *target, first, n int) ([]*ftpraw.Conn, error) {
	conns := make([]*ftpraw.Conn, n)
	errs := make([]error, idleWorkers)

	var wg sync.WaitGroup

	for w := range idleWorkers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += idleWorkers {
				conns[i], errs[w] = anonLoginFrom(ctx, t, clientAddress(first+i))
				if errs[w] != nil {
					errs[w] = fmt.Errorf("session %d of %d: %w", i+1, n, errs[w])
				}
			}
		})
	}

	wg.Wait()

	if err := firstError(errs); err != nil {
		closeSessions(conns)

		return nil, err
	}

	return conns, nil
}

// closeSessions quits every session, idleWorkers at a time; nil ones are
// skipped.
func closeSessions(conns []*ftpraw.Conn) {
	var wg sync.WaitGroup

	for w := range idleWorkers {
		wg.Go(func() {
			for i := w; i < len(conns); i += idleWorkers {
				if conns[i] != nil {
					_ = conns[i].Quit()
				}
			}
		})
	}

	wg.Wait()
}

// firstError is the first of errs that is not nil, saying how many more
// there were: a crowd of sessions tends to fail all alike.
func firstError(errs []error) error {
	var (
		first error
		more  int
	)

	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			more++
		}
	}

	if more > 0 {
		return fmt.Errorf("%w (and %d more)", first, more)
	}

	return first
}

// idleWarm is how many sessions are opened, and kept, before the memory
// rows' baseline: the first sessions of a fresh server page in code and
// runtime structures once, which is not a cost of each session.
const idleWarm = 50

// idleRunner opens idleWarm sessions, then n more logged-in sessions, and
// divides the growth of the server's PSS (all its processes) over the
// second batch by n. The server has just been restarted (scenario.fresh).
func idleRunner(n int) func(ctx context.Context, b *bench, t *target) (result, error) {
	return func(ctx context.Context, _ *bench, t *target) (result, error) {
		warm, err := openSessions(ctx, t, 0, idleWarm)
		if err != nil {
			return result{}, fmt.Errorf("warm-up: %w", err)
		}
		defer closeSessions(warm)

		time.Sleep(500 * time.Millisecond)

		before, procsBefore, err := t.pss()
		if err != nil {
			return result{}, err
		}

		conns, err := openSessions(ctx, t, idleWarm, n)
		if err != nil {
			return result{}, err
		}
		defer closeSessions(conns)

		// Let forked session processes finish starting up.
		time.Sleep(500*time.Millisecond + time.Duration(n)*50*time.Microsecond)

		after, procsAfter, err := t.pss()
		if err != nil {
			return result{}, err
		}

		return result{value: float64(after-before) / float64(n), ops: int64(n),
			detail: fmt.Sprintf("PSS %d KiB in %d processes after %d warm-up sessions, %d KiB in %d with %d more",
				before, procsBefore, idleWarm, after, procsAfter, n)}, nil
	}
}

// parRunner logs in n sessions, then, plan.repeat times, has them download
// the parallel curve's files at once, session i taking files i, i+n,
// i+2n...: every point moves the same bytes in the same files, only the
// number of sessions changes. The window runs from the first RETR to the
// last 226.
func parRunner(n int) func(ctx context.Context, b *bench, t *target) (result, error) {
	return func(ctx context.Context, b *bench, t *target) (result, error) {
		conns, err := openSessions(ctx, t, 0, n)
		if err != nil {
			return result{}, err
		}
		defer closeSessions(conns)

		files := b.fx.cpar
		size := b.plan.cparSize
		slot := func(i int) []byte { return b.arena[int64(i)*size : int64(i+1)*size] }

		var (
			total int64
			el    time.Duration
		)

		for range b.plan.repeat {
			clear(b.arena[:int64(len(files))*size])

			errs := make([]error, n)
			got := make([]int, len(files))

			var wg sync.WaitGroup

			b.win.start()

			for s, c := range conns {
				wg.Go(func() {
					for i := s; i < len(files) && errs[s] == nil; i += n {
						got[i], errs[s] = c.Retr(files[i].path, slot(i))
					}
				})
			}

			wg.Wait()

			el += b.win.stop()

			if err := firstError(errs); err != nil {
				return result{}, err
			}

			for i, f := range files {
				if err := verify(slot(i)[:got[i]], f); err != nil {
					return result{}, err
				}

				total += int64(got[i])
			}
		}

		r := throughput(total, el)
		r.detail = fmt.Sprintf("%d sessions, %d files each", n, (len(files)+n-1)/n)

		return r, nil
	}
}

// loginsRunner opens n idle sessions, then times anonymous sessions (as
// the anon row: connect, login, QUIT, anonWorkers at a time) with them open.
// The server's CPU is read around the timed sessions only.
func loginsRunner(n int) func(ctx context.Context, b *bench, t *target) (result, error) {
	return func(ctx context.Context, b *bench, t *target) (result, error) {
		conns, err := openSessions(ctx, t, 0, n)
		if err != nil {
			return result{}, err
		}
		defer closeSessions(conns)

		if n > 0 {
			time.Sleep(500 * time.Millisecond) // forked session processes finish starting up
		}

		held := len(procstat.Descendants(t.pid))

		span, err := t.beginCPU()
		if err != nil {
			return result{}, err
		}

		r, err := runSessions(ctx, &b.win, b.plan.sessionsFor, t, "anonymous", "bench@example.com", anonWorkers, nil)
		if err != nil {
			return result{}, err
		}

		t.settleTo(ctx, held)

		cpu, note, err := span.end()
		if err != nil {
			return result{}, err
		}

		r.cpu, r.cpuOwn = cpu, true
		r.detail = fmt.Sprintf("%s; %d idle sessions open", r.detail, n)

		if note != "" {
			r.detail += "; " + note
		}

		return r, nil
	}
}
