package server

import (
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFilterLine(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		in, want string
	}{
		{"PORT 127,0,0,1,4,1\r\n", "PORT 127,0,0,1,4,1\r\n"},
		{"PORT 127,0,0,1,0,22\r\n", "PORT " + refusedPort + "\r\n"},
		{"port 127,0,0,1,3,255\r\n", "port " + refusedPort + "\r\n"},
		{"PORT 127,0,0,1,4,0\r\n", "PORT 127,0,0,1,4,0\r\n"},
		{"PORT 1,2,3\r\n", "PORT " + refusedPort + "\r\n"},
		{"PORT 127,0,0,1,999,1\r\n", "PORT " + refusedPort + "\r\n"},
		{"EPRT |1|127.0.0.1|40000|\r\n", "EPRT |1|127.0.0.1|40000|\r\n"},
		{"EPRT |2|::1|25|\r\n", "EPRT " + refusedPort + "\r\n"},
		{"EPRT !1!127.0.0.1!1023!\r\n", "EPRT " + refusedPort + "\r\n"},
		{"EPRT |1|127.0.0.1|x|\r\n", "EPRT " + refusedPort + "\r\n"},
		{"RETR PORT 127,0,0,1,0,22\r\n", "RETR PORT 127,0,0,1,0,22\r\n"},
		{"NOOP\r\n", "NOOP\r\n"},
	} {
		if got := string(filterLine([]byte(tc.in))); got != tc.want {
			t.Errorf("filterLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPortFilterStream(t *testing.T) {
	t.Parallel()

	var p portFilter
	p.feed([]byte("USER a\r\nPORT 127,0,0,1,0,2"))
	p.feed([]byte("5\r\nNOOP\r\nAUTH TLS\r\n\x16\x03\x01PORT 127,0,0,1,0,25\r\n"))

	got := string(p.pending) + string(p.partial)
	want := "USER a\r\nPORT " + refusedPort + "\r\nNOOP\r\nAUTH TLS\r\n\x16\x03\x01PORT 127,0,0,1,0,25\r\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func FuzzFilterLine(f *testing.F) {
	for _, s := range []string{"PORT 127,0,0,1,0,22\r\n", "EPRT |1|127.0.0.1|40000|\r\n", "EPRT ||||\r\n", "PORT ,,,,,\r\n", "EPRT |\r\n"} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, line string) {
		out := string(filterLine([]byte(line)))
		verb, arg, _ := strings.Cut(strings.TrimRight(out, "\r\n"), " ")
		switch strings.ToUpper(verb) {
		case "PORT":
			if p, ok := portOfPORT(arg); ok && p < 1024 {
				t.Fatalf("%q let PORT to %d through", line, p)
			}
		case "EPRT":
			if p, ok := portOfEPRT(arg); ok && p < 1024 {
				t.Fatalf("%q let EPRT to %d through", line, p)
			}
		}
	})
}

// A stream read through the filter in small pieces comes out filtered.
func TestPortFilterRead(t *testing.T) {
	t.Parallel()

	client, server := net.Pipe()
	p := &portFilter{Conn: server}

	go func() {
		for _, chunk := range []string{"USER a\r\n", "PORT 127,0,0,1,0,2", "2\r\nNOOP\r\n", "EPRT |1|127.0.0.1|40000|\r\n", "AUTH TLS\r\n", "PORT 127,0,0,1,0,21\r\n"} {
			_, _ = client.Write([]byte(chunk))
		}
		_ = client.Close()
	}()

	got, _ := io.ReadAll(iotest.OneByteReader(p))
	want := "USER a\r\nPORT " + refusedPort + "\r\nNOOP\r\nEPRT |1|127.0.0.1|40000|\r\nAUTH TLS\r\nPORT 127,0,0,1,0,21\r\n"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
