package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"wharf/internal/proxyproto"
)

// Behind a load balancer ([proxy_protocol] trusted), every connection from a
// balancer starts with a PROXY protocol header naming the client. The
// header is read below the gate (proxyproto.Listener), before anything looks
// at the connection, and the connection handed on has the client's address
// as its RemoteAddr: so the gate's [access] lists, bans and
// max_clients_per_ip, the session's logs, STAT, the transfer log, login
// slots and the account throttle, the PORT and EPRT address check and the
// passive ports' owner check all see the client, as if it had connected
// directly. Its LocalAddr is the address the client connected to (the
// balancer's), which PASV announces when public_host is empty.
//
// A balancer's connection without a valid header is refused (421, reason
// proxy_header). A header from anyone else is refused too (421, reason
// proxy_untrusted): FTP servers speak first, so an untrusted client's header
// arrives as its first command line, after the greeting (see proxyLine), or
// on the implicit-TLS port in place of the handshake (proxyBeforeTLS).
const (
	refusedProxyHeader    = "proxy_header"
	refusedProxyUntrusted = "proxy_untrusted"
)

// maxHeaderWait bounds the wait for a balancer connection's header; a
// shorter login_timeout bounds it too.
const maxHeaderWait = 10 * time.Second

// headerWait is how long a balancer connection may take to send its header.
func (s *Server) headerWait() time.Duration {
	if lt := s.opts.LoginTimeout; lt > 0 && lt < maxHeaderWait {
		return lt
	}

	return maxHeaderWait
}

// proxyTrusted reports whether a connection from a comes from a balancer.
func (s *Server) proxyTrusted(a netip.Addr) bool {
	return inNetworks(a, s.opts.ProxyTrusted)
}

// behindBalancer wraps the control listener so that balancers' connections
// carry their client's address, when [proxy_protocol] trusts any.
func (s *Server) behindBalancer(l net.Listener) net.Listener {
	if len(s.opts.ProxyTrusted) == 0 {
		return l
	}

	for _, r := range []string{refusedProxyHeader, refusedProxyUntrusted} {
		s.metrics.refusedConnection.WithLabelValues(r)
	}

	s.pasv.trusted, s.pasv.headerWait = s.proxyTrusted, s.headerWait()

	return proxyproto.Listen(l, proxyproto.Options{
		Trusted: s.proxyTrusted,
		Timeout: s.headerWait(),
		Refused: s.refuseHeaderless,
	})
}

// refuseHeaderless refuses a balancer's connection that did not start with
// a valid header: 421 and closed (through TLS on the implicit-TLS port).
func (s *Server) refuseHeaderless(conn net.Conn, err error) {
	g := s.gate
	s.metrics.refusedConnection.WithLabelValues(refusedProxyHeader).Inc()

	summary := func(left int, since time.Time) {
		g.log.Warn("more connections refused", zap.String("reason", refusedProxyHeader), zap.Int("connections", left),
			zap.Duration("duration", time.Since(since).Round(time.Millisecond)))
	}

	if g.logs.allow("refused "+refusedProxyHeader, summary) {
		g.log.Warn("connection refused", zap.String("remote", conn.RemoteAddr().String()),
			zap.String("reason", refusedProxyHeader), zap.Error(err))
	}

	g.refuse(conn, "expected a PROXY protocol header from this load balancer")
}

// proxyLine refuses a PROXY header sent as a session's first command line
// before login, by a client the server does not trust to send one: a v1
// line, or the first line of a v2 signature (an empty line, followed by the
// rest of the signature). It reports whether it closed the connection.
func (c *control) proxyLine(line []byte) bool {
	if c.si.loggedIn() {
		return false
	}

	v1 := bytes.HasPrefix(line, []byte("PROXY "))
	v2 := (bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n"))) && bytes.HasPrefix(c.in, []byte("\r\n\x00\r\nQUIT\n"))

	if !v1 && !v2 {
		return false
	}

	c.srv.metrics.refusedConnection.WithLabelValues(refusedProxyUntrusted).Inc()
	c.si.logger().Warn("connection refused", zap.String("reason", refusedProxyUntrusted))
	c.in = nil
	c.closeAfter(421, "PROXY protocol header from an untrusted address: closing the connection.")

	return true
}

// proxyBeforeTLS answers, in clear text, a PROXY header from an untrusted
// client on the implicit-TLS port, which arrives where the TLS handshake
// should (as net/http answers plain HTTP sent to its HTTPS port). err is the
// handshake's error; it reports whether it was such a header. Under c.mu.
func (c *control) proxyBeforeTLS(err error) bool {
	var rhe tls.RecordHeaderError
	if !errors.As(err, &rhe) || rhe.Conn == nil {
		return false
	}

	if h := rhe.RecordHeader[:]; !bytes.Equal(h, []byte("PROXY")) && !bytes.Equal(h, []byte("\r\n\r\n\x00")) {
		return false
	}

	c.srv.metrics.refusedConnection.WithLabelValues(refusedProxyUntrusted).Inc()
	if c.si != nil {
		c.si.logger().Warn("connection refused", zap.String("reason", refusedProxyUntrusted))
	}

	_ = rhe.Conn.SetWriteDeadline(time.Now().Add(refuseDeadline))
	_, _ = io.WriteString(rhe.Conn, "421 PROXY protocol header from an untrusted address: closing the connection.\r\n")

	return true
}

// throughBalancer hands a data connection from a balancer on to the
// passive port's session, once its header named the session's client (see
// handOver); it refuses one without a valid header.
func (p *passivePorts) throughBalancer(pt *portListener, conn net.Conn) {
	wrapped, err := proxyproto.Accept(conn, p.headerWait)
	if err != nil {
		_ = conn.Close()

		return
	}

	p.handOver(pt, wrapped)
}
