package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/crypto/bcrypt"

	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

const image = "localhost/wharf:latest"

// podman runs podman as CI runs it here: runc, cgroupfs, no systemd.
func podman(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "podman", append([]string{"--runtime", "runc", "--cgroup-manager=cgroupfs"}, args...)...)
}

// needPodman skips the test, saying why, where podman cannot run containers.
func needPodman(t *testing.T) {
	t.Helper()

	testenv.Tool(t, "podman")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	if out, err := podman(ctx, "info").CombinedOutput(); err != nil {
		testenv.Missing(t, "podman cannot run containers here (%v): skipping the image test\n%s", err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port
}

// TestImage builds the image and runs it twice, as operators configure it:
// through WHARF_* variables only, and with a mounted file that holds
// nothing but an account. Both must keep the image's own settings (the
// anonymous tree /srv/ftp/public, JSON logs) and serve anonymous downloads
// and the account's uploads.
func TestImage(t *testing.T) {
	needPodman(t)

	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()

	build := exec.CommandContext(ctx, "make", "-C", "..", "image")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	tests := []struct {
		name string
		// mount is the podman arguments that hand the users file (on the
		// host at users) to the container.
		mount func(users string) []string
		// empty starts on a fresh volume, owned by the container's user,
		// with neither public/ nor home/alice: the image makes them
		// (create_missing).
		empty bool
	}{
		{"configured through variables only", func(users string) []string {
			return []string{"-v", users + ":/etc/wharf/users.toml:ro", "-e", "WHARF_USERS_FILE=/etc/wharf/users.toml"}
		}, false},
		{"a mounted configuration holding only an account keeps the image's settings", func(users string) []string {
			return []string{"-v", users + ":/etc/wharf/wharf.toml:ro"}
		}, false},
		{"an empty volume: the image makes the anonymous tree and the home", func(users string) []string {
			return []string{"-v", users + ":/etc/wharf/wharf.toml:ro"}
		}, true},
	}

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A volume laid out as the image expects (public/ for anonymous,
			// home/alice for the account), and a users file handed over by mount.
			name := fmt.Sprintf("wharf-test-%d-%d", os.Getpid(), i)

			data := t.TempDir()
			payload := make([]byte, 3<<20)
			_, _ = rand.Read(payload)

			if tt.empty {
				// A fresh volume: the container's user owns it, nothing else.
				if err := os.Chown(data, 10001, 10001); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, d := range []string{"public", "home/alice"} {
					if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
						t.Fatal(err)
					}
				}

				if err := os.WriteFile(filepath.Join(data, "public", "release.bin"), payload, 0o644); err != nil {
					t.Fatal(err)
				}

				// The container runs as uid 10001: alice's home must be its to write.
				if err := os.Chown(filepath.Join(data, "home", "alice"), 10001, 10001); err != nil {
					t.Fatal(err)
				}
			}

			if err := os.Chmod(data, 0o755); err != nil {
				t.Fatal(err)
			}

			// The accounts file is the container user's alone, as wharf asks of a
			// file holding password hashes.
			hash, _ := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
			users := filepath.Join(t.TempDir(), "users.toml")
			entry := fmt.Sprintf("[[users]]\nname = \"alice\"\npassword = %q\nhome = \"/srv/ftp/home/alice\"\naccess = \"read-write\"\n", hash)
			if err := os.WriteFile(users, []byte(entry), 0o600); err != nil {
				t.Fatal(err)
			}

			if err := os.Chown(users, 10001, 10001); err != nil {
				t.Fatal(err)
			}

			port := freePort(t)
			pasv := freePort(t)
			addr := fmt.Sprintf("127.0.0.1:%d", port)

			// The variables below only fit the container to the test's host
			// network: every setting the test checks comes from the image.
			args := []string{"run", "-d", "--name", name, "--network=host",
				"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
				"-v", data + ":/srv/ftp",
				"-e", "WHARF_LISTEN=" + addr,
				"-e", fmt.Sprintf("WHARF_PASSIVE_PORTS=%d-%d", pasv, pasv),
				"-e", "WHARF_SHUTDOWN_TIMEOUT=5s"}
			args = append(args, tt.mount(users)...)
			args = append(args, image)

			if out, err := podman(ctx, args...).CombinedOutput(); err != nil {
				t.Fatalf("podman run: %v\n%s", err, out)
			}

			t.Cleanup(func() {
				cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer ccancel()
				_ = podman(cctx, "rm", "-f", name).Run()
			})

			c := dialWithRetry(t, addr)
			if err := c.Login("anonymous", "test@example.com"); err != nil {
				t.Fatal(logsOf(ctx, name, err))
			}

			entries := ftptest.List(t, c, "/")
			if tt.empty {
				if len(entries) != 0 {
					t.Fatalf("anonymous listing of the tree the image made: %v", entries)
				}

				_ = c.Quit()
			} else {
				if len(entries) != 1 || entries[0].Name != "release.bin" {
					t.Fatalf("anonymous listing: %v", entries)
				}

				got := ftptest.Retr(t, c, "/release.bin")
				_ = c.Quit()

				if sha256.Sum256(got) != sha256.Sum256(payload) {
					t.Fatalf("downloaded %d bytes with a different checksum", len(got))
				}
			}

			u := dialWithRetry(t, addr)
			if err := u.Login("alice", "alice-pw"); err != nil {
				t.Fatal(logsOf(ctx, name, err))
			}

			if err := u.Stor("/up.txt", strings.NewReader("uploaded through the image")); err != nil {
				t.Fatal(logsOf(ctx, name, err))
			}
			_ = u.Quit()

			if b, _ := os.ReadFile(filepath.Join(data, "home", "alice", "up.txt")); string(b) != "uploaded through the image" {
				t.Fatalf("upload landed as %q", b)
			}

			// Commands run in the container read the server's file (WHARF_CONFIG)
			// without being told.
			out, err := podman(ctx, "exec", name, "/usr/local/bin/wharf", "check-config").CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("/etc/wharf/wharf.toml: OK")) {
				t.Errorf("wharf check-config in the container: %v\n%s", err, out)
			}

			if out, err := podman(ctx, "healthcheck", "run", name).CombinedOutput(); err != nil {
				t.Errorf("the image's HEALTHCHECK failed: %v\n%s", err, out)
			}

			// SIGTERM: a graceful stop (exit 0, "stopped" logged), and every log line is JSON.
			if out, err := podman(ctx, "stop", "-t", "15", name).CombinedOutput(); err != nil {
				t.Fatalf("podman stop: %v\n%s", err, out)
			}

			code, err := podman(ctx, "inspect", "--format", "{{.State.ExitCode}}", name).Output()
			if err != nil || strings.TrimSpace(string(code)) != "0" {
				t.Errorf("exit code after SIGTERM: %q, %v", code, err)
			}

			logs, _ := podman(ctx, "logs", name).Output()
			for line := range bytes.SplitSeq(bytes.TrimSpace(logs), []byte("\n")) {
				var entry map[string]any
				if err := json.Unmarshal(line, &entry); err != nil {
					t.Fatalf("a log line is not JSON: %q", line)
				}
			}

			if !bytes.Contains(logs, []byte(`"msg":"stopped"`)) {
				t.Errorf("no graceful stop in the logs:\n%s", logs)
			}
		})
	}
}

func dialWithRetry(t *testing.T, addr string) *ftp.ServerConn {
	t.Helper()

	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := ftp.Dial(addr, ftp.DialWithTimeout(5*time.Second))
		if err == nil {
			return c
		}

		if time.Now().After(deadline) {
			t.Fatalf("the container does not answer on %s: %v", addr, err)
		}

		time.Sleep(200 * time.Millisecond)
	}
}

func logsOf(ctx context.Context, name string, err error) error {
	out, _ := podman(ctx, "logs", name).CombinedOutput()

	return fmt.Errorf("%w\ncontainer logs:\n%s", err, bytes.TrimSpace(out))
}
