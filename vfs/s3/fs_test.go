package s3

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"

	"wharf/vfs"
)

// writeFile uploads content to name through fsys.
func writeFile(t *testing.T, fsys afero.Fs, name, content string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// readFile downloads name through fsys.
func readFile(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}

	return string(b)
}

// names lists a folder through fsys.
func names(t *testing.T, fsys afero.Fs, name string) []string {
	t.Helper()
	d, err := fsys.Open(name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer d.Close()
	out, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatalf("readdir %s: %v", name, err)
	}
	slices.Sort(out)

	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	opts, _ := testBucket(t)

	for _, tc := range []struct {
		name   string
		change func(o *Options)
		want   string // in the error; "" for success
	}{
		{"the test options connect", func(*Options) {}, ""},
		{"an endpoint with a trailing slash works", func(o *Options) { o.Endpoint += "/" }, ""},
		{"an endpoint without a scheme is refused", func(o *Options) { o.Endpoint = strings.TrimPrefix(o.Endpoint, "http://") }, "http://"},
		{"an endpoint with a path is refused", func(o *Options) { o.Endpoint += "/bucket" }, "only a scheme"},
		{"a missing bucket is refused", func(o *Options) { o.Bucket = "wharf-no-such-bucket" }, "does not exist"},
		{"an invalid bucket name is refused", func(o *Options) { o.Bucket = "No_Such" }, "bucket"},
		{"a lone access key is refused", func(o *Options) { o.SecretKey = "" }, "both or neither"},
		{"a wrong secret key is refused", func(o *Options) { o.SecretKey = "wrong-secret-key" }, "bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := opts
			tc.change(&o)
			_, err := New(context.Background(), o)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New: got %v, want an error containing %q", err, tc.want)
			}
		})
	}

}

// TestNewFromEnvironment leaves the keys empty: they come from the AWS
// environment variables. (Not parallel: it sets the environment.)
func TestNewFromEnvironment(t *testing.T) {
	opts, client := testBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", opts.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", opts.SecretKey)
	opts.AccessKey, opts.SecretKey = "", ""
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	fsys, _ := s.Open("/", false)
	writeFile(t, fsys, "/env.txt", "signed with the environment's keys")
	if got := object(t, client, opts.Bucket, "env.txt"); got != "signed with the environment's keys" {
		t.Fatalf("got %q", got)
	}
}

