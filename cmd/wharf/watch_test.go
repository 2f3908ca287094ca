package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"wharf/internal/ftptest"
)

// live is a run() serving in the background, whose JSON log lines on
// stdout are all kept, while it runs, for the test to wait for.
type live struct {
	addr  string // the control address
	admin string // the admin listener's, if any

	mu   sync.Mutex
	logs []map[string]any
}

// startLive calls run with -config cfgPath, which must log JSON to stdout,
// and returns once wharf has started. Cleanup stops it and expects nil.
func startLive(t *testing.T, cfgPath string) *live {
	t.Helper()

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)

	go func() {
		done <- run(ctx, []string{"-config", cfgPath}, nil, strings.NewReader(""), pw, io.Discard)
		_ = pw.Close()
	}()

	t.Cleanup(func() {
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

	l := &live{}
	started := make(chan struct{})

	go func() {
		lines := bufio.NewScanner(pr)
		for lines.Scan() {
			var entry map[string]any
			if json.Unmarshal(lines.Bytes(), &entry) != nil {
				continue
			}

			l.mu.Lock()
			l.logs = append(l.logs, entry)
			switch entry["msg"] {
			case "listening":
				l.addr, _ = entry["address"].(string)
			case "admin listening":
				l.admin, _ = entry["address"].(string)
			case "wharf started":
				close(started)
			}
			l.mu.Unlock()
		}

		_, _ = io.Copy(io.Discard, pr)
	}()

	select {
	case <-started:
	case err := <-done:
		t.Fatalf("run returned before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no 'wharf started' line")
	}

	return l
}

// lines returns the log lines with msg, in order.
func (l *live) lines(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()

	var out []map[string]any
	for _, entry := range l.logs {
		if entry["msg"] == msg {
			out = append(out, entry)
		}
	}

	return out
}

// waitFor waits for the nth (from 1) log line with msg and returns it.
func (l *live) waitFor(t *testing.T, msg string, n int) map[string]any {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := l.lines(msg); len(got) >= n {
			return got[n-1]
		}

		time.Sleep(10 * time.Millisecond)
	}

	t.Fatalf("no log line %d with %q", n, msg)

	return nil
}

// userTable is a [[users]] table for name with password pass, read-write in home.
func userTable(t *testing.T, name, pass, home string) string {
	t.Helper()

	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	return fmt.Sprintf("[[users]]\nname = %q\npassword = %q\nhome = %q\naccess = \"read-write\"\n\n", name, hash, home)
}

