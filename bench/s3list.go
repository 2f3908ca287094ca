package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"wharf/internal/ftpraw"
)

// The S3 listing rows: cold listings of one prefix of s3ListN objects
// through a wharf whose files live in an S3-compatible store, alone and by
// s3Crowd sessions at once (issue 15: the crowd within 1.5 x one listing).
// The store is the MinIO the tests use, named by the same variables
// (WHARF_TEST_S3_ENDPOINT, WHARF_TEST_S3_ACCESS_KEY, WHARF_TEST_S3_SECRET_KEY);
// without them the rows are left out. The objects live in the bucket
// s3ListBucket, made and filled by the first run and kept for later ones
// (filling it takes about 40 s here). Each measurement starts a wharf of
// its own on that bucket, so its listing cache is empty: the listings are
// cold for wharf, while the store has seen the prefix just before (a walk
// by the benchmark itself, whose time the detail gives as the store's own
// cost).

const (
	s3ListN      = 20000
	s3Crowd      = 10
	s3ListBucket = "wharf-bench-listing"
	s3ListPrefix = "bench/pub/list/" // storage prefix "bench", anonymous root "/pub"
)

// s3Listing is what the rows share across rounds.
type s3Listing struct {
	endpoint       string
	access, secret string
	client         *minio.Core
	filled         bool
}

// s3ListRows returns the S3 listing rows when the test variables name a
// store, else none.
func s3ListRows() []scenario {
	g := &s3Listing{
		endpoint: os.Getenv("WHARF_TEST_S3_ENDPOINT"),
		access:   os.Getenv("WHARF_TEST_S3_ACCESS_KEY"),
		secret:   os.Getenv("WHARF_TEST_S3_SECRET_KEY"),
	}
	if g.endpoint == "" {
		return nil
	}

	wharfOnly := func(t *target) (bool, string) { return t.name == "wharf", "" } // the peers have no object store
	n := thousands(s3ListN)

	return []scenario{
		{id: "s3list", title: fmt.Sprintf("cold LIST of %s objects on S3, one session", n), unit: "s", lower: true,
			applies: wharfOnly, run: g.runOne},
		{id: "s3crowd", title: fmt.Sprintf("cold LIST of %s objects on S3, %d sessions at once", n, s3Crowd),
			unit: "x one session", lower: true, applies: wharfOnly, run: g.runCrowd},
	}
}

// runOne times one cold listing, plan.repeat times, and gives their mean.
func (g *s3Listing) runOne(ctx context.Context, b *bench, _ *target) (result, error) {
	walk, err := g.prepare(ctx)
	if err != nil {
		return result{}, err
	}

	var sum coldRun

	for range b.plan.repeat {
		one, err := g.coldListings(ctx, b, 1)
		if err != nil {
			return result{}, err
		}

		sum.took += one.took
		sum.cpu += one.cpu
	}

	n := float64(b.plan.repeat)
	mean := sum.took.Seconds() / n

	return result{value: mean, seconds: sum.took.Seconds(), ops: int64(b.plan.repeat) * s3ListN,
		detail: fmt.Sprintf("wharf CPU %.3f s a listing; the store's own walk of the prefix (minio-go, from the "+
			"benchmark) %.3f s", sum.cpu/n, walk.Seconds())}, nil
}

// runCrowd times plan.repeat pairs of one cold listing and s3Crowd cold
// listings at once, each on a fresh wharf, in turns (the crowd first in
// every other pair, so that neither always finds the store warmer), and
// gives the crowds' total time over the single listings'.
func (g *s3Listing) runCrowd(ctx context.Context, b *bench, _ *target) (result, error) {
	if _, err := g.prepare(ctx); err != nil {
		return result{}, err
	}

	var one, crowd coldRun

	for i := range 2 * b.plan.repeat {
		crowdFirst := i/2%2 == 1
		n, sum := 1, &one
		if second := i%2 == 1; second != crowdFirst {
			n, sum = s3Crowd, &crowd
		}

		r, err := g.coldListings(ctx, b, n)
		if err != nil {
			return result{}, err
		}

		sum.took += r.took
		sum.cpu += r.cpu
	}

	k := float64(b.plan.repeat)

	return result{value: crowd.took.Seconds() / one.took.Seconds(), seconds: crowd.took.Seconds(),
		ops: int64(b.plan.repeat) * s3Crowd * s3ListN, detail: fmt.Sprintf("%d at once %.3f s (wharf CPU %.3f s), "+
			"one alone %.3f s (wharf CPU %.3f s), means of %d", s3Crowd, crowd.took.Seconds()/k, crowd.cpu/k,
			one.took.Seconds()/k, one.cpu/k, b.plan.repeat)}, nil
}

