package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"wharf/internal/ftpraw"
)

// Scenarios 1-3: too many connections, slow connections, silent TLS connections.

// parallel runs fn(0) ... fn(n-1) on at most workers goroutines and waits.
func parallel(n, workers int, fn func(i int)) {
	next := make(chan int)

	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}

	for i := range n {
		next <- i
	}

	close(next)
	wg.Wait()
}

// knocks tallies connection attempts: who was greeted (220), who refused (421).
type knocks struct {
	mu       sync.Mutex
	greeted  []time.Duration // connect → 220
	refused  []time.Duration // connect → 421
	other    int             // anything else: an error, no reply, another code
	firstErr string
	held     []*ftpraw.Conn // greeted connections, kept open
}

// knock connects from local and reads the first reply, timed from the
// moment the TCP connection is established. Greeted connections are kept.
func (k *knocks) knock(ctx context.Context, local net.IP, addr string) {
	nc, err := dialTCP(ctx, local, addr)
	if err != nil {
		k.fail(err.Error())

		return
	}

	start := time.Now()
	c := ftpraw.New(ctx, nc, addr, options(local))
	rep, err := c.ReadWithin(5 * time.Second)
	took := time.Since(start)

	k.mu.Lock()
	defer k.mu.Unlock()

	switch {
	case err == nil && rep.Code == 220:
		k.greeted = append(k.greeted, took)
		k.held = append(k.held, c)

		return
	case err == nil && rep.Code == 421:
		k.refused = append(k.refused, took)
	default:
		k.other++
		if k.firstErr == "" {
			k.firstErr = fmt.Sprintf("%v %v", rep, err)
		}
	}

	c.Close()
}

func (k *knocks) fail(msg string) {
	k.mu.Lock()
	defer k.mu.Unlock()

	k.other++
	if k.firstErr == "" {
		k.firstErr = msg
	}
}

// counts returns the tally so far.
func (k *knocks) counts() (greeted, refused, other int) {
	k.mu.Lock()
	defer k.mu.Unlock()

	return len(k.greeted), len(k.refused), k.other
}

