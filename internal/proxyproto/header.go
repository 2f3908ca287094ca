// Package proxyproto reads the PROXY protocol header that a load balancer
// (HAProxy's send-proxy and send-proxy-v2, AWS NLB, most cloud balancers)
// sends first on each TCP connection it relays, so that a server behind it
// sees the client's address instead of the balancer's. Both versions of the
// protocol are read (https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt):
// version 1, one text line of at most 107 bytes, and version 2, a binary
// header of a 12-byte signature, 4 bytes and at most MaxV2Length more.
//
// Read takes exactly the header's bytes from a connection, never one more,
// so what follows (an FTP command, a TLS ClientHello) stays in the socket.
// Listener reads it on each connection from a trusted address before
// handing the connection on, with a Conn whose RemoteAddr is the client's.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// MaxV1Length is the longest version 1 header, line end included (the
// protocol's own bound).
const MaxV1Length = 107

// MaxV2Length bounds what follows the 16 bytes of a version 2 header: the
// addresses (36 bytes for IPv6) and TLVs, which are skipped. The protocol
// allows 65535; balancers send a few hundred at most (an AWS VPC endpoint
// ID, a TLS summary).
const MaxV2Length = 2048

// v2Signature starts every version 2 header. Its bytes read as text make
// an FTP server see two empty lines, a NUL and QUIT.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v1Prefix starts every version 1 header.
var v1Prefix = []byte("PROXY ")

// minLength is the length of the shortest header of either version
// ("PROXY UNKNOWN\r\n" is 15 bytes, a version 2 header at least 16): that
// many bytes can always be read without reading past a header.
const minLength = 15

// ErrNotProxy is the error for bytes that start no PROXY header at all.
var ErrNotProxy = errors.New("not a PROXY protocol header")

// HeaderError is a header that started like one but is malformed.
type HeaderError struct {
	Version int
	Reason  string
}

func (e *HeaderError) Error() string {
	return fmt.Sprintf("malformed PROXY protocol v%d header: %s", e.Version, e.Reason)
}

func v1Error(format string, args ...any) error {
	return &HeaderError{Version: 1, Reason: fmt.Sprintf(format, args...)}
}

func v2Error(format string, args ...any) error {
	return &HeaderError{Version: 2, Reason: fmt.Sprintf(format, args...)}
}

// Header is what a PROXY header says about the connection it starts.
type Header struct {
	Version int // 1 or 2
	// Local is a version 2 LOCAL command, a version 1 UNKNOWN protocol, or
	// a version 2 PROXY of an unspecified family: the balancer speaks for
	// itself (a health check), and the connection's own addresses stand.
	Local bool
	// Source is the client's address and port, Destination the address
	// and port the client connected to (the balancer's); both valid unless
	// Local. An IPv4-mapped IPv6 address is given as IPv4.
	Source, Destination netip.AddrPort
}

// Read reads one PROXY header from r, and not a byte past it: the first
// byte, then enough for the shortest header, then a version 1 line a byte at
// a time, or a version 2 header's announced length. It returns ErrNotProxy
// when the first bytes start no header, a *HeaderError when the header is
// malformed, and r's error (io.EOF, a deadline) when r ends before.
func Read(r io.Reader) (Header, error) {
	buf := make([]byte, minLength, MaxV1Length)

	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return Header{}, err
	}

	if buf[0] != v1Prefix[0] && buf[0] != v2Signature[0] {
		return Header{}, ErrNotProxy
	}

	if _, err := io.ReadFull(r, buf[1:]); err != nil {
		return Header{}, unexpected(err)
	}

	switch {
	case bytes.HasPrefix(buf, v1Prefix):
		if end := bytes.IndexByte(buf, '\n'); end >= 0 && end+1 < minLength {
			return Header{}, v1Error("shorter than %d bytes", minLength)
		}

		for buf[len(buf)-1] != '\n' {
			if len(buf) == MaxV1Length {
				return Header{}, v1Error("no line end within %d bytes", MaxV1Length)
			}

			buf = buf[:len(buf)+1]
			if _, err := io.ReadFull(r, buf[len(buf)-1:]); err != nil {
				return Header{}, unexpected(err)
			}
		}

		return parseV1(buf)
	case bytes.HasPrefix(buf, v2Signature):
		var fixed [16]byte
		copy(fixed[:], buf)

		if _, err := io.ReadFull(r, fixed[minLength:]); err != nil {
			return Header{}, unexpected(err)
		}

		n := int(binary.BigEndian.Uint16(fixed[14:]))
		if n > MaxV2Length {
			return Header{}, v2Error("%d bytes of addresses and TLVs, more than %d", n, MaxV2Length)
		}

		rest := make([]byte, n)
		if _, err := io.ReadFull(r, rest); err != nil {
			return Header{}, unexpected(err)
		}

		return parseV2(fixed, rest)
	}

	return Header{}, ErrNotProxy
}

