package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/afero"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"wharf/auth"
	"wharf/internal/logsafe"
	"wharf/vfs"
)

// ErrTLSOff is what GetTLSConfig returns when TLS is off. The engine never
// acts on it: the control connection answers AUTH, PROT and FEAT itself.
var ErrTLSOff = errors.New("TLS is not enabled on this server")

// shutdownPoll is how often Shutdown looks for sessions that became idle.
const shutdownPoll = 20 * time.Millisecond

// Server is wharf's FTP server: the engine's MainDriver, plus the listener
// gate, the session registry and the transfer log.
type Server struct {
	opts        Options
	accounts    atomic.Pointer[auth.Accounts]
	cert        atomic.Pointer[tls.Certificate]
	log         *zap.Logger
	ftp         *ftpserver.FtpServer
	tls         *tls.Config // the control connections'; nil when TLS is off
	tlsConfigs  *tlsConfigs // the control and data connections' configurations; nil when TLS is off
	gate        *gate
	xfer        *transferLog
	bans        *banList
	metrics     *metrics
	buckets     sharedBuckets
	listings    chan struct{} // one token per directory read running
	listMem     *listingMemory
	listingWait time.Duration // listingWait; shorter in tests
	stopWatch   func()        // stops the stall watchdog and the listing janitor
	pasv        *passivePorts
	pasvIP      *pasvAddress
	logins      *loginSlots
	throttle    *accountThrottle
	floodLogs   *logLimiter   // bounds the lines of events a client repeats at will
	memory      *memoryReturn // returns free memory once connections stop arriving; nil = never
	dirs        *dirCache
	roots       *rootCache
	boxes       *dropBoxes
	uploads     *vfs.Uploads // every atomic upload on disk, for resuming and reclaiming (resume.go, reclaim.go)
	reclaim     *reclaimer
	texts       atomic.Pointer[texts] // the greeting and the anonymous login message, reloadable
	draining    atomic.Bool
	finished    sync.Once
	transfers   atomic.Int64 // file transfers open in the whole server
	cut         context.Context
	cutAll      context.CancelFunc // ends bandwidth waits when Shutdown cuts transfers

	mu       sync.Mutex
	sessions map[uint32]*sessionInfo
	idle     chan struct{} // closed and replaced when the last session leaves

	snaps     *snapshotRegistry // the snapshot folders and the sessions holding their copies (snapshots.go)
	web       *httpTree         // the HTTP listener ([http], http.go); nil without it
	hashing   *hashing          // HASH's parsed checksum files and slots (hash.go)
	manifests *manifests        // /ls-lR.gz and /manifest.json (manifest.go); nil when off
}

var (
	_ ftpserver.MainDriver                         = (*Server)(nil)
	_ ftpserver.MainDriverExtensionPassiveWrapper  = (*Server)(nil)
	_ ftpserver.MainDriverExtensionPostAuthMessage = (*Server)(nil)
	_ ftpserver.MainDriverExtensionQuitMessage     = (*Server)(nil)
)

// texts are the operator's messages, replaced whole by a reload.
type texts struct {
	banner, login string
}

