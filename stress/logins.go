package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 4: brute force against the ban list and the bcrypt bound.

// failureSeries counts password checks that failed: each is one bcrypt
// comparison. PASS without USER checks no password: it gets 503 and is not counted.
const failureSeries = `wharf_logins_total{result="failure"}`

// guesses tallies a brute-force run: one connection per attempt.
type guesses struct {
	mu       sync.Mutex
	banned   []int // attempts refused at connect with the ban's 421
	wrong    int   // attempts answered 530
	busy     int   // PASS answered 421: wharf's bcrypt slots were full
	sequence int   // PASS answered 503: no USER came before it
	capped   int   // refused at connect by max_clients_per_ip (a slot not yet released)
	other    int
	firstErr string
}

// guess makes attempt i: connect from local, then try (USER + PASS, or PASS alone).
func (g *guesses) guess(ctx context.Context, addr string, local net.IP, i int, passOnly bool) {
	c, rep, err := dialFTP(ctx, local, addr)
	if err != nil {
		g.record(func() { g.other++; g.note(err.Error()) })

		return
	}
	defer c.Close()

	if rep.Code == 421 {
		if strings.Contains(rep.Msg, "banned") {
			g.record(func() { g.banned = append(g.banned, i) })
		} else {
			g.record(func() { g.capped++ })
		}

		return
	}

	if !passOnly {
		if rep, err = c.Cmd("USER " + aliceName); err == nil && rep.Code != 331 {
			err = &ftpraw.ReplyError{Cmd: "USER", Got: rep}
		}

		if err != nil {
			g.record(func() { g.other++; g.note(err.Error()) })

			return
		}
	}

	rep, err = c.Cmd(fmt.Sprintf("PASS wrong-%d", i))

	g.record(func() {
		switch {
		case err != nil:
			g.other++
			g.note(err.Error())
		case rep.Code == 530:
			g.wrong++
		case rep.Code == 503:
			g.sequence++
		case rep.Code == 421:
			g.busy++
		default:
			g.other++
			g.note(rep.String())
		}
	})
}

func (g *guesses) record(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()

	f()
}

func (g *guesses) note(msg string) {
	if g.firstErr == "" {
		g.firstErr = msg
	}
}

// attack makes n attempts from local on workers connections at a time.
func attack(ctx context.Context, addr string, local net.IP, n, workers int, passOnly bool) *guesses {
	g := &guesses{}
	parallel(n, workers, func(i int) { g.guess(ctx, addr, local, i+1, passOnly) })
	slices.Sort(g.banned)

	return g
}

// firstBanned is the number of the first attempt refused at connect, and
// whether every attempt after it was refused too.
func (g *guesses) firstBanned(n int) (int, bool) {
	if len(g.banned) == 0 {
		return 0, false
	}

	first := g.banned[0]

	return first, len(g.banned) == n-first+1
}

