package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/internal/proxyproto"
	"wharf/vfs"
)

// HTTPOptions are the [http] table: the anonymous tree served read-only
// over HTTP or HTTPS, beside FTP. The zero value serves nothing.
type HTTPOptions struct {
	// Listen is the HTTP listener's address, host:port; "" serves no HTTP.
	Listen string
	// TLS serves HTTPS with the [tls] certificate (TLSCertFile and
	// TLSKeyFile, reloaded with it), HTTP/2 included.
	TLS bool
}

// The HTTP listener's own bounds. A download has no overall deadline: like
// an FTP transfer it is cut only when it moves no byte for data_timeout.
const (
	httpHeaderTimeout = 10 * time.Second // a request's line and headers
	httpIdleTimeout   = 2 * time.Minute  // a keep-alive connection between requests
	httpMaxHeader     = 32 << 10
)

// httpTree is the HTTP listener: it serves the anonymous account's tree,
// read-only, through the same vfs view an anonymous FTP session gets
// (httpView), with the same bans, [access] lists, bandwidth buckets,
// transfer log and metrics (protocol="http").
type httpTree struct {
	srv   *Server
	hs    *http.Server
	l     net.Listener
	log   *zap.Logger
	conns *httpConns

	mu      sync.Mutex
	running int  // requests being answered
	closed  bool // Shutdown began: no new request starts
	cutErr  error
	served  chan struct{} // closed when Serve returned; nil if it never ran
	stopped chan struct{} // closed once Shutdown has drained or cut every request
}

// listenHTTP binds the HTTP listener when [http] listen is set; Serve
// starts answering on it.
func (s *Server) listenHTTP() error {
	o := s.opts.HTTP
	if o.Listen == "" {
		return nil
	}

	lc := net.ListenConfig{}
	l, err := lc.Listen(context.Background(), "tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (http.listen): %w", o.Listen, err)
	}

	// Behind a balancer that sends the PROXY protocol, HTTP takes the
	// client's address from the header as FTP does, for bans, [access],
	// the per-address limits and the logs ([proxy_protocol]).
	if len(s.opts.ProxyTrusted) > 0 {
		l = proxyproto.Listen(l, proxyproto.Options{Trusted: s.proxyTrusted, Timeout: s.headerWait(),
			Refused: func(conn net.Conn, err error) {
				s.metrics.refusedConnection.WithLabelValues(refusedProxyHeader).Inc()
				s.log.Named("http").Warn("connection refused", zap.String("remote", conn.RemoteAddr().String()),
					zap.String("reason", refusedProxyHeader), zap.Error(err))
				_ = conn.Close()
			}})
	}

	h := &httpTree{srv: s, l: l, log: s.log.Named("http"), stopped: make(chan struct{}),
		conns: &httpConns{ipv6: s.opts.IPv6Prefix, byKey: make(map[string]int)}}
	h.hs = &http.Server{
		Handler:           h,
		ConnState:         h.conns.track,
		ReadHeaderTimeout: httpHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeader,
		ErrorLog:          log.New(httpErrorLog{h.log}, "", 0),
	}

	if o.TLS {
		if s.cert.Load() == nil {
			cert, err := tls.LoadX509KeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile)
			if err != nil {
				_ = l.Close()

				return fmt.Errorf("load TLS certificate %s and key %s: %w", s.opts.TLSCertFile, s.opts.TLSKeyFile, err)
			}

			s.cert.Store(&cert)
		}

		// The certificate is read at every handshake, so a reload replaces
		// it as it does FTP's. ServeTLS adds HTTP/2 ("h2") to NextProtos.
		h.hs.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		}
	}

	s.web = h
	h.log.Info("http listening", zap.String("address", l.Addr().String()), zap.Bool("tls", o.TLS))

	return nil
}

// HTTPAddr is the HTTP listener's address, nil without [http] listen.
func (s *Server) HTTPAddr() net.Addr {
	if s.web == nil {
		return nil
	}

	return s.web.l.Addr()
}

// serveHTTP answers on the HTTP listener in the background, until Shutdown.
func (s *Server) serveHTTP() {
	h := s.web
	if h == nil {
		return
	}

	h.mu.Lock()
	defer h.mu.Unlock()

	if h.closed {
		return // Shutdown came first
	}

	h.served = make(chan struct{})

	go func() {
		defer close(h.served)

		var err error
		if h.hs.TLSConfig != nil {
			err = h.hs.ServeTLS(h.l, "", "")
		} else {
			err = h.hs.Serve(h.l)
		}

		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("http listener failed", zap.Error(err))
		}
	}()
}

