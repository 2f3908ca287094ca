package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"wharf/internal/ftpraw"
	"wharf/internal/procstat"
)

// The S3 group: uploads through a wharf whose files live in a bucket of an
// S3-compatible store, against the same uploads sent straight to that store
// with minio-go's PutObject (its defaults: multipart, parts sent in
// parallel, payloads signed as streams over plain http). The store is the
// MinIO the tests use, named by the same variables (WHARF_TEST_S3_ENDPOINT,
// WHARF_TEST_S3_ACCESS_KEY, WHARF_TEST_S3_SECRET_KEY); without them the
// group is skipped. The store is not started here: it runs unpinned, and its
// CPU time is in neither column.

// Target names of the S3 group.
const (
	wharfS3 = "wharf-s3" // a second wharf, its files in the bucket
	direct  = "direct"   // no server: the benchmark PUTs to the store itself
)

// s3Store is the bucket the S3 rows write to, made for the run and removed
// at its end.
type s3Store struct {
	endpoint       string
	access, secret string
	client         *minio.Client
	bucket         string
}

// openS3 connects to the store the test variables name and makes a bucket
// for the run. With no store named it returns nil and says why.
func openS3(ctx context.Context) (*s3Store, string, error) {
	s := &s3Store{
		endpoint: os.Getenv("WHARF_TEST_S3_ENDPOINT"),
		access:   os.Getenv("WHARF_TEST_S3_ACCESS_KEY"),
		secret:   os.Getenv("WHARF_TEST_S3_SECRET_KEY"),
	}
	if s.endpoint == "" {
		return nil, "S3 rows skipped: WHARF_TEST_S3_ENDPOINT is not set (start a MinIO and set it, with " +
			"WHARF_TEST_S3_ACCESS_KEY and WHARF_TEST_S3_SECRET_KEY, as .ci/run does)", nil
	}

	u, err := url.Parse(s.endpoint)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("WHARF_TEST_S3_ENDPOINT %q: want a URL such as http://127.0.0.1:9000", s.endpoint)
	}

	s.client, err = minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.access, s.secret, ""),
		Secure:       u.Scheme == "https",
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, "", fmt.Errorf("s3 client: %w", err)
	}

	var b [6]byte
	_, _ = rand.Read(b[:])
	s.bucket = "wharf-bench-" + hex.EncodeToString(b[:])

	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return nil, "", fmt.Errorf("make bucket at %s: %w", s.endpoint, err)
	}

	return s, fmt.Sprintf("S3 rows: the store at %s, bucket %s (removed at the end), not pinned; direct = "+
		"minio-go's PutObject from the bench process (core 1, GOMAXPROCS=1) with its default options", s.endpoint,
		s.bucket), nil
}

// remove deletes the bucket with everything in it, incomplete uploads too.
func (s *s3Store) remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, "", true) {
		if up.Err == nil {
			_ = s.client.RemoveIncompleteUpload(ctx, s.bucket, up.Key)
		}
	}

	if err := s.client.RemoveBucketWithOptions(ctx, s.bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		return fmt.Errorf("remove bucket %s: %w", s.bucket, err)
	}

	return nil
}

// check reads the object key back into buf, compares it with f and
// removes it.
func (s *s3Store) check(ctx context.Context, key string, f file, buf []byte) error {
	defer func() { _ = s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}) }()

	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("read back %s: %w", key, err)
	}
	defer obj.Close()

	n, err := io.ReadFull(obj, buf[:f.size])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("read back %s: %w", key, err)
	}

	return verify(buf[:n], file{path: key, size: f.size, sum: f.sum})
}

// startWharfS3 starts a second wharf whose files live in the bucket below
// the prefix "wharf": the password account's home is "/bench", the
// anonymous root "/pub". [storage] keeps its defaults otherwise.
func startWharfS3(ctx context.Context, bin string, fx *fixtures, pin pinning, passive [2]int, s *s3Store,
) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}

	conf := filepath.Join(fx.dir, "wharf-s3.toml")
	text := fmt.Sprintf(`# written by wharf's benchmark (bench/s3.go)
listen = "127.0.0.1:%d"
passive_ports = [%d, %d]
max_clients = %d
max_clients_per_ip = %d
banner = "wharf bench s3"
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
prefix = "wharf"
access_key = %q
secret_key = %q
path_style = true

[[users]]
name = %q
password = %q
home = "/bench"
access = "read-write"
`, port, passive[0], passive[1], maxClients, maxPerAddress, filepath.Join(fx.dir, "wharf-s3.log"), s.endpoint,
		s.bucket, s.access, s.secret, fx.user, fx.hash)

	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write wharf config: %w", err)
	}

	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("wharf binary: %w", err)
	}

	// It serves the bucket whatever the row: its setup never changes.
	t := &target{name: wharfS3, addr: "127.0.0.1:" + strconv.Itoa(port), password: true, dir: fx.dir,
		now: setup{root: fx.root, tls: true}, outPath: filepath.Join(fx.dir, "wharf-s3.out"), comm: comm(bin),
		maxSessions: maxClients, sessionKiB: 64}
	t.launch = func(setup) ([]string, error) { return pin.serverCommand(abs, "-config", conf), nil }
	t.notes = append(t.notes, fmt.Sprintf("wharf-s3: %s with [storage] backend = \"s3\" on that bucket, prefix "+
		"\"wharf\", the other [storage] keys at their defaults; the password account uploads; passive %d-%d",
		bin, passive[0], passive[1]))

	if err := t.start(ctx); err != nil {
		return nil, err
	}

	if err := t.probe(ctx, fx.user, fx.pass); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf on s3 does not serve: %w%s", err, t.outTail())
	}

	return t, nil
}

