package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// An HTTP download keeps the snapshot copy it started on when the link
// flips under it, is counted among that copy's holders until it ends (so
// snapshot-wait waits for it), and the next request gets the new copy.
func TestHTTPRequestKeepsItsSnapshotCopy(t *testing.T) {
	t.Parallel()

	root, _, cur := mirrorCopies(t)
	old := ftptest.RandomBytes(16 << 20) // more than the sockets' buffers hold
	writeFile(t, filepath.Join(root, "debian.1", "pool", "big.bin"), old)

	ts, base := startHTTP(t, root, func(o *Options, ao *auth.Options) {
		o.Snapshots = Snapshots{Root: root, List: []Snapshot{{Path: "/debian", Module: "debian"}}}
		o.Listing.Hide = nil
		ao.AnonymousUploadDir = ""
	})

	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}

	if _, err := io.WriteString(conn, "GET /debian/pool/big.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	if got := copyCounts(ts.srv); got["debian.1"] != 1 {
		t.Fatalf("holders during the download: %v, want debian.1 held once", got)
	}

	flipLink(t, root, "debian", "debian.2")

	if got := curl(t, base+"/debian/pool/big.bin"); got.code != http.StatusOK || !bytes.Equal(got.body, cur) {
		t.Errorf("a request after the flip: %d, %d bytes; want 200 and the new copy's %d", got.code, len(got.body), len(cur))
	}

	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}

	if got := slices.Concat(first, rest); !bytes.Equal(got, old) {
		t.Fatalf("the download in progress got %d bytes, not the old copy's %d", len(got), len(old))
	}

	waitFor(t, func() bool { return copyCounts(ts.srv)["debian.1"] == 0 })
}
