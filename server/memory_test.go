package server

import (
	"sync/atomic"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// TestMemoryReturnedWhenConnectionsStop: the free heap is given back once
// no connection arrived for ReturnMemoryAfter, once per burst, and the
// next return waits for returnSpacing times the last one's length; without
// the option, never.
func TestMemoryReturnedWhenConnectionsStop(t *testing.T) {
	t.Parallel()

	const took = 100 * time.Millisecond // each return: the next waits returnSpacing times this

	for _, tc := range []struct {
		name  string
		after time.Duration
		want  int64
	}{
		{"after a burst, once", 50 * time.Millisecond, 1},
		{"with the option off, never", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, _ := anonFixture(t)
			f.opts.ReturnMemoryAfter = tc.after
			ts := startServer(t, f)

			var returns atomic.Int64
			if m := ts.srv.memory; m != nil {
				m.mu.Lock()
				m.free = func() {
					time.Sleep(took)
					returns.Add(1)
				}
				m.mu.Unlock()
			}

			for range 5 {
				_ = ts.raw(t)
			}

			time.Sleep(400 * time.Millisecond)

			if got := returns.Load(); got != tc.want {
				t.Fatalf("memory returned %d times after a burst of connections, want %d", got, tc.want)
			}

			if tc.want == 0 {
				return
			}

			// A second burst at once: its return waits for returnSpacing
			// times the first one's length.
			_ = ts.raw(t)
			time.Sleep(300 * time.Millisecond)

			if got := returns.Load(); got != 1 {
				t.Fatalf("memory returned %d times within %v of a return that took %v, want 1",
					got, returnSpacing*took, took)
			}

			ftptest.WaitFor(t, 5*time.Second, func() bool { return returns.Load() == 2 })
		})
	}
}
