package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"wharf/auth"
	"wharf/vfs"
)

// ErrTLSOff is what GetTLSConfig returns when TLS is off; the engine then
// refuses AUTH TLS and leaves it out of FEAT.
var ErrTLSOff = errors.New("TLS is not enabled on this server")

var errTLSRequired = errors.New("TLS is required on this server: send AUTH TLS before logging in")

// shutdownPoll is how often Shutdown looks for sessions that became idle.
const shutdownPoll = 20 * time.Millisecond

// Server is wharf's FTP server: the engine's MainDriver, plus the listener
// gate, the session registry and the transfer log.
type Server struct {
	opts      Options
	accounts  atomic.Pointer[auth.Accounts]
	cert      atomic.Pointer[tls.Certificate]
	log       *zap.Logger
	ftp       *ftpserver.FtpServer
	tls       *tls.Config // nil when TLS is off; one shared config so data connections resume the control session
	gate      *gate
	xfer      *transferLog
	bans      *banList
	metrics   *metrics
	buckets   sharedBuckets
	listings  chan struct{} // one token per directory listing running
	stopWatch func()        // stops the stall watchdog
	pasv      *passivePorts
	pasvIP    *pasvAddress
	logins    *loginSlots
	dirs      *dirCache
	roots     *rootCache
	draining  atomic.Bool
	finished  sync.Once
	transfers atomic.Int64 // file transfers open in the whole server
	cut       context.Context
	cutAll    context.CancelFunc // ends bandwidth waits when Shutdown cuts transfers

	mu       sync.Mutex
	sessions map[uint32]*sessionInfo
	idle     chan struct{} // closed and replaced when the last session leaves
}

// sessionInfo is the registry's record of one control connection.
type sessionInfo struct {
	cc        ftpserver.ClientContext
	remote    string
	since     time.Time
	base      *zap.Logger  // the server's; see logger
	conn      *gatedConn   // the control connection under any TLS layer
	transfers atomic.Int32 // file transfers running now
	current   atomic.Pointer[transfer]
	closing   atomic.Bool
	gone      atomic.Bool // the control connection has ended
	loggedIn  atomic.Bool
	login     *time.Timer // closes the session if it has not logged in in time

	mu      sync.Mutex
	root    Root
	release func() error // lets go of root
	account auth.Account
}

var (
	_ ftpserver.MainDriver                         = (*Server)(nil)
	_ ftpserver.MainDriverExtensionPassiveWrapper  = (*Server)(nil)
	_ ftpserver.MainDriverExtensionPostAuthMessage = (*Server)(nil)
	_ ftpserver.MainDriverExtensionQuitMessage     = (*Server)(nil)
	_ ftpserver.MainDriverExtensionUserVerifier    = (*Server)(nil)
)

// New prepares a server; nothing listens until Listen.
func New(opts Options, accounts *auth.Accounts, log *zap.Logger) (*Server, error) {
	if opts.DataConnectionTimeout == 0 {
		opts.DataConnectionTimeout = 30 * time.Second
	}

	s := &Server{
		opts:     opts,
		log:      log.Named("server"),
		sessions: make(map[uint32]*sessionInfo),
		idle:     make(chan struct{}),
		bans:     newBanList(opts.Ban),
		listings: make(chan struct{}, listingSlots),
		pasv:     newPassivePorts(opts.PassivePortStart, opts.PassivePortEnd),
		roots:    newRootCache(rootReuse),
		logins:   newLoginSlots(),
		dirs:     newDirCache(),
	}

	s.pasvIP = newPasvAddress(opts.PublicHost, s.log)
	s.cut, s.cutAll = context.WithCancel(context.Background())

	s.accounts.Store(accounts)
	s.metrics = newMetrics(func() float64 { return float64(s.bans.count()) })
	s.buckets.set(opts.Bandwidth)

	if opts.TLSMode != TLSOff {
		cert, err := tls.LoadX509KeyPair(opts.TLSCertFile, opts.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", opts.TLSCertFile, opts.TLSKeyFile, err)
		}

		s.cert.Store(&cert)
		// GetCertificate reads the certificate on every handshake, so a reload
		// changes it without a new *tls.Config (whose session ticket keys
		// would change too).
		s.tls = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Full-size records from the first byte: transfers are bulk data,
			// where the small records meant for web pages only cost CPU.
			DynamicRecordSizingDisabled: true,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		}
	}

	if opts.TransferLog != "" {
		xl, err := openTransferLog(opts.TransferLog)
		if err != nil {
			return nil, err
		}

		s.xfer = xl
	}

	s.ftp = ftpserver.NewFtpServer(s)
	s.ftp.Logger = slog.New(&lazyAttrs{inner: zapslog.NewHandler(log.Core(),
		zapslog.WithName("ftp"),
		zapslog.AddStacktraceAt(slog.LevelError+100))})

	return s, nil
}

