package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// The tests in this file drive real clients (Python's ftplib, lftp, curl,
// wget) against a real wharf on loopback and check what their users see:
// files, sizes, sums, modes, dates and reply codes.

// hugeSize is large enough that a download is still running when a test
// breaks it off: loopback socket buffers hold a few MiB at most.
const hugeSize = 64 << 20

// writeHuge writes hugeSize random bytes to name and returns their SHA-256.
func writeHuge(t *testing.T, name string) string {
	t.Helper()

	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}

	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, hugeSize); err != nil {
		t.Fatal(err)
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	return hex.EncodeToString(h.Sum(nil))
}

// fileSum is the hex SHA-256 of a file, read as a stream.
func fileSum(t *testing.T, name string) string {
	t.Helper()

	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}

	return hex.EncodeToString(h.Sum(nil))
}

// specialTree is makeTree plus the entries clients used to trip on in the
// engine's listings: a sticky world-writable folder (drwxrwxrwt, which Go
// writes dtrwxrwxrwx), a setuid file (-rwsr-xr-x, Go's urwxr-xr-x) and a
// file dated a year ahead (ls -l shows its year, the engine did not).
func specialTree(t *testing.T) string {
	t.Helper()

	root := makeTree(t)
	pub := filepath.Join(root, "pub")

	writeFile(t, filepath.Join(pub, "sticky", "inside.txt"), []byte("in a sticky folder\n"))
	writeFile(t, filepath.Join(pub, "setuid.bin"), []byte("#!/bin/sh\necho setuid\n"))
	writeFile(t, filepath.Join(pub, "future.txt"), []byte("from next year\n"))

	future := time.Now().AddDate(1, 0, 0)
	for name, err := range map[string]error{
		"sticky":     os.Chmod(filepath.Join(pub, "sticky"), os.ModeDir|os.ModeSticky|0o777),
		"setuid.bin": os.Chmod(filepath.Join(pub, "setuid.bin"), os.ModeSetuid|0o755),
		"future.txt": os.Chtimes(filepath.Join(pub, "future.txt"), future, future),
	} {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	return root
}

// closeTo reports whether a client's idea of a file's date is within a day and
// a half of the disk's: LIST gives a minute, or only a day for dates more than
// six months away, in the server's time zone.
func closeTo(got, want time.Time) bool {
	d := got.Sub(want)

	return d > -36*time.Hour && d < 36*time.Hour
}

// --- Python's ftplib ----------------------------------------------------------

// pythonHelpers are the Python functions the ftplib scripts share.
// abort_download starts a download in TYPE I or A, reads a few KiB, waits
// while the server fills the socket buffers and blocks in a write (a user
// who presses cancel), aborts it with FTP.abort() (in clear, ftplib sends
// "ABOR\r\n" as TCP urgent data; FTP_TLS sends it inline) and returns the
// replies, or the error of a reply that never came. RFC 959, 4.1.3: the
// aborted transfer gets 426, then ABOR its own 226; ftplib's abort() reads
// only the first, so the second is read here. abort_downloads stops at the
// first error: the control connection is then in an unknown state.
const pythonHelpers = `
import ftplib, hashlib, json, ssl, sys, time

def abort_download(ftp, name, type):
    ftp.voidcmd("TYPE " + type)
    conn = ftp.transfercmd("RETR " + name)
    got = 0
    while got < 16384:
        chunk = conn.recv(16384 - got)
        if not chunk:
            break
        got += len(chunk)
    time.sleep(0.5)
    try:
        replies = [ftp.abort()]
        if replies[0].startswith("426"):
            replies.append(ftp.getmultiline())
    except (OSError, EOFError, ftplib.Error) as e:
        return {"read": got, "error": repr(e)}
    conn.close()
    return {"read": got, "replies": replies, "noop": ftp.voidcmd("NOOP")}

def abort_downloads(ftp, name):
    out = {}
    for type in ("I", "A"):
        out[type] = abort_download(ftp, name, type)
        if "error" in out[type]:
            break
    return out

def mlsd(ftp, folder):
    # The cdir and pdir entries are the listing's title (RFC 3659, 7.5.1): a script skips them.
    return {name: facts for name, facts in ftp.mlsd(folder, facts=["type", "size"])
            if facts.get("type") not in ("cdir", "pdir")}

def sha256(ftp, name):
    h = hashlib.sha256()
    ftp.retrbinary("RETR " + name, h.update)
    return h.hexdigest()
`

// pythonAnonymous lists and downloads anonymously with ftplib.FTP, in clear.
const pythonAnonymous = pythonHelpers + `
host, port = sys.argv[1], int(sys.argv[2])
ftp = ftplib.FTP(timeout=10)
ftp.connect(host, port)
out = {"login": ftp.login()}
out["mlsd"] = {folder: mlsd(ftp, folder) for folder in ("/", "/pub")}
out["nlst"] = ftp.nlst("/pub")
out["sha256"] = sha256(ftp, "/pub/big.bin")
out["abort"] = abort_downloads(ftp, "/huge.bin")
if all("error" not in a for a in out["abort"].values()):
    out["quit"] = ftp.quit()
print(json.dumps(out))
`

// pythonTLS logs in with ftplib.FTP_TLS (AUTH TLS, then PROT P), first with a
// wrong password, then on the same connection with the right one, and moves
// files both ways.
const pythonTLS = pythonHelpers + `
host, port, user, password, upload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
ftp = ftplib.FTP_TLS(context=context, timeout=10)
ftp.connect(host, port)
out = {}
try:
    out["wrong"] = "accepted: " + ftp.login(user, "wrong")
except ftplib.error_perm as e:
    out["wrong"] = str(e)
out["login"] = ftp.login(user, password)
out["prot"] = ftp.prot_p()
with open(upload, "rb") as f:
    out["stor"] = ftp.storbinary("STOR /up.bin", f)
out["sha256"] = sha256(ftp, "/up.bin")
out["mlsd"] = {folder: mlsd(ftp, folder) for folder in ("/", "/pub")}
out["abort"] = abort_downloads(ftp, "/huge.bin")
if all("error" not in a for a in out["abort"].values()):
    out["quit"] = ftp.quit()
print(json.dumps(out))
`

// pythonResult is what the ftplib scripts print.
type pythonResult struct {
	Wrong  string                                  `json:"wrong"`
	Login  string                                  `json:"login"`
	Prot   string                                  `json:"prot"`
	Stor   string                                  `json:"stor"`
	MLSD   map[string]map[string]map[string]string `json:"mlsd"` // folder → name → fact → value
	NLST   []string                                `json:"nlst"`
	SHA256 string                                  `json:"sha256"`
	Abort  map[string]pythonAbortResult            `json:"abort"` // by TYPE
	Quit   string                                  `json:"quit"`
}

// pythonAbortResult is what abort_download returns.
type pythonAbortResult struct {
	Read    int      `json:"read"`
	Replies []string `json:"replies"`
	NOOP    string   `json:"noop"`
	Error   string   `json:"error"` // the exception of abort(), such as a time-out waiting for its reply
}

// runPython runs a script with python3 and decodes the JSON it prints.
func runPython(t *testing.T, script string, args ...string) pythonResult {
	t.Helper()

	python := needTool(t, "python3")
	file := filepath.Join(t.TempDir(), "client.py") // a file, so a failure shows a traceback, not the script
	writeFile(t, file, []byte(script))
	out := runTool(t, python, append([]string{file}, args...)...)

	var r pythonResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("python printed %q: %v", out, err)
	}

	return r
}