// swapData updates the folder mount the way the kubelet updates a mounted
// ConfigMap or Secret: it writes files into a new hidden folder, points a
// new "..data" symbolic link at it, renames that over the old "..data" in
// one step, and removes the old folder. Each file is a symbolic link
// "name -> ..data/name", made on the first update.
func swapData(t *testing.T, mount string, files map[string]string) {
	t.Helper()

	if err := os.MkdirAll(mount, 0o750); err != nil {
		t.Fatal(err)
	}

	old, _ := os.Readlink(filepath.Join(mount, "..data"))

	dir := filepath.Join(mount, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}

	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	tmp := filepath.Join(mount, "..data_tmp")
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(tmp, filepath.Join(mount, "..data")); err != nil {
		t.Fatal(err)
	}

	for name := range files {
		link := filepath.Join(mount, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}

	if old != "" {
		if err := os.RemoveAll(filepath.Join(mount, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// canLogIn reports whether user logs in at addr with pass.
func canLogIn(t *testing.T, addr, user, pass string) bool {
	t.Helper()

	c := ftptest.Client(t, addr)

	return c.Login(user, pass) == nil
}

// A users_file mounted from a Kubernetes ConfigMap or Secret changes by a
// swap of the "..data" link, never by a write to the file itself: wharf sees
// it with no signal, and the new account logs in.
func TestWatchPicksUpAUsersFileSwappedLikeAConfigMap(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub, home := mkdirs(t, dir, "pub", "home")[0], filepath.Join(dir, "home")
	mount := filepath.Join(dir, "users")
	alice := userTable(t, "alice", "alicepw", home)
	swapData(t, mount, map[string]string{"users.toml": alice})

	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27500, 27509]
users_file = %q
watch_interval = "100ms"

[log]
format = "json"

[anonymous]
root = %q
`, filepath.Join(mount, "users.toml"), pub))

	wharf := startLive(t, cfgPath)

	if !canLogIn(t, wharf.addr, "alice", "alicepw") || canLogIn(t, wharf.addr, "bob", "bobpw") {
		t.Fatal("before the update, want alice in and bob out")
	}

	swapData(t, mount, map[string]string{"users.toml": alice + userTable(t, "bob", "bobpw", home)})

	changed := wharf.waitFor(t, "watched files changed", 1)
	if paths, _ := changed["paths"].([]any); !slices.Contains(paths, any(filepath.Join(mount, "users.toml"))) {
		t.Errorf("watched files changed: paths %v, want the users file", changed["paths"])
	}

	wharf.waitFor(t, "configuration reloaded", 1)

	bob := ftptest.Login(t, wharf.addr, "bob", "bobpw")
	if err := bob.Stor("hello.txt", strings.NewReader("hi")); err != nil {
		t.Errorf("bob's upload after the reload: %v", err)
	}

	if !canLogIn(t, wharf.addr, "alice", "alicepw") {
		t.Error("alice can't log in after the reload")
	}
}

// A broken edit of the configuration file is refused, with the reason, and
// the running configuration keeps serving. The next good edit applies its
// reloadable keys (banner) and names each restart-only key it changes in a
// warning.
func TestWatchRefusesABrokenEditAndNamesRestartOnlyKeys(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub, home := mkdirs(t, dir, "pub", "home")[0], filepath.Join(dir, "home")
	base := fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27510, 27519]
watch_interval = "100ms"
%%s
[log]
format = "json"

[anonymous]
root = %q

%s`, pub, userTable(t, "bob", "bobpw", home))
	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf(base, `banner = "before"`+"\n"))

	wharf := startLive(t, cfgPath)

	// Written in place, as an editor that does not rename may: a look may
	// find the file half written, and the reload waits for a quiet look.
	writeFile(t, dir, "wharf.toml", fmt.Sprintf(base, `banner = "before"`+"\nbogus_key = 1\n"))

	refused := wharf.waitFor(t, "reload refused, keeping the running configuration", 1)
	if reason, _ := refused["error"].(string); !strings.Contains(reason, `unknown key "bogus_key"`) {
		t.Errorf("refusal %q, want it to name bogus_key", reason)
	}
	if refused["trigger"] != "file change" {
		t.Errorf("refusal trigger %v, want \"file change\"", refused["trigger"])
	}

	if got := greeting(t, wharf.addr); got != "before" {
		t.Errorf("greeting after a refused reload = %q, want the running \"before\"", got)
	}
	if !canLogIn(t, wharf.addr, "bob", "bobpw") {
		t.Error("bob can't log in after a refused reload")
	}

	writeFile(t, dir, "wharf.toml", fmt.Sprintf(base, `banner = "after"`+"\nmax_clients = 7\nidle_timeout = \"1m\"\n"))
	wharf.waitFor(t, "configuration reloaded", 1)

	if got := greeting(t, wharf.addr); got != "after" {
		t.Errorf("greeting after the reload = %q, want \"after\"", got)
	}

	wharf.waitFor(t, "changed key takes effect only after a restart", 2)

	var keys []string
	for _, w := range wharf.lines("changed key takes effect only after a restart") {
		keys = append(keys, fmt.Sprint(w["key"]))
	}
	if want := []string{"idle_timeout", "max_clients"}; !slices.Equal(keys, want) {
		t.Errorf("restart warnings name %q, want %q", keys, want)
	}
}

// handshake makes an explicit TLS handshake with the FTP server at addr and
// returns the certificate it presents, in DER.
func handshake(t *testing.T, addr string) []byte {
	t.Helper()

	c := ftptest.Dial(t, addr, nil)
	c.Must(234, "AUTH TLS")

	// No verification: the test compares the certificate itself.
	conn := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true})
	if err := conn.HandshakeContext(t.Context()); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()

	return conn.ConnectionState().PeerCertificates[0].Raw
}

