package server

import (
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/vfs"
)

// connState is where a session is in its life. It only moves forward, but
// between logged in and transferring, which alternate.
type connState int32

const (
	stateConnected    connState = iota // greeted, not logged in
	stateTLS                           // TLS on the control connection, not logged in
	stateLoggedIn                      // logged in, no file transfer running
	stateTransferring                  // a file transfer runs
	stateClosing                       // wharf is closing the connection
	stateClosed                        // the engine has ended the session
)

func (st connState) String() string {
	return [...]string{"connected", "tls", "logged in", "transferring", "closing", "closed"}[st]
}

// sessionInfo is one session from the server's side: its control
// connection, its state, and what it holds (the login, the root). The
// registry (Server.sessions) owns it from ClientConnected to
// ClientDisconnected; it is closed from one place (Server.closeSession) and
// its root let go of from one place (releaseRoot).
type sessionInfo struct {
	srv        *Server
	cc         ftpserver.ClientContext
	ctl        *control
	since      time.Time
	state      atomic.Int32 // a connState
	transfers  atomic.Int32 // file transfers running now
	current    atomic.Pointer[transfer]
	listing    atomic.Pointer[listing] // the listing being sent, for the watchdog
	loginTimer *time.Timer             // closes the session if it has not logged in in time

	mu       sync.Mutex
	verified *verifiedLogin // checked by the control connection, for AuthUser
	root     Root
	release  func() error // lets go of root
	account  auth.Account
	driver   *session
	pins     *vfs.Pins // the snapshot copies the session keeps; let go of with root (releaseRoot)
}

// setState moves the session to st. Closing and closed are final: a
// session being closed does not go back to transferring.
func (si *sessionInfo) setState(st connState) {
	for {
		old := connState(si.state.Load())
		if old >= stateClosing && st < old || old == stateClosed {
			return
		}

		if si.state.CompareAndSwap(int32(old), int32(st)) {
			return
		}
	}
}

func (si *sessionInfo) stateNow() connState { return connState(si.state.Load()) }

// loggedIn reports whether the session logged in (and is not closed yet).
func (si *sessionInfo) loggedIn() bool {
	st := si.stateNow()

	return st == stateLoggedIn || st == stateTransferring
}

// logger is the session's log. It is made on each use rather than kept: a
// kept zap logger holds an encoder buffer (a KiB or more) for every idle
// session, and sessions log only a handful of lines.
func (si *sessionInfo) logger() sessionLog {
	return sessionLog{log: si.srv.log, fields: []zap.Field{zap.Uint32("session", si.cc.ID()), zap.String("remote", si.ctl.gc.remote)}}
}

// ip is the client's address.
func (si *sessionInfo) ip() string {
	return si.ctl.gc.ip
}

// key is the client's address as per-address limits count it (addrKey).
func (si *sessionInfo) key() string {
	return si.ctl.gc.key
}

// acct is the account logged in; the zero Account before login.
func (si *sessionInfo) acct() auth.Account {
	si.mu.Lock()
	defer si.mu.Unlock()

	return si.account
}

// drv is the logged-in session's filesystem driver.
func (si *sessionInfo) drv() *session {
	si.mu.Lock()
	defer si.mu.Unlock()

	return si.driver
}

// setLogin hands a login the control connection checked to AuthUser.
func (si *sessionInfo) setLogin(v *verifiedLogin) {
	si.mu.Lock()
	defer si.mu.Unlock()

	si.verified = v
}

// takeLogin returns the checked login, once.
func (si *sessionInfo) takeLogin() *verifiedLogin {
	si.mu.Lock()
	defer si.mu.Unlock()

	v := si.verified
	si.verified = nil

	return v
}

// transferStarted and transferEnded follow the session's file transfers.
func (si *sessionInfo) transferStarted(t *transfer) {
	si.srv.transfers.Add(1)
	si.transfers.Add(1)
	si.current.Store(t)
	si.setStateIf(stateLoggedIn, stateTransferring)
}

func (si *sessionInfo) transferEnded(t *transfer) {
	si.current.CompareAndSwap(t, nil)
	if si.transfers.Add(-1) == 0 {
		si.setStateIf(stateTransferring, stateLoggedIn)
	}
	si.releaseRoot()
	si.srv.transfers.Add(-1)
}

func (si *sessionInfo) setStateIf(from, to connState) {
	si.state.CompareAndSwap(int32(from), int32(to))
}

// releaseRoot lets go of the session's filesystem (closing it unless other
// sessions share it) once the session is closed and its last transfer has
// ended: the engine may end a session while a transfer goroutine still has to
// clean up (remove an atomic upload's temporary file).
func (si *sessionInfo) releaseRoot() {
	si.mu.Lock()
	if si.stateNow() != stateClosed || si.transfers.Load() > 0 || si.root == nil {
		si.mu.Unlock()

		return
	}

	release, pins := si.release, si.pins
	si.root, si.release, si.pins = nil, nil, nil
	si.mu.Unlock()

	if pins != nil {
		pins.Release()
	}

	if err := release(); err != nil {
		si.logger().Warn("close session root", zap.Error(err))
	}
}

// track adds a session to the registry, or removes it.
func (s *Server) track(si *sessionInfo, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if add {
		s.sessions[si.cc.ID()] = si

		return
	}

	delete(s.sessions, si.cc.ID())
	if len(s.sessions) == 0 {
		close(s.idle)
		s.idle = make(chan struct{})
	}
}

// session returns the registry's record of cc.
func (s *Server) session(cc ftpserver.ClientContext) *sessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.sessions[cc.ID()]
}

// live returns the sessions now, and a channel closed when the last one leaves.
func (s *Server) live() ([]*sessionInfo, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()

	out := make([]*sessionInfo, 0, len(s.sessions))
	for _, si := range s.sessions {
		out = append(out, si)
	}

	return out, s.idle
}

// closeSession is how wharf ends a session, whatever the reason: it closes
// the control connection (sending what replies are held); the engine's read
// then fails, its session ends, and a running transfer's data connection is
// closed with it (ClientDisconnected, then the transfer's Close, let go of
// what the session holds).
func (s *Server) closeSession(si *sessionInfo, reason string) {
	if si.stateNow() >= stateClosing {
		return
	}

	si.setState(stateClosing)
	si.logger().Info("closing session", zap.String("reason", reason))
	_ = si.ctl.Close()
}

// closeSessionWith closes a session with a last reply (421, RFC 959, 4.2).
func (s *Server) closeSessionWith(si *sessionInfo, reason, text string) {
	if si.stateNow() >= stateClosing {
		return
	}

	si.setState(stateClosing)
	si.logger().Info("closing session", zap.String("reason", reason))
	si.ctl.closeWith(421, text)
}

// loginTimedOut closes a session that did not log in within login_timeout,
// whatever it sent meanwhile: NOOP forever does not keep it open.
func (s *Server) loginTimedOut(si *sessionInfo) {
	if st := si.stateNow(); st != stateConnected && st != stateTLS {
		return
	}

	si.logger().Warn("login timeout", zap.Duration("login_timeout", s.opts.LoginTimeout))
	s.closeSessionWith(si, "login timeout", "Login timeout: closing control connection.")
}