// Listen binds the control port. When it returns, clients can connect.
func (s *Server) Listen() error {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Listen, err)
	}

	var implicit *tls.Config
	if s.opts.TLSMode == TLSImplicit {
		implicit = s.tls
	}

	s.gate = newGate(l, s.opts.MaxClients, s.opts.MaxClientsPerIP, implicit, s.log)
	s.gate.banned = s.bans.isBanned
	if s.opts.GreetingTimeout > 0 {
		s.gate.first = s.opts.GreetingTimeout
	}
	s.gate.refused = func(reason string) { s.metrics.refusedConnection.WithLabelValues(reason).Inc() }

	if err := s.ftp.Listen(); err != nil {
		_ = l.Close()

		return fmt.Errorf("start FTP engine: %w", err)
	}

	if s.opts.DataTimeout > 0 {
		s.stopWatch = s.startWatchdog()
	}

	s.log.Info("listening", zap.String("address", l.Addr().String()), zap.Stringer("tls", s.opts.TLSMode),
		zap.Int("passive_start", s.opts.PassivePortStart), zap.Int("passive_end", s.opts.PassivePortEnd))

	return nil
}

// Registry holds the server's metrics, for the admin listener's /metrics.
func (s *Server) Registry() *prometheus.Registry {
	return s.metrics.registry
}

// Accepting reports whether the control listener is open: after Listen, before Shutdown.
func (s *Server) Accepting() bool {
	return s.gate != nil && !s.draining.Load()
}

// Addr is the control port's address, once Listen has returned.
func (s *Server) Addr() net.Addr {
	return s.gate.Addr()
}

// Serve accepts connections until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve() error {
	if err := s.ftp.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	return nil
}

// Shutdown stops accepting connections, closes idle sessions at once, lets
// running transfers finish until ctx ends, then closes every remaining
// session. Like http.Server.Shutdown it returns ctx's error if transfers had
// to be cut off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)

	if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
		s.log.Warn("stop listener", zap.Error(err))
	}

	var cut error

	for {
		live, idle := s.live()
		for _, si := range live {
			if si.transfers.Load() == 0 {
				s.closeSession(si, "shutdown", false)
			}
		}

		if len(live) == 0 {
			break
		}

		select {
		case <-idle:
		case <-time.After(shutdownPoll):
		case <-ctx.Done():
			if cut == nil {
				cut = ctx.Err()
				s.cutAll()
				live, _ = s.live()
				s.log.Warn("shutdown timeout: closing sessions with transfers running", zap.Int("sessions", len(live)))
				for _, si := range live {
					s.closeSession(si, "shutdown timeout", true)
				}
			}

			// The engine's session goroutines now end by themselves; wait a
			// little for them so their files are closed before we return.
			select {
			case <-idle:
			case <-time.After(2 * time.Second):
				s.log.Warn("sessions still ending after shutdown")

				return s.finish(cut)
			}
		}
	}

	// The engine unregisters a session before its transfer goroutine has
	// finished: wait for every transfer to close its file (an interrupted
	// upload removes its temporary file then), within the grace left, and a
	// short bound after a cut.
	s.waitTransfers(ctx, cut != nil)

	return s.finish(cut)
}

