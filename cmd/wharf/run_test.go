package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"wharf/auth"
	"wharf/config"
	"wharf/internal/ftptest"
)

// The whole program: a TOML file in, a served file out, a clean stop.
func TestRunServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub")
	home := filepath.Join(dir, "alice")
	for _, d := range []string{pub, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.WriteFile(filepath.Join(pub, "hello.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	cfgPath := filepath.Join(dir, "wharf.toml")
	cfg := fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27000, 27049]
shutdown_timeout = "5s"

[log]
format = "json"
transfer_log = %q

[anonymous]
root = %q

[[users]]
name = "alice"
password = %q
home = %q
access = "read-write"
`, filepath.Join(dir, "xferlog"), pub, hash, home)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	wharf := startRun(t, []string{"--config", cfgPath}, nil)
	addr := wharf.addr

	c := ftptest.Login(t, addr, "alice", "pw")

	if err := c.Stor("/up.txt", strings.NewReader("uploaded")); err != nil {
		t.Fatal(err)
	}

	if got, _ := os.ReadFile(filepath.Join(home, "up.txt")); string(got) != "uploaded" {
		t.Fatalf("got %q", got)
	}

	_ = c.Quit()

	a := ftptest.Login(t, addr, "anonymous", "x")

	got := ftptest.Retr(t, a, "/hello.txt")
	_ = a.Quit()

	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	wharf.stop()

	if xfer, _ := os.ReadFile(filepath.Join(dir, "xferlog")); bytes.Count(xfer, []byte("\n")) != 2 {
		t.Fatalf("transfer log: %q", xfer)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}

	if !strings.HasPrefix(out.String(), "wharf ") {
		t.Fatalf("got %q", out.String())
	}
}

func TestHelpListsSubcommands(t *testing.T) {
	t.Parallel()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"-help"}, nil, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{
		"-config", "-version", "-listen", "-public-host", "-log-level", "check-config", "-print", "healthcheck", "doctor",
		"hash-password", "WHARF_CONFIG", "WHARF_LISTEN", "wharf version", "wharf help [COMMAND]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()

	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-password"}, nil, strings.NewReader("correct horse\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}

	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Fatalf("%q is not a hash of the password: %v", hash, err)
	}

	if err := run(context.Background(), []string{"hash-password"}, nil, strings.NewReader(""), io.Discard, io.Discard); err == nil {
		t.Fatal("an empty password was hashed")
	}
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	content := "pasive_ports = [1, 2]\nidle_timeout = 900\n\n[[users]]\nname = \"bob\"\npassword = \"plain\"\nhome = \"/does/not/exist\"\n"
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err := run(context.Background(), []string{"check-config", "-config", bad}, nil, nil, &out, io.Discard)
	if err == nil {
		t.Fatal("check-config accepted a bad file")
	}

	for _, want := range []string{"pasive_ports", "idle_timeout", `"bob"`, "password", "home", bad} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, fmt.Appendf(nil, "[anonymous]\nroot = %q\n", dir), 0o644); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := run(context.Background(), []string{"check-config", "--config", good}, nil, nil, &out, io.Discard); err != nil {
		t.Fatalf("check-config refused a good file: %v\n%s", err, out.String())
	}
}

// runWharf runs the test binary as wharf (see TestMain) with args and env
// added to the test's environment, and returns its standard output and
// error and its exit code. A wharf still running after 30 s is killed (exit
// code -1): a server that should have refused to start.
func runWharf(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()

	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asWharf+"=1"), env...)

	return runCmd(t, cmd)
}

// runCmd runs cmd, a wharf command, as runWharf does.
func runCmd(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()

	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut

	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// exec.CommandContext's kill, for a command made without a context.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()

	err := cmd.Wait()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		t.Fatal(err)
	}

	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// config.toml.example, copied and its account uncommented as it stands, is
// refused: the placeholder is named, with the key and the file.
func TestCheckConfigRefusesTheExampleAccount(t *testing.T) {
	t.Parallel()

	text, err := os.ReadFile("../../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	pub, home := filepath.Join(dir, "pub"), filepath.Join(dir, "home", "alice")
	mkdirs(t, dir, "pub", "home/alice")

	data := regexp.MustCompile(`(?m)^#(\[\[users\]\]|\w+ = )`).ReplaceAllString(string(text), "$1")
	data = strings.NewReplacer(`root = "./public"`, fmt.Sprintf("root = %q", pub),
		`"/srv/ftp/home/alice"`, fmt.Sprintf("%q", home)).Replace(data)
	file := writeFile(t, dir, "wharf.toml", data)

	out, _, code := runWharf(t, nil, "check-config", "-config", file)
	want := file + `: users[0] "alice": password: the placeholder of the example configuration, not a hash: ` +
		"put the output of wharf hash-password here\n"
	if code != 1 || out != want {
		t.Errorf("check-config of the example with its account: exit %d, output\n%s\nwant exit 1 and\n%s", code, out, want)
	}

	// As shipped, with the account commented out, the example is fine.
	file = writeFile(t, dir, "shipped.toml", strings.ReplaceAll(string(text), `root = "./public"`, fmt.Sprintf("root = %q", pub)))
	if out, errOut, code := runWharf(t, nil, "check-config", "-config", file); code != 0 {
		t.Errorf("check-config of the example as shipped: exit %d\n%s%s", code, out, errOut)
	}
}

// The TLS keys reach the accounts: [tls] clear_text_accounts, and each user's tls.
func TestAccountOptionsCarryTheTLSRules(t *testing.T) {
	t.Parallel()

	cfg := config.Default()
	cfg.TLS.ClearTextAccounts = true
	cfg.Users = []config.User{{Name: "alice", TLS: config.TLSRule(auth.TLSRequired)}, {Name: "bob", TLS: config.TLSRule(auth.TLSOptional)}, {Name: "carol"}}

	opts := accountOptions(cfg)
	if !opts.ClearTextAccounts {
		t.Error("ClearTextAccounts = false, want true")
	}

	want := []auth.TLSRule{auth.TLSRequired, auth.TLSOptional, auth.TLSDefault}
	for i, u := range opts.Users {
		if u.TLS != want[i] {
			t.Errorf("users[%d].TLS = %q, want %q", i, u.TLS, want[i])
		}
	}
}
