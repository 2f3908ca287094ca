package proxyproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// DefaultTimeout bounds the wait for a header when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// ErrMissing wraps the error of a connection from a trusted address that
// did not start with a valid header in time.
var ErrMissing = errors.New("no valid PROXY protocol header from a trusted address")

// Options say whose connections carry a header.
type Options struct {
	// Trusted reports whether a connection from addr comes through a
	// balancer, and so must start with a header. nil trusts nobody: every
	// connection passes as it is.
	Trusted func(addr netip.Addr) bool
	// Timeout bounds the wait for a trusted connection's header, from
	// accept to its last byte; 0 means DefaultTimeout.
	Timeout time.Duration
	// Refused, when set, is given each trusted connection whose header was
	// missing or malformed (err wraps ErrMissing), and must close it; it may
	// first write a refusal. Without it the connection is closed.
	Refused func(conn net.Conn, err error)
}

// Listener hands on connections: those from a trusted address once their
// header was read, with the header's addresses (see Conn); the others as
// they are. Headers are read in a goroutine per connection, so a slow one
// never holds up Accept. Close stops it all and waits.
type Listener struct {
	net.Listener
	opts Options

	ready chan accepted         // the next connection, or the inner listener's error
	done  chan struct{}         // closed by Close
	wg    sync.WaitGroup        // the accept loop and every header being read
	mu    sync.Mutex            // guards pending
	once  sync.Once             // closes done
	pend  map[net.Conn]struct{} // trusted connections whose header is being read
}

type accepted struct {
	conn net.Conn
	err  error
}

// Listen starts handing on inner's connections as opts say.
func Listen(inner net.Listener, opts Options) *Listener {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}

	l := &Listener{
		Listener: inner,
		opts:     opts,
		ready:    make(chan accepted),
		done:     make(chan struct{}),
		pend:     make(map[net.Conn]struct{}),
	}

	l.wg.Go(l.acceptLoop)

	return l
}

// Accept returns the next connection, or the inner listener's error as it
// is (a caller recognises a closed listener by it).
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case a := <-l.ready:
		return a.conn, a.err
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close closes the inner listener and the connections whose header is
// being read, and waits for the goroutines to end.
func (l *Listener) Close() error {
	err := l.Listener.Close()

	l.once.Do(func() { close(l.done) })

	l.mu.Lock()
	for c := range l.pend {
		_ = c.Close()
	}
	l.mu.Unlock()

	l.wg.Wait()

	return err
}

func (l *Listener) acceptLoop() {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			if !l.hand(accepted{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}

			continue
		}

		if !l.trusted(conn) {
			if !l.hand(accepted{conn: conn}) {
				_ = conn.Close()

				return
			}

			continue
		}

		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			_ = conn.Close()

			return
		default:
		}
		l.pend[conn] = struct{}{}
		l.mu.Unlock()

		l.wg.Go(func() { l.readHeader(conn) })
	}
}

// hand gives a to Accept; false once the listener is closed.
func (l *Listener) hand(a accepted) bool {
	select {
	case l.ready <- a:
		return true
	case <-l.done:
		return false
	}
}

func (l *Listener) trusted(conn net.Conn) bool {
	return l.opts.Trusted != nil && l.opts.Trusted(addrOf(conn.RemoteAddr()))
}

// readHeader reads conn's header and hands the connection on, or refuses it.
func (l *Listener) readHeader(conn net.Conn) {
	wrapped, err := Accept(conn, l.opts.Timeout)

	l.mu.Lock()
	delete(l.pend, conn)
	l.mu.Unlock()

	select {
	case <-l.done:
		_ = conn.Close()

		return
	default:
	}

	if err != nil {
		if l.opts.Refused != nil {
			l.opts.Refused(conn, err)
		} else {
			_ = conn.Close()
		}

		return
	}

	if !l.hand(accepted{conn: wrapped}) {
		_ = conn.Close()
	}
}

// Accept reads the header that must start conn, within timeout, and returns
// conn with the header's addresses (conn itself for a LOCAL or UNKNOWN
// header). The error wraps ErrMissing and says why; conn is left open.
func Accept(conn net.Conn, timeout time.Duration) (net.Conn, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	h, err := Read(conn)
	_ = conn.SetReadDeadline(time.Time{})

	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the connection closed before any header")
		}

		return nil, fmt.Errorf("%w: %w", ErrMissing, err)
	}

	if h.Local {
		return conn, nil
	}

	return &Conn{Conn: conn, header: h,
		remote: net.TCPAddrFromAddrPort(h.Source), local: net.TCPAddrFromAddrPort(h.Destination)}, nil
}

// addrOf is the IP of a TCP address (IPv4-mapped IPv6 as IPv4); the zero
// Addr for anything else.
func addrOf(addr net.Addr) netip.Addr {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}

	return netip.Addr{}
}

// Conn is a connection that came through a balancer: its RemoteAddr is the
// client's, from the header, and its LocalAddr the address the client
// connected to (the balancer's). It passes ReadFrom and SyscallConn on to the
// socket, so sendfile and splice still work.
type Conn struct {
	net.Conn
	header        Header
	remote, local *net.TCPAddr // made once: callers may key maps by the value
}

// Header is the header the connection started with.
func (c *Conn) Header() Header { return c.header }

// RemoteAddr is the client's address, from the header; the same value at
// every call.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to, from the header.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// ReadFrom lets the socket read from r itself (sendfile when r is a file).
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}

	return io.Copy(writerOnly{c.Conn}, r)
}

// SyscallConn exposes the socket, for splice.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}

	return nil, syscall.EINVAL
}

// writerOnly hides a writer's ReadFrom, so io.Copy does not call it back.
type writerOnly struct{ io.Writer }
