package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/internal/testenv"
)

// needTool returns the path of a client binary (curl, lftp, wget, python3).
func needTool(t *testing.T, name string) string {
	t.Helper()

	return testenv.Tool(t, name)
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}

	return out
}

func interopServer(t *testing.T, mode TLSMode) (*testServer, string, string) {
	t.Helper()

	root := makeTree(t)
	home := t.TempDir()
	f := fixture{
		opts:  defaultOptions(),
		anon:  root,
		users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}},
	}

	if mode != TLSOff {
		f.opts.TLSMode = mode
		f.opts.RequireSessionReuse = true // the default of [tls] require_session_reuse
		f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
	}

	return startServer(t, f), root, home
}

func TestCurl(t *testing.T) {
	t.Parallel()

	curl := needTool(t, "curl")

	for _, tc := range []struct {
		name  string
		mode  TLSMode
		flags []string
	}{
		{"plain FTP", TLSOff, nil},
		{"explicit FTPS", TLSExplicit, []string{"--ssl-reqd", "--insecure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			ts, root, home := interopServer(t, tc.mode)
			base := "ftp://" + ts.addr
			args := func(more ...string) []string {
				return append(append([]string{"--silent", "--show-error", "--max-time", "30"}, tc.flags...), more...)
			}

			listing := runTool(t, curl, args(base+"/pub/")...)
			for _, name := range []string{"big.bin", "crlf.txt", "été ünïcode.txt"} {
				if !bytes.Contains(listing, []byte(name)) {
					t.Errorf("listing lacks %q:\n%s", name, listing)
				}
			}

			out := filepath.Join(t.TempDir(), "big.bin")
			runTool(t, curl, args("--output", out, base+"/pub/big.bin")...)
			want, _ := os.ReadFile(filepath.Join(root, "pub", "big.bin"))
			if got, _ := os.ReadFile(out); ftptest.Sum(got) != ftptest.Sum(want) {
				t.Fatalf("curl download differs (%d bytes)", len(got))
			}

			up := filepath.Join(t.TempDir(), "up.bin")
			payload := ftptest.RandomBytes(200_000)
			writeFile(t, up, payload)
			runTool(t, curl, args("--user", "alice:"+testPassword, "--upload-file", up, base+"/up.bin")...)
			if got, _ := os.ReadFile(filepath.Join(home, "up.bin")); ftptest.Sum(got) != ftptest.Sum(payload) {
				t.Fatalf("curl upload differs (%d bytes)", len(got))
			}

			out2 := filepath.Join(t.TempDir(), "readme")
			runTool(t, curl, args("--use-ascii", "--output", out2, base+"/README.txt")...)
			if got, _ := os.ReadFile(out2); string(got) != "hello from wharf\n" {
				t.Fatalf("ASCII-mode download: %q", got)
			}
		})
	}
}

func TestLftpMirror(t *testing.T) {
	t.Parallel()

	lftp := needTool(t, "lftp")
	ts, root, _ := interopServer(t, TLSOff)

	tree := filepath.Join(root, "tree")
	for i := range 200 {
		name := filepath.Join(tree, fmt.Sprintf("d%02d", i%10), fmt.Sprintf("file-%03d.dat", i))
		writeFile(t, name, ftptest.RandomBytes(1+i*97))
	}

	writeFile(t, filepath.Join(tree, "name with spaces.txt"), []byte("spaces\n"))
	writeFile(t, filepath.Join(tree, "ünïcødé-名前.txt"), []byte("utf-8\n"))

	host, port, _ := net.SplitHostPort(ts.addr)
	dest := filepath.Join(t.TempDir(), "tree")
	script := fmt.Sprintf("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; "+
		"open -u anonymous,guest@example.com -p %s %s; mirror --parallel=4 /tree %s", port, host, dest)
	runTool(t, lftp, "-c", script)

	if out, err := exec.CommandContext(context.Background(), "diff", "-r", tree, dest).CombinedOutput(); err != nil {
		t.Fatalf("mirror differs from the source: %v\n%s", err, out)
	}
}

// lftp over explicit FTPS with protected data, in passive and active mode.
func TestLftpTLS(t *testing.T) {
	t.Parallel()

	lftp := needTool(t, "lftp")
	ts, _, home := interopServer(t, TLSRequired)
	host, port, _ := net.SplitHostPort(ts.addr)

	for _, passive := range []string{"on", "off"} {
		up := filepath.Join(t.TempDir(), "up-"+passive+".bin")
		payload := ftptest.RandomBytes(100_000)
		writeFile(t, up, payload)

		script := fmt.Sprintf("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; "+
			"set ssl:verify-certificate no; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ftp:passive-mode %s; "+
			"open -u alice,%s -p %s %s; put %s -o /up-%s.bin; cat /up-%s.bin > /dev/null", passive, testPassword, port, host, up, passive, passive)
		runTool(t, lftp, "-c", script)

		if got, _ := os.ReadFile(filepath.Join(home, "up-"+passive+".bin")); ftptest.Sum(got) != ftptest.Sum(payload) {
			t.Fatalf("passive-mode %s: upload differs (%d bytes)", passive, len(got))
		}
	}
}
