package s3

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestHealth follows a store that goes away and comes back: real requests
// and probes tell the store's health, which /readyz and wharf_storage_up
// report, and failures are counted by operation and kind.
func TestHealth(t *testing.T) {
	t.Parallel()
	s, g := gatedStore(t)
	fsys, _ := s.Open("/", false)
	writeFile(t, fsys, "/a.txt", "a")

	up := func() float64 { return testutil.ToFloat64(s.metrics.up) }
	if ok, reason := s.Health(); !ok || reason != "" || up() != 1 {
		t.Fatalf("a store that answered: Health %t %q, wharf_storage_up %v", ok, reason, up())
	}

	g.down()
	if _, err := fsys.Stat("/a.txt"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stat: %v, want ErrUnavailable", err)
	}
	ok, reason := s.Health()
	if ok || !strings.Contains(reason, "connection refused") || up() != 0 {
		t.Errorf("after a refused request: Health %t %q, wharf_storage_up %v; want down, connection refused", ok, reason, up())
	}
	if strings.Contains(reason, g.addr) || strings.Contains(reason, s.bucket) {
		t.Errorf("the reason %q names the store: /readyz shows it to anyone", reason)
	}
	if n := testutil.ToFloat64(s.metrics.errors.WithLabelValues("stat", "unreachable")); n == 0 {
		t.Error("no failed stat counted")
	}
	if err := s.Check(t.Context()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), s.bucket) {
		t.Errorf("Check: %v, want ErrUnavailable naming the bucket", err)
	}

	// The probes see the store come back, with no request from a client.
	stop := s.StartProbes()
	defer stop()
	if err := g.up(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), probeDownEvery+5*time.Second)
	defer cancel()
	if err := s.WaitUp(ctx); err != nil {
		t.Fatalf("WaitUp: %v; Health says %v", err, reason)
	}
	if ok, _ := s.Health(); !ok || up() != 1 {
		t.Errorf("back: Health %t, wharf_storage_up %v", ok, up())
	}
	if n := testutil.CollectAndCount(s.metrics.requests); n != len(ops) {
		t.Errorf("wharf_storage_request_seconds has %d series, want one per op (%d)", n, len(ops))
	}
}

// TestCheck: a bucket that does not exist is a fault, not an outage.
func TestCheck(t *testing.T) {
	t.Parallel()
	opts, _ := testBucket(t)
	opts.Bucket = "wharf-no-such-bucket"
	s, err := Prepare(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(t.Context())
	if err == nil || errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check: %v, want a fault saying the bucket does not exist", err)
	}
	if ok, reason := s.Health(); ok || !strings.Contains(reason, "bucket does not exist") {
		t.Errorf("Health: %t %q", ok, reason)
	}
}

// TestOps names each request the client sends by its operation, for the
// series' op label.
func TestOps(t *testing.T) {
	t.Parallel()
	o := &observer{bucket: "files"}
	for _, tc := range []struct {
		method, url string
		copying     bool
		want        string
	}{
		{http.MethodHead, "http://s3/files/a/b.txt", false, "stat"},
		{http.MethodHead, "http://s3/files/", false, "bucket"},
		{http.MethodGet, "http://s3/files/a/b.txt", false, "get"},
		{http.MethodGet, "http://s3/files/?list-type=2&prefix=a%2F&delimiter=%2F", false, "list"},
		{http.MethodGet, "http://s3/files/?uploads=&prefix=a", false, "list_uploads"},
		{http.MethodGet, "http://s3/files/?location=", false, "bucket"},
		{http.MethodPut, "http://s3/files/a.bin?partNumber=2&uploadId=x", false, "put_part"},
		{http.MethodPut, "http://s3/files/a.bin?partNumber=1&uploadId=x", true, "copy_part"},
		{http.MethodPut, "http://s3/files/a.bin", true, "copy"},
		{http.MethodPut, "http://s3/files/a.bin", false, "put"},
		{http.MethodPost, "http://s3/files/a.bin?uploads=", false, "create_upload"},
		{http.MethodPost, "http://s3/files/a.bin?uploadId=x", false, "complete_upload"},
		{http.MethodPost, "http://s3/files/?delete=", false, "delete"},
		{http.MethodDelete, "http://s3/files/a.bin?uploadId=x", false, "abort_upload"},
		{http.MethodDelete, "http://s3/files/a.bin", false, "delete"},
		{http.MethodOptions, "http://s3/files/a.bin", false, "other"},
		{http.MethodGet, "http://files.s3/a/b.txt", false, "get"}, // virtual-host style
		{http.MethodGet, "http://files.s3/?list-type=2", false, "list"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tc.method, tc.url, http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		if tc.copying {
			req.Header.Set("X-Amz-Copy-Source", "/files/old.bin")
		}
		if got := o.op(req); got != tc.want {
			t.Errorf("%s %s (copy %t): %q, want %q", tc.method, tc.url, tc.copying, got, tc.want)
		}
	}
}
