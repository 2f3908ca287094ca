package server

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"go.uber.org/zap"
)

// natWarnEvery is how often the same client address may trigger the
// private-address warning.
const natWarnEvery = time.Hour

// natWarnMax bounds the warning's memory of client addresses.
const natWarnMax = 10_000

// pasvAddress chooses the IPv4 address a PASV reply announces: public_host,
// or else the control connection's local address. Announcing a private or
// loopback address to a client whose own address is public is the most
// common FTP-behind-NAT failure (the client cannot reach it), so that is
// logged once per client address and hour, naming the fix.
type pasvAddress struct {
	public atomic.Pointer[string] // public_host, "" = the local address; reload changes it
	log    *zap.Logger

	mu     sync.Mutex
	warned map[netip.Addr]time.Time
	now    func() time.Time
}

func newPasvAddress(public string, log *zap.Logger) *pasvAddress {
	p := &pasvAddress{log: log, warned: make(map[netip.Addr]time.Time), now: time.Now}
	p.public.Store(&public)

	return p
}

// resolve is the engine's PublicIPResolver.
func (p *pasvAddress) resolve(cc ftpserver.ClientContext) (string, error) {
	announced := *p.public.Load()
	if announced == "" {
		announced = hostOf(cc.LocalAddr())
	}

	p.check(announced, hostOf(cc.RemoteAddr()))

	return announced, nil
}

// check warns when a private or loopback address is announced to a public client.
func (p *pasvAddress) check(announced, client string) {
	a, errA := netip.ParseAddr(announced)
	c, errC := netip.ParseAddr(client)
	if errA != nil || errC != nil || !Unroutable(a.Unmap()) || Unroutable(c.Unmap()) {
		return
	}

	c = c.Unmap()
	now := p.now()

	p.mu.Lock()
	last, seen := p.warned[c]
	if seen && now.Sub(last) < natWarnEvery {
		p.mu.Unlock()

		return
	}

	if len(p.warned) >= natWarnMax {
		for addr, at := range p.warned {
			if now.Sub(at) >= natWarnEvery {
				delete(p.warned, addr)
			}
		}

		if len(p.warned) >= natWarnMax {
			p.mu.Unlock()

			return
		}
	}

	p.warned[c] = now
	p.mu.Unlock()

	p.log.Warn("PASV announces a private address to a public client, which cannot reach it: "+
		"set public_host to the address clients connect to, and publish the passive port range",
		zap.String("announced", announced), zap.String("client", client))
}

// Unroutable reports whether a is an address the Internet cannot reach:
// private, loopback, link-local, unspecified or carrier-grade NAT. The PASV
// warning uses it, and so does wharf doctor.
func Unroutable(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) // carrier-grade NAT
}
