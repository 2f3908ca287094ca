package s3_test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/server"
	"wharf/vfs/s3"
)

// The end-to-end suite: real wharf servers whose files live in a MinIO
// bucket, driven by a real FTP client over loopback. It makes the checks
// that server/server_test.go makes on disk.

const password = "s3cret-pass"

var passwordHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}

	return string(h)
}()

// nextPassive hands each server its own passive ports in 29000-29799, a
// range no other package's tests use (server's 20000-25999, cmd/wharf's
// 27000-28999), below Linux's ephemeral ports.
var nextPassive atomic.Int32

func passiveRange() (int, int) {
	start := 29000 + int(nextPassive.Add(1)%40)*20

	return start, start + 19
}

// site is a bucket laid out as an operator would: anonymous users get
// "/pub", alice "/alice" (read-write, write-only or read-only as the test
// asks) and bob "/bob", none of which can see the others.
type site struct {
	opts   s3.Options
	client *minio.Client
	big    []byte // /pub/big.bin
}

func newSite(t *testing.T) *site {
	t.Helper()
	opts, client := s3.TestBucket(t)
	opts.Prefix = "ftp"
	st := &site{opts: opts, client: client, big: ftptest.RandomBytes(1 << 20)}
	for key, content := range map[string]string{
		"ftp/pub/README.txt":         "hello from wharf\n",
		"ftp/pub/big.bin":            string(st.big),
		"ftp/pub/été ünïcode.txt":    "utf-8 name\n",
		"ftp/pub/sub/":               "",
		"ftp/alice/README.txt":       "hello from wharf\n",
		"ftp/alice/pub/lf.txt":       "line one\nline two\n",
		"ftp/alice/sub/":             "",
		"ftp/bob/secret.txt":         "secret",
		"secret-outside-prefix.txt":  "secret",
		"ftp/alice-twin/neighbour.x": "neighbour",
	} {
		s3.Put(t, client, opts.Bucket, key, content)
	}

	return st
}

func (st *site) object(t *testing.T, key string) string {
	t.Helper()

	return s3.Object(t, st.client, st.opts.Bucket, "ftp/"+key)
}

// wharf is a running server on 127.0.0.1 with the site as its storage.
type wharf struct {
	addr string
	logs *observer.ObservedLogs
}

// start starts a wharf of its own (with its own Store) on the site, with
// alice's access as given, stopped when the test ends.
func (st *site) start(t *testing.T, access auth.Access) *wharf {
	t.Helper()
	store, err := s3.New(context.Background(), st.opts)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() }) // after the server's shutdown, registered below
	accounts, err := auth.New(auth.Options{
		Users:         []auth.User{{Name: "alice", PasswordHash: passwordHash, Home: "/alice", Access: access}},
		Anonymous:     true,
		AnonymousRoot: "/pub",
	})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := passiveRange()
	core, logs := observer.New(zap.DebugLevel)
	srv, err := server.New(server.Options{
		Listen:           "127.0.0.1:0",
		PassivePortStart: lo,
		PassivePortEnd:   hi,
		IdleTimeout:      time.Minute,
		MaxClients:       100,
		MaxClientsPerIP:  50,
		Banner:           "wharf on s3",
		AtomicUploads:    true,
		Storage: func(home string, atomic bool) (server.Root, error) {
			return store.Open(home, atomic)
		},
	}, accounts, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	return &wharf{addr: srv.Addr().String(), logs: logs}
}

// dial connects the library client and logs in.
func (w *wharf) dial(t *testing.T, user string, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()

	return ftptest.Login(t, w.addr, user, password, opts...)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ftptest.WaitFor(t, 10*time.Second, cond)
}

// raw opens a raw control connection and logs in as user.
func (w *wharf) raw(t *testing.T, user string) *ftptest.Ctl {
	t.Helper()
	c := ftptest.Dial(t, w.addr, nil)
	c.Login(user, password)

	return c
}