// waitTransfers waits until no file transfer is open.
func (s *Server) waitTransfers(ctx context.Context, cutting bool) {
	bound := time.NewTimer(2 * time.Second)
	defer bound.Stop()

	for s.transfers.Load() > 0 {
		if cutting {
			select {
			case <-bound.C:
				s.log.Warn("transfers still closing after shutdown", zap.Int64("transfers", s.transfers.Load()))

				return
			case <-time.After(shutdownPoll):
			}

			continue
		}

		select {
		case <-ctx.Done():
			cutting = true
			s.cutAll()
		case <-time.After(shutdownPoll):
		}
	}
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

func (s *Server) finish(cut error) error {
	if s.gate != nil {
		s.gate.refusals.Wait()
	}

	if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}

	s.cutAll()

	s.finished.Do(func() {
		s.roots.close()

		if s.xfer != nil {
			if err := s.xfer.Close(); err != nil {
				s.log.Error("close transfer log", zap.Error(err))
			}
		}
	})

	return cut
}

// closeSession ends a session; s.mu must not be held, since the engine's
// Close can wait for a data connection being opened. An idle session's control
// connection is closed underneath the engine, which then ends the session by
// itself; cc.Close is used only to cut a running transfer, since the engine's
// Close races with a session that is ending on its own (QUIT, failed login).
func (s *Server) closeSession(si *sessionInfo, reason string, cutTransfer bool) {
	if cutTransfer && si.transfers.Load() > 0 {
		si.logger().Info("closing session", zap.String("reason", reason))
		_ = si.cc.Close()

		return
	}

	if si.closing.CompareAndSwap(false, true) {
		si.logger().Info("closing session", zap.String("reason", reason))

		if si.conn != nil {
			_ = si.conn.Close()
		} else {
			_ = si.cc.Close()
		}
	}
}

// GetSettings translates Options into the engine's settings.
func (s *Server) GetSettings() (*ftpserver.Settings, error) {
	st := &ftpserver.Settings{
		Listener:   s.gate,
		ListenAddr: s.opts.Listen,
		// The resolver announces public_host, or the local address, and
		// warns when that cannot work for the client (see pasvAddress).
		PublicIPResolver:         s.pasvIP.resolve,
		Banner:                   s.opts.Banner,
		PassiveTransferPortRange: s.pasv,
		// Multiplexing closes data connections from addresses other than
		// the session's; without it the engine hands a stranger's
		// connection the file on the next transfer.
		PassiveTransferPortMultiplexing: true,
		IdleTimeout:                     max(1, int(s.opts.IdleTimeout/time.Second)),
		ConnectionTimeout:               max(1, int(s.opts.DataConnectionTimeout/time.Second)),
		ActiveTransferPortNon20:         true,
		DisableActiveMode:               !s.opts.ActiveMode,
		DisableSite:                     false, // answered by session.Site
		EnableHASH:                      false,
		EnableCOMB:                      false,
		DefaultTransferType:             ftpserver.TransferTypeBinary,
		DisableASCIIConversion:          !s.opts.ASCIIConversion,
		ActiveConnectionsCheck:          ftpserver.IPMatchRequired,
		PasvConnectionsCheck:            ftpserver.IPMatchRequired,
	}

	switch s.opts.TLSMode {
	case TLSRequired:
		st.TLSRequired = ftpserver.MandatoryEncryption
	case TLSImplicit:
		st.TLSRequired = ftpserver.ImplicitEncryption
	case TLSOff, TLSExplicit:
		st.TLSRequired = ftpserver.ClearOrEncrypted
	}

	return st, nil
}

// GetTLSConfig returns the one shared TLS configuration, for control and data
// connections alike: sharing it is what lets a data connection resume the
// control connection's TLS session, which FileZilla insists on.
func (s *Server) GetTLSConfig() (*tls.Config, error) {
	if s.tls == nil {
		return nil, ErrTLSOff
	}

	return s.tls, nil
}

