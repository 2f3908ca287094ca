// Package server is wharf's FTP server: the driver that github.com/fclairamb/ftpserverlib
// (the protocol engine: RFC 959 commands, RFC 2428 EPSV/EPRT, RFC 3659 MLSD/SIZE/MDTM/REST,
// RFC 4217 FTPS data connections) calls into, and the layer that owns each control connection
// between the socket and the engine.
//
// The control connection (control.go) is wharf's: the gate hands the engine each admitted
// connection inside it. It makes the TLS of the control connection itself (AUTH TLS, and
// implicit TLS from the first byte), so the engine reads plain text in every mode; it sees
// every command first (commands.go: checks PORT and EPRT, PBSZ and PROT, EPSV ALL, answers
// STRU, HELP, FEAT, OPTS, STAT, MLST, checks passwords, formats listings) and every reply
// after the engine (replies.go: 425, 426, 451, 450 for a storage that is unavailable for now,
// and the driver's own errors in words). Every place it departs from the engine is a row of
// corrections.go, pinned by a test of wharf and a probe of the bare engine.
//
// Server implements the engine's MainDriver and these optional hooks:
//   - GetSettings translates Options; Settings.Listener is wharf's gate, which
//     enforces max_clients and max_clients_per_ip inside Accept (a refused
//     connection gets 421 and never starts a session) and wraps each admitted
//     connection in a control. The engine runs with TLS optional: the TLS
//     requirement is enforced by the control connection.
//   - ClientConnected registers the session and returns the 220 banner;
//     ClientDisconnected unregisters it (the engine calls it for every session).
//   - AuthUser takes the login the control connection checked when the client
//     sent PASS (login.go: TLS, address slot, ban, account turn, password, home), and returns
//     a session: the user's vfs filesystem plus the GetHandle, ReadDir,
//     RemoveDir and Site extensions. An anonymous drop box's filesystem is
//     bounded as a whole and per client address (dropbox.go).
//   - GetTLSConfig returns one shared *tls.Config, for the control connection
//     and the data connections alike, so data connections resume the control
//     connection's TLS session.
//   - WrapPassiveListener replaces the engine's passive listener (every
//     interface) with wharf's, on the listen address, for one data connection
//     from the session's address (passive.go).
//
// A session's life is one state (sessions.go): connected, TLS, logged in,
// transferring, closing, closed. The gate admits the connection;
// ClientConnected greets it; the control connection logs it in and AuthUser
// opens its confined filesystem; every RETR/STOR/APPE goes through GetHandle,
// whose transfer wrapper counts bytes, keeps sendfile, and on Close counts the
// outcome, whose log line (and xferlog line) the control connection writes
// once the transfer's reply went out; listings are formatted by wharf and
// carried by the engine as a download. Server.closeSession is the one place
// that ends a session; ClientDisconnected, and the last transfer's Close, let
// go of its filesystem. Shutdown stops the listener, closes idle sessions,
// waits for running transfers until its context ends, then closes the rest.
//
// An account's interrupted upload is kept to resume for upload_resume_window
// (resume.go); what a killed wharf left on disk is reclaimed once per home
// folder and process, in the background (reclaim.go).
//
// An anonymous session keeps the copy of each snapshot folder (a mirror's
// "debian -> debian.2", flipped by its sync) that it first went through, and
// lets go of it with its filesystem; the server counts the sessions holding
// each copy for /snapshots and the metrics, and reads each module's trace
// for its sync health (snapshots.go).
//
// With Options.HTTP, a net/http listener beside the engine serves the
// anonymous tree read-only over HTTP(S) (http.go, httpfile.go,
// httpindex.go): each request opens the anonymous root as a login does and
// sees it through the anonymous session's vfs view; downloads keep
// sendfile and share the transfer log, the metrics (protocol="http"), the
// bans and the bandwidth buckets. Listen binds it, Serve starts it, and
// Shutdown drains it with the FTP sessions.
package server
