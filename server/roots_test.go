package server

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// countedRoot is a Root that counts its Close calls.
type countedRoot struct {
	afero.Fs
	closed atomic.Int32
}

func (r *countedRoot) Close() error {
	r.closed.Add(1)

	return nil
}

// eventually polls cond for up to 2 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()

	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

func TestRootCacheSharesOpensAgainAndClosesOnlyWhatNoSessionHolds(t *testing.T) {
	const reuse = 100 * time.Millisecond

	c := newRootCache(reuse)

	var (
		mu     sync.Mutex
		opened []*countedRoot
	)
	open := func(string) (Root, error) {
		mu.Lock()
		defer mu.Unlock()

		r := &countedRoot{Fs: afero.NewMemMapFs()}
		opened = append(opened, r)

		return r, nil
	}
	opens := func() int {
		mu.Lock()
		defer mu.Unlock()

		return len(opened)
	}

	a, releaseA, err := c.acquire("/home/a", open)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, _ := c.acquire("/home/a", open)
	if a != b || opens() != 1 {
		t.Fatalf("two sessions starting together opened the home %d times, want once", opens())
	}

	other, releaseOther, _ := c.acquire("/home/b", open)
	if other == a || opens() != 2 {
		t.Fatal("another home shared the first home's root")
	}

	// Letting go while the root is still handed out keeps it open.
	_ = releaseA()
	_ = releaseA() // a second call must not count twice
	_ = releaseOther()
	if a.(*countedRoot).closed.Load() != 0 || other.(*countedRoot).closed.Load() != 0 {
		t.Fatal("a root still handed out was closed")
	}

	// Past reuse both are retired: /home/b, which no session holds, is
	// closed; /home/a stays open for the session that still holds it.
	eventually(t, "an unheld root stayed open after it was retired", func() bool {
		return other.(*countedRoot).closed.Load() == 1
	})
	// Each root retires on its own timer, and timers fire in no set order:
	// wait for /home/a's too before asking for it again.
	eventually(t, "a root was still handed out past its reuse time", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()

		return c.homes["/home/a"] == nil
	})
	if a.(*countedRoot).closed.Load() != 0 {
		t.Fatal("a retired root was closed while a session held it")
	}

	fresh, releaseFresh, _ := c.acquire("/home/a", open)
	if fresh == a || opens() != 3 {
		t.Fatalf("a retired root was handed out again (%d opens)", opens())
	}

	_ = releaseB()
	if got := a.(*countedRoot).closed.Load(); got != 1 {
		t.Fatalf("retired root closed %d times after its last session left, want 1", got)
	}

	// close retires the rest: closed at once if unheld, else on release.
	c.close()
	if fresh.(*countedRoot).closed.Load() != 0 {
		t.Fatal("close closed a root a session still holds")
	}
	_ = releaseFresh()
	if fresh.(*countedRoot).closed.Load() != 1 {
		t.Fatal("a root released after close stayed open")
	}

	// After close, roots are still handed out (a login may race a shutdown)
	// but never kept, and the retire timers that fire later close nothing twice.
	late, releaseLate, _ := c.acquire("/home/a", open)
	_ = releaseLate()
	time.Sleep(2 * reuse)
	for i, r := range append(opened, late.(*countedRoot)) {
		if got := r.closed.Load(); got != 1 {
			t.Fatalf("root %d closed %d times, want once", i, got)
		}
	}
}

func TestRootCacheReportsOpenErrors(t *testing.T) {
	c := newRootCache(rootReuse)
	boom := errors.New("boom")

	_, _, err := c.acquire("/x", func(string) (Root, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the open error", err)
	}
	if len(c.homes) != 0 {
		t.Fatal("a failed open was cached")
	}
}

// descriptorsOf counts this process's open descriptors that refer to dir.
func descriptorsOf(t *testing.T, dir string) int {
	t.Helper()

	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testenv.Missing(t, "no /proc/self/fd to count descriptors in: %v", err)
	}

	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == dir {
			n++
		}
	}

	return n
}

// anonServer serves a tree anonymously and returns the tree's real path,
// as /proc names it.
func anonServer(t *testing.T) (string, *testServer) {
	t.Helper()

	root, err := filepath.EvalSymlinks(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}

	return root, startServer(t, fixture{opts: defaultOptions(), anon: root})
}

func TestIdleSessionsShareTheirHomeFolder(t *testing.T) {
	root, ts := anonServer(t)
	before := descriptorsOf(t, root)

	const sessions = 20
	ctls := make([]*ftptest.Ctl, sessions)
	for i := range ctls {
		ctls[i] = ts.raw(t)
		ctls[i].Login("anonymous", "guest@example.com")
		ctls[i].Must(257, "PWD")
	}

	// One descriptor for all of them (two if the sessions straddled a
	// rootReuse boundary), where each session used to hold its own.
	if got := descriptorsOf(t, root) - before; got < 1 || got > 2 {
		t.Fatalf("%d idle sessions hold %d descriptors of their home, want 1 or 2", sessions, got)
	}

	// Once they have left, the server keeps nothing of the folder open
	// (an unmount must not find it busy).
	for _, c := range ctls {
		c.Must(221, "QUIT")
	}

	eventually(t, "the home folder stayed open after every session left", func() bool {
		return descriptorsOf(t, root) == before
	})
}

func TestAHomeReplacedOnDiskReachesNewSessions(t *testing.T) {
	base := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(base, v), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(base, v, "release.txt"), []byte(v))
	}

	served := filepath.Join(base, "current")
	if err := os.Symlink("v1", served); err != nil {
		t.Fatal(err)
	}

	ts := startServer(t, fixture{opts: defaultOptions(), anon: served})

	old := ts.dial(t, "anonymous", "guest@example.com")
	defer func() { _ = old.Quit() }()

	if got := string(ftptest.Retr(t, old, "release.txt")); got != "v1" {
		t.Fatalf("before the flip: got %q, want v1", got)
	}

	// Flip the link the way release scripts do: a new link renamed over the old.
	if err := os.Symlink("v2", served+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(served+".new", served); err != nil {
		t.Fatal(err)
	}

	time.Sleep(rootReuse + 100*time.Millisecond)

	fresh := ts.dial(t, "anonymous", "guest@example.com")
	defer func() { _ = fresh.Quit() }()

	if got := string(ftptest.Retr(t, fresh, "release.txt")); got != "v2" {
		t.Fatalf("a session started %v after the flip got %q, want v2", rootReuse, got)
	}

	// A session already open keeps the folder it started in.
	if got := string(ftptest.Retr(t, old, "release.txt")); got != "v1" {
		t.Fatalf("the older session got %q, want v1", got)
	}
}