// ClientConnected registers a new control connection and returns the greeting.
func (s *Server) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	si := &sessionInfo{
		cc:    cc,
		since: time.Now(),
		base:  s.log,
		conn:  s.gate.lookup(cc.RemoteAddr()),
	}
	if si.conn != nil {
		si.remote = si.conn.remote
	} else {
		si.remote = cc.RemoteAddr().String()
	}

	s.mu.Lock()
	s.sessions[cc.ID()] = si
	draining := s.draining.Load()
	s.mu.Unlock()
	s.metrics.sessions.Inc()

	if draining {
		return "server is shutting down", errShuttingDown
	}

	if s.opts.LoginTimeout > 0 {
		si.login = time.AfterFunc(s.opts.LoginTimeout, func() { s.loginTimedOut(si) })
	}

	// Debug only: "session closed" is logged for every connection, logged in or not.
	si.logger().Debug("session opened")

	return s.opts.Banner, nil
}

// ClientDisconnected unregisters a session; the engine calls it for every
// session, refused ones included.
func (s *Server) ClientDisconnected(cc ftpserver.ClientContext) {
	s.mu.Lock()
	si := s.sessions[cc.ID()]
	delete(s.sessions, cc.ID())
	if len(s.sessions) == 0 {
		close(s.idle)
		s.idle = make(chan struct{})
	}
	s.mu.Unlock()

	if si == nil {
		return
	}

	si.gone.Store(true)
	if si.login != nil {
		si.login.Stop()
	}
	s.metrics.sessions.Dec()
	si.releaseRoot()

	si.mu.Lock()
	user := si.account.Name
	si.mu.Unlock()

	si.logger().Info("session closed", zap.String("user", user), zap.Duration("duration", time.Since(si.since).Round(time.Millisecond)))
}

// loginTimedOut closes a session that did not log in within login_timeout,
// whatever it sent meanwhile: NOOP forever does not keep it open.
func (s *Server) loginTimedOut(si *sessionInfo) {
	if si.loggedIn.Load() || si.gone.Load() {
		return
	}

	si.logger().Warn("login timeout", zap.Duration("login_timeout", s.opts.LoginTimeout))

	s.replyDirect(si, "421 Login timeout: closing control connection.\r\n")
	s.closeSession(si, "login timeout", false)
}

// replyDirect writes a reply on a clear-text control connection underneath
// the engine, for the few cases where the engine's own reply code is wrong
// (it can only answer 530 to a refused PASS). On a TLS connection it does
// nothing: the engine's reply stands.
func (s *Server) replyDirect(si *sessionInfo, reply string) {
	if si.conn == nil || si.cc.HasTLSForControl() {
		return
	}

	_ = si.conn.SetWriteDeadline(time.Now().Add(refuseDeadline))
	_, _ = si.conn.Write([]byte(reply))
}

// logger is the session's log. It is made on each use rather than kept: a
// kept zap logger holds an encoder buffer (a KiB or more) for every idle
// session, and sessions log only a handful of lines.
func (si *sessionInfo) logger() sessionLog {
	return sessionLog{log: si.base, fields: []zap.Field{zap.Uint32("session", si.cc.ID()), zap.String("remote", si.remote)}}
}

// ip is the client's address.
func (si *sessionInfo) ip() string {
	if si.conn != nil {
		return si.conn.ip
	}

	return hostOf(si.cc.RemoteAddr())
}

// releaseRoot lets go of the session's filesystem (closing it unless other
// sessions share it) once the session is gone and its last transfer has ended: the engine may end a session while a transfer
// goroutine still has to clean up (remove an atomic upload's temporary file).
func (si *sessionInfo) releaseRoot() {
	si.mu.Lock()
	if !si.gone.Load() || si.transfers.Load() > 0 || si.root == nil {
		si.mu.Unlock()

		return
	}

	release := si.release
	si.root, si.release = nil, nil
	si.mu.Unlock()

	if err := release(); err != nil {
		si.logger().Warn("close session root", zap.Error(err))
	}
}

func (s *Server) session(cc ftpserver.ClientContext) *sessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.sessions[cc.ID()]
}