// TestOperations runs every operation of Fs against the store, in order: each
// step sees what the earlier ones left.
func TestOperations(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "site")
	fsys, err := s.Open("/alice", true)
	if err != nil {
		t.Fatal(err)
	}
	bucket := s.bucket
	has := func(key string) bool { return slices.Contains(keys(t, client, bucket), key) }
	create := func(name string, flag int) error {
		f, err := fsys.OpenFile(name, flag, 0o644)
		if err == nil {
			err = f.Close()
		}

		return err
	}

	steps := []struct {
		name string
		do   func() error
		want error // errors.Is; nil for success
		then func(t *testing.T)
	}{
		{"the home need not exist", func() error { _, err := fsys.Stat("/"); return err }, nil, nil},
		{"an empty home lists nothing", func() error {
			if got := names(t, fsys, "/"); len(got) != 0 {
				t.Errorf("got %q", got)
			}
			return nil
		}, nil, nil},
		{"Mkdir writes a marker", func() error { return fsys.Mkdir("/d", 0o755) }, nil, func(t *testing.T) {
			t.Helper()
			if !has("site/alice/d/") {
				t.Error("no marker site/alice/d/")
			}
		}},
		{"Mkdir of an existing folder fails", func() error { return fsys.Mkdir("/d", 0o755) }, fs.ErrExist, nil},
		{"Mkdir without its parent fails", func() error { return fsys.Mkdir("/no/d", 0o755) }, fs.ErrNotExist, nil},
		{"Mkdir of / fails", func() error { return fsys.Mkdir("/", 0o755) }, fs.ErrExist, nil},
		{"MkdirAll writes every level", func() error { return fsys.MkdirAll("/a/b/c", 0o755) }, nil, func(t *testing.T) {
			t.Helper()
			for _, k := range []string{"site/alice/a/", "site/alice/a/b/", "site/alice/a/b/c/"} {
				if !has(k) {
					t.Errorf("no marker %s", k)
				}
			}
		}},
		{"MkdirAll of an existing folder succeeds", func() error { return fsys.MkdirAll("/a/b", 0o755) }, nil, nil},
		{"an upload lands under the home", func() error { writeFile(t, fsys, "/d/f.txt", "hello"); return nil }, nil, func(t *testing.T) {
			t.Helper()
			if got := object(t, client, bucket, "site/alice/d/f.txt"); got != "hello" {
				t.Errorf("object holds %q", got)
			}
		}},
		{"Stat of a file", func() error {
			info, err := fsys.Stat("/d/f.txt")
			if err == nil && (info.IsDir() || info.Size() != 5 || info.Name() != "f.txt" || time.Since(info.ModTime()) > time.Hour) {
				t.Errorf("info %q dir=%v size=%d mtime=%v", info.Name(), info.IsDir(), info.Size(), info.ModTime())
			}
			return err
		}, nil, nil},
		{"Stat of a folder", func() error {
			info, err := fsys.Stat("/d")
			if err == nil && (!info.IsDir() || info.Name() != "d") {
				t.Errorf("info %q dir=%v", info.Name(), info.IsDir())
			}
			return err
		}, nil, nil},
		{"Stat of nothing fails", func() error { _, err := fsys.Stat("/nope"); return err }, fs.ErrNotExist, nil},
		{"listing shows files and folders, not the marker", func() error {
			if got := names(t, fsys, "/d"); !slices.Equal(got, []string{"f.txt"}) {
				t.Errorf("got %q", got)
			}
			if got := names(t, fsys, "/"); !slices.Equal(got, []string{"a", "d"}) {
				t.Errorf("got %q", got)
			}
			return nil
		}, nil, nil},
		{"Mkdir over a file fails", func() error { return fsys.Mkdir("/d/f.txt", 0o755) }, fs.ErrExist, nil},
		{"MkdirAll through a file fails", func() error { return fsys.MkdirAll("/d/f.txt/x", 0o755) }, syscall.ENOTDIR, nil},
		{"an upload below a file fails", func() error { return create("/d/f.txt/x", os.O_WRONLY|os.O_CREATE|os.O_TRUNC) }, syscall.ENOTDIR, nil},
		{"an upload without its folder fails", func() error { return create("/no/x", os.O_WRONLY|os.O_CREATE|os.O_TRUNC) }, fs.ErrNotExist, nil},
		{"an upload over a folder fails", func() error { return create("/d", os.O_WRONLY|os.O_CREATE|os.O_TRUNC) }, syscall.EISDIR, nil},
		{"an upload to / fails", func() error { return create("/", os.O_WRONLY|os.O_CREATE|os.O_TRUNC) }, syscall.EISDIR, nil},
		{"O_EXCL refuses an existing file", func() error { return create("/d/f.txt", os.O_WRONLY|os.O_CREATE|os.O_EXCL) }, fs.ErrExist, nil},
		{"O_WRONLY without O_CREATE needs the file", func() error { return create("/d/new.txt", os.O_WRONLY) }, fs.ErrNotExist, nil},
		{"Open of nothing fails", func() error { _, err := fsys.Open("/nope"); return err }, fs.ErrNotExist, nil},
		{"Remove refuses a folder with content", func() error { return fsys.Remove("/d") }, syscall.ENOTEMPTY, nil},
		{"Remove of nothing fails", func() error { return fsys.Remove("/nope") }, fs.ErrNotExist, nil},
		{"Remove of / fails", func() error { return fsys.Remove("/") }, fs.ErrPermission, nil},
		{"RemoveAll of / fails", func() error { return fsys.RemoveAll("/") }, fs.ErrPermission, nil},
		{"Rename moves a file", func() error { return fsys.Rename("/d/f.txt", "/a/g.txt") }, nil, func(t *testing.T) {
			t.Helper()
			if has("site/alice/d/f.txt") || object(t, client, bucket, "site/alice/a/g.txt") != "hello" {
				t.Errorf("keys %q", keys(t, client, bucket))
			}
		}},
		{"a folder stays when its last file leaves", func() error { _, err := fsys.Stat("/d"); return err }, nil, nil},
		{"Rename of nothing fails", func() error { return fsys.Rename("/nope", "/x") }, fs.ErrNotExist, nil},
		{"Rename to a missing folder fails", func() error { return fsys.Rename("/a/g.txt", "/no/g.txt") }, fs.ErrNotExist, nil},
		{"Rename of a file onto a folder fails", func() error { return fsys.Rename("/a/g.txt", "/d") }, syscall.EISDIR, nil},
		{"Rename of / fails", func() error { return fsys.Rename("/", "/x") }, fs.ErrPermission, nil},
		{"Rename of a folder into itself fails", func() error { return fsys.Rename("/a", "/a/b/a") }, syscall.EINVAL, nil},
		{"Rename of a folder onto a folder with content fails", func() error { return fsys.Rename("/d", "/a") }, syscall.ENOTEMPTY, nil},
		{"Rename moves a folder with everything below", func() error { return fsys.Rename("/a", "/d/moved") }, nil, func(t *testing.T) {
			t.Helper()
			got := keys(t, client, bucket)
			want := []string{"site/alice/d/", "site/alice/d/moved/", "site/alice/d/moved/b/", "site/alice/d/moved/b/c/", "site/alice/d/moved/g.txt"}
			if !slices.Equal(got, want) {
				t.Errorf("keys %q, want %q", got, want)
			}
		}},
		{"Remove removes a file", func() error { return fsys.Remove("/d/moved/g.txt") }, nil, nil},
		{"Remove removes an empty folder", func() error { return fsys.Remove("/d/moved/b/c") }, nil, func(t *testing.T) {
			t.Helper()
			if has("site/alice/d/moved/b/c/") {
				t.Error("marker still there")
			}
		}},
		{"RemoveAll removes a tree", func() error { return fsys.RemoveAll("/d/moved") }, nil, func(t *testing.T) {
			t.Helper()
			if got := keys(t, client, bucket); !slices.Equal(got, []string{"site/alice/d/"}) {
				t.Errorf("keys %q", got)
			}
		}},
		{"RemoveAll of nothing succeeds", func() error { return fsys.RemoveAll("/nope") }, nil, nil},
		{"Chmod is refused", func() error { return fsys.Chmod("/d", 0o700) }, fs.ErrPermission, nil},
		{"Chown is refused", func() error { return fsys.Chown("/d", 0, 0) }, fs.ErrPermission, nil},
		{"Chtimes is refused", func() error { return fsys.Chtimes("/d", time.Now(), time.Now()) }, errors.ErrUnsupported, nil},
		{"a closed Fs refuses everything", func() error {
			closed, _ := s.Open("/alice", false)
			_ = closed.Close()
			_, err := closed.Stat("/d")
			return err
		}, fs.ErrClosed, nil},
	}
	for _, step := range steps {
		ok := t.Run(step.name, func(t *testing.T) {
			err := step.do()
			switch {
			case step.want == nil && err != nil:
				t.Fatalf("got %v", err)
			case step.want != nil && !errors.Is(err, step.want):
				t.Fatalf("got %v, want %v", err, step.want)
			}
			if err != nil {
				checkErrText(t, s, err)
			}
			if step.then != nil {
				step.then(t)
			}
		})
		if !ok {
			return
		}
	}
}

