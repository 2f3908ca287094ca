package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// A user name, an anonymous password, a file name and the path of a refused
// command carrying a bidi override (U+202E), a line separator (U+2028) and an
// 8-bit CSI (U+009B) reach the log, in both formats, and the xferlog escaped: the raw
// characters never do, and the escapes show what was sent.
func TestClientTextReachesTheLogsEscaped(t *testing.T) {
	t.Parallel()

	const evil = "\u202e\u2028\u009b"
	raw := []string{"\u202e", "\u2028", "\u009b"}
	escaped := `\u202e\u2028\u009b`

	for i, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()

			dir := t.TempDir()
			pub := mkdirs(t, dir, "pub")[0]
			// Anonymous sessions see only world-readable files.
			if err := os.WriteFile(filepath.Join(pub, "gpj"+evil+".txt"), []byte("payload"), 0o644); err != nil {
				t.Fatal(err)
			}

			logPath, xferPath := filepath.Join(dir, "wharf.log"), filepath.Join(dir, "xferlog")
			addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
			cfg := writeFile(t, dir, "wharf.toml", fmt.Sprintf("listen = %q\npassive_ports = [%d, %d]\n\n"+
				"[log]\nformat = %q\nfile = %q\ntransfer_log = %q\n\n[anonymous]\nroot = %q\n",
				addr, 28820+10*i, 28829+10*i, format, logPath, xferPath, pub))

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)

			go func() { done <- run(ctx, []string{"-config", cfg}, nil, strings.NewReader(""), io.Discard, io.Discard) }()

			stop := func() {
				cancel()

				if err := <-done; err != nil {
					t.Errorf("run: %v", err)
				}
			}
			defer func() {
				if ctx.Err() == nil {
					stop()
				}
			}()

			ftptest.WaitFor(t, 10*time.Second, func() bool {
				conn, err := net.Dial("tcp", addr)
				if err == nil {
					_ = conn.Close()
				}

				return err == nil
			})

			c := ftptest.Dial(t, addr, nil)
			c.Must(331, "USER mal%sory", evil)
			c.Must(530, "PASS wrong")
			c.Must(331, "USER anonymous")
			c.Must(230, "PASS guest%s@", evil)
			c.Must(200, "TYPE I")
			data := c.DialPasv()
			c.Must(150, "RETR gpj%s.txt", evil)

			if got, _ := io.ReadAll(data); string(got) != "payload" {
				t.Errorf("RETR read %q", got)
			}

			_ = data.Close()
			c.Expect(226)
			c.Must(550, "MKD new%s", evil) // refused: anonymous is read-only
			c.Must(221, "QUIT")
			stop()

			logText, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}

			xfer, err := os.ReadFile(xferPath)
			if err != nil {
				t.Fatal(err)
			}

			for _, r := range raw {
				if bytes.Contains(logText, []byte(r)) || bytes.Contains(xfer, []byte(r)) {
					t.Errorf("%q reached a log raw:\n%s\n%s", r, logText, xfer)
				}
			}

			// The xferlog: the file name and the anonymous password (its user field).
			if !strings.Contains(string(xfer), "/gpj"+escaped+".txt") || !strings.Contains(string(xfer), " guest"+escaped+"@ ") {
				t.Errorf("xferlog line does not show the escapes: %s", xfer)
			}

			if format == "console" {
				// The console encoder writes fields as JSON: the escape's backslash is doubled.
				if !strings.Contains(string(logText), `mal\\u202e\\u2028\\u009bory`) {
					t.Errorf("text log does not show the escaped user name:\n%s", logText)
				}

				return
			}

			var failed, served, refused bool
			for line := range bytes.SplitSeq(bytes.TrimSpace(logText), []byte("\n")) {
				var entry map[string]any
				if err := json.Unmarshal(line, &entry); err != nil {
					t.Fatalf("not JSON: %q", line)
				}

				switch entry["msg"] {
				case "login failed":
					failed = entry["user"] == "mal"+escaped+"ory"
				case "transfer done":
					served = entry["path"] == "/gpj"+escaped+".txt"
				case "command refused":
					refused = entry["path"] == "/new"+escaped && entry["user"] == "anonymous"
				}
			}

			if !failed || !served || !refused {
				t.Errorf("login failed with the escaped user: %v; transfer done with the escaped path: %v; "+
					"command refused with the escaped path: %v\n%s", failed, served, refused, logText)
			}
		})
	}
}
