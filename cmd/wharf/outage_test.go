package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"wharf/internal/ftptest"
	"wharf/internal/miniotest"
	"wharf/internal/testenv"
)

// ownMinio starts a MinIO of the test's own (miniotest), which the test may
// kill and restart, with a bucket "files" holding pub/hello.txt, and
// returns it with the WHARF_* variables of a wharf that serves /pub from it
// anonymously, with an admin listener.
func ownMinio(t *testing.T, passive string) (*miniotest.Server, []string) {
	t.Helper()

	bin, err := miniotest.Binary()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}

	ms, err := miniotest.Start(t.Context(), bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Kill)

	if err := ms.MakeBucket(t.Context(), "files"); err != nil {
		t.Fatal(err)
	}

	client, err := ms.Client()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := client.PutObject(t.Context(), "files", "pub/hello.txt", strings.NewReader("hello\n"), 6,
		minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	return ms, []string{
		"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=" + passive, "WHARF_LOG_FORMAT=json",
		"WHARF_ADMIN_LISTEN=127.0.0.1:0", "WHARF_ANONYMOUS_ROOT=/pub",
		"WHARF_STORAGE_BACKEND=s3", "WHARF_STORAGE_ENDPOINT=" + ms.Endpoint, "WHARF_STORAGE_BUCKET=files",
		"WHARF_STORAGE_PATH_STYLE=true", "WHARF_STORAGE_ACCESS_KEY=" + ms.AccessKey,
		"WHARF_STORAGE_SECRET_KEY=" + ms.SecretKey,
	}
}

// probe answers GET path on the admin listener: the status and the body.
func probe(t *testing.T, admin, path string) (int, string) {
	t.Helper()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+admin+path, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	body, _ := io.ReadAll(res.Body)

	return res.StatusCode, string(body)
}

// waitReady waits until /readyz answers code, and returns its body.
func waitReady(t *testing.T, admin string, code int) string {
	t.Helper()

	var body string

	ftptest.WaitFor(t, 10*time.Second, func() bool {
		var got int
		got, body = probe(t, admin, "/readyz")

		return got == code
	})

	return body
}

