package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 14: password guessing spread over many addresses, against the
// account throttle.

const (
	guessAddrs   = 40               // guessing addresses, 127.0.0.2-41
	guessWorkers = 8                // guesses in flight at once
	guessFor     = 10 * time.Second // how long new guesses start
	ownerAddr    = 50               // the owner's address, known to wharf before the attack
	freshAddr    = 60               // the owner from an address wharf has never seen
	freshAfter   = 4 * time.Second  // into the attack, when the owner tries from freshAddr
	ownerEvery   = 500 * time.Millisecond
	ownerBound   = 2 * time.Second
	// checkInterval is the account throttle's spacing of the password
	// checks of one name from untrusted addresses (server/throttle.go).
	checkInterval = time.Second / 3
	// checksPerSecond bounds the checks seen to end in any 1 s: the throttle
	// starts at most 3 in any 1 s, and the end of a check (its 530, or the
	// counter's step) follows its start by the check's own time, a bcrypt
	// comparison that varies with the machine's load (by up to some 200 ms
	// here); so a 1 s window of ends can also catch one more whose start was
	// just before the window, never two while that variation stays under
	// checkInterval.
	checksPerSecond = 4
	// busyText is the 421 a login refused for its turn gets (auth.ErrBusy).
	busyText = "Too many logins in progress"
)

// guessTally is what the guessing addresses saw.
type guessTally struct {
	mu       sync.Mutex
	ends     []time.Time // when each 530 came: a password check ended
	perAddr  map[int]int // 530s by address
	busy     int         // PASS answered 421 "Too many logins in progress"
	timedOut int         // closed by login_timeout before the answer
	atConn   int         // refused at connect (a ban, or max_clients_per_ip)
	got230   int         // a guess that logged in: must never happen
	other    int
	firstErr string
}

func (g *guessTally) record(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()

	f()
}

// guessOnce makes one guess for alice from local: connect, USER, PASS with
// a wrong password.
func (g *guessTally) guessOnce(ctx context.Context, addr string, n, i int) {
	c, rep, err := dialFTP(ctx, localIP(n), addr)
	if err != nil {
		g.record(func() { g.other++; g.note(err.Error()) })

		return
	}
	defer c.Close()

	if rep.Code != 220 {
		g.record(func() { g.atConn++; g.note(rep.String()) })

		return
	}

	if rep, err = c.Cmd("USER " + aliceName); err == nil && rep.Code != 331 {
		err = &ftpraw.ReplyError{Cmd: "USER", Got: rep}
	}

	if err != nil {
		g.record(func() { g.other++; g.note(err.Error()) })

		return
	}

	rep, err = c.Cmd(fmt.Sprintf("PASS guess-%d", i))
	at := time.Now()

	g.record(func() {
		switch {
		case err != nil:
			g.other++
			g.note(err.Error())
		case rep.Code == 530:
			g.ends = append(g.ends, at)
			g.perAddr[n]++
		case rep.Code == 421 && strings.Contains(rep.Msg, busyText):
			g.busy++
		case rep.Code == 421 && strings.Contains(rep.Msg, "Login timeout"):
			g.timedOut++
		case rep.Code == 230:
			g.got230++
		default:
			g.other++
			g.note(rep.String())
		}
	})
}

func (g *guessTally) note(msg string) {
	if g.firstErr == "" {
		g.firstErr = msg
	}
}

// mostFromOneAddress is the most 530s one guessing address got.
func (g *guessTally) mostFromOneAddress() int {
	most := 0
	for _, n := range g.perAddr {
		most = max(most, n)
	}

	return most
}

// guess runs guessWorkers guessing loops until until: each guess a fresh
// connection from the guessing address idle longest, so that no address has
// two guesses in flight (wharf would check them one after the other). An
// address that got maxFailures-1 answers 530 is retired, as an attacker who
// knows the ban threshold would. Guesses started before until run to their end.
func guess(ctx context.Context, addr string, until time.Time, maxFailures int) *guessTally {
	g := &guessTally{perAddr: make(map[int]int)}

	idle := make(chan int, guessAddrs)
	for n := 2; n < 2+guessAddrs; n++ {
		idle <- n
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	for range guessWorkers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(until) {
				var n int
				select {
				case n = <-idle:
				default:
					g.record(func() { g.note("every guessing address retired") })

					return
				}

				g.guessOnce(ctx, addr, n, int(next.Add(1)))

				g.mu.Lock()
				spent := g.perAddr[n] >= maxFailures-1
				g.mu.Unlock()

				if !spent {
					idle <- n
				}
			}
		})
	}

	wg.Wait()

	return g
}

