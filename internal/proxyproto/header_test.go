package proxyproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

var (
	v4 = Header{Version: 1, Source: netip.MustParseAddrPort("203.0.113.7:51000"),
		Destination: netip.MustParseAddrPort("198.51.100.1:21")}
	v6 = Header{Version: 1, Source: netip.MustParseAddrPort("[2001:db8::7]:51000"),
		Destination: netip.MustParseAddrPort("[2001:db8::1]:21")}
)

// v2Of is h as a version 2 header.
func v2Of(h Header) Header {
	h.Version = 2

	return h
}

func TestReadGoodHeaders(t *testing.T) {
	t.Parallel()

	// The version 2 bytes are HAProxy's, as the specification lays them out.
	haproxyV2, _ := hex.DecodeString("0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" +
		"cb007107" + "c6336401" + "c738" + "0015")

	tests := []struct {
		name string
		in   []byte
		want Header
	}{
		{"a v1 TCP4 header", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 51000 21\r\n"), v4},
		{"a v1 TCP6 header", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 51000 21\r\n"), v6},
		{"a v1 UNKNOWN header, whatever follows", []byte("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\n"), Header{Version: 1, Local: true}},
		{"the shortest v1 header", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Local: true}},
		{"a v2 PROXY header over IPv4", Append(nil, v2Of(v4)), v2Of(v4)},
		{"a v2 PROXY header over IPv6", Append(nil, v2Of(v6)), v2Of(v6)},
		{"a v2 header laid out by hand", haproxyV2, v2Of(v4)},
		{"a v2 LOCAL header", Append(nil, Header{Version: 2, Local: true}), Header{Version: 2, Local: true}},
		{"a v2 header with TLVs, skipped", withTLV(Append(nil, v2Of(v4))), v2Of(v4)},
		{"a v2 PROXY header of an unspecified family", v2Raw(0x21, 0x00, nil), Header{Version: 2, Local: true}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			// Whatever follows the header stays unread.
			r := bytes.NewReader(append(bytes.Clone(tt.in), "USER anonymous\r\n"...))

			got, err := Read(r)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}

			if got != tt.want {
				t.Errorf("Read = %+v, want %+v", got, tt.want)
			}

			if rest, _ := io.ReadAll(r); string(rest) != "USER anonymous\r\n" {
				t.Errorf("after the header, %q is left, want the command", rest)
			}

			got, n, err := Parse(tt.in)
			if err != nil || got != tt.want || n != len(tt.in) {
				t.Errorf("Parse = %+v, %d, %v; want %+v, %d", got, n, err, tt.want, len(tt.in))
			}
		})
	}
}

// withTLV adds a TLV (PP2_TYPE_AWS, a VPC endpoint ID) to a v2 header.
func withTLV(h []byte) []byte {
	tlv := append([]byte{0xea, 0x00, 0x18, 0x01}, "vpce-08d2bf15fac5001c9"...)
	tlv = append(tlv, 0) // 23 bytes after the type byte's 3
	tlv[2] = byte(len(tlv) - 3)

	n := int(h[14])<<8 | int(h[15]) + len(tlv)
	h[14], h[15] = byte(n>>8), byte(n)

	return append(h, tlv...)
}

// v2Raw is a v2 header with the given command and family bytes and body.
func v2Raw(verCmd, family byte, body []byte) []byte {
	b := append(bytes.Clone(v2Signature), verCmd, family, byte(len(body)>>8), byte(len(body)))

	return append(b, body...)
}

