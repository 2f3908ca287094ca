package server

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)

	return c.Conn.Write(p)
}

func TestBufferedConnCoalescesListingLines(t *testing.T) {
	t.Parallel()

	server, client := net.Pipe()
	counted := &countingConn{Conn: server}
	b := newBufferedConn(counted)

	received := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(client)
		received <- data
	}()

	want := ""
	for i := range 1000 {
		line := fmt.Sprintf("-rw-r--r-- 1 ftp ftp 42 Jan  1 00:00 file-%04d\r\n", i)
		want += line
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	if got := <-received; string(got) != want {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}

	if n := counted.writes.Load(); n > 2 {
		t.Fatalf("1000 lines took %d writes", n)
	}
}

// readFromRecorder is a data connection that records what its ReadFrom is
// handed: the kernel's zero-copy paths (sendfile) need the *os.File itself.
type readFromRecorder struct {
	io.Writer
	sources []io.Reader
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		r.sources = append(r.sources, lr.R)
	}

	return io.Copy(r.Writer, onlyReader{src})
}

type onlyReader struct{ io.Reader }

// TestDownloadsHandTheFileToTheConnection: a download of a file on disk
// hands the connection the *os.File, so Go can use sendfile(2); wrapping it
// (to keep its errors apart, say) would cost a copy through user space.
func TestDownloadsHandTheFileToTheConnection(t *testing.T) {
	t.Parallel()

	f, err := os.CreateTemp(t.TempDir(), "download")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}

	w := &readFromRecorder{Writer: io.Discard}
	tr := &transfer{file: f, counted: prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"})}

	if n, err := tr.WriteTo(w); err != nil || n != 1<<20 {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}

	for _, src := range w.sources {
		if _, ok := src.(*os.File); !ok {
			t.Fatalf("the connection was handed a %T, not the *os.File", src)
		}
	}

	if len(w.sources) == 0 {
		t.Fatal("the connection's ReadFrom was not used")
	}
}