// New prepares a server; nothing listens until Listen.
func New(opts Options, accounts *auth.Accounts, log *zap.Logger) (*Server, error) {
	if opts.DataConnectionTimeout == 0 {
		opts.DataConnectionTimeout = 30 * time.Second
	}

	// Client-supplied text reaches the log escaped, whoever built the logger.
	log = log.WithOptions(logsafe.Wrap())

	s := &Server{
		opts:        opts,
		log:         log.Named("server"),
		sessions:    make(map[uint32]*sessionInfo),
		idle:        make(chan struct{}),
		bans:        newBanList(opts.Ban),
		listings:    make(chan struct{}, listingSlots),
		listMem:     newListingMemory(opts.MaxListingMemory),
		listingWait: listingWait,
		roots:       newRootCache(rootReuse),
		logins:      newLoginSlots(),
		throttle:    newAccountThrottle(accountCheckInterval),
		floodLogs:   newLogLimiter(logBurst, logWindow),
		dirs:        newDirCache(opts.Listing.cacheTTL()),
		hashing:     newHashing(),
	}
	s.manifests = newManifests(s, opts.Manifest)
	for _, snap := range opts.Snapshots.List {
		s.registerManifest(snap.Path, true)
	}

	s.pasvIP = newPasvAddress(opts.PublicHost, s.log)
	s.uploads = vfs.NewUploads()
	s.reclaim = newReclaimer(s.log, s.uploads, s.partWindow())
	s.cut, s.cutAll = context.WithCancel(context.Background())

	s.accounts.Store(accounts)
	s.texts.Store(&texts{banner: opts.Banner, login: opts.LoginMessage})
	s.metrics = newMetrics(func() float64 { return float64(s.bans.count()) })
	s.snaps = newSnapshotRegistry(opts.Snapshots)
	s.metrics.registry.MustRegister(s.snaps)
	s.pasv = newPassivePorts(opts.PassivePortStart, opts.PassivePortEnd, opts.DataConnectionTimeout, s.metrics.passiveExhausted)
	if opts.DataTimeout > 0 {
		// A data connection that moves nothing for data_timeout is cut
		// already: TCP keep-alive would only cost four setsockopt(2) calls
		// per transfer.
		s.pasv.keepAlive = -1
	}
	s.boxes = newDropBoxes(opts.DropBox, s.log, s.metrics.refusedUploads)
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
		s.tlsConfigs = newTLSConfigs(s.tls, opts.RequireSessionReuse)
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
	if err := s.listenHTTP(); err != nil {
		return err
	}

	// No TCP keep-alive on control connections (Go's default sets four
	// socket options per accepted connection): a session that sends nothing
	// is closed after idle_timeout, and one with a transfer running after
	// the data connection's data_timeout.
	lc := net.ListenConfig{KeepAlive: -1}
	l, err := lc.Listen(context.Background(), "tcp", s.opts.Listen)
	if err != nil {
		s.closeHTTP()

		return fmt.Errorf("listen on %s: %w", s.opts.Listen, err)
	}

	var implicit *tls.Config
	if s.opts.TLSMode == TLSImplicit {
		implicit = s.tls
	}

	s.pasv.listenOn(l.Addr())
	s.gate = newGate(l, s.opts.MaxClients, s.opts.MaxClientsPerIP, implicit, s.log)
	s.gate.srv = s
	s.gate.banned = s.bans.isBanned
	s.gate.access = accessLists{allow: s.opts.AccessAllow, deny: s.opts.AccessDeny}
	s.gate.ipv6 = s.opts.IPv6Prefix
	s.gate.logs = s.floodLogs
	if s.opts.GreetingTimeout > 0 {
		s.gate.first = s.opts.GreetingTimeout
	}
	s.gate.refused = func(reason string) { s.metrics.refusedConnection.WithLabelValues(reason).Inc() }
	s.gate.Listener = s.behindBalancer(l)

	if err := s.ftp.Listen(); err != nil {
		_ = s.gate.Close()
		s.closeHTTP()

		return fmt.Errorf("start FTP engine: %w", err)
	}

	stopJanitor := s.startListingJanitor()
	stopWatch := func() {}
	if s.opts.DataTimeout > 0 {
		stopWatch = s.startWatchdog()
	}

	s.memory = newMemoryReturn(s.opts.ReturnMemoryAfter)
	s.gate.memory = s.memory
	s.stopWatch = func() { stopWatch(); stopJanitor(); s.memory.stop() }

	s.reclaimHomes()

	s.manifests.start()

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
	s.serveHTTP()

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
	s.shutdownHTTP(ctx)

	if err := s.ftp.Stop(); err != nil && !errors.Is(err, ftpserver.ErrNotListening) {
		s.log.Warn("stop listener", zap.Error(err))
	}

	var cut error

	for {
		live, idle := s.live()
		for _, si := range live {
			if si.stateNow() != stateTransferring {
				s.closeSession(si, "shutdown")
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
					s.closeSession(si, "shutdown timeout")
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

func (s *Server) finish(cut error) error {
	if s.gate != nil {
		s.gate.refusals.Wait()
	}

	s.floodLogs.stop()
	s.pasv.close()

	if s.stopWatch != nil {
		s.stopWatch()
		s.stopWatch = nil
	}

	s.manifests.shutdown()

	s.cutAll()
	cut = s.waitHTTP(cut)

	s.finished.Do(func() {
		s.reclaim.close()
		s.roots.close()

		if s.tlsConfigs != nil {
			s.tlsConfigs.stop()
		}

		if s.xfer != nil {
			if err := s.xfer.Close(); err != nil {
				s.log.Error("close transfer log", zap.Error(err))
			}
		}
	})

	return cut
}

// GetSettings translates Options into the engine's settings.
func (s *Server) GetSettings() (*ftpserver.Settings, error) {
	st := &ftpserver.Settings{
		Listener:   s.gate,
		ListenAddr: s.opts.Listen,
		// The resolver announces public_host, or the local address, and
		// warns when that cannot work for the client (see pasvAddress).
		PublicIPResolver: s.pasvIP.resolve,
		Banner:           s.opts.Banner,
		// No PassiveTransferPortRange: wharf opens passive ports itself, on
		// the listen address, in WrapPassiveListener, and closes data
		// connections from addresses other than the session's, which the
		// engine would hand the file on the next transfer (see passivePorts).
		IdleTimeout:             max(1, int(s.opts.IdleTimeout/time.Second)),
		ConnectionTimeout:       max(1, int(s.opts.DataConnectionTimeout/time.Second)),
		ActiveTransferPortNon20: true,
		DisableActiveMode:       !s.opts.ActiveMode,
		DisableSite:             false, // answered by session.Site
		EnableHASH:              false,
		EnableCOMB:              false,
		DefaultTransferType:     ftpserver.TransferTypeBinary,
		DisableASCIIConversion:  !s.opts.ASCIIConversion,
		ActiveConnectionsCheck:  ftpserver.IPMatchRequired,
		PasvConnectionsCheck:    ftpserver.IPMatchRequired,
	}

	// TLS on the control connection is wharf's (see control): the engine
	// reads plain text in every mode, and its own TLS requirement stays off.
	// Data connections are still the engine's: it wraps them in TLS after
	// PROT P, with GetTLSConfig.
	st.TLSRequired = ftpserver.ClearOrEncrypted

	return st, nil
}

// GetTLSConfig returns the data connections' TLS configuration. It shares
// the control connections' session ticket keys, which is what lets a data
// connection resume the control connection's TLS session (FileZilla insists
// on it; with RequireSessionReuse, wharf does too).
func (s *Server) GetTLSConfig() (*tls.Config, error) {
	if s.tls == nil {
		return nil, ErrTLSOff
	}

	// The engine asks only for data connections: the control connection's
	// TLS is wharf's own.
	return s.tlsConfigs.data, nil
}

// ClientConnected registers a new control connection and returns the greeting.
func (s *Server) ClientConnected(cc ftpserver.ClientContext) (string, error) {
	ctl := s.gate.lookup(cc.RemoteAddr())
	if ctl == nil {
		// Only the gate's connections reach the engine.
		return "internal error", errNotGated
	}

	si := &sessionInfo{srv: s, cc: cc, ctl: ctl, since: time.Now()}
	ctl.si = si
	if ctl.isSecure() {
		si.setState(stateTLS)
	}

	s.track(si, true)
	s.metrics.sessions.Inc()

	if s.draining.Load() {
		return "server is shutting down", errShuttingDown
	}

	if s.opts.LoginTimeout > 0 {
		si.loginTimer = time.AfterFunc(s.opts.LoginTimeout, func() { s.loginTimedOut(si) })
	}

	// Debug only: "session closed" is logged for every connection, logged in or not.
	if s.log.Core().Enabled(zap.DebugLevel) {
		si.logger().Debug("session opened")
	}

	return s.texts.Load().banner, nil
}

var errNotGated = errors.New("connection did not come through the gate")

// ClientDisconnected unregisters a session; the engine calls it for every
// session, refused ones included.
func (s *Server) ClientDisconnected(cc ftpserver.ClientContext) {
	si := s.session(cc)
	if si == nil {
		return
	}

	s.track(si, false)
	si.setState(stateClosed)
	si.ctl.endRefusals()
	if si.loginTimer != nil {
		si.loginTimer.Stop()
	}
	s.metrics.sessions.Dec()
	si.releaseRoot()

	si.logger().Info("session closed", zap.String("user", si.acct().Name), zap.Duration("duration", time.Since(si.since).Round(time.Millisecond)))
}

// AuthUser gives the engine the login the control connection checked when
// the client sent PASS (see control.pass): the engine only ever sees a PASS
// that succeeded.
func (s *Server) AuthUser(cc ftpserver.ClientContext, _, _ string) (ftpserver.ClientDriver, error) {
	si := s.session(cc)
	if si == nil {
		return nil, auth.ErrLoginIncorrect
	}

	v := si.takeLogin()
	if v == nil {
		return nil, auth.ErrLoginIncorrect
	}

	sess := s.driver(si, v)

	si.mu.Lock()
	si.root, si.release, si.account, si.driver, si.pins = v.root, v.release, v.acct, sess, sess.pins
	si.mu.Unlock()
	si.setState(stateLoggedIn)

	if si.loginTimer != nil {
		si.loginTimer.Stop()
		si.loginTimer = nil // an idle session holds no timer
	}

	si.logger().Info("login", zap.String("user", v.acct.Name), zap.Stringer("access", v.acct.Access),
		zap.Bool("anonymous", v.acct.Anonymous), zap.Bool("tls", si.ctl.isSecure()))
	s.metrics.loginOK.Inc()

	return sess, nil
}

// loginFailed counts a failed login against its address (by its key: an
// IPv6 address by its prefix), banning the key when it failed too often.
// Anonymous logins never come here.
func (s *Server) loginFailed(log sessionLog, ip, key string) {
	s.metrics.logins.WithLabelValues("failure").Inc()

	if banned, opts := s.bans.fail(ip, key); banned {
		fields := []zap.Field{zap.String("ip", ip), zap.Int("failures", opts.MaxFailures), zap.Duration("ban", opts.Duration)}
		if key != ip {
			fields = append(fields, zap.String("network", key))
		}

		log.Warn("address banned", fields...)
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

		if len(s.opts.Listing.Deny) > 0 {
			return deniedRoot{Fs: vfs.Deny(root, s.opts.Listing.Deny), root: root}, root.Close, nil
		}

		return root, root.Close, nil
	}

	return s.roots.acquire(home, func(dir string) (Root, error) {
		s.reclaim.add(dir) // once per folder and process: see reclaimer

		return vfs.Open(dir, vfs.Options{
			Atomic:    s.opts.AtomicUploads,
			NoSync:    s.opts.NoUploadSync,
			ShowLinks: s.opts.Listing.Symlinks == SymlinksAsLinks,
			Deny:      s.opts.Listing.Deny,
			Uploads:   s.uploads,
		})
	})
}

// deniedRoot is an object store's root behind [listing] deny: the disk's
// vfs.Fs applies deny itself, other storage through vfs.Deny.
type deniedRoot struct {
	afero.Fs
	root Root
}

func (d deniedRoot) Close() error { return d.root.Close() }

// listingKeyer returns root's names for its listings, behind [listing] deny
// too (deny is the same for every session, so the listings still are), or
// nil.
func listingKeyer(root Root) ListingKeyer {
	if d, ok := root.(deniedRoot); ok {
		root = d.root
	}

	k, _ := root.(ListingKeyer)

	return k
}

// PostAuthMessage is the text of the reply to PASS.
func (s *Server) PostAuthMessage(cc ftpserver.ClientContext, _ string, authErr error) string {
	if authErr != nil {
		return "Login incorrect."
	}

	si := s.session(cc)
	if si == nil {
		return "Logged in."
	}

	if acct := si.acct(); !acct.Anonymous {
		return fmt.Sprintf("User %s logged in, %s access.", acct.Name, acct.Access)
	}

	if msg := s.texts.Load().login; msg != "" {
		return msg
	}

	return "Anonymous access granted, restrictions apply."
}

// QuitMessage is the text of the reply to QUIT.
func (s *Server) QuitMessage() string {
	return "Goodbye."
}

// WrapPassiveListener replaces the engine's passive listener, which listens
// on every interface, with one on the address wharf listens on (see
// passivePorts).
func (s *Server) WrapPassiveListener(l net.Listener) (net.Listener, error) {
	return s.pasv.open(l)
}

// transferDone counts the end of t and returns the writing of its log
// lines (the structured log and the xferlog), which the caller may put off
// until the client has its reply (control.afterReply).
func (s *Server) transferDone(t *transfer) func() {
	si := t.sess.info
	dur := time.Since(t.start)
	bytes := t.bytes.Load()
	failure := t.failure()
	when := time.Now()

	s.metrics.transferDone(t.direction == "upload", failure == nil, dur.Seconds())

	return func() {
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
				when:      when,
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
}