// shutdownHTTP stops the HTTP listener as Shutdown stops FTP's: no new
// connection, idle ones closed at once, downloads running let finish until
// ctx ends, then cut. waitHTTP waits for it.
func (s *Server) shutdownHTTP(ctx context.Context) {
	h := s.web
	if h == nil {
		return
	}

	h.mu.Lock()
	again := h.closed
	h.closed = true
	served := h.served
	h.mu.Unlock()

	if again {
		return
	}

	go func() {
		defer close(h.stopped)

		// Serve may not have run: the listener is closed either way.
		err := h.hs.Shutdown(ctx)
		_ = h.l.Close()

		if err != nil {
			h.log.Warn("shutdown timeout: closing HTTP downloads still running", zap.Int("requests", h.requests()))
			_ = h.hs.Close()

			h.mu.Lock()
			h.cutErr = err
			h.mu.Unlock()
		}

		if served != nil {
			<-served
		}

		// Close does not wait for the handlers: a cut download still
		// writes its transfer log line, before the log closes.
		bound := time.After(2 * time.Second)
		for h.requests() > 0 {
			select {
			case <-bound:
				h.log.Warn("http requests still ending after shutdown", zap.Int("requests", h.requests()))

				return
			case <-time.After(shutdownPoll):
			}
		}
	}()
}

// closeHTTP closes the HTTP listener when Listen fails after binding it.
func (s *Server) closeHTTP() {
	if s.web != nil {
		_ = s.web.l.Close()
		s.web = nil
	}
}

// waitHTTP waits for shutdownHTTP; it returns cut, or the HTTP side's
// context error when only HTTP downloads had to be cut.
func (s *Server) waitHTTP(cut error) error {
	h := s.web
	if h == nil {
		return cut
	}

	<-h.stopped

	h.mu.Lock()
	defer h.mu.Unlock()

	// Told once: a second Shutdown finds nothing to cut.
	if cut == nil {
		cut = h.cutErr
	}
	h.cutErr = nil

	return cut
}

// begin counts a request in, unless Shutdown began.
func (h *httpTree) begin() bool {
	h.mu.Lock()
	defer h.mu.Unlock()

	if h.closed {
		return false
	}

	h.running++

	return true
}

func (h *httpTree) end() {
	h.mu.Lock()
	h.running--
	h.mu.Unlock()
}

func (h *httpTree) requests() int {
	h.mu.Lock()
	defer h.mu.Unlock()

	return h.running
}

// httpRequest is one request being answered.
type httpRequest struct {
	h     *httpTree
	w     *httpResponse
	r     *http.Request
	ip    string // the client's address
	key   string // and as per-address limits count it (addrKey)
	start time.Time
}

// ServeHTTP answers GET and HEAD for the anonymous tree.
func (h *httpTree) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &httpResponse{w: rw, rc: http.NewResponseController(rw), status: http.StatusOK}
	defer func() { h.srv.metrics.httpRequests.WithLabelValues(strconv.Itoa(w.status)).Inc() }()

	if !h.begin() {
		w.Header().Set("Connection", "close")
		http.Error(w, "503 server is shutting down, try again later", http.StatusServiceUnavailable)

		return
	}
	defer h.end()

	ip := httpClientIP(r.RemoteAddr)
	req := &httpRequest{h: h, w: w, r: r, ip: ip, key: addrKey(ip, h.srv.opts.IPv6Prefix), start: time.Now()}
	req.serve()

	if ce := h.log.Check(zap.DebugLevel, "http request"); ce != nil {
		ce.Write(zap.String("remote", r.RemoteAddr), zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("code", w.status), zap.Int64("bytes", w.bytes))
	}
}

