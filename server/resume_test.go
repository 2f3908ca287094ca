package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/vfs"
)

// resumeSize is the size of the uploads the resume tests break off: large
// enough that a cut leaves a part of several chunks.
const resumeSize = 6 << 20

// resumeServer serves one home to alice and bob, both read-write, and to
// anonymous sessions, read-only, with uploads resumable for window.
func resumeServer(t *testing.T, window time.Duration) (*testServer, string) {
	t.Helper()

	home := makeTree(t)
	f := fixture{
		opts: defaultOptions(),
		anon: home,
		users: []auth.User{
			{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite},
			{Name: "bob", PasswordHash: testHash, Home: home, Access: auth.ReadWrite},
		},
	}
	f.opts.UploadResumeWindow = window

	return startServer(t, f), home
}

// tempFilesIn returns the temporary upload files in dir and their total size.
func tempFilesIn(t *testing.T, dir string) ([]string, int64) {
	t.Helper()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	var (
		names []string
		total int64
	)

	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), vfs.TempPrefix) {
			continue
		}

		names = append(names, e.Name())
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}

	return names, total
}

// cutUpload stores data as alice under /big.bin, and resets the data
// connection once the server has written all of it, as a client whose
// network broke off. It returns when the server has logged the transfer
// incomplete.
func cutUpload(t *testing.T, ts *testServer, home string, data []byte) {
	t.Helper()
	cutUploadTo(t, ts, home, "/big.bin", data)
}

// cutUploadTo is cutUpload to name, a file of the folder dir on disk.
func cutUploadTo(t *testing.T, ts *testServer, dir, name string, data []byte) {
	t.Helper()

	before := len(ts.logs.FilterMessage("transfer incomplete").All())
	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")
	conn := c.DialPasv()
	c.Must(150, "STOR %s", name)

	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}

	waitFor(t, func() bool {
		_, size := tempFilesIn(t, dir)

		return size >= int64(len(data))
	})

	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()

	c.Expect(426)
	waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == before+1 })
}

// sizeOf sends SIZE name and returns the reply.
func sizeOf(t *testing.T, ts *testServer, user, name string) (int, string) {
	t.Helper()

	c := ts.raw(t)
	c.Login(user, testPassword)
	c.Must(200, "TYPE I")

	return c.Cmd("SIZE %s", name)
}

// writeLocal writes data to a file in a fresh folder and returns its name.
func writeLocal(t *testing.T, data []byte) string {
	t.Helper()

	name := filepath.Join(t.TempDir(), "local.bin")
	writeFile(t, name, data)

	return name
}

func TestResumeWithCurl(t *testing.T) {
	t.Parallel()

	curl := needTool(t, "curl")
	ts, home := resumeServer(t, time.Hour)
	data := ftptest.RandomBytes(resumeSize)
	cut := 2 << 20
	cutUpload(t, ts, home, data[:cut])

	if _, err := os.Stat(filepath.Join(home, "big.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after the cut, the final name: %v, want nothing", err)
	}

	if code, msg := sizeOf(t, ts, "alice", "/big.bin"); code != 213 || msg != strconv.Itoa(cut) {
		t.Fatalf("alice's SIZE: %d %q, want 213 %d", code, msg, cut)
	}

	// curl -C - asks SIZE, skips that much of the file and sends the rest with APPE.
	sent := runTool(t, curl, "--silent", "--show-error", "--max-time", "30", "--user", "alice:"+testPassword,
		"--upload-file", writeLocal(t, data), "--continue-at", "-", "--write-out", "%{size_upload}",
		"ftp://"+ts.addr+"/big.bin")
	if got := string(sent); got != strconv.Itoa(resumeSize-cut) {
		t.Errorf("curl sent %s bytes, want the %d missing", got, resumeSize-cut)
	}

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}

	noTempFiles(t, home)
}

func TestResumeWithLftp(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	data := ftptest.RandomBytes(resumeSize)
	cut := 3 << 20
	cutUpload(t, ts, home, data[:cut])

	_, trace := lftpAt(t, ts.addr, "alice", testPassword, false, "put -c "+writeLocal(t, data)+" -o /big.bin")
	for _, want := range []string{"---> SIZE /big.bin", "---> REST " + strconv.Itoa(cut), "---> STOR big.bin"} {
		if !strings.Contains(trace, want) {
			t.Errorf("lftp's trace lacks %q:\n%s", want, trace)
		}
	}

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}

	noTempFiles(t, home)
}