// sample is one reading of a counter.
type sample struct {
	at time.Time
	v  float64
}

// sampleMetric reads series every 100 ms until stop is closed.
func sampleMetric(ctx context.Context, w *wharf, series string, stop <-chan struct{}) []sample {
	var out []sample

	for {
		if v, err := w.metric(ctx, series); err == nil {
			out = append(out, sample{at: time.Now(), v: v})
		}

		select {
		case <-stop:
			return out
		case <-ctx.Done():
			return out
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mostInWindow is the most times that fall in any window of length d.
func mostInWindow(ts []time.Time, d time.Duration) int {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })

	most, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= d {
			j++
		}

		most = max(most, i-j+1)
	}

	return most
}

// mostStepWithin is the largest rise of a counter between two samples taken
// at most d apart.
func mostStepWithin(samples []sample, d time.Duration) int {
	most := 0
	for i := range samples {
		for j := i + 1; j < len(samples) && samples[j].at.Sub(samples[i].at) <= d; j++ {
			most = max(most, int(samples[j].v-samples[i].v))
		}
	}

	return most
}

// minGap is the shortest time between two consecutive times.
func minGap(ts []time.Time) time.Duration {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })

	gap := time.Duration(-1)
	for i := 1; i < len(s); i++ {
		if d := s[i].Sub(s[i-1]); gap < 0 || d < gap {
			gap = d
		}
	}

	return gap
}

// ownerLogins logs alice in from local every ownerEvery until stop is
// closed, with the right password, and times each from connect to 230.
func ownerLogins(ctx context.Context, addr string, local net.IP, stop <-chan struct{}) (times []time.Duration, failures []string) {
	for {
		start := time.Now()

		c, err := dialAndLogin(ctx, local, addr, aliceName, alicePassword)
		if err != nil {
			failures = append(failures, err.Error())
		} else {
			times = append(times, time.Since(start))
			quit(c)
		}

		select {
		case <-stop:
			return times, failures
		default:
		}

		if sleep(ctx, time.Until(start.Add(ownerEvery))) != nil {
			return times, failures
		}
	}
}

// freshLogin is how the owner's login from an address wharf has never seen went.
type freshLogin struct {
	attempts int
	took     time.Duration // the attempt that got in: connect to 230
	total    time.Duration // from the first attempt to the 230
	at       time.Time     // when the 230 came
	err      error
}

// loginFresh logs alice in from local, an address wharf has never seen,
// trying again at once on "421 Too many logins in progress" until it gets in
// or the time is past until.
func loginFresh(ctx context.Context, addr string, local net.IP, until time.Time) freshLogin {
	var f freshLogin

	first := time.Now()
	for time.Now().Before(until) {
		f.attempts++
		start := time.Now()

		c, err := dialAndLogin(ctx, local, addr, aliceName, alicePassword)
		if err == nil {
			f.at = time.Now()
			f.took, f.total = f.at.Sub(start), f.at.Sub(first)
			quit(c)

			return f
		}

		f.err = err
		if re, ok := errors.AsType[*ftpraw.ReplyError](err); !ok || re.Got.Code != 421 || !strings.Contains(re.Got.Msg, busyText) {
			return f
		}
	}

	return f
}