// AuthUser checks a login and returns the user's confined filesystem.
// The engine reaches it for PASS even without USER (empty name) and only
// checks TLS-required in USER, so both are checked here again.
func (s *Server) AuthUser(cc ftpserver.ClientContext, user, pass string) (ftpserver.ClientDriver, error) {
	si := s.session(cc)
	if si == nil {
		return nil, auth.ErrLoginIncorrect
	}

	log := si.logger().with(zap.String("user", user))
	ip := si.ip()

	if s.opts.TLSMode == TLSRequired && !cc.HasTLSForControl() {
		log.Warn("login refused", zap.String("reason", "no TLS on the control connection"))
		s.metrics.logins.WithLabelValues("refused").Inc()

		return nil, errTLSRequired
	}

	// One password check per address at a time: see loginSlots. Anonymous
	// logins check no password.
	if !auth.IsAnonymousName(user) {
		release, ok := s.logins.acquire(ip)
		if !ok {
			log.Warn("login refused", zap.String("reason", "too many logins from this address at once"))
			s.metrics.logins.WithLabelValues("refused").Inc()
			s.replyDirect(si, "421 "+auth.ErrBusy.Error()+"\r\n")

			return nil, auth.ErrBusy
		}
		defer release()
	}

	// A connection opened before its address was banned gets no more bcrypt checks.
	if s.bans.isBanned(ip) {
		log.Warn("login refused", zap.String("reason", "address banned"))
		s.metrics.logins.WithLabelValues("refused").Inc()

		return nil, auth.ErrLoginIncorrect
	}

	if user == "" {
		log.Warn("login failed", zap.String("reason", "PASS without USER"))
		s.loginFailed(log, ip)

		return nil, auth.ErrLoginIncorrect
	}

	acct, err := s.accounts.Load().Authenticate(user, pass)
	if errors.Is(err, auth.ErrBusy) {
		log.Warn("login refused", zap.String("reason", "password checks saturated"))
		s.metrics.logins.WithLabelValues("refused").Inc()
		s.replyDirect(si, "421 "+auth.ErrBusy.Error()+"\r\n")

		return nil, auth.ErrBusy
	}

	if err != nil {
		log.Warn("login failed")
		if !auth.IsAnonymousName(user) {
			s.loginFailed(log, ip)
		} else {
			s.metrics.logins.WithLabelValues("failure").Inc()
		}

		return nil, auth.ErrLoginIncorrect
	}

	root, release, err := s.openRoot(acct.Home)
	if err != nil {
		log.Error("login failed: cannot open home", zap.String("home", acct.Home), zap.Error(err))

		return nil, auth.ErrLoginIncorrect
	}

	// A session may log in again (USER and PASS once more): the previous
	// login's root is let go of. The engine runs PASS only after a running
	// transfer has ended, its file closed, so nothing still renames through it.
	si.mu.Lock()
	previous := si.release
	si.root, si.release, si.account = root, release, acct
	si.mu.Unlock()
	si.loggedIn.Store(true)

	if previous != nil {
		if err := previous(); err != nil {
			log.Warn("close previous root", zap.Error(err))
		}
	}

	if si.login != nil {
		si.login.Stop()
	}

	sess := &session{
		srv:      s,
		info:     si,
		account:  acct,
		download: newBucket(acct.DownloadLimit),
		upload:   newBucket(acct.UploadLimit),
	}

	disk, onDisk := root.(*vfs.Fs)

	switch {
	case acct.Anonymous && acct.UploadDir != "" && onDisk:
		sess.Fs = vfs.Resolve(vfs.DropBox(disk, path.Join("/", acct.UploadDir)), cc.Path)
	case acct.Access == auth.ReadOnly:
		sess.Fs = vfs.Resolve(vfs.ReadOnly(root), cc.Path)
	case acct.Access == auth.WriteOnly:
		sess.Fs = vfs.Resolve(vfs.WriteOnly(root), cc.Path)
	default:
		sess.Fs = vfs.Resolve(root, cc.Path)
	}

	log.Info("login", zap.Stringer("access", acct.Access), zap.Bool("anonymous", acct.Anonymous), zap.Bool("tls", cc.HasTLSForControl()))
	s.metrics.loginOK.Inc()

	return sess, nil
}