func TestAnonymousListAndDownload(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.ReadWrite)

	for _, tc := range []struct {
		name string
		opts []ftp.DialOption
	}{
		{"over EPSV", nil},
		{"over PASV", []ftp.DialOption{ftp.DialWithDisabledEPSV(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, user := range []string{"anonymous", "ftp"} {
				c := w.dial(t, user, tc.opts...)
				entries := ftptest.List(t, c, "/")
				got := map[string]*ftp.Entry{}
				for _, e := range entries {
					got[e.Name] = e
				}
				for name, typ := range map[string]ftp.EntryType{
					"README.txt": ftp.EntryTypeFile, "big.bin": ftp.EntryTypeFile,
					"été ünïcode.txt": ftp.EntryTypeFile, "sub": ftp.EntryTypeFolder,
				} {
					if e := got[name]; e == nil || e.Type != typ {
						t.Errorf("LIST / lacks %q as type %v: %v", name, typ, got[name])
					}
				}
				if e := got["big.bin"]; e != nil && e.Size != uint64(len(st.big)) {
					t.Errorf("big.bin listed with size %d", e.Size)
				}
				if len(got) != 4 {
					t.Errorf("LIST / shows %d entries, want 4", len(got))
				}
				names, err := c.NameList("/")
				if err != nil || len(names) != 4 {
					t.Errorf("NLST: %q, %v", names, err)
				}
				if got := ftptest.Retr(t, c, "/big.bin"); ftptest.Sum(got) != ftptest.Sum(st.big) {
					t.Fatalf("downloaded %d bytes with a different checksum", len(got))
				}
				if got := ftptest.Retr(t, c, "/été ünïcode.txt"); string(got) != "utf-8 name\n" {
					t.Fatalf("UTF-8 name: got %q", got)
				}
				if size, err := c.FileSize("/big.bin"); err != nil || size != int64(len(st.big)) {
					t.Errorf("SIZE: %d, %v", size, err)
				}
			}
		})
	}
}

func TestReadWriteUser(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.ReadWrite)
	c := w.dial(t, "alice")
	payload := ftptest.RandomBytes(300_000)

	t.Run("upload", func(t *testing.T) {
		if err := c.Stor("/up.bin", bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}
		if got := st.object(t, "alice/up.bin"); ftptest.Sum([]byte(got)) != ftptest.Sum(payload) {
			t.Fatalf("uploaded object differs (%d bytes)", len(got))
		}
	})

	t.Run("upload of several parts", func(t *testing.T) {
		big := ftptest.RandomBytes(40 << 20)
		if err := c.Stor("/pub/big.bin", bytes.NewReader(big)); err != nil {
			t.Fatal(err)
		}
		if got := ftptest.Retr(t, c, "/pub/big.bin"); ftptest.Sum(got) != ftptest.Sum(big) {
			t.Fatalf("downloaded %d bytes with a different checksum", len(got))
		}
	})

	t.Run("resume an upload with REST", func(t *testing.T) {
		s3.Put(t, st.client, st.opts.Bucket, "ftp/alice/part.bin", string(payload[:100_000]))
		if err := c.StorFrom("/part.bin", bytes.NewReader(payload[100_000:]), 100_000); err != nil {
			t.Fatal(err)
		}
		if got := st.object(t, "alice/part.bin"); ftptest.Sum([]byte(got)) != ftptest.Sum(payload) {
			t.Fatalf("resumed object differs: %d bytes", len(got))
		}
	})

	t.Run("resume a download with REST", func(t *testing.T) {
		r, err := c.RetrFrom("/up.bin", 250_000)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r)
		_ = r.Close()
		if !bytes.Equal(buf.Bytes(), payload[250_000:]) {
			t.Fatalf("got %d bytes from offset 250000, want %d", buf.Len(), len(payload)-250_000)
		}
	})

	t.Run("append", func(t *testing.T) {
		if err := c.Append("/README.txt", strings.NewReader("more\n")); err != nil {
			t.Fatal(err)
		}
		if got := st.object(t, "alice/README.txt"); got != "hello from wharf\nmore\n" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("rename", func(t *testing.T) {
		if err := c.Rename("/up.bin", "/pub/moved.bin"); err != nil {
			t.Fatal(err)
		}
		if st.object(t, "alice/up.bin") != "<absent>" || st.object(t, "alice/pub/moved.bin") == "<absent>" {
			t.Fatal("the object did not move")
		}
	})

	t.Run("mkdir, cwd and rmdir", func(t *testing.T) {
		if err := c.MakeDir("/newdir"); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangeDir("newdir"); err != nil {
			t.Fatal(err)
		}
		if err := c.Stor("rel.txt", strings.NewReader("relative")); err != nil {
			t.Fatal(err)
		}
		if got := st.object(t, "alice/newdir/rel.txt"); got != "relative" {
			t.Fatalf("relative STOR landed elsewhere: %q", got)
		}
		if err := c.RemoveDir("/newdir"); err == nil {
			t.Fatal("RMD of a non-empty folder succeeded")
		}
		if err := c.Delete("rel.txt"); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangeDirToParent(); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveDir("/newdir"); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangeDir("/newdir"); err == nil {
			t.Fatal("folder still there")
		}
	})

	t.Run("DELE refuses a folder", func(t *testing.T) {
		if err := c.Delete("/pub"); err == nil {
			t.Fatal("DELE removed a folder")
		}
	})

	t.Run("SITE CHMOD and MFMT are refused", func(t *testing.T) {
		raw := w.raw(t, "alice")
		if code, msg := raw.Cmd("SITE CHMOD 600 /README.txt"); code != 550 {
			t.Errorf("SITE CHMOD: got %d %q, want 550", code, msg)
		}
		if code, msg := raw.Cmd("MFMT 20200102030405 /README.txt"); code != 550 || !strings.Contains(msg, "modification times") {
			t.Errorf("MFMT: got %d %q, want 550 explaining why", code, msg)
		}
	})

	t.Run("REST beyond the end of the file is refused", func(t *testing.T) {
		raw := w.raw(t, "alice")
		raw.Must(200, "TYPE I")
		raw.Must(350, "REST 1000000000000")
		raw.DialPasv()
		if code, msg := raw.Cmd("STOR /pub/lf.txt"); code != 550 || !strings.Contains(msg, "beyond the end") {
			t.Fatalf("got %d %q, want 550 beyond the end", code, msg)
		}
		if got := st.object(t, "alice/pub/lf.txt"); got != "line one\nline two\n" {
			t.Fatalf("file changed: %q", got)
		}
	})
}

// writeCommands are commands a read-only session must refuse with 550.
var writeCommands = []string{
	"STOR /new.txt",
	"APPE /README.txt",
	"DELE /README.txt",
	"RMD /sub",
	"MKD /made",
	"RNFR /README.txt",
	"SITE CHMOD 777 /README.txt",
	"MFMT 20200102030405 /README.txt",
}

func TestReadOnlyRefusals(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.ReadOnly)
	before := s3.Keys(t, st.client, st.opts.Bucket)

	for _, user := range []string{"anonymous", "alice"} {
		t.Run(user+" is refused every change with 550", func(t *testing.T) {
			c := w.raw(t, user)
			for _, command := range writeCommands {
				if strings.HasPrefix(command, "STOR") || strings.HasPrefix(command, "APPE") {
					c.DialPasv()
				}
				if code, msg := c.Cmd("%s", command); code != 550 || !strings.Contains(msg, "read-only") {
					t.Errorf("%s: got %d %q, want 550 saying read-only", command, code, msg)
				}
			}
		})
	}
	if after := s3.Keys(t, st.client, st.opts.Bucket); !slices.Equal(before, after) {
		t.Errorf("keys changed: %q -> %q", before, after)
	}
	if got := st.object(t, "pub/README.txt"); got != "hello from wharf\n" {
		t.Errorf("README changed: %q", got)
	}
}