// checkMLSD compares what ftplib's mlsd(facts=["type", "size"]) returned for
// each folder with the folder on disk under root.
func checkMLSD(t *testing.T, root string, got map[string]map[string]map[string]string) {
	t.Helper()

	for _, folder := range []string{"/", "/pub"} {
		entries, err := os.ReadDir(filepath.Join(root, folder))
		if err != nil {
			t.Fatal(err)
		}

		listed := got[folder]
		if len(listed) != len(entries) {
			t.Errorf("mlsd(%q) returned %d entries, the folder has %d: %v", folder, len(listed), len(entries), listed)
		}

		for _, e := range entries {
			facts, ok := listed[e.Name()]
			if !ok {
				t.Errorf("mlsd(%q) lacks %q", folder, e.Name())

				continue
			}

			for fact := range facts {
				if fact != "type" && fact != "size" {
					t.Errorf("mlsd(%q) %q: fact %q was not asked for by OPTS MLST", folder, e.Name(), fact)
				}
			}

			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}

			wantType, wantSize := "file", strconv.FormatInt(info.Size(), 10)
			if e.IsDir() {
				wantType, wantSize = "dir", facts["size"]
			}

			if facts["type"] != wantType || facts["size"] != wantSize {
				t.Errorf("mlsd(%q) %q: type %q size %q, want %q %q", folder, e.Name(), facts["type"], facts["size"], wantType, wantSize)
			}
		}
	}
}

