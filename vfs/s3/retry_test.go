package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// gate is a TCP proxy in front of the store that can go down (its listener
// closed and its connections cut, so that connecting is refused, as with a
// store that died) and come back on the same address.
type gate struct {
	target string
	addr   string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

func startGate(t *testing.T, target string) *gate {
	t.Helper()
	g := &gate{target: target, addr: "127.0.0.1:0"}
	if err := g.up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.down()
		g.wg.Wait()
	})

	return g
}

// up listens again, on the address it had.
func (g *gate) up() error {
	l, err := net.Listen("tcp", g.addr)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.l, g.addr = l, l.Addr().String()
	g.mu.Unlock()
	g.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", g.target)
			if err != nil {
				_ = c.Close()

				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, up)
			g.mu.Unlock()
			g.wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
			g.wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
		}
	})

	return nil
}

// cut closes the connections in progress; new ones still go through.
func (g *gate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		_ = c.Close()
	}
	g.conns = nil
}

// down refuses connections and cuts those in progress.
func (g *gate) down() {
	g.mu.Lock()
	if g.l != nil {
		_ = g.l.Close()
		g.l = nil
	}
	g.mu.Unlock()
	g.cut()
}

// upAfter brings the gate back after d, in the background.
func (g *gate) upAfter(t *testing.T, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	time.AfterFunc(d, func() { done <- g.up() })
	t.Cleanup(func() {
		if err := <-done; err != nil {
			t.Errorf("gate up: %v", err)
		}
	})
}

// gatedStore is a store reached through its own gate.
func gatedStore(t *testing.T) (*Store, *gate) {
	t.Helper()
	opts, _ := testBucket(t)
	g := startGate(t, strings.TrimPrefix(opts.Endpoint, "http://"))
	opts.Endpoint = "http://" + g.addr
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}

	return s, g
}

// TestRetries: a store that blinks, as one that restarts does, costs a
// stat, a download or a listing a pause, not a failure; one that stays down
// fails them with ErrUnavailable within the retry budget.
func TestRetries(t *testing.T) {
	t.Parallel()
	data := ftptest.RandomBytes(8 << 20)

	// Bounds: the S3 client's own retries inside an attempt (up to 1.4 s
	// with maxRetries 3), and a loaded machine.
	const late = retryBudget + 2*time.Second

	t.Run("a stat waits for a store that comes back within the budget", func(t *testing.T) {
		t.Parallel()
		s, g := gatedStore(t)
		fsys, _ := s.Open("/", false)
		writeFile(t, fsys, "/a.txt", "a")
		g.down()
		g.upAfter(t, 600*time.Millisecond)
		start := time.Now()
		if _, err := fsys.Stat("/a.txt"); err != nil {
			t.Fatalf("stat: %v after %s", err, time.Since(start))
		}
	})

	t.Run("a stat fails with ErrUnavailable once the budget is spent", func(t *testing.T) {
		t.Parallel()
		s, g := gatedStore(t)
		fsys, _ := s.Open("/", false)
		g.down()
		start := time.Now()
		_, err := fsys.Stat("/a.txt")
		took := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || took > late {
			t.Fatalf("stat: %v after %s, want ErrUnavailable within %s", err, took, late)
		}
		if strings.Contains(err.Error(), g.addr) {
			t.Errorf("error %q shows the endpoint", err)
		}
	})

	for _, tc := range []struct {
		name string
		cut  func(t *testing.T, g *gate)
	}{
		{"a download goes on after the store cut its stream", func(_ *testing.T, g *gate) { g.cut() }},
		{"a download goes on when the store comes back within the budget", func(t *testing.T, g *gate) {
			t.Helper()
			g.down()
			g.upAfter(t, 700*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, g := gatedStore(t)
			fsys, _ := s.Open("/", false)
			if err := send(t, fsys, "/big.bin", stor, 0, data, nil); err != nil {
				t.Fatal(err)
			}
			f, err := fsys.Open("/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 1<<20)
			if _, err := io.ReadFull(f, head); err != nil {
				t.Fatal(err)
			}
			tc.cut(t, g)
			rest, err := io.ReadAll(f)
			if err != nil {
				t.Fatalf("read after the cut: %v", err)
			}
			if !bytes.Equal(head, data[:len(head)]) || !bytes.Equal(rest, data[len(head):]) {
				t.Fatalf("got %d bytes, not the object's %d", len(head)+len(rest), len(data))
			}
		})
	}

	t.Run("a download fails with ErrUnavailable when the store stays down", func(t *testing.T) {
		t.Parallel()
		s, g := gatedStore(t)
		fsys, _ := s.Open("/", false)
		if err := send(t, fsys, "/big.bin", stor, 0, data, nil); err != nil {
			t.Fatal(err)
		}
		f, err := fsys.Open("/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.ReadFull(f, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		g.down()
		start := time.Now()
		_, err = io.Copy(io.Discard, f)
		if took := time.Since(start); !errors.Is(err, ErrUnavailable) || took > late {
			t.Fatalf("read: %v after %s, want ErrUnavailable within %s", err, took, late)
		}
	})

	t.Run("a listing resumes after the store comes back, with every entry once", func(t *testing.T) {
		t.Parallel()
		s, g := gatedStore(t)
		fsys, _ := s.Open("/", false)
		if err := fsys.Mkdir("/d", 0o755); err != nil {
			t.Fatal(err)
		}
		want := []string{"d/"} // the folder's marker
		for i := range 30 {
			name := fmt.Sprintf("/d/f%02d", i)
			if i%3 == 0 {
				if err := fsys.Mkdir(name, 0o755); err != nil {
					t.Fatal(err)
				}
				want = append(want, name[1:]+"/") // a folder: a common prefix
			} else {
				writeFile(t, fsys, name, "x")
				want = append(want, name[1:])
			}
		}
		slices.Sort(want)
		var got []string
		for oi := range fsys.list(t.Context(), listOptions("d/", false, 7)) {
			if oi.Err != nil {
				t.Fatalf("listing failed after %d entries: %v", len(got), oi.Err)
			}
			got = append(got, oi.Key)
			if len(got) == 10 {
				g.down()
				g.upAfter(t, 1500*time.Millisecond)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("listed %q, want %q", got, want)
		}
	})
}
