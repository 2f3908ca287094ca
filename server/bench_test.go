package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"wharf/internal/ftptest"
)

// These benchmarks cover the hot pieces of the transfer and listing paths.
// CI runs them once each as a smoke test (make test: -benchtime=1x); the
// figures that matter come from make bench, against a real client.

func BenchmarkMatch(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("debian-13.%d.0-amd64-netinst.iso", i)
	}

	for b.Loop() {
		for _, n := range names {
			match("debian-*-amd64-*.iso", n)
		}
	}
}

func BenchmarkMatchPatternBomb(b *testing.B) {
	pattern := strings.Repeat("*a", 100) + "b"
	name := strings.Repeat("a", 255)

	for b.Loop() {
		match(pattern, name)
	}
}

func BenchmarkPassivePorts(b *testing.B) {
	p := newPortCandidates(50000, 50100)

	for b.Loop() {
		p.candidate()
	}
}

// BenchmarkDataAddresses parses the PORT and EPRT arguments the control
// connection checks before the engine connects anywhere.
func BenchmarkDataAddresses(b *testing.B) {
	for b.Loop() {
		parsePORT("127,0,0,1,195,80")
		parseEPRT("|1|127.0.0.1|50000|")
		parseEPRT("|2|::1|50000|")
	}
}

// BenchmarkListingWrites measures 10,000 listing lines written through the
// passive data connection's write buffer, as the engine writes them.
func BenchmarkListingWrites(b *testing.B) {
	line := []byte("-rw-r--r-- 1 ftp ftp      4096 Jan  1 00:00 file-name-of-a-usual-length.tar.gz\r\n")

	for b.Loop() {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, client)
			close(done)
		}()

		w := newBufferedConn(server)
		for range 10_000 {
			_, _ = w.Write(line)
		}

		_ = w.Close()
		<-done
	}
}

// BenchmarkAnonymousSession is one short session against a real wharf on
// loopback, as make bench's session row makes them: connect, USER, PASS and
// QUIT in one write, read the replies until the server closes. Its allocations
// are the server's and the client's together.
func BenchmarkAnonymousSession(b *testing.B) {
	f := fixture{opts: defaultOptions(), anon: b.TempDir()}
	f.opts.MaxClientsPerIP = 1000
	ts := startServer(b, f).addr
	buf := make([]byte, 4096)

	b.ReportAllocs()

	for b.Loop() {
		conn, err := net.Dial("tcp", ts)
		if err != nil {
			b.Fatal(err)
		}

		if _, err := conn.Read(buf); err != nil {
			b.Fatal(err)
		}

		if _, err := conn.Write([]byte("USER anonymous\r\nPASS bench@example.com\r\nQUIT\r\n")); err != nil {
			b.Fatal(err)
		}

		if _, err := io.Copy(io.Discard, conn); err != nil {
			b.Fatal(err)
		}

		_ = conn.Close()
	}
}

// BenchmarkSmallFileDownload is make bench's small-files row in one
// process: in one logged-in session, PASV, connect, RETR of a 4 KiB file,
// read it, 226. Its allocations are the server's and the client's together.
func BenchmarkSmallFileDownload(b *testing.B) {
	root := b.TempDir()
	if err := os.WriteFile(filepath.Join(root, "small.bin"), make([]byte, 4096), 0o644); err != nil {
		b.Fatal(err)
	}

	ts := startServer(b, fixture{opts: defaultOptions(), anon: root})
	c := ftptest.Dial(b, ts.addr, nil)
	c.Login("anonymous", "bench@example.com")
	c.Must(200, "TYPE I")
	buf := make([]byte, 8192)

	b.ReportAllocs()

	for b.Loop() {
		data, err := net.Dial("tcp", c.Pasv())
		if err != nil {
			b.Fatal(err)
		}

		c.Must(150, "RETR /small.bin")

		for {
			if _, err := data.Read(buf); err != nil {
				break
			}
		}

		_ = data.Close()
		c.Expect(226)
	}
}