// /readyz, wharf healthcheck -ready and wharf_storage_up follow the store:
// not ready while it is down, with the reason, ready again once it is back;
// /healthz and the plain healthcheck (liveness) stay healthy throughout.
func TestReadinessFollowsTheStore(t *testing.T) {
	t.Parallel()

	ms, env := ownMinio(t, "48850-48859")
	s := startRun(t, nil, env)

	waitReady(t, s.admin, http.StatusOK)

	if out, err := healthcheckRun(t.Context(), []string{"-ready", "-addr", s.admin}, nil); err != nil ||
		out != "ready: "+s.admin+": ready" {
		t.Errorf("healthcheck -ready = %q, %v", out, err)
	}

	ms.Kill()

	body := waitReady(t, s.admin, http.StatusServiceUnavailable)
	if !strings.Contains(body, "s3 storage unavailable") || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz says %q, want the reason", body)
	}

	if strings.Contains(body, strings.TrimPrefix(ms.Endpoint, "http://")) || strings.Contains(body, "files") {
		t.Errorf("/readyz says %q: it names the store to anyone who asks", body)
	}

	if code, _ := probe(t, s.admin, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while the store is down, want 200 (liveness)", code)
	}

	_, err := healthcheckRun(t.Context(), []string{"-ready", "-addr", s.admin}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "not ready: "+s.admin+": 503 s3 storage unavailable") {
		t.Errorf("healthcheck -ready while the store is down = %v", err)
	}

	if _, err := healthcheckRun(t.Context(), []string{"-addr", s.addr}, nil); err != nil {
		t.Errorf("healthcheck (liveness) while the store is down = %v", err)
	}

	_, metrics := probe(t, s.admin, "/metrics")
	for _, want := range []string{"wharf_storage_up 0", `wharf_storage_errors_total{kind="unreachable",op="probe"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := ms.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}

	back := time.Now()
	waitReady(t, s.admin, http.StatusOK)
	t.Logf("ready %s after the store came back", time.Since(back).Round(time.Millisecond))

	if _, metrics := probe(t, s.admin, "/metrics"); !strings.Contains(metrics, "wharf_storage_up 1") {
		t.Error("wharf_storage_up is not 1 once the store is back")
	}
}

// A wharf started while its store is down starts anyway: it serves, says
// 450 to what needs the store and is not ready, then serves the files once
// the store is back.
func TestStartWhileTheStoreIsDown(t *testing.T) {
	t.Parallel()

	ms, env := ownMinio(t, "48860-48869")
	ms.Kill()

	s := startRun(t, nil, env)

	if body := waitReady(t, s.admin, http.StatusServiceUnavailable); !strings.Contains(body, "s3 storage unavailable") {
		t.Errorf("/readyz says %q", body)
	}

	if code, _ := probe(t, s.admin, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}

	c := ftptest.Dial(t, s.addr, nil)
	c.Login("anonymous", "x")

	if code, msg := c.Cmd("SIZE /hello.txt"); code != 450 {
		t.Errorf("SIZE while the store is down: %d %q, want 450", code, msg)
	}

	if err := ms.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}

	waitReady(t, s.admin, http.StatusOK)
	c.Must(213, "SIZE /hello.txt")

	a := ftptest.Login(t, s.addr, "anonymous", "x")
	if got := ftptest.Retr(t, a, "/hello.txt"); string(got) != "hello\n" {
		t.Errorf("got %q", got)
	}
}

// A store that never answers stops wharf after storage.startup_timeout,
// with an error naming it; with startup_timeout = 0, at once.
func TestStartGivesUpOnAStoreThatNeverAnswers(t *testing.T) {
	t.Parallel()

	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	endpoint := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now: connections are refused

	for _, tc := range []struct {
		timeout string
		within  time.Duration
	}{{"2s", 15 * time.Second}, {"0s", 12 * time.Second}} {
		env := []string{
			"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=48870-48879", "WHARF_LOG_FORMAT=json",
			"WHARF_ANONYMOUS_ROOT=/pub", "WHARF_STORAGE_BACKEND=s3", "WHARF_STORAGE_ENDPOINT=" + endpoint,
			"WHARF_STORAGE_BUCKET=files", "WHARF_STORAGE_PATH_STYLE=true", "WHARF_STORAGE_ACCESS_KEY=k",
			"WHARF_STORAGE_SECRET_KEY=s", "WHARF_STORAGE_STARTUP_TIMEOUT=" + tc.timeout,
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		start := time.Now()
		err := run(ctx, nil, env, nil, io.Discard, io.Discard)
		took := time.Since(start)
		cancel()

		want := `storage: s3 bucket "files" at ` + endpoint
		if err == nil || !strings.HasPrefix(err.Error(), want) || took > tc.within {
			t.Errorf("startup_timeout %s: run() = %v after %s, want an error starting %q within %s", tc.timeout, err,
				took, want, tc.within)
		}

		if tc.timeout != "0s" && (err == nil || !strings.Contains(err.Error(), "did not answer within storage.startup_timeout (2s)")) {
			t.Errorf("startup_timeout %s: run() = %v, want it to say how long it waited", tc.timeout, err)
		}
	}
}

// healthcheck -ready needs an admin listener to ask.
func TestHealthcheckReadyNeedsTheAdminListener(t *testing.T) {
	t.Parallel()

	_, err := healthcheckRun(t.Context(), []string{"-ready"}, []string{"WHARF_LISTEN=127.0.0.1:2121"})
	if err == nil || !strings.Contains(err.Error(), "[admin] listen") {
		t.Errorf("healthcheck -ready without an admin listener = %v, want it to say what to set", err)
	}
}