// runFlood is scenario 1: 5,000 connections from one IP and 1,600 from 100
// IPs, held idle, while fresh IPs connect.
func runFlood(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout = "60s", "60s" // the flood stays connected; only the caps act
	st.maxClients = 2000                           // 16 + 1,600 held, the fresh probes, and room

	w, err := s.start(ctx, "flood", st)
	if err != nil {
		return err
	}
	defer w.stop()

	if c, err := login(ctx, localIP(1), w.addr, "anonymous", "warm@up"); err == nil {
		quit(c)
	}

	base, err := w.baseline(ctx)
	if err != nil {
		return err
	}

	perIP := st.maxClientsPerIP

	// 1,600 from 127.0.0.2-101, 16 each: all admitted. Then a 17th from each: refused.
	var many knocks
	parallel(100*perIP, 100, func(i int) { many.knock(ctx, localIP(2+i/perIP), w.addr) })
	manyGreeted, _, manyOther := many.counts()

	var extra knocks
	parallel(100, 50, func(i int) { extra.knock(ctx, localIP(2+i), w.addr) })
	_, extraRefused, extraOther := extra.counts()

	// 5,000 from 127.0.0.1 (200 at a time), while 50 fresh IPs (127.0.0.102-151)
	// connect one every 20 ms.
	var flood knocks
	var fresh []time.Duration
	freshGreeted := 0

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 50 {
			_ = sleep(ctx, 20*time.Millisecond)

			start := time.Now()
			c, rep, err := dialFTP(ctx, localIP(102+i), w.addr)
			if err != nil {
				continue
			}

			if rep.Code == 220 {
				fresh = append(fresh, time.Since(start))
				freshGreeted++
			}

			quit(c)
		}
	})

	floodStart := time.Now()
	parallel(5000, 200, func(int) { flood.knock(ctx, localIP(1), w.addr) })
	floodTook := time.Since(floodStart)
	wg.Wait()

	floodGreeted, floodRefused, floodOther := flood.counts()
	held := slices.Concat(many.held, flood.held)

	r.check("flood IP (127.0.0.1): sessions admitted", floodGreeted == perIP, fmt.Sprintf("exactly max_clients_per_ip = %d", perIP),
		"%d of 5,000 got 220", floodGreeted)
	r.check("flood IP: the rest refused with 421", floodRefused == 5000-perIP && floodOther == 0, "all the rest get 421",
		"%d got 421, %d other%s (5,000 connects in %s)", floodRefused, floodOther, errNote(flood.firstErr), ms(floodTook))
	r.check("100 IPs: 16 admitted each, the 17th refused", manyGreeted == 100*perIP && manyOther == 0 && extraRefused == 100 && extraOther == 0,
		"1,600 get 220, 100 get 421", "%d got 220 (%d other); 17th: %d got 421 (%d other)", manyGreeted, manyOther, extraRefused, extraOther)

	refusals := slices.Concat(flood.refused, extra.refused)
	r.check("421 answered after connect", len(refusals) > 0 && pct(refusals, 99) <= 100*time.Millisecond, "p99 ≤ 100 ms",
		"%s over %d refusals", spread(refusals), len(refusals))
	r.check("fresh IP gets its 220 during the flood", freshGreeted == 50 && pct(fresh, 99) <= time.Second, "50 of 50, p99 ≤ 1 s",
		"%d of 50; %s", freshGreeted, spread(fresh))

	peak, _ := w.usage(ctx)

	var alive sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for _, c := range held {
		alive.Go(func() {
			if rep, err := c.Cmd("NOOP"); err == nil && rep.Code == 200 {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	alive.Wait()

	r.check("held sessions still open after the flood", answered == len(held) && len(held) == 100*perIP+perIP,
		fmt.Sprintf("all %d answer NOOP", 100*perIP+perIP), "%d of %d", answered, len(held))

	for _, c := range held {
		c.Close()
	}

	after, took, ok := w.settle(ctx, base, 5*time.Second)
	r.check("fds and goroutines back to baseline after closing", ok, "within 5 s",
		"%s held → %s in %s (baseline %s)", peak, after, ms(took), base)

	return nil
}

func errNote(first string) string {
	if first == "" {
		return ""
	}

	return " (first: " + first + ")"
}

// attackers is a group of slow clients that all expect to be closed at one timeout.
type attackers struct {
	name    string
	n       int
	firstIP int           // clients use 127.0.0.firstIP and up, 16 per address
	login   bool          // log in anonymously first
	noop    bool          // send NOOP every second instead of one byte
	timeout time.Duration // when wharf should close them

	mu       sync.Mutex
	closedAt []time.Duration // from the greeting (or the login) to the close
	open     int             // still open 20 s later
	failed   int             // could not even connect
	firstErr string
}

// attack connects one client and plays it until wharf closes it (20 s at most).
func (a *attackers) attack(ctx context.Context, addr string, local net.IP, gate chan struct{}) {
	gate <- struct{}{}
	c, rep, err := dialFTP(ctx, local, addr)
	if err == nil && rep.Code != 220 {
		c.Close()
		err = &ftpraw.ReplyError{Cmd: "connect", Got: rep}
	}

	if err == nil && a.login {
		if err = c.Login("anonymous", "slow@loris"); err != nil {
			c.Close()
		}
	}
	<-gate

	if err != nil {
		a.mu.Lock()
		a.failed++
		if a.firstErr == "" {
			a.firstErr = err.Error()
		}
		a.mu.Unlock()

		return
	}
	defer c.Close()

	// login_timeout runs from the greeting, idle_timeout from the last command (PASS).
	start := time.Now()
	closed := make(chan time.Time, 1)

	go func() {
		at, ok := ftpraw.WaitClosed(c.NetConn(), start.Add(20*time.Second))
		if !ok {
			at = time.Time{}
		}
		closed <- at
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	for i := 0; ; i++ {
		select {
		case at := <-closed:
			a.mu.Lock()
			if at.IsZero() {
				a.open++
			} else {
				a.closedAt = append(a.closedAt, at.Sub(start))
			}
			a.mu.Unlock()

			return
		case <-tick.C:
			_ = c.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
			if a.noop {
				_, _ = c.NetConn().Write([]byte("NOOP\r\n"))
			} else {
				_, _ = c.NetConn().Write([]byte{"NOOP"[i%4]})
			}
		}
	}
}

// report checks that every client was closed at the timeout, within +2 s.
func (a *attackers) report(r *result, which string) {
	late := 0
	early := 0
	for _, d := range a.closedAt {
		if d > a.timeout+2*time.Second {
			late++
		}

		if d < a.timeout-250*time.Millisecond {
			early++
		}
	}

	ok := len(a.closedAt) == a.n && late == 0 && early == 0
	r.check(a.name, ok, fmt.Sprintf("all closed at %s = %s, none after %s", which, a.timeout, a.timeout+2*time.Second),
		"%d of %d closed (%d open at 20 s, %d failed to connect%s), %d early, %d late; %s",
		len(a.closedAt), a.n, a.open, a.failed, errNote(a.firstErr), early, late, spread(a.closedAt))
}

// runSlowloris is scenario 2: slow clients are closed at login_timeout
// (not logged in) or idle_timeout (logged in) while real logins go on.
func runSlowloris(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	loginTimeout, _ := time.ParseDuration(st.loginTimeout)
	idleTimeout, _ := time.ParseDuration(st.idleTimeout)

	w, err := s.start(ctx, "slowloris", st)
	if err != nil {
		return err
	}
	defer w.stop()

	groups := []*attackers{
		{name: "500 not logged in, one byte a second", n: 500, firstIP: 2, timeout: loginTimeout},
		{name: "500 not logged in, NOOP every second", n: 500, firstIP: 40, noop: true, timeout: loginTimeout},
		{name: "100 logged in (anonymous), one byte a second", n: 100, firstIP: 80, login: true, timeout: idleTimeout},
	}

	// Real logins from 127.0.0.200 every 200 ms while the attack runs.
	stop := make(chan struct{})
	var logins []time.Duration
	var loginFailures []string

	var honest sync.WaitGroup
	honest.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()

		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}

			start := time.Now()
			c, rep, err := dialFTP(ctx, localIP(200), w.addr)
			if err == nil && rep.Code != 220 {
				err = &ftpraw.ReplyError{Cmd: "connect", Got: rep}
			}

			if err == nil {
				err = c.Login(aliceName, alicePassword)
			}

			if err != nil {
				loginFailures = append(loginFailures, err.Error())
			} else {
				logins = append(logins, time.Since(start))
			}

			if c != nil {
				quit(c)
			}
		}
	})

	gate := make(chan struct{}, 100) // at most 100 connecting at once
	var wg sync.WaitGroup

	for _, g := range groups {
		for i := range g.n {
			wg.Go(func() { g.attack(ctx, w.addr, localIP(g.firstIP+i/16), gate) })
		}
	}

	wg.Wait()
	close(stop)
	honest.Wait()

	groups[0].report(r, "login_timeout")
	groups[1].report(r, "login_timeout")
	groups[2].report(r, "idle_timeout")

	first := ""
	if len(loginFailures) > 0 {
		first = loginFailures[0]
	}

	r.check("real logins every 200 ms during the attack", len(loginFailures) == 0 && len(logins) > 0, "all succeed",
		"%d of %d succeeded%s; %s", len(logins), len(logins)+len(loginFailures), errNote(first), spread(logins))

	return nil
}

