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
	every := min(time.Second, max(s.opts.DataTimeout/4, 10*time.Millisecond))
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

// cutStalled closes every session whose transfer moved no byte for data_timeout.
func (s *Server) cutStalled(now time.Time) {
	live, _ := s.live()
	for _, si := range live {
		t := si.current.Load()
		if t == nil {
			continue
		}

		idle := now.Sub(time.Unix(0, t.progress.Load()))
		if idle > s.opts.DataTimeout && t.stalled.CompareAndSwap(false, true) {
			si.logger().Warn("transfer stalled, closing session", zap.String("path", t.path),
				zap.Duration("data_timeout", s.opts.DataTimeout), zap.Int64("bytes", t.bytes.Load()))
			s.closeSession(si, "transfer stalled")
		}
	}
}