// Every way an upload ends early keeps the part, and nothing appears under
// the final name until the upload is complete.
func TestResumeKeepsThePartAfterEveryCut(t *testing.T) {
	t.Parallel()

	for _, tc := range ftptest.Cuts() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()

			ts, home := resumeServer(t, time.Hour)
			c := ts.raw(t)
			c.Login("alice", testPassword)
			c.Must(200, "TYPE I")
			data := c.DialPasv()
			c.Must(150, "STOR /half.bin")

			if _, err := data.Write(ftptest.RandomBytes(1 << 20)); err != nil {
				t.Fatal(err)
			}

			waitFor(t, func() bool { _, size := tempFilesIn(t, home); return size == 1<<20 })
			tc.Kill(c, data)
			waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

			if _, err := os.Stat(filepath.Join(home, "half.bin")); err == nil {
				t.Fatal("a partial file exists under the final name")
			}

			if code, msg := sizeOf(t, ts, "alice", "/half.bin"); code != 213 || msg != strconv.Itoa(1<<20) {
				t.Errorf("SIZE: %d %q, want 213 %d", code, msg, 1<<20)
			}
		})
	}
}

// The part is alice's: bob, anonymous sessions and every listing see
// nothing of it, and bob's uploads neither continue nor touch it.
func TestResumePartIsTheAccountsOwn(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	cut := 1 << 20
	cutUpload(t, ts, home, ftptest.RandomBytes(cut))
	parts, _ := tempFilesIn(t, home)

	t.Run("SIZE answers the part to alice only", func(t *testing.T) {
		if code, _ := sizeOf(t, ts, "alice", "/big.bin"); code != 213 {
			t.Errorf("alice: %d, want 213", code)
		}

		if code, msg := sizeOf(t, ts, "bob", "/big.bin"); code != 550 {
			t.Errorf("bob: %d %q, want 550", code, msg)
		}

		a := ts.raw(t)
		a.Login("anonymous", "guest@example.com")
		a.Must(200, "TYPE I")
		if code, msg := a.Cmd("SIZE /big.bin"); code != 550 {
			t.Errorf("anonymous: %d %q, want 550", code, msg)
		}
	})

	t.Run("no listing shows it", func(t *testing.T) {
		for _, user := range []string{"alice", "bob", "anonymous"} {
			c := ts.dial(t, user, testPassword)
			names, err := c.NameList("/")
			if err != nil {
				t.Fatal(err)
			}

			for _, e := range ftptest.List(t, c, "/") {
				names = append(names, e.Name)
			}

			for _, name := range names {
				if strings.Contains(name, vfs.TempPrefix) || strings.Contains(name, "big.bin") {
					t.Errorf("%s's listing shows %q", user, name)
				}
			}

			if _, err := c.FileSize("/" + parts[0]); err == nil {
				t.Errorf("%s can SIZE the part by its disk name", user)
			}
		}
	})

	t.Run("bob can neither resume nor append to it", func(t *testing.T) {
		c := ts.raw(t)
		c.Login("bob", testPassword)
		c.Must(200, "TYPE I")
		c.Must(350, "REST 1000")
		c.DialPasv()
		if code, msg := c.Cmd("STOR /big.bin"); code != 550 {
			t.Errorf("bob's REST 1000 + STOR: %d %q, want 550", code, msg)
		}

		bob := ts.dial(t, "bob", testPassword)
		if err := bob.Append("/big.bin", strings.NewReader("bob's")); err != nil {
			t.Fatal(err)
		}

		if got, _ := os.ReadFile(filepath.Join(home, "big.bin")); string(got) != "bob's" {
			t.Errorf("bob's APPE made %q, want a file of its own", got)
		}

		if code, msg := sizeOf(t, ts, "alice", "/big.bin"); code != 213 || msg != strconv.Itoa(cut) {
			t.Errorf("alice's part after bob's uploads: %d %q, want 213 %d", code, msg, cut)
		}
	})
}

// A folder that only a hidden part keeps from being empty looks empty, and
// RMD removes it.
func TestResumePartDoesNotKeepAFolder(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	c := ts.dial(t, "alice", testPassword)

	if err := c.MakeDir("/drop"); err != nil {
		t.Fatal(err)
	}

	cutUploadTo(t, ts, filepath.Join(home, "drop"), "/drop/big.bin", ftptest.RandomBytes(1<<20))

	if err := c.RemoveDir("/drop"); err != nil {
		t.Fatalf("RMD of a folder holding only a part: %v", err)
	}

	if _, err := os.Stat(filepath.Join(home, "drop")); err == nil {
		t.Error("the folder is still on disk")
	}
}

