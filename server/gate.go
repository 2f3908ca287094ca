package server

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// refuseDeadline bounds how long writing a refusal may take.
const refuseDeadline = time.Second

// defaultFirstDeadline bounds the greeting and, on the implicit-TLS port, the
// TLS handshake: a client that stays silent is dropped. The engine sets its
// idle deadline once it reads the first command.
const defaultFirstDeadline = 10 * time.Second

// maxRefusing caps the goroutines writing refusals at once; past it, refused
// connections are closed without a reply rather than costing more memory.
const maxRefusing = 256

// gate is the listener handed to the engine (Settings.Listener). It enforces
// [access], bans, max_clients and max_clients_per_ip inside Accept, so a
// refused connection gets its 421 and is closed without ever starting a
// session (and without a 220). Per-address limits count a client by its key
// (addrKey: an IPv6 address by its ipv6_prefix); allow and deny lists look at
// the address itself. Each admitted
// connection is handed to the engine inside wharf's control layer (control),
// which with implicit TLS wraps it in TLS from the first byte.
type gate struct {
	net.Listener
	log       *zap.Logger
	maxTotal  int
	maxPerIP  int
	tlsConfig *tls.Config // implicit TLS only
	first     time.Duration
	refusing  chan struct{}
	refusals  sync.WaitGroup
	banned    func(ip, key string) bool // nil = no bans
	refused   func(reason string)       // counts refusals; nil = none
	access    accessLists               // who may connect at all ([access])
	ipv6      int                       // the prefix by which IPv6 clients count ([ban] ipv6_prefix)
	logs      *logLimiter               // bounds the "connection refused" lines
	memory    *memoryReturn             // told of every connection; nil = nobody

	mu    sync.Mutex
	total int
	perIP map[string]int        // by key (addrKey)
	conns map[net.Addr]*control // by the connection's own remote address value, for ClientConnected
	srv   *Server
}

func newGate(l net.Listener, maxTotal, maxPerIP int, tlsConfig *tls.Config, log *zap.Logger) *gate {
	return &gate{
		Listener:  l,
		log:       log,
		maxTotal:  maxTotal,
		maxPerIP:  maxPerIP,
		tlsConfig: tlsConfig,
		refusing:  make(chan struct{}, maxRefusing),
		first:     defaultFirstDeadline,
		perIP:     make(map[string]int),
		conns:     make(map[net.Addr]*control),
	}
}

// Accept returns the next admitted connection. Errors of the underlying
// listener are returned as they are: the engine recognises a closed listener
// by its error text.
func (g *gate) Accept() (net.Conn, error) {
	for {
		conn, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}

		g.memory.arrived()

		ip := hostOf(conn.RemoteAddr())
		key, reason, msg := g.admit(ip)
		if reason != "" {
			g.logRefusal(conn.RemoteAddr().String(), ip, key, reason)
			if g.refused != nil {
				g.refused(reason)
			}
			g.refuse(conn, msg)

			continue
		}

		_ = conn.SetDeadline(time.Now().Add(g.first))
		oobInline(conn)

		gc := &gatedConn{Conn: conn, gate: g, ip: ip, key: key, remote: conn.RemoteAddr().String(), done: make(chan struct{})}
		ctl := newControl(gc, g.srv, g.tlsConfig)

		g.mu.Lock()
		g.conns[conn.RemoteAddr()] = ctl
		g.mu.Unlock()

		return ctl, nil
	}
}

// oobInline keeps urgent data in the stream: Python's ftplib sends ABOR as
// TCP urgent data (RFC 959, 4.1.3, "Synch"), whose last byte would otherwise
// be taken out of the stream and the line never end.
func oobInline(conn net.Conn) {
	onSocket(conn, func(fd int) {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_OOBINLINE, 1)
	})
}