func (q *httpRequest) serve() {
	w, r := q.w, q.r

	// A download leaves its deadline on the connection (httpRequest.file);
	// a keep-alive request after it starts without one.
	_ = w.rc.SetWriteDeadline(time.Time{})

	if code, msg := q.refused(); code != 0 {
		// Closing the connection too: a refused client gets no keep-alive.
		w.Header().Set("Connection", "close")
		http.Error(w, strconv.Itoa(code)+" "+msg, code)

		return
	}

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 this server serves files read-only: GET and HEAD only", http.StatusMethodNotAllowed)

		return
	}

	name, ok := requestPath(r)
	if !ok {
		notFound(w)

		return
	}

	acct, err := q.h.srv.accounts.Load().Authenticate("anonymous", "")
	if err != nil {
		// [http] needs anonymous access: only a reload that turned it off
		// comes here, and config refuses that.
		http.Error(w, "503 anonymous access is off on this server", http.StatusServiceUnavailable)

		return
	}

	root, release, err := q.h.srv.openRoot(acct.Home)
	if err != nil {
		q.h.log.Error("cannot open the anonymous root", zap.String("home", acct.Home), zap.Error(err))
		http.Error(w, "503 the files are unavailable, try again later", http.StatusServiceUnavailable)

		return
	}
	defer func() { _ = release() }()

	// A request keeps the copy of each snapshot folder it goes through
	// until it is answered, and is counted among that copy's holders
	// meanwhile (snapshot-wait waits for a download in flight).
	pins := q.h.srv.snaps.pins()
	if pins != nil {
		defer pins.Release()
	}

	view, pinned := httpView(acct, root, pins)
	fsys := q.h.srv.manifests.wrap(view, acct, func() string { return "/" }, pinned)

	f, err := fsys.Open(name)
	if err != nil {
		q.fail(name, err)

		return
	}
	defer func() { _ = f.Close() }()

	info, err := f.Stat()
	if err != nil {
		q.fail(name, err)

		return
	}

	switch slash := strings.HasSuffix(r.URL.Path, "/"); {
	case info.IsDir() && !slash:
		// Relative links of the index page need the slash: /pub -> /pub/.
		http.Redirect(w, r, escapePath(name+"/"), http.StatusMovedPermanently)
	case info.IsDir():
		q.index(f, name)
	case slash:
		notFound(w)
	default:
		q.file(acct, f, info, name)
	}
}

// httpView is the anonymous tree as an anonymous FTP session sees it (see
// Server.driver), read-only: only what others may read on disk
// (world_readable_only), the drop box (upload_dir) neither readable nor
// listable, and names made absolute and checked by vfs.Resolve (NUL, CR,
// LF refused). Confinement, links and [listing] deny are the root's own.
// With pins, the request reads each snapshot folder's link once, as a
// session does, and keeps that copy to its end ([[snapshots]]).
// It returns the view and, with pins, the pinned disk view (for the
// manifests of snapshots).
func httpView(acct auth.Account, root Root, pins *vfs.Pins) (afero.Fs, *vfs.Fs) {
	view, disk := readView(root, acct, pins)

	var (
		fsys   afero.Fs = view
		pinned *vfs.Fs
	)

	if disk != nil && pins != nil {
		pinned = disk
	}

	if disk != nil && acct.UploadDir != "" {
		fsys = vfs.DropBox(disk, path.Join("/", acct.UploadDir))
	}

	return vfs.Resolve(vfs.ReadOnly(fsys), func() string { return "/" }), pinned
}

// refused returns the status and the words that refuse the client, or 0:
// [access] lists first, then bans (403), then max_clients and
// max_clients_per_ip over the HTTP connections open (503), as the FTP gate
// checks them. They are checked at every request, so a keep-alive
// connection opened before a ban is refused too.
func (q *httpRequest) refused() (code int, msg string) {
	s := q.h.srv
	total, here := q.h.conns.count(q.key)

	var reason string
	switch {
	case !(accessLists{allow: s.opts.AccessAllow, deny: s.opts.AccessDeny}).admits(parseIP(q.ip)):
		code, reason, msg = http.StatusForbidden, "access", "this server does not accept connections from your address"
	case s.bans.isBanned(q.ip, q.key):
		code, reason, msg = http.StatusForbidden, "banned", "your address is banned after too many failed logins, try again later"
	case s.opts.MaxClients > 0 && total > s.opts.MaxClients:
		code, reason, msg = http.StatusServiceUnavailable, "max_clients", "too many connections to this server, try again later"
	case s.opts.MaxClientsPerIP > 0 && here > s.opts.MaxClientsPerIP:
		code, reason, msg = http.StatusServiceUnavailable, "max_clients_per_ip", "too many connections from your address, try again later"
	default:
		return 0, ""
	}

	summary := func(left int, since time.Time) {
		q.h.log.Warn("more http requests refused", zap.String("reason", reason), zap.Int("requests", left),
			zap.Duration("duration", time.Since(since).Round(time.Millisecond)))
	}
	if s.floodLogs.allow("http refused "+reason, summary) {
		q.h.log.Warn("http request refused", zap.String("remote", q.r.RemoteAddr), zap.String("reason", reason))
	}

	return code, msg
}

