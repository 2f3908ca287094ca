package server

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// slowPiece and slowPace are a slow client's pace: 16 KiB every 100 ms.
const (
	slowPiece = 16 << 10
	slowPace  = 100 * time.Millisecond
)

// The byte counter moves while a transfer runs, at least every second, on
// the zero-copy paths too: splice from a client that writes slowly here,
// sendfile to one that reads slowly in TestSendfileCountsAsItGoes. Before,
// it moved when a transfer ended.
func TestTransferBytesCountedAsTheyFlow(t *testing.T) {
	t.Parallel()

	const size = 512 << 10 // about 3 s at the slow pace

	f, _ := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)
	counter := ts.srv.metrics.xfers[xferUpload].bytes

	c := ts.raw(t)
	c.Login("alice", testPassword)
	c.Must(200, "TYPE I")
	data := c.DialPasv()
	c.Must(150, "STOR /up.bin")

	moved := make(chan error, 1)
	go func() { moved <- writeSlowly(data, size) }()

	longest, took := watchCounter(t, counter, size)

	if err := <-moved; err != nil {
		t.Fatal(err)
	}
	c.Expect(226)

	if longest > 1500*time.Millisecond {
		t.Errorf("the counter stood still for %v while the upload ran (%v in all)", longest, took)
	}
}

// sendfile to a client that reads slowly ends a chunk every tick, so the
// bytes it moved are counted while it runs. The socket buffers are small
// here, as they are in effect on a long, slow path; on loopback the kernel
// would take the whole file at once.
func TestSendfileCountsAsItGoes(t *testing.T) {
	t.Parallel()

	const size = 512 << 10

	file := filepath.Join(t.TempDir(), "slow.bin")
	writeFile(t, file, ftptest.RandomBytes(size))

	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	server, client := tcpPair(t)
	_ = server.SetWriteBuffer(slowPiece)
	_ = client.SetReadBuffer(slowPiece)

	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"})
	tr := &transfer{file: f, counted: counter, dataTimeout: time.Minute}
	tr.progress.Store(time.Now().UnixNano())

	sent := make(chan error, 1)
	go func() {
		_, err := tr.WriteTo(server)
		_ = server.Close()
		sent <- err
	}()

	read := make(chan error, 1)
	go func() { read <- readSlowly(client) }()

	longest, took := watchCounter(t, counter, size)

	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}

	if longest > 1500*time.Millisecond {
		t.Errorf("the counter stood still for %v while the download ran (%v in all)", longest, took)
	}
}

// watchCounter samples counter until it reaches size, and returns the
// longest time it stood still and the time it took.
func watchCounter(t *testing.T, counter prometheus.Counter, size float64) (longest, took time.Duration) {
	t.Helper()

	start := time.Now()
	changed, last := start, 0.0

	for v := 0.0; v < size; {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the counter is at %v after 30 s, want %v", v, size)
		}

		time.Sleep(20 * time.Millisecond)

		if v = testutil.ToFloat64(counter); v != last {
			longest = max(longest, time.Since(changed))
			changed, last = time.Now(), v
		}
	}

	took = time.Since(start)
	t.Logf("%v bytes in %v, the counter stood still for %v at most", size, took, longest)

	if v := testutil.ToFloat64(counter); v != size {
		t.Errorf("counted %v bytes, want %v", v, size)
	}

	return longest, took
}

// tcpPair returns the two ends of a TCP connection on loopback.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()

	d := net.Dialer{Timeout: 5 * time.Second}

	client, err := d.DialContext(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}

	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })

	return server.(*net.TCPConn), client.(*net.TCPConn)
}

// readSlowly reads data to its end at the slow pace.
func readSlowly(data net.Conn) error {
	buf := make([]byte, slowPiece)

	for {
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))

		if _, err := io.ReadFull(data, buf); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF { //nolint:errorlint // io.ReadFull returns them bare
				return nil
			}

			return err
		}

		time.Sleep(slowPace)
	}
}

// writeSlowly sends size bytes at the slow pace, then closes data.
func writeSlowly(data net.Conn, size int) error {
	piece := ftptest.RandomBytes(slowPiece)

	for sent := 0; sent < size; sent += len(piece) {
		if _, err := data.Write(piece); err != nil {
			return err
		}

		time.Sleep(slowPace)
	}

	return data.Close()
}