// admit counts a new connection from ip under its key, or returns why it is
// refused: a reason for logs and metrics, and the message the client reads.
// Deny and allow lists come first: a refused network learns nothing of bans
// or limits.
func (g *gate) admit(ip string) (key, reason, msg string) {
	key = addrKey(ip, g.ipv6)

	if !g.access.admits(parseIP(ip)) {
		return key, "access", "this server does not accept connections from your address"
	}

	if g.banned != nil && g.banned(ip, key) {
		return key, "banned", "your address is banned after too many failed logins, try again later"
	}

	g.mu.Lock()
	defer g.mu.Unlock()

	if g.maxTotal > 0 && g.total >= g.maxTotal {
		return key, "max_clients", "too many connections to this server, try again later"
	}

	if g.maxPerIP > 0 && g.perIP[key] >= g.maxPerIP {
		return key, "max_clients_per_ip", "too many connections from your address, try again later"
	}

	g.total++
	g.perIP[key]++

	return key, "", ""
}

// logRefusal logs a refused connection, a few lines per reason at most
// under a flood (see logLimiter), then how many more were refused.
func (g *gate) logRefusal(remote, ip, key, reason string) {
	summary := func(left int, since time.Time) {
		g.log.Warn("more connections refused", zap.String("reason", reason), zap.Int("connections", left),
			zap.Duration("duration", time.Since(since).Round(time.Millisecond)))
	}

	if !g.logs.allow("refused "+reason, summary) {
		return
	}

	fields := []zap.Field{zap.String("remote", remote), zap.String("reason", reason)}
	if key != ip {
		fields = append(fields, zap.String("network", key))
	}

	g.log.Warn("connection refused", fields...)
}

func (g *gate) release(gc *gatedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()

	delete(g.conns, gc.RemoteAddr())

	g.total--
	if g.perIP[gc.key]--; g.perIP[gc.key] <= 0 {
		delete(g.perIP, gc.key)
	}
}

// refuse answers 421 and closes, in its own goroutine so a slow client cannot
// stall Accept; writes are bounded by refuseDeadline.
func (g *gate) refuse(conn net.Conn, msg string) {
	select {
	case g.refusing <- struct{}{}:
	default:
		_ = conn.Close()

		return
	}

	g.refusals.Go(func() {
		defer func() { <-g.refusing }()

		c := conn
		if g.tlsConfig != nil {
			c = tls.Server(conn, g.tlsConfig)
		}

		_ = c.SetDeadline(time.Now().Add(refuseDeadline))
		_, _ = c.Write([]byte("421 " + msg + "\r\n"))
		_ = c.Close()
	})
}

// lookup returns the admitted connection whose RemoteAddr is remote (the
// same value: every layer above the socket passes its address through), if
// it is still open.
func (g *gate) lookup(remote net.Addr) *control {
	g.mu.Lock()
	defer g.mu.Unlock()

	return g.conns[remote]
}

// gatedConn gives its slot back to the gate when closed. It closes once;
// later calls return nil, so Shutdown can close a control connection under
// the engine without the engine's own close reporting an error.
type gatedConn struct {
	net.Conn
	gate   *gate
	ip     string        // the client's address, as logs and allow lists see it
	key    string        // ip as per-address limits count it (addrKey)
	remote string        // ip:port, as logs show it
	done   chan struct{} // closed with the connection: ends a login's waits
	once   sync.Once
}

func (c *gatedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		c.gate.release(c)
		err = c.Conn.Close()
		close(c.done)
	})

	if errors.Is(err, net.ErrClosed) {
		return nil
	}

	return err
}

// hostOf returns the IP of a TCP address, or the address's text otherwise.
func hostOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}

	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}

	return host
}

// onSocket runs f on the descriptor of c's socket, when c has one (a
// syscall.Conn); a setting that cannot be made is a missed optimisation or
// hardening, never an error for the connection.
func onSocket(c any, f func(fd int)) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}

	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}

	_ = raw.Control(func(fd uintptr) { f(int(fd)) })
}
