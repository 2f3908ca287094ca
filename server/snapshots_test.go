package server

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// snapshotPassive hands the snapshot tests passive ports 30000-30249 (the
// helper's own range; cmd/wharf's snapshot tests use 30250-30499).
var snapshotPassive atomic.Int32

func snapshotOptions() Options {
	opts := defaultOptions()
	n := int(snapshotPassive.Add(1)) % 12
	opts.PassivePortStart, opts.PassivePortEnd = 30000+n*20, 30000+n*20+19

	return opts
}

// mirrorCopies makes an anonymous root with two copies of a mirror whose
// files differ (debian.1, debian.2 with one more file) and "debian ->
// debian.1"; it returns the root and each copy's big file.
func mirrorCopies(t *testing.T) (root string, old, cur []byte) {
	t.Helper()

	root = t.TempDir()
	old, cur = ftptest.RandomBytes(300<<10), ftptest.RandomBytes(400<<10)
	writeFile(t, filepath.Join(root, "debian.1", "pool", "big.bin"), old)
	writeFile(t, filepath.Join(root, "debian.2", "pool", "big.bin"), cur)
	writeFile(t, filepath.Join(root, "debian.2", "pool", "new.deb"), []byte("new package\n"))
	flipLink(t, root, "debian", "debian.1")

	// rsync -a gives both copies' folders the source's times: the listing
	// cache must not take one copy's folder for the other's.
	same := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, dir := range []string{"debian.1/pool", "debian.2/pool"} {
		if err := os.Chtimes(filepath.Join(root, dir), same, same); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.Chtimes(filepath.Join(root, "debian.1", "pool", "big.bin"), oldTime, oldTime); err != nil {
		t.Fatal(err)
	}

	return root, old, cur
}

// oldTime is the modification time of debian.1/pool/big.bin (MDTM).
var oldTime = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)

// flipLink points root/name at target in one rename, as a sync tool does.
func flipLink(t *testing.T, root, name, target string) {
	t.Helper()

	tmp := filepath.Join(root, "."+name+".flip")
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(tmp, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}

// copyCounts are the sessions holding each copy of /debian, from /snapshots'
// source.
func copyCounts(srv *Server) map[string]int {
	out := map[string]int{}
	for _, st := range srv.Snapshots() {
		if st.Path == "/debian" {
			for _, c := range st.Copies {
				out[c.Copy] = c.Sessions
			}
		}
	}

	return out
}

func names(entries []*ftp.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}

	slices.Sort(out)

	return out
}

func TestASessionKeepsItsSnapshotCopyWhileTheLinkFlips(t *testing.T) {
	t.Parallel()

	root, old, cur := mirrorCopies(t)
	opts := snapshotOptions()
	opts.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}}
	ts := startServer(t, fixture{opts: opts, anon: root})

	c := ts.dial(t, "anonymous", "mirror@example.org")
	if err := c.ChangeDir("/debian/pool"); err != nil {
		t.Fatal(err)
	}

	if got := copyCounts(ts.srv); got["debian.1"] != 1 {
		t.Fatalf("counts after CWD: %v", got)
	}

	// A download in progress when the link flips.
	half := len(old) / 2
	r, err := c.Retr("big.bin")
	if err != nil {
		t.Fatal(err)
	}

	first := make([]byte, half)
	if _, err := io.ReadFull(r, first); err != nil {
		t.Fatal(err)
	}

	flipLink(t, root, "debian", "debian.2")

	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	if got := slices.Concat(first, rest); !bytes.Equal(got, old) {
		t.Fatalf("the download in progress got %d bytes, not the old copy's %d", len(got), len(old))
	}

	t.Run("a resume after the flip continues the old copy", func(t *testing.T) {
		r, err := c.RetrFrom("/debian/pool/big.bin", uint64(half))
		if err != nil {
			t.Fatal(err)
		}

		got, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || !bytes.Equal(got, old[half:]) {
			t.Errorf("REST %d: %d bytes (%v), want the old copy's last %d", half, len(got), err, len(old)-half)
		}
	})

	t.Run("listings, SIZE, MDTM and MLST after the flip show the old copy", func(t *testing.T) {
		if got := names(ftptest.List(t, c, "/debian/pool")); !slices.Equal(got, []string{"big.bin"}) {
			t.Errorf("LIST /debian/pool: %v", got)
		}

		if got, err := c.NameList("."); err != nil || !slices.Equal(got, []string{"big.bin"}) {
			t.Errorf("NLST in the working folder: %v, %v", got, err)
		}

		if size, err := c.FileSize("/debian/pool/big.bin"); err != nil || size != int64(len(old)) {
			t.Errorf("SIZE: %d, %v; want %d", size, err, len(old))
		}

		if mtime, err := c.GetTime("/debian/pool/big.bin"); err != nil || !mtime.Equal(oldTime) {
			t.Errorf("MDTM: %v, %v; want %v", mtime, err, oldTime)
		}

		if e, err := c.GetEntry("/debian/pool/big.bin"); err != nil || e.Size != uint64(len(old)) {
			t.Errorf("MLST: %+v, %v", e, err)
		}
	})

	t.Run("a new session sees the new copy", func(t *testing.T) {
		n := ts.dial(t, "anonymous", "mirror@example.org")
		defer func() { _ = n.Quit() }()

		if got := names(ftptest.List(t, n, "/debian/pool")); !slices.Equal(got, []string{"big.bin", "new.deb"}) {
			t.Errorf("new session's LIST: %v", got)
		}

		if got := ftptest.Retr(t, n, "/debian/pool/big.bin"); !bytes.Equal(got, cur) {
			t.Errorf("new session's download: %d bytes, not the new copy's %d", len(got), len(cur))
		}

		if got := copyCounts(ts.srv); got["debian.1"] != 1 || got["debian.2"] != 1 {
			t.Errorf("counts with both sessions: %v", got)
		}
	})

	t.Run("the old copy's count drops to zero when its session ends", func(t *testing.T) {
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}

		ftptest.WaitFor(t, 5*time.Second, func() bool { _, held := copyCounts(ts.srv)["debian.1"]; return !held })

		// The current copy stays reported at zero; the old one is gone.
		ftptest.WaitFor(t, 5*time.Second, func() bool {
			got := copyCounts(ts.srv)
			return len(got) == 1 && got["debian.2"] == 0
		})

		exp := `
# HELP wharf_snapshot_sessions Sessions holding each copy of a snapshot folder; the current copy is always reported, other copies while a session holds them.
# TYPE wharf_snapshot_sessions gauge
wharf_snapshot_sessions{copy="debian.2",path="/debian"} 0
`
		if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(exp), "wharf_snapshot_sessions"); err != nil {
			t.Error(err)
		}
	})
}

