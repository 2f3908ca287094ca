package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Env returns the WHARF_STORAGE_* variables of a fresh bucket on the S3
// server named by WHARF_TEST_S3_ENDPOINT, WHARF_TEST_S3_ACCESS_KEY and
// WHARF_TEST_S3_SECRET_KEY (.ci/run starts MinIO and sets them). Without
// them the test is skipped, or fails in CI. The bucket goes with the test.
func s3Env(t *testing.T) []string {
	t.Helper()

	endpoint := os.Getenv("WHARF_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_S3_ENDPOINT is not set: in CI, .ci/run starts MinIO and sets it")
		}
		t.Skip("set WHARF_TEST_S3_ENDPOINT (see .ci/run)")
	}

	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}

	access, secret := os.Getenv("WHARF_TEST_S3_ACCESS_KEY"), os.Getenv("WHARF_TEST_S3_SECRET_KEY")
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(access, secret, ""),
		Secure:       u.Scheme == "https",
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}

	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "wharf-cmd-" + hex.EncodeToString(b[:])

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
// only a key prefix.
func TestRunServesFromS3(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", "/pub"))
	env := append(s3Env(t),
		"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=48820-48839", "WHARF_LOG_FORMAT=json",
		"WHARF_ANONYMOUS_ROOT=/pub", "WHARF_USERS_FILE="+users)
	s := startRun(t, nil, env)

	c, err := ftp.Dial(s.addr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit() //nolint:errcheck // the test is over

	if err := c.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("/hello.txt", strings.NewReader("hello from s3")); err != nil {
		t.Fatal(err)
	}

	a, err := ftp.Dial(s.addr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Quit() //nolint:errcheck // the test is over

	if err := a.Login("anonymous", "x"); err != nil {
		t.Fatal(err)
	}

	r, err := a.Retr("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	_ = r.Close()

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

	env := append(s3Env(t), "WHARF_LISTEN=127.0.0.1:0", "WHARF_PUBLIC_HOST=127.0.0.1", "WHARF_PASSIVE_PORTS=48840-48841",
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
