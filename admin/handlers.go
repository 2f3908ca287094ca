package admin

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// statusPage is the page at /: it renders nothing on the server and polls
// /sessions from the browser.
//
//go:embed status.html
var statusPage []byte

// pageCSP lets the status page run its own inline script and style and talk
// to this server only, so it can never load anything from elsewhere.
const pageCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// routes builds the mux. Every pattern is a GET pattern, which also matches
// HEAD; ServeMux answers other methods on a known path with 405 and an Allow
// header, and unknown paths with 404.
func (s *Server) routes() http.Handler {
	gatherer := s.opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      zap.NewStdLog(s.log.With(zap.String("path", "/metrics"))),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /sessions", s.sessions)

	if s.opts.Pprof {
		// Registered one by one on our own mux: net/http/pprof's init also
		// fills http.DefaultServeMux, which wharf never serves.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", pageCSP)
	_, _ = w.Write(statusPage)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Healthy != nil && !s.opts.Healthy() {
		writeText(w, http.StatusServiceUnavailable, "not accepting connections")

		return
	}

	writeText(w, http.StatusOK, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if ready, reason := s.opts.Ready(); !ready {
			if reason == "" {
				reason = "not ready"
			}

			writeText(w, http.StatusServiceUnavailable, reason)

			return
		}
	}

	writeText(w, http.StatusOK, "ready")
}

func (s *Server) sessions(w http.ResponseWriter, _ *http.Request) {
	list := []Session{} // an empty array, never null
	if s.opts.Sessions != nil {
		list = append(list, s.opts.Sessions()...)
	}

	for i := range list {
		list[i].Command = verb(list[i].Command)
	}

	w.Header().Set("Content-Type", "application/json")

	if err := json.NewEncoder(w).Encode(list); err != nil {
		s.log.Debug("write /sessions", zap.Error(err))
	}
}

// verb keeps the first word of a command line, so that even a caller that
// hands over "PASS secret" by mistake never publishes the argument.
func verb(command string) string {
	if f := strings.Fields(command); len(f) > 0 {
		return f[0]
	}

	return ""
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}
