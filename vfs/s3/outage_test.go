package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/internal/miniotest"
	"wharf/internal/testenv"
	"wharf/server"
	"wharf/vfs/s3"
)

// The outage suite: a MinIO of the test's own, killed with SIGKILL and
// started again on the same port and data, under a wharf that keeps
// serving. Replies during the outage are 4xx, transfers cut by it end with
// 451 and publish nothing, and everything works again once the store is
// back, with no session or goroutine left behind (TestMain checks the
// goroutines).

// outage is a wharf on a MinIO that the test can kill and restart.
type outage struct {
	minio  *miniotest.Server
	client *minio.Client
	bucket string
	store  *s3.Store
	srv    *server.Server
	addr   string
	logs   *observer.ObservedLogs
	big    []byte // /big.bin, in alice's home and the anonymous one
}

// rate is the bandwidth of each session, so that a transfer of big (32
// MiB) takes 8 s: long enough to take the store away in the middle, with
// more left than the sockets between the store and the client hold (a
// store killed still sends what its socket holds).
const rate = 4 << 20

func startOutage(t *testing.T) *outage {
	t.Helper()
	bin, err := miniotest.Binary()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	ms, err := miniotest.Start(t.Context(), bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Kill)
	o := &outage{minio: ms, bucket: "outage", big: ftptest.RandomBytes(32 << 20)}
	if err := ms.MakeBucket(t.Context(), o.bucket); err != nil {
		t.Fatal(err)
	}
	if o.client, err = ms.Client(); err != nil {
		t.Fatal(err)
	}
	for key, content := range map[string][]byte{
		"alice/big.bin": o.big, "alice/a.txt": []byte("a\n"), "alice/old.bin": []byte("the old content\n"),
		"alice/sub/": nil, "pub/big.bin": o.big,
	} {
		if _, err := o.client.PutObject(t.Context(), o.bucket, key, bytes.NewReader(content), int64(len(content)),
			minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	o.logs = logs
	o.store, err = s3.New(t.Context(), s3.Options{
		Endpoint: ms.Endpoint, Region: "us-east-1", Bucket: o.bucket, AccessKey: ms.AccessKey, SecretKey: ms.SecretKey,
		PathStyle: true, Log: log.Named("s3"),
	})
	if err != nil {
		t.Fatal(err)
	}
	stopProbes := o.store.StartProbes()
	t.Cleanup(stopProbes)

	accounts, err := auth.New(auth.Options{
		Users: []auth.User{{
			Name: "alice", PasswordHash: passwordHash, Home: "/alice", Access: auth.ReadWrite,
			DownloadLimit: rate, UploadLimit: rate,
		}},
		Anonymous:              true,
		AnonymousRoot:          "/pub",
		AnonymousDownloadLimit: rate,
	})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := passiveRange()
	o.srv, err = server.New(server.Options{
		Listen: "127.0.0.1:0", PassivePortStart: lo, PassivePortEnd: hi, IdleTimeout: time.Minute,
		MaxClients: 100, MaxClientsPerIP: 50, Banner: "wharf on s3", AtomicUploads: true,
		DataTimeout: 30 * time.Second,
		Storage: func(home string, atomic bool) (server.Root, error) {
			return o.store.Open(home, atomic)
		},
	}, accounts, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- o.srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := o.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	o.addr = o.srv.Addr().String()

	return o
}

// kill stops the store as a crash would, and waits until wharf knows.
func (o *outage) kill(t *testing.T) {
	t.Helper()
	o.minio.Kill()
	ftptest.WaitFor(t, 10*time.Second, func() bool { up, _ := o.store.Health(); return !up })
}

// restart starts the store again and waits until wharf sees it answer
// (its probes do, within a second): the store is back from there.
func (o *outage) restart(t *testing.T) {
	t.Helper()
	if err := o.minio.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	ftptest.WaitFor(t, 10*time.Second, func() bool { up, _ := o.store.Health(); return up })
}

// login opens a raw control connection as alice, in binary mode.
func (o *outage) login(t *testing.T) *ftptest.Ctl {
	t.Helper()
	c := ftptest.Dial(t, o.addr, nil)
	c.Login("alice", password)
	c.Must(200, "TYPE I")

	return c
}

// object returns a key's content, or "<absent>".
func (o *outage) object(t *testing.T, key string) string {
	t.Helper()

	return s3.Object(t, o.client, o.bucket, key)
}

// TestStoreOutage takes the store away under idle sessions, downloads and
// uploads, and brings it back.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	o := startOutage(t)

	t.Run("idle sessions get 450 while the store is down, and work again after", func(t *testing.T) {
		// One session per command, so that their retries run at once.
		commands := []string{
			"SIZE /a.txt", "MDTM /a.txt", "MLST /a.txt", "CWD /sub", "STAT /sub",
			"LIST /sub", "NLST /sub", "MLSD /sub", "RETR /a.txt", "STOR /new.txt",
		}
		sessions := make([]*ftptest.Ctl, len(commands))
		for i := range commands {
			sessions[i] = o.login(t)
		}
		o.kill(t)

		var wg sync.WaitGroup
		for i, cmd := range commands {
			wg.Go(func() {
				c := sessions[i]
				if verb := strings.Fields(cmd)[0]; verb == "LIST" || verb == "NLST" || verb == "MLSD" ||
					verb == "RETR" || verb == "STOR" {
					c.DialPasv()
				}
				start := time.Now()
				code, msg := c.Cmd("%s", cmd)
				if code != 450 || !strings.Contains(msg, "Storage unavailable, try again later.") {
					t.Errorf("%s: got %d %q, want 450 saying the storage is unavailable", cmd, code, msg)
				}
				if took := time.Since(start); took > 10*time.Second {
					t.Errorf("%s: answered after %s", cmd, took)
				}
			})
		}
		wg.Wait()

		o.restart(t)
		for i, c := range sessions {
			if i < 4 { // the commands without a data connection
				if code, msg := c.Cmd("%s", commands[i]); code/100 != 2 {
					t.Errorf("%s after the store came back: %d %q", commands[i], code, msg)
				}
			}
			c.Must(221, "QUIT")
		}
	})

	t.Run("a download cut by the outage gets 451", func(t *testing.T) {
		c := o.login(t)
		data := c.DialPasv()
		c.Must(150, "RETR /big.bin")
		if _, err := io.ReadFull(data, make([]byte, rate/2)); err != nil {
			t.Fatal(err)
		}
		o.kill(t)
		start := time.Now()
		_, _ = io.Copy(io.Discard, data)
		code, msg := c.Read()
		if code != 451 || !strings.Contains(msg, "Storage unavailable") {
			t.Errorf("got %d %q, want 451 saying the storage is unavailable", code, msg)
		}
		t.Logf("451 came %s after the store was seen down", time.Since(start).Round(time.Millisecond))
		c.Must(200, "NOOP") // the session goes on
		o.restart(t)
		c.Must(213, "SIZE /big.bin")
	})

	t.Run("an upload cut by the outage gets 451 and publishes nothing", func(t *testing.T) {
		for _, name := range []string{"new.bin", "old.bin"} {
			c := o.login(t)
			data := c.DialPasv()
			c.Must(150, "STOR /%s", name)
			sent := make(chan error, 1)
			go func() {
				_, err := io.Copy(data, bytes.NewReader(o.big)) // two parts, the first sent at 4 s
				_ = data.Close()
				sent <- err
			}()
			time.Sleep(time.Second)
			o.kill(t)
			code, msg := c.Read()
			if code != 451 {
				t.Errorf("STOR %s: got %d %q, want 451", name, code, msg)
			}
			_ = data.Close()
			<-sent
			o.restart(t)
			want := map[string]string{"new.bin": "<absent>", "old.bin": "the old content\n"}[name]
			if got := o.object(t, "alice/"+name); got != want {
				t.Errorf("after a cut upload, alice/%s holds %d bytes, want %q", name, len(got), want)
			}
		}
	})

	t.Run("lftp with retries completes a download across the outage", func(t *testing.T) {
		lftp := testenv.Tool(t, "lftp")
		out := filepath.Join(t.TempDir(), "big.bin")
		host, port, _ := net.SplitHostPort(o.addr)
		script := fmt.Sprintf("set net:max-retries 5; set net:reconnect-interval-base 1; set net:timeout 10; "+
			"set ftp:passive-mode on; open -u anonymous,x -p %s %s; get /big.bin -o %s", port, host, out)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, lftp, "-c", script)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		time.Sleep(time.Second) // an eighth of the file
		o.kill(t)
		time.Sleep(4 * time.Second) // longer than wharf's retries: lftp gets 4xx
		o.restart(t)

		if err := <-done; err != nil {
			t.Fatalf("lftp: %v\n%s", err, stderr.String())
		}
		got, err := os.ReadFile(out)
		if err != nil || ftptest.Sum(got) != ftptest.Sum(o.big) {
			t.Fatalf("lftp downloaded %d bytes (%v), not the object's %d", len(got), err, len(o.big))
		}
	})

	t.Run("no session is left behind", func(t *testing.T) {
		ftptest.WaitFor(t, 10*time.Second, func() bool { return len(o.srv.Sessions()) == 0 })
	})

	// Each outage was logged once, not once per request.
	if n := o.logs.FilterMessage("storage unavailable").FilterLevelExact(zap.WarnLevel).Len(); n != 5 {
		t.Errorf("%d warnings \"storage unavailable\" for 5 outages", n)
	}
}
