package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/bcrypt"

	"wharf/internal/ftptest"
	"wharf/vfs"
)

// started is a run() serving in the background.
type started struct {
	addr  string           // the control address, from the "listening" line
	admin string           // the admin listener's address, if there is one
	logs  []map[string]any // the JSON log lines up to "wharf started"
	stop  func()           // cancels run and expects it to return nil; Cleanup calls it too
}

// startRun calls run with args and env, which must log JSON to stdout, and
// returns once it has started.
func startRun(t *testing.T, args, env []string) started {
	t.Helper()

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)

	go func() {
		done <- run(ctx, args, env, strings.NewReader(""), pw, io.Discard)
		_ = pw.Close()
	}()

	var once sync.Once
	s := started{stop: func() {
		once.Do(func() {
			cancel()

			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("run did not return after cancel")
			}
		})
	}}
	t.Cleanup(s.stop)

	lines := bufio.NewScanner(pr)
	for lines.Scan() {
		var entry map[string]any
		if err := json.Unmarshal(lines.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", lines.Text())
		}

		s.logs = append(s.logs, entry)
		switch entry["msg"] {
		case "listening":
			s.addr, _ = entry["address"].(string)
		case "admin listening":
			s.admin, _ = entry["address"].(string)
		}

		if entry["msg"] == "wharf started" {
			break
		}
	}

	if s.addr == "" {
		t.Fatal("no 'listening' line")
	}

	go func() { _, _ = io.Copy(io.Discard, pr) }()

	return s
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()

	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	return path
}

// mkdirs makes the folders under dir and returns their paths.
func mkdirs(t *testing.T, dir string, names ...string) []string {
	t.Helper()

	paths := make([]string, 0, len(names))
	for _, name := range names {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(path, 0o750); err != nil {
			t.Fatal(err)
		}

		paths = append(paths, path)
	}

	return paths
}

// userTOML is a [[users]] table for name with password pw and home.
func userTOML(t *testing.T, name, pw, home string) string {
	t.Helper()

	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	return fmt.Sprintf("[[users]]\nname = %q\npassword = %q\nhome = %q\naccess = \"read-write\"\n", name, hash, home)
}

