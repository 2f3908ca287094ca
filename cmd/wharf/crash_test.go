package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// process is a wharf process started from the test binary, which a test may
// kill -9; its JSON log lines are collected.
type process struct {
	cmd  *exec.Cmd
	addr string

	mu   sync.Mutex
	logs []map[string]any
}

// startKillable starts wharf with env (see startProcess) and waits for its
// "listening" line.
func startKillable(t *testing.T, env []string) *process {
	t.Helper()

	return startBinary(t, os.Args[0], append([]string{asWharf + "=1"}, env...))
}

// startBinary starts the wharf binary bin (the test binary, with asWharf in
// env, or a real build) like startKillable.
func startBinary(t *testing.T, bin string, env []string) *process {
	t.Helper()

	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "WHARF_LOG_FORMAT=json", "WHARF_LISTEN=127.0.0.1:0"), env...)

	return startCmd(t, cmd)
}

// startCmd starts cmd, a wharf that logs JSON, and waits for its
// "listening" line.
func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()

	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	cmd.Stderr = &stderr

	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	p := &process{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	listening := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			var entry map[string]any
			if json.Unmarshal(lines.Bytes(), &entry) != nil {
				continue
			}

			p.mu.Lock()
			p.logs = append(p.logs, entry)
			p.mu.Unlock()

			if entry["msg"] == "listening" {
				listening <- entry["address"].(string)
			}
		}
	}()

	select {
	case p.addr = <-listening:
	case <-time.After(10 * time.Second):
		t.Fatalf("wharf did not start: %s", stderr.String())
	}

	return p
}

// logged returns the log lines with message msg so far.
func (p *process) logged(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()

	var out []map[string]any
	for _, e := range p.logs {
		if e["msg"] == msg {
			out = append(out, e)
		}
	}

	return out
}

// hidden returns the hidden upload files in dir.
func hidden(t *testing.T, dir string) []string {
	t.Helper()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".wharf-upload-") {
			out = append(out, e.Name())
		}
	}

	return out
}

// startUpload begins STOR name on a new session and sends data, leaving the
// upload open; it returns once wharf wrote at least len(data) bytes to a
// hidden file in dir.
func startUpload(t *testing.T, addr, user, pass, name, dir string, data []byte) {
	t.Helper()

	c := ftptest.Dial(t, addr, nil)
	c.Login(user, pass)
	c.Must(200, "TYPE I")
	conn := c.DialPasv()
	c.Must(150, "STOR %s", name)

	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}

	ftptest.WaitFor(t, 10*time.Second, func() bool {
		for _, h := range hidden(t, dir) {
			if st, err := os.Stat(filepath.Join(dir, h)); err == nil && st.Size() >= int64(len(data)) {
				return true
			}
		}

		return false
	})
}

// kill -9 in the middle of two uploads, then a restart: the drop box's
// hidden temporary file is reclaimed (and logged), nothing ever appears under
// either final name, and the account's part, inside upload_resume_window,
// is kept for that account to resume (SIZE, then REST + STOR) into a whole
// file.
func TestRestartAfterKillMidUpload(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	dirs := mkdirs(t, dir, "pub", "pub/incoming", "alice")
	pub, incoming, home := dirs[0], dirs[1], dirs[2]

	cfg := writeFile(t, dir, "wharf.toml", fmt.Sprintf("passive_ports = [28900, 28949]\ndata_timeout = \"1m\"\n"+
		"upload_resume_window = \"1h\"\n\n[anonymous]\nroot = %q\nupload_dir = \"incoming\"\n\n%s",
		pub, userTOML(t, "alice", "alicepw", home)))
	env := []string{"WHARF_CONFIG=" + cfg}

	first := startKillable(t, env)

	data := ftptest.RandomBytes(6 << 20)
	cut := 3 << 20
	startUpload(t, first.addr, "alice", "alicepw", "big.bin", home, data[:cut])
	startUpload(t, first.addr, "anonymous", "x", "/incoming/drop.bin", incoming, data[:1<<20])

	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL: no defer, no clean-up runs
		t.Fatal(err)
	}

	_ = first.cmd.Wait()

	if len(hidden(t, home)) != 1 || len(hidden(t, incoming)) != 1 {
		t.Fatalf("after kill -9: hidden files %v in the home, %v in the drop box; want one each", hidden(t, home), hidden(t, incoming))
	}

	second := startKillable(t, env)

	// The drop box's leftover goes, counted in the log.
	ftptest.WaitFor(t, 10*time.Second, func() bool { return len(hidden(t, incoming)) == 0 })
	ftptest.WaitFor(t, 5*time.Second, func() bool { return len(second.logged("upload leftovers removed")) > 0 })

	if e := second.logged("upload leftovers removed")[0]; e["files"] != float64(1) || e["bytes"].(float64) < 1<<20 {
		t.Errorf("reclaim log line: %v", e)
	}

	for _, name := range []string{filepath.Join(home, "big.bin"), filepath.Join(incoming, "drop.bin")} {
		if _, err := os.Stat(name); err == nil {
			t.Errorf("%s exists: a killed upload landed under its final name", name)
		}
	}

	// The account's part is kept, for alice to resume.
	if len(hidden(t, home)) != 1 {
		t.Fatalf("alice's part is gone: %v", hidden(t, home))
	}

	c := ftptest.Dial(t, second.addr, nil)
	c.Login("alice", "alicepw")
	c.Must(200, "TYPE I")

	size, err := strconv.Atoi(strings.TrimSpace(c.Must(213, "SIZE big.bin")))
	if err != nil || size < cut || size > len(data) {
		t.Fatalf("SIZE of the part: %d (%v), want at least %d", size, err, cut)
	}

	conn := c.DialPasv()
	c.Must(350, "REST %d", size)
	c.Must(150, "STOR big.bin")

	if _, err := io.Copy(conn, bytes.NewReader(data[size:])); err != nil {
		t.Fatal(err)
	}

	_ = conn.Close()
	c.Expect(226)

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}

	if h := hidden(t, home); len(h) != 0 {
		t.Errorf("hidden files left after the resumed upload landed: %v", h)
	}
}