func TestReadBadHeaders(t *testing.T) {
	t.Parallel()

	long := append(bytes.Clone(v2Signature), 0x21, 0x11, 0x08, 0x01) // 2049 bytes announced

	tests := []struct {
		name string
		in   string
		want error // ErrNotProxy or io.ErrUnexpectedEOF; nil: a *HeaderError
	}{
		{"an FTP command", "USER anonymous\r\n", ErrNotProxy},
		{"a TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03abcdefgh", ErrNotProxy},
		{"nearly PROXY", "PROXZ TCP4 203.0.113.7 198.51.100.1 1 2\r\n", ErrNotProxy},
		{"an empty line then a command", "\r\nUSER anonymous\r\n", ErrNotProxy},
		{"a v1 line cut short", "PROXY TCP4 203.0.113.7 198", io.ErrUnexpectedEOF},
		{"a v1 line without an end", "PROXY TCP4 " + strings.Repeat("1", 200), nil},
		{"a v1 line of 108 bytes", "PROXY UNKNOWN " + strings.Repeat("x", 92) + "\r\n", nil},
		{"a v1 line ending in LF alone", "PROXY TCP4 203.0.113.7 198.51.100.1 51000 21\n", nil},
		{"a short v1 line", "PROXY X\r\nUSER anonymous\r\n", nil},
		{"a v1 unknown protocol", "PROXY UDP4 203.0.113.7 198.51.100.1 51000 21\r\n", nil},
		{"a v1 IPv6 address as TCP4", "PROXY TCP4 2001:db8::7 198.51.100.1 51000 21\r\n", nil},
		{"a v1 IPv4 address as TCP6", "PROXY TCP6 203.0.113.7 2001:db8::1 51000 21\r\n", nil},
		{"a v1 address with a zone", "PROXY TCP6 fe80::1%eth0 2001:db8::1 51000 21\r\n", nil},
		{"a v1 port too large", "PROXY TCP4 203.0.113.7 198.51.100.1 65536 21\r\n", nil},
		{"a v1 port with a sign", "PROXY TCP4 203.0.113.7 198.51.100.1 +51000 21\r\n", nil},
		{"v1 fields with two spaces", "PROXY TCP4  203.0.113.7 198.51.100.1 51000 21\r\n", nil},
		{"v1 with a field missing", "PROXY TCP4 203.0.113.7 198.51.100.1 51000\r\n", nil},
		{"a v2 signature cut short", "\r\n\r\n\x00\r\nQU", io.ErrUnexpectedEOF},
		{"a v2 header of version 1", string(v2Raw(0x11, 0x11, make([]byte, 12))), nil},
		{"a v2 unknown command", string(v2Raw(0x22, 0x11, make([]byte, 12))), nil},
		{"a v2 UDP header", string(v2Raw(0x21, 0x12, make([]byte, 12))), nil},
		{"a v2 UNIX socket header", string(v2Raw(0x21, 0x31, make([]byte, 216))), nil},
		{"a v2 IPv4 header too short", string(v2Raw(0x21, 0x11, make([]byte, 11))), nil},
		{"a v2 IPv6 header too short", string(v2Raw(0x21, 0x21, make([]byte, 35))), nil},
		{"a v2 header announcing more than its bound", string(long), nil},
		{"a v2 body cut short", string(v2Raw(0x21, 0x11, make([]byte, 12))[:20]), io.ErrUnexpectedEOF},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := Read(strings.NewReader(tt.in))

			var he *HeaderError
			switch {
			case tt.want == nil && !errors.As(err, &he):
				t.Errorf("Read error = %v, want a *HeaderError", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Read error = %v, want %v", err, tt.want)
			}

			if _, _, err := Parse([]byte(tt.in)); err == nil {
				t.Errorf("Parse accepted %q", tt.in)
			}
		})
	}
}

// TestReadNeverReadsPastTheHeader gives Read the header a byte at a time
// with the next bytes behind it: not one of them may be taken.
func TestReadNeverReadsPastTheHeader(t *testing.T) {
	t.Parallel()

	for _, h := range [][]byte{
		Append(nil, v4), Append(nil, v6), Append(nil, v2Of(v4)), Append(nil, v2Of(v6)),
		[]byte("PROXY UNKNOWN\r\n"), Append(nil, Header{Version: 2, Local: true}),
	} {
		r := &countingReader{r: bytes.NewReader(append(bytes.Clone(h), "\x16\x03\x01"...))}
		if _, err := Read(r); err != nil {
			t.Fatalf("Read(%q): %v", h, err)
		}

		if r.n != len(h) {
			t.Errorf("Read(%q) took %d bytes, want %d", h, r.n, len(h))
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n

	return n, err
}

// FuzzHeader checks that parsing never panics, that Read and Parse agree,
// that Read never takes a byte past the header, and that a header read
// writes back (Append) as one that reads the same.
func FuzzHeader(f *testing.F) {
	f.Add(Append(nil, v4))
	f.Add(Append(nil, v6))
	f.Add(Append(nil, v2Of(v4)))
	f.Add(Append(nil, v2Of(v6)))
	f.Add(withTLV(Append(nil, v2Of(v4))))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2Raw(0x21, 0x21, make([]byte, 40)))
	f.Add([]byte("USER anonymous\r\n"))

	f.Fuzz(func(t *testing.T, b []byte) {
		parsed, n, perr := Parse(b)

		r := &countingReader{r: bytes.NewReader(b)}
		read, rerr := Read(r)

		switch {
		case perr == nil && rerr != nil:
			t.Fatalf("Parse took %q, Read refused it: %v", b[:n], rerr)
		case perr == nil && (read != parsed || r.n != n):
			t.Fatalf("Parse = %+v (%d bytes), Read = %+v (%d bytes)", parsed, n, read, r.n)
		case perr != nil && rerr == nil:
			t.Fatalf("Read took %q, Parse refused it: %v", b[:r.n], perr)
		case perr != nil:
			return
		}

		if n > MaxV1Length && parsed.Version == 1 || n > 16+MaxV2Length {
			t.Fatalf("a header of %d bytes", n)
		}

		if parsed.Local {
			return
		}

		again, _, err := Parse(Append(nil, parsed))
		if err != nil || again != parsed {
			t.Fatalf("Append(%+v) reads back as %+v, %v", parsed, again, err)
		}
	})
}