// loginFailed counts a failed login against its address, banning it when
// it failed too often. Anonymous logins never come here.
func (s *Server) loginFailed(log sessionLog, ip string) {
	s.metrics.logins.WithLabelValues("failure").Inc()

	if banned, opts := s.bans.fail(ip); banned {
		log.Warn("address banned", zap.String("ip", ip), zap.Int("failures", opts.MaxFailures),
			zap.Duration("ban", opts.Duration))
	}
}

// openRoot opens a session's filesystem with the configured storage, and
// returns the function that lets go of it. Folders on disk are shared among
// the sessions that start close together (see rootCache).
func (s *Server) openRoot(home string) (Root, func() error, error) {
	if s.opts.Storage != nil {
		root, err := s.opts.Storage(home, s.opts.AtomicUploads)
		if err != nil {
			return nil, nil, err
		}

		return root, root.Close, nil
	}

	return s.roots.acquire(home, func(dir string) (Root, error) {
		return vfs.Open(dir, vfs.Options{Atomic: s.opts.AtomicUploads})
	})
}

// PreAuthUser refuses USER on a clear control connection when TLS is
// required, with a reply that says what to do.
func (s *Server) PreAuthUser(cc ftpserver.ClientContext, user string) error {
	if s.opts.TLSMode == TLSRequired && !cc.HasTLSForControl() {
		if si := s.session(cc); si != nil {
			si.logger().Warn("login refused", zap.String("user", user), zap.String("reason", "no TLS on the control connection"))
		}

		return errTLSRequired
	}

	return nil
}

// PostAuthMessage is the text of the reply to PASS.
func (s *Server) PostAuthMessage(cc ftpserver.ClientContext, _ string, authErr error) string {
	switch {
	case errors.Is(authErr, errTLSRequired):
		return errTLSRequired.Error()
	case errors.Is(authErr, auth.ErrBusy):
		return auth.ErrBusy.Error()
	case authErr != nil:
		return "Login incorrect."
	}

	if si := s.session(cc); si != nil {
		si.mu.Lock()
		defer si.mu.Unlock()

		if si.account.Anonymous {
			return "Anonymous access granted, restrictions apply."
		}

		return fmt.Sprintf("User %s logged in, %s access.", si.account.Name, si.account.Access)
	}

	return "Logged in."
}

// QuitMessage is the text of the reply to QUIT.
func (s *Server) QuitMessage() string {
	return "Goodbye."
}

// WrapPassiveListener fixes stale connections left in the engine's passive
// reservations (see passiveListener).
func (s *Server) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return &passiveListener{Listener: l}, nil
}

// transferDone logs a finished transfer, complete or not.
func (s *Server) transferDone(t *transfer) {
	si := t.sess.info
	dur := time.Since(t.start)
	bytes := t.bytes.Load()
	failure := t.failure()

	fields := []zap.Field{
		zap.String("user", t.sess.account.Name),
		zap.String("path", t.path),
		zap.String("direction", t.direction),
		zap.Int64("bytes", bytes),
		zap.Duration("duration", dur.Round(time.Microsecond)),
	}
	if t.offset > 0 {
		fields = append(fields, zap.Int64("offset", t.offset))
	}

	s.metrics.transferDone(t.direction == "upload", failure == nil, bytes, dur.Seconds())

	if failure != nil {
		fields = append(fields, zap.String("result", "incomplete"), zap.Error(failure))

		if dce, ok := errors.AsType[*dataConnError](failure); ok {
			fields = append(fields, zap.NamedError("cause", dce.cause))
		}

		si.logger().Warn("transfer incomplete", fields...)
	} else {
		si.logger().Info("transfer done", append(fields, zap.String("result", "ok"))...)
	}

	if s.xfer != nil {
		rec := xferRecord{
			when:      time.Now(),
			duration:  dur,
			remoteIP:  si.ip(),
			bytes:     bytes,
			path:      t.path,
			incoming:  t.direction == "upload",
			anonymous: t.sess.account.Anonymous,
			user:      t.sess.account.Name,
			complete:  failure == nil,
		}
		if rec.anonymous {
			rec.user = t.sess.account.Password
		}

		if err := s.xfer.write(rec); err != nil {
			s.log.Error("write transfer log", zap.Error(err))
		}
	}
}
