package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// passiveIdle is how long a passive port keeps listening after its last
	// data connection, for the next PASV to take without a new bind(2)
	// (which walks every TIME_WAIT socket of the port: under a stream of
	// small transfers, a bind per PASV halves the rate).
	passiveIdle = 10 * time.Second
	// unclaimedTimeout frees a port that no reply announced: the engine
	// dropped its listener without closing it (it does on a few error paths).
	unclaimedTimeout = 10 * time.Second
	// portWait is how long a PASV waits for a port when every port of the
	// range is held by a PASV whose data connection has not arrived yet: a
	// port is held only for that moment, so a burst of sessions larger than
	// the range is served in turn rather than refused.
	portWait = 2 * time.Second
)

// errNoPassivePort is the engine's reply text after "Could not listen for
// passive connection: " when every candidate port is taken.
var errNoPassivePort = errors.New("no free passive port, try again later")

// passivePorts are wharf's passive data ports. The engine (v0.32.3) offers no
// way to choose where a passive port listens: each of its three ways to open
// one binds every interface (transfer_pasv.go getPassiveListener and
// findListenerWithinPortRange, passive_multiplexer.go
// newSharedPassiveListener, on ":0" or "0.0.0.0:port"), and its multiplexed
// listeners stay open until Stop. Its one hook is WrapPassiveListener, whose
// listener it uses instead of its own, and whose Addr it announces when it
// was given no port range. So wharf gives the engine no range: for each PASV
// or EPSV the engine opens a listener on an ephemeral port of every
// interface, which wharf at once stops listening (shutdown(2): the socket
// stays open for the engine's deadlines, but no connection reaches it), and
// hands back a listener of its own, on the address wharf listens on and a
// port of passive_ports.
//
// A port is held by one PASV at a time, and serves one data connection, from
// that session's own address: the reply that announces the port (227, 229)
// names the session (claim); a connection from any other address, or to a
// port nobody holds, is closed at once. A connection from a load balancer
// ([proxy_protocol] trusted) comes from the client its PROXY header names
// (proxy.go). The port is free again as soon as
// the session's connection arrived, or the engine closed the listener (after
// the transfer, on the next PASV or EPSV, when the session ends). A free
// port keeps listening for passiveIdle, then closes.
type passivePorts struct {
	host      string // the control listener's address: "" for every interface
	ports     *portCandidates
	keepAlive time.Duration      // TCP keep-alive of data connections (net.ListenConfig.KeepAlive)
	timeout   time.Duration      // how long a transfer waits for its data connection
	idle      time.Duration      // passiveIdle; shorter in tests
	wait      time.Duration      // portWait; shorter in tests
	unclaimed time.Duration      // unclaimedTimeout
	exhausted prometheus.Counter // wharf_passive_ports_exhausted_total

	// trusted, when set, tells the balancers ([proxy_protocol] trusted),
	// whose data connections start with a header naming the client; they
	// are given headerWait to send it (see proxy.go).
	trusted    func(netip.Addr) bool
	headerWait time.Duration
	headers    sync.WaitGroup // data connections whose header is being read

	mu      sync.Mutex
	byPort  map[int]*portListener         // every port listening now
	held    map[*passiveListener]struct{} // every listener the engine has not closed
	freed   chan struct{}                 // closed, and replaced, when a port is freed
	closed  bool                          // Shutdown: no more ports
	reading map[net.Conn]struct{}         // balancer connections whose header is being read
}

// portListener is one passive port listening on the listen address.
type portListener struct {
	ln    net.Listener
	port  int
	cur   *passiveListener // the PASV holding the port; nil when free
	freed time.Time        // when it was last freed
	timer *time.Timer      // closes it after passiveIdle free
}

func newPassivePorts(start, end int, timeout time.Duration, exhausted prometheus.Counter) *passivePorts {
	return &passivePorts{
		ports:     newPortCandidates(start, end),
		timeout:   timeout,
		exhausted: exhausted,
		idle:      passiveIdle,
		wait:      portWait,
		unclaimed: unclaimedTimeout,
		byPort:    make(map[int]*portListener),
		held:      make(map[*passiveListener]struct{}),
		freed:     make(chan struct{}),
		reading:   make(map[net.Conn]struct{}),
	}
}

// listenOn sets the address passive ports listen on: the control
// listener's, or every interface when that is unspecified.
func (p *passivePorts) listenOn(addr net.Addr) {
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() {
		p.host = tcp.IP.String()
	}
}

