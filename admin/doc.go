// Package admin is wharf's operator listener: a small HTTP server, off unless
// [admin] listen is set, meant for a loopback address unless it has a token.
//
// It serves:
//   - /metrics: the Prometheus text exposition of the Gatherer it is given
//     (never the process-wide default registry);
//   - /healthz: 200 "ok" while the FTP listener accepts, else 503;
//   - /readyz: 200 "ready", or 503 with the reason the server is not ready,
//     or 200 "degraded: <reasons>" when it is ready but a mirror module's
//     sync is stale (Options.Degraded): a stale mirror still serves good
//     files, so it stays in a load balancer's rotation, and monitoring reads
//     the body or the wharf_module_* series;
//   - /snapshots: a JSON array of the [[snapshots]] folders: the copy each
//     link names now, the copies sessions hold and their sync health (see
//     Snapshot), which wharf snapshot-wait polls;
//   - /sessions: a JSON array of the live sessions (see Session);
//   - /status: a JSON summary read from the Gatherer's metrics: version,
//     uptime, sessions, active bans and totals (see Status);
//   - /: a self-contained status page (embedded from status.html, inline CSS
//     and JS only) that polls /sessions, /status and /snapshots every second and shows
//     the summary, who is connected and how each running transfer progresses,
//     and, when there are snapshots, each mirror module's copies and last sync;
//   - /debug/pprof/: net/http/pprof, only when Options.Pprof is set;
//   - POST /reload: loads the configuration again, as SIGHUP does, and answers
//     JSON saying whether it was reloaded (200, with the changed keys that
//     wait for a restart) or refused (422, with the reason), when
//     Options.Reload is set. A browser's cross-origin POST is refused (403).
//
// Every other route answers GET and HEAD only (405 otherwise; GET /reload
// too); any other path is 404.
//
// Every path but /healthz and /readyz is guarded twice. The Host header must
// be an IP address, localhost or one of Options.Hosts (any port), else 421
// (400 when there is none): a DNS-rebinding page, loaded in an operator's
// browser from a name its owner points at the listener's address, sends its
// own name and is refused, so it can't read /sessions. With Options.Token,
// the request must also carry "Authorization: Bearer <token>", else 401 with
// "WWW-Authenticate: Bearer". The token travels in a header only, never in a
// cookie or a URL: the browser then holds no credential that a page from
// elsewhere could make it send, and the token lands in no history or log. A
// browser shows the status page through a proxy that adds the header.
// The package keeps no state of its own: the FTP server owns the sessions and
// the registry, and hands admin functions that read them.
package admin