// checkAbort checks the aborted downloads as ftplib saw them, in TYPE I and
// A: 426 for the transfer then 226 for ABOR (or a lone 226), with no socket
// address in either, and a session that goes on. It reports whether the
// session is still usable.
func checkAbort(t *testing.T, r pythonResult) bool {
	t.Helper()

	usable := true
	for _, typ := range []string{"I", "A"} {
		t.Run("TYPE "+typ, func(t *testing.T) {
			a, ok := r.Abort[typ]
			switch {
			case !ok:
				usable = false
				t.Fatal("abort: not tried: an earlier abort failed")
			case a.Error != "":
				usable = false
				t.Fatalf("abort: ftplib raised %s (after reading %d bytes)", a.Error, a.Read)
			case a.Read == 0:
				t.Fatalf("abort: the download sent nothing before it was aborted: %+v", a)
			}

			switch {
			case len(a.Replies) == 2 && strings.HasPrefix(a.Replies[0], "426 ") && strings.HasPrefix(a.Replies[1], "226 "):
			case len(a.Replies) == 1 && strings.HasPrefix(a.Replies[0], "226 "):
			default:
				t.Errorf("abort: replies %q, want 426 then 226, or 226", a.Replies)
			}

			for _, reply := range a.Replies {
				if strings.Contains(reply, "127.0.0.1") {
					t.Errorf("abort: reply %q shows a socket address", reply)
				}
			}

			if !strings.HasPrefix(a.NOOP, "200 ") {
				t.Errorf("NOOP after abort: %q, want 200", a.NOOP)
			}
		})
	}

	return usable
}

func TestPythonFTP(t *testing.T) {
	t.Parallel()

	ts, root, _ := interopServer(t, TLSOff)
	writeHuge(t, filepath.Join(root, "huge.bin"))
	host, port, _ := net.SplitHostPort(ts.addr)

	r := runPython(t, pythonAnonymous, host, port)

	if !strings.HasPrefix(r.Login, "230 ") {
		t.Errorf("anonymous login: %q", r.Login)
	}

	t.Run("mlsd with facts lists every entry with its type and size", func(t *testing.T) {
		checkMLSD(t, root, r.MLSD)
	})

	t.Run("nlst names every entry", func(t *testing.T) {
		entries, err := os.ReadDir(filepath.Join(root, "pub"))
		if err != nil {
			t.Fatal(err)
		}

		var want, got []string
		for _, e := range entries {
			want = append(want, e.Name())
		}
		for _, name := range r.NLST {
			got = append(got, filepath.Base(name))
		}
		slices.Sort(got)

		if !slices.Equal(got, want) {
			t.Errorf("nlst: %q, want %q", got, want)
		}
	})

	t.Run("retrbinary gets the file as it is on disk", func(t *testing.T) {
		if want := fileSum(t, filepath.Join(root, "pub", "big.bin")); r.SHA256 != want {
			t.Errorf("retrbinary: sha256 %s, want %s", r.SHA256, want)
		}
	})

	usable := false
	t.Run("abort sent as urgent data stops the download and the session goes on", func(t *testing.T) {
		usable = checkAbort(t, r)
	})

	if usable && !strings.HasPrefix(r.Quit, "221 ") {
		t.Errorf("quit: %q", r.Quit)
	}
}

