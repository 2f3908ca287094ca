package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"wharf/internal/ftptest"
	"wharf/vfs"
)

// budgetStore connects a Store with a part-memory budget to a new bucket.
func budgetStore(t *testing.T, limit int64, wait time.Duration) (*Store, *Fs, string) {
	t.Helper()
	opts, _ := testBucket(t)
	opts.UploadMemory, opts.UploadMemoryWait = limit, wait
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fsys, err := s.Open("/", true)
	if err != nil {
		t.Fatal(err)
	}

	return s, fsys, opts.Bucket
}

// TestUploadsShareTheMemoryBudget runs more uploads at once than a 16 MiB
// budget holds at full size: parts shrink, uploads wait their turn, every
// object arrives whole and the budget is never exceeded.
func TestUploadsShareTheMemoryBudget(t *testing.T) {
	t.Parallel()
	s, fsys, bucket := budgetStore(t, 16*mib, 30*time.Second)
	client := s.core.Client

	var wg sync.WaitGroup
	data := make([][]byte, 6)
	for i := range data {
		data[i] = ftptest.RandomBytes(12*mib + i*1000)
		wg.Go(func() {
			if err := send(t, fsys, fmt.Sprintf("/f%d.bin", i), stor, 0, data[i], nil); err != nil {
				t.Errorf("upload %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range data {
		if got := object(t, client, bucket, fmt.Sprintf("f%d.bin", i)); got != string(data[i]) {
			t.Errorf("f%d.bin has %d bytes, want %d (or other content)", i, len(got), len(data[i]))
		}
	}
	st := s.mem.stats()
	if st.peak > 16*mib || st.used != 0 {
		t.Errorf("budget 16 MiB: peak %d, %d still reserved", st.peak, st.used)
	}
	if st.waits == 0 {
		t.Error("no upload waited: the test does not fill the budget")
	}
}

// TestUploadsRefusedWhenTheBudgetStaysSpent: an upload that cannot get its
// first chunk in time is refused at open (450 for the client); one that
// cannot grow its part is cut at Write (451). Both fail with ErrBusy, a
// vfs.ErrUploadBusy, naming the virtual path only.
func TestUploadsRefusedWhenTheBudgetStaysSpent(t *testing.T) {
	t.Parallel()
	s, fsys, bucket := budgetStore(t, 16*mib, 200*time.Millisecond)
	client := s.core.Client

	// a holds an 8 MiB part (half the budget), b a 5 MiB one: 13 of 16 MiB.
	a, err := fsys.Create("/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsys.Create("/b.bin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := fsys.Create("/c.bin") // its first chunk fits: 5 MiB stay free beside it
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []interface{ Write([]byte) (int, error) }{a, b} {
		if _, err := f.Write(make([]byte, mib)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.mem.stats(); st.used != 13*mib+chunkSize {
		t.Fatalf("reserved %d, want 13 MiB and a chunk", st.used)
	}

	_, err = fsys.Create("/d.bin")
	checkBusy(t, err, "/d.bin")

	_, err = c.Write(make([]byte, mib))
	checkBusy(t, err, "/c.bin")
	checkBusy(t, c.Close(), "/c.bin")

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := fsys.Create("/d.bin")
	if err != nil {
		t.Fatalf("once a finished, d still cannot start: %v", err)
	}
	for _, f := range []interface{ Close() error }{b, d} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := object(t, client, bucket, "c.bin"); got != "<absent>" {
		t.Errorf("the cut upload left an object of %d bytes", len(got))
	}
	if st := s.mem.stats(); st.refused != 2 || st.used != 0 {
		t.Errorf("stats %+v, want 2 refusals and nothing reserved", st)
	}
}

func checkBusy(t *testing.T, err error, name string) {
	t.Helper()
	var pe *fs.PathError
	switch {
	case !errors.Is(err, ErrBusy) || !errors.Is(err, vfs.ErrUploadBusy):
		t.Errorf("%s: %v, want ErrBusy", name, err)
	case !errors.As(err, &pe) || pe.Path != name:
		t.Errorf("%s: %v, want a PathError naming it", name, err)
	}
}

// TestPartsAreSignedWithTheirHash: over plain http each part carries the
// SHA-256 of its bytes, which the store checks, instead of a streaming
// signature; parts go out while the next one fills.
func TestPartsAreSignedWithTheirHash(t *testing.T) {
	t.Parallel()
	opts, client := testBucket(t)
	target, err := url.Parse(opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		hashes []string
		open   int
		most   int
	)
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		part := r.URL.Query().Get("partNumber") != ""
		if part {
			mu.Lock()
			hashes = append(hashes, r.Header.Get("X-Amz-Content-Sha256"))
			open++
			most = max(most, open)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // a store slower than the client
		}
		rp.ServeHTTP(w, r)
		if part {
			mu.Lock()
			open--
			mu.Unlock()
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	opts.Endpoint = "http://" + l.Addr().String()
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fsys, _ := s.Open("/", true)
	data := ftptest.RandomBytes(4*partSize + 1)
	if err := send(t, fsys, "/signed.bin", stor, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	if got := object(t, client, opts.Bucket, "signed.bin"); got != string(data) {
		t.Fatalf("object has %d bytes, want %d", len(got), len(data))
	}
	sha := regexp.MustCompile(`^[0-9a-f]{64}$`)
	mu.Lock()
	defer mu.Unlock()
	if len(hashes) != 5 {
		t.Fatalf("%d parts sent, want 5", len(hashes))
	}
	for i, h := range hashes {
		if !sha.MatchString(h) {
			t.Errorf("part %d: X-Amz-Content-Sha256 %q, want the hex SHA-256 of the part", i+1, h)
		}
	}
	if most < 2 || most > sendWindow {
		t.Errorf("at most %d parts in flight, want 2 to %d", most, sendWindow)
	}
	if strings.Contains(strings.Join(hashes, ""), "STREAMING") {
		t.Error("a part used the streaming signature")
	}
}
