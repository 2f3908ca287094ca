package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"wharf/internal/ftptest"
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
	moved   []int64 // what each call moved
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		r.sources = append(r.sources, lr.R)
	}

	n, err := io.Copy(r.Writer, onlyReader{src})
	r.moved = append(r.moved, n)

	return n, err
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

// TestDownloadStopsAtTheSizeAtOpen: a download sends the file as RETR
// opened it, counts every byte, and ends at that size without one more
// sendfile(2) to find the end of the file (a call that moves nothing), even
// if the file grew meanwhile.
func TestDownloadStopsAtTheSizeAtOpen(t *testing.T) {
	t.Parallel()

	data := ftptest.RandomBytes(1<<20 + 123)

	f, err := os.Create(filepath.Join(t.TempDir(), "download"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}

	counted := prometheus.NewCounter(prometheus.CounterOpts{Name: "bytes"})
	tr := &transfer{file: f, size: int64(len(data)), counted: counted}

	// Written after RETR opened the file: not part of this download.
	if _, err := f.WriteAt([]byte("appended later"), int64(len(data))); err != nil {
		t.Fatal(err)
	}

	var got bytes.Buffer
	w := &readFromRecorder{Writer: &got}

	if n, err := tr.WriteTo(w); err != nil || n != int64(len(data)) {
		t.Fatalf("WriteTo: %d, %v; want %d", n, err, len(data))
	}

	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("the client got %d bytes that differ from the file's %d", got.Len(), len(data))
	}

	if c := testutil.ToFloat64(counted); c != float64(len(data)) || tr.bytes.Load() != int64(len(data)) {
		t.Fatalf("counted %v bytes (transfer: %d), want %d", c, tr.bytes.Load(), len(data))
	}

	for i, n := range w.moved {
		if n == 0 {
			t.Fatalf("call %d of %d to the connection's ReadFrom moved nothing: %v", i+1, len(w.moved), w.moved)
		}
	}
}