func TestWriteOnlyUser(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.WriteOnly)
	c := w.dial(t, "alice")
	if err := c.Stor("/drop.txt", strings.NewReader("dropped")); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if got := st.object(t, "alice/drop.txt"); got != "dropped" {
		t.Fatalf("got %q", got)
	}
	if err := c.MakeDir("/box"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}

	raw := w.raw(t, "alice")
	for _, command := range []string{"RETR /README.txt", "LIST /", "NLST /", "MLSD /"} {
		raw.DialPasv()
		if code, msg := raw.Cmd("%s", command); code < 450 || code > 550 || !strings.Contains(msg, "write-only") {
			t.Errorf("%s: got %d %q, want a refusal saying write-only", command, code, msg)
		}
	}
	for _, command := range []string{"DELE /README.txt", "RNFR /README.txt"} {
		if code, msg := raw.Cmd("%s", command); code != 550 || !strings.Contains(msg, "write-only") {
			t.Errorf("%s: got %d %q, want 550 saying write-only", command, code, msg)
		}
	}
}

// TestConfinement tries to reach keys outside the session's home through
// "..", absolute names and other users' names.
func TestConfinement(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.ReadWrite)
	before := s3.Keys(t, st.client, st.opts.Bucket)

	for _, user := range []string{"anonymous", "alice"} {
		t.Run(user+" stays in the home", func(t *testing.T) {
			c := w.raw(t, user)
			for _, command := range []string{
				"RETR ../bob/secret.txt",
				"RETR /../bob/secret.txt",
				"RETR ../../secret-outside-prefix.txt",
				"RETR ../../../../../../etc/passwd",
				"RETR /../alice-twin/neighbour.x",
				"RETR ..%2fbob%2fsecret.txt",
				"STOR ../bob/planted.txt",
				"STOR /../../planted.txt",
			} {
				data := c.DialPasv()
				code, msg := c.Cmd("%s", command)
				if strings.HasPrefix(command, "STOR /../../") && user == "alice" {
					// "/../../planted.txt" is alice's own "/planted.txt".
					if code != 150 {
						t.Fatalf("%s: got %d %q, want 150", command, code, msg)
					}
					_, _ = data.Write([]byte("planted"))
					_ = data.Close()
					c.Expect(226)

					continue
				}
				if code != 550 && code != 553 {
					t.Errorf("%s: got %d %q, want 550", command, code, msg)
				}
				for _, secret := range []string{st.opts.Bucket, "ftp/", strings.TrimPrefix(st.opts.Endpoint, "http://")} {
					if strings.Contains(msg, secret) {
						t.Errorf("%s: reply %q shows %q", command, msg, secret)
					}
				}
			}
			c.Must(250, "CWD ../../..")
			if msg := c.Must(257, "PWD"); !strings.Contains(msg, `"/"`) {
				t.Errorf("CWD .. climbed above the home: %q", msg)
			}
			if code, _ := c.Cmd("CWD /../bob"); code != 550 {
				t.Errorf("CWD into bob's home: got %d", code)
			}
		})
	}
	after := s3.Keys(t, st.client, st.opts.Bucket)
	want := append(slices.Clone(before), "ftp/alice/planted.txt")
	slices.Sort(want)
	if !slices.Equal(after, want) {
		t.Errorf("keys %q, want %q", after, want)
	}
}

