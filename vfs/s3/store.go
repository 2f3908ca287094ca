package s3

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"go.uber.org/zap"
)

// opTimeout bounds one metadata request (stat, list page, copy, delete); the
// body of a download or an upload part is bounded by the transfer itself.
const opTimeout = time.Minute

// maxRetries is how often the client retries a failed request. The client's
// default of 10, with its back-off, would keep an FTP client waiting for
// minutes when the store is down.
const maxRetries = 3

// Options locate the bucket and say how to sign requests.
type Options struct {
	// Endpoint is the store's URL with its scheme, "http://127.0.0.1:9000" or
	// "https://s3.example.com". Empty means AWS (s3.amazonaws.com, over HTTPS).
	Endpoint string
	// Region is the bucket's region; empty lets the client ask the store.
	Region string
	// Bucket holds the tree; it must exist.
	Bucket string
	// Prefix is the key prefix below which all homes live ("wharf" or
	// "sites/a"); empty means the bucket's top.
	Prefix string
	// AccessKey and SecretKey sign requests. Both empty: the standard AWS
	// sources, in order: the environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared credentials file
	// (~/.aws/credentials, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE) and an
	// IAM role (EC2 instance profile, ECS task role, EKS web identity); with
	// none of them, requests go out anonymously (a public bucket).
	AccessKey, SecretKey string
	// PathStyle asks for path-style requests (http://host/bucket/key), which
	// MinIO, Ceph RGW and Garage usually need; otherwise the client picks
	// virtual-host style where the endpoint supports it.
	PathStyle bool
	// Log receives failures of the store with their full detail (endpoint,
	// bucket, key, cause), which clients never see; nil discards them.
	Log *zap.Logger
	// UploadMemory bounds the part buffers of all uploads together, in
	// bytes; 0 means no bound. Uploads wait for their share (see memory);
	// parts shrink from 16 MiB towards 5 MiB as more uploads run at once.
	// At least minUploadMemory.
	UploadMemory int64
	// UploadMemoryWait is how long an upload waits for part memory before
	// it is refused (ErrBusy); 0 means 30 seconds.
	UploadMemoryWait time.Duration
	// AbandonedUploadAge turns the janitor on (janitor.go): incomplete
	// multipart uploads below Prefix that no session runs, older than this,
	// are aborted, at start and periodically. 0 leaves them to the store.
	AbandonedUploadAge time.Duration
}

// minUploadMemory is the smallest Options.UploadMemory: a few uploads of
// minimum parts.
const minUploadMemory = 16 << 20

// Store is a connection to one bucket, shared by every session. It is safe
// for concurrent use.
type Store struct {
	core    *minio.Core
	probe   *minio.Core // Check's client: one attempt per request
	bucket  string
	prefix  string // "" or a key prefix ending in "/"
	secure  bool   // https: payloads go unsigned, TLS protects them
	log     *zap.Logger
	health  *health
	metrics *metrics
	mem     *memory
	jan     *janitor // nil: no janitor
}