// open replaces the engine's passive listener with wharf's (see
// passivePorts): a free port that listens already, else a new one. When
// every candidate is held, it waits up to p.wait for a port to be freed.
func (p *passivePorts) open(engine net.Listener) (net.Listener, error) {
	silence(engine)

	pl := &passiveListener{
		ports:   p,
		engine:  engine,
		timeout: p.timeout,
		conn:    make(chan net.Conn, 1),
		closed:  make(chan struct{}),
	}

	wait := time.NewTimer(p.wait)
	defer wait.Stop()

	for {
		p.mu.Lock()
		freed, closed := p.freed, p.closed
		p.mu.Unlock()

		if closed {
			break
		}

		if p.tryOpen(pl) {
			return pl, nil
		}

		select {
		case <-freed:
			continue
		case <-wait.C:
		}

		break
	}

	_ = engine.Close() // the engine forgets it when wrapping fails

	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()

	if !closed { // not a PASV refused because the server shuts down
		p.exhausted.Inc()
	}

	return nil, errNoPassivePort
}

// tryOpen gives pl a free port that listens already, or a new one, trying
// the next candidates of the range.
func (p *passivePorts) tryOpen(pl *passiveListener) bool {
	for range p.ports.attempts() {
		port := p.ports.candidate()

		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()

			return false
		}

		switch pt := p.byPort[port]; {
		case pt == nil:
		case pt.cur == nil:
			p.take(pt, pl)
			p.mu.Unlock()

			return true
		default:
			p.mu.Unlock()

			continue
		}
		p.mu.Unlock()

		lc := net.ListenConfig{KeepAlive: p.keepAlive}
		ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(p.host, strconv.Itoa(port)))
		if err != nil {
			continue // another program's, or another PASV bound it just now
		}

		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = ln.Close()

			return false
		}

		pt := &portListener{ln: ln, port: port}
		p.byPort[port] = pt
		p.take(pt, pl)
		p.mu.Unlock()

		go p.serve(pt)

		return true
	}

	return false
}

// take gives pt to pl, until a reply announces it (claim) or unclaimed
// passes. Under p.mu.
func (p *passivePorts) take(pt *portListener, pl *passiveListener) {
	pt.cur = pl
	pl.port = pt
	pl.unclaimed = time.AfterFunc(p.unclaimed, func() { _ = pl.Close() })
	p.held[pl] = struct{}{}
}

// free makes pt free again, to close after p.idle unless taken. Under p.mu.
func (p *passivePorts) free(pt *portListener) {
	pt.cur = nil
	pt.freed = time.Now()

	close(p.freed) // wakes the PASVs waiting for a port
	p.freed = make(chan struct{})

	switch {
	case p.closed:
	case pt.timer == nil:
		pt.timer = time.AfterFunc(p.idle, func() { p.expire(pt) })
	default:
		pt.timer.Reset(p.idle)
	}
}

// expire closes pt if it stayed free for p.idle.
func (p *passivePorts) expire(pt *portListener) {
	p.mu.Lock()
	if pt.cur != nil || p.byPort[pt.port] != pt {
		p.mu.Unlock()

		return
	}

	if left := p.idle - time.Since(pt.freed); left > 0 {
		pt.timer.Reset(left)
		p.mu.Unlock()

		return
	}

	delete(p.byPort, pt.port)
	p.mu.Unlock()

	_ = pt.ln.Close()
}

// serve hands each connection to pt to the PASV holding it (handOver); a
// balancer's connection once its header was read, in a goroutine of its own.
func (p *passivePorts) serve(pt *portListener) {
	for {
		conn, err := pt.ln.Accept()
		if err != nil {
			return // closed
		}

		if p.trusted == nil || !p.trusted(parseIP(hostOf(conn.RemoteAddr()))) {
			p.handOver(pt, conn)

			continue
		}

		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = conn.Close()

			continue
		}
		p.reading[conn] = struct{}{}
		p.mu.Unlock()

		p.headers.Go(func() {
			p.throughBalancer(pt, conn)

			p.mu.Lock()
			delete(p.reading, conn)
			p.mu.Unlock()
		})
	}
}

// handOver gives conn to the PASV holding pt, if it comes from that
// session's address; it closes any other connection.
func (p *passivePorts) handOver(pt *portListener, conn net.Conn) {
	from := parseIP(hostOf(conn.RemoteAddr()))

	p.mu.Lock()
	pl := pt.cur
	if pl == nil || !pl.owner.IsValid() || pl.owner != from {
		p.mu.Unlock()
		_ = conn.Close()

		return
	}

	p.free(pt)
	p.mu.Unlock()

	pl.conn <- conn // never blocks: one connection per listener
}

