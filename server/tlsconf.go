package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"sync"
	"time"
)

// ticketRotation is how often the TLS session ticket key changes; a ticket
// stays valid for two rotations.
const ticketRotation = 12 * time.Hour

// errNoSessionReuse refuses a TLS data connection made with a fresh
// handshake: only the client that made the control connection holds its
// session, so a stranger behind the same address (NAT) that connects first
// to the passive port cannot take the data (vsftpd's require_ssl_reuse).
var errNoSessionReuse = errors.New("the data connection did not resume the control connection's TLS session")

// tlsConfigs are the TLS configurations of the control and the data
// connections. With session reuse required, the data connections' one
// refuses a handshake that did not resume a session; both share their
// session ticket keys, rotated here, so that a data connection can resume
// the control connection's session.
type tlsConfigs struct {
	control, data *tls.Config

	mu    sync.Mutex
	keys  [][32]byte
	timer *time.Timer
}

// newTLSConfigs makes the data connections' configuration from the control
// connection's.
func newTLSConfigs(control *tls.Config, requireReuse bool) *tlsConfigs {
	t := &tlsConfigs{control: control, data: control}
	if !requireReuse {
		return t
	}

	t.data = control.Clone()
	t.data.VerifyConnection = func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return errNoSessionReuse
		}

		return nil
	}

	t.rotate()

	return t
}

// rotate gives both configurations a new ticket key, keeping the previous
// one for tickets already out.
func (t *tlsConfigs) rotate() {
	var key [32]byte
	_, _ = rand.Read(key[:]) // never fails: since Go 1.24 it crashes the program instead

	t.mu.Lock()
	defer t.mu.Unlock()

	t.keys = append([][32]byte{key}, t.keys...)
	t.keys = t.keys[:min(len(t.keys), 2)]
	t.control.SetSessionTicketKeys(t.keys)
	t.data.SetSessionTicketKeys(t.keys)

	t.timer = time.AfterFunc(ticketRotation, t.rotate)
}

// stop ends the rotation.
func (t *tlsConfigs) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()

	if t.timer != nil {
		t.timer.Stop()
	}
}

// handshake makes the TLS handshake of a protected data connection before
// its first byte, within handshakeTimeout, so that its failure is told
// apart from a transfer cut later, and counted (the engine wraps the
// connection in TLS, and would otherwise leave the handshake to the first
// read or write). Any other connection passes. Transfers in TYPE A, which
// the engine copies itself, make it inside the engine: those are not
// counted.
func handshake(conn any) error {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()

	return tc.HandshakeContext(ctx) //nolint:wrapcheck // the transfer's error, as fixTransfer reads it
}

// handshakeFailed counts a failed TLS handshake of a control (tlsControl)
// or data (tlsData) connection, unless the client closed the connection
// before sending a byte of it: a port scan, or a health check that only
// connects.
func (m *metrics) handshakeFailed(conn int, err error) {
	if !errors.Is(err, io.EOF) {
		m.tlsFailures[conn].Inc()
	}
}
