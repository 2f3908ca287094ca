package vfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leftover writes a file of size bytes at rel below root, last written at mtime.
func leftover(t *testing.T, root, rel string, size int, mtime time.Time) string {
	t.Helper()
	name := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	return name
}

func exists(name string) bool {
	_, err := os.Lstat(name)

	return err == nil
}

func TestReclaimRemovesLeftoversOnly(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	old := time.Now().Add(-48 * time.Hour)
	recent := time.Now().Add(-time.Minute)
	gone := []string{
		leftover(t, sb.root, TempPrefix+"0123456789abcdef", 100, old),                      // kill -9 during an upload
		leftover(t, sb.root, "pub/deep/"+TempPrefix+"fedcba9876543210", 20, recent),        // no process holds it: its age does not matter
		leftover(t, sb.root, "pub/"+partPrefix+"00112233445566778899aabbccddeeff", 7, old), // a part past its window
	}
	kept := []string{
		leftover(t, sb.root, "pub/"+partPrefix+"ffeeddccbbaa99887766554433221100", 5, recent), // a part inside its window
		leftover(t, sb.root, "pub/keep.txt", 3, old),                                          // not a temporary file
		leftover(t, sb.root, "pub/"+TempPrefix+"dir/inside", 3, old),                          // ours are never folders
	}
	link := filepath.Join(sb.root, TempPrefix+"link")
	if err := os.Symlink("pub/a.txt", link); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, link, filepath.Join(sb.root, "pub", "a.txt"))

	// An upload in progress in this process, however old its file looks.
	uploads := NewUploads()
	fsys := sb.open(t, Options{Atomic: true, Uploads: uploads})
	running := startUpload(t, fsys, "/pub/empty/up.bin", "in flight")
	defer running.Close()
	temps := tempFiles(t, filepath.Join(sb.root, "pub", "empty"))
	if len(temps) != 1 {
		t.Fatalf("want the running upload's temporary file, got %q", temps)
	}
	inFlight := filepath.Join(sb.root, "pub", "empty", temps[0])
	if err := os.Chtimes(inFlight, old, old); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, inFlight)
	// A name claimed by an upload that has not opened (nor locked) its file yet.
	claimed := leftover(t, sb.root, "pub/"+TempPrefix+"aaaaaaaaaaaaaaaa", 1, old)
	uploads.claim(fsys.diskKey("pub/" + TempPrefix + "aaaaaaaaaaaaaaaa"))
	kept = append(kept, claimed)

	r := fsys.Reclaim(t.Context(), time.Hour, 1000)
	if r.Files != 3 || r.Bytes != 127 || !r.Complete {
		t.Errorf("Reclaim = %+v, want 3 files, 127 bytes, complete", r)
	}
	for _, name := range gone {
		if exists(name) {
			t.Errorf("left behind: %s", name)
		}
	}
	for _, name := range kept {
		if !exists(name) {
			t.Errorf("removed: %s", name)
		}
	}
	if err := running.Close(); err != nil {
		t.Errorf("the running upload failed: %v", err)
	}
	if got := diskFile(t, filepath.Join(sb.root, "pub", "empty", "up.bin")); got != "in flight" {
		t.Errorf("the running upload landed as %q", got)
	}
}

func TestReclaimWithoutAWindowRemovesEveryPart(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	part := leftover(t, sb.root, "pub/"+partPrefix+"00112233445566778899aabbccddeeff", 7, time.Now())
	if r := sb.open(t, Options{}).Reclaim(t.Context(), 0, 1000); r.Files != 1 || exists(part) {
		t.Errorf("Reclaim = %+v; the part exists: %v", r, exists(part))
	}
}

func TestReclaimIsBounded(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	for i := range 50 {
		leftover(t, sb.root, "many/"+TempPrefix+strings.Repeat("0", 15)+string(rune('a'+i%26))+string(rune('a'+i/26)), 1, time.Now().Add(-time.Hour))
	}
	fsys := sb.open(t, Options{})

	r := fsys.Reclaim(t.Context(), 0, 20)
	if r.Complete || r.Entries != 20 || r.Files > 20 {
		t.Errorf("with a cap of 20 entries: %+v", r)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r := fsys.Reclaim(ctx, 0, 1000); r.Complete || r.Files != 0 {
		t.Errorf("with its context ended: %+v", r)
	}

	if r := fsys.Reclaim(t.Context(), 0, 1000); !r.Complete {
		t.Errorf("without a cap: %+v", r)
	}
	entries, err := os.ReadDir(filepath.Join(sb.root, "many"))
	if err != nil || len(entries) != 0 {
		t.Errorf("left in the folder: %d entries, %v", len(entries), err)
	}
}

func TestReclaimRemembersPartsInsideTheirWindow(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	uploads := NewUploads()
	young := time.Now().Add(-30 * time.Minute)
	part := leftover(t, sb.root, "pub/"+partPrefix+"00112233445566778899aabbccddeeff", 7, young)
	fsys := sb.open(t, Options{Uploads: uploads})
	if r := fsys.Reclaim(t.Context(), time.Hour, 1000); r.Files != 0 {
		t.Fatalf("Reclaim removed %d files", r.Files)
	}
	if r := uploads.Expire(time.Now().Add(time.Hour)); r.Files != 1 || exists(part) {
		t.Errorf("an hour later Expire = %+v; the part exists: %v", r, exists(part))
	}
	uploads.mu.Lock()
	left := len(uploads.parts)
	uploads.mu.Unlock()
	if left != 0 {
		t.Errorf("Uploads still remembers %d parts", left)
	}
}

func TestUploadsExpireRemovesPartsPastTheirWindow(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	uploads := NewUploads()
	alice := sb.open(t, Options{Atomic: true, Uploads: uploads}).Resume("alice", time.Minute)
	interrupted(t, alice, "/pub/old.bin", "0123456789")
	interrupted(t, alice, "/pub/young.bin", "young")
	temps := tempFiles(t, filepath.Join(sb.root, "pub"))
	if len(temps) != 2 {
		t.Fatalf("want two parts, got %q", temps)
	}

	if r := uploads.Expire(time.Now()); r.Files != 0 {
		t.Fatalf("Expire removed %d parts inside their window", r.Files)
	}
	// Age the old part on disk, then look from the time it expires.
	info, err := alice.Part("/pub/old.bin")
	if err != nil {
		t.Fatal(err)
	}
	var oldPart string
	for _, name := range temps {
		st, err := os.Stat(filepath.Join(sb.root, "pub", name))
		if err == nil && st.Size() == info.Size() {
			oldPart = name
		}
	}
	then := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(filepath.Join(sb.root, "pub", oldPart), then, then); err != nil {
		t.Fatal(err)
	}
	uploads.mu.Lock()
	for key, p := range uploads.parts {
		if filepath.Base(key) == oldPart {
			p.mtime = then
			uploads.parts[key] = p
		}
	}
	uploads.mu.Unlock()

	r := uploads.Expire(time.Now())
	if r.Files != 1 || r.Bytes != 10 {
		t.Errorf("Expire removed %d files, %d bytes; want 1, 10", r.Files, r.Bytes)
	}
	if got := partSize(t, alice, "/pub/young.bin"); got != int64(len("young")) {
		t.Errorf("the young part is %d bytes", got)
	}
	if got := partSize(t, alice, "/pub/old.bin"); got != -1 {
		t.Errorf("the expired part is %d bytes", got)
	}
}
