package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"wharf/internal/testenv"
)

// TestMain fails the package if a goroutine outlives the tests: listings,
// downloads and uploads all stop what they started. Idle keep-alive
// connections of the HTTP client are no leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// testOptions returns the options of the S3 server the tests run against
// (testenv.NeedS3).
func testOptions(t *testing.T) Options {
	t.Helper()
	s3 := testenv.NeedS3(t)

	return Options{
		Endpoint:  s3.Endpoint,
		Region:    "us-east-1",
		AccessKey: s3.AccessKey,
		SecretKey: s3.SecretKey,
		PathStyle: true,
	}
}

// testBucket creates a bucket of its own for the test and returns options
// for it and a plain client to look at it with. The bucket, with whatever
// is left in it (incomplete uploads too), goes when the test ends.
func testBucket(t *testing.T) (Options, *minio.Client) {
	t.Helper()
	opts := testOptions(t)
	host, secure, err := parseEndpoint(opts.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:       secure,
		Region:       opts.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	opts.Bucket = "wharf-test-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, opts.Bucket, minio.MakeBucketOptions{Region: opts.Region}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	t.Cleanup(func() { dropBucket(t, client, opts.Bucket) })

	return opts, client
}

// dropBucket removes the bucket with everything in it.
func dropBucket(t *testing.T, client *minio.Client, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for up := range client.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err == nil {
			_ = client.RemoveIncompleteUpload(ctx, bucket, up.Key)
		}
	}
	objects := client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for r := range client.RemoveObjects(ctx, bucket, objects, minio.RemoveObjectsOptions{}) {
		t.Errorf("remove %s: %v", r.ObjectName, r.Err)
	}
	if err := client.RemoveBucketWithOptions(ctx, bucket, minio.RemoveBucketOptions{ForceDelete: true}); err != nil {
		t.Errorf("remove bucket %s: %v", bucket, err)
	}
}

// testStore connects a Store to a new bucket (see testBucket).
func testStore(t *testing.T, prefix string) (*Store, *minio.Client) {
	t.Helper()
	opts, client := testBucket(t)
	opts.Prefix = prefix
	s, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	return s, client
}

// put writes an object with the plain client.
func put(t *testing.T, client *minio.Client, bucket, key, content string) {
	t.Helper()
	_, err := client.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)),
		minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// keys returns every key of the bucket, sorted.
func keys(t *testing.T, client *minio.Client, bucket string) []string {
	t.Helper()
	var out []string
	for oi := range client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatalf("list: %v", oi.Err)
		}
		out = append(out, oi.Key)
	}

	return out
}

// object returns the content of a key, or "<absent>".
func object(t *testing.T, client *minio.Client, bucket, key string) string {
	t.Helper()
	obj, err := client.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return "<absent>"
		}
		t.Fatalf("read %s: %v", key, err)
	}

	return string(b)
}

// incomplete returns the keys of the bucket's incomplete multipart uploads.
func incomplete(t *testing.T, client *minio.Client, bucket string) []string {
	t.Helper()
	var out []string
	for up := range client.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if up.Err != nil {
			t.Fatalf("list incomplete uploads: %v", up.Err)
		}
		out = append(out, up.Key)
	}

	return out
}