func TestResumeRestOffsets(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	data := ftptest.RandomBytes(resumeSize)
	cut := 3 << 20
	cutUpload(t, ts, home, data[:cut])

	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")

	t.Run("beyond the part is refused", func(t *testing.T) {
		c.Must(350, "REST %d", cut+1)
		c.DialPasv()
		if code, msg := c.Cmd("STOR /big.bin"); code != 550 || !strings.Contains(msg, "beyond the end") {
			t.Errorf("REST past the part: %d %q, want 550 beyond the end", code, msg)
		}
	})

	t.Run("below the part cuts it there", func(t *testing.T) {
		// The client restarts at 1 MiB and sends a shorter end than the
		// part had: nothing of the part's old end may stay.
		from, end := 1<<20, []byte("a short end")
		c.Must(350, "REST %d", from)
		conn := c.DialPasv()
		c.Must(150, "STOR /big.bin")
		if _, err := conn.Write(end); err != nil {
			t.Fatal(err)
		}

		_ = conn.Close()
		c.Expect(226)

		want := append(bytes.Clone(data[:from]), end...)
		got, err := os.ReadFile(filepath.Join(home, "big.bin"))
		if err != nil || ftptest.Sum(got) != ftptest.Sum(want) {
			t.Fatalf("the resumed file is %d bytes (%v), want %d: the part's first MiB and the new end", len(got), err, len(want))
		}

		noTempFiles(t, home)
	})
}

func TestResumeFreshUploadReplacesThePart(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	cutUpload(t, ts, home, ftptest.RandomBytes(2<<20))
	cutUpload(t, ts, home, ftptest.RandomBytes(1<<20))

	if code, msg := sizeOf(t, ts, "alice", "/big.bin"); code != 213 || msg != strconv.Itoa(1<<20) {
		t.Errorf("after a second cut upload, SIZE: %d %q, want the new part's %d", code, msg, 1<<20)
	}

	c := ts.dial(t, "alice", testPassword)
	if err := c.Stor("/big.bin", strings.NewReader("complete")); err != nil {
		t.Fatal(err)
	}

	if got, _ := os.ReadFile(filepath.Join(home, "big.bin")); string(got) != "complete" {
		t.Errorf("the file holds %q", got)
	}

	noTempFiles(t, home)

	if size, err := c.FileSize("/big.bin"); err != nil || size != int64(len("complete")) {
		t.Errorf("SIZE after the upload: %d, %v", size, err)
	}
}

// One part per account and name: while alice uploads it, her other
// sessions may not continue it (450: file busy), and a fresh STOR of hers
// goes to a one-off temporary file, as without resume; bob has his own.
func TestResumeOnePartPerAccountAndName(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	first := ts.raw(t)
	first.Login("alice", testPassword)
	first.Must(200, "TYPE I")
	conn := first.DialPasv()
	first.Must(150, "STOR /same.bin")

	if _, err := conn.Write([]byte("first ")); err != nil {
		t.Fatal(err)
	}

	waitFor(t, func() bool { _, size := tempFilesIn(t, home); return size == 6 })

	second := ts.raw(t)
	second.Login("alice", testPassword)
	second.Must(200, "TYPE I")

	for _, cmd := range []string{"APPE /same.bin", "REST 3", "STOR /same.bin"} {
		if cmd == "REST 3" {
			second.Must(350, "%s", cmd)

			continue
		}

		second.DialPasv()
		if code, msg := second.Cmd("%s", cmd); code != 450 || !strings.Contains(msg, "in progress") {
			t.Errorf("alice's %s while her upload runs: %d %q, want 450", cmd, code, msg)
		}
	}

	alice := ts.dial(t, "alice", testPassword)
	if err := alice.Stor("/same.bin", strings.NewReader("second")); err != nil {
		t.Errorf("alice's fresh STOR while her upload runs: %v", err)
	}

	bob := ts.dial(t, "bob", testPassword)
	if err := bob.Stor("/other.bin", strings.NewReader("bob's")); err != nil {
		t.Errorf("bob's upload while alice's runs: %v", err)
	}

	// Cut now, the first upload is older than what landed: it is not kept.
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
	first.Expect(426)
	waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

	if got, _ := os.ReadFile(filepath.Join(home, "same.bin")); string(got) != "second" {
		t.Errorf("the file holds %q", got)
	}

	noTempFiles(t, home)
}