func TestSnapshotMetricCountsPinnedCopies(t *testing.T) {
	t.Parallel()

	root, _, _ := mirrorCopies(t)
	opts := snapshotOptions()
	opts.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}}
	ts := startServer(t, fixture{opts: opts, anon: root})

	c := ts.dial(t, "anonymous", "x@example.org")
	defer func() { _ = c.Quit() }()

	if _, err := c.FileSize("/debian/pool/big.bin"); err != nil {
		t.Fatal(err)
	}

	flipLink(t, root, "debian", "debian.2")

	exp := `
# HELP wharf_snapshot_sessions Sessions holding each copy of a snapshot folder; the current copy is always reported, other copies while a session holds them.
# TYPE wharf_snapshot_sessions gauge
wharf_snapshot_sessions{copy="debian.1",path="/debian"} 1
wharf_snapshot_sessions{copy="debian.2",path="/debian"} 0
`
	if err := testutil.GatherAndCompare(ts.srv.Registry(), strings.NewReader(exp), "wharf_snapshot_sessions"); err != nil {
		t.Error(err)
	}
}

func TestListingOfTheFolderAboveDoesNotPin(t *testing.T) {
	t.Parallel()

	root, _, _ := mirrorCopies(t)
	opts := snapshotOptions()
	opts.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}}
	ts := startServer(t, fixture{opts: opts, anon: root})

	c := ts.dial(t, "anonymous", "x@example.org")
	defer func() { _ = c.Quit() }()

	if got := names(ftptest.List(t, c, "/")); !slices.Contains(got, "debian") {
		t.Fatalf("LIST /: %v", got)
	}

	if got := copyCounts(ts.srv); got["debian.1"] != 0 {
		t.Errorf("a listing of / pinned the copy: %v", got)
	}
}

// A reload adds a snapshot for sessions from then on; a session that
// started before keeps following the link as it is.
func TestReloadAddsSnapshots(t *testing.T) {
	t.Parallel()

	root, _, _ := mirrorCopies(t)
	ao := auth.Options{Anonymous: true, AnonymousRoot: root}
	ts := startServerWith(t, fixture{opts: snapshotOptions()}, ao)

	before := ts.dial(t, "anonymous", "x@example.org")
	defer func() { _ = before.Quit() }()

	accounts, err := auth.New(ao)
	if err != nil {
		t.Fatal(err)
	}

	err = ts.srv.Reload(Reload{
		Accounts:  accounts,
		Snapshots: Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	after := ts.dial(t, "anonymous", "x@example.org")
	defer func() { _ = after.Quit() }()

	for _, c := range []*ftp.ServerConn{before, after} {
		if _, err := c.FileSize("/debian/pool/big.bin"); err != nil {
			t.Fatal(err)
		}
	}

	if got := copyCounts(ts.srv); got["debian.1"] != 1 {
		t.Errorf("counts after the reload: %v, want the new session only", got)
	}

	flipLink(t, root, "debian", "debian.2")

	if got := names(ftptest.List(t, before, "/debian/pool")); !slices.Equal(got, []string{"big.bin", "new.deb"}) {
		t.Errorf("the session from before the reload follows the link: %v", got)
	}

	if got := names(ftptest.List(t, after, "/debian/pool")); !slices.Equal(got, []string{"big.bin"}) {
		t.Errorf("the session from after the reload keeps its copy: %v", got)
	}
}
