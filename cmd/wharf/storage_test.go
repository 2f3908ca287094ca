package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// s3Bucket makes a fresh bucket, whose name starts with prefix, on the S3
// server the tests run against (testenv.NeedS3). The bucket, with what is
// left in it, goes with the test.
func s3Bucket(t *testing.T, prefix string) (testenv.S3, string) {
	t.Helper()

	s3 := testenv.NeedS3(t)

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

	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := prefix + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}

	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		for obj := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if obj.Err == nil {
				_ = client.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
		if err := client.RemoveBucket(ctx, bucket); err != nil {
			t.Errorf("remove bucket %s: %v", bucket, err)
		}
	})

	return s3, bucket
}

// s3Env returns the WHARF_STORAGE_* variables of a fresh bucket (s3Bucket).
func s3Env(t *testing.T) []string {
	t.Helper()

	s3, bucket := s3Bucket(t, "wharf-cmd-")
	endpoint, access, secret := s3.Endpoint, s3.AccessKey, s3.SecretKey

	return []string{
		"WHARF_STORAGE_BACKEND=s3",
		"WHARF_STORAGE_ENDPOINT=" + endpoint,
		"WHARF_STORAGE_BUCKET=" + bucket,
		"WHARF_STORAGE_PREFIX=site",
		"WHARF_STORAGE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + access, // the standard variables, read from run's env
		"AWS_SECRET_ACCESS_KEY=" + secret,
	}
}

// With [storage] backend = "s3", configured from the environment, a file
// uploaded by a user is downloaded by anonymous users, from a home that is
// only a key prefix: the anonymous root itself, which shares_homes allows.
func TestRunServesFromS3(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", "/pub"))
	env := append(s3Env(t),
		"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=28960-28979", "WHARF_LOG_FORMAT=json",
		"WHARF_ANONYMOUS_ROOT=/pub", "WHARF_ANONYMOUS_SHARES_HOMES=true", "WHARF_USERS_FILE="+users)
	s := startRun(t, nil, env)

	c := ftptest.Login(t, s.addr, "alice", "pw")
	if err := c.Stor("/hello.txt", strings.NewReader("hello from s3")); err != nil {
		t.Fatal(err)
	}

	a := ftptest.Login(t, s.addr, "anonymous", "x")

	got := ftptest.Retr(t, a, "/hello.txt")

	if string(got) != "hello from s3" {
		t.Fatalf("got %q", got)
	}
}

// A bucket that can't be reached stops start-up, naming it.
func TestRunRefusesAnUnreachableBucket(t *testing.T) {
	t.Parallel()

	env := append(s3Env(t), "WHARF_LISTEN=127.0.0.1:0", "WHARF_ANONYMOUS_ROOT=/pub", "WHARF_STORAGE_BUCKET=no-such-bucket-here")

	err := run(context.Background(), nil, env, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `storage: s3 bucket "no-such-bucket-here"`) {
		t.Errorf("run() = %v, want the bucket named", err)
	}
}

// doctor checks that the bucket answers.
func TestDoctorChecksTheBucket(t *testing.T) {
	t.Parallel()

	env := append(s3Env(t), "WHARF_LISTEN=127.0.0.1:0", "WHARF_PUBLIC_HOST=127.0.0.1", "WHARF_PASSIVE_PORTS=28840-28841",
		"WHARF_ANONYMOUS_ROOT=/pub")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"doctor"}, env, nil, &out, io.Discard); err != nil {
		t.Fatalf("doctor = %v\n%s", err, out.String())
	}
	if !slices.ContainsFunc(lines(out.String(), "OK"), func(l string) bool { return strings.HasPrefix(l, "storage: bucket") }) {
		t.Errorf("doctor did not check the bucket:\n%s", out.String())
	}

	out.Reset()
	err := run(context.Background(), []string{"doctor"}, append(env, "WHARF_STORAGE_BUCKET=no-such-bucket-here"), nil, &out, io.Discard)
	if err == nil || !slices.ContainsFunc(lines(out.String(), "PROBLEM"), func(l string) bool {
		return strings.Contains(l, `s3 bucket "no-such-bucket-here"`)
	}) {
		t.Errorf("doctor = %v with a missing bucket:\n%s", err, out.String())
	}
}