// Concurrent STORs of one account to one name all land in turn, as without
// resume (stress scenario 7), and leave no temporary file.
func TestResumeConcurrentUploadsToOneName(t *testing.T) {
	t.Parallel()

	ts, home := resumeServer(t, time.Hour)
	const uploaders = 8

	contents := make([][]byte, uploaders)
	done := make(chan error, uploaders)

	for i := range uploaders {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 1<<20)
		c := ts.dial(t, "alice", testPassword)

		go func() { done <- c.Stor("/same.bin", bytes.NewReader(contents[i])) }()
	}

	for range uploaders {
		if err := <-done; err != nil {
			t.Errorf("an upload failed: %v", err)
		}
	}

	got, err := os.ReadFile(filepath.Join(home, "same.bin"))
	if err != nil {
		t.Fatal(err)
	}

	matches := 0
	for _, c := range contents {
		if bytes.Equal(got, c) {
			matches++
		}
	}

	if matches != 1 {
		t.Errorf("the file is none of the uploads (%d bytes)", len(got))
	}

	noTempFiles(t, home)
}

func TestResumeExpiredPartIsGone(t *testing.T) {
	t.Parallel()

	t.Run("when found", func(t *testing.T) {
		t.Parallel()

		ts, home := resumeServer(t, time.Minute)
		cutUpload(t, ts, home, ftptest.RandomBytes(1<<20))
		parts, _ := tempFilesIn(t, home)
		old := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(filepath.Join(home, parts[0]), old, old); err != nil {
			t.Fatal(err)
		}

		if code, msg := sizeOf(t, ts, "alice", "/big.bin"); code != 550 {
			t.Errorf("SIZE of an expired part: %d %q, want 550", code, msg)
		}

		noTempFiles(t, home)
	})

	t.Run("by the sweep", func(t *testing.T) {
		t.Parallel()

		ts, home := resumeServer(t, 300*time.Millisecond)
		cutUpload(t, ts, home, ftptest.RandomBytes(1<<20))
		waitFor(t, func() bool { parts, _ := tempFilesIn(t, home); return len(parts) == 0 })

		// The sweep logs once it has removed the part: the line may follow
		// the file's removal by a moment.
		waitFor(t, func() bool { return len(ts.logs.FilterMessage("expired upload parts removed").All()) > 0 })
		logged := ts.logs.FilterMessage("expired upload parts removed").All()
		if len(logged) != 1 || logged[0].ContextMap()["files"] != int64(1) || logged[0].ContextMap()["bytes"] != int64(1<<20) {
			t.Errorf("log lines: %v", logged)
		}
	})
}

// The parts of anonymous sessions, of a window of 0 and of a full disk are
// not kept: those uploads leave nothing, as before.
func TestResumeNotForEveryUpload(t *testing.T) {
	t.Parallel()

	t.Run("anonymous uploads", func(t *testing.T) {
		t.Parallel()

		root := makeTree(t)
		if err := os.Mkdir(filepath.Join(root, "incoming"), 0o755); err != nil {
			t.Fatal(err)
		}

		f := fixture{opts: defaultOptions()}
		f.opts.UploadResumeWindow = time.Hour
		ts := startServerWith(t, f, auth.Options{Anonymous: true, AnonymousRoot: root, AnonymousUploadDir: "incoming"})
		c := ts.raw(t)
		c.Login("anonymous", "guest@example.com")
		c.Must(200, "TYPE I")
		conn := c.DialPasv()
		c.Must(150, "STOR /incoming/half.bin")

		if _, err := conn.Write(ftptest.RandomBytes(512 << 10)); err != nil {
			t.Fatal(err)
		}

		time.Sleep(100 * time.Millisecond)
		_ = conn.(*net.TCPConn).SetLinger(0)
		_ = conn.Close()
		waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

		if _, err := os.Stat(filepath.Join(root, "incoming", "half.bin")); err == nil {
			t.Error("a partial file is under the final name")
		}

		noTempFiles(t, filepath.Join(root, "incoming"))
	})

	t.Run("a create-only account", func(t *testing.T) {
		t.Parallel()

		home := makeTree(t)
		f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.WriteOnly}}}
		f.opts.UploadResumeWindow = time.Hour
		ts := startServer(t, f)
		cutUpload(t, ts, home, ftptest.RandomBytes(1<<20))

		noTempFiles(t, home)
	})

	t.Run("a full disk", func(t *testing.T) {
		t.Parallel()

		home := smallDisk(t)
		f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
		f.opts.UploadResumeWindow = time.Hour
		ts := startServer(t, f)
		c := ts.dial(t, "alice", testPassword)

		if err := c.Stor("/too-big.bin", bytes.NewReader(make([]byte, 8<<20))); err == nil {
			t.Fatal("an upload bigger than the disk succeeded")
		}

		noTempFiles(t, home)

		if size, err := c.FileSize("/too-big.bin"); err == nil {
			t.Errorf("SIZE reports a part of %d bytes", size)
		}
	})
}