// claim gives the port announced by a 227 or 229 reply (its text after the
// code) to the session at clientIP.
func (p *passivePorts) claim(reply []byte, clientIP string) {
	port, ok := announcedPort(string(reply))
	if !ok {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()

	if pt := p.byPort[port]; pt != nil && pt.cur != nil && !pt.cur.owner.IsValid() {
		pt.cur.owner = parseIP(clientIP)
		pt.cur.unclaimed.Stop()
	}
}

// release frees pl's port if pl still holds it, and forgets pl.
func (p *passivePorts) release(pl *passiveListener) {
	p.mu.Lock()
	defer p.mu.Unlock()

	pl.unclaimed.Stop()
	if pl.port.cur == pl {
		p.free(pl.port)
	}

	delete(p.held, pl)
}

// close closes every port and every listener the engine holds (Shutdown),
// as the engine's Stop closes its own.
func (p *passivePorts) close() {
	p.mu.Lock()
	p.closed = true
	close(p.freed) // PASVs waiting for a port give up
	p.freed = make(chan struct{})
	ports := make([]*portListener, 0, len(p.byPort))
	for _, pt := range p.byPort {
		ports = append(ports, pt)
		if pt.timer != nil {
			pt.timer.Stop()
		}
	}
	clear(p.byPort)

	held := make([]*passiveListener, 0, len(p.held))
	for pl := range p.held {
		held = append(held, pl)
	}

	for conn := range p.reading {
		_ = conn.Close() // its header read fails at once
	}
	p.mu.Unlock()

	p.headers.Wait()

	for _, pt := range ports {
		_ = pt.ln.Close()
	}

	for _, pl := range held {
		_ = pl.Close()
	}
}

// announcedPort reads the port of "Entering Passive Mode (h1,h2,h3,h4,p1,p2)"
// or "Entering Extended Passive Mode (|||port|)".
func announcedPort(text string) (int, bool) {
	open, end := strings.LastIndexByte(text, '('), strings.LastIndexByte(text, ')')
	if open < 0 || end < open {
		return 0, false
	}

	inner := text[open+1 : end]
	if port, ok := strings.CutPrefix(inner, "|||"); ok {
		n, err := strconv.Atoi(strings.TrimSuffix(port, "|"))

		return n, err == nil
	}

	parts := strings.Split(inner, ",")
	if len(parts) != 6 {
		return 0, false
	}

	hi, err1 := strconv.Atoi(parts[4])
	lo, err2 := strconv.Atoi(parts[5])

	return hi*256 + lo, err1 == nil && err2 == nil
}

// silence stops the engine's own listener from listening, so its port on
// every interface accepts nothing; the socket stays open, since the engine
// still sets deadlines on it, and its Close closes it. shutdown(2) of a
// listening socket does this on Linux; elsewhere the call may fail, and the
// engine's listener then listens, unused, until the transfer ends.
func silence(l net.Listener) {
	onSocket(l, func(fd int) { _ = syscall.Shutdown(fd, syscall.SHUT_RD) })
}

// passiveListener is what the engine gets for one PASV or EPSV: the port it
// holds, and the engine's own listener (silenced), closed together.
type passiveListener struct {
	ports   *passivePorts
	engine  net.Listener
	timeout time.Duration

	// Under ports.mu.
	port      *portListener
	owner     netip.Addr  // the session's client address; invalid until claimed
	unclaimed *time.Timer // frees the port if nobody claims it

	conn   chan net.Conn // the owner's data connection, once it arrived
	closed chan struct{}
	once   sync.Once
}

// Accept returns the owner's data connection, with its small writes
// coalesced (see bufferedConn), waiting for it up to the data connection
// timeout.
func (l *passiveListener) Accept() (net.Conn, error) {
	timer := time.NewTimer(l.timeout)
	defer timer.Stop()

	select {
	case conn := <-l.conn:
		return newBufferedConn(conn), nil
	case <-l.closed:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	case <-timer.C:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.ErrDeadlineExceeded}
	}
}

// Close frees the port, closes the engine's listener, and a connection that
// arrived but was never used (a transfer refused after the client connected).
func (l *passiveListener) Close() error {
	l.once.Do(func() {
		l.ports.release(l)
		close(l.closed)
		_ = l.engine.Close()

		select {
		case conn := <-l.conn:
			_ = conn.Close()
		default:
		}
	})

	return nil
}

// Addr is the address the engine announces: wharf's port.
func (l *passiveListener) Addr() net.Addr {
	l.ports.mu.Lock()
	defer l.ports.mu.Unlock()

	return l.port.ln.Addr()
}
