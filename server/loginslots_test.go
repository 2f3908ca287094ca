package server

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoginSlotsSerializeOneAddress(t *testing.T) {
	t.Parallel()

	l := newLoginSlots()

	var running, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			release, ok := l.acquire("192.0.2.1")
			if !ok {
				t.Error("a login did not get its turn")

				return
			}

			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}

			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			release()
		})
	}

	// Another address is not held up meanwhile.
	release, ok := l.acquire("192.0.2.2")
	if !ok {
		t.Fatal("another address waited")
	}
	release()

	wg.Wait()

	if most.Load() != 1 {
		t.Fatalf("%d logins of one address ran at once", most.Load())
	}

	if len(l.slots) != 0 {
		t.Fatalf("%d slots left after every login ended", len(l.slots))
	}
}
