package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
)

// Probes of the store: a HEAD of the bucket, one attempt, every probeEvery
// while the store answers and every probeDownEvery while it does not, so
// that its return is seen within a second.
const (
	probeEvery     = 5 * time.Second
	probeDownEvery = time.Second
	probeTimeout   = 3 * time.Second
)

// notChecked is the reason the store is down before anything was asked of it.
const notChecked = "not checked yet"

// health is what wharf knows of the store's availability: up after any
// answer (an object, a listing, a 404), down after a request that got no
// answer or a 5xx, 429 or SlowDown, until the next answer. Real requests
// and the probes (StartProbes) both report to it, so an outage shows within
// a request or a probe, and so does the store's return. It logs each change
// once: an outage is one warning, not one per request.
type health struct {
	log *zap.Logger

	mu      sync.Mutex
	up      bool
	reason  string        // why it is down, in words ("connection refused")
	since   time.Time     // when it went up or down
	changed chan struct{} // closed, and replaced, at every change
}

func newHealth(log *zap.Logger) *health {
	return &health{log: log, reason: notChecked, since: time.Now(), changed: make(chan struct{})}
}

// ok records an answer of the store.
func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up {
		return
	}
	if h.reason != notChecked {
		h.log.Info("storage available again", zap.Duration("down", time.Since(h.since).Round(time.Millisecond)))
	}
	h.set(true, "")
}

// failed records a request (op) that got no answer or a transient one:
// reason says why in words, err has the details for the log.
func (h *health) failed(op, reason string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up && h.reason == reason {
		return
	}
	if h.up || h.reason == notChecked {
		h.log.Warn("storage unavailable", zap.String("op", op), zap.String("reason", reason), zap.Error(err))
	}
	h.set(false, reason)
}

// set changes the state; h.mu is held.
func (h *health) set(up bool, reason string) {
	if h.up != up {
		h.since = time.Now()
	}
	h.up, h.reason = up, reason
	close(h.changed)
	h.changed = make(chan struct{})
}

// state returns whether the store is up and, when not, why and since when.
func (h *health) state() (up bool, reason string, since time.Time, changed <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()

	return h.up, h.reason, h.since, h.changed
}

// Health reports whether the store answers, and when it does not, why, in
// words that name neither the endpoint nor the bucket (/readyz shows them
// to anyone who can reach the admin listener; the log has the details):
// "s3 storage unavailable for 12s: connection refused".
func (s *Store) Health() (up bool, reason string) {
	up, why, since, _ := s.health.state()
	if up {
		return true, ""
	}

	return false, fmt.Sprintf("s3 storage unavailable for %s: %s", time.Since(since).Round(time.Second), why)
}

// WaitUp waits until the store has answered, or ctx ends (its error).
func (s *Store) WaitUp(ctx context.Context) error {
	for {
		up, _, _, changed := s.health.state()
		if up {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Check asks the store, once, whether the bucket exists, and records the
// outcome in the store's health. The error names the bucket and the
// endpoint, for the operator; it wraps ErrUnavailable when the store did
// not answer or answered that it is busy or failing, which may pass.
func (s *Store) Check(ctx context.Context) error {
	exists, err := s.probe.BucketExists(ctx, s.bucket)
	switch {
	case err != nil && transient(err):
		s.health.failed("probe", failure(err), err)

		return unavailableError{fmt.Errorf("%s: %w", s, err)}
	case err != nil:
		s.health.failed("probe", failure(err), err)

		return fmt.Errorf("%s: %w", s, err)
	case !exists:
		s.health.failed("probe", "the bucket does not exist", nil)

		return fmt.Errorf("%s does not exist", s)
	}
	s.health.ok()

	return nil
}

// unavailableError is a failed Check that may pass: it is ErrUnavailable,
// and reads as the store's own error.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{e.err, ErrUnavailable} }

// String names the store for the operator: `s3 bucket "files" at http://127.0.0.1:9000`.
func (s *Store) String() string {
	return fmt.Sprintf("s3 bucket %q at %s", s.bucket, s.core.EndpointURL())
}

// StartProbes checks the store in the background, every probeEvery (every
// probeDownEvery while it is down), until stop is called; stop waits for
// the probe in progress.
func (s *Store) StartProbes() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			every := probeEvery
			if up, _ := s.Health(); !up {
				every = probeDownEvery
			}
			if sleep(ctx, every) != nil {
				return
			}
			probe, cancel := context.WithTimeout(ctx, probeTimeout)
			_ = s.Check(probe) // the outcome is in s.health
			cancel()
		}
	})

	return func() {
		cancel()
		wg.Wait()
	}
}

// failure says in words why a request got no useful answer, for /readyz
// and the log: never the endpoint, the bucket or a key.
func failure(err error) string {
	var (
		resp minio.ErrorResponse
		dns  *net.DNSError
		ne   net.Error
	)
	switch {
	case errors.As(err, &resp) && resp.StatusCode != 0:
		if resp.Code != "" && resp.Code != resp.Message {
			return fmt.Sprintf("the store answered %d %s", resp.StatusCode, resp.Code)
		}

		return fmt.Sprintf("the store answered %d", resp.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return "connection lost"
	case errors.As(err, &dns):
		return "host name not found"
	case errors.As(err, &ne):
		return "network error"
	default:
		return "no answer"
	}
}
