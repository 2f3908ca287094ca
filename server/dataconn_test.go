package server

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
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
