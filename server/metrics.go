package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the Prometheus series wharf exports, on a registry of its own.
type metrics struct {
	registry          *prometheus.Registry
	sessions          prometheus.Gauge
	logins            *prometheus.CounterVec
	transfers         *prometheus.CounterVec
	transferBytes     *prometheus.CounterVec
	transferDuration  *prometheus.HistogramVec
	refusedConnection *prometheus.CounterVec
	refusedUploads    *prometheus.CounterVec
	refusedCommands   *prometheus.CounterVec
	tlsFailures       [2]prometheus.Counter // wharf_tls_handshake_failures_total, by tlsControl and tlsData
	passiveExhausted  prometheus.Counter

	// The series of the transfer path, looked up once rather than per
	// transfer, indexed by xferDownload and xferUpload. bytes moves as the bytes
	// flow (transfer.moved), the others when a transfer ends.
	xfers    [2]struct{ complete, incomplete, bytes prometheus.Counter }
	xferTime [2]prometheus.Observer
	loginOK  prometheus.Counter

	// The same series for downloads over HTTP ([http], protocol="http"),
	// and the HTTP requests answered, by status code.
	httpXfer     struct{ complete, incomplete, bytes prometheus.Counter }
	httpXferTime prometheus.Observer
	httpRequests *prometheus.CounterVec
}

func newMetrics(bans func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wharf_sessions",
			Help: "Control connections open now.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_logins_total",
			Help: "Login attempts, by result (success, failure, refused).",
		}, []string{"result"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_transfers_total",
			Help: "File transfers, by direction (download, upload), result (complete, incomplete) and protocol (ftp, http).",
		}, []string{"direction", "result", "protocol"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_transfer_bytes_total",
			Help: "Bytes moved by file transfers, by direction and protocol.",
		}, []string{"direction", "protocol"}),
		transferDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_transfer_duration_seconds",
			Help:    "Duration of file transfers, by direction and protocol.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"direction", "protocol"}),
		refusedConnection: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_refused_connections_total",
			Help: "Connections refused before a session started, by reason (access, banned, max_clients, max_clients_per_ip, proxy_header, proxy_untrusted).",
		}, []string{"reason"}),
		refusedUploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_uploads_refused_total",
			Help: "Drop-box uploads and folders refused or cut, by reason (quota, files, depth, rate, bytes, size).",
		}, []string{"reason"}),
		refusedCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_commands_refused_total",
			Help: "Commands refused, by reason (" + strings.Join(commandRefusals, ", ") + ").",
		}, []string{"reason"}),
		passiveExhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wharf_passive_ports_exhausted_total",
			Help: "PASV and EPSV commands that found no free passive port.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_http_requests_total",
			Help: "Requests answered by the HTTP listener ([http]), by status code.",
		}, []string{"code"}),
	}

	handshakes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wharf_tls_handshake_failures_total",
		Help: "TLS handshakes that failed, by connection (control, data); a client that closes before sending a byte is not counted.",
	}, []string{"connection"})
	m.tlsFailures[tlsControl] = handshakes.WithLabelValues("control")
	m.tlsFailures[tlsData] = handshakes.WithLabelValues("data")

	m.registry.MustRegister(
		m.sessions, m.logins, m.transfers, m.transferBytes, m.transferDuration, m.refusedConnection, m.refusedUploads,
		m.refusedCommands, handshakes, m.passiveExhausted, m.httpRequests,
		// wharf_bans is the first name of wharf_bans_active, kept for the dashboards that use it.
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wharf_bans",
			Help: "Client addresses banned now for failed logins.",
		}, bans),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wharf_bans_active",
			Help: "Client addresses banned now for failed logins.",
		}, bans),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	// Start every labelled series at zero, so dashboards see them before the first event.
	for _, r := range []string{"success", "failure", "refused"} {
		m.logins.WithLabelValues(r)
	}

	for i, d := range []string{"download", "upload"} {
		m.xfers[i].bytes = m.transferBytes.WithLabelValues(d, "ftp")
		m.xfers[i].complete = m.transfers.WithLabelValues(d, "complete", "ftp")
		m.xfers[i].incomplete = m.transfers.WithLabelValues(d, "incomplete", "ftp")
		m.xferTime[i] = m.transferDuration.WithLabelValues(d, "ftp")
	}

	// HTTP serves downloads only: no upload series with protocol="http".
	m.httpXfer.bytes = m.transferBytes.WithLabelValues("download", "http")
	m.httpXfer.complete = m.transfers.WithLabelValues("download", "complete", "http")
	m.httpXfer.incomplete = m.transfers.WithLabelValues("download", "incomplete", "http")
	m.httpXferTime = m.transferDuration.WithLabelValues("download", "http")

	m.loginOK = m.logins.WithLabelValues("success")

	for _, r := range []string{"access", "banned", "max_clients", "max_clients_per_ip"} {
		m.refusedConnection.WithLabelValues(r)
	}

	for _, r := range refusalReasons {
		m.refusedUploads.WithLabelValues(r)
	}

	for _, r := range commandRefusals {
		m.refusedCommands.WithLabelValues(r)
	}

	return m
}

// The indexes of metrics.tlsFailures.
const (
	tlsControl = 0
	tlsData    = 1
)

// The indexes of metrics.xfers.
const (
	xferDownload = 0
	xferUpload   = 1
)

// transferDone counts one finished transfer; its bytes were counted as they moved.
func (m *metrics) transferDone(isUpload, complete bool, seconds float64) {
	i := xferDownload
	if isUpload {
		i = xferUpload
	}

	if complete {
		m.xfers[i].complete.Inc()
	} else {
		m.xfers[i].incomplete.Inc()
	}

	m.xferTime[i].Observe(seconds)
}