// prepare connects to the store, makes and fills the bucket on the first
// run, and walks the prefix once, which it times.
func (g *s3Listing) prepare(ctx context.Context) (time.Duration, error) {
	if g.client == nil {
		u, err := url.Parse(g.endpoint)
		if err != nil || u.Host == "" {
			return 0, fmt.Errorf("WHARF_TEST_S3_ENDPOINT %q: want a URL such as http://127.0.0.1:9000", g.endpoint)
		}

		g.client, err = minio.NewCore(u.Host, &minio.Options{
			Creds:        credentials.NewStaticV4(g.access, g.secret, ""),
			Secure:       u.Scheme == "https",
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			return 0, fmt.Errorf("s3 client: %w", err)
		}
	}

	if !g.filled {
		if err := g.fill(ctx); err != nil {
			return 0, err
		}

		g.filled = true
	}

	start := time.Now()

	n, err := g.count(ctx)
	if err != nil {
		return 0, err
	}

	if n != s3ListN {
		return 0, fmt.Errorf("bucket %s holds %d objects below %s, want %d", s3ListBucket, n, s3ListPrefix, s3ListN)
	}

	return time.Since(start), nil
}

// fill makes the bucket and its objects, unless an earlier run did.
func (g *s3Listing) fill(ctx context.Context) error {
	ok, err := g.client.BucketExists(ctx, s3ListBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s3ListBucket, err)
	}

	if !ok {
		if err := g.client.MakeBucket(ctx, s3ListBucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			return fmt.Errorf("make bucket %s: %w", s3ListBucket, err)
		}
	}

	if n, err := g.count(ctx); err != nil || n == s3ListN {
		return err
	}

	names := make(chan string)
	errs := make(chan error, 1)

	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for name := range names {
				_, err := g.client.PutObject(ctx, s3ListBucket, s3ListPrefix+name, strings.NewReader("x"), 1, "", "",
					minio.PutObjectOptions{})
				if err != nil {
					select {
					case errs <- fmt.Errorf("put %s: %w", name, err):
					default:
					}
				}
			}
		})
	}

	for i := range s3ListN {
		names <- listName(i)
	}

	close(names)
	wg.Wait()

	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// count walks the prefix as wharf does (delimited, 1,000 keys a page) and
// returns how many objects it holds.
func (g *s3Listing) count(ctx context.Context) (int, error) {
	noOwner := false
	opts := minio.ListObjectsOptions{Prefix: s3ListPrefix, MaxKeys: 1000, FetchOwner: &noOwner}

	n := 0
	for oi := range g.client.ListObjectsIter(ctx, s3ListBucket, opts) {
		if oi.Err != nil {
			return n, fmt.Errorf("list %s/%s: %w", s3ListBucket, s3ListPrefix, oi.Err)
		}

		n++
	}

	return n, nil
}

// coldRun is what coldListings measured: the time from the first LIST to
// the last 226, and wharf's CPU time meanwhile.
type coldRun struct {
	took time.Duration
	cpu  float64
}

// coldListings starts a wharf on the bucket (so that nothing is cached),
// logs in n anonymous sessions, then has them all LIST the prefix at once;
// every listing must name each object once.
func (g *s3Listing) coldListings(ctx context.Context, b *bench, n int) (coldRun, error) {
	t, err := g.startWharf(ctx, b)
	if err != nil {
		return coldRun{}, err
	}
	defer t.stop()

	conns := make([]*ftpraw.Conn, n)

	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()

	for i := range conns {
		if conns[i], err = anonLogin(ctx, t); err != nil {
			return coldRun{}, fmt.Errorf("session %d: %w", i, err)
		}
	}

	bufs := make([][]byte, n)
	lens := make([]int, n)
	errs := make([]error, n)

	for i := range bufs {
		bufs[i] = make([]byte, 4<<20)
	}

	var (
		wg    sync.WaitGroup
		ready sync.WaitGroup
		start = make(chan struct{})
	)

	ready.Add(n)

	for i, c := range conns {
		wg.Go(func() {
			ready.Done()
			<-start

			lens[i], errs[i] = c.List("/list", bufs[i])
		})
	}

	ready.Wait()

	span, err := t.beginCPU()
	if err != nil {
		close(start)
		wg.Wait()

		return coldRun{}, err
	}

	began := time.Now()

	close(start)
	wg.Wait()

	run := coldRun{took: time.Since(began)}

	if run.cpu, _, err = span.end(); err != nil {
		return coldRun{}, err
	}

	if err := firstError(errs); err != nil {
		return coldRun{}, err
	}

	for i := range bufs {
		if err := checkListing(bufs[i][:lens[i]], s3ListN); err != nil {
			return coldRun{}, fmt.Errorf("session %d: %w", i, err)
		}
	}

	return run, nil
}

// startWharf starts a wharf serving the bucket to anonymous sessions, with
// the benchmark's wharf binary and pinning and a configuration of its own.
func (g *s3Listing) startWharf(ctx context.Context, b *bench) (*target, error) {
	ports, err := portRanges(passiveSpan)
	if err != nil {
		return nil, err
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}

	conf := filepath.Join(b.fx.dir, "wharf-s3list.toml")
	text := fmt.Sprintf(`# written by wharf's benchmark (bench/s3list.go)
listen = "127.0.0.1:%d"
passive_ports = [%d, %d]
max_clients_per_ip = 64
shutdown_timeout = "2s"

[log]
level = "info"
file = %q

[anonymous]
enabled = true
root = "/pub"

[storage]
backend = "s3"
endpoint = %q
bucket = %q
prefix = "bench"
access_key = %q
secret_key = %q
path_style = true
`, port, ports[0][0], ports[0][1], filepath.Join(b.fx.dir, "wharf-s3list.log"), g.endpoint, s3ListBucket,
		g.access, g.secret)

	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write wharf config: %w", err)
	}

	t := &target{name: "wharf-s3list", addr: "127.0.0.1:" + strconv.Itoa(port), dir: b.fx.dir,
		outPath: filepath.Join(b.fx.dir, "wharf-s3list.out")}
	t.launch = func(setup) ([]string, error) { return b.pin.serverCommand(b.wharf, "-config", conf), nil }

	if err := t.start(ctx); err != nil {
		return nil, err
	}

	return t, nil
}
