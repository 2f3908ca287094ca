// Package server is wharf's FTP server: the driver that github.com/fclairamb/ftpserverlib
// (the protocol engine: RFC 959 commands, RFC 2428 EPSV/EPRT, RFC 3659 MLSD/SIZE/MDTM/REST,
// RFC 4217 FTPS) calls into.
//
// Server implements the engine's MainDriver and these optional hooks:
//   - GetSettings translates Options; Settings.Listener is wharf's gate, which
//     enforces max_clients and max_clients_per_ip inside Accept (a refused
//     connection gets 421 and never starts a session) and does the implicit-TLS
//     wrapping the engine skips for a listener it was given.
//   - ClientConnected registers the session and returns the 220 banner;
//     ClientDisconnected unregisters it (the engine calls it for every session).
//   - AuthUser checks the login with package auth, refuses PASS without USER and,
//     in TLS-required mode, a control connection without TLS (the engine checks
//     that only in USER), and returns a session: the user's vfs filesystem plus
//     the GetHandle, RemoveDir and Site extensions.
//   - GetTLSConfig returns one shared *tls.Config so data connections resume the
//     control connection's TLS session.
//   - WrapPassiveListener discards data connections left queued in a passive
//     reservation that no transfer used.
//
// A session's life: the gate admits the connection; ClientConnected greets it;
// AuthUser opens its confined filesystem; every RETR/STOR/APPE goes through
// GetHandle, whose transfer wrapper counts bytes, keeps sendfile, and logs the
// outcome (and writes the xferlog line) on Close; ClientDisconnected closes the
// filesystem. Shutdown stops the listener, closes idle sessions, waits for
// running transfers until its context ends, then closes the rest.
package server
