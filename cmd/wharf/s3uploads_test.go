package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"wharf/config"
	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// Uploads to S3 seen from outside wharf's process: its peak memory under a
// burst of uploads, and what a wharf killed in the middle of uploads leaves
// on the store after it starts again.

// wharfBinary builds wharf as make build does, without the race detector,
// whose shadow memory would swamp what the memory test measures.
func wharfBinary(t *testing.T) string {
	t.Helper()

	bin := filepath.Join(t.TempDir(), "wharf")
	cmd := exec.Command(testenv.Tool(t, "go"), "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")

	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	return bin
}

// procStatus reads a field of /proc/PID/status in KiB ("VmHWM", "VmRSS").
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()

	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}

	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}

			return kib
		}
	}

	t.Fatalf("no %s in /proc/%d/status", field, pid)

	return 0
}

// metric reads one sample from wharf's /metrics on the admin listener.
func (p *process) metric(t *testing.T, series string) float64 {
	t.Helper()

	lines := p.logged("admin listening")
	if len(lines) == 0 {
		t.Fatal("no admin listener")
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet,
		"http://"+lines[0]["address"].(string)+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", series)
	}

	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}

	return v
}

// memoryOverhead is what wharf's process takes besides its part buffers
// while it receives 20 uploads into S3: the Go runtime and heap (sessions,
// the S3 client's connections and requests), its stacks and its binary.
// README states it next to storage.upload_memory.
const memoryOverhead = 48 << 20

// 20 uploads at once through a real wharf, with the default upload_memory
// (128 MiB): the process's peak resident memory stays under the budget
// plus memoryOverhead, every file arrives whole, and once the burst is over
// the part buffers go back to the system.
func TestUploadMemoryStaysBounded(t *testing.T) {
	t.Parallel()

	bin := wharfBinary(t)
	dir := t.TempDir()
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", "/up"))
	env := append(s3Env(t), "WHARF_ANONYMOUS_ROOT=/pub", "WHARF_USERS_FILE="+users,
		"WHARF_PASSIVE_PORTS=48960-48989", "WHARF_MAX_CLIENTS_PER_IP=64", "WHARF_ADMIN_LISTEN=127.0.0.1:0")
	w := startBinary(t, bin, env)
	pid := w.cmd.Process.Pid
	idle := procStatus(t, pid, "VmRSS") << 10

	const n, size = 20, 48 << 20

	data := ftptest.RandomBytes(size)

	var wg sync.WaitGroup

	for i := range n {
		wg.Go(func() {
			c := ftptest.Login(t, w.addr, "alice", "pw")
			if err := c.Stor(fmt.Sprintf("/f%02d.bin", i), bytes.NewReader(data)); err != nil {
				t.Errorf("upload %d: %v", i, err)
			}
		})
	}

	wg.Wait()

	peak := procStatus(t, pid, "VmHWM") << 10
	budget := int64(config.DefaultUploadMemory)
	t.Logf("peak RSS %d MiB (idle %d MiB) for %d uploads of %d MiB, budget %d MiB; part memory peak %.0f MiB, "+
		"%.0f reservations waited", peak>>20, idle>>20, n, size>>20, budget>>20,
		w.metric(t, "wharf_storage_upload_memory_peak_bytes")/(1<<20), w.metric(t, "wharf_storage_upload_memory_waits_total"))

	if peak > budget+memoryOverhead {
		t.Errorf("peak RSS %d MiB, want at most the budget plus %d MiB (%d MiB)", peak>>20, memoryOverhead>>20,
			(budget+memoryOverhead)>>20)
	}

	if got := w.metric(t, "wharf_storage_upload_memory_peak_bytes"); got > float64(budget) {
		t.Errorf("part memory peaked at %.0f bytes, above the budget", got)
	}

	a := ftptest.Login(t, w.addr, "alice", "pw")
	for i := range n {
		if got := ftptest.Retr(t, a, fmt.Sprintf("/f%02d.bin", i)); !bytes.Equal(got, data) {
			t.Fatalf("f%02d.bin: %d bytes, differs from the upload", i, len(got))
		}
	}

	// The chunks idle since the burst go back to the kernel within two trims.
	ftptest.WaitFor(t, 20*time.Second, func() bool {
		return w.metric(t, "wharf_storage_upload_memory_mapped_bytes") == 0
	})
	t.Logf("RSS %d MiB after the burst", procStatus(t, pid, "VmRSS")>>10)
}

// minioServer is a MinIO of the test's own, on a free port with its own
// data folder, which the test may kill and start again.
type minioServer struct {
	bin, dir, addr string
	cmd            *exec.Cmd
}

