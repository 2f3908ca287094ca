package server

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/vfs"
)

// plantLeftover writes what a wharf killed during an upload leaves: a
// temporary upload file of size bytes, at rel below dir, last written two
// days ago. It returns its name on disk.
func plantLeftover(t *testing.T, dir, rel string, size int) string {
	t.Helper()

	name := filepath.Join(dir, filepath.FromSlash(rel))
	writeFile(t, name, make([]byte, size))

	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(name, old, old); err != nil {
		t.Fatal(err)
	}

	return name
}

// reclaimLine waits for the first "upload leftovers removed" line and returns its fields.
func reclaimLine(t *testing.T, ts *testServer) map[string]any {
	t.Helper()

	waitFor(t, func() bool { return len(ts.logs.FilterMessage("upload leftovers removed").All()) > 0 })

	return ts.logs.FilterMessage("upload leftovers removed").All()[0].ContextMap()
}

func TestReclaimAtStart(t *testing.T) {
	t.Parallel()

	home := makeTree(t)
	gone := []string{
		plantLeftover(t, home, vfs.TempPrefix+"0123456789abcdef", 1000),
		plantLeftover(t, home, "pub/"+vfs.TempPrefix+"fedcba9876543210", 24),
		plantLeftover(t, home, "pub/"+vfs.TempPrefix+"part-00112233445566778899aabbccddeeff", 100), // past its window
	}
	young := filepath.Join(home, "pub", vfs.TempPrefix+"part-ffeeddccbbaa99887766554433221100")
	writeFile(t, young, []byte("a part inside its window"))

	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
	f.opts.UploadResumeWindow = time.Hour
	ts := startServer(t, f)

	line := reclaimLine(t, ts)
	if line["files"] != int64(3) || line["bytes"] != int64(1124) || line["complete"] != true {
		t.Errorf("the log line: %v, want 3 files, 1124 bytes, complete", line)
	}

	if dir, _ := filepath.EvalSymlinks(home); line["home"] != dir {
		t.Errorf("the log line names %v, want %s", line["home"], dir)
	}

	for _, name := range gone {
		if _, err := os.Lstat(name); err == nil {
			t.Errorf("left behind: %s", name)
		}
	}

	if _, err := os.Stat(young); err != nil {
		t.Errorf("a part inside its window was removed: %v", err)
	}

	// Nothing to remove, nothing logged.
	ts.srv.reclaim.walk(t.TempDir())
	if n := len(ts.logs.FilterMessage("upload leftovers removed").All()); n != 1 {
		t.Errorf("%d log lines after a walk that removed nothing, want still 1", n)
	}
}

// A home the server did not serve at start (added by a reload) is walked
// when a session first opens it.
func TestReclaimWhenAHomeIsFirstOpened(t *testing.T) {
	t.Parallel()

	home, later := makeTree(t), makeTree(t)
	leftover := plantLeftover(t, later, vfs.TempPrefix+"0123456789abcdef", 10)

	ts := startServer(t, fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}})

	accounts, err := auth.New(auth.Options{Users: []auth.User{
		{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite},
		{Name: "carol", PasswordHash: testHash, Home: later, Access: auth.ReadOnly},
	}})
	if err != nil {
		t.Fatal(err)
	}

	if err := ts.srv.Reload(Reload{Accounts: accounts}); err != nil {
		t.Fatal(err)
	}

	time.Sleep(50 * time.Millisecond)
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("removed before any session opened the home: %v", err)
	}

	ts.dial(t, "carol", testPassword)
	line := reclaimLine(t, ts)
	if line["files"] != int64(1) || line["bytes"] != int64(10) {
		t.Errorf("the log line: %v", line)
	}

	if _, err := os.Stat(leftover); err == nil {
		t.Error("the leftover is still there")
	}
}

// A reclaim, of this process or of another wharf on the same folder, never
// touches the file of an upload in progress, however old it looks.
func TestReclaimLeavesUploadsInFlight(t *testing.T) {
	t.Parallel()

	home := makeTree(t)
	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
	ts := startServer(t, f)

	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")
	data := ftptest.RandomBytes(1 << 20)
	conn := c.DialPasv()
	c.Must(150, "STOR /up.bin")

	if _, err := conn.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}

	waitFor(t, func() bool { _, size := tempFilesIn(t, home); return size == 1000 })

	temps, _ := tempFilesIn(t, home)
	inFlight := filepath.Join(home, temps[0])
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(inFlight, old, old); err != nil {
		t.Fatal(err)
	}

	t.Run("this process", func(t *testing.T) {
		plantLeftover(t, home, "pub/"+vfs.TempPrefix+"aaaaaaaaaaaaaaaa", 5)
		ts.srv.reclaim.walk(home)

		if line := reclaimLine(t, ts); line["files"] != int64(1) {
			t.Errorf("the walk removed %v files, want the planted one only", line["files"])
		}

		if _, err := os.Stat(inFlight); err != nil {
			t.Fatalf("the upload's file is gone: %v", err)
		}
	})

	t.Run("another process", func(t *testing.T) {
		plantLeftover(t, home, "pub/"+vfs.TempPrefix+"bbbbbbbbbbbbbbbb", 7)
		f.opts.PassivePortStart, f.opts.PassivePortEnd = passiveRange()
		other := startServer(t, f) // its own registry: only the file's lock tells

		if line := reclaimLine(t, other); line["files"] != int64(1) {
			t.Errorf("the other server's walk removed %v files, want the planted one only", line["files"])
		}

		if _, err := os.Stat(inFlight); err != nil {
			t.Fatalf("the upload's file is gone: %v", err)
		}
	})

	if _, err := conn.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}

	_ = conn.(*net.TCPConn).CloseWrite()
	c.Expect(226)

	got, err := os.ReadFile(filepath.Join(home, "up.bin"))
	if err != nil || ftptest.Sum(got) != ftptest.Sum(data) {
		t.Fatalf("the upload landed as %d bytes (%v), want %d", len(got), err, len(data))
	}

}
