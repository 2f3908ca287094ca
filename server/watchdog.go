package server

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// startWatchdog checks running transfers for stalls until the returned
// function is called (it waits for the watchdog to stop). The engine sets no
// deadline on data connections, so without it a silent data peer would hold
// a session, a file handle and a temporary file forever. Transfers on the
// zero-copy paths are also cut by their data connection's deadline; the
// watchdog covers every path, ASCII mode included.
func (s *Server) startWatchdog() func() {
	every := watchdogTick(s.opts.DataTimeout)
	stop := make(chan struct{})

	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()

		for {
			select {
			case <-stop:
				return
			case now := <-ticker.C:
				s.cutStalled(now)
			}
		}
	})

	return func() {
		close(stop)
		wg.Wait()
	}
}

// watchdogTick is how often the watchdog looks: a stall is cut at most a
// quarter of a second after data_timeout (a tenth of it, when it is short).
func watchdogTick(timeout time.Duration) time.Duration {
	return min(250*time.Millisecond, max(timeout/10, 10*time.Millisecond))
}

// cutStalled closes every session whose transfer or listing moved no byte
// for data_timeout. Closing the session closes its data connection, which
// ends the engine's copy and gives back what the transfer or listing held.
func (s *Server) cutStalled(now time.Time) {
	live, _ := s.live()
	for _, si := range live {
		if t := si.current.Load(); t != nil {
			idle := now.Sub(time.Unix(0, t.progress.Load()))
			if idle > s.opts.DataTimeout && t.stalled.CompareAndSwap(false, true) {
				si.logger().Warn("transfer stalled, closing session", zap.String("path", t.path),
					zap.Duration("data_timeout", s.opts.DataTimeout), zap.Int64("bytes", t.bytes.Load()))
				s.closeSessionWith(si, "transfer stalled", dataTimeoutText(s.opts.DataTimeout))
			}
		}

		if l := si.listing.Load(); l != nil {
			idle := now.Sub(time.Unix(0, l.progress.Load()))
			// A listing sent under the data connection's own deadline is cut
			// by it, with 426, and the session goes on: the watchdog only
			// stands behind it, in case the cut itself gets stuck.
			limit := s.opts.DataTimeout + watchdogTick(s.opts.DataTimeout)
			if l.deadlined.Load() {
				limit = 2 * s.opts.DataTimeout
			}

			if idle > limit && l.stalled.CompareAndSwap(false, true) {
				si.logger().Warn("listing stalled, closing session", zap.String("verb", l.req.verb),
					zap.String("path", l.req.path), zap.Duration("data_timeout", s.opts.DataTimeout))
				s.closeSessionWith(si, "listing stalled", dataTimeoutText(s.opts.DataTimeout))
			}
		}
	}
}

// dataTimeoutText is the last reply of a session cut for a stalled data
// connection (vsftpd: "421 Data timeout. Reconnect. Sorry.").
func dataTimeoutText(timeout time.Duration) string {
	return "Data timeout: nothing moved on the data connection for " + timeout.String() + "; closing the session."
}