// checkErrText fails if the text of err, which clients read, shows the
// bucket, a key prefix or the endpoint.
func checkErrText(t *testing.T, s *Store, err error) {
	t.Helper()
	text := err.Error()
	for _, secret := range []string{s.bucket, "site/", "/alice/", s.core.EndpointURL().Host} {
		if strings.Contains(text, secret) {
			t.Errorf("error %q shows %q", text, secret)
		}
	}
	var pe *fs.PathError
	var le *os.LinkError
	if !errors.As(err, &pe) && !errors.As(err, &le) {
		t.Errorf("error %#v is no *fs.PathError or *os.LinkError", err)
	}
}

// TestConfinement tries names that would leave the home if they were used as
// keys as they are: nothing outside the home's prefix is read or changed.
func TestConfinement(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "site")
	bucket := s.bucket
	outside := map[string]string{
		"secret.txt":           "top",
		"site/secret.txt":      "prefix",
		"site/bob/secret.txt":  "bob",
		"site/alice2/x.txt":    "neighbour",
		"site/alice/ok.txt":    "mine",
		"site/alice/d/in.txt":  "mine too",
		"site/alice/d/.keep/x": "",
	}
	for k, v := range outside {
		put(t, client, bucket, k, v)
	}
	fsys, err := s.Open("/alice", false)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 256)
	for _, name := range []string{
		"../secret.txt", "../../secret.txt", "/../../../secret.txt", "..//bob/secret.txt", "d/../../bob/secret.txt",
		"//secret.txt", "/./../alice2/x.txt", "../alice2/x.txt", `..\bob\secret.txt`, "/" + long, "d/" + long + "/x",
		strings.Repeat("a/", 600) + "x", "bad\xffutf8", "nul\x00name",
	} {
		t.Run("the name "+strings.ToValidUTF8(name[:min(len(name), 40)], "?")+" stays inside", func(t *testing.T) {
			if _, err := fsys.Stat(name); err == nil && !strings.Contains(name, "secret") && !strings.Contains(name, "alice2") {
				t.Logf("stat %q works (inside the home)", name)
			}
			for _, err := range []error{
				func() error { f, err := fsys.Open(name); closeFile(f); return err }(),
				fsys.Remove(name),
				fsys.Rename(name, "/stolen.txt"),
				fsys.Rename("/ok.txt", name),
				fsys.Mkdir(name, 0o755),
				fsys.MkdirAll(name, 0o755),
				func() error {
					f, err := fsys.Create(name)
					if err == nil {
						_, _ = io.WriteString(f, "planted")
						err = f.Close()
					}
					return err
				}(),
			} {
				if err != nil {
					checkErrText(t, s, err)
				}
			}
			// Put back what a rename may have moved, inside the home.
			if object(t, client, bucket, "site/alice/ok.txt") == "<absent>" {
				put(t, client, bucket, "site/alice/ok.txt", "mine")
			}
			for k, v := range outside {
				if strings.HasPrefix(k, "site/alice/") {
					continue
				}
				if got := object(t, client, bucket, k); got != v {
					t.Errorf("%s holds %q, want %q", k, got, v)
				}
			}
			for _, k := range keys(t, client, bucket) {
				if _, ok := outside[k]; !ok && !strings.HasPrefix(k, "site/alice/") {
					t.Errorf("key %q appeared outside the home", k)
				}
			}
		})
	}

	t.Run("long and invalid names are refused with 553 when created", func(t *testing.T) {
		for _, name := range []string{"/" + long, strings.Repeat("a/", 600) + "x", "bad\xffutf8"} {
			if _, err := fsys.Create(name); !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
				t.Errorf("create %q: got %v, want ErrFileNameNotAllowed", name[:20], err)
			}
			if _, err := fsys.Stat(name); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %q: got %v, want ErrNotExist", name[:20], err)
			}
		}
	})

	t.Run("RemoveAll stays below the home", func(t *testing.T) {
		if err := fsys.RemoveAll("/d"); err != nil {
			t.Fatal(err)
		}
		for k := range outside {
			if strings.HasPrefix(k, "site/alice/d/") {
				if object(t, client, bucket, k) != "<absent>" {
					t.Errorf("%s survived", k)
				}
			} else if object(t, client, bucket, k) == "<absent>" {
				t.Errorf("%s was removed", k)
			}
		}
	})
}

