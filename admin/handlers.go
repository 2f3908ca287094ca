package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
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

// routes builds the mux behind guard. Every pattern but POST /reload is a
// GET pattern, which also matches HEAD; ServeMux answers other methods on a
// known path with 405 and an Allow header, and unknown paths with 404.
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
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /snapshots", s.snapshots)

	if s.opts.Reload != nil {
		mux.Handle("POST /reload", s.reloadHandler())
	}

	if s.opts.Pprof {
		// Registered one by one on our own mux: net/http/pprof's init also
		// fills http.DefaultServeMux, which wharf never serves.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}

	guarded := s.guard(mux)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		guarded.ServeHTTP(w, r)
	})
}

// isProbe reports whether path answers whoever asks, whatever the Host header:
// the probes' paths, which say no more than whether wharf is up, and must
// keep working for load balancers and orchestrators that send neither a
// known name nor a token.
func isProbe(path string) bool {
	return path == "/healthz" || path == "/readyz"
}

// guard refuses, on every path but the probes' (see isProbe), a request
// addressed to a host the listener does not know (421: see knownHost), and
// with a token set (Options.Token, SetToken), one without "Authorization:
// Bearer <token>" (401).
// An unknown path is refused like a known one, so that a stranger can't
// learn which paths exist.
func (s *Server) guard(next http.Handler) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, h := range s.opts.Hosts {
		hosts[hostKey(h)] = true
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isProbe(r.URL.Path) {
			next.ServeHTTP(w, r)

			return
		}

		want := s.token.Load()

		switch {
		case r.Host == "":
			s.refuse(r, "no host")
			writeText(w, http.StatusBadRequest, "a Host header is required\n")
		case !knownHost(r.Host, hosts):
			s.refuse(r, "unknown host")
			writeText(w, http.StatusMisdirectedRequest,
				"this listener answers to its IP addresses and the names in [admin] hosts only\n")
		case want != nil && !bearer(r, *want):
			s.refuse(r, "no token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="wharf admin"`)
			writeText(w, http.StatusUnauthorized, "send the token of [admin] token_file as \"Authorization: Bearer <token>\"\n")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// refuse logs a refused request, at debug level: anyone who reaches the
// listener can send many.
func (s *Server) refuse(r *http.Request, reason string) {
	s.log.Debug("admin request refused", zap.String("reason", reason), zap.String("remote", r.RemoteAddr))
}

// knownHost reports whether a Host header names this listener in a way a
// DNS-rebinding attack can't: an IP address, localhost, or a name in hosts
// (keyed by hostKey), any port. A page that rebinds its own name to the
// listener's address still sends its own name, which is refused.
func knownHost(host string, hosts map[string]bool) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}

	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}

	return hosts[hostKey(host)]
}

// hostKey is a host name as the Host check compares it: in lower case,
// without the dot that may end a fully qualified name.
func hostKey(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// bearer reports whether r carries "Authorization: Bearer <token>" (the
// scheme in any case, RFC 6750 and RFC 9110 11.1) with the token whose
// SHA-256 sum is want.
func bearer(r *http.Request, want [sha256.Size]byte) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}

	got := sha256.Sum256([]byte(strings.TrimSpace(token)))

	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
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

	if text := s.degraded(); text != "" {
		writeText(w, http.StatusOK, text)

		return
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
