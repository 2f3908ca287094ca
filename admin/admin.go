package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Session is one live FTP session as /sessions reports it.
type Session struct {
	ID       uint32    `json:"id"`
	User     string    `json:"user"` // "" before login
	ClientIP string    `json:"client_ip"`
	Since    time.Time `json:"connected_since"`
	Command  string    `json:"command"`  // last command verb, e.g. "RETR" (never arguments: PASS must not leak)
	TLS      bool      `json:"tls"`      // the control connection is TLS
	DataTLS  bool      `json:"data_tls"` // data connections are TLS (PROT P)
	Transfer *Transfer `json:"transfer,omitempty"`
}

// Transfer is a running file transfer.
type Transfer struct {
	Path      string    `json:"path"`
	Direction string    `json:"direction"` // "download" | "upload"
	Bytes     int64     `json:"bytes"`     // moved so far
	Size      int64     `json:"size"`      // total when known (downloads), else 0
	Started   time.Time `json:"started"`
	Rate      float64   `json:"rate"` // bytes per second since Started
}

// Options configure the admin listener. A nil func or Gatherer is allowed:
// /sessions then reports no session, /healthz and /readyz report healthy and
// ready, and /metrics serves an empty exposition.
type Options struct {
	Listen   string                // host:port
	Pprof    bool                  // serve net/http/pprof under /debug/pprof/
	Gatherer prometheus.Gatherer   // what /metrics serves
	Sessions func() []Session      // snapshot for /sessions
	Healthy  func() bool           // /healthz
	Ready    func() (bool, string) // /readyz: ready, and the reason when not
	// Token, when set, must come as "Authorization: Bearer <token>" on every
	// path but /healthz and /readyz ([admin] token_file). SetToken changes it.
	Token string
	// Hosts are the names the Host header may carry besides an IP address
	// (a DNS-rebinding page names its own host, which is refused).
	Hosts []string
	// Reload, when set, serves POST /reload: it loads the configuration
	// again and applies it, returning the changed keys that wait for a
	// restart, or why it refused and kept the running configuration.
	Reload func() (restart []string, err error)
	// Snapshots reports the [[snapshots]] folders for GET /snapshots; nil
	// reports none.
	Snapshots func() []Snapshot
	// Degraded lists why the server is ready but degraded (a module's sync
	// is stale); /readyz then answers 200 "degraded: ...". nil: never.
	Degraded func() []string
}

// The admin listener's HTTP timeouts. The write timeout leaves room for
// /debug/pprof/profile and /debug/pprof/trace, which take 30 s by default
// and refuse a ?seconds= longer than the write timeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 90 * time.Second
	idleTimeout       = 2 * time.Minute
)

var errNoListen = errors.New("admin listen address is empty")

// Server is the admin HTTP listener.
type Server struct {
	opts    Options
	log     *zap.Logger
	handler http.Handler
	http    *http.Server
	ln      net.Listener

	// token is the SHA-256 sum of the token requests must carry, nil for
	// none: the comparison then takes the same time whatever the length of
	// what a client sent.
	token atomic.Pointer[[sha256.Size]byte]
}

// New prepares the admin server; nothing listens until Listen.
func New(opts Options, log *zap.Logger) *Server {
	s := &Server{opts: opts, log: log.Named("admin")}
	s.SetToken(opts.Token)
	s.handler = s.routes()

	errorLog, err := zap.NewStdLogAt(s.log, zapcore.WarnLevel)
	if err != nil { // only for an invalid level
		errorLog = zap.NewStdLog(s.log)
	}

	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          errorLog,
	}

	return s
}

// SetToken changes the token that requests must carry from the next
// request on, as a reload that reads [admin] token_file again does; ""
// requires none.
func (s *Server) SetToken(token string) {
	if token == "" {
		s.token.Store(nil)

		return
	}

	sum := sha256.Sum256([]byte(token))
	s.token.Store(&sum)
}

// Handler is the admin mux, the same one Serve uses; tests drive it with
// httptest.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Listen binds Options.Listen. When it returns, requests can connect.
func (s *Server) Listen() error {
	if s.opts.Listen == "" {
		return errNoListen
	}

	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on admin address %s: %w", s.opts.Listen, err)
	}

	s.ln = ln
	s.log.Info("admin listening", zap.String("address", ln.Addr().String()), zap.Bool("pprof", s.opts.Pprof))

	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() && s.opts.Token == "" {
		s.log.Warn("admin listener is not on a loopback address and has no token: anyone who reaches it sees "+
			"sessions and metrics (set [admin] token_file)", zap.String("address", a.String()))
	}

	return nil
}

// Addr is the bound address, once Listen has returned.
func (s *Server) Addr() net.Addr {
	return s.ln.Addr()
}

// Serve answers requests until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve() error {
	if s.ln == nil {
		return errors.New("admin serve: Listen was not called")
	}

	if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin serve: %w", err)
	}

	return nil
}

// Shutdown stops the listener and waits, until ctx ends, for requests in
// flight (a running pprof profile among them) to finish, like
// http.Server.Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)

	// http.Server only knows the listener once Serve has started; close it
	// here too so a Shutdown before Serve still frees the port.
	if s.ln != nil {
		if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			s.log.Warn("close admin listener", zap.Error(cerr))
		}
	}

	if err != nil {
		return fmt.Errorf("admin shutdown: %w", err)
	}

	return nil
}