// unexpected turns the end of input inside a header into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}

	return err
}

// Parse reads the header at the start of b and returns it with its length
// in bytes. It returns io.ErrUnexpectedEOF when b holds the start of a
// header but not all of it, and otherwise the errors of Read.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, io.ErrUnexpectedEOF
	case b[0] == v1Prefix[0]:
		if !bytes.HasPrefix(b, v1Prefix[:min(len(b), len(v1Prefix))]) {
			return Header{}, 0, ErrNotProxy
		}

		end := bytes.IndexByte(b[:min(len(b), MaxV1Length)], '\n')
		if end < 0 {
			if len(b) >= MaxV1Length {
				return Header{}, 0, v1Error("no line end within %d bytes", MaxV1Length)
			}

			return Header{}, 0, io.ErrUnexpectedEOF
		}

		if end+1 < minLength {
			return Header{}, 0, v1Error("shorter than %d bytes", minLength)
		}

		h, err := parseV1(b[:end+1])

		return h, end + 1, err
	case b[0] == v2Signature[0]:
		if !bytes.HasPrefix(b, v2Signature[:min(len(b), len(v2Signature))]) {
			return Header{}, 0, ErrNotProxy
		}

		if len(b) < 16 {
			return Header{}, 0, io.ErrUnexpectedEOF
		}

		n := int(binary.BigEndian.Uint16(b[14:]))
		if n > MaxV2Length {
			return Header{}, 0, v2Error("%d bytes of addresses and TLVs, more than %d", n, MaxV2Length)
		}

		if len(b) < 16+n {
			return Header{}, 0, io.ErrUnexpectedEOF
		}

		h, err := parseV2([16]byte(b[:16]), b[16:16+n])

		return h, 16 + n, err
	}

	return Header{}, 0, ErrNotProxy
}

// parseV1 reads a whole version 1 line: "PROXY TCP4 src dst sport dport\r\n",
// TCP6 likewise, or "PROXY UNKNOWN" and anything up to the line end.
func parseV1(line []byte) (Header, error) {
	text, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return Header{}, v1Error("the line does not end with CRLF")
	}

	if strings.ContainsAny(text, "\r\n") {
		return Header{}, v1Error("a line end inside the line")
	}

	fields := strings.Split(text, " ")
	if len(fields) >= 2 && fields[1] == "UNKNOWN" {
		return Header{Version: 1, Local: true}, nil
	}

	if len(fields) != 6 {
		return Header{}, v1Error("want PROXY, a protocol, two addresses and two ports separated by single spaces")
	}

	var want func(netip.Addr) bool
	var family string
	switch fields[1] {
	case "TCP4":
		want, family = netip.Addr.Is4, "IPv4"
	case "TCP6":
		want, family = netip.Addr.Is6, "IPv6"
	default:
		return Header{}, v1Error("unknown protocol %q (want TCP4, TCP6 or UNKNOWN)", truncate(fields[1]))
	}

	h := Header{Version: 1}
	for i, dst := range []*netip.AddrPort{&h.Source, &h.Destination} {
		a, err := netip.ParseAddr(fields[2+i])
		if err != nil || !want(a) || a.Zone() != "" {
			return Header{}, v1Error("%q is not an %s address", truncate(fields[2+i]), family)
		}

		port, err := parsePort(fields[4+i])
		if err != nil {
			return Header{}, v1Error("%q is not a port", truncate(fields[4+i]))
		}

		*dst = netip.AddrPortFrom(a.Unmap(), port)
	}

	return h, nil
}