// No file at all: the environment configures the server, accounts included
// through users_file, and the -listen flag wins over WHARF_LISTEN.
func TestRunFromTheEnvironmentOnly(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	dirs := mkdirs(t, dir, "pub", "alice")
	pub, home := dirs[0], dirs[1]
	// Published for everyone: anonymous users see only what others may read.
	if err := os.Chmod(writeFile(t, pub, "hello.txt", "hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	users := writeFile(t, dir, "users.toml", userTOML(t, "alice", "pw", home))

	env := []string{
		"WHARF_LISTEN=not-an-address", // the flag below wins
		"WHARF_PASSIVE_PORTS=28700-28749",
		"WHARF_LOG_FORMAT=json",
		"WHARF_SHUTDOWN_TIMEOUT=5s",
		"WHARF_ANONYMOUS_ROOT=" + pub,
		"WHARF_USERS_FILE=" + users,
		"WHARF_NOT_A_KEY=1",
		"PATH=/usr/bin",
	}
	s := startRun(t, []string{"--listen", "127.0.0.1:0"}, env)

	warned := false
	for _, entry := range s.logs {
		if entry["msg"] == "unknown environment variable" && entry["level"] == "warn" {
			if entry["name"] != "WHARF_NOT_A_KEY" {
				t.Errorf("warning names %v, want WHARF_NOT_A_KEY", entry["name"])
			}
			warned = true
		}
	}
	if !warned {
		t.Error(`no "unknown environment variable" warning`)
	}

	a := ftptest.Login(t, s.addr, "anonymous", "x")

	got := ftptest.Retr(t, a, "/hello.txt")
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	c := ftptest.Login(t, s.addr, "alice", "pw")
	if err := c.Stor("/up.txt", strings.NewReader("uploaded")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(home, "up.txt")); string(got) != "uploaded" {
		t.Fatalf("got %q", got)
	}
}

func TestRunRefusesABadVariable(t *testing.T) {
	t.Parallel()

	err := run(context.Background(), nil, []string{"WHARF_IDLE_TIMEOUT=15", "WHARF_ANONYMOUS_ROOT=" + t.TempDir()},
		nil, io.Discard, io.Discard)
	if want := `WHARF_IDLE_TIMEOUT: "15": want a duration such as "15m"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run() = %v, want %q", err, want)
	}
}

// check-config -print shows the merged configuration, secrets redacted.
func TestCheckConfigPrint(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	home := mkdirs(t, dir, "alice")[0]
	file := writeFile(t, dir, "wharf.toml", "max_clients = 3\nmax_clients_per_ip = 2\n"+userTOML(t, "alice", "pw", home)+
		"tls = \"optional\"\n")
	secret := writeFile(t, dir, "secret", "s3cr3t\n")

	env := []string{
		"WHARF_CONFIG=" + file,
		"WHARF_MAX_CLIENTS=7",
		"WHARF_PUBLIC_HOST=192.0.2.1",
		"WHARF_ANONYMOUS_ROOT=/pub",
		"WHARF_STORAGE_BACKEND=s3",
		"WHARF_STORAGE_BUCKET=files",
		"WHARF_STORAGE_ACCESS_KEY=AKIAEXAMPLE",
		"WHARF_STORAGE_SECRET_KEY_FILE=" + secret,
		"WHARF_TLS_CLEAR_TEXT_ACCOUNTS=true",
		"WHARF_LISTING_HIDE=*.tmp, README*",
		"WHARF_BOGUS=1",
	}

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "-print", "-public-host", "192.0.2.7"}, env, nil,
		&out, &errOut); err != nil {
		t.Fatalf("check-config -print: %v\n%s", err, out.String())
	}

	for _, secret := range []string{"$2a$", "AKIAEXAMPLE", "s3cr3t"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("output shows %q:\n%s", secret, out.String())
		}
	}

	var got struct {
		MaxClients      int    `toml:"max_clients"`
		MaxClientsPerIP int    `toml:"max_clients_per_ip"`
		PublicHost      string `toml:"public_host"`
		TLS             struct {
			ClearTextAccounts bool `toml:"clear_text_accounts"`
		} `toml:"tls"`
		Storage struct {
			Bucket    string `toml:"bucket"`
			AccessKey string `toml:"access_key"`
			SecretKey string `toml:"secret_key"`
		} `toml:"storage"`
		Users []struct {
			Name     string `toml:"name"`
			Password string `toml:"password"`
			TLS      string `toml:"tls"`
		} `toml:"users"`
		BannerFile *string `toml:"banner_file"`
		Anonymous  struct {
			LoginMessageFile  *string `toml:"login_message_file"`
			WorldReadableOnly *bool   `toml:"world_readable_only"`
		} `toml:"anonymous"`
		Listing struct {
			Symlinks    string   `toml:"symlinks"`
			Hide        []string `toml:"hide"`
			Deny        []string `toml:"deny"`
			MessageFile string   `toml:"message_file"`
			Recursive   *bool    `toml:"recursive"`
		} `toml:"listing"`
	}
	if _, err := toml.Decode(out.String(), &got); err != nil {
		t.Fatalf("output is not TOML: %v\n%s", err, out.String())
	}

	if got.MaxClients != 7 || got.MaxClientsPerIP != 2 || got.PublicHost != "192.0.2.7" {
		t.Errorf("max_clients, max_clients_per_ip, public_host = %d, %d, %q; want 7 (env), 2 (file), 192.0.2.7 (flag)",
			got.MaxClients, got.MaxClientsPerIP, got.PublicHost)
	}
	if got.Storage.Bucket != "files" || got.Storage.AccessKey != "<redacted>" || got.Storage.SecretKey != "<redacted>" {
		t.Errorf("storage = %+v, want bucket files and both keys redacted", got.Storage)
	}
	if len(got.Users) != 1 || got.Users[0].Name != "alice" || got.Users[0].Password != "<redacted>" ||
		got.Users[0].TLS != "optional" {
		t.Errorf("users = %+v, want alice with a redacted password and tls optional", got.Users)
	}
	if !got.TLS.ClearTextAccounts {
		t.Errorf("tls.clear_text_accounts = false, want true from WHARF_TLS_CLEAR_TEXT_ACCOUNTS:\n%s", out.String())
	}

	// The keys of issue 11, with their defaults but for hide, from the environment.
	l := got.Listing
	if l.Symlinks != "links" || !slices.Equal(l.Hide, []string{"*.tmp", "README*"}) ||
		!slices.Equal(l.Deny, vfs.DefaultDeny()) || l.MessageFile != ".message" ||
		l.Recursive == nil || *l.Recursive {
		t.Errorf("[listing] = %+v, want the defaults with hide from WHARF_LISTING_HIDE:\n%s", l, out.String())
	}
	if a := got.Anonymous; got.BannerFile == nil || *got.BannerFile != "" || a.LoginMessageFile == nil ||
		*a.LoginMessageFile != "" || a.WorldReadableOnly == nil || !*a.WorldReadableOnly {
		t.Errorf("banner_file, anonymous.login_message_file and world_readable_only not shown with their defaults:\n%s",
			out.String())
	}

	if !strings.Contains(errOut.String(), "unknown environment variable WHARF_BOGUS") {
		t.Errorf("stderr lacks the warning:\n%s", errOut.String())
	}
}

func TestCheckConfigNamesTheVariable(t *testing.T) {
	t.Parallel()

	var out bytes.Buffer
	err := run(context.Background(), []string{"check-config"},
		[]string{"WHARF_ANONYMOUS_ROOT=" + t.TempDir(), "WHARF_MAX_CLIENTS=0", "WHARF_PASSIVE_PORTS=2-1"}, nil, &out, io.Discard)
	if err == nil {
		t.Fatal("check-config accepted max_clients = 0")
	}

	for _, want := range []string{"WHARF_PASSIVE_PORTS: passive_ports: 2 > 1", "WHARF_MAX_CLIENTS: max_clients: must be at least 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// SIGHUP loads the configuration again with the same environment: without
// any file, the accounts of WHARF_USERS_FILE change. Signals reach the whole
// test binary, so this test is not parallel.
func TestReloadUsesTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	dirs := mkdirs(t, dir, "pub", "bob")
	pub, home := dirs[0], dirs[1]
	users := writeFile(t, dir, "users.toml", "")
	logPath := filepath.Join(dir, "wharf.log")

	env := []string{
		"WHARF_LISTEN=127.0.0.1:0",
		"WHARF_PASSIVE_PORTS=28750-28799",
		"WHARF_LOG_FORMAT=json",
		"WHARF_LOG_FILE=" + logPath,
		"WHARF_ANONYMOUS_ROOT=" + pub,
		"WHARF_USERS_FILE=" + users,
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env, strings.NewReader(""), io.Discard, io.Discard) }()

	logs := logWatcher{t: t, path: logPath}
	addr, _ := logs.waitFor("listening")["address"].(string)

	writeFile(t, dir, "users.toml", userTOML(t, "bob", "bobpw", home))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	logs.waitFor("configuration reloaded")

	c := ftptest.Login(t, addr, "bob", "bobpw")
	_ = c.Quit()

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
