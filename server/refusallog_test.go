package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"wharf/auth"
)

// loggedRefusal is what a "command refused" line says.
type loggedRefusal struct {
	user, command, path, reason string
	code                        int64
}

// loggedRefusals returns the "command refused" lines logged so far.
func loggedRefusals(logs *observer.ObservedLogs) []loggedRefusal {
	var out []loggedRefusal
	for _, e := range logs.FilterMessage("command refused").All() {
		f := e.ContextMap()
		path, _ := f["path"].(string)
		if path == "" {
			path, _ = f["address"].(string)
		}

		out = append(out, loggedRefusal{user: f["user"].(string), command: f["command"].(string), path: path,
			reason: f["reason"].(string), code: f["code"].(int64)})
	}

	return out
}

// TestRefusedCommandsAreLogged: every command a rule refuses is logged at
// info level with who (the session's client address and user), what (the
// command and its path), the reply code the client read, and the rule;
// failures that refuse nothing (a missing file) are not.
func TestRefusedCommandsAreLogged(t *testing.T) {
	t.Parallel()

	ts, _ := dropBoxServer(t, true)
	home := makeTree(t)
	wo := startServer(t, fixture{opts: defaultOptions(), users: []auth.User{{Name: "wo", PasswordHash: testHash, Home: home, Access: auth.WriteOnly}}})

	a := ts.raw(t)
	a.Login("anonymous", "me@example.com")
	a.Must(550, "MKD /new") // read-only outside the box
	a.Must(200, "TYPE I")
	a.Pasv()
	a.Must(550, "RETR /incoming/someone-else.txt") // the box: no reading
	a.Must(550, "RNFR /README.txt")                // wharf's own refusal, at RNFR
	a.Must(501, "PORT 127,0,0,1,0,21")             // a bounce to port 21
	a.Must(550, "SIZE /no-such-file")              // missing: no refusal
	a.Must(221, "QUIT")

	w := wo.raw(t)
	w.Login("wo", testPassword)
	w.Must(550, "SIZE /README.txt") // write-only: as if missing, but refused
	w.Must(200, "TYPE I")
	w.Pasv()
	w.Must(553, "STOR /README.txt") // create-only
	w.Must(221, "QUIT")

	waitLogged(t, func() bool { return len(loggedRefusals(ts.logs)) == 4 && len(loggedRefusals(wo.logs)) == 2 })

	want := []loggedRefusal{
		{"anonymous", "MKD", "/new", "read-only", 550},
		{"anonymous", "RETR", "/incoming/someone-else.txt", "drop box", 550},
		{"anonymous", "RNFR", "/README.txt", "read-only", 550},
		{"anonymous", "PORT", "127,0,0,1,0,21", "data port below 1024", 501},
	}
	if got := loggedRefusals(ts.logs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("anonymous refusals:\n%v\nwant\n%v", got, want)
	}

	want = []loggedRefusal{
		{"wo", "SIZE", "/README.txt", "write-only", 550},
		{"wo", "STOR", "/README.txt", "create-only", 553},
	}
	if got := loggedRefusals(wo.logs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("write-only refusals:\n%v\nwant\n%v", got, want)
	}

	for _, e := range ts.logs.FilterMessage("command refused").All() {
		if f := e.ContextMap(); e.Level.String() != "info" || f["remote"] == nil || f["session"] == nil {
			t.Errorf("a refusal logged at %s without the session or the client address: %v", e.Level, f)
		}
	}
}

// An anonymous upload refused with 550 (outside the drop box, on a server
// without one) is logged: the case that logged nothing before.
func TestRefusedAnonymousUploadIsLogged(t *testing.T) {
	t.Parallel()

	ts := startServer(t, fixture{opts: defaultOptions(), anon: makeTree(t)})
	c := ts.dial(t, "anonymous", "me@example.com")
	if err := c.Stor("/up.txt", strings.NewReader("x")); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Fatalf("anonymous STOR: %v, want 550", err)
	}

	waitLogged(t, func() bool { return len(loggedRefusals(ts.logs)) == 1 })
	want := loggedRefusal{"anonymous", "STOR", "/up.txt", "read-only", 550}
	if got := loggedRefusals(ts.logs); len(got) != 1 || got[0] != want {
		t.Errorf("refusals %v, want %v", got, want)
	}
}

// A client repeating a refused command does not flood the log: a session
// logs logBurst refusals per logWindow, then, when it ends, one line with the
// count of the others. Paths are bounded.
func TestRefusalsAreBoundedPerSession(t *testing.T) {
	t.Parallel()

	ts := startServer(t, fixture{opts: defaultOptions(), anon: makeTree(t)})
	c := ts.raw(t)
	c.Login("anonymous", "me@example.com")

	long := "/" + strings.Repeat("a", 3000)
	for range 20 {
		c.Must(550, "MKD %s", long)
	}
	c.Must(221, "QUIT")

	waitLogged(t, func() bool { return ts.logs.FilterMessage("more commands refused").Len() == 1 })

	got := loggedRefusals(ts.logs)
	if len(got) != logBurst {
		t.Errorf("%d refusals logged, want %d", len(got), logBurst)
	}
	for _, r := range got {
		if len(r.path) > maxLoggedPath+3 {
			t.Errorf("a logged path of %d bytes, want at most %d", len(r.path), maxLoggedPath+3)
		}
	}

	for _, e := range ts.logs.FilterMessage("more commands refused").All() {
		if more := e.ContextMap(); more["commands"] != int64(20-logBurst) || more["user"] != "anonymous" {
			t.Errorf("summary %v, want %d commands of anonymous", more, 20-logBurst)
		}
	}
}

// waitLogged waits until cond holds of what the server logged after its
// replies, and fails the test after 5 s.
func waitLogged(t *testing.T, cond func() bool) {
	t.Helper()

	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("timed out waiting for the log")

			return
		}
	}
}