// New connects to the store and checks that the bucket is reachable: it is
// Prepare, then Check.
func New(ctx context.Context, opts Options) (*Store, error) {
	s, err := Prepare(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := s.Check(ctx); err != nil {
		return nil, err
	}

	return s, nil
}

// Prepare checks the options and makes the client, without a request: the
// store need not answer yet (Check asks it, StartProbes keeps asking).
func Prepare(opts Options) (*Store, error) {
	if err := s3utils.CheckValidBucketName(opts.Bucket); err != nil {
		return nil, fmt.Errorf("s3 bucket %q: %w", opts.Bucket, err)
	}
	if opts.UploadMemory != 0 && opts.UploadMemory < minUploadMemory {
		return nil, fmt.Errorf("s3 upload memory %d: want 0 (no bound) or at least %d MiB", opts.UploadMemory,
			minUploadMemory>>20)
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, errors.New("s3 access key and secret key: set both or neither")
	}
	host, secure, err := parseEndpoint(opts.Endpoint)
	if err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, "")
	if opts.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{bucket: opts.Bucket, prefix: cleanPrefix(opts.Prefix), secure: secure, log: log, health: newHealth(log),
		mem: newMemory(opts.UploadMemory, opts.UploadMemoryWait)}
	s.metrics = newMetrics(s.health)
	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", host, err)
	}
	// Every request goes through an observer (metrics.go): the store's
	// health and series come from what its answers, or their absence, say.
	client := func(retries int, probe bool) (*minio.Core, error) {
		return minio.NewCore(host, &minio.Options{
			Creds:        creds,
			Secure:       secure,
			Region:       opts.Region,
			BucketLookup: lookup,
			MaxRetries:   retries,
			Transport:    &observer{next: transport, bucket: opts.Bucket, health: s.health, metrics: s.metrics, probe: probe},
		})
	}
	if s.core, err = client(maxRetries, false); err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", host, err)
	}
	if s.probe, err = client(1, true); err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", host, err)
	}
	if opts.AbandonedUploadAge > 0 {
		s.jan = newJanitor(s, opts.AbandonedUploadAge)
	}

	return s, nil
}

// Close stops the janitor and gives the idle part buffers back. Uploads
// still running keep working; their buffers go when they end.
func (s *Store) Close() error {
	if s.jan != nil {
		s.jan.stop()
	}
	s.mem.close()

	return nil
}

// payloadHash returns the hash that signs a part's payload: SHA-256 over
// plain http, where the signature is all that protects the bytes on their
// way, and none over https, where TLS does and parts go as UNSIGNED-PAYLOAD.
// A precomputed hash, rather than the streaming signature minio-go uses
// by default over http, costs one pass over the bytes on each side and no
// per-chunk signatures, and the request body stays the part buffer itself.
func (s *Store) payloadHash() hash.Hash {
	if s.secure {
		return nil
	}

	return sha256.New()
}

// started, ended and abortFailed tell the janitor, if any, about the
// multipart uploads of this Store's sessions.
func (s *Store) started(ctx context.Context, key, id string) {
	if s.jan != nil {
		s.jan.started(ctx, key, id)
	}
}

func (s *Store) ended(_, id string) {
	if s.jan != nil {
		s.jan.ended(id)
	}
}

func (s *Store) abortFailed(key, id string) {
	if s.jan != nil {
		s.jan.abortFailed(key, id)
	}
}

// parseEndpoint returns the host[:port] and whether to use TLS.
func parseEndpoint(endpoint string) (host string, secure bool, err error) {
	if endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	u, err := url.Parse(endpoint)
	switch {
	case !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://"):
		return "", false, fmt.Errorf("s3 endpoint %q: want a URL starting with http:// or https://", endpoint)
	case err != nil:
		return "", false, fmt.Errorf("s3 endpoint %q: %w", endpoint, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("s3 endpoint %q: want only a scheme, a host and a port", endpoint)
	}

	return u.Host, u.Scheme == "https", nil
}

// cleanPrefix returns the key prefix for p: "" or clean elements ending in "/".
func cleanPrefix(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return ""
	}

	return p + "/"
}

// Open returns the tree below home (a key prefix such as "/pub" or "/alice",
// below Options.Prefix) as a filesystem. The home need not exist: it appears
// with its first file or folder. atomic changes nothing: an object appears
// only when its upload completed, whatever the flag says.
func (s *Store) Open(home string, atomic bool) (*Fs, error) {
	_ = atomic // every S3 upload is atomic
	root := s.prefix + cleanPrefix(home)
	if len(root) > maxKey {
		return nil, fmt.Errorf("s3 home %q: key prefix longer than %d bytes", home, maxKey)
	}

	return &Fs{s: s, root: root}, nil
}

// opContext returns the context of one metadata request.
func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}
