package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"wharf/auth"
)

func TestRealPath(t *testing.T) {
	t.Parallel()

	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	if err := os.Mkdir(filepath.Join(dir, "pub"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ path, want string }{
		{dir + "/pub", dir + "/pub"},
		{dir + "/link/", dir + "/pub"},
		{dir + "/link/not/yet", dir + "/pub/not/yet"},
		{dir + "/missing/../link/x", dir + "/pub/x"}, // made absolute, so cleaned, first
	} {
		if got, err := realPath(tc.path); err != nil || got != tc.want {
			t.Errorf("realPath(%q) = %q, %v, want %q", tc.path, got, err, tc.want)
		}
	}
}

// A home below a bind mount of the anonymous root shares no path with it;
// it is found by the folder itself. Mounting needs root.
func TestExposureThroughABindMount(t *testing.T) {
	t.Parallel()

	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}

	dir := t.TempDir()
	root, mnt := filepath.Join(dir, "pub"), filepath.Join(dir, "mnt")
	for _, d := range []string{root + "/alice", mnt} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}

	if err := syscall.Mount(root, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })

	c := Default()
	c.Anonymous.Root = root
	c.Users = []User{{Name: "alice", Password: testHash, Home: mnt + "/alice", Access: Access(auth.WriteOnly)}}

	err := c.Validate()
	if want := `users[0] "alice": home "` + mnt + `/alice": is inside anonymous.root "` + root + `"`; err == nil ||
		!strings.HasPrefix(err.Error(), want) {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

// Folders lists the anonymous root and its upload_dir, then each home once,
// with what sessions do there and what create_missing makes them with; with
// s3, none.
func TestFolders(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Anonymous.Root, c.Anonymous.UploadDir = "/srv/ftp/pub", "incoming"
	c.Users = []User{
		{Name: "alice", Home: "/srv/ftp/home/alice", Access: Access(auth.ReadWrite)},
		{Name: "bob", Home: "/srv/ftp/home/bob"},
		{Name: "carol", Home: "/srv/ftp/home/bob/", Access: Access(auth.WriteOnly)}, // bob's home: now written in
		{Name: "dave", Home: "/srv/ftp/home/dave", file: "users.toml"},
	}

	want := []Folder{
		{Key: "anonymous.root", Path: "/srv/ftp/pub", Mode: 0o755, Required: true},
		{Key: "anonymous.upload_dir", Path: "/srv/ftp/pub/incoming", Write: true, Mode: 0o700},
		{Key: `users[0] "alice": home`, Path: "/srv/ftp/home/alice", Write: true, Mode: 0o700},
		{Key: `users[1] "bob": home`, Path: "/srv/ftp/home/bob", Write: true, Mode: 0o700},
		{Key: `users[0] "dave": home (users.toml)`, Path: "/srv/ftp/home/dave", Mode: 0o700},
	}
	if got := c.Folders(); !reflect.DeepEqual(got, want) {
		t.Errorf("Folders() =\n%+v\nwant\n%+v", got, want)
	}

	c.Storage.Backend = BackendS3
	if got := c.Folders(); got != nil {
		t.Errorf("Folders() with s3 = %+v, want none", got)
	}
}
