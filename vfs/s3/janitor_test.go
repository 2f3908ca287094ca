package s3

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/spf13/afero"

	"wharf/internal/ftptest"
)

// uploadsOf lists the incomplete uploads of one key, by exact key: the one
// listing every store answers.
func uploadsOf(t *testing.T, core minio.Core, bucket, key string) []string {
	t.Helper()
	res, err := core.ListMultipartUploads(context.Background(), bucket, key, "", "", "", 1000)
	if err != nil {
		t.Fatalf("list uploads of %s: %v", key, err)
	}
	var ids []string
	for _, up := range res.Uploads {
		if up.Key == key {
			ids = append(ids, up.UploadID)
		}
	}

	return ids
}

// openMultipart opens name for writing and sends a part and a byte, so
// that a multipart upload runs, and leaves it open.
func openMultipart(t *testing.T, fsys afero.Fs, name string) afero.File {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(ftptest.RandomBytes(partSize + 1)); err != nil {
		t.Fatal(err)
	}

	return f
}

// discard ends an upload left open without completing it.
func discard(f afero.File) {
	f.(*upload).TransferError(io.ErrUnexpectedEOF)
	_ = f.Close()
}

// TestJanitorAbortsAbandonedUploads: a Store stops (as if killed) in the
// middle of an upload; another Store's janitor aborts it once its journal
// entry is older than the age, and leaves alone an upload that a live
// Store keeps running past that age, and keys outside its prefix. With an
// empty prefix MinIO also lists the uploads it knows of, so one left by
// another program goes too; with a prefix, MinIO lists nothing but exact
// keys, and only the journal finds uploads (the caveat the README states).
func TestJanitorAbortsAbandonedUploads(t *testing.T) {
	t.Parallel()
	const age = 4 * time.Second
	for _, prefix := range []string{"", "site"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			t.Parallel()
			opts, client := testBucket(t)
			opts.Prefix = prefix
			core := minio.Core{Client: client}
			p := cleanPrefix(prefix)
			ctx := context.Background()
			start := func(age time.Duration) *Store {
				o := opts
				o.AbandonedUploadAge = age
				s, err := New(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })

				return s
			}

			dead := start(age)
			deadFs, _ := dead.Open("/home", true)
			f := openMultipart(t, deadFs, "/dead.bin")
			_ = dead.Close() // its janitor stops rewriting the journal, as if wharf were killed
			t.Cleanup(func() { discard(f) })
			deadKey := p + "home/dead.bin"
			waitUntil(t, func() bool { return len(uploadsOf(t, core, opts.Bucket, deadKey)) == 1 })

			stray, err := core.NewMultipartUpload(ctx, opts.Bucket, p+"home/stray.bin", minio.PutObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var outside string
			if prefix != "" {
				if outside, err = core.NewMultipartUpload(ctx, opts.Bucket, "elsewhere/x.bin", minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
			}

			live := start(age)
			liveFs, _ := live.Open("/home", true)
			g := openMultipart(t, liveFs, "/live.bin")
			t.Cleanup(func() { discard(g) })

			sweeper := start(age)
			deadline := time.Now().Add(age + 20*time.Second)
			for len(uploadsOf(t, core, opts.Bucket, deadKey)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the dead Store's upload is still there %s after it stopped", age+20*time.Second)
				}
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(2 * sweepEvery(age)) // more passes, past the age of the live upload

			if ids := uploadsOf(t, core, opts.Bucket, p+"home/live.bin"); len(ids) != 1 {
				t.Errorf("the live upload was aborted: %v", ids)
			}
			if prefix != "" {
				if ids := uploadsOf(t, core, opts.Bucket, "elsewhere/x.bin"); len(ids) != 1 || ids[0] != outside {
					t.Errorf("an upload outside the prefix was touched: %v", ids)
				}
			}
			strayLeft := len(uploadsOf(t, core, opts.Bucket, p+"home/stray.bin"))
			want := int64(1)
			switch {
			case prefix == "" && strayLeft != 0:
				t.Errorf("with an empty prefix, the stray upload %s was not aborted", stray)
			case prefix == "":
				want = 2
			case strayLeft != 1:
				t.Errorf("with a prefix, MinIO should not list the stray upload: %d left", strayLeft)
			}
			// Two janitors sweep the same bucket: when both abort one upload
			// at the same moment, the store answers both with success and
			// each counts it (the counter is per instance). What was aborted
			// is checked on the bucket above; each upload counts once or twice.
			if got := live.jan.stats().abandoned + sweeper.jan.stats().abandoned; got < want || got > 2*want {
				t.Errorf("%d uploads counted as aborted, want %d (or up to %d with both janitors at once)", got, want, 2*want)
			}
			entries, err := sweeper.jan.journal(ctx)
			if err != nil || len(entries) != 1 {
				t.Errorf("journal %v (%v), want the live upload's entry only", entries, err)
			}
		})
	}
}

// TestJanitorRetriesFailedAborts: an upload cut while the store is
// unreachable cannot be aborted then; the janitor aborts it once the store
// answers again, and counts it.
func TestJanitorRetriesFailedAborts(t *testing.T) {
	t.Parallel()
	opts, client := testBucket(t)
	px := startSwitch(t, opts.Endpoint[len("http://"):])
	opts.Endpoint = "http://" + px.addr()
	opts.AbandonedUploadAge = time.Hour // retries do not wait for the age
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fsys, _ := s.Open("/", true)
	f := openMultipart(t, fsys, "/cut.bin")
	core := minio.Core{Client: client}
	waitUntil(t, func() bool { return len(uploadsOf(t, core, opts.Bucket, "cut.bin")) == 1 })

	px.set(false)
	f.(*upload).TransferError(errors.New("data connection lost"))
	if err := f.Close(); err != nil {
		t.Fatalf("close after TransferError: %v", err)
	}
	if st := s.jan.stats(); st.pending != 1 {
		t.Fatalf("%+v: want the failed abort pending", st)
	}
	px.set(true)

	deadline := time.Now().Add(30 * time.Second)
	for s.jan.stats().pending > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abort was not tried again within 30s of the store's return")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ids := uploadsOf(t, core, opts.Bucket, "cut.bin"); len(ids) != 0 {
		t.Errorf("uploads left: %v", ids)
	}
	if st := s.jan.stats(); st.retried != 1 {
		t.Errorf("%+v: want 1 retried", st)
	}
	entries, err := s.jan.journal(context.Background())
	if err != nil || len(entries) != 0 {
		t.Errorf("journal %v (%v), want it empty", entries, err)
	}
}

// switchProxy forwards TCP connections to the store while it is up; down,
// it cuts the connections and refuses new ones.
type switchProxy struct {
	l     net.Listener
	up    atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startSwitch(t *testing.T, target string) *switchProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l}
	p.up.Store(true)
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !p.up.Load() {
				_ = c.Close()

				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()

				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(s, c); _ = s.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, s); _ = c.Close() })
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		p.set(false)
		p.wg.Wait()
	})

	return p
}

func (p *switchProxy) addr() string { return p.l.Addr().String() }

// set turns the proxy up or down; down cuts every connection.
func (p *switchProxy) set(up bool) {
	p.up.Store(up)
	if up {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}