// TestInterruptedUploadLeavesNothing cuts uploads after more than one part
// went to the store: no object appears and no multipart upload is left.
func TestInterruptedUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	w := st.start(t, auth.ReadWrite)

	for i, tc := range ftptest.Cuts() {
		t.Run(tc.Name+" leaves no object", func(t *testing.T) {
			c := w.raw(t, "alice")
			c.Must(200, "TYPE I")
			data := c.DialPasv()
			c.Must(150, "STOR /half.bin")
			if _, err := data.Write(ftptest.RandomBytes(20 << 20)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			tc.Kill(c, data)
			waitFor(t, func() bool { return len(w.logs.FilterMessage("transfer incomplete").All()) == i+1 })
			if got := st.object(t, "alice/half.bin"); got != "<absent>" {
				t.Fatalf("an object of %d bytes appeared", len(got))
			}
			waitFor(t, func() bool { return len(s3.Incomplete(t, st.client, st.opts.Bucket)) == 0 })
		})
	}

	t.Run("a cut resumed upload keeps what was there", func(t *testing.T) {
		c := w.raw(t, "alice")
		c.Must(200, "TYPE I")
		c.Must(350, "REST 17")
		data := c.DialPasv()
		c.Must(150, "STOR /README.txt")
		_, _ = data.Write([]byte("abc"))
		time.Sleep(100 * time.Millisecond)
		_ = data.(*net.TCPConn).SetLinger(0)
		_ = data.Close()
		waitFor(t, func() bool { return len(w.logs.FilterMessage("transfer incomplete").All()) == 4 })
		if got := st.object(t, "alice/README.txt"); got != "hello from wharf\n" {
			t.Fatalf("resumed file changed: %q", got)
		}
	})
}

// TestTwoInstancesOneBucket runs two wharf servers on one bucket, as a
// load-balanced deployment does: what one stores, the other serves.
func TestTwoInstancesOneBucket(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	a, b := st.start(t, auth.ReadWrite), st.start(t, auth.ReadWrite)
	payload := ftptest.RandomBytes(20<<20 + 123)

	ca := a.dial(t, "alice")
	if err := ca.MakeDir("/shared"); err != nil {
		t.Fatal(err)
	}
	if err := ca.Stor("/shared/data.bin", bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}

	cb := b.dial(t, "alice")
	entries := ftptest.List(t, cb, "/shared")
	if len(entries) != 1 || entries[0].Name != "data.bin" || entries[0].Size != uint64(len(payload)) {
		t.Fatalf("B lists %v", entries)
	}
	if got := ftptest.Retr(t, cb, "/shared/data.bin"); ftptest.Sum(got) != ftptest.Sum(payload) {
		t.Fatalf("B serves %d bytes with another checksum", len(got))
	}
	anon := b.dial(t, "anonymous")
	if got := ftptest.Retr(t, anon, "/README.txt"); string(got) != "hello from wharf\n" {
		t.Fatalf("B serves the anonymous tree wrong: %q", got)
	}

	if err := cb.Delete("/shared/data.bin"); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.FileSize("/shared/data.bin"); err == nil {
		t.Fatal("A still sees the file B deleted")
	}
	if names, err := ca.NameList("/shared"); err != nil || len(names) != 0 {
		t.Fatalf("A lists %q, %v; want an empty folder", names, err)
	}
}