// parsePort reads a port in decimal, without sign.
func parsePort(s string) (uint16, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, strconv.ErrSyntax
	}

	n, err := strconv.ParseUint(s, 10, 16)

	return uint16(n), err
}

// truncate bounds the client's bytes quoted in an error.
func truncate(s string) string {
	const most = 40
	if len(s) > most {
		return s[:most] + "..."
	}

	return s
}

// Version 2 commands, address families and transports (the 13th and 14th
// bytes).
const (
	cmdLocal    = 0x0
	cmdProxy    = 0x1
	famUnspec   = 0x0
	famInet     = 0x1
	famInet6    = 0x2
	protoStream = 0x1
)

// parseV2 reads a version 2 header: its 16 fixed bytes and the rest, whose
// length they announce. TLVs after the addresses are skipped.
func parseV2(fixed [16]byte, rest []byte) (Header, error) {
	if ver := fixed[12] >> 4; ver != 2 {
		return Header{}, v2Error("version %d, want 2", ver)
	}

	switch cmd := fixed[12] & 0xf; cmd {
	case cmdLocal:
		return Header{Version: 2, Local: true}, nil
	case cmdProxy:
	default:
		return Header{}, v2Error("unknown command %#x", cmd)
	}

	family, proto := fixed[13]>>4, fixed[13]&0xf
	if family == famUnspec {
		return Header{Version: 2, Local: true}, nil
	}

	if proto != protoStream || (family != famInet && family != famInet6) {
		return Header{}, v2Error("family and transport %#02x: only TCP over IPv4 or IPv6 is relayed", fixed[13])
	}

	size := 4
	if family == famInet6 {
		size = 16
	}

	if len(rest) < 2*size+4 {
		return Header{}, v2Error("%d bytes, too short for two addresses and two ports", len(rest))
	}

	src, _ := netip.AddrFromSlice(rest[:size])
	dst, _ := netip.AddrFromSlice(rest[size : 2*size])
	ports := rest[2*size:]

	return Header{
		Version:     2,
		Source:      netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(ports)),
		Destination: netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(ports[2:])),
	}, nil
}

// Append appends h, as a header of h.Version, to b: what a balancer sends,
// for tests and for clients that speak through one. A version 2 header
// carries no TLV.
func Append(b []byte, h Header) []byte {
	if h.Version == 2 {
		return appendV2(b, h)
	}

	if h.Local {
		return append(b, "PROXY UNKNOWN\r\n"...)
	}

	proto, src, dst := "TCP4", h.Source.Addr(), h.Destination.Addr()
	if !src.Is4() || !dst.Is4() {
		proto, src, dst = "TCP6", netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}

	return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", proto, src, dst, h.Source.Port(), h.Destination.Port())
}

func appendV2(b []byte, h Header) []byte {
	b = append(b, v2Signature...)
	if h.Local {
		return append(b, 0x20|cmdLocal, famUnspec, 0, 0)
	}

	src, dst := h.Source.Addr(), h.Destination.Addr()
	family, size := byte(famInet), 4
	if !src.Is4() || !dst.Is4() {
		family, size = famInet6, 16
		src, dst = netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}

	b = append(b, 0x20|cmdProxy, family<<4|protoStream)
	b = binary.BigEndian.AppendUint16(b, uint16(2*size+4))
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, h.Source.Port())

	return binary.BigEndian.AppendUint16(b, h.Destination.Port())
}
