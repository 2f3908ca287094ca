package ftpraw_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"wharf/internal/ftpraw"
)

// fakeServer answers one control connection: it writes greeting, then for each command line it reads,
// calls answer, which writes the replies (and may use a data listener).
func fakeServer(t *testing.T, greeting string, answer func(w *bufio.Writer, line string, data net.Listener) bool) string {
	t.Helper()

	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	data, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = l.Close(); _ = data.Close() })

	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()

		r, w := bufio.NewReader(c), bufio.NewWriter(c)
		_, _ = w.WriteString(greeting)
		_ = w.Flush()

		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}

			more := answer(w, strings.TrimRight(line, "\r\n"), data)
			_ = w.Flush()

			if !more {
				return
			}
		}
	}()

	return l.Addr().String()
}

func epsvReply(data net.Listener) string {
	return fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", data.Addr().(*net.TCPAddr).Port)
}

func TestLoginListAndQuit(t *testing.T) {
	t.Parallel()

	seen := make(chan string, 100)

	addr := fakeServer(t, "220-hello\r\n220 there\r\n", func(w *bufio.Writer, line string, data net.Listener) bool {
		seen <- line

		switch ftpraw.Verb(line) {
		case "USER":
			_, _ = w.WriteString("331 password please\r\n")
		case "PASS":
			_, _ = w.WriteString("230 in\r\n")
		case "EPSV":
			_, _ = w.WriteString(epsvReply(data))
		case "LIST":
			_, _ = w.WriteString("150 here it comes\r\n")
			_ = w.Flush()

			dc, err := data.Accept()
			if err != nil {
				return false
			}

			_, _ = dc.Write([]byte("a\r\nb\r\n"))
			_ = dc.Close()
			_, _ = w.WriteString("226 done\r\n")
		case "QUIT":
			_, _ = w.WriteString("221 bye\r\n")

			return false
		}

		return true
	})

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	c, greeting, err := ftpraw.Dial(ctx, addr, ftpraw.Options{})
	if err != nil {
		t.Fatal(err)
	}

	if greeting.Code != 220 || greeting.Msg != "hello\nthere" {
		t.Errorf("greeting %q, want 220 and both lines", greeting)
	}

	if err := c.Login("someone", "secret"); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 100)

	n, err := c.List("/", buf)
	if err != nil || string(buf[:n]) != "a\r\nb\r\n" {
		t.Fatalf("LIST: %q, %v", buf[:n], err)
	}

	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}

	close(seen)

	var got []string
	for l := range seen {
		got = append(got, l)
	}

	want := "USER someone,PASS secret,EPSV,LIST /,QUIT"
	if s := strings.Join(got, ","); s != want {
		t.Errorf("commands %s, want %s", s, want)
	}
}

func TestADownloadLongerThanItsBufferIsErrTooLarge(t *testing.T) {
	t.Parallel()

	addr := fakeServer(t, "220 hi\r\n", func(w *bufio.Writer, line string, data net.Listener) bool {
		switch ftpraw.Verb(line) {
		case "EPSV":
			_, _ = w.WriteString(epsvReply(data))
		case "RETR":
			_, _ = w.WriteString("150 here\r\n")
			_ = w.Flush()

			dc, err := data.Accept()
			if err != nil {
				return false
			}

			_, _ = dc.Write([]byte("12345"))
			_ = dc.Close()
			_, _ = w.WriteString("226 done\r\n")
		}

		return true
	})

	c, _, err := ftpraw.Dial(t.Context(), addr, ftpraw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Retr("/f", make([]byte, 4)); !errors.Is(err, ftpraw.ErrTooLarge) {
		t.Errorf("RETR of 5 bytes into 4: %v, want ErrTooLarge", err)
	}
}

func TestARefusedPasswordIsAReplyErrorWithoutThePassword(t *testing.T) {
	t.Parallel()

	addr := fakeServer(t, "220 hi\r\n", func(w *bufio.Writer, line string, _ net.Listener) bool {
		if strings.HasPrefix(line, "USER") {
			_, _ = w.WriteString("331 go on\r\n")

			return true
		}

		_, _ = w.WriteString("421 too many at once\r\n")

		return false
	})

	c, _, err := ftpraw.Dial(t.Context(), addr, ftpraw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	err = c.Login("alice", "hunter2")

	re, ok := errors.AsType[*ftpraw.ReplyError](err)
	if !ok || re.Got.Code != 421 || re.Cmd != "PASS" {
		t.Fatalf("login: %v, want a ReplyError for PASS with 421", err)
	}

	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error %q shows the password", err)
	}
}

func TestPipelinedCommandsGoInOneWrite(t *testing.T) {
	t.Parallel()

	got := make(chan string, 1)

	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()

		_, _ = c.Write([]byte("220 hi\r\n"))

		buf := make([]byte, 100)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(buf) // one read: what one write sent on loopback
		got <- string(buf[:n])
	}()

	c, _, err := ftpraw.Dial(t.Context(), l.Addr().String(), ftpraw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := c.Send("USER a", "PASS b", "QUIT"); err != nil {
		t.Fatal(err)
	}

	if s := <-got; s != "USER a\r\nPASS b\r\nQUIT\r\n" {
		t.Errorf("the server read %q in one read", s)
	}
}

func TestTheSessionContextInterruptsAWait(t *testing.T) {
	t.Parallel()

	addr := fakeServer(t, "220 hi\r\n", func(*bufio.Writer, string, net.Listener) bool {
		time.Sleep(5 * time.Second) // never answers in time

		return false
	})

	ctx, cancel := context.WithCancel(t.Context())

	c, _, err := ftpraw.Dial(ctx, addr, ftpraw.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	time.AfterFunc(100*time.Millisecond, cancel)

	start := time.Now()
	if _, err := c.Cmd("NOOP"); err == nil {
		t.Fatal("NOOP answered")
	}

	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the cancelled wait took %s", d)
	}
}

func TestStorSendsTheFile(t *testing.T) {
	t.Parallel()

	received := make(chan string, 1)

	addr := fakeServer(t, "220 hi\r\n", func(w *bufio.Writer, line string, data net.Listener) bool {
		switch ftpraw.Verb(line) {
		case "EPSV":
			_, _ = w.WriteString(epsvReply(data))
		case "STOR":
			_, _ = w.WriteString("150 send it\r\n")
			_ = w.Flush()

			dc, err := data.Accept()
			if err != nil {
				return false
			}

			var b strings.Builder
			_, _ = bufio.NewReader(dc).WriteTo(&b)
			_ = dc.Close()
			received <- b.String()

			_, _ = w.WriteString("226 got " + strconv.Itoa(b.Len()) + "\r\n")
		}

		return true
	})

	src := filepath.Join(t.TempDir(), "up.txt")
	if err := os.WriteFile(src, []byte("some bytes"), 0o600); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	c, _, err := ftpraw.Dial(t.Context(), addr, ftpraw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	n, err := c.Stor("/up.txt", f)
	if err != nil || n != 10 {
		t.Fatalf("STOR: %d bytes, %v", n, err)
	}

	if s := <-received; s != "some bytes" {
		t.Errorf("the server received %q", s)
	}
}
