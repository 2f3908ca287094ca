package server

import (
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Bandwidth caps transfers in bytes per second; 0 means unlimited. The totals
// are shared by every session; the session values apply to each session
// (a user's own limits, in auth.Account, take their place).
type Bandwidth struct {
	TotalDownload, TotalUpload     int64
	SessionDownload, SessionUpload int64
}

// newBucket returns a token bucket for bps bytes per second, or nil for
// unlimited. Its burst is a tenth of a second's worth (within 4 KiB–256 KiB),
// which keeps a limit within a few percent over a few seconds.
func newBucket(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}

	burst := min(max(bps/10, 4<<10), 256<<10)

	return rate.NewLimiter(rate.Limit(bps), int(burst))
}

// sharedBuckets holds the server-wide buckets; reload swaps them.
type sharedBuckets struct {
	download atomic.Pointer[rate.Limiter]
	upload   atomic.Pointer[rate.Limiter]
}

func (b *sharedBuckets) set(bw Bandwidth) {
	b.download.Store(newBucket(bw.TotalDownload))
	b.upload.Store(newBucket(bw.TotalUpload))
}

// buckets lists the buckets a transfer draws from: the session's own and the
// server's total for that direction, skipping unlimited ones.
func buckets(list ...*rate.Limiter) []*rate.Limiter {
	var out []*rate.Limiter
	for _, l := range list {
		if l != nil {
			out = append(out, l)
		}
	}

	return out
}