func closeFile(f afero.File) {
	if f != nil {
		_ = f.Close()
	}
}

// TestHiddenUploads checks that names starting with vfs.TempPrefix are
// neither listed nor reachable, as on disk.
func TestHiddenUploads(t *testing.T) {
	t.Parallel()
	s, client := testStore(t, "")
	bucket := s.bucket
	temp := vfs.TempPrefix + "0123456789abcdef"
	put(t, client, bucket, "home/"+temp, "partial")
	put(t, client, bucket, "home/d/"+temp, "partial")
	put(t, client, bucket, "home/"+temp+"dir/x", "partial")
	put(t, client, bucket, "home/d/real.txt", "real")
	fsys, _ := s.Open("home", false)

	if got := names(t, fsys, "/"); !slices.Equal(got, []string{"d"}) {
		t.Errorf("listing of / shows %q", got)
	}
	if got := names(t, fsys, "/d"); !slices.Equal(got, []string{"real.txt"}) {
		t.Errorf("listing of /d shows %q", got)
	}
	for _, name := range []string{"/" + temp, "/d/" + temp, "/" + temp + "dir/x"} {
		for op, err := range map[string]error{
			"stat":   func() error { _, err := fsys.Stat(name); return err }(),
			"open":   func() error { f, err := fsys.Open(name); closeFile(f); return err }(),
			"remove": fsys.Remove(name),
			"rename": fsys.Rename(name, "/x"),
		} {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s %s: got %v, want ErrNotExist", op, name, err)
			}
		}
		for op, err := range map[string]error{
			"create":    func() error { f, err := fsys.Create(name); closeFile(f); return err }(),
			"mkdir":     fsys.Mkdir(name, 0o755),
			"rename to": fsys.Rename("/d/real.txt", name),
		} {
			if !errors.Is(err, ftpserver.ErrFileNameNotAllowed) {
				t.Errorf("%s %s: got %v, want ErrFileNameNotAllowed", op, name, err)
			}
		}
		if err := fsys.RemoveAll(name); err != nil {
			t.Errorf("RemoveAll %s: %v", name, err)
		}
	}
	if got := len(keys(t, client, bucket)); got != 4 {
		t.Errorf("%d keys left, want 4: %q", got, keys(t, client, bucket))
	}
}
