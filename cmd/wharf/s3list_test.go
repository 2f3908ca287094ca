package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// listCounter stands between wharf and the S3 server and counts the
// listing requests that pass: pages (ListObjectsV2 asking for 1,000 keys, a
// folder's walk) apart from the one-key probes that tell whether a folder
// exists.
type listCounter struct {
	url   string
	pages atomic.Int64
	other atomic.Int64
}

func newListCounter(t *testing.T, endpoint string) *listCounter {
	t.Helper()

	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}

	lc := &listCounter{}
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the Host header the request was signed with
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("list-type") == "2" {
			if q.Get("max-keys") == "1000" {
				lc.pages.Add(1)
			} else {
				lc.other.Add(1)
			}
		}

		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	lc.url = srv.URL

	return lc
}

// putObjects stores n one-byte objects named prefix + "f00000"... in bucket,
// and removes them in batches when the test ends (before s3Bucket's cleanup,
// which removes what is left one object at a time).
func putObjects(t *testing.T, s3 testenv.S3, bucket, prefix string, n int) {
	t.Helper()

	u, err := url.Parse(s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}

	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true})
		for r := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
			t.Errorf("remove %s: %v", r.ObjectName, r.Err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	names := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for name := range names {
				if _, err := client.PutObject(ctx, bucket, name, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
					t.Errorf("put %s: %v", name, err)
				}
			}
		})
	}

	for i := range n {
		names <- fmt.Sprintf("%sf%05d", prefix, i)
	}

	close(names)
	wg.Wait()
}

// s3ListEnv is the environment of a wharf serving bucket through endpoint:
// anonymous sessions at /pub, alice (read-write, password "pw") at the top,
// so her home holds the anonymous root (shares_homes).
func s3ListEnv(t *testing.T, s3 testenv.S3, endpoint, bucket, passive string) []string {
	t.Helper()

	users := writeFile(t, t.TempDir(), "users.toml", userTOML(t, "alice", "pw", "/"))

	return []string{
		"WHARF_STORAGE_BACKEND=s3",
		"WHARF_STORAGE_ENDPOINT=" + endpoint,
		"WHARF_STORAGE_BUCKET=" + bucket,
		"WHARF_STORAGE_PATH_STYLE=true",
		"WHARF_STORAGE_ACCESS_KEY=" + s3.AccessKey,
		"WHARF_STORAGE_SECRET_KEY=" + s3.SecretKey,
		"WHARF_ANONYMOUS_ROOT=/pub",
		"WHARF_ANONYMOUS_SHARES_HOMES=true", // alice publishes what anonymous sessions list
		"WHARF_USERS_FILE=" + users,
		"WHARF_LISTEN=127.0.0.1:0",
		"WHARF_LOG_FORMAT=json",
		"WHARF_PASSIVE_PORTS=" + passive,
	}
}

// Ten sessions listing one prefix of 2,100 objects at once, by LIST, NLST
// and MLSD, anonymous at /big and alice at /pub/big, walk it once: three
// pages of 1,000 keys, whatever the command and the home.
func TestS3ListingsWalkAPrefixOnce(t *testing.T) {
	t.Parallel()

	s3, bucket := s3Bucket(t, "wharf-list-")
	putObjects(t, s3, bucket, "pub/big/", 2100)
	lc := newListCounter(t, s3.Endpoint)
	s := startRun(t, nil, s3ListEnv(t, s3, lc.url, bucket, "29100-29139"))

	const sessions = 10
	conns := make([]*ftp.ServerConn, sessions)
	for i := range conns {
		opts := []ftp.DialOption{ftp.DialWithDisabledMLSD(i%3 == 0)} // LIST
		if i%2 == 0 {
			conns[i] = ftptest.Login(t, s.addr, "anonymous", "x", opts...)
		} else {
			conns[i] = ftptest.Login(t, s.addr, "alice", "pw", opts...)
		}
	}

	lc.pages.Store(0)

	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			dir := "/big"
			if i%2 == 1 {
				dir = "/pub/big"
			}

			var n int
			if i%3 == 1 {
				names, err := c.NameList(dir)
				if err != nil {
					t.Errorf("NLST %s: %v", dir, err)
				}
				n = len(names)
			} else {
				entries, err := c.List(dir)
				if err != nil {
					t.Errorf("LIST %s: %v", dir, err)
				}
				n = len(slices.DeleteFunc(entries, func(e *ftp.Entry) bool { return e.Name == "." || e.Name == ".." }))
			}

			if n != 2100 {
				t.Errorf("session %d listed %d entries of %s, want 2100", i, n, dir)
			}
		})
	}

	wg.Wait()

	if pages := lc.pages.Load(); pages != 3 {
		t.Errorf("%d listings of one prefix asked for %d pages of keys, want 3: one walk", sessions, pages)
	}

	t.Logf("pages %d, one-key probes %d", lc.pages.Load(), lc.other.Load())
}

// Two wharf instances on one bucket. A change made through an instance is
// in that instance's listings at once, whichever home lists it; the other
// instance lists it once its cached listing of the folder expires, within
// listing.cache_ttl, and at once with cache_ttl = "0s".
func TestS3ListingFreshnessAcrossInstances(t *testing.T) {
	t.Parallel()

	s3, bucket := s3Bucket(t, "wharf-fresh-")
	putObjects(t, s3, bucket, "pub/", 3)

	const ttl = time.Second
	cached := startRun(t, nil, append(s3ListEnv(t, s3, s3.Endpoint, bucket, "29140-29159"),
		"WHARF_LISTING_CACHE_TTL="+ttl.String()))
	uncached := startRun(t, nil, append(s3ListEnv(t, s3, s3.Endpoint, bucket, "29160-29179"),
		"WHARF_LISTING_CACHE_TTL=0s"))

	lists := func(c *ftp.ServerConn, dir, name string) bool {
		t.Helper()

		names, err := c.NameList(dir)
		if err != nil {
			t.Fatalf("NLST %s: %v", dir, err)
		}

		return slices.Contains(names, path.Join(dir, name)) // NLST names them as asked: /pub/one.txt
	}

	aliceCached := ftptest.Login(t, cached.addr, "alice", "pw")
	anonCached := ftptest.Login(t, cached.addr, "anonymous", "x")
	aliceUncached := ftptest.Login(t, uncached.addr, "alice", "pw")

	// Both instances have listed the folder just before each upload.
	_ = lists(anonCached, "/", "-")
	_ = lists(aliceUncached, "/pub", "-")

	if err := aliceCached.Stor("/pub/one.txt", strings.NewReader("1")); err != nil {
		t.Fatal(err)
	}

	if !lists(anonCached, "/", "one.txt") {
		t.Error("an upload is not in its own instance's listing at once, from another home")
	}

	if !lists(aliceUncached, "/pub", "one.txt") {
		t.Error(`with cache_ttl = "0s", another instance's upload is not listed at once`)
	}

	_ = lists(anonCached, "/", "-")
	if err := aliceUncached.Stor("/pub/two.txt", strings.NewReader("2")); err != nil {
		t.Fatal(err)
	}

	stored := time.Now()
	for !lists(anonCached, "/", "two.txt") {
		if time.Since(stored) > ttl+2*time.Second { // one listing's time of slack, on a loaded machine
			t.Fatalf("another instance's upload is not listed %v after it ended, with cache_ttl = %q", time.Since(stored), ttl)
		}

		time.Sleep(50 * time.Millisecond)
	}

	t.Logf("another instance's upload listed after %v, cache_ttl %v", time.Since(stored).Round(time.Millisecond), ttl)
}
