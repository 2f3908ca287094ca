package server

import (
	"slices"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// manifestPaths are the file paths a manifest.json lists.
func manifestPaths(t *testing.T, data []byte) []string {
	t.Helper()

	var out []string
	for _, f := range parseManifest(t, data).Files {
		out = append(out, f.Path)
	}

	slices.Sort(out)

	return out
}

// A snapshot's manifest is the manifest of the copy the session holds:
// reading it makes the session hold that copy, a session that started
// before the flip keeps the old copy's manifest, a new one gets the new
// copy's, and the old copy's pair goes once no session holds that copy.
func TestSnapshotManifestFollowsTheSessionsCopy(t *testing.T) {
	t.Parallel()

	root, _, _ := mirrorCopies(t)
	opts := snapshotOptions()
	opts.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}}
	opts.Manifest = Manifest{Enabled: true, Interval: time.Hour}
	ts := startServer(t, fixture{opts: opts, anon: root})

	oldPaths := []string{"/debian/pool/big.bin"}
	newPaths := []string{"/debian/pool/big.bin", "/debian/pool/new.deb"}

	a := ts.dial(t, "anonymous", "crawler@example.org")
	if got := manifestPaths(t, fetch(t, a, "/debian/manifest.json")); !slices.Equal(got, oldPaths) {
		t.Fatalf("before the flip: %v, want %v", got, oldPaths)
	}

	if got := copyCounts(ts.srv); got["debian.1"] != 1 {
		t.Fatalf("reading the manifest did not hold the copy: %v", got)
	}

	flipLink(t, root, "debian", "debian.2")
	poke(ts.srv.manifests)

	b := ts.dial(t, "anonymous", "crawler@example.org")
	ftptest.WaitFor(t, 10*time.Second, func() bool {
		return slices.Equal(manifestPaths(t, fetch(t, b, "/debian/manifest.json")), newPaths)
	})

	if got := manifestPaths(t, fetch(t, a, "/debian/manifest.json")); !slices.Equal(got, oldPaths) {
		t.Errorf("the session holding the old copy: %v, want the old copy's %v", got, oldPaths)
	}

	if err := a.Quit(); err != nil {
		t.Fatal(err)
	}

	ftptest.WaitFor(t, 5*time.Second, func() bool { return copyCounts(ts.srv)["debian.1"] == 0 })

	m := ts.srv.manifests
	ftptest.WaitFor(t, 10*time.Second, func() bool {
		poke(m)

		m.mu.Lock()
		defer m.mu.Unlock()

		return len(m.roots["/debian"].older) == 0
	})
}

// poke makes the manifests look at the tree again now.
func poke(m *manifests) {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
