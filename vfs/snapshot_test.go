package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/spf13/afero"
)

// countPins is a Pinner that counts holds by "path copy".
type countPins struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countPins) Pin(p, copyName string)   { c.add(p+" "+copyName, 1) }
func (c *countPins) Unpin(p, copyName string) { c.add(p+" "+copyName, -1) }

func (c *countPins) add(k string, d int) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.n == nil {
		c.n = map[string]int{}
	}

	c.n[k] += d
	if c.n[k] == 0 {
		delete(c.n, k)
	}
}

func (c *countPins) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()

	return maps.Clone(c.n)
}

// mirrorTree makes a root with two copies of a mirror, debian.1 and
// .snapshots/debian.2, and "debian -> debian.1".
func mirrorTree(t *testing.T) string {
	t.Helper()

	root := t.TempDir()
	for _, c := range []string{"debian.1", ".snapshots/debian.2"} {
		if err := os.MkdirAll(filepath.Join(root, c, "dists"), 0o755); err != nil {
			t.Fatal(err)
		}

		if err := os.WriteFile(filepath.Join(root, c, "dists", "Release"), []byte("from "+filepath.Base(c)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	flip(t, root, "debian.1")

	return root
}

// flip points the link root/debian at target, atomically as a sync tool does.
func flip(t *testing.T, root, target string) {
	t.Helper()

	name := "debian"
	tmp := filepath.Join(root, name+".new")
	if err := os.Symlink(target, tmp); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(tmp, filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}

func readCopy(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()

	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()

	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}

	return string(b)
}

func TestPinsKeepTheCopyASessionFirstSaw(t *testing.T) {
	t.Parallel()

	root := mirrorTree(t)
	base, err := Open(root, Options{ShowLinks: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Close() })

	reg := &countPins{}
	oldPins := NewPins([]string{"/debian"}, reg)
	old := base.WorldReadable().WithPins(oldPins)

	if got := readCopy(t, old, "/debian/dists/Release"); got != "from debian.1" {
		t.Fatalf("before the flip: %q", got)
	}
	if got := reg.counts(); !maps.Equal(got, map[string]int{"/debian debian.1": 1}) {
		t.Fatalf("counts after the first read: %v", got)
	}

	flip(t, root, ".snapshots/debian.2")

	t.Run("the session that read the link keeps its copy", func(t *testing.T) {
		if got := readCopy(t, old, "/debian/dists/Release"); got != "from debian.1" {
			t.Errorf("after the flip: %q", got)
		}
		if _, err := old.Stat("/debian/dists"); err != nil {
			t.Errorf("stat: %v", err)
		}
		if got := old.pins.Held(); !maps.Equal(got, map[string]string{"/debian": "debian.1"}) {
			t.Errorf("held %v", got)
		}
	})

	t.Run("the listing of the folder shows the kept target", func(t *testing.T) {
		infos, err := afero.ReadDir(old, "/")
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range infos {
			if li, ok := fi.(interface{ LinkTarget() string }); ok && fi.Name() == "debian" && li.LinkTarget() != "debian.1" {
				t.Errorf("debian -> %s", li.LinkTarget())
			}
		}
	})

	newPins := NewPins([]string{"/debian"}, reg)
	fresh := base.WithPins(newPins)

	t.Run("listing the folder above does not pin", func(t *testing.T) {
		if _, err := afero.ReadDir(fresh, "/"); err != nil {
			t.Fatal(err)
		}
		if got := newPins.Held(); len(got) != 0 {
			t.Errorf("a listing of / pinned %v", got)
		}
	})

	t.Run("a new session sees the new copy", func(t *testing.T) {
		if got := readCopy(t, fresh, "/debian/dists/Release"); got != "from debian.2" {
			t.Errorf("new session: %q", got)
		}
		want := map[string]int{"/debian debian.1": 1, "/debian .snapshots/debian.2": 1}
		if got := reg.counts(); !maps.Equal(got, want) {
			t.Errorf("counts %v, want %v", got, want)
		}
	})

	t.Run("release drops the counts, once", func(t *testing.T) {
		oldPins.Release()
		oldPins.Release()
		if got := reg.counts(); !maps.Equal(got, map[string]int{"/debian .snapshots/debian.2": 1}) {
			t.Errorf("counts %v", got)
		}
		newPins.Release()
		if got := reg.counts(); len(got) != 0 {
			t.Errorf("counts %v", got)
		}
	})

	t.Run("without pins the link is followed as it is now", func(t *testing.T) {
		if got := readCopy(t, base, "/debian/dists/Release"); got != "from debian.2" {
			t.Errorf("plain Fs: %q", got)
		}
	})
}

func TestPinsMatchTheRealLinkWhateverTheAlias(t *testing.T) {
	t.Parallel()

	root := mirrorTree(t)
	if err := os.Symlink("debian", filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}

	base, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Close() })

	pins := NewPins([]string{"/debian"}, nil)
	s := base.WithPins(pins)
	if got := readCopy(t, s, "/alias/dists/Release"); got != "from debian.1" {
		t.Fatalf("through the alias: %q", got)
	}

	flip(t, root, ".snapshots/debian.2")

	if got := readCopy(t, s, "/debian/dists/Release"); got != "from debian.1" {
		t.Errorf("pinned through the alias, read by name: %q", got)
	}
}

func TestSnapshotCopy(t *testing.T) {
	t.Parallel()

	root := mirrorTree(t)
	if err := os.Symlink("/etc", filepath.Join(root, "outside")); err != nil {
		t.Fatal(err)
	}

	base, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Close() })

	name, virtual, err := base.SnapshotCopy("/debian")
	if err != nil || name != "debian.1" || virtual != "/debian.1" {
		t.Fatalf("SnapshotCopy = %q, %q, %v", name, virtual, err)
	}

	pins := NewPins([]string{"/debian"}, nil)
	s := base.WithPins(pins)
	readCopy(t, s, "/debian/dists/Release")
	flip(t, root, "./.snapshots/debian.2")

	if name, virtual, err := base.SnapshotCopy("debian"); err != nil || name != ".snapshots/debian.2" || virtual != "/.snapshots/debian.2" {
		t.Errorf("after the flip: %q, %q, %v", name, virtual, err)
	}
	if name, _, err := s.SnapshotCopy("/debian"); err != nil || name != "debian.1" {
		t.Errorf("a pinned session's copy: %q, %v", name, err)
	}

	for _, bad := range []struct {
		path string
		want error
	}{
		{"/debian.1", fs.ErrInvalid},
		{"/", fs.ErrInvalid},
		{"/missing", fs.ErrNotExist},
		{"/outside", fs.ErrNotExist},
	} {
		if _, _, err := base.SnapshotCopy(bad.path); !errors.Is(err, bad.want) {
			t.Errorf("SnapshotCopy(%q) = %v, want %v", bad.path, err, bad.want)
		}
	}

	if got := slices.Sorted(maps.Keys(pins.Held())); !slices.Equal(got, []string{"/debian"}) {
		t.Errorf("held %v", got)
	}
}

func TestPinsKeepNoLinkThatLeavesTheTree(t *testing.T) {
	t.Parallel()

	root := mirrorTree(t)
	flip(t, root, "/etc")

	base, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = base.Close() })

	reg := &countPins{}
	s := base.WithPins(NewPins([]string{"/debian"}, reg))
	if _, err := s.Stat("/debian/dists"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("through a link out of the tree: %v", err)
	}

	flip(t, root, "debian.1")

	if got := readCopy(t, s, "/debian/dists/Release"); got != "from debian.1" {
		t.Errorf("once the link is fixed: %q", got)
	}
	if got := reg.counts(); !maps.Equal(got, map[string]int{"/debian debian.1": 1}) {
		t.Errorf("counts %v", got)
	}
}