// runBruteForce is scenario 4.
func runBruteForce(ctx context.Context, s *suite, r *result) error {
	comparison, err := loginTiming(ctx, s, r)
	if err != nil {
		return err
	}

	st := defaults()
	st.idleTimeout, st.loginTimeout = "30s", "30s"

	w, err := s.start(ctx, "brute-force", st)
	if err != nil {
		return err
	}
	defer w.stop()

	procs, err := w.metric(ctx, "go_sched_gomaxprocs_threads")
	if err != nil {
		return err
	}

	// The honest user, from 127.0.0.250, logs in once a second throughout.
	// Each attempt is announced on tick, so that one of them can be placed
	// inside the parallel burst: the burst lasts well under a second, as the
	// ban ends it.
	stop := make(chan struct{})
	tick := make(chan struct{}, 1)
	var honest []time.Duration
	var honestFailures []string

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			start := time.Now()
			select {
			case tick <- struct{}{}:
			default:
			}

			c, err := dialAndLogin(ctx, localIP(250), w.addr, aliceName, alicePassword)
			if err != nil {
				honestFailures = append(honestFailures, err.Error())
			} else {
				honest = append(honest, time.Since(start))
				quit(c)
			}

			select {
			case <-stop:
				if i >= 9 {
					return
				}
			default:
			}

			if sleep(ctx, time.Until(start.Add(time.Second))) != nil {
				return
			}
		}
	})

	count := func() int {
		v, err := w.metric(ctx, failureSeries)
		if err != nil {
			return -1
		}

		return int(v)
	}

	maxF := st.maxFailures
	c0 := count()
	seq := attack(ctx, w.addr, localIP(20), 1000, 1, false)
	c1 := count()

	select {
	case <-tick: // drop a stale announcement
	default:
	}

	select {
	case <-tick:
	case <-ctx.Done():
		return ctx.Err()
	}

	// Start the burst 900 ms after an honest login, so the next one comes
	// 100 ms into it, while 16 attempts compete for the bcrypt slots.
	if err := sleep(ctx, 900*time.Millisecond); err != nil {
		return err
	}

	par := attack(ctx, w.addr, localIP(21), 1000, 16, false)
	c2 := count()
	passOnly := attack(ctx, w.addr, localIP(22), 20, 1, true)
	c3 := count()

	close(stop)
	wg.Wait()

	first, rest := seq.firstBanned(1000)
	r.check("sequential: banned after exactly max_failures", first == maxF+1 && rest && seq.wrong == maxF && seq.other == 0,
		fmt.Sprintf("attempts 1-%d get 530, attempt %d and all after get 421 at connect", maxF, maxF+1),
		"%d got 530, first 421 at attempt %d, %d of 1,000 refused at connect, %d other%s",
		seq.wrong, first, len(seq.banned), seq.other, errNote(seq.firstErr))
	r.check("sequential: password checks counted", c1-c0 == maxF, fmt.Sprintf("= max_failures = %d", maxF),
		"%d (%s)", c1-c0, failureSeries)

	// In parallel, attempts already past the ban check when the ban lands may
	// still finish their bcrypt comparison: at most one per bcrypt slot
	// (GOMAXPROCS) less the one that banned.
	inFlight := int(procs) - 1
	first, rest = par.firstBanned(1000)
	r.check("16 parallel: password checks counted", c2-c1 >= maxF && c2-c1 <= maxF+inFlight,
		fmt.Sprintf("max_failures = %d, + at most %d comparison(s) already running when the ban landed (GOMAXPROCS %d)", maxF, inFlight, int(procs)),
		"%d; %d got 530, %d got 421 busy, %d refused at connect (banned), %d by the per-IP cap, %d other%s; failures logged after the ban: %s (one comparison takes %s)",
		c2-c1, par.wrong, par.busy, len(par.banned), par.capped, par.other, errNote(par.firstErr), afterBan(w, "127.0.0.21"), ms(comparison))
	r.check("16 parallel: every later attempt refused at connect", rest && first > 0, "all attempts after the first 421 at connect",
		"first at attempt %d, %d refused", first, len(par.banned))

	r.check("PASS without USER is refused and checks no password", passOnly.sequence == 20 && len(passOnly.banned) == 0 && c3-c2 == 0,
		"all 20 get 503, none counted as a failure, no ban",
		"%d got 503, %d got 530, %d refused at connect, %d other%s; %d failures counted",
		passOnly.sequence, passOnly.wrong, len(passOnly.banned), passOnly.other, errNote(passOnly.firstErr), c3-c2)

	bans, _ := w.metric(ctx, "wharf_bans")
	r.check("addresses banned", bans == 2, "2 (127.0.0.20, .21), not the honest user, nor .22 which sent PASS alone", "wharf_bans %v", bans)

	firstFailure := ""
	if len(honestFailures) > 0 {
		firstFailure = honestFailures[0]
	}

	r.check("the other IP's logins during the attack", len(honestFailures) == 0 && len(honest) >= 10 && pct(honest, 99) < 1500*time.Millisecond,
		"all succeed, p99 < 1.5 s", "%d of %d succeeded%s; %s", len(honest), len(honest)+len(honestFailures), errNote(firstFailure), spread(honest))

	return nil
}