// firstDeadline is wharf's fixed deadline for the greeting and the implicit-TLS handshake.
const firstDeadline = 10 * time.Second

// runTLSHandshake is scenario 3: on the implicit-TLS port, clients that say
// nothing or stop half-way through the handshake are closed at the first deadline.
func runTLSHandshake(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.implicitTLS = true
	st.idleTimeout, st.loginTimeout = "60s", "60s" // only the first deadline may close them

	w, err := s.start(ctx, "tls", st)
	if err != nil {
		return err
	}
	defer w.stop()

	silent := &attackers{name: "500 silent connections", n: 500, firstIP: 2, timeout: firstDeadline}
	half := &attackers{name: "500 half-handshakes (ClientHello cut short)", n: 500, firstIP: 40, timeout: firstDeadline}

	var connected, wg sync.WaitGroup
	gate := make(chan struct{}, 100)

	for _, g := range []*attackers{silent, half} {
		for i := range g.n {
			connected.Add(1)
			wg.Go(func() { g.handshake(ctx, w.addr, localIP(g.firstIP+i/16), g == half, gate, &connected) })
		}
	}

	connected.Wait()

	// While the 1,000 are held, a real TLS client still gets its greeting.
	greeted, took, err := tlsGreeting(ctx, s, w.addr)
	if err != nil {
		greeted = false
	}

	wg.Wait()

	for _, g := range []*attackers{silent, half} {
		late := 0
		for _, d := range g.closedAt {
			if d > firstDeadline+2*time.Second {
				late++
			}
		}

		r.check(g.name, len(g.closedAt) == g.n && late == 0, "all closed by the first deadline (10 s), none after 12 s",
			"%d of %d closed (%d open at 20 s, %d failed to connect%s), %d late; %s",
			len(g.closedAt), g.n, g.open, g.failed, errNote(g.firstErr), late, spread(g.closedAt))
	}

	r.check("a real TLS client is greeted while they are held", greeted && took <= time.Second, "220 within 1 s",
		"greeted %v in %s%s", greeted, ms(took), errNote(errText(err)))

	return nil
}

