package server

import (
	"io"
	"net"
	"testing"
	"time"
)

// A stranger who connects to a victim's passive port first must never get
// the victim's data: not on the transfer it raced, nor on the next one.
func TestPassiveStrangerGetsNothing(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")
	c.Must(200, "TYPE I")
	addr := c.Pasv()

	stranger, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("stranger dial: %v", err)
	}
	defer stranger.Close()

	received := make(chan int64, 1)
	go func() {
		_ = stranger.SetDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.Copy(io.Discard, stranger)
		received <- n
	}()

	// First attempt: the victim's own data connection, after the stranger's.
	victim, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("victim dial: %v", err)
	}

	c.Must(150, "RETR /README.txt")
	if got := readAllFrom(t, victim); string(got) != "hello from wharf\n" {
		t.Fatalf("victim got %q", got)
	}
	c.Expect(226)

	// Second attempt on a fresh PASV: the stranger's socket must not be handed this one either.
	addr = c.Pasv()
	victim, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}

	c.Must(150, "RETR /pub/big.bin")
	if got := readAllFrom(t, victim); len(got) != 1<<20 {
		t.Fatalf("victim got %d bytes", len(got))
	}
	c.Expect(226)

	if n := <-received; n != 0 {
		t.Fatalf("the stranger received %d bytes", n)
	}
}

// After RETR of a missing file with the data socket already connected, the
// next PASV + LIST must answer at once, not after the data connection timeout.
func TestPassiveAfterRefusedTransfer(t *testing.T) {
	t.Parallel()

	f, _ := anonFixture(t)
	f.opts.PassivePortEnd = f.opts.PassivePortStart // one port: the next PASV lands on the same one
	f.opts.DataConnectionTimeout = 10 * time.Second
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	for range 3 {
		conn := c.DialPasv()
		defer conn.Close()

		// Let the engine deliver the connection to the reservation.
		time.Sleep(50 * time.Millisecond)
		c.Must(550, "RETR /missing.iso")
	}

	start := time.Now()
	conn := c.DialPasv()

	c.Must(150, "LIST /")
	if got := readAllFrom(t, conn); len(got) == 0 {
		t.Fatal("empty listing")
	}
	c.Expect(226)

	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("PASV + LIST took %v after a refused RETR", took)
	}
}