func TestPythonFTPTLS(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.ReadWrite)
	f.opts.TLSMode = TLSExplicit
	f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
	// Python's ftplib does not resume the control session on data
	// connections: it needs [tls] require_session_reuse = false
	// (TestDataTLSMustResumeSession checks the default refuses it).
	f.opts.RequireSessionReuse = false
	ts := startServer(t, f)
	writeHuge(t, filepath.Join(home, "huge.bin"))
	host, port, _ := net.SplitHostPort(ts.addr)

	upload := filepath.Join(t.TempDir(), "up.bin")
	payload := ftptest.RandomBytes(300_000)
	writeFile(t, upload, payload)

	r := runPython(t, pythonTLS, host, port, "alice", testPassword, upload)

	t.Run("a wrong password raises error_perm 530 and the same connection logs in", func(t *testing.T) {
		if !strings.HasPrefix(r.Wrong, "530 ") {
			t.Errorf("login with a wrong password: %q, want error_perm 530", r.Wrong)
		}

		if !strings.HasPrefix(r.Login, "230 ") {
			t.Errorf("login after a wrong password: %q, want 230", r.Login)
		}

		if !strings.HasPrefix(r.Prot, "200 ") {
			t.Errorf("prot_p: %q", r.Prot)
		}
	})

	t.Run("storbinary then retrbinary round-trips the bytes", func(t *testing.T) {
		if !strings.HasPrefix(r.Stor, "226 ") {
			t.Errorf("storbinary: %q", r.Stor)
		}

		got, err := os.ReadFile(filepath.Join(home, "up.bin"))
		if err != nil {
			t.Fatal(err)
		}

		if want := ftptest.Sum(payload); ftptest.Sum(got) != want || r.SHA256 != want {
			t.Errorf("on disk %s, retrbinary %s, sent %s", ftptest.Sum(got), r.SHA256, want)
		}
	})

	t.Run("mlsd with facts lists every entry with its type and size", func(t *testing.T) {
		checkMLSD(t, home, r.MLSD)
	})

	usable := false
	t.Run("abort stops a protected download and the session goes on", func(t *testing.T) {
		usable = checkAbort(t, r)
	})

	if usable && !strings.HasPrefix(r.Quit, "221 ") {
		t.Errorf("quit: %q", r.Quit)
	}
}

// --- lftp --------------------------------------------------------------------

// lftpAt runs commands in lftp, logged in at addr, in clear or over explicit
// TLS with protected data; it returns what lftp printed and its protocol
// trace (the commands it sent, as "---> VERB ..."). MDTM is off, so the
// dates lftp shows are those it parsed from the listings.
func lftpAt(t *testing.T, addr, user, pass string, useTLS bool, commands string) (string, string) {
	t.Helper()

	lftp := needTool(t, "lftp")
	host, port, _ := net.SplitHostPort(addr)
	trace := filepath.Join(t.TempDir(), "trace")

	security := "set ftp:ssl-allow no"
	if useTLS {
		security = "set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:verify-certificate no"
	}

	script := "debug -o " + trace + " 5; set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; " +
		"set ftp:use-mdtm no; " + security + "; open -u " + user + "," + pass + " -p " + port + " " + host + "; " + commands
	out := runTool(t, lftp, "-c", script)

	sent, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}

	return string(out), string(sent)
}

// lftpLong is one line of lftp's cls -l --time-style=+%s, parsed: after LIST
// or STAT, "-rw-r--r--    1 ftp      ftp        20 1796534035 /pub/a.txt";
// after MLSD, "-rw-r--r--       20 1796534035 /pub/a.txt". Folders end in /.
var lftpLong = regexp.MustCompile(`^([-dl][-rwxsStT]{9})\s+(?:\d+\s+\S+\s+\S+\s+)?(\d+)\s+(\d+)\s+(.+)$`)

type lftpEntry struct {
	mode string
	size int64
	date time.Time
}

func parseLftpLong(t *testing.T, out, folder string) map[string]lftpEntry {
	t.Helper()

	entries := map[string]lftpEntry{}
	for line := range strings.Lines(out) {
		m := lftpLong.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			t.Errorf("lftp printed a line it did not parse: %q", line)

			continue
		}

		size, _ := strconv.ParseInt(m[2], 10, 64)
		epoch, _ := strconv.ParseInt(m[3], 10, 64)
		name := strings.TrimSuffix(strings.TrimPrefix(m[4], folder+"/"), "/")
		entries[name] = lftpEntry{mode: m[1], size: size, date: time.Unix(epoch, 0)}
	}

	return entries
}