// derOf returns the DER of the first certificate in certPEM.
func derOf(t *testing.T, certPEM []byte) []byte {
	t.Helper()

	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block")
	}

	return block.Bytes
}

// A renewed certificate (certbot or cert-manager writing new files) is
// served from the next TLS handshake on, with no signal.
func TestWatchServesARenewedCertificate(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	certPEM, keyPEM := ftptest.SelfSigned(t)
	certFile := writeFile(t, dir, "cert.pem", string(certPEM))
	keyFile := writeFile(t, dir, "key.pem", string(keyPEM))

	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27520, 27529]
watch_interval = "100ms"

[log]
format = "json"

[tls]
mode = "explicit"
cert_file = %q
key_file = %q

[anonymous]
root = %q
`, certFile, keyFile, pub))

	wharf := startLive(t, cfgPath)

	if got := handshake(t, wharf.addr); !slices.Equal(got, derOf(t, certPEM)) {
		t.Fatal("the first handshake does not present the certificate of cert_file")
	}

	// The key first, then the certificate: a look between the two writes
	// would find a pair that does not match, and waits for a quiet look.
	renewedCert, renewedKey := ftptest.SelfSigned(t)
	writeFile(t, dir, "key.pem", string(renewedKey))
	writeFile(t, dir, "cert.pem", string(renewedCert))

	wharf.waitFor(t, "configuration reloaded", 1)

	if got := handshake(t, wharf.addr); !slices.Equal(got, derOf(t, renewedCert)) {
		t.Error("the handshake after the renewal does not present the new certificate")
	}
}

// post sends POST /reload (or method) to the admin listener at addr, with
// "Authorization: Bearer token" unless token is empty, and returns the
// status and the decoded JSON answer.
func post(t *testing.T, method, addr, token string) (int, map[string]any) {
	t.Helper()

	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+"/reload", nil)
	if err != nil {
		t.Fatal(err)
	}

	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}

	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	var answer map[string]any
	if res.Header.Get("Content-Type") == "application/json" {
		if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
			t.Fatalf("%s /reload: %v", method, err)
		}
	}

	return res.StatusCode, answer
}

// POST /reload on the admin listener reloads, with the token of
// token_file, and answers what happened: reloaded, with the keys that wait
// for a restart, or refused, with the reason, the running configuration
// still serving. A reload reads token_file again.
func TestReloadOverHTTP(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub, home := mkdirs(t, dir, "pub", "home")[0], filepath.Join(dir, "home")
	const token = "0123456789abcdef0123456789abcdef"
	tokenFile := writeFile(t, dir, "admin.token", token+"\n")
	base := fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27530, 27539]
watch_interval = "0s"

[log]
format = "json"

[admin]
listen = "127.0.0.1:0"
token_file = %q

[anonymous]
root = %q
`, tokenFile, pub)
	cfgPath := writeFile(t, dir, "wharf.toml", base)

	wharf := startLive(t, cfgPath)
	withBob := base + "\n" + userTable(t, "bob", "bobpw", home)
	writeFile(t, dir, "wharf.toml", withBob)

	if code, _ := post(t, http.MethodPost, wharf.admin, ""); code != http.StatusUnauthorized {
		t.Errorf("POST /reload without the token: %d, want 401", code)
	}
	if code, _ := post(t, http.MethodGet, wharf.admin, token); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %d, want 405", code)
	}
	if canLogIn(t, wharf.addr, "bob", "bobpw") {
		t.Fatal("bob logs in before any reload")
	}

	code, answer := post(t, http.MethodPost, wharf.admin, token)
	if code != http.StatusOK || answer["result"] != "reloaded" || answer["restart_required"] != nil {
		t.Errorf("POST /reload: %d %v, want 200 reloaded, nothing waiting for a restart", code, answer)
	}
	if !canLogIn(t, wharf.addr, "bob", "bobpw") {
		t.Error("bob can't log in after POST /reload")
	}

	writeFile(t, dir, "wharf.toml", strings.Replace(withBob, "watch_interval", "max_clients = 3\nwatch_interval", 1))

	code, answer = post(t, http.MethodPost, wharf.admin, token)
	if keys, _ := answer["restart_required"].([]any); code != http.StatusOK || !slices.Equal(keys, []any{"max_clients"}) {
		t.Errorf("POST /reload changing max_clients: %d %v, want 200 with restart_required [max_clients]", code, answer)
	}

	writeFile(t, dir, "wharf.toml", withBob+"bogus_key = 1\n")

	code, answer = post(t, http.MethodPost, wharf.admin, token)
	if reason, _ := answer["error"].(string); code != http.StatusUnprocessableEntity || answer["result"] != "refused" ||
		!strings.Contains(reason, `unknown key "bogus_key"`) {
		t.Errorf("POST /reload of a broken file: %d %v, want 422 refused naming bogus_key", code, answer)
	}
	if !canLogIn(t, wharf.addr, "bob", "bobpw") {
		t.Error("bob can't log in after a refused reload")
	}

	// One line for each POST with the token (logs are written in batches).
	wharf.waitFor(t, "reload requested", 3)

	// A new token (a rotated Secret) holds from the request after the reload.
	const renewed = "fedcba9876543210fedcba9876543210"
	writeFile(t, dir, "wharf.toml", withBob)
	writeFile(t, dir, "admin.token", renewed+"\n")

	if code, answer := post(t, http.MethodPost, wharf.admin, token); code != http.StatusOK {
		t.Errorf("POST /reload with the token being replaced: %d %v, want 200", code, answer)
	}
	if code, _ := post(t, http.MethodPost, wharf.admin, token); code != http.StatusUnauthorized {
		t.Errorf("POST /reload with the old token after the reload: %d, want 401", code)
	}
	if code, _ := post(t, http.MethodPost, wharf.admin, renewed); code != http.StatusOK {
		t.Errorf("POST /reload with the new token: %d, want 200", code)
	}
}