// s3Only makes a row of the S3 group: it runs on wharf-s3 and direct only.
func s3Only(t *target) (bool, string) {
	return t.name == wharfS3 || t.name == direct, "S3 group"
}

// notS3 keeps the other rows off the S3 group's targets.
func notS3(t *target) bool {
	return t.name != wharfS3 && t.name != direct
}

// runS3Stor uploads the big fixture plan.repeat times, each in a timed
// window that ends when the object is complete (wharf's 226, or PutObject's
// return), then reads it back from the store, checks it and removes it.
func runS3Stor(ctx context.Context, b *bench, t *target) (result, error) {
	f := b.fx.big

	src, err := os.Open(b.fx.disk(b.fx.root, f.path))
	if err != nil {
		return result{}, fmt.Errorf("upload source: %w", err)
	}
	defer src.Close()

	var c *ftpraw.Conn

	if t.name == wharfS3 {
		if c, err = dial(ctx, t.addr); err != nil {
			return result{}, err
		}
		defer c.Close()

		if err := login(c, b.fx.user, b.fx.pass); err != nil {
			return result{}, err
		}
	}

	var (
		total int64
		el    time.Duration
	)

	for range b.plan.repeat {
		name := fmt.Sprintf("up-%d.bin", b.seq.Add(1))

		if _, err := src.Seek(0, 0); err != nil {
			return result{}, fmt.Errorf("upload source: %w", err)
		}

		b.win.start()
		key, err := b.s3put(ctx, c, name, src, f.size)
		el += b.win.stop()

		if err != nil {
			return result{}, err
		}

		if err := b.s3.check(ctx, key, f, b.arena); err != nil {
			return result{}, err
		}

		total += f.size
	}

	if c != nil {
		if err := c.Quit(); err != nil {
			return result{}, err
		}
	}

	return throughput(total, el), nil
}

// s3put uploads src as name: through wharf on c, or straight to the store
// when c is nil. It returns the object's key.
func (b *bench) s3put(ctx context.Context, c *ftpraw.Conn, name string, src *os.File, size int64) (string, error) {
	if c != nil {
		_, err := c.Stor("/"+name, src)

		return "wharf/bench/" + name, err
	}

	key := "direct/" + name
	if _, err := b.s3.client.PutObject(ctx, b.s3.bucket, key, src, size, minio.PutObjectOptions{}); err != nil {
		return key, fmt.Errorf("put %s: %w", key, err)
	}

	return key, nil
}

// runS3Parallel uploads s3ParN of the parallel fixtures at once, one per
// session (or one PutObject each, for direct), from the first STOR to the
// last 226, then checks every object. For wharf, which was restarted first,
// the detail gives its peak resident memory (VmHWM).
func runS3Parallel(ctx context.Context, b *bench, t *target) (result, error) {
	files := b.fx.par[:min(s3ParN, len(b.fx.par))]
	conns := make([]*ftpraw.Conn, len(files))

	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()

	if t.name == wharfS3 {
		for i := range files {
			c, err := dial(ctx, t.addr)
			if err != nil {
				return result{}, fmt.Errorf("session %d: %w", i, err)
			}

			conns[i] = c

			if err := login(c, b.fx.user, b.fx.pass); err != nil {
				return result{}, fmt.Errorf("session %d: %w", i, err)
			}
		}
	}

	srcs := make([]*os.File, len(files))

	defer func() {
		for _, s := range srcs {
			if s != nil {
				_ = s.Close()
			}
		}
	}()

	for i, f := range files {
		s, err := os.Open(b.fx.disk(b.fx.root, f.path))
		if err != nil {
			return result{}, fmt.Errorf("upload source: %w", err)
		}

		srcs[i] = s
	}

	var (
		wg   sync.WaitGroup
		errs = make([]error, len(files))
		keys = make([]string, len(files))
		seq  = b.seq.Add(1)
	)

	b.win.start()

	for i := range files {
		wg.Go(func() {
			keys[i], errs[i] = b.s3put(ctx, conns[i], fmt.Sprintf("par-%d-%02d.bin", seq, i), srcs[i], files[i].size)
		})
	}

	wg.Wait()

	el := b.win.stop()

	if err := firstError(errs); err != nil {
		return result{}, err
	}

	var total int64

	for i, f := range files {
		if err := b.s3.check(ctx, keys[i], f, b.arena); err != nil {
			return result{}, err
		}

		total += f.size
	}

	for _, c := range conns {
		if c != nil {
			if err := c.Quit(); err != nil {
				return result{}, err
			}
		}
	}

	r := throughput(total, el)
	if t.name == wharfS3 {
		r.detail = "wharf peak RSS " + peakRSS(t.pid)
	}

	return r, nil
}

// s3ParN is how many uploads the parallel S3 row runs at once.
const s3ParN = 20

// peakRSS reads a process's peak resident memory (VmHWM), in MiB.
func peakRSS(pid int) string {
	m, err := procstat.ReadMemory(pid)
	if err != nil {
		return "unknown"
	}

	return fmt.Sprintf("%.0f MiB", float64(m.Peak)/(1<<20))
}
