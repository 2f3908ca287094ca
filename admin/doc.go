// Package admin is wharf's operator listener: a small HTTP server, off unless
// [admin] listen is set, that is meant for a loopback address because it has
// no authentication.
//
// It serves:
//   - /metrics: the Prometheus text exposition of the Gatherer it is given
//     (never the process-wide default registry);
//   - /healthz: 200 "ok" while the FTP listener accepts, else 503;
//   - /readyz: 200 "ready", or 503 with the reason the server is not ready;
//   - /sessions: a JSON array of the live sessions (see Session);
//   - /: a self-contained status page (embedded from status.html, inline CSS
//     and JS only) that polls /sessions every second and shows who is
//     connected and how each running transfer progresses;
//   - /debug/pprof/: net/http/pprof, only when Options.Pprof is set.
//
// Every route answers GET and HEAD only (405 otherwise); any other path is 404.
// The package keeps no state of its own: the FTP server owns the sessions and
// the registry, and hands admin functions that read them.
package admin