// handshake connects, sends nothing or the first 43 bytes of a ClientHello
// that announces 256, and waits until wharf closes the connection.
func (a *attackers) handshake(ctx context.Context, addr string, local net.IP, half bool, gate chan struct{}, connected *sync.WaitGroup) {
	gate <- struct{}{}
	nc, err := dialTCP(ctx, local, addr)
	start := time.Now()

	if err == nil && half {
		hello := []byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc, 0x03, 0x03}
		random := make([]byte, 32)
		_, _ = rand.Read(random)
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, err = nc.Write(append(hello, random...))
	}
	<-gate
	connected.Done()

	if err != nil {
		a.mu.Lock()
		a.failed++
		if a.firstErr == "" {
			a.firstErr = err.Error()
		}
		a.mu.Unlock()

		if nc != nil {
			_ = nc.Close()
		}

		return
	}
	defer nc.Close()

	at, ok := ftpraw.WaitClosed(nc, start.Add(20*time.Second))

	a.mu.Lock()
	defer a.mu.Unlock()

	if ok {
		a.closedAt = append(a.closedAt, at.Sub(start))
	} else {
		a.open++
	}
}

// tlsGreeting connects from 127.0.0.250 with a TLS client that trusts the
// suite's certificate and times the greeting.
func tlsGreeting(ctx context.Context, s *suite, addr string) (bool, time.Duration, error) {
	certFile, _, err := s.certificate()
	if err != nil {
		return false, 0, err
	}

	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		return false, 0, err
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)

	start := time.Now()
	nc, err := dialTCP(ctx, localIP(250), addr)
	if err != nil {
		return false, 0, err
	}

	tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	c := ftpraw.New(ctx, tc, addr, options(localIP(250)))
	defer c.Close()

	rep, err := c.ReadWithin(5 * time.Second)

	return err == nil && rep.Code == 220, time.Since(start), err
}

func errText(err error) string {
	if err == nil {
		return ""
	}

	return err.Error()
}
