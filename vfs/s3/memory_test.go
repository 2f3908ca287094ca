package s3

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"wharf/vfs"
)

const mib = 1 << 20

// reserveNow reserves without waiting long, for the tests.
func reserveNow(t *testing.T, m *memory, lo, hi, keep int64) int64 {
	t.Helper()
	n, err := m.reserve(context.Background(), lo, hi, keep)
	if err != nil {
		t.Fatalf("reserve(%d, %d, keep %d): %v", lo, hi, keep, err)
	}

	return n
}

func TestMemoryBudget(t *testing.T) {
	t.Parallel()

	t.Run("a reservation takes as much as fits, up to what it asks", func(t *testing.T) {
		t.Parallel()
		m := newMemory(16*mib, 50*time.Millisecond)
		if n := reserveNow(t, m, 5*mib, 8*mib, 0); n != 8*mib {
			t.Errorf("first: got %d, want 8 MiB", n)
		}
		if n := reserveNow(t, m, 5*mib, 16*mib, 0); n != 8*mib {
			t.Errorf("second: got %d, want the 8 MiB left", n)
		}
		if st := m.stats(); st.used != 16*mib || st.peak != 16*mib {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("a reservation that never fits is refused with ErrBusy after the wait", func(t *testing.T) {
		t.Parallel()
		m := newMemory(16*mib, 50*time.Millisecond)
		reserveNow(t, m, 12*mib, 12*mib, 0)
		start := time.Now()
		_, err := m.reserve(context.Background(), 5*mib, 5*mib, 0)
		if !errors.Is(err, ErrBusy) || !errors.Is(err, vfs.ErrUploadBusy) {
			t.Fatalf("got %v, want ErrBusy, which is a vfs.ErrUploadBusy", err)
		}
		if waited := time.Since(start); waited < 50*time.Millisecond {
			t.Errorf("refused after %s, before the wait", waited)
		}
		if st := m.stats(); st.waits != 1 || st.refused != 1 || st.used != 12*mib {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("waiting reservations are served in turn as memory comes back", func(t *testing.T) {
		t.Parallel()
		m := newMemory(16*mib, 5*time.Second)
		held := reserveNow(t, m, 16*mib, 16*mib, 0)
		order := make(chan int, 2)
		for i := range 2 {
			go func() {
				n, err := m.reserve(context.Background(), 8*mib, 8*mib, 0)
				if err != nil || n != 8*mib {
					t.Errorf("waiter %d: %d, %v", i, n, err)
				}
				order <- i
			}()
			waitUntil(t, func() bool { return queued(m) == i+1 })
		}
		m.release(held)
		if a, b := <-order, <-order; a+b != 1 {
			t.Errorf("served %d and %d", a, b)
		}
		if st := m.stats(); st.used != 16*mib || queued(m) != 0 {
			t.Errorf("stats %+v, queue %d", st, queued(m))
		}
	})

	t.Run("a first chunk is granted only while a minimum part fits beside it", func(t *testing.T) {
		t.Parallel()
		m := newMemory(16*mib, 20*time.Millisecond)
		reserveNow(t, m, 11*mib-chunkSize, 11*mib-chunkSize, 0)
		reserveNow(t, m, chunkSize, chunkSize, minPart) // 5 MiB stay free
		if _, err := m.reserve(context.Background(), chunkSize, chunkSize, minPart); !errors.Is(err, ErrBusy) {
			t.Fatalf("a chunk that leaves less than a minimum part free: %v, want ErrBusy", err)
		}
		if n := reserveNow(t, m, 5*mib-chunkSize, 16*mib, 0); n != 5*mib {
			t.Errorf("the upload that grows gets %d, want the 5 MiB kept for it", n)
		}
	})

	t.Run("a waiter whose context ends leaves the queue", func(t *testing.T) {
		t.Parallel()
		m := newMemory(16*mib, time.Minute)
		reserveNow(t, m, 16*mib, 16*mib, 0)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitUntil(t, func() bool { return queued(m) == 1 })
			cancel()
		}()
		if _, err := m.reserve(ctx, mib, mib, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if queued(m) != 0 {
			t.Error("the waiter is still queued")
		}
	})

	t.Run("no bound grants everything at once", func(t *testing.T) {
		t.Parallel()
		m := newMemory(0, time.Millisecond)
		if n := reserveNow(t, m, 5*mib, 1<<40, 0); n != 1<<40 {
			t.Errorf("got %d", n)
		}
	})
}

// queued returns how many reservations wait.
func queued(m *memory) int {
	m.mu.Lock()
	defer m.mu.Unlock()

	return len(m.queue)
}

// waitUntil polls cond for up to 5 seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPartSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		limit         int64
		large, sent   int
		wantLo, wantH int64
	}{
		{"one upload gets 16 MiB parts", 128 * mib, 1, 0, 5 * mib, 16 * mib},
		{"4 uploads still get 16 MiB", 128 * mib, 4, 0, 5 * mib, 16 * mib},
		{"8 share the budget in 8 MiB parts", 128 * mib, 8, 0, 5 * mib, 8 * mib},
		{"20 go down to the 5 MiB minimum", 128 * mib, 20, 0, 5 * mib, 5 * mib},
		{"after 2,000 parts both double", 128 * mib, 1, 2000, 10 * mib, 32 * mib},
		{"the last step is 80 to 256 MiB, capped at half the budget", 128 * mib, 1, 9000, 64 * mib, 64 * mib},
		{"without a bound, parts are the largest", 0, 50, 8000, 256 * mib, 256 * mib},
		{"the smallest budget", 16 * mib, 1, 0, 5 * mib, 8 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMemory(tc.limit, time.Second)
			m.large = tc.large
			lo, hi := m.partSize(tc.sent)
			if lo != tc.wantLo || hi != tc.wantH {
				t.Errorf("partSize(%d) = %d, %d MiB; want %d, %d", tc.sent, lo/mib, hi/mib, tc.wantLo/mib, tc.wantH/mib)
			}
		})
	}
}

func TestIdleChunksGoBack(t *testing.T) {
	t.Parallel()
	m := newMemory(16*mib, time.Second)
	m.trimEvery = 20 * time.Millisecond
	defer m.close()
	n := reserveNow(t, m, 8*mib, 8*mib, 0)
	p := &part{size: n, reserved: n}
	data := make([]byte, 8*mib)
	if k, err := p.write(m, data); err != nil || int64(k) != n {
		t.Fatalf("write: %d, %v", k, err)
	}
	if st := m.stats(); st.mapped != 8*mib {
		t.Fatalf("mapped %d while in use, want 8 MiB", st.mapped)
	}
	p.free(m)
	if st := m.stats(); st.mapped != 8*mib || st.used != 0 {
		t.Fatalf("right after use: %+v; want the chunks kept for a while, nothing reserved", st)
	}
	waitUntil(t, func() bool { return m.stats().mapped == 0 })
}

func TestPartReader(t *testing.T) {
	t.Parallel()
	m := newMemory(16*mib, time.Second)
	defer m.close()
	n := reserveNow(t, m, mib, mib, 0)
	p := &part{size: n, reserved: n}
	data := make([]byte, chunkSize+1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := p.write(m, data); err != nil {
		t.Fatal(err)
	}
	r := p.reader()
	for range 2 { // a retry reads it again from the start
		got, err := io.ReadAll(r)
		if err != nil || string(got) != string(data) {
			t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	r.detach()
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Fatal("a detached reader still reads")
	}
	p.free(m)
}