func TestLftpListings(t *testing.T) {
	t.Parallel()

	root := specialTree(t)
	ts := startServer(t, fixture{opts: defaultOptions(), anon: root})

	for _, tc := range []struct {
		name     string
		settings string
		command  string // the command lftp must have listed with
	}{
		{"LIST parses", "set ftp:use-mlsd no", "LIST"},
		{"STAT of a folder parses as LIST does", "set ftp:use-mlsd no; set ftp:use-stat-for-list yes", "STAT"},
		{"MLSD parses", "set ftp:use-mlsd yes", "MLSD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			out, trace := lftpAt(t, ts.addr, "anonymous", "guest@example.com", false, tc.settings+"; cls -l --time-style=+%s /pub")
			if !strings.Contains(trace, "---> "+tc.command) {
				t.Fatalf("lftp did not list with %s:\n%s", tc.command, trace)
			}

			got := parseLftpLong(t, out, "/pub")

			disk, err := os.ReadDir(filepath.Join(root, "pub"))
			if err != nil {
				t.Fatal(err)
			}

			if len(got) != len(disk) {
				t.Errorf("lftp lists %d entries, the folder has %d:\n%s", len(got), len(disk), out)
			}

			for _, e := range disk {
				info, err := e.Info()
				if err != nil {
					t.Fatal(err)
				}

				g, ok := got[e.Name()]
				switch {
				case !ok:
					t.Errorf("lftp does not list %q:\n%s", e.Name(), out)
				case e.IsDir() != (g.mode[0] == 'd'):
					t.Errorf("%q: lftp's mode %s, but it is a folder: %v", e.Name(), g.mode, e.IsDir())
				case !e.IsDir() && g.size != info.Size():
					t.Errorf("%q: lftp's size %d, want %d", e.Name(), g.size, info.Size())
				case !closeTo(g.date, info.ModTime()):
					t.Errorf("%q: lftp's date %v, want %v", e.Name(), g.date, info.ModTime())
				}
			}

			for name, want := range map[string]string{"sticky": "drwxrwxrwt", "setuid.bin": "-rwsr-xr-x"} {
				if got[name].mode != want {
					t.Errorf("%q: lftp's mode %q, want %q", name, got[name].mode, want)
				}
			}
		})
	}
}

