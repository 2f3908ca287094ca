package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"wharf/auth"
)

// TestHomeUnavailableIs421: the right password for an account whose home
// folder can't be opened gets 421 and a closed connection, never 530 (which
// says the password was wrong), and counts no failure toward a ban; the log
// says which folder, as which uid, and why. The anonymous root alike.
func TestHomeUnavailableIs421(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	home, pub := filepath.Join(dir, "alice"), filepath.Join(dir, "pub")
	for _, d := range []string{home, pub} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	f := fixture{opts: defaultOptions(), users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: home, Access: auth.ReadWrite}}}
	f.opts.Ban = BanOptions{MaxFailures: 1, Window: time.Minute, Duration: time.Minute}
	ts := startServerWith(t, f, auth.Options{Users: f.users, Anonymous: true, AnonymousRoot: pub})

	// Gone after start: an unmounted disk, a folder removed by hand.
	for _, d := range []string{home, pub} {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct{ user, pass, folder string }{
		{"alice", testPassword, home},
		{"anonymous", "me@example.com", pub},
		{"alice", testPassword, home}, // still not banned: no failure counted
	} {
		c := ts.raw(t)
		c.Must(331, "USER %s", tc.user)
		if text := c.Must(421, "PASS %s", tc.pass); text != "Service not available: home folder unavailable" {
			t.Errorf("%s: 421 %q", tc.user, text)
		}

		_ = c.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := c.Text.ReadResponse(0); err == nil {
			t.Errorf("%s: the connection stayed open after 421", tc.user)
		}

		logged := false
		for _, e := range ts.logs.FilterMessage("login failed: cannot open home").All() {
			fields := e.ContextMap()
			if fields["user"] == tc.user && fields["home"] == tc.folder && fields["uid"] == int64(os.Geteuid()) &&
				fields["error"] != nil {
				logged = true
			}
		}
		if !logged {
			t.Errorf("%s: no log line names the folder, the uid and the error: %v", tc.user, ts.logs.All())
		}
	}

	if n := ts.logs.FilterMessage("address banned").Len(); n != 0 {
		t.Errorf("an unavailable home banned the address (%d lines)", n)
	}
}