// runGuessing is scenario 14.
func runGuessing(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.loginTimeout = "3s" // a login waits for its turn at most 2.5 s: eight guessers overrun the queue

	w, err := s.start(ctx, "guessing", st)
	if err != nil {
		return err
	}
	defer w.stop()

	lt, err := time.ParseDuration(st.loginTimeout)
	if err != nil {
		return err
	}

	// The owner logs in once before the attack, so wharf knows its address.
	c, err := dialAndLogin(ctx, localIP(ownerAddr), w.addr, aliceName, alicePassword)
	if err != nil {
		return fmt.Errorf("owner's first login: %w", err)
	}
	quit(c)

	before, err := w.metrics(ctx)
	if err != nil {
		return err
	}

	stop := make(chan struct{})
	var samples []sample
	var owner []time.Duration
	var ownerFailures []string
	var fresh freshLogin

	start := time.Now()
	until := start.Add(guessFor)

	var wg sync.WaitGroup
	wg.Go(func() { samples = sampleMetric(ctx, w, failureSeries, stop) })
	wg.Go(func() { owner, ownerFailures = ownerLogins(ctx, w.addr, localIP(ownerAddr), stop) })
	wg.Go(func() {
		if sleep(ctx, freshAfter) == nil {
			fresh = loginFresh(ctx, w.addr, localIP(freshAddr), until)
		}
	})

	g := guess(ctx, w.addr, until, st.maxFailures)
	span := time.Since(start)

	close(stop)
	wg.Wait()

	after, err := w.metrics(ctx)
	if err != nil {
		return err
	}

	delta := func(series string) int { return int(after[series] - before[series]) }
	failures := delta(failureSeries)
	successes := delta(`wharf_logins_total{result="success"}`)
	freshIn := !fresh.at.IsZero()

	// Every guess checked started and ended within span, each turn at least
	// checkInterval after the one before. (The owner's login from the new
	// address took a turn too, but is no guess: its check is shorter, its
	// password being in wharf's cache, and it is left out.)
	most, inAll := mostInWindow(g.ends, time.Second), int(span/checkInterval)+1
	r.check("guesses checked, as the guessers saw their 530", most <= checksPerSecond && len(g.ends) <= inAll,
		fmt.Sprintf("≤ %d in any 1 s (3 turns 1/3 s apart, + 1 for the check's own time), ≤ %d in all (one at the start, then one each 1/3 s)", checksPerSecond, inAll),
		"most in 1 s: %d; %d in %s (%.2f/s); closest two %s apart",
		most, len(g.ends), ms(span), float64(len(g.ends))/span.Seconds(), ms(minGap(g.ends)))

	step := mostStepWithin(samples, time.Second)
	r.check("guesses checked, as wharf counted them", step <= checksPerSecond && failures == len(g.ends),
		fmt.Sprintf("≤ %d between two readings ≤ 1 s apart; every failure counted was answered 530", checksPerSecond),
		"most between readings ≤ 1 s apart: %d (%d readings, every 100 ms); %d failures counted (%s), %d answered 530",
		step, len(samples), failures, failureSeries, len(g.ends))

	freshRefused := fresh.attempts - boolInt(freshIn)
	r.note("guesses refused for their turn", "%d answered \"421 %s\" (their turn too late for their login time), %d closed by login_timeout (%s), %d refused at connect, %d other%s; wharf counted %d refused (wharf_logins_total{result=\"refused\"}), these and the owner's %d from the new address",
		g.busy, busyText, g.timedOut, ms(lt), g.atConn, g.other, errNote(g.firstErr), delta(`wharf_logins_total{result="refused"}`), freshRefused)

	bans, _ := w.metric(ctx, "wharf_bans")
	r.check("no guess got in, no guessing address banned", g.got230 == 0 && successes == len(owner)+boolInt(freshIn) && bans == 0 && g.atConn == 0,
		fmt.Sprintf("no 230; logins counted = the owner's; wharf_bans 0 (each address makes at most max_failures - 1 = %d wrong guesses)", st.maxFailures-1),
		"%d guesses got 230; %d logins counted, %d were the owner's; wharf_bans %v; most 530s to one address %d",
		g.got230, successes, len(owner)+boolInt(freshIn), bans, g.mostFromOneAddress())

	firstFailure := ""
	if len(ownerFailures) > 0 {
		firstFailure = ownerFailures[0]
	}

	r.check("the owner's logins from its known address during the attack",
		len(ownerFailures) == 0 && len(owner) >= int(guessFor/ownerEvery)-1 && pct(owner, 100) <= ownerBound,
		fmt.Sprintf("all succeed, every one within %s", ms(ownerBound)),
		"%d of %d succeeded%s; %s", len(owner), len(owner)+len(ownerFailures), errNote(firstFailure), spread(owner))

	freshErr := ""
	if !freshIn && fresh.err != nil {
		freshErr = errNote(fresh.err.Error())
	}

	r.check("the owner from a never-seen address, retrying at once on 421", freshIn && fresh.took <= lt,
		fmt.Sprintf("gets in while the guessing goes on, the attempt that does within login_timeout (%s)", ms(lt)),
		"%d attempt(s), got in %s after the first%s; the last took %s", fresh.attempts, ms(fresh.total), freshErr, ms(fresh.took))

	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}

	return 0
}
