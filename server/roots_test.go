package server

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"wharf/internal/ftptest"
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

func TestRootCacheSharesOpensAgainAndClosesOnlyWhatNoSessionHolds(t *testing.T) {
	c := newRootCache()

	var opened []*countedRoot
	open := func(string) (Root, error) {
		r := &countedRoot{Fs: afero.NewMemMapFs()}
		opened = append(opened, r)

		return r, nil
	}

	a, releaseA, err := c.acquire("/home/a", open)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, _ := c.acquire("/home/a", open)
	if a != b || len(opened) != 1 {
		t.Fatalf("two sessions starting together opened the home %d times, want once", len(opened))
	}

	other, releaseOther, _ := c.acquire("/home/b", open)
	if other == a || len(opened) != 2 {
		t.Fatalf("another home shared the first home's root")
	}

	// Releasing while the root is still the one handed out keeps it open.
	_ = releaseA()
	_ = releaseA() // a second call must not count twice
	if opened[0].closed.Load() != 0 {
		t.Fatal("a root still handed out was closed")
	}

	// Past rootReuse the home is opened afresh; the old root stays open for
	// the session that still holds it, and closes when that one lets go.
	c.homes["/home/a"].opened = time.Now().Add(-2 * rootReuse)
	c.homes["/home/b"].opened = time.Now().Add(-2 * rootReuse)

	fresh, releaseFresh, _ := c.acquire("/home/a", open)
	if fresh == a || len(opened) != 3 {
		t.Fatalf("an old root was handed out again (%d opens)", len(opened))
	}
	if opened[0].closed.Load() != 0 {
		t.Fatal("an old root was closed while a session still held it")
	}

	_ = releaseB()
	if got := opened[0].closed.Load(); got != 1 {
		t.Fatalf("old root closed %d times after its last session left, want 1", got)
	}

	// /home/b was retired with the others; its session still holds it.
	if opened[1].closed.Load() != 0 {
		t.Fatal("a retired root was closed while a session held it")
	}
	_ = releaseOther()
	if opened[1].closed.Load() != 1 {
		t.Fatal("a retired root was not closed when its session left")
	}

	// close retires the rest: closed at once if unheld, else on release.
	c.close()
	if opened[2].closed.Load() != 0 {
		t.Fatal("close closed a root a session still holds")
	}
	_ = releaseFresh()
	if opened[2].closed.Load() != 1 {
		t.Fatal("a root released after close stayed open")
	}

	// After close, roots are still handed out (sessions ending during a
	// shutdown may log in) but never kept.
	late, releaseLate, _ := c.acquire("/home/a", open)
	_ = releaseLate()
	if late.(*countedRoot).closed.Load() != 1 {
		t.Fatal("a root opened after close was kept")
	}
}

func TestRootCacheReportsOpenErrors(t *testing.T) {
	c := newRootCache()
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
		t.Skipf("no /proc/self/fd: %v", err)
	}

	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == dir {
			n++
		}
	}

	return n
}

func TestIdleSessionsShareTheirHomeFolder(t *testing.T) {
	root, err := filepath.EvalSymlinks(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, fixture{opts: defaultOptions(), anon: root})

	before := descriptorsOf(t, root)

	const sessions = 20
	for range sessions {
		c := ts.raw(t)
		c.Login("anonymous", "guest@example.com")
		c.Must(257, "PWD")
	}

	// One descriptor for all of them (two if the sessions straddled a
	// rootReuse boundary), where each session used to hold its own.
	if got := descriptorsOf(t, root) - before; got < 1 || got > 2 {
		t.Fatalf("%d idle sessions hold %d descriptors of their home, want 1 or 2", sessions, got)
	}
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

func TestLoggingInAgainLetsGoOfThePreviousRoot(t *testing.T) {
	root, err := filepath.EvalSymlinks(makeTree(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, fixture{opts: defaultOptions(), anon: root})

	before := descriptorsOf(t, root)

	c := ts.raw(t)
	for range 5 {
		c.Login("anonymous", "guest@example.com")
	}

	// Once the cached root is older than rootReuse, the next login opens a
	// new one and retires the old, which closes when no session holds it.
	time.Sleep(rootReuse + 100*time.Millisecond)
	c.Login("anonymous", "guest@example.com")

	if got := descriptorsOf(t, root) - before; got != 1 {
		t.Fatalf("after logging in again, %d descriptors of the home are open, want 1 (the old root leaked)", got)
	}

	c.Must(221, "QUIT")
}
