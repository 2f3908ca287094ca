package server

import (
	"net"
	"sync"
	"time"
)

// stalePeek is how long Close looks for a data connection that was delivered
// to a passive reservation but never used.
const stalePeek = 2 * time.Millisecond

// passiveListener wraps the engine's per-session passive reservation (with
// PassiveTransferPortMultiplexing, the engine shares one listener per port and
// hands each session a reservation for its own IP, closing strangers).
//
// It closes a flaw of the engine's reservations: when a transfer is refused
// after the client already connected its data socket (RETR of a missing
// file), the connection stays queued in the old reservation, and closing that
// reservation later also releases whatever reservation the same IP holds on
// that port by then, usually the session's next PASV, whose client then waits
// the whole connection timeout for a 425. So on Close, a reservation whose
// connection was already delivered is drained here and not closed through the
// engine (it is already out of the engine's table); one that never got a
// connection is closed normally.
type passiveListener struct {
	net.Listener
	mu       sync.Mutex
	accepted bool
	closed   bool
}

type deadliner interface {
	SetDeadline(t time.Time) error
}

// Accept returns the session's data connection, with its small writes
// coalesced (see bufferedConn).
func (p *passiveListener) Accept() (net.Conn, error) {
	conn, err := p.Listener.Accept()
	if err != nil {
		return nil, err
	}

	p.mu.Lock()
	p.accepted = true
	p.mu.Unlock()

	return newBufferedConn(conn), nil
}

func (p *passiveListener) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()

		return nil
	}
	p.closed = true
	accepted := p.accepted
	p.mu.Unlock()

	if accepted {
		// The reservation was consumed when its connection was delivered;
		// closing it through the engine would only release someone else's.
		return nil
	}

	if d, ok := p.Listener.(deadliner); ok {
		if err := d.SetDeadline(time.Now().Add(stalePeek)); err == nil {
			if conn, err := p.Listener.Accept(); err == nil {
				// A connection was delivered but the transfer never used it.
				_ = conn.Close()

				return nil
			}
		}
	}

	return p.Listener.Close()
}