// afterBan lists, from wharf's log, how long after ip's ban each of its
// failed logins was logged. A failure is logged when its bcrypt comparison
// ends, so one logged more than a comparison's time after the ban began after it.
func afterBan(w *wharf, ip string) string {
	lines, err := w.logLines()
	if err != nil {
		return err.Error()
	}

	var banned time.Time
	var lags []string

	for _, l := range lines {
		switch {
		case l.Msg == "address banned" && l.IP == ip:
			banned = l.Time
		case l.Msg == "login failed" && !banned.IsZero() && strings.HasPrefix(l.Remote, ip+":") && l.Time.After(banned):
			lags = append(lags, "+"+ms(l.Time.Sub(banned)))
		}
	}

	if banned.IsZero() {
		return "no ban logged"
	}

	if len(lags) == 0 {
		return "none"
	}

	return strings.Join(lags, ", ")
}

// dialAndLogin connects and logs in once, without retrying on 421: login
// (ftp.go) without its retries, taking the same arguments.
func dialAndLogin(ctx context.Context, local net.IP, addr, user, pass string) (*ftpraw.Conn, error) { //nolint:unparam // every caller so far logs in as alice; the account stays an argument, as login's
	c, rep, err := dialFTP(ctx, local, addr)
	if err != nil {
		return nil, err
	}

	if rep.Code != 220 {
		c.Close()

		return nil, &ftpraw.ReplyError{Cmd: "connect", Got: rep}
	}

	if err := c.Login(user, pass); err != nil {
		c.Close()

		return nil, err
	}

	return c, nil
}

// loginTiming compares the reply time to PASS for a known user with a wrong
// password and for an unknown user, on an instance whose ban threshold is
// out of reach. It returns the median for the known user: one bcrypt comparison.
//
// wharf starts the password checks of one name from an address that never
// logged in to it at least 1/3 s apart (its account throttle), whether the
// name exists or not; the known user's attempts, one name used 20 times, are
// paced beyond that, so that each reply time is the check's own and not a
// wait for the name's turn (which the unknown names, each used once, never have).
func loginTiming(ctx context.Context, s *suite, r *result) (time.Duration, error) {
	st := defaults()
	st.maxFailures = 100000

	w, err := s.start(ctx, "login-timing", st)
	if err != nil {
		return 0, err
	}
	defer w.stop()

	var known, unknown []time.Duration
	var lastKnown time.Time

	for i := range 40 {
		name := aliceName
		if i%2 == 1 {
			name = fmt.Sprintf("nobody-%d", i)
		}

		c, rep, err := dialFTP(ctx, localIP(30), w.addr)
		if err != nil {
			return 0, err
		}

		if rep.Code == 220 {
			rep, err = c.Cmd("USER " + name)
		}

		if err != nil || rep.Code != 331 {
			c.Close()

			return 0, fmt.Errorf("USER %s: %v %w", name, rep, err)
		}

		if name == aliceName {
			if err := sleep(ctx, time.Until(lastKnown.Add(400*time.Millisecond))); err != nil {
				c.Close()

				return 0, err
			}

			lastKnown = time.Now()
		}

		start := time.Now()
		rep, err = c.Cmd("PASS wrong")
		took := time.Since(start)
		c.Close()

		if err != nil || rep.Code != 530 {
			return 0, fmt.Errorf("PASS for %s: %v %w", name, rep, err)
		}

		if name == aliceName {
			known = append(known, took)
		} else {
			unknown = append(unknown, took)
		}
	}

	diff := (pct(known, 50) - pct(unknown, 50)).Abs()
	r.check("known vs unknown user: PASS reply time", diff <= 50*time.Millisecond, "medians within 50 ms",
		"median %s (known, wrong password) vs %s (unknown), difference %s, 20 each", ms(pct(known, 50)), ms(pct(unknown, 50)), ms(diff))

	return pct(known, 50), nil
}