// A write-only account that may overwrite ([[users]] overwrite = true)
// resumes as a read-write one does: SIZE of its part, then APPE.
func TestResumeWriteOnlyOverwrite(t *testing.T) {
	t.Parallel()

	home := makeTree(t)
	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.WriteOnly, Overwrite: true}}}
	f.opts.UploadResumeWindow = time.Hour
	ts := startServer(t, f)
	data := ftptest.RandomBytes(2 << 20)
	cutUpload(t, ts, home, data[:1<<20])

	c := ts.dial(t, "alice", testPassword)
	if size, err := c.FileSize("/big.bin"); err != nil || size != 1<<20 {
		t.Fatalf("SIZE: %d, %v; want the part's %d", size, err, 1<<20)
	}

	if err := c.Append("/big.bin", bytes.NewReader(data[1<<20:])); err != nil {
		t.Fatal(err)
	}

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}
}

// A part outlives the server: after a restart, the same account resumes it.
func TestResumeAfterARestart(t *testing.T) {
	t.Parallel()

	curl := needTool(t, "curl")
	home := makeTree(t)
	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
	f.opts.UploadResumeWindow = time.Hour
	data := ftptest.RandomBytes(resumeSize)
	cut := 2 << 20

	first := startServer(t, f)
	cutUpload(t, first, home, data[:cut])

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	if err := first.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	f.opts.PassivePortStart, f.opts.PassivePortEnd = passiveRange()
	second := startServer(t, f)

	runTool(t, curl, "--silent", "--show-error", "--max-time", "30", "--user", "alice:"+testPassword,
		"--upload-file", writeLocal(t, data), "--continue-at", "-", "ftp://"+second.addr+"/big.bin")

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}
}

// curl broken off by --max-time, then curl -C -, ends with the whole file.
// On --max-time curl closes its data connection cleanly and then its control
// connection: in stream mode (RFC 959, 3.4.1) the first looks like the end of
// the file, so the server keeps the part if it sees the control connection
// go first, and otherwise commits what came; curl -C - then continues the
// part (APPE) or the file (APPE in place). Either way the file is whole.
func TestResumeAfterCurlDies(t *testing.T) {
	t.Parallel()

	curl := needTool(t, "curl")
	ts, home := resumeServer(t, time.Hour)
	data := ftptest.RandomBytes(resumeSize)
	local := writeLocal(t, data)
	url := "ftp://" + ts.addr + "/big.bin"

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	slow := exec.CommandContext(ctx, curl, "--silent", "--show-error", "--max-time", "1", "--limit-rate", "1M",
		"--user", "alice:"+testPassword, "--upload-file", local, url)
	slow.Env = append(os.Environ(), "HOME="+t.TempDir())

	var ee *exec.ExitError
	if err := slow.Run(); !errors.As(err, &ee) || ee.ExitCode() != 28 {
		t.Fatalf("the slow upload: %v, want curl's exit code 28 (time-out)", err)
	}

	waitFor(t, func() bool {
		return len(ts.logs.FilterMessage("transfer incomplete").All())+len(ts.logs.FilterMessage("transfer done").All()) == 1
	})

	runTool(t, curl, "--silent", "--show-error", "--max-time", "30", "--user", "alice:"+testPassword,
		"--upload-file", local, "--continue-at", "-", url)

	got, err := os.ReadFile(filepath.Join(home, "big.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the resumed file differs from the original (%d bytes, %v)", len(got), err)
	}
}