// lftp mirrors the special tree over explicit TLS with protected data.
func TestLftpMirrorTLS(t *testing.T) {
	t.Parallel()

	root := specialTree(t)
	f := fixture{opts: defaultOptions(), anon: root}
	f.opts.TLSMode = TLSExplicit
	f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
	f.opts.RequireSessionReuse = true // lftp resumes the control session
	ts := startServer(t, f)

	dest := filepath.Join(t.TempDir(), "mirror")
	_, trace := lftpAt(t, ts.addr, "anonymous", "guest@example.com", true, "mirror / "+dest)

	for _, want := range []string{"---> AUTH TLS", "---> PROT P"} {
		if !strings.Contains(trace, want) {
			t.Errorf("lftp's trace lacks %q", want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	if out, err := exec.CommandContext(ctx, "diff", "-r", root, dest).CombinedOutput(); err != nil {
		t.Fatalf("mirror differs from the source: %v\n%s", err, out)
	}

	sameDates(t, root, dest)
}

// sameDates checks that every file under dest, a client's copy of root, has
// its original's date (to closeTo's precision).
func sameDates(t *testing.T, root, dest string) {
	t.Helper()

	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}

		rel, _ := filepath.Rel(root, p)
		src, err := os.Stat(p)
		if err != nil {
			return err
		}

		dst, err := os.Stat(filepath.Join(dest, rel))
		if err != nil {
			return err
		}

		if !closeTo(dst.ModTime(), src.ModTime()) {
			t.Errorf("%s: the copy is dated %v, the original %v", rel, dst.ModTime(), src.ModTime())
		}

		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// --- curl ----------------------------------------------------------------------

// curl resumes with REST (curl -C -) a download it broke off.
func TestCurlResume(t *testing.T) {
	t.Parallel()

	curl := needTool(t, "curl")
	ts, root, _ := interopServer(t, TLSOff)
	want := writeHuge(t, filepath.Join(root, "huge.bin"))
	url := "ftp://" + ts.addr + "/huge.bin"
	out := filepath.Join(t.TempDir(), "huge.bin")

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// --max-time breaks the slow download off mid-way: curl exits 28.
	slow := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--max-time", "2", "--limit-rate", "2M", "--output", out, url)
	slow.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	slow.Stderr = &stderr

	var ee *exec.ExitError
	if err := slow.Run(); !errors.As(err, &ee) || ee.ExitCode() != 28 {
		t.Fatalf("the slow download: %v, want curl's exit code 28 (time-out)\n%s", err, stderr.String())
	}

	info, err := os.Stat(out)
	if err != nil {
		t.Fatalf("the slow download left no file: %v\n%s", err, stderr.String())
	}

	partial := info.Size()
	if partial == 0 || partial >= hugeSize {
		t.Fatalf("the broken-off download left %d bytes, want some and not all of %d", partial, hugeSize)
	}

	fetched := runTool(t, curl, "--silent", "--show-error", "--max-time", "30", "--continue-at", "-",
		"--write-out", "%{size_download}", "--output", out, url)
	if got := string(fetched); got != strconv.FormatInt(hugeSize-partial, 10) {
		t.Errorf("the resumed download fetched %s bytes, want the %d missing", got, hugeSize-partial)
	}

	if got := fileSum(t, out); got != want {
		t.Fatalf("the resumed file differs: sha256 %s, want %s", got, want)
	}
}

// A data connection reset during RETR gets 426 within a second and the
// session goes on, in clear and over explicit and implicit TLS (RFC 959,
// 4.2: 426 "Connection closed; transfer aborted").
func TestClientsDataResetIs426(t *testing.T) {
	t.Parallel()

	for _, mode := range []TLSMode{TLSOff, TLSExplicit, TLSImplicit} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()

			ts, root, _ := interopServer(t, mode)
			writeHuge(t, filepath.Join(root, "huge.bin"))
			cfg := clientTLS()

			var c *ftptest.Ctl
			if mode == TLSImplicit {
				d := net.Dialer{Timeout: 5 * time.Second}
				conn, err := d.DialContext(t.Context(), "tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				c = ftptest.NewCtl(t, tls.Client(conn, cfg))
				c.Expect(220)
			} else {
				c = ts.raw(t)
			}

			if mode == TLSExplicit {
				c.Must(234, "AUTH TLS")
				c = ftptest.NewCtl(t, tls.Client(c.Conn, cfg))
			}

			if mode != TLSOff {
				c.Must(200, "PBSZ 0")
				c.Must(200, "PROT P")
			}

			c.Login("anonymous", "x")

			// data opens the data connection for a RETR of name; raw is its TCP connection.
			data := func(name string) (net.Conn, *net.TCPConn) {
				t.Helper()

				raw := c.DialPasv()
				c.Must(150, "RETR %s", name)
				if mode == TLSOff {
					return raw, raw.(*net.TCPConn)
				}

				tc := tls.Client(raw, cfg)
				if err := tc.HandshakeContext(t.Context()); err != nil {
					t.Fatal(err)
				}

				return tc, raw.(*net.TCPConn)
			}

			// In TYPE I the file goes to the socket with sendfile; in TYPE A
			// through the engine's line-ending converter, another error path.
			for _, typ := range []string{"I", "A"} {
				c.Must(200, "TYPE %s", typ)

				conn, raw := data("/huge.bin")
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
					t.Fatalf("TYPE %s: read the start of the download: %v", typ, err)
				}

				_ = raw.SetLinger(0)
				_ = raw.Close()

				start := time.Now()
				code, msg := c.Read()
				if elapsed := time.Since(start); code != 426 || elapsed > time.Second {
					t.Errorf("TYPE %s: after a reset: %d %q after %v, want 426 within 1s", typ, code, msg, elapsed.Round(time.Millisecond))
				}

				if strings.Contains(msg, "127.0.0.1") {
					t.Errorf("TYPE %s: the reply shows a socket address: %q", typ, msg)
				}

				c.Must(200, "NOOP")
			}

			c.Must(200, "TYPE I")
			conn, _ := data("/README.txt")
			if got := readAllFrom(t, conn); string(got) != "hello from wharf\n" {
				t.Errorf("the next download got %q", got)
			}
			c.Expect(226)
		})
	}
}

// --- wget ----------------------------------------------------------------------

// wget -m fetches every file of the special tree, with its date: it used to
// skip the setuid file ("unknown/unsupported file type") and date the future
// file in the current year.
func TestWgetMirror(t *testing.T) {
	t.Parallel()

	wget := needTool(t, "wget")
	root := specialTree(t)
	ts := startServer(t, fixture{opts: defaultOptions(), anon: root})
	dest := t.TempDir()

	runTool(t, wget, "--mirror", "--no-verbose", "--no-host-directories", "--tries", "1", "--timeout", "20",
		"--directory-prefix", dest, "ftp://"+ts.addr+"/")

	files := func(dir string) []string {
		var names []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() != ".listing" { // wget keeps each folder's LIST output
				rel, _ := filepath.Rel(dir, p)
				names = append(names, rel)
			}

			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		return names
	}

	want, fetched := files(root), files(dest)
	if !slices.Equal(fetched, want) {
		t.Fatalf("wget fetched %q, want %q", fetched, want)
	}

	for _, rel := range want {
		if fileSum(t, filepath.Join(root, rel)) != fileSum(t, filepath.Join(dest, rel)) {
			t.Errorf("%s: wget's copy differs", rel)
		}
	}

	sameDates(t, root, dest)
}
