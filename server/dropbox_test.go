package server

import (
	"bytes"
	"errors"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func dropBoxServer(t *testing.T, atomic bool) (*testServer, string) {
	t.Helper()

	root := makeTree(t)
	if err := os.Mkdir(filepath.Join(root, "incoming"), 0o755); err != nil {
		t.Fatal(err)
	}

	writeFile(t, filepath.Join(root, "incoming", "someone-else.txt"), []byte("private"))

	opts := defaultOptions()
	opts.AtomicUploads = atomic
	accounts := fixture{opts: opts, anon: root}
	ts := startServerWith(t, accounts, auth.Options{
		Anonymous:          true,
		AnonymousRoot:      root,
		AnonymousUploadDir: "incoming",
		AnonymousMaxUpload: 1 << 20,
	})

	return ts, root
}

func TestAnonymousDropBox(t *testing.T) {
	t.Parallel()

	for _, mode := range []struct {
		name   string
		atomic bool
	}{{"atomic", true}, {"direct", false}} {
		t.Run(mode.name+" uploads", func(t *testing.T) {
			t.Parallel()

			ts, root := dropBoxServer(t, mode.atomic)
			c := ts.dial(t, "anonymous", "guest@example.com")

			if err := c.Stor("/incoming/mine.txt", strings.NewReader("new file")); err != nil {
				t.Fatalf("a new upload was refused: %v", err)
			}

			if got, _ := os.ReadFile(filepath.Join(root, "incoming", "mine.txt")); string(got) != "new file" {
				t.Fatalf("got %q", got)
			}

			if err := c.MakeDir("/incoming/sub"); err != nil {
				t.Fatalf("mkdir in the box: %v", err)
			}

			if err := c.Stor("/incoming/sub/deeper.txt", strings.NewReader("x")); err != nil {
				t.Fatalf("upload into a new subfolder: %v", err)
			}

			raw := ts.raw(t)
			raw.Login("anonymous", "x")
			for _, command := range []string{
				"STOR /incoming/someone-else.txt",
				"APPE /incoming/someone-else.txt",
				"RETR /incoming/someone-else.txt",
				"LIST /incoming",
				"NLST /incoming",
				"DELE /incoming/someone-else.txt",
				"RNFR /incoming/someone-else.txt",
				"STOR /pub/not-here.txt",
				"MKD /pub/nope",
			} {
				if strings.HasPrefix(command, "STOR") || strings.HasPrefix(command, "APPE") ||
					strings.HasPrefix(command, "RETR") || strings.HasPrefix(command, "LIST") || strings.HasPrefix(command, "NLST") {
					raw.Pasv()
				}

				if code, msg := raw.Cmd("%s", command); code < 450 || code > 553 {
					t.Errorf("%s: got %d %q, want a refusal", command, code, msg)
				}
			}

			if got, _ := os.ReadFile(filepath.Join(root, "incoming", "someone-else.txt")); string(got) != "private" {
				t.Errorf("someone else's upload changed: %q", got)
			}

			// Reading outside the box still works.
			if got := ftptest.Retr(t, c, "/README.txt"); string(got) != "hello from wharf\n" {
				t.Errorf("download outside the box: %q", got)
			}
		})

		t.Run(mode.name+" cuts an upload over max_upload_size with 552 and keeps nothing", func(t *testing.T) {
			t.Parallel()

			ts, root := dropBoxServer(t, mode.atomic)
			c := ts.dial(t, "anonymous", "x")

			err := c.Stor("/incoming/big.bin", bytes.NewReader(make([]byte, 3<<20)))
			var reply *textproto.Error
			if !errors.As(err, &reply) || reply.Code != 552 {
				t.Fatalf("got %v, want 552", err)
			}

			waitFor(t, func() bool { return len(ts.logs.FilterMessage("transfer incomplete").All()) == 1 })

			if _, err := os.Stat(filepath.Join(root, "incoming", "big.bin")); err == nil {
				t.Fatal("the cut upload left a file")
			}

			noTempFiles(t, filepath.Join(root, "incoming"))

			c2 := ts.dial(t, "anonymous", "x")
			if err := c2.Stor("/incoming/exactly.bin", bytes.NewReader(make([]byte, 1<<20))); err != nil {
				t.Fatalf("an upload of exactly the limit: %v", err)
			}
		})
	}
}