// A look reports a change only once the files have stayed the same for one
// more look, so that files written one after the other reload once, and
// with all of them written. A file new to the list is no change; one that
// disappears, or comes back, is.
func TestPollWaitsForAQuietLook(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	a := writeFile(t, dir, "a", "1")
	b := writeFile(t, dir, "b", "1")

	r := &reloader{log: zap.NewNop(), files: []string{a, b}}
	r.seen = snapshot(r.files)

	look := func(want ...string) {
		t.Helper()

		if got := r.poll(); !slices.Equal(got, want) {
			t.Fatalf("poll() = %q, want %q", got, want)
		}
	}

	look()
	writeFile(t, dir, "a", "22")
	look()
	look(a)
	look()

	// Two files written in two looks: one change, after both.
	writeFile(t, dir, "b", "22")
	look()
	writeFile(t, dir, "a", "333")
	look()
	look(a, b)

	// Replaced by a rename: the same size, a new inode.
	writeFile(t, dir, "new", "333")
	if err := os.Rename(filepath.Join(dir, "new"), a); err != nil {
		t.Fatal(err)
	}
	look()
	look(a)

	c := writeFile(t, dir, "c", "1")
	r.files = append(r.files, c)
	look()
	look()

	if err := os.Remove(c); err != nil {
		t.Fatal(err)
	}
	look()
	look(c)
	writeFile(t, dir, "c", "1")
	look()
	look(c)
}

// Without a change, nothing reloads, however long wharf runs.
func TestWatchAloneDoesNotReload(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	r := &reloader{log: zap.NewNop(), files: []string{writeFile(t, dir, "a", "1")}}
	r.seen = snapshot(r.files)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	r.watch(ctx, 100*time.Millisecond) // a reload would need r.srv, which is nil
	if r.pending != nil {
		t.Errorf("pending = %q, want none", r.pending)
	}
}
