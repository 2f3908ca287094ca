package s3

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operations, the op label of the store's series: what a request does, from
// its method, path and query. A fixed set, so the series stay bounded
// whatever keys clients ask for.
var ops = []string{
	"stat", "get", "list", "put", "put_part", "copy", "copy_part", "create_upload", "complete_upload",
	"abort_upload", "list_uploads", "delete", "bucket", "probe", "other",
}

// Kinds of failure, the kind label of wharf_storage_errors_total.
var failureKinds = []string{"unreachable", "timeout", "throttled", "server", "denied"}

// metrics are the store's Prometheus series; Store.Collectors hands them to
// the registry /metrics serves.
type metrics struct {
	up       prometheus.GaugeFunc
	errors   *prometheus.CounterVec
	requests *prometheus.HistogramVec
}

func newMetrics(h *health) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wharf_storage_up",
			Help: "1 while the object store answers (its last request or probe got an answer), 0 while it does not.",
		}, func() float64 {
			if up, _, _, _ := h.state(); up {
				return 1
			}

			return 0
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wharf_storage_errors_total",
			Help: "Requests to the object store that failed, by operation and kind (unreachable, timeout, " +
				"throttled: 429, 503 or SlowDown; server: other 5xx; denied: 401 or 403).",
		}, []string{"op", "kind"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wharf_storage_request_seconds",
			Help:    "Time from sending a request to the object store to its answer's headers (or its failure), by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1 ms to 65 s
		}, []string{"op"}),
	}
	for _, op := range ops {
		m.requests.WithLabelValues(op)
		for _, k := range failureKinds {
			m.errors.WithLabelValues(op, k)
		}
	}

	return m
}

// Collectors returns the store's series (wharf_storage_up,
// wharf_storage_errors_total, wharf_storage_request_seconds), for the
// registry that /metrics serves.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.up, s.metrics.errors, s.metrics.requests}
}

// observer is the S3 client's HTTP transport, wrapped: it times every
// request, counts its failure by operation and kind, and tells the store's
// health whether the store answered. The body of a GET is watched too: a
// download cut by the store is a failure like a refused connection. The
// probe's client has its own observer (probe set), whose requests count
// under op "probe" and leave health to Check.
type observer struct {
	next    http.RoundTripper
	bucket  string
	health  *health
	metrics *metrics
	probe   bool
}

// RoundTrip sends req and observes its outcome.
func (o *observer) RoundTrip(req *http.Request) (*http.Response, error) {
	op := o.op(req)
	start := time.Now()
	resp, err := o.next.RoundTrip(req)
	o.metrics.requests.WithLabelValues(op).Observe(time.Since(start).Seconds())

	switch {
	case err != nil:
		o.fail(req.Context(), op, err)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		o.answered(op, resp)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		o.metrics.errors.WithLabelValues(op, "denied").Inc() // an answer: health does not change
	case !o.probe:
		o.health.ok()
	}

	if err == nil && op == "get" && resp.StatusCode < 300 {
		resp.Body = &watchedBody{ReadCloser: resp.Body, o: o, ctx: req.Context()}
	}

	return resp, err //nolint:wrapcheck // a transport passes its errors on as they are
}

// fail records a request that got no answer. A request cancelled by wharf
// (the transfer ended) is no failure of the store; one that ran out of its
// time is.
func (o *observer) fail(ctx context.Context, op string, err error) {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) {
		return
	}
	why := failure(err)
	k := "unreachable"
	if why == "no answer in time" {
		k = "timeout"
	}
	o.metrics.errors.WithLabelValues(op, k).Inc()
	if !o.probe {
		o.health.failed(op, why, err)
	}
}

// answered records a 5xx or 429 answer: the store is there, but failing.
func (o *observer) answered(op string, resp *http.Response) {
	k := "server"
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
		k = "throttled"
	}
	o.metrics.errors.WithLabelValues(op, k).Inc()
	if !o.probe {
		o.health.failed(op, "the store answered "+resp.Status, nil)
	}
}

// op names what req does (see ops).
func (o *observer) op(req *http.Request) string {
	if o.probe {
		return "probe"
	}
	q := req.URL.Query()
	p := strings.TrimPrefix(req.URL.Path, "/")
	bucketOnly := p == "" || p == o.bucket || p == o.bucket+"/"
	copying := req.Header.Get("X-Amz-Copy-Source") != ""
	switch req.Method {
	case http.MethodHead:
		if bucketOnly {
			return "bucket"
		}

		return "stat"
	case http.MethodGet:
		switch {
		case q.Has("uploads"):
			return "list_uploads"
		case bucketOnly && (q.Has("list-type") || q.Has("prefix") || q.Has("delimiter")):
			return "list"
		case bucketOnly:
			return "bucket"
		case q.Has("uploadId"):
			return "other" // ListParts
		}

		return "get"
	case http.MethodPut:
		switch {
		case q.Has("partNumber") && copying:
			return "copy_part"
		case q.Has("partNumber"):
			return "put_part"
		case copying:
			return "copy"
		case bucketOnly:
			return "bucket"
		}

		return "put"
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return "create_upload"
		case q.Has("uploadId"):
			return "complete_upload"
		case q.Has("delete"):
			return "delete"
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "abort_upload"
		}

		return "delete"
	}

	return "other"
}

// watchedBody is the body of a GET: a read that fails, other than because
// wharf cancelled it, is a failure of the store.
type watchedBody struct {
	io.ReadCloser
	o   *observer
	ctx context.Context
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.o.fail(b.ctx, "get", err)
	}

	return n, err //nolint:wrapcheck // the body's own error, as the client expects it
}
