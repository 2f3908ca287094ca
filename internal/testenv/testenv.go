// Package testenv decides what a test does when something it needs from the
// machine is missing: a client binary, a browser, podman, a MinIO. .ci/run
// installs and starts all of them, so in CI (CI set) a missing one fails the
// test; on a developer's machine the test is skipped, saying what to install.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Missing fails the test in CI and skips it elsewhere, with the reason.
func Missing(t *testing.T, format string, args ...any) {
	t.Helper()

	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (in CI, .ci/run provides it)")
	}

	t.Skip(msg)
}

// Tool returns the path of the first of names found on PATH, or calls Missing.
func Tool(t *testing.T, names ...string) string {
	t.Helper()

	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}

	Missing(t, "%s is not installed: apt-get install -y %s", names[0], names[0])

	return ""
}

// S3 is the S3 server the tests run against.
type S3 struct {
	Endpoint  string // a URL, such as http://127.0.0.1:9000
	AccessKey string
	SecretKey string
}

// NeedS3 returns the S3 server named by WHARF_TEST_S3_ENDPOINT,
// WHARF_TEST_S3_ACCESS_KEY and WHARF_TEST_S3_SECRET_KEY, or calls Missing.
func NeedS3(t *testing.T) S3 {
	t.Helper()

	s := S3{
		Endpoint:  os.Getenv("WHARF_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("WHARF_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("WHARF_TEST_S3_SECRET_KEY"),
	}
	if s.Endpoint == "" {
		Missing(t, "WHARF_TEST_S3_ENDPOINT is not set: start a MinIO and set it, with WHARF_TEST_S3_ACCESS_KEY and WHARF_TEST_S3_SECRET_KEY, as .ci/run does")
	}

	return s
}