// httpConns counts the HTTP listener's open connections, in all and by
// client address key (addrKey), for max_clients and max_clients_per_ip:
// HTTP connections count on their own, apart from FTP sessions.
type httpConns struct {
	ipv6  int // [ban] ipv6_prefix
	mu    sync.Mutex
	total int
	byKey map[string]int
}

// track is the http.Server's ConnState hook.
func (c *httpConns) track(conn net.Conn, state http.ConnState) {
	delta := 0
	switch state { //nolint:exhaustive // only a connection's start and end count
	case http.StateNew:
		delta = 1
	case http.StateClosed, http.StateHijacked:
		delta = -1
	default:
		return
	}

	key := addrKey(hostOf(conn.RemoteAddr()), c.ipv6)

	c.mu.Lock()
	defer c.mu.Unlock()

	c.total += delta
	if c.byKey[key] += delta; c.byKey[key] <= 0 {
		delete(c.byKey, key)
	}
}

// count returns the connections open, in all and from key.
func (c *httpConns) count(key string) (total, fromKey int) {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.total, c.byKey[key]
}

// requestPath returns the virtual path a request names, or false for a path
// that is not the clean form of itself: "..", "." and empty elements, "%2f"
// (a slash inside a name), NUL. Such a request is answered 404, as for a
// missing name, whatever it would resolve to.
func requestPath(r *http.Request) (string, bool) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\r\n") ||
		strings.Contains(strings.ToLower(r.URL.EscapedPath()), "%2f") {
		return "", false
	}

	want := strings.TrimSuffix(p, "/")
	if p == "/" {
		want = "/"
	}

	if path.Clean(p) != want {
		return "", false
	}

	return path.Clean(p), true
}

// fail answers a request whose name could not be opened.
func (q *httpRequest) fail(name string, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ftpserver.ErrFileNameNotAllowed), errors.Is(err, syscall.ENOTDIR):
		notFound(q.w)
	case errors.Is(err, vfs.ErrDropBox):
		http.Error(q.w, "403 this folder takes uploads over FTP only: nothing in it can be read", http.StatusForbidden)
	case errors.Is(err, fs.ErrPermission):
		http.Error(q.w, "403 permission denied", http.StatusForbidden)
	case errors.Is(err, errListingsBusy), errors.Is(err, errListingMemory):
		http.Error(q.w, "503 the server is busy listing folders, try again later", http.StatusServiceUnavailable)
	case errors.Is(err, errListingHuge):
		http.Error(q.w, "503 this folder is too large to list", http.StatusServiceUnavailable)
	case errors.Is(err, vfs.ErrUnavailable):
		http.Error(q.w, "503 storage unavailable, try again later", http.StatusServiceUnavailable)
	default:
		q.h.log.Warn("http request failed", zap.String("path", name), zap.Error(err))
		http.Error(q.w, "500 the file could not be read", http.StatusInternalServerError)
	}
}

func notFound(w http.ResponseWriter) {
	http.Error(w, "404 not found", http.StatusNotFound)
}

// httpClientIP is the address of a request's RemoteAddr ("ip:port").
func httpClientIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}

	return host
}

// escapePath is the URL path of a virtual path.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// contentType is the type of a file by its extension, or
// application/octet-stream: never guessed from the bytes, so that a file
// without extension is not shown as a web page.
func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}

	return "application/octet-stream"
}

// httpErrorLog takes net/http's own messages into the zap log: TLS
// handshakes that failed (scanners, expired client trust) at debug, the
// rest as warnings.
type httpErrorLog struct{ log *zap.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "TLS handshake error") {
			l.log.Debug("http: " + line)
		} else {
			l.log.Warn("http: " + line)
		}
	}

	return len(p), nil
}
