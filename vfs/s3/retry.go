package s3

import (
	"context"
	"iter"
	"time"

	"github.com/minio/minio-go/v7"
)

// Retries of idempotent requests: a stat, a listing, the GET that starts or
// continues a download. A request that fails transiently (the store did not
// answer, or answered 5xx or SlowDown: see transient) is tried again after
// retryFirst, then twice as long each time up to retryMax, while less than
// retryBudget has passed since the failure; then the client gets its 450 or
// 451 (vfs.ErrUnavailable). So a store that restarts within about two
// seconds costs clients a short wait, not a failed command, and a store that
// is down costs each command at most about retryBudget. The S3 client's
// own retries (maxRetries) run inside each attempt.
const (
	retryFirst  = 100 * time.Millisecond
	retryMax    = time.Second
	retryBudget = 2500 * time.Millisecond
)

// retry runs call until it succeeds, fails for good, or has failed
// transiently for retryBudget. Every attempt after the first is given what
// is left of the budget as its deadline, so that a store that stopped
// answering is not waited for longer; the first one runs with ctx alone, so
// a slow but healthy store is never cut short.
func retry(ctx context.Context, call func(ctx context.Context) error) error {
	err := call(ctx)
	if err == nil || !transient(err) {
		return err
	}
	failed := time.Now()
	for wait := retryFirst; ; wait = min(2*wait, retryMax) {
		left := retryBudget - time.Since(failed) - wait
		if left <= 0 || sleep(ctx, wait) != nil {
			return err
		}
		attempt, cancel := context.WithTimeout(ctx, left)
		err = call(attempt)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
	}
}

// sleep waits for d, or until ctx ends (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// list is core.ListObjectsIter that survives a store that blinks: after a
// transient failure it lists again from after the greatest key it yielded,
// with the backoff of retry, until retryBudget has passed since the failure
// without a key coming. Other failures end it with an item whose Err is
// set, as the client's own listing does.
//
// Resuming there loses nothing: the client fails only between pages, after
// yielding the whole page before (its files, then its folders, each in
// order), and a page holds every key of its range. A folder whose keys
// straddle the point is listed again: keys up to the point are skipped.
func (f *Fs) list(ctx context.Context, opts minio.ListObjectsOptions) iter.Seq[minio.ObjectInfo] {
	return func(yield func(minio.ObjectInfo) bool) {
		var (
			greatest string // the greatest key yielded
			resumed  bool
			failed   time.Time
			wait     = retryFirst
		)
		for {
			o, point := opts, greatest
			if resumed {
				o.StartAfter = max(o.StartAfter, point)
			}
			var err error
			for oi := range f.s.core.ListObjectsIter(ctx, f.s.bucket, o) {
				if oi.Err != nil {
					err = oi.Err

					break
				}
				if resumed && oi.Key <= point {
					continue // a folder yielded before the failure
				}
				if !yield(oi) {
					return
				}
				greatest, failed, wait = max(greatest, oi.Key), time.Time{}, retryFirst
			}
			if err == nil {
				return
			}
			if failed.IsZero() {
				failed = time.Now()
			}
			if !transient(err) || time.Since(failed)+wait > retryBudget || sleep(ctx, wait) != nil {
				yield(minio.ObjectInfo{Err: err})

				return
			}
			resumed, wait = true, min(2*wait, retryMax)
		}
	}
}
