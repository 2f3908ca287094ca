// Package miniotest runs a MinIO server of its own, for the tests and the
// stress scenario that take the store away: on free loopback ports, with its
// own data folder, killed with SIGKILL and started again on the same port
// and data, as a store that crashes and restarts. (The other S3 tests share
// the MinIO that .ci/run starts: see testenv.NeedS3.)
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// startTimeout bounds a start, from the exec to the first healthy answer.
const startTimeout = 60 * time.Second

// Binary returns the path of the minio binary: on PATH, else in the Go
// bin folder (GOBIN, else GOPATH/bin), where .ci/run installs it.
func Binary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}

	var dirs []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}

	if gopath := goEnv("GOPATH"); gopath != "" {
		for p := range strings.SplitSeq(gopath, string(os.PathListSeparator)) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}

	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}

	return "", errors.New("minio is not installed: go install github.com/minio/minio@latest (as .ci/run does), or put it on PATH")
}

// goEnv is a variable of the environment, else what `go env` says.
func goEnv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}

	out, err := exec.Command("go", "env", name).Output() //nolint:noctx // a quick local question
	if err != nil {
		return ""
	}

	return strings.TrimSpace(string(out))
}

// Server is one MinIO process, and what it takes to start it again.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	bin     string
	dir     string // data in dir/data, log in dir/minio.log
	addr    string
	console string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts MinIO with its data and log in dir (made if missing), on
// free ports of 127.0.0.1, and waits until it answers.
func Start(ctx context.Context, bin, dir string) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}

	secret := make([]byte, 16)
	_, _ = rand.Read(secret)

	s := &Server{
		AccessKey: "wharftest",
		SecretKey: hex.EncodeToString(secret),
		bin:       bin,
		dir:       dir,
		addr:      net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0])),
		console:   net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[1])),
	}
	s.Endpoint = "http://" + s.addr

	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}

	return s, s.Restart(ctx)
}

// freePorts returns n ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	var (
		ports []int
		held  []net.Listener
	)

	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()

	for range n {
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}

		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}

	return ports, nil
}

// Restart starts MinIO again (or for the first time), on the same port and
// data, and waits until it answers. It fails if MinIO is running.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.cmd != nil {
		select {
		case <-s.exited:
		default:
			return errors.New("minio is running")
		}
	}

	log, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()

	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.addr, "--console-address", s.console, //nolint:gosec,noctx // the test's own MinIO; Kill ends it
		filepath.Join(s.dir, "data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()

	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	s.cmd, s.exited = cmd, exited

	return s.waitLive(ctx, exited)
}

// waitLive polls MinIO's liveness check until it answers 200.
func (s *Server) waitLive(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/live", http.NoBody)
		if err != nil {
			return err
		}

		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}

		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))

			return fmt.Errorf("minio exited at start: %s", strings.TrimSpace(string(out)))
		case <-ctx.Done():
			return fmt.Errorf("minio did not answer on %s: %w", s.addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill ends MinIO with SIGKILL, as a crash would: its connections are
// reset and its port refuses connections until Restart. It waits until
// the process is gone. Killing a MinIO that is not running does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.cmd == nil {
		return
	}

	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// Client is a plain S3 client of this MinIO, for a test's own checks.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.addr, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
}

// MakeBucket makes a bucket.
func (s *Server) MakeBucket(ctx context.Context, name string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}

	return c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"})
}