// startMinIO starts a MinIO from PATH or GOPATH/bin, where .ci/run installs it.
func startMinIO(t *testing.T) *minioServer {
	t.Helper()

	bin, err := exec.LookPath("minio")
	if err != nil {
		gopath, gerr := exec.Command(testenv.Tool(t, "go"), "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "minio")

		if _, err := os.Stat(bin); gerr != nil || err != nil {
			testenv.Missing(t, "minio is not installed: .ci/run builds it into GOPATH/bin")
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	m := &minioServer{bin: bin, dir: t.TempDir(), addr: l.Addr().String()}
	_ = l.Close()

	m.start(t)
	t.Cleanup(func() { m.kill() })

	return m
}

const minioUser, minioPass = "wharftest", "wharftestsecret"

func (m *minioServer) start(t *testing.T) {
	t.Helper()

	console, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	consoleAddr := console.Addr().String()
	_ = console.Close()

	m.cmd = exec.Command(m.bin, "server", "--quiet", "--address", m.addr, "--console-address", consoleAddr,
		filepath.Join(m.dir, "data"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPass,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard

	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}

	ftptest.WaitFor(t, 60*time.Second, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+m.addr+"/minio/health/ready", nil)
		if err != nil {
			return false
		}

		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}

		_ = resp.Body.Close()

		return resp.StatusCode == http.StatusOK
	})
}

// kill stops MinIO with SIGKILL.
func (m *minioServer) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGKILL)
		_ = m.cmd.Wait()
	}
}

func (m *minioServer) client(t *testing.T) *minio.Core {
	t.Helper()

	c, err := minio.NewCore(m.addr, &minio.Options{
		Creds: credentials.NewStaticV4(minioUser, minioPass, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}

	return c
}

// uploadsOf lists the incomplete uploads of key, by exact key (the only
// listing of them MinIO answers for a key below the bucket's top).
func uploadsOf(t *testing.T, c *minio.Core, bucket, key string) int {
	t.Helper()

	res, err := c.ListMultipartUploads(t.Context(), bucket, key, "", "", "", 1000)
	if err != nil {
		t.Fatalf("list uploads of %s: %v", key, err)
	}

	n := 0
	for _, up := range res.Uploads {
		if up.Key == key {
			n++
		}
	}

	return n
}

// kill -9 in the middle of 5 uploads to S3 leaves 5 incomplete multipart
// uploads. MinIO is then killed and started again too (it forgets which
// uploads it had started, so that only listing each key finds them), and
// wharf is started again with abandoned_upload_age = "2s": within 10 s
// every upload is aborted (listed by exact key: none left), each logged
// and counted in wharf_storage_uploads_aborted_total.
func TestAbandonedUploadsAbortedAfterKill(t *testing.T) {
	t.Parallel()

	m := startMinIO(t)
	c := m.client(t)

	var b [6]byte
	_, _ = rand.Read(b[:])
	bucket := "wharf-kill-" + hex.EncodeToString(b[:])

	if err := c.MakeBucket(t.Context(), bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", "/up"))
	env := []string{
		"WHARF_STORAGE_BACKEND=s3", "WHARF_STORAGE_ENDPOINT=http://" + m.addr, "WHARF_STORAGE_BUCKET=" + bucket,
		"WHARF_STORAGE_PREFIX=site", "WHARF_STORAGE_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID=" + minioUser, "AWS_SECRET_ACCESS_KEY=" + minioPass,
		"WHARF_ANONYMOUS_ROOT=/pub", "WHARF_USERS_FILE=" + users, "WHARF_PASSIVE_PORTS=48990-48999",
		"WHARF_ADMIN_LISTEN=127.0.0.1:0",
	}

	first := startKillable(t, env)

	const n = 5

	part := ftptest.RandomBytes(20 << 20) // more than a part: a multipart upload runs

	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("site/up/f%d.bin", i)
		ctl := ftptest.Dial(t, first.addr, nil)
		ctl.Login("alice", "pw")
		ctl.Must(200, "TYPE I")
		conn := ctl.DialPasv()
		ctl.Must(150, "STOR f%d.bin", i)

		if _, err := conn.Write(part); err != nil {
			t.Fatal(err)
		}
	}

	for _, k := range keys {
		ftptest.WaitFor(t, 30*time.Second, func() bool { return uploadsOf(t, c, bucket, k) == 1 })
	}

	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL: no defer, no abort runs
		t.Fatal(err)
	}

	_ = first.cmd.Wait()

	m.kill()
	m.start(t)

	for _, k := range keys {
		if got := uploadsOf(t, c, bucket, k); got != 1 {
			t.Fatalf("%s: %d incomplete uploads after the kills, want 1", k, got)
		}
	}

	second := startKillable(t, append(env, "WHARF_STORAGE_ABANDONED_UPLOAD_AGE=2s"))
	started := time.Now()

	ftptest.WaitFor(t, 10*time.Second, func() bool {
		for _, k := range keys {
			if uploadsOf(t, c, bucket, k) != 0 {
				return false
			}
		}

		return true
	})
	t.Logf("the %d uploads were aborted %s after wharf started again", n, time.Since(started).Round(100*time.Millisecond))

	ftptest.WaitFor(t, 5*time.Second, func() bool { return len(second.logged("abandoned upload aborted")) == n })

	for _, e := range second.logged("abandoned upload aborted") {
		if !strings.HasPrefix(e["key"].(string), "site/up/f") || e["upload_id"] == "" {
			t.Errorf("log line %v", e)
		}
	}

	if got := second.metric(t, `wharf_storage_uploads_aborted_total{reason="abandoned"}`); got != n {
		t.Errorf("wharf_storage_uploads_aborted_total{reason=\"abandoned\"} = %v, want %d", got, n)
	}

	// Nothing is left: no object, no journal entry.
	for oi := range c.Client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("left in the bucket: %s (%v)", oi.Key, oi.Err)
	}
}
